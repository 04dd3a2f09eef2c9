package query

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"custos/internal/catalog"
	"custos/internal/store"
)

// Generational is a catalog that says when anything in it changed:
// *catalog.DB's Generation changes after every write it commits.
type Generational interface {
	Generation() uint64
}

// catalogCacheMaxAge bounds how long an entry is used even when the
// generation did not change: a catalog shared by several processes
// (PostgreSQL) does not see the other processes' writes in its generation.
const catalogCacheMaxAge = 2 * time.Second

// ownedCatalogCacheMaxAge is the bound for a catalog whose generation sees
// every write (allWrites: SQLite, the server's own file). The generation
// alone keeps entries fresh there; the bound only limits how long a missed
// bump could go unnoticed. With 2 s, the query path's warm-up at start
// (Warm) served only queries within 2 s of it, and a quiet server's first
// query read the catalog again (~3-5 ms of a cold request, bench/results/
// coldreq-2026-11-27.md).
const ownedCatalogCacheMaxAge = 5 * time.Minute

// allWrites is a Generational that can say whether its generation sees
// every write (*catalog.DB: GenerationSeesAllWrites).
type allWrites interface {
	GenerationSeesAllWrites() bool
}

// cacheMaxAge returns the entry lifetime for a catalog with generation gen.
func cacheMaxAge(gen Generational) time.Duration {
	if a, ok := gen.(allWrites); ok && a.GenerationSeesAllWrites() {
		return ownedCatalogCacheMaxAge
	}
	return catalogCacheMaxAge
}

// maxCatalogCacheEntries bounds each map of the cache; on overflow it starts
// over.
const maxCatalogCacheEntries = 4096

// cachedCatalog is a Catalog that reads each workspace, table list and
// function list once and reuses it until the catalog's generation changes
// (any committed write: a table created, changed or deleted, a workspace
// deleted, a saved search changed) or its maximum age passes (cacheMaxAge). Every query
// otherwise prepared and ran three SQL statements before reading any data.
// It caches what the catalog says, never an authorization: RBAC, table
// access and row conditions are still decided per request. Errors are not
// cached. Safe for concurrent use.
type cachedCatalog struct {
	c      Catalog
	gen    Generational
	maxAge time.Duration // cacheMaxAge(gen)
	now    func() time.Time

	mu     sync.Mutex // guards the fields below
	at     uint64     // generation the entries were read under
	wss    map[string]cacheEntry[catalog.Workspace]
	tables map[string]cacheEntry[[]catalog.Table]
	funcs  map[string]cacheEntry[[]catalog.SavedSearch]
	dests  map[string]cacheEntry[[]string] // LAQueryLogs's audit destinations
	// schemas holds each workspace's query schemas, computed from its
	// table list once per entry (every query used to recompute every
	// table's schema: ~40 KB and ~25 µs per request with the standard
	// tables). Its slices are clipped and never written.
	schemas map[string]cacheEntry[map[string]store.Schema]
}

type cacheEntry[V any] struct {
	v    V
	read time.Time
}

var (
	_ Catalog         = (*cachedCatalog)(nil)
	_ functionCatalog = (*cachedCatalog)(nil)
	_ resolverCatalog = (*cachedCatalog)(nil)
	_ schemaCatalog   = (*cachedCatalog)(nil)
)

func newCachedCatalog(c Catalog, gen Generational, now func() time.Time) *cachedCatalog {
	return &cachedCatalog{c: c, gen: gen, maxAge: cacheMaxAge(gen), now: now, wss: map[string]cacheEntry[catalog.Workspace]{},
		tables: map[string]cacheEntry[[]catalog.Table]{}, funcs: map[string]cacheEntry[[]catalog.SavedSearch]{},
		dests: map[string]cacheEntry[[]string]{}, schemas: map[string]cacheEntry[map[string]store.Schema]{}}
}

