package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"custos/test/fsfault"
)

// idDivisible is a RowPredicate matching rows whose Id is a multiple of n.
type idDivisible int64

func (p idDivisible) Columns() []string { return []string{"Id"} }

func (p idDivisible) Match(b *Batch) ([]bool, error) {
	v := b.Col("Id")
	out := make([]bool, b.Len)
	for i := range out {
		out[i] = v.Int[i]%int64(p) == 0
	}
	return out, nil
}

// TestPurgeNoSpace: a purge whose part rewrites meet a full disk — on a
// 16 MB tmpfs (ENOSPC at write) and on a thin-provisioned XFS volume whose
// pool is full (writes succeed, the new part's fsync fails with ENOSPC).
// The purge fails with an error wrapping ENOSPC and breaks nothing: no
// temporary file is left, nothing is quarantined, every row that does not
// match is there exactly once and each part (here, each day) is either the
// old one with all its matching rows or its replacement without any, in the
// running store, after a crash (a copy of the directory opened again) and
// after a restart. With the space back the same purge succeeds and no
// matching row is left, also after a restart.
func TestPurgeNoSpace(t *testing.T) {
	t.Run("tmpfs", func(t *testing.T) {
		fs := fsfault.MountTmpfs(t, 16)
		testPurgeNoSpace(t, fs, fs)
	})
	t.Run("thin-xfs", func(t *testing.T) {
		x := fsfault.MountThinXFS(t, 128, 512)
		testPurgeNoSpace(t, x.Dir, x.Pool)
	})
}

func testPurgeNoSpace(t *testing.T, fs, pool string) {
	env := newEnv(t)
	dataDir := filepath.Join(fs, "data")
	open := func(dir string) *DB {
		return env.open(t, func(o *Options) { o.Dir = dir })
	}
	db := open(dataDir)
	defer func() { db.Close() }()
	ctx := context.Background()
	if err := db.EnsureTable(ctx, crashRef, crashSchema, 0); err != nil {
		t.Fatal(err)
	}
	const rows, victimEvery = 6000, 10
	commit(t, db, crashRef, noisyBatch(0, rows))
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	day := func(id int64) int64 { return id % 3 } // as crashBatch spreads them
	// check verifies the either-old-or-replaced promise and returns how
	// many days still hold their matching rows.
	check := func(what string, d *DB) int {
		t.Helper()
		got := idsIn(t, d)
		victims := map[int64]int{}
		for id := range int64(rows) {
			switch n := got[id]; {
			case id%victimEvery == 0 && n == 1:
				victims[day(id)]++
			case id%victimEvery == 0 && n == 0:
			case n != 1:
				t.Fatalf("%s: row %d stored %d times; want once", what, id, n)
			}
		}
		if len(got) > rows {
			t.Fatalf("%s: %d distinct rows; want at most %d", what, len(got), rows)
		}
		perDay := map[int64]int{}
		for id := int64(0); id < rows; id += victimEvery {
			perDay[day(id)]++
		}
		for d, n := range victims {
			if n != perDay[d] {
				t.Fatalf("%s: day %d holds %d of its %d matching rows: a part was half purged", what, d, n, perDay[d])
			}
		}
		return len(victims)
	}
	tableDir := filepath.Join(dataDir, "workspaces", testWS, "tables", crashRef.Table)
	noTemp := func(what string) {
		t.Helper()
		for _, n := range namesIn(t, tableDir) {
			if strings.HasPrefix(n, ".tmp-") {
				t.Fatalf("%s: temporary file %s left", what, n)
			}
		}
	}
	if left := check("before the disk fills", db); left != 3 {
		t.Fatalf("before the purge %d days hold matching rows; want 3", left)
	}

	ballast := filepath.Join(pool, "ballast")
	fsfault.Fill(t, ballast)
	_, err := db.Purge(ctx, crashRef, idDivisible(victimEvery))
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("purge on a full disk: %v; want an error wrapping ENOSPC", err)
	}
	t.Logf("purge on the full disk: %.300s", err)
	noTemp("after the failed purge")
	if q := db.QuarantinedParts(); len(q) != 0 {
		t.Fatalf("a full disk quarantined %d parts: %+v", len(q), q)
	}
	left := check("after the failed purge", db)
	t.Logf("after the failed purge %d of 3 days still hold matching rows", left)
	crashDir := filepath.Join(t.TempDir(), "data")
	copyTree(t, dataDir, crashDir)
	crashed := open(crashDir)
	check("after a crash following the failed purge", crashed)
	if err := crashed.Close(); err != nil {
		t.Fatal(err)
	}

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Purge(ctx, crashRef, idDivisible(victimEvery)); err != nil {
		t.Fatalf("purge once the space returned: %v", err)
	}
	noTemp("after the purge with space")
	if left := check("after the purge with space", db); left != 0 {
		t.Fatalf("after the purge with space %d days hold matching rows", left)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = open(dataDir)
	if left := check("after a restart", db); left != 0 {
		t.Fatalf("after a restart %d days hold matching rows", left)
	}
}
