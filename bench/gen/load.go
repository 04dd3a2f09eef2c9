// Package gen is the server side of Custos's data-path benchmarks
// (bench/ingest, bench/query): the setup that starts or reaches a server and
// loads bench/logdata's records into it through the Logs Ingestion API, and
// the machine report written into bench/results.
package gen

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azingest "github.com/Azure/azure-sdk-for-go/sdk/monitor/ingestion/azlogs"

	"custos/bench/logdata"
	"custos/e2e"
)

// Table and Stream are the benchmark table and its DCR input stream.
const (
	Table  = "Bench_CL"
	Stream = "Custom-Bench"
)

// Setup creates Table and n data collection rules bench-0..bench-(n-1), all
// sending Stream to Table, and returns their immutable IDs. One rule per
// client keeps each under the per-rule rate limit Custos enforces as Azure
// does (12,000 requests and 2 GB per minute). Idempotent.
func Setup(ctx context.Context, c *e2e.Client, n int) ([]string, error) {
	cols := make([]e2e.Column, len(logdata.Columns))
	for i, col := range logdata.Columns {
		cols[i] = e2e.Column{Name: col.Name, Type: col.Type}
	}
	if err := c.CreateTable(ctx, Table, cols); err != nil {
		return nil, err
	}
	rules := make([]string, n)
	for i := range rules {
		id, err := c.CreateDCR(ctx, fmt.Sprintf("bench-%d", i), Stream, cols, Table, "")
		if err != nil {
			return nil, err
		}
		rules[i] = id
	}
	return rules, nil
}

// LoadOptions configure Load.
type LoadOptions struct {
	Clients   int  // concurrent clients; 0 means 8
	BatchRows int  // records per request; 0 means 500 (~500 KB, under the 1 MB body limit)
	Gzip      bool // send gzip-compressed bodies (Content-Encoding: gzip)
	// Progress, if set, is called about every 2 s with the rows sent so far.
	Progress func(rows int, elapsed time.Duration)
	// Pregenerate builds every request body (generated records, gzip when
	// asked) before the timed phase, so the clients only send: the machine's
	// CPUs then go to the server and to the clients' HTTPS, not to the
	// generator. It needs memory for all of the JSON (about 1 GB per million
	// rows). The rows are the same as without it.
	Pregenerate bool
	// OnStart, if set, is called when the timed phase starts (after any
	// pregeneration), for CPU readings and profiles of the load alone.
	OnStart func()
}

// LoadResult is what Load measured, from the client side.
type LoadResult struct {
	Rows      int
	Requests  int
	Retries   int   // 429/503 answers retried
	RawBytes  int64 // JSON bytes generated
	WireBytes int64 // request body bytes sent (after gzip)
	Rare      int   // rows carrying RareTerm
	Wall      time.Duration
	Latencies []time.Duration // per acknowledged request, sorted
}

