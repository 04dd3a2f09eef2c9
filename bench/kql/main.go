// Command kql benchmarks Custos's query engine on its own: it generates log
// rows in process into a real store (store.Open in a data directory, platform
// key, AES-256-GCM parts), then runs the issue 3 and issue 4 query targets
// through engine.Engine warm and reports wall time, CPU seconds, rows/s, the
// engine's accounted peak memory and the process's peak heap. It writes
// bench/results/kql-<date>.md.
//
//	go run ./bench/kql                                     # 10 M rows in a temporary directory
//	go run ./bench/kql -rows 1000000 -runs 3               # smaller
//	go run ./bench/kql -data-dir /var/tmp/kqlb -keep       # load once...
//	go run ./bench/kql -data-dir /var/tmp/kqlb             # ...then reuse the data (same -rows/-seed)
//	go run ./bench/kql -data-dir D -only 'top|join' -cpuprofile q.out   # some queries, CPU profile
//
// The data: Logs_CL (rows; Host 500 values, Level 4, Service 24, Message a
// request line plus free text, Latency log-normal, User Zipf over 1 M users,
// Status, RequestId unique, SessionId 1 M distinct values), Users_CL (100 k
// users, the join's right side) and Tags_CL (1 M dynamic arrays of 10 tags).
// Unlike bench/query there is no HTTPS, authentication or JSON in the path.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"custos/bench/gen"
	"custos/internal/crypt"
	"custos/internal/engine"
	"custos/internal/kql"
	"custos/internal/store"
)

func main() {
	rows := flag.Int("rows", 10_000_000, "rows of Logs_CL")
	tagRows := flag.Int("tag-rows", 1_000_000, "rows of Tags_CL (dynamic arrays of 10)")
	msgBytes := flag.Int("message-bytes", 750, "average bytes of a Message")
	seed := flag.Uint64("seed", 1, "generator seed")
	dataDir := flag.String("data-dir", "", "store directory; reused when it holds the same data set (default: a temporary directory)")
	keep := flag.Bool("keep", false, "keep a temporary -data-dir")
	runs := flag.Int("runs", 3, "timed runs per query (after one warm-up run)")
	only := flag.String("only", "", "run only the queries whose name matches this regular expression")
	memLimit := flag.Int64("mem-limit", 0, "engine per-query memory limit in bytes (0: the engine default, 2 GiB)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the query phase")
	readCache := flag.Int64("read-cache", 256<<20, "the store's decoded-chunk cache in bytes during the query phase (store.Options.ReadCacheBytes; the server's default query.readCacheBytes; 0: off)")
	out := flag.String("out", "", "results file (default bench/results/kql-<date>.md; - for stdout only)")
	flag.Parse()
	if err := run(options{rows: *rows, tagRows: *tagRows, msgBytes: *msgBytes, seed: *seed, dataDir: *dataDir, keep: *keep,
		runs: *runs, only: *only, memLimit: *memLimit, cpuProfile: *cpuProfile, out: *out, readCache: *readCache}); err != nil {
		log.Fatal(err)
	}
}

type options struct {
	rows, tagRows, msgBytes, runs int
	seed                          uint64
	dataDir, only, cpuProfile     string
	out                           string
	keep                          bool
	memLimit, readCache           int64
}

const infoFile = "kqlbench.json"

