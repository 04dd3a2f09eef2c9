package query_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	ingestlogs "github.com/Azure/azure-sdk-for-go/sdk/monitor/ingestion/azlogs"
	"github.com/Azure/azure-sdk-for-go/sdk/monitor/query/azlogs"

	"custos/internal/catalog"
	"custos/internal/engine"
	"custos/internal/ingest"
	"custos/internal/query"
	"custos/internal/rbac"
	"custos/internal/stacktest"
	"custos/internal/store"
)

// env assembles Custos from the real packages (catalog, store, engine, token
// service, RBAC, ingestion and query APIs) behind HTTPS on loopback.
type env struct {
	t      *testing.T
	srv    *httptest.Server
	cat    *catalog.DB
	boot   catalog.Bootstrap
	ws     string
	rule   catalog.DataCollectionRule
	cred   *azidentity.ClientSecretCredential
	objID  string
	tenant string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	base := stacktest.Open(t)
	cat, boot, st := base.Cat, base.Boot, base.Store
	e := &env{t: t, cat: cat, boot: boot, ws: boot.Workspace.CustomerID, tenant: boot.Tenant.ID}
	sub, rg := boot.Subscription.ID, boot.ResourceGroup.Name
	if _, _, err := cat.PutTable(ctx, sub, rg, boot.Workspace.Name, catalog.TableSpec{Name: "App_CL", Columns: []catalog.Column{
		{Name: "TimeGenerated", Type: store.TypeDatetime}, {Name: "Computer", Type: store.TypeString},
		{Name: "Count", Type: store.TypeLong}, {Name: "Ratio", Type: store.TypeReal}, {Name: "Ok", Type: store.TypeBool},
		{Name: "Props", Type: store.TypeDynamic},
	}}, catalog.Precondition{}, catalog.Actor{ID: "test"}); err != nil {
		t.Fatal(err)
	}
	base.EnsureTables(t)
	var err error
	e.rule, _, err = cat.PutDataCollectionRule(ctx, catalog.DataCollectionRule{
		SubscriptionID: sub, ResourceGroup: rg, Name: "app-rule", Location: "local", Kind: "Direct",
		Properties: catalog.DCRProperties{
			StreamDeclarations: map[string]catalog.StreamDeclaration{"Custom-App": {Columns: []catalog.StreamColumn{
				{Name: "TimeGenerated", Type: "datetime"}, {Name: "Computer", Type: "string"}, {Name: "Count", Type: "long"},
				{Name: "Ratio", Type: "real"}, {Name: "Ok", Type: "boolean"}, {Name: "Props", Type: "dynamic"},
			}}},
			Destinations: &catalog.DCRDestinations{LogAnalytics: []catalog.LogAnalyticsDestination{
				{Name: "la", WorkspaceResourceID: boot.Workspace.ID(), WorkspaceID: e.ws},
			}},
			DataFlows: []catalog.DataFlow{{Streams: []string{"Custom-App"}, Destinations: []string{"la"}, OutputStream: "Custom-App_CL"}},
		},
	}, catalog.Precondition{}, catalog.Actor{ID: "test"})
	if err != nil {
		t.Fatal(err)
	}

	srv, mux, ts := base.Serve(t)
	e.srv = srv
	sp, secret, err := ts.CreateServicePrincipal(ctx, boot.Tenant.ID, "query tester")
	if err != nil {
		t.Fatal(err)
	}
	e.objID = sp.ObjectID
	e.assign(e.rule.ID(), rbac.RoleMonitoringMetricsPublisher, "11111111-1111-4111-8111-111111111111")
	e.assign(boot.Workspace.ID(), rbac.RoleLogAnalyticsReader, "22222222-2222-4222-8222-222222222222")
	authz := rbac.New(rbac.Options{Store: cat})

	ing := ingest.New(ingest.Options{Rules: ingest.CatalogSource{C: cat}, Tables: ingest.CatalogSource{C: cat}, Store: st})
	q := query.New(query.Options{
		Workspaces: query.CatalogWorkspaces{C: cat},
		Executor:   query.EngineExecutor{Engine: engine.New(engine.Options{}), Source: st},
		Authorizer: authz,
	})
	for _, rt := range append(ing.Routes(), q.Routes()...) {
		mux.HandleFunc(rt.Method+" "+rt.Pattern, stacktest.ServeRoute(ts, authz, rt))
	}
	mux.Handle("/", ts.Handler())
	e.cred, err = azidentity.NewClientSecretCredential(boot.Tenant.ID, sp.AppID, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions:            e.clientOptions(nil),
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) assign(scope, role, name string) {
	e.t.Helper()
	stacktest.Assign(e.t, e.cat, scope, role, e.objID, name)
}

func (e *env) clientOptions(services map[cloud.ServiceName]cloud.ServiceConfiguration) azcore.ClientOptions {
	return azcore.ClientOptions{
		Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: e.srv.URL + "/", Services: services},
		Transport: e.srv.Client(),
		Retry:     policy.RetryOptions{MaxRetries: -1},
	}
}

