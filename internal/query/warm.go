package query

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"custos/internal/store"
)

// MaxWarmWorkspaces bounds how many workspaces Warm reads: a catalog with
// more still answers, its other workspaces' first queries read the catalog
// themselves.
const MaxWarmWorkspaces = 64

// WarmReport says what Warm did.
type WarmReport struct {
	Workspaces int           // workspaces whose catalog entries were read into the cache
	Compiled   bool          // a warm-up query ran through the compiler and the engine
	Took       time.Duration // wall time of Warm
}

// Warm prepares a new process for its first queries, before the server
// accepts them: for each of the catalog's workspaces (up to
// MaxWarmWorkspaces) it reads what a query of that workspace reads from the
// catalog besides the caller's own permissions — the workspace, its table
// schemas, its stored functions, its audit destinations and the network
// gate's answer — into the caches the queries use, under their usual
// generation and age rules (so an entry Warm read expires like any other;
// what stays is a warm process: statements, decoders and code paths run
// once). Then it runs one query over an empty time range through the
// compiler and the engine, which reads no rows. Nothing about a caller is
// read or cached: authentication, RBAC, table access and the audit of a real
// query stay on every request. It returns at ctx's end with what it did;
// errors of single workspaces are skipped (their first query reads them
// itself and reports them), the error of listing the workspaces is returned.
func (a *API) Warm(ctx context.Context) (WarmReport, error) {
	start := time.Now()
	rep := WarmReport{}
	defer func() { rep.Took = time.Since(start) }()
	cw, ok := a.opts.Workspaces.(CatalogWorkspaces)
	if !ok {
		return rep, nil
	}
	rc, ok := cw.C.(resolverCatalog)
	if !ok {
		return rep, nil
	}
	all, err := rc.AllWorkspaces(ctx)
	if err != nil {
		rep.Took = time.Since(start)
		return rep, fmt.Errorf("warm: list workspaces: %w", err)
	}
	if len(all) > MaxWarmWorkspaces {
		all = all[:MaxWarmWorkspaces]
	}
	var sample struct {
		ws     Workspace
		tables map[string]store.Schema
	}
	for _, cws := range all {
		if ctx.Err() != nil {
			break
		}
		ws, err := cw.WorkspaceByCustomerID(ctx, cws.CustomerID)
		if err != nil {
			continue
		}
		tables, err := cw.TableSchemas(ctx, ws.CustomerID)
		if err != nil {
			continue
		}
		_, _ = a.storedFunctions(ctx, ws)
		if a.opts.NetworkGate != nil {
			_ = a.opts.NetworkGate(ctx, ws) // caches an open workspace's answer; a closed one is asked again
		}
		if l, ok := a.opts.Auditor.(*LAQueryLogs); ok {
			_, _ = l.destinations(ctx, ws.ResourceID)
		}
		rep.Workspaces++
		if sample.tables == nil && len(tables) > 0 {
			sample.ws, sample.tables = ws, tables
		}
	}
	if sample.tables != nil && ctx.Err() == nil {
		rep.Compiled = a.warmQuery(ctx, sample.ws, sample.tables) == nil
	}
	rep.Took = time.Since(start)
	return rep, nil
}

// warmRange is the time range of the warm-up query: its first tick, with
// the query's own `TimeGenerated >= ago(1h)` an empty range, so the store
// selects no block. (The zero TimeRange would mean all time.)
var warmRange = store.TimeRange{From: 0, To: 1}

// warmQuery runs a `summarize count() by bin(TimeGenerated, 1h)` over one
// table of ws restricted to warmRange: the compiler, the planner and the
// engine's scan, filter and aggregation run once without reading data.
func (a *API) warmQuery(ctx context.Context, ws Workspace, tables map[string]store.Schema) error {
	names := slices.Sorted(maps.Keys(tables))
	name := ""
	for _, n := range names {
		if tables[n].Index("TimeGenerated") >= 0 && isPlainName(n) {
			name = n
			break
		}
	}
	if name == "" {
		return fmt.Errorf("warm: no table with TimeGenerated in %s", ws.CustomerID)
	}
	_, err := a.opts.Executor.Execute(ctx, Exec{
		Query:       name + " | where TimeGenerated >= ago(1h) | summarize count() by bin(TimeGenerated, 1h)",
		Tables:      tables,
		WorkspaceID: ws.CustomerID,
		Timespan:    warmRange,
		Now:         a.opts.Now(),
	})
	return err
}

// isPlainName reports whether a table name can be written in a query as it
// is (letters, digits, underscores; not starting with a digit).
func isPlainName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool {
		return !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) < 0
}
