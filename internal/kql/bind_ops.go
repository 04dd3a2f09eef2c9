package kql

import (
	"slices"
	"strconv"
	"strings"

	"custos/internal/store"
)

// This file binds the operators added on top of the first slice: sample,
// sample-distinct, top-hitters, top-nested, parse-kv, mv-apply, facet,
// evaluate (bag_unpack, pivot, narrow), find, invoke and render.

// constNumber binds a constant count that may be written as a real
// (top-hitters 5.0 of ...).
func (b *binder) constNumber(e Expr) (int64, error) {
	x, err := b.bindScalar(e, &scope{})
	if err != nil {
		return 0, err
	}
	k, ok := x.(*Const)
	if ok && !k.V.Null && IsRealHeld(k.V.Type) && k.V.Real >= 0 && k.V.Real < 1<<62 {
		return int64(k.V.Real), nil
	}
	return b.constCount(e)
}

func (b *binder) bindSample(in PlanNode, op *Sample) (PlanNode, error) {
	n, err := b.constNumber(op.Count)
	if err != nil {
		return nil, err
	}
	return &RandomSample{Input: in, N: n}, nil
}

// bindSampleDistinct: sample-distinct N of expr is N random distinct values
// of expr, in one column named as summarize by would name it.
func (b *binder) bindSampleDistinct(in PlanNode, op *SampleDistinct) (PlanNode, error) {
	n, err := b.constNumber(op.Count)
	if err != nil {
		return nil, err
	}
	x, err := b.bindScalar(op.Of, scopeOf(in.Schema()))
	if err != nil {
		return nil, err
	}
	if x.Type() == store.TypeDynamic {
		return nil, semErr(op.Of, "sample-distinct of a dynamic value is not supported")
	}
	name := inferName(&NamedExpr{Pos: op.Pos, X: op.Of}, x, nil, true)
	agg := &Aggregate{Input: in, Keys: []NamedScalar{{Name: name, X: x}}}
	return &RandomSample{Input: agg, N: n}, nil
}

// bindTopHitters: top-hitters N of expr [by sum-expr] is summarize
// approximate_count_X = count() (or approximate_sum_X = sum(by)) by X | top N
// by it desc. Custos computes it exactly.
func (b *binder) bindTopHitters(in PlanNode, op *TopHitters) (PlanNode, error) {
	n, err := b.constNumber(op.Count)
	if err != nil {
		return nil, err
	}
	sc := scopeOf(in.Schema())
	x, err := b.bindScalar(op.Of, sc)
	if err != nil {
		return nil, err
	}
	if x.Type() == store.TypeDynamic {
		return nil, semErr(op.Of, "top-hitters of a dynamic value is not supported")
	}
	name := inferName(&NamedExpr{Pos: op.Pos, X: op.Of}, x, nil, true)
	var ac *AggCall
	if op.By == nil {
		ac = &AggCall{Name: "approximate_count_" + name, Fn: AggCount, T: store.TypeLong}
	} else {
		y, err := b.bindScalar(op.By, sc)
		if err != nil {
			return nil, err
		}
		if !IsNumeric(y.Type()) {
			return nil, semErr(op.By, "top-hitters by expects a number, not %s", y.Type())
		}
		ac, err = resolveAggregate(AggSum, []Scalar{y})
		if err != nil {
			return nil, semWrap(op.By, err)
		}
		ac.Name = "approximate_sum_" + name
	}
	agg := &Aggregate{Input: in, Keys: []NamedScalar{{Name: name, X: x}}, Aggs: []*AggCall{ac}}
	return &TopN{Input: agg, N: n, Keys: []OrderKey{{X: &ColRef{Name: ac.Name, T: ac.T}, Desc: true}}}, nil
}