func (e *env) queryClient() *azlogs.Client {
	c, err := azlogs.NewClient(e.cred, &azlogs.ClientOptions{ClientOptions: e.clientOptions(map[cloud.ServiceName]cloud.ServiceConfiguration{
		azlogs.ServiceName: {Audience: "https://api.loganalytics.io", Endpoint: e.srv.URL + "/v1"},
	})})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) upload(body string) {
	e.t.Helper()
	c, err := ingestlogs.NewClient(e.srv.URL, e.cred, &ingestlogs.ClientOptions{ClientOptions: e.clientOptions(map[cloud.ServiceName]cloud.ServiceConfiguration{
		ingestlogs.ServiceNameIngestion: {Audience: "https://monitor.azure.com/"},
	})})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := c.Upload(context.Background(), e.rule.ImmutableID, "Custom-App", []byte(body), nil); err != nil {
		e.t.Fatalf("Upload: %v", err)
	}
}

const sample = `[
 {"TimeGenerated":"2024-05-01T10:00:00Z","Computer":"web-1","Count":3,"Ratio":0.5,"Ok":true,"Props":{"a":[1,2]}},
 {"TimeGenerated":"2024-05-01T10:00:01.1234567Z","Computer":"web-2","Count":1,"Ratio":"NaN","Ok":false},
 {"TimeGenerated":"2024-05-01T11:30:00Z","Computer":"web-3","Count":7}
]`

func TestQueryWorkspaceWithAzureSDK(t *testing.T) {
	e := newEnv(t)
	e.upload(sample)
	c := e.queryClient()
	ctx := context.Background()
	ti := azlogs.NewTimeInterval(time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 5, 1, 11, 0, 0, 0, time.UTC))
	res, err := c.QueryWorkspace(ctx, e.ws, azlogs.QueryBody{
		Query:    to("App_CL | project TimeGenerated, Computer, Count, Ratio, Ok, Props | order by Computer asc"),
		Timespan: &ti,
	}, &azlogs.QueryWorkspaceOptions{Options: &azlogs.QueryOptions{Statistics: to(true), Wait: to(30)}})
	if err != nil {
		t.Fatalf("QueryWorkspace: %v", err)
	}
	if res.Error != nil {
		t.Fatalf("partial error: %v", res.Error)
	}
	if len(res.Tables) != 1 || *res.Tables[0].Name != "PrimaryResult" {
		t.Fatalf("tables = %+v", res.Tables)
	}
	tab := res.Tables[0]
	var types []string
	for _, c := range tab.Columns {
		types = append(types, *c.Name+":"+string(*c.Type))
	}
	if got := strings.Join(types, ","); got != "TimeGenerated:datetime,Computer:string,Count:long,Ratio:real,Ok:bool,Props:dynamic" {
		t.Errorf("columns = %s", got)
	}
	if len(tab.Rows) != 2 {
		t.Fatalf("rows = %v; want 2 (the timespan excludes web-3)", tab.Rows)
	}
	got, _ := json.Marshal(tab.Rows)
	want := `[["2024-05-01T10:00:00Z","web-1",3,0.5,true,"{\"a\":[1,2]}"],["2024-05-01T10:00:01.1234567Z","web-2",1,"NaN",false,null]]`
	if string(got) != want {
		t.Errorf("rows = %s\nwant   %s", got, want)
	}
	if !json.Valid(res.Statistics) || !bytes.Contains(res.Statistics, []byte("executionTime")) {
		t.Errorf("statistics = %s", res.Statistics)
	}

	// A summarize over all time.
	res, err = c.QueryWorkspace(ctx, e.ws, azlogs.QueryBody{Query: to("App_CL | summarize n = count(), total = sum(Count)")}, nil)
	if err != nil {
		t.Fatalf("QueryWorkspace: %v", err)
	}
	if got, _ := json.Marshal(res.Tables[0].Rows); string(got) != `[[3,11]]` {
		t.Errorf("summarize rows = %s; want [[3,11]]", got)
	}
}

