package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"custos/internal/identity"
	"custos/internal/rbac"
)

func TestListenerAndNetworkSettings(t *testing.T) {
	file := writeConfig(t, `
listeners:
  - address: 127.0.0.1:0
    private: true
  - address: 127.0.0.2:9443
    clientCAFile: /etc/custos/clients.pem
privateNetworks: [10.0.0.0/8, "fd00::/8", 192.168.1.7]
`)
	cfg, err := LoadConfig(LoadOptions{File: file, Env: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Listeners) != 2 || !cfg.Listeners[0].Private || cfg.Listeners[1].Private ||
		cfg.Listeners[1].ClientCAFile != "/etc/custos/clients.pem" || len(cfg.PrivateNetworks) != 3 {
		t.Fatalf("yaml: %+v %v", cfg.Listeners, cfg.PrivateNetworks)
	}

	env := map[string]string{
		"CUSTOS_LISTENERS":        "10.1.2.3:8443;private, [::1]:9443;clientCAFile=/ca.pem;private=false",
		"CUSTOS_PRIVATE_NETWORKS": "172.16.0.0/12",
	}
	cfg, err = LoadConfig(LoadOptions{File: file, Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Flags: map[string]string{"private-networks": "100.64.0.0/10,::ffff:10.9.0.0/112"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []ListenerConfig{{Address: "10.1.2.3:8443", Private: true}, {Address: "[::1]:9443", ClientCAFile: "/ca.pem"}}
	if fmt.Sprint(cfg.Listeners) != fmt.Sprint(want) {
		t.Errorf("env listeners %+v; want %+v", cfg.Listeners, want)
	}
	if strings.Join(cfg.PrivateNetworks, ",") != "100.64.0.0/10,::ffff:10.9.0.0/112" {
		t.Errorf("flag privateNetworks %v", cfg.PrivateNetworks)
	}

	for _, bad := range []map[string]string{
		{"listeners": "nohostport"},
		{"listeners": "127.0.0.1:99999"},
		{"listeners": "127.0.0.1:1;secret"},
		{"listeners": "127.0.0.1:1;private=maybe"},
		{"listeners": "127.0.0.1:1;clientCAFile="},
		{"listeners": "127.0.0.1:5000,127.0.0.1:5000"},
		{"listen": "127.0.0.1:5000", "listeners": "127.0.0.1:5000;private"},
		{"private-networks": "10.0.0.0/33"},
		{"private-networks": "example.com"},
		{"private-networks": "fe80::1%eth0"},
	} {
		if _, err := LoadConfig(LoadOptions{Env: noEnv, Flags: bad}); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("flags %v: err %v; want ErrInvalidConfig", bad, err)
		}
	}
}

func TestPrivateNetworkMatching(t *testing.T) {
	nets, err := parsePrivateNetworks([]string{"10.0.0.0/8", "fd00::/8", "192.168.1.7", "::ffff:172.16.0.0/108"})
	if err != nil {
		t.Fatal(err)
	}
	n := &network{privateNets: nets}
	for addr, want := range map[string]bool{
		"10.200.1.1:5000":         true,
		"[::ffff:10.0.0.1]:5000":  true, // IPv4-mapped on a dual-stack socket
		"[fd12::1]:443":           true,
		"192.168.1.7:1":           true,
		"192.168.1.8:1":           false,
		"172.16.5.5:1":            true,
		"172.32.0.1:1":            false,
		"127.0.0.1:1":             false,
		"[2001:db8::1]:8443":      false,
		"11.0.0.1:22":             false,
		"[::ffff:192.168.1.7]:80": true,
	} {
		tcp, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := n.inPrivateNetwork(tcp); got != want {
			t.Errorf("%s private = %v; want %v", addr, got, want)
		}
	}
	if (&network{}).inPrivateNetwork(&net.TCPAddr{IP: net.IPv4(10, 0, 0, 1)}) {
		t.Error("no private networks configured, yet 10.0.0.1 is private")
	}
}

// netClient is an HTTPS client for base (https://host:port) trusting the
// server's CA, optionally presenting a client certificate.
func netClient(t *testing.T, ts *testServer, certs ...tls.Certificate) *http.Client {
	t.Helper()
	return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: caPool(t, ts.cfg.DataDir), ServerName: "localhost", Certificates: certs},
	}}
}

// call sends one request to base+path with a bearer token and decodes the answer.
func netCall(t *testing.T, c *http.Client, base, token, method, path string, body any) (int, map[string]any, string) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", "10.0.0.1") // must never make a request private
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw := readAll(t, resp.Body)
	var m map[string]any
	_ = json.Unmarshal([]byte(raw), &m)
	return resp.StatusCode, m, raw
}

