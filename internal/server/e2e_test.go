package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	azingest "github.com/Azure/azure-sdk-for-go/sdk/monitor/ingestion/azlogs"
	azquery "github.com/Azure/azure-sdk-for-go/sdk/monitor/query/azlogs"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"custos/internal/catalog"
	"custos/internal/identity"
	"custos/internal/rbac"
)

// adminCredentials reads admin.json of a data directory.
func adminCredentials(t *testing.T, dir string) AdminCredentials {
	t.Helper()
	a, err := ReadAdminCredentials(filepath.Join(dir, adminFile))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// sdkClient is an HTTP client trusting only the file's CA.
func sdkClient(t *testing.T, caFile string) *http.Client {
	t.Helper()
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: caPool(t, filepath.Dir(filepath.Dir(caFile))), MinVersion: tls.VersionTLS12},
	}}
}

// dataPlaneOptions are Azure SDK client options for the server's ingestion
// and query APIs (the query client needs the /v1 endpoint), trusting only
// the server's CA and never retrying, so a test sees every answer.
func dataPlaneOptions(t *testing.T, adm AdminCredentials) azcore.ClientOptions {
	t.Helper()
	return azcore.ClientOptions{
		Cloud: cloud.Configuration{
			ActiveDirectoryAuthorityHost: adm.Endpoint + "/",
			Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
				azingest.ServiceNameIngestion: {Audience: identity.AudienceIngestion},
				azquery.ServiceName:           {Audience: identity.AudienceQuery, Endpoint: adm.Endpoint + "/v1"},
			},
		},
		Transport: sdkClient(t, adm.CAFile),
		Retry:     policy.RetryOptions{MaxRetries: -1},
	}
}

// credential is an azidentity client-secret credential against the server.
func credential(t *testing.T, endpoint, caFile, tenant, clientID, secret string) *azidentity.ClientSecretCredential {
	t.Helper()
	cred, err := azidentity.NewClientSecretCredential(tenant, clientID, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{
			Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: endpoint + "/"},
			Transport: sdkClient(t, caFile),
		},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

func managementToken(t *testing.T, cred azcore.TokenCredential) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{identity.AudienceManagement + "/.default"}})
	if err != nil {
		t.Fatalf("GetToken: %v", err)
	}
	return tok.Token
}

// get sends GET path with an optional bearer token.
func (ts *testServer) get(t *testing.T, path, token string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, ts.url(path), nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := ts.client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp, readAll(t, resp.Body)
}

