package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// This file stores the activity log chain (migration 0003). The chain's
// format and its verification belong to package activity; the catalog only
// keeps rows in order and appends atomically.

// ActivityEntry is one stored activity record.
type ActivityEntry struct {
	Seq      int64
	Record   []byte // canonical JSON, exactly as hashed
	PrevHash string // hex SHA-256 of the previous entry; 64 zeros for the first
	Hash     string // hex SHA-256
}

// ActivityCheckpoint is a signature over the chain head at Seq.
type ActivityCheckpoint struct {
	Seq       int64
	Hash      string
	SignedAt  time.Time
	KeyID     string
	Signature []byte
}

// ActivityKey is a checkpoint signing key; Sealed is the private key sealed
// by the platform key.
type ActivityKey struct {
	KeyID     string
	Sealed    []byte
	PublicKey []byte
	CreatedAt time.Time
}

// AppendActivity appends one entry in a single write transaction. build is
// called with the current head (sequence 0 and "" when the log is empty) and
// returns the record and its hash; it must not do I/O on the catalog.
func (c *DB) AppendActivity(ctx context.Context, build func(prevSeq int64, prevHash string) (record []byte, hash string, err error)) (ActivityEntry, error) {
	var e ActivityEntry
	err := c.inTx(ctx, func(r run) error {
		var seq int64
		var hash string
		err := r.row(ctx, `SELECT seq, hash FROM activity_log ORDER BY seq DESC LIMIT 1`).Scan(&seq, &hash)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("read activity log head: %w", err)
		}
		rec, h, err := build(seq, hash)
		if err != nil {
			return err
		}
		e = ActivityEntry{Seq: seq + 1, Record: rec, PrevHash: hash, Hash: h}
		if _, err := r.exec(ctx, `INSERT INTO activity_log (seq, record, prev_hash, hash) VALUES (?, ?, ?, ?)`,
			e.Seq, string(rec), e.PrevHash, e.Hash); err != nil {
			return fmt.Errorf("append activity record: %w", err)
		}
		return nil
	})
	if err != nil {
		return ActivityEntry{}, err
	}
	return e, nil
}

// ActivityEntries returns up to limit entries with a sequence number above
// afterSeq, in order.
func (c *DB) ActivityEntries(ctx context.Context, afterSeq int64, limit int) ([]ActivityEntry, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := c.r().query(ctx, `SELECT seq, record, prev_hash, hash FROM activity_log WHERE seq > ? ORDER BY seq LIMIT ?`, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("read activity log: %w", err)
	}
	defer rows.Close()
	var out []ActivityEntry
	for rows.Next() {
		var e ActivityEntry
		var rec string
		if err := rows.Scan(&e.Seq, &rec, &e.PrevHash, &e.Hash); err != nil {
			return nil, fmt.Errorf("read activity log: %w", err)
		}
		e.Record = []byte(rec)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read activity log: %w", err)
	}
	return out, nil
}

// ActivityHead returns the last sequence number and hash (0, "" when empty).
func (c *DB) ActivityHead(ctx context.Context) (int64, string, error) {
	var seq int64
	var hash string
	err := c.r().row(ctx, `SELECT seq, hash FROM activity_log ORDER BY seq DESC LIMIT 1`).Scan(&seq, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("read activity log head: %w", err)
	}
	return seq, hash, nil
}

// AddActivityCheckpoint stores a checkpoint; one per sequence number.
func (c *DB) AddActivityCheckpoint(ctx context.Context, cp ActivityCheckpoint) error {
	_, err := c.r().exec(ctx, `INSERT INTO activity_checkpoints (seq, hash, signed_at, key_id, signature) VALUES (?, ?, ?, ?, ?)`,
		cp.Seq, cp.Hash, fmtTime(cp.SignedAt), cp.KeyID, cp.Signature)
	if c.d.isUniqueViolation(err) {
		return nil // the head was already checkpointed
	}
	if err != nil {
		return fmt.Errorf("store activity checkpoint: %w", err)
	}
	return nil
}

// ActivityCheckpoints returns every checkpoint, by sequence number.
func (c *DB) ActivityCheckpoints(ctx context.Context) ([]ActivityCheckpoint, error) {
	rows, err := c.r().query(ctx, `SELECT seq, hash, signed_at, key_id, signature FROM activity_checkpoints ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("read activity checkpoints: %w", err)
	}
	defer rows.Close()
	var out []ActivityCheckpoint
	for rows.Next() {
		var cp ActivityCheckpoint
		var at string
		if err := rows.Scan(&cp.Seq, &cp.Hash, &at, &cp.KeyID, &cp.Signature); err != nil {
			return nil, fmt.Errorf("read activity checkpoints: %w", err)
		}
		if cp.SignedAt, err = parseTime(at); err != nil {
			return nil, err
		}
		out = append(out, cp)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read activity checkpoints: %w", err)
	}
	return out, nil
}

// ActivityKeys returns the checkpoint signing keys, oldest first.
func (c *DB) ActivityKeys(ctx context.Context) ([]ActivityKey, error) {
	rows, err := c.r().query(ctx, `SELECT key_id, sealed, public_key, created_at FROM activity_keys ORDER BY created_at, key_id`)
	if err != nil {
		return nil, fmt.Errorf("read activity keys: %w", err)
	}
	defer rows.Close()
	var out []ActivityKey
	for rows.Next() {
		var k ActivityKey
		var at string
		if err := rows.Scan(&k.KeyID, &k.Sealed, &k.PublicKey, &at); err != nil {
			return nil, fmt.Errorf("read activity keys: %w", err)
		}
		if k.CreatedAt, err = parseTime(at); err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read activity keys: %w", err)
	}
	return out, nil
}

// AddActivityKey stores a new checkpoint signing key.
func (c *DB) AddActivityKey(ctx context.Context, k ActivityKey) error {
	if _, err := c.r().exec(ctx, `INSERT INTO activity_keys (key_id, sealed, public_key, created_at) VALUES (?, ?, ?, ?)`,
		k.KeyID, k.Sealed, k.PublicKey, fmtTime(k.CreatedAt)); err != nil {
		return fmt.Errorf("store activity key: %w", err)
	}
	return nil
}
