package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"custos/internal/identity"
)

// This file holds the catalog side of metric and activity log alerts and of
// alert rules' system-assigned identities (migration 0011).

// ActivityAlertCursor returns the sequence number of the last activity log
// entry that activity log alert rules have evaluated; ok is false when none
// was ever recorded.
func (c *DB) ActivityAlertCursor(ctx context.Context) (seq int64, ok bool, err error) {
	err = c.r().row(ctx, `SELECT seq FROM alert_activity_cursor WHERE id = 1`).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("get activity alert cursor: %w", err)
	}
	return seq, true, nil
}

// ActivityAlertCommit is what evaluating a run of activity log entries
// changes: the cursor moves from Prev (nil: never set) to Next, and the
// alerts, history and notifications those entries raised are written, all
// in one transaction.
type ActivityAlertCommit struct {
	Prev          *int64
	Next          int64
	Alerts        []AlertRecord
	History       []AlertHistoryEvent
	Notifications []Notification // inserted unless their ID exists
}

// CommitActivityAlerts writes c atomically. It fails with ErrConflict when
// the stored cursor is not c.Prev (another evaluator moved it).
func (c *DB) CommitActivityAlerts(ctx context.Context, ac ActivityAlertCommit) error {
	now := c.nowUTC()
	return c.inTx(ctx, func(r run) error {
		var cur int64
		err := r.row(ctx, `SELECT seq FROM alert_activity_cursor WHERE id = 1`).Scan(&cur)
		exists := err == nil
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("read activity alert cursor: %w", err)
		}
		if exists != (ac.Prev != nil) || (exists && cur != *ac.Prev) {
			return conflict("CursorChanged", "The activity alert cursor moved during the evaluation.")
		}
		if exists {
			_, err = r.exec(ctx, `UPDATE alert_activity_cursor SET seq = ?, updated_at = ? WHERE id = 1`, ac.Next, fmtTime(now))
		} else {
			_, err = r.exec(ctx, `INSERT INTO alert_activity_cursor (id, seq, updated_at) VALUES (1, ?, ?)`, ac.Next, fmtTime(now))
		}
		if err != nil {
			return fmt.Errorf("write activity alert cursor: %w", err)
		}
		for i := range ac.Alerts {
			var n int
			if err := r.row(ctx, `SELECT COUNT(*) FROM alerts WHERE alert_id = ?`, ac.Alerts[i].ID).Scan(&n); err != nil {
				return fmt.Errorf("put alert: %w", err)
			}
			if n > 0 {
				continue // raised already: an entry is evaluated once
			}
			if err := putAlert(ctx, r, &ac.Alerts[i]); err != nil {
				return err
			}
		}
		for _, h := range ac.History {
			if err := appendAlertHistory(ctx, r, h); err != nil {
				return err
			}
		}
		for _, n := range ac.Notifications {
			if err := insertNotification(ctx, r, n); err != nil {
				return err
			}
		}
		return nil
	})
}

// CreateSystemAssignedIdentity creates the managed identity of an alert
// rule (or another resource) in tenantID: a principal of kind
// ManagedIdentity with new object and client IDs, no credentials, and
// resourceID as its resource. Deleting the alert resource deletes it with
// its role assignments (migration 0011).
func (c *DB) CreateSystemAssignedIdentity(ctx context.Context, tenantID, resourceID, displayName string) (objectID, clientID string, err error) {
	if objectID, err = c.newGUID(); err != nil {
		return "", "", err
	}
	if clientID, err = c.newGUID(); err != nil {
		return "", "", err
	}
	err = c.inTx(ctx, func(r run) error {
		return insertManagedIdentity(ctx, r, c, tenantID, objectID, clientID, displayName, key(resourceID))
	})
	if err != nil {
		return "", "", err
	}
	return objectID, clientID, nil
}

