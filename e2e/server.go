package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Errors returned by the harness.
var (
	// ErrNotRunning is returned by Kill and Stop when no server process runs.
	ErrNotRunning = errors.New("e2e: server not running")
	// ErrExited is returned by Start when the process exits before it is ready.
	ErrExited = errors.New("e2e: server exited before it was ready")
)

// BuildBinary compiles cmd/custos into out with `go build`. It must run
// inside the custos module (any directory of the checkout).
func BuildBinary(ctx context.Context, out string) error {
	args := []string{"build", "-o", out}
	if binaryTags != "" {
		args = append(args, "-tags", binaryTags)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, "custos/cmd/custos")...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build custos: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// FreeAddr returns a loopback address with a port that was free a moment
// ago. The harness keeps one port across restarts, so the endpoint (and the
// token issuer) stays the same.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	return addr, nil
}

// Options configure a Server.
type Options struct {
	// Binary is the custos executable (required).
	Binary string
	// DataDir is the server's --data-dir (required); created by the server.
	DataDir string
	// Listen is the --listen address; empty means FreeAddr.
	Listen string
	// LogPath receives the server's stdout and stderr, appended across
	// restarts. Empty means DataDir + ".log" (outside the data directory, so
	// that scans of the data directory do not see it).
	LogPath string
	// Args are extra arguments after `serve --data-dir D --listen A`.
	Args []string
	// Env is the child's environment; nil means the parent's.
	Env []string
	// StartTimeout bounds Start; zero means 90 s.
	StartTimeout time.Duration
}

// Server is one custos server process on a fixed data directory and port,
// started and stopped as often as the test likes. Not safe for concurrent
// use.
type Server struct {
	opts Options

	cmd  *exec.Cmd
	done chan struct{} // closed when the process has been waited for
	err  error         // the process's exit error, valid after done
	logf *os.File
}

// NewServer returns a stopped server.
func NewServer(o Options) (*Server, error) {
	if o.Binary == "" || o.DataDir == "" {
		return nil, errors.New("e2e: Options.Binary and Options.DataDir are required")
	}
	if o.Listen == "" {
		addr, err := FreeAddr()
		if err != nil {
			return nil, err
		}
		o.Listen = addr
	}
	if o.LogPath == "" {
		o.LogPath = filepath.Clean(o.DataDir) + ".log"
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 90 * time.Second
	}
	return &Server{opts: o}, nil
}

// DataDir returns the server's data directory.
func (s *Server) DataDir() string { return s.opts.DataDir }

// Addr returns the listen address (127.0.0.1:port).
func (s *Server) Addr() string { return s.opts.Listen }

// LogPath returns the file holding the server's output.
func (s *Server) LogPath() string { return s.opts.LogPath }

// Log returns everything the server has written so far, across restarts.
func (s *Server) Log() ([]byte, error) { return os.ReadFile(s.opts.LogPath) }

// PID returns the process ID, or 0 when not running.
func (s *Server) PID() int {
	if !s.Running() {
		return 0
	}
	return s.cmd.Process.Pid
}

// Running reports whether the process has been started and not yet exited.
func (s *Server) Running() bool {
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// Start runs the server and waits until /healthz answers over HTTPS with the
// server's own CA, or the process exits, or StartTimeout passes.
func (s *Server) Start(ctx context.Context) error {
	if err := s.Spawn(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.StartTimeout)
	defer cancel()
	if err := s.waitReady(ctx); err != nil {
		if s.Running() {
			_ = s.Kill()
		}
		return err
	}
	return nil
}

// Spawn runs the server without waiting for it to be ready (to kill it
// during start-up, for instance).
func (s *Server) Spawn() error {
	if s.Running() {
		return errors.New("e2e: server already running")
	}
	logf, err := os.OpenFile(s.opts.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open server log: %w", err)
	}
	args := append([]string{"serve", "--data-dir", s.opts.DataDir, "--listen", s.opts.Listen}, s.opts.Args...)
	cmd := exec.Command(s.opts.Binary, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = s.opts.Env
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start custos: %w", err)
	}
	s.cmd, s.logf, s.done, s.err = cmd, logf, make(chan struct{}), nil
	go func(done chan struct{}) {
		s.err = cmd.Wait()
		logf.Close()
		close(done)
	}(s.done)
	return nil
}

// waitReady polls GET /healthz until it answers 200.
func (s *Server) waitReady(ctx context.Context) error {
	caFile := filepath.Join(s.opts.DataDir, "tls", "ca.crt")
	var last error
	for {
		select {
		case <-s.done:
			return fmt.Errorf("%w (%v); log tail:\n%s", ErrExited, s.err, s.logTail(2000))
		case <-ctx.Done():
			return fmt.Errorf("server not ready within %v (last: %v); log tail:\n%s", s.opts.StartTimeout, last, s.logTail(2000))
		case <-time.After(50 * time.Millisecond):
		}
		pool, err := loadCA(caFile)
		if err != nil {
			last = err
			continue
		}
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12},
		}}
		resp, err := c.Get("https://" + s.opts.Listen + "/healthz")
		c.CloseIdleConnections()
		if err != nil {
			last = err
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
		last = fmt.Errorf("healthz: %s", resp.Status)
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (s *Server) Kill() error {
	if !s.Running() {
		return ErrNotRunning
	}
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill custos: %w", err)
	}
	<-s.done
	return nil
}

