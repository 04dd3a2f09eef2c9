package store

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"custos/test/fsfault"
)

// TestMergeNoSpace: a table has five parts per day (MaxPartsPerDay 2), then
// the disk fills and a merge runs. The merge must fail with an error
// wrapping ENOSPC and leave no temporary file, quarantine nothing (a full
// disk is not corruption) and keep every row exactly once — also in a copy
// of the directory opened again (a crash now). When
// the space returns the next merge succeeds: fewer parts, every row exactly
// once, also after a restart. It runs on a 16 MB tmpfs (ENOSPC at write)
// and on a thin-provisioned XFS volume (ENOSPC at fsync; fsfault.ThinXFS).
func TestMergeNoSpace(t *testing.T) {
	t.Run("tmpfs", func(t *testing.T) {
		fs := fsfault.MountTmpfs(t, 16)
		testMergeNoSpace(t, fs, fs)
	})
	t.Run("thin-xfs", func(t *testing.T) {
		x := fsfault.MountThinXFS(t, 128, 512)
		testMergeNoSpace(t, x.Dir, x.Pool)
	})
}

func testMergeNoSpace(t *testing.T, fs, pool string) {
	env := newEnv(t)
	dataDir := filepath.Join(fs, "data")
	open := func(dir string) *DB {
		return env.open(t, func(o *Options) { o.Dir, o.MaxPartsPerDay = dir, 2 })
	}
	db := open(dataDir)
	defer func() { db.Close() }()
	ctx := context.Background()
	if err := db.EnsureTable(ctx, crashRef, crashSchema, 0); err != nil {
		t.Fatal(err)
	}
	const rounds, rows = 5, 600
	for i := range rounds {
		commit(t, db, crashRef, noisyBatch(int64(i*rows), rows))
		if err := db.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	wantAll := func(what string, d *DB) {
		t.Helper()
		got := idsIn(t, d)
		if len(got) != rounds*rows {
			t.Fatalf("%s: %d distinct rows; want %d", what, len(got), rounds*rows)
		}
		for id := range int64(rounds * rows) {
			if got[id] != 1 {
				t.Fatalf("%s: row %d stored %d times; want once", what, id, got[id])
			}
		}
	}
	tableDir := filepath.Join(dataDir, "workspaces", testWS, "tables", crashRef.Table)
	files := func() (parts, tmp []string) {
		for _, n := range namesIn(t, tableDir) {
			switch {
			case strings.HasPrefix(n, ".tmp-"):
				tmp = append(tmp, n)
			case strings.HasSuffix(n, ".part"):
				parts = append(parts, n)
			}
		}
		return parts, tmp
	}
	before, _ := files()
	if len(before) != 3*rounds {
		t.Fatalf("%d parts before the merge; want %d (one a day per flush)", len(before), 3*rounds)
	}
	wantAll("before the disk fills", db)

	ballast := filepath.Join(pool, "ballast")
	fsfault.Fill(t, ballast)
	err := db.Merge(ctx)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("merge on a full disk: %v; want an error wrapping ENOSPC", err)
	}
	t.Logf("merge on the full disk: %.300s", err)
	// A day's merge may still succeed: on the thin volume a failed merge's
	// deleted temporary file can give back to the pool the blocks its
	// writeback did get. What must hold: no temporary file, nothing
	// quarantined, every row once.
	parts, tmp := files()
	if len(tmp) != 0 || len(parts) == 3 {
		t.Fatalf("after the failed merge: parts %v (before %v), temporary files %v; want no temporary file and not every day merged", parts, before, tmp)
	}
	t.Logf("after the failed merge: %d of %d parts unchanged", len(slices.DeleteFunc(slices.Clone(parts), func(n string) bool { return !slices.Contains(before, n) })), len(before))
	if q := db.QuarantinedParts(); len(q) != 0 {
		t.Fatalf("a full disk quarantined %d parts: %+v", len(q), q)
	}
	wantAll("after the failed merge", db)
	crashDir := filepath.Join(t.TempDir(), "data")
	copyTree(t, dataDir, crashDir)
	crashed := open(crashDir)
	wantAll("after a crash following the failed merge", crashed)
	if err := crashed.Close(); err != nil {
		t.Fatal(err)
	}

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	if err := db.Merge(ctx); err != nil {
		t.Fatalf("merge once the space returned: %v", err)
	}
	parts, tmp = files()
	t.Logf("after the space returned: %d parts (from %d)", len(parts), len(before))
	if len(tmp) != 0 || len(parts) > 3*2 {
		t.Fatalf("after the merge with space: parts %v, temporary files %v; want at most 2 a day and none", parts, tmp)
	}
	wantAll("after the merge with space", db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = open(dataDir)
	wantAll("after a restart", db)
}

// TestMergeLoopNoSpaceBackoff: the background merge loop (a 10 ms
// maintenance tick) meets a full disk. It must not retry the failing merge
// at every tick — each attempt decodes its rows and writes until the disk is
// full again — but pause (5 s after the first failure), logging each
// failure with the pause; when the space returns the merge succeeds after
// the pause, and every row is there once.
func TestMergeLoopNoSpaceBackoff(t *testing.T) {
	fs := fsfault.MountTmpfs(t, 16)
	env := newEnv(t)
	logs := &lockedBuf{}
	dataDir := filepath.Join(fs, "data")
	ctx := context.Background()
	// Three flushes of each day with the merge loop off, then a restart with
	// it on and the disk full but for 64 KiB (room for the WAL segment a
	// start creates, not for a day's merge of ~250 KB).
	db := env.open(t, func(o *Options) { o.Dir = dataDir })
	if err := db.EnsureTable(ctx, crashRef, crashSchema, 0); err != nil {
		t.Fatal(err)
	}
	const rounds, rows = 3, 3000
	for i := range rounds {
		commit(t, db, crashRef, noisyBatch(int64(i*rows), rows))
		if err := db.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	ballast := filepath.Join(fs, "ballast")
	full := fsfault.Fill(t, ballast)
	if err := os.Truncate(ballast, full-64<<10); err != nil {
		t.Fatal(err)
	}
	db = env.open(t, func(o *Options) {
		o.Dir, o.MaxPartsPerDay, o.DisableBackground, o.MaintenanceInterval = dataDir, 2, false, 10*time.Millisecond
		o.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	defer db.Close()
	tableDir := filepath.Join(dataDir, "workspaces", testWS, "tables", crashRef.Table)
	countParts := func() int {
		n := 0
		for _, name := range namesIn(t, tableDir) {
			if strings.HasSuffix(name, ".part") && !strings.HasPrefix(name, ".tmp-") {
				n++
			}
		}
		return n
	}
	if n := countParts(); n != 3*rounds {
		t.Fatalf("%d parts; want %d", n, 3*rounds)
	}
	time.Sleep(1500 * time.Millisecond) // 150 ticks
	failures := strings.Count(logs.String(), "store merge failed for lack of space")
	t.Logf("merge failures in 1.5 s of 10 ms ticks on the full disk: %d", failures)
	if failures != 1 {
		t.Fatalf("%d merge failures logged in 1.5 s; want exactly 1 (then a pause of %v)\n%s", failures, mergeNoSpaceBackoff, logs.String())
	}
	if !strings.Contains(logs.String(), "retry_in=5s") {
		t.Fatalf("the failure does not say when the merge is retried:\n%s", logs.String())
	}
	if n := countParts(); n != 3*rounds {
		t.Fatalf("%d parts after the failed merge; want the %d sources", n, 3*rounds)
	}
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(mergeNoSpaceBackoff + 5*time.Second)
	for countParts() > 3*2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := countParts(); n > 3*2 {
		t.Fatalf("%d parts %v after the pause with space back; the merge was not retried", n, mergeNoSpaceBackoff)
	}
	got := idsIn(t, db)
	for id := range int64(rounds * rows) {
		if got[id] != 1 {
			t.Fatalf("row %d stored %d times; want once", id, got[id])
		}
	}
}

func TestNextMergePause(t *testing.T) {
	var got []time.Duration
	var p time.Duration
	for range 6 {
		p = nextMergePause(p)
		got = append(got, p)
	}
	want := []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second, time.Minute, time.Minute}
	if !slices.Equal(got, want) {
		t.Fatalf("pauses %v; want %v", got, want)
	}
}
