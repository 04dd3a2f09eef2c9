package kql

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"custos/internal/store"
)

// Dump renders a syntax tree as a canonical S-expression, one statement per
// line and one pipeline operator per line. It is the format of the parser's
// specification tests. Obfuscated strings are shown redacted.
func Dump(n Node) string {
	d := &dumper{}
	d.node(n, 0)
	return strings.TrimRight(d.b.String(), "\n")
}

type dumper struct{ b strings.Builder }

func (d *dumper) w(s string) { d.b.WriteString(s) }

func (d *dumper) nl(indent int) {
	d.b.WriteByte('\n')
	for range indent {
		d.b.WriteString("  ")
	}
}

// list writes "(head item item ...)" with items separated by spaces.
func (d *dumper) list(head string, indent int, items ...Node) {
	d.w("(" + head)
	for _, it := range items {
		d.w(" ")
		d.node(it, indent)
	}
	d.w(")")
}

func (d *dumper) exprs(head string, indent int, xs []Expr) {
	d.w("(" + head)
	for _, x := range xs {
		d.w(" ")
		d.node(x, indent)
	}
	d.w(")")
}

func (d *dumper) options(opts []*OptionArg, indent int) {
	for _, o := range opts {
		d.w(" (" + o.Name + "=")
		d.node(o.Value, indent)
		d.w(")")
	}
}

func (d *dumper) named(list []*NamedExpr, indent int) {
	for _, ne := range list {
		d.w(" ")
		d.node(ne, indent)
	}
}

func (d *dumper) names(ids []*Ident) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = identText(id)
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return "(" + strings.Join(parts, " ") + ")"
}

func identText(id *Ident) string {
	if id == nil {
		return "<nil>"
	}
	if id.Quoted {
		return "[" + strconv.Quote(id.Name) + "]"
	}
	return id.Name
}

