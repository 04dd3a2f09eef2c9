package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// peer is one system under test.
type peer interface {
	Name() string
	// Version is the installed version, for the report.
	Version() string
	// Start installs the system if needed and starts it on loopback.
	Start(ctx context.Context) error
	// Load sends the dataset through the system's usual ingestion path with
	// the given number of concurrent clients.
	Load(ctx context.Context, d *dataset, clients int) error
	// Settle makes the loaded data durable and queryable in its steady
	// state (flushes, merges), so that disk size and queries are fair.
	Settle(ctx context.Context) error
	// Restart stops and starts the system, for cold queries.
	Restart(ctx context.Context) error
	// Query asks one question and returns the number of result rows.
	Query(ctx context.Context, q question) (int, error)
	// DataDir is where the system keeps its data (for bytes on disk).
	DataDir() string
	// PID is the server process, for CPU and memory.
	PID() int
	Close()
}

// child is a server process started by the harness, bound to loopback.
type child struct {
	name string
	argv []string
	env  []string
	log  string
	cmd  *exec.Cmd
	done chan error
}

func (c *child) start(ctx context.Context, ready func(context.Context) error) error {
	lf, err := os.OpenFile(c.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(c.argv[0], c.argv[1:]...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Env = append(os.Environ(), c.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("start %s: %w", c.name, err)
	}
	c.cmd = cmd
	c.done = make(chan error, 1)
	go func() { c.done <- cmd.Wait(); lf.Close() }()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		select {
		case err := <-c.done:
			c.cmd = nil
			return fmt.Errorf("%s exited before it was ready (%v); log: %s", c.name, err, tail(c.log, 2000))
		default:
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := ready(rctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			c.stop()
			return fmt.Errorf("%s not ready after 2 minutes: %v; log: %s", c.name, err, tail(c.log, 2000))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// stop ends the process gracefully (SIGTERM, then SIGKILL after a minute).
func (c *child) stop() {
	if c.cmd == nil {
		return
	}
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(time.Minute):
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.done
	}
	c.cmd = nil
}

func (c *child) pid() int {
	if c.cmd == nil || c.cmd.Process == nil {
		return 0
	}
	return c.cmd.Process.Pid
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// httpOK is a readiness probe: GET url answers 2xx.
func httpOK(url string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		return nil
	}
}

// post sends body to url and returns the response body; a non-2xx status
// is an error carrying the body.
func post(ctx context.Context, client *http.Client, url, contentType string, body io.Reader) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s: %s: %s", url, resp.Status, strings.TrimSpace(string(out[:min(len(out), 500)])))
	}
	return out, nil
}

// aptInstall installs Debian packages when cmd is missing.
func aptInstall(cmd string, pkgs ...string) error {
	if _, err := exec.LookPath(cmd); err == nil {
		return nil
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return errors.New(cmd + " is missing and apt-get is not available: install " + strings.Join(pkgs, " "))
	}
	for _, args := range [][]string{{"update", "-qq"}, append([]string{"install", "-y", "-qq", "--no-install-recommends"}, pkgs...)} {
		c := exec.Command("apt-get", args...)
		c.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := c.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}
