package store

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

// copyTree copies a directory as it is on disk now: opening the copy is a
// restart after a crash at this instant (no flush, no WAL close).
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o700)
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		o, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(o, in); err != nil {
			o.Close()
			return err
		}
		return o.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// idsIn returns how often each Id is stored in crashRef.
func idsIn(t *testing.T, db *DB) map[int64]int {
	t.Helper()
	ctx := context.Background()
	q, err := db.Querier(ctx, crashRef, AllTime)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	it := q.Select(ctx, SelectHints{Columns: []string{"Id"}})
	defer it.Close()
	got := map[int64]int{}
	for it.Next() {
		b := it.Batch()
		for i := range b.Len {
			got[b.Cols[0].Int[i]]++
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestWALFsyncNoSpace: fsyncs of the WAL fail with ENOSPC now and then (as
// on a real block device whose space runs out at writeback) while eight
// goroutines commit. Each failure refuses only the commits whose records the
// fsync did not make durable, with an error wrapping ENOSPC (the API answers
// 503 InsufficientStorage); later commits succeed without a restart. Both in
// the running store and after a crash at the end (a copy of the directory
// opened again), every acknowledged commit is present exactly once and no
// refused commit is present at all, so a client's retry cannot duplicate.
func TestWALFsyncNoSpace(t *testing.T) {
	env := newEnv(t)
	db := env.open(t, nil)
	ctx := context.Background()
	if err := db.EnsureTable(ctx, crashRef, crashSchema, 0); err != nil {
		t.Fatal(err)
	}
	commit(t, db, crashRef, crashBatch(0, 10)) // creates the workspace and WAL
	db.mu.RLock()
	ws := db.workspaces[testWS]
	db.mu.RUnlock()
	var calls, failures atomic.Int64
	ws.wal.fsync = func(f *os.File) error {
		// Every fifth fsync fails; the next one (the rollback's) succeeds.
		if calls.Add(1)%5 == 0 {
			failures.Add(1)
			return &fs.PathError{Op: "sync", Path: f.Name(), Err: syscall.ENOSPC}
		}
		return f.Sync()
	}
	const workers, perWorker, rows = 8, 40, 5
	var mu sync.Mutex
	acked := map[int64]bool{} // base id of each commit → acknowledged
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				base := int64(1000 + (w*perWorker+i)*rows)
				a, err := db.Appender(ctx, crashRef)
				if err != nil {
					t.Error(err)
					return
				}
				if err := a.Append(crashBatch(base, rows)); err != nil {
					t.Error(err)
					return
				}
				err = a.Commit(ctx)
				if err != nil && !errors.Is(err, syscall.ENOSPC) {
					t.Errorf("commit %d: %v; want success or ENOSPC", base, err)
				}
				mu.Lock()
				acked[base] = err == nil
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	refused := 0
	for _, ok := range acked {
		if !ok {
			refused++
		}
	}
	t.Logf("%d fsyncs failed with ENOSPC; %d of %d commits refused", failures.Load(), refused, len(acked))
	if failures.Load() == 0 || refused == 0 || refused == len(acked) {
		t.Fatalf("%d failures, %d refused of %d: the fault did not exercise both paths", failures.Load(), refused, len(acked))
	}
	check := func(what string, got map[int64]int) {
		t.Helper()
		for base, ok := range acked {
			for id := base; id < base+rows; id++ {
				switch n := got[id]; {
				case ok && n != 1:
					t.Fatalf("%s: acknowledged row %d stored %d times", what, id, n)
				case !ok && n != 0:
					t.Fatalf("%s: row %d of a refused commit stored %d times", what, id, n)
				}
			}
		}
	}
	check("running store", idsIn(t, db))

	// A crash now: the WAL on disk is all there is.
	crashDir := filepath.Join(t.TempDir(), "data")
	copyTree(t, filepath.Join(env.dir, "data"), crashDir)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2, err := Open(Options{Dir: crashDir, Keys: env.keys, DisableBackground: true})
	if err != nil {
		t.Fatalf("open after the crash: %v", err)
	}
	defer db2.Close()
	check("after a crash", idsIn(t, db2))
	// And after a graceful restart of the original.
	db3 := env.open(t, nil)
	defer db3.Close()
	check("after a restart", idsIn(t, db3))
}
