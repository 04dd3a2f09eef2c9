package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkRecentWindow is the soak's read pattern in small: a table takes
// 32,768 rows a tick (two full blocks), flushed every tick and merged as
// the parts pile up, and after each tick ten queries read the newest eight
// ticks (262,144 rows: TimeGenerated, Level and Host as codes, Latency),
// as alert rules and dashboards over the last minutes do. 60 ticks: 2 M
// rows, ~47 MB of decoded narrow columns, through a 16 MiB cache (the
// window is 6.3 MB). It reports the process CPU seconds of the queries
// (query-cpu-s) and of everything (cpu-s) per run, and the share of chunk
// reads the cache answered (cache-hit-%), and the cache's memory at the end
// (cache-MiB-end: with 256 MiB, more than all the data, it shows whether the
// cache holds the window or everything ever read).
//
//	go test ./internal/store -run '^$' -bench RecentWindow -benchtime 1x -count 3
func BenchmarkRecentWindow(b *testing.B) {
	for _, c := range []struct {
		name  string
		bytes int64
	}{{"cache=off", 0}, {"cache=4MiB", 4 << 20}, {"cache=16MiB", 16 << 20}, {"cache=256MiB", 256 << 20}} {
		b.Run(c.name, func(b *testing.B) {
			var qcpu, cpu time.Duration
			var hits, reads, held float64
			for range b.N {
				q, all, h, r, m := runRecentWindow(b, c.bytes)
				held += m
				qcpu += q
				cpu += all
				hits += h
				reads += r
			}
			b.ReportMetric(qcpu.Seconds()/float64(b.N), "query-cpu-s")
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s")
			if reads > 0 {
				b.ReportMetric(100*hits/reads, "cache-hit-%")
				b.ReportMetric(held/float64(b.N)/(1<<20), "cache-MiB-end")
			}
		})
	}
}

var rwSchema = Schema{{"TimeGenerated", TypeDatetime}, {"Level", TypeString}, {"Host", TypeString}, {"Latency", TypeReal}, {"Status", TypeLong}}

func rwBatch(lo, n int) *Batch {
	b := &Batch{Schema: rwSchema, Len: n}
	for _, c := range rwSchema {
		b.Cols = append(b.Cols, &Vector{Type: c.Type})
	}
	levels := []string{"Information", "Warning", "Error", "Verbose"}
	for i := lo; i < lo+n; i++ {
		b.Cols[0].Int = append(b.Cols[0].Int, TicksFromTime(baseTime)+int64(i)*TicksPerSecond/1000)
		b.Cols[1].Str = append(b.Cols[1].Str, levels[(i*7)%len(levels)])
		b.Cols[2].Str = append(b.Cols[2].Str, fmt.Sprintf("web-%d", (i*31)%500))
		b.Cols[3].Real = append(b.Cols[3].Real, float64(i%997)/10)
		b.Cols[4].Int = append(b.Cols[4].Int, int64(200+(i%7)*50))
	}
	return b
}

func runRecentWindow(b *testing.B, cacheBytes int64) (queryCPU, allCPU time.Duration, hits, reads, held float64) {
	b.Helper()
	dir := b.TempDir()
	db, err := Open(Options{Dir: filepath.Join(dir, "data"), Keys: testKeys(b, dir), DisableBackground: true, ReadCacheBytes: cacheBytes})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	ref := TableRef{WorkspaceID: testWS, Table: "Bench_CL"}
	if err := db.EnsureTable(ctx, ref, rwSchema, 0); err != nil {
		b.Fatal(err)
	}
	const tick, ticks, window, queries = 32768, 60, 8, 10
	hints := SelectHints{Columns: []string{"TimeGenerated", "Level", "Host", "Latency"}, CodesOnly: []string{"Level", "Host"}}
	batches := make([]*Batch, ticks)
	for i := range batches {
		batches[i] = rwBatch(i*tick, tick)
	}
	start := processCPU(b)
	var blocks int64
	b.ResetTimer()
	for i := range ticks {
		commit(b, db, ref, batches[i])
		if err := db.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		if err := db.Merge(ctx); err != nil {
			b.Fatal(err)
		}
		lo := max(i+1-window, 0) * tick
		tr := TimeRange{From: TicksFromTime(baseTime) + int64(lo)*TicksPerSecond/1000, To: TicksFromTime(baseTime) + int64((i+1)*tick)*TicksPerSecond/1000}
		q0 := processCPU(b)
		for range queries {
			n, st := windowRows(b, db, ref, tr, hints)
			if n != (i+1)*tick-lo {
				b.Fatalf("tick %d: %d rows in the window, want %d", i, n, (i+1)*tick-lo)
			}
			blocks += st.BlocksRead
		}
		queryCPU += processCPU(b) - q0
	}
	b.StopTimer()
	allCPU = processCPU(b) - start
	st := db.ReadCacheStats()
	return queryCPU, allCPU, float64(st.Hits), float64(st.Hits + st.Misses), float64(st.Bytes)
}