func TestQueryErrors(t *testing.T) {
	e := newEnv(t)
	c := e.queryClient()
	ctx := context.Background()
	for _, tc := range []struct {
		query, inner string
	}{
		{"App_CL | where", "SyntaxError"},
		{"App_CL | where Nope > 1", "SemanticError"},
		{"NoSuchTable", "SemanticError"},
	} {
		_, err := c.QueryWorkspace(ctx, e.ws, azlogs.QueryBody{Query: to(tc.query)}, nil)
		var re *azcore.ResponseError
		if !errors.As(err, &re) || re.StatusCode != 400 || re.ErrorCode != "BadArgumentError" {
			t.Errorf("%q: err = %v; want a 400 BadArgumentError", tc.query, err)
			continue
		}
		var body struct {
			Error struct {
				Code       string `json:"code"`
				InnerError struct {
					Code string `json:"code"`
					Line int    `json:"line"`
					Pos  int    `json:"pos"`
				} `json:"innererror"`
			} `json:"error"`
		}
		data, _ := io.ReadAll(re.RawResponse.Body)
		if err := json.Unmarshal(data, &body); err != nil {
			t.Fatalf("%q: body %q: %v", tc.query, data, err)
		}
		if body.Error.InnerError.Code != tc.inner || body.Error.InnerError.Line != 1 || body.Error.InnerError.Pos < 1 {
			t.Errorf("%q: body %s; want innererror %s with line and pos", tc.query, data, tc.inner)
		}
	}
}

func TestQueryBatchWithAzureSDK(t *testing.T) {
	e := newEnv(t)
	e.upload(sample)
	c := e.queryClient()
	item := func(ws, q, id string, hdr map[string]*string) azlogs.BatchQueryRequest {
		return azlogs.BatchQueryRequest{Body: &azlogs.QueryBody{Query: to(q)}, ID: to(id), WorkspaceID: to(ws),
			Headers: hdr, Method: to("POST"), Path: to("/query")}
	}
	res, err := c.QueryBatch(context.Background(), azlogs.BatchRequest{Requests: []azlogs.BatchQueryRequest{
		item(e.ws, "App_CL | count", "1", nil),
		item(e.ws, "App_CL | where Count > 2 | project Computer | order by Computer asc", "2", map[string]*string{"Prefer": to("wait=60")}),
		item(e.ws, "App_CL | where", "3", nil),
		item("00000000-0000-4000-8000-000000000000", "App_CL", "4", nil),
	}}, nil)
	if err != nil {
		t.Fatalf("QueryBatch: %v", err)
	}
	byID := map[string]azlogs.BatchQueryResponse{}
	for _, r := range res.Responses {
		byID[*r.ID] = r
	}
	if r := byID["1"]; *r.Status != 200 || len(r.Body.Tables) != 1 {
		t.Errorf("item 1 = %+v", r)
	} else if got, _ := json.Marshal(r.Body.Tables[0].Rows); string(got) != `[[3]]` {
		t.Errorf("item 1 rows = %s", got)
	}
	if r := byID["2"]; *r.Status != 200 {
		t.Errorf("item 2 status %d", *r.Status)
	} else if got, _ := json.Marshal(r.Body.Tables[0].Rows); string(got) != `[["web-1"],["web-3"]]` {
		t.Errorf("item 2 rows = %s", got)
	}
	if r := byID["3"]; *r.Status != 400 || r.Body.Error == nil || r.Body.Error.Code != "BadArgumentError" {
		t.Errorf("item 3 = status %d error %v; want 400 BadArgumentError", *r.Status, r.Body.Error)
	}
	if r := byID["4"]; *r.Status != 400 || r.Body.Error == nil || r.Body.Error.Code != "FailedToResolveResource" {
		t.Errorf("item 4 = status %d error %v; want 400 FailedToResolveResource", *r.Status, r.Body.Error)
	}
}

