package alert

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"custos/internal/store"
)

// catalogBytes returns the SQLite files of the catalog (database and WAL).
func (e *env) catalogBytes() []byte {
	e.t.Helper()
	var out []byte
	for _, f := range []string{"catalog.db", "catalog.db-wal"} {
		b, err := os.ReadFile(filepath.Join(e.dir, f))
		if err != nil && !os.IsNotExist(err) {
			e.t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

// TestContentSealedUnderWorkspaceKey: a rule's query and the alert
// payloads (query, dimension values) never reach the catalog's files in the
// clear; the APIs and the webhook still show them.
func TestContentSealedUnderWorkspaceKey(t *testing.T) {
	h := newHook(t, nil)
	e := newEnv(t, envConfig{webhookRoots: tlsRoots(h.srv)})
	e.putGroup("ops", `{"groupShortName":"ops","webhookReceivers":[{"name":"hook","serviceUri":"`+h.srv.URL+`/x","useCommonAlertSchema":true}]}`)
	t0 := e.start()
	const marker, host = "zebra-7781", "host-quokka-42"
	e.putRule("secret-query", e.ruleBody(`Perf | where CounterName != "`+marker+`"`, "Count", "", "GreaterThan", 0,
		`[{"name":"Computer","operator":"Include","values":["*"]}]`, "", e.groupID("ops")), true)
	e.ingest(perfRow{t0.Add(10 * time.Second), host, 1})
	e.tick(t0.Add(time.Minute))
	if calls := h.received(); len(calls) != 1 || !bytes.Contains(calls[0].body, []byte(host)) || !bytes.Contains(calls[0].body, []byte(marker)) {
		t.Fatalf("webhook: %d calls; want 1 with the query and the dimension value", len(calls))
	}
	raw := e.catalogBytes()
	for _, s := range []string{marker, host} {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("%q is in the catalog's files in the clear", s)
		}
	}
	if _, m, raw := e.call("GET", e.ruleID("secret-query")+"?api-version=2023-12-01", ""); !strings.Contains(raw, marker) ||
		m["properties"].(map[string]any)["evaluationStatus"].(map[string]any)["lastResult"] != "Succeeded" {
		t.Fatalf("GET rule does not show its query: %s", raw)
	}
	if code, _, raw := e.call("GET", "/subscriptions/"+e.sub()+"/providers/Microsoft.AlertsManagement/alerts?api-version=2019-05-05-preview", ""); code != 200 ||
		!strings.Contains(raw, host) {
		t.Fatalf("alerts API does not show the payload: %d %s", code, raw)
	}
	// A PATCH (which rewrites the rule) keeps the query.
	if code, _, raw := e.call("PATCH", e.ruleID("secret-query")+"?api-version=2023-12-01", `{"tags":{"a":"b"}}`); code != 200 || !strings.Contains(raw, marker) {
		t.Fatalf("PATCH: %d %s", code, raw)
	}
}

// plainSource hides the store's content sealing, as an older Custos that
// stored alert content in the clear.
type plainSource struct{ store.Queryable }

// TestLegacyContentSealedAtStart: rules, alerts and notifications stored in
// the clear are sealed when the service starts, and still work.
func TestLegacyContentSealedAtStart(t *testing.T) {
	h := newHook(t, nil)
	e := newEnv(t, envConfig{webhookRoots: tlsRoots(h.srv)})
	ctx := context.Background()
	sealed := e.opts
	e.opts.Source = plainSource{e.st}
	e.svc.Close()
	e.openService()
	e.putGroup("ops", `{"groupShortName":"ops","webhookReceivers":[{"name":"hook","serviceUri":"`+h.srv.URL+`/x","useCommonAlertSchema":true}]}`)
	t0 := e.start()
	const marker, host = "okapi-5521", "host-narwhal-9"
	e.putRule("legacy", e.ruleBody(`Perf | where CounterName != "`+marker+`"`, "Count", "", "GreaterThan", 0,
		`[{"name":"Computer","operator":"Include","values":["*"]}]`, "", e.groupID("ops")), true)
	e.ingest(perfRow{t0.Add(10 * time.Second), host, 1})
	e.tick(t0.Add(time.Minute))
	inClear := func() []string {
		var where []string
		rules, _ := e.cat.AllAlertResources(ctx, "Microsoft.Insights/scheduledQueryRules")
		for _, r := range rules {
			if strings.Contains(string(r.Properties), marker) {
				where = append(where, "rule")
			}
		}
		as, _ := e.cat.Alerts(ctx, alertFilter(e))
		for _, a := range as {
			if strings.Contains(string(a.Doc), host) {
				where = append(where, "alert")
			}
			ns, _ := e.cat.AlertNotifications(ctx, a.ID)
			for _, n := range ns {
				if strings.Contains(string(n.Payload), host) {
					where = append(where, "notification")
				}
			}
		}
		return where
	}
	if got := inClear(); len(got) != 3 {
		t.Fatalf("before: content in the clear in %v; want rule, alert and notification", got)
	}
	e.svc.Close()
	e.opts = sealed
	e.openService()
	if err := e.svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	e.svc.Close()
	e.openService()
	if got := inClear(); len(got) != 0 {
		t.Fatalf("after start: content in the clear in %v", got)
	}
	// The sealed rule still evaluates and resolves, and the alert reads.
	e.tick(t0.Add(2 * time.Minute))
	if calls := h.received(); len(calls) != 2 || !bytes.Contains(calls[1].body, []byte("Resolved")) || !bytes.Contains(calls[1].body, []byte(marker)) {
		t.Fatalf("after sealing: %d calls; want the resolution with the query", len(calls))
	}
	if _, _, raw := e.call("GET", "/subscriptions/"+e.sub()+"/providers/Microsoft.AlertsManagement/alerts?api-version=2019-05-05-preview", ""); !strings.Contains(raw, host) {
		t.Fatalf("alerts API after sealing: %s", raw)
	}
}
