package gen

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"custos/e2e"
	"custos/internal/server"
)

// TargetOptions say which server a benchmark runs against.
type TargetOptions struct {
	// DataDir is the server's data directory. Empty means a new temporary
	// directory (removed by Close unless Keep). An existing directory is
	// reused: a loaded data set survives between runs.
	DataDir string
	// Keep leaves a temporary data directory in place at Close.
	Keep bool
	// Attach targets a server that already runs on DataDir (admin.json is
	// read from it); PID, if set, is its process for CPU and RSS figures.
	Attach bool
	PID    int
	// InProcess runs the server inside this process instead of as a child
	// (so that a CPU profile of this process covers the server). CPU and RSS
	// figures then include the benchmark's own clients.
	InProcess bool
	// Binary is a prebuilt custos executable; empty means `go build` into a
	// temporary directory.
	Binary string
	// Logf receives progress messages; nil means none.
	Logf func(format string, args ...any)
}

// Target is a running server and an admin client for it.
type Target struct {
	Client  *e2e.Client
	DataDir string
	Mode    string // "child process", "in process" or "attached"

	o       TargetOptions
	tmp     string // removed at Close unless Keep
	proc    *e2e.Server
	inproc  *inprocServer
	tempBin string
}

type inprocServer struct {
	cancel context.CancelFunc
	done   chan error
}

// StartTarget starts (or attaches to) the server and returns an admin client
// that holds the ingestion data role (granted through the ARM API).
func StartTarget(ctx context.Context, o TargetOptions) (*Target, error) {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	t := &Target{o: o, DataDir: o.DataDir}
	if t.DataDir == "" {
		if o.Attach {
			return nil, errors.New("attach needs the data directory of the running server")
		}
		dir, err := os.MkdirTemp("", "custos-bench-")
		if err != nil {
			return nil, err
		}
		t.tmp = dir
		t.DataDir = filepath.Join(dir, "data")
	}
	var err error
	switch {
	case o.Attach:
		t.Mode = "attached"
	case o.InProcess:
		t.Mode = "in process"
		err = t.startInProcess(ctx)
	default:
		t.Mode = "child process"
		err = t.startChild(ctx)
	}
	if err != nil {
		t.cleanup()
		return nil, err
	}
	adm, err := e2e.ReadAdmin(t.DataDir)
	if err != nil {
		t.Close()
		return nil, err
	}
	if t.Client, err = e2e.NewClient(adm); err != nil {
		t.Close()
		return nil, err
	}
	if err := t.Client.GrantDataRoles(ctx); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

func (t *Target) startChild(ctx context.Context) error {
	bin := t.o.Binary
	if bin == "" {
		dir, err := os.MkdirTemp("", "custos-bench-bin-")
		if err != nil {
			return err
		}
		t.tempBin = dir
		bin = filepath.Join(dir, "custos")
		t.o.Logf("building custos")
		if err := e2e.BuildBinary(ctx, bin); err != nil {
			return err
		}
	}
	s, err := e2e.NewServer(e2e.Options{Binary: bin, DataDir: t.DataDir, Args: []string{"--log-level", "warn"}})
	if err != nil {
		return err
	}
	t.proc = s
	t.o.Logf("starting custos on %s (data %s, log %s)", s.Addr(), t.DataDir, s.LogPath())
	return s.Start(ctx)
}

func (t *Target) startInProcess(ctx context.Context) error {
	addr, err := e2e.FreeAddr()
	if err != nil {
		return err
	}
	cfg, err := server.LoadConfig(server.LoadOptions{
		Env:   func(string) (string, bool) { return "", false },
		Flags: map[string]string{"data-dir": t.DataDir, "listen": addr, "log-level": "warn"},
	})
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Clean(t.DataDir)+".log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	log, err := cfg.NewLogger(logf)
	if err != nil {
		logf.Close()
		return err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	srv, err := server.New(sctx, server.Options{Config: cfg, Logger: log})
	if err != nil {
		cancel()
		logf.Close()
		return err
	}
	done := make(chan error, 1)
	go func() {
		err := srv.Run(sctx)
		logf.Close()
		done <- err
	}()
	t.inproc = &inprocServer{cancel: cancel, done: done}
	t.o.Logf("custos running in process on %s (data %s)", addr, t.DataDir)
	return nil
}

// PID returns the server's process ID, or 0 when unknown.
func (t *Target) PID() int {
	switch {
	case t.proc != nil:
		return t.proc.PID()
	case t.inproc != nil:
		return os.Getpid()
	}
	return t.o.PID
}

// Stats returns the server process's CPU time and current and peak RSS.
func (t *Target) Stats() (cpu time.Duration, rss, peak int64, err error) {
	pid := t.PID()
	if pid == 0 {
		return 0, 0, 0, errors.New("server process unknown (pass its PID)")
	}
	return e2e.ProcessStats(pid)
}

// Restart stops the server gracefully (flushing memtables into parts) and
// starts it again. Only for child processes.
func (t *Target) Restart(ctx context.Context) error {
	if t.proc == nil {
		return errors.New("restart needs a child-process server")
	}
	if err := t.proc.Stop(5 * time.Minute); err != nil {
		return err
	}
	return t.proc.Start(ctx)
}

// Stop stops a child-process or in-process server gracefully (flushing its
// memtables into parts) and leaves the data directory in place for
// measurements; Close afterwards still cleans up. An attached server is left
// running.
func (t *Target) Stop() error {
	switch {
	case t.proc != nil && t.proc.Running():
		return t.proc.Stop(5 * time.Minute)
	case t.inproc != nil:
		t.inproc.cancel()
		err := <-t.inproc.done
		t.inproc = nil
		return err
	}
	return nil
}

// Close stops the server (unless attached) and removes a temporary data
// directory unless Keep.
func (t *Target) Close() error {
	if t.Client != nil {
		t.Client.HTTP.CloseIdleConnections()
	}
	err := t.Stop()
	t.cleanup()
	return err
}

func (t *Target) cleanup() {
	if t.tempBin != "" {
		os.RemoveAll(t.tempBin)
		t.tempBin = ""
	}
	if t.tmp != "" && !t.o.Keep {
		os.RemoveAll(t.tmp)
		t.tmp = ""
	}
}

// DirBytes returns the total size of the regular files under dir.
func DirBytes(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				if os.IsNotExist(err) {
					return nil
				}
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	return n, err
}
