package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"custos/internal/logtest"
)

// TestServeCommand runs `custos serve` in-process: it bootstraps the data
// directory, serves until its context ends, and shuts down cleanly.
func TestServeCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	root := newRootCmd()
	stderr := &logtest.Buffer{}
	root.SetErr(stderr)
	root.SetArgs([]string{"serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--log-format", "text", "--shutdown-timeout", "5s"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()

	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(stderr.String(), "msg=serving") {
		select {
		case err := <-done:
			t.Fatalf("serve exited early: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if fi, err := os.Stat(filepath.Join(dir, "admin.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin.json: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
}

func TestServeRejectsBadSettings(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "--listen", "no-port"},
		{"serve", "--log-level", "chatty"},
		{"serve", "extra-argument"},
	} {
		root := newRootCmd()
		root.SetErr(&bytes.Buffer{})
		root.SetOut(&bytes.Buffer{})
		root.SetArgs(append(args, "--data-dir", filepath.Join(t.TempDir(), "d")))
		if err := root.Execute(); err == nil {
			t.Errorf("custos %v: no error", args)
		}
	}
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(cfg, []byte("listen: 127.0.0.1:0\nbogus: 1\n"), 0o600)
	root := newRootCmd()
	root.SetErr(&bytes.Buffer{})
	root.SetArgs([]string{"serve", "--config", cfg, "--data-dir", filepath.Join(t.TempDir(), "d")})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("unknown YAML key: %v; want an error naming it", err)
	}
}
