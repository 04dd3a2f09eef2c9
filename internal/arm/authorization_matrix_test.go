package arm_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"custos/internal/api"
	"custos/internal/arm"
	"custos/internal/arm/armtest"
	"custos/internal/catalog"
	"custos/internal/crypt"
	"custos/internal/identity"
	"custos/internal/rbac"
)

// pathValues fills a route pattern's wildcards.
var pathValues = map[string]string{
	"subscriptionId": sub, "resourceGroupName": "rg1", "workspaceName": "ws-one", "tableName": "Heartbeat",
	"dataCollectionRuleName": "dcr1", "resourceProviderNamespace": "Microsoft.OperationalInsights", "resourceType": "workspaces",
	"resourceName": "ws-one", "childResourceType": "tables", "childResourceName": "Heartbeat",
	"roleDefinitionId": "12345678-0000-4000-8000-000000000001", "roleAssignmentName": "12345678-0000-4000-8000-000000000002",
	"lockName": "lock1",
}

// TestAuthorizationMatrix calls every route of arm.Routes() as anonymous, with
// a token for another audience, with a token from an untrusted issuer, and
// as Reader, Contributor and Owner assigned at the route's scope and at a
// sibling scope, through the real token service and the real authorizer on
// the real catalog. A route whose action has no authorization rule, or that
// lacks an audience or scope, fails the test.
func TestAuthorizationMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("matrix test: not in -short")
	}
	ctx := context.Background()
	dir := t.TempDir()
	cat, err := catalog.Open(ctx, catalog.Options{Path: filepath.Join(dir, "catalog.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	boot, err := cat.Bootstrap(ctx, catalog.BootstrapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	key, err := crypt.OpenPlatformKey(filepath.Join(dir, "platform.key"))
	if err != nil {
		t.Fatal(err)
	}
	ts, err := identity.NewTokenService(identity.TokenServiceOptions{Store: cat, Keys: key, Issuer: "https://custos.test", Tenants: identity.StaticTenants{boot.Tenant.ID}})
	if err != nil {
		t.Fatal(err)
	}
	// An untrusted issuer: another token service with its own keys.
	cat2, err := catalog.Open(ctx, catalog.Options{Path: filepath.Join(dir, "other.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer cat2.Close()
	boot2, err := cat2.Bootstrap(ctx, catalog.BootstrapOptions{TenantID: boot.Tenant.ID})
	if err != nil {
		t.Fatal(err)
	}
	key2, err := crypt.OpenPlatformKey(filepath.Join(dir, "other.key"))
	if err != nil {
		t.Fatal(err)
	}
	ts2, err := identity.NewTokenService(identity.TokenServiceOptions{Store: cat2, Keys: key2, Issuer: "https://custos.test", Tenants: identity.StaticTenants{boot.Tenant.ID}})
	if err != nil {
		t.Fatal(err)
	}
	authz := rbac.New(rbac.Options{Store: cat, CacheTTL: -1})

	roles := armtest.Roles()
	sps := make([]identity.ServicePrincipal, len(roles))
	principals := make([]string, len(roles))
	for i, r := range roles {
		if sps[i], _, err = ts.CreateServicePrincipal(ctx, boot.Tenant.ID, "matrix-"+r.Name); err != nil {
			t.Fatal(err)
		}
		principals[i] = sps[i].ObjectID
	}
	foreign, _, err := ts2.CreateServicePrincipal(ctx, boot2.Tenant.ID, "foreign")
	if err != nil {
		t.Fatal(err)
	}

	a := arm.New(arm.Options{Catalog: cat})
	routes := a.Routes()
	mux := http.NewServeMux()
	for _, rt := range routes {
		if rt.Handler == nil {
			continue // armtest reports it
		}
		mux.HandleFunc(rt.Method+" "+rt.Pattern, func(w http.ResponseWriter, r *http.Request) {
			p, err := ts.Authenticate(r, rt.Audience)
			if err != nil {
				api.WriteError(w, r, nil, api.Errorf(http.StatusUnauthorized, "InvalidAuthenticationToken", "unauthenticated"))
				return
			}
			r = r.WithContext(api.WithPrincipal(r.Context(), p))
			d, err := authz.Authorize(r.Context(), p, rt.Action, rt.Scope(r))
			if err != nil || !d.Allowed {
				api.WriteError(w, r, nil, api.Errorf(http.StatusForbidden, "AuthorizationFailed", "denied"))
				return
			}
			rt.Handler(w, r, d)
		})
	}
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()

	token := func(s *identity.TokenService, sp identity.ServicePrincipal, aud string) string {
		tok, _, err := s.IssueToken(ctx, sp, aud)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	checked := armtest.Matrix{
		Routes: routes,
		Values: pathValues,
		Token:  func(i int, aud string) string { return token(ts, sps[i], aud) },
		Refused: func(rt api.Route) []armtest.Credential {
			other := identity.AudienceQuery
			if rt.Audience == identity.AudienceQuery {
				other = identity.AudienceManagement
			}
			return []armtest.Credential{
				{Who: "wrong audience", Token: token(ts, sps[2], other)},
				{Who: "untrusted issuer", Token: token(ts2, foreign, rt.Audience)},
			}
		},
		Call:   armtest.Caller(t, srv.Client(), srv.URL),
		Assign: armtest.Assigner(t, cat, principals, nil),
	}.Run(t)
	if checked < 9*len(routes)-50 {
		t.Fatalf("only %d checks for %d routes", checked, len(routes))
	}
	t.Logf("%d routes, %d checks", len(routes), checked)
}
