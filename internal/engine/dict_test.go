package engine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"custos/internal/kql"
	"custos/internal/store"
)

// withDict returns a copy of v carrying block dictionary codes, with the
// dictionary in a shuffled order so codes differ from first-seen order.
func withDict(v *store.Vector, r *rand.Rand) *store.Vector {
	seen := map[string]bool{}
	var dict []string
	for _, s := range v.Str {
		if !seen[s] {
			seen[s] = true
			dict = append(dict, s)
		}
	}
	r.Shuffle(len(dict), func(i, j int) { dict[i], dict[j] = dict[j], dict[i] })
	code := map[string]uint32{}
	for i, s := range dict {
		code[s] = uint32(i)
	}
	out := &store.Vector{Type: v.Type, Str: v.Str, Dict: dict, Codes: make([]uint32, len(v.Str))}
	for i, s := range v.Str {
		out.Codes[i] = code[s]
	}
	return out
}

func runInlineT(t *testing.T, query string, schema store.Schema, data []*store.Batch) *Result {
	t.Helper()
	e := New(Options{})
	req := &Request{Query: query, Now: time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)}
	plan, err := kql.Compile(query, kql.MapCatalog{"Logs": schema}, kql.BindOptions{})
	if err != nil {
		t.Fatal(err)
	}
	x := e.newExecutor(req, store.TicksFromTime(req.Now))
	x.inline = map[string][]*store.Batch{"Logs": data}
	res, err := x.execute(context.Background(), plan)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// rowsOf flattens a result table into comparable rows.
func rowsOf(res *Result) []string {
	var rows []string
	for _, b := range res.Tables[0].Batches {
		for i := range b.Len {
			row := ""
			for _, c := range b.Cols {
				row += valueAt(c, i).String() + "|"
			}
			rows = append(rows, row)
		}
	}
	return rows
}

// TestGroupByMixedDictBlocks runs group-bys over blocks with and without
// dictionary codes (and a broken code) and checks the results equal those
// over the plain strings.
func TestGroupByMixedDictBlocks(t *testing.T) {
	schema := store.Schema{{Name: "User", Type: store.TypeString}, {Name: "Level", Type: store.TypeString}, {Name: "N", Type: store.TypeLong}}
	r := rand.New(rand.NewPCG(3, 4))
	var plain, mixed []*store.Batch
	for blk := range 12 {
		m := 500 + r.IntN(700)
		u := newVector(store.TypeString, m)
		l := newVector(store.TypeString, m)
		nv := newVector(store.TypeLong, m)
		for i := range m {
			if r.IntN(20) == 0 {
				u.Str[i] = "" // empty strings group like any value
			} else {
				u.Str[i] = fmt.Sprintf("user-%d", r.IntN(300))
			}
			l.Str[i] = []string{"info", "warning", "error"}[r.IntN(3)]
			nv.Int[i] = int64(r.IntN(1000))
		}
		plain = append(plain, &store.Batch{Schema: schema, Len: m, Cols: []*store.Vector{u, l, nv}})
		mu, ml := u, l
		if blk%3 != 2 { // every third block has no dictionary
			mu, ml = withDict(u, r), withDict(l, r)
		}
		if blk == 4 {
			mu.Codes[7] = uint32(len(mu.Dict)) + 5 // out of range: must fall back to Str
		}
		mixed = append(mixed, &store.Batch{Schema: schema, Len: m, Cols: []*store.Vector{mu, ml, nv}})
	}
	for _, q := range []string{
		"Logs | summarize count(), sum(N) by User | order by User asc",
		"Logs | summarize count() by User, Level | order by User asc, Level asc",
		"Logs | summarize count() by User | top 10 by count_ desc, User asc",
		"Logs | summarize c = dcount(User), m = max(N) by Level | order by Level asc",
	} {
		want, got := rowsOf(runInlineT(t, q, schema, plain)), rowsOf(runInlineT(t, q, schema, mixed))
		if len(want) == 0 {
			t.Fatalf("%s: no rows", q)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %v\nwant %v", q, got, want)
		}
	}
}

// TestColDictCodesMatchStrings checks one group table fed the same rows with
// and without codes assigns the same IDs.
func TestColDictCodesMatchStrings(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	a := newGroupTable([]store.ColumnType{store.TypeString})
	b := newGroupTable([]store.ColumnType{store.TypeString})
	for blk := range 8 {
		v := newVector(store.TypeString, 1000)
		for i := range v.Str {
			v.Str[i] = fmt.Sprintf("u%d", r.IntN(400))
		}
		dv := v
		if blk%2 == 0 {
			dv = withDict(v, r)
		}
		ga := append([]int32(nil), a.ids([]*store.Vector{v}, len(v.Str), nil)...)
		gb := b.ids([]*store.Vector{dv}, len(v.Str), nil)
		if !reflect.DeepEqual(ga, gb) {
			t.Fatalf("block %d: group IDs differ", blk)
		}
	}
	if !reflect.DeepEqual(a.keyVectors(), b.keyVectors()) {
		t.Fatal("key vectors differ")
	}
}

// BenchmarkGroupHighCardinalityDict is BenchmarkGroupHighCardinality over
// dictionary-encoded blocks, as the store returns them.
func BenchmarkGroupHighCardinalityDict(b *testing.B) {
	data := makeBenchBatches(1 << 20)
	r := rand.New(rand.NewPCG(7, 8))
	cols := make([]*store.Vector, len(data))
	for i, bt := range data {
		cols[i] = withDict(bt.Col("UserId"), r)
	}
	b.ReportAllocs()
	b.SetBytes(int64(1<<20) * 16)
	for b.Loop() {
		g := newGroupTable([]store.ColumnType{store.TypeString})
		var out []int32
		for i, bt := range data {
			out = g.ids([]*store.Vector{cols[i]}, bt.Len, out)
		}
	}
}

// BenchmarkGroupBlockDict groups 1M rows in store-sized blocks (4262 rows,
// dictionary-encoded as the store does when a block has at most n/4
// distinct values) by a string key, with and without the block codes.
func BenchmarkGroupBlockDict(b *testing.B) {
	const rows, block, distinct = 1 << 20, 4262, 1000
	r := rand.New(rand.NewPCG(9, 10))
	vals := make([]string, distinct)
	for i := range vals {
		vals[i] = fmt.Sprintf("user-%07d", r.IntN(1_000_000))
	}
	var plain, coded []*store.Vector
	for off := 0; off < rows; off += block {
		v := newVector(store.TypeString, min(block, rows-off))
		for i := range v.Str {
			v.Str[i] = vals[r.IntN(distinct)]
		}
		plain = append(plain, v)
		coded = append(coded, withDict(v, r))
	}
	for _, c := range []struct {
		name string
		vs   []*store.Vector
	}{{"strings", plain}, {"codes", coded}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(rows * 16)
			for b.Loop() {
				g := newGroupTable([]store.ColumnType{store.TypeString})
				var out []int32
				for _, v := range c.vs {
					out = g.ids([]*store.Vector{v}, len(v.Str), out)
				}
			}
		})
	}
}