// bindTopNested binds top-nested: two output columns per level, the value
// (named as written or inferred) and the aggregation (default name
// aggregated_<value column>).
func (b *binder) bindTopNested(in PlanNode, op *TopNested) (PlanNode, error) {
	sc := scopeOf(in.Schema())
	t := &NestedTop{Input: in}
	var names []NamedScalar
	for _, lv := range op.Levels {
		l := NestedLevel{N: -1}
		if lv.Count != nil {
			n, err := b.constNumber(lv.Count)
			if err != nil {
				return nil, err
			}
			l.N = n
		}
		x, err := b.bindScalar(lv.Of.X, sc)
		if err != nil {
			return nil, err
		}
		if x.Type() == store.TypeDynamic {
			return nil, semErr(lv.Of.X, "top-nested of a dynamic value is not supported")
		}
		l.Of = NamedScalar{Name: inferName(lv.Of, x, names, true), X: x}
		names = append(names, l.Of)
		if lv.Others != nil {
			o, err := b.bindScalar(lv.Others, &scope{})
			if err != nil {
				return nil, err
			}
			k, ok := o.(*Const)
			if !ok {
				return nil, semErr(lv.Others, "the 'with others' value must be a constant")
			}
			v, ok := literalAs(k.V, x.Type())
			if !ok {
				return nil, semErr(lv.Others, "the 'with others' value is %s; the level's values are %s", k.V.Type, x.Type())
			}
			l.Others = &v
		}
		call, ok := unparen(lv.By.X).(*Call)
		var fn AggID
		if ok && call.Target == nil {
			fn, ok = LookupAggregate(call.Name.Name)
		}
		if !ok {
			return nil, semErr(lv.By.X, "top-nested by expects an aggregation such as sum(x) or count()")
		}
		ac, err := b.bindAggCall(call, fn, sc)
		if err != nil {
			return nil, err
		}
		ac.Name = "aggregated_" + l.Of.Name
		if len(lv.By.Names) > 0 {
			ac.Name = lv.By.Names[0].Name
		}
		names = append(names, NamedScalar{Name: ac.Name, X: &ColRef{Name: ac.Name, T: ac.T}})
		l.Agg = ac
		l.Asc = strings.EqualFold(lv.Order, "asc")
		t.Levels = append(t.Levels, l)
	}
	if err := checkDuplicates(op, names); err != nil {
		return nil, err
	}
	return t, nil
}

// optionText returns an option's value as text (an identifier's name or a
// string literal's value).
func optionText(o *OptionArg) (string, bool) {
	switch v := unparen(o.Value).(type) {
	case *Ident:
		return v.Name, true
	case *Literal:
		if v.Type == store.TypeString {
			return v.Str, true
		}
		if v.Type == store.TypeBool {
			return strconv.FormatBool(v.Bool), true
		}
	}
	return "", false
}

// bindParseKv binds parse-kv.
func (b *binder) bindParseKv(in PlanNode, op *ParseKv) (PlanNode, error) {
	schema := in.Schema()
	x, err := b.bindScalar(op.X, scopeOf(schema))
	if err != nil {
		return nil, err
	}
	p := &ParseKV{Input: in, X: toStr(x), Mode: KVAnyDelim}
	for _, c := range op.Columns {
		t := store.TypeString
		if c.Type != nil {
			if c.Type.Tabular || c.Type.Type == store.TypeInvalid {
				return nil, semErr(c, "parse-kv key '%s' needs a scalar type", c.Name.Name)
			}
			t = c.Type.Type
		}
		p.Keys = append(p.Keys, store.Column{Name: c.Name.Name, Type: t})
	}
	if len(p.Keys) == 0 {
		return nil, semErr(op, "parse-kv needs at least one key")
	}
	if err := checkSchemaDuplicates(op, p.Keys); err != nil {
		return nil, err
	}
	hasPair, hasKV := false, false
	for _, o := range op.With {
		v, ok := optionText(o)
		if !ok {
			return nil, semErr(o, "parse-kv option '%s' expects a constant string", o.Name)
		}
		switch strings.ToLower(o.Name) {
		case "pair_delimiter":
			if v == "" {
				return nil, semErr(o, "pair_delimiter must not be empty")
			}
			p.PairDelim, hasPair = v, true
		case "kv_delimiter":
			if v == "" {
				return nil, semErr(o, "kv_delimiter must not be empty")
			}
			p.KVDelim, hasKV = v, true
		case "quote":
			if n := len([]rune(v)); n < 1 || n > 2 {
				return nil, semErr(o, "quote expects one or two characters")
			}
			p.Quotes = append(p.Quotes, v)
		case "escape":
			if len([]rune(v)) != 1 {
				return nil, semErr(o, "escape expects one character")
			}
			p.Escapes = append(p.Escapes, v)
		case "greedy":
			p.Greedy = strings.EqualFold(v, "true")
		case "regex":
			re, err := CompileRegex(v)
			if err != nil {
				return nil, semErr(o, "parse-kv: %v", err)
			}
			if re.NumSubexp() != 2 {
				return nil, semErr(o, "the parse-kv regex must have exactly two capturing groups (key and value)")
			}
			p.Regex, p.Mode = v, KVRegex
		default:
			return nil, semErr(o, "unknown parse-kv option '%s'", o.Name)
		}
	}
	switch {
	case p.Mode == KVRegex:
		if hasPair || hasKV || len(p.Quotes) > 0 || p.Greedy {
			return nil, semErr(op, "parse-kv with regex takes no other option")
		}
	case hasPair != hasKV:
		return nil, semErr(op, "parse-kv needs both pair_delimiter and kv_delimiter, or neither")
	case hasPair:
		p.Mode = KVDelimited
	default:
		if p.Greedy {
			return nil, semErr(op, "greedy needs pair_delimiter and kv_delimiter")
		}
	}
	if len(p.Escapes) > 0 && len(p.Quotes) == 0 {
		return nil, semErr(op, "escape needs quote")
	}
	return p, nil
}

