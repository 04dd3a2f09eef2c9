package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// alertHook is a plain-HTTP webhook receiver on 127.0.0.1 (the server
// allows plain HTTP to loopback) recording the common-alert-schema payloads
// it receives.
type alertHook struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []alertNote
}

// alertNote is what the test reads of one notification.
type alertNote struct {
	AlertID, Condition string
	WindowStart        time.Time
	WindowEnd          time.Time
	Received           time.Time // the test's (real) clock
}

func newAlertHook(t *testing.T) *alertHook {
	h := &alertHook{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var p struct {
			Data struct {
				Essentials struct {
					AlertID          string `json:"alertId"`
					MonitorCondition string `json:"monitorCondition"`
				} `json:"essentials"`
				AlertContext struct {
					Condition struct {
						WindowStartTime string `json:"windowStartTime"`
						WindowEndTime   string `json:"windowEndTime"`
					} `json:"condition"`
				} `json:"alertContext"`
			} `json:"data"`
		}
		if err := json.Unmarshal(b, &p); err != nil {
			t.Errorf("webhook payload: %v: %.300s", err, b)
		}
		n := alertNote{AlertID: p.Data.Essentials.AlertID, Condition: p.Data.Essentials.MonitorCondition, Received: time.Now()}
		n.WindowStart, _ = time.Parse(time.RFC3339Nano, p.Data.AlertContext.Condition.WindowStartTime)
		n.WindowEnd, _ = time.Parse(time.RFC3339Nano, p.Data.AlertContext.Condition.WindowEndTime)
		if n.AlertID == "" || n.WindowEnd.IsZero() {
			t.Errorf("webhook payload without alertId or windowEndTime: %.500s", b)
		}
		h.mu.Lock()
		h.got = append(h.got, n)
		h.mu.Unlock()
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *alertHook) notes() []alertNote {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]alertNote(nil), h.got...)
}

// waitNotes waits up to d for at least n notifications satisfying ok.
func (h *alertHook) waitNotes(t *testing.T, what string, n int, d time.Duration, ok func(alertNote) bool) []alertNote {
	t.Helper()
	for deadline := time.Now().Add(d); ; time.Sleep(500 * time.Millisecond) {
		var match []alertNote
		for _, x := range h.notes() {
			if ok(x) {
				match = append(match, x)
			}
		}
		if len(match) >= n {
			return match
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d notifications within %v; all received: %+v", what, len(match), n, d, h.notes())
		}
	}
}

