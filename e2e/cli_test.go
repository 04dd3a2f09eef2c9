package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runCLI runs the custos binary with args against the server whose data
// directory is dataDir, with no CUSTOS_* variables inherited.
func runCLI(ctx context.Context, dataDir, stdin string, args ...string) (stdout, stderr string, err error) {
	return runCLIEnv(ctx, dataDir, nil, stdin, args...)
}

// runCLIEnv is runCLI with extra environment settings (such as
// DataPrincipal.Env) after the inherited ones.
func runCLIEnv(ctx context.Context, dataDir string, env []string, stdin string, args ...string) (stdout, stderr string, err error) {
	cmd := exec.CommandContext(ctx, custosBin, append(args, "--data-dir", dataDir)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CUSTOS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// TestCLISmoke drives the CLI binary as a user would after a first start:
// list workspaces, create a table and a data collection rule, be refused
// ingestion (Owner has no data actions), grant itself Monitoring Metrics
// Publisher, ingest JSON lines from stdin, be refused granting itself Log
// Analytics Reader (just-in-time mode, the default), create a reader service
// principal and give it that role, query as the reader with -o json, and
// see a bad query fail with the server's error.
func TestCLISmoke(t *testing.T) {
	s, c := newServerNoRoles(t)
	ctx := testCtx(t, 120*time.Second)
	dir := s.DataDir()
	cli := func(stdin string, args ...string) string {
		t.Helper()
		out, errOut, err := runCLI(ctx, dir, stdin, args...)
		if err != nil {
			t.Fatalf("custos %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
		}
		return out
	}

	var list struct {
		Value []struct {
			Name       string `json:"name"`
			Properties struct {
				CustomerID string `json:"customerId"`
			} `json:"properties"`
		} `json:"value"`
	}
	if err := json.Unmarshal([]byte(cli("", "workspace", "list", "-o", "json")), &list); err != nil {
		t.Fatalf("workspace list -o json: %v", err)
	}
	found := false
	for _, w := range list.Value {
		found = found || (w.Name == c.Admin.WorkspaceName && w.Properties.CustomerID == c.Admin.WorkspaceID)
	}
	if !found {
		t.Fatalf("workspace list does not show %s (%s): %+v", c.Admin.WorkspaceName, c.Admin.WorkspaceID, list)
	}

	out := cli("", "table", "create", "Smoke_CL", "--column", "TimeGenerated:datetime", "--column", "Host:string",
		"--column", "Level:string", "--column", "Latency:real")
	if !strings.Contains(out, "Smoke_CL") || !strings.Contains(out, "Latency") {
		t.Fatalf("table create:\n%s", out)
	}
	rule := filepath.Join(t.TempDir(), "rule.json")
	ruleJSON := fmt.Sprintf(`{"kind":"Direct","properties":{
  "streamDeclarations":{"Custom-Smoke":{"columns":[{"name":"TimeGenerated","type":"datetime"},{"name":"Host","type":"string"},{"name":"Level","type":"string"},{"name":"Latency","type":"real"}]}},
  "destinations":{"logAnalytics":[{"name":"la","workspaceResourceId":%q}]},
  "dataFlows":[{"streams":["Custom-Smoke"],"destinations":["la"],"outputStream":"Custom-Smoke_CL","transformKql":"source | where Level != 'Debug'"}]}}`,
		c.Admin.WorkspaceResourceID())
	if err := os.WriteFile(rule, []byte(ruleJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := cli("", "dcr", "create", "smoke", "-f", rule); !strings.Contains(out, "Custom-Smoke") {
		t.Fatalf("dcr create:\n%s", out)
	}

	now := time.Now().UTC().Add(-time.Minute)
	var lines strings.Builder
	levels := []string{"Info", "Warning", "Error", "Debug"}
	for i := range 40 {
		fmt.Fprintf(&lines, `{"TimeGenerated":%q,"Host":"web-%d","Level":%q,"Latency":%d.5}`+"\n",
			now.Add(time.Duration(i)*time.Second).Format(time.RFC3339), i%4, levels[i%4], i)
	}
	out, errOut, err := runCLI(ctx, dir, lines.String(), "ingest", "--dcr", "smoke", "-")
	if err == nil || !strings.Contains(errOut, "AuthorizationFailed") {
		t.Fatalf("ingest without a data role: err %v, stdout %q, stderr %q; want AuthorizationFailed", err, out, errOut)
	}
	cli("", "role", "assignment", "create", "--role", "Monitoring Metrics Publisher", "--assignee", "self")
	time.Sleep(RoleCacheTTL)
	if out := cli(lines.String(), "ingest", "--dcr", "smoke", "-"); !strings.Contains(out, "40 records") {
		t.Fatalf("ingest:\n%s", out)
	}

	out, errOut, err = runCLI(ctx, dir, "", "role", "assignment", "create", "--role", "Log Analytics Reader", "--assignee", "self")
	if err == nil || !strings.Contains(errOut, "SelfAssignmentNotAllowed") {
		t.Fatalf("admin granting itself Log Analytics Reader: err %v, stdout %q, stderr %q; want SelfAssignmentNotAllowed", err, out, errOut)
	}
	var reader struct {
		Name       string `json:"name"`
		Properties struct {
			AppID               string `json:"appId"`
			PasswordCredentials []struct {
				SecretText string `json:"secretText"`
			} `json:"passwordCredentials"`
		} `json:"properties"`
	}
	if err := json.Unmarshal([]byte(cli("", "principal", "create", "smoke-reader", "-o", "json")), &reader); err != nil ||
		reader.Name == "" || len(reader.Properties.PasswordCredentials) == 0 {
		t.Fatalf("principal create -o json: %v %+v", err, reader.Name)
	}
	cli("", "role", "assignment", "create", "--role", "Log Analytics Reader", "--assignee", reader.Name)
	time.Sleep(RoleCacheTTL)
	readerEnv := DataPrincipal{ClientID: reader.Properties.AppID, ClientSecret: reader.Properties.PasswordCredentials[0].SecretText}.Env()
	if _, errOut, err := runCLI(ctx, dir, "", "query", "Smoke_CL | count"); err == nil || !strings.Contains(errOut, "AuthorizationFailed") {
		t.Fatalf("query as the admin in just-in-time mode: err %v, stderr %q; want AuthorizationFailed", err, errOut)
	}
	query := func(args ...string) string {
		t.Helper()
		out, errOut, err := runCLIEnv(ctx, dir, readerEnv, "", args...)
		if err != nil {
			t.Fatalf("custos %s as the reader: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
		}
		return out
	}

	var res struct {
		Tables []struct {
			Columns []struct{ Name, Type string } `json:"columns"`
			Rows    [][]any                       `json:"rows"`
		} `json:"tables"`
	}
	q := "Smoke_CL | summarize n = count(), worst = max(Latency) by Level | order by Level asc"
	if err := json.Unmarshal([]byte(query("query", "-o", "json", q)), &res); err != nil {
		t.Fatalf("query -o json: %v", err)
	}
	if len(res.Tables) != 1 {
		t.Fatalf("query -o json: %d tables", len(res.Tables))
	}
	got := fmt.Sprint(res.Tables[0].Rows)
	// The transformation dropped Debug; 10 rows per remaining level.
	if want := "[[Error 10 38.5] [Info 10 36.5] [Warning 10 37.5]]"; got != want {
		t.Fatalf("query rows %s; want %s", got, want)
	}
	if cols := res.Tables[0].Columns; len(cols) != 3 || cols[1].Type != "long" || cols[2].Type != "real" {
		t.Fatalf("query columns %+v; want Level:string, n:long, worst:real", cols)
	}

	out, errOut, err = runCLIEnv(ctx, dir, readerEnv, "", "query", "Smoke_CL | where")
	if err == nil || !strings.Contains(errOut, "BadArgumentError") {
		t.Fatalf("bad query: err %v, stdout %q, stderr %q; want a failure naming BadArgumentError", err, out, errOut)
	}
}
