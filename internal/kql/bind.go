package kql

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"custos/internal/api"
	"custos/internal/store"
)

// SemanticError reports a query that parses but does not make sense: an
// unknown table, column or function, or mismatched types. Line and Col
// (1-based) point at the offending expression. It implements api.Coded.
type SemanticError struct {
	Line, Col int
	Msg       string
}

func (e *SemanticError) Error() string {
	return fmt.Sprintf("SemanticError at %d:%d: %s", e.Line, e.Col, e.Msg)
}

// AzureError implements api.Coded: Log Analytics answers semantic errors
// with 400 BadArgumentError (innererror SemanticError).
func (e *SemanticError) AzureError() (string, api.Kind) { return "BadArgumentError", api.KindInvalid }

var _ api.Coded = (*SemanticError)(nil)

// ErrRowCondition wraps a row condition that does not compile; the query
// fails closed.
var ErrRowCondition = errors.New("invalid row condition")

// BindOptions tune binding.
type BindOptions struct {
	// RowConditions are predicates per table name that every row read from
	// that table must satisfy (RBAC row-level access). They are compiled into
	// the plan directly above the table's scan.
	RowConditions map[string][]string
	// PerRecordOnly restricts the query to per-record operators (where,
	// extend, project, project-away, project-keep, project-rename,
	// project-reorder), as ingestion-time transformations require.
	PerRecordOnly bool
	// Parameters are the values of the query's declared parameters
	// (declare query_parameters), as text (see ParameterValue).
	Parameters map[string]string
	// Explore runs a subplan whose output columns depend on the data
	// (evaluate bag_unpack and pivot without a declared schema) and returns
	// its schema; the executor keeps the result for the query. nil makes
	// such operators an error unless their schema is declared.
	Explore func(m *Materialize) (store.Schema, error)
	// Workspaces are the additional workspaces of the request (the query
	// body's "workspaces"): every table reference reads the table in the
	// query's workspace and in each of these that has it.
	Workspaces []WorkspaceTables
}

// Compile parses, binds and optimizes src: the one way from KQL text to a plan.
func Compile(src string, c Catalog, o BindOptions) (*Plan, error) {
	q, err := Parse(src)
	if err != nil {
		return nil, err
	}
	return Bind(q, c, o)
}

// Bind resolves q against the catalog, type-checks it and returns an
// optimized plan (projections, time ranges, term hints and limits pushed
// down). Bind is safe for concurrent use if the catalog is.
func Bind(q *Query, c Catalog, o BindOptions) (*Plan, error) {
	b := &binder{cat: c, opts: o, lets: map[string]letValue{}}
	plan := &Plan{}
	for _, st := range q.Stmts {
		switch st := st.(type) {
		case *LetStmt:
			if err := b.bindLet(st); err != nil {
				return nil, err
			}
		case *SetStmt:
			if err := b.bindSet(st); err != nil {
				return nil, err
			}
		case *DeclareStmt:
			if err := b.bindDeclare(st); err != nil {
				return nil, err
			}
		case *ExprStmt:
			if !b.isTabular(st.X) {
				return nil, semErr(st.X, "the query statement must be a tabular expression")
			}
			b.render, b.facets = nil, nil
			n, err := b.bindTabular(st.X)
			if err != nil {
				return nil, err
			}
			if b.facets != nil {
				for _, f := range b.facets {
					plan.Results = append(plan.Results, f)
					plan.Render = append(plan.Render, nil)
				}
				continue
			}
			if b.takeMax > 0 || (b.takeMax == 0 && b.takeMaxSet) {
				n = &Limit{Input: n, N: b.takeMax}
			}
			plan.Results = append(plan.Results, n)
			plan.Render = append(plan.Render, b.render)
		}
	}
	if len(plan.Results) == 0 {
		return nil, &SemanticError{Line: 1, Col: 1, Msg: "the query has no tabular expression statement"}
	}
	for _, r := range plan.Results {
		optimize(r)
	}
	return plan, nil
}

// letValue is what a let-bound name (or a function parameter) stands for:
// exactly one of scalar, tabular, lambda and shared is set.
type letValue struct {
	scalar  Scalar
	tabular Expr // re-bound at each use (in env), so plan nodes are never shared
	env     env  // the environment tabular and lambda are bound in
	lambda  *Lambda
	stored  string       // for a stored workspace function: its name
	shared  *Materialize // materialize(): one node, executed once
}

type binder struct {
	cat   Catalog
	opts  BindOptions
	lets  env
	depth int
	calls int
	// render is the visualization of the statement being bound; facets its
	// result tables when it ends with facet.
	render *Visualization
	facets []PlanNode
	// stored caches the parsed workspace functions of this query.
	stored map[string]*letValue
	// active holds the workspace functions being bound (recursion check).
	active map[string]bool
	// takeMax is set query_take_max_records for the results that follow.
	takeMax    int64
	takeMaxSet bool
	// serialized marks the outputs of serialize (their row order counts).
	serialized map[PlanNode]bool
}

// maxLetDepth bounds recursion through tabular lets referring to each other.
const maxLetDepth = 64

func semErr(n Node, format string, args ...any) *SemanticError {
	p := n.Position()
	line, col := p.Line, p.Col
	if line == 0 {
		line, col = 1, 1
	}
	return &SemanticError{Line: line, Col: col, Msg: fmt.Sprintf(format, args...)}
}

// semWrap turns a plain type-checking error into a SemanticError at n.
func semWrap(n Node, err error) error {
	var se *SemanticError
	if errors.As(err, &se) {
		return err
	}
	return semErr(n, "%s", err.Error())
}

func (b *binder) bindLet(st *LetStmt) error {
	name := st.Name.Name
	switch v := st.Value.(type) {
	case *Lambda:
		b.lets[name] = letValue{lambda: v, env: b.snapshot()}
		return nil
	case *Call:
		if v.Target == nil && v.Name.Name == "materialize" {
			m, err := b.bindMaterialize(v)
			if err != nil {
				return err
			}
			b.lets[name] = letValue{shared: m}
			return nil
		}
	}
	if b.isTabular(st.Value) {
		b.lets[name] = letValue{tabular: st.Value, env: b.snapshot()}
		return nil
	}
	s, err := b.bindScalar(st.Value, &scope{})
	if err != nil {
		return err
	}
	b.lets[name] = letValue{scalar: s}
	return nil
}

// isTabular reports whether e is a tabular expression.
func (b *binder) isTabular(e Expr) bool {
	switch e := e.(type) {
	case *Pipeline, *DataTable, *Print, *Range, *Union, *Search, *Find, *Evaluate:
		return true
	case *Paren:
		return b.isTabular(e.X)
	case *Ident:
		if l, ok := b.lets[e.Name]; ok {
			if l.lambda != nil {
				return len(l.lambda.Params) == 0 && b.lambdaIsTabular(&l)
			}
			return l.tabular != nil || l.shared != nil
		}
		if b.hasTable(e.Name) {
			return true
		}
		if fn, err := b.lookupFunction(e.Name); err == nil && fn != nil {
			return len(fn.lambda.Params) == 0 && b.lambdaIsTabular(fn)
		}
		return false
	case *Call:
		if e.Target != nil {
			return false
		}
		switch e.Name.Name {
		case "materialize", "table":
			return true
		}
		if fn, err := b.lookupFunction(e.Name.Name); err == nil && fn != nil {
			return b.lambdaIsTabular(fn)
		}
	case *Member:
		return isWorkspaceTable(e)
	}
	return false
}

// ---------------------------------------------------------------------------
// Tabular expressions

func (b *binder) bindTabular(e Expr) (PlanNode, error) {
	b.depth++
	defer func() { b.depth-- }()
	if b.depth > maxLetDepth {
		return nil, semErr(e, "tabular expressions are nested too deeply")
	}
	switch e := e.(type) {
	case *Paren:
		return b.bindTabular(e.X)
	case *Pipeline:
		if e.Source == nil {
			return nil, semErr(e, "a pipeline needs a source table")
		}
		n, err := b.bindTabular(e.Source)
		if err != nil {
			return nil, err
		}
		for i, op := range e.Ops {
			switch op := op.(type) {
			case *Invoke:
				// The piped input is passed as an expression, so the
				// function may read it more than once.
				prefix := &Pipeline{Pos: e.Pos, Source: e.Source, Ops: e.Ops[:i]}
				if n, err = b.bindInvoke(prefix, nil, op); err != nil {
					return nil, err
				}
				continue
			case *Facet:
				if i != len(e.Ops)-1 || b.depth != 1 {
					return nil, semErr(op, "facet must be the last operator of a query statement")
				}
				if b.facets, err = b.bindFacet(n, op); err != nil {
					return nil, err
				}
				return n, nil
			case *Fork:
				if i != len(e.Ops)-1 || b.depth != 1 {
					return nil, semErr(op, "fork must be the last operator of a query statement")
				}
				if b.facets, err = b.bindFork(n, op); err != nil {
					return nil, err
				}
				return n, nil
			}
			if n, err = b.bindOp(n, op); err != nil {
				return nil, err
			}
		}
		return n, nil
	case *Ident:
		if l, ok := b.lets[e.Name]; ok {
			switch {
			case l.shared != nil:
				return l.shared, nil
			case l.lambda != nil:
				return b.bindTabularCall(&Call{Pos: e.Pos, Name: e}, &l)
			case l.tabular == nil:
				return nil, semErr(e, "'%s' is a scalar, not a table", e.Name)
			}
			var n PlanNode
			err := b.withEnv(l.env, func() error {
				var err error
				n, err = b.bindTabular(l.tabular)
				return err
			})
			return n, err
		}
		if !b.hasTable(e.Name) {
			fn, err := b.lookupFunction(e.Name)
			if err != nil {
				return nil, semWrap(e, err)
			}
			if fn != nil {
				return b.bindTabularCall(&Call{Pos: e.Pos, Name: e}, fn)
			}
			return nil, semErr(e, "unknown table '%s'", e.Name)
		}
		return b.scanTable(e, e.Name)
	case *DataTable:
		return b.bindDataTable(e)
	case *Print:
		one := &Values{Rows: [][]Value{{}}}
		cols := make([]NamedScalar, 0, len(e.Cols))
		sc := &scope{}
		for i, c := range e.Cols {
			x, err := b.bindScalar(c.X, sc)
			if err != nil {
				return nil, err
			}
			name := fmt.Sprintf("print_%d", i)
			if len(c.Names) > 0 {
				name = c.Names[0].Name
			}
			cols = append(cols, NamedScalar{Name: name, X: x})
		}
		if err := checkDuplicates(e, cols); err != nil {
			return nil, err
		}
		return &Compute{Input: one, Cols: cols}, nil
	case *Range:
		return b.bindRange(e)
	case *Union:
		return b.bindUnion(nil, e)
	case *Search:
		return b.bindSearch(nil, e)
	case *Find:
		return b.bindFind(e)
	case *Evaluate:
		return b.bindEvaluate(nil, e)
	case *Member:
		if isWorkspaceTable(e) {
			return b.bindWorkspaceTable(e)
		}
	case *Call:
		if e.Target != nil {
			return nil, semErr(e, "method-style calls are not supported")
		}
		switch e.Name.Name {
		case "materialize":
			return b.bindMaterialize(e)
		case "table":
			return b.bindTableCall(e)
		}
		fn, err := b.lookupFunction(e.Name.Name)
		if err != nil {
			return nil, semWrap(e, err)
		}
		if fn == nil {
			return nil, semErr(e.Name, "The name '%s' does not refer to any known function.", e.Name.Name)
		}
		return b.bindTabularCall(e, fn)
	}
	return nil, semErr(e, "expected a tabular expression")
}

