package arm_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"custos/internal/api"
	"custos/internal/arm"
	"custos/internal/catalog"
	"custos/internal/crypt"
	"custos/internal/identity"
	"custos/internal/rbac"
)

// actionClass is the authorization rule of a route, derived from its
// action: who among Reader, Contributor and Owner may call it.
type actionClass int

const (
	classRead       actionClass = iota + 1 // Reader, Contributor, Owner
	classWrite                             // Contributor, Owner
	classAuthzWrite                        // Owner only (Microsoft.Authorization writes)
	classData                              // none of them (data actions need dataActions)
)

func classify(act rbac.Action) (actionClass, bool) {
	l := strings.ToLower(string(act))
	switch {
	case act.IsData():
		return classData, true
	case strings.HasPrefix(l, "microsoft.authorization/") && (strings.HasSuffix(l, "/write") || strings.HasSuffix(l, "/delete")):
		return classAuthzWrite, true
	case strings.HasSuffix(l, "/read"):
		return classRead, true
	case strings.HasSuffix(l, "/write") || strings.HasSuffix(l, "/delete") || strings.HasSuffix(l, "/action"):
		return classWrite, true
	}
	return 0, false
}

// pathValues fills a route pattern's wildcards.
var pathValues = map[string]string{
	"subscriptionId": sub, "resourceGroupName": "rg1", "workspaceName": "ws-one", "tableName": "Heartbeat",
	"dataCollectionRuleName": "dcr1", "resourceProviderNamespace": "Microsoft.OperationalInsights", "resourceType": "workspaces",
	"resourceName": "ws-one", "childResourceType": "tables", "childResourceName": "Heartbeat",
	"roleDefinitionId": "12345678-0000-4000-8000-000000000001", "roleAssignmentName": "12345678-0000-4000-8000-000000000002",
	"lockName": "lock1",
}

func fillPattern(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			name := strings.TrimSuffix(strings.Trim(s, "{}"), "...")
			v, ok := pathValues[name]
			if !ok {
				v = "x-" + strings.ToLower(name)
			}
			segs[i] = v
		}
	}
	return strings.Join(segs, "/")
}

