package query_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"custos/internal/arm"
	"custos/internal/catalog"
	"custos/internal/engine"
	"custos/internal/query"
	"custos/internal/rbac"
	"custos/internal/stacktest"
	"custos/internal/store"
)

// langEnv is Custos with two workspaces, the query API and the savedSearches
// ARM API, over HTTPS on loopback with real tokens, RBAC, catalog and store.
type langEnv struct {
	*env
	st    *store.DB
	other catalog.Workspace
}

func newLangEnv(t *testing.T) *langEnv {
	t.Helper()
	ctx := context.Background()
	base := stacktest.Open(t)
	cat, boot, st := base.Cat, base.Boot, base.Store
	sub, rg := boot.Subscription.ID, boot.ResourceGroup.Name
	other, _, err := cat.PutWorkspace(ctx, catalog.Workspace{SubscriptionID: sub, ResourceGroup: rg, Name: "second", Location: "local"},
		catalog.Precondition{}, catalog.Actor{ID: "test"})
	if err != nil {
		t.Fatal(err)
	}
	cols := []catalog.Column{{Name: "TimeGenerated", Type: store.TypeDatetime}, {Name: "Computer", Type: store.TypeString}, {Name: "Count", Type: store.TypeLong}}
	for _, w := range []string{boot.Workspace.Name, other.Name} {
		if _, _, err := cat.PutTable(ctx, sub, rg, w, catalog.TableSpec{Name: "App_CL", Columns: cols}, catalog.Precondition{}, catalog.Actor{ID: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	base.EnsureTables(t)
	e := &langEnv{env: &env{t: t, cat: cat, boot: boot, ws: boot.Workspace.CustomerID, tenant: boot.Tenant.ID}, st: st, other: other}
	e.append(boot.Workspace.CustomerID, "web-1", 1, "web-2", 2)
	e.append(other.CustomerID, "far-1", 10)

	srv, mux, ts := base.Serve(t)
	e.srv = srv
	sp, secret, err := ts.CreateServicePrincipal(ctx, boot.Tenant.ID, "language tester")
	if err != nil {
		t.Fatal(err)
	}
	e.objID = sp.ObjectID
	e.assign(boot.Workspace.ID(), rbac.RoleLogAnalyticsContributor, "22222222-2222-4222-8222-222222222222")
	authz := rbac.New(rbac.Options{Store: cat, CacheTTL: -1})
	q := query.New(query.Options{
		Workspaces:  query.CatalogWorkspaces{C: cat, Content: st},
		Executor:    query.EngineExecutor{Engine: engine.New(engine.Options{}), Source: st},
		Authorizer:  authz,
		TableAccess: authz,
	})
	ss := arm.NewSavedSearches(arm.SavedSearchOptions{Catalog: cat, Content: st})
	for _, rt := range append(q.Routes(), ss.Routes()...) {
		mux.HandleFunc(rt.Method+" "+rt.Pattern, stacktest.ServeRoute(ts, authz, rt))
	}
	mux.Handle("/", ts.Handler())
	e.cred, err = azidentity.NewClientSecretCredential(boot.Tenant.ID, sp.AppID, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: e.clientOptions(nil), DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// append stores rows (computer, count pairs) in App_CL of a workspace.
func (e *langEnv) append(ws string, pairs ...any) {
	e.t.Helper()
	ctx := context.Background()
	n := len(pairs) / 2
	b := &store.Batch{Schema: store.Schema{{Name: "Computer", Type: store.TypeString}, {Name: "Count", Type: store.TypeLong}}, Len: n,
		Cols: []*store.Vector{{Type: store.TypeString}, {Type: store.TypeLong}}}
	for i := 0; i < n; i++ {
		b.Cols[0].Str = append(b.Cols[0].Str, pairs[2*i].(string))
		b.Cols[1].Int = append(b.Cols[1].Int, int64(pairs[2*i+1].(int)))
	}
	app, err := e.st.Appender(ctx, store.TableRef{WorkspaceID: ws, Table: "App_CL"})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := app.Append(b); err != nil {
		e.t.Fatal(err)
	}
	if err := app.Commit(ctx); err != nil {
		e.t.Fatal(err)
	}
}

// arm sends an ARM request with a management token.
func (e *langEnv) arm(method, path, body string) (int, map[string]any) {
	e.t.Helper()
	tok, err := e.cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}})
	if err != nil {
		e.t.Fatal(err)
	}
	// The server matches ARM paths case-insensitively; this mux does not.
	path = strings.Replace(path, "/resourceGroups/", "/resourcegroups/", 1)
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(data) > 0 {
		if err := json.Unmarshal(data, &m); err != nil {
			e.t.Fatalf("%s %s: response is not JSON: %q", method, path, data)
		}
	}
	return resp.StatusCode, m
}

// rows returns the primary table's rows of a query response as JSON text.
func rowsOf(t *testing.T, m map[string]any) string {
	t.Helper()
	tables, _ := m["tables"].([]any)
	if len(tables) == 0 {
		t.Fatalf("no tables in %v", m)
	}
	b, _ := json.Marshal(tables[0].(map[string]any)["rows"])
	return string(b)
}

func errorCode(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	inner, _ := e["innererror"].(map[string]any)
	code, _ := e["code"].(string)
	if ic, ok := inner["code"].(string); ok {
		return code + "/" + ic
	}
	return code
}

func TestLanguageOnTheWire(t *testing.T) {
	e := newLangEnv(t)
	path := "/v1/workspaces/" + e.ws + "/query"
	post := func(body any, hdr map[string]string) (*http.Response, map[string]any) {
		b, _ := json.Marshal(body)
		return e.raw("POST", path, string(b), hdr)
	}

	t.Run("parameters", func(t *testing.T) {
		q := `declare query_parameters(who:string = "web-1", min:long = 0); App_CL | where Computer == who and Count >= min | project Count`
		resp, m := post(map[string]any{"query": q}, nil)
		if resp.StatusCode != 200 || rowsOf(t, m) != `[[1]]` {
			t.Fatalf("defaults: got %d %v; want [[1]]", resp.StatusCode, m)
		}
		resp, m = post(map[string]any{"query": q, "parameters": map[string]any{"who": "web-2", "min": 2}}, nil)
		if resp.StatusCode != 200 || rowsOf(t, m) != `[[2]]` {
			t.Fatalf("parameters: got %d %v; want [[2]]", resp.StatusCode, m)
		}
		resp, m = post(map[string]any{"query": q, "parameters": map[string]any{"min": "lots"}}, nil)
		if resp.StatusCode != 400 || errorCode(m) != "BadArgumentError/SemanticError" {
			t.Fatalf("bad parameter: got %d %v; want 400 SemanticError", resp.StatusCode, m)
		}
	})

	t.Run("render", func(t *testing.T) {
		q := `App_CL | summarize n = count() by Computer | render piechart with (title="Hosts")`
		_, m := post(map[string]any{"query": q}, nil)
		if _, ok := m["render"]; ok {
			t.Fatalf("render without Prefer: %v", m)
		}
		_, m = post(map[string]any{"query": q}, map[string]string{"Prefer": "include-render=true"})
		r, _ := m["render"].(map[string]any)
		if r["visualization"] != "piechart" || r["title"] != "Hosts" {
			t.Fatalf("render = %v; want piechart titled Hosts", m["render"])
		}
	})

	t.Run("cross-workspace without access", func(t *testing.T) {
		resp, m := post(map[string]any{"query": `workspace("second").App_CL | count`}, nil)
		if resp.StatusCode != 400 || !strings.Contains(fmt.Sprint(m), "was not found or you do not have access") {
			t.Fatalf("got %d %v; want 400 not found or no access", resp.StatusCode, m)
		}
		resp, m = post(map[string]any{"query": `App_CL | count`, "workspaces": []string{e.other.CustomerID}}, nil)
		if resp.StatusCode != 400 || errorCode(m) != "BadArgumentError/WorkspaceNotFoundError" {
			t.Fatalf("workspaces member: got %d %v; want 400 WorkspaceNotFoundError", resp.StatusCode, m)
		}
	})

	t.Run("cross-workspace with access", func(t *testing.T) {
		e.assign(e.other.ID(), rbac.RoleLogAnalyticsReader, "33333333-3333-4333-8333-333333333333")
		for _, ref := range []string{"second", e.other.CustomerID, e.other.ID()} {
			resp, m := post(map[string]any{"query": `workspace("` + ref + `").App_CL | project Computer`}, nil)
			if resp.StatusCode != 200 || rowsOf(t, m) != `[["far-1"]]` {
				t.Fatalf("workspace(%q): got %d %v; want far-1", ref, resp.StatusCode, m)
			}
		}
		resp, m := post(map[string]any{"query": `union App_CL, workspace("second").App_CL | summarize sum(Count)`}, nil)
		if resp.StatusCode != 200 || rowsOf(t, m) != `[[13]]` {
			t.Fatalf("union: got %d %v; want 13", resp.StatusCode, m)
		}
		resp, m = post(map[string]any{"query": `App_CL | summarize sum(Count)`, "workspaces": []string{"second"}}, nil)
		if resp.StatusCode != 200 || rowsOf(t, m) != `[[13]]` {
			t.Fatalf("workspaces member: got %d %v; want 13", resp.StatusCode, m)
		}
	})

	t.Run("workspace functions", func(t *testing.T) {
		base := e.boot.Workspace.ID() + "/savedSearches/"
		put := `{"properties":{"category":"ops","displayName":"Busy hosts","query":"App_CL | where Count >= minCount | project Computer","functionAlias":"BusyHosts","functionParameters":"minCount:long = 2","tags":[{"name":"team","value":"ops"}]}}`
		code, m := e.arm("PUT", base+"busy?api-version=2020-08-01", put)
		if code != 201 || m["etag"] == "" {
			t.Fatalf("PUT: got %d %v; want 201 with an etag", code, m)
		}
		etag := m["etag"].(string)
		code, m = e.arm("GET", base+"busy?api-version=2020-08-01", "")
		props, _ := m["properties"].(map[string]any)
		if code != 200 || props["query"] != "App_CL | where Count >= minCount | project Computer" || props["functionAlias"] != "BusyHosts" {
			t.Fatalf("GET: got %d %v", code, m)
		}
		code, m = e.arm("GET", e.boot.Workspace.ID()+"/savedSearches?api-version=2020-08-01", "")
		if v, _ := m["value"].([]any); code != 200 || len(v) != 1 {
			t.Fatalf("list: got %d %v; want one", code, m)
		}
		// The query text is not stored in plaintext in the catalog.
		ss, err := e.cat.SavedSearch(context.Background(), e.boot.Workspace.ID(), "busy")
		if err != nil || strings.Contains(string(ss.QuerySealed), "minCount") {
			t.Fatalf("stored query is not sealed: %v %q", err, ss.QuerySealed)
		}
		resp, qm := post(map[string]any{"query": `BusyHosts() | order by Computer asc`}, nil)
		if resp.StatusCode != 200 || rowsOf(t, qm) != `[["web-2"]]` {
			t.Fatalf("BusyHosts(): got %d %v; want web-2", resp.StatusCode, qm)
		}
		resp, md := e.raw("GET", "/v1/workspaces/"+e.ws+"/metadata", "", nil)
		if fs, _ := md["functions"].([]any); resp.StatusCode != 200 || len(fs) != 1 || fs[0].(map[string]any)["name"] != "BusyHosts" {
			t.Fatalf("metadata functions: got %d %v", resp.StatusCode, md["functions"])
		}
		resp, qm = post(map[string]any{"query": `BusyHosts(1) | count`}, nil)
		if resp.StatusCode != 200 || rowsOf(t, qm) != `[[2]]` {
			t.Fatalf("BusyHosts(1): got %d %v; want 2", resp.StatusCode, qm)
		}
		// A stale etag in the body is refused; a duplicate alias too.
		code, m = e.arm("PUT", base+"busy?api-version=2020-08-01", strings.Replace(put, `{"properties"`, `{"etag":"W/\"stale\"","properties"`, 1))
		if code != 409 {
			t.Fatalf("stale etag: got %d %v; want 409", code, m)
		}
		code, m = e.arm("PUT", base+"busy?api-version=2020-08-01", strings.Replace(put, `{"properties"`, `{"etag":`+fmt.Sprintf("%q", etag)+`,"properties"`, 1))
		if code != 200 {
			t.Fatalf("current etag: got %d %v; want 200", code, m)
		}
		code, m = e.arm("PUT", base+"other?api-version=2020-08-01", put)
		if code != 409 {
			t.Fatalf("duplicate alias: got %d %v; want 409", code, m)
		}
		code, m = e.arm("PUT", base+"bad?api-version=2020-08-01", `{"properties":{"category":"c","displayName":"d","query":"App_CL | where ("}}`)
		if code != 400 {
			t.Fatalf("unparsable query: got %d %v; want 400", code, m)
		}
		code, _ = e.arm("DELETE", base+"busy?api-version=2020-08-01", "")
		if code != 200 {
			t.Fatalf("DELETE: got %d; want 200", code)
		}
		resp, qm = post(map[string]any{"query": `BusyHosts()`}, nil)
		if resp.StatusCode != 400 {
			t.Fatalf("deleted function: got %d %v; want 400", resp.StatusCode, qm)
		}
	})
}
