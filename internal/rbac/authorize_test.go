package rbac

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"custos/internal/identity"
)

// mapStore is a small in-memory AssignmentStore for this package's tests.
type mapStore struct {
	mu    sync.Mutex
	items map[string]RoleAssignment
	calls atomic.Int64
	err   error
}

func newMapStore(as ...RoleAssignment) *mapStore {
	s := &mapStore{items: map[string]RoleAssignment{}}
	for _, a := range as {
		s.items[a.ID] = a
	}
	return s
}

func (s *mapStore) RoleAssignmentsFor(_ context.Context, ids []string) ([]RoleAssignment, error) {
	s.calls.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	var out []RoleAssignment
	for _, a := range s.items {
		for _, id := range ids {
			if strings.EqualFold(a.PrincipalID, id) {
				out = append(out, a)
			}
		}
	}
	return out, nil
}

func (s *mapStore) ListRoleAssignments(_ context.Context, prefix Scope) ([]RoleAssignment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []RoleAssignment
	for _, a := range s.items {
		if strings.HasPrefix(strings.ToLower(string(a.Scope)), strings.ToLower(string(prefix))) {
			out = append(out, a)
		}
	}
	return out, nil
}

func (s *mapStore) CreateRoleAssignment(_ context.Context, a RoleAssignment) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.items[a.ID] = a
	return nil
}

func (s *mapStore) DeleteRoleAssignment(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.items[id]; !ok {
		return ErrNotFound
	}
	delete(s.items, id)
	return nil
}

const (
	sub   = "/subscriptions/00000000-0000-0000-0000-000000000001"
	rg    = sub + "/resourceGroups/rg1"
	ws    = rg + "/providers/Microsoft.OperationalInsights/workspaces/ws1"
	table = ws + "/tables/Heartbeat"
	dcr   = rg + "/providers/Microsoft.Insights/dataCollectionRules/dcr1"
	rg2   = sub + "/resourceGroups/rg10"

	alice = "11111111-1111-1111-1111-111111111111"
	bob   = "22222222-2222-2222-2222-222222222222"
	group = "33333333-3333-3333-3333-333333333333"
)

func assign(id string, scope Scope, role, principal string) RoleAssignment {
	return RoleAssignment{ID: string(scope) + "/providers/Microsoft.Authorization/roleAssignments/" + id, Name: id,
		Scope: scope, RoleDefinitionID: role, PrincipalID: principal, PrincipalType: "User"}
}

