package kql

import (
	"fmt"
	"slices"

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
	return b.scanIn(ws, e.Name.Name, schema)
}

// scanIn scans table of workspace ws, with ws's row conditions for it.
func (b *binder) scanIn(ws WorkspaceTables, table string, schema store.Schema) (PlanNode, error) {
	var n PlanNode = &Scan{Table: table, TableSchema: schema, Workspace: ws.ID}
	for _, cond := range ws.RowConditions[table] {
		x, err := ParseExpr(cond)
		if err != nil {
			return nil, fmt.Errorf("workspace %s table %s: %w: %v", ws.ID, table, ErrRowCondition, err)
		}
		sub := &binder{cat: MapCatalog(nil), lets: map[string]letValue{}}
		pred, err := sub.bindScalar(x, scopeOf(schema))
		if err != nil {
			return nil, fmt.Errorf("workspace %s table %s: %w: %v", ws.ID, table, ErrRowCondition, err)
		}
		if pred.Type() != store.TypeBool {
			return nil, fmt.Errorf("workspace %s table %s: %w: the condition is %s, not bool", ws.ID, table, ErrRowCondition, pred.Type())
		}
		n = &Filter{Input: n, Pred: pred}
	}
	return n, nil
}

// hasTable reports whether name is a table of the query's workspace or of
// one of its additional workspaces (BindOptions.Workspaces).
func (b *binder) hasTable(name string) bool {
	if _, ok := b.cat.Table(name); ok {
		return true
	}
	for _, ws := range b.opts.Workspaces {
		if _, ok := ws.Tables.Table(name); ok {
			return true
		}
	}
	return false
}

// tableNames lists the tables of the query's workspace and of its
// additional workspaces (those whose catalog can list its tables), each
// once, sorted, for table wildcards such as union *.
func (b *binder) tableNames(primary TableLister) []string {
	seen := map[string]bool{}
	var names []string
	add := func(l TableLister) {
		for _, n := range l.TableNames() {
			if !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
	}
	add(primary)
	for _, ws := range b.opts.Workspaces {
		if l, ok := ws.Tables.(TableLister); ok {
			add(l)
		}
	}
	slices.Sort(names)
	return names
}

// scanTable reads a table by name: in the query's workspace, and with
// additional workspaces, the union of the table in every workspace that
// has it (columns aligned by name, as union does).
func (b *binder) scanTable(n Node, name string) (PlanNode, error) {
	var inputs []PlanNode
	if schema, ok := b.cat.Table(name); ok {
		s, err := b.scan(name, schema)
		if err != nil {
			return nil, err
		}
		inputs = append(inputs, s)
	}
	for _, ws := range b.opts.Workspaces {
		if schema, ok := ws.Tables.Table(name); ok {
			s, err := b.scanIn(ws, name, schema)
			if err != nil {
				return nil, err
			}
			inputs = append(inputs, s)
		}
	}
	switch len(inputs) {
	case 0:
		return nil, semErr(n, "unknown table '%s'", name)
	case 1:
		return inputs[0], nil
	}
	var out store.Schema
	for _, in := range inputs {
		for _, c := range in.Schema() {
			if i := out.Index(c.Name); i >= 0 {
				if out[i].Type != c.Type {
					return nil, semErr(n, "table '%s': column '%s' is %s in one workspace and %s in another", name, c.Name, out[i].Type, c.Type)
				}
				continue
			}
			out = append(out, c)
		}
	}
	nodes := make([]PlanNode, len(inputs))
	for i, in := range inputs {
		schema := in.Schema()
		cols := make([]NamedScalar, 0, len(out))
		for _, c := range out {
			if schema.Index(c.Name) >= 0 {
				cols = append(cols, passthrough(c))
			} else {
				cols = append(cols, NamedScalar{Name: c.Name, X: &Const{V: NullValue(c.Type)}})
			}
		}
		nodes[i] = &Compute{Input: in, Cols: cols}
	}
	return &UnionAll{Inputs: nodes}, nil
}