// TestAlertClockJumpsBack: a log search alert rule (every minute, over the
// last minute, stateless: every window with an error row fires and
// notifies a webhook) runs on the real server while rows arrive every 3 s
// and the server's clock (the test-only CUSTOS_TEST_CLOCK_OFFSET_FILE hook)
// jumps 2 hours back and, later, forward again. The rows carry no
// TimeGenerated, so they are stamped with the server's clock.
//
// It checks, through the webhook's common-alert-schema payloads:
//   - before the jump, windows fire every minute;
//   - after the jump, evaluation resumes within 3 minutes with windows of
//     the server's new time (not 2 hours later, when its clock would have
//     reached the old schedule), and goes on every minute;
//   - after the jump forward, windows after the ones evaluated before the
//     backward jump fire again, and no window evaluated before the backward
//     jump is evaluated again;
//   - no window end and no alert ID is notified twice;
//   - the server logs the step, and the client that got its tokens before
//     the jump keeps ingesting with them (docs/security.md).
func TestAlertClockJumpsBack(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: starts the custos binary")
	}
	ctx := testCtx(t, 14*time.Minute)
	cols := []Column{{Name: "TimeGenerated", Type: "datetime"}, {Name: "Level", Type: "string"}, {Name: "Seq", Type: "long"}}
	env := startClockServer(t, ctx, t.TempDir(), "Alarm_CL", "Custom-Alarm", "alarm-dcr", cols)
	s, c, dcr := env.s, env.c, env.dcr
	adm := c.Admin
	setOffset := func(d string) { t.Helper(); env.setOffset(t, d) }
	hook := newAlertHook(t)
	rg := fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Insights/", adm.SubscriptionID, adm.ResourceGroup)
	groupID := rg + "actionGroups/clock-ops"
	if _, err := c.ARM(ctx, http.MethodPut, groupID+"?api-version=2023-01-01", map[string]any{"location": "Global", "properties": map[string]any{
		"groupShortName": "clockops", "enabled": true,
		"webhookReceivers": []any{map[string]any{"name": "hook", "serviceUri": hook.srv.URL + "/alert", "useCommonAlertSchema": true}},
	}}); err != nil {
		t.Fatal(err)
	}
	raw, err := c.ARM(ctx, http.MethodPut, rg+"scheduledQueryRules/clock-errors?api-version=2023-12-01", map[string]any{
		"location": "local", "identity": map[string]any{"type": "SystemAssigned"},
		"properties": map[string]any{"severity": 2, "enabled": true, "scopes": []string{adm.WorkspaceResourceID()},
			"evaluationFrequency": "PT1M", "windowSize": "PT1M", "autoMitigate": false,
			"criteria": map[string]any{"allOf": []any{map[string]any{
				"query": "Alarm_CL | where Level == 'Error'", "timeAggregation": "Count", "operator": "GreaterThan", "threshold": 0,
			}}},
			"actions": map[string]any{"actionGroups": []string{groupID}}}})
	if err != nil {
		t.Fatal(err)
	}
	var rule struct {
		Identity struct {
			PrincipalID string `json:"principalId"`
		} `json:"identity"`
	}
	if err := json.Unmarshal(raw, &rule); err != nil || rule.Identity.PrincipalID == "" {
		t.Fatalf("rule without an identity: %v %s", err, raw)
	}
	if err := c.AssignRole(ctx, adm.WorkspaceResourceID(), roleLogAnalyticsReader, rule.Identity.PrincipalID); err != nil {
		t.Fatal(err)
	}

	// An error row every 3 s, stamped by the server (no TimeGenerated).
	stop := make(chan struct{})
	ingestDone := make(chan error, 1)
	go func(stop <-chan struct{}) { // its own copy: stopIngest sets the variable to nil
		for seq := 0; ; seq++ {
			select {
			case <-stop:
				ingestDone <- nil
				return
			case <-time.After(3 * time.Second):
			}
			body := fmt.Sprintf(`[{"Level":"Error","Seq":%d}]`, seq)
			if err := c.Upload(ctx, dcr, "Custom-Alarm", []byte(body)); err != nil {
				ingestDone <- fmt.Errorf("upload %d: %w", seq, err)
				return
			}
		}
	}(stop)
	stopIngest := func() {
		t.Helper()
		if stop == nil {
			return
		}
		close(stop)
		stop = nil
		if err := <-ingestDone; err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if stop != nil {
			close(stop)
		}
	})

	// Before the jump: two windows fire.
	real := func(x alertNote) bool { return x.WindowEnd.After(time.Now().Add(-time.Hour)) }
	pre := hook.waitNotes(t, "before the jump", 2, 4*time.Minute, real)
	var preMax time.Time
	for _, x := range pre {
		if x.WindowEnd.After(preMax) {
			preMax = x.WindowEnd
		}
	}
	t.Logf("before the jump: windows fired up to %v", preMax)

	// Two hours back. Windows of the server's new time fire within 3
	// minutes, and go on every minute.
	from := LogLen(t, s)
	jumped := time.Now()
	setOffset("-2h")
	shifted := func(x alertNote) bool { return x.WindowEnd.Before(jumped.Add(-time.Hour)) }
	post := hook.waitNotes(t, "after the 2 h jump back", 1, 3*time.Minute, shifted)
	t.Logf("after the jump back: first window %v–%v notified %v after the jump", post[0].WindowStart, post[0].WindowEnd, post[0].Received.Sub(jumped).Round(time.Second))
	line := WaitLog(t, s, from, 10*time.Second, "clock stepped back; alert rule evaluation resumes at the current time")
	t.Logf("server log: %.300s", line)
	post = hook.waitNotes(t, "the second window after the jump back", 2, 3*time.Minute, shifted)

	// Forward again: windows after those evaluated before the backward
	// jump fire; none of those is evaluated again.
	back := time.Now()
	setOffset("0s")
	later := func(x alertNote) bool { return x.Received.After(back) && !shifted(x) }
	fwd := hook.waitNotes(t, "after the clock came forward again", 1, 3*time.Minute, later)
	time.Sleep(5 * time.Second) // a catch-up burst, if any, is delivered by now
	stopIngest()

	all := hook.notes()
	seenID, seenEnd := map[string]bool{}, map[time.Time]bool{}
	for _, x := range all {
		if x.Condition != "Fired" {
			t.Errorf("notification %+v: condition %q; want Fired (a stateless rule)", x, x.Condition)
		}
		if seenID[x.AlertID] {
			t.Errorf("alert %s notified twice: %+v", x.AlertID, all)
		}
		if seenEnd[x.WindowEnd] {
			t.Errorf("window ending %v notified twice: %+v", x.WindowEnd, all)
		}
		seenID[x.AlertID], seenEnd[x.WindowEnd] = true, true
		if x.Received.After(back) && !shifted(x) && !x.WindowEnd.After(preMax) {
			t.Errorf("window ending %v, evaluated before the backward jump, was evaluated again after the clock came forward: %+v", x.WindowEnd, x)
		}
	}
	t.Logf("%d notifications: %d before the jump back, %d between the jumps, %d after the jump forward (first window %v)",
		len(all), len(pre), len(post), len(fwd), fwd[0].WindowEnd)
	if !s.Running() {
		t.Fatal("the server exited")
	}
	if logb, _ := s.Log(); strings.Contains(string(logb), "panic") {
		t.Fatal("the server log mentions a panic")
	}
}
