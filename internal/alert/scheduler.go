package alert

import (
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"custos/internal/catalog"
)

// schedEntry is one enabled rule in the scheduler. next is the end of the
// next window to evaluate; the evaluation runs at next + spread.
type schedEntry struct {
	r       *rule
	spread  time.Duration
	next    time.Time // zero until loaded from the rule state
	retryAt time.Time // after a failed commit, not before this
}

func (e *schedEntry) runAt() time.Time {
	if e.retryAt.After(e.next.Add(e.spread)) {
		return e.retryAt
	}
	return e.next.Add(e.spread)
}

// clockStepTolerance is how far the clock may step back before the
// scheduler stops waiting for it: a next window end more than one frequency
// plus this ahead of the clock cannot come from the schedule (a window is
// evaluated only once it has ended, and the next one ends one frequency
// later), so the clock was stepped back. Smaller steps only delay the next
// evaluation by the step.
const clockStepTolerance = 2 * time.Minute

// steppedBack reports whether next (a rule's next window end) is further
// ahead of now than the schedule allows: the clock was stepped back.
func steppedBack(next, now time.Time, freq time.Duration) bool {
	return next.Sub(now) > freq+clockStepTolerance
}

// stats are the scheduler's and notifier's counters (Stats).
type stats struct {
	evaluations       atomic.Int64
	evaluationErrors  atomic.Int64
	missed            atomic.Int64
	deliveries        atomic.Int64
	deliveryFailures  atomic.Int64
	lagMu             sync.Mutex // guards lags and endLags
	lags              []time.Duration
	endLags           []time.Duration
	notificationsMade atomic.Int64
	activityEvents    atomic.Int64
	queryNanos        atomic.Int64
	commitNanos       atomic.Int64
}

// maxLagSamples bounds the lag samples kept for Stats.
const maxLagSamples = 1 << 16

func (st *stats) addLag(sched, end time.Duration) {
	st.lagMu.Lock()
	if len(st.lags) < maxLagSamples {
		st.lags = append(st.lags, sched)
		st.endLags = append(st.endLags, end)
	} else {
		i := int(st.evaluations.Load()) % maxLagSamples
		st.lags[i], st.endLags[i] = sched, end
	}
	st.lagMu.Unlock()
}

// Stats is a snapshot of the service's counters.
type Stats struct {
	Rules             int
	Evaluations       int64
	EvaluationErrors  int64
	MissedEvaluations int64
	Notifications     int64
	Deliveries        int64
	DeliveryFailures  int64
	// LagP50 and LagP99 are the delays between a window's scheduled
	// evaluation time (its end plus the rule's spread offset) and the start
	// of its evaluation.
	LagP50, LagP99, LagMax time.Duration
	// EndLagP99 and EndLagMax are measured from the window's end instead
	// (they include the spread offset).
	EndLagP99, EndLagMax time.Duration
	// QueryTime and CommitTime are the total time spent running rule
	// queries (with authorization) and waiting for commits.
	QueryTime, CommitTime time.Duration
}

// Stats returns the current counters.
func (s *Service) Stats() Stats {
	out := Stats{
		Rules: s.ruleCount(), Evaluations: s.stats.evaluations.Load(), EvaluationErrors: s.stats.evaluationErrors.Load(),
		MissedEvaluations: s.stats.missed.Load(), Notifications: s.stats.notificationsMade.Load(),
		Deliveries: s.stats.deliveries.Load(), DeliveryFailures: s.stats.deliveryFailures.Load(),
	}
	out.QueryTime = time.Duration(s.stats.queryNanos.Load())
	out.CommitTime = time.Duration(s.stats.commitNanos.Load())
	s.stats.lagMu.Lock()
	lags := append([]time.Duration(nil), s.stats.lags...)
	endLags := append([]time.Duration(nil), s.stats.endLags...)
	s.stats.lagMu.Unlock()
	if len(lags) > 0 {
		sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
		sort.Slice(endLags, func(i, j int) bool { return endLags[i] < endLags[j] })
		p99 := min(len(lags)-1, len(lags)*99/100)
		out.LagP50, out.LagP99, out.LagMax = lags[len(lags)*50/100], lags[p99], lags[len(lags)-1]
		out.EndLagP99, out.EndLagMax = endLags[p99], endLags[len(endLags)-1]
	}
	return out
}

