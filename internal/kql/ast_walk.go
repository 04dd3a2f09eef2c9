package kql

// Inspect walks the tree rooted at n in depth-first order, calling f for
// each node; if f returns false, the children of that node are skipped.
// Nil children are not visited.
func Inspect(n Node, f func(Node) bool) {
	if isNilNode(n) || !f(n) {
		return
	}
	for _, c := range children(n) {
		Inspect(c, f)
	}
}

func isNilNode(n Node) bool {
	if n == nil {
		return true
	}
	switch v := n.(type) {
	case *Ident:
		return v == nil
	case *Literal:
		return v == nil
	case *TypeRef:
		return v == nil
	case *Call:
		return v == nil
	case *Pipeline:
		return v == nil
	case *NamedExpr:
		return v == nil
	}
	return false
}

func exprNodes(xs []Expr) []Node {
	out := make([]Node, 0, len(xs))
	for _, x := range xs {
		if x != nil {
			out = append(out, x)
		}
	}
	return out
}

func optNodes(opts []*OptionArg) []Node {
	out := make([]Node, 0, len(opts))
	for _, o := range opts {
		out = append(out, o)
	}
	return out
}

func namedNodes(list []*NamedExpr) []Node {
	out := make([]Node, 0, len(list))
	for _, ne := range list {
		out = append(out, ne)
	}
	return out
}

func identNodes(ids []*Ident) []Node {
	out := make([]Node, 0, len(ids))
	for _, id := range ids {
		out = append(out, id)
	}
	return out
}

// nodes collects the non-nil nodes among ns.
func nodes(ns ...Node) []Node {
	out := make([]Node, 0, len(ns))
	for _, n := range ns {
		if !isNilNode(n) {
			out = append(out, n)
		}
	}
	return out
}

func typeNode(t *TypeRef) Node {
	if t == nil {
		return nil
	}
	return t
}

func identNode(id *Ident) Node {
	if id == nil {
		return nil
	}
	return id
}

