package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"custos/internal/activity"
	"custos/internal/catalog"
	"custos/internal/crypt"
	"custos/internal/identity"
	"custos/internal/store"
)

// queryCall posts one query (or a $batch when path says so) with the bearer
// token and extra headers, and decodes the answer.
func (ts *testServer) queryCall(t *testing.T, token, path string, body any, hdr ...string) (int, map[string]any, string) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, ts.url(path), bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := ts.client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw := readAll(t, resp.Body)
	var m map[string]any
	_ = json.Unmarshal([]byte(raw), &m)
	return resp.StatusCode, m, raw
}

// rowsOf returns the rows of the first table of a query answer, each row
// rendered with fmt.Sprint of its cells joined by "|".
func rowsOf(m map[string]any) []string {
	tables, _ := m["tables"].([]any)
	if len(tables) == 0 {
		return nil
	}
	t0, _ := tables[0].(map[string]any)
	rows, _ := t0["rows"].([]any)
	out := []string{}
	for _, r := range rows {
		cells, _ := r.([]any)
		parts := make([]string, len(cells))
		for i, c := range cells {
			parts[i] = fmt.Sprint(c)
		}
		out = append(out, strings.Join(parts, "|"))
	}
	return out
}

func tokenFor(t *testing.T, ts *testServer, adm AdminCredentials, clientID, secret, audience string) string {
	t.Helper()
	cred := credential(t, adm.Endpoint, adm.CAFile, adm.TenantID, clientID, secret)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{audience + "/.default"}})
	if err != nil {
		t.Fatalf("GetToken %s: %v", audience, err)
	}
	return tok.Token
}

