package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"custos/internal/api"
)

// Lock levels, as Azure spells them.
const (
	LockCanNotDelete = "CanNotDelete"
	LockReadOnly     = "ReadOnly"
)

// ErrScopeLocked is matched (errors.Is) by the error of CheckLocks when a
// management lock blocks the operation.
var ErrScopeLocked = fmt.Errorf("%w: scope locked", ErrConflict)

// LockOp is the kind of operation CheckLocks is asked about.
type LockOp int

// Operations that locks restrict.
const (
	// LockOpDelete deletes the resource at the scope and everything below
	// it. Any lock at, above or below the scope blocks it.
	LockOpDelete LockOp = iota + 1
	// LockOpWrite creates or updates the resource at the scope. A ReadOnly
	// lock at or above the scope blocks it.
	LockOpWrite
	// LockOpPurge deletes data inside the resource (the purge API). Any lock
	// at, above or below the scope blocks it.
	LockOpPurge
	// LockOpRetention shortens or changes how long data is kept, which
	// deletes data. Any lock at, above or below the scope blocks it.
	LockOpRetention
)

func (op LockOp) verb() string {
	switch op {
	case LockOpDelete:
		return "delete"
	case LockOpWrite:
		return "write"
	case LockOpPurge:
		return "purge"
	case LockOpRetention:
		return "retention change"
	}
	return "unknown"
}

// ManagementLock is a Microsoft.Authorization/locks resource.
type ManagementLock struct {
	ID     string // {scope}/providers/Microsoft.Authorization/locks/{name}
	Name   string
	Scope  string
	Level  string // LockCanNotDelete or LockReadOnly
	Notes  string
	Owners []string // applicationId values, informational
	Audit
}

// LockResourceID returns a lock's resource ID.
func LockResourceID(scope, name string) string {
	scope = normalizeScope(scope)
	if scope == "/" {
		scope = ""
	}
	return scope + "/providers/Microsoft.Authorization/locks/" + name
}

var lockNameRE = regexp.MustCompile(`^[^<>*%&:\\?/+#\x00-\x1f]{1,90}$`)

// ValidateLock checks a lock's name, level and notes as Azure does.
func ValidateLock(l ManagementLock) error {
	if !lockNameRE.MatchString(l.Name) || strings.TrimSpace(l.Name) == "" || strings.HasSuffix(l.Name, ".") {
		return Invalid("LockNameInvalid", "name",
			"The lock name '%s' is invalid: it must be 1 to 90 characters, not end with '.', and not contain '<', '>', '*', '%%', '&', ':', '\\', '?', '/', '+' or '#'.",
			truncate(l.Name, 100))
	}
	if l.Level != LockCanNotDelete && l.Level != LockReadOnly {
		return Invalid("LockLevelInvalid", "properties.level",
			"The lock level '%s' is invalid. Allowed values are 'CanNotDelete' and 'ReadOnly'.", truncate(l.Level, 60))
	}
	if len(l.Notes) > 512 {
		return Invalid("LockNotesTooLong", "properties.notes", "The lock notes exceed 512 characters.")
	}
	if len(l.Owners) > 100 {
		return Invalid("InvalidParameter", "properties.owners", "A lock can have at most 100 owners.")
	}
	return nil
}

const lockColumns = `id, name, scope, level, notes, owners, created_at, created_by, updated_at, updated_by`