func (s *Service) ruleCount() int {
	s.schedMu.Lock()
	defer s.schedMu.Unlock()
	return len(s.entries)
}

// spreadFor is the rule's fixed offset after each window end.
func (s *Service) spreadFor(r *rule) time.Duration {
	max := s.opts.MaxSpread
	if max <= 0 {
		return 0
	}
	if half := r.Frequency / 2; half < max {
		max = half
	}
	if max <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(strings.ToLower(r.ID)))
	return time.Duration(h.Sum64() % uint64(max))
}

// reloadAll replaces the scheduler's rules with the catalog's.
func (s *Service) reloadAll(ctx context.Context) error {
	all, err := s.cat.AllAlertResources(ctx, catalog.TypeScheduledQueryRule)
	if err != nil {
		return err
	}
	metric, err := s.cat.AllAlertResources(ctx, catalog.TypeMetricAlert)
	if err != nil {
		return err
	}
	all = append(all, metric...)
	fresh := map[string]*schedEntry{}
	for i := range all {
		r, err := s.loadRule(ctx, &all[i])
		if err != nil {
			s.log.LogAttrs(ctx, slog.LevelError, "stored alert rule is invalid; not scheduled",
				slog.String("rule_id", all[i].ID()), slog.Any("error", err))
			continue
		}
		if !r.Enabled {
			continue
		}
		fresh[strings.ToLower(r.ID)] = &schedEntry{r: r, spread: s.spreadFor(r)}
	}
	s.schedMu.Lock()
	for k, e := range fresh {
		if old, ok := s.entries[k]; ok && old.r.Frequency == e.r.Frequency {
			e.next, e.retryAt = old.next, old.retryAt
		}
	}
	s.entries = fresh
	s.schedMu.Unlock()
	wake(s.wakeSched)
	return nil
}

// ruleChanged updates the scheduler after a PUT (r non-nil) or DELETE.
func (s *Service) ruleChanged(id string, r *rule) {
	k := strings.ToLower(id)
	s.schedMu.Lock()
	if r == nil || !r.Enabled {
		delete(s.entries, k)
	} else {
		e := &schedEntry{r: r, spread: s.spreadFor(r)}
		if old, ok := s.entries[k]; ok && old.r.Frequency == r.Frequency {
			e.next, e.retryAt = old.next, old.retryAt
		}
		s.entries[k] = e
	}
	s.schedMu.Unlock()
	wake(s.wakeSched)
}

