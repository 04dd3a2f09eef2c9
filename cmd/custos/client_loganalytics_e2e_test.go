package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"custos/internal/crypt"
	"custos/internal/server"
)

// TestLogAnalyticsVerbs drives `custos la-cluster`, `custos
// diagnostic-setting` and `custos purge` against a real server: a cluster
// with a customer-managed file key and double encryption, linking and
// unlinking the workspace (queries keep working under the cluster key), a
// query-audit diagnostic setting, and a purge of ingested rows followed to
// completion and checked by a query.
func TestLogAnalyticsVerbs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	keyDir := t.TempDir()
	if _, err := crypt.CreateFileKey(filepath.Join(keyDir, "custos")); err != nil {
		t.Fatal(err)
	}
	dir, admin, wsID := startAdminServer(t, func(c *server.Config) { c.Keys.FileKeyDir = keyDir })

	t.Run("la-cluster", func(t *testing.T) {
		out := custos(t, dir, "", "la-cluster", "create", "cmk-1", "--key-vault-uri", "file://"+keyDir, "--key-name", "custos", "--double-encryption")
		if !strings.Contains(out, `"isDoubleEncryptionEnabled": true`) || !strings.Contains(out, `"keyName": "custos"`) {
			t.Fatalf("la-cluster create:\n%s", out)
		}
		if out = custos(t, dir, "", "la-cluster", "list"); !strings.Contains(out, "cmk-1") || !strings.Contains(out, "file") || !strings.Contains(out, "true") {
			t.Fatalf("la-cluster list:\n%s", out)
		}
		// A key outside keys.fileKeyDir is refused by the server.
		if ae := custosErr(t, dir, "", "la-cluster", "create", "bad-1", "--key-vault-uri", "file:///etc", "--key-name", "passwd"); ae.StatusCode != 400 {
			t.Fatalf("key outside fileKeyDir: %v", ae)
		}
		out = custos(t, dir, "", "la-cluster", "link", "cmk-1")
		if !strings.Contains(out, "writeAccessResourceId") || !strings.Contains(out, "/clusters/cmk-1") {
			t.Fatalf("la-cluster link:\n%s", out)
		}
		if out = custos(t, dir, "", "la-cluster", "show", "cmk-1"); !strings.Contains(out, `"workspaceName": "`+admin.WorkspaceName+`"`) {
			t.Fatalf("la-cluster show after link (associatedWorkspaces):\n%s", out)
		}
		// The workspace's data stays readable under the cluster's key.
		custos(t, dir, "", "query", "--timespan", "PT1H", "Heartbeat | count")
		if _, _, err := runCLI(t, "", "la-cluster", "unlink", "--data-dir", dir); !errors.Is(err, errNotConfirmed) {
			t.Fatalf("unlink without --yes and no terminal: %v", err)
		}
		if out = custos(t, dir, "", "la-cluster", "unlink", "--yes"); !strings.Contains(out, "deleted") {
			t.Fatalf("la-cluster unlink:\n%s", out)
		}
		var cl struct {
			Properties struct {
				AssociatedWorkspaces []any `json:"associatedWorkspaces"`
			} `json:"properties"`
		}
		if out = custos(t, dir, "", "la-cluster", "show", "cmk-1", "-o", "json"); json.Unmarshal([]byte(out), &cl) != nil || len(cl.Properties.AssociatedWorkspaces) != 0 {
			t.Fatalf("la-cluster show after unlink still lists the workspace:\n%s", out)
		}
		if out = custos(t, dir, "", "la-cluster", "delete", "cmk-1", "--yes"); !strings.Contains(out, "deleted") {
			t.Fatalf("la-cluster delete:\n%s", out)
		}
		if ae := custosErr(t, dir, "", "la-cluster", "show", "cmk-1"); ae.StatusCode != 404 {
			t.Fatalf("show deleted cluster: %v", ae)
		}
	})

	t.Run("diagnostic-setting", func(t *testing.T) {
		out := custos(t, dir, "", "diagnostic-setting", "create", "query-audit")
		if !strings.Contains(out, `"Audit"`) || !strings.Contains(strings.ToLower(out), strings.ToLower(wsID)) {
			t.Fatalf("diagnostic-setting create:\n%s", out)
		}
		if out = custos(t, dir, "", "diagnostic-setting", "list"); !strings.Contains(out, "query-audit") || !strings.Contains(out, "Audit") {
			t.Fatalf("diagnostic-setting list:\n%s", out)
		}
		if ae := custosErr(t, dir, "", "diagnostic-setting", "create", "bad", "--category", "Nope"); ae.StatusCode != 400 {
			t.Fatalf("unknown category: %v", ae)
		}
		if out = custos(t, dir, "", "diagnostic-setting", "delete", "query-audit", "--yes"); !strings.Contains(out, "deleted") {
			t.Fatalf("diagnostic-setting delete:\n%s", out)
		}
		if out = custos(t, dir, "", "diagnostic-setting", "list"); strings.Contains(out, "query-audit") {
			t.Fatalf("diagnostic-setting list after delete:\n%s", out)
		}
	})

	t.Run("purge", func(t *testing.T) {
		work := t.TempDir()
		custos(t, dir, "", "table", "create", "Orders_CL", "--column", "TimeGenerated:datetime", "--column", "Customer:string", "--column", "Amount:real")
		rule := filepath.Join(work, "rule.json")
		if err := os.WriteFile(rule, []byte(fmt.Sprintf(`{"kind":"Direct","properties":{
  "streamDeclarations":{"Custom-Orders":{"columns":[{"name":"TimeGenerated","type":"datetime"},{"name":"Customer","type":"string"},{"name":"Amount","type":"real"}]}},
  "destinations":{"logAnalytics":[{"name":"ws","workspaceResourceId":%q}]},
  "dataFlows":[{"streams":["Custom-Orders"],"destinations":["ws"],"outputStream":"Custom-Orders_CL"}]}}`, wsID)), 0o600); err != nil {
			t.Fatal(err)
		}
		custos(t, dir, "", "dcr", "create", "orders", "-f", rule)
		custos(t, dir, "", "role", "assignment", "create", "--role", "Monitoring Metrics Publisher", "--assignee", "self")
		custos(t, dir, "", "role", "assignment", "create", "--role", "Data Purger", "--assignee", "self")
		now := time.Now().UTC()
		var rows strings.Builder
		for i := range 12 {
			fmt.Fprintf(&rows, `{"TimeGenerated":%q,"Customer":"c%d","Amount":%d}`+"\n", now.Add(-time.Duration(i)*time.Second).Format(time.RFC3339Nano), i%3, i)
		}
		// A new assignment takes effect within the authorizer's cache lifetime.
		for deadline := time.Now().Add(15 * time.Second); ; {
			_, stderr, err := runCLI(t, rows.String(), "ingest", "--dcr", "orders", "-", "--data-dir", dir)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("ingest: %v\n%s", err, stderr)
			}
			time.Sleep(200 * time.Millisecond)
		}
		count := func() string {
			return strings.TrimSpace(custos(t, dir, "", "query", "--timespan", "PT1H", "Orders_CL | summarize n = count() by Customer | order by Customer asc"))
		}
		if got := count(); !strings.Contains(got, "c1") || len(strings.Split(got, "\n")) != 4 {
			t.Fatalf("before purge:\n%s", got)
		}

		// Bad filters: refused locally (shape) or by the server (operator).
		if _, _, err := runCLI(t, "", "purge", "--table", "Orders_CL", "--filter", "Customer", "--data-dir", dir); err == nil || !strings.Contains(err.Error(), "COLUMN OPERATOR VALUE") {
			t.Fatalf("purge with a malformed filter: %v", err)
		}
		if ae := custosErr(t, dir, "", "purge", "--table", "Orders_CL", "--filter", "Customer contains c1"); ae.StatusCode != 400 {
			t.Fatalf("purge with contains: %v", ae)
		}

		var id string
		for deadline := time.Now().Add(15 * time.Second); ; {
			out, stderr, err := runCLI(t, "", "purge", "--table", "Orders_CL", "--filter", "Customer == c1", "--filter", "Amount >= 0", "--data-dir", dir)
			if err == nil {
				id = strings.TrimSpace(out)
				if !strings.Contains(stderr, "custos purge status "+id) {
					t.Fatalf("purge hint on stderr: %q", stderr)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("purge: %v\n%s", err, stderr)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if len(id) != 36 {
			t.Fatalf("purge printed %q; want the operation ID", id)
		}
		if out := strings.TrimSpace(custos(t, dir, "", "purge", "status", id, "--wait", "--wait-timeout", "2m")); out != "completed" {
			t.Fatalf("purge status --wait: %q; want completed", out)
		}
		var st map[string]any
		if err := json.Unmarshal([]byte(custos(t, dir, "", "purge", "status", "purge-"+id, "-o", "json")), &st); err != nil || st["status"] != "completed" {
			t.Fatalf("purge status -o json: %v %v", err, st)
		}
		if got := count(); strings.Contains(got, "c1") || !strings.Contains(got, "c0") || !strings.Contains(got, "c2") {
			t.Fatalf("after purge, c1's rows remain or others went:\n%s", got)
		}
		if ae := custosErr(t, dir, "", "purge", "status", "00000000-0000-4000-8000-000000000000"); ae.StatusCode != 404 {
			t.Fatalf("status of an unknown operation: %v", ae)
		}
	})
}

func TestParsePurgeFilter(t *testing.T) {
	for _, c := range []struct {
		in, want string
	}{
		{"Email == alice@contoso.com", `{"column":"Email","operator":"==","value":"alice@contoso.com"}`},
		{"  Amount   >=   10.5 ", `{"column":"Amount","operator":">=","value":10.5}`},
		{`Computer in ["web-1","web-2"]`, `{"column":"Computer","operator":"in","value":["web-1","web-2"]}`},
		{`Name == "two words"`, `{"column":"Name","operator":"==","value":"two words"}`},
		{"Note == two words", `{"column":"Note","operator":"==","value":"two words"}`},
		{"Properties.userId =~ U-42", `{"column":"Properties","key":"userId","operator":"=~","value":"U-42"}`},
		{"TimeGenerated between [\"2024-01-01\", \"2024-02-01\"]", `{"column":"TimeGenerated","operator":"between","value":["2024-01-01", "2024-02-01"]}`},
	} {
		f, err := parsePurgeFilter(c.in)
		if err != nil {
			t.Errorf("parsePurgeFilter(%q): %v", c.in, err)
			continue
		}
		b, _ := json.Marshal(f)
		var got, want any
		json.Unmarshal(b, &got)
		json.Unmarshal([]byte(c.want), &want)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("parsePurgeFilter(%q) = %s; want %s", c.in, b, c.want)
		}
	}
	for _, in := range []string{"", "Column", "Column ==", "Column == ", ".key == 1", "Col. == 1"} {
		if f, err := parsePurgeFilter(in); err == nil {
			t.Errorf("parsePurgeFilter(%q) = %+v; want an error", in, f)
		}
	}
}
