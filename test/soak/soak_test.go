// Package soak holds the soak test: sustained ingestion at half of the
// measured capacity, concurrent queries and 200 log search alert rules,
// against the real custos binary, for a fixed time. It checks that nothing
// fails, that every acknowledged row is stored exactly once, and that the
// server's memory shows no growth trend (judged in runs of 10 minutes or
// more); it reports query latency per window (timings are reported, never
// asserted).
//
//	go test ./test/soak -soak.duration 30m -timeout 45m -v    # the full soak
//	go test ./test/soak                                        # the CI version: 3 minutes
package soak

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"custos/bench/gen"
	"custos/bench/logdata"
	"custos/e2e"
)

var (
	duration = flag.Duration("soak.duration", 3*time.Minute, "how long the sustained phase runs")
	nRules   = flag.Int("soak.rules", 200, "log search alert rules at a 1-minute frequency")
	report   = flag.String("soak.report", "", "write the latency and memory report to this file")
	heapDir  = flag.String("soak.heapprofile", "", "write heap profiles of the server (after the setup, then every 2 minutes and at the end) to this directory; compare with go tool pprof -diff_base")
)

const roleLogAnalyticsReader = "73c42c96-874c-492b-b04d-ab87d138a893"

// soakBytesPerRow is a generous estimate of the store's bytes on disk per
// soak row (227 in bench/peers' 2026-11-27 run, on the same generator).
const soakBytesPerRow = 300

// freeBytes is the space available to an unprivileged writer on dir's
// filesystem.
func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatalf("statfs %s: %v", dir, err)
	}
	return int64(st.Bavail) * st.Bsize
}

// ingestClients is how many concurrent clients the soak ingests with.
const ingestClients = 8

// soakQuery is one question the soak's query loops ask. Dashboards ask about
// recent data: a timespan bounds what they scan, so their latency should not
// grow with the table and their p99 is judged for stability. Whole-table
// questions (no timespan) grow with the data by nature; they are reported
// apart.
type soakQuery struct {
	kql      string
	timespan string // ISO 8601 duration; empty scans the whole table
}

var queries = []soakQuery{
	{"Bench_CL | summarize count() by bin(TimeGenerated, 1m), Level", "PT15M"},
	{"Bench_CL | where Level == 'Error' | summarize count() by Service | top 5 by count_", "PT15M"},
	{"Bench_CL | summarize avg(Latency), percentiles(Latency, 95) by Service", "PT5M"},
	{"Bench_CL | where Status >= 500 | take 100", "PT5M"},
	{"Bench_CL | where Message has 'quokkaquasar' | count", ""},
	{"Bench_CL | summarize count() by Level", ""},
}

