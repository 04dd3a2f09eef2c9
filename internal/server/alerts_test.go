package server

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"custos/internal/alert"
	"custos/internal/rbac"
)

// TestAlertRoutesWired: the alert service's ARM routes are served behind
// authentication and RBAC, and a rule created through them gets a
// system-assigned identity and an evaluation status.
func TestAlertRoutesWired(t *testing.T) {
	dir := newDataDir(t)
	ts := startServer(t, testConfig(dir))
	adm := adminCredentials(t, dir)
	cred := credential(t, adm.Endpoint, adm.CAFile, adm.TenantID, adm.ClientID, adm.ClientSecret)
	mgmt := managementToken(t, cred)

	rg := fmt.Sprintf("/subscriptions/%s/resourceGroups/%s", adm.SubscriptionID, adm.ResourceGroup)
	ws := rg + "/providers/Microsoft.OperationalInsights/workspaces/" + adm.WorkspaceName
	code, _, raw := ts.armCall(t, mgmt, "PUT", rg+"/providers/Microsoft.Insights/actionGroups/ops?api-version=2023-01-01",
		`{"location":"Global","properties":{"groupShortName":"ops","emailReceivers":[{"name":"oncall","emailAddress":"oncall@example.com","useCommonAlertSchema":true}]}}`)
	if code != 201 {
		t.Fatalf("PUT action group: %d %s", code, raw)
	}
	code, got, raw := ts.armCall(t, mgmt, "PUT", rg+"/providers/Microsoft.Insights/scheduledQueryRules/heartbeat-missing?api-version=2023-12-01",
		`{"location":"local","identity":{"type":"SystemAssigned"},"properties":{"severity":1,"enabled":true,"scopes":["`+ws+`"],
		"evaluationFrequency":"PT5M","windowSize":"PT10M","criteria":{"allOf":[{"query":"Heartbeat","timeAggregation":"Count",
		"operator":"LessThan","threshold":1}]},"actions":{"actionGroups":["`+rg+`/providers/Microsoft.Insights/actionGroups/ops"]}}}`)
	if code != 201 {
		t.Fatalf("PUT rule: %d %s", code, raw)
	}
	if id, _ := got["identity"].(map[string]any); id["principalId"] == "" || id["type"] != "SystemAssigned" {
		t.Fatalf("rule identity: %s", raw)
	}
	code, _, raw = ts.armCall(t, mgmt, "GET", "/subscriptions/"+adm.SubscriptionID+"/providers/Microsoft.AlertsManagement/alerts?api-version=2019-05-05-preview", "")
	if code != 200 || !strings.Contains(raw, `"value":[]`) {
		t.Fatalf("list alerts: %d %s", code, raw)
	}
	if code, _, _ = ts.armCall(t, "", "GET", rg+"/providers/Microsoft.Insights/scheduledQueryRules?api-version=2023-12-01", ""); code != 401 {
		t.Fatalf("anonymous list: %d; want 401", code)
	}
}

