package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azingest "github.com/Azure/azure-sdk-for-go/sdk/monitor/ingestion/azlogs"
	azquery "github.com/Azure/azure-sdk-for-go/sdk/monitor/query/azlogs"

	"custos/internal/identity"
	"custos/internal/rbac"
)

// armCall sends one ARM request with the bearer token and decodes the JSON
// answer.
func (ts *testServer) armCall(t *testing.T, token, method, path, body string) (int, map[string]any, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.url(path), rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
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

// TestFullStack drives the whole server the way a user does: credentials
// from admin.json, ARM requests for a table and a DCR, the Azure SDK's
// ingestion client, then the Azure SDK's query client.
func TestFullStack(t *testing.T) {
	dir := newDataDir(t)
	ts := startServer(t, testConfig(dir))
	adm := adminCredentials(t, dir)
	cred := credential(t, adm.Endpoint, adm.CAFile, adm.TenantID, adm.ClientID, adm.ClientSecret)
	mgmt := managementToken(t, cred)

	ws := fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.OperationalInsights/workspaces/%s",
		adm.SubscriptionID, adm.ResourceGroup, adm.WorkspaceName)
	const ver = "?api-version=2022-10-01"
	code, _, raw := ts.armCall(t, mgmt, "PUT", ws+"/tables/App_CL"+ver, `{"properties":{"schema":{"name":"App_CL","columns":[
		{"name":"TimeGenerated","type":"dateTime"},{"name":"Message","type":"string"},{"name":"Level","type":"int"}]}}}`)
	if code != 200 && code != 201 {
		t.Fatalf("PUT table: %d %s", code, raw)
	}
	// ARM paths are case-insensitive.
	code, got, raw := ts.armCall(t, mgmt, "GET", strings.ToUpper(ws[:len("/subscriptions/")])+ws[len("/subscriptions/"):]+"/TABLES/App_CL"+ver, "")
	if code != 200 || got["name"] != "App_CL" {
		t.Fatalf("GET table with upper-case path: %d %s", code, raw)
	}

	dcrID := fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Insights/dataCollectionRules/app-dcr", adm.SubscriptionID, adm.ResourceGroup)
	code, got, raw = ts.armCall(t, mgmt, "PUT", dcrID+"?api-version=2023-03-11", `{"location":"local","kind":"Direct","properties":{
		"streamDeclarations":{"Custom-App":{"columns":[{"name":"TimeGenerated","type":"datetime"},{"name":"Message","type":"string"},{"name":"Level","type":"int"}]}},
		"destinations":{"logAnalytics":[{"workspaceResourceId":"`+ws+`","name":"la"}]},
		"dataFlows":[{"streams":["Custom-App"],"destinations":["la"],"outputStream":"Custom-App_CL","transformKql":"source | where Level >= 2"}]}}`)
	if code != 200 && code != 201 {
		t.Fatalf("PUT DCR: %d %s", code, raw)
	}
	props, _ := got["properties"].(map[string]any)
	immutableID, _ := props["immutableId"].(string)
	endpoints, _ := props["endpoints"].(map[string]any)
	if immutableID == "" || endpoints["logsIngestion"] != ts.Endpoint() {
		t.Fatalf("DCR response lacks immutableId or the ingestion endpoint: %s", raw)
	}

	// Owner has no data actions (as in Azure): ingestion is denied until the
	// admin also holds Monitoring Metrics Publisher on the rule.
	sdkOpts := dataPlaneOptions(t, adm)
	ing, err := azingest.NewClient(adm.Endpoint, cred, &azingest.ClientOptions{ClientOptions: sdkOpts})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	now := time.Now().UTC().Truncate(time.Second)
	logs := fmt.Sprintf(`[{"TimeGenerated":%q,"Message":"debug noise","Level":1},
		{"TimeGenerated":%q,"Message":"disk almost full","Level":3},
		{"TimeGenerated":%q,"Message":"disk full","Level":4}]`,
		now.Add(-2*time.Minute).Format(time.RFC3339), now.Add(-time.Minute).Format(time.RFC3339), now.Format(time.RFC3339))
	_, err = ing.Upload(ctx, immutableID, "Custom-App", []byte(logs), nil)
	var re *azcore.ResponseError
	if err == nil || !asResponseError(err, &re) || re.StatusCode != http.StatusForbidden {
		t.Fatalf("upload without a data role: %v; want 403", err)
	}

	name := "22222222-2222-4222-8222-222222222222"
	sp, err := ts.catalog.ServicePrincipalByAppID(ctx, adm.TenantID, adm.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.catalog.CreateRoleAssignment(ctx, rbac.RoleAssignment{
		ID: dcrID + "/providers/Microsoft.Authorization/roleAssignments/" + name, Name: name, Scope: rbac.Scope(dcrID),
		RoleDefinitionID: rbac.RoleMonitoringMetricsPublisher, PrincipalID: sp.ObjectID,
		PrincipalType: string(identity.KindServicePrincipal), Created: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	ts.rbac.Invalidate()
	if _, err := ing.Upload(ctx, immutableID, "Custom-App", []byte(logs), nil); err != nil {
		t.Fatalf("upload: %v", err)
	}

	// The query SDK reads back what the transformation kept.
	qc, err := azquery.NewClient(cred, &azquery.ClientOptions{ClientOptions: sdkOpts})
	if err != nil {
		t.Fatal(err)
	}
	q := "App_CL | order by Level asc | project Message, Level"
	res, err := qc.QueryWorkspace(ctx, adm.WorkspaceID, azquery.QueryBody{Query: &q}, nil)
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	if res.Error != nil {
		t.Fatalf("query partial error: %v", res.Error)
	}
	if len(res.Tables) != 1 {
		t.Fatalf("query returned %d tables", len(res.Tables))
	}
	var rows []string
	for _, r := range res.Tables[0].Rows {
		rows = append(rows, fmt.Sprint(r...))
	}
	if want := []string{"disk almost full3", "disk full4"}; strings.Join(rows, "|") != strings.Join(want, "|") {
		t.Fatalf("rows %q; want %q", rows, want)
	}

	// A bad query is a 400 in the Log Analytics envelope, through the SDK.
	bad := "App_CL | where"
	_, err = qc.QueryWorkspace(ctx, adm.WorkspaceID, azquery.QueryBody{Query: &bad}, nil)
	if !asResponseError(err, &re) || re.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad query: %v; want a 400 ResponseError", err)
	}

	// Purge through ARM: 202 with a status location, the worker started by
	// Run completes it, and the purged row no longer answers queries.
	code, got, raw = ts.armCall(t, mgmt, "POST", ws+"/purge?api-version=2020-08-01",
		`{"table":"App_CL","filters":[{"column":"Message","operator":"==","value":"disk full"}]}`)
	opID, _ := got["operationId"].(string)
	if code != http.StatusAccepted || opID == "" {
		t.Fatalf("purge: %d %s; want 202 with an operationId", code, raw)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		code, got, raw = ts.armCall(t, mgmt, "GET", ws+"/operations/"+opID+"?api-version=2020-08-01", "")
		if code == 200 && got["status"] == "completed" {
			break
		}
		if code != 200 || got["status"] != "pending" || time.Now().After(deadline) {
			t.Fatalf("purge status: %d %s; want pending, then completed", code, raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
	res, err = qc.QueryWorkspace(ctx, adm.WorkspaceID, azquery.QueryBody{Query: &q}, nil)
	if err != nil || len(res.Tables) != 1 || len(res.Tables[0].Rows) != 1 || fmt.Sprint(res.Tables[0].Rows[0]...) != "disk almost full3" {
		t.Fatalf("query after purge: %v %+v; want only the unpurged row", err, res)
	}

	// Data survives a restart (same port, so tokens stay valid).
	if err := ts.stop(t); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(dir)
	cfg.Listen = ts.Addr().String()
	startServer(t, cfg)
	res, err = qc.QueryWorkspace(ctx, adm.WorkspaceID, azquery.QueryBody{Query: &q}, nil)
	if err != nil || len(res.Tables) != 1 || len(res.Tables[0].Rows) != 1 {
		t.Fatalf("query after restart: %v %+v; want the one unpurged row", err, res)
	}
}

func asResponseError(err error, target **azcore.ResponseError) bool {
	if err == nil {
		return false
	}
	re, ok := err.(*azcore.ResponseError)
	if !ok {
		return false
	}
	*target = re
	return true
}
