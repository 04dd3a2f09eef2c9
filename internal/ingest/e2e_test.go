package ingest_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/monitor/ingestion/azlogs"

	"custos/internal/catalog"
	"custos/internal/identity"
	"custos/internal/ingest"
	"custos/internal/rbac"
	"custos/internal/stacktest"
	"custos/internal/store"
)

// env is a small Custos assembled from the real packages: catalog (SQLite),
// store, token service, RBAC and the ingestion API, behind HTTPS on loopback.
type env struct {
	t       *testing.T
	srv     *httptest.Server
	cat     *catalog.DB
	st      *store.DB
	ts      *identity.TokenService
	boot    catalog.Bootstrap
	ws      string // workspace customerId
	rule    catalog.DataCollectionRule
	appID   string
	secret  string
	objID   string
	ingestO ingest.Options
	lookups *atomic.Int64 // rule lookups by the ingestion API
}

// countingRules counts the rule lookups it passes to the catalog.
type countingRules struct {
	ingest.Rules
	n *atomic.Int64
}

func (c countingRules) RuleByImmutableID(ctx context.Context, id string) (*ingest.Rule, error) {
	c.n.Add(1)
	return c.Rules.RuleByImmutableID(ctx, id)
}

func newEnv(t *testing.T, opts ingest.Options) *env {
	t.Helper()
	ctx := context.Background()
	base := stacktest.Open(t)
	cat, boot, st := base.Cat, base.Boot, base.Store
	e := &env{t: t, cat: cat, st: st, boot: boot, ws: boot.Workspace.CustomerID}

	sub, rg, wsName := boot.Subscription.ID, boot.ResourceGroup.Name, boot.Workspace.Name
	if _, _, err := cat.PutTable(ctx, sub, rg, wsName, catalog.TableSpec{Name: "App_CL", Columns: []catalog.Column{
		{Name: "TimeGenerated", Type: store.TypeDatetime}, {Name: "Computer", Type: store.TypeString},
		{Name: "Count", Type: store.TypeLong}, {Name: "Ratio", Type: store.TypeReal}, {Name: "Ok", Type: store.TypeBool},
		{Name: "Props", Type: store.TypeDynamic},
	}}, catalog.Precondition{}, catalog.Actor{ID: "test"}); err != nil {
		t.Fatal(err)
	}
	base.EnsureTables(t)
	rule, _, err := cat.PutDataCollectionRule(ctx, catalog.DataCollectionRule{
		SubscriptionID: sub, ResourceGroup: rg, Name: "app-rule", Location: "local", Kind: "Direct",
		Properties: catalog.DCRProperties{
			StreamDeclarations: map[string]catalog.StreamDeclaration{"Custom-App": {Columns: []catalog.StreamColumn{
				{Name: "TimeGenerated", Type: "datetime"}, {Name: "Computer", Type: "string"}, {Name: "Count", Type: "long"},
				{Name: "Ratio", Type: "real"}, {Name: "Ok", Type: "boolean"}, {Name: "Props", Type: "dynamic"},
			}}},
			Destinations: &catalog.DCRDestinations{LogAnalytics: []catalog.LogAnalyticsDestination{
				{Name: "la", WorkspaceResourceID: boot.Workspace.ID(), WorkspaceID: e.ws},
			}},
			DataFlows: []catalog.DataFlow{{Streams: []string{"Custom-App"}, Destinations: []string{"la"}, TransformKql: "source", OutputStream: "Custom-App_CL"}},
		},
	}, catalog.Precondition{}, catalog.Actor{ID: "test"})
	if err != nil {
		t.Fatal(err)
	}
	e.rule = rule

	var mux *http.ServeMux
	e.srv, mux, e.ts = base.Serve(t)
	sp, secret, err := e.ts.CreateServicePrincipal(ctx, boot.Tenant.ID, "ingest tester")
	if err != nil {
		t.Fatal(err)
	}
	e.appID, e.secret, e.objID = sp.AppID, secret, sp.ObjectID
	stacktest.Assign(t, cat, rule.ID(), rbac.RoleMonitoringMetricsPublisher, sp.ObjectID, "11111111-1111-4111-8111-111111111111")
	authz := rbac.New(rbac.Options{Store: cat})

	e.lookups = new(atomic.Int64)
	opts.Rules = countingRules{Rules: ingest.CatalogSource{C: cat}, n: e.lookups}
	opts.Tables, opts.Workspaces = ingest.CatalogSource{C: cat}, ingest.CatalogSource{C: cat}
	opts.Store = st
	e.ingestO = opts
	for _, rt := range ingest.New(opts).Routes() {
		mux.HandleFunc(rt.Method+" "+rt.Pattern, stacktest.ServeRoute(e.ts, authz, rt))
	}
	mux.Handle("/", e.ts.Handler())
	return e
}

