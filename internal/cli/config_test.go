package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const adminJSON = `{
  "endpoint": "https://127.0.0.1:8443",
  "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
  "clientId": "11111111-2222-3333-4444-555555555555",
  "clientSecret": "s3cr3t~value",
  "subscriptionId": "00000000-0000-0000-0000-000000000001",
  "resourceGroup": "default",
  "workspaceName": "default",
  "workspaceId": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
  "caFile": "tls/ca.crt"
}`

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, AdminFileName)
	if err := os.WriteFile(path, []byte(adminJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "tls"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls", "ca.crt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, found, err := LoadFile(path)
	if err != nil || !found {
		t.Fatalf("LoadFile: found=%v err=%v", found, err)
	}
	if c.Endpoint != "https://127.0.0.1:8443" || c.ResourceGroup != "default" || c.WorkspaceID != "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee" {
		t.Errorf("got %+v", c)
	}
	if c.ClientSecret.Reveal() != "s3cr3t~value" {
		t.Errorf("secret = %q", c.ClientSecret.Reveal())
	}
	if want := filepath.Join(dir, "tls", "ca.crt"); c.CAFile != want {
		t.Errorf("caFile = %q; want %q (relative to admin.json)", c.CAFile, want)
	}
	if InsecurePermissions(path) {
		t.Error("0600 file reported as insecure")
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if !InsecurePermissions(path) {
		t.Error("0644 file not reported as insecure")
	}
}

func TestLoadFileMissing(t *testing.T) {
	_, found, err := LoadFile(filepath.Join(t.TempDir(), AdminFileName))
	if err != nil || found {
		t.Fatalf("missing file: found=%v err=%v; want false, nil", found, err)
	}
}

func TestParseConfigStrict(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"unknown key", `{"endpoint":"https://x","password":"p"}`, `unknown field "password"`},
		{"trailing data", `{"endpoint":"https://x"} {}`, "data after"},
		{"wrong type", `{"endpoint":5}`, "cannot unmarshal number"},
		{"not JSON", `endpoint: x`, "invalid character"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v; want error containing %q", err, tc.want)
			}
		})
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	c, err := ParseConfig([]byte(adminJSON))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s", c, c, c, c.ClientSecret)} {
		if strings.Contains(s, "s3cr3t") {
			t.Fatalf("secret leaked: %s", s)
		}
	}
}

func TestMergePrecedence(t *testing.T) {
	file, err := ParseConfig([]byte(adminJSON))
	if err != nil {
		t.Fatal(err)
	}
	env := FromEnv(func(k string) string {
		return map[string]string{EnvEndpoint: "https://env:1", EnvClientSecret: "from-env", EnvResourceGroup: "rg-env"}[k]
	})
	flags := Config{Endpoint: "https://flag:2"}
	got := file.Merge(env).Merge(flags)
	if got.Endpoint != "https://flag:2" {
		t.Errorf("endpoint = %q; want the flag's", got.Endpoint)
	}
	if got.ClientSecret.Reveal() != "from-env" || got.ResourceGroup != "rg-env" {
		t.Errorf("env not applied: %q %q", got.ClientSecret.Reveal(), got.ResourceGroup)
	}
	if got.TenantID != file.TenantID {
		t.Errorf("file value lost: %q", got.TenantID)
	}
}

func TestValidate(t *testing.T) {
	full, err := ParseConfig([]byte(adminJSON))
	if err != nil {
		t.Fatal(err)
	}
	if err := full.Validate(NeedCredentials|NeedResourceGroup, ""); err != nil {
		t.Fatalf("full config: %v", err)
	}
	c := full
	c.ClientSecret, c.ResourceGroup = "", ""
	err = c.Validate(NeedCredentials|NeedResourceGroup, "see admin.json")
	if !errors.Is(err, ErrNoConfig) || !strings.Contains(err.Error(), EnvClientSecret) || !strings.Contains(err.Error(), "resource group") {
		t.Fatalf("got %v", err)
	}
	for _, ep := range []string{"http://127.0.0.1:8443", "127.0.0.1:8443", "https://", "https://u:p@host", "https://h/?x=1"} {
		c := full
		c.Endpoint = ep
		if err := c.Validate(NeedCredentials, ""); err == nil {
			t.Errorf("endpoint %q accepted", ep)
		}
	}
	if got, err := ParseEndpoint("https://h:1/"); err != nil || got != "https://h:1" {
		t.Errorf("ParseEndpoint = %q, %v", got, err)
	}
}
