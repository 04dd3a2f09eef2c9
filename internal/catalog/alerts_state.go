package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// AlertRecord is one alert instance (Microsoft.AlertsManagement/alerts). Doc
// is the alert package's JSON document; the other fields are indexed copies.
type AlertRecord struct {
	ID               string // GUID
	SubscriptionID   string
	RuleID           string // ARM ID of the rule that raised it
	SeriesKey        string // the dimension combination, as the rule's state names it
	MonitorCondition string // Fired | Resolved
	AlertState       string // New | Acknowledged | Closed
	Severity         string // Sev0..Sev4
	FiredAt          time.Time
	ModifiedAt       time.Time
	Doc              json.RawMessage
}

// AlertHistoryEvent is one entry of an alert's history.
type AlertHistoryEvent struct {
	AlertID string
	At      time.Time
	Event   json.RawMessage
}

// Notification statuses.
const (
	NotificationPending   = "Pending"
	NotificationSucceeded = "Succeeded"
	NotificationFailed    = "Failed"
)

// Notification is one queued delivery of an alert event to one receiver. ID
// is the idempotency key: inserting an ID that exists is a no-op.
type Notification struct {
	ID             string
	AlertID        string
	SubscriptionID string
	ReceiverType   string // "webhook" | "email"
	ActionGroupID  string
	Receiver       string
	Status         string
	Attempts       int
	NextAttemptAt  time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
	LastError      string
	Payload        json.RawMessage
}

// DeliveryAttempt records one try of a notification.
type DeliveryAttempt struct {
	NotificationID string
	Attempt        int
	At             time.Time
	Target         string // redacted target (URL without query/userinfo, or address)
	StatusCode     int
	Outcome        string // "Succeeded" | "Retry" | "Failed" | "Paused"
	Error          string
	Duration       time.Duration
}

// EvaluationCommit is everything one rule evaluation changes, written in one
// transaction so that a crash leaves either all of it or none.
type EvaluationCommit struct {
	RuleID string
	// PrevState is the state document the evaluation started from; the commit
	// fails with ErrConflict if the stored state differs (someone else
	// committed this rule meanwhile). nil means no state existed.
	PrevState json.RawMessage
	State     json.RawMessage
	Alerts    []AlertRecord // inserted or replaced
	History   []AlertHistoryEvent
	// Notifications are inserted unless their ID exists already.
	Notifications []Notification
}

// RuleState returns the stored scheduler state of a rule, or nil.
func (c *DB) RuleState(ctx context.Context, ruleID string) (json.RawMessage, error) {
	var s string
	err := c.r().row(ctx, `SELECT state FROM alert_rule_state WHERE res_key = ?`, key(ruleID)).Scan(&s)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get rule state: %w", err)
	}
	return json.RawMessage(s), nil
}

// CommitEvaluation writes the outcome of one evaluation atomically.
func (c *DB) CommitEvaluation(ctx context.Context, e EvaluationCommit) error {
	now := c.nowUTC()
	return c.inTx(ctx, func(r run) error { return commitEvaluation(ctx, c, r, e, now) })
}

// CommitEvaluations writes several evaluations in one transaction (one
// fsync), each still all-or-nothing: an evaluation whose state changed
// meanwhile (ErrConflict) or whose rule was deleted (ErrNotFound) is
// skipped with its error, and the others commit. errs[i] is the result of
// es[i]; err is set when the transaction itself failed (then nothing
// committed).
func (c *DB) CommitEvaluations(ctx context.Context, es []EvaluationCommit) (errs []error, err error) {
	now := c.nowUTC()
	errs = make([]error, len(es))
	err = c.inTx(ctx, func(r run) error {
		for i := range errs {
			errs[i] = nil
		}
		for i, e := range es {
			// A savepoint keeps a failed evaluation from leaving half its
			// rows in the shared transaction.
			if _, err := r.exec(ctx, `SAVEPOINT eval`); err != nil {
				return fmt.Errorf("savepoint: %w", err)
			}
			if cerr := commitEvaluation(ctx, c, r, e, now); cerr != nil {
				if !errors.Is(cerr, ErrConflict) && !errors.Is(cerr, ErrNotFound) {
					return cerr
				}
				errs[i] = cerr
				if _, err := r.exec(ctx, `ROLLBACK TO SAVEPOINT eval`); err != nil {
					return fmt.Errorf("rollback to savepoint: %w", err)
				}
			}
			if _, err := r.exec(ctx, `RELEASE SAVEPOINT eval`); err != nil {
				return fmt.Errorf("release savepoint: %w", err)
			}
		}
		return nil
	})
	return errs, err
}

