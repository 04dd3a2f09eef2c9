package e2e

import (
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDataDirPermissions checks, after a start, ingestion, a crash, a
// restart and a clean stop, that nothing under the data directory is open to
// other users: directories are 0700 and files 0600 at most (certificates,
// which are public, may be world-readable). The server log, written next to
// the data directory by the harness, is not the server's.
func TestDataDirPermissions(t *testing.T) {
	s, c := newServer(t)
	ctx := testCtx(t, 90*time.Second)
	cols := []Column{{Name: "TimeGenerated", Type: "datetime"}, {Name: "Note", Type: "string"}}
	if err := c.CreateTable(ctx, "Perm_CL", cols); err != nil {
		t.Fatal(err)
	}
	rule, err := c.CreateDCR(ctx, "perm-dcr", "Custom-Perm", cols, "Perm_CL", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Upload(ctx, rule, "Custom-Perm", []byte(`[{"TimeGenerated":"`+time.Now().UTC().Format(time.RFC3339)+`","Note":"x"}]`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		n := 0
		err := filepath.WalkDir(s.DataDir(), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(s.DataDir(), path)
			perm := fi.Mode().Perm()
			switch {
			case d.IsDir() && perm&0o077 != 0:
				t.Errorf("%s: directory %s is %v; want no group or other access", when, rel, perm)
			case !d.IsDir() && strings.HasSuffix(path, ".crt") && perm&0o022 != 0:
				t.Errorf("%s: certificate %s is %v; want it writable by the owner only", when, rel, perm)
			case !d.IsDir() && !strings.HasSuffix(path, ".crt") && perm&0o077 != 0:
				t.Errorf("%s: file %s is %v; want no group or other access", when, rel, perm)
			}
			n++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d entries checked", when, n)
	}
	check("running")
	if err := s.Stop(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	check("stopped")
}
