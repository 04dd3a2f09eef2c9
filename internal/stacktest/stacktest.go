// Package stacktest assembles, for the tests of packages outside
// internal/server, the parts of a Custos server they build on: a platform
// key, a bootstrapped SQLite catalog and an encrypted store in the test's
// temporary directory, an HTTPS server on loopback with the token service,
// and the server's per-route chain (authenticate, authorize, handle).
//
// It is imported by tests only, never by a production package, so no test
// code reaches the binaries.
package stacktest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"custos/internal/api"
	"custos/internal/catalog"
	"custos/internal/crypt"
	"custos/internal/identity"
	"custos/internal/rbac"
	"custos/internal/store"
)

// Base is a platform key, a bootstrapped catalog (tenant, subscription,
// resource group, workspace) and a store without background work, all in
// Dir and closed when the test ends.
type Base struct {
	Dir   string
	Key   *crypt.PlatformKey
	Cat   *catalog.DB
	Boot  catalog.Bootstrap
	Store *store.DB
}

// Open creates a Base in a new temporary directory.
func Open(t testing.TB) *Base {
	t.Helper()
	ctx := context.Background()
	b := &Base{Dir: t.TempDir()}
	var err error
	if b.Key, err = crypt.OpenPlatformKey(filepath.Join(b.Dir, "platform.key")); err != nil {
		t.Fatal(err)
	}
	if b.Cat, err = catalog.Open(ctx, catalog.Options{Path: filepath.Join(b.Dir, "catalog.db")}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Cat.Close() })
	if b.Boot, err = b.Cat.Bootstrap(ctx, catalog.BootstrapOptions{}); err != nil {
		t.Fatal(err)
	}
	if b.Store, err = store.Open(store.Options{Dir: filepath.Join(b.Dir, "data"), Keys: b.Key, DisableBackground: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Store.Close() })
	return b
}

// EnsureTables creates in the store every table the catalog declares, as
// the server does when it starts.
func (b *Base) EnsureTables(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	tables, err := b.Cat.AllTables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range tables {
		if err := b.Store.EnsureTable(ctx, tables[i].Ref(), tables[i].StoreSchema(), tables[i].EffectiveRetentionInDays()); err != nil {
			t.Fatal(err)
		}
	}
}

// Serve starts an HTTPS server on loopback, closed when the test ends, and
// a token service issuing for it (its Entra paths are not mounted: callers
// mount ts.Handler() where they want it, usually at "/").
func (b *Base) Serve(t testing.TB) (*httptest.Server, *http.ServeMux, *identity.TokenService) {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	ts, err := identity.NewTokenService(identity.TokenServiceOptions{Store: b.Cat, Keys: b.Key, Issuer: srv.URL,
		Tenants: identity.StaticTenants{b.Boot.Tenant.ID}})
	if err != nil {
		t.Fatal(err)
	}
	return srv, mux, ts
}

// Assign gives principalID (a service principal) role at scope, under the
// role assignment name (a GUID).
func Assign(t testing.TB, cat *catalog.DB, scope, role, principalID, name string) {
	t.Helper()
	if err := cat.CreateRoleAssignment(context.Background(), rbac.RoleAssignment{
		ID: strings.TrimSuffix(scope, "/") + "/providers/Microsoft.Authorization/roleAssignments/" + name, Name: name,
		Scope: rbac.Scope(scope), RoleDefinitionID: role, PrincipalID: principalID,
		PrincipalType: string(identity.KindServicePrincipal), Created: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}
}

// ServeRoute is the server's chain for one route: authenticate the bearer
// token for the route's audience (401 with a WWW-Authenticate challenge),
// authorize the route's action at its scope once (403 AuthorizationFailed),
// then handle with the decision.
func ServeRoute(ts *identity.TokenService, authz *rbac.Authorizer, rt api.Route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := ts.Authenticate(r, rt.Audience)
		if err != nil {
			w.Header().Set("WWW-Authenticate", ts.Challenge(r, err))
			api.WriteError(w, r, nil, err)
			return
		}
		r = r.WithContext(api.WithPrincipal(r.Context(), p))
		d, err := authz.Authorize(r.Context(), p, rt.Action, rt.Scope(r))
		if err != nil || !d.Allowed {
			api.WriteError(w, r, nil, api.Errorf(http.StatusForbidden, "AuthorizationFailed",
				"The client does not have authorization to perform action '%s'.", rt.Action))
			return
		}
		rt.Handler(w, r, d)
	}
}