// scan reads a table, with the caller's row conditions applied right above it.
func (b *binder) scan(name string, schema store.Schema) (PlanNode, error) {
	var n PlanNode = &Scan{Table: name, TableSchema: schema}
	for _, cond := range b.opts.RowConditions[name] {
		x, err := ParseExpr(cond)
		if err != nil {
			return nil, fmt.Errorf("table %s: %w: %v", name, ErrRowCondition, err)
		}
		sub := &binder{cat: MapCatalog(nil), lets: map[string]letValue{}}
		pred, err := sub.bindScalar(x, scopeOf(schema))
		if err != nil {
			return nil, fmt.Errorf("table %s: %w: %v", name, ErrRowCondition, err)
		}
		if pred.Type() != store.TypeBool {
			return nil, fmt.Errorf("table %s: %w: the condition is %s, not bool", name, ErrRowCondition, pred.Type())
		}
		n = &Filter{Input: n, Pred: pred}
	}
	return n, nil
}

func (b *binder) bindDataTable(e *DataTable) (PlanNode, error) {
	schema := make(store.Schema, len(e.Columns))
	for i, c := range e.Columns {
		if c.Type == nil || c.Type.Tabular || c.Type.Type == store.TypeInvalid {
			return nil, semErr(c, "datatable column '%s' needs a scalar type", c.Name.Name)
		}
		schema[i] = store.Column{Name: c.Name.Name, Type: c.Type.Type}
	}
	if err := checkSchemaDuplicates(e, schema); err != nil {
		return nil, err
	}
	if len(schema) == 0 {
		return nil, semErr(e, "datatable needs at least one column")
	}
	if len(e.Values)%len(schema) != 0 {
		return nil, semErr(e, "datatable has %d values, not a multiple of its %d columns", len(e.Values), len(schema))
	}
	v := &Values{Out: schema}
	sc := &scope{}
	for r := 0; r < len(e.Values); r += len(schema) {
		row := make([]Value, len(schema))
		for i, col := range schema {
			x, err := b.bindScalar(e.Values[r+i], sc)
			if err != nil {
				return nil, err
			}
			k, ok := x.(*Const)
			if !ok {
				return nil, semErr(e.Values[r+i], "datatable values must be literals")
			}
			val, ok := literalAs(k.V, col.Type)
			if !ok {
				return nil, semErr(e.Values[r+i], "datatable column '%s' is %s; the value is %s", col.Name, col.Type, k.V.Type)
			}
			row[i] = val
		}
		v.Rows = append(v.Rows, row)
	}
	return v, nil
}

// literalAs converts a literal to a datatable column's type.
func literalAs(v Value, t Type) (Value, bool) {
	if v.Type == t {
		return v, true
	}
	if v.Null {
		return NullValue(t), true
	}
	if out, ok := convertValue(v, t); ok {
		return out, true
	}
	if t == store.TypeDynamic {
		return Value{Type: t, Str: jsonLiteral(v)}, true
	}
	return Value{}, false
}

func jsonLiteral(v Value) string {
	switch {
	case v.Type == store.TypeString, v.Type == store.TypeGUID, v.Type == store.TypeDatetime, v.Type == store.TypeTimespan:
		return strconv.Quote(v.String())
	}
	return v.String()
}

func (b *binder) bindRange(e *Range) (PlanNode, error) {
	sc := &scope{}
	from, err := b.bindScalar(e.From, sc)
	if err != nil {
		return nil, err
	}
	to, err := b.bindScalar(e.To, sc)
	if err != nil {
		return nil, err
	}
	step, err := b.bindScalar(e.Step, sc)
	if err != nil {
		return nil, err
	}
	for _, x := range []struct {
		s Scalar
		n Node
	}{{from, e.From}, {to, e.To}, {step, e.Step}} {
		if !IsConstant(x.s) {
			return nil, semErr(x.n, "range bounds must be constants")
		}
	}
	ft, tt, st := from.Type(), to.Type(), step.Type()
	var t Type
	switch {
	case IsNumeric(ft) && IsNumeric(tt) && IsNumeric(st):
		t = numericResult(numericResult(ft, tt), st)
	case (ft == store.TypeDatetime && tt == store.TypeDatetime || ft == store.TypeTimespan && tt == store.TypeTimespan) && st == store.TypeTimespan:
		t = ft
	default:
		return nil, semErr(e, "range cannot go from %s to %s by %s", ft, tt, st)
	}
	if IsNumeric(t) {
		from, to, step = castTo(from, t), castTo(to, t), castTo(step, t)
	}
	return &Sequence{Name: e.Col.Name, T: t, From: from, To: to, Step: step}, nil
}

// opName is the KQL name of a tabular operator, for messages.
func opName(op Op) string {
	switch op := op.(type) {
	case *Where:
		return op.Keyword
	case *Project:
		return "project"
	case *ProjectAway:
		return "project-away"
	case *ProjectKeep:
		return "project-keep"
	case *ProjectRename:
		return "project-rename"
	case *ProjectReorder:
		return "project-reorder"
	case *Extend:
		return "extend"
	case *Summarize:
		return "summarize"
	case *Count:
		return "count"
	case *Distinct:
		return "distinct"
	case *Take:
		return op.Keyword
	case *Top:
		return "top"
	case *TopNested:
		return "top-nested"
	case *TopHitters:
		return "top-hitters"
	case *Sort:
		return op.Keyword + " by"
	case *Serialize:
		return "serialize"
	case *As:
		return "as"
	case *Union:
		return "union"
	case *Join:
		return "join"
	case *Lookup:
		return "lookup"
	case *MvExpand:
		return "mv-expand"
	case *MvApply:
		return "mv-apply"
	case *ParseOp:
		return op.Keyword
	case *ParseKv:
		return "parse-kv"
	case *Evaluate:
		return "evaluate"
	case *MakeSeries:
		return "make-series"
	case *Render:
		return "render"
	case *GetSchema:
		return "getschema"
	case *Sample:
		return "sample"
	case *SampleDistinct:
		return "sample-distinct"
	case *Search:
		return "search"
	case *Find:
		return "find"
	case *Invoke:
		return "invoke"
	case *Fork:
		return "fork"
	case *Facet:
		return "facet"
	case *Partition:
		return "partition"
	case *Reduce:
		return "reduce"
	case *Consume:
		return "consume"
	}
	return fmt.Sprintf("%T", op)
}

func isPerRecord(op Op) bool {
	switch op.(type) {
	case *Where, *Project, *ProjectAway, *ProjectKeep, *ProjectRename, *ProjectReorder, *Extend, *ParseOp:
		return true
	}
	return false
}

func (b *binder) bindOp(in PlanNode, op Op) (PlanNode, error) {
	if b.opts.PerRecordOnly && !isPerRecord(op) {
		return nil, semErr(op, "operator '%s' is not allowed in a transformation; only per-record operators (where, extend, project, project-away, project-keep, project-rename, project-reorder, parse, parse-where) are", opName(op))
	}
	schema := in.Schema()
	switch op := op.(type) {
	case *Where:
		pred, err := b.bindScalar(op.Pred, scopeOf(schema))
		if err != nil {
			return nil, err
		}
		if pred.Type() != store.TypeBool {
			return nil, semErr(op.Pred, "the where predicate must be bool, not %s", pred.Type())
		}
		if err := b.checkSerialized(in, pred, op.Pred); err != nil {
			return nil, err
		}
		return &Filter{Input: in, Pred: pred}, nil
	case *Extend:
		return b.bindExtend(in, op.Cols, true)
	case *Project:
		return b.bindExtend(in, op.Cols, false)
	case *Serialize:
		var out PlanNode = in
		if len(op.Cols) == 0 {
			// A node of its own, so that marking it does not mark a node
			// another parent may reach.
			cols := make([]NamedScalar, len(schema))
			for i, c := range schema {
				cols[i] = passthrough(c)
			}
			out = &Compute{Input: in, Cols: cols}
		} else {
			if b.serialized == nil {
				b.serialized = map[PlanNode]bool{}
			}
			b.serialized[in] = true // the columns may call window functions
			var err error
			if out, err = b.bindExtend(in, op.Cols, true); err != nil {
				return nil, err
			}
		}
		if b.serialized == nil {
			b.serialized = map[PlanNode]bool{}
		}
		b.serialized[out] = true
		return out, nil
	case *ProjectAway:
		drop, err := matchColumns(schema, op.Cols)
		if err != nil {
			return nil, err
		}
		var cols []NamedScalar
		for i, c := range schema {
			if !drop[i] {
				cols = append(cols, passthrough(c))
			}
		}
		return &Compute{Input: in, Cols: cols}, nil
	case *ProjectKeep:
		keepCols, err := matchColumns(schema, op.Cols)
		if err != nil {
			return nil, err
		}
		var cols []NamedScalar
		for i, c := range schema {
			if keepCols[i] {
				cols = append(cols, passthrough(c))
			}
		}
		return &Compute{Input: in, Cols: cols}, nil
	case *ProjectRename:
		cols := make([]NamedScalar, len(schema))
		for i, c := range schema {
			cols[i] = passthrough(c)
		}
		for _, r := range op.Renames {
			i := schema.Index(r.Old.Name)
			if i < 0 {
				return nil, semErr(r.Old, "unknown column '%s'", r.Old.Name)
			}
			cols[i].Name = r.New.Name
		}
		if err := checkDuplicates(op, cols); err != nil {
			return nil, err
		}
		return &Compute{Input: in, Cols: cols}, nil
	case *ProjectReorder:
		var first []NamedScalar
		used := make([]bool, len(schema))
		for _, k := range op.Cols {
			m, err := matchColumns(schema, []Expr{k.X})
			if err != nil {
				return nil, err
			}
			for i, c := range schema {
				if m[i] && !used[i] {
					used[i] = true
					first = append(first, passthrough(c))
				}
			}
		}
		for i, c := range schema {
			if !used[i] {
				first = append(first, passthrough(c))
			}
		}
		return &Compute{Input: in, Cols: first}, nil
	case *Summarize:
		return b.bindSummarize(in, op)
	case *MakeSeries:
		return b.bindMakeSeries(in, op)
	case *ParseOp:
		return b.bindParse(in, op)
	case *Union:
		return b.bindUnion(in, op)
	case *Search:
		return b.bindSearch(in, op)
	case *MvExpand:
		return b.bindMvExpand(in, op)
	case *Join:
		return b.bindJoin(in, op.Options, op.Right, op.On, op.Where, op, "innerunique")
	case *Lookup:
		n, err := b.bindJoin(in, op.Options, op.Right, op.On, nil, op, "leftouter")
		if err != nil {
			return nil, err
		}
		return dropRightKeys(n.(*HashJoin)), nil
	case *Count:
		name := "Count"
		if op.As != nil {
			name = op.As.Name
		}
		return &Aggregate{Input: in, Aggs: []*AggCall{{Name: name, Fn: AggCount, T: store.TypeLong}}}, nil
	case *Distinct:
		var keys []NamedScalar
		for _, c := range op.Cols {
			if _, ok := c.X.(*Star); ok {
				for _, col := range schema {
					keys = append(keys, passthrough(col))
				}
				continue
			}
			x, err := b.bindScalar(c.X, scopeOf(schema))
			if err != nil {
				return nil, err
			}
			keys = append(keys, NamedScalar{Name: inferName(c, x, keys, true), X: x})
		}
		if err := checkDuplicates(op, keys); err != nil {
			return nil, err
		}
		return &Aggregate{Input: in, Keys: keys}, nil
	case *Take:
		n, err := b.constCount(op.Count)
		if err != nil {
			return nil, err
		}
		return &Limit{Input: in, N: n}, nil
	case *Top:
		n, err := b.constCount(op.Count)
		if err != nil {
			return nil, err
		}
		keys, err := b.orderKeys(schema, op.By)
		if err != nil {
			return nil, err
		}
		return &TopN{Input: in, N: n, Keys: keys}, nil
	case *Sort:
		keys, err := b.orderKeys(schema, op.By)
		if err != nil {
			return nil, err
		}
		return &OrderBy{Input: in, Keys: keys}, nil
	case *Render:
		if err := b.bindRender(op); err != nil {
			return nil, err
		}
		switch in.(type) {
		case *OrderBy, *TopN:
			b.render.IsQuerySorted = true
		}
		return in, nil
	case *As, *Consume:
		if _, ok := op.(*Consume); ok {
			return &Limit{Input: in, N: 0}, nil
		}
		return in, nil
	case *Sample:
		return b.bindSample(in, op)
	case *SampleDistinct:
		return b.bindSampleDistinct(in, op)
	case *TopHitters:
		return b.bindTopHitters(in, op)
	case *TopNested:
		return b.bindTopNested(in, op)
	case *ParseKv:
		return b.bindParseKv(in, op)
	case *MvApply:
		return b.bindMvApply(in, op)
	case *Evaluate:
		return b.bindEvaluate(in, op)
	case *Invoke:
		return b.bindInvoke(nil, in, op)
	case *Facet:
		return nil, semErr(op, "facet must be the last operator of a query statement")
	case *Fork:
		return nil, semErr(op, "fork must be the last operator of a query statement")
	case *Partition:
		return b.bindPartition(in, op)
	case *GetSchema:
		v := &Values{Out: store.Schema{
			{Name: "ColumnName", Type: store.TypeString}, {Name: "ColumnOrdinal", Type: store.TypeInt},
			{Name: "DataType", Type: store.TypeString}, {Name: "ColumnType", Type: store.TypeString},
		}}
		for i, c := range schema {
			v.Rows = append(v.Rows, []Value{StringValue(c.Name), {Type: store.TypeInt, Int: int64(i)},
				StringValue(dotnetType(c.Type)), StringValue(c.Type.String())})
		}
		return v, nil
	}
	return nil, semErr(op, "operator '%s' is not supported yet", opName(op))
}

