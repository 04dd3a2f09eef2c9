package main

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"custos/internal/activity"
	"custos/internal/catalog"
	"custos/internal/crypt"
)

func TestVerifyActivityLogCommand(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	if err := os.MkdirAll(filepath.Join(dir, "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	key, err := crypt.OpenPlatformKey(filepath.Join(dir, "keys", "platform.key"))
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Open(ctx, catalog.Options{Path: filepath.Join(dir, "catalog.db")})
	if err != nil {
		t.Fatal(err)
	}
	l, err := activity.New(ctx, activity.Options{Store: cat, Keys: key})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := l.Record(ctx, activity.Record{OperationName: "Microsoft.Authorization/locks/write", Status: activity.StatusSucceeded}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	cat.Close()

	run := func() (string, error) {
		cmd := newAdminCmd()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs([]string{"verify-activity-log", "--data-dir", dir})
		err := cmd.ExecuteContext(ctx)
		return out.String(), err
	}
	out, err := run()
	if err != nil || !strings.Contains(out, "activity log intact: 3 records") {
		t.Fatalf("intact log: %v\n%s", err, out)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE activity_log SET record = replace(record, 'locks/write', 'locks/delete') WHERE seq = 2`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	out, err = run()
	if err == nil || !strings.Contains(out, "TAMPERED: first bad record is 2") {
		t.Fatalf("tampered log: %v\n%s", err, out)
	}
	cmd := newAdminCmd()
	cmd.SetArgs([]string{"verify-activity-log", "--data-dir", filepath.Join(dir, "missing")})
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	if err := cmd.ExecuteContext(ctx); err == nil {
		t.Fatal("missing data directory: want an error")
	}
}
