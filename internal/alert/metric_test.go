package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"custos/internal/catalog"
	"custos/internal/rbac"
	"custos/internal/store"
)

// imRow is one InsightsMetrics sample.
type imRow struct {
	at        time.Time
	computer  string
	namespace string
	name      string
	val       float64
	tags      string
}

// ingestInsightsMetrics appends InsightsMetrics rows through the store's
// append path.
func (e *env) ingestInsightsMetrics(rows ...imRow) {
	e.t.Helper()
	ctx := context.Background()
	app, err := e.st.Appender(ctx, store.TableRef{WorkspaceID: e.boot.Workspace.CustomerID, Table: "InsightsMetrics"})
	if err != nil {
		e.t.Fatal(err)
	}
	b := &store.Batch{
		Schema: store.Schema{{Name: "TimeGenerated", Type: store.TypeDatetime}, {Name: "Computer", Type: store.TypeString},
			{Name: "Namespace", Type: store.TypeString}, {Name: "Name", Type: store.TypeString}, {Name: "Val", Type: store.TypeReal},
			{Name: "Tags", Type: store.TypeString}},
		Cols: []*store.Vector{{Type: store.TypeDatetime}, {Type: store.TypeString}, {Type: store.TypeString}, {Type: store.TypeString},
			{Type: store.TypeReal}, {Type: store.TypeString}},
	}
	for _, r := range rows {
		b.Cols[0].Int = append(b.Cols[0].Int, store.TicksFromTime(r.at))
		b.Cols[1].Str = append(b.Cols[1].Str, r.computer)
		b.Cols[2].Str = append(b.Cols[2].Str, r.namespace)
		b.Cols[3].Str = append(b.Cols[3].Str, r.name)
		b.Cols[4].Real = append(b.Cols[4].Real, r.val)
		b.Cols[5].Str = append(b.Cols[5].Str, r.tags)
		b.Len++
	}
	if err := app.Append(b); err != nil {
		e.t.Fatal(err)
	}
	if err := app.Commit(ctx); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) metricID(name string) string {
	return "/subscriptions/" + e.sub() + "/resourceGroups/" + e.rg() + "/providers/Microsoft.Insights/metricAlerts/" + name
}

// putMetric creates a metric alert rule and, when grant is set, gives its
// system-assigned identity Log Analytics Reader on the workspace.
func (e *env) putMetric(name, body string, grant bool) (string, string, map[string]any) {
	e.t.Helper()
	code, m, raw := e.call("PUT", e.metricID(name)+"?api-version=2018-03-01", body)
	if code != 201 && code != 200 {
		e.t.Fatalf("PUT metric alert: %d %s", code, raw)
	}
	ident, _ := m["identity"].(map[string]any)
	pid, _ := ident["principalId"].(string)
	if pid == "" {
		e.t.Fatalf("metric alert has no principalId: %s", raw)
	}
	ra := ""
	if grant {
		ra = e.grant(pid, rbac.RoleLogAnalyticsReader, e.wsID())
	}
	return pid, ra, m
}