// bindJoin binds join and lookup: a hash join on equality keys, given as
// shared column names (on Id) or $left.a == $right.b pairs.
func (b *binder) bindJoin(left PlanNode, opts []*OptionArg, rightExpr Expr, on []Expr, where Expr, n Node, kind string) (PlanNode, error) {
	for _, o := range opts {
		if strings.HasPrefix(strings.ToLower(o.Name), "hint.") {
			continue
		}
		if strings.ToLower(o.Name) != "kind" {
			return nil, semErr(o, "unknown join option '%s'", o.Name)
		}
		if id, ok := o.Value.(*Ident); ok {
			kind = strings.ToLower(id.Name)
		}
	}
	switch kind {
	case "anti", "leftantisemi":
		kind = "leftanti"
	case "semi":
		kind = "leftsemi"
	case "rightantisemi":
		kind = "rightanti"
	case "innerunique", "inner", "leftouter", "leftsemi", "leftanti",
		"rightouter", "fullouter", "rightsemi", "rightanti":
	default:
		return nil, semErr(n, "unknown join kind '%s'", kind)
	}
	if where != nil {
		return nil, semErr(where, "join takes its conditions after 'on' (equalities such as $left.a == $right.b); filter other conditions with '| where' after the join")
	}
	right, err := b.bindTabular(rightExpr)
	if err != nil {
		return nil, err
	}
	ls, rs := left.Schema(), right.Schema()
	j := &HashJoin{Left: left, Right: right, Kind: kind}
	var addPair func(e Expr) error
	addPair = func(e Expr) error {
		switch e := unparen(e).(type) {
		case *Ident:
			li, ri := ls.Index(e.Name), rs.Index(e.Name)
			if li < 0 || ri < 0 {
				return semErr(e, "join key '%s' must be a column of both sides", e.Name)
			}
			j.LeftKeys, j.RightKeys = append(j.LeftKeys, e.Name), append(j.RightKeys, e.Name)
			return nil
		case *Binary:
			if e.Op == "and" {
				if err := addPair(e.X); err != nil {
					return err
				}
				return addPair(e.Y)
			}
			if e.Op != "==" {
				return semErr(e, "join conditions must be equalities")
			}
			l, lok := sideColumn(e.X)
			r, rok := sideColumn(e.Y)
			if !lok || !rok || l.side == r.side {
				return semErr(e, "expected $left.column == $right.column")
			}
			if l.side == "$right" {
				l, r = r, l
			}
			if ls.Index(l.name) < 0 {
				return semErr(e.X, "unknown column '%s' on the left side", l.name)
			}
			if rs.Index(r.name) < 0 {
				return semErr(e.Y, "unknown column '%s' on the right side", r.name)
			}
			j.LeftKeys, j.RightKeys = append(j.LeftKeys, l.name), append(j.RightKeys, r.name)
			return nil
		}
		return semErr(e, "expected a column name or $left.column == $right.column")
	}
	for _, e := range on {
		if err := addPair(e); err != nil {
			return nil, err
		}
	}
	if len(j.LeftKeys) == 0 {
		return nil, semErr(n, "join needs at least one key (on ...)")
	}
	for i := range j.LeftKeys {
		lt, rt := ls[ls.Index(j.LeftKeys[i])].Type, rs[rs.Index(j.RightKeys[i])].Type
		if lt != rt && !(IsIntHeld(lt) && IsIntHeld(rt) && IsInteger(lt) == IsInteger(rt)) && !(IsStringLike(lt) && IsStringLike(rt)) {
			return nil, semErr(n, "join key '%s' is %s on the left and %s on the right", j.LeftKeys[i], lt, rt)
		}
	}
	j.RightNames = joinNames(ls, rs)
	return j, nil
}

// dropRightKeys removes the right side's key columns from a join's output,
// as lookup does.
func dropRightKeys(j *HashJoin) PlanNode {
	if !j.HasRight() {
		return j
	}
	nl := len(j.Left.Schema())
	var cols []NamedScalar
	for i, c := range j.Schema() {
		if i >= nl && slices.Contains(j.RightKeys, j.Right.Schema()[i-nl].Name) {
			continue
		}
		cols = append(cols, passthrough(c))
	}
	return &Compute{Input: j, Cols: cols}
}

type sideCol struct{ side, name string }

func sideColumn(e Expr) (sideCol, bool) {
	m, ok := unparen(e).(*Member)
	if !ok {
		return sideCol{}, false
	}
	id, ok := m.X.(*Ident)
	if !ok || (id.Name != "$left" && id.Name != "$right") {
		return sideCol{}, false
	}
	return sideCol{side: id.Name, name: m.Name.Name}, true
}

// bindMvExpand binds mv-expand.
func (b *binder) bindMvExpand(in PlanNode, op *MvExpand) (PlanNode, error) {
	schema := in.Schema()
	m := &Expand{Input: in, Bag: true}
	for _, o := range op.Options {
		v := ""
		switch val := o.Value.(type) {
		case *Ident:
			v = val.Name
		case *Literal:
			v = val.Str
		}
		switch strings.ToLower(o.Name) {
		case "bagexpansion", "kind":
			switch strings.ToLower(v) {
			case "bag":
			case "array":
				m.Bag = false
			default:
				return nil, semErr(o, "unknown bag expansion '%s'", v)
			}
		case "with_itemindex":
			m.IndexCol = v
		default:
			return nil, semErr(o, "unknown mv-expand option '%s'", o.Name)
		}
	}
	for _, it := range op.Items {
		x, err := b.bindScalar(it.X, scopeOf(schema))
		if err != nil {
			return nil, err
		}
		if x.Type() != store.TypeDynamic {
			return nil, semErr(it.X, "mv-expand expects a dynamic value, not %s", x.Type())
		}
		name := ""
		if len(it.Names) > 0 {
			name = it.Names[0].Name
		} else {
			name = inferName(&NamedExpr{Pos: it.Pos, X: it.X}, x, nil, false)
		}
		t := store.TypeDynamic
		if it.To != nil {
			if it.To.Tabular || it.To.Type == store.TypeInvalid {
				return nil, semErr(it, "mv-expand: typeof() needs a scalar type")
			}
			t = it.To.Type
		}
		m.Items = append(m.Items, NamedScalar{Name: name, X: x})
		m.Types = append(m.Types, t)
	}
	if op.Limit != nil {
		n, err := b.constCount(op.Limit)
		if err != nil {
			return nil, err
		}
		m.Limit = n
	}
	if m.IndexCol != "" && schema.Index(m.IndexCol) >= 0 {
		return nil, semErr(op, "with_itemindex column '%s' already exists", m.IndexCol)
	}
	return m, nil
}

