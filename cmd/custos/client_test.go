package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"custos/internal/cli"
)

// runCLI runs the custos command line in-process and returns what it wrote.
func runCLI(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(stdin))
	err := root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// clearClientEnv makes the test independent of the caller's CUSTOS_* settings.
func clearClientEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{cli.EnvDataDir, cli.EnvEndpoint, cli.EnvTenant, cli.EnvClientID, cli.EnvClientSecret,
		cli.EnvCAFile, cli.EnvSubscription, cli.EnvResourceGroup, cli.EnvWorkspace, cli.EnvWorkspaceID} {
		t.Setenv(k, "")
	}
}

func TestVersionCommand(t *testing.T) {
	out, _, err := runCLI(t, "", "version")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "custos ") || !strings.Contains(out, "go: go1.") || !strings.Contains(out, "commit: ") {
		t.Fatalf("version output:\n%s", out)
	}
	out, _, err = runCLI(t, "", "version", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var info buildInfo
	if err := json.Unmarshal([]byte(out), &info); err != nil || info.Version == "" || info.GoVersion == "" || info.Platform == "" {
		t.Fatalf("version -o json: %v\n%s", err, out)
	}
}

func TestReadBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "custos", Version: "(devel)"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123abcd"},
			{Key: "vcs.modified", Value: "true"},
			{Key: "vcs.time", Value: "2026-11-26T21:00:00Z"},
		},
	}
	got := readBuildInfo("", "", bi, true)
	if got.Version != "dev" || got.Commit != "0123abcd" || !got.Modified || got.BuildTime == "" || got.GoVersion != "go1.26.8" {
		t.Errorf("from build info: %+v", got)
	}
	got = readBuildInfo("v1.2.3", "feedface", bi, true)
	if got.Version != "v1.2.3" || got.Commit != "feedface" || got.Modified {
		t.Errorf("ldflags must win: %+v", got)
	}
	bi.Main.Version = "v0.4.0"
	if got = readBuildInfo("", "", bi, true); got.Version != "v0.4.0" {
		t.Errorf("module version: %+v", got)
	}
	if got = readBuildInfo("", "", nil, false); got.Version != "dev" || got.Commit != "unknown" {
		t.Errorf("no build info: %+v", got)
	}
}

func TestClientWithoutConfiguration(t *testing.T) {
	clearClientEnv(t)
	dir := t.TempDir()
	_, _, err := runCLI(t, "", "workspace", "list", "--data-dir", dir)
	if !errors.Is(err, cli.ErrNoConfig) || !strings.Contains(err.Error(), filepath.Join(dir, "admin.json")) || !strings.Contains(err.Error(), "custos serve") {
		t.Fatalf("got %v", err)
	}
	// CUSTOS_DATA_DIR is honoured like --data-dir.
	t.Setenv(cli.EnvDataDir, dir)
	_, _, err = runCLI(t, "", "query", "T | take 1")
	if !errors.Is(err, cli.ErrNoConfig) || !strings.Contains(err.Error(), filepath.Join(dir, "admin.json")) {
		t.Fatalf("got %v", err)
	}
}

func TestClientConfigErrors(t *testing.T) {
	clearClientEnv(t)
	dir := t.TempDir()
	admin := filepath.Join(dir, "admin.json")
	if err := os.WriteFile(admin, []byte(`{"endpoint":"https://127.0.0.1:1","tenantId":"t","clientId":"c","clientSecret":"s","extra":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, "", "workspace", "list", "--data-dir", dir); err == nil || !strings.Contains(err.Error(), `unknown field "extra"`) {
		t.Fatalf("unknown key: got %v", err)
	}
	if err := os.WriteFile(admin, []byte(`{"endpoint":"http://127.0.0.1:1","tenantId":"t","clientId":"c","clientSecret":"s"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(admin, 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := runCLI(t, "", "token", "--data-dir", dir)
	if err == nil || !strings.Contains(err.Error(), "https") {
		t.Fatalf("http endpoint: got %v", err)
	}
	if !strings.Contains(stderr, "readable by other users") {
		t.Errorf("no warning about a world-readable admin.json; stderr: %q", stderr)
	}
	_, stderr, _ = runCLI(t, "", "token", "--data-dir", dir, "--client-secret", "hunter2")
	if !strings.Contains(stderr, "--client-secret is visible") {
		t.Errorf("no warning about --client-secret; stderr: %q", stderr)
	}
	if strings.Contains(stderr, "hunter2") {
		t.Error("secret printed")
	}
	// Flags take precedence over the file: a flag endpoint fixes the scheme error;
	// the CA file named by flag must then exist.
	_, _, err = runCLI(t, "", "token", "--data-dir", dir, "--endpoint", "https://127.0.0.1:1", "--ca-file", filepath.Join(dir, "nope.crt"))
	if err == nil || !strings.Contains(err.Error(), "read CA file") {
		t.Fatalf("flag precedence: got %v", err)
	}
}

func TestClientUsageErrors(t *testing.T) {
	clearClientEnv(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"workspace", "list", "-o", "yaml"}, `unknown output format "yaml"`},
		{[]string{"workspace", "list", "-o", "csv"}, `unknown output format "csv"`},
		{[]string{"workspace", "delete", "x"}, "pass --yes"},
		{[]string{"table", "delete", "T_CL"}, "pass --yes"},
		{[]string{"dcr", "delete", "r"}, "pass --yes"},
		{[]string{"table", "create", "T_CL"}, "no schema"},
		{[]string{"table", "create", "T_CL", "--column", "A"}, "want Name:type"},
		{[]string{"table", "create", "T_CL", "--column", "A:text"}, `unknown column type "text"`},
		{[]string{"table", "create", "T_CL", "--column", "A:string", "-f", "x.json"}, "not both"},
		{[]string{"table", "create", "T_CL", "-f", "-"}, "schema file"},
		{[]string{"dcr", "create", "r"}, "pass -f rule.json"},
		{[]string{"dcr", "create", "-f", "-"}, "no rule name"},
		{[]string{"query"}, "no query"},
		{[]string{"query", "-f", "-", "T"}, "not both"},
		{[]string{"ingest", "x.json"}, "pass --dcr"},
		{[]string{"ingest", "--dcr", "r", filepath.Join(dir, "missing.json")}, "no such file"},
	} {
		_, _, err := runCLI(t, "{}", append(tc.args, "--data-dir", dir)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v; want %q", tc.args, err, tc.want)
		}
	}
}

func TestParseTags(t *testing.T) {
	m, err := parseTags([]string{"team=secops", "empty=", "k=v=w"})
	if err != nil || m["team"] != "secops" || m["empty"] != "" || m["k"] != "v=w" {
		t.Fatalf("got %v, %v", m, err)
	}
	if got := formatTags(m); got != "empty=, k=v=w, team=secops" {
		t.Errorf("formatTags = %q", got)
	}
	if _, err := parseTags([]string{"novalue"}); err == nil {
		t.Error("tag without = accepted")
	}
}