// DeleteSystemAssignedIdentity deletes the managed identity objectID of the
// resource resourceID together with its role assignments. It deletes
// nothing (and returns nil) when no such identity exists; a principal of
// another kind or resource is never touched.
func (c *DB) DeleteSystemAssignedIdentity(ctx context.Context, tenantID, objectID, resourceID string) error {
	return c.inTx(ctx, func(r run) error {
		res, err := r.exec(ctx, `DELETE FROM service_principals WHERE tenant_id = ? AND object_id = ? AND kind = ? AND resource_id = ?`,
			strings.ToLower(tenantID), strings.ToLower(objectID), string(identity.KindManagedIdentity), key(resourceID))
		if err != nil {
			return fmt.Errorf("delete managed identity: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		if _, err := r.exec(ctx, `DELETE FROM role_assignments WHERE lower(principal_id) = ?`, strings.ToLower(objectID)); err != nil {
			return fmt.Errorf("delete role assignments of managed identity: %w", err)
		}
		return nil
	})
}

func upsertAlertSecret(ctx context.Context, r run, resKey, name string, sealed []byte, now time.Time) error {
	if _, err := r.exec(ctx, `DELETE FROM alert_secrets WHERE res_key = ? AND name = ?`, resKey, name); err != nil {
		return fmt.Errorf("replace alert secret: %w", err)
	}
	if _, err := r.exec(ctx, `INSERT INTO alert_secrets (res_key, name, sealed, created_at) VALUES (?, ?, ?, ?)`,
		resKey, name, sealed, fmtTime(now)); err != nil {
		return fmt.Errorf("replace alert secret: %w", err)
	}
	return nil
}

// SealAlertResourceContent replaces the properties of the alert resource
// with ARM ID id and writes its sealed content, in one transaction, without
// changing its ETag or audit fields: it moves content that an older Custos
// stored in the clear into sealed secrets.
func (c *DB) SealAlertResourceContent(ctx context.Context, id string, props json.RawMessage, sealed map[string][]byte) error {
	now := c.nowUTC()
	return c.inTx(ctx, func(r run) error {
		res, err := r.exec(ctx, `UPDATE alert_resources SET properties = ? WHERE res_key = ?`, string(props), key(id))
		if err != nil {
			return fmt.Errorf("seal alert resource content: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound("ResourceNotFound", "The Resource '%s' was not found.", truncate(id, 300))
		}
		for name, b := range sealed {
			if err := upsertAlertSecret(ctx, r, key(id), name, b, now); err != nil {
				return err
			}
		}
		return nil
	})
}

// sealedContentMarker starts a JSON document whose content is sealed (the
// alert package's envelope); activity log alerts keep their payloads in the
// clear, as the activity log does.
const (
	sealedContentMarker = `{"custosSealed":`
	notActivityAlert    = `rule_key NOT LIKE '%/providers/microsoft.insights/activitylogalerts/%'`
)

// UnsealedAlertDocs returns up to limit alerts of metric and log search
// rules whose document still holds a payload in the clear.
func (c *DB) UnsealedAlertDocs(ctx context.Context, limit int) ([]AlertRecord, error) {
	return queryAll(ctx, c.r(), "list unsealed alerts", scanAlertRecord,
		`SELECT `+alertRecordColumns+` FROM alerts WHERE doc LIKE '%"payload":{%' AND `+notActivityAlert+` ORDER BY alert_id LIMIT ?`, limit)
}

// SetAlertDoc replaces the document and series key of an alert (nothing
// else changes).
func (c *DB) SetAlertDoc(ctx context.Context, id string, doc json.RawMessage, seriesKey string) error {
	if _, err := c.r().exec(ctx, `UPDATE alerts SET doc = ?, series_key = ? WHERE alert_id = ?`, string(doc), seriesKey, strings.ToLower(id)); err != nil {
		return fmt.Errorf("set alert document: %w", err)
	}
	return nil
}

// UnsealedNotifications returns up to limit notifications of metric and log
// search alerts whose payload is still in the clear.
func (c *DB) UnsealedNotifications(ctx context.Context, limit int) ([]Notification, error) {
	return listNotifications(ctx, c.r(), `WHERE payload NOT LIKE '`+sealedContentMarker+`%' AND alert_id IN (SELECT alert_id FROM alerts WHERE `+
		notActivityAlert+`) ORDER BY id LIMIT ?`, limit)
}

// SetNotificationPayload replaces the payload of a notification.
func (c *DB) SetNotificationPayload(ctx context.Context, id string, payload json.RawMessage) error {
	if _, err := c.r().exec(ctx, `UPDATE alert_notifications SET payload = ? WHERE id = ?`, string(payload), id); err != nil {
		return fmt.Errorf("set notification payload: %w", err)
	}
	return nil
}
