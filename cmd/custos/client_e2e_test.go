package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"custos/internal/cli"
	"custos/internal/server"
)

// startCustos runs a real Custos server on 127.0.0.1:0 on data directory
// dir (created and bootstrapped on first start); it returns a function that
// stops the server and waits for it, which also runs at test cleanup.
func startCustos(t *testing.T, dir string) (stop func()) {
	t.Helper()
	return startCustosWith(t, dir, nil)
}

// startCustosWith is startCustos with configure applied to the server's
// configuration (when not nil).
func startCustosWith(t *testing.T, dir string, configure func(*server.Config)) (stop func()) {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.DataDir = dir
	cfg.Listen = "127.0.0.1:0"
	cfg.Timeouts.Shutdown = 5 * time.Second
	// These tests query as the bootstrap admin (data roles written into the
	// catalog), so just-in-time mode, the default, is off here; e2e's
	// TestCLISmoke runs the CLI flow with it on.
	cfg.Identity.JustInTimeAccess = false
	if configure != nil {
		configure(&cfg)
	}
	s, err := server.New(context.Background(), server.Options{Config: cfg, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("server stopped with %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Error("server did not stop within 20s")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// startAdminServer starts a real server (startCustosWith) on a new data
// directory with a clean client environment, and returns the directory, the
// admin.json configuration it wrote and the resource ID of its workspace.
func startAdminServer(t *testing.T, configure func(*server.Config)) (dir string, admin cli.Config, workspaceID string) {
	t.Helper()
	clearClientEnv(t)
	dir = filepath.Join(t.TempDir(), "data")
	startCustosWith(t, dir, configure)
	admin, _, err := cli.LoadFile(filepath.Join(dir, cli.AdminFileName))
	if err != nil {
		t.Fatal(err)
	}
	return dir, admin, "/subscriptions/" + admin.SubscriptionID + "/resourceGroups/" + admin.ResourceGroup +
		"/providers/Microsoft.OperationalInsights/workspaces/" + admin.WorkspaceName
}

// custos runs one CLI command against the server whose data directory is
// dir, failing the test on error.
func custos(t *testing.T, dir, stdin string, args ...string) string {
	t.Helper()
	out, stderr, err := runCLI(t, stdin, append(args, "--data-dir", dir)...)
	if err != nil {
		t.Fatalf("custos %s: %v\nstderr: %s", strings.Join(args, " "), err, stderr)
	}
	return out
}

// custosErr runs one CLI command that must fail with an API error from the
// server, and returns it.
func custosErr(t *testing.T, dir, stdin string, args ...string) *cli.APIError {
	t.Helper()
	out, _, err := runCLI(t, stdin, append(args, "--data-dir", dir)...)
	var ae *cli.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("custos %s: got %v (stdout %q); want an API error", strings.Join(args, " "), err, out)
	}
	return ae
}

func TestClientEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	clearClientEnv(t)
	dir := filepath.Join(t.TempDir(), "data")
	startCustos(t, dir)
	admin, found, err := cli.LoadFile(filepath.Join(dir, cli.AdminFileName))
	if err != nil || !found {
		t.Fatalf("admin.json: found=%v err=%v", found, err)
	}
	work := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(work, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	t.Run("token", func(t *testing.T) {
		tok := strings.TrimSpace(custos(t, dir, "", "token"))
		if strings.Count(tok, ".") != 2 || strings.ContainsAny(tok, " \n") {
			t.Fatalf("token = %q; want one JWT", tok)
		}
		var res struct{ AccessToken, ExpiresOn, Scope string }
		if err := json.Unmarshal([]byte(custos(t, dir, "", "token", "--scope", "query", "-o", "json")), &res); err != nil {
			t.Fatal(err)
		}
		exp, err := time.Parse(time.RFC3339, res.ExpiresOn)
		if err != nil || time.Until(exp) < 30*time.Minute || res.Scope != "https://api.loganalytics.io/.default" || res.AccessToken == "" {
			t.Fatalf("token -o json = %+v (%v)", res, err)
		}
	})

	t.Run("wrong secret", func(t *testing.T) {
		t.Setenv(cli.EnvClientSecret, "not-the-secret")
		ae := custosErr(t, dir, "", "token")
		if ae.Code != "invalid_client" || !strings.Contains(ae.Message, "AADSTS7000215") {
			t.Fatalf("got %v", ae)
		}
	})

	t.Run("untrusted CA", func(t *testing.T) {
		other := write("other-ca.crt", selfSignedPEM(t))
		_, _, err := runCLI(t, "", "workspace", "list", "--data-dir", dir, "--ca-file", other)
		if err == nil || !strings.Contains(err.Error(), "--ca-file") {
			t.Fatalf("got %v; want a hint about --ca-file", err)
		}
	})

	t.Run("workspaces", func(t *testing.T) {
		out := custos(t, dir, "", "workspace", "list")
		if !strings.HasPrefix(out, "NAME ") || !strings.Contains(out, admin.WorkspaceName) || !strings.Contains(out, admin.WorkspaceID) {
			t.Fatalf("workspace list:\n%s", out)
		}
		var list struct {
			Value []cli.Workspace `json:"value"`
		}
		if err := json.Unmarshal([]byte(custos(t, dir, "", "workspace", "list", "-o", "json")), &list); err != nil || len(list.Value) == 0 {
			t.Fatalf("workspace list -o json: %v %+v", err, list)
		}
		out = custos(t, dir, "", "workspace", "show")
		if !strings.Contains(out, "Customer ID:") || !strings.Contains(out, admin.WorkspaceID) {
			t.Fatalf("workspace show:\n%s", out)
		}
		out = custos(t, dir, "", "workspace", "create", "audit-ws", "--retention-days", "60", "--tag", "team=secops")
		if !strings.Contains(out, "60 days") || !strings.Contains(out, "team=secops") {
			t.Fatalf("workspace create:\n%s", out)
		}
		if out := custos(t, dir, "", "workspace", "delete", "audit-ws", "--yes"); !strings.Contains(out, "deleted workspace audit-ws") {
			t.Fatalf("workspace delete: %s", out)
		}
		ae := custosErr(t, dir, "", "workspace", "show", "audit-ws")
		if ae.StatusCode != 404 || ae.Code == "" || ae.Message == "" {
			t.Fatalf("show deleted workspace: %v", ae)
		}
		ae = custosErr(t, dir, "", "workspace", "create", "bad", "--retention-days", "5")
		if ae.StatusCode != 400 || ae.Code == "" {
			t.Fatalf("retention 5: %v", ae)
		}
	})

	t.Run("tables, rules, ingestion and queries", func(t *testing.T) {
		out := custos(t, dir, "", "table", "create", "Orders_CL",
			"--column", "TimeGenerated:datetime", "--column", "Customer:string", "--column", "Amount:real", "--column", "Note:string:free text")
		if !strings.Contains(out, "Orders_CL") || !strings.Contains(out, "Amount") || !strings.Contains(out, "free text") {
			t.Fatalf("table create:\n%s", out)
		}
		if out := custos(t, dir, "", "table", "list"); !strings.Contains(out, "Orders_CL") || !strings.Contains(out, "Heartbeat") {
			t.Fatalf("table list:\n%s", out)
		}
		// The server's validation message reaches the user.
		ae := custosErr(t, dir, "", "table", "create", "Orders", "--column", "TimeGenerated:datetime")
		if ae.StatusCode != 400 || !strings.Contains(ae.Message, "_CL") {
			t.Fatalf("table without _CL: %v", ae)
		}
		schema := write("schema.json", `{"properties":{"schema":{"name":"Extra_CL","columns":[{"name":"TimeGenerated","type":"dateTime"},{"name":"V","type":"long"}]},"retentionInDays":45}}`)
		if out := custos(t, dir, "", "table", "create", "Extra_CL", "-f", schema); !strings.Contains(out, "45 days") {
			t.Fatalf("table create -f:\n%s", out)
		}

		rule := write("rule.json", fmt.Sprintf(`{
  "kind": "Direct",
  "properties": {
    "streamDeclarations": {"Custom-Orders": {"columns": [
      {"name": "Time", "type": "datetime"}, {"name": "Customer", "type": "string"}, {"name": "Amount", "type": "real"}]}},
    "destinations": {"logAnalytics": [{"name": "ws",
      "workspaceResourceId": "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.OperationalInsights/workspaces/%s"}]},
    "dataFlows": [{"streams": ["Custom-Orders"], "destinations": ["ws"],
      "transformKql": "source | extend TimeGenerated = Time | project-away Time", "outputStream": "Custom-Orders_CL"}]
  }
}`, admin.SubscriptionID, admin.ResourceGroup, admin.WorkspaceName))
		out = custos(t, dir, "", "dcr", "create", "orders", "-f", rule)
		if !strings.Contains(out, "Immutable ID:") || !strings.Contains(out, "Custom-Orders") {
			t.Fatalf("dcr create:\n%s", out)
		}
		var d cli.DCR
		if err := json.Unmarshal([]byte(custos(t, dir, "", "dcr", "show", "orders", "-o", "json")), &d); err != nil || !cli.IsImmutableID(d.Properties.ImmutableID) {
			t.Fatalf("dcr show -o json: %v %+v", err, d)
		}
		if out := custos(t, dir, "", "dcr", "list"); !strings.Contains(out, d.Properties.ImmutableID) {
			t.Fatalf("dcr list:\n%s", out)
		}

		// As in Azure, Owner holds no data actions: the CLI says which role is
		// missing, and grants it.
		_, _, err := runCLI(t, `{"Time":"2026-01-01T00:00:00Z"}`, "ingest", "--dcr", "orders", "-", "--data-dir", dir)
		if ae := (*cli.APIError)(nil); !errors.As(err, &ae) || ae.StatusCode != 403 || !strings.Contains(err.Error(), "Monitoring Metrics Publisher") {
			t.Fatalf("ingest without the data role: %v", err)
		}
		out = custos(t, dir, "", "role", "assignment", "create", "--role", "monitoring metrics publisher", "--assignee", "self")
		if !strings.Contains(out, "Monitoring Metrics Publisher") || !strings.Contains(out, "ServicePrincipal") {
			t.Fatalf("role assignment create:\n%s", out)
		}

		now := time.Now().UTC()
		var jsonl strings.Builder
		for i := range 30 {
			fmt.Fprintf(&jsonl, `{"Time":%q,"Customer":"c%d","Amount":%d.5}`+"\n", now.Add(-time.Duration(i)*time.Second).Format(time.RFC3339Nano), i%3, i)
		}
		// By name, stream taken from the rule, from stdin; small requests force several.
		// A new assignment takes effect within the authorizer's cache lifetime
		// (about a second); until then the first request is denied and
		// nothing is sent, so retrying the whole input is safe.
		deadline := time.Now().Add(15 * time.Second)
		for {
			var stderr string
			out, stderr, err = runCLI(t, jsonl.String(), "ingest", "--dcr", "orders", "--max-request-bytes", "512", "-", "--data-dir", dir)
			ae := (*cli.APIError)(nil)
			if err == nil || !errors.As(err, &ae) || ae.StatusCode != 403 || time.Now().After(deadline) {
				if err != nil {
					t.Fatalf("ingest: %v\nstderr: %s", err, stderr)
				}
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if !strings.Contains(out, "ingested 30 records in ") || strings.Contains(out, " in 1 requests") {
			t.Fatalf("ingest:\n%s", out)
		}
		// Compressed.
		out = custos(t, dir, `[{"Time":"`+now.Format(time.RFC3339)+`","Customer":"c9","Amount":0.5}]`, "ingest", "--dcr", "orders", "--gzip", "-")
		if !strings.Contains(out, "ingested 1 records in 1 requests") {
			t.Fatalf("ingest --gzip:\n%s", out)
		}
		// By immutable ID with an explicit stream, a JSON array from a file.
		arr := write("more.json", fmt.Sprintf(`[{"Time":%q,"Customer":"c9","Amount":1000}]`, now.Format(time.RFC3339)))
		var st map[string]any
		if err := json.Unmarshal([]byte(custos(t, dir, "", "ingest", "--dcr", d.Properties.ImmutableID, "--stream", "Custom-Orders", arr, "-o", "json")), &st); err != nil || st["records"] != float64(1) {
			t.Fatalf("ingest -o json: %v %v", err, st)
		}
		ae = custosErr(t, dir, "", "ingest", "--dcr", "orders", "--stream", "Custom-Nope", arr)
		if ae.StatusCode/100 != 4 || ae.Code == "" {
			t.Fatalf("unknown stream: %v", ae)
		}

		q := "Orders_CL | summarize n = count(), total = sum(Amount) by Customer | order by Customer asc"
		out = custos(t, dir, "", "query", "--timespan", "PT1H", q)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 5 || !strings.HasPrefix(lines[0], "Customer") || !strings.Contains(lines[1], "c0") || !strings.Contains(lines[4], "c9") || !strings.Contains(lines[4], "1000") {
			t.Fatalf("query:\n%s", out)
		}
		var res cli.QueryResult
		if err := json.Unmarshal([]byte(custos(t, dir, "", "query", "--workspace", admin.WorkspaceName, "-o", "json", q)), &res); err != nil {
			t.Fatal(err)
		}
		if len(res.Tables) != 1 || len(res.Tables[0].Rows) != 4 || res.Tables[0].Columns[1].Type != "long" {
			t.Fatalf("query -o json: %+v", res)
		}
		_, _, err = runCLI(t, "", "query", "--stats", "-f", "-", "--data-dir", dir)
		if err == nil || !strings.Contains(err.Error(), "no query") {
			t.Fatalf("query -f - with empty stdin: %v", err)
		}
		out, stderr, err := runCLI(t, "Orders_CL\n| count", "query", "--stats", "-f", "-", "--data-dir", dir)
		if err != nil || !strings.Contains(out, "32") || !strings.Contains(stderr, "statistics:") {
			t.Fatalf("query --stats -f -: %v\n%s\nstderr: %s", err, out, stderr)
		}
		out = custos(t, dir, "", "query", "-o", "csv", "Orders_CL | where Customer == 'c9' | summarize n = count(), total = sum(Amount) by Customer")
		if out != "Customer,n,total\nc9,2,1000.5\n" {
			t.Fatalf("query -o csv:\n%q", out)
		}
		// long values beyond 2^53 survive (the SDK alone would round them).
		out = custos(t, dir, "", "query", "Orders_CL | take 1 | extend big = 9007199254740993 | project big")
		if !strings.Contains(out, "9007199254740993") {
			t.Fatalf("long precision:\n%s", out)
		}
		if out := custos(t, dir, "", "query", "-o", "json", "Orders_CL | take 1 | extend big = 9007199254740993 | project big"); !strings.Contains(out, "9007199254740993") {
			t.Fatalf("long precision -o json:\n%s", out)
		}
		ae = custosErr(t, dir, "", "query", "Orders_CL | where")
		if ae.StatusCode != 400 || ae.Code != "BadArgumentError" || ae.Inner == nil || ae.Inner.Code == "" {
			t.Fatalf("syntax error: %v", ae)
		}
		ae = custosErr(t, dir, "", "query", "Nope_CL | take 1")
		if ae.StatusCode != 400 || !strings.Contains(ae.Error(), "Nope_CL") {
			t.Fatalf("unknown table: %v", ae)
		}

		if out := custos(t, dir, "", "dcr", "delete", "orders", "--yes"); !strings.Contains(out, "deleted data collection rule orders") {
			t.Fatalf("dcr delete: %s", out)
		}
		if out := custos(t, dir, "", "table", "delete", "Extra_CL", "--yes"); !strings.Contains(out, "deleted table Extra_CL") {
			t.Fatalf("table delete: %s", out)
		}
		if ae := custosErr(t, dir, "", "table", "show", "Extra_CL"); ae.StatusCode != 404 {
			t.Fatalf("show deleted table: %v", ae)
		}
	})
}

// selfSignedPEM returns a CA certificate that did not sign the server's.
func selfSignedPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}