// bindUnion binds union (as a source, or after a pipe with in as its first
// input): inputs are aligned by column name (kind=outer, the default, keeps
// every column with nulls where an input lacks it; kind=inner keeps the
// common ones); withsource=Col adds the source table's name first.
func (b *binder) bindUnion(in PlanNode, u *Union) (PlanNode, error) {
	kind, source, fuzzy := "outer", "", false
	for _, o := range u.Options {
		v := ""
		switch val := o.Value.(type) {
		case *Ident:
			v = val.Name
		case *Literal:
			v = val.Str
			if val.Type == store.TypeBool {
				v = strconv.FormatBool(val.Bool)
			}
		}
		switch strings.ToLower(o.Name) {
		case "kind":
			kind = strings.ToLower(v)
		case "withsource", "source":
			source = v
		case "isfuzzy":
			// isfuzzy=true: legs that do not resolve are left out (Kusto
			// warns); the union fails only when no leg resolves.
			fuzzy = strings.EqualFold(v, "true")
		default:
			return nil, semErr(o, "unknown union option '%s'", o.Name)
		}
	}
	if kind != "outer" && kind != "inner" {
		return nil, semErr(u, "unknown union kind '%s'", kind)
	}
	type input struct {
		node PlanNode
		name string
	}
	var inputs []input
	if in != nil {
		inputs = append(inputs, input{node: in, name: "union_arg0"})
	}
	var firstErr error // the first leg a fuzzy union left out
	for _, t := range u.Tables {
		switch t := t.(type) {
		case *ColumnPattern:
			lister, ok := b.cat.(TableLister)
			if !ok {
				return nil, semErr(t, "table wildcards are not supported by this catalog")
			}
			re, err := wildcard(t.Pattern)
			if err != nil {
				return nil, semErr(t, "bad table pattern '%s'", t.Pattern)
			}
			for _, name := range b.tableNames(lister) {
				if re.MatchString(name) {
					// scanTable reads the table in every workspace of the
					// request that has it (one workspace without
					// additional ones).
					n, err := b.scanTable(t, name)
					if err != nil {
						return nil, err
					}
					inputs = append(inputs, input{node: n, name: name})
				}
			}
		default:
			n, err := b.bindTabular(t)
			var se *SemanticError
			_, isName := t.(*Ident)
			if err != nil && fuzzy && isName && errors.As(err, &se) {
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			if err != nil {
				return nil, err
			}
			name := fmt.Sprintf("union_arg%d", len(inputs))
			if id, ok := t.(*Ident); ok {
				name = id.Name
			}
			inputs = append(inputs, input{node: n, name: name})
		}
	}
	if len(inputs) == 0 {
		if firstErr != nil {
			return nil, firstErr
		}
		return nil, semErr(u, "union has no inputs")
	}
	// The output schema: columns by name in order of first appearance. A
	// name that occurs with several types becomes one column per type,
	// named <name>_<type>, as Kusto's outer union does.
	type ucol struct {
		out store.Column // output name and type
		src string       // the inputs' column name
	}
	var cols []ucol
	types := map[string][]Type{}
	count := map[store.Column]int{}
	for _, it := range inputs {
		for _, c := range it.node.Schema() {
			if !slices.Contains(types[c.Name], c.Type) {
				types[c.Name] = append(types[c.Name], c.Type)
				cols = append(cols, ucol{out: c, src: c.Name})
			}
			count[c]++
		}
	}
	var out store.Schema
	kept := cols[:0:0]
	for _, uc := range cols {
		if kind == "inner" && count[uc.out] != len(inputs) {
			continue
		}
		if len(types[uc.src]) > 1 {
			uc.out.Name = uc.src + "_" + uc.out.Type.String()
		}
		if out.Index(uc.out.Name) >= 0 {
			return nil, semErr(u, "union: column '%s' occurs twice in the output", uc.out.Name)
		}
		out = append(out, uc.out)
		kept = append(kept, uc)
	}
	if source != "" && out.Index(source) >= 0 {
		return nil, semErr(u, "union: withsource column '%s' collides with a column of an input", source)
	}
	nodes := make([]PlanNode, len(inputs))
	for i, it := range inputs {
		schema := it.node.Schema()
		var ns []NamedScalar
		if source != "" {
			ns = append(ns, NamedScalar{Name: source, X: &Const{V: StringValue(it.name)}})
		}
		for _, uc := range kept {
			if j := schema.Index(uc.src); j >= 0 && schema[j].Type == uc.out.Type {
				ns = append(ns, NamedScalar{Name: uc.out.Name, X: &ColRef{Name: uc.src, T: uc.out.Type}})
			} else {
				ns = append(ns, NamedScalar{Name: uc.out.Name, X: &Const{V: NullValue(uc.out.Type)}})
			}
		}
		nodes[i] = &Compute{Input: it.node, Cols: ns}
	}
	return &UnionAll{Inputs: nodes}, nil
}

// bindParse binds parse and parse-where: the pattern becomes one regular
// expression whose capture groups are the new columns (see FnParse).
func (b *binder) bindParse(in PlanNode, op *ParseOp) (PlanNode, error) {
	schema := in.Schema()
	x, err := b.bindScalar(op.X, scopeOf(schema))
	if err != nil {
		return nil, err
	}
	x = toStr(x)
	kind, flags := "simple", ""
	for _, o := range op.Options {
		v := ""
		switch val := o.Value.(type) {
		case *Ident:
			v = val.Name
		case *Literal:
			v = val.Str
		}
		switch strings.ToLower(o.Name) {
		case "kind":
			kind = strings.ToLower(v)
		case "flags":
			flags = v
		default:
			return nil, semErr(o, "unknown parse option '%s'", o.Name)
		}
	}
	if kind != "simple" && kind != "regex" && kind != "relaxed" {
		return nil, semErr(op, "unknown parse kind '%s'", kind)
	}
	var re strings.Builder
	if kind == "regex" && flags != "" {
		for _, f := range flags {
			if !strings.ContainsRune("imsU", f) {
				return nil, semErr(op, "unsupported regex flag '%c'", f)
			}
		}
		re.WriteString("(?" + flags + ")")
	}
	// The pattern is anchored at the start of the text. A leading * is an
	// unanchored search instead of ^(?s:.*?): leftmost-first matching
	// picks the same earliest start the lazy prefix would, and the search
	// can jump to a literal prefix. A trailing * (with its $) is dropped:
	// (?s:.*)$ matches from any position, so it never changes the match.
	// Neither holds under flag U, which swaps greedy and lazy.
	pattern := op.Pattern
	rewrite := !strings.ContainsRune(flags, 'U') && len(pattern) > 1
	if !(rewrite && pattern[0].Star) {
		re.WriteString("^")
	}
	if rewrite && pattern[0].Star {
		pattern = pattern[1:]
	}
	trimmedEnd := false
	if rewrite && len(pattern) > 1 && pattern[len(pattern)-1].Star {
		pattern, trimmedEnd = pattern[:len(pattern)-1], true
	}
	type capture struct {
		name string
		t    Type
	}
	var caps []capture
	for i, part := range pattern {
		last := i == len(pattern)-1 && !trimmedEnd
		switch {
		case part.Star:
			if last {
				re.WriteString("(?s:.*)")
			} else {
				re.WriteString("(?s:.*?)")
			}
		case part.Lit != nil:
			if kind == "regex" {
				if _, err := CompileRegex(part.Lit.Str); err != nil {
					return nil, semErr(part, "invalid parse pattern: %v", err)
				}
				re.WriteString("(?:" + part.Lit.Str + ")")
			} else {
				re.WriteString(regexp.QuoteMeta(part.Lit.Str))
			}
		case part.Col != nil:
			t := store.TypeString
			if part.Type != nil {
				if part.Type.Tabular || part.Type.Type == store.TypeInvalid {
					return nil, semErr(part, "parse column '%s' needs a scalar type", part.Col.Name)
				}
				t = part.Type.Type
			}
			group := "(?s:.*?)"
			if last {
				group = "(?s:.*)"
			}
			if kind != "relaxed" {
				switch {
				case IsInteger(t):
					group = `[-+]?\d+`
				case IsRealHeld(t):
					group = `[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?`
				case t == store.TypeBool:
					group = `(?i:true|false|0|1)`
				}
			}
			re.WriteString("(" + group + ")")
			caps = append(caps, capture{name: part.Col.Name, t: t})
		}
	}
	if n := len(pattern); n > 0 && !trimmedEnd && (pattern[n-1].Col != nil || pattern[n-1].Star) {
		re.WriteString("$")
	}
	expr := re.String()
	if _, err := regexp.Compile(expr); err != nil {
		return nil, semErr(op, "invalid parse pattern: the pattern does not compile as a regular expression (%s)", regexProblem(err, ""))
	}
	if len(caps) == 0 {
		return nil, semErr(op, "the parse pattern has no columns")
	}
	if op.Keyword == "parse-where" {
		in = &Filter{Input: in, Pred: &FnCall{Fn: OpMatchesRegex, Args: []Scalar{x, &Const{V: StringValue(expr)}}, T: store.TypeBool}}
	}
	cols := make([]NamedScalar, 0, len(schema)+len(caps))
	for _, c := range schema {
		cols = append(cols, passthrough(c))
	}
	for i, c := range caps {
		e := &FnCall{Fn: FnParse, Args: []Scalar{x, &Const{V: StringValue(expr)}, &Const{V: LongValue(int64(i + 1))}}, T: c.t}
		replaced := false
		for j := range cols {
			if cols[j].Name == c.name {
				cols[j].X, replaced = e, true
			}
		}
		if !replaced {
			cols = append(cols, NamedScalar{Name: c.name, X: e})
		}
	}
	return &Compute{Input: in, Cols: cols}, nil
}

func dotnetType(t Type) string {
	switch t {
	case store.TypeBool:
		return "System.SByte"
	case store.TypeInt:
		return "System.Int32"
	case store.TypeLong:
		return "System.Int64"
	case store.TypeReal:
		return "System.Double"
	case store.TypeDecimal:
		return "System.Data.SqlTypes.SqlDecimal"
	case store.TypeDatetime:
		return "System.DateTime"
	case store.TypeTimespan:
		return "System.TimeSpan"
	case store.TypeGUID:
		return "System.Guid"
	case store.TypeDynamic:
		return "System.Object"
	}
	return "System.String"
}

func passthrough(c store.Column) NamedScalar {
	return NamedScalar{Name: c.Name, X: &ColRef{Name: c.Name, T: c.Type}}
}

// matchColumns marks the schema columns named or matched (wildcards) by items.
func matchColumns(schema store.Schema, items []Expr) ([]bool, error) {
	m := make([]bool, len(schema))
	for _, it := range items {
		switch it := it.(type) {
		case *Ident:
			i := schema.Index(it.Name)
			if i < 0 {
				return nil, semErr(it, "unknown column '%s'", it.Name)
			}
			m[i] = true
		case *ColumnPattern:
			re, err := wildcard(it.Pattern)
			if err != nil {
				return nil, semErr(it, "bad column pattern '%s'", it.Pattern)
			}
			for i, c := range schema {
				if re.MatchString(c.Name) {
					m[i] = true
				}
			}
		default:
			return nil, semErr(it, "expected a column name or pattern")
		}
	}
	return m, nil
}

func wildcard(p string) (*regexp.Regexp, error) {
	parts := strings.Split(p, "*")
	for i := range parts {
		parts[i] = regexp.QuoteMeta(parts[i])
	}
	return regexp.Compile("^" + strings.Join(parts, ".*") + "$")
}

func checkDuplicates(n Node, cols []NamedScalar) error {
	seen := make(map[string]bool, len(cols))
	for _, c := range cols {
		if seen[c.Name] {
			return semErr(n, "duplicate column name '%s'", c.Name)
		}
		seen[c.Name] = true
	}
	return nil
}

func checkSchemaDuplicates(n Node, s store.Schema) error {
	seen := make(map[string]bool, len(s))
	for _, c := range s {
		if seen[c.Name] {
			return semErr(n, "duplicate column name '%s'", c.Name)
		}
		seen[c.Name] = true
	}
	return nil
}

// bindExtend binds extend (keep: input columns stay, a reused name replaces
// its column in place) and project (only the listed columns). Later items may
// refer to columns defined by earlier ones; such references are inlined.
func (b *binder) bindExtend(in PlanNode, items []*NamedExpr, keepInput bool) (PlanNode, error) {
	schema := in.Schema()
	sc := scopeOf(schema)
	sc.defined = map[string]Scalar{}
	var cols []NamedScalar
	if keepInput {
		for _, c := range schema {
			cols = append(cols, passthrough(c))
		}
	}
	for _, it := range items {
		if pat, ok := it.X.(*ColumnPattern); ok && len(it.Names) == 0 && !keepInput {
			m, err := matchColumns(schema, []Expr{pat})
			if err != nil {
				return nil, err
			}
			for i, c := range schema {
				if m[i] {
					cols = append(cols, passthrough(c))
				}
			}
			continue
		}
		add := func(name string, x Scalar) error {
			sc.defined[name] = x
			for i := range cols {
				if cols[i].Name == name {
					if !keepInput {
						return semErr(it, "duplicate column name '%s'", name)
					}
					cols[i].X = x
					return nil
				}
			}
			cols = append(cols, NamedScalar{Name: name, X: x})
			return nil
		}
		if multi, err := b.bindMultiColumn(it, sc); err != nil {
			return nil, err
		} else if multi != nil {
			for _, c := range multi {
				if err := add(c.Name, c.X); err != nil {
					return nil, err
				}
			}
			continue
		}
		x, err := b.bindScalar(it.X, sc)
		if err != nil {
			return nil, err
		}
		if err := b.checkSerialized(in, x, it.X); err != nil {
			return nil, err
		}
		if len(it.Names) > 1 {
			return nil, semErr(it, "tuple names are not supported here")
		}
		if err := add(inferName(it, x, cols, false), x); err != nil {
			return nil, err
		}
	}
	return &Compute{Input: in, Cols: cols}, nil
}

// multiColumnFunctions are the functions whose call in extend or project
// expands into several columns (Kusto's multi-value functions).
var multiColumnFunctions = map[string]bool{"series_stats": true}

// isMultiColumnCall reports whether e calls a multi-column function that no
// user function of the same name shadows.
func (b *binder) isMultiColumnCall(e Expr) (*Call, bool) {
	c, ok := unparen(e).(*Call)
	if !ok || c.Target != nil || !multiColumnFunctions[c.Name.Name] {
		return nil, false
	}
	if fn, err := b.lookupFunction(c.Name.Name); err != nil || fn != nil {
		return nil, false
	}
	return c, true
}

// bindMultiColumn binds an extend or project item that calls a
// multi-column function: series_stats(x [, ignore_nonfinite]) yields the
// columns series_stats_<x>_min, _min_idx, ... ; "(a, b) = series_stats(x)"
// names the first columns and keeps only those, as in Kusto. It returns nil
// for any other item.
func (b *binder) bindMultiColumn(it *NamedExpr, sc *scope) ([]NamedScalar, error) {
	c, ok := b.isMultiColumnCall(it.X)
	if !ok {
		return nil, nil
	}
	if len(c.Args) < 1 || len(c.Args) > 2 {
		return nil, semErr(c, "function 'series_stats' expects 1 or 2 arguments, got %d", len(c.Args))
	}
	x, err := b.bindScalar(c.Args[0], sc)
	if err != nil {
		return nil, err
	}
	ignore := false
	if len(c.Args) == 2 {
		v, err := b.bindScalar(c.Args[1], sc)
		if err != nil {
			return nil, err
		}
		k, ok := v.(*Const)
		if !ok || k.V.Type != store.TypeBool {
			return nil, semErr(c.Args[1], "the ignore_nonfinite argument of series_stats must be a constant bool")
		}
		ignore = !k.V.Null && k.V.Bool
	}
	prefix := "series_stats"
	if id, ok := unparen(c.Args[0]).(*Ident); ok {
		prefix += "_" + id.Name
	}
	cols, err := SeriesStatsColumns(prefix, x, ignore)
	if err != nil {
		return nil, semErr(c, "%v", err)
	}
	if len(it.Names) > 0 {
		if len(it.Names) > len(cols) {
			return nil, semErr(it, "series_stats returns %d columns, but %d names are given", len(cols), len(it.Names))
		}
		cols = cols[:len(it.Names)]
		for i, n := range it.Names {
			cols[i].Name = n.Name
		}
	}
	return cols, nil
}

// inferName names an output column as Kusto does: the explicit name, else
// the column's own name, else (for summarize by, distinct) the first column
// argument of a function such as bin(), else ColumnN.
func inferName(ne *NamedExpr, x Scalar, existing []NamedScalar, byKey bool) string {
	if len(ne.Names) > 0 {
		return ne.Names[0].Name
	}
	if id, ok := unparen(ne.X).(*Ident); ok {
		return id.Name
	}
	switch x := unparen(ne.X).(type) {
	case *Member, *Index:
		if n, ok := pathName(x); ok {
			return n
		}
	}
	if byKey {
		if c, ok := unparen(ne.X).(*Call); ok && len(c.Args) > 0 {
			if id, ok := unparen(c.Args[0]).(*Ident); ok {
				return id.Name
			}
		}
	}
	for n := 1; ; n++ {
		name := "Column" + strconv.Itoa(n)
		taken := false
		for _, c := range existing {
			if c.Name == name {
				taken = true
				break
			}
		}
		if !taken {
			return name
		}
	}
}

func unparen(e Expr) Expr {
	for {
		p, ok := e.(*Paren)
		if !ok {
			return e
		}
		e = p.X
	}
}

func (b *binder) constCount(e Expr) (int64, error) {
	x, err := b.bindScalar(e, &scope{})
	if err != nil {
		return 0, err
	}
	k, ok := x.(*Const)
	if !ok || !IsInteger(k.V.Type) || k.V.Null {
		return 0, semErr(e, "expected a constant integer row count")
	}
	if k.V.Int < 0 {
		return 0, semErr(e, "the row count must not be negative")
	}
	return k.V.Int, nil
}

// orderKeys binds sort keys: desc by default; nulls last for desc and first
// for asc, unless given.
func (b *binder) orderKeys(schema store.Schema, keys []*SortKey) ([]OrderKey, error) {
	out := make([]OrderKey, 0, len(keys))
	for _, k := range keys {
		x, err := b.bindScalar(k.X, scopeOf(schema))
		if err != nil {
			return nil, err
		}
		if x.Type() == store.TypeDynamic {
			return nil, semErr(k.X, "cannot sort by a dynamic value")
		}
		desc := !strings.EqualFold(k.Order, "asc")
		nullsFirst := !desc
		switch strings.ToLower(k.Nulls) {
		case "first":
			nullsFirst = true
		case "last":
			nullsFirst = false
		}
		out = append(out, OrderKey{X: x, Desc: desc, NullsFirst: nullsFirst})
	}
	return out, nil
}

func (b *binder) bindSummarize(in PlanNode, op *Summarize) (PlanNode, error) {
	schema := in.Schema()
	sc := scopeOf(schema)
	agg := &Aggregate{Input: in}
	for _, k := range op.By {
		x, err := b.bindScalar(k.X, sc)
		if err != nil {
			return nil, err
		}
		if x.Type() == store.TypeDynamic {
			return nil, semErr(k.X, "summarize by a dynamic value is not supported")
		}
		agg.Keys = append(agg.Keys, NamedScalar{Name: inferName(k, x, agg.Keys, true), X: x})
	}
	if err := checkDuplicates(op, agg.Keys); err != nil {
		return nil, err
	}
	names := make([]NamedScalar, len(agg.Keys))
	copy(names, agg.Keys)
	// Output columns after the keys: a direct aggregation is its own column;
	// an expression over aggregations (sum(a) / count()) is computed on top of
	// hidden aggregation columns.
	type outCol struct {
		name string
		x    Scalar // nil: the aggregation column of the same name
	}
	var outs []outCol
	hidden := 0
	keySchema := agg.Schema()
	for _, a := range op.Aggs {
		if call, ok := unparen(a.X).(*Call); ok && call.Target == nil {
			if fn, ok := LookupAggregate(call.Name.Name); ok && (fn == AggPercentile || fn == AggPercentiles) {
				acs, err := b.bindPercentiles(call, fn, sc, a.Names, names)
				if err != nil {
					return nil, err
				}
				for _, ac := range acs {
					names = append(names, NamedScalar{Name: ac.Name})
					agg.Aggs = append(agg.Aggs, ac)
					outs = append(outs, outCol{name: ac.Name})
				}
				continue
			}
			if fn, ok := LookupAggregate(call.Name.Name); ok && (fn == AggArgMax || fn == AggArgMin) {
				acs, err := b.bindArgAgg(call, fn, sc, a.Names, agg.Keys, names)
				if err != nil {
					return nil, err
				}
				for _, ac := range acs {
					names = append(names, NamedScalar{Name: ac.Name})
					agg.Aggs = append(agg.Aggs, ac)
					outs = append(outs, outCol{name: ac.Name})
				}
				continue
			}
			if fn, ok := LookupAggregate(call.Name.Name); ok {
				ac, err := b.bindAggCall(call, fn, sc)
				if err != nil {
					return nil, err
				}
				name := ""
				if len(a.Names) > 0 {
					name = a.Names[0].Name
				} else {
					name = uniqueName(defaultAggName(call, fn), names)
				}
				ac.Name = name
				names = append(names, NamedScalar{Name: name})
				agg.Aggs = append(agg.Aggs, ac)
				outs = append(outs, outCol{name: name})
				continue
			}
		}
		if !containsAgg(a.X) {
			if call, ok := unparen(a.X).(*Call); ok && call.Name != nil {
				return nil, semErr(call, "'%s' is not an aggregation function", call.Name.Name)
			}
			return nil, semErr(a.X, "summarize expects an aggregation function call")
		}
		post := &scope{cols: keySchema}
		found := false
		post.agg = func(call *Call, fn AggID) (Scalar, error) {
			if fn == AggPercentiles {
				return nil, semErr(call, "'%s' cannot be used inside an expression; use percentile or percentiles_array", fn)
			}
			ac, err := b.bindAggCall(call, fn, sc)
			if err != nil {
				return nil, err
			}
			ac.Name = fmt.Sprintf("__agg%d", hidden)
			hidden++
			found = true
			agg.Aggs = append(agg.Aggs, ac)
			return &ColRef{Name: ac.Name, T: ac.T}, nil
		}
		x, err := b.bindScalar(a.X, post)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, semErr(a.X, "summarize expects an aggregation function call")
		}
		name := inferName(a, x, names, false)
		names = append(names, NamedScalar{Name: name})
		outs = append(outs, outCol{name: name, x: x})
	}
	if err := checkDuplicates(op, names); err != nil {
		return nil, err
	}
	if len(agg.Keys) == 0 && len(agg.Aggs) == 0 {
		return nil, semErr(op, "summarize needs an aggregation or a by clause")
	}
	if hidden == 0 {
		return agg, nil
	}
	var cols []NamedScalar
	for _, k := range agg.Keys {
		cols = append(cols, NamedScalar{Name: k.Name, X: &ColRef{Name: k.Name, T: k.X.Type()}})
	}
	for _, o := range outs {
		if o.x != nil {
			cols = append(cols, NamedScalar{Name: o.name, X: o.x})
			continue
		}
		for _, ac := range agg.Aggs {
			if ac.Name == o.name {
				cols = append(cols, NamedScalar{Name: o.name, X: &ColRef{Name: o.name, T: ac.T}})
			}
		}
	}
	return &Compute{Input: agg, Cols: cols}, nil
}