// bindSubPipeline binds an operator-only subquery "(op | op ...)" on input
// in (mv-apply's on, facet's with).
func (b *binder) bindSubPipeline(in PlanNode, e Expr) (PlanNode, error) {
	pl, ok := unparen(e).(*Pipeline)
	if !ok || pl.Source != nil {
		return nil, semErr(e, "expected a subquery of operators on the input, such as (where x > 1 | take 5)")
	}
	n := in
	for _, op := range pl.Ops {
		var err error
		if n, err = b.bindOp(n, op); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// bindMvApply binds mv-apply: the items are expanded per record into a
// subtable (the item columns and the with_itemindex column), the subquery
// runs on it, and the record's other columns are added to its result.
func (b *binder) bindMvApply(in PlanNode, op *MvApply) (PlanNode, error) {
	exp, err := b.bindMvExpand(in, &MvExpand{Pos: op.Pos, Options: op.Options, Items: op.Items, Limit: op.Limit})
	if err != nil {
		return nil, err
	}
	m := exp.(*Expand)
	expSchema := m.Schema()
	var sub store.Schema
	for _, it := range m.Items {
		sub = append(sub, expSchema[expSchema.Index(it.Name)])
	}
	if m.IndexCol != "" {
		sub = append(sub, store.Column{Name: m.IndexCol, Type: store.TypeLong})
	}
	if err := checkSchemaDuplicates(op, sub); err != nil {
		return nil, err
	}
	row := &RowSource{Out: sub}
	subPlan, err := b.bindSubPipeline(row, op.On)
	if err != nil {
		return nil, err
	}
	var keep []string
	for _, c := range in.Schema() {
		replaced := false
		for _, it := range m.Items {
			if it.Name == c.Name {
				replaced = true
			}
		}
		if !replaced {
			keep = append(keep, c.Name)
		}
	}
	return &ApplyEach{Input: in, Expand: m, Row: row, Sub: subPlan, Keep: keep}, nil
}

// bindFacet binds facet at the end of a statement: the with subquery's
// table (when given) and one count_Col table per column, all reading the
// input once.
func (b *binder) bindFacet(in PlanNode, op *Facet) ([]PlanNode, error) {
	shared := sharedNode(in)
	schema := shared.Schema()
	var out []PlanNode
	if op.With != nil {
		w, err := b.bindSubPipeline(shared, op.With)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	for _, c := range op.By {
		id, ok := unparen(c).(*Ident)
		if !ok {
			return nil, semErr(c, "facet by expects column names")
		}
		i := schema.Index(id.Name)
		if i < 0 {
			return nil, semErr(id, "unknown column '%s'", id.Name)
		}
		if schema[i].Type == store.TypeDynamic {
			return nil, semErr(id, "facet by a dynamic column is not supported")
		}
		out = append(out, &Aggregate{Input: shared, Keys: []NamedScalar{passthrough(schema[i])},
			Aggs: []*AggCall{{Name: "count_" + id.Name, Fn: AggCount, T: store.TypeLong}}})
	}
	if len(out) == 0 {
		return nil, semErr(op, "facet needs at least one column")
	}
	return out, nil
}

// refusedPlugins reach outside Custos (other databases, HTTP, code
// execution); they are refused as a security boundary.
var refusedPlugins = map[string]bool{
	"http_request": true, "http_request_post": true, "sql_request": true, "mysql_request": true,
	"postgresql_request": true, "cosmosdb_sql_request": true, "azure_digital_twins_query_request": true,
	"python": true, "r": true, "ai_embeddings": true, "ai_chat_completion": true,
	"ai_chat_completion_prompt": true, "externaldata": true, "ipv4_lookup": false,
}

// bindEvaluate binds evaluate with the plugins Custos has: bag_unpack, pivot
// and narrow. Their output schema depends on the data unless declared after
// ':', so the subplan is run once at bind time (through
// BindOptions.Explore) to learn it, and its result is reused.
func (b *binder) bindEvaluate(in PlanNode, op *Evaluate) (PlanNode, error) {
	name := strings.ToLower(op.Plugin.Name.Name)
	if refusedPlugins[name] {
		return nil, semErr(op.Plugin, "evaluate %s reaches outside Custos and is refused: queries read only the data stored in Custos workspaces", name)
	}
	if in == nil {
		return nil, semErr(op, "evaluate %s needs an input table (T | evaluate %s(...))", name, name)
	}
	var declared store.Schema
	if op.Schema != nil {
		if op.Schema.Wildcard {
			declared = append(declared, in.Schema()...)
		}
		for _, c := range op.Schema.Columns {
			if c.Type == nil || c.Type.Tabular || c.Type.Type == store.TypeInvalid {
				return nil, semErr(c, "output column '%s' needs a scalar type", c.Name.Name)
			}
			col := store.Column{Name: c.Name.Name, Type: c.Type.Type}
			if i := declared.Index(col.Name); i >= 0 {
				declared[i] = col
			} else {
				declared = append(declared, col)
			}
		}
	}
	var n PlanNode
	var err error
	switch name {
	case "bag_unpack":
		n, err = b.bindBagUnpack(in, op, declared)
	case "pivot":
		n, err = b.bindPivot(in, op, declared)
	case "narrow":
		if len(op.Plugin.Args) != 0 {
			return nil, semErr(op.Plugin, "narrow takes no arguments")
		}
		return &Narrow{Input: in}, nil
	default:
		return nil, semErr(op.Plugin, "evaluate plugin '%s' is not supported; Custos has bag_unpack, pivot and narrow", op.Plugin.Name.Name)
	}
	if err != nil {
		return nil, err
	}
	if declared != nil {
		return n, nil
	}
	// The output schema depends on the data: run the subplan now.
	if b.opts.Explore == nil {
		return nil, semErr(op, "the output columns of evaluate %s depend on the data; declare them after ':' (evaluate %s(...) : (*, col:type, ...))", name, name)
	}
	m := sharedNode(n)
	schema, err := b.opts.Explore(m)
	if err != nil {
		return nil, err
	}
	m.Out = schema
	return m, nil
}

func (b *binder) bindBagUnpack(in PlanNode, op *Evaluate, declared store.Schema) (PlanNode, error) {
	args := op.Plugin.Args
	if len(args) < 1 || len(args) > 4 {
		return nil, semErr(op.Plugin, "bag_unpack expects (column [, prefix] [, columnsConflict] [, ignoredProperties])")
	}
	schema := in.Schema()
	id, ok := unparen(args[0]).(*Ident)
	if !ok {
		return nil, semErr(args[0], "bag_unpack expects a column name")
	}
	i := schema.Index(id.Name)
	if i < 0 {
		return nil, semErr(id, "unknown column '%s'", id.Name)
	}
	if schema[i].Type != store.TypeDynamic {
		return nil, semErr(id, "bag_unpack expects a dynamic column; '%s' is %s", id.Name, schema[i].Type)
	}
	u := &BagUnpack{Input: in, Col: id.Name, Conflict: "error", Declared: declared}
	for j, a := range args[1:] {
		if na, ok := a.(*NamedArg); ok {
			// OutputColumnPrefix / columnsConflict / ignoredProperties by name.
			switch strings.ToLower(na.Name.Name) {
			case "outputcolumnprefix":
				j = 0
			case "columnsconflict":
				j = 1
			case "ignoredproperties":
				j = 2
			default:
				return nil, semErr(na, "bag_unpack has no parameter named '%s'", na.Name.Name)
			}
			a = na.Value
		}
		x, err := b.bindScalar(a, &scope{})
		if err != nil {
			return nil, err
		}
		k, ok := x.(*Const)
		if !ok {
			return nil, semErr(a, "bag_unpack arguments must be constants")
		}
		switch {
		case j == 0 && k.V.Type == store.TypeString && !isConflictMode(k.V.Str):
			u.Prefix = k.V.Str
		case j <= 1 && k.V.Type == store.TypeString:
			switch k.V.Str {
			case "error", "replace_source", "keep_source":
				u.Conflict = k.V.Str
			default:
				return nil, semErr(a, "columnsConflict must be 'error', 'replace_source' or 'keep_source'")
			}
		case k.V.Type == store.TypeDynamic:
			elems, err := dynamicArray(k.V.Str)
			if err != nil {
				return nil, semErr(a, "ignoredProperties must be a dynamic array of names")
			}
			for _, e := range elems {
				u.Ignored = append(u.Ignored, e.(*Const).V.String())
			}
		default:
			return nil, semErr(a, "unexpected bag_unpack argument")
		}
	}
	return u, nil
}

func isConflictMode(s string) bool {
	return s == "error" || s == "replace_source" || s == "keep_source"
}

func (b *binder) bindPivot(in PlanNode, op *Evaluate, declared store.Schema) (PlanNode, error) {
	args := op.Plugin.Args
	if len(args) < 1 {
		return nil, semErr(op.Plugin, "pivot expects (column [, aggregation] [, column, ...])")
	}
	schema := in.Schema()
	sc := scopeOf(schema)
	id, ok := unparen(args[0]).(*Ident)
	if !ok || schema.Index(id.Name) < 0 {
		return nil, semErr(args[0], "pivot expects a column name")
	}
	p := &Pivot{Input: in, Col: id.Name, Declared: declared}
	rest := args[1:]
	if len(rest) > 0 {
		if call, ok := unparen(rest[0]).(*Call); ok && call.Target == nil {
			if fn, ok := LookupAggregate(call.Name.Name); ok {
				ac, err := b.bindAggCall(call, fn, sc)
				if err != nil {
					return nil, err
				}
				p.Agg = ac
				rest = rest[1:]
			}
		}
	}
	if p.Agg == nil {
		p.Agg = &AggCall{Fn: AggCount, T: store.TypeLong}
	}
	for _, a := range rest {
		id, ok := unparen(a).(*Ident)
		if !ok || schema.Index(id.Name) < 0 {
			return nil, semErr(a, "pivot expects column names after the aggregation")
		}
		p.Keys = append(p.Keys, id.Name)
	}
	if len(rest) == 0 {
		used := []string{p.Col}
		for _, x := range p.Agg.Args {
			used = append(used, Columns(nil, x)...)
		}
		for _, c := range schema {
			if !slices.Contains(used, c.Name) {
				p.Keys = append(p.Keys, c.Name)
			}
		}
	}
	for _, k := range p.Keys {
		if schema[schema.Index(k)].Type == store.TypeDynamic {
			return nil, semErr(op, "pivot by a dynamic column '%s' is not supported", k)
		}
	}
	return p, nil
}

// bindFind binds find: a union of the tables of "in (...)" (every table
// when absent) filtered by the predicate, with a source_ column and either
// the projected columns, or (by default and with project-smart) the
// columns the predicate names plus a pack_ column holding the others.
func (b *binder) bindFind(f *Find) (PlanNode, error) {
	source := "source_"
	for _, o := range f.Options {
		switch strings.ToLower(o.Name) {
		case "withsource":
			v, ok := optionText(o)
			if !ok {
				return nil, semErr(o, "withsource expects a column name")
			}
			source = v
		case "kind", "hint.concurrency", "hint.spread", "isfuzzy":
		default:
			return nil, semErr(o, "unknown find option '%s'", o.Name)
		}
	}
	tables := f.In
	if len(tables) == 0 {
		lister, ok := b.cat.(TableLister)
		if !ok {
			return nil, semErr(f, "find needs 'in (table, ...)'")
		}
		for _, name := range lister.TableNames() {
			tables = append(tables, &Ident{Pos: f.Pos, Name: name})
		}
	}
	type input struct {
		node PlanNode
		name string
	}
	var inputs []input
	for _, t := range tables {
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
			for _, name := range lister.TableNames() {
				if re.MatchString(name) {
					schema, _ := b.cat.Table(name)
					n, err := b.scan(name, schema)
					if err != nil {
						return nil, err
					}
					inputs = append(inputs, input{node: n, name: name})
				}
			}
		default:
			n, err := b.bindTabular(t)
			if err != nil {
				return nil, err
			}
			name := "union_arg" + strconv.Itoa(len(inputs))
			if id, ok := t.(*Ident); ok {
				name = id.Name
			}
			inputs = append(inputs, input{node: n, name: name})
		}
	}
	if len(inputs) == 0 {
		return nil, semErr(f, "find has no tables to search")
	}
	// The predicate is bound per table (a table without a column the
	// predicate names is skipped, as Kusto does); the columns it reads are
	// output as columns, typed by the first table that has them.
	var kept []input
	var predCols []string
	for _, it := range inputs {
		schema := it.node.Schema()
		pred, err := b.bindSearchPred(f.Pred, scopeOf(schema), false)
		if err != nil {
			continue
		}
		if pred.Type() != store.TypeBool {
			return nil, semErr(f.Pred, "the find predicate must be bool, not %s", pred.Type())
		}
		for _, c := range Columns(nil, pred) {
			if !slices.Contains(predCols, c) {
				predCols = append(predCols, c)
			}
		}
		kept = append(kept, input{node: &Filter{Input: it.node, Pred: pred}, name: it.name})
	}
	if len(kept) == 0 {
		// Bind against the first table for its error message.
		_, err := b.bindSearchPred(f.Pred, scopeOf(inputs[0].node.Schema()), false)
		return nil, err
	}
	var project []string
	explicit := len(f.Project) > 0 && !f.ProjectSmart
	wantPack := !explicit
	if explicit {
		for _, p := range f.Project {
			if c, ok := p.(*Call); ok && (c.Name.Name == "pack_all" || c.Name.Name == "pack") {
				wantPack = true
				continue
			}
			id, ok := unparen(p).(*Ident)
			if !ok {
				return nil, semErr(p, "find project expects column names and pack_all()")
			}
			project = append(project, id.Name)
		}
	} else {
		// project-smart (the default): the columns the predicate names,
		// then the columns every table has with the same type.
		project = predCols
		first := kept[0].node.Schema()
		for _, c := range first {
			if isSystemColumn(c.Name) {
				continue
			}
			common := true
			for _, it := range kept[1:] {
				s := it.node.Schema()
				if i := s.Index(c.Name); i < 0 || s[i].Type != c.Type {
					common = false
					break
				}
			}
			if common && !slices.Contains(project, c.Name) {
				project = append(project, c.Name)
			}
		}
	}
	var away []string
	for _, a := range f.ProjectAway {
		if _, ok := a.(*Star); ok {
			wantPack = false
			continue
		}
		if id, ok := unparen(a).(*Ident); ok {
			away = append(away, id.Name)
		}
	}
	project = slices.DeleteFunc(project, func(s string) bool { return slices.Contains(away, s) })
	// Output types: from the first table that has each column.
	var out store.Schema
	for _, name := range project {
		found := false
		for _, it := range kept {
			s := it.node.Schema()
			if i := s.Index(name); i >= 0 {
				if j := out.Index(name); j >= 0 && out[j].Type != s[i].Type {
					return nil, semErr(f, "find: column '%s' is %s in one table and %s in another", name, out[j].Type, s[i].Type)
				}
				if out.Index(name) < 0 {
					out = append(out, s[i])
				}
				found = true
			}
		}
		if !found && explicit {
			return nil, semErr(f, "find: no table has column '%s'", name)
		}
	}
	nodes := make([]PlanNode, len(kept))
	for i, it := range kept {
		schema := it.node.Schema()
		var n PlanNode = it.node
		if wantPack {
			var rest []string
			for _, c := range schema {
				if out.Index(c.Name) < 0 && !slices.Contains(away, c.Name) && !isSystemColumn(c.Name) {
					rest = append(rest, c.Name)
				}
			}
			n = &Pack{Input: n, Name: "pack_", Cols: rest}
		}
		cols := []NamedScalar{{Name: source, X: &Const{V: StringValue(it.name)}}}
		for _, c := range out {
			if schema.Index(c.Name) >= 0 {
				cols = append(cols, passthrough(c))
			} else {
				cols = append(cols, NamedScalar{Name: c.Name, X: &Const{V: NullValue(c.Type)}})
			}
		}
		if wantPack {
			cols = append(cols, NamedScalar{Name: "pack_", X: &ColRef{Name: "pack_", T: store.TypeDynamic}})
		}
		if err := checkDuplicates(f, cols); err != nil {
			return nil, err
		}
		nodes[i] = &Compute{Input: n, Cols: cols}
	}
	return &UnionAll{Inputs: nodes}, nil
}

// isSystemColumn reports whether name is one of the columns the store adds
// to every table (TenantId, Type and the _-prefixed ones); find leaves them
// out of project-smart and pack_.
func isSystemColumn(name string) bool {
	return name == "TenantId" || name == "Type" || strings.HasPrefix(name, "_")
}

// bindRender records the render operator's visualization for the result.
func (b *binder) bindRender(op *Render) error {
	v := &Visualization{Visualization: op.Chart.Name, Kind: "default", Series: nil, YColumns: nil, By: nil}
	for _, p := range op.With {
		var vals []string
		for _, x := range p.Values {
			switch x := unparen(x).(type) {
			case *Ident:
				vals = append(vals, x.Name)
			case *Literal:
				vals = append(vals, literalValue(x).String())
			default:
				return semErr(x, "render property '%s' expects names or constants", p.Name.Name)
			}
		}
		one := strings.Join(vals, ",")
		switch strings.ToLower(p.Name.Name) {
		case "title":
			v.Title = one
		case "xcolumn":
			v.XColumn = one
		case "ycolumns":
			v.YColumns = vals
		case "series":
			v.Series = vals
		case "xtitle":
			v.XTitle = one
		case "ytitle":
			v.YTitle = one
		case "legend":
			v.Legend = one
		case "ysplit":
			v.YSplit = one
		case "accumulate":
			v.Accumulate = strings.EqualFold(one, "true")
		case "kind":
			v.Kind = one
		case "ymin":
			v.Ymin = one
		case "ymax":
			v.Ymax = one
		case "xaxis":
			v.XAxis = one
		case "yaxis":
			v.YAxis = one
		case "anomalycolumns":
		default:
			return semErr(p, "unknown render property '%s'", p.Name.Name)
		}
	}
	b.render = v
	return nil
}

// containsWindow reports whether e calls a window function.
func containsWindow(e Scalar) (FuncID, bool) {
	c, ok := e.(*FnCall)
	if !ok {
		return 0, false
	}
	if IsWindowFunction(c.Fn) {
		return c.Fn, true
	}
	for _, a := range c.Args {
		if fn, ok := containsWindow(a); ok {
			return fn, true
		}
	}
	return 0, false
}

// isSerialized reports whether the rows of n have an order window
// functions may rely on: the output of sort, top, range, serialize,
// datatable/print and the hierarchical operators, through operators that
// keep row order.
func (b *binder) isSerialized(n PlanNode) bool {
	for {
		if b.serialized[n] {
			return true
		}
		switch m := n.(type) {
		case *OrderBy, *TopN, *Sequence, *Values, *NestedTop:
			return true
		case *Filter:
			n = m.Input
		case *Compute:
			n = m.Input
		case *Limit:
			n = m.Input
		case *Expand:
			n = m.Input
		case *ParseKV:
			n = m.Input
		case *Pack:
			n = m.Input
		default:
			return false
		}
	}
}

// checkSerialized refuses window functions over rows without an order, as
// Kusto does.
func (b *binder) checkSerialized(in PlanNode, x Scalar, n Node) error {
	fn, ok := containsWindow(x)
	if !ok || b.isSerialized(in) {
		return nil
	}
	return semErr(n, "function '%s' cannot be invoked in current context: the row set must be serialized (add '| serialize' or '| order by ...' before it)", fn)
}

// bindPartition binds "partition [hint.*] by Col (subquery)": the
// subquery runs on each partition's rows.
func (b *binder) bindPartition(in PlanNode, op *Partition) (PlanNode, error) {
	for _, o := range op.Options {
		if !strings.HasPrefix(strings.ToLower(o.Name), "hint.") {
			return nil, semErr(o, "unknown partition option '%s'", o.Name)
		}
	}
	if op.In != nil {
		return nil, semErr(op.In, "partition by ... in (...) is not supported; use where first")
	}
	schema := in.Schema()
	i := schema.Index(op.By.Name)
	if i < 0 {
		return nil, semErr(op.By, "unknown column '%s'", op.By.Name)
	}
	if schema[i].Type == store.TypeDynamic {
		return nil, semErr(op.By, "partition by a dynamic column is not supported")
	}
	pl, ok := unparen(op.Query).(*Pipeline)
	if (ok && pl.Source != nil) || (!ok && b.isTabular(unparen(op.Query))) {
		return b.bindPartitionLegacy(in, op, schema[i])
	}
	if !ok {
		return nil, semErr(op.Query, "partition supports the (operators on each partition) form, such as partition by Computer (top 1 by TimeGenerated)")
	}
	row := &RowSource{Out: append(store.Schema{}, schema...)}
	sub, err := b.bindSubPipeline(row, op.Query)
	if err != nil {
		return nil, err
	}
	return &PartitionEach{Input: in, Key: op.By.Name, Row: row, Sub: sub}, nil
}

// MaxLegacyPartitions is the most key values of the legacy partition
// strategy, as in Kusto ("64 or less key partition values").
const MaxLegacyPartitions = 64

// bindPartitionLegacy binds "partition [hint.strategy=legacy] by Col {
// SubQueryWithSource }": the subquery has its own source and may reference
// only the key column, as toscalar(Col); it runs once per distinct key.
func (b *binder) bindPartitionLegacy(in PlanNode, op *Partition, key store.Column) (PlanNode, error) {
	for _, o := range op.Options {
		if strings.EqualFold(o.Name, "hint.strategy") {
			if v, _ := optionText(o); !strings.EqualFold(v, "legacy") {
				return nil, semErr(o, "a partition subquery with its own source needs hint.strategy=legacy (got '%s')", v)
			}
		}
	}
	slot := &KeySlot{}
	prev, had := b.lets[key.Name]
	b.lets[key.Name] = letValue{scalar: &PartitionKey{Name: key.Name, T: key.Type, Slot: slot}}
	sub, err := b.bindTabular(op.Query)
	if had {
		b.lets[key.Name] = prev
	} else {
		delete(b.lets, key.Name)
	}
	if err != nil {
		return nil, err
	}
	return &PartitionEach{Input: in, Key: key.Name, Sub: sub, Slot: slot}, nil
}

// bindFork binds fork at the end of a statement: one result table per
// branch, all reading the input once.
func (b *binder) bindFork(in PlanNode, op *Fork) ([]PlanNode, error) {
	shared := sharedNode(in)
	var out []PlanNode
	for _, br := range op.Branches {
		n, err := b.bindSubPipeline(shared, br.Query)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}
