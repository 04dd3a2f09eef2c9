package engine

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"custos/internal/kql"
	"custos/internal/store"
)

// benchRows is the table size of the end-to-end benchmarks: 10M rows, the
// size the performance targets are stated for (2 cores, warm). Run with
//
//	go test ./internal/engine -run XXX -bench E2E -benchtime 3x
//
// BENCH_ROWS overrides the size for a quicker run.
var benchRows = func() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_ROWS")); err == nil && n > 0 {
		return n
	}
	return 10_000_000
}()

const benchBatch = 65536

var benchSchema = store.Schema{
	{Name: "TimeGenerated", Type: store.TypeDatetime},
	{Name: "Level", Type: store.TypeString},
	{Name: "Service", Type: store.TypeString},
	{Name: "UserId", Type: store.TypeString},
	{Name: "Latency", Type: store.TypeReal},
	{Name: "Message", Type: store.TypeString},
}

// makeBenchBatches builds n synthetic log rows: one row per 10 ms, 4 levels,
// 20 services, 1M distinct users, log-normal-ish latencies, short messages.
func makeBenchBatches(n int) []*store.Batch {
	r := rand.New(rand.NewPCG(1, 2))
	levels := []string{"info", "warning", "error", "debug"}
	services := make([]string, 20)
	for i := range services {
		services[i] = fmt.Sprintf("svc-%02d", i)
	}
	users := make([]string, 1_000_000)
	for i := range users {
		users[i] = fmt.Sprintf("user-%07d", i)
	}
	msgs := []string{"request completed", "cache miss for key", "connection reset by peer", "timeout waiting for upstream", "user logged in"}
	start := store.TicksFromTime(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	var out []*store.Batch
	for off := 0; off < n; off += benchBatch {
		m := min(benchBatch, n-off)
		b := &store.Batch{Schema: benchSchema, Len: m}
		tg := newVector(store.TypeDatetime, m)
		lv := newVector(store.TypeString, m)
		sv := newVector(store.TypeString, m)
		uv := newVector(store.TypeString, m)
		lat := newVector(store.TypeReal, m)
		msg := newVector(store.TypeString, m)
		for i := range m {
			row := off + i
			tg.Int[i] = start + int64(row)*10*store.TicksPerMillisecond
			lv.Str[i] = levels[r.IntN(len(levels))]
			sv.Str[i] = services[r.IntN(len(services))]
			uv.Str[i] = users[r.IntN(len(users))]
			lat.Real[i] = r.ExpFloat64() * 100
			msg.Str[i] = msgs[r.IntN(len(msgs))]
		}
		b.Cols = []*store.Vector{tg, lv, sv, uv, lat, msg}
		out = append(out, b)
	}
	return out
}

var benchData []*store.Batch

func benchBatches(b *testing.B) []*store.Batch {
	if benchData == nil {
		benchData = makeBenchBatches(benchRows)
	}
	return benchData
}

func runInline(b *testing.B, query string, data []*store.Batch) *Result {
	b.Helper()
	e := New(Options{})
	req := &Request{Query: query, Now: time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)}
	plan, err := kql.Compile(query, kql.MapCatalog{"Logs": benchSchema}, kql.BindOptions{})
	if err != nil {
		b.Fatal(err)
	}
	x := e.newExecutor(req, store.TicksFromTime(req.Now))
	x.inline = map[string][]*store.Batch{"Logs": data}
	res, err := x.execute(context.Background(), plan)
	if err != nil {
		b.Fatal(err)
	}
	return res
}

func benchE2E(b *testing.B, query string) {
	data := benchBatches(b)
	b.ReportAllocs()
	b.SetBytes(int64(benchRows) * 8)
	b.ResetTimer()
	for b.Loop() {
		runInline(b, query, data)
	}
}

func BenchmarkE2ESummarizeBinLevel(b *testing.B) {
	benchE2E(b, "Logs | summarize count() by bin(TimeGenerated, 1h), Level")
}

func BenchmarkE2ETopUsers(b *testing.B) {
	benchE2E(b, "Logs | summarize count() by UserId | top 10 by count_")
}

func BenchmarkE2EAvgMaxByService(b *testing.B) {
	benchE2E(b, "Logs | summarize avg(Latency), max(Latency) by Service")
}

func BenchmarkE2EFilterHasCount(b *testing.B) {
	benchE2E(b, `Logs | where Message has "timeout" and Latency > 50 | count`)
}

// Kernel benchmarks over one 64K-row batch.

func kernelBatch() *store.Batch { return makeBenchBatches(benchBatch)[0] }

