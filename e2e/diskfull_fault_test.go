package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"custos/test/fsfault"
)

// uploadRaw posts one batch to the Logs Ingestion API without the SDK, so
// that the status, x-ms-error-code and Azure error envelope are visible.
func uploadRaw(ctx context.Context, c *Client, rule, stream string, body []byte) (int, string, []byte, error) {
	path := fmt.Sprintf("/dataCollectionRules/%s/streams/%s?api-version=2023-01-01", rule, stream)
	return c.Do(ctx, audienceIngestion, http.MethodPost, path, body)
}

// TestDiskFull gives the server a data directory on a 64 MB tmpfs, fills the
// filesystem with a ballast file while clients ingest, and checks that
// ingestion is refused with a retryable error (503 or 507) in the Azure
// error envelope — never a hang, a crash or a silent drop; that every
// acknowledged batch is present exactly once (and each refused one wholly
// present or wholly absent); that ingestion recovers once the ballast is
// removed; and that all of this survives a restart.
func TestDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: starts the custos binary")
	}
	fs := fsfault.MountTmpfs(t, 64)
	runDiskFull(t, diskFullCase{Data: fs, Pool: fs})
}

// TestDiskFullBackgroundFlush is TestDiskFull where the full disk meets the
// binary's background flush, not only the WAL: rows wait at most 10 s in
// memory (store.memtableMaxAge), so the rows acknowledged just before the
// disk fills are flushed while it is full (kept full for 15 s; the margin
// is for a loaded machine, where the first phase takes seconds). A failed
// flush is logged, keeps its rows in memory and in the WAL, and is retried
// until space returns; nothing acknowledged is lost, also after SIGKILL and
// restart.
func TestDiskFullBackgroundFlush(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: starts the custos binary")
	}
	fs := fsfault.MountTmpfs(t, 64)
	s := runDiskFull(t, diskFullCase{Data: fs, Pool: fs, Args: []string{"--store-memtable-max-age", "10s"}, FullFor: 15 * time.Second,
		WhileFull: func(t *testing.T, log string) {
			failed := linesWith(log, "store flush failed")
			t.Logf("while full: %d background flushes failed", len(failed))
			for _, line := range head(failed) {
				t.Logf("flush: %.400s", line)
			}
			if len(failed) == 0 || !strings.Contains(failed[0], "no space left on device") {
				t.Errorf("no background flush failed with ENOSPC while the disk was full; the test did not exercise what it is for")
			}
		}})
	// runDiskFull has checked that rows acknowledged while and after the
	// disk was full are all there once, after recovery and a SIGKILL.
	log, _ := s.Log()
	t.Logf("server log: %d flush failures, %d merge failures in all", len(linesWith(string(log), "store flush failed")), len(linesWith(string(log), "merge failed")))
}

// diskFullRig is the set-up the disk-full tests share: a server whose data
// directory is on a small filesystem, a table and a rule to ingest through,
// and the ledger of every batch sent.
type diskFullRig struct {
	t    *testing.T
	ctx  context.Context
	s    *Server
	c    *Client
	rule string
	led  *crashLedger
	base time.Time
	n    int
}

