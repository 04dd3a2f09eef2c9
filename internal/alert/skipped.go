package alert

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"custos/internal/store"
)

// Evaluations that could not run at all — the rule's sealed state or query
// cannot be opened, or the new state cannot be sealed, because the
// workspace's customer-managed key is unavailable — are skipped, not
// failed: nothing of the window is lost, the window stays due and is
// evaluated (caught up) once the key is back. Their state cannot be written
// either (it is sealed under the same key), so the service keeps them in
// memory: the rule's evaluationStatus shows lastResult "Skipped" with the
// reason until an evaluation commits again, and
// custos_alert_skipped_evaluations_total counts them by reason.

// Skip reasons: the reason label of custos_alert_skipped_evaluations_total
// and evaluationStatus.skipReason.
const (
	// SkipKeyUnavailable: the workspace's customer-managed key is disabled,
	// deleted, unreachable or access to it was removed.
	SkipKeyUnavailable = "CustomerManagedKeyUnavailable"
)

// resultSkipped is evaluationStatus.lastResult of a skipped evaluation.
const resultSkipped = "Skipped"

// skipMessages are the user-facing explanations, by reason. They never
// carry an error's text (which may name key URIs or files).
var skipMessages = map[string]string{
	SkipKeyUnavailable: "Evaluation skipped: the workspace's customer-managed key is unavailable (disabled, deleted, " +
		"access removed, or its key store unreachable), so the rule's sealed query and state cannot be opened. " +
		"The skipped windows are evaluated when the key is restored.",
}

// skipReason classifies an evaluation error as a skip, or returns "" when
// the error is an ordinary failure.
func skipReason(err error) string {
	if errors.Is(err, store.ErrKeyUnavailable) {
		return SkipKeyUnavailable
	}
	return ""
}

// skipRecord is the latest run of skipped evaluations of one rule.
type skipRecord struct {
	Reason string
	First  time.Time // first skip of the run
	Last   time.Time // latest skip
	Count  int64     // skips since the last committed evaluation
}

// skipLog holds skipped evaluations. Safe for concurrent use.
type skipLog struct {
	mu       sync.Mutex             // guards rules and byReason
	rules    map[string]*skipRecord // lower-case rule ID → current run of skips
	byReason map[string]int64       // reason → skips since start
}

// record counts one skipped evaluation of ruleID at time at.
func (l *skipLog) record(ruleID, reason string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rules == nil {
		l.rules, l.byReason = map[string]*skipRecord{}, map[string]int64{}
	}
	k := strings.ToLower(ruleID)
	rec := l.rules[k]
	if rec == nil || rec.Reason != reason {
		rec = &skipRecord{Reason: reason, First: at}
		l.rules[k] = rec
	}
	rec.Last = at
	rec.Count++
	l.byReason[reason]++
}

// clear forgets ruleID's skips (an evaluation committed, or the rule went).
func (l *skipLog) clear(ruleID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.rules, strings.ToLower(ruleID))
}

// get returns ruleID's current run of skips.
func (l *skipLog) get(ruleID string) (skipRecord, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	rec, ok := l.rules[strings.ToLower(ruleID)]
	if !ok {
		return skipRecord{}, false
	}
	return *rec, true
}

// writeMetric writes custos_alert_skipped_evaluations_total by reason; a
// reason that never occurred is written as 0, so the series exists from
// the start.
func (l *skipLog) writeMetric(w io.Writer) error {
	l.mu.Lock()
	counts := map[string]int64{SkipKeyUnavailable: 0}
	for r, n := range l.byReason {
		counts[r] = n
	}
	l.mu.Unlock()
	reasons := make([]string, 0, len(counts))
	for r := range counts {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	var b strings.Builder
	b.WriteString("# HELP custos_alert_skipped_evaluations_total Rule evaluations skipped because they could not run (the window stays due), by reason.\n")
	b.WriteString("# TYPE custos_alert_skipped_evaluations_total counter\n")
	for _, r := range reasons {
		fmt.Fprintf(&b, "custos_alert_skipped_evaluations_total{reason=%q} %d\n", r, counts[r])
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// applySkip puts ruleID's skips, if any, into st.
func (s *Service) applySkip(ruleID string, st *evaluationStatus) bool {
	rec, ok := s.skips.get(ruleID)
	if !ok {
		return false
	}
	st.LastResult, st.LastError = resultSkipped, skipMessages[rec.Reason]
	st.SkipReason, st.SkippedEvaluations = rec.Reason, rec.Count
	st.LastSkippedTime = rec.Last.UTC().Format(time.RFC3339Nano)
	return true
}