// Load sends the generator's records [0, g.Options().Rows) through rules
// (client k uses rules[k % len(rules)]) and returns when every batch is
// acknowledged. A 429 or 503 is retried after a pause; any other error stops
// the load.
func Load(ctx context.Context, c *e2e.Client, rules []string, g *logdata.Generator, o LoadOptions) (LoadResult, error) {
	if o.Clients <= 0 {
		o.Clients = 8
	}
	if o.BatchRows <= 0 {
		o.BatchRows = 500
	}
	if len(rules) == 0 {
		return LoadResult{}, errors.New("load: no data collection rules")
	}
	total := g.Options().Rows
	batches := (total + o.BatchRows - 1) / o.BatchRows
	var next, rowsSent atomic.Int64
	var mu sync.Mutex
	res := LoadResult{}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, o.Clients)
	type pregen struct {
		b  []byte
		st logdata.Batch
	}
	var bodies []pregen
	if o.Pregenerate {
		bodies = make([]pregen, batches)
		var gnext atomic.Int64
		var gwg sync.WaitGroup
		for range o.Clients {
			gwg.Add(1)
			go func() {
				defer gwg.Done()
				var zbuf bytes.Buffer
				zw := gzip.NewWriter(&zbuf)
				for {
					b := int(gnext.Add(1) - 1)
					if b >= batches {
						return
					}
					first := b * o.BatchRows
					raw, st := g.AppendBatch(nil, first, min(o.BatchRows, total-first))
					if o.Gzip {
						zbuf.Reset()
						zw.Reset(&zbuf)
						zw.Write(raw)
						zw.Close()
						raw = bytes.Clone(zbuf.Bytes())
					}
					bodies[b] = pregen{raw, st}
				}
			}()
		}
		gwg.Wait()
	}
	if o.OnStart != nil {
		o.OnStart()
	}
	start := time.Now()
	var wg sync.WaitGroup
	for k := range o.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var raw []byte
			var zbuf bytes.Buffer
			zw := gzip.NewWriter(&zbuf)
			var lats []time.Duration
			var local LoadResult
			defer func() {
				mu.Lock()
				res.Requests += local.Requests
				res.Retries += local.Retries
				res.RawBytes += local.RawBytes
				res.WireBytes += local.WireBytes
				res.Rare += local.Rare
				res.Rows += local.Rows
				res.Latencies = append(res.Latencies, lats...)
				mu.Unlock()
			}()
			rule := rules[k%len(rules)]
			for ctx.Err() == nil {
				b := int(next.Add(1) - 1)
				if b >= batches {
					return
				}
				first := b * o.BatchRows
				n := min(o.BatchRows, total-first)
				var st logdata.Batch
				var body []byte
				var opts *azingest.UploadOptions
				if bodies != nil {
					body, st = bodies[b].b, bodies[b].st
					bodies[b] = pregen{} // sent once; let the GC have it
				} else {
					raw, st = g.AppendBatch(raw[:0], first, n)
					body = raw
				}
				if o.Gzip {
					enc := "gzip"
					opts = &azingest.UploadOptions{ContentEncoding: &enc}
				}
				if o.Gzip && bodies == nil {
					zbuf.Reset()
					zw.Reset(&zbuf)
					zw.Write(raw)
					zw.Close()
					body = zbuf.Bytes()
				}
				for {
					t0 := time.Now()
					_, err := c.Ingest.Upload(ctx, rule, Stream, body, opts)
					if err == nil {
						lats = append(lats, time.Since(t0))
						break
					}
					if e2e.IsStatus(err, http.StatusTooManyRequests) || e2e.IsStatus(err, http.StatusServiceUnavailable) {
						local.Retries++
						select {
						case <-ctx.Done():
							return
						case <-time.After(retryAfter(err)):
						}
						continue
					}
					errc <- fmt.Errorf("upload rows %d..%d: %w", first, first+n, err)
					cancel()
					return
				}
				local.Requests++
				local.Rows += n
				local.RawBytes += int64(st.RawBytes)
				local.WireBytes += int64(len(body))
				local.Rare += st.Rare
				rowsSent.Add(int64(n))
			}
		}()
	}
	if o.Progress != nil {
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		tick := time.NewTicker(2 * time.Second)
	loop:
		for {
			select {
			case <-done:
				break loop
			case <-tick.C:
				o.Progress(int(rowsSent.Load()), time.Since(start))
			}
		}
		tick.Stop()
	}
	wg.Wait()
	res.Wall = time.Since(start)
	slices.Sort(res.Latencies)
	select {
	case err := <-errc:
		return res, err
	default:
	}
	if res.Rows != total {
		return res, fmt.Errorf("load: %d of %d rows sent: %w", res.Rows, total, ctx.Err())
	}
	return res, nil
}

// retryAfter reads Retry-After (seconds) from a throttling answer; 1 s when absent.
func retryAfter(err error) time.Duration {
	var re *azcore.ResponseError
	if errors.As(err, &re) && re.RawResponse != nil {
		var s int
		if _, e := fmt.Sscanf(re.RawResponse.Header.Get("Retry-After"), "%d", &s); e == nil && s > 0 && s < 120 {
			return time.Duration(s) * time.Second
		}
	}
	return time.Second
}

// Percentile returns the p-th percentile (0..100) of sorted durations.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}
