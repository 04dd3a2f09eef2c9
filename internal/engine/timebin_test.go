package engine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"custos/internal/crypt"
	"custos/internal/kql"
	"custos/internal/store"
)

// TestConstTimeBinsDifferential runs summarizes keyed by bin(TimeGenerated,
// size) and bin_at over a real store with small blocks (rows before and
// after the Unix epoch, rows on and one tick either side of bin edges,
// random times, unflushed memtable rows) under many query time ranges, with
// the constant-bin path (timebin.go) on and off, and requires identical
// results and that the path was taken. With the path on, the store is also
// told that TimeGenerated is read only as those bins
// (store.SelectHints.TimeBin) and fills blocks inside one bin instead of
// reading the column; the test requires that too to happen, and never for
// a query that reads TimeGenerated otherwise.
func TestConstTimeBinsDifferential(t *testing.T) {
	dir := t.TempDir()
	key, err := crypt.OpenPlatformKey(filepath.Join(dir, "platform.key"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(store.Options{Dir: filepath.Join(dir, "data"), Keys: key, BlockRows: 40, ReadCacheBytes: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	const ws = "00000000-0000-0000-0000-00000000000b"
	ref := store.TableRef{WorkspaceID: ws, Table: "Logs"}
	schema := store.Schema{{Name: "TimeGenerated", Type: store.TypeDatetime}, {Name: "Level", Type: store.TypeString}, {Name: "N", Type: store.TypeLong}}
	if err := db.EnsureTable(ctx, ref, schema, 0); err != nil {
		t.Fatal(err)
	}
	levels := []string{"Error", "Info", "Warning", ""}
	load := func(times []int64) {
		b := &store.Batch{Schema: schema, Len: len(times)}
		for _, c := range schema {
			b.Cols = append(b.Cols, &store.Vector{Type: c.Type})
		}
		for i, tk := range times {
			b.Cols[0].Int = append(b.Cols[0].Int, tk)
			b.Cols[1].Str = append(b.Cols[1].Str, levels[(i*7)%len(levels)])
			b.Cols[2].Int = append(b.Cols[2].Int, int64(i%11))
		}
		appendCommit(t, db, ref, b)
	}
	h := int64(store.TicksPerHour)
	epoch := int64(0)
	day := store.TicksFromTime(time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC))
	var times []int64
	// Around the epoch: negative ticks, 37 s apart.
	for i := range 900 {
		times = append(times, epoch-3*h+int64(i)*37*store.TicksPerSecond)
	}
	// Hour edges: on the edge, one tick before and after, in runs that
	// fill blocks ending or starting exactly at an edge.
	for k := range int64(30) {
		e := day + k*h
		for j := range int64(13) {
			times = append(times, e-1-j, e+j)
		}
		times = append(times, e)
	}
	// Random times over three days, some blocks within one bin of a
	// small size, most not.
	r := rand.New(rand.NewPCG(7, 11))
	for range 1500 {
		times = append(times, day+r.Int64N(3*store.TicksPerDay))
	}
	load(times[:1200])
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	load(times[1200:])
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var mem []int64 // memtable rows
	for i := range 120 {
		mem = append(mem, day+int64(i)*90*store.TicksPerSecond, epoch-h+int64(i)*store.TicksPerSecond)
	}
	load(mem)

	q, err := db.Querier(ctx, ref, store.AllTime)
	if err != nil {
		t.Fatal(err)
	}
	tables := kql.MapCatalog{"Logs": q.Schema()}
	q.Close()

	sizes := []string{"1tick", "7s", "1m", "5m", "13m", "30m", "1h", "90m", "1d", "2d", "365d"}
	var queries []string
	for _, s := range sizes {
		queries = append(queries,
			fmt.Sprintf("Logs | summarize count() by bin(TimeGenerated, %s)", s),
			fmt.Sprintf("Logs | summarize c = count(), n = sum(N) by B = bin(TimeGenerated, %s), Level", s),
			fmt.Sprintf("Logs | summarize count() by Level, bin(TimeGenerated, %s), N", s),
			fmt.Sprintf("Logs | summarize count() by bin_at(TimeGenerated, %s, datetime(2024-03-01 00:17:03)), Level", s),
			fmt.Sprintf("Logs | summarize count() by bin_at(TimeGenerated, %s, datetime(1969-12-31 23:59:59.9999999))", s),
		)
	}
	queries = append(queries,
		"Logs | where Level == 'Error' | summarize count() by bin(TimeGenerated, 1h)",
		"Logs | where TimeGenerated >= datetime(2024-03-01 05:00) and TimeGenerated < datetime(2024-03-01 09:00) | summarize count() by bin(TimeGenerated, 1h), Level",
		"Logs | where TimeGenerated > datetime(1969-12-31 23:00) | summarize count() by bin(TimeGenerated, 30m)",
		"Logs | extend TimeGenerated = TimeGenerated + 30m | summarize count() by bin(TimeGenerated, 1h)",
		"Logs | project-rename T = TimeGenerated | extend TimeGenerated = T - 1tick | summarize count() by bin(TimeGenerated, 1h)",
		"Logs | summarize count() by H = bin(TimeGenerated, 30m + 30m), D = bin(TimeGenerated, 1d)",
		"Logs | summarize count() by bin(TimeGenerated, 0s)",
		"Logs | summarize count() by bin(TimeGenerated, -1h)",
		"Logs | summarize count() by bin(TimeGenerated, totimespan(''))",
		"Logs | where N > 3 | summarize count() by bin(TimeGenerated, 1h), Level",
		"Logs | project TimeGenerated, Level | summarize count() by bin(TimeGenerated, 5m), Level",
		"Logs | where TimeGenerated != datetime(2024-03-01 05:00) | summarize count() by bin(TimeGenerated, 1h)",
		"Logs | summarize min(TimeGenerated), max(TimeGenerated) by bin(TimeGenerated, 1h)",
		"Logs | summarize count() by bin(TimeGenerated, 1h), T = TimeGenerated",
		"Logs | extend D = dayofweek(TimeGenerated) | summarize count() by bin(TimeGenerated, 1h), D",
	)
	// readsTime: queries whose pipeline reads TimeGenerated other than as
	// the bins: the store must never fill its values for them.
	readsTime := func(q string) bool {
		for _, s := range []string{"TimeGenerated =", "TimeGenerated !=", "min(TimeGenerated)", "= TimeGenerated", "dayofweek", "D = bin"} {
			if strings.Contains(q, s) {
				return true
			}
		}
		return false
	}
	ranges := []store.TimeRange{
		{}, // all time
		{From: day + 5*h, To: day + 9*h},
		{From: day + 5*h - 1, To: day + 9*h + 1},
		{From: day + 5*h + 1, To: day + 9*h - 1},
		{From: epoch - 2*h, To: epoch + 1},
		{From: epoch - h - 1, To: epoch},
		{From: day + 17*h + 12345, To: day + 2*store.TicksPerDay + 7},
	}
	eng := New(Options{})
	var filled int64 // blocks whose TimeGenerated the store filled (TimeBin hint)
	run := func(query string, tr store.TimeRange, off bool) ([]string, int64, error) {
		src := &selectStatsSource{db: db}
		defer func() { filled = src.timeChunksSkipped() }()
		req := &Request{Query: query, Tables: tables, Source: src, WorkspaceID: ws, Now: testNow, Timespan: tr}
		plan, err := kql.Compile(query, tables, kql.BindOptions{})
		if err != nil {
			return nil, 0, err
		}
		x := eng.newExecutor(req, store.TicksFromTime(testNow))
		x.noConstBins = off
		res, err := x.execute(ctx, plan)
		if err != nil {
			return nil, 0, err
		}
		rows := rowsOf(res)
		sort.Strings(rows)
		return rows, x.constBins.Load(), nil
	}
	var taken, skipped int64
	for _, query := range queries {
		for _, tr := range ranges {
			want, off, werr := run(query, tr, true)
			if werr != nil {
				t.Fatalf("%s %v (off): %v", query, tr, werr)
			}
			if off != 0 || filled != 0 {
				t.Fatalf("%s: %d constant bins, %d filled time chunks with the path off", query, off, filled)
			}
			if len(want) == 0 && tr == (store.TimeRange{}) {
				t.Fatalf("%s: no rows", query)
			}
			for round := range 2 { // cold, then with the chunk cache
				got, n, err := run(query, tr, false)
				if err != nil {
					t.Fatalf("%s %v: %v", query, tr, err)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("%s %v (round %d): constant bins give\n%v\nper row\n%v", query, tr, round, head(got), head(want))
				}
				taken += n
				skipped += filled
				if filled != 0 && readsTime(query) {
					t.Fatalf("%s %v: the store filled %d TimeGenerated chunks for a query that reads them", query, tr, filled)
				}
				if strings.Contains(query, "extend TimeGenerated") && n != 0 {
					t.Fatalf("%s: %d constant bins over a computed TimeGenerated", query, n)
				}
			}
		}
	}
	if taken == 0 {
		t.Fatal("no batch took the constant-bin path: the test does not exercise it")
	}
	if skipped == 0 {
		t.Fatal("the store filled no TimeGenerated chunk: the test does not exercise the TimeBin hint")
	}
	t.Logf("%d batches took constant bins, %d blocks' TimeGenerated was filled instead of read", taken, skipped)
}

// selectStatsSource is a *store.DB that keeps the iterators of the Selects
// it serves, to sum their statistics after a query; the iterators are the
// store's own, handed to the engine unchanged.
type selectStatsSource struct {
	db  *store.DB
	mu  sync.Mutex
	its []store.BatchIterator
}

func (s *selectStatsSource) Querier(ctx context.Context, ref store.TableRef, tr store.TimeRange) (store.Querier, error) {
	q, err := s.db.Querier(ctx, ref, tr)
	if err != nil {
		return nil, err
	}
	return &statsQuerier{Querier: q, src: s}, nil
}

func (s *selectStatsSource) timeChunksSkipped() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, it := range s.its {
		if st, ok := it.(store.StatsIterator); ok {
			n += st.Stats().TimeChunksSkipped
		}
	}
	return n
}

type statsQuerier struct {
	store.Querier
	src *selectStatsSource
}

func (q *statsQuerier) Select(ctx context.Context, h store.SelectHints) store.BatchIterator {
	it := q.Querier.Select(ctx, h)
	q.src.mu.Lock()
	q.src.its = append(q.src.its, it)
	q.src.mu.Unlock()
	return it
}

// TestTimeBinHint checks which pipelines tell the store that TimeGenerated
// is read only as constant bins (store.SelectHints.TimeBin).
func TestTimeBinHint(t *testing.T) {
	schema := store.Schema{{Name: "TimeGenerated", Type: store.TypeDatetime}, {Name: "T2", Type: store.TypeDatetime}, {Name: "Level", Type: store.TypeString}, {Name: "N", Type: store.TypeLong}, {Name: "Bag", Type: store.TypeDynamic}}
	h := int64(store.TicksPerHour)
	for _, c := range []struct {
		query string
		want  store.TimeBinHint
	}{
		{"Logs | summarize count() by bin(TimeGenerated, 1h), Level", store.TimeBinHint{Size: h}},
		{"Logs | summarize count() by bin_at(TimeGenerated, 1h, datetime(1970-01-01 00:30))", store.TimeBinHint{Size: h, At: h / 2}},
		{"Logs | where Level == 'Error' and N > 2 | summarize sum(N) by bin(TimeGenerated, 1d)", store.TimeBinHint{Size: 24 * h}},
		{"Logs | where TimeGenerated > datetime(2024-01-01) | summarize count() by bin(TimeGenerated, 1h)", store.TimeBinHint{Size: h}},
		{"Logs | extend M = N * 2 | summarize avg(M) by B = bin(TimeGenerated, 1h)", store.TimeBinHint{Size: h}},
		{"Logs | project TimeGenerated, Level | summarize count() by bin(TimeGenerated, 1h), Level", store.TimeBinHint{Size: h}},
		{"Logs | summarize count() by H = bin(TimeGenerated, 1h), H2 = bin(TimeGenerated, 1h)", store.TimeBinHint{Size: h}},
		// arg_max's * leaves out the key named TimeGenerated.
		{"Logs | summarize arg_max(N, *) by bin(TimeGenerated, 1h)", store.TimeBinHint{Size: h}},
		// TimeGenerated read some other way: no hint.
		{"Logs | summarize count() by H = bin(TimeGenerated, 1h), D = bin(TimeGenerated, 1d)", store.TimeBinHint{}},
		{"Logs | summarize count() by H = bin(TimeGenerated, 1h), TimeGenerated", store.TimeBinHint{}},
		{"Logs | summarize max(TimeGenerated) by bin(TimeGenerated, 1h)", store.TimeBinHint{}},
		{"Logs | summarize arg_max(N, *) by B = bin(TimeGenerated, 1h)", store.TimeBinHint{}},
		{"Logs | summarize arg_min(N, TimeGenerated) by B = bin(TimeGenerated, 1h)", store.TimeBinHint{}},
		{"Logs | summarize countif(TimeGenerated > T2) by bin(TimeGenerated, 1h)", store.TimeBinHint{}},
		{"Logs | where TimeGenerated != T2 | summarize count() by bin(TimeGenerated, 1h)", store.TimeBinHint{}},
		{"Logs | where hourofday(TimeGenerated) == 3 | summarize count() by bin(TimeGenerated, 1h)", store.TimeBinHint{}},
		{"Logs | extend TimeGenerated = T2 | summarize count() by bin(TimeGenerated, 1h)", store.TimeBinHint{}},
		{"Logs | extend TimeGenerated = TimeGenerated + 30m | summarize count() by bin(TimeGenerated, 1h)", store.TimeBinHint{}},
		{"Logs | extend X = TimeGenerated | summarize count() by bin(TimeGenerated, 1h), X", store.TimeBinHint{}},
		{"Logs | summarize count() by bin(T2, 1h)", store.TimeBinHint{}},
		{"Logs | summarize count() by Level", store.TimeBinHint{}},
		{"Logs | summarize count() by bin(TimeGenerated, 0s)", store.TimeBinHint{}},
		{"Logs | mv-expand Bag | summarize count() by bin(TimeGenerated, 1h)", store.TimeBinHint{}},
	} {
		plan, err := kql.Compile(c.query, kql.MapCatalog{"Logs": schema}, kql.BindOptions{})
		if err != nil {
			t.Fatalf("%s: %v", c.query, err)
		}
		x := New(Options{}).newExecutor(&Request{}, 0)
		var agg *kql.Aggregate
		for n := plan.Results[0]; agg == nil && n != nil; {
			switch m := n.(type) {
			case *kql.Aggregate:
				agg = m
			case *kql.Compute:
				n = m.Input
			default:
				n = nil
			}
		}
		if agg == nil {
			t.Fatalf("%s: no aggregation in plan %T", c.query, plan.Results[0])
		}
		x.foldNode(agg)
		if got := timeBinHint(x.pruneScanTimeFilters(split(agg.Input)), agg); got != c.want {
			t.Errorf("%s: hint %+v, want %+v", c.query, got, c.want)
		}
	}
}

// TestTimeBinOf checks which keys count as constant time bins.
func TestTimeBinOf(t *testing.T) {
	schema := store.Schema{{Name: "TimeGenerated", Type: store.TypeDatetime}, {Name: "T2", Type: store.TypeDatetime}, {Name: "S", Type: store.TypeTimespan}}
	for _, c := range []struct {
		key  string
		want bool
	}{
		{"bin(TimeGenerated, 1h)", true},
		{"bin_at(TimeGenerated, 1h, datetime(2024-01-01 00:30))", true},
		{"bin(T2, 1h)", false},
		{"bin(S, 1h)", false},
		{"bin(TimeGenerated, S)", false},
		{"bin(TimeGenerated, 0s)", false},
		{"bin(TimeGenerated, -1h)", false},
		{"floor(TimeGenerated, 1h)", true},
		{"bin_at(TimeGenerated, 1h, T2)", false},
	} {
		plan, err := kql.Compile("Logs | summarize count() by "+c.key, kql.MapCatalog{"Logs": schema}, kql.BindOptions{})
		if err != nil {
			t.Fatalf("%s: %v", c.key, err)
		}
		agg, ok := plan.Results[0].(*kql.Aggregate)
		if !ok {
			t.Fatalf("%s: plan %T", c.key, plan.Results[0])
		}
		x := New(Options{}).newExecutor(&Request{}, 0)
		x.foldNode(agg)
		if _, got := timeBinOf(agg.Keys[0].X); got != c.want {
			t.Errorf("%s: constant time bin %v, want %v", c.key, got, c.want)
		}
	}
}