// TestMetricAlertAllOfFiresAndResolves: a metric alert with two criteria
// over Perf and InsightsMetrics, split by Computer, fires only for the
// computer where both hold, resolves when one stops holding, and notifies a
// webhook with the metric alert context of the common alert schema.
func TestMetricAlertAllOfFiresAndResolves(t *testing.T) {
	h := newHook(t, nil)
	e := newEnv(t, envConfig{webhookRoots: tlsRoots(h.srv)})
	secrets := e.putGroup("ops", `{"groupShortName":"ops","webhookReceivers":[
		{"name":"hook","serviceUri":"`+h.srv.URL+`/metric","useCommonAlertSchema":true}]}`)
	t0 := e.start()
	body := fmt.Sprintf(`{"location":"global","properties":{"description":"cpu and memory","severity":1,"enabled":true,
		"scopes":[%q],"evaluationFrequency":"PT1M","windowSize":"PT1M","autoMitigate":true,
		"criteria":{"odata.type":"Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria","allOf":[
			{"criterionType":"StaticThresholdCriterion","name":"cpu","metricName":"%% Processor Time","metricNamespace":"Processor",
			 "operator":"GreaterThan","threshold":80,"timeAggregation":"Average",
			 "dimensions":[{"name":"Computer","operator":"Include","values":["*"]}]},
			{"criterionType":"StaticThresholdCriterion","name":"mem","metricName":"AvailableMB","metricNamespace":"InsightsMetrics/Memory",
			 "operator":"LessThan","threshold":100,"timeAggregation":"Minimum",
			 "dimensions":[{"name":"Computer","operator":"Include","values":["*"]}]}]},
		"actions":[{"actionGroupId":%q,"webHookProperties":{"team":"ops"}}]}}`, e.wsID(), e.groupID("ops"))
	pid, ra, m := e.putMetric("cpu-mem", body, true)
	if m["type"] != "Microsoft.Insights/metricAlerts" || m["location"] != "global" {
		t.Fatalf("PUT answer: %v", m)
	}

	e.ingest(perfRow{t0.Add(10 * time.Second), "web-1", 90}, perfRow{t0.Add(20 * time.Second), "web-1", 94},
		perfRow{t0.Add(10 * time.Second), "web-2", 95}, perfRow{t0.Add(10 * time.Second), "web-3", 10})
	e.ingestInsightsMetrics(imRow{t0.Add(15 * time.Second), "web-1", "Memory", "AvailableMB", 50, "{}"},
		imRow{t0.Add(25 * time.Second), "web-1", "Memory", "AvailableMB", 70, "{}"},
		imRow{t0.Add(15 * time.Second), "web-2", "Memory", "AvailableMB", 500, "{}"},
		imRow{t0.Add(15 * time.Second), "web-3", "Memory", "AvailableMB", 10, "{}"},
		imRow{t0.Add(15 * time.Second), "web-1", "Processor", "UtilizationPercentage", 1, "{}"})
	e.tick(t0.Add(time.Minute))
	calls := h.received()
	if len(calls) != 1 {
		t.Fatalf("after the first window: %d webhook calls; want 1 (only web-1 breaches both criteria)", len(calls))
	}
	if err := VerifySignature([]byte(secrets["hook"]), calls[0].header.Get(HeaderSignature), calls[0].header.Get(HeaderTimestamp), calls[0].body, e.clock.Now(), 0); err != nil {
		t.Fatalf("signature: %v", err)
	}
	p := decodePayload(t, calls[0].body)
	es := p.Data.Essentials
	if es.SignalType != "Metric" || es.MonitoringService != "Platform" || es.MonitorCondition != ConditionFired || es.Severity != "Sev1" ||
		es.AlertRule != "cpu-mem" || !strings.EqualFold(es.AlertRuleID, e.metricID("cpu-mem")) ||
		len(es.AlertTargetIDs) != 1 || !strings.EqualFold(es.AlertTargetIDs[0], e.wsID()) ||
		len(es.ConfigurationItems) != 1 || es.ConfigurationItems[0] != "web-1" || es.Description != "cpu and memory" {
		t.Fatalf("essentials: %+v", es)
	}
	mc := p.Data.AlertContext.Metric
	if mc == nil || mc.ConditionType != "SingleResourceMultipleMetricCriteria" || mc.Condition.WindowSize != "PT1M" || len(mc.Condition.AllOf) != 2 {
		t.Fatalf("alert context: %s", calls[0].body)
	}
	cpu, mem := mc.Condition.AllOf[0], mc.Condition.AllOf[1]
	if cpu.MetricName != "% Processor Time" || cpu.MetricNamespace != "Processor" || cpu.Operator != "GreaterThan" || cpu.Threshold != "80" ||
		cpu.TimeAggregation != "Average" || cpu.MetricValue == nil || *cpu.MetricValue != 92 ||
		len(cpu.Dimensions) != 1 || cpu.Dimensions[0] != (dimValue{Name: "Computer", Value: "web-1"}) {
		t.Fatalf("cpu criterion: %+v", cpu)
	}
	if mem.MetricName != "AvailableMB" || mem.MetricValue == nil || *mem.MetricValue != 50 || mem.TimeAggregation != "Minimum" {
		t.Fatalf("memory criterion: %+v", mem)
	}
	if p.Data.CustomProperties["team"] != "ops" {
		t.Fatalf("customProperties: %v; want the action's webHookProperties", p.Data.CustomProperties)
	}
	// The raw JSON is Azure's shape: threshold a string, metricValue a number.
	var raw map[string]any
	_ = json.Unmarshal(calls[0].body, &raw)
	item := raw["data"].(map[string]any)["alertContext"].(map[string]any)["condition"].(map[string]any)["allOf"].([]any)[0].(map[string]any)
	if _, ok := item["threshold"].(string); !ok || item["metricValue"] != 92.0 {
		t.Fatalf("wire criterion: %v", item)
	}

	// The alert is listed as a metric alert.
	code, lm, lraw := e.call("GET", "/subscriptions/"+e.sub()+"/providers/Microsoft.AlertsManagement/alerts?api-version=2019-05-05-preview", "")
	vals, _ := lm["value"].([]any)
	if code != 200 || len(vals) != 1 {
		t.Fatalf("list alerts: %d %s", code, lraw)
	}
	ess := vals[0].(map[string]any)["properties"].(map[string]any)["essentials"].(map[string]any)
	if ess["signalType"] != "Metric" || ess["monitorService"] != "Platform" || ess["monitorCondition"] != "Fired" {
		t.Fatalf("listed alert: %v", ess)
	}

	// Next window: web-1's memory recovers, so not all criteria hold: resolved.
	e.ingest(perfRow{t0.Add(70 * time.Second), "web-1", 99})
	e.ingestInsightsMetrics(imRow{t0.Add(70 * time.Second), "web-1", "Memory", "AvailableMB", 900, "{}"})
	e.tick(t0.Add(2 * time.Minute))
	calls = h.received()
	if len(calls) != 2 {
		t.Fatalf("after the second window: %d calls; want 2", len(calls))
	}
	p = decodePayload(t, calls[1].body)
	if p.Data.Essentials.MonitorCondition != ConditionResolved || p.Data.Essentials.ResolvedDateTime == "" ||
		p.Data.AlertContext.Metric == nil || *p.Data.AlertContext.Metric.Condition.AllOf[1].MetricValue != 900 {
		t.Fatalf("resolution: %s", calls[1].body)
	}

	// GET shows the rule with its identity and evaluation status.
	code, m, raw2 := e.call("GET", e.metricID("cpu-mem")+"?api-version=2018-03-01", "")
	props := m["properties"].(map[string]any)
	st := props["evaluationStatus"].(map[string]any)
	if code != 200 || st["lastResult"] != "Succeeded" || st["firedSeries"] != 0.0 ||
		m["identity"].(map[string]any)["principalId"] != pid || props["lastUpdatedTime"] == "" {
		t.Fatalf("GET: %d %s", code, raw2)
	}

	// The identity loses its role: the rule stops reading data, visibly.
	e.revoke(ra)
	e.ingest(perfRow{t0.Add(130 * time.Second), "web-1", 99})
	e.tick(t0.Add(3 * time.Minute))
	_, m, raw2 = e.call("GET", e.metricID("cpu-mem")+"?api-version=2018-03-01", "")
	st = m["properties"].(map[string]any)["evaluationStatus"].(map[string]any)
	if st["lastResult"] != "Failed" || !strings.Contains(st["lastError"].(string), pid) {
		t.Fatalf("after revocation: %s", raw2)
	}

	// Deleting the rule deletes its identity.
	if code, _, raw := e.call("DELETE", e.metricID("cpu-mem")+"?api-version=2018-03-01", ""); code != 200 {
		t.Fatalf("DELETE: %d %s", code, raw)
	}
	if _, err := e.cat.PrincipalState(context.Background(), e.boot.Tenant.ID, pid); err == nil {
		t.Fatal("the deleted metric alert's identity still exists")
	}
	if code, _, _ := e.call("GET", e.metricID("cpu-mem")+"?api-version=2018-03-01", ""); code != 404 {
		t.Fatalf("GET after DELETE: %d; want 404", code)
	}
}

