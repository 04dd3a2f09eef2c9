package server

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"custos/internal/api"
	"custos/internal/arm/armtest"
	"custos/internal/identity"
)

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
	roles := armtest.Roles()
	sps := make([]identity.ServicePrincipal, len(roles))
	principals := make([]string, len(roles))
	for i, r := range roles {
		var err error
		if sps[i], _, err = ts.tokens.CreateServicePrincipal(ctx, adm.TenantID, "matrix-"+r.Name); err != nil {
			t.Fatal(err)
		}
		principals[i] = sps[i].ObjectID
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
	routes := slices.Clone(ts.routes)
	if len(routes) < 50 {
		t.Fatalf("the server registered only %d guarded routes", len(routes))
	}
	checked := armtest.Matrix{
		Routes: routes,
		Values: values,
		Token:  token,
		Refused: func(rt api.Route) []armtest.Credential {
			other := identity.AudienceQuery
			if rt.Audience == identity.AudienceQuery {
				other = identity.AudienceManagement
			}
			return []armtest.Credential{{Who: "wrong audience", Token: token(2, other)}}
		},
		Call:   armtest.Caller(t, ts.client(t), ts.url("")),
		Assign: armtest.Assigner(t, ts.catalog, principals, ts.rbac.Invalidate),
	}.Run(t)
	t.Logf("%d routes, %d checks", len(routes), checked)
}