func scanLocks(rows interface {
	Next() bool
	Scan(...any) error
	Err() error
}) ([]ManagementLock, error) {
	var out []ManagementLock
	for rows.Next() {
		var l ManagementLock
		var owners, created, updated string
		if err := rows.Scan(&l.ID, &l.Name, &l.Scope, &l.Level, &l.Notes, &owners, &created, &l.CreatedBy, &updated, &l.ModifiedBy); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(owners), &l.Owners); err != nil {
			return nil, fmt.Errorf("decode stored lock owners: %w", err)
		}
		var err error
		if l.CreatedAt, err = parseTime(created); err != nil {
			return nil, err
		}
		if l.ModifiedAt, err = parseTime(updated); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// PutLock creates or updates a management lock. created reports a new one.
func (c *DB) PutLock(ctx context.Context, l ManagementLock, by Actor) (ManagementLock, bool, error) {
	if err := ValidateLock(l); err != nil {
		return ManagementLock{}, false, err
	}
	l.Scope = normalizeScope(l.Scope)
	l.ID = LockResourceID(l.Scope, l.Name)
	if l.Owners == nil {
		l.Owners = []string{}
	}
	owners, err := json.Marshal(l.Owners)
	if err != nil {
		return ManagementLock{}, false, fmt.Errorf("encode lock owners: %w", err)
	}
	now := c.nowUTC()
	created := false
	err = c.inTx(ctx, func(r run) error {
		rows, err := r.query(ctx, `SELECT `+lockColumns+` FROM management_locks WHERE lock_key = ?`, key(l.ID))
		if err != nil {
			return fmt.Errorf("read lock: %w", err)
		}
		cur, err := scanLocks(rows)
		rows.Close()
		if err != nil {
			return fmt.Errorf("read lock: %w", err)
		}
		l.ModifiedAt, l.ModifiedBy, l.ModifiedByType = now, by.ID, by.Type
		if len(cur) == 1 {
			l.CreatedAt, l.CreatedBy = cur[0].CreatedAt, cur[0].CreatedBy
			l.ID, l.Name = cur[0].ID, cur[0].Name
			_, err = r.exec(ctx, `UPDATE management_locks SET level = ?, notes = ?, owners = ?, updated_at = ?, updated_by = ? WHERE lock_key = ?`,
				l.Level, l.Notes, string(owners), fmtTime(now), by.ID, key(l.ID))
		} else {
			created = true
			l.CreatedAt, l.CreatedBy, l.CreatedByType = now, by.ID, by.Type
			_, err = r.exec(ctx, `INSERT INTO management_locks (lock_key, id, name, scope, scope_key, level, notes, owners,
				created_at, created_by, updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				key(l.ID), l.ID, l.Name, l.Scope, key(l.Scope), l.Level, l.Notes, string(owners), fmtTime(now), by.ID, fmtTime(now), by.ID)
		}
		if err != nil {
			return fmt.Errorf("write lock: %w", err)
		}
		return nil
	})
	if err != nil {
		return ManagementLock{}, false, err
	}
	return l, created, nil
}

// Lock returns the lock with the given resource ID.
func (c *DB) Lock(ctx context.Context, id string) (ManagementLock, error) {
	rows, err := c.r().query(ctx, `SELECT `+lockColumns+` FROM management_locks WHERE lock_key = ?`, key(id))
	if err != nil {
		return ManagementLock{}, fmt.Errorf("read lock: %w", err)
	}
	defer rows.Close()
	got, err := scanLocks(rows)
	if err != nil {
		return ManagementLock{}, fmt.Errorf("read lock: %w", err)
	}
	if len(got) == 0 {
		return ManagementLock{}, notFound("LockNotFound", "The lock '%s' could not be found.", truncate(id, 300))
	}
	return got[0], nil
}

// DeleteLock deletes a lock. deleted is false when there was none.
func (c *DB) DeleteLock(ctx context.Context, id string) (ManagementLock, bool, error) {
	l, err := c.Lock(ctx, id)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return ManagementLock{}, false, nil
		}
		return ManagementLock{}, false, err
	}
	res, err := c.r().exec(ctx, `DELETE FROM management_locks WHERE lock_key = ?`, key(id))
	if err != nil {
		return ManagementLock{}, false, fmt.Errorf("delete lock: %w", err)
	}
	n, _ := res.RowsAffected()
	return l, n > 0, nil
}

// ListLocks lists the locks that apply to scope: at it or above it, and,
// unless atScope, also below it (Azure's list at a scope, and
// $filter=atScope()).
func (c *DB) ListLocks(ctx context.Context, scope string, atScope bool) ([]ManagementLock, error) {
	return c.locksAround(ctx, c.r(), scope, !atScope)
}

func (c *DB) locksAround(ctx context.Context, r run, scope string, below bool) ([]ManagementLock, error) {
	anc := ancestorKeys(scope)
	where := `scope_key IN (?` + strings.Repeat(", ?", len(anc)-1) + `)`
	args := anc
	if sk := key(normalizeScope(scope)); below && sk == "/" {
		where, args = `1 = 1`, nil
	} else if below {
		where = `(` + where + ` OR scope_key LIKE ? ESCAPE '\')`
		args = append(args, escapeLike(sk)+"/%")
	}
	rows, err := r.query(ctx, `SELECT `+lockColumns+` FROM management_locks WHERE `+where+` ORDER BY scope_key, lock_key`, args...)
	if err != nil {
		return nil, fmt.Errorf("list locks: %w", err)
	}
	defer rows.Close()
	out, err := scanLocks(rows)
	if err != nil {
		return nil, fmt.Errorf("list locks: %w", err)
	}
	return out, nil
}

// CheckLocks returns nil when no management lock blocks op at scope, and
// otherwise a 409 ScopeLocked error (matching ErrScopeLocked) that names the
// locked scopes, as Azure words it. ARM deletes, table deletion, retention
// changes and purge call it before changing anything.
func (c *DB) CheckLocks(ctx context.Context, scope string, op LockOp) error {
	if op < LockOpDelete || op > LockOpRetention {
		return fmt.Errorf("check locks: unknown operation %d", op)
	}
	locks, err := c.locksAround(ctx, c.r(), scope, op != LockOpWrite)
	if err != nil {
		return fmt.Errorf("check locks: %w", err)
	}
	sk := key(normalizeScope(scope))
	var blocking []string
	seen := map[string]bool{}
	for _, l := range locks {
		lk := key(normalizeScope(l.Scope))
		above := lk == "/" || lk == sk || strings.HasPrefix(sk, lk+"/")
		if op == LockOpWrite && (l.Level != LockReadOnly || !above) {
			continue
		}
		if !seen[lk] {
			seen[lk] = true
			blocking = append(blocking, l.Scope)
		}
	}
	if len(blocking) == 0 {
		return nil
	}
	return &Error{Code: "ScopeLocked", Kind: api.KindConflict, base: ErrScopeLocked,
		Message: fmt.Sprintf("The scope '%s' cannot perform %s operation because following scope(s) are locked: '%s'. Please remove the lock and try again.",
			truncate(normalizeScope(scope), 300), op.verb(), truncate(strings.Join(blocking, "','"), 1000))}
}
