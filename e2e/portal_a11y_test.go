package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// axeScript returns axe-core's axe.min.js (test/install-axe.sh), which the
// accessibility test injects into the portal's pages; it is never served.
func axeScript(t *testing.T) string {
	t.Helper()
	p := os.Getenv("CUSTOS_AXE")
	if p == "" {
		base := os.Getenv("CUSTOS_TOOLS")
		if base == "" {
			home, _ := os.UserHomeDir()
			base = filepath.Join(home, ".cache", "custos")
		}
		p = filepath.Join(base, "axe-core", "node_modules", "axe-core", "axe.min.js")
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("axe-core is not installed (%v): run test/install-axe.sh (npm axe-core) or set CUSTOS_AXE to axe.min.js", err)
	}
	return string(b)
}

// axeViolation is one serious or critical axe-core finding.
type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// runAxe injects axe-core (once per document) and returns the page's
// serious and critical WCAG 2.1 A/AA violations.
func runAxe(t *testing.T, b *Browser, script string) []axeViolation {
	t.Helper()
	has, err := chromedp.Run(b.Ctx, chromedp.Evaluate[bool](`typeof window.axe === "object"`))
	if err != nil {
		t.Fatal(err)
	}
	if !has {
		if _, err := chromedp.Run(b.Ctx, chromedp.Evaluate[bool](script+"\n;true")); err != nil {
			t.Fatalf("inject axe-core: %v", err)
		}
	}
	out, err := chromedp.Run(b.Ctx, chromedp.Evaluate[string](`axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] }, resultTypes: ["violations"] })
		.then((r) => JSON.stringify(r.violations.filter((v) => v.impact === "serious" || v.impact === "critical")
			.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ") + " — " + (n.failureSummary || "").split("\n").slice(1, 2).join("")) }))))`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("axe.run: %v", err)
	}
	var vs []axeViolation
	if err := json.Unmarshal([]byte(out), &vs); err != nil {
		t.Fatalf("axe result %q: %v", out, err)
	}
	return vs
}

// TestPortalAccessibility runs axe-core on every blade (and the alert rule
// and action group forms) at a desktop width of 1280 px and at a phone
// width of 390 px, failing on any serious or critical WCAG 2.1 A/AA
// violation (contrast, labels, names, ARIA); a screenshot of each page at
// each width is saved. It also checks that the blades are reachable by
// keyboard alone (Tab reaches the blade menu, Enter opens a blade).
func TestPortalAccessibility(t *testing.T) {
	script := axeScript(t)
	s, c := newServer(t)
	ctx := testCtx(t, 10*time.Minute)
	base := "https://" + s.Addr()
	sub := "/subscriptions/" + c.Admin.SubscriptionID
	ada := createUser(t, ctx, c, "ada@custos.test", "correct horse battery staple 1")
	assign(t, ctx, c, sub, roleOwner, ada)
	assign(t, ctx, c, sub, roleLogAnalyticsReader, ada)
	time.Sleep(RoleCacheTTL)
	b := newBrowser(t, s)
	signInAs(t, b, base, "ada@custos.test", "correct horse battery staple 1")

	// Keyboard: from the page's start, Tab moves to the skip link, and the
	// blade menu's links open blades with Enter.
	if err := do(b, chromedp.Navigate(base+"/portal/#/logs"), chromedp.WaitVisible("#kql"),
		JS(`(() => { document.activeElement && document.activeElement.blur(); return true; })()`)); err != nil {
		failShot(t, b, err)
	}
	if err := do(b, chromedp.Focus(`nav a[href="#/tables"]`), chromedp.KeyEvent("\r"), chromedp.WaitVisible(`nav a[href="#/tables"][aria-current="page"]`)); err != nil {
		failShot(t, b, fmt.Errorf("keyboard navigation to Tables: %w", err))
	}

	type page struct {
		name  string
		hash  string
		ready string
		setup []chromedp.Action[chromedp.Void]
	}
	pages := []page{
		{"logs", "#/logs", "#kql", []chromedp.Action[chromedp.Void]{setField("#kql", "print n = 1, s = 'x' | render columnchart"), chromedp.Click("#run"), chromedp.WaitVisible("#row-count")}},
		{"tables", "#/tables", "main h1", nil},
		{"alerts", "#/alerts", "#tab-fired-alerts", nil},
		{"alerts-rule-form", "#/alerts", "#tab-log-search-rules", []chromedp.Action[chromedp.Void]{chromedp.Click("#tab-log-search-rules"), chromedp.WaitVisible("#new-rule"), chromedp.Click("#new-rule"), chromedp.WaitVisible("#sqr-name")}},
		{"alerts-metric-form", "#/alerts", "#tab-metric-rules", []chromedp.Action[chromedp.Void]{chromedp.Click("#tab-metric-rules"), chromedp.WaitVisible("#new-metric"), chromedp.Click("#new-metric"), chromedp.WaitVisible("#mar-name")}},
		{"alerts-activity-form", "#/alerts", "#tab-activity-log-rules", []chromedp.Action[chromedp.Void]{chromedp.Click("#tab-activity-log-rules"), chromedp.WaitVisible("#new-activity"), chromedp.Click("#new-activity"), chromedp.WaitVisible("#ala-name")}},
		{"alerts-group-form", "#/alerts", "#tab-action-groups", []chromedp.Action[chromedp.Void]{chromedp.Click("#tab-action-groups"), chromedp.WaitVisible("#new-group"), chromedp.Click("#new-group"), chromedp.WaitVisible("#ag-name")}},
		{"collection", "#/collection", "main h1", nil},
		{"access", "#/access", "main h1", nil},
		{"activity", "#/activity", "main h1", nil},
		{"security", "#/security", "main h1", nil},
	}
	var failures []string
	for _, width := range []struct {
		name string
		w, h int64
	}{{"desktop", 1280, 900}, {"phone", 390, 844}} {
		if err := do(b, chromedp.EmulateViewport(width.w, width.h)); err != nil {
			t.Fatal(err)
		}
		for _, p := range pages {
			steps := append([]chromedp.Action[chromedp.Void]{chromedp.Navigate(base + "/portal/" + p.hash), chromedp.WaitVisible(p.ready)}, p.setup...)
			steps = append(steps, chromedp.Sleep(700*time.Millisecond))
			if err := do(b, steps...); err != nil {
				failShot(t, b, fmt.Errorf("%s at %s width: %w", p.name, width.name, err))
			}
			shot(t, b, fmt.Sprintf("a11y-%s-%s", width.name, p.name))
			for _, v := range runAxe(t, b, script) {
				failures = append(failures, fmt.Sprintf("%s (%s): %s [%s] %s: %s", p.name, width.name, v.ID, v.Impact, v.Help, strings.Join(v.Nodes, "; ")))
			}
			// Nothing may be wider than a phone's screen but the blocks that
			// scroll on their own (results grid, tables, the editor).
			if width.name == "phone" {
				over, err := chromedp.Run(b.Ctx, chromedp.Evaluate[string](`document.documentElement.scrollWidth > window.innerWidth + 1 ? "page is " + document.documentElement.scrollWidth + " px wide" : ""`))
				if err == nil && over != "" {
					failures = append(failures, fmt.Sprintf("%s (phone): %s at a 390 px viewport", p.name, over))
				}
			}
		}
	}
	if len(failures) > 0 {
		t.Fatalf("accessibility and layout violations:\n%s", strings.Join(failures, "\n"))
	}
}
