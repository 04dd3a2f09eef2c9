package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestPlatformKeyFailsClosed replaces, removes and loosens the permissions of
// the platform key file between runs. With a wrong or missing key the server
// must not serve the data (it refuses to start, or every query over the data
// fails) and must not destroy it; with the original key back, every row is
// there again.
func TestPlatformKeyFailsClosed(t *testing.T) {
	s, c := newServer(t)
	ctx := testCtx(t, 150*time.Second)
	cols := []Column{{Name: "TimeGenerated", Type: "datetime"}, {Name: "Note", Type: "string"}}
	if err := c.CreateTable(ctx, "Key_CL", cols); err != nil {
		t.Fatal(err)
	}
	rule, err := c.CreateDCR(ctx, "key-dcr", "Custom-Key", cols, "Key_CL", "")
	if err != nil {
		t.Fatal(err)
	}
	tok := randHex(t, 6)
	now := time.Now().UTC().Add(-time.Minute)
	upload := func(from, n int) {
		t.Helper()
		recs := make([]map[string]any, n)
		for i := range recs {
			recs[i] = map[string]any{"TimeGenerated": now.Add(time.Duration(from+i) * time.Millisecond).Format(time.RFC3339Nano),
				"Note": fmt.Sprintf("row %d %s", from+i, tok)}
		}
		body, _ := json.Marshal(recs)
		if err := c.Upload(ctx, rule, "Custom-Key", body); err != nil {
			t.Fatal(err)
		}
	}
	upload(0, 100)
	if err := s.Stop(60 * time.Second); err != nil { // rows 0..99 flush into a part
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	upload(100, 50) // rows 100..149 stay in the WAL
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}

	keyPath := filepath.Join(s.DataDir(), "keys", "platform.key")
	orig, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatalf("platform key: %v", err)
	}
	parts := findParts(t, s.DataDir(), "Key_CL")
	if len(parts) == 0 {
		t.Fatal("no part for Key_CL")
	}
	storeBefore := dirFiles(t, filepath.Join(s.DataDir(), "store"))

	mustNotServe := func(what string) {
		t.Helper()
		from := logSize(t, s)
		err := s.Start(ctx)
		if errors.Is(err, ErrExited) {
			b, _ := s.Log()
			out := bytes.TrimSpace(b[from:])
			last := out[bytes.LastIndexByte(out, '\n')+1:]
			if !bytes.Contains(bytes.ToLower(last), []byte("key")) {
				t.Fatalf("%s: start refused, but the last line of its output does not say why in terms of the key: %s", what, last)
			}
			t.Logf("%s: start refused: %s", what, last)
			return
		}
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		status, code, body, qerr := c.QueryRaw(ctx, "Key_CL | project Note")
		s.Kill()
		if qerr == nil && status == http.StatusOK {
			t.Fatalf("%s: the server started and answered the query with 200: %.300s", what, body)
		}
		if bytes.Contains(body, []byte(tok)) {
			t.Fatalf("%s: the response carries the data: %.300s", what, body)
		}
		b, _ := s.Log()
		t.Logf("%s: started but the query failed: HTTP %d %s; log since start: %d bytes", what, status, code, len(b)-from)
	}
	checkIntact := func(what string) {
		t.Helper()
		after := dirFiles(t, filepath.Join(s.DataDir(), "store"))
		for f, size := range storeBefore {
			if after[f] != size {
				t.Fatalf("%s: store file %s changed or vanished (%d → %d bytes)", what, f, size, after[f])
			}
		}
	}

	// 1. Another valid key.
	other := make([]byte, len(orig))
	if _, err := rand.Read(other); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, other, 0o600); err != nil {
		t.Fatal(err)
	}
	mustNotServe("wrong platform key")
	checkIntact("wrong platform key")

	// 2. No key at all: the server must not start afresh over the old data.
	if err := os.Remove(keyPath); err != nil {
		t.Fatal(err)
	}
	mustNotServe("missing platform key")
	checkIntact("missing platform key")

	// 3. The right key, readable by others: refused as unsafe.
	if err := os.WriteFile(keyPath, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(keyPath, 0o644); err != nil {
		t.Fatal(err)
	}
	mustNotServe("platform key readable by others")
	checkIntact("platform key readable by others")

	// 4. The original key: everything is back, from the part and the WAL.
	if err := os.Chmod(keyPath, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatalf("start with the original key: %v", err)
	}
	_, rows, err := c.QueryRows(ctx, "Key_CL | count")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0][0] != float64(150) {
		t.Fatalf("rows with the original key back: %v; want 150", rows)
	}
}

// dirFiles maps the regular files under dir to their sizes.
func dirFiles(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	m := map[string]int64{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && filepath.Base(path) != "LOCK" {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, path)
			m[rel] = fi.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}
