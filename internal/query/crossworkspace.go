package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"custos/internal/api"
	"custos/internal/catalog"
	"custos/internal/kql"
	"custos/internal/rbac"
)

// This file resolves what a query reads beyond its own workspace: the
// additional workspaces of the body's "workspaces" member, workspace("x")
// references inside the query, and the workspace's stored functions (saved
// searches with a function alias); it also converts the Custos extension
// "parameters" member.

// WorkspaceResolver is implemented by Workspaces that can resolve a
// workspace reference: a customerId, an ARM resource ID or a workspace
// name. CatalogWorkspaces implements it.
type WorkspaceResolver interface {
	ResolveWorkspace(ctx context.Context, ref string) (Workspace, error)
}

// FunctionSource is implemented by Workspaces that hold workspace functions.
// CatalogWorkspaces implements it when its catalog does.
type FunctionSource interface {
	Functions(ctx context.Context, customerID string) ([]kql.StoredFunction, error)
}

// resolverCatalog is what CatalogWorkspaces needs of the catalog to resolve
// references; *catalog.DB implements it.
type resolverCatalog interface {
	WorkspaceByResourceID(ctx context.Context, id string) (catalog.Workspace, error)
	AllWorkspaces(ctx context.Context) ([]catalog.Workspace, error)
}

// functionCatalog is what CatalogWorkspaces needs of the catalog for
// workspace functions; *catalog.DB implements it.
type functionCatalog interface {
	WorkspaceFunctions(ctx context.Context, customerID string) ([]catalog.SavedSearch, error)
}

// ContentOpener opens customer content sealed under a workspace's key;
// *store.DB implements it. CatalogWorkspaces needs it to read workspace
// functions.
type ContentOpener interface {
	OpenWorkspaceContent(ctx context.Context, workspaceID string, sealed, aad []byte) ([]byte, error)
}

var (
	_ resolverCatalog   = (*catalog.DB)(nil)
	_ functionCatalog   = (*catalog.DB)(nil)
	_ WorkspaceResolver = CatalogWorkspaces{}
	_ FunctionSource    = CatalogWorkspaces{}
)

// ResolveWorkspace implements WorkspaceResolver: a GUID is a customerId, a
// path is an ARM resource ID, anything else a workspace name (which must be
// unique).
func (c CatalogWorkspaces) ResolveWorkspace(ctx context.Context, ref string) (Workspace, error) {
	ref = strings.TrimSpace(ref)
	if w, err := c.WorkspaceByCustomerID(ctx, ref); err == nil {
		return w, nil
	}
	rc, ok := c.C.(resolverCatalog)
	if !ok {
		return Workspace{}, ErrWorkspaceNotFound
	}
	if strings.HasPrefix(ref, "/") {
		w, err := rc.WorkspaceByResourceID(ctx, ref)
		if err != nil {
			return Workspace{}, err
		}
		return Workspace{CustomerID: w.CustomerID, ResourceID: w.ID()}, nil
	}
	all, err := rc.AllWorkspaces(ctx)
	if err != nil {
		return Workspace{}, err
	}
	var found []catalog.Workspace
	for _, w := range all {
		if strings.EqualFold(w.Name, ref) {
			found = append(found, w)
		}
	}
	if len(found) != 1 {
		return Workspace{}, ErrWorkspaceNotFound
	}
	return Workspace{CustomerID: found[0].CustomerID, ResourceID: found[0].ID()}, nil
}

// Functions implements FunctionSource.
func (c CatalogWorkspaces) Functions(ctx context.Context, customerID string) ([]kql.StoredFunction, error) {
	fc, ok := c.C.(functionCatalog)
	if !ok || c.Content == nil {
		return nil, nil
	}
	fs, err := fc.WorkspaceFunctions(ctx, customerID)
	if err != nil {
		return nil, err
	}
	out := make([]kql.StoredFunction, len(fs))
	for i, f := range fs {
		q, err := c.Content.OpenWorkspaceContent(ctx, customerID, f.QuerySealed, catalog.SavedSearchAAD(f.Name))
		if err != nil {
			return nil, fmt.Errorf("open workspace function %s: %w", f.FunctionAlias, err)
		}
		out[i] = kql.StoredFunction{Name: f.FunctionAlias, Params: f.FunctionParameters, Body: string(q)}
	}
	return out, nil
}

// maxWorkspaces bounds the workspaces one query may read (Azure: 100).
const maxWorkspaces = 100