func (d *dumper) node(n Node, indent int) {
	switch n := n.(type) {
	case nil:
		d.w("<nil>")
	case *Query:
		for i, s := range n.Stmts {
			if i > 0 {
				d.w("\n")
			}
			d.node(s, indent)
		}
	case *LetStmt:
		d.w("(let " + identText(n.Name) + " ")
		d.node(n.Value, indent+1)
		d.w(")")
	case *SetStmt:
		d.w("(set " + identText(n.Name))
		if n.Value != nil {
			d.w(" ")
			d.node(n.Value, indent)
		}
		d.w(")")
	case *DeclareStmt:
		d.w("(declare-query-parameters")
		for _, p := range n.Params {
			d.w(" ")
			d.node(p, indent)
		}
		d.w(")")
	case *ExprStmt:
		d.node(n.X, indent)

	case *Ident:
		d.w(identText(n))
	case *Star:
		d.w("*")
	case *ColumnPattern:
		d.w("(pattern " + n.Pattern + ")")
	case *TypeRef:
		d.w(typeRefText(n))
	case *ColumnDecl:
		d.w(identText(n.Name) + ":" + typeRefText(n.Type))
	case *Param:
		d.w("(" + identText(n.Name) + " " + typeRefText(n.Type))
		if n.Default != nil {
			d.w(" ")
			d.node(n.Default, indent)
		}
		d.w(")")
	case *OptionArg:
		d.w("(" + n.Name + "=")
		d.node(n.Value, indent)
		d.w(")")
	case *NamedExpr:
		if len(n.Names) == 0 {
			d.node(n.X, indent)
			return
		}
		d.w("(= " + d.names(n.Names) + " ")
		d.node(n.X, indent)
		d.w(")")
	case *SortKey:
		d.w("(key ")
		d.node(n.X, indent)
		if n.Order != "" {
			d.w(" " + n.Order)
		}
		if n.Nulls != "" {
			d.w(" nulls-" + n.Nulls)
		}
		d.w(")")

	case *Literal:
		d.w(literalText(n))
	case *Unary:
		d.list(n.Op, indent, n.X)
	case *Binary:
		op := n.Op
		if op == "matches regex" {
			op = "matches-regex"
		}
		d.list(op, indent, n.X, n.Y)
	case *In:
		d.w("(" + n.Op + " ")
		d.node(n.X, indent)
		d.w(" ")
		d.exprs("list", indent, n.List)
		d.w(")")
	case *Between:
		op := "between"
		if n.Not {
			op = "!between"
		}
		d.list(op, indent, n.X, n.Lo, n.Hi)
	case *Call:
		d.w("(call ")
		if n.Target != nil {
			d.w("(target ")
			d.node(n.Target, indent)
			d.w(") ")
		}
		d.w(identText(n.Name))
		for _, a := range n.Args {
			d.w(" ")
			d.node(a, indent)
		}
		d.w(")")
	case *NamedArg:
		d.w("(arg " + identText(n.Name) + " ")
		d.node(n.Value, indent)
		d.w(")")
	case *Member:
		d.w("(. ")
		d.node(n.X, indent)
		d.w(" " + identText(n.Name) + ")")
	case *Index:
		d.list("[]", indent, n.X, n.Index)
	case *Paren:
		d.list("paren", indent, n.X)
	case *Typeof:
		d.w("(typeof " + typeRefText(n.Type) + ")")
	case *Lambda:
		head := "lambda"
		if n.View {
			head = "view"
		}
		d.w("(" + head + " (")
		for i, p := range n.Params {
			if i > 0 {
				d.w(" ")
			}
			d.node(p, indent)
		}
		d.w(")")
		for _, s := range n.Body {
			d.nl(indent + 1)
			d.node(s, indent+1)
		}
		d.w(")")

	case *Pipeline:
		d.w("(pipe")
		if n.Source != nil {
			d.w(" ")
			d.node(n.Source, indent+1)
		}
		for _, op := range n.Ops {
			d.nl(indent + 1)
			d.w("| ")
			d.node(op, indent+1)
		}
		d.w(")")
	case *DataTable:
		d.w("(datatable (")
		for i, c := range n.Columns {
			if i > 0 {
				d.w(" ")
			}
			d.node(c, indent)
		}
		d.w(")")
		for _, v := range n.Values {
			d.w(" ")
			d.node(v, indent)
		}
		d.w(")")
	case *Print:
		d.w("(print")
		d.named(n.Cols, indent)
		d.w(")")
	case *Range:
		d.w("(range " + identText(n.Col) + " ")
		d.node(n.From, indent)
		d.w(" ")
		d.node(n.To, indent)
		d.w(" ")
		d.node(n.Step, indent)
		d.w(")")

	case *Where:
		d.list(n.Keyword, indent, n.Pred)
	case *Project:
		d.w("(project")
		d.named(n.Cols, indent)
		d.w(")")
	case *ProjectAway:
		d.exprs("project-away", indent, n.Cols)
	case *ProjectKeep:
		d.exprs("project-keep", indent, n.Cols)
	case *ProjectRename:
		d.w("(project-rename")
		for _, r := range n.Renames {
			d.w(" (" + identText(r.New) + " " + identText(r.Old) + ")")
		}
		d.w(")")
	case *ProjectReorder:
		d.w("(project-reorder")
		for _, k := range n.Cols {
			d.w(" ")
			d.node(k, indent)
		}
		d.w(")")
	case *Extend:
		d.w("(extend")
		d.named(n.Cols, indent)
		d.w(")")
	case *Summarize:
		d.w("(summarize")
		d.options(n.Options, indent)
		d.w(" (aggs")
		d.named(n.Aggs, indent)
		d.w(")")
		if n.By != nil {
			d.w(" (by")
			d.named(n.By, indent)
			d.w(")")
		}
		d.w(")")
	case *Count:
		d.w("(count")
		if n.As != nil {
			d.w(" (as " + identText(n.As) + ")")
		}
		d.w(")")
	case *Distinct:
		d.w("(distinct")
		d.options(n.Options, indent)
		d.named(n.Cols, indent)
		d.w(")")
	case *Take:
		d.list(n.Keyword, indent, n.Count)
	case *Top:
		d.w("(top ")
		d.node(n.Count, indent)
		for _, k := range n.By {
			d.w(" ")
			d.node(k, indent)
		}
		d.w(")")
	case *TopNested:
		d.w("(top-nested")
		for _, lv := range n.Levels {
			d.w(" (level ")
			d.node(lv.Count, indent)
			d.w(" (of ")
			d.node(lv.Of, indent)
			d.w(")")
			if lv.Others != nil {
				d.w(" (others ")
				d.node(lv.Others, indent)
				d.w(")")
			}
			d.w(" (by ")
			d.node(lv.By, indent)
			d.w(")")
			if lv.Order != "" {
				d.w(" " + lv.Order)
			}
			d.w(")")
		}
		d.w(")")
	case *TopHitters:
		d.w("(top-hitters ")
		d.node(n.Count, indent)
		d.w(" (of ")
		d.node(n.Of, indent)
		d.w(")")
		if n.By != nil {
			d.w(" (by ")
			d.node(n.By, indent)
			d.w(")")
		}
		d.w(")")
	case *Sort:
		d.w("(" + n.Keyword)
		d.options(n.Options, indent)
		for _, k := range n.By {
			d.w(" ")
			d.node(k, indent)
		}
		d.w(")")
	case *Serialize:
		d.w("(serialize")
		d.named(n.Cols, indent)
		d.w(")")
	case *As:
		d.w("(as")
		d.options(n.Options, indent)
		d.w(" " + identText(n.Name) + ")")
	case *Union:
		d.w("(union")
		d.options(n.Options, indent)
		for _, t := range n.Tables {
			d.w(" ")
			d.node(t, indent+1)
		}
		d.w(")")
	case *Join:
		d.w("(join")
		d.options(n.Options, indent)
		d.w(" ")
		d.node(n.Right, indent+1)
		if n.On != nil {
			d.w(" ")
			d.exprs("on", indent, n.On)
		}
		if n.Where != nil {
			d.w(" (where ")
			d.node(n.Where, indent)
			d.w(")")
		}
		d.w(")")
	case *Lookup:
		d.w("(lookup")
		d.options(n.Options, indent)
		d.w(" ")
		d.node(n.Right, indent+1)
		d.w(" ")
		d.exprs("on", indent, n.On)
		d.w(")")
	case *MvExpandItem:
		if len(n.Names) > 0 {
			d.w("(= " + d.names(n.Names) + " ")
			d.node(n.X, indent)
			d.w(")")
		} else {
			d.node(n.X, indent)
		}
		if n.To != nil {
			d.w(" (to " + typeRefText(n.To) + ")")
		}
	case *MvExpand:
		d.w("(mv-expand")
		d.options(n.Options, indent)
		for _, it := range n.Items {
			d.w(" ")
			d.node(it, indent)
		}
		if n.Limit != nil {
			d.w(" (limit ")
			d.node(n.Limit, indent)
			d.w(")")
		}
		d.w(")")
	case *MvApply:
		d.w("(mv-apply")
		d.options(n.Options, indent)
		for _, it := range n.Items {
			d.w(" ")
			d.node(it, indent)
		}
		if n.Limit != nil {
			d.w(" (limit ")
			d.node(n.Limit, indent)
			d.w(")")
		}
		d.w(" (on ")
		d.node(n.On, indent+1)
		d.w("))")
	case *ParsePart:
		switch {
		case n.Star:
			d.w("*")
		case n.Lit != nil:
			d.node(n.Lit, indent)
		default:
			d.w(identText(n.Col))
			if n.Type != nil {
				d.w(":" + typeRefText(n.Type))
			}
		}
	case *ParseOp:
		d.w("(" + n.Keyword)
		d.options(n.Options, indent)
		d.w(" ")
		d.node(n.X, indent)
		d.w(" (with")
		for _, part := range n.Pattern {
			d.w(" ")
			d.node(part, indent)
		}
		d.w("))")
	case *ParseKv:
		d.w("(parse-kv ")
		d.node(n.X, indent)
		d.w(" (as")
		for _, c := range n.Columns {
			d.w(" ")
			d.node(c, indent)
		}
		d.w(")")
		if n.With != nil {
			d.w(" (with")
			d.options(n.With, indent)
			d.w(")")
		}
		d.w(")")
	case *Evaluate:
		d.w("(evaluate")
		d.options(n.Options, indent)
		d.w(" ")
		d.node(n.Plugin, indent)
		if n.Schema != nil {
			d.w(" (schema " + typeRefText(n.Schema) + ")")
		}
		d.w(")")
	case *MakeSeriesAgg:
		if len(n.Names) > 0 {
			d.w("(= " + d.names(n.Names) + " ")
			d.node(n.X, indent)
			d.w(")")
		} else {
			d.node(n.X, indent)
		}
		if n.Default != nil {
			d.w(" (default ")
			d.node(n.Default, indent)
			d.w(")")
		}
	case *MakeSeries:
		d.w("(make-series")
		d.options(n.Options, indent)
		for _, a := range n.Aggs {
			d.w(" ")
			d.node(a, indent)
		}
		d.w(" (on ")
		d.node(n.On, indent)
		d.w(")")
		if n.From != nil {
			d.w(" (from ")
			d.node(n.From, indent)
			d.w(")")
		}
		if n.To != nil {
			d.w(" (to ")
			d.node(n.To, indent)
			d.w(")")
		}
		d.w(" (step ")
		d.node(n.Step, indent)
		d.w(")")
		if n.By != nil {
			d.w(" (by")
			d.named(n.By, indent)
			d.w(")")
		}
		d.w(")")
	case *Render:
		d.w("(render " + identText(n.Chart))
		for _, p := range n.With {
			d.w(" (" + identText(p.Name))
			for _, v := range p.Values {
				d.w(" ")
				d.node(v, indent)
			}
			d.w(")")
		}
		d.w(")")
	case *GetSchema:
		d.w("(getschema)")
	case *Sample:
		d.list("sample", indent, n.Count)
	case *SampleDistinct:
		d.list("sample-distinct", indent, n.Count, n.Of)
	case *Search:
		d.w("(search")
		d.options(n.Options, indent)
		if n.In != nil {
			d.w(" ")
			d.exprs("in", indent, n.In)
		}
		d.w(" ")
		d.node(n.Pred, indent)
		d.w(")")
	case *Find:
		d.w("(find")
		d.options(n.Options, indent)
		if n.In != nil {
			d.w(" ")
			d.exprs("in", indent, n.In)
		}
		d.w(" (where ")
		d.node(n.Pred, indent)
		d.w(")")
		if n.ProjectSmart {
			d.w(" project-smart")
		}
		if n.Project != nil {
			d.w(" ")
			d.exprs("project", indent, n.Project)
		}
		if n.ProjectAway != nil {
			d.w(" ")
			d.exprs("project-away", indent, n.ProjectAway)
		}
		d.w(")")
	case *Invoke:
		d.list("invoke", indent, n.Call)
	case *Fork:
		d.w("(fork")
		for _, b := range n.Branches {
			d.nl(indent + 1)
			d.w("(branch ")
			if b.Name != nil {
				d.w(identText(b.Name) + " ")
			}
			d.node(b.Query, indent+2)
			d.w(")")
		}
		d.w(")")
	case *Facet:
		d.w("(facet (by")
		for _, b := range n.By {
			d.w(" ")
			d.node(b, indent)
		}
		d.w(")")
		if n.With != nil {
			d.w(" (with ")
			d.node(n.With, indent+1)
			d.w(")")
		}
		d.w(")")
	case *Partition:
		d.w("(partition")
		d.options(n.Options, indent)
		d.w(" (by " + identText(n.By) + ")")
		if n.In != nil {
			d.w(" (in ")
			d.node(n.In, indent)
			d.w(")")
		}
		d.w(" ")
		d.node(n.Query, indent+1)
		d.w(")")
	case *Reduce:
		d.w("(reduce")
		d.options(n.Options, indent)
		d.w(" (by ")
		d.node(n.By, indent)
		d.w(")")
		if n.With != nil {
			d.w(" (with")
			d.options(n.With, indent)
			d.w(")")
		}
		d.w(")")
	case *Consume:
		d.w("(consume")
		d.options(n.Options, indent)
		d.w(")")
	default:
		d.w(fmt.Sprintf("<%T>", n))
	}
}