func commitEvaluation(ctx context.Context, c *DB, r run, e EvaluationCommit, now time.Time) error {
	{
		k := key(e.RuleID)
		var cur string
		err := r.row(ctx, `SELECT state FROM alert_rule_state WHERE res_key = ?`, k).Scan(&cur)
		exists := err == nil
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("read rule state: %w", err)
		}
		if exists != (e.PrevState != nil) || (exists && cur != string(e.PrevState)) {
			return conflict("RuleStateChanged", "The state of rule '%s' changed during its evaluation.", truncate(e.RuleID, 300))
		}
		if exists {
			_, err = r.exec(ctx, `UPDATE alert_rule_state SET state = ?, updated_at = ? WHERE res_key = ?`, string(e.State), fmtTime(now), k)
		} else {
			_, err = r.exec(ctx, `INSERT INTO alert_rule_state (res_key, state, updated_at) VALUES (?, ?, ?)`, k, string(e.State), fmtTime(now))
		}
		if err != nil {
			if c.d.isForeignKeyViolation(err) {
				return notFound("ResourceNotFound", "The rule '%s' was deleted during its evaluation.", truncate(e.RuleID, 300))
			}
			return fmt.Errorf("write rule state: %w", err)
		}
		for i := range e.Alerts {
			if err := putAlert(ctx, r, &e.Alerts[i]); err != nil {
				return err
			}
		}
		for _, h := range e.History {
			if err := appendAlertHistory(ctx, r, h); err != nil {
				return err
			}
		}
		for _, n := range e.Notifications {
			if err := insertNotification(ctx, r, n); err != nil {
				return err
			}
		}
		return nil
	}
}

