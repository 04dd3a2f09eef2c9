package alert

import (
	"fmt"
	"io"
)

// WriteMetrics writes the service's self-metrics in the Prometheus text
// exposition format (0.0.4): evaluations, failures, missed windows,
// notifications and deliveries as counters, the enabled rules as a gauge,
// and the evaluation lag (start of an evaluation after its scheduled time)
// as a summary over the recent samples.
func (s *Service) WriteMetrics(w io.Writer) error {
	st := s.Stats()
	counter := func(name, help string, v int64) string {
		return fmt.Sprintf("# HELP %s %s\n# TYPE %s counter\n%s %d\n", name, help, name, name, v)
	}
	out := "# HELP custos_alert_rules Enabled log search alert rules in the scheduler.\n# TYPE custos_alert_rules gauge\n" +
		fmt.Sprintf("custos_alert_rules %d\n", st.Rules) +
		counter("custos_alert_evaluations_total", "Rule evaluations committed.", st.Evaluations) +
		counter("custos_alert_evaluation_failures_total", "Rule evaluations whose query or authorization failed.", st.EvaluationErrors) +
		counter("custos_alert_missed_evaluations_total", "Rule windows skipped after downtime beyond the catch-up bound.", st.MissedEvaluations) +
		counter("custos_alert_notifications_total", "Notifications queued.", st.Notifications) +
		counter("custos_alert_deliveries_total", "Notifications delivered.", st.Deliveries) +
		counter("custos_alert_delivery_failures_total", "Notifications that failed for good (retries exhausted, refused or paused).", st.DeliveryFailures) +
		"# HELP custos_alert_evaluation_lag_seconds Delay between a window's scheduled evaluation time and the start of its evaluation.\n" +
		"# TYPE custos_alert_evaluation_lag_seconds summary\n" +
		fmt.Sprintf("custos_alert_evaluation_lag_seconds{quantile=\"0.5\"} %g\n", st.LagP50.Seconds()) +
		fmt.Sprintf("custos_alert_evaluation_lag_seconds{quantile=\"0.99\"} %g\n", st.LagP99.Seconds()) +
		fmt.Sprintf("custos_alert_evaluation_lag_seconds{quantile=\"1\"} %g\n", st.LagMax.Seconds())
	if _, err := io.WriteString(w, out); err != nil {
		return err
	}
	return s.skips.writeMetric(w)
}
