package alert

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"custos/internal/activity"
)

func (e *env) activityAlertID(name string) string {
	return "/subscriptions/" + e.sub() + "/resourceGroups/" + e.rg() + "/providers/Microsoft.Insights/activityLogAlerts/" + name
}

// TestActivityLogAlerts: activity log alert rules fire on the matching
// records of the tamper-evident activity log — once per record and rule,
// across a restart — with the Activity Log common alert schema, and never
// on records from before the rule existed.
func TestActivityLogAlerts(t *testing.T) {
	h := newHook(t, nil)
	e := newEnv(t, envConfig{webhookRoots: tlsRoots(h.srv)})
	ctx := context.Background()
	alog, err := activity.New(ctx, activity.Options{Store: e.cat, Keys: e.keys})
	if err != nil {
		t.Fatal(err)
	}
	e.putGroup("sec", `{"groupShortName":"sec","webhookReceivers":[{"name":"hook","serviceUri":"`+h.srv.URL+`/activity","useCommonAlertSchema":true}]}`)
	e.clock.Set(time.Now().UTC())
	if err := e.svc.ProcessActivity(ctx); err != nil { // starts at the current end of the log
		t.Fatal(err)
	}
	sub := "/subscriptions/" + e.sub()
	ws := e.wsID()
	rec := func(op, resource, status string, props map[string]string) {
		t.Helper()
		if _, err := alog.Record(ctx, activity.Record{Time: e.clock.Now(), OperationName: op, Category: activity.CategoryAdministrative,
			Status: status, ResourceID: resource, Caller: "11111111-2222-4333-8444-555555555555", CallerType: "ServicePrincipal",
			CorrelationID: "corr-1", Action: op, Properties: props}); err != nil {
			t.Fatal(err)
		}
	}
	// A record from before the rule: never alerts.
	rec("Microsoft.Authorization/roleAssignments/write", ws, activity.StatusSucceeded, nil)
	e.clock.Set(e.clock.Now().Add(time.Second))

	body := fmt.Sprintf(`{"location":"global","properties":{"description":"access changes","enabled":true,"scopes":[%q],
		"condition":{"allOf":[{"field":"category","equals":"Administrative"},
			{"anyOf":[{"field":"operationName","equals":"Microsoft.Authorization/roleAssignments/write"},
			          {"field":"operationName","equals":"Microsoft.OperationalInsights/workspaces/purge/action"}]},
			{"field":"status","containsAny":["succeeded","accepted"]}]},
		"actions":{"actionGroups":[{"actionGroupId":%q,"webhookProperties":{"runbook":"access"}}]}}}`, sub, e.groupID("sec"))
	code, m, raw := e.call("PUT", e.activityAlertID("access")+"?api-version=2020-10-01", body)
	if code != 201 || m["type"] != "Microsoft.Insights/ActivityLogAlerts" {
		t.Fatalf("PUT: %d %s", code, raw)
	}
	// Only on the resource group of another subscription's... here: a
	// resource-group scope that does not hold the workspace.
	other := fmt.Sprintf(`{"location":"global","properties":{"scopes":["%s/resourceGroups/elsewhere"],
		"condition":{"allOf":[{"field":"operationName","equals":"Microsoft.Authorization/roleAssignments/write"}]},
		"actions":{"actionGroups":[{"actionGroupId":%q}]}}}`, sub, e.groupID("sec"))
	if code, _, raw := e.call("PUT", e.activityAlertID("elsewhere")+"?api-version=2020-10-01", other); code != 201 {
		t.Fatalf("PUT elsewhere: %d %s", code, raw)
	}
	e.clock.Set(e.clock.Now().Add(time.Second))

	rec("Microsoft.Authorization/roleAssignments/write", ws+"/providers/Microsoft.Authorization/roleAssignments/a1", activity.StatusSucceeded,
		map[string]string{"properties.roleDefinitionId": "73c42c96"})
	rec("Microsoft.Authorization/roleAssignments/write", ws, activity.StatusFailed, nil)                            // failed: no
	rec("Microsoft.OperationalInsights/workspaces/tables/write", ws, activity.StatusSucceeded, nil)                 // other op: no
	rec("Microsoft.OperationalInsights/workspaces/purge/action", ws, activity.StatusSucceeded, nil)                 // purge: yes
	rec("Microsoft.Authorization/roleAssignments/write", "/subscriptions/other-sub", activity.StatusSucceeded, nil) // out of scope

	if err := e.svc.ProcessActivity(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeliverDue(ctx); err != nil {
		t.Fatal(err)
	}
	calls := h.received()
	if len(calls) != 2 {
		t.Fatalf("webhook calls: %d; want 2 (role assignment and purge)", len(calls))
	}
	// Deliveries run concurrently: put the role assignment's first.
	if strings.Contains(string(calls[0].body), "purge/action") {
		calls[0], calls[1] = calls[1], calls[0]
	}
	p := decodePayload(t, calls[0].body)
	es := p.Data.Essentials
	ac := p.Data.AlertContext.Activity
	if es.SignalType != "Activity Log" || es.MonitoringService != "Activity Log - Administrative" || es.Severity != "Sev4" ||
		es.MonitorCondition != ConditionFired || es.AlertRule != "access" || es.Description != "access changes" ||
		!strings.EqualFold(es.AlertTargetIDs[0], ws+"/providers/Microsoft.Authorization/roleAssignments/a1") ||
		es.TargetResourceType != "microsoft.authorization/roleassignments" || !strings.EqualFold(es.TargetResourceGroup, e.rg()) {
		t.Fatalf("essentials: %+v", es)
	}
	if ac == nil || ac.OperationName != "Microsoft.Authorization/roleAssignments/write" || ac.Status != "Succeeded" ||
		ac.Caller != "11111111-2222-4333-8444-555555555555" || ac.EventSource != "Administrative" || ac.CorrelationID != "corr-1" ||
		ac.Properties["properties.roleDefinitionId"] != "73c42c96" || ac.Channels != "Operation" || ac.EventDataID == "" {
		t.Fatalf("alert context: %s", calls[0].body)
	}
	if p.Data.CustomProperties["runbook"] != "access" {
		t.Fatalf("customProperties: %v", p.Data.CustomProperties)
	}
	if p2 := decodePayload(t, calls[1].body); p2.Data.AlertContext.Activity.OperationName != "Microsoft.OperationalInsights/workspaces/purge/action" ||
		p2.Data.Essentials.TargetResourceType != "microsoft.operationalinsights/workspaces" {
		t.Fatalf("purge alert: %s", calls[1].body)
	}

	// A restarted service evaluates nothing twice.
	e.svc.Close()
	e.openService()
	if err := e.svc.ProcessActivity(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeliverDue(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(h.received()); n != 2 {
		t.Fatalf("after restart: %d calls; want still 2", n)
	}
	as, err := e.cat.Alerts(ctx, alertFilter(e))
	if err != nil || len(as) != 2 {
		t.Fatalf("alerts: %d %v; want 2", len(as), err)
	}
	code, lm, lraw := e.call("GET", "/subscriptions/"+e.sub()+"/providers/Microsoft.AlertsManagement/alerts?api-version=2019-05-05-preview", "")
	if vals, _ := lm["value"].([]any); code != 200 || len(vals) != 2 ||
		vals[0].(map[string]any)["properties"].(map[string]any)["essentials"].(map[string]any)["signalType"] != "Activity Log" {
		t.Fatalf("list alerts: %d %s", code, lraw)
	}

	// Disabled by PATCH: no more alerts.
	if code, _, raw := e.call("PATCH", e.activityAlertID("access")+"?api-version=2020-10-01", `{"properties":{"enabled":false}}`); code != 200 {
		t.Fatalf("PATCH: %d %s", code, raw)
	}
	rec("Microsoft.OperationalInsights/workspaces/purge/action", ws, activity.StatusSucceeded, nil)
	if err := e.svc.ProcessActivity(ctx); err != nil {
		t.Fatal(err)
	}
	if as, _ := e.cat.Alerts(ctx, alertFilter(e)); len(as) != 2 {
		t.Fatalf("a disabled rule raised an alert: %d alerts", len(as))
	}
	code, m, raw = e.call("GET", e.activityAlertID("access")+"?api-version=2020-10-01", "")
	if code != 200 || m["properties"].(map[string]any)["enabled"] != false {
		t.Fatalf("GET: %d %s", code, raw)
	}
	if code, m, _ := e.call("GET", "/subscriptions/"+e.sub()+"/providers/Microsoft.Insights/activityLogAlerts?api-version=2020-10-01", ""); code != 200 ||
		len(m["value"].([]any)) != 2 {
		t.Fatalf("list: %d %v", code, m)
	}
	if code, _, _ := e.call("DELETE", e.activityAlertID("access")+"?api-version=2020-10-01", ""); code != 200 {
		t.Fatalf("DELETE: %d", code)
	}
}

// TestActivityLogAlertValidation: bad conditions and scopes are refused.
func TestActivityLogAlertValidation(t *testing.T) {
	e := newEnv(t, envConfig{})
	sub := "/subscriptions/" + e.sub()
	mk := func(scopes, allOf string) string {
		return `{"location":"global","properties":{"scopes":` + scopes + `,"condition":{"allOf":` + allOf + `}}}`
	}
	cases := []struct{ name, body string }{
		{"no conditions", mk(`["`+sub+`"]`, `[]`)},
		{"unknown field", mk(`["`+sub+`"]`, `[{"field":"color","equals":"red"}]`)},
		{"both equals and containsAny", mk(`["`+sub+`"]`, `[{"field":"status","equals":"x","containsAny":["y"]}]`)},
		{"neither", mk(`["`+sub+`"]`, `[{"field":"status"}]`)},
		{"anyOf with field", mk(`["`+sub+`"]`, `[{"field":"status","equals":"x","anyOf":[{"field":"level","equals":"Error"}]}]`)},
		{"other subscription", mk(`["/subscriptions/00000000-0000-4000-8000-000000000000"]`, `[{"field":"status","equals":"x"}]`)},
		{"not a scope", mk(`["workspaces/x"]`, `[{"field":"status","equals":"x"}]`)},
	}
	for _, c := range cases {
		code, m, raw := e.call("PUT", e.activityAlertID("bad")+"?api-version=2020-10-01", c.body)
		if code != 400 || m["error"] == nil {
			t.Errorf("%s: %d %s; want 400", c.name, code, raw)
		}
	}
	ok := mk(`["`+sub+`"]`, `[{"field":"properties.reason","containsAny":["denied"]},{"field":"resourceType","equals":"Microsoft.Insights/metricAlerts"}]`)
	if code, _, raw := e.call("PUT", e.activityAlertID("good")+"?api-version=2020-10-01", ok); code != 201 {
		t.Fatalf("valid rule: %d %s", code, raw)
	}
}
