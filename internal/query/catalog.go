package query

import (
	"context"
	"slices"

	"custos/internal/catalog"
	"custos/internal/store"
)

// Catalog is what the query API reads from the catalog; *catalog.DB
// implements it.
type Catalog interface {
	WorkspaceByCustomerID(ctx context.Context, customerID string) (catalog.Workspace, error)
	WorkspaceTables(ctx context.Context, customerID string) ([]catalog.Table, error)
}

// CatalogWorkspaces adapts the catalog to Workspaces. Safe for concurrent
// use if C is. Content, when set, opens the sealed queries of workspace
// functions (saved searches with a function alias); without it queries see
// no workspace functions.
type CatalogWorkspaces struct {
	C       Catalog
	Content ContentOpener
}

var (
	_ Workspaces = CatalogWorkspaces{}
	_ Catalog    = (*catalog.DB)(nil)
)

// WorkspaceByCustomerID implements Workspaces.
func (c CatalogWorkspaces) WorkspaceByCustomerID(ctx context.Context, customerID string) (Workspace, error) {
	w, err := c.C.WorkspaceByCustomerID(ctx, customerID)
	if err != nil {
		return Workspace{}, err
	}
	return Workspace{CustomerID: w.CustomerID, ResourceID: w.ID()}, nil
}

// schemaCatalog is a Catalog that also serves the query schemas of a
// workspace's tables (cachedCatalog, which computes them once per entry).
type schemaCatalog interface {
	WorkspaceSchemas(ctx context.Context, customerID string) (map[string]store.Schema, error)
}

// TableSchemas implements Workspaces with the schemas queries see.
func (c CatalogWorkspaces) TableSchemas(ctx context.Context, customerID string) (map[string]store.Schema, error) {
	if sc, ok := c.C.(schemaCatalog); ok {
		return sc.WorkspaceSchemas(ctx, customerID)
	}
	ts, err := c.C.WorkspaceTables(ctx, customerID)
	if err != nil {
		return nil, err
	}
	return querySchemas(ts), nil
}

// querySchemas maps each table's name to its query schema, each clipped to
// its length (an append to one copies).
func querySchemas(ts []catalog.Table) map[string]store.Schema {
	out := make(map[string]store.Schema, len(ts))
	for i := range ts {
		out[ts[i].Name] = slices.Clip(ts[i].QuerySchema())
	}
	return out
}
