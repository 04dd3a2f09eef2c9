// Package alert implements Azure Monitor's log search alerts: the
// Microsoft.Insights/scheduledQueryRules and Microsoft.Insights/actionGroups
// resources, the alert instances of Microsoft.AlertsManagement/alerts, a
// scheduler that evaluates every enabled rule on its frequency grid as the
// rule's own identity, stateful per-dimension firing and resolution, and the
// notifications (common alert schema) sent to webhooks and email receivers
// with retries, signatures and recorded delivery attempts.
//
// It owns its ARM handlers ((*Service).Routes) and keeps all of its state in
// the catalog (internal/catalog alerts*.go), so a restart neither skips nor
// repeats an evaluation: the rule state, the alerts and the notification
// outbox of one evaluation are committed in one transaction, and every
// notification carries a deterministic idempotency key.
//
// It imports catalog, engine, kql, rbac, identity, crypt, store and api; it
// must not import server, arm, query or ingest.
package alert