// children returns the direct children of n in source order.
func children(n Node) []Node {
	switch n := n.(type) {
	case *Query:
		out := make([]Node, 0, len(n.Stmts))
		for _, s := range n.Stmts {
			out = append(out, s)
		}
		return out
	case *LetStmt:
		return nodes(identNode(n.Name), n.Value)
	case *SetStmt:
		return nodes(identNode(n.Name), n.Value)
	case *DeclareStmt:
		out := []Node{}
		for _, p := range n.Params {
			out = append(out, p)
		}
		return out
	case *ExprStmt:
		return nodes(n.X)
	case *TypeRef:
		out := []Node{}
		for _, c := range n.Columns {
			out = append(out, c)
		}
		return out
	case *ColumnDecl:
		return nodes(identNode(n.Name), typeNode(n.Type))
	case *Param:
		return nodes(identNode(n.Name), typeNode(n.Type), n.Default)
	case *OptionArg:
		return nodes(n.Value)
	case *NamedExpr:
		return append(identNodes(n.Names), nodes(n.X)...)
	case *SortKey:
		return nodes(n.X)
	case *Unary:
		return nodes(n.X)
	case *Binary:
		return nodes(n.X, n.Y)
	case *In:
		return append(nodes(n.X), exprNodes(n.List)...)
	case *Between:
		return nodes(n.X, n.Lo, n.Hi)
	case *Call:
		return append(nodes(n.Target, identNode(n.Name)), exprNodes(n.Args)...)
	case *NamedArg:
		return nodes(identNode(n.Name), n.Value)
	case *Member:
		return nodes(n.X, identNode(n.Name))
	case *Index:
		return nodes(n.X, n.Index)
	case *Paren:
		return nodes(n.X)
	case *Typeof:
		return nodes(typeNode(n.Type))
	case *Lambda:
		out := []Node{}
		for _, p := range n.Params {
			out = append(out, p)
		}
		for _, s := range n.Body {
			out = append(out, s)
		}
		return out
	case *Pipeline:
		out := nodes(n.Source)
		for _, op := range n.Ops {
			out = append(out, op)
		}
		return out
	case *DataTable:
		out := []Node{}
		for _, c := range n.Columns {
			out = append(out, c)
		}
		return append(out, exprNodes(n.Values)...)
	case *Print:
		return namedNodes(n.Cols)
	case *Range:
		return nodes(identNode(n.Col), n.From, n.To, n.Step)
	case *Where:
		return nodes(n.Pred)
	case *Project:
		return namedNodes(n.Cols)
	case *ProjectAway:
		return exprNodes(n.Cols)
	case *ProjectKeep:
		return exprNodes(n.Cols)
	case *ProjectRename:
		out := []Node{}
		for _, r := range n.Renames {
			out = append(out, r)
		}
		return out
	case *Rename:
		return nodes(identNode(n.New), identNode(n.Old))
	case *ProjectReorder:
		out := []Node{}
		for _, k := range n.Cols {
			out = append(out, k)
		}
		return out
	case *Extend:
		return namedNodes(n.Cols)
	case *Summarize:
		return append(append(optNodes(n.Options), namedNodes(n.Aggs)...), namedNodes(n.By)...)
	case *Count:
		return nodes(identNode(n.As))
	case *Distinct:
		return append(optNodes(n.Options), namedNodes(n.Cols)...)
	case *Take:
		return nodes(n.Count)
	case *Top:
		out := nodes(n.Count)
		for _, k := range n.By {
			out = append(out, k)
		}
		return out
	case *TopNested:
		out := []Node{}
		for _, lv := range n.Levels {
			out = append(out, lv)
		}
		return out
	case *TopNestedLevel:
		var of, by Node
		if n.Of != nil {
			of = n.Of
		}
		if n.By != nil {
			by = n.By
		}
		return nodes(n.Count, of, n.Others, by)
	case *TopHitters:
		return nodes(n.Count, n.Of, n.By)
	case *Sort:
		out := optNodes(n.Options)
		for _, k := range n.By {
			out = append(out, k)
		}
		return out
	case *Serialize:
		return namedNodes(n.Cols)
	case *As:
		return append(optNodes(n.Options), nodes(identNode(n.Name))...)
	case *Union:
		return append(optNodes(n.Options), exprNodes(n.Tables)...)
	case *Join:
		return append(append(optNodes(n.Options), nodes(n.Right)...), append(exprNodes(n.On), nodes(n.Where)...)...)
	case *Lookup:
		return append(append(optNodes(n.Options), nodes(n.Right)...), exprNodes(n.On)...)
	case *MvExpandItem:
		return append(identNodes(n.Names), nodes(n.X, typeNode(n.To))...)
	case *MvExpand:
		out := optNodes(n.Options)
		for _, it := range n.Items {
			out = append(out, it)
		}
		return append(out, nodes(n.Limit)...)
	case *MvApply:
		out := optNodes(n.Options)
		for _, it := range n.Items {
			out = append(out, it)
		}
		return append(out, nodes(n.Limit, n.On)...)
	case *ParsePart:
		var lit Node
		if n.Lit != nil {
			lit = n.Lit
		}
		return nodes(lit, identNode(n.Col), typeNode(n.Type))
	case *ParseOp:
		out := append(optNodes(n.Options), nodes(n.X)...)
		for _, part := range n.Pattern {
			out = append(out, part)
		}
		return out
	case *ParseKv:
		out := nodes(n.X)
		for _, c := range n.Columns {
			out = append(out, c)
		}
		return append(out, optNodes(n.With)...)
	case *Evaluate:
		var plugin Node
		if n.Plugin != nil {
			plugin = n.Plugin
		}
		return append(optNodes(n.Options), nodes(plugin, typeNode(n.Schema))...)
	case *MakeSeriesAgg:
		return append(identNodes(n.Names), nodes(n.X, n.Default)...)
	case *MakeSeries:
		out := optNodes(n.Options)
		for _, a := range n.Aggs {
			out = append(out, a)
		}
		out = append(out, nodes(n.On, n.From, n.To, n.Step)...)
		return append(out, namedNodes(n.By)...)
	case *RenderProp:
		return append(nodes(identNode(n.Name)), exprNodes(n.Values)...)
	case *Render:
		out := nodes(identNode(n.Chart))
		for _, p := range n.With {
			out = append(out, p)
		}
		return out
	case *Sample:
		return nodes(n.Count)
	case *SampleDistinct:
		return nodes(n.Count, n.Of)
	case *Search:
		return append(append(optNodes(n.Options), exprNodes(n.In)...), nodes(n.Pred)...)
	case *Find:
		out := append(append(optNodes(n.Options), exprNodes(n.In)...), nodes(n.Pred)...)
		return append(append(out, exprNodes(n.Project)...), exprNodes(n.ProjectAway)...)
	case *Invoke:
		var c Node
		if n.Call != nil {
			c = n.Call
		}
		return nodes(c)
	case *Fork:
		out := []Node{}
		for _, b := range n.Branches {
			out = append(out, b)
		}
		return out
	case *ForkBranch:
		return nodes(identNode(n.Name), n.Query)
	case *Facet:
		return append(exprNodes(n.By), nodes(n.With)...)
	case *Partition:
		return append(optNodes(n.Options), nodes(identNode(n.By), n.In, n.Query)...)
	case *Reduce:
		return append(append(optNodes(n.Options), nodes(n.By)...), optNodes(n.With)...)
	case *Consume:
		return optNodes(n.Options)
	}
	return nil
}