// TestActivityLogAlertThroughServer: on the whole server, creating a role
// assignment and requesting a purge through ARM append activity records
// that fire an activity log alert, whose notification reaches an HTTPS
// webhook receiver (trusted through alerts.webhookCAFile) signed and in the
// common alert schema.
func TestActivityLogAlertThroughServer(t *testing.T) {
	type call struct {
		header http.Header
		body   []byte
	}
	var mu sync.Mutex
	var calls []call
	hook := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		calls = append(calls, call{r.Header.Clone(), b})
		mu.Unlock()
	}))
	defer hook.Close()
	dir := newDataDir(t)
	caFile := filepath.Join(t.TempDir(), "hook-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hook.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(dir)
	cfg.Alerts.WebhookCAFile = caFile
	ts := startServer(t, cfg)
	adm := adminCredentials(t, dir)
	cred := credential(t, adm.Endpoint, adm.CAFile, adm.TenantID, adm.ClientID, adm.ClientSecret)
	mgmt := managementToken(t, cred)

	sub := "/subscriptions/" + adm.SubscriptionID
	rg := sub + "/resourceGroups/" + adm.ResourceGroup
	ws := rg + "/providers/Microsoft.OperationalInsights/workspaces/" + adm.WorkspaceName
	code, got, raw := ts.armCall(t, mgmt, "PUT", rg+"/providers/Microsoft.Insights/actionGroups/sec?api-version=2023-01-01",
		`{"location":"Global","properties":{"groupShortName":"sec","webhookReceivers":[{"name":"soc","serviceUri":"`+hook.URL+`/events","useCommonAlertSchema":true}]}}`)
	if code != 201 {
		t.Fatalf("PUT action group: %d %s", code, raw)
	}
	secret := got["properties"].(map[string]any)["webhookReceivers"].([]any)[0].(map[string]any)["custosSigningSecret"].(string)
	code, _, raw = ts.armCall(t, mgmt, "PUT", rg+"/providers/Microsoft.Insights/activityLogAlerts/access?api-version=2020-10-01",
		`{"location":"global","properties":{"scopes":["`+sub+`"],"enabled":true,"condition":{"allOf":[
			{"field":"category","equals":"Administrative"},
			{"anyOf":[{"field":"operationName","equals":"Microsoft.Authorization/roleAssignments/write"},
			          {"field":"operationName","equals":"Microsoft.OperationalInsights/workspaces/purge/action"}]},
			{"field":"status","equals":"Succeeded"}]},
		"actions":{"actionGroups":[{"actionGroupId":"`+rg+`/providers/Microsoft.Insights/actionGroups/sec"}]}}}`)
	if code != 201 {
		t.Fatalf("PUT activity log alert: %d %s", code, raw)
	}

	// A role assignment for a new user-assigned identity.
	code, got, raw = ts.armCall(t, mgmt, "PUT", rg+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/reader?api-version=2023-01-31",
		`{"location":"local"}`)
	if code != 201 {
		t.Fatalf("PUT identity: %d %s", code, raw)
	}
	principal := got["properties"].(map[string]any)["principalId"].(string)
	code, _, raw = ts.armCall(t, mgmt, "PUT", ws+"/providers/Microsoft.Authorization/roleAssignments/b0000000-0000-4000-8000-000000000001?api-version=2022-04-01",
		`{"properties":{"roleDefinitionId":"`+sub+`/providers/Microsoft.Authorization/roleDefinitions/`+rbac.RoleLogAnalyticsReader+
			`","principalId":"`+principal+`","principalType":"ServicePrincipal"}}`)
	if code != 201 {
		t.Fatalf("PUT role assignment: %d %s", code, raw)
	}
	// A purge request.
	code, _, raw = ts.armCall(t, mgmt, "POST", ws+"/purge?api-version=2020-08-01",
		`{"table":"Heartbeat","filters":[{"column":"Computer","operator":"==","value":"gone"}]}`)
	if code != http.StatusAccepted {
		t.Fatalf("purge: %d %s", code, raw)
	}

	var got2 []call
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		mu.Lock()
		got2 = append([]call(nil), calls...)
		mu.Unlock()
		if len(got2) >= 2 || time.Now().After(deadline) {
			break
		}
	}
	if len(got2) != 2 {
		t.Fatalf("webhook calls: %d; want 2 (role assignment and purge)", len(got2))
	}
	ops := map[string]bool{}
	for _, c := range got2 {
		if err := alert.VerifySignature([]byte(secret), c.header.Get(alert.HeaderSignature), c.header.Get(alert.HeaderTimestamp), c.body, time.Now(), 0); err != nil {
			t.Fatalf("signature: %v", err)
		}
		var p alert.CommonAlertSchema
		if err := json.Unmarshal(c.body, &p); err != nil {
			t.Fatal(err)
		}
		a := p.Data.AlertContext.Activity
		if p.Data.Essentials.SignalType != "Activity Log" || p.Data.Essentials.MonitoringService != "Activity Log - Administrative" ||
			a == nil || a.Status != "Succeeded" || a.Caller == "" || a.CorrelationID == "" {
			t.Fatalf("payload: %s", c.body)
		}
		ops[a.OperationName] = true
	}
	if !ops["Microsoft.Authorization/roleAssignments/write"] || !ops["Microsoft.OperationalInsights/workspaces/purge/action"] {
		t.Fatalf("alerted operations: %v", ops)
	}
}
