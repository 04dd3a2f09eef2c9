package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"custos/internal/oidctest"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"custos/internal/cli"
	"custos/internal/server"
)

// TestExternalIssuerQueryAPI runs a real OpenID provider (custos-test-oidc,
// test/install-oidc.sh) and a Custos server that trusts it: the provider's
// client-credentials token, whose groups claim names a Custos group, queries
// the workspace through the Log Analytics Query API once the group holds a
// role there, and not before.
func TestExternalIssuerQueryAPI(t *testing.T) {
	clearClientEnv(t)
	prov := oidctest.Start(t, "-groups", "oidc-readers")
	issuer := prov.Issuer

	dir := t.TempDir()
	cfg := server.DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.Timeouts.Shutdown = dir, "127.0.0.1:0", 5*time.Second
	cfg.Identity.ExternalIssuers = []server.ExternalIssuerConfig{{Issuer: issuer, Audience: "sid1", CAFile: prov.CAFile}}
	s, err := server.New(context.Background(), server.Options{Config: cfg, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	sctx, scancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = s.Run(sctx) }()
	t.Cleanup(func() { scancel(); wg.Wait() })
	adm, _, err := cli.LoadFile(filepath.Join(dir, cli.AdminFileName))
	if err != nil {
		t.Fatal(err)
	}

	// A token from the provider.
	caPEM, _ := os.ReadFile(prov.CAFile)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	pc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	req, _ := http.NewRequest("POST", issuer+"oauth/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "scope": {"openid"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("sid1", "verysecret")
	res, err := pc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(res.Body).Decode(&tr)
	res.Body.Close()
	if tr.AccessToken == "" {
		t.Fatalf("provider token: %d", res.StatusCode)
	}

	hc, err := cli.NewHTTPClient(adm.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	query := func() (int, string) {
		req, _ := http.NewRequest("POST", adm.Endpoint+"/v1/workspaces/"+adm.WorkspaceID+"/query", strings.NewReader(`{"query":"print answer = 42"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tr.AccessToken)
		res, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var b strings.Builder
		_, _ = bufio.NewReader(res.Body).WriteTo(&b)
		return res.StatusCode, b.String()
	}
	if st, body := query(); st != http.StatusForbidden {
		t.Fatalf("external token without a role: %d %s", st, body)
	}
	var group struct{ Name string }
	if err := json.Unmarshal([]byte(custos(t, dir, "", "group", "create", "oidc-readers")), &group); err != nil {
		t.Fatal(err)
	}
	ws := "/subscriptions/" + adm.SubscriptionID + "/resourceGroups/" + adm.ResourceGroup + "/providers/Microsoft.OperationalInsights/workspaces/" + adm.WorkspaceName
	custos(t, dir, "", "role", "assignment", "create", "--role", "Log Analytics Reader", "--assignee", group.Name,
		"--assignee-principal-type", "Group", "--scope", ws)
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, body := query()
		if st == http.StatusOK && strings.Contains(body, "42") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("external token with a group role: %d %s", st, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Tokens of the built-in issuer for other tenants' shapes are not
	// confused with it: a garbled external token is refused.
	tr.AccessToken = tr.AccessToken[:len(tr.AccessToken)-4] + "AAAA"
	if st, _ := query(); st != http.StatusUnauthorized {
		t.Fatalf("altered external token: %d", st)
	}
}