// TestMetricAlertTagsAndMapping: InsightsMetrics dimensions that are tags,
// Exclude filters, the mapped "Percentage CPU" metric and a multi-resource
// rule.
func TestMetricAlertTagsAndMapping(t *testing.T) {
	e := newEnv(t, envConfig{})
	t0 := e.start()
	body := fmt.Sprintf(`{"location":"global","properties":{"severity":3,"enabled":true,"scopes":[%q],
		"targetResourceType":"Microsoft.OperationalInsights/workspaces","targetResourceRegion":"eastus",
		"evaluationFrequency":"PT1M","windowSize":"PT5M",
		"criteria":{"odata.type":"Microsoft.Azure.Monitor.MultipleResourceMultipleMetricCriteria","allOf":[
			{"criterionType":"StaticThresholdCriterion","name":"disk","metricName":"FreeSpacePercentage","metricNamespace":"InsightsMetrics/LogicalDisk",
			 "operator":"LessThan","threshold":10,"timeAggregation":"Minimum",
			 "dimensions":[{"name":"vm.azm.ms/mountId","operator":"Exclude","values":["/boot"]},{"name":"Computer","operator":"Include","values":["db-1","db-2"]}]}]}}}`,
		e.wsID())
	e.putMetric("disk", body, true)
	cpuBody := fmt.Sprintf(`{"location":"global","properties":{"severity":2,"scopes":[%q],"evaluationFrequency":"PT1M","windowSize":"PT1M",
		"criteria":{"odata.type":"Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria","allOf":[
			{"criterionType":"StaticThresholdCriterion","name":"cpu","metricName":"Percentage CPU","metricNamespace":"Microsoft.Compute/virtualMachines",
			 "operator":"GreaterThanOrEqual","threshold":75,"timeAggregation":"Maximum"}]}}}`, e.wsID())
	e.putMetric("vm-cpu", cpuBody, true)

	e.ingestInsightsMetrics(
		imRow{t0.Add(10 * time.Second), "db-1", "LogicalDisk", "FreeSpacePercentage", 5, `{"vm.azm.ms/mountId":"/"}`},
		imRow{t0.Add(10 * time.Second), "db-1", "LogicalDisk", "FreeSpacePercentage", 2, `{"vm.azm.ms/mountId":"/boot"}`},
		imRow{t0.Add(10 * time.Second), "db-2", "LogicalDisk", "FreeSpacePercentage", 50, `{"vm.azm.ms/mountId":"/"}`},
		imRow{t0.Add(10 * time.Second), "db-3", "LogicalDisk", "FreeSpacePercentage", 1, `{"vm.azm.ms/mountId":"/"}`},
		imRow{t0.Add(20 * time.Second), "db-2", "Processor", "UtilizationPercentage", 80, `{}`})
	e.tick(t0.Add(time.Minute))
	byRule := map[string][]string{}
	as, err := e.cat.Alerts(context.Background(), alertFilter(e))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		var doc alertDoc
		if err := json.Unmarshal(a.Doc, &doc); err != nil {
			t.Fatal(err)
		}
		if doc.SealedPayload == nil {
			t.Fatalf("alert payload stored in the clear: %s", a.Doc)
		}
		p, err := e.svc.docPayload(context.Background(), &doc, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		d := alertDoc{Payload: p}
		var dims []string
		for _, it := range d.Payload.Data.AlertContext.Metric.Condition.AllOf {
			for _, dv := range it.Dimensions {
				dims = append(dims, dv.Name+"="+dv.Value)
			}
		}
		byRule[d.Payload.Data.Essentials.AlertRule] = append(byRule[d.Payload.Data.Essentials.AlertRule], strings.Join(dims, ","))
		if d.Payload.Data.Essentials.AlertRule == "disk" && d.Payload.Data.AlertContext.Metric.ConditionType != "MultipleResourceMultipleMetricCriteria" {
			t.Fatalf("disk context: %+v", d.Payload.Data.AlertContext.Metric)
		}
	}
	if got := byRule["disk"]; len(got) != 1 || got[0] != "vm.azm.ms/mountId=/,Computer=db-1" {
		t.Fatalf("disk alerts: %v; want one for db-1's / mount (boot excluded, db-3 not included)", got)
	}
	if got := byRule["vm-cpu"]; len(got) != 1 || got[0] != "" {
		t.Fatalf("vm-cpu alerts: %v; want one without dimensions", got)
	}

	// PATCH changes tags and enabled, keeps the rest and the identity.
	code, m, raw := e.call("PATCH", e.metricID("vm-cpu")+"?api-version=2018-03-01", `{"tags":{"team":"ops"},"properties":{"enabled":false}}`)
	if code != 200 || m["tags"].(map[string]any)["team"] != "ops" || m["properties"].(map[string]any)["enabled"] != false ||
		m["properties"].(map[string]any)["severity"] != float64(2) || m["identity"].(map[string]any)["type"] != "SystemAssigned" {
		t.Fatalf("PATCH metric alert: %d %s", code, raw)
	}
	// An activity log alert has no identity to patch.
	if code, _, raw := e.call("PATCH", e.activityAlertID("nope")+"?api-version=2020-10-01", `{"identity":{"type":"SystemAssigned"}}`); code != 400 {
		t.Fatalf("PATCH activity log alert with an identity: %d %s; want 400", code, raw)
	}
}

