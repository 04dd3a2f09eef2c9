package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"custos/internal/logtest"
)

// testServer is a real server on 127.0.0.1:0 in a goroutine.
type testServer struct {
	*Server
	logs   *logtest.Buffer
	cancel context.CancelFunc
	done   chan error
}

// newDataDir returns a data directory path that does not exist yet.
func newDataDir(t *testing.T) string {
	return filepath.Join(t.TempDir(), "data")
}

func testConfig(dir string) Config {
	cfg := DefaultConfig()
	cfg.DataDir = dir
	cfg.Listen = "127.0.0.1:0"
	cfg.Log.Level = "debug"
	cfg.Timeouts.Shutdown = 5 * time.Second
	// These tests read data as the bootstrap admin (with data roles written
	// straight into the catalog), so they run without just-in-time mode;
	// TestJustInTimeByDefault covers the default.
	cfg.Identity.JustInTimeAccess = false
	return cfg
}

// newServer creates (without running) a server on dir.
func newServer(t *testing.T, cfg Config) (*Server, *logtest.Buffer) {
	t.Helper()
	logs := &logtest.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(context.Background(), Options{Config: cfg, Logger: log})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s, logs
}

// startServer creates and runs a server; it is stopped at test cleanup.
func startServer(t *testing.T, cfg Config) *testServer {
	t.Helper()
	s, logs := newServer(t, cfg)
	return runServer(t, s, logs)
}

func runServer(t *testing.T, s *Server, logs *logtest.Buffer) *testServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{Server: s, logs: logs, cancel: cancel, done: make(chan error, 1)}
	go func() { ts.done <- s.Run(ctx) }()
	t.Cleanup(func() { ts.stop(t) })
	return ts
}

// stop shuts the server down and waits for Run to return; idempotent.
func (ts *testServer) stop(t *testing.T) error {
	t.Helper()
	ts.cancel()
	select {
	case err, ok := <-ts.done:
		if ok {
			close(ts.done)
		}
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("server did not stop within 20s")
		return nil
	}
}

func (ts *testServer) url(path string) string {
	return "https://" + ts.Addr().String() + path
}

// caPool returns a pool holding the data directory's CA certificate.
func caPool(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(dir, caCertFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("ca.crt holds no certificate")
	}
	return pool
}

// client returns an HTTPS client that trusts only the data directory's CA
// and expects the server name localhost.
func (ts *testServer) client(t *testing.T) *http.Client {
	t.Helper()
	return &http.Client{
		Timeout: 15 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: caPool(t, ts.cfg.DataDir), ServerName: "localhost"},
			ForceAttemptHTTP2: true,
		},
	}
}

func readAll(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTLSVersions(t *testing.T) {
	dir := newDataDir(t)
	ts := startServer(t, testConfig(dir))
	pool := caPool(t, dir)

	for _, tc := range []struct {
		name     string
		min, max uint16
		ok       bool
	}{
		{"tls1.0", tls.VersionTLS10, tls.VersionTLS10, false},
		{"tls1.1", tls.VersionTLS10, tls.VersionTLS11, false},
		{"tls1.2", tls.VersionTLS12, tls.VersionTLS12, true},
		{"tls1.3", tls.VersionTLS13, tls.VersionTLS13, true},
		{"any", 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ts.Addr().String(),
				&tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tc.min, MaxVersion: tc.max})
			if !tc.ok {
				if err == nil {
					conn.Close()
					t.Fatalf("handshake limited to %s succeeded; want failure", tc.name)
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			defer conn.Close()
			st := conn.ConnectionState()
			want := tc.max
			if want == 0 {
				want = tls.VersionTLS13 // preferred whenever the client offers it
			}
			if st.Version != want {
				t.Fatalf("negotiated version %x; want %x", st.Version, want)
			}
			if st.Version == tls.VersionTLS12 && !strings.Contains(tls.CipherSuiteName(st.CipherSuite), "ECDHE") {
				t.Fatalf("TLS 1.2 suite %s is not ECDHE", tls.CipherSuiteName(st.CipherSuite))
			}
		})
	}

	t.Run("tls1.2 non-AEAD suites refused", func(t *testing.T) {
		conn, err := tls.Dial("tcp", ts.Addr().String(), &tls.Config{
			RootCAs: pool, ServerName: "localhost", MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA},
		})
		if err == nil {
			conn.Close()
			t.Fatal("CBC suite negotiated; want handshake failure")
		}
	})

	t.Run("certificate names", func(t *testing.T) {
		for _, name := range []string{"localhost", "127.0.0.1", "::1"} {
			conn, err := tls.Dial("tcp", ts.Addr().String(), &tls.Config{RootCAs: pool, ServerName: name})
			if err != nil {
				t.Fatalf("verify for %s: %v", name, err)
			}
			conn.Close()
		}
		if h, err := os.Hostname(); err == nil && validHostname(h) {
			conn, err := tls.Dial("tcp", ts.Addr().String(), &tls.Config{RootCAs: pool, ServerName: h})
			if err != nil {
				t.Fatalf("verify for host name %s: %v", h, err)
			}
			conn.Close()
		}
	})
}

