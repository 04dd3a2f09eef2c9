package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"custos/test/fsfault"
)

// lockedBuf is a log sink the background goroutines write to.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// namesIn lists the file names in dir (none if dir is missing).
func namesIn(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		out = append(out, de.Name())
	}
	return out
}

// noisyBatch is crashBatch with an incompressible message (random text),
// so that its parts need about 80 bytes a row.
func noisyBatch(base int64, n int) *Batch {
	b := crashBatch(base, n)
	for i := range b.Cols[2].Str {
		b.Cols[2].Str[i] = fmt.Sprintf("%d %s", base+int64(i), rand.Text()+rand.Text()+rand.Text())
	}
	return b
}

// TestBackgroundFlushNoSpace: the data directory is on a small filesystem.
// Rows are committed (in the WAL and the memtable), then the filesystem is
// filled and the memtable ages past MaxMemtableAge, so the background flush
// runs on a full disk: first it cannot even start its WAL segment, then
// (64 KB freed) it freezes the memtable and cannot write all of its parts.
// Meanwhile every row still answers exactly once, the WAL segment holding
// the rows is kept (a crash now — a copy of the directory opened again —
// loses nothing), and no temporary file is left. When the space returns,
// with no new commit to prompt it, the background loop must retry the flush
// and succeed: the parts appear, the WAL segment they cover is deleted, and
// every row is present exactly once, also after a restart (the WAL replay
// must not bring flushed rows back twice).
//
// It runs twice: on a 16 MB tmpfs (ENOSPC at write) and on a
// thin-provisioned XFS volume whose pool is filled (writes succeed, the
// WAL's and the parts' fsyncs fail with ENOSPC; see fsfault.ThinXFS).
func TestBackgroundFlushNoSpace(t *testing.T) {
	t.Run("tmpfs", func(t *testing.T) {
		fs := fsfault.MountTmpfs(t, 16)
		testBackgroundFlushNoSpace(t, fs, fs)
	})
	t.Run("thin-xfs", func(t *testing.T) {
		x := fsfault.MountThinXFS(t, 128, 512)
		testBackgroundFlushNoSpace(t, x.Dir, x.Pool)
	})
}

// testBackgroundFlushNoSpace runs the scenario with the data directory
// under fs and the ballast file that exhausts the space in pool.
func testBackgroundFlushNoSpace(t *testing.T, fs, pool string) {
	env := newEnv(t)
	// The store's clock runs in real time from env.now, plus a jump.
	var jump atomic.Int64
	t0 := time.Now()
	logs := &lockedBuf{}
	dataDir := filepath.Join(fs, "data")
	db, err := Open(Options{Dir: dataDir, Keys: env.keys, MaintenanceInterval: 20 * time.Millisecond, MaxMemtableAge: time.Hour,
		Now:    func() time.Time { return env.now.Add(time.Since(t0) + time.Duration(jump.Load())) },
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { db.Close() }()
	ctx := context.Background()
	if err := db.EnsureTable(ctx, crashRef, crashSchema, 0); err != nil {
		t.Fatal(err)
	}
	const batches, rows = 6, 300
	for i := range batches {
		commit(t, db, crashRef, noisyBatch(int64(i*rows), rows))
	}
	wantAll := func(what string, d *DB) {
		t.Helper()
		got := idsIn(t, d)
		if len(got) != batches*rows {
			t.Fatalf("%s: %d distinct rows; want %d", what, len(got), batches*rows)
		}
		for id := range int64(batches * rows) {
			if got[id] != 1 {
				t.Fatalf("%s: row %d stored %d times; want once", what, id, got[id])
			}
		}
	}
	wantAll("before the disk fills", db)
	wsDir := filepath.Join(dataDir, "workspaces", testWS)
	tableDir := filepath.Join(wsDir, "tables", crashRef.Table)
	walDir := filepath.Join(wsDir, "wal")
	parts := func() (n int) {
		for _, name := range namesIn(t, tableDir) {
			if strings.HasSuffix(name, ".part") && !strings.HasPrefix(name, ".tmp-") {
				n++
			}
		}
		return n
	}
	walBefore := namesIn(t, walDir)
	walKept := func() bool {
		return slices.ContainsFunc(namesIn(t, walDir), func(n string) bool { return slices.Contains(walBefore, n) })
	}
	if parts() != 0 || len(walBefore) == 0 {
		t.Fatalf("before the flush: %d parts, WAL %v; want no part and a WAL", parts(), walBefore)
	}

	ballast := filepath.Join(pool, "ballast")
	fsfault.Fill(t, ballast)
	jump.Add(int64(2 * time.Hour)) // the memtable is now older than MaxMemtableAge
	waitFor := func(what string, d time.Duration, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(d); !cond(); {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %v; store log:\n%s", what, d, logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Completely full: the flush cannot even start its new WAL segment.
	waitFor("a flush attempt failing for lack of space", 20*time.Second, func() bool {
		return strings.Contains(logs.String(), "store flush failed") && strings.Contains(logs.String(), "no space left on device")
	})
	// Room for a WAL segment but not for every part: the flush freezes the
	// memtable, starts a segment and fails writing (some of) the parts.
	st, err := os.Stat(ballast)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(ballast, st.Size()-64<<10); err != nil {
		t.Fatal(err)
	}
	waitFor("a flush attempt failing to write its parts", 20*time.Second, func() bool {
		return strings.Contains(logs.String(), "flush table "+crashRef.Table)
	})
	t.Logf("flush refused on the full disk %d times; %d of 3 parts written", strings.Count(logs.String(), "store flush failed"), parts())
	if fs != pool && !strings.Contains(logs.String(), "fsync") {
		t.Fatalf("on the thin-provisioned volume the flush failed, but not at fsync; store log:\n%s", logs.String())
	}
	for _, name := range namesIn(t, tableDir) {
		if strings.HasPrefix(name, ".tmp-") {
			t.Fatalf("temporary file %s left in the table directory by a failed flush", name)
		}
	}
	if parts() >= 3 {
		t.Fatal("every part was written on the full disk: the test did not exercise a failed flush")
	}
	if !walKept() {
		t.Fatalf("WAL now %v: the segments %v holding unflushed rows were deleted", namesIn(t, walDir), walBefore)
	}
	wantAll("with the disk full", db)
	// A crash now: the WAL and the parts on disk must hold every row once.
	crashDir := filepath.Join(t.TempDir(), "data")
	copyTree(t, dataDir, crashDir)
	crashed, err := Open(Options{Dir: crashDir, Keys: env.keys, DisableBackground: true})
	if err != nil {
		t.Fatalf("open a copy taken while the flush failed: %v", err)
	}
	wantAll("after a crash while the flush failed", crashed)
	if err := crashed.Close(); err != nil {
		t.Fatal(err)
	}

	// Space returns; nothing else happens. The background loop retries.
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); parts() < 3 || walKept(); {
		if time.Now().After(deadline) {
			t.Fatalf("20 s after the space returned: %d of 3 parts, WAL %v (before: %v): the failed flush was not retried; store log:\n%s",
				parts(), namesIn(t, walDir), walBefore, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("after the space returned: %d parts; WAL now %v (was %v)", parts(), namesIn(t, walDir), walBefore)
	wantAll("after the retried flush", db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = env.open(t, func(o *Options) { o.Dir = dataDir })
	wantAll("after a restart", db)
}
