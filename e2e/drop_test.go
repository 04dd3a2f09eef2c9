package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestDroppedTableStaysDropped deletes a custom table whose rows sit both in
// parts and in the WAL, re-creates it under the same name, and restarts the
// server (WAL replay): none of the old rows come back, the old part files are
// gone from disk, and new rows land in the new table only.
func TestDroppedTableStaysDropped(t *testing.T) {
	s, c := newServer(t)
	ctx := testCtx(t, 120*time.Second)
	cols := []Column{{Name: "TimeGenerated", Type: "datetime"}, {Name: "Note", Type: "string"}}
	create := func() string {
		t.Helper()
		if err := c.CreateTable(ctx, "Gone_CL", cols); err != nil {
			t.Fatal(err)
		}
		rule, err := c.CreateDCR(ctx, "gone-dcr", "Custom-Gone", cols, "Gone_CL", "")
		if err != nil {
			t.Fatal(err)
		}
		return rule
	}
	tok := randHex(t, 6)
	now := time.Now().UTC().Add(-time.Minute)
	upload := func(rule, what string, n int) {
		t.Helper()
		recs := make([]map[string]any, n)
		for i := range recs {
			recs[i] = map[string]any{"TimeGenerated": now.Add(time.Duration(i) * time.Millisecond).Format(time.RFC3339Nano),
				"Note": fmt.Sprintf("%s %s %d", what, tok, i)}
		}
		body, _ := json.Marshal(recs)
		if err := c.Upload(ctx, rule, "Custom-Gone", body); err != nil {
			t.Fatal(err)
		}
	}
	count := func(when string, want, wantOld int) {
		t.Helper()
		_, rows, err := c.QueryRows(ctx, `Gone_CL | summarize n = count(), old = countif(Note startswith "old")`)
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if len(rows) != 1 || rows[0][0] != float64(want) || rows[0][1] != float64(wantOld) {
			t.Fatalf("%s: [rows, old rows] = %v; want [%d %d]", when, rows, want, wantOld)
		}
	}

	rule := create()
	upload(rule, "old", 200)
	if err := s.Stop(60 * time.Second); err != nil { // old rows 0..199 → a part
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	upload(rule, "old", 100) // and 100 more in the WAL only
	count("before the drop", 300, 300)
	oldParts := findParts(t, s.DataDir(), "Gone_CL")
	if len(oldParts) == 0 {
		t.Fatal("no part for Gone_CL before the drop")
	}

	path := c.Admin.WorkspaceResourceID() + "/tables/Gone_CL?api-version=2022-10-01"
	status, code, body, err := c.Do(ctx, "https://management.azure.com", http.MethodDelete, path, nil)
	if err != nil || status/100 != 2 {
		t.Fatalf("DELETE table: HTTP %d %s %s (%v)", status, code, body, err)
	}
	// Deleting can be asynchronous (202): wait for the table to be gone.
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, _, _, err := c.Do(ctx, "https://management.azure.com", http.MethodGet, path, nil)
		if err == nil && st == http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("table still there 30 s after DELETE (last GET: %d %v)", st, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, p := range oldParts {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("part %s of the dropped table still on disk (%v)", filepath.Base(p), err)
		}
	}

	rule = create()
	count("re-created", 0, 0)
	if err := s.Kill(); err != nil { // the old rows' WAL records are still in the WAL
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	count("re-created, after a crash and WAL replay", 0, 0)
	upload(rule, "new", 10)
	count("re-created, new rows", 10, 0)
	if err := s.Stop(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	count("re-created, after a graceful restart", 10, 0)
}
