// Command ingest benchmarks Custos's ingestion data path end to end: N
// concurrent Azure SDK clients (azlogs Upload) send generated ~1 KB log
// records over HTTPS with bearer tokens, through the data collection rule,
// into the encrypted WAL, memtable and parts. It reports rows/s, MB/s of
// JSON, server CPU seconds per million rows, request latency and bytes on
// disk against the raw JSON size, and writes bench/results/ingest-<date>.md.
//
//	go run ./bench/ingest                          # 1,000,000 rows, 8 clients, fresh server
//	go run ./bench/ingest -rows 100000 -gzip       # smaller, gzip-compressed requests
//	go run ./bench/ingest -cpuprofile cpu.out      # server in process, CPU profile of the load
//	go run ./bench/ingest -attach -data-dir D -pid P   # against a running server
//
// The clients run on the same machine as the server, so the rates are a
// lower bound for a server with the machine to itself; server CPU per row is
// measured from /proc and excludes the clients (except with -cpuprofile).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"custos/bench/gen"
	"custos/bench/logdata"
	"custos/e2e"
)

func main() {
	rows := flag.Int("rows", 1_000_000, "records to ingest")
	clients := flag.Int("clients", 8, "concurrent ingestion clients (one DCR each)")
	batch := flag.Int("batch", 500, "records per request (~1 KB each; the body limit is 1 MB)")
	gz := flag.Bool("gzip", false, "gzip request bodies (Content-Encoding: gzip)")
	pregen := flag.String("pregenerate", "auto", "build every request body before the timed phase: yes, no, or auto (yes up to 2,000,000 rows, ~1 GB of JSON per million)")
	seed := flag.Uint64("seed", 1, "generator seed")
	dataDir := flag.String("data-dir", "", "server data directory (default: a new temporary one)")
	keep := flag.Bool("keep", false, "keep the temporary data directory")
	attach := flag.Bool("attach", false, "use the server already running on -data-dir")
	pid := flag.Int("pid", 0, "with -attach: the server's process ID, for CPU and RSS")
	binary := flag.String("binary", "", "prebuilt custos binary (default: go build)")
	cpuprofile := flag.String("cpuprofile", "", "run the server in this process and write a CPU profile of the load phase")
	blockprofile := flag.String("blockprofile", "", "with -cpuprofile: also write a blocking profile (where goroutines wait) of the load phase")
	mutexprofile := flag.String("mutexprofile", "", "with -cpuprofile: also write a mutex contention profile of the load phase")
	out := flag.String("out", "", "result file (default bench/results/ingest-<date>.md)")
	flag.Parse()
	if *out == "" {
		*out = filepath.Join("bench", "results", "ingest-"+time.Now().Format("2006-01-02")+".md")
	}
	pre := *pregen == "yes" || *pregen == "auto" && *rows <= 2_000_000
	if *pregen != "yes" && *pregen != "no" && *pregen != "auto" {
		log.Fatalf("-pregenerate %q: want yes, no or auto", *pregen)
	}
	cfg := config{rows: *rows, pregenerate: pre, clients: *clients, batch: *batch, gzip: *gz, seed: *seed, cpuprofile: *cpuprofile, blockprofile: *blockprofile, mutexprofile: *mutexprofile, out: *out,
		target: gen.TargetOptions{DataDir: *dataDir, Keep: *keep, Attach: *attach, PID: *pid, Binary: *binary, InProcess: *cpuprofile != "",
			Logf: log.Printf}}
	if err := run(cfg); err != nil {
		log.Fatal(err)
	}
}

type config struct {
	rows, clients, batch int
	gzip, pregenerate    bool
	seed                 uint64
	cpuprofile, out      string
	blockprofile         string
	mutexprofile         string
	target               gen.TargetOptions
}