// bindMakeSeries binds make-series as a Filter on the axis range, an
// Aggregate by the by keys and the axis bin, and a SeriesPack that lays the
// bins out as arrays.
func (b *binder) bindMakeSeries(in PlanNode, op *MakeSeries) (PlanNode, error) {
	nonEmpty := false
	for _, o := range op.Options {
		if strings.ToLower(o.Name) == "kind" {
			id, ok := o.Value.(*Ident)
			if !ok || strings.ToLower(id.Name) != "nonempty" {
				return nil, semErr(o, "make-series kind must be nonempty")
			}
			nonEmpty = true
		}
	}
	schema := in.Schema()
	sc := scopeOf(schema)
	axis, err := b.bindScalar(op.On, sc)
	if err != nil {
		return nil, err
	}
	at := axis.Type()
	if at != store.TypeDatetime && at != store.TypeTimespan && !IsNumeric(at) {
		return nil, semErr(op.On, "make-series axis must be a datetime, timespan or number, got %s", at)
	}
	axisName := ""
	if id, ok := unparen(op.On).(*Ident); ok {
		axisName = id.Name
	} else {
		return nil, semErr(op.On, "make-series on expects a column name")
	}
	empty := scopeOf(nil)
	bindConst := func(e Expr) (Scalar, error) {
		if e == nil {
			return nil, nil
		}
		x, err := b.bindScalar(e, empty)
		if err != nil {
			return nil, err
		}
		return x, nil
	}
	step, err := bindConst(op.Step)
	if err != nil {
		return nil, err
	}
	from, err := bindConst(op.From)
	if err != nil {
		return nil, err
	}
	to, err := bindConst(op.To)
	if err != nil {
		return nil, err
	}
	wantStep := at
	if at == store.TypeDatetime {
		wantStep = store.TypeTimespan
	}
	if st := step.Type(); !(st == wantStep || (IsNumeric(st) && IsNumeric(wantStep))) {
		return nil, semErr(op.Step, "make-series step must be %s, got %s", wantStep, st)
	}
	for _, e := range []struct {
		x Scalar
		n Expr
	}{{from, op.From}, {to, op.To}} {
		if e.x != nil && !(e.x.Type() == at || (IsNumeric(e.x.Type()) && IsNumeric(at))) {
			return nil, semErr(e.n, "make-series from/to must have the axis type %s, got %s", at, e.x.Type())
		}
	}
	filtered := in
	var conds []Scalar
	if from != nil {
		c, err := ResolveBinaryOperator(">=", axis, from)
		if err != nil {
			return nil, semWrap(op.From, err)
		}
		conds = append(conds, c)
	}
	if to != nil {
		c, err := ResolveBinaryOperator("<", axis, to)
		if err != nil {
			return nil, semWrap(op.To, err)
		}
		conds = append(conds, c)
	}
	if len(conds) > 0 {
		pred := conds[0]
		if len(conds) == 2 {
			if pred, err = resolveLogical(OpAnd, conds...); err != nil {
				return nil, semWrap(op, err)
			}
		}
		filtered = &Filter{Input: in, Pred: pred}
	}
	binArg := axis
	if from != nil {
		if binArg, err = ResolveBinaryOperator("-", axis, from); err != nil {
			return nil, semWrap(op.From, err)
		}
	}
	binKey, err := ResolveFunction("bin", []Scalar{binArg, step})
	if err != nil {
		return nil, semWrap(op.Step, err)
	}
	agg := &Aggregate{Input: filtered}
	pack := &SeriesPack{Input: agg, Axis: axisName, AxisT: at, From: from, To: to, Step: step, Bin: "__bin", NonEmpty: nonEmpty}
	for _, k := range op.By {
		x, err := b.bindScalar(k.X, sc)
		if err != nil {
			return nil, err
		}
		if x.Type() == store.TypeDynamic {
			return nil, semErr(k.X, "make-series by a dynamic value is not supported")
		}
		name := inferName(k, x, agg.Keys, true)
		if name == axisName {
			return nil, semErr(k.X, "make-series by column '%s' is also the axis", name)
		}
		agg.Keys = append(agg.Keys, NamedScalar{Name: name, X: x})
		pack.Keys = append(pack.Keys, name)
	}
	agg.Keys = append(agg.Keys, NamedScalar{Name: pack.Bin, X: binKey})
	names := append([]NamedScalar(nil), agg.Keys...)
	names = append(names, NamedScalar{Name: axisName})
	for _, a := range op.Aggs {
		call, ok := unparen(a.X).(*Call)
		var fn AggID
		if ok && call.Target == nil && call.Name != nil {
			fn, ok = LookupAggregate(call.Name.Name)
		}
		if !ok || fn == AggArgMax || fn == AggArgMin || fn == AggPercentiles {
			return nil, semErr(a.X, "make-series expects a single-column aggregation function call")
		}
		ac, err := b.bindAggCall(call, fn, sc)
		if err != nil {
			return nil, err
		}
		name := defaultAggName(call, fn)
		if len(a.Names) > 0 {
			name = a.Names[0].Name
		}
		name = uniqueName(name, names)
		ac.Name = name
		names = append(names, NamedScalar{Name: name})
		agg.Aggs = append(agg.Aggs, ac)
		def := NullValue(ac.T)
		if IsNumeric(ac.T) {
			def = Value{Type: store.TypeLong} // Kusto's default: 0
		}
		if a.Default != nil {
			d, err := b.bindScalar(a.Default, empty)
			if err != nil {
				return nil, err
			}
			c, ok := d.(*Const)
			if !ok {
				return nil, semErr(a.Default, "make-series default must be a constant")
			}
			def = c.V
		}
		pack.Aggs = append(pack.Aggs, SeriesAgg{Name: name, Default: def})
	}
	if len(op.Aggs) == 0 {
		return nil, semErr(op, "make-series needs an aggregation")
	}
	return pack, nil
}

