package alert

import (
	"context"
	"testing"
	"time"
)

// TestSchedulerResumesAfterClockStep: the clock is stepped back by more
// than one frequency plus clockStepTolerance. The scheduler does not wait
// for the clock to reach its old schedule (which would stop the rule for
// the length of the step): it resumes at once with the latest window that
// has ended, in a new clock epoch, and goes on every minute. The window evaluated after
// the step that ends where a window before it ended — and fires on the same
// rows — raises a new alert with its own ID; the alert raised before the
// step keeps its record (resolved) and is not replaced. A step within the
// tolerance only delays the next evaluation. When the clock comes forward
// again, the windows evaluated before the step are skipped, not repeated.
func TestSchedulerResumesAfterClockStep(t *testing.T) {
	h := newHook(t, nil)
	e := newEnv(t, envConfig{webhookRoots: tlsRoots(h.srv)})
	e.putGroup("g", `{"groupShortName":"g","webhookReceivers":[{"name":"w","serviceUri":"`+h.srv.URL+`","useCommonAlertSchema":true}]}`)
	t0 := e.start()
	e.putRule("step", e.ruleBody("Perf", "Count", "", "GreaterThan", 0, "", "", e.groupID("g")), true)
	ctx := context.Background()
	state := func() *ruleState {
		t.Helper()
		st, _, err := e.svc.loadState(ctx, e.ruleID("step"))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	e.ingest(perfRow{t0.Add(2*time.Minute + 30*time.Second), "h", 1}) // window ending t0+3m
	for i := 1; i <= 12; i++ {
		e.tick(t0.Add(time.Duration(i)*time.Minute + time.Second))
	}
	st := state()
	if !st.LastWindowEnd.Equal(t0.Add(12*time.Minute)) || st.ClockEpoch != 0 {
		t.Fatalf("before the steps: last window %v epoch %d; want %v, 0", st.LastWindowEnd, st.ClockEpoch, t0.Add(12*time.Minute))
	}
	before := e.alertsBy()["{}"]
	if len(before) != 1 || before[0].MonitorCondition != ConditionResolved {
		t.Fatalf("before the steps: %+v; want one alert, fired at t0+3m and resolved at t0+4m", before)
	}
	evals := e.svc.Stats().Evaluations

	// 60 s back (within the tolerance): the schedule waits.
	e.tick(t0.Add(12*time.Minute + 5*time.Second - time.Minute))
	if st := state(); st.ClockEpoch != 0 || !st.NextWindowEnd.Equal(t0.Add(13*time.Minute)) || e.svc.Stats().Evaluations != evals {
		t.Fatalf("a 60 s step: epoch %d next %v evaluations %d; want 0, %v, %d", st.ClockEpoch, st.NextWindowEnd, e.svc.Stats().Evaluations, t0.Add(13*time.Minute), evals)
	}

	// 10 minutes back: now t0+2m10s, the schedule's next window end t0+13m.
	// The latest window that has ended (t0+2m) is evaluated at once.
	e.tick(t0.Add(2*time.Minute + 10*time.Second))
	st = state()
	if !st.LastWindowEnd.Equal(t0.Add(2*time.Minute)) || st.ClockEpoch != 1 || e.svc.Stats().Evaluations != evals+1 {
		t.Fatalf("after a 10-minute step: last window %v epoch %d, %d evaluations; want %v (resumed at the current time), 1, 1",
			st.LastWindowEnd, st.ClockEpoch, e.svc.Stats().Evaluations-evals, t0.Add(2*time.Minute))
	}
	// The window ending at t0+3m again, on the same row: it fires again.
	e.tick(t0.Add(3*time.Minute + time.Second))
	if st = state(); !st.LastWindowEnd.Equal(t0.Add(3*time.Minute)) || st.ClockEpoch != 1 || e.svc.Stats().Evaluations != evals+2 {
		t.Fatalf("a minute later: last window %v epoch %d, %d evaluations; want %v, 1, 2", st.LastWindowEnd, st.ClockEpoch, e.svc.Stats().Evaluations-evals, t0.Add(3*time.Minute))
	}
	after := e.alertsBy()["{}"]
	if len(after) != 2 {
		t.Fatalf("after the step: %d alerts %+v; want 2 (the one before the step kept, a new one)", len(after), after)
	}
	var old, fresh int
	for _, a := range after {
		switch {
		case a.ID == before[0].ID && a.MonitorCondition == ConditionResolved:
			old++
		case a.ID != before[0].ID && a.MonitorCondition == ConditionFired:
			fresh++
		}
	}
	if old != 1 || fresh != 1 {
		t.Fatalf("after the step: %+v; want the old alert resolved and a new one fired with another ID", after)
	}
	if n := len(h.received()); n != 3 { // fired, resolved, fired again
		t.Fatalf("notifications: %d; want 3", n)
	}
	// Evaluation goes on every minute from there, each window once.
	for i := 4; i <= 6; i++ {
		e.tick(t0.Add(time.Duration(i)*time.Minute + time.Second))
	}
	if st := state(); !st.LastWindowEnd.Equal(t0.Add(6*time.Minute)) || st.ClockEpoch != 1 || e.svc.Stats().Evaluations != evals+5 {
		t.Fatalf("after the step: last window %v, %d evaluations; want %v, 5", st.LastWindowEnd, e.svc.Stats().Evaluations-evals, t0.Add(6*time.Minute))
	}

	// Forward again, to t0+20m: the windows up to t0+12m were evaluated
	// before the step and are not evaluated again (nor counted missed);
	// t0+13m..t0+20m are.
	e.tick(t0.Add(20*time.Minute + time.Second))
	if st := state(); !st.LastWindowEnd.Equal(t0.Add(20*time.Minute)) || st.Missed != 0 || e.svc.Stats().Evaluations != evals+13 {
		t.Fatalf("forward again: last window %v, missed %d, %d evaluations; want %v, 0, 13 (8 new windows)",
			st.LastWindowEnd, st.Missed, e.svc.Stats().Evaluations-evals, t0.Add(20*time.Minute))
	}
	if as := e.alertsBy()["{}"]; len(as) != 2 {
		t.Fatalf("forward again: %d alerts; want still 2", len(as))
	}
}
