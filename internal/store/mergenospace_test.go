package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

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
