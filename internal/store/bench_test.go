package store

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"path/filepath"
	"testing"

	"custos/internal/crypt"
)

// Rerun: go test ./internal/store -run '^$' -bench . -benchtime 3x

var benchSchema = Schema{{"Computer", TypeString}, {"Level", TypeString}, {"Message", TypeString},
	{"DurationMs", TypeLong}, {"Cpu", TypeReal}, {"Props", TypeDynamic}}

// benchBatch builds n log rows of about 1 KB of JSON each and returns the raw
// JSON size of those rows, the baseline for the compression ratio.
func benchBatch(base, n int) (*Batch, int) {
	b := &Batch{Schema: append(Schema{{"TimeGenerated", TypeDatetime}}, benchSchema...), Len: n}
	for _, c := range b.Schema {
		b.Cols = append(b.Cols, &Vector{Type: c.Type})
	}
	levels := []string{"Information", "Warning", "Error", "Verbose"}
	raw := 0
	t0 := TicksFromTime(baseTime)
	for k := range n {
		i := base + k
		row := map[string]any{
			"TimeGenerated": TimeFromTicks(t0 + int64(i)*TicksPerMillisecond).Format("2006-01-02T15:04:05.0000000Z"),
			"Computer":      fmt.Sprintf("web-%03d.contoso.internal", i%200),
			"Level":         levels[i%4],
			"Message": fmt.Sprintf("GET /api/v1/orders/%d?customer=%d status=%d bytes=%d user-agent=Mozilla/5.0 (X11; Linux x86_64) "+
				"AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36 trace=%016x span=%08x upstream=orders-svc-%d "+
				"region=westeurope pod=orders-7d9f8c-%05d message=request completed after retries=%d cache=%s id=req%d",
				i*7919%1000003, i%5000, []int{200, 200, 200, 404, 500}[i%5], 500+i%20000, uint64(i)*0x9e3779b97f4a7c15, i*31, i%8, i%99991, i%3, []string{"hit", "miss"}[i%2], i),
			"DurationMs": int64(i % 3000),
			"Cpu":        float64(i%1000) / 10,
			"Props":      map[string]any{"app": "orders", "version": "1.4.2", "tenant": fmt.Sprintf("t%d", i%50), "flags": []int{i % 7, i % 11}},
		}
		js, _ := json.Marshal(row)
		raw += len(js)
		props, _ := json.Marshal(row["Props"])
		b.Cols[0].Int = append(b.Cols[0].Int, t0+int64(i)*TicksPerMillisecond)
		b.Cols[1].Str = append(b.Cols[1].Str, row["Computer"].(string))
		b.Cols[2].Str = append(b.Cols[2].Str, row["Level"].(string))
		b.Cols[3].Str = append(b.Cols[3].Str, row["Message"].(string))
		b.Cols[4].Int = append(b.Cols[4].Int, row["DurationMs"].(int64))
		b.Cols[5].Real = append(b.Cols[5].Real, row["Cpu"].(float64))
		b.Cols[6].Str = append(b.Cols[6].Str, string(props))
	}
	return b, raw
}

func benchDB(b *testing.B) (*testEnv, *DB, TableRef) {
	env := newEnv(b)
	db := env.open(b, nil)
	ref := TableRef{WorkspaceID: testWS, Table: "Bench_CL"}
	if err := db.EnsureTable(context.Background(), ref, benchSchema, 0); err != nil {
		b.Fatal(err)
	}
	return env, db, ref
}