func benchKernel(b *testing.B, expr string) {
	batch := kernelBatch()
	plan, err := kql.Compile("Logs | where "+expr, kql.MapCatalog{"Logs": benchSchema}, kql.BindOptions{})
	if err != nil {
		b.Fatal(err)
	}
	var f *kql.Filter
	for n := plan.Results[0]; f == nil; {
		switch m := n.(type) {
		case *kql.Filter:
			f = m
		default:
			b.Fatalf("unexpected plan %s", kql.Explain(plan.Results[0]))
		}
	}
	ev := newEvaluator(0)
	if err := ev.prepare(f.Pred); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(batch.Len) * 8)
	for b.Loop() {
		if _, err := ev.eval(f.Pred, batch); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFilterRealGreater(b *testing.B) { benchKernel(b, "Latency > 50.0") }
func BenchmarkFilterStringEq(b *testing.B)    { benchKernel(b, `Level == "error"`) }
func BenchmarkFilterHas(b *testing.B)         { benchKernel(b, `Message has "timeout"`) }
func BenchmarkFilterContains(b *testing.B)    { benchKernel(b, `Message contains "upstream"`) }

func BenchmarkSummarizeByString(b *testing.B) {
	batch := kernelBatch()
	agg := &kql.Aggregate{
		Keys: []kql.NamedScalar{{Name: "Service", X: &kql.ColRef{Name: "Service", T: store.TypeString}}},
		Aggs: []*kql.AggCall{{Name: "count_", Fn: kql.AggCount, T: store.TypeLong}},
	}
	x := New(Options{}).newExecutor(&Request{}, 0)
	b.ReportAllocs()
	b.SetBytes(int64(batch.Len) * 8)
	for b.Loop() {
		s := newAggSink(x, agg)
		if _, err := s.consume(0, batch); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDcountHLL(b *testing.B) {
	batch := kernelBatch()
	users := batch.Col("UserId")
	b.ReportAllocs()
	for b.Loop() {
		h := newHLL(kql.DcountPrecision(1))
		for _, u := range users.Str {
			h.add(hashString(u))
		}
		_ = h.count()
	}
}

// BenchmarkGroupHighCardinality feeds 1M rows of ~630K distinct user IDs
// through one worker's group table: the cost of summarize by a
// high-cardinality string key.
func BenchmarkGroupHighCardinality(b *testing.B) {
	data := makeBenchBatches(1 << 20)
	b.ReportAllocs()
	b.SetBytes(int64(1<<20) * 16)
	for b.Loop() {
		g := newGroupTable([]store.ColumnType{store.TypeString})
		var out []int32
		for _, bt := range data {
			out = g.ids([]*store.Vector{bt.Col("UserId")}, bt.Len, out)
		}
	}
}

// BenchmarkGroupRepeatedKeys feeds the same 1M rows (~630K distinct user
// IDs) eight times through one worker's group table: mostly lookups of keys
// already in a large table, as in summarize by User over 10M rows.
func BenchmarkGroupRepeatedKeys(b *testing.B) {
	data := makeBenchBatches(1 << 20)
	b.ReportAllocs()
	b.SetBytes(int64(8<<20) * 16)
	for b.Loop() {
		g := newGroupTable([]store.ColumnType{store.TypeString})
		var out []int32
		for range 8 {
			for _, bt := range data {
				out = g.ids([]*store.Vector{bt.Col("UserId")}, bt.Len, out)
			}
		}
	}
}

// BenchmarkPercentilesBy20 feeds 1M latencies into 20 groups' digests (the
// update loop of percentiles(Latency, ...) by Service).
func BenchmarkPercentilesBy20(b *testing.B) {
	data := makeBenchBatches(1 << 20)
	b.ReportAllocs()
	b.SetBytes(int64(1<<20) * 8)
	for b.Loop() {
		g := newGroupTable([]store.ColumnType{store.TypeString})
		a := &percentileAgg{t: store.TypeReal, percents: []float64{50, 95, 99}}
		var gids []int32
		for _, bt := range data {
			gids = g.ids([]*store.Vector{bt.Col("Service")}, bt.Len, gids)
			a.update(gids, []*store.Vector{bt.Col("Latency")}, g.n)
		}
		_ = a.result(g.n)
	}
}

// BenchmarkSortFloats compares the T-Digest buffer sort with slices.Sort on
// one buffer of latencies.
func BenchmarkSortFloats(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	src := make([]float64, tdBuffer)
	for i := range src {
		src[i] = math.Round(math.Exp(3+r.NormFloat64())*1000) / 1000
	}
	vs := make([]float64, len(src))
	b.Run("radix", func(b *testing.B) {
		b.SetBytes(int64(len(src)) * 8)
		for b.Loop() {
			copy(vs, src)
			sortFloats(vs)
		}
	})
	b.Run("pdqsort", func(b *testing.B) {
		b.SetBytes(int64(len(src)) * 8)
		for b.Loop() {
			copy(vs, src)
			slices.Sort(vs)
		}
	})
}
