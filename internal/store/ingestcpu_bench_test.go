package store

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"custos/bench/logdata"
)

// BenchmarkSoakWrites replays the soak's write path (test/soak) in the
// package: bench/gen records committed in 250-row requests, a flush whenever
// the workspace's memtables reach Options.MemtableBytes (as the background
// loop does) and a merge after every 43,000 rows (the merge loop's one-second
// tick at the soak's ~43k rows/s). It reports the CPU time of the flushes and
// of the merges per row committed, the merges that re-encoded rows rather than
// copying blocks, and the blocks of the parts left:
//
//	go test ./internal/store -run '^$' -bench SoakWrites -benchtime 1x -cpuprofile /tmp/soakw.prof
//
// (-v adds a trace of the flushes, the merges and the blocks of the parts
// left). The run commits 1.2 M rows, about 28 seconds of the soak's rate:
// past the first merges and the day's first MaxMergeRows rows, where the
// size-tiered merges begin. Generating the rows and committing them is not
// timed; the CPU figures are the process's (processCPU) during the flushes
// and the merges.
func BenchmarkSoakWrites(b *testing.B) {
	const (
		soakwRows  = 1_200_000
		batchRows  = 250
		mergeEvery = 43_000
	)
	g := logdata.New(logdata.Options{Seed: 2, Rows: soakwRows, Span: 30 * time.Minute, End: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)})
	b.ReportAllocs()
	var flushCPU, mergeCPU time.Duration
	var flushes, merges, reencoded, reencodedRows int
	for b.Loop() {
		b.StopTimer()
		env := newEnv(b)
		db := env.open(b, nil)
		ref := TableRef{WorkspaceID: testWS, Table: "Bench_CL"}
		ctx := context.Background()
		if err := db.EnsureTable(ctx, ref, soakwSchema, 0); err != nil {
			b.Fatal(err)
		}
		var js []byte
		sinceMerge := 0
		for first := 0; first < soakwRows; first += batchRows {
			js, _ = g.AppendBatch(js[:0], first, batchRows)
			commit(b, db, ref, soakwBatch(b, js))
			ws := db.workspaces[testWS]
			if ws.memBytes.Load() >= db.opts.MemtableBytes {
				start := processCPU(b)
				b.StartTimer()
				if err := db.Flush(ctx); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				flushCPU += processCPU(b) - start
				flushes++
				soakwLogf("flush at %d rows", first+batchRows)
			}
			if sinceMerge += batchRows; sinceMerge >= mergeEvery {
				sinceMerge = 0
				before := soakwParts(db)
				start := processCPU(b)
				b.StartTimer()
				if err := db.Merge(ctx); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				mergeCPU += processCPU(b) - start
				for p := range soakwParts(db) {
					if before[p] || len(p.meta.replaces) == 0 {
						continue
					}
					merges++
					srcBlocks := 0
					for q := range before {
						for _, id := range p.meta.replaces {
							if q.id == id {
								srcBlocks += len(q.meta.blocks)
							}
						}
					}
					soakwLogf("merge of %d parts (%d blocks) into %d rows, %d blocks", len(p.meta.replaces), srcBlocks, p.meta.rows, len(p.meta.blocks))
					if srcBlocks != len(p.meta.blocks) {
						reencoded++
						reencodedRows += p.meta.rows
					}
				}
			}
		}
		{ // the last run's parts
			var parts, blocks, small int
			for p := range soakwParts(db) {
				var sizes []int
				for _, bm := range p.meta.blocks {
					sizes = append(sizes, bm.rows)
				}
				soakwLogf("part %s: %d rows, blocks %v", p.id, p.meta.rows, sizes)
				parts++
				blocks += len(p.meta.blocks)
				for _, bm := range p.meta.blocks {
					if bm.rows < 1024 {
						small++
					}
				}
			}
			b.ReportMetric(float64(parts), "parts")
			b.ReportMetric(float64(blocks), "blocks")
			b.ReportMetric(float64(small), "small-blocks")
		}
		db.Close()
		b.StartTimer()
	}
	n := float64(b.N)
	rows := float64(soakwRows) * n
	b.ReportMetric(float64(flushCPU.Nanoseconds())/rows, "flush-cpu-ns/row")
	b.ReportMetric(float64(mergeCPU.Nanoseconds())/rows, "merge-cpu-ns/row")
	b.ReportMetric(float64(flushes)/n, "flushes")
	b.ReportMetric(float64(merges)/n, "merges")
	b.ReportMetric(float64(reencoded)/n, "reencoding-merges")
	b.ReportMetric(float64(reencodedRows)/rows, "reencoded-rows/row")
}

var soakwSchema = Schema{
	{Name: "Host", Type: TypeString}, {Name: "Level", Type: TypeString}, {Name: "Service", Type: TypeString},
	{Name: "Message", Type: TypeString}, {Name: "Latency", Type: TypeReal}, {Name: "User", Type: TypeString},
	{Name: "Status", Type: TypeInt}, {Name: "RequestId", Type: TypeString},
}

// soakwBatch converts a bench/gen JSON batch to a Batch as the ingestion API would.
func soakwBatch(tb testing.TB, js []byte) *Batch {
	var recs []struct {
		TimeGenerated                       time.Time
		Host, Level, Service, Message, User string
		RequestId                           string
		Latency                             float64
		Status                              int64
	}
	if err := json.Unmarshal(js, &recs); err != nil {
		tb.Fatal(err)
	}
	bt := &Batch{Schema: append(Schema{{Name: "TimeGenerated", Type: TypeDatetime}}, soakwSchema...), Len: len(recs)}
	for _, c := range bt.Schema {
		bt.Cols = append(bt.Cols, &Vector{Type: c.Type})
	}
	for _, r := range recs {
		bt.Cols[0].Int = append(bt.Cols[0].Int, TicksFromTime(r.TimeGenerated))
		bt.Cols[1].Str = append(bt.Cols[1].Str, r.Host)
		bt.Cols[2].Str = append(bt.Cols[2].Str, r.Level)
		bt.Cols[3].Str = append(bt.Cols[3].Str, r.Service)
		bt.Cols[4].Str = append(bt.Cols[4].Str, r.Message)
		bt.Cols[5].Real = append(bt.Cols[5].Real, r.Latency)
		bt.Cols[6].Str = append(bt.Cols[6].Str, r.User)
		bt.Cols[7].Int = append(bt.Cols[7].Int, r.Status)
		bt.Cols[8].Str = append(bt.Cols[8].Str, r.RequestId)
	}
	return bt
}

// soakwParts returns the parts of every table of db.
func soakwParts(db *DB) map[*part]bool {
	out := make(map[*part]bool)
	for _, ws := range db.openWorkspaces() {
		for _, t := range ws.tableList() {
			t.mu.RLock()
			for _, ps := range t.parts {
				for _, p := range ps {
					out[p] = true
				}
			}
			t.mu.RUnlock()
		}
	}
	return out
}

// soakwLogf writes a line of the run's trace (flushes, merges, the parts
// left) to stderr with -test.v: b.Logf would truncate it.
func soakwLogf(format string, args ...any) {
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
	}
}
