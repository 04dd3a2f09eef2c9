// Package alert implements Azure Monitor's alerts: log search alert rules
// (Microsoft.Insights/scheduledQueryRules), metric alert rules over the
// workspace metric tables (Microsoft.Insights/metricAlerts), activity log
// alert rules over the activity log (Microsoft.Insights/activityLogAlerts),
// the Microsoft.Insights/actionGroups resources, the alert instances of
// Microsoft.AlertsManagement/alerts, a scheduler that evaluates every enabled rule on its frequency grid as the
// rule's own identity, stateful per-dimension firing and resolution, and the
// notifications (common alert schema) sent to webhooks and email receivers
// with retries, signatures and recorded delivery attempts.
//
// Rule queries, rule state and alert payloads are customer content, sealed
// under their workspace's key (ContentSealer, *store.DB).
//
// It owns its ARM handlers ((*Service).Routes) and keeps all of its state in
// the catalog (internal/catalog alerts*.go), so a restart neither skips nor
// repeats an evaluation: the rule state, the alerts and the notification
// outbox of one evaluation are committed in one transaction, and every
// notification carries a deterministic idempotency key.
//
// It imports activity, arm (the shared ARM wire conventions only), catalog,
// engine, kql, rbac, identity, crypt, store and api; it must not import
// server, query or ingest.
package alert
