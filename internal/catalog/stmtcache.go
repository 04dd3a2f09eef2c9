package catalog

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// stmtCacheMax bounds the prepared statements a DB keeps: the catalog's
// read statements are a fixed set of texts, but one built with a variable
// IN list would otherwise add an entry per length.
const stmtCacheMax = 512

// stmtCache is the querier of DB.r(): reads (QueryContext, QueryRowContext)
// run as statements prepared once per text and connection, instead of
// SQLite parsing and planning the SQL on every call — the first statements
// of a new process cost ~2.8 ms of CPU that way on the query path; writes
// pass through. database/sql prepares a cached *sql.Stmt lazily on each
// pooled connection it runs on, and SQLite re-prepares it itself after a
// schema change. Safe for concurrent use.
type stmtCache struct {
	db *sql.DB
	mu sync.RWMutex
	m  map[string]*sql.Stmt
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, m: make(map[string]*sql.Stmt)}
}

// stmt returns the prepared statement for query, or nil when it could not
// be prepared or the cache is full (the caller then runs query directly).
func (c *stmtCache) stmt(ctx context.Context, query string) *sql.Stmt {
	c.mu.RLock()
	st := c.m[query]
	full := len(c.m) >= stmtCacheMax
	c.mu.RUnlock()
	if st != nil || full {
		return st
	}
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil // the direct call reports the error
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[query]; old != nil { // prepared concurrently
		_ = st.Close()
		return old
	}
	if len(c.m) >= stmtCacheMax {
		_ = st.Close()
		return nil
	}
	c.m[query] = st
	return st
}

func (c *stmtCache) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return c.db.ExecContext(ctx, query, args...)
}

func (c *stmtCache) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := c.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return c.db.QueryContext(ctx, query, args...)
}

func (c *stmtCache) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := c.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return c.db.QueryRowContext(ctx, query, args...)
}

// close closes the prepared statements (before the database).
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, st := range c.m {
		_ = st.Close()
		delete(c.m, q)
	}
}

// warmConns is how many pooled connections warm prepares the statements
// on: a query's catalog reads, the authorizer's and background work (alert
// evaluation, retention) run at once, each on its own connection.
const warmConns = 4

// warm runs the query path's first catalog reads once at open, so that the
// first query of a new process finds the schema parsed and the statements
// prepared: the lookups run once (asking for an ID that does not exist;
// results and errors do not matter), which caches their statements, and
// then every cached statement is prepared on warmConns connections held at
// once (database/sql remembers a statement's preparation per connection,
// and the pool keeps the connections; see Open).
func (c *DB) warm(ctx context.Context) {
	const none = "00000000-0000-0000-0000-000000000000"
	_, _ = c.WorkspaceByCustomerID(ctx, none)
	_, _ = c.WorkspaceTables(ctx, none)
	// WorkspaceTables stops at the missing workspace, so its table listing
	// is run once on its own.
	_, _ = listTables(ctx, c.r(), `t.ws_key = ?`, key(none))
	_, _ = c.WorkspaceFunctions(ctx, none)
	_, _ = c.RoleAssignmentDetailsFor(ctx, []string{none})
	_, _ = c.Tenant(ctx, none)
	_, _, _ = c.PrivateOnlyModes(ctx, "/subscriptions/"+none)
	_, _ = c.QueryAuditDestinations(ctx, none)
	_, _, _ = c.ActivityAlertCursor(ctx)
	var txs []*sql.Tx
	for range warmConns {
		tx, err := c.sql.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			break
		}
		txs = append(txs, tx)
	}
	c.stmts.mu.RLock()
	for _, st := range c.stmts.m {
		for _, tx := range txs {
			_ = tx.StmtContext(ctx, st).Close() // prepares st on tx's connection
		}
	}
	c.stmts.mu.RUnlock()
	for _, tx := range txs {
		_ = tx.Rollback()
	}
}

// maxWarmPagesBytes bounds WarmPages: a catalog file larger than this is not
// read whole (SQLite's page cache of a connection holds about 2 MB).
const maxWarmPagesBytes = 2 << 20

// WarmPages reads every page of a small catalog (up to maxWarmPagesBytes)
// into the SQLite page cache of warmConns pooled connections at once — the
// connections the first requests' catalog reads (token validation, RBAC,
// the query path) are served from — so that those reads find their pages
// in memory instead of reading the file. The server calls it after its
// start-up writes, right before it serves: SQLite drops a connection's
// page cache when another connection has committed since, so a later write
// makes the next read go to the file again, as without WarmPages. It
// reports how many bytes the file holds and whether they were read.
func (c *DB) WarmPages(ctx context.Context) (int64, bool, error) {
	var pages, size int64
	if err := c.sql.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
		return 0, false, fmt.Errorf("warm catalog pages: %w", err)
	}
	if err := c.sql.QueryRowContext(ctx, `PRAGMA page_size`).Scan(&size); err != nil {
		return 0, false, fmt.Errorf("warm catalog pages: %w", err)
	}
	total := pages * size
	if total > maxWarmPagesBytes {
		return total, false, nil
	}
	var txs []*sql.Tx
	defer func() {
		for _, tx := range txs {
			_ = tx.Rollback()
		}
	}()
	for range warmConns {
		tx, err := c.sql.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			return total, false, fmt.Errorf("warm catalog pages: %w", err)
		}
		txs = append(txs, tx)
	}
	for _, tx := range txs {
		// quick_check walks every b-tree, tables and indexes, through the
		// connection's page cache.
		rows, err := tx.QueryContext(ctx, `PRAGMA quick_check`)
		if err != nil {
			return total, false, fmt.Errorf("warm catalog pages: %w", err)
		}
		for rows.Next() {
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return total, false, fmt.Errorf("warm catalog pages: %w", err)
		}
	}
	return total, true, nil
}