func run(cfg config) error {
	ctx := context.Background()
	machine := gen.ReadMachine()
	t, err := gen.StartTarget(ctx, cfg.target)
	if err != nil {
		return err
	}
	defer t.Close()
	rules, err := gen.Setup(ctx, t.Client, cfg.clients)
	if err != nil {
		return err
	}
	// Fetch the ingestion token before timing.
	if _, err := t.Client.Cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://monitor.azure.com/.default"}}); err != nil {
		return err
	}
	g := logdata.New(logdata.Options{Seed: cfg.seed, Rows: cfg.rows})
	var before procSample
	var errStats, profErr error
	var self0 time.Duration
	onStart := func() {
		before, errStats = statsOf(t)
		self0, _, _, _ = e2e.ProcessStats(os.Getpid())
		if cfg.cpuprofile == "" {
			return
		}
		f, err := os.Create(cfg.cpuprofile)
		if err != nil {
			profErr = err
			return
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			profErr = err
			return
		}
		if cfg.blockprofile != "" {
			runtime.SetBlockProfileRate(100_000) // one sample per 100 µs blocked
		}
		if cfg.mutexprofile != "" {
			runtime.SetMutexProfileFraction(10)
		}
	}
	log.Printf("ingesting %d rows with %d clients, %d rows per request (gzip %v, bodies built before timing %v)", cfg.rows, cfg.clients, cfg.batch, cfg.gzip, cfg.pregenerate)
	res, err := gen.Load(ctx, t.Client, rules, g, gen.LoadOptions{Clients: cfg.clients, BatchRows: cfg.batch, Gzip: cfg.gzip, Pregenerate: cfg.pregenerate, OnStart: onStart,
		Progress: func(n int, el time.Duration) {
			log.Printf("  %d rows (%.0f rows/s)", n, float64(n)/el.Seconds())
		}})
	if profErr != nil {
		return fmt.Errorf("cpu profile: %w", profErr)
	}
	if cfg.cpuprofile != "" {
		pprof.StopCPUProfile()
		for name, path := range map[string]string{"block": cfg.blockprofile, "mutex": cfg.mutexprofile} {
			if path == "" {
				continue
			}
			if werr := writeProfile(name, path); werr != nil {
				return werr
			}
		}
	}
	if err != nil {
		return err
	}
	after, _ := statsOf(t)
	self1, _, _, _ := e2e.ProcessStats(os.Getpid())

	store := filepath.Join(t.DataDir, "store")
	diskRunning, err := gen.DirBytes(store)
	if err != nil {
		return err
	}
	var diskFlushed int64 = -1
	var stopTook time.Duration
	withStop := time.Duration(-1)
	if !cfg.target.Attach {
		t0 := time.Now()
		children0 := childrenCPU()
		if err := t.Stop(); err != nil {
			return fmt.Errorf("graceful stop: %w", err)
		}
		stopTook = time.Since(t0)
		if t.Mode == "child process" && errStats == nil {
			// The reaped server's whole CPU time, less what it had used
			// when the load started: the load plus the flush of what the
			// memtables still held.
			if life := childrenCPU() - children0; life > 0 {
				withStop = life - before.cpu
			}
		}
		if diskFlushed, err = gen.DirBytes(store); err != nil {
			return err
		}
	}

	r := report{cfg: cfg, machine: machine, mode: t.Mode, res: res, before: before, after: after, statsErr: errStats,
		clientCPU: self1 - self0, diskRunning: diskRunning, diskFlushed: diskFlushed, stopTook: stopTook, cpuWithStop: withStop}
	text := r.markdown()
	fmt.Print(text)
	if err := gen.WriteResult(cfg.out, text); err != nil {
		return err
	}
	log.Printf("wrote %s", cfg.out)
	return nil
}

func writeProfile(name, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("write %s profile: %w", name, err)
	}
	return f.Close()
}

type procSample struct {
	cpu       time.Duration
	rss, peak int64
}

func statsOf(t *gen.Target) (procSample, error) {
	cpu, rss, peak, err := t.Stats()
	return procSample{cpu, rss, peak}, err
}

type report struct {
	cfg                      config
	machine                  gen.Machine
	mode                     string
	res                      gen.LoadResult
	before, after            procSample
	statsErr                 error
	clientCPU                time.Duration
	diskRunning, diskFlushed int64
	stopTook                 time.Duration
	cpuWithStop              time.Duration // server CPU from the load's start to its exit; -1 if unknown
}

