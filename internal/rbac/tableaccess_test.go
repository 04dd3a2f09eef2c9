package rbac

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"custos/internal/identity"
)

const (
	dataGuard = `!(ActionMatches{'Microsoft.OperationalInsights/workspaces/tables/data/read'})`
	tableName = `@Resource[Microsoft.OperationalInsights/workspaces/tables:name]`
	recordCol = `@Resource[Microsoft.OperationalInsights/workspaces/tables/record:`
)

// granularReader is the custom role of Azure's granular RBAC examples.
var granularReader = RoleDefinition{ID: "55555555-5555-4555-8555-555555555555", Name: "Granular reader", RoleType: "CustomRole",
	AssignableScopes: []string{"/"},
	Permissions: []Permission{{
		Actions:     []string{"Microsoft.OperationalInsights/workspaces/read", "Microsoft.OperationalInsights/workspaces/query/read"},
		DataActions: []string{"Microsoft.OperationalInsights/workspaces/tables/data/read"},
	}}}

// workspaceQuerier is the dual-role method's workspace role: query, no data.
var workspaceQuerier = RoleDefinition{ID: "66666666-6666-4666-8666-666666666666", Name: "Workspace querier", RoleType: "CustomRole",
	AssignableScopes: []string{"/"},
	Permissions: []Permission{{
		Actions:    []string{"Microsoft.OperationalInsights/workspaces/read", "Microsoft.OperationalInsights/workspaces/query/read"},
		NotActions: []string{"Microsoft.OperationalInsights/workspaces/sharedKeys/read"},
	}}}

// legacyReader is the legacy method: per-table query actions.
var legacyReader = RoleDefinition{ID: "77777777-7777-4777-8777-777777777777", Name: "Legacy table reader", RoleType: "CustomRole",
	AssignableScopes: []string{"/"},
	Permissions: []Permission{{
		Actions: []string{"Microsoft.OperationalInsights/workspaces/read", "Microsoft.OperationalInsights/workspaces/query/read",
			"Microsoft.OperationalInsights/workspaces/query/*/read"},
		NotActions: []string{"Microsoft.OperationalInsights/workspaces/query/SecurityEvent/read"},
	}}}

var customTablesReader = RoleDefinition{ID: "88888888-8888-4888-8888-888888888888", Name: "Custom tables reader", RoleType: "CustomRole",
	AssignableScopes: []string{"/"},
	Permissions:      []Permission{{Actions: []string{"Microsoft.OperationalInsights/workspaces/query/Tables.Custom/read"}}}}

func conditional(ra RoleAssignment, cond string) RoleAssignment {
	ra.Condition, ra.ConditionVersion = cond, ConditionVersion
	return ra
}

