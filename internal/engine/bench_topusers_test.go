package engine

import (
	"context"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"custos/internal/kql"
	"custos/internal/store"
)

// makeZipfUserBatches builds n rows in 16,384-row blocks whose UserId column
// is dictionary-encoded as the store's part blocks are, with users drawn
// from the Zipf distribution of bench/logdata (s 1.1, v 4, over 1,000,000
// users): the shape of bench/peers' "top 10 users" question.
func makeZipfUserBatches(n int) []*store.Batch {
	r := rand.New(rand.NewPCG(7, 11))
	z := rand.NewZipf(r, 1.1, 4, 999_999)
	const block = 16384
	start := store.TicksFromTime(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	var out []*store.Batch
	for off := 0; off < n; off += block {
		m := min(block, n-off)
		b := &store.Batch{Schema: benchSchema, Len: m}
		tg := newVector(store.TypeDatetime, m)
		lv := newVector(store.TypeString, m)
		sv := newVector(store.TypeString, m)
		uv := newVector(store.TypeString, m)
		lat := newVector(store.TypeReal, m)
		msg := newVector(store.TypeString, m)
		codes := map[string]uint32{}
		uv.Codes = make([]uint32, m)
		for i := range m {
			tg.Int[i] = start + int64(off+i)*store.TicksPerMillisecond
			lv.Str[i], sv.Str[i], msg.Str[i] = "info", "svc", "m"
			u := "user-" + strconv.FormatUint(z.Uint64(), 10)
			c, ok := codes[u]
			if !ok {
				c = uint32(len(uv.Dict))
				codes[u] = c
				uv.Dict = append(uv.Dict, u)
			}
			uv.Str[i], uv.Codes[i] = uv.Dict[c], c
		}
		b.Cols = []*store.Vector{tg, lv, sv, uv, lat, msg}
		out = append(out, b)
	}
	return out
}

// BenchmarkTopUsersZipf is bench/peers' "top 10 users" over 1M rows on the
// engine alone (dictionary-encoded blocks, all workers): the group-by over a
// high-cardinality Zipf key, the merge of the workers' tables and top.
func BenchmarkTopUsersZipf(b *testing.B) {
	data := makeZipfUserBatches(1 << 20)
	b.ReportAllocs()
	e := New(Options{})
	const query = "Logs | summarize count() by UserId | top 10 by count_"
	plan, err := kql.Compile(query, kql.MapCatalog{"Logs": benchSchema}, kql.BindOptions{})
	if err != nil {
		b.Fatal(err)
	}
	c0, s0 := processCPU(), processSysCPU()
	for b.Loop() {
		req := &Request{Query: query, Now: time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)}
		x := e.newExecutor(req, store.TicksFromTime(req.Now))
		x.inline = map[string][]*store.Batch{"Logs": data}
		res, err := x.execute(context.Background(), plan)
		if err != nil {
			b.Fatal(err)
		}
		if n := res.Tables[0].Batches[0].Len; n != 10 {
			b.Fatalf("%d rows, want 10", n)
		}
	}
	b.ReportMetric(float64((processCPU()-c0).Nanoseconds())/float64(b.N)/1e6, "cpu-ms/op")
	b.ReportMetric(float64((processSysCPU()-s0).Nanoseconds())/float64(b.N)/1e6, "sys-ms/op")
}

// BenchmarkGroupZipfDict feeds the same 1M dictionary-encoded Zipf users
// through one worker's group table: the hash-table part of top users alone.
func BenchmarkGroupZipfDict(b *testing.B) {
	data := makeZipfUserBatches(1 << 20)
	b.ReportAllocs()
	c0 := processCPU()
	for b.Loop() {
		g := newGroupTable([]store.ColumnType{store.TypeString})
		var out []int32
		for _, bt := range data {
			out = g.ids([]*store.Vector{bt.Col("UserId")}, bt.Len, out)
		}
	}
	b.ReportMetric(float64((processCPU()-c0).Nanoseconds())/float64(b.N)/1e6, "cpu-ms/op")
}