// otherWorkspace resolves ref and checks that the caller may query it; it
// returns the workspace's tables and row conditions as the caller sees them.
func (a *API) otherWorkspace(ctx context.Context, ref string) (Workspace, kql.WorkspaceTables, error) {
	res, ok := a.opts.Workspaces.(WorkspaceResolver)
	if !ok {
		return Workspace{}, kql.WorkspaceTables{}, badArgument("CrossWorkspaceQueryNotSupported", "Cross-workspace queries are not available.")
	}
	w, err := res.ResolveWorkspace(ctx, ref)
	if err != nil {
		if isNotFound(err, ErrWorkspaceNotFound) || errors.Is(err, catalog.ErrNotFound) {
			return Workspace{}, kql.WorkspaceTables{}, workspaceNotFound(ref)
		}
		return Workspace{}, kql.WorkspaceTables{}, fmt.Errorf("resolve workspace %q: %w", truncate(ref, 128), err)
	}
	// The caller needs query access to every workspace it reads. Only an
	// API without Authorizer and TableAccess (tests of the wire shape)
	// skips the check; fail closed otherwise.
	switch {
	case a.opts.Authorizer != nil:
		p, ok := api.PrincipalFrom(ctx)
		if !ok {
			return Workspace{}, kql.WorkspaceTables{}, workspaceNotFound(ref)
		}
		d, err := a.opts.Authorizer.Authorize(ctx, p, ActionRead, rbac.Scope(w.ResourceID))
		if err != nil || !d.Allowed {
			// Not told apart from a missing workspace, as Azure does.
			return Workspace{}, kql.WorkspaceTables{}, workspaceNotFound(ref)
		}
	case a.opts.TableAccess != nil:
		return Workspace{}, kql.WorkspaceTables{}, workspaceNotFound(ref)
	}
	if a.opts.NetworkGate != nil {
		if err := a.opts.NetworkGate(ctx, w); err != nil {
			return Workspace{}, kql.WorkspaceTables{}, err
		}
	}
	ac, err := a.resolveAccess(ctx, w)
	if err != nil {
		return Workspace{}, kql.WorkspaceTables{}, err
	}
	return w, kql.WorkspaceTables{ID: w.CustomerID, Tables: kql.MapCatalog(ac.tables), RowConditions: ac.rowConditions}, nil
}

func workspaceNotFound(ref string) *Error {
	return badArgument("WorkspaceNotFoundError", "Workspace '%s' was not found or you do not have access to it.", truncate(ref, 128))
}

// additionalWorkspaces resolves the body's "workspaces" member; the query's
// own workspace (by any reference) is skipped.
func (a *API) additionalWorkspaces(ctx context.Context, primary Workspace, refs []string) ([]kql.WorkspaceTables, error) {
	if len(refs) > maxWorkspaces {
		return nil, badArgument("TooManyWorkspaces", "A query may read at most %d workspaces.", maxWorkspaces)
	}
	seen := map[string]bool{primary.CustomerID: true}
	var out []kql.WorkspaceTables
	for _, ref := range refs {
		ref = strings.TrimSpace(ref)
		if ref == "" || strings.EqualFold(ref, primary.CustomerID) || strings.EqualFold(ref, primary.ResourceID) {
			continue
		}
		w, tables, err := a.otherWorkspace(ctx, ref)
		if err != nil {
			return nil, err
		}
		if seen[w.CustomerID] {
			continue
		}
		seen[w.CustomerID] = true
		out = append(out, tables)
	}
	return out, nil
}

// workspaceResolver returns the resolver of workspace("x") references of
// one query: resolved lazily, at most maxWorkspaces, cached; a workspace
// that cannot be read is reported as not found.
func (a *API) workspaceResolver(ctx context.Context, primary Workspace, primaryTables kql.WorkspaceTables) func(ref string) (kql.WorkspaceTables, bool) {
	var mu sync.Mutex
	cache := map[string]*kql.WorkspaceTables{}
	return func(ref string) (kql.WorkspaceTables, bool) {
		mu.Lock()
		defer mu.Unlock()
		if w, ok := cache[ref]; ok {
			if w == nil {
				return kql.WorkspaceTables{}, false
			}
			return *w, true
		}
		if len(cache) >= maxWorkspaces {
			return kql.WorkspaceTables{}, false
		}
		if strings.EqualFold(ref, primary.CustomerID) || strings.EqualFold(ref, primary.ResourceID) {
			cache[ref] = &primaryTables
			return primaryTables, true
		}
		_, t, err := a.otherWorkspace(ctx, ref)
		if err != nil {
			cache[ref] = nil
			return kql.WorkspaceTables{}, false
		}
		cache[ref] = &t
		return t, true
	}
}

// storedFunctions returns the workspace's functions, when the Workspaces
// implementation has them.
func (a *API) storedFunctions(ctx context.Context, ws Workspace) (map[string]kql.StoredFunction, error) {
	fs, ok := a.opts.Workspaces.(FunctionSource)
	if !ok {
		return nil, nil
	}
	list, err := fs.Functions(ctx, ws.CustomerID)
	if err != nil {
		return nil, fmt.Errorf("workspace functions of %s: %w", ws.CustomerID, err)
	}
	out := make(map[string]kql.StoredFunction, len(list))
	for _, f := range list {
		out[f.Name] = f
	}
	return out, nil
}

// maxParameters bounds the "parameters" member.
const maxParameters = 256

// parameterTexts converts the "parameters" member (a Custos extension: the
// Log Analytics API has none) to the text form the binder takes: a JSON
// string is its text, other JSON values their JSON text.
func parameterTexts(raw map[string]json.RawMessage) (map[string]string, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	if len(raw) > maxParameters {
		return nil, badArgument("QueryValidationError", "At most %d query parameters are allowed.", maxParameters)
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		var s string
		if err := json.Unmarshal(v, &s); err == nil {
			out[k] = s
			continue
		}
		t := strings.TrimSpace(string(v))
		if t == "null" {
			continue
		}
		out[k] = t
	}
	return out, nil
}