// containsAgg reports whether e calls an aggregation function.
func containsAgg(e Expr) bool {
	switch e := e.(type) {
	case *Paren:
		return containsAgg(e.X)
	case *Unary:
		return containsAgg(e.X)
	case *Binary:
		return containsAgg(e.X) || containsAgg(e.Y)
	case *Between:
		return containsAgg(e.X) || containsAgg(e.Lo) || containsAgg(e.Hi)
	case *In:
		if containsAgg(e.X) {
			return true
		}
		for _, x := range e.List {
			if containsAgg(x) {
				return true
			}
		}
	case *Call:
		if e.Name != nil && e.Target == nil {
			if _, ok := LookupAggregate(e.Name.Name); ok {
				return true
			}
		}
		for _, x := range e.Args {
			if containsAgg(x) {
				return true
			}
		}
	}
	return false
}

// bindArgAgg binds arg_max / arg_min, which yield several columns: the
// maximized expression, then each ExprToReturn ('*' is every input column
// that is neither a by key nor the maximized column). Each column is its own
// AggCall over (ExprToMaximize, ExprToReturn); they all pick the same row
// because they see the same rows in the same order and keep the first
// extreme on ties.
func (b *binder) bindArgAgg(call *Call, fn AggID, sc *scope, as []*Ident, keys, existing []NamedScalar) ([]*AggCall, error) {
	if len(call.Args) < 2 {
		return nil, semErr(call, "function '%s' expects at least 2 arguments, got %d", fn, len(call.Args))
	}
	if _, star := call.Args[0].(*Star); star {
		return nil, semErr(call.Args[0], "function '%s': the expression to maximize cannot be '*'", fn)
	}
	x, err := b.bindScalar(call.Args[0], sc)
	if err != nil {
		return nil, err
	}
	type col struct {
		name string
		x    Scalar
	}
	firstName := ""
	if id, ok := unparen(call.Args[0]).(*Ident); ok {
		firstName = id.Name
	} else {
		firstName = inferName(&NamedExpr{X: call.Args[0]}, x, existing, false)
	}
	cols := []col{{firstName, x}}
	isKey := func(n string) bool {
		for _, k := range keys {
			if k.Name == n {
				return true
			}
		}
		return false
	}
	for _, arg := range call.Args[1:] {
		if _, star := arg.(*Star); star {
			for _, c := range sc.cols {
				if c.Name == firstName || isKey(c.Name) {
					continue
				}
				cols = append(cols, col{c.Name, &ColRef{Name: c.Name, T: c.Type}})
			}
			continue
		}
		if _, named := arg.(*NamedArg); named {
			return nil, semErr(arg, "named arguments are not supported for '%s'", fn)
		}
		r, err := b.bindScalar(arg, sc)
		if err != nil {
			return nil, err
		}
		name := ""
		if id, ok := unparen(arg).(*Ident); ok {
			name = id.Name
		} else {
			name = inferName(&NamedExpr{X: arg}, r, existing, false)
		}
		cols = append(cols, col{name, r})
	}
	if len(as) > len(cols) {
		return nil, semErr(call, "%d names given for the %d columns of '%s'", len(as), len(cols), fn)
	}
	var out []*AggCall
	taken := append([]NamedScalar(nil), existing...)
	for i, c := range cols {
		ac, err := resolveAggregate(fn, []Scalar{x, c.x})
		if err != nil {
			return nil, semWrap(call, err)
		}
		name := c.name
		if i < len(as) {
			name = as[i].Name
		} else {
			name = uniqueName(name, taken)
		}
		ac.Name = name
		taken = append(taken, NamedScalar{Name: name})
		out = append(out, ac)
	}
	return out, nil
}

