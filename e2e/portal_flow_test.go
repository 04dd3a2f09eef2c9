package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

const (
	roleOwner              = "8e3af657-a8ff-443c-a75c-2fe8c4bcd635"
	roleReader             = "acdd72a7-3385-48ef-bd42-f606fba81ae7" // granted to Carol through the portal
	roleLogAnalyticsReader = "73c42c96-874c-492b-b04d-ab87d138a893"
)

// createUser creates a local user with a password through the directory
// API and returns its object id.
func createUser(t *testing.T, ctx context.Context, c *Client, upn, password string) string {
	t.Helper()
	id := NewGUID()
	body := map[string]any{"properties": map[string]any{"userPrincipalName": upn, "displayName": strings.Split(upn, "@")[0], "password": password}}
	if _, err := c.ARM(ctx, http.MethodPut, "/providers/Custos.Directory/users/"+id+"?api-version=2026-11-01", body); err != nil {
		t.Fatalf("create user %s: %v", upn, err)
	}
	return id
}

// assign grants role to principal at scope.
func assign(t *testing.T, ctx context.Context, c *Client, scope, role, principal string) {
	t.Helper()
	if err := c.AssignRole(ctx, scope, role, principal); err != nil {
		t.Fatalf("assign %s to %s at %s: %v", role, principal, scope, err)
	}
}

// signInAs drives the portal's sign-in: the portal's page, the token
// service's sign-in form, and back to the portal signed in.
func signInAs(t *testing.T, b *Browser, base, upn, password string) {
	t.Helper()
	if err := chromedp.Do(b.Ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible("#signin"),
		chromedp.Click("#signin"),
		chromedp.WaitVisible(chromedp.CSS(`input[name="username"]`)),
	); err != nil {
		t.Fatal(err)
	}
	shot(t, b, "01-signin-form")
	if err := chromedp.Do(b.Ctx,
		chromedp.SendKeys(chromedp.CSS(`input[name="username"]`), upn),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), password),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible("#signout"),
	); err != nil {
		t.Fatalf("sign in as %s: %v", upn, err)
	}
}

// runQuery types kql into the Logs editor, runs it and waits for the row
// count or an error.
func runQuery(t *testing.T, b *Browser, kql string) string {
	t.Helper()
	if err := chromedp.Do(b.Ctx,
		chromedp.Navigate(strings.Split(mustLocation(t, b), "#")[0]+"#/logs"),
		chromedp.WaitVisible("#kql"),
		chromedp.SetValue("#kql", kql),
		chromedp.Click("#run"),
		chromedp.WaitVisible(chromedp.CSS("#row-count, #query-error")),
	); err != nil {
		shot(t, b, "failed-query")
		t.Fatalf("run %q: %v", kql, err)
	}
	status, err := chromedp.Run(b.Ctx, chromedp.Text("#status"))
	if err != nil {
		t.Fatal(err)
	}
	return status
}

