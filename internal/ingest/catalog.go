package ingest

import (
	"context"
	"fmt"
	"strings"

	"custos/internal/catalog"
	"custos/internal/store"
)

// Catalog is what the ingestion API reads from the catalog; *catalog.DB
// implements it.
type Catalog interface {
	DataCollectionRuleByImmutableID(ctx context.Context, immutableID string) (catalog.DataCollectionRule, error)
	TableByCustomerID(ctx context.Context, customerID, name string) (catalog.Table, error)
	WorkspaceByResourceID(ctx context.Context, id string) (catalog.Workspace, error)
}

// CatalogSource adapts the catalog to Rules, Tables and WorkspaceResolver.
// Safe for concurrent use if c is.
type CatalogSource struct{ C Catalog }

var (
	_ Rules             = CatalogSource{}
	_ Tables            = CatalogSource{}
	_ WorkspaceResolver = CatalogSource{}
	_ Catalog           = (*catalog.DB)(nil)
)

// RuleByImmutableID implements Rules.
func (s CatalogSource) RuleByImmutableID(ctx context.Context, immutableID string) (*Rule, error) {
	d, err := s.C.DataCollectionRuleByImmutableID(ctx, immutableID)
	if err != nil {
		return nil, err
	}
	return RuleFromCatalog(&d)
}

// TableSchema implements Tables with the schema queries see.
func (s CatalogSource) TableSchema(ctx context.Context, workspaceID, table string) (store.Schema, error) {
	t, err := s.C.TableByCustomerID(ctx, workspaceID, table)
	if err != nil {
		return nil, err
	}
	return t.QuerySchema(), nil
}

// WorkspaceIDByResourceID implements WorkspaceResolver.
func (s CatalogSource) WorkspaceIDByResourceID(ctx context.Context, resourceID string) (string, error) {
	w, err := s.C.WorkspaceByResourceID(ctx, resourceID)
	if err != nil {
		return "", err
	}
	return w.CustomerID, nil
}

// RuleFromCatalog converts a catalog rule to the ingestion view of it.
func RuleFromCatalog(d *catalog.DataCollectionRule) (*Rule, error) {
	p := &d.Properties
	r := &Rule{
		ResourceID:   d.ID(),
		ImmutableID:  d.ImmutableID,
		ETag:         d.ETag,
		Streams:      make(map[string]store.Schema, len(p.StreamDeclarations)),
		Destinations: map[string]Destination{},
	}
	for name, decl := range p.StreamDeclarations {
		schema := make(store.Schema, 0, len(decl.Columns))
		for _, c := range decl.Columns {
			t, ok := store.ParseColumnType(strings.ToLower(c.Type))
			if !ok {
				return nil, fmt.Errorf("rule %s: stream %s: column %s: unknown type %q", d.ImmutableID, name, c.Name, c.Type)
			}
			schema = append(schema, store.Column{Name: c.Name, Type: t})
		}
		r.Streams[name] = schema
	}
	if p.Destinations != nil {
		for _, la := range p.Destinations.LogAnalytics {
			r.Destinations[la.Name] = Destination{Name: la.Name, WorkspaceResourceID: la.WorkspaceResourceID, WorkspaceID: la.WorkspaceID}
		}
	}
	for _, f := range p.DataFlows {
		r.DataFlows = append(r.DataFlows, DataFlow{Streams: f.Streams, Destinations: f.Destinations, TransformKQL: f.TransformKql, OutputStream: f.OutputStream})
	}
	r.addBuiltinStreams()
	return r, nil
}