// TestMetricAlertValidation: bodies Custos cannot evaluate are refused
// with clear 400s, never stored.
func TestMetricAlertValidation(t *testing.T) {
	e := newEnv(t, envConfig{})
	crit := func(c string) string {
		return fmt.Sprintf(`{"location":"global","properties":{"severity":3,"scopes":[%q],"evaluationFrequency":"PT1M","windowSize":"PT5M",
			"criteria":{"odata.type":"Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria","allOf":[%s]}}}`, e.wsID(), c)
	}
	cases := []struct{ name, body, code string }{
		{"dynamic", crit(`{"criterionType":"DynamicThresholdCriterion","name":"d","metricName":"% Processor Time","metricNamespace":"Processor",
			"operator":"GreaterThan","timeAggregation":"Average","alertSensitivity":"Medium","failingPeriods":{"numberOfEvaluationPeriods":4,"minFailingPeriodsToAlert":4}}`),
			"DynamicThresholdNotSupported"},
		{"unmapped", crit(`{"criterionType":"StaticThresholdCriterion","name":"n","metricName":"Network In","metricNamespace":"Microsoft.Compute/virtualMachines",
			"operator":"GreaterThan","threshold":1,"timeAggregation":"Total"}`), "MetricNotFound"},
		{"operator", crit(`{"criterionType":"StaticThresholdCriterion","name":"n","metricName":"x","metricNamespace":"Processor",
			"operator":"Bigger","threshold":1,"timeAggregation":"Total"}`), "BadRequest"},
		{"frequency", strings.Replace(crit(`{"criterionType":"StaticThresholdCriterion","name":"n","metricName":"x","metricNamespace":"Processor",
			"operator":"GreaterThan","threshold":1,"timeAggregation":"Total"}`), `"PT1M"`, `"PT2M"`, 1), "BadRequest"},
		{"two scopes single", strings.Replace(crit(`{"criterionType":"StaticThresholdCriterion","name":"n","metricName":"x","metricNamespace":"Processor",
			"operator":"GreaterThan","threshold":1,"timeAggregation":"Total"}`), fmt.Sprintf("[%q]", e.wsID()), fmt.Sprintf("[%q,%q]", e.wsID(), e.wsID()), 1), "BadRequest"},
		{"vm scope", strings.Replace(crit(`{"criterionType":"StaticThresholdCriterion","name":"n","metricName":"x","metricNamespace":"Processor",
			"operator":"GreaterThan","threshold":1,"timeAggregation":"Total"}`), e.wsID(), "/subscriptions/"+e.sub()+"/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1", 1), "BadRequest"},
	}
	for _, c := range cases {
		code, m, raw := e.call("PUT", e.metricID("bad")+"?api-version=2018-03-01", c.body)
		errObj, _ := m["error"].(map[string]any)
		if code != 400 || errObj["code"] != c.code {
			t.Errorf("%s: %d %s; want 400 %s", c.name, code, raw, c.code)
		}
	}
	if code, _, _ := e.call("GET", e.metricID("bad")+"?api-version=2018-03-01", ""); code != 404 {
		t.Fatalf("a refused rule was stored: GET %d", code)
	}
}