func (s *Service) scheduleLoop(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	reload := time.NewTicker(5 * time.Minute)
	defer reload.Stop()
	var running sync.WaitGroup
	defer running.Wait()
	for {
		next := s.dispatchDue(ctx, &running)
		wait := s.opts.PollInterval
		if !next.IsZero() {
			if d := next.Sub(s.now()); d < wait {
				wait = max(d, 10*time.Millisecond)
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-s.wakeSched:
		case <-reload.C:
			if err := s.reloadAll(ctx); err != nil && ctx.Err() == nil {
				s.log.LogAttrs(ctx, slog.LevelWarn, "reload alert rules", slog.Any("error", err))
			}
		}
	}
}

// dispatchDue starts the evaluations that are due and returns the earliest
// time another one becomes due.
func (s *Service) dispatchDue(ctx context.Context, running *sync.WaitGroup) time.Time {
	now := s.now()
	var due []*schedEntry
	var earliest time.Time
	s.schedMu.Lock()
	for k, e := range s.entries {
		if s.running[k] {
			continue
		}
		if e.next.IsZero() {
			due = append(due, e) // load its state
			continue
		}
		at := e.runAt()
		if !at.After(now) || steppedBack(e.next, now, e.r.Frequency) || steppedBack(e.retryAt, now, e.r.Frequency) {
			// Due, or the clock was stepped back: runEntry resumes the
			// rule at the current time (resumeAfterClockStep).
			due = append(due, e)
		} else if earliest.IsZero() || at.Before(earliest) {
			earliest = at
		}
	}
	for _, e := range due {
		s.running[strings.ToLower(e.r.ID)] = true
	}
	s.schedMu.Unlock()
	sort.Slice(due, func(i, j int) bool { return due[i].runAt().Before(due[j].runAt()) })
	for i, e := range due {
		if err := s.acquire(ctx); err != nil {
			s.schedMu.Lock()
			for _, e := range due[i:] {
				delete(s.running, strings.ToLower(e.r.ID))
			}
			s.schedMu.Unlock()
			return earliest
		}
		running.Add(1)
		go func(e *schedEntry) {
			defer running.Done()
			defer s.release()
			s.runEntry(ctx, e)
		}(e)
	}
	return earliest
}

// Tick runs, synchronously, every evaluation that is due at the service's
// clock, including catch-up windows. Tests and benchmarks drive the
// scheduler with it and an injected clock; Start's loop does the same on
// its own.
func (s *Service) Tick(ctx context.Context) error {
	var running sync.WaitGroup
	s.dispatchDue(ctx, &running)
	running.Wait()
	return ctx.Err()
}

// runEntry evaluates every due window of one rule in order. The entry may
// be replaced meanwhile (the rule was updated); its schedule is then written
// to the replacement if the frequency is the same.
func (s *Service) runEntry(ctx context.Context, e *schedEntry) {
	k := strings.ToLower(e.r.ID)
	var next, retryAt time.Time
	defer func() {
		s.schedMu.Lock()
		delete(s.running, k)
		for _, cur := range []*schedEntry{e, s.entries[k]} {
			if cur != nil && cur.r.Frequency == e.r.Frequency && !next.IsZero() {
				cur.next, cur.retryAt = next, retryAt
			}
		}
		s.schedMu.Unlock()
		wake(s.wakeSched)
	}()
	r := e.r
	st, raw, err := s.loadState(ctx, r.ID)
	if err != nil {
		if reason := skipReason(err); reason != "" {
			s.skips.record(r.ID, reason, s.now())
		}
		s.log.LogAttrs(ctx, slog.LevelError, "load alert rule state", slog.String("rule_id", r.ID), slog.Any("error", err))
		return
	}
	now := s.now()
	if st.NextWindowEnd.IsZero() || st.Frequency != FormatISODuration(r.Frequency) {
		// A new rule, or a new frequency: start at the first grid point
		// after the last evaluated window, or after the rule's creation
		// (so that a restart before its first evaluation skips nothing).
		from := now
		switch {
		case !st.LastWindowEnd.IsZero():
			from = st.LastWindowEnd
		case !r.Created.IsZero() && r.Created.Before(now):
			from = r.Created
		}
		st.NextWindowEnd = alignUp(from, r.Frequency)
		if !st.LastWindowEnd.IsZero() && !st.NextWindowEnd.After(st.LastWindowEnd) {
			st.NextWindowEnd = st.NextWindowEnd.Add(r.Frequency)
		}
		st.Frequency = FormatISODuration(r.Frequency)
	}
	switch {
	case steppedBack(st.NextWindowEnd, now, r.Frequency):
		s.resumeAfterClockStep(ctx, r, st, now)
	case !st.NextWindowEnd.After(st.MaxWindowEnd) && now.Sub(st.NextWindowEnd) > r.Frequency+e.spread+clockStepTolerance:
		// The clock came forward again after a backward step, past windows
		// evaluated before that step: they are not evaluated again (their
		// rows were; the times re-lived after the step end before them).
		s.log.LogAttrs(ctx, slog.LevelWarn, "clock stepped forward after an earlier backward step; windows evaluated before that step are not evaluated again",
			slog.String("rule_id", r.ID), slog.Time("from", st.NextWindowEnd), slog.Time("to", st.MaxWindowEnd.Add(r.Frequency)))
		st.NextWindowEnd = st.MaxWindowEnd.Add(r.Frequency)
	}
	for i := 0; ; i++ {
		if ctx.Err() != nil {
			return
		}
		scheduled := st.NextWindowEnd.Add(e.spread)
		now = s.now()
		if scheduled.After(now) {
			break
		}
		// Windows further back than MaxCatchUp are skipped and counted.
		if behind := int64(now.Sub(st.NextWindowEnd) / r.Frequency); behind >= int64(s.opts.MaxCatchUp) {
			skip := behind - int64(s.opts.MaxCatchUp) + 1
			st.NextWindowEnd = st.NextWindowEnd.Add(time.Duration(skip) * r.Frequency)
			st.Missed += skip
			s.stats.missed.Add(skip)
			s.log.LogAttrs(ctx, slog.LevelWarn, "alert rule evaluations missed after downtime",
				slog.String("rule_id", r.ID), slog.Int64("missed", skip))
			scheduled = st.NextWindowEnd.Add(e.spread)
		}
		s.stats.addLag(now.Sub(scheduled), now.Sub(st.NextWindowEnd))
		nextSt, nextRaw, err := s.evaluateAndCommit(ctx, r, st, raw)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if reason := skipReason(err); reason != "" {
				s.skips.record(r.ID, reason, s.now())
			}
			s.log.LogAttrs(ctx, slog.LevelError, "commit alert rule evaluation", slog.String("rule_id", r.ID), slog.Any("error", err))
			next, retryAt = st.NextWindowEnd, s.now().Add(5*time.Second)
			return
		}
		s.skips.clear(r.ID)
		st, raw = nextSt, nextRaw
	}
	next = st.NextWindowEnd
}