func typeRefText(t *TypeRef) string {
	switch {
	case t == nil:
		return "<nil>"
	case t.Wildcard && len(t.Columns) == 0:
		return "(*)"
	case t.Tabular:
		var parts []string
		if t.Wildcard {
			parts = append(parts, "*")
		}
		for _, c := range t.Columns {
			parts = append(parts, identText(c.Name)+":"+typeRefText(c.Type))
		}
		return "(" + strings.Join(parts, ", ") + ")"
	}
	return t.Type.String()
}

// literalText renders a literal as "(type value)".
func literalText(l *Literal) string {
	typ := l.Type.String()
	if l.Obfuscated {
		return "(" + typ + " obfuscated)"
	}
	if l.Null {
		return "(" + typ + " null)"
	}
	var v string
	switch l.Type {
	case store.TypeBool:
		v = strconv.FormatBool(l.Bool)
	case store.TypeInt, store.TypeLong:
		v = strconv.FormatInt(l.Int, 10)
	case store.TypeReal:
		switch {
		case math.IsNaN(l.Real):
			v = "nan"
		case math.IsInf(l.Real, 1):
			v = "+inf"
		case math.IsInf(l.Real, -1):
			v = "-inf"
		default:
			v = strconv.FormatFloat(l.Real, 'g', -1, 64)
		}
	case store.TypeDecimal:
		v = l.Str
	case store.TypeDatetime:
		v = formatDatetimeLit(l.Int)
	case store.TypeTimespan:
		v = FormatTimespan(l.Int)
	case store.TypeString:
		v = strconv.Quote(l.Str)
	default:
		v = l.Str
	}
	return "(" + typ + " " + v + ")"
}
