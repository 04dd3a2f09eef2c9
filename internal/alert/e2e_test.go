package alert

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"custos/internal/activity"
	"custos/internal/arm"
	"custos/internal/catalog"
	"custos/internal/identity"
	"custos/internal/rbac"
)

// hookCall is one request a test webhook received.
type hookCall struct {
	header http.Header
	body   []byte
}

// hook is a webhook receiver on loopback HTTPS. status returns the status
// to answer the n-th call (from 1) with.
type hook struct {
	srv    *httptest.Server
	mu     sync.Mutex
	calls  []hookCall
	status func(n int) int
}

func newHook(t *testing.T, status func(n int) int) *hook {
	h := &hook{status: status}
	h.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.calls = append(h.calls, hookCall{header: r.Header.Clone(), body: body})
		n := len(h.calls)
		h.mu.Unlock()
		code := 200
		if h.status != nil {
			code = h.status(n)
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) received() []hookCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookCall(nil), h.calls...)
}

// putGroup creates an action group with the given receivers and returns the
// signing secret of each webhook receiver (shown once).
func (e *env) putGroup(name, props string) map[string]string {
	e.t.Helper()
	code, m, raw := e.call("PUT", e.groupID(name)+"?api-version=2023-01-01", `{"location":"Global","properties":`+props+`}`)
	if code != 201 && code != 200 {
		e.t.Fatalf("PUT action group: %d %s", code, raw)
	}
	out := map[string]string{}
	p, _ := m["properties"].(map[string]any)
	hooks, _ := p["webhookReceivers"].([]any)
	for _, h := range hooks {
		hm, _ := h.(map[string]any)
		if s, _ := hm["custosSigningSecret"].(string); s != "" {
			out[hm["name"].(string)] = s
		}
	}
	return out
}

func decodePayload(t *testing.T, body []byte) CommonAlertSchema {
	t.Helper()
	var p CommonAlertSchema
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("payload: %v: %s", err, body)
	}
	return p
}

