package catalog

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"
)

// TestDiskFullIsENOSPC: a write SQLite refuses because its file cannot grow
// (SQLITE_FULL; here made with max_page_count on one connection, as a full
// filesystem makes it) carries syscall.ENOSPC, so the API answers the
// retryable 503 InsufficientStorage instead of a 500 (found by the
// e2e disk-full purge test with the whole data directory full).
func TestDiskFullIsENOSPC(t *testing.T) {
	c, _ := openTest(t)
	ctx := context.Background()
	conn, err := c.sql.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := run{q: conn, d: c.d}
	if _, err := r.exec(ctx, "CREATE TABLE ballast (b BLOB)"); err != nil {
		t.Fatal(err)
	}
	var pages int
	if err := r.row(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := r.exec(ctx, fmt.Sprintf("PRAGMA max_page_count = %d", pages+1)); err != nil {
		t.Fatal(err)
	}
	_, err = r.exec(ctx, "INSERT INTO ballast VALUES (zeroblob(1048576))")
	if err == nil {
		t.Fatal("a 1 MiB insert into a database capped one page above its size succeeded")
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("SQLITE_FULL does not carry ENOSPC: %v", err)
	}
	// Other errors pass through unchanged.
	_, err = r.exec(ctx, "INSERT INTO no_such_table VALUES (1)")
	if err == nil || errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("a missing table reported as disk full: %v", err)
	}
}
