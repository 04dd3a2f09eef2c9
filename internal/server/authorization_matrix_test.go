package server

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"custos/internal/api"
	"custos/internal/catalog"
	"custos/internal/identity"
	"custos/internal/rbac"
)

// matrixClass is who among Reader, Contributor and Owner may call a route,
// derived from its action.
type matrixClass int

const (
	matrixRead       matrixClass = iota + 1 // Reader, Contributor, Owner
	matrixWrite                             // Contributor, Owner
	matrixAuthzWrite                        // Owner only (Microsoft.Authorization writes)
	matrixData                              // none of them (data actions need dataActions)
)

func classifyAction(act rbac.Action) (matrixClass, bool) {
	l := strings.ToLower(string(act))
	switch {
	case act.IsData():
		return matrixData, true
	case strings.HasPrefix(l, "microsoft.authorization/") && (strings.HasSuffix(l, "/write") || strings.HasSuffix(l, "/delete")):
		return matrixAuthzWrite, true
	case strings.HasSuffix(l, "/read"):
		return matrixRead, true
	case strings.HasSuffix(l, "/write") || strings.HasSuffix(l, "/delete") || strings.HasSuffix(l, "/action"):
		return matrixWrite, true
	}
	return 0, false
}

// TestAuthorizationMatrixEveryRoute calls every route the server put behind
// its guard (Server.routes: ARM, clusters, data exports, saved searches,
// ingestion, query, alerts, activity log verification, quarantine, metrics —
// whatever is registered, so a new route cannot escape the matrix) through
// the running server over HTTPS: anonymous, with a token for another
// audience, with a garbage token, and as Reader, Contributor and Owner
// assigned at the route's scope and at a sibling scope. A route whose action
// has no rule here fails the test. Destructive calls (DELETE) run last.
// internal/arm's TestAuthorizationMatrix checks arm.Routes() alone, also
// against an untrusted issuer.
func TestAuthorizationMatrixEveryRoute(t *testing.T) {
	if testing.Short() {
		t.Skip("matrix test: not in -short")
	}
	dir := newDataDir(t)
	ts := startServer(t, testConfig(dir))
	adm := adminCredentials(t, dir)
	ctx := context.Background()
	values := map[string]string{
		"subscriptionId": adm.SubscriptionID, "resourceGroupName": adm.ResourceGroup, "workspaceName": adm.WorkspaceName,
		"workspaceId": adm.WorkspaceID, "tableName": "Heartbeat", "resourceProviderNamespace": "Microsoft.OperationalInsights",
		"resourceType": "workspaces", "resourceName": adm.WorkspaceName,
		"roleDefinitionId": "12345678-0000-4000-8000-000000000001", "roleAssignmentName": "12345678-0000-4000-8000-000000000002",
	}
	valueOf := func(name string) string {
		if v, ok := values[name]; ok {
			return v
		}
		return "x-" + strings.ToLower(name)
	}
	roles := []struct {
		name, id string
		allowed  map[matrixClass]bool
	}{
		{"Reader", rbac.RoleReader, map[matrixClass]bool{matrixRead: true}},
		{"Contributor", rbac.RoleContributor, map[matrixClass]bool{matrixRead: true, matrixWrite: true}},
		{"Owner", rbac.RoleOwner, map[matrixClass]bool{matrixRead: true, matrixWrite: true, matrixAuthzWrite: true}},
	}
	sps := make([]identity.ServicePrincipal, len(roles))
	for i, r := range roles {
		var err error
		if sps[i], _, err = ts.tokens.CreateServicePrincipal(ctx, adm.TenantID, "matrix-"+r.name); err != nil {
			t.Fatal(err)
		}
	}
	tokens := map[string]string{}
	token := func(i int, aud string) string {
		k := fmt.Sprint(i, aud)
		if tok, ok := tokens[k]; ok {
			return tok
		}
		tok, _, err := ts.tokens.IssueToken(ctx, sps[i], aud)
		if err != nil {
			t.Fatal(err)
		}
		tokens[k] = tok
		return tok
	}
	client := ts.client(t)
	call := func(rt api.Route, path, tok string) (int, string) {
		req, err := http.NewRequest(rt.Method, ts.url(path)+"?api-version=2022-10-01", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode, res.Header.Get("x-ms-error-code")
	}
	denied := func(status int, code string) bool {
		return status == http.StatusUnauthorized || (status == http.StatusForbidden && code == "AuthorizationFailed")
	}

	type item struct {
		rt    api.Route
		path  string
		scope rbac.Scope
	}
	routes := slices.Clone(ts.routes)
	if len(routes) < 50 {
		t.Fatalf("the server registered only %d guarded routes", len(routes))
	}
	var items []item
	for _, rt := range routes {
		if _, ok := classifyAction(rt.Action); !ok {
			t.Errorf("route %s %s: action %q has no rule in the authorization matrix", rt.Method, rt.Pattern, rt.Action)
			continue
		}
		segs := strings.Split(rt.Pattern, "/")
		req := httptest.NewRequest(rt.Method, "/", nil)
		for i, s := range segs {
			if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
				name := strings.TrimSuffix(strings.Trim(s, "{}"), "...")
				segs[i] = valueOf(name)
				req.SetPathValue(name, segs[i])
			}
		}
		path := strings.Join(segs, "/")
		req.URL.Path = path
		items = append(items, item{rt, path, rt.Scope(req)})
	}
	// DELETE last, so no route is called after its resource went away.
	slices.SortStableFunc(items, func(a, b item) int {
		return boolCmp(a.rt.Method == http.MethodDelete, b.rt.Method == http.MethodDelete)
	})

	// Unauthenticated and wrong-audience calls: 401 everywhere.
	checked := 0
	for _, it := range items {
		other := identity.AudienceQuery
		if it.rt.Audience == identity.AudienceQuery {
			other = identity.AudienceManagement
		}
		for _, c := range []struct{ who, tok string }{
			{"anonymous", ""}, {"wrong audience", token(2, other)}, {"garbage token", "not.a.token"},
		} {
			if st, code := call(it.rt, it.path, c.tok); st != http.StatusUnauthorized {
				t.Errorf("%s %s as %s: got %d %s; want 401", it.rt.Method, it.path, c.who, st, code)
			}
			checked++
		}
	}
	// Roles at the route's scope and at a sibling scope, scope by scope.
	assign := func(scope rbac.Scope) []string {
		var ids []string
		for i, r := range roles {
			name := fmt.Sprintf("99999999-0000-4000-8000-%012d", i)
			ra := rbac.RoleAssignment{ID: strings.TrimRight(string(scope), "/") + "/providers/Microsoft.Authorization/roleAssignments/" + name,
				Name: name, Scope: scope, RoleDefinitionID: r.id, PrincipalID: sps[i].ObjectID, PrincipalType: "ServicePrincipal"}
			if err := ts.catalog.CreateRoleAssignment(ctx, ra); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, ra.ID)
		}
		ts.rbac.Invalidate()
		return ids
	}
	unassign := func(ids []string) {
		for _, id := range ids {
			if err := ts.catalog.DeleteRoleAssignment(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		ts.rbac.Invalidate()
	}
	for start := 0; start < len(items); {
		// Runs of items sharing a scope (DELETEs stay last).
		end := start + 1
		for end < len(items) && items[end].scope == items[start].scope {
			end++
		}
		run := items[start:end]
		start = end
		for _, mode := range []string{"sibling scope", "right scope"} {
			target := run[0].scope
			if mode == "sibling scope" {
				sib, ok := siblingScope(target)
				if !ok {
					continue
				}
				target = sib
			}
			ids := assign(target)
			for _, it := range run {
				class, _ := classifyAction(it.rt.Action)
				for i, r := range roles {
					want := mode == "right scope" && r.allowed[class]
					st, code := call(it.rt, it.path, token(i, it.rt.Audience))
					if got := !denied(st, code); got != want {
						t.Errorf("%s %s (%s at %s) as %s at the %s: got %d %s; want allowed=%v",
							it.rt.Method, it.rt.Pattern, it.rt.Action, it.scope, r.name, mode, st, code, want)
					}
					checked++
				}
			}
			unassign(ids)
		}
	}
	scopes := map[rbac.Scope]bool{}
	for _, it := range items {
		scopes[it.scope] = true
	}
	t.Logf("%d routes, %d scopes, %d checks", len(routes), len(scopes), checked)
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// siblingScope returns a scope next to s (same parent, other last segment).
func siblingScope(s rbac.Scope) (rbac.Scope, bool) {
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
