package query_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"custos/internal/catalog"
	"custos/internal/engine"
	"custos/internal/identity"
	"custos/internal/query"
	"custos/internal/rbac"
	"custos/internal/stacktest"
	"custos/internal/store"
)

// resEnv has two workspaces holding Heartbeat records of three machines:
// "open" uses resource permissions (enableLogAccessUsingOnlyResourcePermissions),
// "strict" requires workspace permissions.
type resEnv struct {
	t      *testing.T
	cat    *catalog.DB
	ts     *identity.TokenService
	srv    *httptest.Server
	boot   catalog.Bootstrap
	rg     string // resource group ID
	open   catalog.Workspace
	strict catalog.Workspace
	n      int // role assignments made
}

const machineType = "/providers/Microsoft.HybridCompute/machines/"

func newResEnv(t *testing.T) *resEnv {
	t.Helper()
	ctx := context.Background()
	base := stacktest.Open(t)
	cat, boot, st := base.Cat, base.Boot, base.Store
	e := &resEnv{t: t, cat: cat, boot: boot, rg: boot.ResourceGroup.ID()}
	put := func(name string, resourcePerms bool) catalog.Workspace {
		w, _, err := cat.PutWorkspace(ctx, catalog.Workspace{SubscriptionID: boot.Subscription.ID, ResourceGroup: boot.ResourceGroup.Name,
			Name: name, Location: "local", EnableLogAccessUsingOnlyResourcePermissions: resourcePerms}, catalog.Precondition{}, catalog.Actor{ID: "t"})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	e.open, e.strict = put("open", true), put("strict", false)
	base.EnsureTables(t)
	// Heartbeat rows: m1 and m2 in "open", m1 and m3 in "strict", plus
	// a record of m10 (a prefix sibling of m1) and a Syslog row of m1.
	write := func(ws catalog.Workspace, table string, rows [][2]string) {
		app, err := st.Appender(ctx, store.TableRef{WorkspaceID: ws.CustomerID, Table: table})
		if err != nil {
			t.Fatal(err)
		}
		b := &store.Batch{Len: len(rows), Schema: store.Schema{{Name: "TimeGenerated", Type: store.TypeDatetime},
			{Name: "Computer", Type: store.TypeString}, {Name: "_ResourceId", Type: store.TypeString}},
			Cols: []*store.Vector{{Type: store.TypeDatetime}, {Type: store.TypeString}, {Type: store.TypeString}}}
		for i, r := range rows {
			b.Cols[0].Int = append(b.Cols[0].Int, store.TicksFromTime(time.Date(2024, 5, 1, 10, i, 0, 0, time.UTC)))
			b.Cols[1].Str = append(b.Cols[1].Str, r[0])
			b.Cols[2].Str = append(b.Cols[2].Str, r[1])
		}
		if err := app.Append(b); err != nil {
			t.Fatal(err)
		}
		if err := app.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	m := func(n string) string { return e.rg + machineType + n }
	write(e.open, "Heartbeat", [][2]string{{"m1", m("m1")}, {"m2", m("m2")}, {"m10", m("m10")}})
	write(e.strict, "Heartbeat", [][2]string{{"m1", strings.ToUpper(m("m1"))}, {"m3", m("m3")}})
	write(e.open, "Syslog", [][2]string{{"m1", m("m1")}})

	var mux *http.ServeMux
	e.srv, mux, e.ts = base.Serve(t)
	authz := rbac.New(rbac.Options{Store: cat, CacheTTL: -1})
	q := query.New(query.Options{
		Workspaces:  query.CatalogWorkspaces{C: cat},
		Executor:    query.EngineExecutor{Engine: engine.New(engine.Options{}), Source: st},
		Authorizer:  authz,
		TableAccess: authz,
	})
	for _, rt := range append(q.Routes(), q.ResourceRoutes()...) {
		// The server's router matches literal segments case-insensitively.
		pattern := strings.Replace(rt.Pattern, "resourceGroups", "resourcegroups", 1)
		mux.HandleFunc(rt.Method+" "+pattern, stacktest.ServeRoute(e.ts, authz, rt))
	}
	return e
}

// principal returns a query token for a new service principal with the
// given role assignments (scope → role; a "|condition" suffix on the role
// adds an ABAC condition).
func (e *resEnv) principal(name string, grants map[string]string) string {
	e.t.Helper()
	ctx := context.Background()
	sp, _, err := e.ts.CreateServicePrincipal(ctx, e.boot.Tenant.ID, name)
	if err != nil {
		e.t.Fatal(err)
	}
	for scope, role := range grants {
		e.n++
		i := e.n
		cond := ""
		if r, c, ok := strings.Cut(role, "|"); ok {
			role, cond = r, c
		}
		ra := fmt.Sprintf("5e000000-0000-4000-8000-%012d", i)
		if err := e.cat.CreateRoleAssignment(ctx, rbac.RoleAssignment{ID: scope + "/providers/Microsoft.Authorization/roleAssignments/" + ra,
			Name: ra, Scope: rbac.Scope(scope), RoleDefinitionID: role, PrincipalID: sp.ObjectID, PrincipalType: "ServicePrincipal",
			Condition: cond, ConditionVersion: map[bool]string{true: "2.0"}[cond != ""]}); err != nil {
			e.t.Fatal(err)
		}
	}
	tok, _, err := e.ts.IssueToken(ctx, sp, identity.AudienceQuery)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// query runs a resource-context query and returns the status, the sorted
// values of the first column, and the raw body.
func (e *resEnv) query(tok, resource, kql string) (int, []string, string) {
	e.t.Helper()
	body, _ := json.Marshal(map[string]string{"query": kql, "timespan": "2024-05-01T00:00:00Z/2024-05-02T00:00:00Z"})
	path := strings.Replace(resource, "/resourceGroups/", "/resourcegroups/", 1)
	req, _ := http.NewRequest("POST", e.srv.URL+"/v1"+path+"/query", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Prefer", "include-permissions=true")
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out struct {
		Tables []struct {
			Rows [][]any `json:"rows"`
		} `json:"tables"`
	}
	_ = json.Unmarshal(raw, &out)
	var vals []string
	if len(out.Tables) > 0 {
		for _, r := range out.Tables[0].Rows {
			vals = append(vals, fmt.Sprint(r[0]))
		}
	}
	sort.Strings(vals)
	return res.StatusCode, vals, string(raw)
}

func TestResourceContextQuery(t *testing.T) {
	e := newResEnv(t)
	m1 := e.rg + machineType + "m1"
	const hb = "Heartbeat | project Computer"

	// Reader on the machine: resource permissions reach "open" only
	// ("strict" requires workspace permissions). m10 is not under m1.
	reader := e.principal("m1-reader", map[string]string{m1: rbac.RoleReader})
	st, vals, raw := e.query(reader, m1, hb)
	if st != 200 || strings.Join(vals, ",") != "m1" {
		t.Fatalf("Reader on m1: %d %v %s", st, vals, raw)
	}
	// "strict" requires workspace permissions the Reader on m1 lacks.
	if !strings.Contains(raw, `"resourceId":"`+e.open.ID()+`"`) || strings.Contains(raw, e.strict.ID()) {
		t.Fatalf("permissions section: %s", raw)
	}
	// union *, search and a join cannot reach other records.
	for _, q := range []string{"union * | project Computer", "search \"m\" | project Computer",
		"Heartbeat | join kind=inner (Syslog) on Computer | project Computer", "Heartbeat | where _ResourceId != '' | project Computer"} {
		st, vals, raw := e.query(reader, m1, q)
		for _, v := range vals {
			if v != "m1" {
				t.Fatalf("%q returned %v: %s", q, vals, raw)
			}
		}
		if st != 200 {
			t.Fatalf("%q: %d %s", q, st, raw)
		}
	}
	if st, _, raw := e.query(reader, m1, `workspace("strict").Heartbeat | project Computer`); st == 200 {
		t.Fatalf("workspace() in resource context: %s", raw)
	}
	// Not on a sibling machine, nor on the resource group.
	if st, _, _ := e.query(reader, e.rg+machineType+"m2", hb); st != 403 {
		t.Fatalf("Reader on m1 queried m2: %d", st)
	}
	if st, _, _ := e.query(reader, e.rg, hb); st != 403 {
		t.Fatalf("Reader on m1 queried the resource group: %d", st)
	}

	// A custom role with Microsoft.Insights/logs/Syslog/read only reads Syslog.
	ctx := context.Background()
	custom := rbac.RoleDefinition{ID: "5f000000-0000-4000-8000-000000000001", Name: "Syslog via resource",
		Permissions:      []rbac.Permission{{Actions: []string{"Microsoft.Insights/logs/query/read", "Microsoft.Insights/logs/Syslog/read"}}},
		AssignableScopes: []string{"/"}}
	if _, _, err := e.cat.PutRoleDefinition(ctx, custom, catalog.Actor{ID: "t"}); err != nil {
		t.Fatal(err)
	}
	sl := e.principal("syslog-only", map[string]string{m1: custom.ID})
	if st, vals, raw := e.query(sl, m1, "union * | project Type"); st != 200 || strings.Join(vals, ",") != "Syslog" {
		t.Fatalf("Syslog-only role: %d %v %s", st, vals, raw)
	}

	// Reader on the resource group and Log Analytics Reader on "strict":
	// both workspaces, every machine under the group (case-insensitive IDs).
	wide := e.principal("rg-reader", map[string]string{e.rg: rbac.RoleReader})
	if st, vals, raw := e.query(wide, m1, hb); st != 200 || strings.Join(vals, ",") != "m1,m1" {
		t.Fatalf("group Reader on m1: %d %v %s", st, vals, raw)
	}
	if st, vals, _ := e.query(wide, e.rg, hb); st != 200 || strings.Join(vals, ",") != "m1,m1,m10,m2,m3" {
		t.Fatalf("group Reader on the group: %d %v", st, vals)
	}

	// Workspace permissions with a row condition apply in "strict".
	cond := `((!(ActionMatches{'Microsoft.OperationalInsights/workspaces/tables/data/read'})) OR (@Resource[Microsoft.OperationalInsights/workspaces/tables/record:Computer] StringEquals 'm3'))`
	granularRole := rbac.RoleDefinition{ID: "5f000000-0000-4000-8000-000000000002", Name: "granular",
		Permissions: []rbac.Permission{{Actions: []string{"Microsoft.OperationalInsights/workspaces/read", "Microsoft.OperationalInsights/workspaces/query/read", "Microsoft.Insights/logs/query/read"},
			DataActions: []string{"Microsoft.OperationalInsights/workspaces/tables/data/read"}}}, AssignableScopes: []string{"/"}}
	if _, _, err := e.cat.PutRoleDefinition(ctx, granularRole, catalog.Actor{ID: "t"}); err != nil {
		t.Fatal(err)
	}
	rows := e.principal("rows", map[string]string{e.rg: granularRole.ID + "|" + cond})
	if st, vals, raw := e.query(rows, e.rg, hb); st != 200 || strings.Join(vals, ",") != "m3" {
		t.Fatalf("row condition in strict: %d %v %s", st, vals, raw)
	}

	// Malformed resource IDs are refused.
	if st, _, _ := e.query(wide, e.rg+machineType+"bad'name", hb); st != 400 && st != 403 {
		t.Fatalf("malformed resource: %d", st)
	}
}

// TestResourceRoutesMatrix: every resource-context route refuses anonymous
// callers, management-audience tokens and Readers of a sibling scope, and
// admits a Reader at its scope.
func TestResourceRoutesMatrix(t *testing.T) {
	e := newResEnv(t)
	mgmtSP, _, err := e.ts.CreateServicePrincipal(context.Background(), e.boot.Tenant.ID, "mgmt")
	if err != nil {
		t.Fatal(err)
	}
	mgmtTok, _, err := e.ts.IssueToken(context.Background(), mgmtSP, identity.AudienceManagement)
	if err != nil {
		t.Fatal(err)
	}
	sub := "/subscriptions/" + e.boot.Subscription.ID
	scopes := []struct{ scope, sibling string }{
		{sub, "/subscriptions/00000000-0000-4000-8000-0000000000ff"},
		{e.rg, sub + "/resourceGroups/other"},
		{e.rg + machineType + "m1", e.rg + machineType + "m9"},
		{e.rg + machineType + "m1/extensions/agent", e.rg + machineType + "m1/extensions/other"},
	}
	q := query.New(query.Options{Workspaces: query.CatalogWorkspaces{C: e.cat}, Executor: query.EngineExecutor{}})
	if n := len(q.ResourceRoutes()); n != 2*len(scopes) {
		t.Fatalf("%d resource routes; this matrix covers %d", n, 2*len(scopes))
	}
	for _, rt := range q.ResourceRoutes() {
		if rt.Audience != identity.AudienceQuery || rt.Action != query.ActionResourceQuery || rt.Scope == nil {
			t.Fatalf("route %s %s has no authorization rule", rt.Method, rt.Pattern)
		}
	}
	for i, sc := range scopes {
		right := e.principal(fmt.Sprintf("right-%d", i), map[string]string{sc.scope: rbac.RoleReader})
		sib := e.principal(fmt.Sprintf("sibling-%d", i), map[string]string{sc.sibling: rbac.RoleReader})
		for _, c := range []struct {
			who, tok string
			want     int
		}{{"anonymous", "", 401}, {"management audience", mgmtTok, 401}, {"Reader at a sibling", sib, 403}, {"Reader", right, 200}} {
			st, _, raw := e.query(c.tok, sc.scope, "print x = 1")
			if st != c.want {
				t.Errorf("%s as %s: got %d %s; want %d", sc.scope, c.who, st, raw, c.want)
			}
		}
	}
}