func TestTableAccess(t *testing.T) {
	roles := []RoleDefinition{granularReader, workspaceQuerier, legacyReader, customTablesReader}
	heartbeatOnly := "((" + dataGuard + ") OR (" + tableName + " StringEquals 'Heartbeat'))"
	rowsA := "((" + dataGuard + ") OR (" + tableName + " StringEquals 'Heartbeat' AND " + recordCol + "Computer] StringEquals 'a'))"
	allButSecret := "((" + dataGuard + ") OR (" + tableName + " ForAnyOfAllValues:StringNotEquals {'SigninLogs', 'SecurityEvent'}))"
	rowsAnyTable := "((" + dataGuard + ") OR (" + recordCol + "Computer] StringEquals 'b'))"
	expired := assign("x1", Scope(ws), RoleReader, "expired")
	expired.Expires = time.Unix(1_600_000_000, 0)
	future := assign("x2", Scope(ws), RoleReader, "future")
	future.Expires = time.Unix(1_900_000_000, 0)
	store := newMapStore(
		assign("r1", Scope(rg), RoleReader, "reader"),
		assign("r2", Scope(ws), RoleLogAnalyticsReader, "lareader"),
		assign("r3", Scope(sub), RoleOwner, "owner"),
		assign("r4", Scope(ws), RoleMonitoringMetricsPublisher, "publisher"),
		conditional(assign("c1", Scope(ws), granularReader.ID, "hb"), heartbeatOnly),
		conditional(assign("c2", Scope(ws), granularReader.ID, "rows"), rowsA),
		conditional(assign("c3", Scope(ws), granularReader.ID, "permissive"), allButSecret),
		conditional(assign("c4", Scope(ws), granularReader.ID, "two"), rowsA),
		conditional(assign("c5", Scope(ws), granularReader.ID, "two"), rowsAnyTable),
		conditional(assign("c6", Scope(ws), granularReader.ID, "mixed"), rowsA),
		assign("c7", Scope(table), RoleReader, "mixed"),
		assign("d1", Scope(ws), workspaceQuerier.ID, "dual"),
		assign("d2", Scope(table), RoleReader, "dual"),
		assign("l1", Scope(ws), legacyReader.ID, "legacy"),
		assign("l2", Scope(ws), customTablesReader.ID, "custom"),
		assign("g1", Scope(ws), granularReader.ID, "granular"),
		assign("s1", Scope(rg2+"/providers/Microsoft.OperationalInsights/workspaces/other"), RoleReader, "elsewhere"),
		assign("s2", Scope(ws+"/tables/Syslog/x"), RoleReader, "belowtable"),
		conditional(assign("b1", Scope(ws), granularReader.ID, "broken"), "this is not a condition"),
		expired, future,
	)
	a := New(Options{Store: store, Roles: roles, Now: func() time.Time { return time.Unix(1_700_000_000, 0) }})
	ctx := context.Background()
	type want struct {
		allowed bool
		conds   string
	}
	tables := []string{"Heartbeat", "Syslog", "SecurityEvent", "SigninLogs", "App_CL"}
	all := map[string]want{}
	for _, tb := range tables {
		all[tb] = want{true, ""}
	}
	tests := []struct {
		principal string
		want      map[string]want
	}{
		{"reader", all},
		{"lareader", all},
		{"owner", all},
		{"publisher", map[string]want{}},
		{"nobody", map[string]want{}},
		{"hb", map[string]want{"Heartbeat": {true, ""}}},
		{"rows", map[string]want{"Heartbeat": {true, `Computer == "a"`}}},
		{"permissive", map[string]want{"Heartbeat": {true, ""}, "Syslog": {true, ""}, "App_CL": {true, ""}}},
		{"two", map[string]want{"Heartbeat": {true, `(Computer == "a") or (Computer == "b")`}, "Syslog": {true, `Computer == "b"`},
			"SecurityEvent": {true, `Computer == "b"`}, "SigninLogs": {true, `Computer == "b"`}, "App_CL": {true, `Computer == "b"`}}},
		{"mixed", map[string]want{"Heartbeat": {true, ""}}},
		{"dual", map[string]want{"Heartbeat": {true, ""}}},
		{"legacy", map[string]want{"Heartbeat": {true, ""}, "Syslog": {true, ""}, "SigninLogs": {true, ""}, "App_CL": {true, ""}}},
		{"custom", map[string]want{"App_CL": {true, ""}}},
		{"granular", all},
		{"elsewhere", map[string]want{}},
		{"belowtable", map[string]want{}},
		{"broken", map[string]want{}},
		{"expired", map[string]want{}},
		{"future", all},
	}
	for _, tt := range tests {
		t.Run(tt.principal, func(t *testing.T) {
			ta, err := a.TableAccess(ctx, identity.Principal{ObjectID: tt.principal}, Scope(strings.ToUpper(ws)))
			if err != nil {
				t.Fatal(err)
			}
			for _, tb := range tables {
				d := ta.Table(tb, nil)
				w := tt.want[tb]
				got := strings.Join(d.RowConditions, " && ")
				if d.Allowed != w.allowed || got != w.conds {
					t.Errorf("%s: got (%v, %q); want (%v, %q)", tb, d.Allowed, got, w.allowed, w.conds)
				}
			}
			allowed, denied := ta.Filter(tables)
			if len(allowed)+len(denied) != len(tables) {
				t.Errorf("Filter lost tables: %v %v", allowed, denied)
			}
		})
	}

	// A condition on a column the table lacks denies, when the schema is known.
	ta, err := a.TableAccess(ctx, identity.Principal{ObjectID: "rows"}, Scope(ws))
	if err != nil {
		t.Fatal(err)
	}
	if d := ta.Table("Heartbeat", []string{"TimeGenerated", "Category"}); d.Allowed {
		t.Errorf("condition on a missing column: got %+v; want deny", d)
	}
	if d := ta.Table("Heartbeat", []string{"TimeGenerated", "Computer"}); !d.Allowed || len(d.RowConditions) != 1 {
		t.Errorf("condition on a present column: got %+v; want allowed with a condition", d)
	}
	rc := ta.RowConditions(map[string][]string{"Heartbeat": nil, "Syslog": nil})
	if fmt.Sprint(rc) != `map[Heartbeat:[Computer == "a"]]` {
		t.Errorf("RowConditions = %v", rc)
	}

	if _, err := a.TableAccess(ctx, identity.Principal{ObjectID: "reader"}, "/"); err == nil {
		t.Error("TableAccess at the root scope: want an error")
	}
	if _, err := a.TableAccess(ctx, identity.Principal{}, Scope(ws)); err == nil {
		t.Error("TableAccess without an object ID: want an error")
	}
}

