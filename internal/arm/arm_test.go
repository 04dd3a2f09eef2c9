package arm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"custos/internal/api"
	"custos/internal/arm"
	"custos/internal/catalog"
	"custos/internal/crypt"
	"custos/internal/engine"
	"custos/internal/identity"
	"custos/internal/rbac"
	"custos/internal/store"
)

const (
	sub      = "11111111-2222-3333-4444-555555555555"
	callerID = "99999999-0000-4000-8000-000000000009"
	ver      = "?api-version=2022-10-01"
)

var (
	rgPath  = "/subscriptions/" + sub + "/resourcegroups/rg1"
	wsPath  = rgPath + "/providers/Microsoft.OperationalInsights/workspaces/ws-one"
	dcrPath = rgPath + "/providers/Microsoft.Insights/dataCollectionRules/dcr1"
)

// engineTransforms adapts the real engine's compiler to arm.TransformCompiler,
// as the server does.
type engineTransforms struct{}

func (engineTransforms) CompileTransform(src string, in store.Schema) (store.Schema, error) {
	t, err := engine.CompileTransform(src, in)
	if err != nil {
		return nil, err
	}
	return t.Output(), nil
}

type env struct {
	t   *testing.T
	cat *catalog.DB
	st  *store.DB
	srv *httptest.Server
	api *arm.API
}