func mustLocation(t *testing.T, b *Browser) string {
	t.Helper()
	loc, err := chromedp.Run(b.Ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// gridText returns the text of the results grid's rendered cells.
func gridText(t *testing.T, b *Browser) string {
	t.Helper()
	s, err := chromedp.Run(b.Ctx, chromedp.Evaluate[string](`Array.from(document.querySelectorAll("#tab-results .cell")).map(c => c.textContent).join("\n")`))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestPortalEndToEnd signs in to the portal in a real Chromium as a local
// user, runs a query and sees its chart, acknowledges a fired alert, adds a
// role assignment, and checks that a user limited to one table does not see
// the other; every page is screenshotted and no CSP violation or page error
// may appear.
func TestPortalEndToEnd(t *testing.T) {
	s, c := newServer(t)
	ctx := testCtx(t, 12*time.Minute)
	base := "https://" + s.Addr()
	ws := c.Admin.WorkspaceResourceID()
	sub := "/subscriptions/" + c.Admin.SubscriptionID

	// Data: two tables, fresh rows in both.
	cols := []Column{{"TimeGenerated", "datetime"}, {"Computer", "string"}, {"Level", "string"}, {"Latency", "real"}}
	for _, tbl := range []string{"Portal_CL", "Secret_CL"} {
		if err := c.CreateTable(ctx, tbl, cols); err != nil {
			t.Fatal(err)
		}
		rule, err := c.CreateDCR(ctx, "dcr-"+strings.ToLower(tbl), "Custom-"+tbl, cols, tbl, "")
		if err != nil {
			t.Fatal(err)
		}
		var recs []map[string]any
		now := time.Now().UTC()
		for i := range 120 {
			level := "Info"
			if i%10 == 0 {
				level = "Error"
			}
			recs = append(recs, map[string]any{"TimeGenerated": now.Add(-time.Duration(i) * 30 * time.Second).Format(time.RFC3339Nano),
				"Computer": fmt.Sprintf("host-%d", i%3), "Level": level, "Latency": float64(i)})
		}
		body, _ := json.Marshal(recs)
		if err := c.Upload(ctx, rule, "Custom-"+tbl, body); err != nil {
			t.Fatal(err)
		}
	}

	// An alert rule that fires on the Error rows, with its own identity.
	raw, err := c.ARM(ctx, http.MethodPut, sub+"/resourceGroups/"+c.Admin.ResourceGroup+
		"/providers/Microsoft.Insights/scheduledQueryRules/portal-errors?api-version=2023-12-01", map[string]any{
		"location": "local", "identity": map[string]any{"type": "SystemAssigned"},
		"properties": map[string]any{"severity": 1, "enabled": true, "scopes": []string{ws},
			"evaluationFrequency": "PT1M", "windowSize": "PT1H",
			"criteria": map[string]any{"allOf": []any{map[string]any{"query": "Portal_CL | where Level == 'Error'",
				"timeAggregation": "Count", "operator": "GreaterThan", "threshold": 0}}}}})
	if err != nil {
		t.Fatal(err)
	}
	var rule struct {
		Identity struct {
			PrincipalID string `json:"principalId"`
		} `json:"identity"`
	}
	if err := json.Unmarshal(raw, &rule); err != nil || rule.Identity.PrincipalID == "" {
		t.Fatalf("rule identity: %v %s", err, raw)
	}
	assign(t, ctx, c, ws, roleLogAnalyticsReader, rule.Identity.PrincipalID)

	// Users: Ada administers the subscription and reads all logs; Bob reads
	// only Portal_CL.
	ada := createUser(t, ctx, c, "ada@custos.test", "correct horse battery staple 1")
	bob := createUser(t, ctx, c, "bob@custos.test", "correct horse battery staple 2")
	assign(t, ctx, c, sub, roleOwner, ada)
	assign(t, ctx, c, sub, roleLogAnalyticsReader, ada)
	// Bob may browse the subscription's workspaces and run queries, but
	// reads data only of Portal_CL (Reader's */read would include every
	// table's legacy query action, as in Azure, so he gets a custom role).
	browse := NewGUID()
	if _, err := c.ARM(ctx, http.MethodPut, sub+"/providers/Microsoft.Authorization/roleDefinitions/"+browse+"?api-version=2022-04-01",
		map[string]any{"properties": map[string]any{"roleName": "Workspace browser", "type": "CustomRole",
			"description": "List workspaces and tables and run queries; data access comes from table-level assignments.",
			"permissions": []any{map[string]any{"actions": []string{"Microsoft.Resources/subscriptions/read",
				"Microsoft.Resources/subscriptions/resourceGroups/read", "Microsoft.OperationalInsights/workspaces/read",
				"Microsoft.OperationalInsights/workspaces/tables/read", "Microsoft.OperationalInsights/workspaces/query/read"}}},
			"assignableScopes": []string{sub}}}); err != nil {
		t.Fatalf("custom role: %v", err)
	}
	assign(t, ctx, c, sub, browse, bob)
	assign(t, ctx, c, ws+"/tables/Portal_CL", roleLogAnalyticsReader, bob)
	time.Sleep(RoleCacheTTL)

	// Ada: sign in, query with a chart.
	b := newBrowser(t, s)
	signInAs(t, b, base, "ada@custos.test", "correct horse battery staple 1")
	shot(t, b, "02-logs")
	status := runQuery(t, b, "Portal_CL | summarize count() by bin(TimeGenerated, 5m), Level | render timechart")
	if !strings.Contains(status, "rows") {
		t.Fatalf("query status: %q", status)
	}
	if err := chromedp.Do(b.Ctx, chromedp.WaitVisible("#tab-chart svg path")); err != nil {
		t.Fatalf("no chart drawn: %v", err)
	}
	shot(t, b, "03-logs-chart")
	// A syntax error is marked where the server says it is.
	status = runQuery(t, b, "Portal_CL | where")
	if !strings.Contains(status, "line 1") {
		t.Fatalf("syntax error status: %q", status)
	}
	if err := chromedp.Do(b.Ctx, chromedp.WaitVisible(".editor .k-err")); err != nil {
		t.Fatalf("no error squiggle: %v", err)
	}
	shot(t, b, "04-logs-error")

	// The other blades render.
	for i, blade := range []string{"tables", "collection", "activity", "security"} {
		if err := chromedp.Do(b.Ctx, chromedp.Navigate(base+"/portal/#/"+blade), chromedp.WaitVisible("main h1"), chromedp.Sleep(time.Second)); err != nil {
			t.Fatalf("%s: %v", blade, err)
		}
		shot(t, b, fmt.Sprintf("%02d-%s", 5+i, blade))
	}

	// Alerts: wait for the rule to fire, then acknowledge it in the portal.
	alertsPath := sub + "/providers/Microsoft.AlertsManagement/alerts?api-version=2019-05-05-preview&timeRange=1d"
	var alertName string
	for deadline := time.Now().Add(4 * time.Minute); alertName == "" && time.Now().Before(deadline); time.Sleep(5 * time.Second) {
		raw, err := c.ARM(ctx, http.MethodGet, alertsPath, nil)
		if err != nil {
			t.Fatal(err)
		}
		var list struct {
			Value []struct {
				Name string `json:"name"`
			} `json:"value"`
		}
		_ = json.Unmarshal(raw, &list)
		if len(list.Value) > 0 {
			alertName = list.Value[0].Name
		}
	}
	if alertName == "" {
		t.Fatal("the alert rule did not fire within 4 minutes")
	}
	if err := chromedp.Do(b.Ctx, chromedp.Navigate(base+"/portal/#/alerts"), chromedp.WaitVisible(`select[aria-label^="Change state"]`)); err != nil {
		t.Fatal(err)
	}
	shot(t, b, "09-alerts")
	if err := chromedp.Do(b.Ctx, JS(`(() => { const s = document.querySelector('select[aria-label^="Change state"]');
		s.value = "Acknowledged"; s.dispatchEvent(new Event("change")); return true; })()`)); err != nil {
		t.Fatal(err)
	}
	acked := false
	for deadline := time.Now().Add(30 * time.Second); !acked && time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		raw, err := c.ARM(ctx, http.MethodGet, alertsPath, nil)
		if err != nil {
			t.Fatal(err)
		}
		acked = strings.Contains(string(raw), `"alertState":"Acknowledged"`)
	}
	if !acked {
		t.Fatal("acknowledging in the portal did not change the alert's state")
	}
	shot(t, b, "10-alerts-acknowledged")

	// Access control: give Carol Reader on the resource group (not Bob:
	// Reader's */read would open every table to him).
	carol := createUser(t, ctx, c, "carol@custos.test", "correct horse battery staple 3")
	rg := ws[:strings.Index(ws, "/providers/")]
	if err := chromedp.Do(b.Ctx, chromedp.Navigate(base+"/portal/#/access"), chromedp.WaitVisible("#principal"),
		JS(fmt.Sprintf(`(() => { const s = document.getElementById("scope"); s.value = %q; s.dispatchEvent(new Event("change")); return true; })()`, rg)),
		chromedp.Sleep(2*time.Second), chromedp.WaitVisible("#principal"),
		chromedp.SendKeys("#principal", carol),
		JS(`(() => { const r = document.getElementById("role"); r.value = Array.from(r.options).find(o => o.text === "Reader").value; return true; })()`),
		chromedp.Click(chromedp.CSS(`form[aria-label="Add role assignment"] button[type="submit"]`)),
	); err != nil {
		t.Fatal(err)
	}
	added := false
	for deadline := time.Now().Add(30 * time.Second); !added && time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		raw, err := c.ARM(ctx, http.MethodGet, rg+"/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01", nil)
		if err != nil {
			t.Fatal(err)
		}
		added = strings.Contains(string(raw), carol)
	}
	if !added {
		t.Fatal("the role assignment added in the portal is not there")
	}
	shot(t, b, "11-access")

	// Bob, limited to Portal_CL, sees no other table.
	b2 := newBrowser(t, s)
	signInAs(t, b2, base, "bob@custos.test", "correct horse battery staple 2")
	runQuery(t, b2, "union withsource=SourceTable * | distinct SourceTable")
	got := gridText(t, b2)
	if !strings.Contains(got, "Portal_CL") || strings.Contains(got, "Secret_CL") {
		t.Fatalf("the limited user's tables: %q", got)
	}
	shot(t, b2, "12-limited-user")
	status = runQuery(t, b2, "Secret_CL | count")
	if strings.Contains(status, "rows") {
		t.Fatalf("the limited user read Secret_CL: %q", status)
	}
}