// current returns the generation to read under, dropping every entry read
// under an older one. The caller holds m.mu.
func (m *cachedCatalog) current() uint64 {
	g := m.gen.Generation()
	if g != m.at {
		clear(m.wss)
		clear(m.tables)
		clear(m.funcs)
		clear(m.dests)
		clear(m.schemas)
		m.at = g
	}
	return g
}

// cached serves key from entries, or reads it with load and remembers it if
// the generation did not change meanwhile. The generation is read before
// the data, so a write committing in between leaves nothing stale behind.
func cached[V any](m *cachedCatalog, entries map[string]cacheEntry[V], key string, load func() (V, error)) (V, error) {
	m.mu.Lock()
	g := m.current()
	if e, ok := entries[key]; ok && m.now().Sub(e.read) < m.maxAge {
		m.mu.Unlock()
		return e.v, nil
	}
	m.mu.Unlock()
	read := m.now()
	v, err := load()
	if err != nil {
		return v, err
	}
	m.mu.Lock()
	if m.current() == g {
		if len(entries) >= maxCatalogCacheEntries {
			clear(entries)
		}
		entries[key] = cacheEntry[V]{v: v, read: read}
	}
	m.mu.Unlock()
	return v, nil
}

// WorkspaceByCustomerID implements Catalog.
func (m *cachedCatalog) WorkspaceByCustomerID(ctx context.Context, customerID string) (catalog.Workspace, error) {
	return cached(m, m.wss, customerID, func() (catalog.Workspace, error) { return m.c.WorkspaceByCustomerID(ctx, customerID) })
}

// WorkspaceTables implements Catalog. The slice is the caller's.
func (m *cachedCatalog) WorkspaceTables(ctx context.Context, customerID string) ([]catalog.Table, error) {
	ts, err := cached(m, m.tables, customerID, func() ([]catalog.Table, error) { return m.c.WorkspaceTables(ctx, customerID) })
	return slices.Clone(ts), err
}

// WorkspaceSchemas implements schemaCatalog: the query schema of every table
// of the workspace (catalog.Table.QuerySchema), read and computed once per
// cache entry, under the same generation and age rules as the table list.
// The map is the caller's; its schemas are shared, clipped so that an append
// copies, and must not be written in place.
func (m *cachedCatalog) WorkspaceSchemas(ctx context.Context, customerID string) (map[string]store.Schema, error) {
	s, err := cached(m, m.schemas, customerID, func() (map[string]store.Schema, error) {
		ts, err := m.c.WorkspaceTables(ctx, customerID)
		if err != nil {
			return nil, err
		}
		return querySchemas(ts), nil
	})
	return maps.Clone(s), err
}

// WorkspaceFunctions implements functionCatalog (none when the catalog has
// no functions). The slice is the caller's.
func (m *cachedCatalog) WorkspaceFunctions(ctx context.Context, customerID string) ([]catalog.SavedSearch, error) {
	fc, ok := m.c.(functionCatalog)
	if !ok {
		return nil, nil
	}
	fs, err := cached(m, m.funcs, customerID, func() ([]catalog.SavedSearch, error) { return fc.WorkspaceFunctions(ctx, customerID) })
	return slices.Clone(fs), err
}

// WorkspaceByResourceID implements resolverCatalog, uncached (cross-workspace
// references by resource ID are rare).
func (m *cachedCatalog) WorkspaceByResourceID(ctx context.Context, id string) (catalog.Workspace, error) {
	rc, ok := m.c.(resolverCatalog)
	if !ok {
		return catalog.Workspace{}, ErrWorkspaceNotFound
	}
	return rc.WorkspaceByResourceID(ctx, id)
}

// AllWorkspaces implements resolverCatalog, uncached.
func (m *cachedCatalog) AllWorkspaces(ctx context.Context) ([]catalog.Workspace, error) {
	rc, ok := m.c.(resolverCatalog)
	if !ok {
		return nil, ErrWorkspaceNotFound
	}
	return rc.AllWorkspaces(ctx)
}
