package alert

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"custos/internal/catalog"
)

// firing returns the alert records of the environment by series.
func (e *env) alertsBy() map[string][]catalog.AlertRecord {
	e.t.Helper()
	as, err := e.cat.Alerts(context.Background(), alertFilter(e))
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string][]catalog.AlertRecord{}
	for _, a := range as {
		k := e.seriesOf(a)
		out[k] = append(out[k], a)
	}
	return out
}

// seriesOf returns the series key (JSON of the dimension values) of a log
// search alert, from its sealed payload; the catalog holds only a hash.
func (e *env) seriesOf(a catalog.AlertRecord) string {
	e.t.Helper()
	var d alertDoc
	if err := json.Unmarshal(a.Doc, &d); err != nil {
		e.t.Fatal(err)
	}
	p, err := e.svc.docPayload(context.Background(), &d, a.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	var dims []dimValue
	if all := p.Data.AlertContext.Condition.AllOf; len(all) > 0 {
		dims = all[0].Dimensions
	}
	k := seriesKey(dims)
	if a.SeriesKey != seriesRef(k) {
		e.t.Fatalf("alert %s: series key %q is not the hash of %s", a.ID, a.SeriesKey, k)
	}
	return k
}

func (e *env) start() time.Time {
	t0 := e.clock.Now().Truncate(time.Minute)
	e.clock.Set(t0.Add(10 * time.Second))
	return t0
}

// TestFailingPeriods: with 2 of 3 periods required, one breaching window
// does not fire, a second within the last three does, and the alert
// resolves once fewer than two of the last three breach.
func TestFailingPeriods(t *testing.T) {
	e := newEnv(t, envConfig{})
	t0 := e.start()
	body := strings.Replace(e.ruleBody("Perf", "Maximum", "CounterValue", "GreaterThanOrEqual", 50, "", ""),
		`"numberOfEvaluationPeriods":1,"minFailingPeriodsToAlert":1`, `"numberOfEvaluationPeriods":3,"minFailingPeriodsToAlert":2`, 1)
	e.putRule("fp", body, true)
	vals := []float64{60, 10, 70, 60, 10, 10}
	want := []string{"", "", ConditionFired, ConditionFired, ConditionFired, ConditionResolved}
	for i, v := range vals {
		w := t0.Add(time.Duration(i) * time.Minute)
		e.ingest(perfRow{w.Add(30 * time.Second), "h", v})
		e.tick(w.Add(time.Minute))
		as := e.alertsBy()["{}"]
		got := ""
		if len(as) > 0 {
			got = as[0].MonitorCondition
		}
		if got != want[i] || len(as) > 1 {
			t.Fatalf("window %d (value %v): condition %q (%d alerts); want %q", i, v, got, len(as), want[i])
		}
	}
}

// TestStatelessRuleWithMute: autoMitigate false fires a new alert at every
// breaching evaluation and never resolves; muteActionsDuration keeps the
// repeated alerts from notifying.
func TestStatelessRuleWithMute(t *testing.T) {
	h := newHook(t, nil)
	e := newEnv(t, envConfig{webhookRoots: tlsRoots(h.srv)})
	e.putGroup("g", `{"groupShortName":"g","webhookReceivers":[{"name":"w","serviceUri":"`+h.srv.URL+`","useCommonAlertSchema":true}]}`)
	t0 := e.start()
	e.putRule("noisy", e.ruleBody("Perf", "Count", "", "GreaterThan", 0, "", `"autoMitigate":false,"muteActionsDuration":"PT3M",`, e.groupID("g")), true)
	for i := 0; i < 5; i++ {
		w := t0.Add(time.Duration(i) * time.Minute)
		e.ingest(perfRow{w.Add(30 * time.Second), "h", 1})
		e.tick(w.Add(time.Minute))
	}
	as := e.alertsBy()["{}"]
	if len(as) != 5 {
		t.Fatalf("stateless rule raised %d alerts; want 5", len(as))
	}
	for _, a := range as {
		if a.MonitorCondition != ConditionFired {
			t.Fatalf("stateless alert resolved: %+v", a)
		}
	}
	// Windows 1 and 4 notify (4 = 1 + the 3-minute mute); 2 and 3 are muted.
	if n := len(h.received()); n != 2 {
		t.Fatalf("notifications sent %d; want 2", n)
	}
}

// TestCountLessThanWithoutRows: "no heartbeat" rules fire on zero rows.
func TestCountLessThanWithoutRows(t *testing.T) {
	e := newEnv(t, envConfig{})
	t0 := e.start()
	e.putRule("silent", e.ruleBody("Perf", "Count", "", "LessThan", 1, "", ""), true)
	e.ingest(perfRow{t0.Add(30 * time.Second), "h", 1})
	e.tick(t0.Add(time.Minute))
	if as := e.alertsBy()["{}"]; len(as) != 0 {
		t.Fatalf("fired with a row: %+v", as)
	}
	e.tick(t0.Add(2 * time.Minute))
	if as := e.alertsBy()["{}"]; len(as) != 1 || as[0].MonitorCondition != ConditionFired {
		t.Fatalf("no rows: %+v", as)
	}
}

// TestDimensionFilters: Include with values keeps only those; Exclude drops
// them; each remaining combination is its own series.
func TestDimensionFilters(t *testing.T) {
	e := newEnv(t, envConfig{})
	t0 := e.start()
	e.putRule("inc", e.ruleBody("Perf", "Total", "CounterValue", "GreaterThan", 5, `[{"name":"Computer","operator":"Include","values":["a","b"]}]`, ""), true)
	e.putRule("exc", e.ruleBody("Perf", "Total", "CounterValue", "GreaterThan", 5, `[{"name":"Computer","operator":"Exclude","values":["a"]}]`, ""), true)
	e.ingest(perfRow{t0.Add(10 * time.Second), "a", 4}, perfRow{t0.Add(20 * time.Second), "a", 4},
		perfRow{t0.Add(30 * time.Second), "b", 6}, perfRow{t0.Add(40 * time.Second), "c", 9})
	e.tick(t0.Add(time.Minute))
	got := map[string][]string{}
	as, _ := e.cat.Alerts(context.Background(), alertFilter(e))
	for _, a := range as {
		name := a.RuleID[strings.LastIndexByte(a.RuleID, '/')+1:]
		got[name] = append(got[name], e.seriesOf(a))
	}
	if strings.Join(sorted(got["inc"]), " ") != `[{"name":"Computer","value":"a"}] [{"name":"Computer","value":"b"}]` {
		t.Fatalf("Include: %v", got["inc"])
	}
	if strings.Join(sorted(got["exc"]), " ") != `[{"name":"Computer","value":"b"}] [{"name":"Computer","value":"c"}]` {
		t.Fatalf("Exclude: %v", got["exc"])
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// TestSchedulerGridAndCatchUp: windows end on the frequency grid; after
// downtime the missed windows are evaluated in order up to MaxCatchUp and
// the rest counted as missed.
func TestSchedulerGridAndCatchUp(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.opts.MaxCatchUp = 3
	e.openService()
	t0 := e.start()
	e.putRule("grid", strings.Replace(e.ruleBody("Perf", "Count", "", "GreaterThan", 100, "", ""), `"evaluationFrequency":"PT1M","windowSize":"PT1M"`,
		`"evaluationFrequency":"PT5M","windowSize":"PT5M"`, 1), true)
	first := alignUp(t0.Add(10*time.Second), 5*time.Minute)
	e.tick(first.Add(-time.Second))
	st, _, _ := e.svc.loadState(context.Background(), e.ruleID("grid"))
	if !st.LastWindowEnd.IsZero() {
		t.Fatalf("evaluated before the first grid point: %+v", st)
	}
	e.tick(first.Add(2 * time.Second))
	st, _, _ = e.svc.loadState(context.Background(), e.ruleID("grid"))
	if !st.LastWindowEnd.Equal(first) || !st.NextWindowEnd.Equal(first.Add(5*time.Minute)) {
		t.Fatalf("after first window: last %v next %v; want %v", st.LastWindowEnd, st.NextWindowEnd, first)
	}
	// 40 minutes of downtime: 8 windows due, 3 evaluated, 5 missed.
	e.tick(first.Add(40*time.Minute + time.Second))
	st, _, _ = e.svc.loadState(context.Background(), e.ruleID("grid"))
	if !st.LastWindowEnd.Equal(first.Add(40*time.Minute)) || st.Missed != 5 {
		t.Fatalf("after downtime: last %v missed %d; want %v and 5", st.LastWindowEnd, st.Missed, first.Add(40*time.Minute))
	}
	if got := e.svc.Stats(); got.Evaluations != 4 || got.MissedEvaluations != 5 {
		t.Fatalf("stats: %+v", got)
	}
}

// TestSpreadIsStable: a rule's offset is fixed, below MaxSpread and half
// its frequency, and differs between rules.
func TestSpreadIsStable(t *testing.T) {
	s := &Service{opts: Options{MaxSpread: 20 * time.Second}}
	seen := map[time.Duration]bool{}
	for i := 0; i < 50; i++ {
		r := &rule{ID: "/subscriptions/s/resourceGroups/g/providers/Microsoft.Insights/scheduledQueryRules/r" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Frequency: time.Minute}
		d := s.spreadFor(r)
		if d < 0 || d >= 20*time.Second || d != s.spreadFor(r) {
			t.Fatalf("spread %v", d)
		}
		seen[d] = true
	}
	if len(seen) < 40 {
		t.Fatalf("only %d distinct offsets for 50 rules", len(seen))
	}
	if d := s.spreadFor(&rule{ID: "x", Frequency: 10 * time.Second}); d >= 5*time.Second {
		t.Fatalf("spread %v not below half the frequency", d)
	}
}

func TestWriteMetrics(t *testing.T) {
	e := newEnv(t, envConfig{})
	t0 := e.start()
	e.putRule("m", e.ruleBody("Perf", "Count", "", "GreaterThan", 0, "", ""), true)
	e.tick(t0.Add(time.Minute + 3*time.Second))
	var b strings.Builder
	if err := e.svc.WriteMetrics(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"custos_alert_rules 1\n", "custos_alert_evaluations_total 1\n", `custos_alert_evaluation_lag_seconds{quantile="0.99"} 3` + "\n"} {
		if !strings.Contains(b.String(), want) {
			t.Fatalf("metrics lack %q:\n%s", want, b.String())
		}
	}
}

// TestNarrowedQuery: the engine runs a rule's query followed by its count
// (summarize) or a project of the dimensions and measure (narrowQuery);
// results are those of the rule's own query, and where the narrowed query
// cannot run, the rule's own query's result or error is what the user sees.
func TestNarrowedQuery(t *testing.T) {
	for _, tc := range []struct {
		c       criterion
		want    string
		counted bool
	}{
		{criterion{Query: "Perf", TimeAggregation: AggCount}, "Perf\n| summarize AlertRowCount__ = count()", true},
		{criterion{Query: "Perf // trailing comment", TimeAggregation: AggTotal, MetricMeasureColumn: "CounterValue",
			Dimensions: []dimension{{Name: "Computer"}, {Name: "odd name"}, {Name: "Computer"}}},
			"Perf // trailing comment\n| project Computer, ['odd name'], CounterValue", false},
		{criterion{Query: "Perf", TimeAggregation: AggCount, MetricMeasureColumn: "Ignored", Dimensions: []dimension{{Name: "Computer"}, {Name: "odd name"}}},
			"Perf\n| summarize AlertRowCount__ = count() by Computer, ['odd name']", true},
	} {
		if got, counted := narrowQuery(&tc.c); got != tc.want || counted != tc.counted {
			t.Errorf("narrowQuery(%+v) = %q, %v, want %q, %v", tc.c, got, counted, tc.want, tc.counted)
		}
	}

	e := newEnv(t, envConfig{})
	t0 := e.start()
	e.putRule("avg", e.ruleBody("Perf | where CounterValue > 1 // only busy ones", "Average", "CounterValue", "GreaterThan", 5, `[{"name":"Computer","operator":"Include","values":["*"]}]`, ""), true)
	e.putRule("nodim", e.ruleBody("Perf", "Count", "", "GreaterThan", 0, `[{"name":"Nope","operator":"Include","values":["*"]}]`, ""), true)
	// Counts are summarized by the engine: per dimension, and in total.
	e.putRule("count", e.ruleBody("Perf | where CounterValue > 1", "Count", "", "GreaterThan", 1, `[{"name":"Computer","operator":"Include","values":["*"]}]`, ""), true)
	e.putRule("total", e.ruleBody("Perf", "Count", "", "Equals", 4, "", ""), true)
	// A dynamic dimension: grouped by its JSON text like any other.
	e.putRule("dyn", e.ruleBody("Perf | extend Tags = pack('c', Computer)", "Count", "", "GreaterThan", 1, `[{"name":"Tags","operator":"Include","values":["*"]}]`, ""), true)
	e.ingest(perfRow{t0.Add(10 * time.Second), "a", 4}, perfRow{t0.Add(20 * time.Second), "a", 10},
		perfRow{t0.Add(30 * time.Second), "b", 2}, perfRow{t0.Add(40 * time.Second), "c", 1})
	e.tick(t0.Add(time.Minute))
	as, _ := e.cat.Alerts(context.Background(), alertFilter(e))
	fired := map[string][]string{}
	for _, a := range as {
		id := strings.ToLower(a.RuleID) // the catalog stores rule IDs lower-cased
		fired[id] = append(fired[id], e.seriesOf(a))
	}
	// a: avg(4, 10) = 7 > 5 fires; b: avg(2) does not; c is filtered out.
	if f := fired[strings.ToLower(e.ruleID("avg"))]; len(f) != 1 || f[0] != `[{"name":"Computer","value":"a"}]` {
		t.Fatalf("avg fired %v, want only Computer a", f)
	}
	// a has 2 rows over 1, b 1, c none.
	if f := fired[strings.ToLower(e.ruleID("count"))]; len(f) != 1 || f[0] != `[{"name":"Computer","value":"a"}]` {
		t.Fatalf("count fired %v, want only Computer a", f)
	}
	if f := fired[strings.ToLower(e.ruleID("total"))]; len(f) != 1 {
		t.Fatalf("total count fired %v, want one alert for 4 rows", f)
	}
	if f := fired[strings.ToLower(e.ruleID("dyn"))]; len(f) != 1 || f[0] != `[{"name":"Tags","value":"{\"c\":\"a\"}"}]` {
		t.Fatalf("dynamic dimension fired %v, want only Tags {c: a}", f)
	}
	code, m, raw := e.call("GET", e.ruleID("dyn")+"?api-version=2023-12-01", "")
	if st := m["properties"].(map[string]any)["evaluationStatus"].(map[string]any); code != 200 || st["lastResult"] != "Succeeded" {
		t.Fatalf("rule with a dynamic dimension: %d %s", code, raw)
	}
	code, m, raw = e.call("GET", e.ruleID("nodim")+"?api-version=2023-12-01", "")
	st := m["properties"].(map[string]any)["evaluationStatus"].(map[string]any)
	if code != 200 || st["lastResult"] != "Failed" || !strings.Contains(st["lastError"].(string), "The dimension column 'Nope' is not in the query result.") {
		t.Fatalf("rule with an unknown dimension: %d %s", code, raw)
	}
}