// windowRows reads every batch of a Select over tr and returns the row count and the Select's statistics.
func windowRows(b *testing.B, db *DB, ref TableRef, tr TimeRange, h SelectHints) (int, SelectStats) {
	ctx := context.Background()
	q, err := db.Querier(ctx, ref, tr)
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	it := q.Select(ctx, h)
	defer it.Close()
	n := 0
	for it.Next() {
		n += it.Batch().Len
	}
	if err := it.Err(); err != nil {
		b.Fatal(err)
	}
	return n, it.(StatsIterator).Stats()
}

// BenchmarkCacheHit measures warm reads answered by the decoded-chunk cache
// alone: 16 blocks of 4,096 rows flushed into one part, read twice to admit
// every chunk and once more, then each op reads the same window again
// (TimeGenerated over part of it, so the time cut runs, Level and Host as
// codes, Latency and Status) — the work of a warm last-hour query in the
// store. B/op is what a hit costs the Go heap.
//
//	go test ./internal/store -run '^$' -bench CacheHit -benchmem
func BenchmarkCacheHit(b *testing.B) {
	dir := b.TempDir()
	db, err := Open(Options{Dir: filepath.Join(dir, "data"), Keys: testKeys(b, dir), DisableBackground: true, ReadCacheBytes: 64 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	ref := TableRef{WorkspaceID: testWS, Table: "Bench_CL"}
	if err := db.EnsureTable(ctx, ref, rwSchema, 0); err != nil {
		b.Fatal(err)
	}
	const rows = 16 * 4096
	commit(b, db, ref, rwBatch(0, rows))
	if err := db.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	tr := TimeRange{From: TicksFromTime(baseTime) + 1000*TicksPerSecond/1000, To: TicksFromTime(baseTime) + (rows-1000)*TicksPerSecond/1000}
	for _, c := range []struct {
		name  string
		hints SelectHints
	}{
		{"time+codes", SelectHints{Columns: []string{"TimeGenerated", "Level", "Host"}, CodesOnly: []string{"Level", "Host"}}},
		{"time+str+num", SelectHints{Columns: []string{"TimeGenerated", "Level", "Latency", "Status"}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for range 4 {
				if n, _ := windowRows(b, db, ref, tr, c.hints); n != rows-2000 {
					b.Fatalf("%d rows, want %d", n, rows-2000)
				}
			}
			h0 := db.ReadCacheStats()
			c0 := processCPU(b)
			b.ResetTimer()
			for range b.N {
				windowRows(b, db, ref, tr, c.hints)
			}
			b.StopTimer()
			h1 := db.ReadCacheStats()
			if h1.Misses != h0.Misses {
				b.Fatalf("%d cache misses in the warm reads", h1.Misses-h0.Misses)
			}
			b.ReportMetric(float64(processCPU(b)-c0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkPackFresh measures the packing of one 4,096-row string block for
// the cache at flush time: from the encoder's encoding (its dictionary and
// codes, as flushes do) against building a dictionary of its own
// (buildDict, as they did). The encoding itself is not timed.
//
//	go test ./internal/store -run '^$' -bench PackFresh -benchmem
func BenchmarkPackFresh(b *testing.B) {
	vecs := freshVecs()
	for _, c := range []struct {
		name string
		v    *Vector
	}{{"level", vecs[0]}, {"user1500", vecs[1]}, {"host40+nulls", vecs[2]}} {
		raw, _, _ := encodeChunk(nil, c.v, 0, c.v.Len(), true, true)
		for _, m := range []struct {
			name string
			raw  []byte
		}{{"encoder-dict", raw}, {"own-dict", nil}} {
			b.Run(c.name+"/"+m.name, func(b *testing.B) {
				for range b.N {
					if _, ok := packFresh(c.v, 1<<30, m.raw); !ok {
						b.Fatal("not packed")
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(c.v.Len()), "ns/row")
			})
		}
	}
}
