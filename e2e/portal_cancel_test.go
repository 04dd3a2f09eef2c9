package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestPortalCancelQuery runs a long query in the Logs blade, cancels it,
// and checks that the server stopped it — the query API's request ended
// as canceled within seconds, not when the query would have finished —
// and that the page says so and can run the next query.
func TestPortalCancelQuery(t *testing.T) {
	s, c := newServer(t)
	ctx := testCtx(t, 6*time.Minute)
	base := "https://" + s.Addr()
	sub := "/subscriptions/" + c.Admin.SubscriptionID
	ada := createUser(t, ctx, c, "ada@custos.test", "correct horse battery staple 1")
	assign(t, ctx, c, sub, roleOwner, ada)
	assign(t, ctx, c, sub, roleLogAnalyticsReader, ada)
	time.Sleep(RoleCacheTTL)
	b := newBrowser(t, s)
	signInAs(t, b, base, "ada@custos.test", "correct horse battery staple 1")

	slow := "range i from 1 to 10000000 step 1 | extend h = hash_sha256(hash_sha256(hash_sha256(hash_sha256(tostring(i))))) | summarize dcount(h)"
	if err := do(b, chromedp.Navigate(base+"/portal/#/logs"), chromedp.WaitVisible("#kql"), setField("#kql", slow),
		chromedp.Click("#run"), chromedp.WaitEnabled("#cancel"), chromedp.Sleep(2*time.Second)); err != nil {
		failShot(t, b, err)
	}
	clicked := time.Now()
	if err := do(b, chromedp.Click("#cancel"), chromedp.WaitEnabled("#run")); err != nil {
		failShot(t, b, err)
	}
	status, err := chromedp.Run(b.Ctx, chromedp.Text("#status"))
	if err != nil || !strings.Contains(status, "cancelled") {
		t.Fatalf("status after cancel: %q, %v", status, err)
	}
	shot(t, b, "40-query-cancelled")

	// The server's own request log: the query API call (behind the portal
	// proxy) ends as canceled soon after the click.
	var ended bool
	var lastLine string
	for deadline := time.Now().Add(20 * time.Second); !ended && time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		raw, err := s.Log()
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(raw))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var rec struct {
				Msg    string `json:"msg"`
				Path   string `json:"path"`
				Route  string `json:"route"`
				Status int    `json:"status"`
			}
			if json.Unmarshal(sc.Bytes(), &rec) != nil || rec.Msg != "request" || !strings.HasPrefix(rec.Path, "/v1/workspaces/") || !strings.HasSuffix(rec.Path, "/query") {
				continue
			}
			lastLine = sc.Text()
			if rec.Status == 499 {
				ended = true
			}
		}
	}
	if !ended {
		t.Fatalf("the server did not record the query as canceled within 20 s of the click (at %s); last query request: %s", clicked.Format(time.RFC3339), lastLine)
	}
	if status := runQuery(t, b, "print x = 1"); !strings.Contains(status, "1 rows") {
		t.Fatalf("the next query: %q", status)
	}
}