func (e *env) credential() *azidentity.ClientSecretCredential {
	cred, err := azidentity.NewClientSecretCredential(e.boot.Tenant.ID, e.appID, e.secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{
			Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: e.srv.URL + "/"},
			Transport: e.srv.Client(),
			Retry:     policy.RetryOptions{MaxRetries: -1},
		},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return cred
}

func (e *env) client() *azlogs.Client {
	c, err := azlogs.NewClient(e.srv.URL, e.credential(), &azlogs.ClientOptions{ClientOptions: azcore.ClientOptions{
		Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: e.srv.URL + "/",
			Services: map[cloud.ServiceName]cloud.ServiceConfiguration{azlogs.ServiceNameIngestion: {Audience: "https://monitor.azure.com/"}}},
		Transport: e.srv.Client(),
		Retry:     policy.RetryOptions{MaxRetries: -1},
	}})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) token() string {
	tok, err := e.credential().GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://monitor.azure.com//.default"}})
	if err != nil {
		e.t.Fatal(err)
	}
	return tok.Token
}

// rows reads App_CL back from the store.
func (e *env) rows() []map[string]any {
	e.t.Helper()
	ctx := context.Background()
	q, err := e.st.Querier(ctx, store.TableRef{WorkspaceID: e.ws, Table: "App_CL"}, store.AllTime)
	if err != nil {
		e.t.Fatal(err)
	}
	defer q.Close()
	it := q.Select(ctx, store.SelectHints{})
	defer it.Close()
	var out []map[string]any
	for it.Next() {
		b := it.Batch()
		for r := 0; r < b.Len; r++ {
			row := map[string]any{}
			for i, c := range b.Schema {
				v := b.Cols[i]
				switch {
				case v.IsNull(r):
					row[c.Name] = nil
				case c.Type == store.TypeBool:
					row[c.Name] = v.Bool[r]
				case c.Type == store.TypeReal:
					row[c.Name] = v.Real[r]
				case c.Type == store.TypeDatetime:
					row[c.Name] = store.TimeFromTicks(v.Int[r])
				case v.Int != nil:
					row[c.Name] = v.Int[r]
				default:
					row[c.Name] = v.Str[r]
				}
			}
			out = append(out, row)
		}
	}
	if err := it.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

func gzipBytes(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestUploadWithAzureSDK(t *testing.T) {
	e := newEnv(t, ingest.Options{})
	c := e.client()
	ctx := context.Background()
	body := []byte(`[{"TimeGenerated":"2024-05-01T10:00:00Z","Computer":"web-1","Count":3,"Ratio":0.5,"Ok":true,"Props":{"a":1}},
		{"TimeGenerated":"2024-05-01T10:00:01.1234567Z","Computer":"web-2","Count":"4","Extra":"ignored"}]`)
	if _, err := c.Upload(ctx, e.rule.ImmutableID, "Custom-App", body, nil); err != nil {
		t.Fatalf("Upload: %v", err)
	}
	gz := gzipBytes(t, []byte(`[{"TimeGenerated":"2024-05-01T10:00:02Z","Computer":"web-3","Count":5}]`))
	if _, err := c.Upload(ctx, e.rule.ImmutableID, "Custom-App", gz, &azlogs.UploadOptions{ContentEncoding: to("gzip")}); err != nil {
		t.Fatalf("Upload gzip: %v", err)
	}
	rows := e.rows()
	if len(rows) != 3 {
		t.Fatalf("got %d rows; want 3: %v", len(rows), rows)
	}
	byComputer := map[string]map[string]any{}
	for _, r := range rows {
		byComputer[r["Computer"].(string)] = r
	}
	w1, w2 := byComputer["web-1"], byComputer["web-2"]
	if w1["Count"] != int64(3) || w1["Ok"] != true || w1["Props"] != `{"a":1}` || w1["Ratio"] != 0.5 {
		t.Errorf("web-1 = %v", w1)
	}
	if w2["Count"] != int64(4) || w2["Ok"] != nil || !w2["TimeGenerated"].(time.Time).Equal(time.Date(2024, 5, 1, 10, 0, 1, 123456700, time.UTC)) {
		t.Errorf("web-2 = %v", w2)
	}
	if byComputer["web-3"]["Count"] != int64(5) {
		t.Errorf("web-3 = %v", byComputer["web-3"])
	}
}

func to[T any](v T) *T { return &v }

// post sends a raw ingestion request and returns status, x-ms-error-code and body.
func (e *env) post(tok, rule, stream, query string, body []byte, hdr map[string]string) (*http.Response, map[string]any) {
	e.t.Helper()
	req, err := http.NewRequest("POST", e.srv.URL+"/dataCollectionRules/"+rule+"/streams/"+stream+query, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
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
	if len(data) > 0 {
		if err := json.Unmarshal(data, &m); err != nil {
			e.t.Fatalf("response is not JSON: %q", data)
		}
	}
	return resp, m
}

func TestIngestionErrorsWriteNothing(t *testing.T) {
	e := newEnv(t, ingest.Options{})
	tok := e.token()
	const q = "?api-version=2023-01-01"
	big := "[" + strings.Repeat(`{"Computer":"`+strings.Repeat("x", 1000)+`"},`, 1100) + "{}]"
	for _, tc := range []struct {
		name, rule, stream, query, body string
		hdr                             map[string]string
		status                          int
		code, msg                       string
	}{
		{"malformed JSON", e.rule.ImmutableID, "Custom-App", q, `[{"Computer":"a"},{`, nil, 400, "InvalidRequestContent", "record 1"},
		{"not an array", e.rule.ImmutableID, "Custom-App", q, `{"Computer":"a"}`, nil, 400, "InvalidRequestContent", "JSON array"},
		{"record not an object", e.rule.ImmutableID, "Custom-App", q, `[{"Computer":"a"},"b"]`, nil, 400, "InvalidRequestContent", "Record 1 is not a JSON object"},
		{"bad value", e.rule.ImmutableID, "Custom-App", q, `[{"Computer":"a","Count":1},{"Count":"many"}]`, nil, 400, "InvalidRequestContent", "Record 1, column 'Count'"},
		{"bad datetime", e.rule.ImmutableID, "Custom-App", q, `[{"TimeGenerated":"noon"}]`, nil, 400, "InvalidRequestContent", "column 'TimeGenerated'"},
		{"unknown stream", e.rule.ImmutableID, "Custom-Nope", q, `[]`, nil, 400, "InvalidStream", "Custom-Nope"},
		{"too large", e.rule.ImmutableID, "Custom-App", q, big, nil, 413, "ContentLengthLimitExceeded", "Maximum allowed content length: 1048576 bytes (1 MB). Provided content length: " + itoa(len(big)) + " bytes."},
		{"too large gzip", e.rule.ImmutableID, "Custom-App", q, string(gzipBytes(t, []byte(big))), map[string]string{"Content-Encoding": "gzip"}, 413, "ContentLengthLimitExceeded", "Provided content length: " + itoa(len(big)) + " bytes."},
		{"bad gzip", e.rule.ImmutableID, "Custom-App", q, `[{"Computer":"a"}]`, map[string]string{"Content-Encoding": "gzip"}, 400, "InvalidRequestContent", "gzip"},
		{"missing api-version", e.rule.ImmutableID, "Custom-App", "", `[{"Computer":"a"}]`, nil, 400, "MissingApiVersionParameter", "api-version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.post(tok, tc.rule, tc.stream, tc.query, []byte(tc.body), tc.hdr)
			code := resp.Header.Get("x-ms-error-code")
			errObj, _ := body["error"].(map[string]any)
			if resp.StatusCode != tc.status || code != tc.code || errObj["code"] != tc.code {
				t.Fatalf("status %d, x-ms-error-code %q, body %v; want %d %s", resp.StatusCode, code, body, tc.status, tc.code)
			}
			if msg, _ := errObj["message"].(string); !strings.Contains(msg, tc.msg) {
				t.Fatalf("message %q; want it to contain %q", msg, tc.msg)
			}
			if rows := e.rows(); len(rows) != 0 {
				t.Fatalf("a failed request wrote %d rows", len(rows))
			}
		})
	}
	// Unknown rule: the caller has no role at "/", so RBAC answers first (403), as Azure does.
	if resp, _ := e.post(tok, "dcr-00000000000000000000000000000000", "Custom-App", q, []byte(`[]`), nil); resp.StatusCode != 403 {
		t.Errorf("unknown rule: status %d; want 403", resp.StatusCode)
	}
	// A client request ID is echoed, and success is 204.
	resp, _ := e.post(tok, e.rule.ImmutableID, "Custom-App", q, []byte(`[{"Computer":"ok"}]`), map[string]string{"x-ms-client-request-id": "abc-123"})
	if resp.StatusCode != 204 || resp.Header.Get("x-ms-client-request-id") != "abc-123" {
		t.Errorf("status %d, x-ms-client-request-id %q; want 204 and the echo", resp.StatusCode, resp.Header.Get("x-ms-client-request-id"))
	}
	if rows := e.rows(); len(rows) != 1 || rows[0]["TimeGenerated"] == nil {
		t.Errorf("rows = %v; want one row with TimeGenerated set by the store", rows)
	}
}

func TestUnknownRuleIs404ForOwnerAtRoot(t *testing.T) {
	e := newEnv(t, ingest.Options{})
	if err := e.cat.CreateRoleAssignment(context.Background(), rbac.RoleAssignment{
		ID: "/providers/Microsoft.Authorization/roleAssignments/22222222-2222-4222-8222-222222222222", Name: "22222222-2222-4222-8222-222222222222",
		Scope: "/", RoleDefinitionID: rbac.RoleMonitoringMetricsPublisher, PrincipalID: e.objID,
		PrincipalType: string(identity.KindServicePrincipal), Created: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	resp, body := e.post(e.token(), "dcr-00000000000000000000000000000000", "Custom-App", "?api-version=2023-01-01", []byte(`[]`), nil)
	if resp.StatusCode != 404 || resp.Header.Get("x-ms-error-code") != "NotFound" {
		t.Fatalf("status %d body %v; want 404 NotFound", resp.StatusCode, body)
	}
}

func TestRateLimit429(t *testing.T) {
	e := newEnv(t, ingest.Options{RequestsPerMinute: 2})
	tok := e.token()
	for i := 0; i < 2; i++ {
		if resp, body := e.post(tok, e.rule.ImmutableID, "Custom-App", "?api-version=2023-01-01", []byte(`[{"Computer":"a"}]`), nil); resp.StatusCode != 204 {
			t.Fatalf("request %d: %d %v", i, resp.StatusCode, body)
		}
	}
	resp, body := e.post(tok, e.rule.ImmutableID, "Custom-App", "?api-version=2023-01-01", []byte(`[{"Computer":"a"}]`), nil)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || resp.Header.Get("x-ms-error-code") == "" {
		t.Fatalf("status %d, Retry-After %q, body %v; want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if rows := e.rows(); len(rows) != 2 {
		t.Fatalf("%d rows; want 2", len(rows))
	}
	// The SDK surfaces the status as a ResponseError.
	_, err := e.client().Upload(context.Background(), e.rule.ImmutableID, "Custom-App", []byte(`[]`), nil)
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != 429 {
		t.Fatalf("Upload err = %v; want a 429 ResponseError", err)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestTransformAndFanOut(t *testing.T) {
	e := newEnv(t, ingest.Options{})
	ctx := context.Background()
	ws := e.boot.Workspace
	rule, _, err := e.cat.PutDataCollectionRule(ctx, catalog.DataCollectionRule{
		SubscriptionID: e.boot.Subscription.ID, ResourceGroup: e.boot.ResourceGroup.Name, Name: "fan-out", Location: "local", Kind: "Direct",
		Properties: catalog.DCRProperties{
			StreamDeclarations: map[string]catalog.StreamDeclaration{"Custom-In": {Columns: []catalog.StreamColumn{
				{Name: "Time", Type: "datetime"}, {Name: "Host", Type: "string"}, {Name: "Count", Type: "long"},
			}}},
			Destinations: &catalog.DCRDestinations{LogAnalytics: []catalog.LogAnalyticsDestination{{Name: "la", WorkspaceResourceID: ws.ID()}}},
			DataFlows: []catalog.DataFlow{
				{Streams: []string{"Custom-In"}, Destinations: []string{"la"}, OutputStream: "Custom-App_CL",
					TransformKql: "source | project TimeGenerated = Time, Computer = Host, Count"},
				{Streams: []string{"Custom-In"}, Destinations: []string{"la"}, OutputStream: "Custom-App_CL",
					TransformKql: "source | where Count > 1 | extend Computer = toupper(Host), TimeGenerated = Time, Ratio = Count * 0.5"},
			},
		},
	}, catalog.Precondition{}, catalog.Actor{ID: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.cat.CreateRoleAssignment(ctx, rbac.RoleAssignment{
		ID: rule.ID() + "/providers/Microsoft.Authorization/roleAssignments/33333333-3333-4333-8333-333333333333", Name: "33333333-3333-4333-8333-333333333333",
		Scope: rbac.Scope(rule.ID()), RoleDefinitionID: rbac.RoleMonitoringMetricsPublisher, PrincipalID: e.objID,
		PrincipalType: string(identity.KindServicePrincipal), Created: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	body := []byte(`[{"Time":"2024-05-01T10:00:00Z","Host":"web-1","Count":1},{"Time":"2024-05-01T10:00:05Z","Host":"web-2","Count":4}]`)
	if _, err := e.client().Upload(ctx, rule.ImmutableID, "Custom-In", body, nil); err != nil {
		t.Fatalf("Upload: %v", err)
	}
	rows := e.rows()
	got := map[string]map[string]any{}
	for _, r := range rows {
		got[r["Computer"].(string)] = r
	}
	if len(rows) != 3 || got["web-1"] == nil || got["web-2"] == nil || got["WEB-2"] == nil {
		t.Fatalf("rows = %v; want web-1, web-2 (passthrough flow) and WEB-2 (filtered, upper-cased flow)", rows)
	}
	if got["WEB-2"]["Ratio"] != 2.0 || got["WEB-2"]["Count"] != int64(4) || got["web-1"]["Ratio"] != nil {
		t.Errorf("rows = %v", rows)
	}
	if tg := got["web-2"]["TimeGenerated"].(time.Time); !tg.Equal(time.Date(2024, 5, 1, 10, 0, 5, 0, time.UTC)) {
		t.Errorf("TimeGenerated = %v", tg)
	}
	// A value that does not convert fails the whole request: nothing of either flow is written.
	_, err = e.client().Upload(ctx, rule.ImmutableID, "Custom-In", []byte(`[{"Host":"web-9","Count":9},{"Count":"x"}]`), nil)
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != 400 {
		t.Fatalf("Upload(bad) err = %v; want 400", err)
	}
	if n := len(e.rows()); n != 3 {
		t.Fatalf("%d rows after a failed request; want 3", n)
	}
}

// TestRuleReadOncePerRequest: the RBAC scope comes from a cache of resource
// IDs by immutable ID, so each request reads its rule from the catalog once
// (in the handler); a deleted rule is noticed by that read and dropped.
func TestRuleReadOncePerRequest(t *testing.T) {
	e := newEnv(t, ingest.Options{})
	tok := e.token()
	upload := func() (*http.Response, map[string]any) {
		return e.post(tok, e.rule.ImmutableID, "Custom-App", "?api-version=2023-01-01", []byte(`[{"Computer":"a"}]`), nil)
	}
	for i, want := range []int64{2, 3, 4} { // the first request also fills the scope cache
		if resp, body := upload(); resp.StatusCode != 204 {
			t.Fatalf("request %d: %d %v", i, resp.StatusCode, body)
		}
		if got := e.lookups.Load(); got != want {
			t.Fatalf("after request %d: %d rule lookups; want %d", i, got, want)
		}
	}
	if _, ok, err := e.cat.DeleteDataCollectionRule(context.Background(), e.boot.Subscription.ID, e.boot.ResourceGroup.Name, "app-rule", catalog.Precondition{}); err != nil || !ok {
		t.Fatalf("delete rule: %v %v", ok, err)
	}
	// Authorized at the cached scope of the deleted rule: the handler's read answers 404.
	if resp, body := upload(); resp.StatusCode != 404 || resp.Header.Get("x-ms-error-code") != "NotFound" {
		t.Fatalf("after delete: %d %v; want 404 NotFound", resp.StatusCode, body)
	}
	// The entry is gone: the scope is "/" again, where the caller has no role.
	if resp, body := upload(); resp.StatusCode != 403 {
		t.Fatalf("second request after delete: %d %v; want 403", resp.StatusCode, body)
	}
	if got := e.rows(); len(got) != 3 {
		t.Errorf("%d rows; want the 3 from before the delete", len(got))
	}
}
