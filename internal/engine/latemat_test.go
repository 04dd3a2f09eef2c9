package engine

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"custos/internal/crypt"
	"custos/internal/kql"
	"custos/internal/store"
)

// codesSource is a real store seen through the engine's Source with the
// late materialization of dictionary strings either on (the store's answer
// as it is; Select calls asking for codes-only columns and codes-only
// vectors are counted) or off (the hint dropped and every vector stripped
// of its dictionary codes: the engine sees plain strings only, as before
// dictionaries existed).
type codesSource struct {
	db  *store.DB
	off bool
	// eager drops only the hint: vectors keep Str and their codes, as the
	// store returned them before codes-only vectors existed.
	eager      bool
	asked      atomic.Int64 // Select calls with CodesOnly
	codesBatch atomic.Int64 // batches with a codes-only vector
}

func (s *codesSource) Querier(ctx context.Context, t store.TableRef, tr store.TimeRange) (store.Querier, error) {
	q, err := s.db.Querier(ctx, t, tr)
	if err != nil {
		return nil, err
	}
	return &codesQuerier{Querier: q, src: s}, nil
}

type codesQuerier struct {
	store.Querier
	src *codesSource
}

func (q *codesQuerier) Select(ctx context.Context, h store.SelectHints) store.BatchIterator {
	if q.src.off || q.src.eager {
		h.CodesOnly = nil
	} else if len(h.CodesOnly) > 0 {
		q.src.asked.Add(1)
	}
	return &codesIter{BatchIterator: q.Querier.Select(ctx, h), src: q.src}
}

type codesIter struct {
	store.BatchIterator
	src *codesSource
}

func (it *codesIter) Stable() bool {
	s, ok := it.BatchIterator.(interface{ Stable() bool })
	return ok && s.Stable()
}

func (it *codesIter) Batch() *store.Batch {
	b := it.BatchIterator.Batch()
	if b == nil {
		return nil
	}
	if it.src.eager {
		return b
	}
	if !it.src.off {
		if slices.ContainsFunc(b.Cols, (*store.Vector).CodesOnly) {
			it.src.codesBatch.Add(1)
		}
		return b
	}
	out := &store.Batch{Schema: b.Schema, Len: b.Len}
	for _, v := range b.Cols {
		c := *v
		c.Dict, c.Codes = nil, nil
		out.Cols = append(out.Cols, &c)
	}
	return out
}

