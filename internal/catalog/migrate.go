package catalog

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"strconv"
	"strings"
)

// migration is one embedded SQL file named NNNN_description.sql.
type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var ms []migration
	seen := map[int]string{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must be NNNN_description.sql", e.Name())
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", prev, e.Name(), v)
		}
		seen[v] = e.Name()
		b, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

// migrate applies pending migrations, each in its own transaction together
// with its schema_migrations row. It refuses a database written by a newer
// Custos (a version it does not know).
func (c *DB) migrate(ctx context.Context) error {
	ms, err := loadMigrations(c.d.migrations())
	if err != nil {
		return err
	}
	if _, err := c.r().exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER NOT NULL PRIMARY KEY,
		name TEXT NOT NULL,
		applied_at TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	latest := 0
	if len(ms) > 0 {
		latest = ms[len(ms)-1].version
	}
	for _, m := range ms {
		applied := false
		err := c.inTx(ctx, func(r run) error {
			var cur int
			if err := r.row(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&cur); err != nil {
				return fmt.Errorf("read schema version: %w", err)
			}
			if cur > latest {
				return fmt.Errorf("catalog schema version %d is newer than this build supports (%d)", cur, latest)
			}
			var n int
			if err := r.row(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&n); err != nil {
				return fmt.Errorf("read schema version: %w", err)
			}
			if n > 0 {
				return nil
			}
			if _, err := r.exec(ctx, m.sql); err != nil {
				return fmt.Errorf("apply migration %s: %w", m.name, err)
			}
			if _, err := r.exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.version, m.name, fmtTime(c.nowUTC())); err != nil {
				return fmt.Errorf("record migration %s: %w", m.name, err)
			}
			applied = true
			return nil
		})
		if err != nil {
			return err
		}
		if applied {
			c.log.LogAttrs(ctx, slog.LevelInfo, "catalog migration applied",
				slog.Int("version", m.version), slog.String("name", m.name), slog.String("dialect", c.d.name()))
		}
	}
	return nil
}

// SchemaVersion returns the highest applied migration version.
func (c *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := c.r().row(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}