func run(o options) error {
	ctx := context.Background()
	machine := gen.ReadMachine()
	began := time.Now().UTC()
	var filter *regexp.Regexp
	if o.only != "" {
		var err error
		if filter, err = regexp.Compile(o.only); err != nil {
			return fmt.Errorf("-only: %w", err)
		}
	}
	dir := o.dataDir
	if dir == "" {
		d, err := os.MkdirTemp("", "custos-kqlbench-")
		if err != nil {
			return err
		}
		dir = d
		if !o.keep {
			defer os.RemoveAll(dir)
		} else {
			log.Printf("data kept in %s", dir)
		}
	}
	want := dataInfo{Version: dataVersion, Rows: o.rows, Seed: o.seed, TagRows: o.tagRows, MessageBytes: o.msgBytes}
	info, err := ensureData(ctx, dir, want)
	if err != nil {
		return err
	}
	diskBytes, _ := gen.DirBytes(filepath.Join(dir, "store"))

	key, err := crypt.OpenPlatformKey(filepath.Join(dir, "platform.key"))
	if err != nil {
		return err
	}
	db, err := store.Open(store.Options{Dir: filepath.Join(dir, "store"), Keys: key, DisableBackground: true,
		Logger: slog.New(slog.DiscardHandler), ReadCacheBytes: o.readCache})
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer db.Close()
	cat := kql.MapCatalog{}
	for _, t := range []string{logsTable, usersTable, tagsTable} {
		q, err := db.Querier(ctx, store.TableRef{WorkspaceID: workspaceID, Table: t}, store.AllTime)
		if err != nil {
			return fmt.Errorf("open %s: %w", t, err)
		}
		cat[t] = q.Schema()
		q.Close()
	}
	eng := engine.New(engine.Options{Limits: engine.Limits{MaxMemoryBytes: o.memLimit, Timeout: 10 * time.Minute, MaxTimeout: 10 * time.Minute}})

	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	var results []queryResult
	for _, q := range queries(info) {
		if filter != nil && !filter.MatchString(q.name) {
			continue
		}
		r, err := measure(ctx, eng, db, cat, q, o.runs)
		if err != nil {
			return fmt.Errorf("%s: %w", q.name, err)
		}
		log.Printf("%-28s p50 %-10v cpu %-10v peak heap %s  %s", q.name, gen.Round(r.p50), gen.Round(r.cpu), gen.MB(r.peakHeap), r.check)
		results = append(results, r)
	}
	report := render(o, machine, began, info, diskBytes, results)
	path := o.out
	if path == "-" {
		fmt.Print(report)
		return nil
	}
	if path == "" {
		path = filepath.Join("bench", "results", "kql-"+began.Format("2006-01-02")+".md")
	}
	if err := gen.WriteResult(path, report); err != nil {
		return err
	}
	log.Printf("wrote %s", path)
	return nil
}

// ensureData loads the data set into dir unless dir already holds it.
func ensureData(ctx context.Context, dir string, want dataInfo) (dataInfo, error) {
	infoPath := filepath.Join(dir, infoFile)
	if b, err := os.ReadFile(infoPath); err == nil {
		var have dataInfo
		if err := json.Unmarshal(b, &have); err != nil {
			return have, fmt.Errorf("read %s: %w", infoPath, err)
		}
		if have.Version == want.Version && have.Rows == want.Rows && have.Seed == want.Seed &&
			have.TagRows == want.TagRows && have.MessageBytes == want.MessageBytes {
			log.Printf("reusing the data in %s (%d rows)", dir, have.Rows)
			return have, nil
		}
		return have, fmt.Errorf("%s holds another data set (%+v); use another -data-dir", dir, have)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return want, err
	}
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return want, fmt.Errorf("%s is not empty and holds no %s; use an empty or new -data-dir", dir, infoFile)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return want, err
	}
	key, err := crypt.OpenPlatformKey(filepath.Join(dir, "platform.key"))
	if err != nil {
		return want, err
	}
	db, err := store.Open(store.Options{Dir: filepath.Join(dir, "store"), Keys: key, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return want, fmt.Errorf("open store: %w", err)
	}
	start := time.Now()
	last := start
	info := want
	err = load(ctx, db, &info, func(done int) {
		if time.Since(last) > 10*time.Second {
			last = time.Now()
			log.Printf("loaded %d of %d rows (%.0f rows/s)", done, info.Rows, float64(done)/time.Since(start).Seconds())
		}
	})
	if err == nil {
		err = db.Flush(ctx)
	}
	// Merge until nothing is left to merge, so queries read settled parts.
	for i := 0; err == nil && i < 20; i++ {
		before := db.Stats().PartsMerged
		err = db.Merge(ctx)
		if db.Stats().PartsMerged == before {
			break
		}
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return want, fmt.Errorf("load: %w", err)
	}
	info.LoadSeconds = time.Since(start).Seconds()
	log.Printf("loaded %d rows in %.0f s", info.Rows, info.LoadSeconds)
	b, _ := json.MarshalIndent(info, "", "  ")
	return info, os.WriteFile(infoPath, b, 0o600)
}

