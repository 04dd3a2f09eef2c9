package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// setField sets the value of the element sel matches (an input, select or
// textarea) and fires input and change, as typing and choosing would.
func setField(sel, value string) chromedp.Action[chromedp.Void] {
	return JS(fmt.Sprintf(`(() => { const n = document.querySelector(%q); if (!n) throw new Error("no element " + %q);
		n.value = %q; n.dispatchEvent(new Event("input", { bubbles: true })); n.dispatchEvent(new Event("change", { bubbles: true })); return true; })()`, sel, sel, value))
}

// clickText clicks the button whose text is text inside the element sel,
// waiting for it to appear (a list is rendered after its fetch returns, so a
// button of the previous view can still be the one visible) until the
// action's context ends.
func clickText(sel, text string) chromedp.Action[chromedp.Void] {
	click := JS(fmt.Sprintf(`(() => { const b = Array.from(document.querySelectorAll(%q + " button")).find((x) => x.textContent === %q);
		if (!b) throw new Error("no button " + %q); b.click(); return true; })()`, sel, text, text))
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		for {
			v, err := click(ctx, t)
			if err == nil || !strings.Contains(err.Error(), "no button") {
				return v, err
			}
			select {
			case <-ctx.Done():
				return v, err
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// do runs actions with a one-minute bound, so a step that waits for
// something that never appears fails with the page's messages.
func do(b *Browser, actions ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(b.Ctx, time.Minute)
	defer cancel()
	return chromedp.Do(ctx, actions...)
}

// failShot saves a screenshot of the page and the form's message, then fails.
func failShot(t *testing.T, b *Browser, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 10*time.Second)
	defer cancel()
	msg, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`Array.from(document.querySelectorAll(".form-msg, .field-error, .error")).map((n) => n.textContent).join(" | ")`))
	if png, serr := chromedp.Run(ctx, chromedp.FullScreenshot(90)); serr == nil {
		p := artifactDir(t) + "/failed-" + t.Name() + ".png"
		_ = os.MkdirAll(artifactDir(t), 0o755)
		_ = os.WriteFile(p, png, 0o644)
	}
	t.Fatalf("%v; page messages: %s", err, msg)
}

// armResource reads a resource through the ARM API; found is false on 404.
func armResource(ctx context.Context, c *Client, path string) (map[string]any, bool, error) {
	raw, err := c.ARM(ctx, http.MethodGet, path, nil)
	if err != nil {
		if strings.Contains(err.Error(), "404") || strings.Contains(err.Error(), "NotFound") {
			return nil, false, nil
		}
		return nil, false, err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, false, err
	}
	return m, true, nil
}

// waitResource polls path until ok accepts it (or, with ok nil, until it
// is gone).
func waitResource(t *testing.T, ctx context.Context, c *Client, path string, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	var last map[string]any
	var lastErr error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		m, found, err := armResource(ctx, c, path)
		last, lastErr = m, err
		if err != nil {
			continue
		}
		if ok == nil && !found {
			return nil
		}
		if ok != nil && found && ok(m) {
			return m
		}
	}
	b, _ := json.Marshal(last)
	t.Fatalf("%s did not reach the expected state: %s (%v)", path, b, lastErr)
	return nil
}

func prop(m map[string]any, path ...string) any {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[p]
	}
	return cur
}

// fieldError waits for the API's message at the field sel and returns it;
// the field must be marked invalid.
func fieldError(t *testing.T, b *Browser, sel string) string {
	t.Helper()
	var msg string
	err := errors.New("not yet")
	for deadline := time.Now().Add(20 * time.Second); err != nil && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		msg, err = chromedp.Run(b.Ctx, chromedp.Evaluate[string](fmt.Sprintf(`(() => { const n = document.querySelector(%q);
			if (!n || n.getAttribute("aria-invalid") !== "true") return "";
			const ids = (n.getAttribute("aria-describedby") || "").split(" ");
			return ids.map((i) => document.getElementById(i)).filter((x) => x && x.classList.contains("field-error")).map((x) => x.textContent).join(""); })()`, sel)))
		if err == nil && msg == "" {
			err = errors.New("no message")
		}
	}
	if err != nil {
		t.Fatalf("no validation message at %s: %v", sel, err)
	}
	return msg
}

