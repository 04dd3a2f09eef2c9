package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Keys of the settings table.
const (
	settingDefaultTenant       = "default_tenant"
	settingDefaultSubscription = "default_subscription"
)

func getSetting(ctx context.Context, r run, k string) (string, error) {
	var v string
	err := r.row(ctx, `SELECT value FROM settings WHERE key = ?`, k).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read setting %s: %w", k, err)
	}
	return v, nil
}

func setSetting(ctx context.Context, r run, k, v string) error {
	res, err := r.exec(ctx, `UPDATE settings SET value = ? WHERE key = ?`, v, k)
	if err != nil {
		return fmt.Errorf("write setting %s: %w", k, err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return nil
	}
	if _, err := r.exec(ctx, `INSERT INTO settings (key, value) VALUES (?, ?)`, k, v); err != nil {
		return fmt.Errorf("write setting %s: %w", k, err)
	}
	return nil
}
