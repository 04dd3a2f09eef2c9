package server

import (
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"
)

// TestClockOffsetEnv names a file holding a Go duration ("-2h", "0s") that is
// added to the server's clock, re-read every 100 ms while the server runs.
//
// TEST ONLY: the fault tests (e2e TestClockJumpsBack) use it to make the
// clock of a real server jump backwards mid-run. It changes what the token
// service, the store (_TimeReceived, retention), queries, alerts and the
// activity log take as "now", so it must never be set in production; the
// server logs a warning at start when it is.
const TestClockOffsetEnv = "CUSTOS_TEST_CLOCK_OFFSET_FILE"

// offsetClock is a wall clock shifted by the duration in a file.
type offsetClock struct {
	path string
	log  *slog.Logger

	mu     sync.Mutex // guards the fields below
	offset time.Duration
	readAt time.Time // real time of the last read
}

func newOffsetClock(path string, log *slog.Logger) *offsetClock {
	c := &offsetClock{path: path, log: log}
	c.reload(time.Now())
	return c
}

func (c *offsetClock) reload(real time.Time) {
	c.readAt = real
	b, err := os.ReadFile(c.path)
	if err != nil {
		return // keep the last offset
	}
	d, err := time.ParseDuration(strings.TrimSpace(string(b)))
	if err != nil || d == c.offset {
		return
	}
	c.log.Warn("test clock offset changed", slog.Duration("from", c.offset), slog.Duration("to", d))
	c.offset = d
}

// Now returns the real time plus the current offset.
func (c *offsetClock) Now() time.Time {
	real := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if d := real.Sub(c.readAt); d >= 100*time.Millisecond || d < 0 {
		c.reload(real)
	}
	// Round(0) drops the monotonic reading, so comparisons and
	// subtractions see the shifted wall clock as a real jump would.
	return real.Add(c.offset).Round(0)
}

// testClockFromEnv returns the offset clock when TestClockOffsetEnv is set.
func testClockFromEnv(log *slog.Logger) func() time.Time {
	path := os.Getenv(TestClockOffsetEnv)
	if path == "" {
		return nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log.Warn("TEST ONLY: the server clock follows an offset file; never set "+TestClockOffsetEnv+" in production", slog.String("file", path))
	return newOffsetClock(path, log).Now
}

// TestPprofEnv names a loopback address ("127.0.0.1:0" picks a port) on
// which the server serves runtime/pprof profiles (GET /debug/pprof/{heap,allocs,goroutine,...}[?gc=1],
// and a CPU profile: GET /debug/pprof/profile?seconds=N), and the port it picked is written
// to the file named by TestPprofEnv + "_FILE" (if set).
//
// TEST ONLY: the soak test (test/soak -soak.heapprofile) takes heap profiles
// of the real server with it. The listener has no authentication; it accepts
// only loopback addresses, and the server logs a warning at start.
const TestPprofEnv = "CUSTOS_TEST_PPROF_ADDR"

// startTestPprof starts the pprof listener when TestPprofEnv is set.
func startTestPprof(log *slog.Logger) {
	addr := os.Getenv(TestPprofEnv)
	if addr == "" {
		return
	}
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		log.Error("TEST ONLY pprof listener refused: not a loopback address", slog.String("addr", addr))
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Error("TEST ONLY pprof listener", slog.String("error", err.Error()))
		return
	}
	log.Warn("TEST ONLY: serving pprof profiles without authentication; never set "+TestPprofEnv+" in production", slog.String("addr", ln.Addr().String()))
	if f := os.Getenv(TestPprofEnv + "_FILE"); f != "" {
		_ = os.WriteFile(f, []byte(ln.Addr().String()), 0o600)
	}
	// runtime/pprof rather than net/http/pprof, whose import would register
	// handlers on http.DefaultServeMux in every binary.
	mux := http.NewServeMux()
	// A CPU profile of the next ?seconds=N (default 5, at most 60): the
	// benchmarks' cold-start probes profile the real binary with it.
	mux.HandleFunc("GET /debug/pprof/profile", func(w http.ResponseWriter, r *http.Request) {
		secs, err := strconv.Atoi(r.URL.Query().Get("seconds"))
		if err != nil || secs <= 0 {
			secs = 5
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		if err := pprof.StartCPUProfile(w); err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		select {
		case <-time.After(time.Duration(min(secs, 60)) * time.Second):
		case <-r.Context().Done():
		}
		pprof.StopCPUProfile()
	})
	mux.HandleFunc("GET /debug/pprof/{name}", func(w http.ResponseWriter, r *http.Request) {
		p := pprof.Lookup(r.PathValue("name"))
		if p == nil {
			http.NotFound(w, r)
			return
		}
		if r.URL.Query().Get("gc") == "1" {
			runtime.GC()
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_ = p.WriteTo(w, 0)
	})
	go func() { _ = (&http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}).Serve(ln) }()
}