func TestBootstrapAdminEndToEnd(t *testing.T) {
	dir := newDataDir(t)
	ts := startServer(t, testConfig(dir))

	// admin.json: mode 0600, exactly the agreed keys, all filled in.
	path := filepath.Join(dir, adminFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("admin.json not written: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin.json mode %v; want 0600", fi.Mode().Perm())
	}
	raw, _ := os.ReadFile(path)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k, v := range m {
		keys = append(keys, k)
		if s, ok := v.(string); !ok || s == "" {
			t.Errorf("admin.json %s = %v; want a non-empty string", k, v)
		}
	}
	slices.Sort(keys)
	want := []string{"caFile", "clientId", "clientSecret", "endpoint", "resourceGroup", "subscriptionId", "tenantId", "workspaceId", "workspaceName"}
	if !slices.Equal(keys, want) {
		t.Fatalf("admin.json keys %v; want %v", keys, want)
	}
	adm := adminCredentials(t, dir)
	if adm.Endpoint != ts.Endpoint() || adm.CAFile != filepath.Join(dir, caCertFile) ||
		adm.WorkspaceName != "default" || adm.ResourceGroup != "default" {
		t.Fatalf("admin.json content %v does not match the server", adm)
	}
	logs := ts.logs.String()
	if strings.Contains(logs, adm.ClientSecret) {
		t.Fatal("the client secret reached the log")
	}
	if !strings.Contains(logs, path) {
		t.Fatal("the log does not say where admin.json is")
	}

	// The Azure SDK credential gets a token from the server's token service,
	// and the token opens /metrics (Owner at /).
	cred := credential(t, adm.Endpoint, adm.CAFile, adm.TenantID, adm.ClientID, adm.ClientSecret)
	tok := managementToken(t, cred)
	resp, body := ts.get(t, "/metrics", tok)
	if resp.StatusCode != 200 || !strings.Contains(body, "custos_http_requests_total") {
		t.Fatalf("/metrics with the admin token: %d %.200q", resp.StatusCode, body)
	}

	// No token: 401 with a Bearer challenge, in the Azure envelope.
	resp, body = ts.get(t, "/metrics", "")
	if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") ||
		resp.Header.Get("x-ms-error-code") != "AuthenticationFailed" || !strings.Contains(body, `"code":"AuthenticationFailed"`) {
		t.Fatalf("/metrics without a token: %d %v %q", resp.StatusCode, resp.Header, body)
	}
	// A forged token: 401 InvalidAuthenticationToken.
	resp, _ = ts.get(t, "/metrics", tok[:len(tok)-4]+"AAAA")
	if resp.StatusCode != 401 || resp.Header.Get("x-ms-error-code") != "InvalidAuthenticationToken" {
		t.Fatalf("/metrics with a forged token: %d %s", resp.StatusCode, resp.Header.Get("x-ms-error-code"))
	}
	if strings.Contains(ts.logs.String(), tok) {
		t.Fatal("a token reached the log")
	}

	// A principal without any role assignment is authenticated but denied.
	sp, secret, err := ts.tokens.CreateServicePrincipal(context.Background(), adm.TenantID, "no-roles")
	if err != nil {
		t.Fatal(err)
	}
	other := managementToken(t, credential(t, adm.Endpoint, adm.CAFile, adm.TenantID, sp.AppID, secret))
	resp, body = ts.get(t, "/metrics", other)
	if resp.StatusCode != 403 || resp.Header.Get("x-ms-error-code") != "AuthorizationFailed" ||
		!strings.Contains(body, string(rbac.ActionMetricsRead)) || !strings.Contains(body, sp.ObjectID) {
		t.Fatalf("/metrics for a principal without roles: %d %q", resp.StatusCode, body)
	}
	if !strings.Contains(ts.logs.String(), `"principal_object_id":"`+sp.ObjectID+`"`) {
		t.Fatal("request log lacks the principal object id")
	}

	// Restart: same tenant, workspace, credentials and platform key; a token
	// issued before the restart is still valid.
	keyBefore, _ := os.ReadFile(filepath.Join(dir, "keys", "platform.key"))
	if err := ts.stop(t); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(dir)
	cfg.Listen = ts.Addr().String() // same port, so the same issuer
	ts2 := startServer(t, cfg)
	if adm2 := adminCredentials(t, dir); adm2 != adm {
		t.Fatalf("restart changed admin.json:\n%v\n%v", adm, adm2)
	}
	if ts2.boot.Tenant.ID != adm.TenantID || ts2.boot.Workspace.CustomerID != adm.WorkspaceID {
		t.Fatal("restart changed the tenant or workspace")
	}
	if keyAfter, _ := os.ReadFile(filepath.Join(dir, "keys", "platform.key")); string(keyAfter) != string(keyBefore) {
		t.Fatal("restart changed the platform key")
	}
	if resp, _ := ts2.get(t, "/metrics", tok); resp.StatusCode != 200 {
		t.Fatalf("pre-restart token after restart: %d", resp.StatusCode)
	}
	if strings.Contains(ts2.logs.String(), "created bootstrap admin") {
		t.Fatal("restart created another admin")
	}
}

func TestBootstrapAdminRecovery(t *testing.T) {
	dir := newDataDir(t)
	s, _ := newServer(t, testConfig(dir))
	adm := adminCredentials(t, dir)
	s.Close()

	// A start that stopped after writing admin.json but before granting
	// Owner: the next start grants Owner to the same principal.
	cat, err := catalog.Open(context.Background(), catalog.Options{Path: filepath.Join(dir, "catalog.db")})
	if err != nil {
		t.Fatal(err)
	}
	all, err := cat.ListRoleAssignments(context.Background(), "/")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range all {
		if err := cat.DeleteRoleAssignment(context.Background(), a.ID); err != nil {
			t.Fatal(err)
		}
	}
	cat.Close()

	ts := startServer(t, testConfig(dir))
	if got := adminCredentials(t, dir); got.ClientID != adm.ClientID || got.ClientSecret != adm.ClientSecret {
		t.Fatal("recovery replaced the admin credentials")
	}
	cred := credential(t, ts.Endpoint(), ts.CAFile(), adm.TenantID, adm.ClientID, adm.ClientSecret)
	if resp, _ := ts.get(t, "/metrics", managementToken(t, cred)); resp.StatusCode != 200 {
		t.Fatalf("admin after recovery: %d", resp.StatusCode)
	}
	ts.stop(t)

	// admin.json removed by the operator (credentials kept elsewhere): no
	// new admin is created and the file is not written again.
	if err := os.Remove(filepath.Join(dir, adminFile)); err != nil {
		t.Fatal(err)
	}
	s2, logs := newServer(t, testConfig(dir))
	s2.Close()
	if _, err := os.Stat(filepath.Join(dir, adminFile)); err == nil {
		t.Fatal("admin.json recreated although an Owner exists")
	}
	if strings.Contains(logs.String(), "created bootstrap admin") {
		t.Fatal("a second admin was created")
	}
}
