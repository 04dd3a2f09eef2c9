package server

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The self-metrics are written in the Prometheus text exposition format
// (version 0.0.4) by this small registry rather than by client_golang, whose
// transitive modules are not in go.sum. The metric names follow client_golang's
// Go and process collectors so that existing dashboards work.

// latencyBuckets are the upper bounds, in seconds, of the request latency
// histogram.
var latencyBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// metrics holds the server's request counters and latency histograms. Safe
// for concurrent use.
type metrics struct {
	mu sync.Mutex // guards requests and latency
	// requests counts finished requests by method, route and status code.
	requests map[requestKey]uint64
	// latency is the request duration histogram by method and route.
	latency map[routeKey]*histogram
	// inflight is the number of requests being served.
	inflight int64
	start    time.Time
}

type routeKey struct{ method, route string }

type requestKey struct {
	routeKey
	code int
}

type histogram struct {
	counts []uint64 // per bucket, not cumulative; the last is +Inf
	sum    float64
	count  uint64
}

func newMetrics(now time.Time) *metrics {
	return &metrics{requests: map[requestKey]uint64{}, latency: map[routeKey]*histogram{}, start: now}
}

// metricMethod bounds the method label to the standard methods.
func metricMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

func (m *metrics) begin() {
	m.mu.Lock()
	m.inflight++
	m.mu.Unlock()
}

// observe records one finished request. route is the registered pattern, or
// "unmatched", so that label cardinality stays bounded.
func (m *metrics) observe(method, route string, code int, d time.Duration) {
	rk := routeKey{metricMethod(method), route}
	secs := d.Seconds()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.inflight--
	m.requests[requestKey{rk, code}]++
	h := m.latency[rk]
	if h == nil {
		h = &histogram{counts: make([]uint64, len(latencyBuckets)+1)}
		m.latency[rk] = h
	}
	i, _ := slices.BinarySearch(latencyBuckets, secs)
	h.counts[i]++
	h.sum += secs
	h.count++
}

// writeTo writes every metric in the text exposition format.
func (m *metrics) writeTo(w io.Writer) error {
	bw := bufio.NewWriter(w)
	m.writeRequests(bw)
	writeGoMetrics(bw)
	writeProcessMetrics(bw, m.start)
	return bw.Flush()
}

func (m *metrics) writeRequests(w *bufio.Writer) {
	m.mu.Lock()
	reqs := make([]requestKey, 0, len(m.requests))
	for k := range m.requests {
		reqs = append(reqs, k)
	}
	counts := make(map[requestKey]uint64, len(m.requests))
	for k, v := range m.requests {
		counts[k] = v
	}
	routes := make([]routeKey, 0, len(m.latency))
	hists := make(map[routeKey]histogram, len(m.latency))
	for k, h := range m.latency {
		routes = append(routes, k)
		hists[k] = histogram{counts: slices.Clone(h.counts), sum: h.sum, count: h.count}
	}
	inflight := m.inflight
	m.mu.Unlock()

	slices.SortFunc(reqs, func(a, b requestKey) int {
		if c := strings.Compare(a.route, b.route); c != 0 {
			return c
		}
		if c := strings.Compare(a.method, b.method); c != 0 {
			return c
		}
		return a.code - b.code
	})
	slices.SortFunc(routes, func(a, b routeKey) int {
		if c := strings.Compare(a.route, b.route); c != 0 {
			return c
		}
		return strings.Compare(a.method, b.method)
	})

	header(w, "custos_http_requests_total", "counter", "HTTP requests served, by method, route pattern and status code.")
	for _, k := range reqs {
		fmt.Fprintf(w, "custos_http_requests_total{method=%s,route=%s,code=\"%d\"} %d\n",
			quoteLabel(k.method), quoteLabel(k.route), k.code, counts[k])
	}
	header(w, "custos_http_requests_in_flight", "gauge", "HTTP requests being served.")
	fmt.Fprintf(w, "custos_http_requests_in_flight %d\n", inflight)
	header(w, "custos_http_request_duration_seconds", "histogram", "HTTP request latency, by method and route pattern.")
	for _, k := range routes {
		h := hists[k]
		labels := "method=" + quoteLabel(k.method) + ",route=" + quoteLabel(k.route)
		var cum uint64
		for i, b := range latencyBuckets {
			cum += h.counts[i]
			fmt.Fprintf(w, "custos_http_request_duration_seconds_bucket{%s,le=\"%s\"} %d\n", labels, formatFloat(b), cum)
		}
		fmt.Fprintf(w, "custos_http_request_duration_seconds_bucket{%s,le=\"+Inf\"} %d\n", labels, h.count)
		fmt.Fprintf(w, "custos_http_request_duration_seconds_sum{%s} %s\n", labels, formatFloat(h.sum))
		fmt.Fprintf(w, "custos_http_request_duration_seconds_count{%s} %d\n", labels, h.count)
	}
}

func writeGoMetrics(w *bufio.Writer) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	header(w, "go_info", "gauge", "Information about the Go environment.")
	fmt.Fprintf(w, "go_info{version=%s} 1\n", quoteLabel(runtime.Version()))
	gauge(w, "go_goroutines", "Number of goroutines that currently exist.", float64(runtime.NumGoroutine()))
	gauge(w, "go_memstats_alloc_bytes", "Number of bytes allocated in heap and currently in use.", float64(ms.Alloc))
	counter(w, "go_memstats_alloc_bytes_total", "Total number of bytes allocated in heap until now.", float64(ms.TotalAlloc))
	gauge(w, "go_memstats_sys_bytes", "Number of bytes obtained from system.", float64(ms.Sys))
	gauge(w, "go_memstats_heap_inuse_bytes", "Number of heap bytes in use.", float64(ms.HeapInuse))
	gauge(w, "go_memstats_heap_objects", "Number of currently allocated objects.", float64(ms.HeapObjects))
	gauge(w, "go_memstats_next_gc_bytes", "Number of heap bytes when next garbage collection will take place.", float64(ms.NextGC))
	gauge(w, "go_memstats_last_gc_time_seconds", "Number of seconds since 1970 of last garbage collection.", float64(ms.LastGC)/1e9)
	counter(w, "go_gc_cycles_total", "Number of completed GC cycles.", float64(ms.NumGC))
	counter(w, "go_gc_pause_seconds_total", "Total GC stop-the-world pause time.", float64(ms.PauseTotalNs)/1e9)
	gauge(w, "go_gomaxprocs", "The value of GOMAXPROCS.", float64(runtime.GOMAXPROCS(0)))
}

func header(w *bufio.Writer, name, typ, help string) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
}

func gauge(w *bufio.Writer, name, help string, v float64) {
	header(w, name, "gauge", help)
	fmt.Fprintf(w, "%s %s\n", name, formatFloat(v))
}

func counter(w *bufio.Writer, name, help string, v float64) {
	header(w, name, "counter", help)
	fmt.Fprintf(w, "%s %s\n", name, formatFloat(v))
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// quoteLabel quotes a label value as the exposition format requires.
func quoteLabel(v string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range v {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
