package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	azingest "github.com/Azure/azure-sdk-for-go/sdk/monitor/ingestion/azlogs"
	azquery "github.com/Azure/azure-sdk-for-go/sdk/monitor/query/azlogs"
	_ "modernc.org/sqlite"

	"custos/internal/catalog"
	"custos/internal/cli"
	"custos/internal/enroll"
	"custos/internal/identity"
	"custos/internal/rbac"
)

// miEnv is a running server with its admin configuration, for the managed
// identity tests.
type miEnv struct {
	t     *testing.T
	dir   string
	admin cli.Config
	httpc *http.Client
	mgmt  string // admin management token
}

func newMIEnv(t *testing.T) *miEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a server")
	}
	clearClientEnv(t)
	dir := filepath.Join(t.TempDir(), "data")
	startCustos(t, dir)
	admin, found, err := cli.LoadFile(filepath.Join(dir, cli.AdminFileName))
	if err != nil || !found {
		t.Fatalf("admin.json: %v %v", found, err)
	}
	hc, err := enroll.NewHTTPClient(admin.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	e := &miEnv{t: t, dir: dir, admin: admin, httpc: hc}
	e.mgmt = strings.TrimSpace(custos(t, dir, "", "token", "--scope", "management"))
	return e
}

// call sends one request with a bearer token and returns status, body and headers.
func (e *miEnv) call(method, path, token, body string, hdr ...string) (int, string, http.Header) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	u := path
	if !strings.HasPrefix(u, "https://") {
		u = e.admin.Endpoint + path
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.httpc.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func (e *miEnv) rg() string {
	return "/subscriptions/" + e.admin.SubscriptionID + "/resourceGroups/" + e.admin.ResourceGroup
}

// setupTableAndDCR creates table App_CL and rule app-dcr (stream Custom-App).
func (e *miEnv) setupTableAndDCR() (dcrID, immutableID string) {
	e.t.Helper()
	ws := e.rg() + "/providers/Microsoft.OperationalInsights/workspaces/" + e.admin.WorkspaceName
	code, raw, _ := e.call("PUT", ws+"/tables/App_CL?api-version=2022-10-01", e.mgmt, `{"properties":{"schema":{"name":"App_CL","columns":[
		{"name":"TimeGenerated","type":"dateTime"},{"name":"Message","type":"string"}]}}}`)
	if code != 200 && code != 201 {
		e.t.Fatalf("PUT table: %d %s", code, raw)
	}
	dcrID = e.rg() + "/providers/Microsoft.Insights/dataCollectionRules/app-dcr"
	code, raw, _ = e.call("PUT", dcrID+"?api-version=2023-03-11", e.mgmt, `{"location":"local","properties":{
		"streamDeclarations":{"Custom-App":{"columns":[{"name":"TimeGenerated","type":"datetime"},{"name":"Message","type":"string"}]}},
		"dataSources":{"logFiles":[{"name":"app","streams":["Custom-App"],"filePatterns":["/var/log/app/*.log"],"format":"text"}]},
		"destinations":{"logAnalytics":[{"workspaceResourceId":"`+ws+`","name":"la"}]},
		"dataFlows":[{"streams":["Custom-App"],"destinations":["la"],"outputStream":"Custom-App_CL"}]}}`)
	if code != 200 && code != 201 {
		e.t.Fatalf("PUT DCR: %d %s", code, raw)
	}
	var d struct{ Properties struct{ ImmutableID string } }
	_ = json.Unmarshal([]byte(raw), &d)
	return dcrID, d.Properties.ImmutableID
}

// grantOnDCR gives principal Monitoring Metrics Publisher on the rule through
// the catalog (the server keeps running; SQLite serializes the writers).
func (e *miEnv) grantOnDCR(dcrID, principalID, kind string) {
	e.t.Helper()
	ctx := context.Background()
	cat, err := catalog.Open(ctx, catalog.Options{Path: filepath.Join(e.dir, "catalog.db")})
	if err != nil {
		e.t.Fatal(err)
	}
	defer cat.Close()
	name := fmt.Sprintf("44444444-4444-4444-8444-%012d", time.Now().UnixNano()%1e12)
	if err := cat.CreateRoleAssignment(ctx, rbac.RoleAssignment{
		ID: dcrID + "/providers/Microsoft.Authorization/roleAssignments/" + name, Name: name, Scope: rbac.Scope(dcrID),
		RoleDefinitionID: rbac.RoleMonitoringMetricsPublisher, PrincipalID: principalID, PrincipalType: kind,
	}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *miEnv) sdkOptions() azcore.ClientOptions {
	return azcore.ClientOptions{
		Cloud: cloud.Configuration{
			ActiveDirectoryAuthorityHost: e.admin.Endpoint + "/",
			Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
				azingest.ServiceNameIngestion: {Audience: identity.AudienceIngestion},
				azquery.ServiceName:           {Audience: identity.AudienceQuery, Endpoint: e.admin.Endpoint + "/v1"},
			},
		},
		Transport: e.httpc,
		Retry:     policy.RetryOptions{MaxRetries: -1},
	}
}

func (e *miEnv) upload(cred azcore.TokenCredential, immutableID, msg string) error {
	ing, err := azingest.NewClient(e.admin.Endpoint, cred, &azingest.ClientOptions{ClientOptions: e.sdkOptions()})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	body := fmt.Sprintf(`[{"TimeGenerated":%q,"Message":%q}]`, time.Now().UTC().Format(time.RFC3339), msg)
	_, err = ing.Upload(ctx, immutableID, "Custom-App", []byte(body), nil)
	return err
}

func statusOf(err error) int {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// TestManagedIdentityLifecycle: enroll a machine with a one-time token, get
// tokens by signed assertion, ingest with a data role on the DCR, read the
// agent configuration with ETags, disable the identity (its tokens stop
// working), enable it again, delete the machine.
func TestManagedIdentityLifecycle(t *testing.T) {
	e := newMIEnv(t)
	dcrID, immutableID := e.setupTableAndDCR()
	ctx := context.Background()

	tok := strings.TrimSpace(custos(t, e.dir, "", "machine", "enroll-token", "--expires", "10m"))
	if !strings.HasPrefix(tok, enroll.TokenPrefix) {
		t.Fatalf("enroll-token printed %q", tok)
	}
	idDir := filepath.Join(t.TempDir(), "agent")
	id, err := enroll.Enroll(ctx, enroll.Options{Endpoint: e.admin.Endpoint, Token: tok, CAFile: e.admin.CAFile, Dir: idDir,
		Hostname: "web-1.example.net", OSType: "Linux", OSName: "debian", OSVersion: "13", AgentVersion: "0.1.0"})
	if err != nil {
		t.Fatalf("enroll: %v", err)
	}
	wantID := e.rg() + "/providers/Microsoft.HybridCompute/machines/web-1"
	if id.ID != wantID || id.TenantID != e.admin.TenantID || id.ClientID == "" || id.PrincipalID == "" {
		t.Fatalf("enrolled identity %+v; want machine %s", id.Response, wantID)
	}
	if _, err := enroll.Enroll(ctx, enroll.Options{Endpoint: e.admin.Endpoint, Token: tok, CAFile: e.admin.CAFile, Dir: idDir}); !errors.Is(err, enroll.ErrAlreadyEnrolled) {
		t.Fatalf("second enroll into the same directory: %v; want ErrAlreadyEnrolled", err)
	}
	// A replayed token is refused, and so is an unknown one.
	for _, bad := range []string{tok, enroll.TokenPrefix + strings.Repeat("A", 43)} {
		_, err := enroll.Enroll(ctx, enroll.Options{Endpoint: e.admin.Endpoint, Token: bad, CAFile: e.admin.CAFile,
			Dir: filepath.Join(t.TempDir(), "other"), Hostname: "web-2"})
		var ae *enroll.APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized || ae.Code != "InvalidEnrollmentToken" {
			t.Fatalf("enroll with a used or unknown token: %v; want 401 InvalidEnrollmentToken", err)
		}
	}

	// The machine resource, through ARM and the CLI.
	out := custos(t, e.dir, "", "machine", "list")
	if !strings.Contains(out, "web-1") || !strings.Contains(out, id.PrincipalID) || !strings.Contains(out, "Connected") {
		t.Fatalf("machine list:\n%s", out)
	}
	code, raw, _ := e.call("GET", wantID+"?api-version=2024-07-10", e.mgmt, "")
	if code != 200 || !strings.Contains(raw, `"type":"SystemAssigned"`) || !strings.Contains(raw, `"machineFqdn":"web-1.example.net"`) {
		t.Fatalf("GET machine: %d %s", code, raw)
	}

	// Tokens by signed assertion; the token is a managed identity's.
	loaded, err := enroll.Load(idDir)
	if err != nil {
		t.Fatal(err)
	}
	ts := enroll.NewTokenSource(loaded, e.httpc, nil)
	if err := e.upload(ts, immutableID, "denied"); statusOf(err) != http.StatusForbidden {
		t.Fatalf("upload without a data role: %v; want 403", err)
	}
	e.grantOnDCR(dcrID, id.PrincipalID, string(identity.KindManagedIdentity))
	deadline := time.Now().Add(15 * time.Second)
	for {
		err = e.upload(ts, immutableID, "from web-1")
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond) // the authorizer caches assignments for a few seconds
	}
	if err != nil {
		t.Fatalf("upload with Monitoring Metrics Publisher on the DCR: %v", err)
	}

	// Associations and the agent's configuration endpoint.
	out = custos(t, e.dir, "", "machine", "associate", "web-1", "--dcr", "app-dcr", "--name", "app")
	if !strings.Contains(out, `"dataCollectionRuleId": "`+dcrID+`"`) {
		t.Fatalf("associate:\n%s", out)
	}
	code, raw, _ = e.call("GET", dcrID+"/associations?api-version=2022-06-01", e.mgmt, "")
	if code != 200 || !strings.Contains(raw, wantID+"/providers/Microsoft.Insights/dataCollectionRuleAssociations/app") {
		t.Fatalf("list associations of the rule: %d %s", code, raw)
	}
	cfg, notModified, err := enroll.FetchConfiguration(ctx, e.httpc, ts, loaded, "")
	if err != nil || notModified || cfg.ResourceID != wantID || len(cfg.DataCollectionRules) != 1 || cfg.ETag == "" {
		t.Fatalf("configuration: %+v %v %v", cfg, notModified, err)
	}
	if !strings.Contains(string(cfg.DataCollectionRules[0]), `"filePatterns":["/var/log/app/*.log"]`) ||
		!strings.Contains(string(cfg.DataCollectionRules[0]), immutableID) {
		t.Fatalf("configuration rule: %s", cfg.DataCollectionRules[0])
	}
	if _, notModified, err = enroll.FetchConfiguration(ctx, e.httpc, ts, loaded, cfg.ETag); err != nil || !notModified {
		t.Fatalf("configuration with If-None-Match: notModified=%v err=%v; want 304", notModified, err)
	}
	// Another principal (the admin, Owner everywhere) may not read it.
	ingTok, err := ts.Token(ctx, enroll.ScopeIngestion)
	if err != nil {
		t.Fatal(err)
	}
	adminIng := strings.TrimSpace(custos(t, e.dir, "", "token", "--scope", "ingestion"))
	if code, raw, _ = e.call("GET", loaded.ConfigurationEndpoint, adminIng, ""); code != http.StatusForbidden {
		t.Fatalf("configuration as the admin: %d %s; want 403", code, raw)
	}
	// A changed association changes the ETag.
	custos(t, e.dir, "", "machine", "dissociate", "web-1", "app")
	cfg2, notModified, err := enroll.FetchConfiguration(ctx, e.httpc, ts, loaded, cfg.ETag)
	if err != nil || notModified || len(cfg2.DataCollectionRules) != 0 || cfg2.ETag == cfg.ETag {
		t.Fatalf("configuration after dissociate: %+v %v %v", cfg2, notModified, err)
	}

	// Disable: the cached token stops working within the principal cache
	// TTL, and no new token is issued.
	custos(t, e.dir, "", "machine", "disable", "web-1")
	deadline = time.Now().Add(identity.DefaultPrincipalCacheTTL + 5*time.Second)
	for {
		code, _, _ = e.call("GET", loaded.ConfigurationEndpoint, ingTok.AccessToken, "")
		if code == http.StatusUnauthorized || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if code != http.StatusUnauthorized {
		t.Fatalf("token of a disabled identity: %d; want 401", code)
	}
	if err := e.upload(ts, immutableID, "after disable"); statusOf(err) != http.StatusUnauthorized {
		t.Fatalf("upload with a disabled identity's token: %v; want 401", err)
	}
	ts.Forget()
	_, err = ts.Token(ctx, enroll.ScopeIngestion)
	var ae *enroll.APIError
	if !errors.As(err, &ae) || !ae.Rejected() || ae.Code != "unauthorized_client" {
		t.Fatalf("new token for a disabled identity: %v; want a rejected unauthorized_client", err)
	}
	out = custos(t, e.dir, "", "machine", "show", "web-1")
	if !strings.Contains(out, `"identityEnabled": false`) || !strings.Contains(out, "Disconnected") {
		t.Fatalf("machine show after disable:\n%s", out)
	}

	// Enable again, then delete: the identity is gone with the machine.
	custos(t, e.dir, "", "machine", "enable", "web-1")
	deadline = time.Now().Add(identity.DefaultPrincipalCacheTTL + 5*time.Second)
	for {
		err = e.upload(ts, immutableID, "after enable")
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("upload after enable: %v", err)
	}
	custos(t, e.dir, "", "machine", "delete", "web-1", "--yes")
	ts.Forget()
	if _, err = ts.Token(ctx, enroll.ScopeIngestion); !errors.As(err, &ae) || !ae.Rejected() {
		t.Fatalf("token after the machine was deleted: %v; want rejected", err)
	}
	if code, raw, _ = e.call("GET", wantID+"?api-version=2024-07-10", e.mgmt, ""); code != http.StatusNotFound {
		t.Fatalf("GET deleted machine: %d %s", code, raw)
	}
}

// TestEnrollmentTokenExpired: a token past its expiry is refused.
func TestEnrollmentTokenExpired(t *testing.T) {
	e := newMIEnv(t)
	code, raw, _ := e.call("POST", e.rg()+"/providers/Microsoft.HybridCompute/createEnrollmentToken?api-version=2024-07-10", e.mgmt,
		`{"expiresInSeconds":5}`)
	if code != http.StatusBadRequest {
		t.Fatalf("5s token: %d %s; want 400 (minimum 60s)", code, raw)
	}
	// Expire a stored token by rewriting its expiry in the catalog.
	tok := strings.TrimSpace(custos(t, e.dir, "", "machine", "enroll-token", "--expires", "1m"))
	db, err := sql.Open("sqlite", "file:"+filepath.Join(e.dir, "catalog.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE enrollment_tokens SET expires_at = ?`, time.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = enroll.Enroll(context.Background(), enroll.Options{Endpoint: e.admin.Endpoint, Token: tok, CAFile: e.admin.CAFile,
		Dir: t.TempDir(), Hostname: "late"})
	var ae *enroll.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Fatalf("expired token: %v; want 401", err)
	}
	// Enrollment requests without management credentials cannot create tokens.
	if code, _, _ = e.call("POST", e.rg()+"/providers/Microsoft.HybridCompute/createEnrollmentToken?api-version=2024-07-10", "", ""); code != http.StatusUnauthorized {
		t.Fatalf("createEnrollmentToken without a token: %d; want 401", code)
	}
}

// TestClientCertificateCredential: azidentity's certificate credential (PS256
// assertions with x5t#S256) gets tokens from Custos for a service principal
// with a certificate credential, which then calls ARM, ingests and queries.
func TestClientCertificateCredential(t *testing.T) {
	e := newMIEnv(t)
	_, immutableID := e.setupTableAndDCR()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "custos-test-app"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)

	// Add the certificate to the admin service principal, through the catalog.
	ctx := context.Background()
	cat, err := catalog.Open(ctx, catalog.Options{Path: filepath.Join(e.dir, "catalog.db")})
	if err != nil {
		t.Fatal(err)
	}
	sp, err := cat.ServicePrincipalByAppID(ctx, e.admin.TenantID, e.admin.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	if err := cat.AddKeyCredential(ctx, e.admin.TenantID, e.admin.ClientID, identity.KeyCredential{
		KeyID: "55555555-5555-4555-8555-555555555555", DisplayName: "CN=custos-test-app", PublicKey: cert.RawSubjectPublicKeyInfo,
		Certificate: cert.Raw, NotBefore: cert.NotBefore, Expires: cert.NotAfter}); err != nil {
		t.Fatal(err)
	}
	cat.Close()
	dcrID := e.rg() + "/providers/Microsoft.Insights/dataCollectionRules/app-dcr"
	e.grantOnDCR(dcrID, sp.ObjectID, string(identity.KindServicePrincipal))

	cred, err := azidentity.NewClientCertificateCredential(e.admin.TenantID, e.admin.ClientID, []*x509.Certificate{cert}, key,
		&azidentity.ClientCertificateCredentialOptions{ClientOptions: e.sdkOptions(), DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{identity.AudienceManagement + "/.default"}})
	if err != nil {
		t.Fatalf("GetToken with a certificate: %v", err)
	}
	if code, raw, _ := e.call("GET", "/subscriptions?api-version=2022-12-01", tok.Token, ""); code != 200 || !strings.Contains(raw, e.admin.SubscriptionID) {
		t.Fatalf("ARM call with a certificate token: %d %s", code, raw)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		err = e.upload(cred, immutableID, "by certificate")
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("upload with a certificate credential: %v", err)
	}
	qc, err := azquery.NewClient(cred, &azquery.ClientOptions{ClientOptions: e.sdkOptions()})
	if err != nil {
		t.Fatal(err)
	}
	q := "App_CL | project Message"
	res, err := qc.QueryWorkspace(ctx, e.admin.WorkspaceID, azquery.QueryBody{Query: &q}, nil)
	if err != nil || len(res.Tables) != 1 || len(res.Tables[0].Rows) != 1 || fmt.Sprint(res.Tables[0].Rows[0]...) != "by certificate" {
		t.Fatalf("query with a certificate credential: %v %+v", err, res)
	}
	// A certificate that is not registered is refused.
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	otherDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &other.PublicKey, other)
	if err != nil {
		t.Fatal(err)
	}
	otherCert, _ := x509.ParseCertificate(otherDER)
	bad, err := azidentity.NewClientCertificateCredential(e.admin.TenantID, e.admin.ClientID, []*x509.Certificate{otherCert}, other,
		&azidentity.ClientCertificateCredentialOptions{ClientOptions: e.sdkOptions(), DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{identity.AudienceManagement + "/.default"}}); err == nil ||
		!strings.Contains(err.Error(), "invalid_client") {
		t.Fatalf("GetToken signed by the wrong key: %v; want invalid_client", err)
	}
}
