package catalog

import (
	"context"
	"fmt"
	"time"

	"custos/internal/identity"
)

// Pending sign-ins (identity.SignInStore): the token service's
// authorization codes and device code grants, sealed by the token service,
// so that a sign-in in progress survives a restart.

var _ identity.SignInStore = (*DB)(nil)

// maxPendingSignIns bounds the table, as the token service bounds its
// in-memory maps; PutSignIn refuses more.
const maxPendingSignIns = 20000

// PutSignIn implements identity.SignInStore: it inserts or replaces the
// record and deletes the expired ones.
func (c *DB) PutSignIn(ctx context.Context, p identity.PendingSignIn) error {
	if p.Kind == "" || p.Key == "" || len(p.Sealed) == 0 || p.Expires.IsZero() {
		return Invalid("InvalidParameter", "signIn", "A pending sign-in needs a kind, a key, a sealed record and an expiry.")
	}
	return c.inTx(ctx, func(r run) error {
		if _, err := r.exec(ctx, `DELETE FROM pending_signins WHERE expires_at <= ?`, fmtTime(c.now())); err != nil {
			return fmt.Errorf("purge pending sign-ins: %w", err)
		}
		var n int
		if err := r.row(ctx, `SELECT COUNT(*) FROM pending_signins`).Scan(&n); err != nil {
			return fmt.Errorf("count pending sign-ins: %w", err)
		}
		if n >= maxPendingSignIns {
			return fmt.Errorf("%w: too many sign-ins in progress", ErrConflict)
		}
		if _, err := r.exec(ctx, `DELETE FROM pending_signins WHERE kind = ? AND code_hash = ?`, p.Kind, p.Key); err != nil {
			return fmt.Errorf("replace pending sign-in: %w", err)
		}
		if _, err := r.exec(ctx, `INSERT INTO pending_signins (kind, code_hash, alias, sealed, expires_at) VALUES (?, ?, ?, ?, ?)`,
			p.Kind, p.Key, p.Alias, p.Sealed, fmtTime(p.Expires)); err != nil {
			return fmt.Errorf("store pending sign-in: %w", err)
		}
		return nil
	})
}

// DeleteSignIn implements identity.SignInStore.
func (c *DB) DeleteSignIn(ctx context.Context, kind, key string) error {
	if _, err := c.r().exec(ctx, `DELETE FROM pending_signins WHERE kind = ? AND code_hash = ?`, kind, key); err != nil {
		return fmt.Errorf("delete pending sign-in: %w", err)
	}
	return nil
}

// PendingSignIns implements identity.SignInStore: it deletes the records
// expired at now and returns the others.
func (c *DB) PendingSignIns(ctx context.Context, now time.Time) ([]identity.PendingSignIn, error) {
	if _, err := c.r().exec(ctx, `DELETE FROM pending_signins WHERE expires_at <= ?`, fmtTime(now)); err != nil {
		return nil, fmt.Errorf("purge pending sign-ins: %w", err)
	}
	rows, err := c.r().query(ctx, `SELECT kind, code_hash, alias, sealed, expires_at FROM pending_signins ORDER BY expires_at`)
	if err != nil {
		return nil, fmt.Errorf("read pending sign-ins: %w", err)
	}
	defer rows.Close()
	var out []identity.PendingSignIn
	for rows.Next() {
		var p identity.PendingSignIn
		var exp string
		if err := rows.Scan(&p.Kind, &p.Key, &p.Alias, &p.Sealed, &exp); err != nil {
			return nil, fmt.Errorf("read pending sign-in: %w", err)
		}
		if p.Expires, err = parseTime(exp); err != nil {
			return nil, fmt.Errorf("read pending sign-in expiry: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read pending sign-ins: %w", err)
	}
	return out, nil
}