// TestMetricAlertMultipleWorkspaces: a multi-resource metric alert monitors
// each workspace on its own: the same computer name breaching in two
// workspaces raises two alerts, each targeting its workspace, and the rule
// reads a workspace only with its identity's access there.
func TestMetricAlertMultipleWorkspaces(t *testing.T) {
	e := newEnv(t, envConfig{})
	ctx := context.Background()
	ws2, _, err := e.cat.PutWorkspace(ctx, catalog.Workspace{SubscriptionID: e.sub(), ResourceGroup: e.rg(), Name: "second", Location: "eastus"},
		catalog.Precondition{}, catalog.Actor{})
	if err != nil {
		t.Fatal(err)
	}
	tables, err := e.cat.WorkspaceTables(ctx, ws2.CustomerID)
	if err != nil {
		t.Fatal(err)
	}
	for i := range tables {
		if err := e.st.EnsureTable(ctx, tables[i].Ref(), tables[i].StoreSchema(), tables[i].EffectiveTotalRetentionInDays()); err != nil {
			t.Fatal(err)
		}
	}
	t0 := e.start()
	body := fmt.Sprintf(`{"location":"global","properties":{"severity":2,"scopes":[%q,%q],
		"targetResourceType":"Microsoft.OperationalInsights/workspaces","evaluationFrequency":"PT1M","windowSize":"PT1M",
		"criteria":{"odata.type":"Microsoft.Azure.Monitor.MultipleResourceMultipleMetricCriteria","allOf":[
			{"criterionType":"StaticThresholdCriterion","name":"cpu","metricName":"%% Processor Time","metricNamespace":"Perf/Processor",
			 "operator":"GreaterThan","threshold":80,"timeAggregation":"Maximum","dimensions":[{"name":"Computer","operator":"Include","values":["*"]}]}]}}}`,
		e.wsID(), ws2.ID())
	pid, _, _ := e.putMetric("fleet", body, true)
	e.ingest(perfRow{t0.Add(10 * time.Second), "web-1", 90})
	e.ingestInto(ws2.CustomerID, perfRow{t0.Add(10 * time.Second), "web-1", 95}, perfRow{t0.Add(20 * time.Second), "web-2", 10})
	// Reader on the first workspace only: the rule may not read the second.
	e.tick(t0.Add(time.Minute))
	_, m, raw := e.call("GET", e.metricID("fleet")+"?api-version=2018-03-01", "")
	st := m["properties"].(map[string]any)["evaluationStatus"].(map[string]any)
	if st["lastResult"] != "Failed" || !strings.Contains(st["lastError"].(string), ws2.ID()) {
		t.Fatalf("without access to the second workspace: %s", raw)
	}
	e.grant(pid, rbac.RoleLogAnalyticsReader, ws2.ID())
	e.ingest(perfRow{t0.Add(70 * time.Second), "web-1", 90})
	e.ingestInto(ws2.CustomerID, perfRow{t0.Add(70 * time.Second), "web-1", 95})
	e.tick(t0.Add(2 * time.Minute))
	as, err := e.cat.Alerts(ctx, alertFilter(e))
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]float64{}
	for _, a := range as {
		var d alertDoc
		if err := json.Unmarshal(a.Doc, &d); err != nil {
			t.Fatal(err)
		}
		p, err := e.svc.docPayload(ctx, &d, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		targets[p.Data.Essentials.AlertTargetIDs[0]] = *p.Data.AlertContext.Metric.Condition.AllOf[0].MetricValue
		if p.Data.AlertContext.Metric.ConditionType != "MultipleResourceMultipleMetricCriteria" {
			t.Fatalf("condition type: %s", p.Data.AlertContext.Metric.ConditionType)
		}
	}
	if len(targets) != 2 || targets[strings.ToLower(e.wsID())] != 90 || targets[strings.ToLower(ws2.ID())] != 95 {
		t.Fatalf("alerts by target: %v; want web-1 in each workspace (90 and 95)", targets)
	}
}