func TestAuthorize(t *testing.T) {
	store := newMapStore(
		assign("a1", "/", RoleOwner, "owner-at-root"),
		assign("a2", Scope(rg), RoleReader, alice),
		assign("a3", Scope(ws), RoleLogAnalyticsContributor, alice),
		assign("a4", Scope(sub), RoleContributor, bob),
		assign("a5", Scope(dcr), RoleMonitoringMetricsPublisher, group),
		assign("a6", Scope(strings.ToUpper(rg2)), "/subscriptions/x/providers/Microsoft.Authorization/roleDefinitions/"+strings.ToUpper(RoleMonitoringReader), "reader2"),
		assign("a7", Scope(sub), RoleDataPurger, "purger"),
		assign("a8", "/", "00000000-dead-beef-0000-000000000000", "unknown-role"),
		assign("a9", Scope(sub), RoleUserAccessAdministrator, "uaa"),
		assign("a10", Scope(ws), RoleMonitoringContributor, "moncontrib"),
	)
	a := New(Options{Store: store})
	groupMember := identity.Principal{ObjectID: "member", GroupIDs: []string{group}}
	p := func(id string) identity.Principal { return identity.Principal{ObjectID: id} }

	tests := []struct {
		name  string
		p     identity.Principal
		act   Action
		scope Scope
		want  bool
	}{
		{"owner at root writes anything", p("owner-at-root"), ActionWorkspaceWrite, Scope(ws), true},
		{"owner at root assigns roles", p("owner-at-root"), ActionRoleAssignmentWrite, "/", true},
		{"owner has no data actions", p("owner-at-root"), ActionTelemetryWrite, Scope(dcr), false},
		{"reader inherits to resource below", p(alice), ActionWorkspaceRead, Scope(ws), true},
		{"reader inherits to table", p(alice), ActionTableRead, Scope(table), true},
		{"reader cannot write", p(alice), ActionDCRWrite, Scope(dcr), false},
		{"reader does not apply above its scope", p(alice), ActionWorkspaceRead, Scope(sub), false},
		{"LA contributor at workspace writes tables", p(alice), ActionTableWrite, Scope(table), true},
		{"LA contributor at workspace not on sibling", p(alice), ActionDCRWrite, Scope(dcr), false},
		{"scope prefix must end on a segment boundary", p("reader2"), ActionWorkspaceRead, Scope(rg2 + "0/providers/x/y/z"), false},
		{"case-insensitive scope and role ID", p("reader2"), ActionWorkspaceRead, Scope(strings.ToLower(rg2) + "/providers/Microsoft.OperationalInsights/workspaces/w"), true},
		{"case-insensitive action", p(alice), Action(strings.ToUpper(string(ActionWorkspaceRead))), Scope(ws), true},
		{"contributor writes", p(bob), ActionWorkspaceDelete, Scope(ws), true},
		{"contributor notActions: no role assignments", p(bob), ActionRoleAssignmentWrite, Scope(rg), false},
		{"contributor notActions: no role assignment delete", p(bob), ActionRoleAssignmentDelete, Scope(rg), false},
		{"contributor may read role assignments", p(bob), ActionRoleAssignmentRead, Scope(rg), true},
		{"contributor has no data actions", p(bob), ActionTelemetryWrite, Scope(dcr), false},
		{"group assignment grants data action", groupMember, ActionTelemetryWrite, Scope(dcr), true},
		{"group assignment grants metrics data action", groupMember, ActionMetricsWrite, Scope(dcr), true},
		{"group data role does not grant table data", groupMember, ActionTableDataRead, Scope(ws), false},
		{"group role actions: rg read", groupMember, ActionResourceGroupRead, Scope(dcr), true},
		{"group role actions do not include writes", groupMember, ActionDCRWrite, Scope(dcr), false},
		{"group assignment does not leak to non-member", p("member"), ActionTelemetryWrite, Scope(dcr), false},
		{"data purger purges", p("purger"), ActionWorkspacePurge, Scope(ws), true},
		{"data purger reads workspace children", p("purger"), ActionTableRead, Scope(table), true},
		{"data purger cannot write workspace", p("purger"), ActionWorkspaceWrite, Scope(ws), false},
		{"unknown role grants nothing", p("unknown-role"), ActionWorkspaceRead, Scope(ws), false},
		{"UAA writes role assignments", p("uaa"), ActionRoleAssignmentWrite, Scope(ws), true},
		{"UAA cannot write workspaces", p("uaa"), ActionWorkspaceWrite, Scope(ws), false},
		{"monitoring contributor writes workspace", p("moncontrib"), ActionWorkspaceWrite, Scope(ws), true},
		{"monitoring contributor cannot delete workspace", p("moncontrib"), ActionWorkspaceDelete, Scope(ws), false},
		{"monitoring contributor queries", p("moncontrib"), ActionQueryRead, Scope(ws), true},
		{"unassigned principal denied", p("nobody"), ActionWorkspaceRead, Scope(ws), false},
		{"trailing slash on scope", p(alice), ActionWorkspaceRead, Scope(ws + "/"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := a.Authorize(context.Background(), tt.p, tt.act, tt.scope)
			if err != nil {
				t.Fatalf("Authorize: %v", err)
			}
			if d.Allowed != tt.want {
				t.Fatalf("Allowed = %v (%s); want %v", d.Allowed, d.Reason, tt.want)
			}
			if d.Reason == "" {
				t.Fatalf("empty reason")
			}
		})
	}
}

