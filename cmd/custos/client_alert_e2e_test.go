package main

import (
	"strings"
	"testing"
)

// TestAlertVerbs drives `custos alert` against a real server: an action
// group and a rule from ARM JSON (stdin), lists with the rule's evaluation
// status, the (empty) alert list, a validation error, and deletion.
func TestAlertVerbs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	dir, admin, ws := startAdminServer(t, nil)
	rg := "/subscriptions/" + admin.SubscriptionID + "/resourceGroups/" + admin.ResourceGroup

	out := custos(t, dir, `{"location":"Global","properties":{"groupShortName":"ops","webhookReceivers":[
		{"name":"hook","serviceUri":"https://hooks.example.com/custos","useCommonAlertSchema":true}]}}`,
		"alert", "action-group", "create", "ops", "-f", "-")
	if !strings.Contains(out, `"custosSigningSecret"`) {
		t.Fatalf("create action group did not show the signing secret once:\n%s", out)
	}
	custos(t, dir, `{"location":"local","identity":{"type":"SystemAssigned"},"properties":{"severity":3,"scopes":["`+ws+`"],
		"evaluationFrequency":"PT5M","windowSize":"PT5M","criteria":{"allOf":[{"query":"Heartbeat","timeAggregation":"Count",
		"operator":"LessThan","threshold":1}]},"actions":{"actionGroups":["`+rg+`/providers/Microsoft.Insights/actionGroups/ops"]}}}`,
		"alert", "rule", "create", "no-heartbeat", "-f", "-")
	if out = custos(t, dir, "", "alert", "rule", "list"); !strings.Contains(out, "no-heartbeat") || !strings.Contains(out, "Sev3") {
		t.Fatalf("rule list:\n%s", out)
	}
	if out = custos(t, dir, "", "alert", "action-group", "list"); !strings.Contains(out, "0 email, 1 webhook receivers") {
		t.Fatalf("action group list:\n%s", out)
	}
	if out = custos(t, dir, "", "alert", "rule", "show", "no-heartbeat"); !strings.Contains(out, `"principalId"`) || strings.Contains(out, "custosSigningSecret") {
		t.Fatalf("rule show:\n%s", out)
	}
	custos(t, dir, `{"location":"global","properties":{"severity":2,"scopes":["`+ws+`"],"evaluationFrequency":"PT1M","windowSize":"PT5M",
		"criteria":{"odata.type":"Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria","allOf":[{"criterionType":"StaticThresholdCriterion",
		"name":"cpu","metricName":"% Processor Time","metricNamespace":"Processor","operator":"GreaterThan","threshold":90,"timeAggregation":"Average"}]},
		"actions":[{"actionGroupId":"`+rg+`/providers/Microsoft.Insights/actionGroups/ops"}]}}`,
		"alert", "metric-rule", "create", "cpu", "-f", "-")
	if out = custos(t, dir, "", "alert", "metric-rule", "list"); !strings.Contains(out, "cpu") || !strings.Contains(out, "Sev2") {
		t.Fatalf("metric rule list:\n%s", out)
	}
	custos(t, dir, `{"location":"global","properties":{"scopes":["/subscriptions/`+admin.SubscriptionID+`"],"condition":{"allOf":[
		{"field":"operationName","equals":"Microsoft.Authorization/roleAssignments/write"}]},
		"actions":{"actionGroups":[{"actionGroupId":"`+rg+`/providers/Microsoft.Insights/actionGroups/ops"}]}}}`,
		"alert", "activity-rule", "create", "access", "-f", "-")
	if out = custos(t, dir, "", "alert", "activity-rule", "show", "access"); !strings.Contains(out, "roleAssignments/write") {
		t.Fatalf("activity rule show:\n%s", out)
	}
	if ae := custosErr(t, dir, `{"location":"global","properties":{"scopes":["/subscriptions/`+admin.SubscriptionID+`"],"condition":{"allOf":[{"field":"color","equals":"red"}]}}}`,
		"alert", "activity-rule", "create", "bad", "-f", "-"); ae.StatusCode != 400 || !strings.Contains(ae.Message, "color") {
		t.Fatalf("bad activity rule: %+v", ae)
	}
	if out = custos(t, dir, "", "alert", "list"); !strings.Contains(out, "ID") {
		t.Fatalf("alert list:\n%s", out)
	}
	ae := custosErr(t, dir, `{"location":"local","properties":{"severity":9,"scopes":["`+ws+`"]}}`, "alert", "rule", "create", "bad", "-f", "-")
	if ae.StatusCode != 400 || !strings.Contains(ae.Message, "severity") {
		t.Fatalf("bad rule: %+v", ae)
	}
	if out = custos(t, dir, "", "alert", "rule", "delete", "no-heartbeat"); !strings.Contains(out, "deleted") {
		t.Fatalf("delete:\n%s", out)
	}
}