// TestPortalAlertForms creates, edits and deletes an action group, a log
// search alert rule, a metric alert rule and an activity log alert rule
// through the portal's forms in Chromium, checks each step through the ARM
// API, and checks that a value the API refuses is reported at its field.
func TestPortalAlertForms(t *testing.T) {
	s, c := newServer(t)
	ctx := testCtx(t, 10*time.Minute)
	base := "https://" + s.Addr()
	ws := c.Admin.WorkspaceResourceID()
	sub := "/subscriptions/" + c.Admin.SubscriptionID
	rg := sub + "/resourceGroups/" + c.Admin.ResourceGroup + "/providers/Microsoft.Insights/"
	ada := createUser(t, ctx, c, "ada@custos.test", "correct horse battery staple 1")
	assign(t, ctx, c, sub, roleOwner, ada)
	assign(t, ctx, c, sub, roleLogAnalyticsReader, ada)
	time.Sleep(RoleCacheTTL)

	b := newBrowser(t, s)
	signInAs(t, b, base, "ada@custos.test", "correct horse battery staple 1")
	openTab := func(tab string) {
		t.Helper()
		if err := do(b, chromedp.Navigate(base+"/portal/#/alerts"), chromedp.WaitVisible("#"+tab), chromedp.Click("#"+tab)); err != nil {
			t.Fatalf("open %s: %v", tab, err)
		}
	}

	// Action group: an invalid email address is refused at its field.
	openTab("tab-action-groups")
	groupForm := `form[aria-label="New action group"]`
	if err := do(b, chromedp.WaitVisible("#new-group"), chromedp.Click("#new-group"), chromedp.WaitVisible("#ag-name"),
		setField("#ag-name", "ops-team"), setField("#ag-short", "ops"),
		clickText(groupForm, "Add email receiver"), clickText(groupForm, "Add webhook receiver"),
		setField(`#rows-properties-emailReceivers input[aria-label="Receiver name"]`, "oncall"),
		setField(groupForm+` input[aria-label="Email address"]`, "not an address"),
		setField(`#rows-properties-webhookReceivers input[aria-label="Receiver name"]`, "hook"),
		setField(groupForm+` input[aria-label="Webhook URL"]`, "https://hooks.example.test/custos"),
		chromedp.Click("#ag-save"),
	); err != nil {
		failShot(t, b, err)
	}
	if msg := fieldError(t, b, groupForm+` input[aria-label="Email address"]`); !strings.Contains(msg, "email address") {
		t.Fatalf("email message: %q", msg)
	}
	shot(t, b, "20-action-group-invalid")
	if err := do(b, setField(groupForm+` input[aria-label="Email address"]`, "oncall@custos.test"), chromedp.Click("#ag-save"),
		chromedp.WaitVisible(`form[aria-label="Edit action group ops-team"]`)); err != nil {
		failShot(t, b, err)
	}
	groupID := rg + "actionGroups/ops-team"
	waitResource(t, ctx, c, groupID+"?api-version=2023-01-01", func(m map[string]any) bool {
		return prop(m, "properties", "groupShortName") == "ops" && strings.Contains(fmt.Sprint(m), "oncall@custos.test") && strings.Contains(fmt.Sprint(m), "hooks.example.test")
	})
	shot(t, b, "21-action-group-created")
	if err := do(b, setField("#ag-short", "ops2"), chromedp.Click("#ag-save"), chromedp.WaitVisible(".form-msg.ok")); err != nil {
		failShot(t, b, err)
	}
	waitResource(t, ctx, c, groupID+"?api-version=2023-01-01", func(m map[string]any) bool { return prop(m, "properties", "groupShortName") == "ops2" })

	// Log search alert rule: a missing threshold is refused at its field;
	// then created with the action group, edited and deleted.
	openTab("tab-log-search-rules")
	if err := do(b, chromedp.WaitVisible("#new-rule"), chromedp.Click("#new-rule"), chromedp.WaitVisible("#sqr-name"),
		setField("#sqr-name", "errors-rule"), setField("#sqr-query", "Heartbeat\n| summarize AggregatedValue = count() by Computer"),
		setField("#sqr-severity", "2"), setField("#sqr-threshold", ""), setField("#sqr-frequency", "PT5M"), setField("#sqr-window", "PT15M"),
		chromedp.Click(`#sqr-groups input[aria-label="Action group ops-team"]`),
		chromedp.Click("#sqr-save"),
	); err != nil {
		failShot(t, b, err)
	}
	if msg := fieldError(t, b, "#sqr-threshold"); !strings.Contains(msg, "threshold") {
		t.Fatalf("threshold message: %q", msg)
	}
	shot(t, b, "22-rule-invalid")
	if err := do(b, setField("#sqr-threshold", "5"), chromedp.Click("#sqr-save"), chromedp.WaitVisible(`form[aria-label="Edit alert rule errors-rule"]`)); err != nil {
		failShot(t, b, err)
	}
	ruleID := rg + "scheduledQueryRules/errors-rule?api-version=2023-12-01"
	waitResource(t, ctx, c, ruleID, func(m map[string]any) bool {
		crit, _ := prop(m, "properties", "criteria", "allOf").([]any)
		return len(crit) == 1 && prop(crit[0].(map[string]any), "threshold") == 5.0 && prop(m, "properties", "severity") == 2.0 &&
			prop(m, "properties", "windowSize") == "PT15M" && strings.Contains(strings.ToLower(fmt.Sprint(prop(m, "properties", "actions"))), "ops-team")
	})
	shot(t, b, "23-rule-created")
	if err := do(b, setField("#sqr-severity", "1"), chromedp.Click("#sqr-save"), chromedp.WaitVisible(".form-msg.ok")); err != nil {
		failShot(t, b, err)
	}
	waitResource(t, ctx, c, ruleID, func(m map[string]any) bool { return prop(m, "properties", "severity") == 1.0 })
	if err := do(b, clickText(`form[aria-label="Edit alert rule errors-rule"]`, "Delete rule"), clickText(`form[aria-label="Edit alert rule errors-rule"]`, "Confirm: delete rule")); err != nil {
		failShot(t, b, err)
	}
	waitResource(t, ctx, c, ruleID, nil)

	// Metric alert rule.
	openTab("tab-metric-rules")
	if err := do(b, chromedp.WaitVisible("#new-metric"), chromedp.Click("#new-metric"), chromedp.WaitVisible("#mar-name"),
		setField("#mar-name", "cpu-rule"), setField("#mar-window", "PT15M"),
		chromedp.Click(`#mar-groups input[aria-label="Action group ops-team"]`), chromedp.Click("#mar-save"),
		chromedp.WaitVisible(`form[aria-label="Edit metric alert rule cpu-rule"]`)); err != nil {
		shot(t, b, "failed-metric")
		t.Fatal(err)
	}
	metricID := rg + "metricAlerts/cpu-rule?api-version=2018-03-01"
	waitResource(t, ctx, c, metricID, func(m map[string]any) bool { return prop(m, "properties", "windowSize") == "PT15M" })
	shot(t, b, "24-metric-rule")
	if err := do(b, setField(`form[aria-label="Edit metric alert rule cpu-rule"] input[aria-label="Threshold"]`, "90"),
		chromedp.Click("#mar-save"), chromedp.WaitVisible(".form-msg.ok")); err != nil {
		failShot(t, b, err)
	}
	waitResource(t, ctx, c, metricID, func(m map[string]any) bool {
		return strings.Contains(fmt.Sprint(prop(m, "properties", "criteria")), "threshold:90")
	})
	if err := do(b, clickText(`form[aria-label="Edit metric alert rule cpu-rule"]`, "Delete rule"), clickText(`form[aria-label="Edit metric alert rule cpu-rule"]`, "Confirm: delete rule")); err != nil {
		failShot(t, b, err)
	}
	waitResource(t, ctx, c, metricID, nil)

	// Activity log alert rule.
	openTab("tab-activity-log-rules")
	if err := do(b, chromedp.WaitVisible("#new-activity"), chromedp.Click("#new-activity"), chromedp.WaitVisible("#ala-name"),
		setField("#ala-name", "rbac-writes"), setField("#ala-description", "role assignment changes"),
		chromedp.Click(`#ala-groups input[aria-label="Action group ops-team"]`), chromedp.Click("#ala-save"),
		chromedp.WaitVisible(`form[aria-label="Edit activity log alert rule rbac-writes"]`)); err != nil {
		shot(t, b, "failed-activity")
		t.Fatal(err)
	}
	activityID := rg + "activityLogAlerts/rbac-writes?api-version=2020-10-01"
	waitResource(t, ctx, c, activityID, func(m map[string]any) bool {
		return prop(m, "properties", "description") == "role assignment changes" && strings.Contains(fmt.Sprint(m), "roleAssignments/write")
	})
	shot(t, b, "25-activity-rule")
	if err := do(b, setField("#ala-description", "changed"), chromedp.Click("#ala-save"), chromedp.WaitVisible(".form-msg.ok")); err != nil {
		failShot(t, b, err)
	}
	waitResource(t, ctx, c, activityID, func(m map[string]any) bool { return prop(m, "properties", "description") == "changed" })
	if err := do(b, clickText(`form[aria-label="Edit activity log alert rule rbac-writes"]`, "Delete rule"), clickText(`form[aria-label="Edit activity log alert rule rbac-writes"]`, "Confirm: delete rule")); err != nil {
		failShot(t, b, err)
	}
	waitResource(t, ctx, c, activityID, nil)

	// The action group last: a test notification, then delete.
	openTab("tab-action-groups")
	if err := do(b, chromedp.WaitVisible(`button.link`), clickText("table.list", "ops-team"),
		chromedp.WaitVisible(`form[aria-label="Edit action group ops-team"]`)); err != nil {
		failShot(t, b, err)
	}
	// A test notification: accepted, and its per-receiver status shown.
	if err := do(b, chromedp.Click("#ag-test"), chromedp.WaitVisible(".form-msg.ok")); err != nil {
		failShot(t, b, err)
	}
	var note string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		note, _ = chromedp.Run(b.Ctx, chromedp.Text(".form-msg"))
		if strings.Contains(note, "Email oncall:") && strings.Contains(note, "Webhook hook:") {
			break
		}
	}
	if !strings.Contains(note, "Email oncall:") || !strings.Contains(note, "Webhook hook:") {
		t.Fatalf("test notification status: %q", note)
	}
	t.Logf("test notification: %s", note)
	shot(t, b, "26-action-group-test-notification")
	if err := do(b, clickText(`form[aria-label="Edit action group ops-team"]`, "Delete action group"),
		clickText(`form[aria-label="Edit action group ops-team"]`, "Confirm: delete action group")); err != nil {
		failShot(t, b, err)
	}
	waitResource(t, ctx, c, groupID+"?api-version=2023-01-01", nil)
	_ = ws
}