// newDiskFullRig starts the server with its data directory at dataDir,
// grants the admin the data roles, creates Crash_CL and its rule, and
// fetches the ingestion token (the token service may need the disk).
func newDiskFullRig(t *testing.T, dataDir string, timeout time.Duration, args ...string) *diskFullRig {
	ctx := testCtx(t, timeout)
	s, c := StartServer(t, ctx, Options{Binary: custosBin, DataDir: dataDir, LogPath: filepath.Join(t.TempDir(), "server.log"), Args: args})
	if err := c.GrantDataRoles(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateTable(ctx, "Crash_CL", crashColumns); err != nil {
		t.Fatal(err)
	}
	rule, err := c.CreateDCR(ctx, "full-dcr", "Custom-Crash", crashColumns, "Crash_CL", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Token(ctx, audienceIngestion); err != nil {
		t.Fatal(err)
	}
	return &diskFullRig{t: t, ctx: ctx, s: s, c: c, rule: rule, led: &crashLedger{sent: map[string]int{}, acked: map[string]bool{}},
		base: time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Second)}
}

// send uploads one batch of 500 rows (~100 KB of JSON) and returns the
// outcome; a refusal must be a retryable 503 or 507 in the Azure envelope.
func (r *diskFullRig) send(phase string) (status int, code string) {
	r.t.Helper()
	return r.sendRows(phase, func(batch string, i int) string {
		return fmt.Sprintf("row %d of %s %s", i, batch, strings.Repeat("disk full payload ", 8))
	})
}

// sendRows uploads one batch of 500 rows whose Payload column payload
// gives, records it in the ledger and returns the outcome; a refusal must
// be a retryable 503 or 507 in the Azure envelope.
func (r *diskFullRig) sendRows(phase string, payload func(batch string, i int) string) (status int, code string) {
	t := r.t
	t.Helper()
	batch := fmt.Sprintf("%s-b%d", phase, r.n)
	recs := make([]map[string]any, 500)
	for i := range recs {
		recs[i] = map[string]any{
			"TimeGenerated": r.base.Add(time.Duration(r.n*1000+i) * time.Millisecond).Format(time.RFC3339Nano),
			"RowId":         fmt.Sprintf("%s-%d", batch, i),
			"BatchId":       batch,
			"Client":        0,
			"Payload":       payload(batch, i),
		}
	}
	r.n++
	body, _ := json.Marshal(recs)
	uctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
	defer cancel()
	status, code, resp, err := uploadRaw(uctx, r.c, r.rule, "Custom-Crash", body)
	if err != nil {
		t.Fatalf("%s: upload %s: %v (the server must answer, not hang or crash, when the disk is full)", phase, batch, err)
	}
	r.led.record(batch, len(recs), status/100 == 2)
	if status/100 == 2 {
		return status, code
	}
	var env struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if jerr := json.Unmarshal(resp, &env); jerr != nil || env.Error.Code == "" || env.Error.Message == "" {
		t.Fatalf("%s: upload %s refused with HTTP %d but not in the Azure error envelope: %.300s", phase, batch, status, resp)
	}
	if status != http.StatusServiceUnavailable && status != http.StatusInsufficientStorage {
		t.Fatalf("%s: upload %s refused with HTTP %d %s (%q); want a retryable 503 or 507 when the disk is full",
			phase, batch, status, env.Error.Code, env.Error.Message)
	}
	return status, env.Error.Code
}

// verify checks the ledger property through queries.
func (r *diskFullRig) verify(when string) {
	r.t.Helper()
	verifyCrashLedger(r.t, r.ctx, r.c, r.led, when)
}

// recover waits (30 s at most) for an upload to be acknowledged after the
// space returned, then sends three more that must be acknowledged.
func (r *diskFullRig) recover() {
	r.t.Helper()
	recovered := false
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		if st, _ := r.send("after"); st/100 == 2 {
			recovered = true
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if !recovered {
		r.t.Fatal("ingestion did not recover within 30 s of the space returning")
	}
	for range 3 {
		if st, code := r.send("after"); st/100 != 2 {
			r.t.Fatalf("after recovery: HTTP %d %s", st, code)
		}
	}
	r.verify("after space returned")
}

// diskFullCase describes one disk-full scenario for runDiskFull.
type diskFullCase struct {
	// Data is the filesystem the server's data directory (Data/data) is on.
	Data string
	// Pool is the filesystem the ballast file fills (Pool/ballast): Data
	// itself, or the pool behind a thin-provisioned volume.
	Pool string
	// StopWhileFull also stops the server gracefully while the disk is
	// full (its shutdown flush meets ENOSPC) and starts it once space
	// returns.
	StopWhileFull bool
	// WhileFull, when set, checks the server's log of the full phase.
	WhileFull func(t *testing.T, log string)
	// AfterKill, when set, runs with the server down after the final
	// SIGKILL (a remount, say).
	AfterKill func()
	// Args are extra server arguments.
	Args []string
	// FullFor keeps the disk full at least this long before WhileFull
	// looks at the log (for background work that runs on a timer).
	FullFor time.Duration
}

// runDiskFull is the body of the disk-full tests: the server's data
// directory lives on the small filesystem c.Data, and the test fills c.Pool
// with a ballast file while it uploads. It returns the server (running;
// killed at cleanup) for checks of its log.
func runDiskFull(t *testing.T, dc diskFullCase) *Server {
	r := newDiskFullRig(t, filepath.Join(dc.Data, "data"), 170*time.Second, dc.Args...)
	s, ctx, led, send := r.s, r.ctx, r.led, r.send
	for range 5 {
		if st, code := send("before"); st/100 != 2 {
			t.Fatalf("before filling the disk: HTTP %d %s", st, code)
		}
	}
	r.verify("before filling the disk")

	ballast := filepath.Join(dc.Pool, "ballast")
	filled := fsfault.Fill(t, ballast)
	t.Logf("ballast of %d MB fills the filesystem; the data directory's filesystem reports %d MB free", filled>>20, fsfault.Free(t, dc.Data)>>20)
	logBefore, _ := s.Log()
	refused := 0
	var lastCode string
	var lastStatus int
	for i := 0; i < 40 && refused < 5; i++ {
		st, code := send("full")
		if st/100 != 2 {
			refused++
			lastStatus, lastCode = st, code
		}
		// Take what little space the server freed (a flush or merge may
		// release WAL segments), so that it stays full.
		fsfault.Fill(t, ballast)
	}
	if refused == 0 {
		t.Fatalf("40 uploads of ~100 KB each were all acknowledged on a full filesystem")
	}
	t.Logf("disk full: %d uploads refused, the last with HTTP %d %s; %d acknowledged in all", refused, lastStatus, lastCode, led.acks())
	if !s.Running() {
		t.Fatal("the server exited on a full disk")
	}
	for deadline := time.Now().Add(dc.FullFor); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		fsfault.Fill(t, ballast)
	}
	if dc.WhileFull != nil {
		logFull, _ := s.Log()
		dc.WhileFull(t, string(logFull[len(logBefore):]))
	}
	// Queries still answer while the disk is full.
	r.verify("with the disk full")

	if dc.StopWhileFull {
		// SIGTERM with the disk full: the shutdown flush of the memtable
		// cannot write its part. The server must still exit in time (an
		// error exit is allowed) and lose nothing acknowledged: the WAL
		// keeps the rows and the next start replays them.
		// Fill until nothing more fits even after writeback (ext4 hands
		// back blocks it reserved for delayed allocation once it has
		// written them).
		for range 10 {
			n := fsfault.Fill(t, ballast)
			syscall.Sync()
			if n == 0 {
				break
			}
		}
		t.Logf("before the stop: %d bytes free in the pool", fsfault.Free(t, dc.Pool))
		before, _ := s.Log()
		err := s.Stop(60 * time.Second)
		if err != nil && strings.Contains(err.Error(), "did not exit") {
			t.Fatalf("graceful stop with the disk full: %v", err)
		}
		after, _ := s.Log()
		exit := "status 0"
		if err != nil {
			exit, _, _ = strings.Cut(err.Error(), "; log tail")
		}
		shutdown := linesWith(string(after[len(before):]), "no space left on device")
		t.Logf("graceful stop with the disk full: %s; the shutdown logged ENOSPC %d times", exit, len(shutdown))
		for _, line := range head(shutdown) {
			t.Logf("shutdown ENOSPC: %.400s", line)
		}
		if err := os.Remove(ballast); err != nil {
			t.Fatal(err)
		}
		if err := s.Start(ctx); err != nil {
			t.Fatalf("start after a stop on a full disk: %v", err)
		}
		r.verify("after a graceful stop on the full disk and a start with space")
		fsfault.Fill(t, ballast) // full again for the recovery phase below
	}

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	r.recover()

	r.restarts(dc.AfterKill)
	return s
}

// restarts checks that nothing acknowledged depends on memory: SIGKILL,
// then (when not nil) afterKill with the server down, a start, the ledger;
// a graceful stop and start, the ledger.
func (r *diskFullRig) restarts(afterKill func()) {
	t := r.t
	t.Helper()
	if err := r.s.Kill(); err != nil {
		t.Fatal(err)
	}
	if afterKill != nil {
		afterKill()
	}
	if err := r.s.Start(r.ctx); err != nil {
		t.Fatalf("restart after the disk-full episode: %v", err)
	}
	r.verify("after SIGKILL and restart")
	if err := r.s.Stop(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := r.s.Start(r.ctx); err != nil {
		t.Fatal(err)
	}
	r.verify("after a graceful stop and start")
}
