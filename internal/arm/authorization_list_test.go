package arm_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"testing"

	"custos/internal/catalog"
	"custos/internal/identity"
	"custos/internal/rbac"
)

// names returns the "name" of every item of a {"value": [...]} answer.
func names(m map[string]any) []string {
	var out []string
	vs, _ := m["value"].([]any)
	for _, v := range vs {
		if o, ok := v.(map[string]any); ok {
			s, _ := o["name"].(string)
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// TestListFilteredByItemRoles: list endpoints at subscription and resource
// group scope answer with the items the caller may read, as ARM does — a
// principal whose only role is on one workspace (or one rule) sees that one
// — and a principal that may read nothing there is refused.
func TestListFilteredByItemRoles(t *testing.T) {
	e := newDirEnv(t)
	ctx := context.Background()
	sub, rg := e.boot.Subscription.ID, e.boot.ResourceGroup.Name
	if _, _, err := e.cat.PutResourceGroup(ctx, catalog.ResourceGroup{SubscriptionID: sub, Name: "other", Location: "local"}); err != nil {
		t.Fatal(err)
	}
	var ws []catalog.Workspace
	for _, w := range []struct{ rg, name string }{{rg, "ws-a"}, {rg, "ws-b"}, {"other", "ws-c"}} {
		got, _, err := e.cat.PutWorkspace(ctx, catalog.Workspace{SubscriptionID: sub, ResourceGroup: w.rg, Name: w.name, Location: "local"},
			catalog.Precondition{}, catalog.Actor{})
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, got)
	}
	e.principal("admin", rbac.RoleOwner, "/")
	e.principal("one", rbac.RoleReader, rbac.Scope(ws[0].ID()))   // Reader on ws-a only
	e.principal("other", rbac.RoleReader, rbac.Scope(ws[2].ID())) // Reader on ws-c only
	e.principal("rgreader", rbac.RoleReader, rbac.Scope("/subscriptions/"+sub+"/resourceGroups/other"))
	e.principal("none", "", "")

	subWS := "/subscriptions/" + sub + "/providers/Microsoft.OperationalInsights/workspaces"
	rgWS := func(g string) string {
		return "/subscriptions/" + sub + "/resourceGroups/" + g + "/providers/Microsoft.OperationalInsights/workspaces"
	}
	all := names(e.must("admin", "GET", subWS, "", 200))
	for _, n := range []string{"ws-a", "ws-b", "ws-c", e.boot.Workspace.Name} {
		if !slices.Contains(all, n) {
			t.Fatalf("root Owner's subscription list %v lacks %s", all, n)
		}
	}
	for _, c := range []struct {
		who, path string
		want      []string
	}{
		{"one", subWS, []string{"ws-a"}},
		{"one", rgWS(rg), []string{"ws-a"}},
		{"other", subWS, []string{"ws-c"}},
		{"other", rgWS("other"), []string{"ws-c"}},
		{"rgreader", subWS, []string{"ws-c"}},
		{"rgreader", rgWS("other"), []string{"ws-c"}},
	} {
		if got := names(e.must(c.who, "GET", c.path, "", 200)); !slices.Equal(got, c.want) {
			t.Errorf("%s lists %s: %v; want %v", c.who, c.path, got, c.want)
		}
	}
	// Nothing readable in the container: refused, as before.
	for _, c := range []struct{ who, path string }{{"one", rgWS("other")}, {"other", rgWS(rg)}, {"none", subWS}} {
		if st, m := e.call(c.who, "GET", c.path, ""); st != 403 {
			t.Errorf("%s lists %s: %d %v; want 403", c.who, c.path, st, m)
		}
	}

	// Resource groups: a role on a group shows that group; a role on a
	// resource alone shows none (403), as ARM lists groups the caller may read.
	rgs := "/subscriptions/" + sub + "/resourcegroups"
	if got := names(e.must("rgreader", "GET", rgs, "", 200)); !slices.Equal(got, []string{"other"}) {
		t.Errorf("rgreader lists resource groups: %v", got)
	}
	if st, _ := e.call("one", "GET", rgs, ""); st != 403 {
		t.Errorf("a workspace-only reader listed resource groups: %d", st)
	}

	// User-assigned identities and data collection rules use the same helper.
	uai, _, err := e.cat.PutUserAssignedIdentity(ctx, catalog.UserAssignedIdentity{SubscriptionID: sub, ResourceGroup: "other", Name: "id-1", Location: "local",
		TenantID: e.boot.Tenant.ID}, catalog.Precondition{}, catalog.Actor{})
	if err != nil {
		t.Fatalf("put identity: %v", err)
	}
	uais := "/subscriptions/" + sub + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities"
	if got := names(e.must("rgreader", "GET", uais, "", 200)); !slices.Equal(got, []string{uai.Name}) {
		t.Errorf("rgreader lists identities: %v", got)
	}
	if st, _ := e.call("one", "GET", uais, ""); st != 403 {
		t.Errorf("a workspace-only reader listed identities: %d", st)
	}

	// Private link scopes too (as clusters and connected clusters).
	for _, n := range []struct{ rg, name string }{{rg, "pls-a"}, {"other", "pls-c"}} {
		if _, _, err := e.cat.PutPrivateLinkScope(ctx, catalog.PrivateLinkScope{SubscriptionID: sub, ResourceGroup: n.rg, Name: n.name, Location: "global",
			IngestionAccessMode: "Open", QueryAccessMode: "Open"}, catalog.Precondition{}, catalog.Actor{}); err != nil {
			t.Fatalf("put private link scope: %v", err)
		}
	}
	plss := "/subscriptions/" + sub + "/providers/Microsoft.Insights/privateLinkScopes"
	if got := names(e.must("rgreader", "GET", plss, "", 200)); !slices.Equal(got, []string{"pls-c"}) {
		t.Errorf("rgreader lists private link scopes: %v", got)
	}
	if got := names(e.must("admin", "GET", plss, "", 200)); !slices.Equal(got, []string{"pls-a", "pls-c"}) {
		t.Errorf("admin lists private link scopes: %v", got)
	}
	if st, _ := e.call("one", "GET", plss, ""); st != 403 {
		t.Errorf("a workspace-only reader listed private link scopes: %d", st)
	}
}

// TestSelfGrantRefusedInJIT: in just-in-time mode a root Owner cannot give
// itself, or a group it belongs to, a role that reads log data below the
// root (403 SelfAssignmentNotAllowed, pointing at access requests), but may
// give that role to someone else and give itself roles without data reads
// (Monitoring Metrics Publisher); a workspace Owner, who already reads the
// workspace, may assign itself a reader role there.
func TestSelfGrantRefusedInJIT(t *testing.T) {
	e := newDirEnv(t)
	ctx := context.Background()
	ws := rbac.Scope(e.boot.Workspace.ID())
	sub := "/subscriptions/" + e.boot.Subscription.ID
	admin := e.principal("admin", rbac.RoleOwner, "/")
	owner := e.principal("owner", rbac.RoleOwner, ws)
	analyst := e.principal("analyst", "", "")
	put := func(who string, scope rbac.Scope, role, principal string) (int, map[string]any) {
		body := `{"properties":{"roleDefinitionId":"` + sub + `/providers/Microsoft.Authorization/roleDefinitions/` + role + `","principalId":"` + principal + `"}}`
		return e.call(who, "PUT", string(scope)+"/providers/Microsoft.Authorization/roleAssignments/"+newGUID(t), body)
	}
	for _, c := range []struct {
		scope rbac.Scope
		role  string
	}{
		{ws, rbac.RoleLogAnalyticsReader},
		{rbac.Scope(sub), rbac.RoleLogAnalyticsReader},
		{rbac.Scope(sub), rbac.RoleOwner},
		{rbac.Scope(sub), rbac.RoleReader},
	} {
		st, m := put("admin", c.scope, c.role, admin.ObjectID)
		if st != 403 || errCodeOf(m) != "SelfAssignmentNotAllowed" {
			t.Fatalf("root Owner assigned itself %s at %s: %d %v", c.role, c.scope, st, m)
		}
	}
	// Through a group it belongs to.
	g, err := e.cat.CreateGroup(ctx, identity.Group{TenantID: e.boot.Tenant.ID, ObjectID: newGUID(t), DisplayName: "ops"}, catalog.Actor{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.cat.AddGroupMember(ctx, e.boot.Tenant.ID, g.ObjectID, admin.ObjectID, catalog.Actor{}); err != nil {
		t.Fatal(err)
	}
	if st, m := put("admin", ws, rbac.RoleLogAnalyticsReader, g.ObjectID); st != 403 || errCodeOf(m) != "SelfAssignmentNotAllowed" {
		t.Fatalf("root Owner assigned a reader role to its own group: %d %v", st, m)
	}
	if st, m := put("admin", rbac.Scope(sub), rbac.RoleMonitoringMetricsPublisher, admin.ObjectID); st != 201 {
		t.Fatalf("root Owner assigning itself Monitoring Metrics Publisher: %d %v", st, m)
	}
	if st, m := put("admin", ws, rbac.RoleLogAnalyticsReader, analyst.ObjectID); st != 201 {
		t.Fatalf("root Owner assigning another principal Log Analytics Reader: %d %v", st, m)
	}
	if st, m := put("owner", ws, rbac.RoleLogAnalyticsReader, owner.ObjectID); st != 201 {
		t.Fatalf("workspace Owner assigning itself Log Analytics Reader there: %d %v", st, m)
	}
	// Nor can it join a group (which may hold data roles) by itself; adding
	// someone else is fine.
	g2, err := e.cat.CreateGroup(ctx, identity.Group{TenantID: e.boot.Tenant.ID, ObjectID: newGUID(t), DisplayName: "readers"}, catalog.Actor{})
	if err != nil {
		t.Fatal(err)
	}
	members := "/providers/Custos.Directory/groups/" + g2.ObjectID + "/members/"
	for _, who := range []string{admin.ObjectID, g.ObjectID} {
		if st, m := e.call("admin", "PUT", members+who, ""); st != 403 || errCodeOf(m) != "SelfAssignmentNotAllowed" {
			t.Fatalf("root Owner added itself (%s) to a group: %d %v", who, st, m)
		}
	}
	if st, m := e.call("admin", "PUT", members+analyst.ObjectID, ""); st/100 != 2 {
		t.Fatalf("root Owner adding another principal to a group: %d %v", st, m)
	}
	adminP := identity.Principal{TenantID: e.boot.Tenant.ID, ObjectID: admin.ObjectID}
	if d, _ := e.authz.Authorize(ctx, adminP, rbac.ActionQueryRead, ws); d.Allowed {
		t.Fatal("root Owner reads the workspace after the refused self-assignments")
	}
}

func newGUID(t *testing.T) string {
	t.Helper()
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