// TestLateMaterializationDifferential runs a broad set of queries over
// dictionary-coded string columns (filters of every dictionary predicate,
// negations, nulls of the predicate, empty strings, case-insensitive
// comparisons, group-bys, dcount, joins, sorts, projections and renames)
// against a real store with the codes-only path on and off, cold and with
// the chunk cache warm, and requires identical results.
func TestLateMaterializationDifferential(t *testing.T) {
	dir := t.TempDir()
	key, err := crypt.OpenPlatformKey(filepath.Join(dir, "platform.key"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(store.Options{Dir: filepath.Join(dir, "data"), Keys: key, ReadCacheBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	const ws = "00000000-0000-0000-0000-00000000000a"
	ref := store.TableRef{WorkspaceID: ws, Table: "Logs"}
	schema := store.Schema{
		{Name: "TimeGenerated", Type: store.TypeDatetime}, {Name: "Level", Type: store.TypeString},
		{Name: "Host", Type: store.TypeString}, {Name: "User", Type: store.TypeString},
		{Name: "Msg", Type: store.TypeString}, {Name: "N", Type: store.TypeLong},
	}
	if err := db.EnsureTable(ctx, ref, schema, 0); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	levels := []string{"Error", "error", "", "Warning", "Info", "ERROR", "Info", "Info"}
	load := func(lo, n int) {
		b := &store.Batch{Schema: schema, Len: n}
		for _, c := range schema {
			b.Cols = append(b.Cols, &store.Vector{Type: c.Type})
		}
		for i := lo; i < lo+n; i++ {
			b.Cols[0].Int = append(b.Cols[0].Int, store.TicksFromTime(base.Add(time.Duration(i)*7*time.Second)))
			b.Cols[1].Str = append(b.Cols[1].Str, levels[(i*7)%len(levels)])
			b.Cols[2].Str = append(b.Cols[2].Str, fmt.Sprintf("web-%d", i%13))
			b.Cols[3].Str = append(b.Cols[3].Str, fmt.Sprintf("user%03d", (i*31)%97))
			b.Cols[4].Str = append(b.Cols[4].Str, fmt.Sprintf("request %d from web-%d failed", i, i%5))
			b.Cols[5].Int = append(b.Cols[5].Int, int64(i%17))
		}
		appendCommit(t, db, ref, b)
	}
	load(0, 1500)
	load(1500, 1200)
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	load(2700, 300) // memtable rows: plain strings
	q, err := db.Querier(ctx, ref, store.AllTime)
	if err != nil {
		t.Fatal(err)
	}
	tables := kql.MapCatalog{"Logs": q.Schema()}
	q.Close()

	queries := []string{
		"Logs | where Host == 'web-3' and Level == 'Error' | project AlertRow__ = true",
		"Logs | where Host == 'web-3' and Level == 'Error' | count",
		"Logs | where Level != 'Info' | summarize count() by Level",
		"Logs | where Level =~ 'error' | summarize count() by Level, Host",
		"Logs | where Level !~ 'ERROR' | summarize count() by Host | order by Host asc",
		"Logs | where Level in ('Error', 'Warning') | count",
		"Logs | where Level !in ('Error', 'Warning', '') | summarize count() by Level",
		"Logs | where Level in~ ('error') | summarize count() by Level",
		"Logs | where Level !in~ ('error', 'info') | summarize count() by Level",
		"Logs | where Level == '' | summarize count() by Host",
		"Logs | where Host > 'web-5' and Level <= 'Info' | summarize count() by Host, Level",
		"Logs | where isempty(Level) | summarize count() by Host",
		"Logs | where Level != '' and Host startswith 'web-1' | summarize count() by Host, Level",
		"Logs | where Host has 'web' and Host !has 'web-4' | summarize count() by Host",
		"Logs | where Host contains '-1' or User endswith '7' | summarize count() by Host",
		"Logs | where Host !contains '1' | summarize c = count() by Host | order by Host asc",
		"Logs | where Host hasprefix 'web' and Host hassuffix '2' | count",
		"Logs | where Host matches regex 'web-1[0-2]' | summarize count() by Host",
		"Logs | where Host startswith_cs 'web-1' and Host !startswith 'web-12' | summarize count() by Host",
		"Logs | where User == 'user001' | project User, Host, Level, N | order by N asc, Host asc",
		"Logs | where Level == 'Error' | project TimeGenerated, Host, Level | order by TimeGenerated asc | take 20",
		"Logs | where Level == 'Error' | extend H = Host | where H == 'web-2' | project H, Level, N",
		"Logs | project L = Level, H = Host | where L == 'Info' and H in ('web-1', 'web-2') | summarize count() by H",
		"Logs | where not(Level == 'Info') | summarize count() by Level",
		"Logs | where iff(Level == 'Error', true, Host == 'web-0') | summarize count() by Level, Host",
		"Logs | where Level == tostring(Host) | count",
		"Logs | where strlen(Level) > 4 | summarize count() by Level",
		"Logs | summarize count() by User | top 10 by count_ desc, User asc",
		"Logs | summarize count() by bin(TimeGenerated, 1h), Level",
		"Logs | summarize dcount(User) by Level",
		"Logs | summarize dcount(User)",
		"Logs | where Host == 'web-1' | summarize dcount(User), dcountif(Level, User startswith 'user0') by bin(TimeGenerated, 30m)",
		"Logs | summarize dcount(strcat(User, 'x')) by Level",
		"Logs | summarize dcount(Host), countif(Level == 'Error') by bin(TimeGenerated, 1h)",
		"Logs | where Level == 'Warning' | summarize s = make_set(Host) by Level | project Level, s = array_sort_asc(s)",
		"Logs | where Level == 'Error' | summarize arg_max(N, Host) by User | order by User asc | take 15",
		"Logs | where Level == 'Warning' | join kind=inner (Logs | where Level == 'Error' | summarize e = count() by Host) on Host | summarize count() by Host, e",
		"Logs | where Level == 'Error' | distinct Host, Level",
		"Logs | where Level == 'Error' | sort by Host asc, N desc | take 7",
		"Logs | where Host == 'web-5' | extend u = toupper(User) | summarize count() by u",
		"Logs | where Level == 'Info' | project-away Msg | take 5 | count",
		"Logs | where Msg has 'web-2' and Level == 'Info' | summarize count() by Host",
		"Logs | where TimeGenerated > datetime(2024-01-01 03:00) and Level == 'Error' | summarize count() by Host",
		"Logs | where Level == 'Error' | summarize by Host | order by Host asc",
		"Logs | where Level in ('nothing') | summarize count() by Host",
		"Logs | where Host == 'web-3' | summarize any(Level) by Host",
		"Logs | where Level == 'Error' | evaluate bag_unpack(pack('h', Host)) | count",
		"Logs | where Level == 'Error' | mv-expand x = pack_array(Host, User) | summarize count() by tostring(x) | count",
		"Logs | where Level == 'Error' | parse Msg with 'request ' id:long ' from ' rest | summarize count() by Host | count",
	}
	on := &codesSource{db: db}
	off := &codesSource{db: db, off: true}
	eng := New(Options{})
	run := func(src store.Queryable, query string) ([]string, error) {
		res, err := eng.Query(ctx, Request{Query: query, Tables: tables, Source: src, WorkspaceID: ws, Now: testNow})
		if err != nil {
			return nil, err
		}
		rows := rowsOf(res)
		if !strings.Contains(query, "order by") && !strings.Contains(query, "sort by") {
			sort.Strings(rows)
		}
		return rows, nil
	}
	for _, query := range queries {
		want, werr := run(off, query)
		// Cold, admitted to the chunk cache, warm.
		for round := range 3 {
			got, err := run(on, query)
			if (err != nil) != (werr != nil) || (err != nil && err.Error() != werr.Error()) {
				t.Fatalf("%s (round %d): error %v, without codes-only %v", query, round, err, werr)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%s (round %d): codes-only gives\n%v\nwithout\n%v", query, round, head(got), head(want))
			}
		}
	}
	if on.asked.Load() == 0 || on.codesBatch.Load() == 0 {
		t.Fatalf("no codes-only column asked for (%d) or returned (%d): the test does not exercise the path", on.asked.Load(), on.codesBatch.Load())
	}
	// The soak's alert query asks for both its columns codes-only.
	for _, c := range []struct {
		query string
		want  []string
	}{
		{"Logs | where Host == 'web-3' and Level == 'Error' | project AlertRow__ = true", []string{"Level", "Host"}},
		{"Logs | summarize count() by User", []string{"User"}},
		{"Logs | summarize count() by bin(TimeGenerated, 1h), Level", []string{"Level"}},
		{"Logs | where Level == tostring(Host) | count", []string{}},
		{"Logs | where strlen(Level) > 4 | project Host, Msg", []string{"Host", "Msg"}},
		{"Logs | summarize dcount(User) by Level", []string{"Level", "User"}},
		{"Logs | summarize dcountif(User, Host == 'web-1'), dcount(Host) by bin(TimeGenerated, 1h)", []string{"Host", "User"}},
		{"Logs | summarize dcount(strcat(User, 'x')) by Level", []string{"Level"}},
		{"Logs | extend H = Host | where H == 'web-2' | project x = strcat(H, 'a')", nil},
		{"Logs | mv-expand x = pack_array(Host) | count", nil},
	} {
		plan, err := kql.Compile(c.query, tables, kql.BindOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var agg *kql.Aggregate
		n := plan.Results[0]
		if a, ok := n.(*kql.Aggregate); ok {
			agg, n = a, a.Input
		}
		p := split(n)
		if _, ok := p.base.(*kql.Scan); !ok {
			t.Fatalf("%s: pipeline base %T, want a scan", c.query, p.base)
		}
		got, _ := codesOnlyColumns(p, agg)
		var names []string
		for _, g := range got {
			if g == "Level" || g == "Host" || g == "User" || g == "Msg" {
				names = append(names, g)
			}
		}
		slices.Sort(names)
		want := slices.Clone(c.want)
		slices.Sort(want)
		if !slices.Equal(names, want) && !(len(names) == 0 && len(want) == 0) {
			t.Errorf("%s: codes-only columns %v, want %v", c.query, names, want)
		}
	}
}

func head(rows []string) []string {
	if len(rows) > 12 {
		return append(rows[:12:12], fmt.Sprintf("... %d rows", len(rows)))
	}
	return rows
}

// TestDictLeaf checks the per-dictionary-entry evaluation of every
// dictionary predicate on codes-only vectors against the row-by-row kernels
// on the same strings: a small dictionary (evaluated per entry), a
// dictionary larger than the batch and a vector with nulls (both
// materialized), a null constant (a null result per row) and the empty
// string.
func TestDictLeaf(t *testing.T) {
	col := &kql.ColRef{Name: "S", T: store.TypeString}
	str := func(s string) kql.Scalar { return &kql.Const{V: kql.Value{Type: store.TypeString, Str: s}} }
	null := &kql.Const{V: kql.Value{Type: store.TypeString, Null: true}}
	call := func(fn kql.FuncID, args ...kql.Scalar) *kql.FnCall {
		return &kql.FnCall{Fn: fn, Args: args, T: store.TypeBool}
	}
	preds := []*kql.FnCall{
		call(kql.OpEq, col, str("b")), call(kql.OpEq, str("b"), col), call(kql.OpNe, col, str("")),
		call(kql.OpEq, col, null), call(kql.OpNe, null, col), call(kql.OpLt, col, str("b")), call(kql.OpGe, str("b"), col),
		call(kql.OpEqCI, col, str("B")), call(kql.OpNeCI, col, str("a b")),
		call(kql.OpIn, col, str("b"), str(""), null), call(kql.OpInCI, col, str("A B")),
		call(kql.OpHas, col, str("b")), call(kql.OpHasCS, col, str("B")), call(kql.OpContains, col, str("a")),
		call(kql.OpStartsWith, col, str("A")), call(kql.OpEndsWithCS, col, str("b")),
		call(kql.OpHasPrefix, col, str("a")), call(kql.OpHasSuffixCS, col, str("b")),
		call(kql.OpMatchesRegex, col, str("^a.b$")),
	}
	dict := []string{"a b", "b", "", "A B", "B", "x"}
	codes := []uint32{1, 0, 2, 2, 3, 4, 1, 5, 0, 3, 4, 2, 1, 1}
	n := len(codes)
	plain := make([]string, n)
	for i, c := range codes {
		plain[i] = dict[c]
	}
	cases := []struct {
		name  string
		v     *store.Vector
		rows  int
		nulls []bool
	}{
		{"per entry", &store.Vector{Type: store.TypeString, Dict: dict, Codes: codes}, n, nil},
		{"dictionary larger than the batch", &store.Vector{Type: store.TypeString, Dict: dict, Codes: codes[:4]}, 4, nil},
		{"nulls", &store.Vector{Type: store.TypeString, Dict: dict, Codes: codes, Nulls: make([]bool, n)}, n, make([]bool, n)},
	}
	cases[2].v.Nulls[3], cases[2].nulls[3] = true, true
	for _, c := range cases {
		for _, p := range preds {
			ev := newEvaluator(0)
			if err := ev.prepare(p); err != nil {
				t.Fatal(err)
			}
			if _, ok := dictLeafCol(p); !ok {
				t.Fatalf("%s: not a dictionary predicate", p)
			}
			schema := store.Schema{{Name: "S", Type: store.TypeString}}
			got, err := ev.eval(p, &store.Batch{Schema: schema, Cols: []*store.Vector{c.v}, Len: c.rows})
			if err != nil {
				t.Fatalf("%s, %s: %v", c.name, p, err)
			}
			want, err := ev.eval(p, &store.Batch{Schema: schema, Cols: []*store.Vector{{Type: store.TypeString, Str: plain[:c.rows], Nulls: c.nulls}}, Len: c.rows})
			if err != nil {
				t.Fatal(err)
			}
			for i := range c.rows {
				if got.Bool[i] != want.Bool[i] || got.IsNull(i) != want.IsNull(i) {
					t.Fatalf("%s, %s, row %d (%q): got %v null %v, want %v null %v", c.name, p, i, plain[i], got.Bool[i], got.IsNull(i), want.Bool[i], want.IsNull(i))
				}
			}
		}
	}
}

// TestCodesOnlyBrokenCode checks that a codes-only vector with a code
// outside its dictionary (a broken block the store would refuse) gives an
// error in a predicate and in materialization, never a panic.
func TestCodesOnlyBrokenCode(t *testing.T) {
	v := &store.Vector{Type: store.TypeString, Dict: []string{"a", "b"}, Codes: []uint32{0, 1, 7, 1, 0}}
	p := &kql.FnCall{Fn: kql.OpEq, Args: []kql.Scalar{&kql.ColRef{Name: "S", T: store.TypeString}, &kql.Const{V: kql.Value{Type: store.TypeString, Str: "a"}}}, T: store.TypeBool}
	ev := newEvaluator(0)
	b := &store.Batch{Schema: store.Schema{{Name: "S", Type: store.TypeString}}, Cols: []*store.Vector{v}, Len: 5}
	if _, err := ev.eval(p, b); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Fatalf("predicate over a broken code: %v", err)
	}
	b.Len = 1 // dictionary larger than the batch: materialized, the broken row not reached
	if out, err := ev.eval(p, b); err != nil || !out.Bool[0] {
		t.Fatalf("one good row: %v %v", out, err)
	}
	if _, err := materialize(v, 5); err == nil {
		t.Fatal("materialized a broken code")
	}
	if _, err := materializeBatch(&store.Batch{Schema: b.Schema, Cols: b.Cols, Len: 5}, nil); err == nil {
		t.Fatal("materialized a batch with a broken code")
	}
	// Group-by and dcount read a broken code as the empty string.
	d := newColDict(store.TypeString)
	ids := d.ids(v, 5, nil)
	if got := d.vector().Str; !slices.Equal(got, []string{"a", "b", ""}) || !slices.Equal(ids, []uint32{0, 1, 2, 1, 0}) {
		t.Fatalf("group keys %q ids %v", got, ids)
	}
	a := &dcountAgg{p: 14, exact: 100}
	a.update([]int32{0, 0, 0, 0, 0}, []*store.Vector{v}, 1)
	a2 := &dcountAgg{p: 14, exact: 100}
	a2.update([]int32{0, 1, 0, 1, 0}, []*store.Vector{v}, 2)
	if got := a.sets[0].count(); got != 3 {
		t.Fatalf("dcount over a broken code: %d, want 3", got)
	}
	if g0, g1 := a2.sets[0].count(), a2.sets[1].count(); g0 != 2 || g1 != 1 {
		t.Fatalf("dcount by group over a broken code: %d and %d, want 2 and 1", g0, g1)
	}
}

// BenchmarkLateMaterialization runs the soak's alert query and bench/peers'
// count by hour and top users over 240,000 rows of a real store with the
// chunk cache warm, with codes-only columns (codes) and with the hint
// dropped (eager: every dictionary chunk unpacked with a string per row).
// Compare allocs and B/op; ns/op on a shared machine drifts.
func BenchmarkLateMaterialization(b *testing.B) {
	dir := b.TempDir()
	key, err := crypt.OpenPlatformKey(filepath.Join(dir, "platform.key"))
	if err != nil {
		b.Fatal(err)
	}
	db, err := store.Open(store.Options{Dir: filepath.Join(dir, "data"), Keys: key, ReadCacheBytes: 256 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	const ws = "00000000-0000-0000-0000-00000000000b"
	ref := store.TableRef{WorkspaceID: ws, Table: "Bench_CL"}
	schema := store.Schema{{Name: "TimeGenerated", Type: store.TypeDatetime}, {Name: "Level", Type: store.TypeString},
		{Name: "Host", Type: store.TypeString}, {Name: "User", Type: store.TypeString}, {Name: "Latency", Type: store.TypeLong}}
	if err := db.EnsureTable(ctx, ref, schema, 0); err != nil {
		b.Fatal(err)
	}
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for part := range 4 {
		bt := &store.Batch{Schema: schema, Len: 60_000}
		for _, c := range schema {
			bt.Cols = append(bt.Cols, &store.Vector{Type: c.Type})
		}
		for k := range 60_000 {
			i := part*60_000 + k
			bt.Cols[0].Int = append(bt.Cols[0].Int, store.TicksFromTime(base.Add(time.Duration(i)*50*time.Millisecond)))
			bt.Cols[1].Str = append(bt.Cols[1].Str, []string{"Info", "Info", "Info", "Warning", "Error", "Debug"}[(i*7)%6])
			bt.Cols[2].Str = append(bt.Cols[2].Str, fmt.Sprintf("web-%d", (i*13)%200))
			bt.Cols[3].Str = append(bt.Cols[3].Str, fmt.Sprintf("user%05d", (i*31)%5000))
			bt.Cols[4].Int = append(bt.Cols[4].Int, int64(i%1000))
		}
		appendCommit(b, db, ref, bt)
		if err := db.Flush(ctx); err != nil {
			b.Fatal(err)
		}
	}
	q, err := db.Querier(ctx, ref, store.AllTime)
	if err != nil {
		b.Fatal(err)
	}
	tables := kql.MapCatalog{"Bench_CL": q.Schema()}
	q.Close()
	eng := New(Options{})
	for _, qc := range []struct{ name, query string }{
		{"alert", "Bench_CL | where Host == 'web-7' and Level == 'Error' | project AlertRow__ = true"},
		{"countByHour", "Bench_CL | summarize count() by bin(TimeGenerated, 1h), Level"},
		{"topUsers", "Bench_CL | summarize count() by User | top 10 by count_"},
	} {
		for _, mode := range []string{"codes", "eager"} {
			src := &codesSource{db: db, eager: mode == "eager"}
			run := func() {
				if _, err := eng.Query(ctx, Request{Query: qc.query, Tables: tables, Source: src, WorkspaceID: ws, Now: testNow}); err != nil {
					b.Fatal(err)
				}
			}
			run()
			run() // the chunks are admitted to the cache on their second read
			b.Run(qc.name+"/"+mode, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					run()
				}
			})
		}
	}
}