// raw sends a request with a query token and decodes the JSON answer.
func (e *env) raw(method, path, body string, hdr map[string]string) (*http.Response, map[string]any) {
	e.t.Helper()
	tok, err := e.cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://api.loganalytics.io/.default"}})
	if err != nil {
		e.t.Fatal(err)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		e.t.Fatalf("%s %s: response is not JSON: %q", method, path, data)
	}
	return resp, m
}

func TestQueryWire(t *testing.T) {
	e := newEnv(t)
	e.upload(sample)
	// GET form with a query string.
	resp, body := e.raw("GET", "/v1/workspaces/"+e.ws+"/query?query=App_CL%20%7C%20count&timespan=2024-05-01T00:00:00Z/PT11H", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET: %d %v", resp.StatusCode, body)
	}
	if got, _ := json.Marshal(body["tables"]); !strings.Contains(string(got), `"rows":[[2]]`) {
		t.Errorf("GET tables = %s", got)
	}
	// Duplicate batch ids fail the whole batch.
	dup := `{"requests":[{"id":"1","body":{"query":"App_CL"},"method":"POST","path":"/query","workspace":"` + e.ws +
		`"},{"id":"1","body":{"query":"App_CL"},"method":"POST","path":"/query","workspace":"` + e.ws + `"}]}`
	if resp, body := e.raw("POST", "/v1/$batch", dup, nil); resp.StatusCode != 400 || resp.Header.Get("x-ms-error-code") != "BadArgumentError" {
		t.Errorf("duplicate ids: %d %v", resp.StatusCode, body)
	}
	// A bad timespan and a missing query are 400 BadArgumentError.
	for _, b := range []string{`{"query":"App_CL","timespan":"yesterday"}`, `{"timespan":"PT1H"}`, `not json`} {
		if resp, body := e.raw("POST", "/v1/workspaces/"+e.ws+"/query", b, nil); resp.StatusCode != 400 || resp.Header.Get("x-ms-error-code") != "BadArgumentError" {
			t.Errorf("%s: %d %v", b, resp.StatusCode, body)
		}
	}
	// Metadata lists the tables with their columns.
	resp, body = e.raw("GET", "/v1/workspaces/"+e.ws+"/metadata", "", nil)
	if got, _ := json.Marshal(body["tables"]); resp.StatusCode != 200 || !strings.Contains(string(got), `"name":"App_CL"`) {
		t.Errorf("metadata: %d %s", resp.StatusCode, got)
	}
	// A workspace the caller has no role on is refused before anything is revealed.
	if resp, _ := e.raw("POST", "/v1/workspaces/00000000-0000-4000-8000-000000000000/query", `{"query":"App_CL"}`, nil); resp.StatusCode != 403 {
		t.Errorf("unknown workspace: %d; want 403", resp.StatusCode)
	}
}

func TestUnknownWorkspaceIs404ForReaderAtRoot(t *testing.T) {
	e := newEnv(t)
	e.assign("/", rbac.RoleLogAnalyticsReader, "33333333-3333-4333-8333-333333333333")
	resp, body := e.raw("POST", "/v1/workspaces/00000000-0000-4000-8000-000000000000/query", `{"query":"App_CL"}`, nil)
	if resp.StatusCode != 404 || resp.Header.Get("x-ms-error-code") != "PathNotFoundError" {
		t.Fatalf("status %d %v; want 404 PathNotFoundError", resp.StatusCode, body)
	}
}

func to[T any](v T) *T { return &v }
