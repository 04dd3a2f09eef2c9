package identity_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"custos/internal/catalog"
	"custos/internal/crypt"
	"custos/internal/identity"
	"custos/internal/rbac"
)

// TestWithCatalog runs the token service and the authorizer on the real
// SQLite catalog: azidentity obtains a token, the server authenticates it and
// authorizes against a role assignment stored in the catalog.
func TestWithCatalog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cat, err := catalog.Open(ctx, catalog.Options{Path: filepath.Join(dir, "catalog.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	const tenant = "eeeeeeee-0000-4000-8000-000000000005"
	if _, err := cat.CreateTenant(ctx, catalog.Tenant{ID: tenant, DisplayName: "t"}); err != nil {
		t.Fatal(err)
	}
	pk, err := crypt.OpenPlatformKey(filepath.Join(dir, "keys", "platform.key"))
	if err != nil {
		t.Fatal(err)
	}

	var ts *identity.TokenService
	authz := rbac.New(rbac.Options{Store: cat})
	const scope = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/ws"
	mux := http.NewServeMux()
	mux.HandleFunc("GET /workspace", func(w http.ResponseWriter, r *http.Request) {
		p, err := ts.Authenticate(r, identity.AudienceManagement)
		if err != nil {
			w.Header().Set("WWW-Authenticate", ts.Challenge(r, err))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		d, err := authz.Authorize(r.Context(), p, rbac.ActionWorkspaceRead, scope)
		if err != nil || !d.Allowed {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)

	ts, err = identity.NewTokenService(identity.TokenServiceOptions{
		Store: cat, Keys: pk, Issuer: srv.URL,
		Tenants: identity.TenantFunc(func(ctx context.Context, id string) (bool, error) {
			_, err := cat.Tenant(ctx, id)
			if errors.Is(err, catalog.ErrNotFound) {
				return false, nil
			}
			return err == nil, err
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ts.Patterns() {
		mux.Handle(p, ts.Handler())
	}
	sp, secret, err := ts.CreateServicePrincipal(ctx, tenant, "catalog app")
	if err != nil {
		t.Fatal(err)
	}

	cred, err := azidentity.NewClientSecretCredential(tenant, sp.AppID, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{
			Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: srv.URL + "/"},
			Transport: srv.Client(),
		},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com//.default"}})
	if err != nil {
		t.Fatalf("GetToken: %v", err)
	}
	call := func() int {
		req, _ := http.NewRequest("GET", srv.URL+"/workspace", nil)
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := call(); got != http.StatusForbidden {
		t.Fatalf("before assignment: status %d; want 403", got)
	}
	ra := rbac.RoleAssignment{ID: "/subscriptions/00000000-0000-0000-0000-000000000001/providers/Microsoft.Authorization/roleAssignments/ffffffff-0000-4000-8000-000000000006",
		Name: "ffffffff-0000-4000-8000-000000000006", Scope: "/subscriptions/00000000-0000-0000-0000-000000000001",
		RoleDefinitionID: rbac.RoleReader, PrincipalID: sp.ObjectID, PrincipalType: string(identity.KindServicePrincipal)}
	if err := cat.CreateRoleAssignment(ctx, ra); err != nil {
		t.Fatal(err)
	}
	authz.Invalidate()
	if got := call(); got != http.StatusNoContent {
		t.Fatalf("after assignment: status %d; want 204", got)
	}

	// A restart on the same catalog and platform key validates the token.
	ts2, err := identity.NewTokenService(identity.TokenServiceOptions{Store: cat, Keys: pk, Issuer: srv.URL,
		Tenants: identity.StaticTenants{tenant}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts2.ValidateToken(ctx, tok.Token, identity.AudienceManagement); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	// Rotation through the catalog's PutSigningKey keeps the old token valid.
	if err := ts.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	keys, err := cat.SigningKeys(ctx)
	if err != nil || len(keys) != 2 {
		t.Fatalf("catalog signing keys = %d, %v; want 2", len(keys), err)
	}
	if _, err := ts.ValidateToken(ctx, tok.Token, identity.AudienceManagement); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
}