// siblingOf returns a scope next to s (same parent, other last segment).
func siblingOf(s rbac.Scope) (rbac.Scope, bool) {
	str := strings.TrimRight(string(s), "/")
	i := strings.LastIndexByte(str, '/')
	if str == "" || i < 0 {
		return "", false
	}
	last := str[i+1:]
	if catalog.IsGUID(last) {
		return rbac.Scope(str[:i+1] + "00000000-0000-4000-8000-0000000000ff"), true
	}
	return rbac.Scope(str[:i+1] + last + "-sibling"), true
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

	roles := []struct {
		name, id string
		allowed  map[actionClass]bool
	}{
		{"Reader", rbac.RoleReader, map[actionClass]bool{classRead: true}},
		{"Contributor", rbac.RoleContributor, map[actionClass]bool{classRead: true, classWrite: true}},
		{"Owner", rbac.RoleOwner, map[actionClass]bool{classRead: true, classWrite: true, classAuthzWrite: true}},
	}
	sps := make([]identity.ServicePrincipal, len(roles))
	for i, r := range roles {
		if sps[i], _, err = ts.CreateServicePrincipal(ctx, boot.Tenant.ID, "matrix-"+r.name); err != nil {
			t.Fatal(err)
		}
	}
	foreign, _, err := ts2.CreateServicePrincipal(ctx, boot2.Tenant.ID, "foreign")
	if err != nil {
		t.Fatal(err)
	}

	a := arm.New(arm.Options{Catalog: cat})
	routes := a.Routes()
	mux := http.NewServeMux()
	for _, rt := range routes {
		if rt.Audience == "" || rt.Action == "" || rt.Scope == nil || rt.Handler == nil {
			t.Errorf("route %s %s has no authorization rule (audience, action, scope)", rt.Method, rt.Pattern)
			continue
		}
		if _, ok := classify(rt.Action); !ok {
			t.Errorf("route %s %s: action %q has no authorization rule in this test", rt.Method, rt.Pattern, rt.Action)
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
	call := func(rt api.Route, path, tok string) (int, string) {
		req, err := http.NewRequest(rt.Method, srv.URL+path+"?api-version=2022-10-01", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode, res.Header.Get("x-ms-error-code")
	}
	denied := func(status int, code string) bool {
		return status == http.StatusUnauthorized || (status == http.StatusForbidden && code == "AuthorizationFailed")
	}

	// Group routes by scope, so assignments change once per scope.
	type item struct {
		rt   api.Route
		path string
	}
	byScope := map[rbac.Scope][]item{}
	for _, rt := range routes {
		if rt.Scope == nil {
			continue
		}
		path := fillPattern(rt.Pattern)
		req := httptest.NewRequest(rt.Method, path, nil)
		for _, seg := range strings.Split(rt.Pattern, "/") {
			if strings.HasPrefix(seg, "{") {
				name := strings.TrimSuffix(strings.Trim(seg, "{}"), "...")
				v, ok := pathValues[name]
				if !ok {
					v = "x-" + strings.ToLower(name)
				}
				req.SetPathValue(name, v)
			}
		}
		sc := rt.Scope(req)
		byScope[sc] = append(byScope[sc], item{rt, path})
	}
	scopes := make([]string, 0, len(byScope))
	for s := range byScope {
		scopes = append(scopes, string(s))
	}
	sort.Strings(scopes)

	assignAll := func(scope rbac.Scope) []string {
		var ids []string
		for i, r := range roles {
			name := fmt.Sprintf("99999999-0000-4000-8000-%012d", i)
			ra := rbac.RoleAssignment{ID: strings.TrimRight(string(scope), "/") + "/providers/Microsoft.Authorization/roleAssignments/" + name,
				Name: name, Scope: scope, RoleDefinitionID: r.id, PrincipalID: sps[i].ObjectID, PrincipalType: "ServicePrincipal"}
			if err := cat.CreateRoleAssignment(ctx, ra); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, ra.ID)
		}
		return ids
	}
	unassign := func(ids []string) {
		for _, id := range ids {
			if err := cat.DeleteRoleAssignment(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
	}

	checked := 0
	for _, s := range scopes {
		items := byScope[rbac.Scope(s)]
		for _, it := range items {
			other := identity.AudienceQuery
			if it.rt.Audience == identity.AudienceQuery {
				other = identity.AudienceManagement
			}
			for _, c := range []struct {
				who string
				tok string
			}{
				{"anonymous", ""},
				{"wrong audience", token(ts, sps[2], other)},
				{"untrusted issuer", token(ts2, foreign, it.rt.Audience)},
				{"garbage token", "not.a.token"},
			} {
				if st, code := call(it.rt, it.path, c.tok); st != http.StatusUnauthorized {
					t.Errorf("%s %s as %s: got %d %s; want 401", it.rt.Method, it.path, c.who, st, code)
				}
				checked++
			}
		}
		for _, mode := range []string{"right scope", "sibling scope"} {
			target := rbac.Scope(s)
			if mode == "sibling scope" {
				sib, ok := siblingOf(target)
				if !ok {
					continue // the root has no sibling
				}
				target = sib
			}
			ids := assignAll(target)
			for _, it := range items {
				class, _ := classify(it.rt.Action)
				for i, r := range roles {
					want := mode == "right scope" && r.allowed[class]
					st, code := call(it.rt, it.path, token(ts, sps[i], it.rt.Audience))
					if got := !denied(st, code); got != want {
						t.Errorf("%s %s (%s at %s) as %s at %s: got %d %s; want allowed=%v",
							it.rt.Method, it.rt.Pattern, it.rt.Action, s, r.name, mode, st, code, want)
					}
					checked++
				}
			}
			unassign(ids)
		}
	}
	if checked < 9*len(routes)-50 {
		t.Fatalf("only %d checks for %d routes", checked, len(routes))
	}
	t.Logf("%d routes, %d scopes, %d checks", len(routes), len(scopes), checked)
}
