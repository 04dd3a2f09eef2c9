package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"custos/test/fsfault"
)

// TestDiskFullDuringPurge: a purge (POST .../workspaces/{ws}/purge) whose
// part rewrite meets a full store volume. The store has a 32 MB tmpfs of its
// own (MountStoreVolume; and a 32 MB ext4 image on a loop device,
// MountStoreVolumeExt4), so the catalog that queues purge operations keeps
// working; ten batches of incompressible rows are flushed into one part by a
// graceful stop and, with the server down, the volume is filled to 32 KiB
// short of full — far less than the rewritten part (~700 KB). The purge's
// flush has nothing to do (the memtable is empty), so the fault lands in the
// rewrite, deterministically.
//
// Documented purge semantics (internal/purge): an attempt that fails for lack
// of space keeps the operation `pending` and is retried (after 5 s, the pause
// doubling up to a minute), however often; other failures count against
// three attempts; an operation interrupted by a stop stays `pending` and runs
// again after the start. The test checks, through the API and queries:
//   - purge A: the first attempt fails with ENOSPC (logged), the status stays
//     `pending`, the part is untouched (the purged batch wholly present, every
//     row once, no temporary file); SIGKILL and a start on the still-full
//     volume resume it and it fails again; once the space returns the next
//     retry completes it: the batch is gone, every other row once;
//   - purge B, with the volume full through more attempts than the three
//     other failures get: still `pending`, the batch wholly present; once
//     the space returns it completes;
//   - after SIGKILL and a graceful restart the purged batches stay gone.
func TestDiskFullDuringPurge(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: starts the custos binary")
	}
	for _, v := range storeVolumes {
		t.Run(v.Name, func(t *testing.T) { testDiskFullDuringPurge(t, v.Mount) })
	}
}

