package server

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestPanicRecoveryAndBodyCap(t *testing.T) {
	cfg := testConfig(newDataDir(t))
	cfg.Limits.MaxRequestBodyBytes = 2048
	s, logs := newServer(t, cfg)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.router.handle("GET /test/panic", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("boom")
	})))
	must(s.router.handle("POST /test/echo", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			return
		}
		w.Write(b)
	})))
	ts := runServer(t, s, logs)
	c := ts.client(t)

	resp, err := c.Get(ts.url("/test/panic"))
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp.Body)
	resp.Body.Close()
	var env struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if resp.StatusCode != 500 || json.Unmarshal([]byte(body), &env) != nil || env.Error.Code != "InternalServerError" {
		t.Fatalf("panic: %d %q; want 500 InternalServerError envelope", resp.StatusCode, body)
	}
	if strings.Contains(body, "boom") {
		t.Fatal("panic value reached the client")
	}
	if !strings.Contains(logs.String(), "panic serving request") {
		t.Fatal("panic not logged")
	}
	// The server still serves.
	resp, err = c.Get(ts.url("/healthz"))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz after a panic: %v", err)
	}
	resp.Body.Close()

	// Declared length over the cap: refused before the handler.
	resp, err = c.Post(ts.url("/test/echo"), "text/plain", strings.NewReader(strings.Repeat("x", 4096)))
	if err != nil {
		t.Fatal(err)
	}
	body = readAll(t, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 413 || resp.Header.Get("x-ms-error-code") != "RequestEntityTooLarge" {
		t.Fatalf("oversized body: %d %q; want 413 RequestEntityTooLarge", resp.StatusCode, body)
	}
	// Undeclared length (chunked): the reader stops at the cap.
	resp, err = c.Post(ts.url("/test/echo"), "text/plain", io.MultiReader(strings.NewReader(strings.Repeat("y", 4096))))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("oversized chunked body: %d; want 413", resp.StatusCode)
	}
	// Within the cap.
	resp, err = c.Post(ts.url("/test/echo"), "text/plain", strings.NewReader("small"))
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, resp.Body); got != "small" {
		t.Fatalf("echo %q; want small", got)
	}
	resp.Body.Close()
}

var sampleLine = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\})? (\+Inf|-Inf|NaN|[-+0-9.eE]+)$`)

func TestMetricsExposition(t *testing.T) {
	cfg := testConfig(newDataDir(t))
	cfg.InsecureMetricsWithoutAuth = true
	ts := startServer(t, cfg)
	c := ts.client(t)
	for range 3 {
		resp, err := c.Get(ts.url("/healthz"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if resp, err := c.Get(ts.url("/nope")); err == nil {
		resp.Body.Close()
	}
	resp, err := c.Get(ts.url("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatalf("content type %q", ct)
	}
	samples := map[string]string{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "# HELP ") || strings.HasPrefix(line, "# TYPE ") {
			continue
		}
		if !sampleLine.MatchString(line) {
			t.Errorf("malformed sample line %q", line)
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		samples[line[:i]] = line[i+1:]
	}
	for _, want := range []string{
		`custos_http_requests_total{method="GET",route="GET /healthz",code="200"}`,
		`custos_http_requests_total{method="GET",route="unmatched",code="404"}`,
		`custos_http_request_duration_seconds_count{method="GET",route="GET /healthz"}`,
		`custos_http_request_duration_seconds_bucket{method="GET",route="GET /healthz",le="+Inf"}`,
		`go_goroutines`, `go_memstats_alloc_bytes`, `process_start_time_seconds`,
		`process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_open_fds`,
		`custos_query_worker_slots`, `custos_query_worker_slots_in_use`, `custos_query_worker_slots_waiting`,
		`custos_query_worker_slot_wait_seconds_total`,
	} {
		if _, ok := samples[want]; !ok {
			t.Errorf("metric %s missing", want)
		}
	}
	if v := samples[`custos_query_worker_slots`]; v != strconv.Itoa(runtime.GOMAXPROCS(0)) {
		t.Errorf("custos_query_worker_slots %s; want GOMAXPROCS (%d)", v, runtime.GOMAXPROCS(0))
	}
	if v := samples[`custos_http_requests_total{method="GET",route="GET /healthz",code="200"}`]; v != "3" {
		t.Errorf("healthz count %s; want 3", v)
	}
	if v, _ := strconv.ParseFloat(samples["process_start_time_seconds"], 64); time.Since(time.Unix(int64(v), 0)) > time.Hour {
		t.Errorf("process_start_time_seconds %v is not recent", v)
	}
}

func TestHistogramBuckets(t *testing.T) {
	m := newMetrics(time.Now())
	for _, d := range []time.Duration{time.Millisecond, 5 * time.Millisecond, 700 * time.Millisecond, time.Hour} {
		m.begin()
		m.observe("GET", "r", 200, d)
	}
	var b strings.Builder
	w := bufio.NewWriter(&b)
	m.writeRequests(w)
	w.Flush()
	out := b.String()
	for _, want := range []string{
		`custos_http_request_duration_seconds_bucket{method="GET",route="r",le="0.005"} 2`,
		`custos_http_request_duration_seconds_bucket{method="GET",route="r",le="0.5"} 2`,
		`custos_http_request_duration_seconds_bucket{method="GET",route="r",le="1"} 3`,
		`custos_http_request_duration_seconds_bucket{method="GET",route="r",le="300"} 3`,
		`custos_http_request_duration_seconds_bucket{method="GET",route="r",le="+Inf"} 4`,
		`custos_http_request_duration_seconds_count{method="GET",route="r"} 4`,
		`custos_http_requests_in_flight 0`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	if got := quoteLabel("a\"b\\c\nd"); got != `"a\"b\\c\nd"` {
		t.Errorf("quoteLabel = %s", got)
	}
}
