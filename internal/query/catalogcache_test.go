package query

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"custos/internal/catalog"
	"custos/internal/store"
)

// countingCatalog counts the reads that reach the real catalog.
type countingCatalog struct {
	*catalog.DB
	reads atomic.Int64
}

func (c *countingCatalog) WorkspaceTables(ctx context.Context, id string) ([]catalog.Table, error) {
	c.reads.Add(1)
	return c.DB.WorkspaceTables(ctx, id)
}

func (c *countingCatalog) WorkspaceByCustomerID(ctx context.Context, id string) (catalog.Workspace, error) {
	c.reads.Add(1)
	return c.DB.WorkspaceByCustomerID(ctx, id)
}

// TestCachedCatalog checks the query API's catalog cache against a real
// catalog: repeated reads are served from the cache, any catalog write (a
// new table) is seen by the next read, entries expire after
// ownedCatalogCacheMaxAge (catalogCacheMaxAge for a catalog shared by
// processes), errors are not cached, and callers cannot change what
// the cache holds.
func TestCachedCatalog(t *testing.T) {
	ctx := context.Background()
	cat, err := catalog.Open(ctx, catalog.Options{Path: filepath.Join(t.TempDir(), "catalog.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	boot, err := cat.Bootstrap(ctx, catalog.BootstrapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cc := &countingCatalog{DB: cat}
	now := time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)
	c := newCachedCatalog(cc, cat, func() time.Time { return now })
	ws := boot.Workspace.CustomerID

	first, err := c.WorkspaceTables(ctx, ws)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WorkspaceByCustomerID(ctx, ws); err != nil {
		t.Fatal(err)
	}
	before := cc.reads.Load()
	for range 5 {
		ts, err := c.WorkspaceTables(ctx, ws)
		if err != nil || len(ts) != len(first) {
			t.Fatalf("cached read: %d tables, %v; want %d", len(ts), err, len(first))
		}
		ts[0].Name = "Changed_CL" // the caller's copy
		if _, err := c.WorkspaceByCustomerID(ctx, ws); err != nil {
			t.Fatal(err)
		}
	}
	if n := cc.reads.Load() - before; n != 0 {
		t.Fatalf("%d catalog reads for cached entries; want 0", n)
	}
	if ts, _ := c.WorkspaceTables(ctx, ws); ts[0].Name != first[0].Name {
		t.Fatalf("a caller changed the cached table list: %q", ts[0].Name)
	}

	// A write to the catalog: the next read sees it.
	if _, _, err := cat.PutTable(ctx, boot.Subscription.ID, boot.ResourceGroup.Name, boot.Workspace.Name, catalog.TableSpec{
		Name: "New_CL", Columns: []catalog.Column{{Name: "TimeGenerated", Type: store.TypeDatetime}, {Name: "A", Type: store.TypeString}},
	}, catalog.Precondition{}, catalog.Actor{ID: "test"}); err != nil {
		t.Fatal(err)
	}
	ts, err := c.WorkspaceTables(ctx, ws)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, tb := range ts {
		found = found || tb.Name == "New_CL"
	}
	if !found || len(ts) != len(first)+1 {
		t.Fatalf("after PutTable: %d tables (New_CL found: %v); want %d", len(ts), found, len(first)+1)
	}

	// The SQLite catalog's generation sees every write, so an entry outlives
	// catalogCacheMaxAge (the bound for a catalog shared by processes) and
	// expires only after ownedCatalogCacheMaxAge.
	if !cat.GenerationSeesAllWrites() {
		t.Fatal("the SQLite catalog says its generation does not see every write")
	}
	before = cc.reads.Load()
	now = now.Add(catalogCacheMaxAge)
	if _, err := c.WorkspaceTables(ctx, ws); err != nil {
		t.Fatal(err)
	}
	if n := cc.reads.Load() - before; n != 0 {
		t.Fatalf("%d catalog reads %v after the entry was read; want 0 (the SQLite catalog's generation sees every write)", n, catalogCacheMaxAge)
	}
	now = now.Add(ownedCatalogCacheMaxAge)
	if _, err := c.WorkspaceTables(ctx, ws); err != nil {
		t.Fatal(err)
	}
	if cc.reads.Load() == before {
		t.Fatal("an entry older than ownedCatalogCacheMaxAge was served")
	}

	// A catalog whose generation does not see every write (one shared by
	// processes): entries expire after catalogCacheMaxAge.
	shared := newCachedCatalog(cc, sharedGeneration{cat}, func() time.Time { return now })
	if _, err := shared.WorkspaceTables(ctx, ws); err != nil {
		t.Fatal(err)
	}
	before = cc.reads.Load()
	now = now.Add(catalogCacheMaxAge - time.Millisecond)
	if _, err := shared.WorkspaceTables(ctx, ws); err != nil || cc.reads.Load() != before {
		t.Fatalf("shared catalog: a fresh entry was read again (%v)", err)
	}
	now = now.Add(time.Millisecond)
	if _, err := shared.WorkspaceTables(ctx, ws); err != nil {
		t.Fatal(err)
	}
	if cc.reads.Load() == before {
		t.Fatal("shared catalog: an entry older than catalogCacheMaxAge was served")
	}

	// Errors are not cached: an unknown workspace is asked every time.
	before = cc.reads.Load()
	for range 2 {
		if _, err := c.WorkspaceByCustomerID(ctx, "00000000-0000-4000-8000-000000000000"); err == nil {
			t.Fatal("unknown workspace found")
		}
	}
	if n := cc.reads.Load() - before; n != 2 {
		t.Fatalf("%d catalog reads for two lookups of an unknown workspace; want 2", n)
	}

	// The query audit's destinations: cached, and a new diagnostic setting
	// (a catalog write) is seen by the next query's audit.
	lq, err := NewLAQueryLogs(LAQueryLogsOptions{Destinations: cat, Store: nopAppendable{}})
	if err != nil {
		t.Fatal(err)
	}
	wsID := boot.Workspace.ID()
	if d, err := lq.destinations(ctx, wsID); err != nil || len(d) != 0 {
		t.Fatalf("destinations before any setting: %v, %v", d, err)
	}
	if _, _, err := cat.PutDiagnosticSetting(ctx, catalog.DiagnosticSetting{ResourceID: wsID, Name: "audit", WorkspaceID: wsID,
		Logs: []catalog.DiagnosticLog{{Category: "Audit", Enabled: true}}}, catalog.Actor{ID: "test"}); err != nil {
		t.Fatal(err)
	}
	if d, err := lq.destinations(ctx, wsID); err != nil || len(d) != 1 || d[0] != ws {
		t.Fatalf("destinations after the setting: %v, %v; want [%s]", d, err, ws)
	}

	// New wraps a CatalogWorkspaces over *catalog.DB, nothing else.
	if _, ok := withCatalogCache(CatalogWorkspaces{C: cat}).(CatalogWorkspaces).C.(*cachedCatalog); !ok {
		t.Fatal("CatalogWorkspaces over *catalog.DB is not cached")
	}
	if _, ok := withCatalogCache(CatalogWorkspaces{C: cc}).(CatalogWorkspaces).C.(*cachedCatalog); !ok {
		t.Fatal("CatalogWorkspaces over a catalog with every method is not cached")
	}
}

// nopAppendable is a store.Appendable that is never reached: destinations
// does not write.
type nopAppendable struct{}

func (nopAppendable) Appender(context.Context, store.TableRef) (store.Appender, error) {
	return nil, errors.New("not used")
}

// TestCachedSchemas checks the query schemas the cache serves through
// CatalogWorkspaces.TableSchemas against a real catalog: the same schemas as
// the uncached adapter computes, one catalog read for repeated queries, a
// new table (a catalog write) seen by the next query, and callers that
// change their map or append to a schema change nothing the cache holds.
func TestCachedSchemas(t *testing.T) {
	ctx := context.Background()
	cat, err := catalog.Open(ctx, catalog.Options{Path: filepath.Join(t.TempDir(), "catalog.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	boot, err := cat.Bootstrap(ctx, catalog.BootstrapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ws := boot.Workspace.CustomerID
	cc := &countingCatalog{DB: cat}
	now := time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)
	cached := CatalogWorkspaces{C: newCachedCatalog(cc, cat, func() time.Time { return now })}
	plain := CatalogWorkspaces{C: cat}

	want, err := plain.TableSchemas(ctx, ws)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) == 0 {
		t.Fatal("a bootstrapped workspace has no tables")
	}
	before := cc.reads.Load()
	for i := range 5 {
		got, err := cached.TableSchemas(ctx, ws)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("read %d: %d tables; want %d", i, len(got), len(want))
		}
		for name, s := range want {
			if !slices.Equal(got[name], s) {
				t.Fatalf("read %d: schema of %s = %v; want %v", i, name, got[name], s)
			}
		}
		// What a caller does with its copy stays with it.
		for name, s := range got {
			_ = append(s, store.Column{Name: "Extra", Type: store.TypeString})
			delete(got, name)
		}
		got["Mine_CL"] = store.Schema{}
	}
	if n := cc.reads.Load() - before; n != 1 {
		t.Fatalf("%d catalog reads for five queries; want 1", n)
	}

	if _, _, err := cat.PutTable(ctx, boot.Subscription.ID, boot.ResourceGroup.Name, boot.Workspace.Name, catalog.TableSpec{
		Name: "New_CL", Columns: []catalog.Column{{Name: "TimeGenerated", Type: store.TypeDatetime}, {Name: "A", Type: store.TypeString}},
	}, catalog.Precondition{}, catalog.Actor{ID: "test"}); err != nil {
		t.Fatal(err)
	}
	got, err := cached.TableSchemas(ctx, ws)
	if err != nil {
		t.Fatal(err)
	}
	s, ok := got["New_CL"]
	if !ok || len(got) != len(want)+1 || s.Index("A") < 0 || s.Index("_ResourceId") < 0 {
		t.Fatalf("after PutTable: %d tables, New_CL = %v; want %d tables and New_CL with A and the system columns", len(got), s, len(want)+1)
	}
	if _, ok := got["Mine_CL"]; ok {
		t.Fatal("a caller's change to its map reached the cache")
	}
}

// sharedGeneration is a catalog's generation without
// GenerationSeesAllWrites, as a catalog shared by processes would be.
type sharedGeneration struct{ g Generational }

func (s sharedGeneration) Generation() uint64 { return s.g.Generation() }