func putAlert(ctx context.Context, r run, a *AlertRecord) error {
	var n int
	if err := r.row(ctx, `SELECT COUNT(*) FROM alerts WHERE alert_id = ?`, a.ID).Scan(&n); err != nil {
		return fmt.Errorf("put alert: %w", err)
	}
	var err error
	if n > 0 {
		_, err = r.exec(ctx, `UPDATE alerts SET monitor_condition = ?, alert_state = ?, severity = ?, modified_at = ?, doc = ? WHERE alert_id = ?`,
			a.MonitorCondition, a.AlertState, a.Severity, fmtTime(a.ModifiedAt), string(a.Doc), a.ID)
	} else {
		_, err = r.exec(ctx, `INSERT INTO alerts (alert_id, sub_key, rule_key, series_key, monitor_condition, alert_state, severity,
			fired_at, modified_at, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			a.ID, key(a.SubscriptionID), key(a.RuleID), a.SeriesKey, a.MonitorCondition, a.AlertState, a.Severity,
			sortableTime(a.FiredAt), fmtTime(a.ModifiedAt), string(a.Doc))
	}
	if err != nil {
		return fmt.Errorf("put alert: %w", err)
	}
	return nil
}

func appendAlertHistory(ctx context.Context, r run, h AlertHistoryEvent) error {
	var seq int
	if err := r.row(ctx, `SELECT COALESCE(MAX(seq), 0) FROM alert_history WHERE alert_id = ?`, h.AlertID).Scan(&seq); err != nil {
		return fmt.Errorf("append alert history: %w", err)
	}
	if _, err := r.exec(ctx, `INSERT INTO alert_history (alert_id, seq, at, event) VALUES (?, ?, ?, ?)`,
		h.AlertID, seq+1, fmtTime(h.At), string(h.Event)); err != nil {
		return fmt.Errorf("append alert history: %w", err)
	}
	return nil
}

func insertNotification(ctx context.Context, r run, n Notification) error {
	var have int
	if err := r.row(ctx, `SELECT COUNT(*) FROM alert_notifications WHERE id = ?`, n.ID).Scan(&have); err != nil {
		return fmt.Errorf("insert notification: %w", err)
	}
	if have > 0 {
		return nil
	}
	if n.Status == "" {
		n.Status = NotificationPending
	}
	if _, err := r.exec(ctx, `INSERT INTO alert_notifications (id, alert_id, sub_key, receiver_type, action_group, receiver, status,
		attempts, next_attempt_at, created_at, updated_at, last_error, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		n.ID, n.AlertID, key(n.SubscriptionID), n.ReceiverType, n.ActionGroupID, n.Receiver, n.Status, n.Attempts,
		sortableTime(n.NextAttemptAt), sortableTime(n.CreatedAt), fmtTime(n.CreatedAt), n.LastError, string(n.Payload)); err != nil {
		return fmt.Errorf("insert notification: %w", err)
	}
	return nil
}

const alertRecordColumns = `alert_id, sub_key, rule_key, series_key, monitor_condition, alert_state, severity, fired_at, modified_at, doc`

func scanAlertRecord(sc interface{ Scan(...any) error }) (AlertRecord, error) {
	var a AlertRecord
	var fired, modified, doc string
	if err := sc.Scan(&a.ID, &a.SubscriptionID, &a.RuleID, &a.SeriesKey, &a.MonitorCondition, &a.AlertState, &a.Severity,
		&fired, &modified, &doc); err != nil {
		return AlertRecord{}, err
	}
	var err error
	if a.FiredAt, err = parseTime(fired); err != nil {
		return AlertRecord{}, err
	}
	if a.ModifiedAt, err = parseTime(modified); err != nil {
		return AlertRecord{}, err
	}
	a.Doc = json.RawMessage(doc)
	return a, nil
}

// Alert returns one alert of a subscription by its GUID.
func (c *DB) Alert(ctx context.Context, sub, id string) (AlertRecord, error) {
	a, err := scanAlertRecord(c.r().row(ctx, `SELECT `+alertRecordColumns+` FROM alerts WHERE alert_id = ? AND sub_key = ?`,
		strings.ToLower(id), key(sub)))
	if errors.Is(err, sql.ErrNoRows) {
		return AlertRecord{}, notFound("ResourceNotFound", "The alert '%s' was not found.", truncate(id, 100))
	}
	if err != nil {
		return AlertRecord{}, fmt.Errorf("get alert: %w", err)
	}
	return a, nil
}

// AlertFilter narrows Alerts. Empty fields do not filter.
type AlertFilter struct {
	SubscriptionID   string // required
	RuleID           string
	MonitorCondition string
	AlertState       string
	Severity         string
	Since            time.Time // fired at or after
	Limit            int       // 0 means 1000
}

// Alerts lists alerts, newest first.
func (c *DB) Alerts(ctx context.Context, f AlertFilter) ([]AlertRecord, error) {
	q := `SELECT ` + alertRecordColumns + ` FROM alerts WHERE sub_key = ?`
	args := []any{key(f.SubscriptionID)}
	if f.RuleID != "" {
		q += ` AND rule_key = ?`
		args = append(args, key(f.RuleID))
	}
	if f.MonitorCondition != "" {
		q += ` AND monitor_condition = ?`
		args = append(args, f.MonitorCondition)
	}
	if f.AlertState != "" {
		q += ` AND alert_state = ?`
		args = append(args, f.AlertState)
	}
	if f.Severity != "" {
		q += ` AND severity = ?`
		args = append(args, f.Severity)
	}
	if !f.Since.IsZero() {
		q += ` AND fired_at >= ?`
		args = append(args, sortableTime(f.Since))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	q += fmt.Sprintf(` ORDER BY fired_at DESC, alert_id LIMIT %d`, limit)
	return queryAll(ctx, c.r(), "list alerts", scanAlertRecord, q, args...)
}

// UpdateAlert applies fn to the stored alert and writes the result with a
// history event, in one transaction. fn returns the event to record, or nil
// to leave the alert unchanged.
func (c *DB) UpdateAlert(ctx context.Context, sub, id string, fn func(a *AlertRecord) (json.RawMessage, error)) (AlertRecord, error) {
	var out AlertRecord
	err := c.inTx(ctx, func(r run) error {
		a, err := scanAlertRecord(r.row(ctx, `SELECT `+alertRecordColumns+` FROM alerts WHERE alert_id = ? AND sub_key = ?`,
			strings.ToLower(id), key(sub)))
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("ResourceNotFound", "The alert '%s' was not found.", truncate(id, 100))
		}
		if err != nil {
			return fmt.Errorf("get alert: %w", err)
		}
		ev, err := fn(&a)
		if err != nil {
			return err
		}
		out = a
		if ev == nil {
			return nil
		}
		if err := putAlert(ctx, r, &a); err != nil {
			return err
		}
		return appendAlertHistory(ctx, r, AlertHistoryEvent{AlertID: a.ID, At: a.ModifiedAt, Event: ev})
	})
	return out, err
}

// AlertHistory returns an alert's history, oldest first.
func (c *DB) AlertHistory(ctx context.Context, alertID string) ([]AlertHistoryEvent, error) {
	rows, err := c.r().query(ctx, `SELECT at, event FROM alert_history WHERE alert_id = ? ORDER BY seq`, strings.ToLower(alertID))
	if err != nil {
		return nil, fmt.Errorf("alert history: %w", err)
	}
	defer rows.Close()
	var out []AlertHistoryEvent
	for rows.Next() {
		var at, ev string
		if err := rows.Scan(&at, &ev); err != nil {
			return nil, fmt.Errorf("alert history: %w", err)
		}
		t, err := parseTime(at)
		if err != nil {
			return nil, err
		}
		out = append(out, AlertHistoryEvent{AlertID: alertID, At: t, Event: json.RawMessage(ev)})
	}
	return out, rows.Err()
}

const notificationColumns = `id, alert_id, sub_key, receiver_type, action_group, receiver, status, attempts, next_attempt_at,
	created_at, updated_at, last_error, payload`

func scanNotification(sc interface{ Scan(...any) error }) (Notification, error) {
	var n Notification
	var next, created, updated, payload string
	if err := sc.Scan(&n.ID, &n.AlertID, &n.SubscriptionID, &n.ReceiverType, &n.ActionGroupID, &n.Receiver, &n.Status, &n.Attempts,
		&next, &created, &updated, &n.LastError, &payload); err != nil {
		return Notification{}, err
	}
	var err error
	if n.NextAttemptAt, err = parseTime(next); err != nil {
		return Notification{}, err
	}
	if n.CreatedAt, err = parseTime(created); err != nil {
		return Notification{}, err
	}
	if n.UpdatedAt, err = parseTime(updated); err != nil {
		return Notification{}, err
	}
	n.Payload = json.RawMessage(payload)
	return n, nil
}

func listNotifications(ctx context.Context, r run, tail string, args ...any) ([]Notification, error) {
	return queryAll(ctx, r, "list notifications", scanNotification, `SELECT `+notificationColumns+` FROM alert_notifications `+tail, args...)
}

// DueNotifications returns pending notifications whose next attempt is due
// at now, oldest first.
func (c *DB) DueNotifications(ctx context.Context, now time.Time, limit int) ([]Notification, error) {
	if limit <= 0 {
		limit = 100
	}
	return listNotifications(ctx, c.r(), fmt.Sprintf(`WHERE status = ? AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT %d`, limit),
		NotificationPending, sortableTime(now))
}

// NextNotificationDue returns the earliest next attempt of a pending
// notification, or false when none is pending.
func (c *DB) NextNotificationDue(ctx context.Context) (time.Time, bool, error) {
	ns, err := listNotifications(ctx, c.r(), `WHERE status = ? ORDER BY next_attempt_at LIMIT 1`, NotificationPending)
	if err != nil || len(ns) == 0 {
		return time.Time{}, false, err
	}
	return ns[0].NextAttemptAt, true, nil
}

// AlertNotifications lists the notifications of one alert, oldest first.
func (c *DB) AlertNotifications(ctx context.Context, alertID string) ([]Notification, error) {
	return listNotifications(ctx, c.r(), `WHERE alert_id = ? ORDER BY created_at, id`, strings.ToLower(alertID))
}

// RecordDeliveryAttempt stores one attempt and the notification's new
// status, attempt count, next attempt time and last error.
func (c *DB) RecordDeliveryAttempt(ctx context.Context, a DeliveryAttempt, status string, next time.Time) error {
	return c.inTx(ctx, func(r run) error {
		if _, err := r.exec(ctx, `INSERT INTO alert_delivery_attempts (notification_id, attempt, at, target, status_code, outcome, error, duration_ms)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, a.NotificationID, a.Attempt, fmtTime(a.At), a.Target, a.StatusCode, a.Outcome,
			truncate(a.Error, 2000), a.Duration.Milliseconds()); err != nil {
			if c.d.isUniqueViolation(err) {
				return conflict("AttemptRecorded", "Attempt %d of notification '%s' is already recorded.", a.Attempt, a.NotificationID)
			}
			return fmt.Errorf("record delivery attempt: %w", err)
		}
		if _, err := r.exec(ctx, `UPDATE alert_notifications SET status = ?, attempts = ?, next_attempt_at = ?, updated_at = ?, last_error = ?
			WHERE id = ?`, status, a.Attempt, sortableTime(next), fmtTime(a.At), truncate(a.Error, 2000), a.NotificationID); err != nil {
			return fmt.Errorf("record delivery attempt: %w", err)
		}
		return nil
	})
}

// DeliveryAttempts lists the attempts of one notification in order.
func (c *DB) DeliveryAttempts(ctx context.Context, notificationID string) ([]DeliveryAttempt, error) {
	rows, err := c.r().query(ctx, `SELECT attempt, at, target, status_code, outcome, error, duration_ms FROM alert_delivery_attempts
		WHERE notification_id = ? ORDER BY attempt`, notificationID)
	if err != nil {
		return nil, fmt.Errorf("list delivery attempts: %w", err)
	}
	defer rows.Close()
	var out []DeliveryAttempt
	for rows.Next() {
		d := DeliveryAttempt{NotificationID: notificationID}
		var at string
		var ms int64
		if err := rows.Scan(&d.Attempt, &at, &d.Target, &d.StatusCode, &d.Outcome, &d.Error, &ms); err != nil {
			return nil, fmt.Errorf("list delivery attempts: %w", err)
		}
		if d.At, err = parseTime(at); err != nil {
			return nil, err
		}
		d.Duration = time.Duration(ms) * time.Millisecond
		out = append(out, d)
	}
	return out, rows.Err()
}

// PauseEndpoint records that a webhook endpoint is not called until until.
func (c *DB) PauseEndpoint(ctx context.Context, endpoint string, until time.Time) error {
	return c.inTx(ctx, func(r run) error {
		if _, err := r.exec(ctx, `DELETE FROM alert_endpoint_pauses WHERE endpoint = ?`, endpoint); err != nil {
			return fmt.Errorf("pause endpoint: %w", err)
		}
		if _, err := r.exec(ctx, `INSERT INTO alert_endpoint_pauses (endpoint, paused_until) VALUES (?, ?)`, endpoint, fmtTime(until)); err != nil {
			return fmt.Errorf("pause endpoint: %w", err)
		}
		return nil
	})
}

// EndpointPausedUntil returns until when an endpoint is paused (zero when it
// is not).
func (c *DB) EndpointPausedUntil(ctx context.Context, endpoint string) (time.Time, error) {
	var s string
	err := c.r().row(ctx, `SELECT paused_until FROM alert_endpoint_pauses WHERE endpoint = ?`, endpoint).Scan(&s)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("endpoint pause: %w", err)
	}
	return parseTime(s)
}

// sortableTime formats t with a fixed number of fractional digits, so that
// stored times compare as text the way they compare as times. parseTime
// reads it.
func sortableTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000000Z07:00")
}

// QueueNotifications inserts notifications that belong to no rule
// evaluation (an action group's test notifications), skipping IDs that
// exist.
func (c *DB) QueueNotifications(ctx context.Context, ns []Notification) error {
	return c.inTx(ctx, func(r run) error {
		for _, n := range ns {
			if err := insertNotification(ctx, r, n); err != nil {
				return err
			}
		}
		return nil
	})
}