func TestAuthorizeConditions(t *testing.T) {
	rowsA := "((" + dataGuard + ") OR (" + tableName + " StringEquals 'Heartbeat' AND " + recordCol + "Computer] StringEquals 'a'))"
	noGuard := tableName + " StringEquals 'Heartbeat'"
	store := newMapStore(
		conditional(assign("c1", Scope(ws), granularReader.ID, "rows"), rowsA),
		conditional(assign("c2", Scope(ws), granularReader.ID, "noguard"), noGuard),
		conditional(assign("c3", Scope(ws), RoleReader, "readerif"), "ActionMatches{'Microsoft.OperationalInsights/workspaces/read'}"),
	)
	a := New(Options{Store: store, Roles: []RoleDefinition{granularReader}})
	ctx := context.Background()
	check := func(principal string, act Action, scope Scope, allowed bool, conds string) {
		t.Helper()
		d, err := a.Authorize(ctx, identity.Principal{ObjectID: principal}, act, scope)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed != allowed || fmt.Sprint(d.RowConditions) != conds {
			t.Errorf("%s %s at %s: got (%v, %v); want (%v, %s)", principal, act, scope, d.Allowed, d.RowConditions, allowed, conds)
		}
	}
	check("rows", ActionQueryRead, Scope(ws), true, "map[]")
	check("rows", ActionWorkspaceRead, Scope(ws), true, "map[]")
	check("rows", ActionTableDataRead, Scope(ws), true, `map[*:[(Type == "Heartbeat" and Computer == "a")]]`)
	check("rows", ActionTableDataRead, Scope(table), true, `map[Heartbeat:[Computer == "a"]]`)
	check("rows", ActionTableDataRead, Scope(ws+"/tables/Syslog"), false, "map[]")
	check("noguard", ActionQueryRead, Scope(ws), false, "map[]")
	check("noguard", ActionTableDataRead, Scope(table), true, "map[]")
	check("readerif", ActionWorkspaceRead, Scope(ws), true, "map[]")
	check("readerif", ActionTableRead, Scope(table), false, "map[]")
}

func TestAuthorizeExpiry(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	ra := assign("e1", Scope(ws), RoleReader, alice)
	ra.Expires = now.Add(time.Minute)
	a := New(Options{Store: newMapStore(ra), CacheTTL: time.Hour, Now: func() time.Time { return now }})
	ctx := context.Background()
	d, err := a.Authorize(ctx, identity.Principal{ObjectID: alice}, ActionWorkspaceRead, Scope(ws))
	if err != nil || !d.Allowed {
		t.Fatalf("before expiry: (%v, %v); want allowed", d.Allowed, err)
	}
	now = now.Add(time.Minute) // cached assignments still carry the expiry
	d, err = a.Authorize(ctx, identity.Principal{ObjectID: alice}, ActionWorkspaceRead, Scope(ws))
	if err != nil || d.Allowed {
		t.Fatalf("at expiry: (%v, %v); want deny", d.Allowed, err)
	}
}

// roleMapStore adds RoleStore and DetailedAssignmentStore to mapStore.
type roleMapStore struct {
	*mapStore
	roles    []RoleDefinition
	roleErr  error
	detailed int
}

