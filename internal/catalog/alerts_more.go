package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

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