// TestRuleFiresAndResolvesWithSignedWebhook ingests Perf rows, lets a rule
// split by Computer fire for one computer and resolve a window later, and
// checks what a webhook receiver gets: the common alert schema, an HMAC
// signature it can verify with the secret shown once, and one call per
// event. The alert is listed, acknowledged and has a history.
func TestRuleFiresAndResolvesWithSignedWebhook(t *testing.T) {
	h := newHook(t, nil)
	e := newEnv(t, envConfig{webhookRoots: tlsRoots(h.srv)})
	secrets := e.putGroup("ops", `{"groupShortName":"ops","enabled":true,"webhookReceivers":[
		{"name":"hook","serviceUri":"`+h.srv.URL+`/alerts?code=secret-in-query","useCommonAlertSchema":true}]}`)
	if secrets["hook"] == "" {
		t.Fatalf("no signing secret shown on creation")
	}
	// A second PUT keeps the secret and does not show it again.
	if again := e.putGroup("ops", `{"groupShortName":"ops","webhookReceivers":[
		{"name":"hook","serviceUri":"`+h.srv.URL+`/alerts?code=secret-in-query","useCommonAlertSchema":true}]}`); len(again) != 0 {
		t.Fatalf("secret shown again on update: %v", again)
	}

	t0 := e.clock.Now().Truncate(time.Minute)
	e.clock.Set(t0.Add(10 * time.Second))
	e.putRule("cpu-high", e.ruleBody(`Perf | where CounterName == "% Processor Time"`, "Average", "CounterValue", "GreaterThan", 80,
		`[{"name":"Computer","operator":"Include","values":["*"]}]`, "", e.groupID("ops")), true)

	w1 := t0.Add(time.Minute) // first window [t0, t0+1m)
	e.ingest(perfRow{t0.Add(20 * time.Second), "web-1", 90}, perfRow{t0.Add(30 * time.Second), "web-1", 100},
		perfRow{t0.Add(30 * time.Second), "web-2", 10})
	e.tick(w1)
	calls := h.received()
	if len(calls) != 1 {
		t.Fatalf("after the firing window: %d webhook calls; want 1", len(calls))
	}
	c := calls[0]
	if err := VerifySignature([]byte(secrets["hook"]), c.header.Get(HeaderSignature), c.header.Get(HeaderTimestamp), c.body, e.clock.Now(), 0); err != nil {
		t.Fatalf("signature: %v", err)
	}
	if err := VerifySignature([]byte("wrong"), c.header.Get(HeaderSignature), c.header.Get(HeaderTimestamp), c.body, e.clock.Now(), 0); err == nil {
		t.Fatal("signature verified with a wrong secret")
	}
	if err := VerifySignature([]byte(secrets["hook"]), c.header.Get(HeaderSignature), c.header.Get(HeaderTimestamp), c.body, e.clock.Now().Add(time.Hour), 0); err != ErrStaleSignature {
		t.Fatalf("replay an hour later: %v; want ErrStaleSignature", err)
	}
	if c.header.Get(HeaderIdempotencyKey) == "" {
		t.Fatal("no idempotency key")
	}
	p := decodePayload(t, c.body)
	es := p.Data.Essentials
	if p.SchemaID != "azureMonitorCommonAlertSchema" || es.MonitorCondition != ConditionFired || es.Severity != "Sev2" ||
		es.SignalType != "Log" || es.MonitoringService != "Log Alerts V2" || es.AlertRule != "cpu-high" ||
		!strings.EqualFold(es.AlertRuleID, e.ruleID("cpu-high")) {
		t.Fatalf("essentials: %+v", es)
	}
	if len(es.ConfigurationItems) != 1 || es.ConfigurationItems[0] != "web-1" {
		t.Fatalf("configurationItems %v; want [web-1]", es.ConfigurationItems)
	}
	ctx := p.Data.AlertContext
	if ctx.ConditionType != "LogQueryCriteria" || len(ctx.Condition.AllOf) != 1 {
		t.Fatalf("alertContext: %+v", ctx)
	}
	it := ctx.Condition.AllOf[0]
	if it.MetricValue != 95 || len(it.Dimensions) != 1 || it.Dimensions[0] != (dimValue{"Computer", "web-1"}) ||
		it.SearchQuery != `Perf | where CounterName == "% Processor Time"` || it.Threshold != "80" || it.Operator != "GreaterThan" {
		t.Fatalf("condition: %+v", it)
	}
	if !strings.HasPrefix(it.LinkToSearchResultsAPI, e.srv.URL+"/v1/workspaces/"+e.boot.Workspace.CustomerID+"/query?") ||
		!strings.Contains(it.LinkToFilteredSearchResultsAPI, "web-1") {
		t.Fatalf("links: %s / %s", it.LinkToSearchResultsAPI, it.LinkToFilteredSearchResultsAPI)
	}
	if ctx.Condition.WindowStartTime != arm.WireTime(t0) || ctx.Condition.WindowEndTime != arm.WireTime(w1) {
		t.Fatalf("window %s..%s; want %s..%s", ctx.Condition.WindowStartTime, ctx.Condition.WindowEndTime, arm.WireTime(t0), arm.WireTime(w1))
	}
	if p.Data.CustomProperties["team"] != "ops" {
		t.Fatalf("customProperties: %v", p.Data.CustomProperties)
	}

	// Still breaching: stateful, so no new notification.
	e.ingest(perfRow{w1.Add(10 * time.Second), "web-1", 99})
	e.tick(w1.Add(time.Minute))
	if n := len(h.received()); n != 1 {
		t.Fatalf("while still firing: %d calls; want 1", n)
	}
	// Below the threshold: resolved once.
	e.ingest(perfRow{w1.Add(70 * time.Second), "web-1", 5})
	e.tick(w1.Add(2 * time.Minute))
	e.tick(w1.Add(3 * time.Minute))
	calls = h.received()
	if len(calls) != 2 {
		t.Fatalf("after resolution: %d calls; want 2", len(calls))
	}
	rp := decodePayload(t, calls[1].body)
	if rp.Data.Essentials.MonitorCondition != ConditionResolved || rp.Data.Essentials.AlertID != es.AlertID ||
		rp.Data.Essentials.ResolvedDateTime == "" {
		t.Fatalf("resolved essentials: %+v", rp.Data.Essentials)
	}
	if calls[1].header.Get(HeaderIdempotencyKey) == c.header.Get(HeaderIdempotencyKey) {
		t.Fatal("fired and resolved notifications share an idempotency key")
	}

	// The alert through the AlertsManagement API.
	alerts := "/subscriptions/" + e.sub() + "/providers/Microsoft.AlertsManagement/alerts"
	code, m, raw := e.call("GET", alerts+"?api-version=2019-05-05-preview", "")
	if code != 200 {
		t.Fatalf("list alerts: %d %s", code, raw)
	}
	vals, _ := m["value"].([]any)
	if len(vals) != 1 {
		t.Fatalf("alerts: %s", raw)
	}
	a := vals[0].(map[string]any)
	ess := a["properties"].(map[string]any)["essentials"].(map[string]any)
	if ess["monitorCondition"] != "Resolved" || ess["alertState"] != "New" || ess["severity"] != "Sev2" {
		t.Fatalf("alert essentials: %v", ess)
	}
	id := a["id"].(string)
	code, m, raw = e.call("POST", id+"/changestate?api-version=2019-05-05-preview&newState=Acknowledged", "")
	if code != 200 || m["properties"].(map[string]any)["essentials"].(map[string]any)["alertState"] != "Acknowledged" {
		t.Fatalf("changestate: %d %s", code, raw)
	}
	if code, _, raw = e.call("POST", id+"/changestate?api-version=2019-05-05-preview&newState=Bogus", ""); code != 400 {
		t.Fatalf("bad state: %d %s", code, raw)
	}
	code, m, raw = e.call("GET", id+"/history?api-version=2019-05-05-preview", "")
	if code != 200 {
		t.Fatalf("history: %d %s", code, raw)
	}
	var events []string
	for _, x := range m["properties"].(map[string]any)["modifications"].([]any) {
		events = append(events, x.(map[string]any)["event"].(string))
	}
	if got := strings.Join(events, ","); got != "AlertCreated,ActionsTriggered,MonitorConditionChange,ActionsTriggered,StateChange" {
		t.Fatalf("history events %s", got)
	}
	code, m, raw = e.call("GET", id+"/notifications?api-version=2019-05-05-preview", "")
	if code != 200 {
		t.Fatalf("notifications: %d %s", code, raw)
	}
	ns := m["value"].([]any)
	if len(ns) != 2 {
		t.Fatalf("notifications: %s", raw)
	}
	for _, n := range ns {
		nm := n.(map[string]any)
		atts := nm["deliveryAttempts"].([]any)
		if nm["status"] != "Succeeded" || len(atts) != 1 || atts[0].(map[string]any)["statusCode"].(float64) != 200 {
			t.Fatalf("notification: %v", nm)
		}
		if strings.Contains(atts[0].(map[string]any)["target"].(string), "secret-in-query") {
			t.Fatalf("delivery target keeps the query string: %v", atts[0])
		}
	}

	// The rule reports its evaluations.
	code, m, raw = e.call("GET", e.ruleID("cpu-high")+"?api-version=2023-12-01", "")
	st := m["properties"].(map[string]any)["evaluationStatus"].(map[string]any)
	if code != 200 || st["lastResult"] != "Succeeded" || st["lastWindowEndTime"] != arm.WireTime(w1.Add(3*time.Minute)) {
		t.Fatalf("rule status: %d %s", code, raw)
	}
}

