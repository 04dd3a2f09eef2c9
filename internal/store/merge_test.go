package store

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestPickMerge(t *testing.T) {
	parts := func(rows ...int) []*part {
		var out []*part
		for _, r := range rows {
			out = append(out, &part{meta: &partMeta{rows: r}})
		}
		return out
	}
	rowsOf := func(ps []*part) []int {
		var out []int
		for _, p := range ps {
			out = append(out, p.meta.rows)
		}
		return out
	}
	for _, c := range []struct {
		name    string
		rows    []int
		fanout  int
		maxRows int
		want    []int
	}{
		{"four flushes", []int{100, 90, 110, 95}, 4, 1000, []int{90, 95, 100, 110}},
		{"too few", []int{100, 90, 110}, 4, 1000, nil},
		// A merged part is not rewritten with every new flush: the small tier merges alone.
		{"small day merged whole", []int{400, 100, 100, 100, 100}, 4, 10000, []int{100, 100, 100, 100, 400}},
		{"tiers", []int{400, 100, 100, 100, 100}, 4, 700, []int{100, 100, 100, 100}},
		{"big parts wait for their tier", []int{400, 420, 100, 90}, 4, 10000, nil},
		{"second tier", []int{400, 420, 100, 390, 410}, 4, 1700, []int{390, 400, 410, 420}},
		{"row bound", []int{600, 600, 600, 600, 600}, 2, 1300, []int{600, 600}},
		{"final parts stay", []int{1000, 1000, 1000, 1000}, 4, 1000, nil},
		{"empty parts", []int{0, 0, 5, 3}, 4, 1000, nil},
		{"tier of small", []int{0, 0, 1, 3}, 3, 2, []int{0, 0, 1}},
		{"all small", []int{0, 0, 1, 3}, 3, 1000, []int{0, 0, 1, 3}},
	} {
		got := rowsOf(pickMerge(parts(c.rows...), c.fanout, c.maxRows))
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: pickMerge(%v) = %v, want %v", c.name, c.rows, got, c.want)
		}
	}
}

