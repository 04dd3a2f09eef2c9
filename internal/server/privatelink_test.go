package server

import (
	"net/http"
	"strings"
	"testing"
)

// TestPrivateLinkScopeAccessModes runs a server with a public and a private
// loopback listener. The workspace's own public network access stays
// Enabled; a private link scope holding it (created through ARM) with an
// access mode of PrivateOnly refuses public requests of that kind with
// Azure's 403 and serves the private listener, for ingestion and query
// separately; changing the mode or removing the scoped resource applies to
// the next request.
func TestPrivateLinkScopeAccessModes(t *testing.T) {
	cfg := testConfig(newDataDir(t))
	cfg.Listeners = []ListenerConfig{{Address: "127.0.0.1:0", Private: true}}
	f := newNetworkFixture(t, cfg)
	c := netClient(t, f.ts)
	scope := strings.TrimSuffix(f.ws, "/providers/Microsoft.OperationalInsights/workspaces/"+f.adm.WorkspaceName) +
		"/providers/Microsoft.Insights/privateLinkScopes/ampls"
	const v = "?api-version=2021-07-01-preview"
	putScope := func(ingestion, query string) {
		t.Helper()
		code, got, raw := f.ts.armCall(t, f.mgmt, "PUT", scope+v, `{"location":"global","properties":{"accessModeSettings":{
			"ingestionAccessMode":"`+ingestion+`","queryAccessMode":"`+query+`","exclusions":[]}}}`)
		props, _ := got["properties"].(map[string]any)
		ams, _ := props["accessModeSettings"].(map[string]any)
		if (code != 200 && code != 201) || ams["ingestionAccessMode"] != ingestion || ams["queryAccessMode"] != query ||
			got["type"] != "microsoft.insights/privateLinkScopes" || props["provisioningState"] != "Succeeded" {
			t.Fatalf("PUT scope %s/%s: %d %s", ingestion, query, code, raw)
		}
	}
	putScope("PrivateOnly", "Open")

	// Not scoped yet: the scope changes nothing.
	if code, _, raw := f.upload(t, c, f.public, "before scoping"); code != http.StatusNoContent {
		t.Fatalf("public ingestion before scoping: %d %s", code, raw)
	}
	code, got, raw := f.ts.armCall(t, f.mgmt, "PUT", scope+"/scopedResources/ws"+v, `{"properties":{"linkedResourceId":"`+f.ws+`"}}`)
	props, _ := got["properties"].(map[string]any)
	if code != 201 || !strings.EqualFold(props["linkedResourceId"].(string), f.ws) || got["type"] != "Microsoft.Insights/privateLinkScopes/scopedResources" {
		t.Fatalf("PUT scoped resource: %d %s", code, raw)
	}

	// Ingestion PrivateOnly: public ingestion refused, private served; queries open.
	code, m, raw := f.upload(t, c, f.public, "public")
	wantNetworkDenied(t, "public ingestion (PrivateOnly)", code, m, raw)
	if code, _, raw := f.upload(t, c, f.private, "private"); code != http.StatusNoContent {
		t.Fatalf("private ingestion: %d %s", code, raw)
	}
	if code, m, raw := f.runQuery(t, c, f.public, "Net_CL | count"); code != 200 || strings.Join(rowsOf(m), ",") != "2" {
		t.Fatalf("public query with query mode Open: %d %s", code, raw)
	}

	// Query PrivateOnly, ingestion Open.
	putScope("Open", "PrivateOnly")
	if code, _, raw := f.upload(t, c, f.public, "public again"); code != http.StatusNoContent {
		t.Fatalf("public ingestion with ingestion mode Open: %d %s", code, raw)
	}
	code, m, raw = f.runQuery(t, c, f.public, "Net_CL | count")
	wantNetworkDenied(t, "public query (PrivateOnly)", code, m, raw)
	code, m, raw = netCall(t, c, f.public, f.query, "GET", "/v1/workspaces/"+f.adm.WorkspaceID+"/metadata", nil)
	wantNetworkDenied(t, "public metadata (PrivateOnly)", code, m, raw)
	if code, m, raw := f.runQuery(t, c, f.private, "Net_CL | count"); code != 200 || strings.Join(rowsOf(m), ",") != "3" {
		t.Fatalf("private query: %d %s", code, raw)
	}
	// The control plane stays reachable on the public listener.
	if code, got, raw := f.ts.armCall(t, f.mgmt, "GET", scope+"/scopedResources"+v, ""); code != 200 || len(got["value"].([]any)) != 1 {
		t.Fatalf("list scoped resources: %d %s", code, raw)
	}

	// Removing the workspace from the scope opens it again.
	if code, _, raw := f.ts.armCall(t, f.mgmt, "DELETE", scope+"/scopedResources/ws"+v, ""); code != 200 {
		t.Fatalf("DELETE scoped resource: %d %s", code, raw)
	}
	if code, _, raw := f.runQuery(t, c, f.public, "Net_CL | count"); code != 200 {
		t.Fatalf("public query after unscoping: %d %s", code, raw)
	}
	// Bad bodies get Azure's 400 envelope.
	for _, body := range []string{
		`{"location":"global","properties":{"accessModeSettings":{"ingestionAccessMode":"Closed","queryAccessMode":"Open"}}}`,
		`{"location":"global","properties":{}}`,
		`{"properties":{"accessModeSettings":{"ingestionAccessMode":"Open","queryAccessMode":"Open"}}}`,
		`{"location":"global","properties":{"accessModeSettings":{"ingestionAccessMode":"Open","queryAccessMode":"Open"}},"unknown":1}`,
	} {
		code, got, raw := f.ts.armCall(t, f.mgmt, "PUT", scope+v, body)
		e, _ := got["error"].(map[string]any)
		if code != 400 || e["code"] == nil {
			t.Errorf("PUT %s: %d %s; want 400 with an error envelope", body, code, raw)
		}
	}
	if code, _, raw := f.ts.armCall(t, f.mgmt, "DELETE", scope+v, ""); code != 200 {
		t.Fatalf("DELETE scope: %d %s", code, raw)
	}
}
