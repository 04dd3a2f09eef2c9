package arm_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"custos/internal/api"
	"custos/internal/arm"
	"custos/internal/catalog"
	"custos/internal/crypt"
	"custos/internal/identity"
	"custos/internal/rbac"
)

// dirEnv serves arm.Routes() over HTTPS behind the real token service and
// the real authorizer (just-in-time mode), with principals holding
// different roles.
type dirEnv struct {
	t      *testing.T
	cat    *catalog.DB
	ts     *identity.TokenService
	authz  *rbac.Authorizer
	srv    *httptest.Server
	boot   catalog.Bootstrap
	mu     sync.Mutex
	now    time.Time
	tokens map[string]string // principal name → management token
	sps    map[string]identity.ServicePrincipal
}

func (e *dirEnv) clock() time.Time { e.mu.Lock(); defer e.mu.Unlock(); return e.now }

func newDirEnv(t *testing.T) *dirEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	e := &dirEnv{t: t, now: time.Now().UTC(), tokens: map[string]string{}, sps: map[string]identity.ServicePrincipal{}}
	cat, err := catalog.Open(ctx, catalog.Options{Path: filepath.Join(dir, "catalog.db"), Now: e.clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	e.cat = cat
	if e.boot, err = cat.Bootstrap(ctx, catalog.BootstrapOptions{}); err != nil {
		t.Fatal(err)
	}
	key, err := crypt.OpenPlatformKey(filepath.Join(dir, "platform.key"))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	e.srv = httptest.NewTLSServer(mux)
	t.Cleanup(e.srv.Close)
	e.ts, err = identity.NewTokenService(identity.TokenServiceOptions{Store: cat, Keys: key, Issuer: e.srv.URL,
		Tenants: identity.StaticTenants{e.boot.Tenant.ID}, Now: e.clock, TokenLifetime: 24 * time.Hour, PrincipalCacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	e.authz = rbac.New(rbac.Options{Store: cat, CacheTTL: -1, JustInTime: true, Now: e.clock})
	a := arm.New(arm.Options{Catalog: cat, Tokens: e.ts, Authorizer: e.authz, Now: e.clock})
	for _, rt := range a.Routes() {
		mux.HandleFunc(rt.Method+" "+rt.Pattern, func(w http.ResponseWriter, r *http.Request) {
			p, err := e.ts.Authenticate(r, rt.Audience)
			if err != nil {
				api.WriteError(w, r, nil, api.Errorf(http.StatusUnauthorized, "InvalidAuthenticationToken", "%v", err))
				return
			}
			r = r.WithContext(api.WithPrincipal(r.Context(), p))
			d, err := e.authz.Authorize(r.Context(), p, rt.Action, rt.Scope(r))
			if err != nil || !d.Allowed {
				api.WriteError(w, r, nil, api.Errorf(http.StatusForbidden, "AuthorizationFailed", "denied %s", rt.Action))
				return
			}
			rt.Handler(w, r, d)
		})
	}
	return e
}

// principal creates a service principal with role at scope ("" for none).
func (e *dirEnv) principal(name, role string, scope rbac.Scope) identity.ServicePrincipal {
	e.t.Helper()
	ctx := context.Background()
	sp, _, err := e.ts.CreateServicePrincipal(ctx, e.boot.Tenant.ID, name)
	if err != nil {
		e.t.Fatal(err)
	}
	if role != "" {
		ra := "77777777-0000-4000-8000-" + strings.Repeat("0", 12-len(name)) + name
		if err := e.cat.CreateRoleAssignment(ctx, rbac.RoleAssignment{ID: strings.TrimRight(string(scope), "/") + "/providers/Microsoft.Authorization/roleAssignments/" + ra,
			Name: ra, Scope: scope, RoleDefinitionID: role, PrincipalID: sp.ObjectID, PrincipalType: "ServicePrincipal"}); err != nil {
			e.t.Fatal(err)
		}
	}
	tok, _, err := e.ts.IssueToken(ctx, sp, identity.AudienceManagement)
	if err != nil {
		e.t.Fatal(err)
	}
	e.tokens[name], e.sps[name] = tok, sp
	return sp
}

func (e *dirEnv) call(who, method, path, body string) (int, map[string]any) {
	e.t.Helper()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	// The server's router matches literal segments case-insensitively;
	// this test's ServeMux does not.
	path = strings.Replace(path, "/resourceGroups/", "/resourcegroups/", 1)
	req, err := http.NewRequest(method, e.srv.URL+path+sep+"api-version=2024-01-01", strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+e.tokens[who])
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return res.StatusCode, m
}

func (e *dirEnv) must(who, method, path, body string, want int) map[string]any {
	e.t.Helper()
	st, m := e.call(who, method, path, body)
	if st != want {
		e.t.Fatalf("%s %s %s as %s: got %d %v; want %d", method, path, body, who, st, m, want)
	}
	return m
}

func errCodeOf(m map[string]any) string {
	if e, ok := m["error"].(map[string]any); ok {
		s, _ := e["code"].(string)
		return s
	}
	return ""
}

func selfSignedPEM(t *testing.T) string {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "app1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func TestDirectoryAPI(t *testing.T) {
	e := newDirEnv(t)
	ctx := context.Background()
	e.principal("admin", rbac.RoleOwner, "/")
	e.principal("reader", rbac.RoleReader, "/")
	e.principal("contrib", rbac.RoleContributor, "/")
	const dirPath = "/providers/Custos.Directory"

	// Service principals with secret and certificate credentials.
	m := e.must("admin", "POST", dirPath+"/servicePrincipals", `{"displayName":"app1"}`, 201)
	props := m["properties"].(map[string]any)
	pcs := props["passwordCredentials"].([]any)
	if len(pcs) != 1 || pcs[0].(map[string]any)["secretText"] == "" {
		t.Fatalf("created service principal: %v", m)
	}
	appID, objID := props["appId"].(string), m["name"].(string)
	if st, m := e.call("contrib", "POST", dirPath+"/servicePrincipals", `{"displayName":"x"}`); st != 403 {
		t.Fatalf("Contributor created a principal: %d %v", st, m)
	}
	m = e.must("admin", "POST", dirPath+"/servicePrincipals/"+appID+"/addKey", `{"displayName":"cert","certificate":`+jsonString(selfSignedPEM(t))+`}`, 200)
	if m["type"] != "AsymmetricX509Cert" || m["customKeyIdentifier"] == "" {
		t.Fatalf("addKey: %v", m)
	}
	e.must("admin", "POST", dirPath+"/servicePrincipals/"+objID+"/addKey", `{"certificate":"not a cert"}`, 400)
	sec := e.must("admin", "POST", dirPath+"/servicePrincipals/"+objID+"/addPassword", "", 200)
	m = e.must("reader", "GET", dirPath+"/servicePrincipals/"+objID, "", 200)
	props = m["properties"].(map[string]any)
	if len(props["passwordCredentials"].([]any)) != 2 || len(props["keyCredentials"].([]any)) != 1 || strings.Contains(jsonString(m), "secretText") {
		t.Fatalf("service principal as read: %v", m)
	}
	e.must("admin", "POST", dirPath+"/servicePrincipals/"+objID+"/removePassword", `{"keyId":"`+sec["keyId"].(string)+`"}`, 204)

	// Users.
	const userID = "ab000000-0000-4000-8000-000000000001"
	_, m = e.call("admin", "PUT", dirPath+"/users/"+userID, `{"properties":{"userPrincipalName":"bob@example.test","password":"short"}}`)
	if errCodeOf(m) != "PasswordTooWeak" {
		t.Fatalf("weak password: %v", m)
	}
	e.must("admin", "PUT", dirPath+"/users/"+userID, `{"properties":{"userPrincipalName":"bob@example.test","displayName":"Bob","password":"a good long password"}}`, 201)
	m = e.must("admin", "PUT", dirPath+"/users/"+userID, `{"properties":{"displayName":"Bobby"}}`, 200)
	if m["properties"].(map[string]any)["displayName"] != "Bobby" || m["properties"].(map[string]any)["passwordSet"] != true {
		t.Fatalf("updated user: %v", m)
	}
	if st, _ := e.call("reader", "PUT", dirPath+"/users/"+userID, `{"properties":{"displayName":"x"}}`); st != 403 {
		t.Fatalf("Reader changed a user: %d", st)
	}
	m = e.must("admin", "POST", dirPath+"/users/"+userID+"/enrollTotp", "", 200)
	if !strings.HasPrefix(m["otpauthUri"].(string), "otpauth://totp/Custos:bob@example.test?") {
		t.Fatalf("enrollTotp: %v", m)
	}
	e.must("admin", "POST", dirPath+"/users/"+userID+"/setPassword", `{"password":"another good password"}`, 204)
	if l := e.must("reader", "GET", dirPath+"/users", "", 200)["value"].([]any); len(l) != 1 {
		t.Fatalf("users: %v", l)
	}

	// Nested groups: bob ∈ g2 ∈ g1; Reader on the workspace to g1 reaches bob.
	const g1, g2 = "ac000000-0000-4000-8000-000000000001", "ac000000-0000-4000-8000-000000000002"
	e.must("admin", "PUT", dirPath+"/groups/"+g1, `{"properties":{"displayName":"ops"}}`, 201)
	e.must("admin", "PUT", dirPath+"/groups/"+g2, `{"properties":{"displayName":"ops-eu"}}`, 201)
	_, m = e.call("admin", "PUT", dirPath+"/groups/ac000000-0000-4000-8000-000000000003", `{"properties":{"displayName":"OPS"}}`)
	if errCodeOf(m) != "Conflict" {
		t.Fatalf("duplicate group name: %v", m)
	}
	e.must("admin", "PUT", dirPath+"/groups/"+g1+"/members/"+g2, "", 201)
	e.must("admin", "PUT", dirPath+"/groups/"+g2+"/members/"+userID, "", 201)
	e.must("admin", "PUT", dirPath+"/groups/"+g2+"/members/"+userID, "", 200)
	_, m = e.call("admin", "PUT", dirPath+"/groups/"+g2+"/members/"+g1, "")
	if errCodeOf(m) != "CircularGroupMembership" {
		t.Fatalf("cycle: %v", m)
	}
	_, m = e.call("admin", "PUT", dirPath+"/groups/"+g2+"/members/ad000000-0000-4000-8000-000000000009", "")
	if errCodeOf(m) != "PrincipalNotFound" {
		t.Fatalf("unknown member: %v", m)
	}
	ws := rbac.Scope(e.boot.Workspace.ID())
	bob := identity.Principal{TenantID: e.boot.Tenant.ID, ObjectID: userID, Kind: identity.KindUser}
	if d, _ := e.authz.Authorize(ctx, bob, rbac.ActionWorkspaceRead, ws); d.Allowed {
		t.Fatal("bob allowed before the group assignment")
	}
	e.must("admin", "PUT", string(ws)+"/providers/Microsoft.Authorization/roleAssignments/ae000000-0000-4000-8000-000000000001",
		`{"properties":{"roleDefinitionId":"/providers/Microsoft.Authorization/roleDefinitions/`+rbac.RoleReader+`","principalId":"`+g1+`"}}`, 201)
	if d, err := e.authz.Authorize(ctx, bob, rbac.ActionWorkspaceRead, ws); err != nil || !d.Allowed {
		t.Fatalf("nested group assignment does not reach bob: %v %v", d, err)
	}
	if l := e.must("reader", "GET", dirPath+"/groups/"+g2+"/members", "", 200)["value"].([]any); len(l) != 1 || l[0].(map[string]any)["principalType"] != "User" {
		t.Fatalf("members: %v", l)
	}
	e.must("admin", "DELETE", dirPath+"/groups/"+g2+"/members/"+userID, "", 200)
	if d, _ := e.authz.Authorize(ctx, bob, rbac.ActionWorkspaceRead, ws); d.Allowed {
		t.Fatal("bob still allowed after leaving the group")
	}
	// Deleting a principal deletes its role assignments.
	e.must("admin", "DELETE", dirPath+"/groups/"+g1, "", 200)
	if ras, _ := e.cat.ListRoleAssignments(ctx, ws); len(ras) != 0 {
		t.Fatalf("assignments of a deleted group remain: %v", ras)
	}
	e.must("admin", "DELETE", dirPath+"/users/"+userID, "", 200)
	e.must("admin", "DELETE", dirPath+"/users/"+userID, "", 204)
	e.must("admin", "DELETE", dirPath+"/servicePrincipals/"+objID, "", 200)
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestAccessRequests: in just-in-time mode an Owner at the root reads no
// data; it requests access, a workspace owner approves, the access works
// and ends by itself.
func TestAccessRequests(t *testing.T) {
	e := newDirEnv(t)
	ctx := context.Background()
	ws := rbac.Scope(e.boot.Workspace.ID())
	admin := e.principal("admin", rbac.RoleOwner, "/")
	e.principal("owner", rbac.RoleOwner, ws)
	e.principal("reader", rbac.RoleReader, ws)
	adminP := identity.Principal{TenantID: e.boot.Tenant.ID, ObjectID: admin.ObjectID}
	if d, _ := e.authz.Authorize(ctx, adminP, rbac.ActionQueryRead, ws); d.Allowed {
		t.Fatal("root Owner reads data in just-in-time mode")
	}
	if d, _ := e.authz.Authorize(ctx, adminP, rbac.ActionWorkspaceWrite, ws); !d.Allowed {
		t.Fatal("root Owner lost control-plane rights")
	}
	reqs := string(ws) + "/providers/Custos.Access/accessRequests"
	st, m := e.call("admin", "POST", reqs, `{"properties":{"justification":"","durationInMinutes":60}}`)
	if errCodeOf(m) != "InvalidParameter" {
		t.Fatalf("no justification: %d %v", st, m)
	}
	_, m = e.call("admin", "POST", reqs, `{"properties":{"justification":"incident 42","durationInMinutes":60,"roleDefinitionId":"`+rbac.RoleOwner+`"}}`)
	if errCodeOf(m) != "InvalidRoleForAccessRequest" {
		t.Fatalf("Owner requested: %v", m)
	}
	m = e.must("admin", "POST", reqs, `{"properties":{"justification":"incident 42","durationInMinutes":60}}`, 201)
	name := m["name"].(string)
	if m["properties"].(map[string]any)["status"] != "Pending" {
		t.Fatalf("new request: %v", m)
	}
	// The root Owner cannot approve (its own or any) request; a Reader cannot either.
	if st, m := e.call("admin", "POST", reqs+"/"+name+"/approve", ""); st != 403 {
		t.Fatalf("root Owner approved: %d %v", st, m)
	}
	if st, _ := e.call("reader", "POST", reqs+"/"+name+"/approve", ""); st != 403 {
		t.Fatalf("Reader approved: %d", st)
	}
	m = e.must("owner", "POST", reqs+"/"+name+"/approve", `{"reason":"ok for the incident"}`, 200)
	p := m["properties"].(map[string]any)
	if p["status"] != "Approved" || p["roleAssignmentId"] == "" || p["decidedBy"] != e.sps["owner"].ObjectID {
		t.Fatalf("approved: %v", m)
	}
	if d, _ := e.authz.Authorize(ctx, adminP, rbac.ActionQueryRead, ws); !d.Allowed {
		t.Fatal("approved access does not work")
	}
	if ta, err := e.authz.TableAccess(ctx, adminP, ws); err != nil || !ta.Table("Heartbeat", nil).Allowed {
		t.Fatalf("approved access reads no table: %v", err)
	}
	if st, _ := e.call("owner", "POST", reqs+"/"+name+"/approve", ""); st != 409 {
		t.Fatalf("approved twice: %d", st)
	}
	// Access ends by itself.
	e.mu.Lock()
	e.now = e.now.Add(61 * time.Minute)
	e.mu.Unlock()
	if d, _ := e.authz.Authorize(ctx, adminP, rbac.ActionQueryRead, ws); d.Allowed {
		t.Fatal("access outlived its duration")
	}
	if m := e.must("reader", "GET", reqs+"/"+name, "", 200); m["properties"].(map[string]any)["status"] != "Expired" {
		t.Fatalf("ended access: %v", m)
	}
	// Rejection, self-approval and revocation.
	m = e.must("admin", "POST", reqs, `{"properties":{"justification":"again","durationInMinutes":30}}`, 201)
	e.must("owner", "POST", reqs+"/"+m["name"].(string)+"/reject", `{"reason":"no"}`, 200)
	m = e.must("owner", "POST", reqs, `{"properties":{"justification":"mine","durationInMinutes":30}}`, 201)
	_, m = e.call("owner", "POST", reqs+"/"+m["name"].(string)+"/approve", "")
	if errCodeOf(m) != "SelfApprovalNotAllowed" {
		t.Fatalf("self approval: %v", m)
	}
	m = e.must("admin", "POST", reqs, `{"properties":{"justification":"third","durationInMinutes":30}}`, 201)
	third := m["name"].(string)
	e.must("owner", "POST", reqs+"/"+third+"/approve", "", 200)
	e.must("owner", "POST", reqs+"/"+third+"/revoke", "", 200)
	if d, _ := e.authz.Authorize(ctx, adminP, rbac.ActionQueryRead, ws); d.Allowed {
		t.Fatal("revoked access still works")
	}
	l := e.must("reader", "GET", reqs, "", 200)["value"].([]any)
	if len(l) != 4 {
		t.Fatalf("list: %v", l)
	}
}
