package alert

import (
	"strings"
	"testing"
	"time"

	"custos/internal/catalog"
)

// TestProcessingRuleSuppressesDuringWindow: a RemoveAllActionGroups rule
// with a schedule keeps a firing alert from notifying inside its window
// (the alert still exists, marked suppressed), and not outside it; an
// AddActionGroups rule adds a group to alerts it selects.
func TestProcessingRuleSuppressesDuringWindow(t *testing.T) {
	h := newHook(t, nil)
	extra := newHook(t, nil)
	roots := tlsRoots(h.srv)
	roots.AddCert(extra.srv.Certificate())
	e := newEnv(t, envConfig{webhookRoots: roots})
	e.putGroup("g", `{"groupShortName":"g","webhookReceivers":[{"name":"w","serviceUri":"`+h.srv.URL+`","useCommonAlertSchema":true}]}`)
	e.putGroup("extra", `{"groupShortName":"x","webhookReceivers":[{"name":"w","serviceUri":"`+extra.srv.URL+`","useCommonAlertSchema":true}]}`)
	t0 := e.start()
	// Maintenance from t0+1m to t0+3m (UTC), for Sev2 alerts in the resource group.
	rgID := catalog.ResourceGroupResourceID(e.sub(), e.rg())
	mw := `{"location":"Global","properties":{"scopes":["` + rgID + `"],
		"conditions":[{"field":"Severity","operator":"Equals","values":["Sev2"]}],
		"schedule":{"effectiveFrom":"` + t0.Add(time.Minute).UTC().Format("2006-01-02T15:04:05") + `","effectiveUntil":"` +
		t0.Add(3*time.Minute).UTC().Format("2006-01-02T15:04:05") + `","timeZone":"UTC"},
		"actions":[{"actionType":"RemoveAllActionGroups"}],"enabled":true}}`
	ar := catalog.AlertResourceID(catalog.TypeActionRule, e.sub(), e.rg(), "maintenance")
	if code, _, raw := e.call("PUT", ar+"?api-version=2021-08-08", mw); code != 201 {
		t.Fatalf("PUT action rule: %d %s", code, raw)
	}
	add := `{"location":"Global","properties":{"scopes":["` + e.wsID() + `"],"conditions":[{"field":"AlertRuleName","operator":"Contains","values":["dim"]}],
		"actions":[{"actionType":"AddActionGroups","actionGroupIds":["` + e.groupID("extra") + `"]}]}}`
	if code, _, raw := e.call("PUT", catalog.AlertResourceID(catalog.TypeActionRule, e.sub(), e.rg(), "add")+"?api-version=2021-08-08", add); code != 201 {
		t.Fatalf("PUT add rule: %d %s", code, raw)
	}
	e.putRule("dim", e.ruleBody("Perf", "Count", "", "GreaterThan", 0,
		`[{"name":"Computer","operator":"Include","values":["*"]}]`, "", e.groupID("g")), true)
	// Window 1 ends at t0+1m, inside maintenance: suppressed.
	e.ingest(perfRow{t0.Add(30 * time.Second), "a", 1})
	e.tick(t0.Add(time.Minute))
	if n := len(h.received()) + len(extra.received()); n != 0 {
		t.Fatalf("suppressed alert notified %d times", n)
	}
	as := e.alertsBy()
	if len(as) != 1 {
		t.Fatalf("alerts: %v", as)
	}
	// Window 4 ends at t0+4m, after maintenance: a new series notifies both groups.
	e.ingest(perfRow{t0.Add(3*time.Minute + 30*time.Second), "b", 1})
	e.tick(t0.Add(4 * time.Minute))
	if len(h.received()) != 1 || len(extra.received()) != 1 {
		t.Fatalf("after the window: g %d, extra %d calls; want 1 and 1", len(h.received()), len(extra.received()))
	}
	var suppressed bool
	for _, a := range e.alertsBy()[`[{"name":"Computer","value":"a"}]`] {
		suppressed = suppressed || strings.Contains(string(a.Doc), `"actionSuppressed":true`)
	}
	if !suppressed {
		t.Fatal("the alert raised in the window is not marked suppressed")
	}
	code, m, raw := e.call("GET", ar+"?api-version=2021-08-08", "")
	if code != 200 || m["type"] != "Microsoft.AlertsManagement/actionRules" {
		t.Fatalf("GET action rule: %d %s", code, raw)
	}
	if code, _, raw := e.call("PUT", ar+"?api-version=2021-08-08", strings.Replace(mw, "RemoveAllActionGroups", "Nope", 1)); code != 400 {
		t.Fatalf("bad action type: %d %s", code, raw)
	}
}

func TestProcessingRuleRecurrence(t *testing.T) {
	ar := &actionRule{Props: actionRuleProperties{Scopes: []string{"/subscriptions/s"}, Actions: []processingItem{{ActionType: actionRemoveAllGroups}},
		Schedule: &ruleSchedule{TimeZone: "UTC", Recurrences: []recurrence{
			{RecurrenceType: "Weekly", DaysOfWeek: []string{"Saturday"}, StartTime: "22:00:00", EndTime: "04:00:00"},
			{RecurrenceType: "Monthly", DaysOfMonth: []int{15}},
		}}}}
	if err := ar.validate(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		at   string
		want bool
	}{
		{"2026-11-28T23:00:00Z", true},  // Saturday late
		{"2026-11-29T03:59:00Z", true},  // Sunday early, window started Saturday
		{"2026-11-29T04:00:00Z", false}, // window over
		{"2026-11-28T21:59:00Z", false}, // before the start
		{"2026-11-27T23:00:00Z", false}, // Friday
		{"2026-12-15T12:00:00Z", true},  // monthly, whole day
	}
	for _, c := range cases {
		at, _ := time.Parse(time.RFC3339, c.at)
		if got := ar.activeAt(at); got != c.want {
			t.Errorf("activeAt(%s) = %v; want %v", c.at, got, c.want)
		}
	}
}