func TestAuthorizeErrorsDeny(t *testing.T) {
	store := newMapStore(assign("a1", "/", RoleOwner, alice))
	a := New(Options{Store: store, CacheTTL: -1})
	ctx := context.Background()
	bad := []struct {
		name  string
		p     identity.Principal
		act   Action
		scope Scope
	}{
		{"no object id", identity.Principal{}, ActionWorkspaceRead, "/"},
		{"empty scope", identity.Principal{ObjectID: alice}, ActionWorkspaceRead, ""},
		{"relative scope", identity.Principal{ObjectID: alice}, ActionWorkspaceRead, "subscriptions/x"},
		{"dot-dot scope", identity.Principal{ObjectID: alice}, ActionWorkspaceRead, "/subscriptions/x/../y"},
		{"double slash scope", identity.Principal{ObjectID: alice}, ActionWorkspaceRead, "/subscriptions//x"},
		{"wildcard action", identity.Principal{ObjectID: alice}, "*", "/"},
		{"empty action", identity.Principal{ObjectID: alice}, "", "/"},
	}
	for _, tt := range bad {
		d, err := a.Authorize(ctx, tt.p, tt.act, tt.scope)
		if !errors.Is(err, ErrInvalidRequest) || d.Allowed {
			t.Errorf("%s: got (%v, %v); want deny with ErrInvalidRequest", tt.name, d.Allowed, err)
		}
	}
	store.err = errors.New("disk on fire")
	d, err := a.Authorize(ctx, identity.Principal{ObjectID: alice}, ActionWorkspaceRead, "/")
	if err == nil || d.Allowed {
		t.Fatalf("store failure: got (%v, %v); want deny with error", d.Allowed, err)
	}
	d, err = New(Options{}).Authorize(ctx, identity.Principal{ObjectID: alice}, ActionWorkspaceRead, "/")
	if !errors.Is(err, ErrNoStore) || d.Allowed {
		t.Fatalf("no store: got (%v, %v); want deny with ErrNoStore", d.Allowed, err)
	}
}

func TestConditionalAssignmentGrantsNothing(t *testing.T) {
	ra := assign("c1", Scope(ws), RoleReader, alice)
	ra.Condition = "@Resource[Microsoft.OperationalInsights/workspaces/tables:name] StringEquals 'Heartbeat'"
	a := New(Options{Store: newMapStore(ra)})
	d, err := a.Authorize(context.Background(), identity.Principal{ObjectID: alice}, ActionQueryRead, Scope(ws))
	if err != nil || d.Allowed {
		t.Fatalf("got (%v, %v); want deny", d.Allowed, err)
	}
}

func TestCacheAndInvalidate(t *testing.T) {
	store := newMapStore()
	now := time.Unix(1_700_000_000, 0)
	a := New(Options{Store: store, CacheTTL: time.Minute, Now: func() time.Time { return now }})
	ctx := context.Background()
	p := identity.Principal{ObjectID: alice}
	check := func(want bool) {
		t.Helper()
		d, err := a.Authorize(ctx, p, ActionWorkspaceRead, Scope(ws))
		if err != nil || d.Allowed != want {
			t.Fatalf("got (%v, %v); want %v", d.Allowed, err, want)
		}
	}
	check(false)
	if err := store.CreateRoleAssignment(ctx, assign("x", Scope(sub), RoleReader, alice)); err != nil {
		t.Fatal(err)
	}
	check(false) // cached: the new assignment is not seen yet
	if got := store.calls.Load(); got != 1 {
		t.Fatalf("store calls = %d; want 1", got)
	}
	a.Invalidate()
	check(true)
	if err := store.DeleteRoleAssignment(ctx, string(Scope(sub))+"/providers/Microsoft.Authorization/roleAssignments/x"); err != nil {
		t.Fatal(err)
	}
	check(true) // still cached
	now = now.Add(2 * time.Minute)
	check(false) // expired
}

