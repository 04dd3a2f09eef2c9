package main

import (
	"path/filepath"
	"strings"
	"testing"

	"custos/internal/server"
)

// TestProtectionVerbs drives `custos export`, `custos pls` and `custos
// saved-search` against a real server: create, list, show, validation
// errors from the server, a function called by a query, and deletion.
func TestProtectionVerbs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	exportDir := t.TempDir()
	dir, admin, wsID := startAdminServer(t, func(c *server.Config) { c.Export.AllowedDirectories = []string{exportDir} })

	// Data export rules.
	out := custos(t, dir, "", "export", "create", "to-dir", "--table", "Heartbeat", "--table", "Syslog",
		"--destination", "file://"+filepath.Join(exportDir, "x"), "--format", "parquet")
	if !strings.Contains(out, `"dataExportId"`) || !strings.Contains(out, `"parquet"`) {
		t.Fatalf("export create:\n%s", out)
	}
	t.Setenv(envS3Secret, "s3-secret-value")
	out = custos(t, dir, "", "export", "create", "to-s3", "--table", "Heartbeat", "--destination", "s3://bucket/custos",
		"--s3-endpoint", "https://s3.example.com", "--s3-access-key-id", "AKEXAMPLE", "--disabled")
	if !strings.Contains(out, "AKEXAMPLE") || strings.Contains(out, "s3-secret-value") {
		t.Fatalf("export create (s3) shows no key ID or the secret:\n%s", out)
	}
	out = custos(t, dir, "", "export", "list")
	if !strings.Contains(out, "to-dir") || !strings.Contains(out, "Heartbeat, Syslog") || !strings.Contains(out, "to-s3") ||
		!strings.Contains(out, "false") {
		t.Fatalf("export list:\n%s", out)
	}
	if out = custos(t, dir, "", "export", "show", "to-s3", "-o", "json"); !strings.Contains(out, "s3://bucket/custos") || strings.Contains(out, "s3-secret-value") {
		t.Fatalf("export show:\n%s", out)
	}
	if ae := custosErr(t, dir, "", "export", "create", "outside", "--table", "Heartbeat", "--destination", "file:///etc/custos"); ae.StatusCode != 400 {
		t.Fatalf("export to a directory not allowed: %+v", ae)
	}
	if _, _, err := runCLI(t, "", "export", "create", "nothing", "--data-dir", dir); err == nil || !strings.Contains(err.Error(), "--table") {
		t.Fatalf("export create without tables: %v", err)
	}
	if out = custos(t, dir, "", "export", "delete", "to-s3", "--yes"); !strings.Contains(out, "deleted") {
		t.Fatalf("export delete:\n%s", out)
	}
	if out = custos(t, dir, "", "export", "list"); strings.Contains(out, "to-s3") {
		t.Fatalf("deleted rule listed:\n%s", out)
	}

	// Private link scopes.
	out = custos(t, dir, "", "pls", "create", "scope1", "--query-access-mode", "PrivateOnly")
	if !strings.Contains(out, `"PrivateOnly"`) {
		t.Fatalf("pls create:\n%s", out)
	}
	if out = custos(t, dir, "", "pls", "list"); !strings.Contains(out, "scope1") || !strings.Contains(out, "PrivateOnly") || !strings.Contains(out, "Open") {
		t.Fatalf("pls list:\n%s", out)
	}
	if ae := custosErr(t, dir, "", "pls", "create", "bad", "--query-access-mode", "Sometimes"); ae.StatusCode != 400 {
		t.Fatalf("bad access mode: %+v", ae)
	}
	out = custos(t, dir, "", "pls", "scoped-resource", "add", "ws-link", "--scope", "scope1", "--workspace", admin.WorkspaceName)
	if !strings.Contains(strings.ToLower(out), strings.ToLower(wsID)) {
		t.Fatalf("scoped-resource add:\n%s", out)
	}
	if out = custos(t, dir, "", "pls", "scoped-resource", "list", "--scope", "scope1"); !strings.Contains(out, "ws-link") {
		t.Fatalf("scoped-resource list:\n%s", out)
	}
	if out = custos(t, dir, "", "pls", "scoped-resource", "remove", "ws-link", "--scope", "scope1", "--yes"); !strings.Contains(out, "deleted") {
		t.Fatalf("scoped-resource remove:\n%s", out)
	}
	if out = custos(t, dir, "", "pls", "delete", "scope1", "--yes"); !strings.Contains(out, "deleted") {
		t.Fatalf("pls delete:\n%s", out)
	}

	// Saved searches and functions.
	out = custos(t, dir, "", "saved-search", "create", "hb-fn", "--category", "Security", "--query", "print answer = 42",
		"--function-alias", "answer_fn")
	if !strings.Contains(out, `"answer_fn"`) {
		t.Fatalf("saved-search create:\n%s", out)
	}
	custos(t, dir, "print x = 1", "saved-search", "create", "plain", "--query-file", "-")
	if out = custos(t, dir, "", "saved-search", "list"); !strings.Contains(out, "answer_fn") || !strings.Contains(out, "print x = 1") {
		t.Fatalf("saved-search list:\n%s", out)
	}
	if out = custos(t, dir, "", "query", "answer_fn"); !strings.Contains(out, "42") {
		t.Fatalf("query calling the function:\n%s", out)
	}
	if ae := custosErr(t, dir, "", "saved-search", "create", "broken", "--query", "print x = ", "--function-alias", "broken_fn"); ae.StatusCode != 400 {
		t.Fatalf("function with bad KQL: %+v", ae)
	}
	if out = custos(t, dir, "", "saved-search", "delete", "hb-fn", "--yes"); !strings.Contains(out, "deleted") {
		t.Fatalf("saved-search delete:\n%s", out)
	}
	if ae := custosErr(t, dir, "", "saved-search", "show", "hb-fn"); ae.StatusCode != 404 {
		t.Fatalf("deleted saved search: %+v", ae)
	}
}
