package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestStartWarmsQueries checks that a started server warmed the query path
// before it answered: the query warm-up read the bootstrapped workspace and
// ran its query through the engine, and the catalog's pages were read — both
// logged before the first request is served.
func TestStartWarmsQueries(t *testing.T) {
	ts := startServer(t, testConfig(newDataDir(t)))
	resp, err := ts.client(t).Get(ts.url("/healthz"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
	var query, pages map[string]any
	for line := range strings.SplitSeq(ts.logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		switch m["msg"] {
		case "query warm-up":
			query = m
		case "catalog warm-up":
			pages = m
		}
	}
	if query == nil || query["workspaces"] != float64(1) || query["compiled"] != true {
		t.Fatalf("query warm-up log = %v; want 1 workspace, compiled", query)
	}
	if pages == nil || pages["read"] != true || pages["bytes"].(float64) <= 0 {
		t.Fatalf("catalog warm-up log = %v; want the catalog read", pages)
	}
}
