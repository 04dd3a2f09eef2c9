package server

import (
	"fmt"
	"strings"
	"testing"
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
