package store

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPurgeQuarantinesCorruptPart: three parts, one with a flipped byte in a
// column chunk. A purge meets the damage while it rewrites that part; it must
// quarantine the part as a query would (file moved with its record, part out
// of the table), finish the other parts (no victim row left in them, no
// temporary file left behind), and say in its result and in the quarantine
// record that the part missed the purge. A second purge and a restart keep
// counting and listing it.
func TestPurgeQuarantinesCorruptPart(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	opts := func(o *Options) { o.BlockRows = 64; o.MaxPartsPerDay = 16; o.QueryWorkers = 2 }
	db := env.open(t, opts)
	ref := TableRef{WorkspaceID: testWS, Table: "PurgeQ"}
	if err := db.EnsureTable(ctx, ref, purgeSchema, 0); err != nil {
		t.Fatal(err)
	}
	victim := func(i int) bool { return i%7 == 0 }
	partOf := map[string]int{} // part file → first row
	for r := range 3 {
		commit(t, db, ref, purgeBatch(r*500, 500, 0, victim))
		if err := db.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		for _, p := range flushedPartFiles(t, env.dir) {
			if _, ok := partOf[p]; !ok {
				partOf[p] = r * 500
			}
		}
	}
	if len(partOf) != 3 {
		t.Fatalf("want 3 parts, have %d", len(partOf))
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// Damage the middle part's column chunks (a third of the way in lies
	// past the header and before the footer).
	var bad string
	for p, lo := range partOf {
		if lo == 500 {
			bad = p
		}
	}
	badID := strings.TrimSuffix(filepath.Base(bad), ".part")
	raw, err := os.ReadFile(bad)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/3] ^= 0x40
	if err := os.WriteFile(bad, raw, 0o600); err != nil {
		t.Fatal(err)
	}

	db = env.open(t, opts)
	res, err := db.Purge(ctx, ref, ColumnIn{Column: "User", Values: []string{"victim"}})
	if err != nil {
		t.Fatalf("purge with a corrupt part: %v (want the part quarantined and the rest purged)", err)
	}
	if len(res.Quarantined) != 1 || res.Quarantined[0].PartID != badID || res.Quarantined[0].DetectedBy != "purge" ||
		res.Quarantined[0].MissedPurges != 1 || res.Quarantined[0].Rows != 500 {
		t.Fatalf("purge result lists quarantined %+v; want part %s detected by the purge, 500 rows, 1 missed purge", res.Quarantined, badID)
	}
	victimsPerPart := 0
	for i := range 500 {
		if victim(i) {
			victimsPerPart++
		}
	}
	if res.PartsRewritten != 2 || res.RowsPurged != int64(2*victimsPerPart) || res.PartsScanned != 3 {
		t.Fatalf("purge result %+v; want 2 parts rewritten, %d rows purged, 3 scanned", res, 2*victimsPerPart)
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Fatalf("the corrupt part is still in the table directory (%v)", err)
	}
	qdir := filepath.Join(env.dir, "data", "quarantine", testWS, "PurgeQ")
	if _, err := os.Stat(filepath.Join(qdir, badID+".part")); err != nil {
		t.Fatalf("quarantined file: %v", err)
	}
	checkRecord := func(want int) {
		t.Helper()
		raw, err := os.ReadFile(filepath.Join(qdir, badID+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var r QuarantinedPart
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatal(err)
		}
		if r.MissedPurges != want || r.DetectedBy != "purge" || r.PartID != badID {
			t.Fatalf("quarantine record %+v; want part %s, detected by purge, %d missed purges", r, badID, want)
		}
	}
	checkRecord(1)
	// The purge finished: no temporary file, the healthy parts hold no
	// victim, and the table answers their rows (marked partial).
	tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(bad), ".tmp-*"))
	if len(tmps) != 0 {
		t.Fatalf("temporary files left: %v", tmps)
	}
	qctx, rep := WithPartialReport(ctx)
	q, err := db.Querier(qctx, ref, AllTime)
	if err != nil {
		t.Fatal(err)
	}
	it := q.Select(qctx, SelectHints{})
	rows, victims := 0, 0
	for it.Next() {
		b := it.Batch()
		rows += b.Len
		if k := b.Schema.Index("User"); k >= 0 {
			for _, u := range b.Cols[k].Str {
				if u == "victim" {
					victims++
				}
			}
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	it.Close()
	q.Close()
	if want := 2 * (500 - victimsPerPart); rows != want || victims != 0 {
		t.Fatalf("after the purge: %d rows (%d victims); want %d and none", rows, victims, want)
	}
	if sk := rep.Skipped(); len(sk) != 1 || sk[0].PartID != badID {
		t.Fatalf("query after the purge not reported partial: %+v", sk)
	}
	if s := db.Stats(); s.PartsQuarantined != 1 {
		t.Fatalf("stats %+v; want 1 part quarantined", s)
	}

	// A later purge cannot read the quarantined part either: it says so again.
	res, err = db.Purge(ctx, ref, ColumnIn{Column: "User", Values: []string{"user-3"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Quarantined) != 1 || res.Quarantined[0].MissedPurges != 2 || res.RowsPurged == 0 {
		t.Fatalf("second purge: %+v; want rows purged and the part listed with 2 missed purges", res)
	}
	checkRecord(2)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = env.open(t, opts)
	defer db.Close()
	if qs := db.QuarantinedParts(); len(qs) != 1 || qs[0].MissedPurges != 2 {
		t.Fatalf("after restart: %+v; want the part with 2 missed purges", qs)
	}
}