func testDiskFullDuringPurge(t *testing.T, mount func(t testing.TB, dataDir string, sizeMB int) (store, pool string)) {
	dataDir := filepath.Join(t.TempDir(), "data")
	_, pool := mount(t, dataDir, 32)
	r := newDiskFullRig(t, dataDir, 170*time.Second)
	s, c, ctx := r.s, r.c, r.ctx
	for range 10 {
		if st, code := r.sendRandom("p"); st/100 != 2 {
			t.Fatalf("with space: HTTP %d %s", st, code)
		}
	}
	if err := s.Stop(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	parts, _ := StoreFiles(t, dataDir, "Crash_CL")
	if len(parts) == 0 {
		t.Fatal("no part after a graceful stop")
	}
	ballast := filepath.Join(pool, "ballast")
	free := LeaveFree(t, ballast, 32<<10)
	t.Logf("parts %v; the store's volume is left with %d KB free", parts, free>>10)
	if err := s.Start(ctx); err != nil {
		t.Fatalf("start with the store's volume nearly full: %v", err)
	}
	r.verify("before the purges")

	purge := func(batch string) string {
		t.Helper()
		body := fmt.Sprintf(`{"table":"Crash_CL","filters":[{"column":"BatchId","operator":"==","value":%q}]}`, batch)
		st, code, resp, err := c.Do(ctx, audienceManagement, http.MethodPost, c.Admin.WorkspaceResourceID()+"/purge?api-version=2020-08-01", []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if st != http.StatusAccepted {
			t.Fatalf("purge %s: HTTP %d %s: %s", batch, st, code, resp)
		}
		var out struct {
			OperationID string `json:"operationId"`
		}
		if err := json.Unmarshal(resp, &out); err != nil || out.OperationID == "" {
			t.Fatalf("purge response without operationId: %s (%v)", resp, err)
		}
		return out.OperationID
	}
	type opStatus struct {
		Status string `json:"status"`
		Error  any    `json:"error"`
	}
	status := func(id string) (opStatus, []byte) {
		t.Helper()
		st, code, resp, err := c.Do(ctx, audienceManagement, http.MethodGet, c.Admin.WorkspaceResourceID()+"/operations/purge-"+id+"?api-version=2020-08-01", nil)
		if err != nil {
			t.Fatal(err)
		}
		if st != http.StatusOK {
			t.Fatalf("purge status %s: HTTP %d %s: %s", id, st, code, resp)
		}
		var out opStatus
		if err := json.Unmarshal(resp, &out); err != nil {
			t.Fatalf("purge status %s: %v: %s", id, err, resp)
		}
		return out, resp
	}
	waitStatus := func(id, want string, d time.Duration) []byte {
		t.Helper()
		for deadline := time.Now().Add(d); ; time.Sleep(200 * time.Millisecond) {
			got, resp := status(id)
			if got.Status == want {
				return resp
			}
			if got.Status != "pending" {
				t.Fatalf("purge %s: status %q (%s); want %q", id, got.Status, resp, want)
			}
			if time.Now().After(deadline) {
				t.Fatalf("purge %s still %q after %v; want %q", id, got.Status, d, want)
			}
		}
	}
	noTemp := func(when string) {
		t.Helper()
		var tmp []string
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if _, tmp = StoreFiles(t, dataDir, "Crash_CL"); len(tmp) == 0 || time.Now().After(deadline) {
				break
			}
		}
		if len(tmp) != 0 {
			t.Fatalf("%s: temporary files %v left by the failed rewrite", when, tmp)
		}
	}
	unchanged := func(when string) {
		t.Helper()
		noTemp(when)
		if now, _ := StoreFiles(t, dataDir, "Crash_CL"); fmt.Sprint(now) != fmt.Sprint(parts) {
			t.Fatalf("%s: parts %v; want the original %v untouched", when, now, parts)
		}
		r.verify(when) // the purged batch is still acknowledged: wholly present
	}

	// Purge A: fails, stays pending, survives a SIGKILL, completes with space.
	from := LogLen(t, s)
	opA := purge("p-b3")
	line := WaitLog(t, s, from, 30*time.Second, "purge attempt failed for lack of space", "no space left on device")
	t.Logf("purge A on the full volume: %.400s", line)
	if st, resp := status(opA); st.Status != "pending" {
		t.Fatalf("purge A after a failed attempt: %s; want pending (it is retried)", resp)
	}
	unchanged("after purge A's failed attempt")
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	from = LogLen(t, s)
	if err := s.Start(ctx); err != nil {
		t.Fatalf("restart after SIGKILL with the store's volume full: %v", err)
	}
	line = WaitLog(t, s, from, 30*time.Second, "purge attempt failed for lack of space", "no space left on device")
	t.Logf("purge A resumed after SIGKILL and failed again: %.200s", line)
	unchanged("after SIGKILL and a restart during purge A")
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	waitStatus(opA, "completed", 30*time.Second)
	r.led.mu.Lock()
	r.led.sent["p-b3"] = 0 // purged: no row of it may remain
	r.led.mu.Unlock()
	noTemp("after purge A completed")
	r.verify("after purge A completed")

	// Purge B: the volume stays full through every attempt.
	if err := s.Stop(60 * time.Second); err != nil { // the rewritten part is the only one
		t.Fatal(err)
	}
	parts, _ = StoreFiles(t, dataDir, "Crash_CL")
	free = LeaveFree(t, ballast, 32<<10)
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("purge B: parts %v, %d KB free", parts, free>>10)
	start := time.Now()
	from = LogLen(t, s)
	opB := purge("p-b6")
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		log, err := s.Log()
		if err != nil {
			t.Fatal(err)
		}
		if n := len(linesWith(string(log[from:]), "purge attempt failed for lack of space")); n > purgeMaxAttempts {
			t.Logf("purge B: %d attempts failed for lack of space in %v", n, time.Since(start).Round(100*time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("purge B: fewer than %d attempts failed for lack of space in 90 s", purgeMaxAttempts+1)
		}
	}
	if st, resp := status(opB); st.Status != "pending" {
		t.Fatalf("purge B on a volume full through %d attempts: %s; want pending until the space returns", purgeMaxAttempts+1, resp)
	}
	unchanged("while purge B waits for space")
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	waitStatus(opB, "completed", 90*time.Second) // the pause has doubled to 40 s by now
	r.led.mu.Lock()
	r.led.sent["p-b6"] = 0
	r.led.mu.Unlock()
	noTemp("after purge B completed")
	r.verify("after purge B completed with space")
	r.restarts(nil)
}

// purgeMaxAttempts is internal/purge's DefaultMaxAttempts: a failure other
// than a full disk fails the operation after that many attempts.
const purgeMaxAttempts = 3

// TestDiskFullPurgeRequest: the whole data directory (the catalog that
// queues purge operations included) is on a 64 MB tmpfs, filled to the
// last byte. A purge request must then be refused with a retryable 503/507
// in the Azure envelope, or accepted (202) and carried out once the space
// returns; never a 500 or a hang. With the space back the purge completes
// and its rows are gone.
func TestDiskFullPurgeRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: starts the custos binary")
	}
	fs := fsfault.MountTmpfs(t, 64)
	r := newDiskFullRig(t, filepath.Join(fs, "data"), 120*time.Second)
	s, c, ctx := r.s, r.c, r.ctx
	for range 4 {
		if st, code := r.send("p"); st/100 != 2 {
			t.Fatalf("with space: HTTP %d %s", st, code)
		}
	}
	if err := s.Stop(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	ballast := filepath.Join(fs, "ballast")
	LeaveFree(t, ballast, 0)
	body := `{"table":"Crash_CL","filters":[{"column":"BatchId","operator":"==","value":"p-b1"}]}`
	path := c.Admin.WorkspaceResourceID() + "/purge?api-version=2020-08-01"
	st, code, resp, err := c.Do(ctx, audienceManagement, http.MethodPost, path, []byte(body))
	if err != nil {
		t.Fatalf("purge request on a full disk: %v (the server must answer)", err)
	}
	t.Logf("purge request with the data directory full: HTTP %d %s: %.300s", st, code, resp)
	var env struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	switch {
	case st == http.StatusAccepted:
	case st == http.StatusServiceUnavailable || st == http.StatusInsufficientStorage:
		if jerr := json.Unmarshal(resp, &env); jerr != nil || env.Error.Code == "" || env.Error.Message == "" {
			t.Fatalf("refused with HTTP %d but not in the Azure error envelope: %.300s", st, resp)
		}
		if env.Error.Code != "InsufficientStorage" {
			t.Fatalf("refused with HTTP %d code %q: %.300s; want InsufficientStorage, as ingestion answers on a full disk", st, env.Error.Code, resp)
		}
	default:
		t.Fatalf("purge request on a full disk: HTTP %d %s: %.300s; want 202, or a retryable 503/507", st, code, resp)
	}
	r.verify("with the data directory full")
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	var op string
	if st == http.StatusAccepted {
		var out struct {
			OperationID string `json:"operationId"`
		}
		_ = json.Unmarshal(resp, &out)
		op = out.OperationID
	} else {
		st, code, resp, err = c.Do(ctx, audienceManagement, http.MethodPost, path, []byte(body))
		if err != nil || st != http.StatusAccepted {
			t.Fatalf("purge request once the space returned: HTTP %d %s: %s (%v)", st, code, resp, err)
		}
		var out struct {
			OperationID string `json:"operationId"`
		}
		_ = json.Unmarshal(resp, &out)
		op = out.OperationID
	}
	statusPath := c.Admin.WorkspaceResourceID() + "/operations/purge-" + op + "?api-version=2020-08-01"
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		st, code, resp, err := c.Do(ctx, audienceManagement, http.MethodGet, statusPath, nil)
		if err != nil || st != http.StatusOK {
			t.Fatalf("purge status: HTTP %d %s: %s (%v)", st, code, resp, err)
		}
		var out struct {
			Status string `json:"status"`
		}
		_ = json.Unmarshal(resp, &out)
		if out.Status == "completed" {
			break
		}
		if out.Status != "pending" || time.Now().After(deadline) {
			t.Fatalf("purge status %s; want completed once the space returned", resp)
		}
	}
	r.led.mu.Lock()
	r.led.sent["p-b1"] = 0
	r.led.mu.Unlock()
	r.verify("after the purge completed with space")
}