func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak: runs the custos binary for minutes")
	}
	ctx := context.Background()
	root := t.TempDir()
	bin := filepath.Join(root, "custos")
	if err := e2e.BuildBinary(ctx, bin); err != nil {
		t.Fatal(err)
	}
	// The test-only pprof listener (internal/server/testclock.go) lets the
	// soak take heap profiles of the real binary.
	pprofFile := filepath.Join(root, "pprof-addr")
	srv, err := e2e.NewServer(e2e.Options{Binary: bin, DataDir: filepath.Join(root, "data"), LogPath: filepath.Join(root, "server.log"),
		Args: []string{"--log-level", "warn"},
		Env:  append(os.Environ(), "CUSTOS_TEST_PPROF_ADDR=127.0.0.1:0", "CUSTOS_TEST_PPROF_ADDR_FILE="+pprofFile)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Close()
		if t.Failed() {
			b, _ := srv.Log()
			if len(b) > 6000 {
				b = b[len(b)-6000:]
			}
			t.Logf("server log tail:\n%s", b)
		}
	})
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	adm, err := e2e.ReadAdmin(srv.DataDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := e2e.NewClient(adm)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.GrantDataRoles(ctx); err != nil {
		t.Fatal(err)
	}
	ruleIDs, err := gen.Setup(ctx, c, 4)
	if err != nil {
		t.Fatal(err)
	}

	// Calibrate: the capacity of this machine right now, with 4 clients.
	calib := logdata.New(logdata.Options{Seed: 1, Rows: 40_000})
	res, err := gen.Load(ctx, c, ruleIDs, calib, gen.LoadOptions{Clients: 4})
	if err != nil {
		t.Fatal(err)
	}
	capacity := float64(res.Rows) / res.Wall.Seconds()
	rate := max(capacity/2, 500)
	t.Logf("measured capacity %.0f rows/s; soaking at %.0f rows/s for %v", capacity, rate, *duration)
	// The soak stores everything it sends (about 230 bytes a row on disk,
	// bench/peers): a data directory that fills up turns the run into a
	// disk-full test (503s, which are right, but not a soak). Refuse to
	// start without room for the planned rows with a margin.
	if need, free := int64(rate*duration.Seconds()*soakBytesPerRow)+1<<30, freeBytes(t, srv.DataDir()); free < need {
		t.Fatalf("the soak needs about %.1f GB free for its data (%.0f rows/s for %v at ~%d bytes a row, plus 1 GB), and %s has %.1f GB: free space or point TMPDIR at a larger filesystem",
			float64(need)/1e9, rate, *duration, soakBytesPerRow, srv.DataDir(), float64(free)/1e9)
	}
	acked := int64(res.Rows)

	// 200 log search rules, each with its own identity allowed to read the workspace.
	ws := adm.WorkspaceResourceID()
	for i := range *nRules {
		body := map[string]any{"location": "local", "identity": map[string]any{"type": "SystemAssigned"},
			"properties": map[string]any{"severity": 3, "enabled": true, "scopes": []string{ws},
				"evaluationFrequency": "PT1M", "windowSize": "PT5M",
				"criteria": map[string]any{"allOf": []any{map[string]any{
					"query":           fmt.Sprintf("Bench_CL | where Host == 'web-%d' and Level == 'Error'", i%500),
					"timeAggregation": "Count", "operator": "GreaterThan", "threshold": 1e9,
				}}}}}
		path := fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Insights/scheduledQueryRules/soak-%03d?api-version=2023-12-01",
			adm.SubscriptionID, adm.ResourceGroup, i)
		raw, err := c.ARM(ctx, http.MethodPut, path, body)
		if err != nil {
			t.Fatalf("create rule %d: %v", i, err)
		}
		var rule struct {
			Identity struct {
				PrincipalID string `json:"principalId"`
			} `json:"identity"`
		}
		if err := json.Unmarshal(raw, &rule); err != nil || rule.Identity.PrincipalID == "" {
			t.Fatalf("rule %d has no identity: %v %s", i, err, raw)
		}
		if err := c.AssignRole(ctx, ws, roleLogAnalyticsReader, rule.Identity.PrincipalID); err != nil {
			t.Fatalf("grant rule %d: %v", i, err)
		}
	}

	// heap fetches the server's heap profile (after a GC) and returns the
	// live heap bytes; with -soak.heapprofile it also saves the profile.
	heapProfile := func(name string) {
		addr, err := os.ReadFile(pprofFile)
		if err != nil {
			t.Errorf("pprof address: %v", err)
			return
		}
		resp, err := http.Get("http://" + string(addr) + "/debug/pprof/heap?gc=1")
		if err != nil {
			t.Errorf("heap profile: %v", err)
			return
		}
		defer resp.Body.Close()
		if *heapDir == "" {
			return
		}
		if err := os.MkdirAll(*heapDir, 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(filepath.Join(*heapDir, name+".pb.gz"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := io.Copy(f, resp.Body); err != nil {
			t.Errorf("heap profile: %v", err)
		}
	}
	heapProfile("heap-00-start")

	sctx, stop := context.WithTimeout(ctx, *duration)
	defer stop()
	var (
		wg          sync.WaitGroup
		ingestErrs  atomic.Int64
		queryErrs   atomic.Int64
		firstErr    atomic.Value
		mu          sync.Mutex
		latencies   = map[int][]time.Duration{} // windowed queries, by minute of the run
		wholeTable  = map[int][]time.Duration{} // whole-table queries, by minute
		rssSamples  []int64
		heapSamples []int64 // go_memstats_heap_inuse_bytes from /metrics
		// The decoded-chunk cache's memory (outside the Go heap, in RSS) and
		// its bound, from /metrics: it fills as the windows fill, up to the
		// bound, so the trend is judged on RSS without it.
		cacheSamples []int64
		cacheLimit   int64
		liveHeap     []int64 // the same, right after a forced GC, every 2 minutes
		started      = time.Now()
		// The soak's rows are stamped with the time they are sent (when the
		// rate is held), as live logs are: the dashboards' timespans and the
		// alert rules' 5-minute windows then cover the newest data.
		planned     = max(int(rate*duration.Seconds()), 1)
		soakGen     = logdata.New(logdata.Options{Seed: 2, Rows: planned, Span: *duration, End: time.Now().Add(*duration)})
		next        atomic.Int64
		batchRows   = 250
		perClient   = rate / ingestClients
		recordError = func(err error) {
			if firstErr.Load() == nil {
				firstErr.Store(err.Error())
			}
		}
	)
	// Ingestion: ingestClients clients paced to the soak rate. Each keeps a
	// schedule (batch i is due at start + i intervals) and sends at once
	// when it is behind, so a slow response delays batches but does not
	// lower the offered rate, as a ticker dropping ticks would.
	for k := range ingestClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			interval := time.Duration(float64(time.Second) * float64(batchRows) / perClient)
			due := time.Now().Add(time.Duration(k) * interval / ingestClients)
			for {
				if wait := time.Until(due); wait > 0 {
					select {
					case <-sctx.Done():
						return
					case <-time.After(wait):
					}
				} else if sctx.Err() != nil {
					return
				}
				due = due.Add(interval)
				first := int(next.Add(int64(batchRows))) - batchRows
				body, _ := soakGen.AppendBatch(nil, first, batchRows)
				uctx, cancel := context.WithTimeout(ctx, time.Minute)
				err := c.Upload(uctx, ruleIDs[k%len(ruleIDs)], gen.Stream, body)
				cancel()
				if err != nil {
					ingestErrs.Add(1)
					recordError(fmt.Errorf("ingest: %w", err))
					continue
				}
				atomic.AddInt64(&acked, int64(batchRows))
			}
		}()
	}
	// Queries: two loops over the question set.
	for k := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := k; sctx.Err() == nil; i++ {
				q := queries[i%len(queries)]
				t0 := time.Now()
				status, code, body, err := c.QueryRawTimespan(ctx, q.kql, q.timespan)
				d := time.Since(t0)
				if err == nil && status != http.StatusOK {
					err = fmt.Errorf("query %q: %d %s: %.200s", q.kql, status, code, body)
				}
				if err != nil {
					queryErrs.Add(1)
					recordError(err)
					continue
				}
				mu.Lock()
				m := int(time.Since(started) / time.Minute)
				if q.timespan == "" {
					wholeTable[m] = append(wholeTable[m], d)
				} else {
					latencies[m] = append(latencies[m], d)
				}
				mu.Unlock()
			}
		}()
	}
	// Memory: the server's RSS every 5 s.
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case <-tick.C:
			}
			if _, rss, _, err := srv.ProcStat(); err == nil {
				g := serverGauges(ctx, c, "go_memstats_heap_inuse_bytes", "custos_store_read_cache_bytes", "custos_store_read_cache_limit_bytes")
				mu.Lock()
				rssSamples = append(rssSamples, rss)
				heapSamples = append(heapSamples, g[0])
				cacheSamples = append(cacheSamples, g[1])
				cacheLimit = g[2]
				n := len(rssSamples)
				mu.Unlock()
				if n%24 == 0 { // every 2 minutes
					// The profile forces a GC, so the heap in use read right
					// after it is (nearly) the live heap: unlike RSS it does not
					// rise as the off-heap caches fill or as GOGC lets garbage
					// accumulate.
					heapProfile(fmt.Sprintf("heap-%02d-min", n/12))
					live := goHeap(ctx, c)
					mu.Lock()
					liveHeap = append(liveHeap, live)
					mu.Unlock()
				}
			}
		}
	}()
	wg.Wait()
	heapProfile("heap-99-end")

	// Every acknowledged row is stored exactly once.
	_, rows, err := c.QueryRows(ctx, "Bench_CL | count")
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := rows[0][0].(float64)
	if int64(stored) != atomic.LoadInt64(&acked) {
		t.Errorf("stored %v rows, acknowledged %d", stored, acked)
	}
	if n := ingestErrs.Load() + queryErrs.Load(); n > 0 {
		t.Errorf("%d ingestion and %d query errors; first: %v", ingestErrs.Load(), queryErrs.Load(), firstErr.Load())
	}

	// Memory: no growth trend. The median RSS of the last quarter of the run,
	// less the decoded-chunk cache, stays within 25 % (plus 64 MB for heap
	// growth steps) of the median of the second quarter, after warm-up. The
	// cache is memory the server is told it may use (query.readCacheBytes;
	// by default an eighth of the machine's): it grows with the data the
	// queries re-read until its bound and must never pass the bound.
	var summary strings.Builder
	if n := len(rssSamples); n >= 8 {
		median := func(s []int64) int64 { s = slices.Clone(s); slices.Sort(s); return s[len(s)/2] }
		rssRaw := rssSamples
		rssSamples = make([]int64, n)
		var cacheMax int64
		for i, r := range rssRaw {
			rssSamples[i] = r - cacheSamples[i]
			cacheMax = max(cacheMax, cacheSamples[i])
		}
		q2, q4 := median(rssSamples[n/4:n/2]), median(rssSamples[3*n/4:])
		fmt.Fprintf(&summary, "RSS median: second quarter %.1f MB, last quarter %.1f MB (%d samples)\n", float64(median(rssRaw[n/4:n/2]))/1e6, float64(median(rssRaw[3*n/4:]))/1e6, n)
		fmt.Fprintf(&summary, "RSS less the decoded-chunk cache (median, judged): second quarter %.1f MB, last quarter %.1f MB\n", float64(q2)/1e6, float64(q4)/1e6)
		fmt.Fprintf(&summary, "decoded-chunk cache: at most %.1f MB of its %.1f MB bound; by minute (MB):", float64(cacheMax)/1e6, float64(cacheLimit)/1e6)
		for i := 0; i < n; i += 12 {
			fmt.Fprintf(&summary, " %.0f", float64(cacheSamples[i])/1e6)
		}
		fmt.Fprintf(&summary, "\n")
		if cacheLimit > 0 && cacheMax > cacheLimit {
			t.Errorf("decoded-chunk cache held %d bytes, above its bound %d", cacheMax, cacheLimit)
		}
		if m := len(heapSamples); m >= 8 {
			fmt.Fprintf(&summary, "Go heap in use (median): second quarter %.1f MB, last quarter %.1f MB\n",
				float64(median(heapSamples[m/4:m/2]))/1e6, float64(median(heapSamples[3*m/4:]))/1e6)
		}
		fmt.Fprintf(&summary, "RSS by minute (MB):")
		for i := 0; i < n; i += 12 {
			fmt.Fprintf(&summary, " %.0f", float64(rssRaw[i])/1e6)
		}
		fmt.Fprintf(&summary, "\nGo heap in use by minute (MB):")
		for i := 0; i < len(heapSamples); i += 12 {
			fmt.Fprintf(&summary, " %.0f", float64(heapSamples[i])/1e6)
		}
		fmt.Fprintf(&summary, "\n")
		// A short run cannot tell a leak from warm-up: the table grows from
		// empty, and memtables, caches and part metadata grow with it. The
		// trend is judged only in runs of 10 minutes or more (the CI version
		// reports it).
		switch {
		case *duration < 10*time.Minute:
			fmt.Fprintf(&summary, "memory trend not judged: the run is shorter than 10 minutes\n")
		case float64(q4) > 1.25*float64(q2)+64e6:
			t.Errorf("server memory grows: RSS less the chunk cache, second-quarter median %d bytes, last-quarter median %d bytes", q2, q4)
		}
		if m := len(liveHeap); m >= 8 {
			l2, l4 := median(liveHeap[m/4:m/2]), median(liveHeap[3*m/4:])
			fmt.Fprintf(&summary, "live heap after GC (median): second quarter %.1f MB, last quarter %.1f MB; every 2 minutes (MB):", float64(l2)/1e6, float64(l4)/1e6)
			for _, v := range liveHeap {
				fmt.Fprintf(&summary, " %.0f", float64(v)/1e6)
			}
			fmt.Fprintf(&summary, "\n")
			if *duration >= 10*time.Minute && float64(l4) > 1.25*float64(l2)+64e6 {
				t.Errorf("server live heap grows: second-quarter median %d bytes, last-quarter median %d bytes", l2, l4)
			}
		}
	} else {
		t.Errorf("only %d memory samples: the run is too short to judge a trend", n)
	}
	fmt.Fprintf(&summary, "capacity %.0f rows/s, soak rate %.0f rows/s offered, %.0f rows/s acknowledged during the soak; %d rows acknowledged and stored, %d rules\n",
		capacity, rate, float64(acked-int64(res.Rows))/duration.Seconds(), acked, *nRules)
	// Latency is reported, never asserted: the windowed (dashboard) queries'
	// p99 should stay level; the whole-table ones grow with the table.
	fmt.Fprintf(&summary, "| minute | windowed queries | p50 | p99 | whole-table queries | p50 | p99 |\n|---|---|---|---|---|---|---|\n")
	cells := func(l []time.Duration) string {
		if len(l) == 0 {
			return "0 | – | –"
		}
		slices.Sort(l)
		return fmt.Sprintf("%d | %v | %v", len(l), gen.Round(l[len(l)/2]), gen.Round(gen.Percentile(l, 99)))
	}
	for m := 0; m <= int(*duration/time.Minute); m++ {
		if len(latencies[m])+len(wholeTable[m]) == 0 {
			continue
		}
		fmt.Fprintf(&summary, "| %d | %s | %s |\n", m, cells(latencies[m]), cells(wholeTable[m]))
	}
	t.Log("\n" + summary.String())
	if *report != "" {
		if err := os.WriteFile(*report, []byte(summary.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// serverGauges reads gauges from the server's /metrics (0 for a missing
// one or a failed read).
func serverGauges(ctx context.Context, c *e2e.Client, names ...string) []int64 {
	out := make([]int64, len(names))
	status, _, body, err := c.Do(ctx, "https://management.azure.com", http.MethodGet, "/metrics", nil)
	if err != nil || status != http.StatusOK {
		return out
	}
	for _, line := range strings.Split(string(body), "\n") {
		for i, name := range names {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				var f float64
				fmt.Sscan(v, &f)
				out[i] = int64(f)
			}
		}
	}
	return out
}

// goHeap reads go_memstats_heap_inuse_bytes from the server's /metrics, or 0.
func goHeap(ctx context.Context, c *e2e.Client) int64 {
	return serverGauges(ctx, c, "go_memstats_heap_inuse_bytes")[0]
}
