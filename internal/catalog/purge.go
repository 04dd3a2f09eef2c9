package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Purge operation kinds and states, as internal/purge uses them.
const (
	PurgeKindPurge      = "purge"      // POST .../workspaces/{ws}/purge
	PurgeKindDeleteData = "deleteData" // POST .../tables/{t}/deleteData

	PurgeStatusPending   = "pending"
	PurgeStatusCompleted = "completed"
	PurgeStatusFailed    = "failed"
)

// PurgeOperation is one accepted purge or delete-data request.
type PurgeOperation struct {
	ID          string // GUID, the operationId the client polls
	Kind        string // PurgeKindPurge or PurgeKindDeleteData
	WorkspaceID string // workspace ARM ID
	// SubscriptionID is the workspace's subscription (the delete-data status
	// endpoint is subscription-scoped).
	SubscriptionID string
	CustomerID     string // workspace customerId: the store's workspace name
	Location       string
	Table          string
	// SealedFilters is the request's filters sealed by the caller; they may
	// contain the values being purged. Empty once the operation finished.
	SealedFilters []byte
	Status        string // PurgeStatusPending, PurgeStatusCompleted or PurgeStatusFailed
	Error         string // client-facing failure text
	RowsPurged    int64
	CreatedAt     time.Time
	CreatedBy     string
	StartedAt     time.Time // last time a worker started it; zero if never
	CompletedAt   time.Time
}

// purgeTimeLayout is fixed-width so that created_at compares as text.
const purgeTimeLayout = "2006-01-02T15:04:05.000000000Z"

func fmtPurgeTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(purgeTimeLayout)
}

const purgeColumns = `id, kind, ws_key, sub_key, customer_id, location, table_name, filters, status, error, rows_purged,
	created_at, created_by, started_at, completed_at`

func scanPurgeOperation(sc interface{ Scan(...any) error }) (PurgeOperation, error) {
	var op PurgeOperation
	var created, started, completed string
	if err := sc.Scan(&op.ID, &op.Kind, &op.WorkspaceID, &op.SubscriptionID, &op.CustomerID, &op.Location, &op.Table,
		&op.SealedFilters, &op.Status, &op.Error, &op.RowsPurged, &created, &op.CreatedBy, &started, &completed); err != nil {
		return PurgeOperation{}, err
	}
	var err error
	if op.CreatedAt, err = parseTime(created); err != nil {
		return PurgeOperation{}, err
	}
	if op.StartedAt, err = parseTime(started); err != nil {
		return PurgeOperation{}, err
	}
	if op.CompletedAt, err = parseTime(completed); err != nil {
		return PurgeOperation{}, err
	}
	return op, nil
}

// InsertPurgeOperation stores a new pending operation unless the
// workspace already has limit operations of the same kind created within
// window before now; then it stores nothing and returns ok=false and how
// long until the oldest of them leaves the window. The check and the insert
// are one transaction. op.CreatedAt is set to now; ID, Kind, WorkspaceID,
// CustomerID and Table must be set.
func (c *DB) InsertPurgeOperation(ctx context.Context, op *PurgeOperation, limit int, window time.Duration) (ok bool, retryAfter time.Duration, err error) {
	if op.ID == "" || op.Kind == "" || op.WorkspaceID == "" || op.CustomerID == "" || op.Table == "" {
		return false, 0, errors.New("insert purge operation: missing id, kind, workspace or table")
	}
	now := c.nowUTC()
	op.CreatedAt = now
	op.Status = PurgeStatusPending
	if op.SealedFilters == nil {
		op.SealedFilters = []byte{}
	}
	err = c.inTx(ctx, func(r run) error {
		if limit > 0 {
			since := fmtPurgeTime(now.Add(-window))
			var n int
			var oldest sql.NullString
			if err := r.row(ctx, `SELECT COUNT(*), MIN(created_at) FROM purge_operations WHERE ws_key = ? AND kind = ? AND created_at > ?`,
				key(op.WorkspaceID), op.Kind, since).Scan(&n, &oldest); err != nil {
				return fmt.Errorf("count purge operations: %w", err)
			}
			if n >= limit {
				t, err := parseTime(oldest.String)
				if err != nil {
					return err
				}
				retryAfter = max(t.Add(window).Sub(now), time.Second)
				return nil
			}
		}
		if _, err := r.exec(ctx, `INSERT INTO purge_operations (`+purgeColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			op.ID, op.Kind, key(op.WorkspaceID), key(op.SubscriptionID), op.CustomerID, op.Location, op.Table, op.SealedFilters,
			op.Status, "", 0, fmtPurgeTime(now), op.CreatedBy, "", ""); err != nil {
			return fmt.Errorf("insert purge operation: %w", err)
		}
		ok = true
		return nil
	})
	if err != nil {
		return false, 0, err
	}
	return ok, retryAfter, nil
}

// PurgeOperationByID returns an operation. A missing one is ErrNotFound.
func (c *DB) PurgeOperationByID(ctx context.Context, id string) (PurgeOperation, error) {
	op, err := scanPurgeOperation(c.r().row(ctx, `SELECT `+purgeColumns+` FROM purge_operations WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return PurgeOperation{}, notFound("OperationNotFound", "The operation '%s' could not be found.", truncate(id, 100))
	}
	if err != nil {
		return PurgeOperation{}, fmt.Errorf("read purge operation: %w", err)
	}
	return op, nil
}

// PendingPurgeOperations returns the operations not yet finished, oldest first.
func (c *DB) PendingPurgeOperations(ctx context.Context) ([]PurgeOperation, error) {
	rows, err := c.r().query(ctx, `SELECT `+purgeColumns+` FROM purge_operations WHERE status = ? ORDER BY created_at, id`, PurgeStatusPending)
	if err != nil {
		return nil, fmt.Errorf("list pending purge operations: %w", err)
	}
	defer rows.Close()
	var out []PurgeOperation
	for rows.Next() {
		op, err := scanPurgeOperation(rows)
		if err != nil {
			return nil, fmt.Errorf("list pending purge operations: %w", err)
		}
		out = append(out, op)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list pending purge operations: %w", err)
	}
	return out, nil
}

// StartPurgeOperation records that a worker started (or restarted) the operation.
func (c *DB) StartPurgeOperation(ctx context.Context, id string) error {
	if _, err := c.r().exec(ctx, `UPDATE purge_operations SET started_at = ? WHERE id = ? AND status = ?`,
		fmtPurgeTime(c.nowUTC()), id, PurgeStatusPending); err != nil {
		return fmt.Errorf("start purge operation: %w", err)
	}
	return nil
}

// FinishPurgeOperation records the outcome (PurgeStatusCompleted or
// PurgeStatusFailed) and erases the sealed filters.
func (c *DB) FinishPurgeOperation(ctx context.Context, id, status, errText string, rows int64) error {
	if status != PurgeStatusCompleted && status != PurgeStatusFailed {
		return fmt.Errorf("finish purge operation: bad status %q", status)
	}
	res, err := c.r().exec(ctx, `UPDATE purge_operations SET status = ?, error = ?, rows_purged = ?, completed_at = ?, filters = ?
		WHERE id = ? AND status = ?`, status, truncate(errText, 1024), rows, fmtPurgeTime(c.nowUTC()), []byte{}, id, PurgeStatusPending)
	if err != nil {
		return fmt.Errorf("finish purge operation: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("OperationNotFound", "The pending operation '%s' could not be found.", truncate(id, 100))
	}
	return nil
}