// wantNetworkDenied checks Azure's 403 for a closed workspace.
func wantNetworkDenied(t *testing.T, what string, code int, m map[string]any, raw string) {
	t.Helper()
	e, _ := m["error"].(map[string]any)
	inner, _ := e["innererror"].(map[string]any)
	if code != http.StatusForbidden || e["code"] != "InsufficientAccessError" || inner["code"] != "NetworkAccessDenied" ||
		!strings.Contains(fmt.Sprint(inner["message"]), "Public network access") {
		t.Fatalf("%s: %d %s; want 403 InsufficientAccessError/NetworkAccessDenied", what, code, raw)
	}
}

// networkFixture is a running server with a public main listener and a
// private extra listener, a custom table, a DCR into the default
// workspace, and tokens of the admin (who may ingest through the DCR).
type networkFixture struct {
	ts                   *testServer
	adm                  AdminCredentials
	mgmt, query, ingest  string
	ws, dcrID, immutable string
	public, private      string // base URLs
	location             string
}

func newNetworkFixture(t *testing.T, cfg Config) *networkFixture {
	t.Helper()
	ts := startServer(t, cfg)
	adm := adminCredentials(t, cfg.DataDir)
	f := &networkFixture{ts: ts, adm: adm, public: "https://" + ts.Addr().String()}
	if addrs := ts.ListenerAddrs(); len(addrs) > 0 {
		f.private = "https://" + addrs[0].String()
	}
	f.mgmt = tokenFor(t, ts, adm, adm.ClientID, adm.ClientSecret, identity.AudienceManagement)
	f.query = tokenFor(t, ts, adm, adm.ClientID, adm.ClientSecret, identity.AudienceQuery)
	f.ingest = tokenFor(t, ts, adm, adm.ClientID, adm.ClientSecret, identity.AudienceIngestion)
	f.ws = fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.OperationalInsights/workspaces/%s",
		adm.SubscriptionID, adm.ResourceGroup, adm.WorkspaceName)
	code, got, raw := ts.armCall(t, f.mgmt, "GET", f.ws+"?api-version=2022-10-01", "")
	if code != 200 {
		t.Fatalf("GET workspace: %d %s", code, raw)
	}
	f.location, _ = got["location"].(string)
	code, _, raw = ts.armCall(t, f.mgmt, "PUT", f.ws+"/tables/Net_CL?api-version=2022-10-01", `{"properties":{"schema":{"name":"Net_CL","columns":[
		{"name":"TimeGenerated","type":"dateTime"},{"name":"Message","type":"string"}]}}}`)
	if code != 200 && code != 201 {
		t.Fatalf("PUT table: %d %s", code, raw)
	}
	f.dcrID = fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Insights/dataCollectionRules/net-dcr", adm.SubscriptionID, adm.ResourceGroup)
	code, got, raw = ts.armCall(t, f.mgmt, "PUT", f.dcrID+"?api-version=2023-03-11", `{"location":"`+f.location+`","kind":"Direct","properties":{
		"streamDeclarations":{"Custom-Net":{"columns":[{"name":"TimeGenerated","type":"datetime"},{"name":"Message","type":"string"}]}},
		"destinations":{"logAnalytics":[{"workspaceResourceId":"`+f.ws+`","name":"la"}]},
		"dataFlows":[{"streams":["Custom-Net"],"destinations":["la"],"outputStream":"Custom-Net_CL"}]}}`)
	if code != 200 && code != 201 {
		t.Fatalf("PUT DCR: %d %s", code, raw)
	}
	props, _ := got["properties"].(map[string]any)
	f.immutable, _ = props["immutableId"].(string)
	// The admin (Owner) gets the ingestion data role on the rule.
	name := "33333333-3333-4333-8333-333333333333"
	if err := ts.catalog.CreateRoleAssignment(context.Background(), rbac.RoleAssignment{
		ID: f.dcrID + "/providers/Microsoft.Authorization/roleAssignments/" + name, Name: name, Scope: rbac.Scope(f.dcrID),
		RoleDefinitionID: rbac.RoleMonitoringMetricsPublisher, PrincipalID: adminObjectID(t, ts, adm),
		PrincipalType: string(identity.KindServicePrincipal), Created: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	ts.rbac.Invalidate()
	return f
}

func adminObjectID(t *testing.T, ts *testServer, adm AdminCredentials) string {
	t.Helper()
	sp, err := ts.catalog.ServicePrincipalByAppID(context.Background(), adm.TenantID, adm.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	return sp.ObjectID
}

// setAccess sets the workspace's public network access through ARM.
func (f *networkFixture) setAccess(t *testing.T, ingestion, query string) {
	t.Helper()
	code, got, raw := f.ts.armCall(t, f.mgmt, "PUT", f.ws+"?api-version=2022-10-01",
		`{"location":"`+f.location+`","properties":{"publicNetworkAccessForIngestion":"`+ingestion+`","publicNetworkAccessForQuery":"`+query+`"}}`)
	props, _ := got["properties"].(map[string]any)
	if code != 200 || props["publicNetworkAccessForQuery"] != query || props["publicNetworkAccessForIngestion"] != ingestion {
		t.Fatalf("PUT workspace access %s/%s: %d %s", ingestion, query, code, raw)
	}
}

func (f *networkFixture) upload(t *testing.T, c *http.Client, base, msg string) (int, map[string]any, string) {
	t.Helper()
	rows := []map[string]any{{"TimeGenerated": time.Now().UTC().Format(time.RFC3339), "Message": msg}}
	return netCall(t, c, base, f.ingest, "POST", "/dataCollectionRules/"+f.immutable+"/streams/Custom-Net?api-version=2023-01-01", rows)
}

func (f *networkFixture) runQuery(t *testing.T, c *http.Client, base, q string) (int, map[string]any, string) {
	t.Helper()
	return netCall(t, c, base, f.query, "POST", "/v1/workspaces/"+f.adm.WorkspaceID+"/query", map[string]any{"query": q})
}

// TestPublicNetworkAccessEnforced runs a server with a public listener and
// a private one, both on loopback: with public access disabled through ARM,
// public ingestion, queries, batch items and metadata are refused with
// Azure's 403 while the private listener is served; enabling it again
// through ARM takes effect at once.
func TestPublicNetworkAccessEnforced(t *testing.T) {
	cfg := testConfig(newDataDir(t))
	cfg.Listeners = []ListenerConfig{{Address: "127.0.0.1:0", Private: true}}
	f := newNetworkFixture(t, cfg)
	c := netClient(t, f.ts)
	ws := f.adm.WorkspaceID

	// Open by default: both listeners serve everything.
	for _, base := range []string{f.public, f.private} {
		if code, _, raw := f.upload(t, c, base, "open "+base); code != http.StatusNoContent {
			t.Fatalf("upload to %s while open: %d %s", base, code, raw)
		}
	}

	f.setAccess(t, "Disabled", "Disabled")
	code, m, raw := f.upload(t, c, f.public, "public")
	wantNetworkDenied(t, "public ingestion", code, m, raw)
	if code, _, raw := f.upload(t, c, f.private, "private"); code != http.StatusNoContent {
		t.Fatalf("private ingestion: %d %s", code, raw)
	}

	code, m, raw = f.runQuery(t, c, f.public, "Net_CL | count")
	wantNetworkDenied(t, "public query", code, m, raw)
	code, m, raw = netCall(t, c, f.public, f.query, "GET", "/v1/workspaces/"+ws+"/metadata", nil)
	wantNetworkDenied(t, "public metadata", code, m, raw)
	code, m, raw = netCall(t, c, f.public, f.query, "POST", "/v1/$batch", map[string]any{"requests": []any{
		map[string]any{"id": "1", "workspace": ws, "path": "/query", "method": "POST", "body": map[string]any{"query": "Net_CL | count"}},
	}})
	resps, _ := m["responses"].([]any)
	if code != 200 || len(resps) != 1 {
		t.Fatalf("public batch: %d %s", code, raw)
	}
	item, _ := resps[0].(map[string]any)
	body, _ := item["body"].(map[string]any)
	wantNetworkDenied(t, "public batch item", int(item["status"].(float64)), body, raw)

	code, m, raw = f.runQuery(t, c, f.private, "Net_CL | project Message | order by Message asc")
	want := []string{"open " + f.public, "open " + f.private, "private"}
	sort.Strings(want)
	if code != 200 || strings.Join(rowsOf(m), ",") != strings.Join(want, ",") {
		t.Fatalf("private query: %d %s", code, raw)
	}
	if code, _, raw := netCall(t, c, f.private, f.query, "GET", "/v1/workspaces/"+ws+"/metadata", nil); code != 200 {
		t.Fatalf("private metadata: %d %s", code, raw)
	}
	// The control plane is not affected: ARM still answers on the public listener.
	if code, _, raw := f.ts.armCall(t, f.mgmt, "GET", f.ws+"?api-version=2022-10-01", ""); code != 200 {
		t.Fatalf("ARM on the public listener: %d %s", code, raw)
	}

	// Only query closed: public ingestion works again, public queries do not.
	f.setAccess(t, "Enabled", "Disabled")
	if code, _, raw := f.upload(t, c, f.public, "public again"); code != http.StatusNoContent {
		t.Fatalf("public ingestion after enabling: %d %s", code, raw)
	}
	code, m, raw = f.runQuery(t, c, f.public, "Net_CL | count")
	wantNetworkDenied(t, "public query (ingestion enabled)", code, m, raw)

	f.setAccess(t, "Enabled", "Enabled")
	if code, m, raw := f.runQuery(t, c, f.public, "Net_CL | count"); code != 200 || strings.Join(rowsOf(m), ",") != "4" {
		t.Fatalf("public query after enabling: %d %s", code, raw)
	}
	// The gate remembers open workspaces per catalog generation: closing
	// the workspace again must take effect at the next query.
	f.setAccess(t, "Enabled", "Disabled")
	code, m, raw = f.runQuery(t, c, f.public, "Net_CL | count")
	wantNetworkDenied(t, "public query after closing again", code, m, raw)
}

// TestPrivateNetworkCIDR: a request on the public listener whose source
// address lies in privateNetworks is private; one outside is public.
func TestPrivateNetworkCIDR(t *testing.T) {
	for _, tc := range []struct {
		nets    []string
		private bool
	}{{[]string{"127.0.0.0/8"}, true}, {[]string{"10.0.0.0/8", "::1/128"}, false}} {
		t.Run(strings.Join(tc.nets, ","), func(t *testing.T) {
			cfg := testConfig(newDataDir(t))
			cfg.PrivateNetworks = tc.nets
			f := newNetworkFixture(t, cfg)
			c := netClient(t, f.ts)
			f.setAccess(t, "Disabled", "Disabled")
			code, m, raw := f.upload(t, c, f.public, "x")
			qcode, qm, qraw := f.runQuery(t, c, f.public, "Net_CL | count")
			if tc.private {
				if code != http.StatusNoContent || qcode != 200 {
					t.Fatalf("from a private network: ingestion %d %s; query %d %s", code, raw, qcode, qraw)
				}
				return
			}
			wantNetworkDenied(t, "ingestion from outside", code, m, raw)
			wantNetworkDenied(t, "query from outside", qcode, qm, qraw)
		})
	}
}

// testCA is a throwaway client CA.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, cn string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func (ca *testCA) issueClient(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestMutualTLSListener: a listener with a client CA file refuses clients
// without a certificate or with one from another CA, and serves those with
// one it issued; the main listener does not ask for a certificate.
func TestMutualTLSListener(t *testing.T) {
	ca, other := newTestCA(t, "clients"), newTestCA(t, "intruders")
	caFile := filepath.Join(t.TempDir(), "clients.pem")
	if err := os.WriteFile(caFile, ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(newDataDir(t))
	cfg.Listeners = []ListenerConfig{{Address: "127.0.0.1:0", Private: true, ClientCAFile: caFile}}
	ts := startServer(t, cfg)
	mtls := "https://" + ts.ListenerAddrs()[0].String() + "/healthz"

	get := func(c *http.Client, url string) error {
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	if err := get(netClient(t, ts), mtls); err == nil {
		t.Fatal("mutual TLS listener served a client without a certificate")
	}
	if err := get(netClient(t, ts, other.issueClient(t, "mallory")), mtls); err == nil {
		t.Fatal("mutual TLS listener served a certificate from another CA")
	}
	if err := get(netClient(t, ts, ca.issueClient(t, "agent-1")), mtls); err != nil {
		t.Fatalf("client with a certificate from the configured CA: %v", err)
	}
	if err := get(netClient(t, ts), ts.url("/healthz")); err != nil {
		t.Fatalf("main listener without a client certificate: %v", err)
	}

	// A client CA file without certificates is a start error.
	bad := filepath.Join(t.TempDir(), "empty.pem")
	if err := os.WriteFile(bad, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg2 := testConfig(newDataDir(t))
	cfg2.Listeners = []ListenerConfig{{Address: "127.0.0.1:0", ClientCAFile: bad}}
	if _, err := New(context.Background(), Options{Config: cfg2}); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("New with an empty client CA file: %v", err)
	}
}