func (s *roleMapStore) CustomRoleDefinitions(context.Context) ([]RoleDefinition, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]RoleDefinition(nil), s.roles...), s.roleErr
}

func (s *roleMapStore) RoleAssignmentDetailsFor(ctx context.Context, ids []string) ([]RoleAssignment, error) {
	s.mu.Lock()
	s.detailed++
	s.mu.Unlock()
	return s.RoleAssignmentsFor(ctx, ids)
}

func TestCustomRolesFromStore(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	st := &roleMapStore{mapStore: newMapStore(assign("c", Scope(ws), legacyReader.ID, alice),
		assign("o", Scope(ws), RoleOwner, bob))}
	a := New(Options{Store: st, CacheTTL: time.Second, Now: func() time.Time { return now }})
	ctx := context.Background()
	p := identity.Principal{ObjectID: alice}
	check := func(want bool) {
		t.Helper()
		d, err := a.Authorize(ctx, p, ActionWorkspaceRead, Scope(ws))
		if err != nil || d.Allowed != want {
			t.Fatalf("got (%v, %v); want %v", d.Allowed, err, want)
		}
	}
	check(false) // role not defined yet
	st.mu.Lock()
	st.roles = []RoleDefinition{legacyReader, {ID: RoleOwner, Name: "Fake owner", Permissions: []Permission{{Actions: []string{"Nothing/at/all"}}}}}
	st.mu.Unlock()
	check(false) // cached
	now = now.Add(time.Second)
	check(true) // reloaded within the TTL
	if d, _ := a.Authorize(ctx, identity.Principal{ObjectID: bob}, ActionWorkspaceDelete, Scope(ws)); !d.Allowed {
		t.Fatal("a stored role replaced the built-in Owner")
	}
	if r, ok, err := a.LookupRole(ctx, legacyReader.ID); err != nil || !ok || r.Name != legacyReader.Name {
		t.Fatalf("LookupRole = %v %v %v", r, ok, err)
	}
	if st.detailed == 0 {
		t.Fatal("the detailed assignment store was not used")
	}
	st.mu.Lock()
	st.roles, st.roleErr = nil, fmt.Errorf("disk on fire")
	st.mu.Unlock()
	a.Invalidate()
	if d, err := a.Authorize(ctx, p, ActionWorkspaceRead, Scope(ws)); err == nil || d.Allowed {
		t.Fatalf("role store failure: (%v, %v); want deny with error", d.Allowed, err)
	}
	// Built-in roles keep working while the role store fails.
	if d, err := a.Authorize(ctx, identity.Principal{ObjectID: bob}, ActionWorkspaceDelete, Scope(ws)); err != nil || !d.Allowed {
		t.Fatalf("built-in role during role store failure: (%v, %v)", d.Allowed, err)
	}
}

func TestValidateRoleDefinition(t *testing.T) {
	ok := RoleDefinition{ID: "12345678-1234-4234-8234-123456789012", Name: "Ok", AssignableScopes: []string{"/subscriptions/x"},
		Permissions: []Permission{{Actions: []string{"Microsoft.OperationalInsights/workspaces/*/read", "*/read"}, DataActions: []string{"Microsoft.OperationalInsights/workspaces/tables/data/read"}}}}
	if err := ValidateRoleDefinition(ok); err != nil {
		t.Fatalf("valid role: %v", err)
	}
	bad := []func(d *RoleDefinition){
		func(d *RoleDefinition) { d.ID = "nope" },
		func(d *RoleDefinition) { d.Name = " " },
		func(d *RoleDefinition) { d.Name = "a\nb" },
		func(d *RoleDefinition) { d.Permissions = nil },
		func(d *RoleDefinition) { d.Permissions = append(d.Permissions, Permission{Actions: []string{"*"}}) },
		func(d *RoleDefinition) { d.Permissions = []Permission{{}} },
		func(d *RoleDefinition) { d.Permissions = []Permission{{Actions: []string{"has space/x"}}} },
		func(d *RoleDefinition) { d.Permissions = []Permission{{Actions: []string{"Microsoft.X//y"}}} },
		func(d *RoleDefinition) { d.Permissions = []Permission{{Actions: []string{"nowhere"}}} },
		func(d *RoleDefinition) { d.Permissions = []Permission{{DataActions: []string{"*"}}} },
		func(d *RoleDefinition) { d.AssignableScopes = nil },
		func(d *RoleDefinition) { d.AssignableScopes = []string{"subscriptions/x"} },
		func(d *RoleDefinition) { d.AssignableScopes = []string{"/subscriptions/../x"} },
	}
	for i, mutate := range bad {
		d := ok
		d.Permissions = append([]Permission(nil), ok.Permissions...)
		mutate(&d)
		if err := ValidateRoleDefinition(d); err == nil {
			t.Errorf("case %d: invalid role %+v accepted", i, d)
		}
	}
	if !ok.AssignableAt(Scope("/subscriptions/X/resourceGroups/rg")) || ok.AssignableAt("/subscriptions/y") || ok.AssignableAt("/") {
		t.Error("AssignableAt")
	}
}

