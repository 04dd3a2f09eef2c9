package arm_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"custos/internal/api"
	"custos/internal/arm"
	"custos/internal/catalog"
	"custos/internal/rbac"
)

// fuzzTarget serves one route's handler directly, on a real catalog with a
// workspace ws-one (and table App_CL) in rg1.
type fuzzTarget struct {
	route api.Route
	vals  map[string]string
}

func newFuzzTarget(f *testing.F, method, suffix string, vals map[string]string) *fuzzTarget {
	f.Helper()
	ctx := context.Background()
	cat, err := catalog.Open(ctx, catalog.Options{Path: filepath.Join(f.TempDir(), "catalog.db")})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { cat.Close() })
	if _, err := cat.Bootstrap(ctx, catalog.BootstrapOptions{SubscriptionID: sub}); err != nil {
		f.Fatal(err)
	}
	if _, _, err := cat.PutResourceGroup(ctx, catalog.ResourceGroup{SubscriptionID: sub, Name: "rg1", Location: "westeurope"}); err != nil {
		f.Fatal(err)
	}
	a := arm.New(arm.Options{Catalog: cat, Transforms: engineTransforms{}})
	// Create the workspace and table through the API itself.
	for _, step := range []struct{ suffix, body string }{
		{"{workspaceName}", `{"location":"westeurope"}`},
		{"{tableName}", customTable},
	} {
		ft := &fuzzTarget{vals: map[string]string{"subscriptionId": sub, "resourceGroupName": "rg1", "workspaceName": "ws-one", "tableName": "App_CL"}}
		ft.route = findRoute(f, a, "PUT", step.suffix)
		if code := ft.serve(step.body); code >= 300 {
			f.Fatalf("setup %s: status %d", step.suffix, code)
		}
	}
	return &fuzzTarget{route: findRoute(f, a, method, suffix), vals: vals}
}

func findRoute(f *testing.F, a *arm.API, method, suffix string) api.Route {
	for _, rt := range a.Routes() {
		if rt.Method == method && strings.HasSuffix(rt.Pattern, suffix) {
			return rt
		}
	}
	f.Fatalf("no %s route ending in %s", method, suffix)
	return api.Route{}
}

func (ft *fuzzTarget) serve(body string) int {
	req := httptest.NewRequest(ft.route.Method, "/x?api-version=2023-09-01", strings.NewReader(body))
	for k, v := range ft.vals {
		req.SetPathValue(k, v)
	}
	rec := httptest.NewRecorder()
	ft.route.Handler(rec, req, rbac.Decision{Allowed: true})
	return rec.Code
}

func fuzzBody(f *testing.F, ft *fuzzTarget, seeds ...string) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		if code := ft.serve(body); code >= 500 || code < 200 {
			t.Fatalf("status %d for body %q", code, body)
		}
	})
}

func FuzzWorkspaceBody(f *testing.F) {
	ft := newFuzzTarget(f, "PUT", "{workspaceName}", map[string]string{"subscriptionId": sub, "resourceGroupName": "rg1", "workspaceName": "ws-fuzz"})
	fuzzBody(f, ft,
		`{"location":"westeurope"}`,
		`{"location":"westeurope","tags":{"a":"b"},"properties":{"sku":{"name":"PerGB2018"},"retentionInDays":60,"features":{"enableLogAccessUsingOnlyResourcePermissions":true},"publicNetworkAccessForQuery":"Disabled","workspaceCapping":{"dailyQuotaGb":2.5}}}`,
		`{"location":"westeurope","properties":{"retentionInDays":-5,"customerId":"x"}}`,
		`{"location":1}`, `[]`, `null`, `{"properties":null}`, "")
}

func FuzzTableBody(f *testing.F) {
	ft := newFuzzTarget(f, "PUT", "{tableName}", map[string]string{"subscriptionId": sub, "resourceGroupName": "rg1", "workspaceName": "ws-one", "tableName": "Fuzz_CL"})
	fuzzBody(f, ft,
		customTable,
		`{"properties":{"schema":{"columns":[{"name":"TimeGenerated","type":"dateTime"},{"name":"X","type":"dynamic","dataTypeHint":"uri"}]},"plan":"Basic","totalRetentionInDays":100}}`,
		`{"properties":{"schema":{"columns":[{"name":"id","type":"string"}]}}}`,
		`{"properties":{"retentionInDays":0}}`, `{"properties":{"schema":{"columns":null}}}`, `{}`, "")
}

func FuzzDCRBody(f *testing.F) {
	ft := newFuzzTarget(f, "PUT", "{dataCollectionRuleName}", map[string]string{"subscriptionId": sub, "resourceGroupName": "rg1", "dataCollectionRuleName": "dcr-fuzz"})
	fuzzBody(f, ft,
		dcrBody("Custom-App", okColumns, okFlow),
		dcrBody("Custom-App", okColumns, `{"streams":["Custom-App"],"destinations":["la"],"outputStream":"Custom-App_CL","transformKql":"source | extend Level = toint(Level) + 1"}`),
		dcrBody("Custom-App", okColumns, `{"streams":["Microsoft-Syslog"],"destinations":["la"]}`),
		strings.Replace(dcrBody("Custom-App", okColumns, okFlow), `"dataFlows"`, `"dataSources":{"syslog":[{"name":"s","streams":["Microsoft-Syslog"],"facilityNames":["*"]}]},"dataFlows"`, 1),
		`{"location":"x","properties":{"streamDeclarations":{"Custom-":{"columns":[]}},"dataFlows":[{}]}}`,
		`{"location":"x","properties":{"dataSources":{"syslog":[1,null,"x"]}}}`, `{"properties":{}}`, "")
}
