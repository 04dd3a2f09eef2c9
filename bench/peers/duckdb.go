package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// duckdbPeer is DuckDB embedded through its Go bindings, in the separate
// module bench/peers/duckdb (cgo stays out of the custos module). The runner
// is a child process so that its CPU time and memory are measured as a
// server's; its ingestion path is DuckDB's own: read_json over the dataset
// written as JSON lines.
type duckdbPeer struct {
	binDir string
	bin    string
	dir    string
	file   string // the dataset as JSON lines
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Scanner
}

func (p *duckdbPeer) Name() string    { return "DuckDB" }
func (p *duckdbPeer) Version() string { return "duckdb-go v2.10506.0 (DuckDB 1.5.6)" }

func moduleDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "duckdb")
}

func (p *duckdbPeer) Start(ctx context.Context) error {
	p.bin = filepath.Join(p.binDir, "duckdb-runner")
	if _, err := os.Stat(p.bin); err != nil {
		if err := os.MkdirAll(p.binDir, 0o755); err != nil {
			return err
		}
		cmd := exec.CommandContext(ctx, "go", "build", "-o", p.bin, ".")
		cmd.Dir = moduleDir()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build duckdb-runner: %v: %s", err, out)
		}
	}
	var err error
	if p.dir, err = os.MkdirTemp("", "peers-duckdb-"); err != nil {
		return err
	}
	return p.spawn()
}

func (p *duckdbPeer) spawn() error {
	cmd := exec.Command(p.bin, "-db", filepath.Join(p.dir, "data", "logs.duckdb"))
	if err := os.MkdirAll(filepath.Join(p.dir, "data"), 0o755); err != nil {
		return err
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	p.cmd, p.in = cmd, in
	p.out = bufio.NewScanner(out)
	_, err = p.answer()
	return err
}

func (p *duckdbPeer) answer() (string, error) {
	if !p.out.Scan() {
		if err := p.out.Err(); err != nil {
			return "", err
		}
		return "", errors.New("duckdb-runner exited")
	}
	line := p.out.Text()
	if rest, ok := strings.CutPrefix(line, "ok "); ok {
		return rest, nil
	}
	return "", errors.New("duckdb: " + strings.TrimPrefix(line, "error "))
}

func (p *duckdbPeer) command(verb, arg string) (string, error) {
	if _, err := fmt.Fprintf(p.in, "%s %s\n", verb, strings.ReplaceAll(arg, "\n", " ")); err != nil {
		return "", err
	}
	return p.answer()
}

// Load writes the dataset as JSON lines (outside the timed part when the
// harness prepared it already) and creates the table from it.
func (p *duckdbPeer) Load(_ context.Context, d *dataset, _ int) error {
	if p.file == "" {
		return errors.New("duckdb: the dataset file was not prepared")
	}
	_, err := p.command("load", p.file)
	return err
}

func (p *duckdbPeer) Settle(context.Context) error { return nil } // load ends with CHECKPOINT

func (p *duckdbPeer) Restart(context.Context) error {
	p.stop()
	return p.spawn()
}

func (p *duckdbPeer) Query(_ context.Context, q question) (int, error) {
	n, err := p.command("query", q.DuckDB)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(n)
}

func (p *duckdbPeer) DataDir() string { return filepath.Join(p.dir, "data") }

func (p *duckdbPeer) PID() int {
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

func (p *duckdbPeer) stop() {
	if p.cmd == nil {
		return
	}
	p.in.Close()
	_ = p.cmd.Wait()
	p.cmd = nil
}

func (p *duckdbPeer) Close() {
	p.stop()
	if p.dir != "" {
		_ = os.RemoveAll(p.dir)
	}
}