// bindPercentiles binds percentile and percentiles as one column per
// percentile, named percentile_<column>_<p> (a '.' in p becomes '_').
func (b *binder) bindPercentiles(call *Call, fn AggID, sc *scope, as []*Ident, existing []NamedScalar) ([]*AggCall, error) {
	all, err := b.bindAggCall(call, fn, sc)
	if err != nil {
		return nil, err
	}
	if len(as) > len(all.Percents) {
		return nil, semErr(call, "%d names given for the %d columns of '%s'", len(as), len(all.Percents), fn)
	}
	col := ""
	if len(call.Args) > 0 {
		if id, ok := unparen(call.Args[0]).(*Ident); ok {
			col = id.Name
		}
	}
	taken := append([]NamedScalar(nil), existing...)
	var out []*AggCall
	for i, p := range all.Percents {
		ac := *all
		ac.Fn = AggPercentile
		ac.Percents = []float64{p}
		if i < len(as) {
			ac.Name = as[i].Name
		} else {
			ps := strings.ReplaceAll(strconv.FormatFloat(p, 'f', -1, 64), ".", "_")
			ac.Name = uniqueName("percentile_"+col+"_"+ps, taken)
		}
		taken = append(taken, NamedScalar{Name: ac.Name})
		out = append(out, &ac)
	}
	return out, nil
}

// bindAggCall binds the arguments of an aggregation call against the input.
func (b *binder) bindAggCall(call *Call, fn AggID, sc *scope) (*AggCall, error) {
	if fn == AggArgMax || fn == AggArgMin {
		return nil, semErr(call, "'%s' cannot be used inside an expression", fn)
	}
	var args []Scalar
	for _, arg := range call.Args {
		if _, star := arg.(*Star); star && fn == AggCount {
			continue
		}
		if _, named := arg.(*NamedArg); named {
			return nil, semErr(arg, "named arguments are not supported for '%s'", call.Name.Name)
		}
		x, err := b.bindScalar(arg, sc)
		if err != nil {
			return nil, err
		}
		args = append(args, x)
	}
	ac, err := resolveAggregate(fn, args)
	if err != nil {
		return nil, semWrap(call, err)
	}
	return ac, nil
}

func uniqueName(name string, existing []NamedScalar) string {
	taken := func(n string) bool {
		for _, c := range existing {
			if c.Name == n {
				return true
			}
		}
		return false
	}
	if !taken(name) {
		return name
	}
	for i := 1; ; i++ {
		n := name + strconv.Itoa(i)
		if !taken(n) {
			return n
		}
	}
}

// ---------------------------------------------------------------------------
// Scalar expressions

// scope is what names mean inside a scalar expression: the input columns,
// plus columns defined earlier in the same extend/project.
type scope struct {
	cols    store.Schema
	defined map[string]Scalar
	// agg, when set, binds aggregation calls (expressions over aggregations
	// in summarize); otherwise an aggregation call is an error.
	agg func(c *Call, fn AggID) (Scalar, error)
}

func scopeOf(s store.Schema) *scope { return &scope{cols: s} }

func (b *binder) bindScalar(e Expr, sc *scope) (Scalar, error) {
	switch e := e.(type) {
	case *Paren:
		if b.isTabular(e.X) {
			return nil, semErr(e, "a tabular expression cannot be used as a scalar (toscalar is not supported yet)")
		}
		return b.bindScalar(e.X, sc)
	case *Ident:
		if x, ok := sc.defined[e.Name]; ok {
			return x, nil
		}
		if i := sc.cols.Index(e.Name); i >= 0 {
			return &ColRef{Name: e.Name, T: sc.cols[i].Type}, nil
		}
		if l, ok := b.lets[e.Name]; ok && l.scalar != nil {
			return l.scalar, nil
		}
		return nil, semErr(e, "Failed to resolve scalar expression named '%s'", e.Name)
	case *Literal:
		return &Const{V: literalValue(e)}, nil
	case *Unary:
		x, err := b.bindScalar(e.X, sc)
		if err != nil {
			return nil, err
		}
		if e.Op == "+" {
			if !IsNumeric(x.Type()) && x.Type() != store.TypeTimespan {
				return nil, semErr(e, "operator '+' cannot be applied to %s", x.Type())
			}
			return x, nil
		}
		r, err := ResolveUnaryMinus(x)
		if err != nil {
			return nil, semWrap(e, err)
		}
		return r, nil
	case *Binary:
		if e.Op == ":" {
			return nil, semErr(e, "the ':' operator is only valid in search")
		}
		if _, ok := e.X.(*Star); ok {
			r, err := b.bindScalar(e.Y, sc)
			if err != nil {
				return nil, err
			}
			return anyColumn(e, e.Op, r, sc.cols, false)
		}
		l, err := b.bindScalar(e.X, sc)
		if err != nil {
			return nil, err
		}
		r, err := b.bindScalar(e.Y, sc)
		if err != nil {
			return nil, err
		}
		x, err := ResolveBinaryOperator(e.Op, l, r)
		if err != nil {
			return nil, semWrap(e, err)
		}
		return x, nil
	case *In:
		x, err := b.bindScalar(e.X, sc)
		if err != nil {
			return nil, err
		}
		var list []Scalar
		if len(e.List) == 1 && b.isTabular(e.List[0]) {
			op := strings.ToLower(e.Op)
			if op != "in" && op != "!in" {
				return nil, semErr(e, "'%s' with a tabular expression is not supported yet", e.Op)
			}
			sub, err := b.subquery(e.List[0], true)
			if err != nil {
				return nil, err
			}
			xt, st := x.Type(), sub.T
			if !(xt == st || (IsNumeric(xt) && IsNumeric(st)) || (IsStringLike(xt) && IsStringLike(st))) {
				return nil, semErr(e, "cannot compare %s with a column of %s", xt, st)
			}
			var r Scalar = &FnCall{Fn: OpInSubquery, Args: []Scalar{x, sub}, T: store.TypeBool}
			if op == "!in" {
				r = &FnCall{Fn: OpNot, Args: []Scalar{r}, T: store.TypeBool}
			}
			return r, nil
		}
		for _, it := range e.List {
			if b.isTabular(it) {
				return nil, semErr(it, "'%s' with a tabular expression is not supported yet", e.Op)
			}
			v, err := b.bindScalar(it, sc)
			if err != nil {
				return nil, err
			}
			if k, ok := v.(*Const); ok && k.V.Type == store.TypeDynamic {
				elems, err := dynamicArray(k.V.Str)
				if err != nil {
					return nil, semErr(it, "%v", err)
				}
				list = append(list, elems...)
				continue
			}
			list = append(list, v)
		}
		switch strings.ToLower(e.Op) {
		case "has_any", "has_all":
			return hasAnyAll(strings.ToLower(e.Op) == "has_all", x, list, e)
		}
		r, err := ResolveIn(e.Op, x, list)
		if err != nil {
			return nil, semWrap(e, err)
		}
		return r, nil
	case *Between:
		x, err := b.bindScalar(e.X, sc)
		if err != nil {
			return nil, err
		}
		lo, err := b.bindScalar(e.Lo, sc)
		if err != nil {
			return nil, err
		}
		hi, err := b.bindScalar(e.Hi, sc)
		if err != nil {
			return nil, err
		}
		r, err := ResolveBetween(x, lo, hi, e.Not)
		if err != nil {
			return nil, semWrap(e, err)
		}
		return r, nil
	case *Call:
		if e.Target != nil {
			return nil, semErr(e, "method-style calls are not supported")
		}
		if sc.agg != nil {
			if fn, ok := LookupAggregate(e.Name.Name); ok {
				return sc.agg(e, fn)
			}
		}
		if err := b.checkTransformFunction(e); err != nil {
			return nil, err
		}
		if e.Name.Name == "materialize" {
			return nil, semErr(e, "materialize() is tabular; use toscalar() to read one value")
		}
		if fn, err := b.lookupFunction(e.Name.Name); err != nil {
			return nil, semWrap(e, err)
		} else if fn != nil {
			n, x, err := b.callFunction(e, fn, sc, nil, nil)
			if err != nil {
				return nil, err
			}
			if n != nil {
				return nil, semErr(e, "function '%s' returns a table; use toscalar() to read one value of it", e.Name.Name)
			}
			return x, nil
		}
		if _, ok := b.isMultiColumnCall(e); ok {
			return nil, semErr(e, "function '%s' returns several columns; call it directly in extend or project, or use %s_dynamic()", e.Name.Name, e.Name.Name)
		}
		if e.Name.Name == "pack_all" {
			return b.bindPackAll(e, sc)
		}
		if e.Name.Name == "toscalar" {
			if len(e.Args) != 1 {
				return nil, semErr(e, "toscalar expects one tabular argument")
			}
			if !b.isTabular(e.Args[0]) {
				return b.bindScalar(e.Args[0], sc)
			}
			return b.subquery(e.Args[0], false)
		}
		args := make([]Scalar, 0, len(e.Args))
		for _, a := range e.Args {
			switch a := a.(type) {
			case *NamedArg:
				return nil, semErr(a, "named arguments are not supported for '%s'", e.Name.Name)
			case *Star:
				return nil, semErr(a, "'*' is not a valid argument of '%s'", e.Name.Name)
			}
			x, err := b.bindScalar(a, sc)
			if err != nil {
				return nil, err
			}
			args = append(args, x)
		}
		r, err := ResolveFunction(e.Name.Name, args)
		if err != nil {
			return nil, semErr(e.Name, "%s", err.Error())
		}
		return r, nil
	case *Member, *Index:
		return b.bindPath(e, sc)
	case *Star:
		return nil, semErr(e, "'*' is not valid here")
	case *Typeof:
		return nil, semErr(e, "typeof() is not valid here")
	case *Lambda:
		return nil, semErr(e, "a function body is not valid here")
	}
	if b.isTabular(e) {
		return nil, semErr(e, "a tabular expression cannot be used as a scalar")
	}
	return nil, semErr(e, "unsupported expression")
}

// bindPath binds x.name, x["key"] and x[i] on a dynamic value into one
// FnDynGet with the whole constant path.
func (b *binder) bindPath(e Expr, sc *scope) (Scalar, error) {
	var base Expr
	var key Scalar
	switch e := e.(type) {
	case *Member:
		base, key = e.X, &Const{V: StringValue(e.Name.Name)}
	case *Index:
		base = e.X
		k, err := b.bindScalar(e.Index, sc)
		if err != nil {
			return nil, err
		}
		c, ok := k.(*Const)
		if !ok || c.V.Null || !(IsStringLike(c.V.Type) || IsInteger(c.V.Type)) {
			return nil, semErr(e.Index, "a dynamic index must be a constant string or integer")
		}
		if IsInteger(c.V.Type) {
			key = &Const{V: LongValue(c.V.Int)}
		} else {
			key = &Const{V: StringValue(c.V.Str)}
		}
	}
	x, err := b.bindScalar(base, sc)
	if err != nil {
		return nil, err
	}
	if x.Type() != store.TypeDynamic {
		return nil, semErr(e, "property access needs a dynamic value, not %s", x.Type())
	}
	if c, ok := x.(*FnCall); ok && c.Fn == FnDynGet {
		args := append(append([]Scalar{}, c.Args...), key)
		return &FnCall{Fn: FnDynGet, Args: args, T: store.TypeDynamic}, nil
	}
	return &FnCall{Fn: FnDynGet, Args: []Scalar{x, key}, T: store.TypeDynamic}, nil
}

