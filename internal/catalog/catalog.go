package catalog

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"
)

// DefaultBusyTimeout is how long a write waits for another writer's lock.
const DefaultBusyTimeout = 5 * time.Second

// Options configures Open. A zero field means the documented default.
type Options struct {
	// Path is the SQLite database file. Required. Its directory is created
	// (0700) if missing, and the file is created 0600.
	Path string
	// Logger receives migration and maintenance messages. nil discards them.
	Logger *slog.Logger
	// BusyTimeout bounds waits for the write lock; 0 means DefaultBusyTimeout.
	BusyTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand is the source of IDs and ETags; nil means crypto/rand.Reader.
	Rand io.Reader
}

// DB is the catalog. It is safe for concurrent use by multiple goroutines.
type DB struct {
	sql   *sql.DB
	stmts *stmtCache // reads through DB.r() as prepared statements (stmtcache.go)
	d     dialect
	log   *slog.Logger
	now   func() time.Time
	rand  io.Reader

	writes atomic.Uint64 // bumped after every committed write; see Generation
}

// Open opens (creating if needed) the catalog at opts.Path and applies any
// pending migrations.
func Open(ctx context.Context, opts Options) (*DB, error) {
	if opts.Path == "" {
		return nil, errors.New("open catalog: no path")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = DefaultBusyTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if err := prepareFile(opts.Path); err != nil {
		return nil, fmt.Errorf("open catalog %s: %w", opts.Path, err)
	}
	d := sqliteDialect{}
	sdb, err := sql.Open(d.driverName(), d.dsn(opts.Path, opts.BusyTimeout))
	if err != nil {
		return nil, fmt.Errorf("open catalog %s: %w", opts.Path, err)
	}
	sdb.SetMaxOpenConns(8)
	sdb.SetMaxIdleConns(8) // kept without an idle expiry: a new connection parses the schema again
	c := &DB{sql: sdb, stmts: newStmtCache(sdb), d: d, log: opts.Logger, now: opts.Now, rand: opts.Rand}
	if err := sdb.PingContext(ctx); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("open catalog %s: %w", opts.Path, err)
	}
	if err := c.migrate(ctx); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("open catalog %s: %w", opts.Path, err)
	}
	c.warm(ctx)
	return c, nil
}

// prepareFile creates the parent directory (0700) and the database file
// (0600) so that SQLite never creates them with looser permissions.
func prepareFile(path string) error {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}

// Close closes the database.
func (c *DB) Close() error { c.stmts.close(); return c.sql.Close() }

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// run executes portable SQL on a querier, rebinding placeholders.
type run struct {
	q      querier
	d      dialect
	writes *atomic.Uint64 // outside a transaction: bumped after each exec
}

func (r run) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	res, err := r.q.ExecContext(ctx, r.d.rebind(query), args...)
	if r.writes != nil {
		r.writes.Add(1)
	}
	return res, diskFull(r.d, err)
}

// diskFull returns err with syscall.ENOSPC in its chain when the database
// refused a write because its filesystem is full, so that callers (and the
// API's error mapping: a retryable 503 InsufficientStorage) treat a full
// catalog disk like a full store disk; other errors are returned as they are.
func diskFull(d dialect, err error) error {
	if err != nil && d.isDiskFull(err) && !errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("%w (%w)", err, syscall.ENOSPC)
	}
	return err
}

func (r run) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return r.q.QueryContext(ctx, r.d.rebind(query), args...)
}

func (r run) row(ctx context.Context, query string, args ...any) *sql.Row {
	return r.q.QueryRowContext(ctx, r.d.rebind(query), args...)
}

func (c *DB) r() run { return run{q: c.stmts, d: c.d, writes: &c.writes} }

// queryAll runs a query and scans each row with scan; what names the list in
// errors. No rows give an empty, non-nil slice (an ARM list of "value": []).
func queryAll[T any](ctx context.Context, r run, what string, scan func(interface{ Scan(...any) error }) (T, error), query string, args ...any) ([]T, error) {
	rows, err := r.query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// inTx runs fn in one transaction, committing if fn returns nil.
func (c *DB) inTx(ctx context.Context, fn func(r run) error) error {
	tx, err := c.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", diskFull(c.d, err))
	}
	if err := fn(run{q: tx, d: c.d}); err != nil {
		_ = tx.Rollback()
		return err
	}
	err = tx.Commit()
	c.writes.Add(1) // also after a failed commit: the outcome may be unknown
	if err != nil {
		return fmt.Errorf("commit: %w", diskFull(c.d, err))
	}
	return nil
}

// newGUID returns a random (version 4) GUID in canonical lower-case form.
func (c *DB) newGUID() (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(c.rand, b[:]); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32], nil
}

// newETag returns a new opaque ETag, quoted as Azure sends it.
func (c *DB) newETag() (string, error) {
	g, err := c.newGUID()
	if err != nil {
		return "", err
	}
	return `"` + g + `"`, nil
}

// newImmutableID returns a data collection rule immutable ID: "dcr-" + 32 hex.
func (c *DB) newImmutableID() (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(c.rand, b[:]); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return "dcr-" + hex.EncodeToString(b[:]), nil
}

func (c *DB) nowUTC() time.Time { return c.now().UTC() }

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse stored time %q: %w", s, err)
	}
	return t.UTC(), nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
