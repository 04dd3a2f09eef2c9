package alert

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"custos/internal/crypt"
	"custos/internal/logtest"
	"custos/internal/store"
)

// TestCustomerKeyRevocationStopsEvaluation links the workspace to a
// customer-managed key (a real file key) and fires a rule whose query and
// state are sealed under the workspace key. With the key revoked, once the
// store's key cache expires, the evaluator cannot open the rule: it logs an
// error naming the unavailable customer-managed key, sends nothing, and the
// rule API answers 503 CustomerManagedKeyUnavailable. With the key restored,
// evaluation resumes from the state it had (missed windows are caught up):
// the alert resolves, with the query in the notification.
func TestCustomerKeyRevocationStopsEvaluation(t *testing.T) {
	h := newHook(t, nil)
	e := newEnv(t, envConfig{webhookRoots: tlsRoots(h.srv)})
	ctx := context.Background()
	// The store again, with a short key cache on the test clock.
	const ttl = time.Minute
	e.svc.Close()
	e.svc = nil
	if err := e.st.Close(); err != nil {
		t.Fatal(err)
	}
	var err error
	if e.st, err = store.Open(store.Options{Dir: filepath.Join(e.dir, "store"), Keys: e.keys, Now: e.clock.Now,
		KeyCacheTTL: ttl, KeyRetryInterval: time.Second}); err != nil {
		t.Fatal(err)
	}
	e.opts.Source = e.st
	logs := &logtest.Buffer{}
	e.opts.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	e.openService()
	cmkPath := filepath.Join(t.TempDir(), "customer.key")
	fk, err := crypt.CreateFileKey(cmkPath)
	if err != nil {
		t.Fatal(err)
	}
	ws := e.boot.Workspace.CustomerID
	if err := e.st.SetWorkspaceKeyProvider(ctx, ws, fk); err != nil {
		t.Fatal(err)
	}

	e.putGroup("ops", `{"groupShortName":"ops","webhookReceivers":[{"name":"hook","serviceUri":"`+h.srv.URL+`/x","useCommonAlertSchema":true}]}`)
	t0 := e.start()
	const marker = "pangolin-3310"
	e.putRule("cmk-rule", e.ruleBody(`Perf | where CounterName != "`+marker+`"`, "Count", "", "GreaterThan", 0, "", "", e.groupID("ops")), true)
	e.ingest(perfRow{t0.Add(10 * time.Second), "host-1", 1})
	e.tick(t0.Add(time.Minute))
	if calls := h.received(); len(calls) != 1 || !bytes.Contains(calls[0].body, []byte("Fired")) {
		t.Fatalf("before revocation: %d webhook calls; want 1 (fired)", len(calls))
	}

	// Revoke. The cached key serves until the TTL runs out.
	if err := os.Chmod(cmkPath, 0); err != nil {
		t.Fatal(err)
	}
	e.tick(t0.Add(time.Minute + ttl + 2*time.Second))
	e.tick(t0.Add(2*time.Minute + ttl + 2*time.Second))
	if calls := h.received(); len(calls) != 1 {
		t.Fatalf("while revoked: %d webhook calls; want none new", len(calls))
	}
	// The rule's status says the evaluations were skipped and why; its
	// sealed query stays withheld.
	code, m, raw := e.call("GET", e.ruleID("cmk-rule")+"?api-version=2023-12-01", "")
	if code != 200 || strings.Contains(raw, marker) {
		t.Fatalf("GET rule while revoked: %d %s; want 200 without the sealed query", code, raw)
	}
	es := m["properties"].(map[string]any)["evaluationStatus"].(map[string]any)
	if es["lastResult"] != "Skipped" || es["skipReason"] != SkipKeyUnavailable ||
		!strings.Contains(es["lastError"].(string), "customer-managed key is unavailable") {
		t.Fatalf("evaluationStatus while revoked: %v; want lastResult Skipped, skipReason %s and the reason", es, SkipKeyUnavailable)
	}
	if n, _ := es["skippedEvaluations"].(float64); n < 2 {
		t.Fatalf("evaluationStatus.skippedEvaluations = %v; want at least 2 (two ticks while revoked)", es["skippedEvaluations"])
	}
	if _, err := time.Parse(time.RFC3339Nano, es["lastSkippedTime"].(string)); err != nil {
		t.Fatalf("evaluationStatus.lastSkippedTime: %v", err)
	}
	// The list shows the same status rather than failing.
	if code, _, raw := e.call("GET", strings.TrimSuffix(e.ruleID("x"), "/x")+"?api-version=2023-12-01", ""); code != 200 || !strings.Contains(raw, `"Skipped"`) || strings.Contains(raw, marker) {
		t.Fatalf("list rules while revoked: %d %s", code, raw)
	}
	var metrics bytes.Buffer
	if err := e.svc.WriteMetrics(&metrics); err != nil {
		t.Fatal(err)
	}
	if n := metricValue(t, metrics.String(), `custos_alert_skipped_evaluations_total{reason="CustomerManagedKeyUnavailable"}`); n < 2 {
		t.Fatalf("custos_alert_skipped_evaluations_total = %v; want at least 2:\n%s", n, metrics.String())
	}
	if l := logs.String(); !strings.Contains(l, "load alert rule state") || !strings.Contains(l, "customer-managed key") {
		t.Fatalf("the evaluator logged no error naming the customer-managed key:\n%s", l)
	}

	// Restore: evaluation resumes where it stopped; no row in the window, so
	// the alert resolves.
	if err := os.Chmod(cmkPath, 0o600); err != nil {
		t.Fatal(err)
	}
	e.tick(t0.Add(4*time.Minute + ttl))
	calls := h.received()
	if len(calls) != 2 || !bytes.Contains(calls[1].body, []byte("Resolved")) || !bytes.Contains(calls[1].body, []byte(marker)) {
		t.Fatalf("after restore: %d webhook calls; want the resolution with the query", len(calls))
	}
	code, m, raw = e.call("GET", e.ruleID("cmk-rule")+"?api-version=2023-12-01", "")
	es = m["properties"].(map[string]any)["evaluationStatus"].(map[string]any)
	if code != 200 || !strings.Contains(raw, marker) || es["lastResult"] != "Succeeded" || es["skipReason"] != nil || es["skippedEvaluations"] != nil {
		t.Fatalf("GET rule after restore: %d %s; want Succeeded and no skips", code, raw)
	}
}

// metricValue returns the value of one sample line of a Prometheus text
// exposition (the line that starts with series followed by a space).
func metricValue(t *testing.T, text, series string) float64 {
	t.Helper()
	for _, l := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", series, err)
			}
			return n
		}
	}
	t.Fatalf("no sample %s in:\n%s", series, text)
	return 0
}
