package server

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "custos.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func noEnv(string) (string, bool) { return "", false }

func TestLoadConfigDefaults(t *testing.T) {
	cfg, err := LoadConfig(LoadOptions{Env: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:8443" {
		t.Errorf("listen %q; want 127.0.0.1:8443", cfg.Listen)
	}
	if !filepath.IsAbs(cfg.DataDir) || filepath.Base(cfg.DataDir) != "custos-data" {
		t.Errorf("dataDir %q; want an absolute path ending in custos-data", cfg.DataDir)
	}
	if cfg.InsecureMetricsWithoutAuth {
		t.Error("an insecure setting is on by default")
	}
	if got := cfg.EndpointURL(); got != "https://localhost:8443" {
		t.Errorf("endpoint %q; want https://localhost:8443", got)
	}
}

func TestLoadConfigPrecedence(t *testing.T) {
	file := writeConfig(t, `
dataDir: /from/yaml
listen: 127.0.0.1:1111
log:
  level: debug
  format: text
timeouts:
  shutdown: 7s
tls:
  hostnames: [a.example, 10.0.0.1]
`)
	env := map[string]string{"CUSTOS_LISTEN": "127.0.0.1:2222", "CUSTOS_LOG_LEVEL": "warn", "CUSTOS_TLS_HOSTNAMES": "b.example, c.example"}
	cfg, err := LoadConfig(LoadOptions{
		File:  file,
		Env:   func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Flags: map[string]string{"log-level": "error"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, got, want string }{
		{"dataDir (yaml)", cfg.DataDir, "/from/yaml"},
		{"listen (env over yaml)", cfg.Listen, "127.0.0.1:2222"},
		{"log.level (flag over env)", cfg.Log.Level, "error"},
		{"log.format (yaml)", cfg.Log.Format, "text"},
		{"hostnames (env)", strings.Join(cfg.TLS.Hostnames, ","), "b.example,c.example"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q; want %q", c.name, c.got, c.want)
		}
	}
	if cfg.Timeouts.Shutdown != 7*time.Second {
		t.Errorf("timeouts.shutdown = %v; want 7s", cfg.Timeouts.Shutdown)
	}
	if cfg.Timeouts.Read != DefaultConfig().Timeouts.Read {
		t.Errorf("unset timeouts.read = %v; want the default", cfg.Timeouts.Read)
	}
}

// The alerts and keys sections are settings like any other: YAML, then
// environment, then flags.
func TestLoadConfigAlertsAndKeys(t *testing.T) {
	file := writeConfig(t, `
alerts:
  concurrency: 3
  smtp: {host: mail.yaml, port: 2525}
keys:
  cacheTTL: 30s
  pkcs11Modules: [/yaml/lib.so]
`)
	env := map[string]string{"CUSTOS_ALERTS_SMTP_HOST": "mail.env", "CUSTOS_KEYS_PKCS11_MODULES": "/env/a.so, /env/b.so"}
	cfg, err := LoadConfig(LoadOptions{
		File:  file,
		Env:   func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Flags: map[string]string{"keys-cache-ttl": "5s", "alerts-insecure-allow-http-webhooks": "true"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Alerts.Concurrency != 3 || cfg.Alerts.SMTP.Port != 2525 || cfg.Alerts.SMTP.Host != "mail.env" ||
		!cfg.Alerts.InsecureAllowHTTPWebhooks {
		t.Errorf("alerts = %+v; want concurrency 3 and port 2525 (yaml), host mail.env (env), insecure webhooks (flag)", cfg.Alerts)
	}
	if cfg.Keys.CacheTTL != 5*time.Second || strings.Join(cfg.Keys.PKCS11Modules, ",") != "/env/a.so,/env/b.so" {
		t.Errorf("keys = %+v; want cacheTTL 5s (flag) and the env modules", cfg.Keys)
	}
}

func TestLoadConfigRejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		yaml  string
		env   map[string]string
		flags map[string]string
	}{
		{name: "unknown key", yaml: "listen: 127.0.0.1:1\nlisten_addr: x\n"},
		{name: "unknown nested key", yaml: "tls:\n  certfile: x\n"},
		{name: "two documents", yaml: "listen: 127.0.0.1:1\n---\nlisten: 127.0.0.1:2\n"},
		{name: "wrong type", yaml: "limits:\n  maxHeaderBytes: lots\n"},
		{name: "bad listen", flags: map[string]string{"listen": "nonsense"}},
		{name: "bad port", flags: map[string]string{"listen": "127.0.0.1:99999"}},
		{name: "http endpoint", flags: map[string]string{"endpoint": "http://localhost:8443"}},
		{name: "endpoint with path", flags: map[string]string{"endpoint": "https://localhost:8443/custos"}},
		{name: "cert without key", flags: map[string]string{"tls-cert": "/x.crt"}},
		{name: "bad level", env: map[string]string{"CUSTOS_LOG_LEVEL": "loud"}},
		{name: "bad format", flags: map[string]string{"log-format": "xml"}},
		{name: "bad duration", env: map[string]string{"CUSTOS_SHUTDOWN_TIMEOUT": "soon"}},
		{name: "negative duration", flags: map[string]string{"read-timeout": "-1s"}},
		{name: "tiny body cap", flags: map[string]string{"max-request-body-bytes": "10"}},
		{name: "bad bool", flags: map[string]string{"insecure-metrics-without-auth": "maybe"}},
		{name: "bad hostname", flags: map[string]string{"tls-hostnames": "exa mple"}},
		{name: "unknown flag", flags: map[string]string{"no-such-flag": "1"}},
		{name: "query timeout over max", flags: map[string]string{"query-timeout": "20m"}},
		{name: "write timeout under query max", yaml: "timeouts:\n  write: 5m\n"},
		{name: "token lifetime too long", env: map[string]string{"CUSTOS_TOKEN_LIFETIME": "48h"}},
		{name: "token lifetime too short", flags: map[string]string{"token-lifetime": "1m"}},
		{name: "negative rows", flags: map[string]string{"query-max-result-rows": "-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := LoadOptions{Flags: tc.flags, Env: func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }}
			if tc.yaml != "" {
				o.File = writeConfig(t, tc.yaml)
			}
			_, err := LoadConfig(o)
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("LoadConfig: %v; want ErrInvalidConfig", err)
			}
		})
	}
	if _, err := LoadConfig(LoadOptions{File: filepath.Join(t.TempDir(), "missing.yaml"), Env: noEnv}); err == nil {
		t.Fatal("a missing config file was accepted")
	}
}

// TestSettingsDocumented keeps docs/configuration.md complete: every YAML
// key, flag and environment variable appears in it.
func TestSettingsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatalf("read docs/configuration.md: %v", err)
	}
	text := string(doc)
	all := append([]Setting{ConfigFileSetting}, Settings()...)
	for _, s := range all {
		for _, want := range []string{s.Key, "--" + s.Flag, s.Env} {
			if want != "" && !strings.Contains(text, "`"+want+"`") {
				t.Errorf("docs/configuration.md does not mention `%s`", want)
			}
		}
	}
	// Every setting has a flag and an env variable, and each is unique.
	seen := map[string]bool{}
	for _, s := range all {
		if s.Flag == "" || s.Env == "" || !strings.HasPrefix(s.Env, "CUSTOS_") {
			t.Errorf("setting %q lacks a flag or CUSTOS_ env variable", s.Key)
		}
		for _, n := range []string{"key " + s.Key, "flag " + s.Flag, "env " + s.Env} {
			if n != "key " && seen[n] {
				t.Errorf("%s is used by two settings", n)
			}
			seen[n] = true
		}
	}
}

func TestInsecureSettingWarns(t *testing.T) {
	cfg := testConfig(newDataDir(t))
	cfg.InsecureMetricsWithoutAuth = true
	s, logs := newServer(t, cfg)
	s.Close()
	if !strings.Contains(logs.String(), `"level":"WARN","msg":"insecure setting enabled","setting":"insecureMetricsWithoutAuth"`) {
		t.Fatalf("no warning for the insecure setting: %s", logs.String())
	}
}