type benchQuery struct {
	name, issue, kql string
	target           time.Duration
	rows             int // rows the query reads (for rows/s)
	check            func(t *engine.Table) error
}

func queries(info dataInfo) []benchQuery {
	n := info.Rows
	left := min(n, joinLeft)
	leftEnd := day.Add(time.Duration(int64(left)*stepFor(n)) * 100)
	return []benchQuery{
		{name: "count by hour and level", issue: "#3", target: time.Second, rows: n,
			kql:   logsTable + " | summarize count() by bin(TimeGenerated, 1h), Level",
			check: sumIs(2, int64(n))},
		{name: "top 10 users", issue: "#3", target: time.Second, rows: n,
			kql: logsTable + " | summarize count() by User | top 10 by count_",
			check: func(t *engine.Table) error {
				c := column(t, 1)
				if len(c) != min(10, n) {
					return fmt.Errorf("%d rows; want 10", len(c))
				}
				if !slices.IsSortedFunc(c, func(a, b int64) int { return int(b - a) }) {
					return fmt.Errorf("counts not descending: %v", c)
				}
				return nil
			}},
		{name: "avg/max latency by service", issue: "#3", target: time.Second, rows: n,
			kql:   logsTable + " | summarize avg(Latency), max(Latency) by Service",
			check: rowsIs(len(services))},
		{name: "rare term (has) count", issue: "#3", target: 100 * time.Millisecond, rows: n,
			kql:   fmt.Sprintf("%s | where Message has %q | count", logsTable, "quokkaquasar"),
			check: sumIs(0, int64(info.Rare))},
		{name: "count by 1M-value key", issue: "#4", target: 3 * time.Second, rows: n,
			kql: logsTable + " | summarize count() by SessionId | summarize Groups=count(), Rows=sum(count_)",
			check: func(t *engine.Table) error {
				g, r := column(t, 0), column(t, 1)
				if len(g) != 1 || g[0] != int64(min(n, sessions)) || r[0] != int64(n) {
					return fmt.Errorf("groups %v rows %v; want %d and %d", g, r, min(n, sessions), n)
				}
				return nil
			}},
		{name: "dcount over all rows", issue: "#4", target: time.Second, rows: n,
			kql: logsTable + " | summarize dcount(RequestId)",
			check: func(t *engine.Table) error {
				c := column(t, 0)
				if len(c) != 1 {
					return fmt.Errorf("%d rows; want 1", len(c))
				}
				if e := float64(c[0]-int64(n)) / float64(n); e > 0.03 || e < -0.03 {
					return fmt.Errorf("dcount %d for %d distinct values: error %.1f%%", c[0], n, 100*e)
				}
				return nil
			}},
		{name: "join 1M x 100k on string", issue: "#4", target: 3 * time.Second, rows: left + usersRows,
			kql: fmt.Sprintf("%s | where TimeGenerated < datetime(%s) | join kind=inner (%s) on User | count",
				logsTable, leftEnd.Format(time.RFC3339Nano), usersTable),
			check: sumIs(0, int64(info.JoinMatches))},
		{name: "mv-expand 1M arrays of 10", issue: "#4", target: 2 * time.Second, rows: info.TagRows,
			kql:   tagsTable + " | mv-expand Tags | count",
			check: sumIs(0, int64(info.TagRows*tagsPerRow))},
		{name: "parse regex over messages", issue: "#4", target: 5 * time.Second, rows: n,
			kql: logsTable + ` | parse kind=regex Message with * "status=" Code:int " user=" Who " " * ` +
				"| summarize Rows=count(), Bad=countif(isnull(Code) or isempty(Who))",
			check: func(t *engine.Table) error {
				r, b := column(t, 0), column(t, 1)
				if len(r) != 1 || r[0] != int64(n) || b[0] != 0 {
					return fmt.Errorf("rows %v unparsed %v; want %d and 0", r, b, n)
				}
				return nil
			}},
		{name: "percentiles by service", issue: "#4", target: time.Second, rows: n,
			kql: logsTable + " | summarize percentiles(Latency, 50, 95, 99) by Service",
			check: func(t *engine.Table) error {
				if err := rowsIs(len(services))(t); err != nil {
					return err
				}
				for _, b := range t.Batches {
					for i := range b.Len {
						p50, p95, p99 := b.Cols[1].Real[i], b.Cols[2].Real[i], b.Cols[3].Real[i]
						if p50 > p95 || p95 > p99 || p50 < 10 || p50 > 40 {
							return fmt.Errorf("percentiles %v %v %v out of order or off (median of exp(3+N) is ~20)", p50, p95, p99)
						}
					}
				}
				return nil
			}},
	}
}

