package alert

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"custos/internal/crypt"
	"custos/internal/store"
)

// lockedBuffer is a log sink safe for the service's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

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
	logs := &lockedBuffer{}
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
	code, _, raw := e.call("GET", e.ruleID("cmk-rule")+"?api-version=2023-12-01", "")
	if code != 503 || !strings.Contains(raw, `"CustomerManagedKeyUnavailable"`) || strings.Contains(raw, marker) {
		t.Fatalf("GET rule while revoked: %d %s; want 503 CustomerManagedKeyUnavailable", code, raw)
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
	code, m, raw := e.call("GET", e.ruleID("cmk-rule")+"?api-version=2023-12-01", "")
	if code != 200 || !strings.Contains(raw, marker) ||
		m["properties"].(map[string]any)["evaluationStatus"].(map[string]any)["lastResult"] != "Succeeded" {
		t.Fatalf("GET rule after restore: %d %s", code, raw)
	}
}