// mergedParts returns the parts of the table's only day.
func partsOf(t *testing.T, db *DB, ref TableRef) []*part {
	t.Helper()
	tb, err := db.lookupTable(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	tb.mu.RLock()
	defer tb.mu.RUnlock()
	var out []*part
	for _, ps := range tb.parts {
		out = append(out, ps...)
	}
	return out
}

// TestCopyMerge: a merge of parts with full blocks copies the blocks (it
// does not re-encode them): the merged part has exactly their blocks, a
// column the table gained after the first flush reads as null in the older
// blocks, every row reads back the same (before and after a reopen), the
// blooms still find terms, and a flipped byte in a copied block fails the
// query with the integrity error.
func TestCopyMerge(t *testing.T) {
	env := newEnv(t)
	opts := func(o *Options) { o.BlockRows = 64; o.MaxPartsPerDay = 2 }
	db := env.open(t, opts)
	ctx := context.Background()
	ref := TableRef{WorkspaceID: testWS, Table: "Copy_CL"}
	base := allTypesSchema[1:]
	if err := db.EnsureTable(ctx, ref, base, 0); err != nil {
		t.Fatal(err)
	}
	commit(t, db, ref, allTypesBatch(0, 256))
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// The table gains a column; older parts lack it.
	if err := db.EnsureTable(ctx, ref, append(slices.Clone(base), Column{"Extra", TypeLong}), 0); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 3; i++ {
		b := allTypesBatch(i*256, 256)
		b.Schema = append(b.Schema, Column{"Extra", TypeLong})
		ev := &Vector{Type: TypeLong}
		for k := range 256 {
			ev.Int = append(ev.Int, int64(i*1000+k))
		}
		b.Cols = append(b.Cols, ev)
		commit(t, db, ref, b)
		if err := db.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	before := partsOf(t, db, ref)
	if len(before) != 3 {
		t.Fatalf("%d parts before the merge; want 3", len(before))
	}
	if !db.copyMergeable(before) {
		t.Fatal("parts of full 64-row blocks are not copy-mergeable")
	}
	blocks := 0
	for _, p := range before {
		blocks += len(p.meta.blocks)
	}
	want, _ := selectRows(t, db, ref, AllTime, SelectHints{})
	if len(want) != 768 {
		t.Fatalf("%d rows before the merge", len(want))
	}
	if err := db.Merge(ctx); err != nil {
		t.Fatal(err)
	}
	after := partsOf(t, db, ref)
	if len(after) != 1 || db.Stats().PartsMerged != 1 {
		t.Fatalf("%d parts, %d merges after the merge; want 1 and 1", len(after), db.Stats().PartsMerged)
	}
	if got := len(after[0].meta.blocks); got != blocks {
		t.Fatalf("merged part has %d blocks; the merged parts had %d (copied blocks)", got, blocks)
	}
	got, _ := selectRows(t, db, ref, AllTime, SelectHints{})
	if !slices.Equal(got, want) {
		t.Fatalf("rows differ after the merge:\n got %v\nwant %v", head(got), head(want))
	}
	if nulls := countContaining(got, "Extra=null"); nulls != 256 {
		t.Fatalf("%d rows with Extra null; want the 256 of the first part", nulls)
	}
	hits, _ := selectRows(t, db, ref, AllTime, SelectHints{Terms: []TermHint{{Column: "S", Term: "300"}}})
	if countContaining(hits, `S="row 300 alpha-Beta"`) != 1 {
		t.Fatalf("term search after the merge found %d rows", len(hits))
	}
	db.Close()

	db = env.open(t, opts)
	got, _ = selectRows(t, db, ref, AllTime, SelectHints{})
	if !slices.Equal(got, want) {
		t.Fatal("rows differ after a reopen")
	}
	path := partsOf(t, db, ref)[0].path
	db.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x10
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	db = env.open(t, opts)
	defer db.Close()
	q, err := db.Querier(ctx, ref, AllTime)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	it := q.Select(ctx, SelectHints{})
	for it.Next() {
	}
	it.Close()
	if !errors.Is(it.Err(), ErrCorrupt) {
		t.Fatalf("query over a tampered merged part: %v; want the integrity error", it.Err())
	}
}

// TestMergeSmallBlocksReencodes: parts made of tiny blocks (a quiet table's
// flushes) are merged by re-encoding, into fewer, fuller blocks.
func TestMergeSmallBlocksReencodes(t *testing.T) {
	env := newEnv(t)
	db := env.open(t, func(o *Options) { o.MaxPartsPerDay = 2 })
	defer db.Close()
	ctx := context.Background()
	ref := TableRef{WorkspaceID: testWS, Table: "Quiet_CL"}
	if err := db.EnsureTable(ctx, ref, allTypesSchema[1:], 0); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		commit(t, db, ref, allTypesBatch(i*10, 10))
		if err := db.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if db.copyMergeable(partsOf(t, db, ref)) {
		t.Fatal("parts of 10-row blocks are copy-mergeable")
	}
	want, _ := selectRows(t, db, ref, AllTime, SelectHints{})
	if err := db.Merge(ctx); err != nil {
		t.Fatal(err)
	}
	ps := partsOf(t, db, ref)
	if len(ps) != 1 || len(ps[0].meta.blocks) != 1 {
		t.Fatalf("after the merge: %d parts, first with %d blocks; want one part of one block", len(ps), len(ps[0].meta.blocks))
	}
	got, _ := selectRows(t, db, ref, AllTime, SelectHints{})
	if !slices.Equal(got, want) {
		t.Fatal("rows differ after the merge")
	}
}

func countContaining(rows []string, sub string) int {
	n := 0
	for _, r := range rows {
		if strings.Contains(r, sub) {
			n++
		}
	}
	return n
}

func head(rows []string) []string { return rows[:min(3, len(rows))] }
