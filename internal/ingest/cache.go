package ingest

import (
	"context"
	"sync"

	"custos/internal/store"
)

// Generational is a catalog that can say when anything in it changed:
// *catalog.DB's Generation changes after every committed write.
type Generational interface {
	Generation() uint64
}

// CachedSource is CatalogSource with a cache: rules by immutable ID, table
// schemas and workspace IDs are read from the catalog once and reused until
// the catalog's generation changes (any committed write: a table that gains a
// column, a rule that is updated or deleted). A request then costs no catalog
// query at all. Errors are not cached. Safe for concurrent use.
type CachedSource struct {
	src CatalogSource
	gen Generational

	mu      sync.Mutex // guards the fields below
	at      uint64     // generation the entries were read under
	rules   map[string]*Rule
	schemas map[[2]string]store.Schema
	wsIDs   map[string]string
}

// maxCacheEntries bounds each map; on overflow the map starts over.
const maxCacheEntries = 4096

var (
	_ Rules             = (*CachedSource)(nil)
	_ Tables            = (*CachedSource)(nil)
	_ WorkspaceResolver = (*CachedSource)(nil)
)

// NewCachedSource returns a cached view of c, invalidated through gen
// (usually c itself).
func NewCachedSource(c Catalog, gen Generational) *CachedSource {
	return &CachedSource{src: CatalogSource{C: c}, gen: gen,
		rules: map[string]*Rule{}, schemas: map[[2]string]store.Schema{}, wsIDs: map[string]string{}}
}

// current returns the generation to read under, dropping every entry read
// under an older one. The caller holds s.mu.
func (s *CachedSource) current() uint64 {
	g := s.gen.Generation()
	if g != s.at {
		clear(s.rules)
		clear(s.schemas)
		clear(s.wsIDs)
		s.at = g
	}
	return g
}

// lookup serves key from m, or reads it with load and remembers it if the
// generation did not change meanwhile.
func lookup[K comparable, V any](s *CachedSource, m map[K]V, key K, load func() (V, error)) (V, error) {
	s.mu.Lock()
	g := s.current()
	if v, ok := m[key]; ok {
		s.mu.Unlock()
		return v, nil
	}
	s.mu.Unlock()
	v, err := load()
	if err != nil {
		return v, err
	}
	s.mu.Lock()
	if s.current() == g {
		if len(m) >= maxCacheEntries {
			clear(m)
		}
		m[key] = v
	}
	s.mu.Unlock()
	return v, nil
}

// RuleByImmutableID implements Rules. The returned rule is shared: callers
// must not modify it.
func (s *CachedSource) RuleByImmutableID(ctx context.Context, immutableID string) (*Rule, error) {
	return lookup(s, s.rules, immutableID, func() (*Rule, error) { return s.src.RuleByImmutableID(ctx, immutableID) })
}

// TableSchema implements Tables. The returned schema is shared: callers must
// not modify it.
func (s *CachedSource) TableSchema(ctx context.Context, workspaceID, table string) (store.Schema, error) {
	return lookup(s, s.schemas, [2]string{workspaceID, table}, func() (store.Schema, error) {
		return s.src.TableSchema(ctx, workspaceID, table)
	})
}

// WorkspaceIDByResourceID implements WorkspaceResolver.
func (s *CachedSource) WorkspaceIDByResourceID(ctx context.Context, resourceID string) (string, error) {
	return lookup(s, s.wsIDs, resourceID, func() (string, error) { return s.src.WorkspaceIDByResourceID(ctx, resourceID) })
}