// TestTableAndRowAccessActivityAndAudit drives table-level and row-level
// RBAC through the query API with principals whose roles were assigned
// through the ARM roleAssignments API, and checks that the activity log
// (AzureActivity, the file sink, the verified chain) and the query audit
// (LAQueryLogs through a diagnostic setting) record what happened.
func TestTableAndRowAccessActivityAndAudit(t *testing.T) {
	dir := newDataDir(t)
	cfg := testConfig(dir)
	activityFile := filepath.Join(t.TempDir(), "activity.jsonl")
	cfg.Activity.File = activityFile
	ts := startServer(t, cfg)
	adm := adminCredentials(t, dir)
	mgmt := managementToken(t, credential(t, adm.Endpoint, adm.CAFile, adm.TenantID, adm.ClientID, adm.ClientSecret))
	ctx := context.Background()
	ws := fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.OperationalInsights/workspaces/%s",
		adm.SubscriptionID, adm.ResourceGroup, adm.WorkspaceName)

	// Data: Heartbeat and Syslog rows from computers a and b.
	now := time.Now().UTC()
	for _, table := range []string{"Heartbeat", "Syslog"} {
		app, err := ts.store.Appender(ctx, store.TableRef{WorkspaceID: adm.WorkspaceID, Table: table})
		if err != nil {
			t.Fatal(err)
		}
		b := &store.Batch{Schema: store.Schema{{Name: "TimeGenerated", Type: store.TypeDatetime}, {Name: "Computer", Type: store.TypeString}},
			Cols: []*store.Vector{{Type: store.TypeDatetime, Int: []int64{store.TicksFromTime(now.Add(-time.Minute)), store.TicksFromTime(now)}},
				{Type: store.TypeString, Str: []string{"a", "b"}}}, Len: 2}
		if err := app.Append(b); err != nil {
			t.Fatal(err)
		}
		if err := app.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// Principals: T reads only Heartbeat, R reads rows of computer a, U
	// holds nothing.
	mk := func(name string) (identity.ServicePrincipal, string) {
		sp, secret, err := ts.tokens.CreateServicePrincipal(ctx, adm.TenantID, name)
		if err != nil {
			t.Fatal(err)
		}
		return sp, secret
	}
	spT, secT := mk("table-reader")
	spR, secR := mk("row-reader")
	spU, secU := mk("no-access")

	const ver = "?api-version=2022-04-01"
	arm := func(method, path, body string, want ...int) map[string]any {
		t.Helper()
		code, m, raw := ts.armCall(t, mgmt, method, path+ver, body)
		for _, w := range want {
			if code == w {
				return m
			}
		}
		t.Fatalf("%s %s: %d %s; want %v", method, path, code, raw, want)
		return nil
	}
	const queryOnly = "0b1a1f1e-1111-4111-8111-000000000001"
	const rowRole = "0b1a1f1e-1111-4111-8111-000000000002"
	roleDef := func(id, name string, dataActions string) {
		arm("PUT", ws+"/providers/Microsoft.Authorization/roleDefinitions/"+id, `{"properties":{"roleName":"`+name+`","description":"test",
			"permissions":[{"actions":["Microsoft.OperationalInsights/workspaces/read","Microsoft.OperationalInsights/workspaces/query/read"],
			"notActions":[],"dataActions":[`+dataActions+`],"notDataActions":[]}],"assignableScopes":["`+ws+`"]}}`, 201, 200)
	}
	roleDef(queryOnly, "Workspace query only", "")
	roleDef(rowRole, "Rows of computer a", `"Microsoft.OperationalInsights/workspaces/tables/data/read"`)
	assign := func(scope, name, role, principal, condition string) {
		extra := ""
		if condition != "" {
			c, _ := json.Marshal(condition)
			extra = `,"condition":` + string(c) + `,"conditionVersion":"2.0"`
		}
		arm("PUT", scope+"/providers/Microsoft.Authorization/roleAssignments/"+name, `{"properties":{"roleDefinitionId":"/subscriptions/`+
			adm.SubscriptionID+`/providers/Microsoft.Authorization/roleDefinitions/`+role+`","principalId":"`+principal+`","principalType":"ServicePrincipal"`+extra+`}}`, 201)
	}
	assign(ws, "a0000000-0000-4000-8000-000000000001", queryOnly, spT.ObjectID, "")
	assign(ws+"/tables/Heartbeat", "a0000000-0000-4000-8000-000000000002", "acdd72a7-3385-48ef-bd42-f606fba81ae7", spT.ObjectID, "") // Reader on the table
	assign(ws, "a0000000-0000-4000-8000-000000000003", rowRole, spR.ObjectID,
		`((!(ActionMatches{'Microsoft.OperationalInsights/workspaces/tables/data/read'})) OR (@Resource[Microsoft.OperationalInsights/workspaces/tables/record:Computer] StringEquals 'a'))`)
	// The query audit of the workspace goes to its own LAQueryLogs.
	arm("PUT", ws+"/providers/Microsoft.Insights/diagnosticSettings/audit", `{"properties":{"workspaceId":"`+ws+`","logs":[{"category":"Audit","enabled":true}]}}`, 201)

	qT := tokenFor(t, ts, adm, spT.AppID, secT, identity.AudienceQuery)
	qR := tokenFor(t, ts, adm, spR.AppID, secR, identity.AudienceQuery)
	qU := tokenFor(t, ts, adm, spU.AppID, secU, identity.AudienceQuery)
	qA := tokenFor(t, ts, adm, adm.ClientID, adm.ClientSecret, identity.AudienceQuery)
	qpath := "/v1/workspaces/" + adm.WorkspaceID + "/query"
	expect := func(who, tok, q string, wantCode int, wantRows ...string) map[string]any {
		t.Helper()
		code, m, raw := ts.queryCall(t, tok, qpath, map[string]string{"query": q}, "x-ms-app", "custos-test")
		if code != wantCode {
			t.Fatalf("%s: %q: %d %s; want %d", who, q, code, raw, wantCode)
		}
		if wantCode == 200 {
			if got := rowsOf(m); strings.Join(got, ",") != strings.Join(wantRows, ",") {
				t.Fatalf("%s: %q: rows %q; want %q", who, q, got, wantRows)
			}
		}
		return m
	}

	// Table-level: T sees Heartbeat only; Syslog is an unknown table
	// however it is reached.
	expect("T", qT, "Heartbeat | count", 200, "2")
	for _, q := range []string{
		"Syslog | count",
		"union Heartbeat, Syslog | count",
		"Heartbeat | join kind=inner (Syslog) on Computer | count",
		"Heartbeat | lookup (Syslog | project Computer) on Computer | count",
		"print n = toscalar(Syslog | count)",
		"Syslog | getschema",
		"AzureActivity | count",
		"LAQueryLogs | count",
	} {
		expect("T", qT, q, 400)
	}
	expect("T", qT, "union Sys*, Heart* | count", 200, "2")
	// include-permissions reports the denied tables.
	code, m, raw := ts.queryCall(t, qT, qpath, map[string]string{"query": "Heartbeat | take 1"}, "Prefer", "include-permissions=true")
	perm, _ := m["permissions"].(map[string]any)
	if code != 200 || perm == nil || !strings.Contains(raw, `"denyTables":[`) || !strings.Contains(raw, `"Syslog"`) || strings.Contains(raw, `"Heartbeat"]`) {
		t.Fatalf("include-permissions: %d %s", code, raw)
	}
	// /metadata lists only Heartbeat.
	code, m, raw = ts.queryCall(t, qT, "/v1/workspaces/"+adm.WorkspaceID+"/metadata", map[string]string{})
	if tables, _ := m["tables"].([]any); code != 200 || len(tables) != 1 || !strings.Contains(raw, `"name":"Heartbeat"`) {
		t.Fatalf("metadata for T: %d %s", code, raw)
	}

	// Row-level: R sees the rows of computer a only, whatever the construct.
	expect("R", qR, "Heartbeat | summarize n=count() by Computer", 200, "a|1")
	expect("R", qR, `Heartbeat | where Computer == "b" | count`, 200, "0")
	expect("R", qR, `union Heartbeat, Syslog | where Computer != "a" | count`, 200, "0")
	expect("R", qR, `union Heart*, Sys* | summarize n=count() by Computer`, 200, "a|2")
	expect("R", qR, "Heartbeat | join kind=inner (Syslog) on Computer | project Computer", 200, "a")
	expect("R", qR, "Heartbeat | lookup (Syslog | project Computer, S=1) on Computer | project Computer, S", 200, "a|1")
	expect("R", qR, `print n = toscalar(Syslog | where Computer == "b" | count)`, 200, "0")
	expect("R", qR, "let s = Syslog | project Computer; s | union (Heartbeat | project Computer) | summarize n=count() by Computer", 200, "a|2")
	expect("R", qR, "AzureActivity | count", 400) // no Computer column: the condition denies the table
	code, _, raw = ts.queryCall(t, qR, "/v1/$batch", map[string]any{"requests": []map[string]any{
		{"id": "1", "workspace": adm.WorkspaceID, "path": "/query", "method": "POST", "body": map[string]string{"query": "Syslog | project Computer"}},
		{"id": "2", "workspace": adm.WorkspaceID, "path": "/query", "method": "POST", "body": map[string]string{"query": "LAQueryLogs | count"}},
	}})
	if code != 200 || !strings.Contains(raw, `"rows":[["a"]]`) || strings.Contains(raw, `"b"`) || !strings.Contains(raw, `"status":400`) {
		t.Fatalf("batch for R: %d %s", code, raw)
	}

	// U may not query: 403, audited. A secret in an obfuscated literal
	// never reaches the audit.
	const secretLiteral = "hunter2-obfuscated-literal"
	expect("U", qU, `Heartbeat | where Computer == h"`+secretLiteral+`"`, 403)
	expect("T", qT, `Heartbeat | where Computer == h'`+secretLiteral+`' | count`, 200, "0")

	// A denied control-plane write and a failed sign-in are activity.
	mT := tokenFor(t, ts, adm, spT.AppID, secT, identity.AudienceManagement)
	if code, _, raw := ts.armCall(t, mT, "PUT", ws+"/tables/Denied_CL"+ver, `{"properties":{"schema":{"name":"Denied_CL","columns":[{"name":"TimeGenerated","type":"dateTime"}]}}}`); code != 403 {
		t.Fatalf("T creating a table: %d %s", code, raw)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {spU.AppID}, "client_secret": {"wrong-secret"},
		"scope": {identity.AudienceQuery + "/.default"}}
	resp, err := ts.client(t).PostForm(ts.url("/"+adm.TenantID+"/oauth2/v2.0/token"), form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 400 || resp.StatusCode >= 500 {
		t.Fatalf("token with a wrong secret: %d", resp.StatusCode)
	}

	// AzureActivity holds the role assignment writes, the denial and the
	// sign-in failure.
	m = expect("admin", qA, `AzureActivity | where OperationNameValue == "Microsoft.Authorization/roleAssignments/write" and ActivityStatusValue == "Succeeded" | count`, 200, "3")
	_ = m
	expect("admin", qA, `AzureActivity | where Caller == "`+spT.ObjectID+`" and ActivityStatusValue == "Failed" and OperationNameValue == "Microsoft.OperationalInsights/workspaces/tables/write" | project CategoryValue`, 200, "Security")
	expect("admin", qA, `AzureActivity | where OperationNameValue == "`+activity.OperationSignInFailure+`" and Caller == "`+spU.AppID+`" | count`, 200, "1")
	expect("admin", qA, `AzureActivity | where OperationNameValue == "Microsoft.Insights/diagnosticSettings/write" | count`, 200, "1")

	// LAQueryLogs: allowed and denied queries, caller, client app, redaction.
	expect("admin", qA, `LAQueryLogs | where AADObjectId == "`+spU.ObjectID+`" | project ResponseCode, RequestClientApp, AADClientId, AADTenantId`, 200,
		"403|custos-test|"+spU.AppID+"|"+adm.TenantID)
	expect("admin", qA, `LAQueryLogs | where AADObjectId == "`+spT.ObjectID+`" and ResponseCode == 200 | count`, 200, "4")
	expect("admin", qA, `LAQueryLogs | where AADObjectId == "`+spT.ObjectID+`" and ResponseCode == 400 | count`, 200, "8")
	expect("admin", qA, `LAQueryLogs | where AADObjectId == "`+spR.ObjectID+`" and ConditionalDataAccess == "Applied" | count`, 200, "11")
	expect("admin", qA, `LAQueryLogs | where QueryText has "hunter2" | count`, 200, "0")
	expect("admin", qA, `LAQueryLogs | where AADObjectId == "`+spU.ObjectID+`" | project QueryText`, 200, `Heartbeat | where Computer == "***"`)
	// The documented alert recipe: unauthorized query attempts.
	expect("admin", qA, `LAQueryLogs | where ResponseCode == 403 | summarize n=count() by AADObjectId`, 200, spU.ObjectID+"|1")

	if err := ts.stop(t); err != nil {
		t.Fatal(err)
	}
	// No file (store, WAL, catalog, activity sink) and no log line holds
	// the obfuscated literal.
	for _, root := range []string{dir, filepath.Dir(activityFile)} {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if bytes.Contains(b, []byte(secretLiteral)) {
				t.Errorf("%s holds the obfuscated literal", p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if strings.Contains(ts.logs.String(), secretLiteral) {
		t.Error("the server log holds the obfuscated literal")
	}
	sink, err := os.ReadFile(activityFile)
	if err != nil || !bytes.Contains(sink, []byte("roleAssignments/write")) {
		t.Fatalf("activity file sink: %v %q", err, sink)
	}
	if fi, err := os.Stat(activityFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("activity file mode: %v %v", fi.Mode(), err)
	}

	// The chain verifies, as `custos admin verify-activity-log` does it.
	key, err := crypt.OpenPlatformKey(filepath.Join(dir, "keys", "platform.key"))
	if err != nil {
		t.Fatal(err)
	}
	defer key.Destroy()
	cat, err := catalog.Open(ctx, catalog.Options{Path: filepath.Join(dir, "catalog.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	rep, err := activity.Verify(ctx, cat, key)
	if err != nil || rep.Records < 8 || rep.Checkpoints < 1 {
		t.Fatalf("verify activity log: %+v %v", rep, err)
	}
}