// BenchmarkAppendCommit measures ingestion: 4 concurrent committers of
// 1000-row batches (WAL seal + group-commit fsync + memtable insert).
func BenchmarkAppendCommit(b *testing.B) {
	_, db, ref := benchDB(b)
	defer db.Close()
	batch, raw := benchBatch(0, 1000)
	b.ReportAllocs()
	b.SetBytes(int64(raw))
	b.SetParallelism(2)
	ctx := context.Background()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			a, err := db.Appender(ctx, ref)
			if err != nil {
				b.Fatal(err)
			}
			if err := a.Append(batch); err != nil {
				b.Fatal(err)
			}
			if err := a.Commit(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkFlush measures writing parts and reports bytes on disk as a
// fraction of the rows' raw JSON.
func BenchmarkFlush(b *testing.B) {
	const n = 100_000
	batches := make([]*Batch, 0, n/10000)
	raw := 0
	for i := 0; i < n; i += 10000 {
		bt, r := benchBatch(i, 10000)
		batches = append(batches, bt)
		raw += r
	}
	b.ReportAllocs()
	b.SetBytes(int64(raw))
	var ratio float64
	for b.Loop() {
		b.StopTimer()
		env, db, ref := benchDB(b)
		for _, bt := range batches {
			commit(b, db, ref, bt)
		}
		b.StartTimer()
		if err := db.Flush(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		ratio = float64(partBytes(b, env.dir)) / float64(raw)
		db.Close()
		b.StartTimer()
	}
	b.ReportMetric(ratio*100, "%disk/json")
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

func partBytes(b *testing.B, dir string) int64 {
	var total int64
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Ext(path) == ".part" {
			if fi, err := d.Info(); err == nil {
				total += fi.Size()
			}
		}
		return nil
	})
	return total
}

func flushedBenchDB(b *testing.B, n int) (*DB, TableRef, int) {
	_, db, ref := benchDB(b)
	raw := 0
	for i := 0; i < n; i += 10000 {
		bt, r := benchBatch(i, min(10000, n-i))
		raw += r
		commit(b, db, ref, bt)
	}
	if err := db.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	return db, ref, raw
}

func scan(b *testing.B, db *DB, ref TableRef, h SelectHints) (int, SelectStats) {
	ctx := context.Background()
	q, err := db.Querier(ctx, ref, AllTime)
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	it := q.Select(ctx, h)
	defer it.Close()
	rows := 0
	for it.Next() {
		rows += it.Batch().Len
	}
	if err := it.Err(); err != nil {
		b.Fatal(err)
	}
	return rows, it.(StatsIterator).Stats()
}

// BenchmarkScan reads two columns of 200k flushed rows.
func BenchmarkScan(b *testing.B) {
	const n = 200_000
	db, ref, _ := flushedBenchDB(b, n)
	defer db.Close()
	b.ReportAllocs()
	var bytes int64
	for b.Loop() {
		rows, st := scan(b, db, ref, SelectHints{Columns: []string{"TimeGenerated", "DurationMs"}})
		if rows != n {
			b.Fatalf("%d rows", rows)
		}
		bytes = st.BytesRead
	}
	b.SetBytes(bytes)
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkScanAllColumns decodes every column of 200k rows.
func BenchmarkScanAllColumns(b *testing.B) {
	const n = 200_000
	db, ref, raw := flushedBenchDB(b, n)
	defer db.Close()
	b.ReportAllocs()
	b.SetBytes(int64(raw))
	for b.Loop() {
		if rows, _ := scan(b, db, ref, SelectHints{}); rows != n {
			b.Fatalf("%d rows", rows)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkTermSearch looks for a term present in one block only; the bloom
// filters skip the rest.
func BenchmarkTermSearch(b *testing.B) {
	const n = 200_000
	db, ref, _ := flushedBenchDB(b, n)
	defer db.Close()
	b.ReportAllocs()
	var st SelectStats
	for b.Loop() {
		_, st = scan(b, db, ref, SelectHints{Columns: []string{"Message"}, Terms: []TermHint{{Column: "Message", Term: "req123457"}}})
	}
	if st.BlocksSkippedTerms == 0 {
		b.Fatalf("no block skipped: %+v", st)
	}
	b.ReportMetric(float64(st.BlocksSkippedTerms)/float64(st.BlocksTotal)*100, "%blocks-skipped")
}

// encryptionModes are the key configurations compared by
// BenchmarkEncryptionModes: the platform key alone, and a customer-managed
// file key with double encryption (two AES-GCM layers per block and record).
var encryptionModes = []struct {
	name   string
	double bool
}{{"platform", false}, {"cmk+double", true}}

func setMode(b *testing.B, db *DB, double bool) {
	if !double {
		return
	}
	fk, err := crypt.CreateFileKey(filepath.Join(b.TempDir(), "cmk.key"))
	if err != nil {
		b.Fatal(err)
	}
	if err := db.SetWorkspaceEncryption(context.Background(), testWS, WorkspaceEncryption{Provider: fk, DoubleEncryption: true}); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkEncryptionModes runs ingestion (as BenchmarkAppendCommit, but
// serial so the fsync does not dominate less) and a full-column scan (as
// BenchmarkScanAllColumns) under each key configuration in one run, for the
// "≤ 15 % slower with a customer key and double encryption" budget:
//
//	go test ./internal/store -run '^$' -bench EncryptionModes -benchtime 20x -count 6 | benchstat -col /mode -
func BenchmarkEncryptionModes(b *testing.B) {
	for _, m := range encryptionModes {
		b.Run("op=commit/mode="+m.name, func(b *testing.B) {
			_, db, ref := benchDB(b)
			defer db.Close()
			setMode(b, db, m.double)
			batch, raw := benchBatch(0, 1000)
			b.ReportAllocs()
			b.SetBytes(int64(raw))
			ctx := context.Background()
			for b.Loop() {
				a, err := db.Appender(ctx, ref)
				if err != nil {
					b.Fatal(err)
				}
				if err := a.Append(batch); err != nil {
					b.Fatal(err)
				}
				if err := a.Commit(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("op=scan/mode="+m.name, func(b *testing.B) {
			const n = 100_000
			_, db, ref := benchDB(b)
			defer db.Close()
			setMode(b, db, m.double)
			raw := 0
			for i := 0; i < n; i += 10000 {
				bt, r := benchBatch(i, 10000)
				raw += r
				commit(b, db, ref, bt)
			}
			if err := db.Flush(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(raw))
			for b.Loop() {
				if rows, _ := scan(b, db, ref, SelectHints{}); rows != n {
					b.Fatalf("%d rows", rows)
				}
			}
		})
	}
}

// BenchmarkPurge purges 1 % of the rows of a flushed table (spread over
// every part, so every part is rewritten) and reports rows/s scanned.
func BenchmarkPurge(b *testing.B) {
	const n = 500_000
	for b.Loop() {
		b.StopTimer()
		db, ref, _ := flushedBenchDB(b, n)
		b.StartTimer()
		res, err := db.Purge(context.Background(), ref, onePercent{})
		b.StopTimer()
		if err != nil || res.RowsPurged == 0 {
			b.Fatalf("%+v, %v", res, err)
		}
		db.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// onePercent matches rows whose DurationMs is a multiple of 100 (1 %).
type onePercent struct{}

func (onePercent) Columns() []string { return []string{"DurationMs"} }

func (onePercent) Match(bt *Batch) ([]bool, error) {
	out := make([]bool, bt.Len)
	for i, v := range bt.Col("DurationMs").Int {
		out[i] = v%100 == 0
	}
	return out, nil
}