func TestPlainHTTPGetsNoData(t *testing.T) {
	dir := newDataDir(t)
	ts := startServer(t, testConfig(dir))
	conn, err := net.DialTimeout("tcp", ts.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Logf("no HTTP answer (%v); connection closed", err)
		return
	}
	body := readAll(t, resp.Body)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("plain HTTP status %d; want 400", resp.StatusCode)
	}
	if strings.Contains(body, "ok") && strings.Contains(body, "status") {
		t.Fatalf("plain HTTP got data: %q", body)
	}
	if !strings.Contains(body, "HTTPS") {
		t.Fatalf("plain HTTP body %q does not say HTTPS is required", body)
	}
}

func TestHealthzAndHeaders(t *testing.T) {
	ts := startServer(t, testConfig(newDataDir(t)))
	c := ts.client(t)

	req, _ := http.NewRequest(http.MethodGet, ts.url("/healthz"), nil)
	req.Header.Set(headerCorrelationID, "3f1c2b9e-0000-4000-8000-000000000001")
	req.Header.Set(headerClientRequestID, "client-1")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d; want 200", resp.StatusCode)
	}
	var got map[string]string
	if err := json.Unmarshal([]byte(body), &got); err != nil || len(got) != 1 || got["status"] != "ok" {
		t.Fatalf("body %q; want exactly {\"status\":\"ok\"}", body)
	}
	for h, want := range map[string]string{
		headerCorrelationID:         "3f1c2b9e-0000-4000-8000-000000000001",
		headerClientRequestID:       "client-1",
		"Strict-Transport-Security": "max-age=31536000",
		"X-Content-Type-Options":    "nosniff",
		"Cache-Control":             "no-store",
	} {
		if v := resp.Header.Get(h); v != want {
			t.Errorf("%s = %q; want %q", h, v, want)
		}
	}
	if v := resp.Header.Get(headerRequestID); len(v) != 36 {
		t.Errorf("x-ms-request-id %q is not a generated GUID", v)
	}

	// A correlation ID that is unsafe to log is replaced.
	req, _ = http.NewRequest(http.MethodGet, ts.url("/healthz"), nil)
	req.Header.Set(headerCorrelationID, "bad\" id with spaces")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if v := resp.Header.Get(headerCorrelationID); len(v) != 36 || strings.Contains(v, " ") {
		t.Errorf("unsafe correlation id echoed as %q; want a generated GUID", v)
	}

	// Unknown paths get 404 in the Azure envelope.
	resp, err = c.Get(ts.url("/no/such/path?secret=hunter2"))
	if err != nil {
		t.Fatal(err)
	}
	body = readAll(t, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || resp.Header.Get("x-ms-error-code") != "NotFound" || !strings.Contains(body, `"code":"NotFound"`) {
		t.Fatalf("unknown path: %d %q; want 404 NotFound envelope", resp.StatusCode, body)
	}
	if strings.Contains(ts.logs.String(), "hunter2") {
		t.Fatal("the query string reached the log")
	}
	if !strings.Contains(ts.logs.String(), `"path":"/no/such/path"`) {
		t.Fatalf("request log line missing: %s", ts.logs.String())
	}
}