func TestPatternMatch(t *testing.T) {
	tests := []struct {
		pat, op string
		want    bool
	}{
		{"*", "microsoft.insights/telemetry/write", true},
		{"*/read", "microsoft.operationalinsights/workspaces/read", true},
		{"*/read", "microsoft.operationalinsights/workspaces/write", false},
		{"*/read", "read", false},
		{"Microsoft.Authorization/*/Write", "microsoft.authorization/roleassignments/write", true},
		{"Microsoft.Authorization/*/Write", "microsoft.authorization/write", false},
		{"Microsoft.OperationalInsights/*", "microsoft.operationalinsights/workspaces/tables/write", true},
		{"Microsoft.OperationalInsights/*", "microsoft.operationalinsightsx/workspaces", false},
		{"a*b*c", "abc", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "acb", false},
		{"a*a", "a", false},
		{"Microsoft.Insights/Telemetry/Write", "microsoft.insights/telemetry/write", true},
	}
	for _, tt := range tests {
		if got := compilePattern(tt.pat).match(tt.op); got != tt.want {
			t.Errorf("match(%q, %q) = %v; want %v", tt.pat, tt.op, got, tt.want)
		}
	}
}

func TestBuiltinRoles(t *testing.T) {
	roles := BuiltinRoles()
	if len(roles) < 10 {
		t.Fatalf("got %d built-in roles; want at least 10", len(roles))
	}
	seen := map[string]bool{}
	for _, r := range roles {
		if seen[r.ID] || r.Name == "" || r.RoleType != "BuiltInRole" || len(r.Permissions) == 0 {
			t.Errorf("bad role %+v", r)
		}
		seen[r.ID] = true
	}
	owner, ok := BuiltinRole("/providers/Microsoft.Authorization/roleDefinitions/8E3AF657-A8FF-443C-A75C-2FE8C4BCD635")
	if !ok || owner.Name != "Owner" {
		t.Fatalf("BuiltinRole(owner) = %+v, %v", owner, ok)
	}
	roles[0].Permissions[0].Actions[0] = "mutated"
	if again, _ := BuiltinRole(RoleOwner); again.Permissions[0].Actions[0] != "*" {
		t.Fatalf("BuiltinRoles returned shared state")
	}
}

func TestCustomRole(t *testing.T) {
	custom := RoleDefinition{ID: "44444444-4444-4444-4444-444444444444", Name: "Heartbeat reader", RoleType: "CustomRole",
		Permissions: []Permission{{
			Actions:    []string{"Microsoft.OperationalInsights/workspaces/read", "Microsoft.OperationalInsights/workspaces/query/*/read"},
			NotActions: []string{"Microsoft.OperationalInsights/workspaces/query/SecurityEvent/read"},
		}}}
	a := New(Options{Store: newMapStore(assign("c", Scope(ws), custom.ID, alice)), Roles: []RoleDefinition{custom}})
	ctx := context.Background()
	p := identity.Principal{ObjectID: alice}
	for act, want := range map[Action]bool{
		"Microsoft.OperationalInsights/workspaces/query/Heartbeat/read":     true,
		"Microsoft.OperationalInsights/workspaces/query/SecurityEvent/read": false,
		ActionWorkspaceRead:  true,
		ActionWorkspaceWrite: false,
	} {
		d, err := a.Authorize(ctx, p, act, Scope(ws))
		if err != nil || d.Allowed != want {
			t.Errorf("%s: got (%v, %v); want %v", act, d.Allowed, err, want)
		}
	}
}

func BenchmarkAuthorizeCached(b *testing.B) {
	a := New(Options{Store: newMapStore(
		assign("a1", Scope(sub), RoleReader, alice),
		assign("a2", Scope(ws), RoleLogAnalyticsContributor, alice),
		assign("a3", Scope(dcr), RoleMonitoringMetricsPublisher, group),
	), CacheTTL: time.Hour})
	p := identity.Principal{ObjectID: alice, GroupIDs: []string{group}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		d, err := a.Authorize(ctx, p, ActionTelemetryWrite, Scope(dcr))
		if err != nil || !d.Allowed {
			b.Fatal(d, err)
		}
	}
}
