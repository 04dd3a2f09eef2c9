package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// binary is the custos executable built once by TestMain for every test.
var custosBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		return m.Run() // the tests that need the binary skip themselves
	}
	dir, err := os.MkdirTemp("", "custos-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	custosBin = filepath.Join(dir, "custos")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := BuildBinary(ctx, custosBin); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// newServer starts a fresh server in a temporary data directory, grants the
// admin the ingestion data role, and returns the server and an admin client.
// The server is killed at cleanup; if the test failed, the end of its log is
// printed.
func newServer(t *testing.T) (*Server, *Client) {
	t.Helper()
	s, c := newServerNoRoles(t)
	if err := c.GrantDataRoles(testCtx(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	return s, c
}

// newServerNoRoles is newServer without the ingestion data role: the admin
// holds only Owner, as after a first start.
func newServerNoRoles(t *testing.T) (*Server, *Client) {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e: starts the custos binary")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return StartServer(t, ctx, Options{Binary: custosBin})
}

// testCtx returns a context bounded by d and by the test's deadline.
func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	end := time.Now().Add(d)
	if dl, ok := t.Deadline(); ok && dl.Add(-5*time.Second).Before(end) {
		end = dl.Add(-5 * time.Second)
	}
	ctx, cancel := context.WithDeadline(context.Background(), end)
	t.Cleanup(cancel)
	return ctx
}
