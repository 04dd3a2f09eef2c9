package identity_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"custos/internal/oidctest"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"custos/internal/catalog"
	"custos/internal/crypt"
	"custos/internal/identity"
	"custos/internal/rbac"
)

// oidcProvider is a running custos-test-oidc (test/oidc-provider: the
// zitadel/oidc example OpenID Provider over HTTPS).
type oidcProvider struct {
	issuer string
	roots  *x509.CertPool
	client *http.Client
}

// startOIDCProvider starts custos-test-oidc as a child process. It fails
// (never skips) when the program is not installed.
func startOIDCProvider(t *testing.T, groups string) *oidcProvider {
	t.Helper()
	prov := oidctest.Start(t, "-groups", groups)
	issuer := prov.Issuer
	pemBytes, err := os.ReadFile(prov.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemBytes)
	return &oidcProvider{issuer: issuer, roots: roots, client: &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}}
}

// clientCredentialsToken gets an access token for the provider's service
// user sid1 by the client credentials grant.
func (p *oidcProvider) clientCredentialsToken(t *testing.T) string {
	t.Helper()
	var tokenURL string
	for i := 0; ; i++ {
		res, err := p.client.Get(p.issuer + ".well-known/openid-configuration")
		if err == nil {
			var d map[string]any
			_ = json.NewDecoder(res.Body).Decode(&d)
			res.Body.Close()
			tokenURL, _ = d["token_endpoint"].(string)
			break
		}
		if i > 50 {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	req, _ := http.NewRequest("POST", tokenURL, strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "scope": {"openid"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("sid1", "verysecret")
	res, err := p.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(res.Body).Decode(&body)
	tok, _ := body["access_token"].(string)
	if res.StatusCode != 200 || strings.Count(tok, ".") != 2 {
		t.Fatalf("provider token: %d %v", res.StatusCode, body)
	}
	return tok
}

// TestExternalIssuerZitadel trusts a real OpenID provider: its token is
// accepted on the query audience (and any other), its groups claim maps to
// a Custos group whose role assignment authorizes the request, and tokens
// for another audience, altered tokens and untrusted issuers are refused.
func TestExternalIssuerZitadel(t *testing.T) {
	prov := startOIDCProvider(t, "oidc-readers,unknown-group")
	ctx := context.Background()
	dir := t.TempDir()
	cat, err := catalog.Open(ctx, catalog.Options{Path: filepath.Join(dir, "catalog.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	boot, err := cat.Bootstrap(ctx, catalog.BootstrapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pk, err := crypt.OpenPlatformKey(filepath.Join(dir, "platform.key"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := cat.CreateGroup(ctx, identity.Group{TenantID: boot.Tenant.ID, ObjectID: "9a000000-0000-4000-8000-000000000001", DisplayName: "OIDC-Readers"}, catalog.Actor{ID: "t"})
	if err != nil {
		t.Fatal(err)
	}
	newTS := func(aud string) *identity.TokenService {
		ts, err := identity.NewTokenService(identity.TokenServiceOptions{Store: cat, Keys: pk, Issuer: "https://custos.test",
			Tenants:         identity.StaticTenants{boot.Tenant.ID},
			ExternalIssuers: []identity.ExternalIssuer{{Issuer: prov.issuer, Audience: aud, TenantID: boot.Tenant.ID, RootCAs: prov.roots}}})
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	ts := newTS("sid1")
	tok := prov.clientCredentialsToken(t)
	p, err := ts.ValidateToken(ctx, tok, identity.AudienceQuery)
	if err != nil {
		t.Fatalf("external token refused: %v", err)
	}
	if p.TenantID != boot.Tenant.ID || p.ObjectID != identity.ExternalObjectID(prov.issuer, "sid1") || len(p.GroupIDs) != 1 || p.GroupIDs[0] != g.ObjectID {
		t.Fatalf("principal %+v", p)
	}
	if _, err := ts.ValidateToken(ctx, tok, identity.AudienceManagement); err != nil {
		t.Fatalf("external token on the management API: %v", err)
	}
	// Authorization through the group: Reader on the workspace.
	authz := rbac.New(rbac.Options{Store: cat, CacheTTL: -1})
	ws := rbac.Scope(boot.Workspace.ID())
	if d, _ := authz.Authorize(ctx, p, rbac.ActionQueryRead, ws); d.Allowed {
		t.Fatal("allowed before any assignment")
	}
	if err := cat.CreateRoleAssignment(ctx, rbac.RoleAssignment{ID: string(ws) + "/providers/Microsoft.Authorization/roleAssignments/9b000000-0000-4000-8000-000000000001",
		Name: "9b000000-0000-4000-8000-000000000001", Scope: ws, RoleDefinitionID: rbac.RoleReader, PrincipalID: g.ObjectID, PrincipalType: "Group"}); err != nil {
		t.Fatal(err)
	}
	if d, err := authz.Authorize(ctx, p, rbac.ActionQueryRead, ws); err != nil || !d.Allowed {
		t.Fatalf("group assignment does not apply: %v %v", d, err)
	}
	// Another expected audience refuses the token.
	if _, err := newTS("another-client").ValidateToken(ctx, tok, identity.AudienceQuery); err == nil {
		t.Fatal("token for another audience accepted")
	}
	// An altered token is refused.
	parts := strings.Split(tok, ".")
	sig := []byte(parts[2])
	sig[5] ^= 1
	if _, err := ts.ValidateToken(ctx, parts[0]+"."+parts[1]+"."+string(sig), identity.AudienceQuery); err == nil {
		t.Fatal("altered token accepted")
	}
	// Without the issuer configured, its tokens are unknown.
	plain, err := identity.NewTokenService(identity.TokenServiceOptions{Store: cat, Keys: pk, Issuer: "https://custos.test", Tenants: identity.StaticTenants{boot.Tenant.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.ValidateToken(ctx, tok, identity.AudienceQuery); err == nil {
		t.Fatal("untrusted issuer accepted")
	}
	// A directory user bound to the subject takes its place (and its state).
	u, err := cat.CreateUser(ctx, identity.User{TenantID: boot.Tenant.ID, ObjectID: "9c000000-0000-4000-8000-000000000001",
		UserPrincipalName: "sid1@oidc.test", ExternalIssuer: prov.issuer, ExternalSubject: "sid1"}, "", catalog.Actor{ID: "t"})
	if err != nil {
		t.Fatal(err)
	}
	ts2 := newTS("sid1")
	if p, err = ts2.ValidateToken(ctx, tok, identity.AudienceQuery); err != nil || p.ObjectID != u.ObjectID || p.Kind != identity.KindUser {
		t.Fatalf("bound user: %+v %v", p, err)
	}
	off := false
	if _, err := cat.UpdateUser(ctx, boot.Tenant.ID, u.ObjectID, nil, nil, &off, catalog.Actor{ID: "t"}); err != nil {
		t.Fatal(err)
	}
	ts2.ForgetPrincipals()
	if _, err := ts2.ValidateToken(ctx, tok, identity.AudienceQuery); err == nil {
		t.Fatal("disabled bound user's external token accepted")
	}
}