// column returns the integer values of column c of t.
func column(t *engine.Table, c int) []int64 {
	var out []int64
	for _, b := range t.Batches {
		out = append(out, b.Cols[c].Int[:b.Len]...)
	}
	return out
}

func sumIs(c int, want int64) func(*engine.Table) error {
	return func(t *engine.Table) error {
		var s int64
		for _, v := range column(t, c) {
			s += v
		}
		if s != want {
			return fmt.Errorf("column %d adds up to %d; want %d", c, s, want)
		}
		return nil
	}
}

func rowsIs(want int) func(*engine.Table) error {
	return func(t *engine.Table) error {
		if t.Rows() != want {
			return fmt.Errorf("%d rows; want %d", t.Rows(), want)
		}
		return nil
	}
}

type queryResult struct {
	q                 benchQuery
	walls             []time.Duration
	p50, min          time.Duration
	cpu               time.Duration // per run
	peakHeap          int64         // most heap in use during a run, above the idle heap
	accounted         int64         // the engine's peak working memory (Stats.PeakMemoryBytes)
	rowsScanned       int64
	bytesScanned      int64
	check             string
	ok                bool
	loadStart, loadAt string
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// heapSampler records the highest heap in use while it runs.
type heapSampler struct {
	stop chan struct{}
	done sync.WaitGroup
	peak int64
}

func heapInUse() int64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

func startHeapSampler() *heapSampler {
	h := &heapSampler{stop: make(chan struct{})}
	h.done.Add(1)
	go func() {
		defer h.done.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			h.peak = max(h.peak, heapInUse())
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	}()
	return h
}

func (h *heapSampler) finish() int64 {
	close(h.stop)
	h.done.Wait()
	return max(h.peak, heapInUse())
}

func measure(ctx context.Context, eng *engine.Engine, db *store.DB, cat kql.Catalog, q benchQuery, runs int) (queryResult, error) {
	r := queryResult{q: q, loadStart: gen.LoadAvg()}
	req := engine.Request{Query: q.kql, Tables: cat, Source: db, WorkspaceID: workspaceID, Now: day.Add(48 * time.Hour)}
	res, err := eng.Query(ctx, req) // warm-up, checked
	if err != nil {
		return r, err
	}
	r.check, r.ok = "ok", true
	if len(res.Tables) == 0 {
		r.check, r.ok = "no result table", false
	} else if err := q.check(&res.Tables[0]); err != nil {
		r.check, r.ok = "**"+err.Error()+"**", false
	}
	res = nil
	var cpu time.Duration
	for range max(runs, 1) {
		runtime.GC()
		debug.FreeOSMemory()
		idle := heapInUse()
		hs := startHeapSampler()
		c0, t0 := cpuTime(), time.Now()
		res, err := eng.Query(ctx, req)
		wall, c := time.Since(t0), cpuTime()-c0
		peak := hs.finish() - idle
		if err != nil {
			return r, err
		}
		cpu += c
		r.walls = append(r.walls, wall)
		r.peakHeap = max(r.peakHeap, peak)
		r.accounted = max(r.accounted, res.Stats.PeakMemoryBytes)
		r.rowsScanned, r.bytesScanned = res.Stats.RowsScanned, res.Stats.BytesScanned
	}
	r.cpu = cpu / time.Duration(len(r.walls))
	sorted := slices.Clone(r.walls)
	slices.Sort(sorted)
	r.p50, r.min = sorted[len(sorted)/2], sorted[0]
	r.loadAt = gen.LoadAvg()
	return r, nil
}

func render(o options, m gen.Machine, began time.Time, info dataInfo, disk int64, results []queryResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# KQL engine benchmark — %s\n\n", began.Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Command: `go run ./bench/kql %s`\n\n", strings.Join(os.Args[1:], " "))
	fmt.Fprintf(&b, "Machine:\n\n- CPUs: %d × %s\n- Memory: %s\n- Go: %s (%s)\n- Load average (1/5/15 min): %s at start, %s at end\n\n",
		m.NProc, m.CPUModel, m.MemTotal, m.GoVersion, m.OS, m.LoadStart, gen.LoadAvg())
	b.WriteString("**Shared machine:** other helpers were building and testing on the same 2 CPUs during this run, so wall times are " +
		"higher and noisier than on a quiet machine; the CPU column (process user+system time per run) is the steadier guide.\n\n")
	fmt.Fprintf(&b, "Data: generated in process (seed %d) into a real store (AES-256-GCM parts under a platform key, one UTC day, "+
		"settled by flush and merge before timing): `%s` %d rows (Message ~%d bytes), `%s` %d rows, `%s` %d rows of 10-element dynamic arrays; "+
		"%.1f GB of generated values, %s on disk; load took %.0f s. Queries run through `engine.Engine` (parse, bind, plan, execute; "+
		"no HTTPS, auth or JSON), each once to warm up — its result is checked — then %d timed runs.\n\n",
		info.Seed, logsTable, info.Rows, info.MessageBytes, usersTable, usersRows, tagsTable, info.TagRows,
		float64(info.RawBytes)/1e9, gen.MB(disk), info.LoadSeconds, max(o.runs, 1))
	b.WriteString("| Issue | Query | p50 | min | CPU per run | Rows/s (p50) | Target | Verdict | Engine peak memory | Peak heap | Check |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		rate := float64(r.q.rows) / r.p50.Seconds()
		fmt.Fprintf(&b, "| %s | %s<br>`%s` | %v | %v | %v | %.1f M | ≤ %v | %s | %s | %s | %s |\n",
			r.q.issue, r.q.name, strings.ReplaceAll(r.q.kql, "|", `\|`), gen.Round(r.p50), gen.Round(r.min), gen.Round(r.cpu),
			rate/1e6, r.q.target, gen.Verdict(r.p50 <= r.q.target && r.ok), gen.MB(r.accounted), gen.MB(r.peakHeap), r.check)
	}
	b.WriteString("\n\"Engine peak memory\" is the working memory the engine accounted against its per-query limit " +
		"(`Stats.PeakMemoryBytes`); \"Peak heap\" is the most Go heap in use during a run above the heap before it " +
		"(runtime/metrics sampled every 5 ms), which includes the store's block buffers and garbage not yet collected.\n")
	return b.String()
}
