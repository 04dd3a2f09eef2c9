package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// clockEnv is a server started with the test-only clock hook
// (CUSTOS_TEST_CLOCK_OFFSET_FILE, docs/reliability.md) and one table with a
// DCR for its stream, as the clock fault tests need.
type clockEnv struct {
	s          *Server
	c          *Client
	dcr        string // the DCR's immutable ID, for uploads
	offsetFile string
}

// startClockServer starts the binary under root with its clock offset at 0,
// grants the data roles and creates table with columns cols and a DCR named
// dcrName for stream.
func startClockServer(t *testing.T, ctx context.Context, root, table, stream, dcrName string, cols []Column) *clockEnv {
	t.Helper()
	e := &clockEnv{offsetFile: filepath.Join(root, "clock-offset")}
	e.setOffset(t, "0s")
	e.s, e.c = StartServer(t, ctx, Options{Binary: custosBin, DataDir: filepath.Join(root, "data"), LogPath: filepath.Join(root, "server.log"),
		Env: append(os.Environ(), "CUSTOS_TEST_CLOCK_OFFSET_FILE="+e.offsetFile)})
	if err := e.c.GrantDataRoles(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.c.CreateTable(ctx, table, cols); err != nil {
		t.Fatal(err)
	}
	var err error
	if e.dcr, err = e.c.CreateDCR(ctx, dcrName, stream, cols, table, ""); err != nil {
		t.Fatal(err)
	}
	return e
}

// setOffset moves the server's clock to the real time plus d (a Go
// duration) and waits until the server has read it.
func (e *clockEnv) setOffset(t *testing.T, d string) {
	t.Helper()
	if err := os.WriteFile(e.offsetFile, []byte(d), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the server re-reads the file every 100 ms
}
