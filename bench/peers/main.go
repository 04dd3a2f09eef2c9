// Command peers measures Custos beside the systems users would otherwise
// pick — ClickHouse, VictoriaLogs and DuckDB — on one seeded dataset, on the
// same machine, in one run, and writes the figures with ratios against Custos
// to bench/results/peers-<date>.md (and, with -docs, into
// docs/benchmarks.md). Grafana Loki cannot be installed here; docs/benchmarks.md
// compares with its published figures instead.
//
//	go run ./bench/peers                        # 1 M rows, all systems
//	go run ./bench/peers -rows 200000 -systems custos,duckdb
//	go run ./bench/peers -profile /tmp/qp -data-dir /var/tmp/peers1m -runs 20   # CPU profile per question
//	go run ./bench/peers -cold-probe 20 -data-dir /var/tmp/peers1m             # where a cold query's time goes
//
// Peers are installed by the harness (ClickHouse from Debian, VictoriaLogs
// with `go install`, DuckDB through its Go bindings in the separate module
// bench/peers/duckdb), never committed, and bind to loopback only.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"custos/bench/gen"
	"custos/bench/logdata"
	"custos/e2e"
)

// result is what one system measured.
type result struct {
	Name, Version string
	Err           error
	LoadWall      time.Duration
	LoadCPU       time.Duration
	Disk          int64
	PeakRSS       int64
	Warm, Cold    []time.Duration // per question
	Hot           []time.Duration // per question: ClickBench's "hot run", the faster of the two runs after the cold one
	Evicted       int64           // page-cache bytes of the data directory dropped before the cold runs (sum)
	Rows          []int           // result rows per question (a sanity check)
	QueryCPU      []time.Duration // server CPU per warm run
}

