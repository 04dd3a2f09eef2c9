package catalog

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dialect isolates what differs between SQL engines. Repositories write
// portable SQL: "?" placeholders, TEXT/INTEGER/BLOB columns, no upsert syntax,
// no engine functions; times are RFC 3339 text in UTC, booleans are 0/1
// integers, JSON documents are text. A PostgreSQL dialect supplies its own
// driver, DSN, migrations directory, "$n" rebinding and SQLSTATE checks
// (23505 unique, 23503 foreign key).
type dialect interface {
	name() string
	driverName() string
	dsn(path string, busy time.Duration) string
	migrations() fs.FS
	// rebind rewrites "?" placeholders into the engine's style.
	rebind(query string) string
	isUniqueViolation(err error) bool
	isForeignKeyViolation(err error) bool
	// isDiskFull reports a write refused because the filesystem is full.
	isDiskFull(err error) bool
}

//go:embed migrations/sqlite/*.sql
var sqliteMigrations embed.FS

type sqliteDialect struct{}

func (sqliteDialect) name() string       { return "sqlite" }
func (sqliteDialect) driverName() string { return "sqlite" }

// dsn turns on foreign keys and WAL, sets the busy timeout, and makes every
// transaction BEGIN IMMEDIATE so that concurrent read-then-write transactions
// wait for the write lock instead of failing with SQLITE_BUSY on upgrade.
func (sqliteDialect) dsn(path string, busy time.Duration) string {
	q := url.Values{}
	q.Set("_foreign_keys", "1")
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	q.Set("_busy_timeout", fmt.Sprint(busy.Milliseconds()))
	q.Set("_txlock", "immediate")
	return "file:" + path + "?" + q.Encode()
}

func (sqliteDialect) migrations() fs.FS {
	sub, err := fs.Sub(sqliteMigrations, "migrations/sqlite")
	if err != nil {
		panic("BUG: embedded migrations: " + err.Error())
	}
	return sub
}

func (sqliteDialect) rebind(query string) string { return query }

func sqliteCode(err error) int {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code()
	}
	return 0
}

func (sqliteDialect) isUniqueViolation(err error) bool {
	c := sqliteCode(err)
	return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

// isDiskFull: SQLite reports a write the filesystem refused (ENOSPC,
// EDQUOT) as SQLITE_FULL, not as the errno.
func (sqliteDialect) isDiskFull(err error) bool {
	return sqliteCode(err)&0xff == sqlite3.SQLITE_FULL
}

func (sqliteDialect) isForeignKeyViolation(err error) bool {
	switch sqliteCode(err) {
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return true
	case sqlite3.SQLITE_CONSTRAINT_TRIGGER:
		// SQLite enforces ON DELETE RESTRICT like a trigger and reports
		// that extended code, with the foreign-key message.
		return strings.Contains(err.Error(), "FOREIGN KEY constraint failed")
	}
	return false
}
