package catalog

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestStmtCache checks that reads run as cached prepared statements: the
// warm-up at open prepares the query path's lookups, a read after a write
// sees the write, concurrent readers share one statement per text, the
// cache stops growing at its bound (further texts still run) and Close
// releases the statements.
func TestStmtCache(t *testing.T) {
	c, _ := openTest(t)
	ctx := context.Background()
	c.stmts.mu.RLock()
	warmed := len(c.stmts.m)
	c.stmts.mu.RUnlock()
	if warmed < 4 {
		t.Fatalf("%d statements prepared at open, want the query path's lookups", warmed)
	}
	if st := c.sql.Stats(); st.Idle < warmConns {
		t.Errorf("%d idle connections after open, want the %d warmed ones kept", st.Idle, warmConns)
	}
	const id = "11111111-2222-4333-8444-555555555555"
	if _, err := c.Tenant(ctx, id); err == nil {
		t.Fatal("tenant found before it was created")
	}
	if _, err := c.CreateTenant(ctx, Tenant{ID: id, DisplayName: "t1"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := c.Tenant(ctx, id)
			if err == nil && got.DisplayName != "t1" {
				err = fmt.Errorf("tenant %+v", got)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	c.stmts.mu.RLock()
	after := len(c.stmts.m)
	c.stmts.mu.RUnlock()
	if after > warmed+2 { // CreateTenant's exec is not cached; Tenant's read was warmed
		t.Errorf("%d statements after one write and 16 equal reads, %d at open", after, warmed)
	}
	for i := range stmtCacheMax + 10 {
		var n int
		if err := c.r().row(ctx, fmt.Sprintf("SELECT %d", i)).Scan(&n); err != nil || n != i {
			t.Fatalf("SELECT %d = %d, %v", i, n, err)
		}
	}
	c.stmts.mu.RLock()
	full := len(c.stmts.m)
	c.stmts.mu.RUnlock()
	if full != stmtCacheMax {
		t.Errorf("%d cached statements, want the bound %d", full, stmtCacheMax)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if len(c.stmts.m) != 0 {
		t.Errorf("%d statements left after Close", len(c.stmts.m))
	}
}

// TestStmtCacheWarmsQueryPath checks that a reopened catalog answers the
// query path's first lookups of an existing workspace (workspace, its tables
// and functions) with statements prepared at open, not by the first query.
func TestStmtCacheWarmsQueryPath(t *testing.T) {
	ctx := context.Background()
	c, path := openTest(t)
	b, err := c.Bootstrap(ctx, BootstrapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	c, err = Open(ctx, Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.stmts.mu.RLock()
	warmed := len(c.stmts.m)
	c.stmts.mu.RUnlock()
	tables, err := c.WorkspaceTables(ctx, b.Workspace.CustomerID)
	if err != nil || len(tables) == 0 {
		t.Fatalf("WorkspaceTables: %d tables, %v", len(tables), err)
	}
	if _, err := c.WorkspaceFunctions(ctx, b.Workspace.CustomerID); err != nil {
		t.Fatal(err)
	}
	c.stmts.mu.RLock()
	after := len(c.stmts.m)
	c.stmts.mu.RUnlock()
	if after != warmed {
		t.Errorf("%d statements prepared at open, %d after the first workspace lookups: the query path was not warmed", warmed, after)
	}
}

// TestWarmPages checks the page warm-up: a small catalog is read on the
// warmed connections and left usable (no transaction kept open: a write
// right after it commits at once, and reads see it); a catalog larger than
// maxWarmPagesBytes is not read.
func TestWarmPages(t *testing.T) {
	c, _ := openTest(t)
	ctx := context.Background()
	size, read, err := c.WarmPages(ctx)
	if err != nil || !read || size <= 0 || size > maxWarmPagesBytes {
		t.Fatalf("WarmPages = %d, %v, %v; want the file's size, read, nil", size, read, err)
	}
	const id = "21111111-2222-4333-8444-555555555555"
	wctx, cancel := context.WithTimeout(ctx, time.Second) // under the busy timeout: a kept transaction would block it
	defer cancel()
	if _, err := c.CreateTenant(wctx, Tenant{ID: id, DisplayName: "after warm"}); err != nil {
		t.Fatalf("write after WarmPages: %v", err)
	}
	for range warmConns + 1 {
		if got, err := c.Tenant(ctx, id); err != nil || got.DisplayName != "after warm" {
			t.Fatalf("read after WarmPages = %+v, %v", got, err)
		}
	}
	if _, err := c.sql.ExecContext(ctx, `CREATE TABLE warm_pad (b BLOB)`); err != nil {
		t.Fatal(err)
	}
	if _, err := c.sql.ExecContext(ctx, `INSERT INTO warm_pad VALUES (zeroblob(?))`, maxWarmPagesBytes+1); err != nil {
		t.Fatal(err)
	}
	size, read, err = c.WarmPages(ctx)
	if err != nil || read || size <= maxWarmPagesBytes {
		t.Fatalf("WarmPages of a large catalog = %d, %v, %v; want its size, not read, nil", size, read, err)
	}
}