func main() {
	rows := flag.Int("rows", 1_000_000, "records in the dataset")
	clients := flag.Int("clients", 8, "concurrent ingestion clients")
	runs := flag.Int("runs", 5, "measured warm runs per query (the median is reported)")
	warmup := flag.Int("warmup", 2, "unmeasured runs between the cold run and the measured warm runs (the first two are also ClickBench's hot runs)")
	dropCache := flag.Bool("drop-cache", true, "evict the system's data files from the page cache after the restart before each cold run (needs Linux)")
	systems := flag.String("systems", "custos,clickhouse,victorialogs,duckdb", "systems to measure, comma-separated")
	binary := flag.String("binary", "", "prebuilt custos binary (default: go build)")
	binDir := flag.String("bin-dir", filepath.Join("bench", "data", "peers-bin"), "where built peer binaries are kept between runs")
	out := flag.String("out", "", "results file (default bench/results/peers-<date>.md)")
	docs := flag.Bool("docs", false, "also write the results into docs/benchmarks.md")
	profile := flag.String("profile", "", "profile mode: Custos alone, in process, one CPU profile per question written into this directory (needs -data-dir)")
	dataDir := flag.String("data-dir", "", "with -profile: Custos's data directory, loaded once and reused")
	coldN := flag.Int("cold-probe", 0, "cold probe: restart the custos binary on -data-dir (a -profile load) this many times and time the first query's phases")
	profQ := flag.Int("question", 0, "with -profile: profile this question alone (1-6, the order of the report; 0: all)")
	coldQ := flag.Int("cold-question", 6, "with -cold-probe: the question (1-6, the order of the report)")
	coldProf := flag.String("cold-profile", "", "with -cold-probe: write the server's CPU profile around each cold query into this directory")
	flag.Parse()
	log.SetFlags(log.Ltime)
	if *coldN > 0 {
		if err := coldProbe(context.Background(), *binary, *dataDir, *coldProf, *coldN, *coldQ, *runs, *dropCache); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *profile != "" {
		if err := profileQuestions(context.Background(), *profile, *dataDir, *rows, *clients, *runs, *profQ); err != nil {
			log.Fatal(err)
		}
		return
	}

	machine := gen.ReadMachine() // before anything of ours runs
	ctx := context.Background()
	o := logdata.Options{Seed: 42, Rows: *rows, End: time.Now().UTC().Truncate(time.Hour)}
	d := &dataset{gen: logdata.New(o), rows: *rows, batchRows: 500}
	qs := questions(d.gen.Options())

	work, err := os.MkdirTemp("", "peers-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(work)
	log.Printf("writing the dataset (%d rows) as JSON lines", *rows)
	file := filepath.Join(work, "records.jsonl")
	if err := d.jsonFile(file); err != nil {
		log.Fatal(err)
	}
	absBin, _ := filepath.Abs(*binDir)
	var results []result
	for _, name := range strings.Split(*systems, ",") {
		var p peer
		switch strings.TrimSpace(name) {
		case "custos":
			p = &custosPeer{binary: *binary, logf: log.Printf}
		case "clickhouse":
			p = &clickhousePeer{}
		case "victorialogs":
			p = &victoriaLogsPeer{binDir: absBin}
		case "duckdb":
			p = &duckdbPeer{binDir: absBin, file: file}
		default:
			log.Fatalf("unknown system %q", name)
		}
		log.Printf("== %s", p.Name())
		r := measure(ctx, p, d, qs, *clients, *runs, *warmup, *dropCache)
		if r.Err != nil {
			log.Printf("%s failed: %v", p.Name(), r.Err)
		}
		results = append(results, r)
	}
	report := render(machine, results, qs, d, *clients, *runs, *warmup, *dropCache)
	fmt.Print(report)
	path := *out
	if path == "" {
		path = filepath.Join("bench", "results", "peers-"+time.Now().Format("2006-01-02")+".md")
	}
	if err := gen.WriteResult(path, report); err != nil {
		log.Fatal(err)
	}
	log.Printf("wrote %s", path)
	if *docs {
		if err := writeDocs(filepath.Join("docs", "benchmarks.md"), report); err != nil {
			log.Fatal(err)
		}
	}
}

// measure loads the dataset into p and asks every question: cold once, then
// warmup unmeasured runs, then runs measured ones. The method (docs/benchmarks.md,
// "How queries are timed") is ClickBench's, for every system alike: the cold
// run is the first after a restart with the page cache of the system's files
// dropped; ClickBench's hot figure is the faster of the two runs that follow
// it (kept here as Hot); the warm figure reported beside it is the median of
// the measured runs after the warm-up, steadier than a minimum of two on a
// shared machine.
func measure(ctx context.Context, p peer, d *dataset, qs []question, clients, runs, warmup int, dropCache bool) (r result) {
	r.Name = p.Name()
	defer p.Close()
	if r.Err = p.Start(ctx); r.Err != nil {
		return r
	}
	r.Version = p.Version()
	cpu0, _, _, _ := e2e.ProcessStats(p.PID())
	start := time.Now()
	if r.Err = p.Load(ctx, d, clients); r.Err != nil {
		return r
	}
	r.LoadWall = time.Since(start)
	cpu1, _, peak, _ := e2e.ProcessStats(p.PID())
	r.LoadCPU = cpu1 - cpu0
	r.PeakRSS = peak
	log.Printf("%s: loaded %d rows in %v (%.0f rows/s, %v CPU)", p.Name(), d.rows, r.LoadWall.Round(time.Millisecond),
		float64(d.rows)/r.LoadWall.Seconds(), r.LoadCPU.Round(time.Millisecond))
	if r.Err = p.Settle(ctx); r.Err != nil {
		return r
	}
	// A graceful restart writes whatever the system still buffers in memory,
	// so bytes on disk are the steady state.
	if r.Err = p.Restart(ctx); r.Err != nil {
		return r
	}
	r.Disk, _ = gen.DirBytes(p.DataDir())
	ask := func(q question) (time.Duration, int, error) {
		t := time.Now()
		n, err := p.Query(ctx, q)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", q.Name, err)
		}
		return time.Since(t), n, nil
	}
	for _, q := range qs {
		// Cold: the first run after a restart, with the system's files
		// dropped from the page cache.
		if r.Err = p.Restart(ctx); r.Err != nil {
			return r
		}
		if dropCache {
			before, after, err := evictDir(p.DataDir())
			if err != nil {
				r.Err = err
				return r
			}
			r.Evicted += before - after
		}
		cold, n, err := ask(q)
		if err != nil {
			r.Err = err
			return r
		}
		r.Cold = append(r.Cold, cold)
		r.Rows = append(r.Rows, n)
		hot := time.Duration(0)
		for i := range warmup {
			t, _, err := ask(q)
			if err != nil {
				r.Err = err
				return r
			}
			if i < 2 && (hot == 0 || t < hot) {
				hot = t
			}
		}
		r.Hot = append(r.Hot, hot)
		var warm []time.Duration
		c0, _, _, _ := e2e.ProcessStats(p.PID())
		for range runs {
			t, _, err := ask(q)
			if err != nil {
				r.Err = err
				return r
			}
			warm = append(warm, t)
		}
		c1, _, pk, _ := e2e.ProcessStats(p.PID())
		r.PeakRSS = max(r.PeakRSS, pk)
		slices.Sort(warm)
		r.Warm = append(r.Warm, warm[len(warm)/2])
		r.QueryCPU = append(r.QueryCPU, (c1-c0)/time.Duration(runs))
		log.Printf("%s: %-32s cold %8v hot %8v warm %8v rows %d", p.Name(), q.Name, r.Cold[len(r.Cold)-1].Round(time.Millisecond),
			hot.Round(time.Millisecond), r.Warm[len(r.Warm)-1].Round(time.Millisecond), n)
	}
	return r
}