// resumeAfterClockStep moves a rule's schedule, whose next window end lies
// further ahead of now than the schedule allows because the clock was
// stepped back, to the latest window that has ended at now (evaluated at
// once, or after the rule's spread offset), and starts a new clock epoch for
// the rule's alert IDs. The new schedule is stored with that evaluation's
// commit; until then every look at the rule finds the same step and the
// same window again (the latest that has ended), so nothing is skipped. Waiting for the clock to reach the
// old schedule instead would stop the rule's evaluations for as long as the
// step (two hours of no alerting after a two-hour step). The windows after
// the step cover times evaluated before it (on the clock before the step):
// after the common case, a clock that ran ahead being corrected, the rows
// of those times arrive only now; a stateful rule's series keep their fired
// state, so an alert still firing is not raised again. No window ID repeats:
// the epoch is part of alert and notification IDs, so a firing after the
// step is never taken for one before it.
func (s *Service) resumeAfterClockStep(ctx context.Context, r *rule, st *ruleState, now time.Time) {
	from := st.NextWindowEnd
	st.NextWindowEnd = now.Truncate(r.Frequency).UTC() // on alignUp's grid
	st.ClockEpoch++
	s.log.LogAttrs(ctx, slog.LevelWarn, "clock stepped back; alert rule evaluation resumes at the current time",
		slog.String("rule_id", r.ID), slog.Time("next_window_end_was", from), slog.Time("next_window_end", st.NextWindowEnd),
		slog.Duration("step_at_least", from.Sub(now)-r.Frequency), slog.Int("clock_epoch", st.ClockEpoch))
}

// alignUp returns the first multiple of freq (since the Unix epoch) at or
// after t: the frequency grid that window ends fall on.
func alignUp(t time.Time, freq time.Duration) time.Time {
	tr := t.Truncate(freq)
	if tr.Before(t) {
		tr = tr.Add(freq)
	}
	return tr.UTC()
}

// loadState reads a rule's state; raw is the stored text for the commit's
// compare-and-swap (nil when none is stored).
func (s *Service) loadState(ctx context.Context, ruleID string) (*ruleState, json.RawMessage, error) {
	raw, err := s.cat.RuleState(ctx, ruleID)
	if err != nil {
		return nil, nil, err
	}
	st := &ruleState{}
	if raw != nil {
		plain, err := s.openState(ctx, ruleID, raw)
		if err != nil {
			return nil, nil, err
		}
		if err := json.Unmarshal(plain, st); err != nil {
			return nil, nil, errors.Join(errors.New("decode rule state"), err)
		}
	}
	if st.Series == nil {
		st.Series = map[string]*seriesState{}
	}
	return st, raw, nil
}