// Terminate sends SIGTERM and returns at once; Kill or Wait afterwards.
func (s *Server) Terminate() error {
	if !s.Running() {
		return ErrNotRunning
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal custos: %w", err)
	}
	return nil
}

// Stop sends SIGTERM and waits up to timeout for a clean exit (status 0);
// after the timeout it kills the process and returns an error.
func (s *Server) Stop(timeout time.Duration) error {
	if !s.Running() {
		return ErrNotRunning
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal custos: %w", err)
	}
	select {
	case <-s.done:
	case <-time.After(timeout):
		_ = s.Kill()
		return fmt.Errorf("custos did not exit within %v of SIGTERM", timeout)
	}
	if s.err != nil {
		return fmt.Errorf("custos exited with %v; log tail:\n%s", s.err, s.logTail(2000))
	}
	return nil
}

// Close kills the process if it still runs. For cleanup paths.
func (s *Server) Close() {
	if s.Running() {
		_ = s.Kill()
	}
}

func (s *Server) logTail(n int) string {
	b, _ := os.ReadFile(s.opts.LogPath)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// loadCA reads a PEM CA bundle into a pool.
func loadCA(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", path)
	}
	return pool, nil
}

// Admin is <dataDir>/admin.json, the bootstrap admin's credentials.
type Admin struct {
	Endpoint       string `json:"endpoint"`
	TenantID       string `json:"tenantId"`
	ClientID       string `json:"clientId"`
	ClientSecret   string `json:"clientSecret"`
	SubscriptionID string `json:"subscriptionId"`
	ResourceGroup  string `json:"resourceGroup"`
	WorkspaceName  string `json:"workspaceName"`
	WorkspaceID    string `json:"workspaceId"`
	CAFile         string `json:"caFile"`
}

// String leaves the secret out.
func (a Admin) String() string {
	return fmt.Sprintf("Admin{endpoint=%s tenant=%s client=%s secret=REDACTED}", a.Endpoint, a.TenantID, a.ClientID)
}

// WorkspaceResourceID returns the ARM ID of the admin's workspace.
func (a Admin) WorkspaceResourceID() string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.OperationalInsights/workspaces/%s",
		a.SubscriptionID, a.ResourceGroup, a.WorkspaceName)
}

// ReadAdmin reads <dataDir>/admin.json.
func ReadAdmin(dataDir string) (Admin, error) {
	var a Admin
	b, err := os.ReadFile(filepath.Join(dataDir, "admin.json"))
	if err != nil {
		return a, fmt.Errorf("read admin.json: %w", err)
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return Admin{}, fmt.Errorf("parse admin.json: %w", err)
	}
	if a.Endpoint == "" || a.ClientID == "" || a.ClientSecret == "" || a.WorkspaceID == "" {
		return Admin{}, errors.New("admin.json lacks endpoint, clientId, clientSecret or workspaceId")
	}
	return a, nil
}

// procStat is a process's CPU time and memory from /proc (Linux only).
type procStat struct {
	CPU     time.Duration // user + system
	RSS     int64         // bytes, now
	PeakRSS int64         // bytes, high-water mark
}

// ProcStat returns the CPU time (user + system) and the current and peak
// RSS of the running server, from /proc. Linux only; an error elsewhere.
func (s *Server) ProcStat() (cpu time.Duration, rss, peakRSS int64, err error) {
	pid := s.PID()
	if pid == 0 {
		return 0, 0, 0, ErrNotRunning
	}
	return ProcessStats(pid)
}

// ProcessStats returns the CPU time (user + system) and the current and peak
// RSS of any process, from /proc. Linux only; an error elsewhere.
func ProcessStats(pid int) (cpu time.Duration, rss, peakRSS int64, err error) {
	st, err := readProcStat(pid)
	return st.CPU, st.RSS, st.PeakRSS, err
}