// pathName is Kusto's inferred column name of a property path: a.b["c"] is a_b_c.
func pathName(e Expr) (string, bool) {
	switch e := e.(type) {
	case *Ident:
		return e.Name, true
	case *Member:
		p, ok := pathName(e.X)
		return p + "_" + e.Name.Name, ok
	case *Index:
		p, ok := pathName(e.X)
		if l, isLit := e.Index.(*Literal); isLit {
			if l.Type == store.TypeString {
				return p + "_" + l.Str, ok
			}
			return p + "_" + strconv.FormatInt(l.Int, 10), ok
		}
		return "", false
	}
	return "", false
}

// anyColumn binds "* op value": true when any string (or dynamic) column of
// the input satisfies "column op value".
func anyColumn(n Node, op string, r Scalar, cols store.Schema, cs bool) (Scalar, error) {
	if !IsStringLike(r.Type()) {
		return nil, semErr(n, "'* %s' expects a string", op)
	}
	var out Scalar
	for _, c := range cols {
		if !IsStringLike(c.Type) {
			continue
		}
		x, err := ResolveBinaryOperator(op, &ColRef{Name: c.Name, T: c.Type}, r)
		if err != nil {
			return nil, semWrap(n, err)
		}
		if out == nil {
			out = x
		} else {
			out = &FnCall{Fn: OpOr, Args: []Scalar{out, x}, T: store.TypeBool}
		}
	}
	if out == nil {
		return &Const{V: BoolValue(false)}, nil
	}
	return out, nil
}

// bindSearchPred binds a search predicate: a bare string is "* has s", and
// Col:"s" is "Col has s"; kind=case_sensitive uses has_cs.
func (b *binder) bindSearchPred(e Expr, sc *scope, cs bool) (Scalar, error) {
	hasOp := "has"
	if cs {
		hasOp = "has_cs"
	}
	switch e := e.(type) {
	case *Paren:
		return b.bindSearchPred(e.X, sc, cs)
	case *Literal:
		if e.Type == store.TypeString {
			return anyColumn(e, hasOp, &Const{V: literalValue(e)}, sc.cols, cs)
		}
	case *Binary:
		switch e.Op {
		case ":":
			l, err := b.bindScalar(e.X, sc)
			if err != nil {
				return nil, err
			}
			r, err := b.bindScalar(e.Y, sc)
			if err != nil {
				return nil, err
			}
			x, err := ResolveBinaryOperator(hasOp, l, r)
			if err != nil {
				return nil, semWrap(e, err)
			}
			return x, nil
		case "and", "or":
			l, err := b.bindSearchPred(e.X, sc, cs)
			if err != nil {
				return nil, err
			}
			r, err := b.bindSearchPred(e.Y, sc, cs)
			if err != nil {
				return nil, err
			}
			x, err := ResolveBinaryOperator(e.Op, l, r)
			if err != nil {
				return nil, semWrap(e, err)
			}
			return x, nil
		}
	case *Call:
		if e.Name != nil && e.Name.Name == "not" && len(e.Args) == 1 {
			x, err := b.bindSearchPred(e.Args[0], sc, cs)
			if err != nil {
				return nil, err
			}
			return resolveLogical(OpNot, x)
		}
	}
	return b.bindScalar(e, sc)
}

// bindSearch binds search: after a pipe it filters its input; as a source
// it searches the tables of "in (...)" (every table when absent, if the
// catalog can list them) and adds the $table column.
func (b *binder) bindSearch(in PlanNode, s *Search) (PlanNode, error) {
	cs := false
	for _, o := range s.Options {
		if strings.ToLower(o.Name) != "kind" {
			return nil, semErr(o, "unknown search option '%s'", o.Name)
		}
		if id, ok := o.Value.(*Ident); ok {
			switch strings.ToLower(id.Name) {
			case "case_sensitive":
				cs = true
			case "case_insensitive", "default":
			default:
				return nil, semErr(o, "unknown search kind '%s'", id.Name)
			}
		}
	}
	if in == nil {
		tables := s.In
		if len(tables) == 0 {
			lister, ok := b.cat.(TableLister)
			if !ok {
				return nil, semErr(s, "search needs 'in (table, ...)'")
			}
			for _, name := range lister.TableNames() {
				tables = append(tables, &Ident{Pos: s.Pos, Name: name})
			}
		}
		u := &Union{Pos: s.Pos, Tables: tables, Options: []*OptionArg{{Pos: s.Pos, Name: "withsource", Value: &Ident{Pos: s.Pos, Name: "$table"}}}}
		n, err := b.bindUnion(nil, u)
		if err != nil {
			return nil, err
		}
		in = n
	}
	sc := scopeOf(in.Schema())
	if in.Schema().Index("$table") >= 0 {
		// $table is not searched.
		sc = scopeOf(slices.DeleteFunc(append(store.Schema{}, in.Schema()...), func(c store.Column) bool { return c.Name == "$table" }))
	}
	pred, err := b.bindSearchPred(s.Pred, sc, cs)
	if err != nil {
		return nil, err
	}
	if pred.Type() != store.TypeBool {
		return nil, semErr(s.Pred, "the search predicate must be bool, not %s", pred.Type())
	}
	return &Filter{Input: in, Pred: pred}, nil
}

// subquery binds a tabular expression used as a scalar (toscalar) or as the
// list of an in operator.
func (b *binder) subquery(e Expr, set bool) (*Subquery, error) {
	n, err := b.bindTabular(e)
	if err != nil {
		return nil, err
	}
	schema := n.Schema()
	if len(schema) == 0 {
		return nil, semErr(e, "the subquery has no columns")
	}
	optimize(n)
	return &Subquery{Node: n, T: schema[0].Type, Set: set}, nil
}

// hasAnyAll binds has_any / has_all over constant terms as or/and of has.
func hasAnyAll(all bool, x Scalar, list []Scalar, n Node) (Scalar, error) {
	if len(list) == 0 {
		return &Const{V: BoolValue(all)}, nil
	}
	var out Scalar
	for _, it := range list {
		if _, ok := it.(*Const); !ok {
			return nil, semErr(n, "has_any/has_all expect constant terms")
		}
		if !IsStringLike(it.Type()) {
			it = &Const{V: StringValue(it.(*Const).V.String())}
		}
		h, err := ResolveBinaryOperator("has", x, it)
		if err != nil {
			return nil, semWrap(n, err)
		}
		if out == nil {
			out = h
			continue
		}
		op := OpOr
		if all {
			op = OpAnd
		}
		out = &FnCall{Fn: op, Args: []Scalar{out, h}, T: store.TypeBool}
	}
	return out, nil
}

// dynamicArray expands a dynamic array literal into constants.
func dynamicArray(js string) ([]Scalar, error) {
	var raw []any
	dec := jsonDecoder(js)
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("expected a dynamic array of scalars")
	}
	out := make([]Scalar, 0, len(raw))
	for _, v := range raw {
		switch v := v.(type) {
		case string:
			out = append(out, &Const{V: StringValue(v)})
		case bool:
			out = append(out, &Const{V: BoolValue(v)})
		case jsonNumber:
			if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
				out = append(out, &Const{V: LongValue(i)})
			} else if f, err := strconv.ParseFloat(string(v), 64); err == nil {
				out = append(out, &Const{V: RealValue(f)})
			}
		case nil:
		default:
			return nil, fmt.Errorf("expected a dynamic array of scalars")
		}
	}
	return out, nil
}

// literalValue converts a parsed literal to a Value.
func literalValue(l *Literal) Value {
	v := Value{Type: l.Type, Null: l.Null, Bool: l.Bool, Int: l.Int, Real: l.Real, Str: l.Str}
	if l.Type == store.TypeDecimal && !l.Null && l.Str != "" && l.Real == 0 {
		if f, err := strconv.ParseFloat(l.Str, 64); err == nil {
			v.Real = f
		}
	}
	if l.Type == store.TypeInt {
		v.Int = int64(int32(l.Int))
	}
	if l.Type == store.TypeString {
		v.Null = false
	}
	return v
}

type jsonNumber = json.Number

func jsonDecoder(s string) *json.Decoder {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	return d
}

// bindPackAll binds pack_all([ignore_null_empty]) over the columns of the
// operator's input.
func (b *binder) bindPackAll(c *Call, sc *scope) (Scalar, error) {
	if len(c.Args) > 1 {
		return nil, semErr(c, "function 'pack_all' expects 0 or 1 arguments, got %d", len(c.Args))
	}
	ignore := false
	if len(c.Args) == 1 {
		v, err := b.bindScalar(c.Args[0], sc)
		if err != nil {
			return nil, err
		}
		k, ok := v.(*Const)
		if !ok || k.V.Type != store.TypeBool {
			return nil, semErr(c.Args[0], "the ignore_null_empty argument of pack_all must be a constant bool")
		}
		ignore = !k.V.Null && k.V.Bool
	}
	return PackAll(sc.cols, ignore), nil
}

// checkTransformFunction refuses, in a DCR transformation
// (BindOptions.PerRecordOnly), a built-in function outside Azure's list of
// functions supported in transformations; functions the query defines with
// let stay allowed.
func (b *binder) checkTransformFunction(c *Call) error {
	if !b.opts.PerRecordOnly || AllowedInTransform(c.Name.Name) {
		return nil
	}
	if fn, err := b.lookupFunction(c.Name.Name); err == nil && fn != nil {
		return nil
	}
	return semErr(c.Name, "function '%s' is not allowed in a transformation; only the functions Azure lists for transformations are (conversions such as tostring and todatetime, datetime, math, string functions such as extract, split and hash_sha256, iff/case, pack_array, bag_pack, parse_json, isnull/isnotnull, ...)", c.Name.Name)
}

// defaultAggName is Kusto's name for an unnamed aggregation column: the
// function's prefix, then the argument's name when the first argument is a
// column (count_, sum_Bytes, percentiles_…); countif's argument is a
// predicate, so it keeps the bare prefix.
func defaultAggName(call *Call, fn AggID) string {
	name := aggNamePrefix(call, fn)
	if len(call.Args) > 0 && fn != AggCountIf {
		if id, ok := unparen(call.Args[0]).(*Ident); ok {
			name += id.Name
		}
	}
	return name
}

// aggNamePrefix is the start of the default name of an unnamed aggregation
// column, as Kusto names it: the function's name and "_" (count_, avg_,
// followed by the argument's column name when it is one), except
// percentiles_array (percentiles_) and buildschema (schema_).
func aggNamePrefix(call *Call, fn AggID) string {
	switch fn {
	case AggPercentilesArray:
		return "percentiles_"
	case AggBuildSchema:
		return "schema_"
	}
	return call.Name.Name + "_"
}