func (r report) markdown() string {
	var b strings.Builder
	res := r.res
	secs := res.Wall.Seconds()
	rowsPerSec := float64(res.Rows) / secs
	mbPerSec := float64(res.RawBytes) / 1e6 / secs
	fmt.Fprintf(&b, "# Ingestion benchmark — %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Command: `go run ./bench/ingest %s`\n\n", strings.Join(os.Args[1:], " "))
	b.WriteString("Machine:\n\n" + r.machine.Markdown() + "\n")
	fmt.Fprintf(&b, "Setup: custos server (%s) on 127.0.0.1, HTTPS (TLS 1.3) with keep-alive; %d Azure SDK clients "+
		"(azlogs Upload, bearer tokens from the built-in token service), one DCR each, no transformation; "+
		"%d generated records of ~%d bytes (bench/gen, seed %d), %d per request%s. "+
		"Every request is authenticated, authorized (RBAC), validated against the stream declaration, "+
		"sealed into the WAL (AES-256-GCM) and fsynced before the 204. %s\n\n",
		r.mode, r.cfg.clients, res.Rows, res.RawBytes/int64(max(res.Rows, 1)), r.cfg.seed, r.cfg.batch, map[bool]string{true: ", gzip-compressed", false: ""}[r.cfg.gzip],
		map[bool]string{
			true: "The request bodies (every row unique) were built before the timed phase (-pregenerate); during it the clients " +
				"only send them through the SDK (HTTPS, one request in flight per client) and share the CPUs with the server.",
			false: "The clients generate their records while they run and share the CPUs with the server.",
		}[r.cfg.pregenerate])

	b.WriteString("| Measure | Value |\n|---|---|\n")
	fmt.Fprintf(&b, "| rows | %d in %d requests (%d throttling retries) |\n", res.Rows, res.Requests, res.Retries)
	fmt.Fprintf(&b, "| wall time | %v |\n", gen.Round(res.Wall))
	fmt.Fprintf(&b, "| rows/s | %.0f |\n", rowsPerSec)
	fmt.Fprintf(&b, "| JSON MB/s | %.1f (raw %s, on the wire %s) |\n", mbPerSec, gen.MB(res.RawBytes), gen.MB(res.WireBytes))
	fmt.Fprintf(&b, "| request latency p50 / p99 / max | %v / %v / %v |\n", gen.Round(gen.Percentile(res.Latencies, 50)),
		gen.Round(gen.Percentile(res.Latencies, 99)), gen.Round(gen.Percentile(res.Latencies, 100)))
	var cpuPerM float64
	if r.statsErr == nil {
		cpu := r.after.cpu - r.before.cpu
		cpuPerM = cpu.Seconds() / float64(res.Rows) * 1e6
		who := "server"
		if r.mode == "in process" {
			who = "server + clients (one process)"
		}
		fmt.Fprintf(&b, "| %s CPU | %.1f s (%.1f s per million rows; %.2f cores busy) |\n", who, cpu.Seconds(), cpuPerM, cpu.Seconds()/secs)
		if r.cpuWithStop >= 0 {
			fmt.Fprintf(&b, "| server CPU including the graceful stop (flushing what the memtables held at the end) | %.1f s (%.1f s per million rows) |\n",
				r.cpuWithStop.Seconds(), r.cpuWithStop.Seconds()/float64(max(res.Rows, 1))*1e6)
		}
		if r.mode != "in process" {
			what := "generation, JSON, TLS"
			if r.cfg.pregenerate {
				what = "sending only: SDK, HTTP, TLS; bodies built before timing"
			}
			fmt.Fprintf(&b, "| client CPU (%s) | %.1f s (%.1f s per million rows) |\n", what, r.clientCPU.Seconds(), r.clientCPU.Seconds()/float64(max(res.Rows, 1))*1e6)
		}
		fmt.Fprintf(&b, "| server RSS now / peak | %s / %s |\n", gen.MB(r.after.rss), gen.MB(r.after.peak))
	} else {
		fmt.Fprintf(&b, "| server CPU, RSS | unknown: %v |\n", r.statsErr)
	}
	fmt.Fprintf(&b, "| store on disk right after the load (WAL + parts) | %s (%.1f%% of raw JSON) |\n", gen.MB(r.diskRunning), pct(r.diskRunning, res.RawBytes))
	if r.diskFlushed >= 0 {
		fmt.Fprintf(&b, "| store on disk after a graceful stop (memtables flushed, WAL trimmed) | %s (%.1f%% of raw JSON); the stop took %v |\n",
			gen.MB(r.diskFlushed), pct(r.diskFlushed, res.RawBytes), gen.Round(r.stopTook))
	}
	b.WriteString("\nTargets (issue 3): ingest ≥ 100,000 rows/s with 8 clients; bytes on disk ≤ 25% of raw JSON.\n\n")
	fmt.Fprintf(&b, "- rows/s: %.0f — %s the target\n", rowsPerSec, gen.Verdict(rowsPerSec >= 100_000))
	if r.diskFlushed >= 0 {
		fmt.Fprintf(&b, "- bytes on disk: %.1f%% of raw JSON — %s the target\n", pct(r.diskFlushed, res.RawBytes), gen.Verdict(pct(r.diskFlushed, res.RawBytes) <= 25))
	} else {
		b.WriteString("- bytes on disk: not judged — an attached server was not stopped, so its WAL still holds the rows uncompressed\n")
	}
	if r.cfg.cpuprofile != "" {
		fmt.Fprintf(&b, "\nCPU profile of the load phase: `%s` (`go tool pprof -top %s`).\n", r.cfg.cpuprofile, r.cfg.cpuprofile)
	}
	return b.String()
}

func pct(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}