func TestValidateAssignment(t *testing.T) {
	reader, _ := BuiltinRole(RoleReader)
	base := RoleAssignment{Name: "12345678-1234-4234-8234-123456789012", PrincipalID: "12345678-1234-4234-8234-000000000001", Scope: Scope(ws)}
	if err := ValidateAssignment(base, reader); err != nil {
		t.Fatal(err)
	}
	c := base
	c.Condition, c.ConditionVersion = tableName+" StringEquals 'Heartbeat'", "2.0"
	if err := ValidateAssignment(c, reader); err != nil {
		t.Fatal(err)
	}
	for i, mutate := range []func(r *RoleAssignment){
		func(r *RoleAssignment) { r.Name = "x" },
		func(r *RoleAssignment) { r.PrincipalID = "x" },
		func(r *RoleAssignment) { r.Scope = "nope" },
		func(r *RoleAssignment) { r.Condition = tableName + " StringEquals 'Heartbeat'" },
		func(r *RoleAssignment) { r.Condition, r.ConditionVersion = "garbage", "2.0" },
		func(r *RoleAssignment) { r.ConditionVersion = "1.0" },
	} {
		r := base
		mutate(&r)
		if err := ValidateAssignment(r, reader); err == nil {
			t.Errorf("case %d: invalid assignment accepted", i)
		}
	}
	narrow := legacyReader
	narrow.AssignableScopes = []string{rg2}
	if err := ValidateAssignment(base, narrow); err == nil {
		t.Error("role assigned outside its assignable scopes")
	}
}

// BenchmarkAuthorize10k measures Authorize for a principal holding 10,000
// role assignments (cache warm), and for one holding 1 among 10,000 stored.
func BenchmarkAuthorize10k(b *testing.B) {
	var as []RoleAssignment
	for i := 0; i < 10000; i++ {
		scope := fmt.Sprintf("%s/resourceGroups/rg-%05d/providers/Microsoft.OperationalInsights/workspaces/ws", sub, i)
		as = append(as, assign(fmt.Sprintf("m%05d", i), Scope(scope), RoleReader, "many"))
		as = append(as, assign(fmt.Sprintf("o%05d", i), Scope(scope), RoleReader, fmt.Sprintf("other-%d", i)))
	}
	as = append(as, assign("one", Scope(ws), RoleReader, alice))
	a := New(Options{Store: newMapStore(as...), CacheTTL: time.Hour})
	ctx := context.Background()
	target := Scope(fmt.Sprintf("%s/resourceGroups/rg-%05d/providers/Microsoft.OperationalInsights/workspaces/ws/tables/T", sub, 9999))
	b.Run("principal-with-10k", func(b *testing.B) {
		p := identity.Principal{ObjectID: "many"}
		b.ReportAllocs()
		for b.Loop() {
			if d, err := a.Authorize(ctx, p, ActionTableRead, target); err != nil || !d.Allowed {
				b.Fatal(d, err)
			}
		}
	})
	b.Run("one-of-20k-stored", func(b *testing.B) {
		p := identity.Principal{ObjectID: alice}
		b.ReportAllocs()
		for b.Loop() {
			if d, err := a.Authorize(ctx, p, ActionTableRead, Scope(table)); err != nil || !d.Allowed {
				b.Fatal(d, err)
			}
		}
	})
}