func TestDataDirLock(t *testing.T) {
	dir := newDataDir(t)
	s1, _ := newServer(t, testConfig(dir))
	defer s1.Close()
	_, err := New(context.Background(), Options{Config: testConfig(dir)})
	if !errors.Is(err, ErrDataDirLocked) {
		t.Fatalf("second server on the same directory: %v; want ErrDataDirLocked", err)
	}
	if !strings.Contains(err.Error(), dir) {
		t.Fatalf("error %q does not name the directory", err)
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	s2, _ := newServer(t, testConfig(dir))
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestFirstStartFilesAndRestart(t *testing.T) {
	dir := newDataDir(t)
	s1, _ := newServer(t, testConfig(dir))
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	modes := map[string]os.FileMode{
		caCertFile: 0o644, caKeyFile: 0o600, serverCertFile: 0o644, serverKeyFile: 0o600,
		"keys/platform.key": 0o600,
	}
	before := map[string][]byte{}
	for f, want := range modes {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatalf("first start did not create %s: %v", f, err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode %v; want %v", f, fi.Mode().Perm(), want)
		}
		before[f], _ = os.ReadFile(filepath.Join(dir, f))
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode %v; want 0700", fi.Mode().Perm())
	}

	s2, _ := newServer(t, testConfig(dir))
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	for f, b := range before {
		after, _ := os.ReadFile(filepath.Join(dir, f))
		if !bytes.Equal(b, after) {
			t.Errorf("restart changed %s", f)
		}
	}
}

func TestServerCertRenewedWhenExpiring(t *testing.T) {
	dir := newDataDir(t)
	cfg := testConfig(dir)
	s1, _ := newServer(t, cfg)
	s1.Close()
	old, _ := os.ReadFile(filepath.Join(dir, serverCertFile))
	oldCA, _ := os.ReadFile(filepath.Join(dir, caCertFile))

	// 380 days later the 397-day certificate is inside the renewal window.
	later := time.Now().Add(380 * 24 * time.Hour)
	s2, err := New(context.Background(), Options{Config: cfg, Now: func() time.Time { return later }})
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
	renewed, _ := os.ReadFile(filepath.Join(dir, serverCertFile))
	if bytes.Equal(old, renewed) {
		t.Fatal("server certificate not renewed inside the renewal window")
	}
	if ca, _ := os.ReadFile(filepath.Join(dir, caCertFile)); !bytes.Equal(ca, oldCA) {
		t.Fatal("CA changed on renewal")
	}

	// Extra host names force a new certificate that covers them.
	cfg.TLS.Hostnames = []string{"custos.example.internal", "10.1.2.3"}
	s3, _ := newServer(t, cfg)
	leaf := s3.certs.Leaf()
	s3.Close()
	for _, h := range cfg.TLS.Hostnames {
		if err := leaf.VerifyHostname(h); err != nil {
			t.Errorf("certificate does not cover %s: %v", h, err)
		}
	}
}

func TestCAWithoutKeyIsAnError(t *testing.T) {
	dir := newDataDir(t)
	s, _ := newServer(t, testConfig(dir))
	s.Close()
	if err := os.Remove(filepath.Join(dir, caKeyFile)); err != nil {
		t.Fatal(err)
	}
	_, err := New(context.Background(), Options{Config: testConfig(dir)})
	if !errors.Is(err, ErrTLSMaterial) {
		t.Fatalf("CA certificate without key: %v; want ErrTLSMaterial", err)
	}
}

func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	dir := newDataDir(t)
	s, logs := newServer(t, testConfig(dir))
	entered := make(chan struct{})
	release := make(chan struct{})
	if err := s.router.handle("GET /test/slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		io.WriteString(w, "finished")
	})); err != nil {
		t.Fatal(err)
	}
	ts := runServer(t, s, logs)
	c := ts.client(t)

	type result struct {
		body string
		err  error
	}
	resc := make(chan result, 1)
	go func() {
		resp, err := c.Get(ts.url("/test/slow"))
		if err != nil {
			resc <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		resc <- result{string(b), err}
	}()
	<-entered
	stopped := make(chan error, 1)
	go func() { stopped <- ts.stop(t) }()

	// Shutdown must wait for the in-flight request.
	select {
	case err := <-stopped:
		t.Fatalf("Run returned (%v) before the in-flight request finished", err)
	case <-time.After(300 * time.Millisecond):
	}
	// New connections are refused once shutdown has begun.
	if conn, err := net.DialTimeout("tcp", ts.Addr().String(), time.Second); err == nil {
		conn.Close()
		t.Error("listener still accepts connections during shutdown")
	}
	close(release)
	r := <-resc
	if r.err != nil || r.body != "finished" {
		t.Fatalf("in-flight request: %q, %v; want finished", r.body, r.err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Run: %v", err)
	}
	// The lock is released: a new server can open the directory.
	s2, _ := newServer(t, testConfig(dir))
	s2.Close()
}

func TestShutdownTimeoutCancelsStragglers(t *testing.T) {
	cfg := testConfig(newDataDir(t))
	cfg.Timeouts.Shutdown = 200 * time.Millisecond
	s, logs := newServer(t, cfg)
	entered := make(chan struct{})
	if err := s.router.handle("GET /test/stuck", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-r.Context().Done()
	})); err != nil {
		t.Fatal(err)
	}
	ts := runServer(t, s, logs)
	c := ts.client(t)
	go func() {
		if resp, err := c.Get(ts.url("/test/stuck")); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	start := time.Now()
	ts.stop(t)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("shutdown took %v with a 200ms timeout", d)
	}
}