// TestRuleIdentityLosesAccess: a rule runs as its own identity; without a
// role assignment on the workspace it cannot read data and reports why,
// also when its creator is an Owner.
func TestRuleIdentityLosesAccess(t *testing.T) {
	e := newEnv(t, envConfig{})
	alog, err := activity.New(context.Background(), activity.Options{Store: e.cat, Keys: e.keys})
	if err != nil {
		t.Fatal(err)
	}
	e.opts.Activity = alog
	e.openService()
	t0 := e.clock.Now().Truncate(time.Minute)
	e.clock.Set(t0.Add(10 * time.Second))
	body := e.ruleBody("Perf", "Count", "", "GreaterThan", 0, "", "")
	pid, ra := e.putRule("any-perf", body, true)
	e.ingest(perfRow{t0.Add(20 * time.Second), "db-1", 1})
	e.tick(t0.Add(time.Minute))
	as, err := e.cat.Alerts(context.Background(), alertFilter(e))
	if err != nil || len(as) != 1 {
		t.Fatalf("with access: %d alerts, %v; want 1", len(as), err)
	}

	e.revoke(ra)
	e.ingest(perfRow{t0.Add(80 * time.Second), "db-2", 1})
	e.tick(t0.Add(2 * time.Minute))
	code, m, raw := e.call("GET", e.ruleID("any-perf")+"?api-version=2023-12-01", "")
	st := m["properties"].(map[string]any)["evaluationStatus"].(map[string]any)
	if code != 200 || st["lastResult"] != "Failed" || !strings.Contains(st["lastError"].(string), pid) ||
		!strings.Contains(st["lastError"].(string), "Microsoft.OperationalInsights/workspaces/query/read") {
		t.Fatalf("after revocation: %d %s", code, raw)
	}
	if as, _ := e.cat.Alerts(context.Background(), alertFilter(e)); len(as) != 1 || as[0].MonitorCondition != ConditionFired {
		t.Fatalf("an unauthorized evaluation changed alerts: %+v", as)
	}
	entries, err := e.cat.ActivityEntries(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var failed int
	for _, en := range entries {
		var rec activity.Record
		if json.Unmarshal(en.Record, &rec) == nil && rec.Status == activity.StatusFailed &&
			strings.EqualFold(rec.ResourceID, e.ruleID("any-perf")) && rec.Caller == pid {
			failed++
		}
	}
	if failed != 1 {
		t.Fatalf("activity log has %d failure records for the rule; want 1", failed)
	}

	// A rule without an identity fails visibly too.
	noID := strings.Replace(body, `"identity":{"type":"SystemAssigned"},`, "", 1)
	if code, _, raw := e.call("PUT", e.ruleID("no-identity")+"?api-version=2023-12-01", noID); code != 201 {
		t.Fatalf("PUT rule without identity: %d %s", code, raw)
	}
	e.tick(t0.Add(3 * time.Minute))
	_, m, raw = e.call("GET", e.ruleID("no-identity")+"?api-version=2023-12-01", "")
	st = m["properties"].(map[string]any)["evaluationStatus"].(map[string]any)
	if st["lastResult"] != "Failed" || !strings.Contains(st["lastError"].(string), "no managed identity") {
		t.Fatalf("rule without identity: %s", raw)
	}
}

// TestSecureWebhookToken: a secure webhook gets a bearer token signed by
// the token service for the configured audience, which the receiver
// verifies against Custos's JWKS; an identifierUri that is one of Custos's
// own audiences is refused, as such a token would open Custos's APIs.
func TestSecureWebhookToken(t *testing.T) {
	h := newHook(t, nil)
	e := newEnv(t, envConfig{webhookRoots: tlsRoots(h.srv)})
	e.putGroup("secure", `{"groupShortName":"sec","webhookReceivers":[
		{"name":"own","serviceUri":"`+h.srv.URL+`/own","useCommonAlertSchema":true,"useAadAuth":true,"identifierUri":"https://management.azure.com/","objectId":"x","tenantId":"`+e.boot.Tenant.ID+`"}]}`)
	t0 := e.clock.Now().Truncate(time.Minute)
	e.clock.Set(t0.Add(10 * time.Second))
	e.putRule("count", e.ruleBody("Perf", "Count", "", "GreaterThan", 0, "", "", e.groupID("secure")), true)
	e.ingest(perfRow{t0.Add(20 * time.Second), "a", 1})
	e.tick(t0.Add(time.Minute))
	if n := len(h.received()); n != 0 {
		t.Fatalf("a token for Custos's management audience was sent to a webhook (%d calls)", n)
	}
	as, _ := e.cat.Alerts(context.Background(), alertFilter(e))
	if len(as) != 1 {
		t.Fatalf("alerts: %d", len(as))
	}
	ns, _ := e.cat.AlertNotifications(context.Background(), as[0].ID)
	if len(ns) != 1 || ns[0].Status != "Failed" || !strings.Contains(ns[0].LastError, "refusing") {
		t.Fatalf("notification: %+v", ns)
	}
	_ = identity.AudienceManagement
}

// TestUserAssignedIdentity: a rule may run as a user-assigned identity;
// disabling that identity stops the rule from reading data.
func TestUserAssignedIdentity(t *testing.T) {
	e := newEnv(t, envConfig{})
	ctx := context.Background()
	u, _, err := e.cat.PutUserAssignedIdentity(ctx, catalog.UserAssignedIdentity{SubscriptionID: e.sub(), ResourceGroup: e.rg(),
		Name: "alerts-reader", Location: "eastus"}, catalog.Precondition{}, catalog.Actor{})
	if err != nil {
		t.Fatal(err)
	}
	e.grant(u.PrincipalID, rbac.RoleLogAnalyticsReader, e.wsID())
	t0 := e.start()
	body := strings.Replace(e.ruleBody("Perf", "Count", "", "GreaterThan", 0, "", ""), `"identity":{"type":"SystemAssigned"}`,
		`"identity":{"type":"UserAssigned","userAssignedIdentities":{"`+u.ID()+`":{}}}`, 1)
	code, m, raw := e.call("PUT", e.ruleID("ua")+"?api-version=2023-12-01", body)
	if code != 201 {
		t.Fatalf("PUT: %d %s", code, raw)
	}
	ident := m["identity"].(map[string]any)
	uai := ident["userAssignedIdentities"].(map[string]any)
	if ident["type"] != "UserAssigned" || len(uai) != 1 || uai[u.ID()].(map[string]any)["principalId"] != u.PrincipalID {
		t.Fatalf("identity: %s", raw)
	}
	e.ingest(perfRow{t0.Add(20 * time.Second), "a", 1})
	e.tick(t0.Add(time.Minute))
	if as := e.alertsBy()["{}"]; len(as) != 1 {
		t.Fatalf("alerts %d; want 1", len(as))
	}
	if err := e.cat.SetPrincipalEnabled(ctx, u.TenantID, u.PrincipalID, false); err != nil {
		t.Fatal(err)
	}
	e.tick(t0.Add(2 * time.Minute))
	_, m, raw = e.call("GET", e.ruleID("ua")+"?api-version=2023-12-01", "")
	st := m["properties"].(map[string]any)["evaluationStatus"].(map[string]any)
	if st["lastResult"] != "Failed" || !strings.Contains(st["lastError"].(string), "disabled") {
		t.Fatalf("disabled identity: %s", raw)
	}
	// A user-assigned identity that cannot query the scope is refused at PUT.
	u2, _, err := e.cat.PutUserAssignedIdentity(ctx, catalog.UserAssignedIdentity{SubscriptionID: e.sub(), ResourceGroup: e.rg(),
		Name: "no-access", Location: "eastus"}, catalog.Precondition{}, catalog.Actor{})
	if err != nil {
		t.Fatal(err)
	}
	noAccess := strings.Replace(body, u.ID(), u2.ID(), 1)
	if code, m, raw := e.call("PUT", e.ruleID("ua3")+"?api-version=2023-12-01", noAccess); code != 400 ||
		m["error"].(map[string]any)["code"] != "IdentityNotAuthorized" {
		t.Fatalf("identity without access: %d %s", code, raw)
	}
	// An identity that does not exist is refused at PUT.
	bad := strings.Replace(body, "alerts-reader", "nope", 1)
	if code, _, raw := e.call("PUT", e.ruleID("ua2")+"?api-version=2023-12-01", bad); code != 400 || !strings.Contains(raw, "does not exist") {
		t.Fatalf("unknown identity: %d %s", code, raw)
	}
}

// TestSystemAssignedIdentityLifecycle: a rule's system-assigned identity is
// a real managed identity (kind ManagedIdentity, the rule as its resource);
// it is kept across updates, and deleted with its role assignments when the
// rule drops it or is deleted, so nothing can act as it afterwards.
func TestSystemAssignedIdentityLifecycle(t *testing.T) {
	e := newEnv(t, envConfig{})
	ctx := context.Background()
	e.start()
	body := e.ruleBody("Perf", "Count", "", "GreaterThan", 0, "", "")
	pid1, ra1 := e.putRule("r", body, true)
	st, err := e.cat.PrincipalState(ctx, e.boot.Tenant.ID, pid1)
	if err != nil || st.Kind != identity.KindManagedIdentity || !strings.EqualFold(st.ResourceID, e.ruleID("r")) || !st.Enabled {
		t.Fatalf("system-assigned identity: %+v %v; want an enabled managed identity of the rule", st, err)
	}
	// Same identity type again: the identity is kept.
	pid1b, _ := e.putRule("r", body, false)
	if pid1b != pid1 {
		t.Fatalf("update changed the identity: %s → %s", pid1, pid1b)
	}
	// Identity removed: the principal and its role assignment are deleted.
	noID := strings.Replace(body, `"identity":{"type":"SystemAssigned"},`, `"identity":{"type":"None"},`, 1)
	if code, _, raw := e.call("PUT", e.ruleID("r")+"?api-version=2023-12-01", noID); code != 200 {
		t.Fatalf("PUT without identity: %d %s", code, raw)
	}
	if _, err := e.cat.PrincipalState(ctx, e.boot.Tenant.ID, pid1); !errors.Is(err, identity.ErrNotFound) {
		t.Fatalf("dropped identity still exists: %v", err)
	}
	if ras, err := e.cat.RoleAssignmentsFor(ctx, []string{pid1}); err != nil || len(ras) != 0 {
		t.Fatalf("dropped identity's role assignments: %v %v (assignment %s); want none", ras, err, ra1)
	}
	pid2, _ := e.putRule("r", body, true)
	if pid2 == pid1 {
		t.Fatal("a new system-assigned identity reused the retired one")
	}
	if code, _, raw := e.call("DELETE", e.ruleID("r")+"?api-version=2023-12-01", ""); code != 200 {
		t.Fatalf("DELETE: %d %s", code, raw)
	}
	if _, err := e.cat.PrincipalState(ctx, e.boot.Tenant.ID, pid2); !errors.Is(err, identity.ErrNotFound) {
		t.Fatalf("deleted rule's identity still exists: %v", err)
	}
	if ras, err := e.cat.RoleAssignmentsFor(ctx, []string{pid2}); err != nil || len(ras) != 0 {
		t.Fatalf("deleted rule's role assignments: %v %v; want none", ras, err)
	}
}
