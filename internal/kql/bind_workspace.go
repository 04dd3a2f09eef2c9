package kql

import (
	"fmt"

	"custos/internal/store"
)

// WorkspaceTables is another workspace as the caller may read it: its ID
// (customerId), its tables (only those the caller may read) and the row
// conditions that apply to them.
type WorkspaceTables struct {
	ID            string
	Tables        Catalog
	RowConditions map[string][]string
}

// WorkspaceCatalog is implemented by catalogs that can resolve other
// workspaces for workspace("name").Table. Workspace resolves a workspace
// name, customerId or ARM resource ID; ok is false when it does not exist
// or the caller may not read it (the two are not told apart).
type WorkspaceCatalog interface {
	Workspace(ref string) (WorkspaceTables, bool)
}

// isWorkspaceTable reports whether e is workspace("x").Table.
func isWorkspaceTable(e *Member) bool {
	c, ok := e.X.(*Call)
	return ok && c.Target == nil && c.Name.Name == "workspace"
}

// bindWorkspaceTable binds workspace("x").Table: a scan of the other
// workspace's table, with that workspace's row conditions.
func (b *binder) bindWorkspaceTable(e *Member) (PlanNode, error) {
	c := e.X.(*Call)
	if len(c.Args) != 1 {
		return nil, semErr(c, "workspace() expects one workspace name, ID or resource ID")
	}
	l, ok := unparen(c.Args[0]).(*Literal)
	if !ok || l.Type != store.TypeString {
		return nil, semErr(c, "workspace() expects a constant string")
	}
	wc, ok := b.cat.(WorkspaceCatalog)
	if !ok {
		return nil, semErr(c, "cross-workspace queries are not available here")
	}
	ws, ok := wc.Workspace(l.Str)
	if !ok {
		return nil, semErr(c, "workspace '%s' was not found or you do not have access to it", l.Str)
	}
	schema, ok := ws.Tables.Table(e.Name.Name)
	if !ok {
		return nil, semErr(e.Name, "unknown table '%s' in workspace '%s'", e.Name.Name, l.Str)
	}
	var n PlanNode = &Scan{Table: e.Name.Name, TableSchema: schema, Workspace: ws.ID}
	for _, cond := range ws.RowConditions[e.Name.Name] {
		x, err := ParseExpr(cond)
		if err != nil {
			return nil, fmt.Errorf("workspace %s table %s: %w: %v", ws.ID, e.Name.Name, ErrRowCondition, err)
		}
		sub := &binder{cat: MapCatalog(nil), lets: map[string]letValue{}}
		pred, err := sub.bindScalar(x, scopeOf(schema))
		if err != nil {
			return nil, fmt.Errorf("workspace %s table %s: %w: %v", ws.ID, e.Name.Name, ErrRowCondition, err)
		}
		if pred.Type() != store.TypeBool {
			return nil, fmt.Errorf("workspace %s table %s: %w: the condition is %s, not bool", ws.ID, e.Name.Name, ErrRowCondition, pred.Type())
		}
		n = &Filter{Input: n, Pred: pred}
	}
	return n, nil
}
