package e2e

import (
	"context"
	"path/filepath"
	"testing"
)

// StartServer is the set-up the fault and portal tests share: it fills in
// o.DataDir and o.LogPath under a new t.TempDir() when they are empty, starts
// the server (bounded by ctx and o.StartTimeout), and returns it with an
// admin client (NewClient on the server's admin.json). At cleanup the
// server is killed if it still runs, the client's idle connections are
// closed, and, if the test failed, the end of the server's log is printed.
// Any failure before that ends the test with t.Fatal. Register cleanups that
// must run before the server is killed (restoring a file the server needs,
// say) before calling StartServer: cleanups run last-registered first.
func StartServer(t testing.TB, ctx context.Context, o Options) (*Server, *Client) {
	t.Helper()
	if o.DataDir == "" || o.LogPath == "" {
		root := t.TempDir()
		if o.DataDir == "" {
			o.DataDir = filepath.Join(root, "data")
		}
		if o.LogPath == "" {
			o.LogPath = filepath.Join(root, "server.log")
		}
	}
	s, err := NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		if t.Failed() {
			t.Logf("server log tail:\n%s", s.logTail(6000))
		}
	})
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	adm, err := ReadAdmin(s.DataDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(adm)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.HTTP.CloseIdleConnections)
	return s, c
}
