package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"custos/internal/crypt"
	"custos/internal/kql"
	"custos/internal/store"
	"custos/internal/workload"
)

// slotsEnv is a real store and an engine sharing one pool of query worker
// slots, as the server wires them.
func slotsEnv(t *testing.T, pool *workload.Pool) (*Engine, *store.DB, kql.Catalog, string) {
	t.Helper()
	dir := t.TempDir()
	key, err := crypt.OpenPlatformKey(filepath.Join(dir, "platform.key"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(store.Options{Dir: filepath.Join(dir, "data"), Keys: key, BlockRows: 50,
		QueryWorkers: 4, QuerySlots: pool, DisableBackground: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()
	const ws = "00000000-0000-0000-0000-0000000000c1"
	ref := store.TableRef{WorkspaceID: ws, Table: "Logs"}
	schema := store.Schema{{Name: "TimeGenerated", Type: store.TypeDatetime}, {Name: "Level", Type: store.TypeString},
		{Name: "Host", Type: store.TypeString}, {Name: "N", Type: store.TypeLong}}
	if err := db.EnsureTable(ctx, ref, schema, 0); err != nil {
		t.Fatal(err)
	}
	base := store.TicksFromTime(testNow.Add(-2 * time.Hour))
	levels := []string{"Error", "Info", "Warning"}
	load := func(lo, n int) {
		b := &store.Batch{Schema: schema, Len: n}
		for _, c := range schema {
			b.Cols = append(b.Cols, &store.Vector{Type: c.Type})
		}
		for i := lo; i < lo+n; i++ {
			b.Cols[0].Int = append(b.Cols[0].Int, base+int64(i)*store.TicksPerSecond)
			b.Cols[1].Str = append(b.Cols[1].Str, levels[i%3])
			b.Cols[2].Str = append(b.Cols[2].Str, fmt.Sprintf("web-%d", i%17))
			b.Cols[3].Int = append(b.Cols[3].Int, int64(i%101))
		}
		appendCommit(t, db, ref, b)
	}
	load(0, 3000)
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	load(3000, 400) // memtable rows
	q, err := db.Querier(ctx, ref, store.AllTime)
	if err != nil {
		t.Fatal(err)
	}
	tables := kql.MapCatalog{"Logs": q.Schema()}
	q.Close()
	return New(Options{Parallelism: 4, QuerySlots: pool}), db, tables, ws
}

var slotsQueries = []string{
	"Logs | summarize count() by bin(TimeGenerated, 5m), Level",
	"Logs | where Level == 'Error' | summarize c = count(), s = sum(N) by Host | top 5 by c desc, Host asc",
	"Logs | where N > 90 | take 20 | count",
	"Logs | summarize avg(N), percentiles(N, 50, 95) by Level",
	"Logs | where Host == 'web-3' | project TimeGenerated, N | order by TimeGenerated asc | take 7",
	"Logs | summarize c = count() by Host | join kind=inner (Logs | where Level == 'Info' | summarize i = count() by Host) on Host | project Host, c, i",
	"let m = toscalar(Logs | summarize max(N)); Logs | where N == m | count",
	"Logs | where TimeGenerated > ago(30m) | summarize dcount(Host)",
	"union (Logs | where Level == 'Warning' | count), (Logs | where Level == 'Error' | count)",
	"Logs | where Host == 'web-5' | order by N asc, TimeGenerated asc | project N, TimeGenerated",
	"Logs | where Host == 'web-2' | order by TimeGenerated asc | serialize r = row_number() | where r <= 3 | project r, N",
}

// TestQueriesOneSlot: with one worker slot shared by the store and the
// engine, many concurrent queries of every shape (scans, aggregations, take,
// joins, subqueries, unions) complete with the results they have alone, and
// no two goroutines ever work at once.
func TestQueriesOneSlot(t *testing.T) {
	pool := workload.New(workload.Options{Slots: 1})
	eng, db, tables, ws := slotsEnv(t, pool)
	run := func(q string) ([]string, error) {
		res, err := eng.Query(context.Background(), Request{Query: q, Tables: tables, Source: db, WorkspaceID: ws, Now: testNow, Timeout: time.Minute})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", q, err)
		}
		rows := rowsOf(res)
		sort.Strings(rows)
		return rows, nil
	}
	want := map[string][]string{}
	for _, q := range slotsQueries {
		rows, err := run(q)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) == 0 {
			t.Fatalf("%s: no rows", q)
		}
		want[q] = rows
	}
	errs := make(chan error, 64)
	var wg sync.WaitGroup
	for g := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range slotsQueries {
				q := slotsQueries[(g+k)%len(slotsQueries)]
				rows, err := run(q)
				if err == nil && !slices.Equal(rows, want[q]) {
					err = fmt.Errorf("%s: concurrent result differs:\n%v\nalone:\n%v", q, head(rows), head(want[q]))
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Minute):
		t.Fatalf("24 concurrent query loops on a 1-slot pool did not finish (deadlock?): %+v", pool.Stats())
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s := pool.Stats()
	if s.HighWater != 1 || s.InUse != 0 || s.Waiting != 0 {
		t.Fatalf("pool after: %+v", s)
	}
	if s.Waited == 0 || s.Acquired < uint64(25*len(slotsQueries)) {
		t.Fatalf("the queries hardly used the pool: %+v", s)
	}
}

// TestQuerySlotTimeout: a query that cannot get a worker slot before its
// timeout fails with the timeout (the query API answers it as Azure's
// timeout error), in time, and leaves the pool usable.
func TestQuerySlotTimeout(t *testing.T) {
	pool := workload.New(workload.Options{Slots: 1})
	eng, db, tables, ws := slotsEnv(t, pool)
	hold, held := make(chan struct{}), make(chan struct{})
	go pool.Do(context.Background(), func() { close(held); <-hold })
	<-held
	start := time.Now()
	_, err := eng.Query(context.Background(), Request{Query: "Logs | summarize count() by Level", Tables: tables, Source: db,
		WorkspaceID: ws, Now: testNow, Timeout: 100 * time.Millisecond})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the query's deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the query took %v past a 100ms timeout", d)
	}
	close(hold)
	res, err := eng.Query(context.Background(), Request{Query: "Logs | count", Tables: tables, Source: db, WorkspaceID: ws, Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	if rows := rowsOf(res); len(rows) != 1 || rows[0] != "3400|" {
		t.Fatalf("count after the timeout: %v", rows)
	}
	for pool.Stats().InUse != 0 {
		time.Sleep(time.Millisecond)
	}
	if s := pool.Stats(); s.Waiting != 0 || s.Canceled == 0 {
		t.Fatalf("pool after: %+v", s)
	}
}

// BenchmarkScanSlots compares one query at a time with and without a pool
// of GOMAXPROCS worker slots shared by the store and the engine: on an idle
// machine a single query must be as fast with the pool (it may use every
// slot). Cold reads (no decoded-chunk cache), so block decoding, which takes
// a slot per block, dominates. Reports wall and process CPU per query.
//
//	go test ./internal/engine -run XXX -bench ScanSlots -benchtime 10x
//
// SLOTS_BENCH_ROWS overrides the 1M rows.
func BenchmarkScanSlots(b *testing.B) {
	rows := 1_000_000
	if n, err := strconv.Atoi(os.Getenv("SLOTS_BENCH_ROWS")); err == nil && n > 0 {
		rows = n
	}
	dir := b.TempDir()
	key, err := crypt.OpenPlatformKey(filepath.Join(dir, "platform.key"))
	if err != nil {
		b.Fatal(err)
	}
	const ws = "00000000-0000-0000-0000-0000000000c2"
	ref := store.TableRef{WorkspaceID: ws, Table: "Logs"}
	open := func(pool *workload.Pool) *store.DB {
		db, err := store.Open(store.Options{Dir: filepath.Join(dir, "data"), Keys: key, QuerySlots: pool, DisableBackground: true})
		if err != nil {
			b.Fatal(err)
		}
		return db
	}
	ctx := context.Background()
	db := open(nil)
	if err := db.EnsureTable(ctx, ref, benchSchema, 0); err != nil {
		b.Fatal(err)
	}
	for _, bt := range makeBenchBatches(rows) {
		appendCommit(b, db, ref, bt)
	}
	if err := db.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	q, err := db.Querier(ctx, ref, store.AllTime)
	if err != nil {
		b.Fatal(err)
	}
	tables := kql.MapCatalog{"Logs": q.Schema()}
	q.Close()
	db.Close()
	now := time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)
	for _, query := range []struct{ name, kql string }{
		{"bin-level", "Logs | summarize count() by bin(TimeGenerated, 1h), Level"},
		{"avg-by-service", "Logs | summarize avg(Latency), max(Latency) by Service"},
	} {
		for _, variant := range []string{"none", "gomaxprocs"} {
			b.Run(query.name+"/slots="+variant, func(b *testing.B) {
				var pool *workload.Pool
				if variant != "none" {
					pool = workload.New(workload.Options{})
				}
				db := open(pool)
				defer db.Close()
				eng := New(Options{QuerySlots: pool})
				if pool == nil {
					eng = New(Options{})
				}
				cpu0 := processCPU()
				b.ResetTimer()
				for b.Loop() {
					if _, err := eng.Query(ctx, Request{Query: query.kql, Tables: tables, Source: db, WorkspaceID: ws, Now: now}); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(processCPU()-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
				if pool != nil && pool.Stats().HighWater < min(2, runtime.GOMAXPROCS(0)) {
					b.Fatalf("a lone query used %d slots of %d", pool.Stats().HighWater, pool.Slots())
				}
			})
		}
	}
}

// BenchmarkIngestUnderQueries models the soak in one process: two goroutines
// commit 4,096-row batches into a real store (WAL, memtable, background
// flush and merge) as fast as they can while eight closed query loops (no
// think time, like two dashboards and a few alert rules) read the table, for
// SLOTS_BENCH_SECONDS (default 5) per run. It reports the rows/s ingestion
// kept and the queries/s answered, with no slot pool (every query runs its
// own workers), a GOMAXPROCS pool, and a GOMAXPROCS pool with one slot
// reserved while a commit is in flight.
//
//	go test ./internal/engine -run XXX -bench IngestUnderQueries -benchtime 1x -count 3
func BenchmarkIngestUnderQueries(b *testing.B) {
	secs := 5
	if n, err := strconv.Atoi(os.Getenv("SLOTS_BENCH_SECONDS")); err == nil && n > 0 {
		secs = n
	}
	src := makeBenchBatches(200_000)
	var batches []*store.Batch
	for _, bt := range src {
		for lo := 0; lo < bt.Len; lo += 4096 {
			batches = append(batches, sliceBatch(bt, lo, min(lo+4096, bt.Len)))
		}
	}
	for _, variant := range []string{"none", "gomaxprocs", "gomaxprocs-reserve1"} {
		b.Run("slots="+variant, func(b *testing.B) {
			for b.Loop() {
				var pool *workload.Pool
				switch variant {
				case "gomaxprocs":
					pool = workload.New(workload.Options{})
				case "gomaxprocs-reserve1":
					pool = workload.New(workload.Options{IngestReserve: 1})
				}
				dir := b.TempDir()
				key, err := crypt.OpenPlatformKey(filepath.Join(dir, "platform.key"))
				if err != nil {
					b.Fatal(err)
				}
				opts := store.Options{Dir: filepath.Join(dir, "data"), Keys: key, MemtableBytes: 8 << 20, ReadCacheBytes: 64 << 20}
				if pool != nil {
					opts.QuerySlots = pool
				}
				db, err := store.Open(opts)
				if err != nil {
					b.Fatal(err)
				}
				const ws = "00000000-0000-0000-0000-0000000000c3"
				ref := store.TableRef{WorkspaceID: ws, Table: "Logs"}
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs)*time.Second)
				if err := db.EnsureTable(ctx, ref, benchSchema, 0); err != nil {
					b.Fatal(err)
				}
				appendCommit(b, db, ref, batches[0])
				q, err := db.Querier(ctx, ref, store.AllTime)
				if err != nil {
					b.Fatal(err)
				}
				tables := kql.MapCatalog{"Logs": q.Schema()}
				q.Close()
				eng := New(Options{})
				if pool != nil {
					eng = New(Options{QuerySlots: pool})
				}
				var rows, queries atomic.Int64
				var wg sync.WaitGroup
				errs := make(chan error, 16)
				for w := range 2 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := w; ctx.Err() == nil; i += 2 {
							bt := batches[i%len(batches)]
							end := pool.Ingest()
							a, err := db.Appender(ctx, ref)
							if err == nil {
								if err = a.Append(bt); err == nil {
									err = a.Commit(ctx)
								}
							}
							end()
							if err != nil {
								if ctx.Err() == nil {
									errs <- err
								}
								return
							}
							rows.Add(int64(bt.Len))
						}
					}()
				}
				qs := []string{
					"Logs | summarize count() by bin(TimeGenerated, 1m), Level",
					"Logs | where Level == 'error' | summarize count() by Service | top 5 by count_",
					"Logs | summarize avg(Latency), percentiles(Latency, 95) by Service",
					"Logs | where Latency > 300 | take 100",
				}
				for l := range 8 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := l; ctx.Err() == nil; i++ {
							_, err := eng.Query(ctx, Request{Query: qs[i%len(qs)], Tables: tables, Source: db, WorkspaceID: ws, Now: time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)})
							if err != nil {
								if ctx.Err() == nil {
									errs <- err
								}
								return
							}
							queries.Add(1)
						}
					}()
				}
				cpu0 := processCPU()
				wg.Wait()
				cpu := processCPU() - cpu0
				cancel()
				db.Close()
				close(errs)
				for err := range errs {
					b.Fatal(err)
				}
				b.ReportMetric(float64(rows.Load())/float64(secs), "rows/s")
				b.ReportMetric(float64(queries.Load())/float64(secs), "queries/s")
				b.ReportMetric(cpu.Seconds()/float64(secs), "cores")
			}
		})
	}
}
