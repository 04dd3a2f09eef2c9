package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"

	"custos/internal/api"
	"custos/internal/arm"
	"custos/internal/engine"
	"custos/internal/ingest"
	"custos/internal/purge"
	"custos/internal/query"
	"custos/internal/rbac"
	"custos/internal/store"
	"custos/internal/workload"
)

// storeDir is the store's directory under the data directory.
const storeDir = "store"

// openDataPlane opens the encrypted store under the platform key, makes sure
// every catalog table exists in it, and builds the KQL engine and the
// ingestion and query APIs on them.
func (s *Server) openDataPlane(ctx context.Context) error {
	// One pool of query worker slots for every query of the process (API
	// queries, log and metric alert rules): the store decodes blocks and
	// the engine processes batches holding a slot, so concurrent queries
	// together use at most query.maxWorkers cores and ingestion, which takes
	// no slot, keeps its share (docs/query.md).
	s.querySlots = workload.New(workload.Options{Slots: s.cfg.Query.MaxWorkers, IngestReserve: s.cfg.Query.IngestReserve})
	st, err := store.Open(store.Options{
		Dir:    filepath.Join(s.cfg.DataDir, storeDir),
		Keys:   s.keys,
		Logger: s.log.With(slog.String("component", "store")),
		Now:    s.now,

		KeyCacheTTL: s.cfg.Keys.CacheTTL, KeyRetryInterval: s.cfg.Keys.RetryInterval,
		OnCommit: s.exportHook.onCommit,

		MemtableBytes:  s.cfg.Store.MemtableBytes,
		MaxMemtableAge: s.cfg.Store.MemtableMaxAge,
		ReadCacheBytes: s.cfg.Query.ReadCacheBytes,
		// The store's 0 is its default; the setting's 0 keeps no blooms.
		BloomCacheBytes: cmp.Or(s.cfg.Query.BloomCacheBytes, -1),
		QuerySlots:      s.querySlots,
	})
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	s.store = st
	s.closers = append(s.closers, st.Close)
	if err := s.openKeys(ctx, st); err != nil {
		return err
	}

	tables, err := s.catalog.AllTables(ctx)
	if err != nil {
		return fmt.Errorf("list catalog tables: %w", err)
	}
	for i := range tables {
		t := &tables[i]
		if err := st.EnsureTable(ctx, t.Ref(), t.StoreSchema(), t.EffectiveTotalRetentionInDays()); err != nil && !errors.Is(err, store.ErrKeyUnavailable) {
			return fmt.Errorf("ensure table %s in workspace %s: %w", t.Name, t.WorkspaceCustomerID, err)
		}
	}
	s.log.Debug("store tables ensured", slog.Int("tables", len(tables)))
	if err := s.openActivity(ctx); err != nil {
		return err
	}

	q := s.cfg.Query
	s.engine = engine.New(engine.Options{
		Logger: s.log.With(slog.String("component", "engine")),
		Clock:  s.now,
		Limits: engine.Limits{
			MaxResultRows: q.MaxResultRows, MaxResultBytes: q.MaxResultBytes, MaxMemoryBytes: q.MaxMemoryBytes,
			Timeout: q.Timeout, MaxTimeout: q.MaxTimeout,
		},
		QuerySlots: s.querySlots,
	})
	src := ingest.NewCachedSource(s.catalog, s.catalog) // rules and schemas cached until the catalog changes
	s.ingest = ingest.New(ingest.Options{
		Rules: src, Tables: src, Workspaces: src, Store: st,
		Logger: s.log.With(slog.String("component", "ingest")),
		Now:    s.now,
	})
	s.purge, err = purge.New(purge.Options{
		Catalog: s.catalog, Store: st, Keys: s.keys,
		Logger: s.log.With(slog.String("component", "purge")),
	})
	if err != nil {
		return fmt.Errorf("purge service: %w", err)
	}
	s.closers = append(s.closers, s.purge.Close) // closed before the store
	if err := s.openExport(ctx); err != nil {
		return fmt.Errorf("data export: %w", err)
	}
	s.arm = arm.New(arm.Options{
		Catalog:           s.catalog,
		Tables:            st,
		Purge:             s.purge,
		Transforms:        engineTransforms{},
		IngestionEndpoint: s.endpoint,
		Logger:            s.log.With(slog.String("component", "arm")),
		Tokens:            s.tokens,
		Authorizer:        s.rbac,
		Now:               s.now,
	})
	audit, err := query.NewLAQueryLogs(query.LAQueryLogsOptions{
		Destinations: s.catalog, Store: st, Logger: s.log.With(slog.String("component", "query-audit")),
	})
	if err != nil {
		return err
	}
	s.query = query.New(query.Options{
		Workspaces:  query.CatalogWorkspaces{C: s.catalog, Content: st},
		Executor:    query.EngineExecutor{Engine: s.engine, Source: st},
		Authorizer:  s.authz,
		TableAccess: s.rbac,
		Auditor:     audit,
		NetworkGate: s.queryNetworkGate,
		Logger:      s.log.With(slog.String("component", "query")),
		DefaultWait: q.Timeout,
		MaxWait:     q.MaxTimeout,
		Now:         s.now,
	})
	return s.openAlerts(ctx)
}

// ingestReserve marks the ingestion routes' requests as ingestion work
// while they are served, so that queries leave query.ingestReserve worker
// slots to them (workload.Pool.Ingest; a no-op without a reserve).
func (s *Server) ingestReserve(routes []api.Route) []api.Route {
	for i := range routes {
		h := routes[i].Handler
		routes[i].Handler = func(w http.ResponseWriter, r *http.Request, d rbac.Decision) {
			end := s.querySlots.Ingest()
			defer end()
			h(w, r, d)
		}
	}
	return routes
}

// apiRoutes returns the routes of every API, in registration order.
func (s *Server) apiRoutes() []api.Route {
	var routes []api.Route
	routes = append(routes, s.arm.Routes()...)
	routes = append(routes, s.arm.ClusterRoutes(s.cmk)...)
	routes = append(routes, s.arm.DataExportRoutes(s.export)...)
	routes = append(routes, s.ingestReserve(s.ingest.Routes())...)
	routes = append(routes, s.query.Routes()...)
	routes = append(routes, arm.NewSavedSearches(arm.SavedSearchOptions{Catalog: s.catalog, Content: s.store,
		Logger: s.log.With(slog.String("component", "arm"))}).Routes()...)
	routes = append(routes, s.query.ResourceRoutes()...)
	routes = append(routes, s.alerts.Routes()...)
	routes = append(routes, s.activityVerifyRoute())
	routes = append(routes, s.quarantineRoute())
	return s.recordActivity(routes)
}

// engineTransforms validates DCR transformations for the control plane with
// the same compiler ingestion runs them with.
type engineTransforms struct{}

func (engineTransforms) CompileTransform(src string, input store.Schema) (store.Schema, error) {
	t, err := engine.CompileTransform(src, input)
	if err != nil {
		return nil, err
	}
	return t.Output(), nil
}