// newEnv serves the routes over real HTTPS on loopback, with a real catalog
// and a real store in t.TempDir(). Authentication and authorization are the
// server's; here every request is made by one principal and allowed.
func newEnv(t *testing.T, transforms arm.TransformCompiler) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	cat, err := catalog.Open(ctx, catalog.Options{Path: filepath.Join(dir, "catalog.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	if _, err := cat.Bootstrap(ctx, catalog.BootstrapOptions{}); err != nil {
		t.Fatal(err)
	}
	key, err := crypt.OpenPlatformKey(filepath.Join(dir, "platform.key"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(store.Options{Dir: filepath.Join(dir, "data"), Keys: key, DisableBackground: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a := arm.New(arm.Options{Catalog: cat, Tables: st, Transforms: transforms, IngestionEndpoint: "https://custos.test:8443/"})
	mux := http.NewServeMux()
	for _, rt := range a.Routes() {
		// Most routes are management-plane; a few (a machine's
		// agentConfiguration) are called by agents with an ingestion token.
		// Every route must name its audience, action and scope.
		if rt.Audience == "" || rt.Action == "" || rt.Scope == nil {
			t.Fatalf("route %s %s lacks audience, action or scope", rt.Method, rt.Pattern)
		}
		p := identity.Principal{ObjectID: callerID, Kind: identity.KindServicePrincipal, Audience: rt.Audience}
		mux.HandleFunc(rt.Method+" "+rt.Pattern, func(w http.ResponseWriter, r *http.Request) {
			r = r.WithContext(api.WithPrincipal(r.Context(), p))
			rt.Handler(w, r, rbac.Decision{Allowed: true})
		})
	}
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	e := &env{t: t, cat: cat, st: st, srv: srv, api: a}
	e.must("PUT", "/subscriptions/"+sub+ver, `{"displayName":"test"}`, 201)
	e.must("PUT", rgPath+ver, `{"location":"westeurope"}`, 201)
	return e
}

type resp struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (e *env) do(method, path, body string, hdr ...string) resp {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	out := resp{status: res.StatusCode, header: res.Header, raw: string(b)}
	if len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, &out.body); err != nil {
			e.t.Fatalf("%s %s: response is not a JSON object: %s", method, path, b)
		}
	}
	return out
}

func (e *env) must(method, path, body string, status int, hdr ...string) resp {
	e.t.Helper()
	r := e.do(method, path, body, hdr...)
	if r.status != status {
		e.t.Fatalf("%s %s: got %d %s; want %d", method, path, r.status, r.raw, status)
	}
	return r
}

// fail asserts an Azure error envelope: status, code (also in
// x-ms-error-code) and a message fragment (in the message or a detail).
func (e *env) fail(method, path, body string, status int, code, fragment string, hdr ...string) {
	e.t.Helper()
	r := e.do(method, path, body, hdr...)
	if r.status != status {
		e.t.Fatalf("%s %s: got %d %s; want %d %s", method, path, r.status, r.raw, status, code)
	}
	errObj, _ := r.body["error"].(map[string]any)
	if errObj == nil || errObj["code"] != code || r.header.Get("x-ms-error-code") != code {
		e.t.Fatalf("%s %s: got error %s; want code %s", method, path, r.raw, code)
	}
	if !strings.Contains(r.raw, fragment) {
		e.t.Fatalf("%s %s: error %s lacks %q", method, path, r.raw, fragment)
	}
}

func get(m map[string]any, path string) any {
	var cur any = m
	for _, k := range strings.Split(path, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[k]
	}
	return cur
}

func (e *env) want(r resp, path string, v any) {
	e.t.Helper()
	got := get(r.body, path)
	if gb, _ := json.Marshal(got); string(gb) != mustJSON(v) {
		e.t.Errorf("%s = %s; want %s (body %s)", path, gb, mustJSON(v), r.raw)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func (e *env) storeSchema(customerID, table string) (store.Schema, error) {
	q, err := e.st.Querier(context.Background(), store.TableRef{WorkspaceID: customerID, Table: table}, store.AllTime)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	return q.Schema(), nil
}

func TestAPIVersion(t *testing.T) {
	e := newEnv(t, nil)
	e.fail("GET", rgPath, "", 400, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests.")
	e.fail("GET", rgPath+"?api-version=", "", 400, "MissingApiVersionParameter", "required")
	e.fail("GET", rgPath+"?api-version=latest", "", 400, "InvalidApiVersionParameter", "'latest' is invalid")
	e.must("GET", rgPath+"?api-version=2099-12-31-preview", "", 200)
}

func TestRouteScopes(t *testing.T) {
	e := newEnv(t, nil)
	found := 0
	for _, rt := range e.api.Routes() {
		if rt.Method == "PUT" && strings.HasSuffix(rt.Pattern, "{tableName}") {
			req := httptest.NewRequest("PUT", "/x", nil)
			req.SetPathValue("subscriptionId", sub)
			req.SetPathValue("resourceGroupName", "rg1")
			req.SetPathValue("workspaceName", "ws")
			req.SetPathValue("tableName", "T_CL")
			want := rbac.Scope("/subscriptions/" + sub + "/resourceGroups/rg1/providers/Microsoft.OperationalInsights/workspaces/ws/tables/T_CL")
			if got := rt.Scope(req); got != want || rt.Action != rbac.ActionTableWrite {
				t.Errorf("table PUT scope %q action %q", got, rt.Action)
			}
			found++
		}
	}
	if found != 1 {
		t.Fatalf("found %d table PUT routes", found)
	}
}

func TestSubscriptionsAndResourceGroups(t *testing.T) {
	e := newEnv(t, nil)
	r := e.must("PUT", "/subscriptions/"+sub+ver, `{"displayName":"renamed","tags":{"a":"b"}}`, 200)
	e.want(r, "id", "/subscriptions/"+sub)
	e.want(r, "subscriptionId", sub)
	e.want(r, "displayName", "renamed")
	e.want(r, "state", "Enabled")
	r = e.must("GET", "/subscriptions"+ver, "", 200)
	if v, _ := r.body["value"].([]any); len(v) != 2 {
		t.Errorf("subscriptions: %s", r.raw)
	}
	e.fail("PUT", "/subscriptions/not-a-guid"+ver, `{}`, 400, "InvalidSubscriptionId", "not-a-guid")
	e.fail("GET", "/subscriptions/22222222-2222-3333-4444-555555555555"+ver, "", 404, "SubscriptionNotFound", "could not be found")
	e.fail("PUT", "/subscriptions/"+sub+ver, `{"displayName":"x","bogus":1}`, 400, "InvalidRequestContent", "bogus")

	r = e.must("GET", "/subscriptions/"+strings.ToUpper(sub)+"/resourcegroups/RG1"+ver, "", 200)
	e.want(r, "id", "/subscriptions/"+sub+"/resourceGroups/rg1")
	e.want(r, "name", "rg1")
	e.want(r, "type", "Microsoft.Resources/resourceGroups")
	e.want(r, "location", "westeurope")
	e.want(r, "properties.provisioningState", "Succeeded")
	e.must("PUT", rgPath+ver, `{"location":"westeurope","tags":{"k":"v"}}`, 200)
	e.fail("PUT", rgPath+ver, `{"location":"eastus"}`, 409, "InvalidResourceGroupLocation", "already exists in location 'westeurope'")
	e.fail("PUT", "/subscriptions/"+sub+"/resourcegroups/rg2"+ver, `{}`, 400, "LocationRequired", "location")
	e.fail("PUT", "/subscriptions/"+sub+"/resourcegroups/bad.name."+ver, `{"location":"x"}`, 400, "InvalidResourceGroup", "must not end with a period")
	e.fail("GET", "/subscriptions/"+sub+"/resourcegroups/nope"+ver, "", 404, "ResourceGroupNotFound", "Resource group 'nope' could not be found.")
	r = e.must("GET", "/subscriptions/"+sub+"/resourcegroups"+ver, "", 200)
	if v, _ := r.body["value"].([]any); len(v) != 1 {
		t.Errorf("resource groups: %s", r.raw)
	}

	// A resource group with a workspace is only deleted when forced.
	w := e.must("PUT", wsPath+ver, `{"location":"westeurope"}`, 201)
	cid := get(w.body, "properties.customerId").(string)
	if _, err := e.storeSchema(cid, "Heartbeat"); err != nil {
		t.Fatalf("store lacks the workspace's Heartbeat: %v", err)
	}
	e.fail("DELETE", rgPath+ver, "", 409, "ResourceGroupNotEmpty", "Microsoft.OperationalInsights/workspaces")
	e.fail("DELETE", "/subscriptions/"+sub+ver, "", 409, "SubscriptionNotEmpty", "resource group")
	e.must("DELETE", rgPath+ver+"&forceDeletionTypes=Microsoft.OperationalInsights/workspaces", "", 200)
	if _, err := e.storeSchema(cid, "Heartbeat"); err == nil {
		t.Fatalf("store still has the workspace after a forced resource group delete")
	}
	e.must("DELETE", rgPath+ver, "", 204)
	e.must("DELETE", "/subscriptions/"+sub+ver, "", 200)
	e.must("DELETE", "/subscriptions/"+sub+ver, "", 204)
}

func TestWorkspaces(t *testing.T) {
	e := newEnv(t, nil)
	r := e.must("PUT", wsPath+ver, `{"location":"westeurope","tags":{"env":"test"},
		"properties":{"sku":{"name":"pergb2018"},"retentionInDays":60,"features":{"enableLogAccessUsingOnlyResourcePermissions":false},
		"publicNetworkAccessForQuery":"Disabled"}}`, 201)
	e.want(r, "id", "/subscriptions/"+sub+"/resourceGroups/rg1/providers/Microsoft.OperationalInsights/workspaces/ws-one")
	e.want(r, "name", "ws-one")
	e.want(r, "type", "Microsoft.OperationalInsights/workspaces")
	e.want(r, "location", "westeurope")
	e.want(r, "tags", map[string]string{"env": "test"})
	e.want(r, "properties.sku.name", "PerGB2018")
	e.want(r, "properties.retentionInDays", 60)
	e.want(r, "properties.provisioningState", "Succeeded")
	e.want(r, "properties.features.enableLogAccessUsingOnlyResourcePermissions", false)
	e.want(r, "properties.publicNetworkAccessForIngestion", "Enabled")
	e.want(r, "properties.publicNetworkAccessForQuery", "Disabled")
	e.want(r, "properties.workspaceCapping.dailyQuotaGb", -1)
	e.want(r, "systemData.createdBy", callerID)
	e.want(r, "systemData.createdByType", "Application")
	cid, _ := get(r.body, "properties.customerId").(string)
	if !catalog.IsGUID(cid) {
		t.Fatalf("customerId %q", cid)
	}
	etag, _ := r.body["etag"].(string)
	if etag == "" || r.header.Get("ETag") != etag {
		t.Fatalf("etag %q, header %q", etag, r.header.Get("ETag"))
	}
	for _, tbl := range catalog.StandardTableNames() {
		if _, err := e.storeSchema(cid, tbl); err != nil {
			t.Errorf("store lacks standard table %s: %v", tbl, err)
		}
	}
	// Default features for a new workspace.
	r2 := e.must("PUT", rgPath+"/providers/Microsoft.OperationalInsights/workspaces/ws-two"+ver, `{"location":"westeurope"}`, 201)
	e.want(r2, "properties.features.enableLogAccessUsingOnlyResourcePermissions", true)
	e.want(r2, "properties.retentionInDays", 30)

	// Preconditions.
	e.fail("PUT", wsPath+ver, `{"location":"westeurope"}`, 412, "PreconditionFailed", "condition", "If-Match", `"stale"`)
	e.fail("PUT", wsPath+ver, `{"location":"westeurope"}`, 412, "PreconditionFailed", "condition", "If-None-Match", "*")
	u := e.must("PUT", wsPath+ver, `{"location":"westeurope","properties":{"retentionInDays":90}}`, 200, "If-Match", etag)
	e.want(u, "properties.customerId", cid)
	if u.body["etag"] == etag {
		t.Errorf("etag unchanged by update")
	}
	// A GET response can be sent back (read-only properties accepted).
	g := e.must("GET", strings.Replace(wsPath, "ws-one", "WS-ONE", 1)+ver, "", 200)
	e.want(g, "name", "ws-one")
	e.must("PUT", wsPath+ver, g.raw, 200)
	// customerId is immutable.
	bad := strings.Replace(g.raw, cid, "00000000-0000-4000-8000-000000000000", 1)
	e.fail("PUT", wsPath+ver, bad, 400, "InvalidParameter", "cannot be changed")

	// Validation.
	e.fail("PUT", wsPath+ver, `{"location":"westeurope","properties":{"retentionInDays":10}}`, 400, "InvalidParameter", "between 30 and 730")
	e.fail("PUT", wsPath+ver, `{"location":"westeurope","properties":{"retentionInDays":0}}`, 400, "InvalidParameter", "between 30 and 730")
	e.fail("PUT", wsPath+ver, `{"location":"westeurope","properties":{"retentionInDays":731}}`, 400, "InvalidParameter", "between 30 and 730")
	e.fail("PUT", wsPath+ver, `{"location":"westeurope","properties":{"publicNetworkAccessForQuery":"Sometimes"}}`, 400, "InvalidParameter", "Sometimes")
	e.fail("PUT", wsPath+ver, `{"location":"westeurope","properties":{"unknown":true}}`, 400, "InvalidRequestContent", "unknown")
	e.fail("PUT", wsPath+ver, `{"location":"westeurope","properties":{"retentionInDays":"30"}}`, 400, "InvalidRequestContent", "retentionInDays")
	e.fail("PUT", wsPath+ver, `{`, 400, "InvalidRequestContent", "could not be deserialized")
	e.fail("PUT", wsPath+ver, ``, 400, "InvalidRequestContent", "empty")
	e.fail("PUT", wsPath+ver, `{"properties":{}}`, 400, "LocationRequired", "location")
	e.fail("PUT", rgPath+"/providers/Microsoft.OperationalInsights/workspaces/a_b"+ver, `{"location":"x"}`, 400, "InvalidWorkspaceName", "a_b")
	e.fail("PUT", "/subscriptions/"+sub+"/resourcegroups/nope/providers/Microsoft.OperationalInsights/workspaces/ws-x"+ver, `{"location":"x"}`, 404, "ResourceGroupNotFound", "nope")

	// Lists.
	l := e.must("GET", rgPath+"/providers/Microsoft.OperationalInsights/workspaces"+ver, "", 200)
	if v, _ := l.body["value"].([]any); len(v) != 2 {
		t.Errorf("list by resource group: %s", l.raw)
	}
	l = e.must("GET", "/subscriptions/"+sub+"/providers/Microsoft.OperationalInsights/workspaces"+ver, "", 200)
	if v, _ := l.body["value"].([]any); len(v) != 2 {
		t.Errorf("list by subscription: %s", l.raw)
	}

	// Delete.
	e.fail("DELETE", wsPath+ver, "", 412, "PreconditionFailed", "condition", "If-Match", `"stale"`)
	e.must("DELETE", wsPath+ver+"&force=true", "", 200)
	e.must("DELETE", wsPath+ver, "", 204)
	e.fail("GET", wsPath+ver, "", 404, "ResourceNotFound",
		"The Resource 'Microsoft.OperationalInsights/workspaces/ws-one' under resource group 'rg1' was not found.")
	if _, err := e.storeSchema(cid, "Heartbeat"); err == nil {
		t.Errorf("store still has a deleted workspace")
	}
}

const customTable = `{"properties":{"retentionInDays":45,"schema":{"name":"App_CL","columns":[
	{"name":"TimeGenerated","type":"dateTime","description":"event time"},
	{"name":"Message","type":"string"},{"name":"Level","type":"int"}]}}}`

func TestTables(t *testing.T) {
	e := newEnv(t, nil)
	w := e.must("PUT", wsPath+ver, `{"location":"westeurope"}`, 201)
	cid := get(w.body, "properties.customerId").(string)
	tp := wsPath + "/tables/App_CL" + ver

	r := e.must("PUT", tp, customTable, 201)
	e.want(r, "id", "/subscriptions/"+sub+"/resourceGroups/rg1/providers/Microsoft.OperationalInsights/workspaces/ws-one/tables/App_CL")
	e.want(r, "name", "App_CL")
	e.want(r, "type", "Microsoft.OperationalInsights/workspaces/tables")
	e.want(r, "properties.retentionInDays", 45)
	e.want(r, "properties.totalRetentionInDays", 45)
	e.want(r, "properties.retentionInDaysAsDefault", false)
	e.want(r, "properties.totalRetentionInDaysAsDefault", true)
	e.want(r, "properties.plan", "Analytics")
	e.want(r, "properties.provisioningState", "Succeeded")
	e.want(r, "properties.schema.tableType", "CustomLog")
	e.want(r, "properties.schema.columns", []map[string]any{
		{"name": "TimeGenerated", "type": "dateTime", "description": "event time", "isDefaultDisplay": false, "isHidden": false},
		{"name": "Message", "type": "string", "isDefaultDisplay": false, "isHidden": false},
		{"name": "Level", "type": "int", "isDefaultDisplay": false, "isHidden": false},
	})
	if !strings.Contains(mustJSON(get(r.body, "properties.schema.standardColumns")), `"TenantId"`) {
		t.Errorf("standardColumns lack TenantId: %s", r.raw)
	}
	s, err := e.storeSchema(cid, "App_CL")
	if err != nil || s.Index("Message") < 0 || s.Index("Level") < 0 {
		t.Fatalf("store schema %v, %v", s, err)
	}
	etag := r.header.Get("ETag")

	// Add a column; the store gets it.
	added := strings.Replace(customTable, `{"name":"Level","type":"int"}`, `{"name":"Level","type":"int"},{"name":"Props","type":"dynamic"}`, 1)
	e.fail("PUT", tp, added, 412, "PreconditionFailed", "condition", "If-Match", `"stale"`)
	e.must("PUT", tp, added, 200, "If-Match", etag)
	if s, err := e.storeSchema(cid, "App_CL"); err != nil || s.Index("Props") < 0 {
		t.Fatalf("store schema after add: %v, %v", s, err)
	}
	// PATCH changes retention and keeps the columns.
	p := e.must("PATCH", tp, `{"properties":{"totalRetentionInDays":400}}`, 200)
	e.want(p, "properties.totalRetentionInDays", 400)
	e.want(p, "properties.retentionInDays", 45)
	if cols, _ := get(p.body, "properties.schema.columns").([]any); len(cols) != 4 {
		t.Errorf("PATCH lost columns: %s", p.raw)
	}
	e.fail("PATCH", wsPath+"/tables/Nope_CL"+ver, `{"properties":{}}`, 404, "ResourceNotFound", "Nope_CL")

	// Azure's rules.
	bad := func(name, body, fragment string) {
		t.Helper()
		e.fail("PUT", wsPath+"/tables/"+name+ver, body, 400, "InvalidParameter", fragment)
	}
	cols := func(c string) string {
		return `{"properties":{"schema":{"columns":[{"name":"TimeGenerated","type":"datetime"}` + c + `]}}}`
	}
	bad("MyTable", cols(""), "must end with '_CL'")
	bad("9x_CL", cols(""), "must start with a letter")
	bad("New_CL", `{"properties":{"schema":{"columns":[{"name":"A","type":"string"}]}}}`, "'TimeGenerated'")
	bad("New_CL", `{"properties":{"schema":{"columns":[{"name":"TimeGenerated","type":"string"}]}}}`, "must be of type dateTime")
	bad("New_CL", cols(`,{"name":"1abc","type":"string"}`), "must start with a letter")
	bad("New_CL", cols(`,{"name":"`+strings.Repeat("a", 46)+`","type":"string"}`), "at most 45")
	bad("New_CL", cols(`,{"name":"a.b","type":"string"}`), "'a.b' is invalid")
	for _, reserved := range []string{"_ResourceId", "id", "_SubscriptionId", "TenantId", "Type", "UniqueId", "Title"} {
		frag := "is reserved"
		if strings.HasPrefix(reserved, "_") {
			frag = "must start with a letter"
		}
		bad("New_CL", cols(`,{"name":"`+reserved+`","type":"string"}`), frag)
	}
	bad("New_CL", cols(`,{"name":"A","type":"text"}`), "unsupported type 'text'")
	bad("New_CL", cols(`,{"name":"A","type":"timespan"}`), "unsupported type")
	bad("New_CL", cols(`,{"name":"A","type":"string"},{"name":"A","type":"long"}`), "more than once")
	bad("New_CL", `{"properties":{"retentionInDays":2,"schema":{"columns":[{"name":"TimeGenerated","type":"datetime"}]}}}`, "between 4 and 730")
	bad("New_CL", `{"properties":{"plan":"Premium","schema":{"columns":[{"name":"TimeGenerated","type":"datetime"}]}}}`, "plan 'Premium'")
	bad("New_CL", `{"properties":{"schema":{"name":"Other_CL","columns":[{"name":"TimeGenerated","type":"datetime"}]}}}`, "does not match")
	bad("App_CL", strings.Replace(added, `"Level","type":"int"`, `"Level","type":"string"`, 1), "cannot be changed from int to string")
	bad("App_CL", cols(""), "cannot be removed")
	bad("Syslog", `{"properties":{"schema":{"columns":[{"name":"Mine","type":"string"}]}}}`, "must end with '_CF'")
	e.fail("PUT", wsPath+"/tables/New_CL"+ver, `{"properties":{"schema":{"columnz":[]}}}`, 400, "InvalidRequestContent", "columnz")

	// Built-in tables: _CF columns and retention; no deletion.
	sy := e.must("PUT", wsPath+"/tables/syslog"+ver, `{"properties":{"retentionInDays":90,"schema":{"columns":[{"name":"Extra_CF","type":"string"}]}}}`, 200)
	e.want(sy, "name", "Syslog")
	e.want(sy, "properties.schema.tableType", "Microsoft")
	e.want(sy, "properties.retentionInDays", 90)
	if s, err := e.storeSchema(cid, "Syslog"); err != nil || s.Index("Extra_CF") < 0 || s.Index("SyslogMessage") < 0 {
		t.Fatalf("Syslog store schema %v, %v", s, err)
	}
	e.fail("DELETE", wsPath+"/tables/Syslog"+ver, "", 400, "InvalidParameter", "built-in table and cannot be deleted")

	l := e.must("GET", wsPath+"/tables"+ver, "", 200)
	if v, _ := l.body["value"].([]any); len(v) != len(catalog.StandardTableNames())+1 {
		t.Errorf("table list has %d entries", len(v))
	}
	e.must("GET", wsPath+"/tables/app_cl"+ver, "", 200)
	e.must("DELETE", tp, "", 200)
	e.must("DELETE", tp, "", 204)
	e.fail("GET", tp, "", 404, "ResourceNotFound", "App_CL")
	if _, err := e.storeSchema(cid, "App_CL"); !errors.Is(err, store.ErrTableNotFound) {
		t.Errorf("store table after delete: %v", err)
	}
	e.fail("GET", rgPath+"/providers/Microsoft.OperationalInsights/workspaces/nope/tables"+ver, "", 404, "ResourceNotFound", "workspaces/nope")
}

func dcrBody(stream, columns, flow string) string {
	return `{"location":"westeurope","kind":"Direct","properties":{
		"streamDeclarations":{"` + stream + `":{"columns":[` + columns + `]}},
		"destinations":{"logAnalytics":[{"workspaceResourceId":"` + strings.ToUpper(wsPath) + `","name":"la"}]},
		"dataFlows":[` + flow + `]}}`
}

const (
	okColumns = `{"name":"TimeGenerated","type":"datetime"},{"name":"Message","type":"string"},{"name":"Level","type":"int"}`
	okFlow    = `{"streams":["Custom-App"],"destinations":["la"],"outputStream":"Custom-App_CL"}`
)

func TestDataCollectionRules(t *testing.T) {
	e := newEnv(t, engineTransforms{})
	w := e.must("PUT", wsPath+ver, `{"location":"westeurope"}`, 201)
	cid := get(w.body, "properties.customerId").(string)
	e.must("PUT", wsPath+"/tables/App_CL"+ver, customTable, 201)

	r := e.must("PUT", dcrPath+ver, dcrBody("Custom-App", okColumns, okFlow), 201)
	e.want(r, "id", "/subscriptions/"+sub+"/resourceGroups/rg1/providers/Microsoft.Insights/dataCollectionRules/dcr1")
	e.want(r, "type", "Microsoft.Insights/dataCollectionRules")
	e.want(r, "kind", "Direct")
	e.want(r, "properties.endpoints.logsIngestion", "https://custos.test:8443")
	e.want(r, "properties.provisioningState", "Succeeded")
	e.want(r, "properties.destinations.logAnalytics", []map[string]string{{
		"workspaceResourceId": "/subscriptions/" + sub + "/resourceGroups/rg1/providers/Microsoft.OperationalInsights/workspaces/ws-one",
		"workspaceId":         cid, "name": "la"}})
	imm, _ := get(r.body, "properties.immutableId").(string)
	if !regexp.MustCompile(`^dcr-[0-9a-f]{32}$`).MatchString(imm) {
		t.Fatalf("immutableId %q", imm)
	}
	got, err := e.cat.DataCollectionRuleByImmutableID(context.Background(), imm)
	if err != nil || got.Name != "dcr1" {
		t.Fatalf("catalog by immutable id: %+v, %v", got, err)
	}
	// Update keeps the immutable ID; a GET response can be sent back.
	g := e.must("GET", dcrPath+ver, "", 200)
	u := e.must("PUT", dcrPath+ver, g.raw, 200, "If-Match", g.header.Get("ETag"))
	e.want(u, "properties.immutableId", imm)
	l := e.must("GET", "/subscriptions/"+sub+"/providers/Microsoft.Insights/dataCollectionRules"+ver, "", 200)
	if v, _ := l.body["value"].([]any); len(v) != 1 {
		t.Errorf("list: %s", l.raw)
	}
	// A transformation that compiles, and a built-in stream.
	tr := `{"streams":["Custom-App"],"destinations":["la"],"outputStream":"Custom-App_CL","transformKql":"source | extend Level = toint(Level) + 1"}`
	e.must("PUT", dcrPath+"2"+ver, dcrBody("Custom-App", okColumns, tr), 201)
	e.must("PUT", dcrPath+"3"+ver, dcrBody("Custom-App", okColumns, `{"streams":["Microsoft-Syslog"],"destinations":["la"]}`), 201)

	bad := func(body, detailCode, fragment string) {
		t.Helper()
		e.fail("PUT", dcrPath+ver, body, 400, "InvalidPayload", `"code":"`+detailCode+`"`)
		e.fail("PUT", dcrPath+ver, body, 400, "InvalidPayload", fragment)
	}
	bad(dcrBody("MyStream", okColumns, okFlow), "InvalidStreamDeclaration", "must start with 'Custom-'")
	bad(dcrBody("Custom-App", `{"name":"TimeGenerated","type":"datetime"},{"name":"X","type":"guid"}`, okFlow), "InvalidStreamDeclaration", "invalid type 'guid'")
	bad(dcrBody("Custom-App", okColumns, `{"streams":["Custom-Other"],"destinations":["la"],"outputStream":"Custom-App_CL"}`), "InvalidStream", "'Custom-Other'")
	bad(dcrBody("Custom-App", okColumns, `{"streams":["Microsoft-Nope"],"destinations":["la"]}`), "InvalidStream", "'Microsoft-Nope'")
	bad(dcrBody("Custom-App", okColumns, `{"streams":["Custom-App"],"destinations":["other"],"outputStream":"Custom-App_CL"}`), "InvalidDataFlow", "'other' is not defined")
	bad(dcrBody("Custom-App", okColumns, `{"streams":["Custom-App"],"destinations":["la"],"outputStream":"Custom-Missing_CL"}`), "InvalidOutputTable", "'Missing_CL' does not exist")
	bad(dcrBody("Custom-App", okColumns, `{"streams":["Custom-App"],"destinations":["la"],"outputStream":"Custom-App"}`), "InvalidOutputTable", "ending in '_CL'")
	bad(dcrBody("Custom-App", okColumns, `{"streams":["Custom-App"],"destinations":["la"]}`), "InvalidOutputTable", "no output table")
	bad(dcrBody("Custom-App", `{"name":"TimeGenerated","type":"datetime"},{"name":"Level","type":"datetime"}`, okFlow), "InvalidOutputTable", "Column 'Level' is datetime")
	bad(dcrBody("Custom-App", `{"name":"Time","type":"datetime"}`, okFlow), "InvalidTransformQuery", "'TimeGenerated'")
	bad(dcrBody("Custom-App", okColumns, `{"streams":["Custom-App"],"destinations":["la"],"outputStream":"Custom-App_CL","transformKql":"source | extend ,"}`),
		"InvalidTransformQuery", "compiling the transformation")
	bad(dcrBody("Custom-App", okColumns, `{"streams":["Custom-App","Microsoft-Syslog"],"destinations":["la"],"outputStream":"Custom-App_CL","transformKql":"source | where true"}`),
		"InvalidDataFlow", "exactly one stream")
	bad(dcrBody("Custom-App", okColumns, ""), "InvalidDataFlow", "at least one data flow")
	bad(strings.Replace(dcrBody("Custom-App", okColumns, okFlow), strings.ToUpper(wsPath), wsPath+"x", 1), "InvalidDestination", "was not found")
	bad(strings.Replace(dcrBody("Custom-App", okColumns, okFlow), `"kind":"Direct"`, `"kind":"Sideways"`, 1), "InvalidKind", "Sideways")
	bad(strings.Replace(dcrBody("Custom-App", okColumns, okFlow), `"dataFlows"`, `"dataSources":{"syslog":[{"name":"s","streams":["Microsoft-Nope"]}]},"dataFlows"`, 1),
		"InvalidStream", "'Microsoft-Nope'")
	e.fail("PUT", dcrPath+ver, strings.Replace(dcrBody("Custom-App", okColumns, okFlow), `"dataFlows"`, `"dataFlowz":[],"dataFlows"`, 1), 400, "InvalidRequestContent", "dataFlowz")
	e.fail("PUT", dcrPath+ver, `{"location":"westeurope"}`, 400, "InvalidPayload", "properties")

	// Without a transform compiler only "source" is accepted.
	e2 := newEnv(t, nil)
	e2.must("PUT", wsPath+ver, `{"location":"westeurope"}`, 201)
	e2.must("PUT", wsPath+"/tables/App_CL"+ver, customTable, 201)
	e2.must("PUT", dcrPath+ver, dcrBody("Custom-App", okColumns, `{"streams":["Custom-App"],"destinations":["la"],"outputStream":"Custom-App_CL","transformKql":"  source "}`), 201)
	e2.fail("PUT", dcrPath+ver, dcrBody("Custom-App", okColumns, tr), 400, "InvalidPayload", "only the transformation 'source' is supported")

	e.must("DELETE", dcrPath+ver, "", 200)
	e.must("DELETE", dcrPath+ver, "", 204)
	e.fail("GET", dcrPath+ver, "", 404, "ResourceNotFound", "Microsoft.Insights/dataCollectionRules/dcr1")
}

// TestDiagnosticSettings covers Microsoft.Insights/diagnosticSettings on a
// workspace: PUT/GET/list/DELETE, workspace-only destinations, the Audit
// category, and the catalog's audit destinations.
func TestDiagnosticSettings(t *testing.T) {
	e := newEnv(t, nil)
	e.must("PUT", wsPath+ver, `{"location":"westeurope"}`, 201)
	ws2 := rgPath + "/providers/Microsoft.OperationalInsights/workspaces/ws-audit"
	e.must("PUT", ws2+ver, `{"location":"westeurope"}`, 201)
	ds := wsPath + "/providers/Microsoft.Insights/diagnosticSettings"
	const dver = "?api-version=2021-05-01-preview"

	e.fail("PUT", ds+"/audit"+dver, `{"properties":{"storageAccountId":"/subscriptions/x/sa","logs":[{"category":"Audit","enabled":true}]}}`,
		400, "BadRequest", "workspaceId")
	e.fail("PUT", ds+"/audit"+dver, `{"properties":{"workspaceId":"`+ws2+`","eventHubName":"x","logs":[{"category":"Audit","enabled":true}]}}`,
		400, "BadRequest", "not supported")
	e.fail("PUT", ds+"/audit"+dver, `{"properties":{"workspaceId":"`+ws2+`","logs":[{"category":"Metrics","enabled":true}]}}`,
		400, "BadRequest", "Audit")
	e.fail("PUT", ds+"/audit"+dver, `{"properties":{"workspaceId":"`+rgPath+`/providers/Microsoft.OperationalInsights/workspaces/nope","logs":[{"category":"Audit","enabled":true}]}}`,
		400, "BadRequest", "does not exist")
	e.must("PUT", ds+"/audit"+dver, `{"properties":{"workspaceId":"`+ws2+`","logs":[{"category":"Audit","enabled":true}]},"bogus":1}`, 400)

	r := e.must("PUT", ds+"/audit"+dver, `{"properties":{"workspaceId":"`+strings.ToUpper(ws2)+`","logs":[{"category":"Audit","enabled":true}],"metrics":[]}}`, 201)
	props, _ := r.body["properties"].(map[string]any)
	if id, _ := r.body["id"].(string); !strings.EqualFold(id, wsPath+"/providers/Microsoft.Insights/diagnosticSettings/audit") || r.body["type"] != "Microsoft.Insights/diagnosticSettings" ||
		!strings.HasSuffix(props["workspaceId"].(string), "/workspaces/ws-audit") {
		t.Fatalf("PUT answer: %s", r.raw)
	}
	e.must("PUT", ds+"/audit"+dver, r.raw, 200) // a GET answer round-trips
	got := e.must("GET", ds+"/AUDIT"+dver, "", 200)
	if got.body["name"] != "audit" {
		t.Fatalf("GET: %s", got.raw)
	}
	l := e.must("GET", ds+dver, "", 200)
	if v, _ := l.body["value"].([]any); len(v) != 1 {
		t.Fatalf("list: %s", l.raw)
	}
	w, err := e.cat.Workspace(context.Background(), sub, "rg1", "ws-audit")
	if err != nil {
		t.Fatal(err)
	}
	src, err := e.cat.Workspace(context.Background(), sub, "rg1", "ws-one")
	if err != nil {
		t.Fatal(err)
	}
	dests, err := e.cat.QueryAuditDestinations(context.Background(), src.ID())
	if err != nil || len(dests) != 1 || dests[0] != w.CustomerID {
		t.Fatalf("audit destinations %v %v; want [%s]", dests, err, w.CustomerID)
	}
	e.must("DELETE", ds+"/audit"+dver, "", 200)
	e.must("DELETE", ds+"/audit"+dver, "", 204)
	e.fail("GET", ds+"/audit"+dver, "", 404, "ResourceNotFound", "audit")
	e.must("GET", rgPath+"/providers/Microsoft.OperationalInsights/workspaces/nope/providers/Microsoft.Insights/diagnosticSettings"+dver, "", 404)
}
