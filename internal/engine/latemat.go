package engine

import (
	"fmt"

	"custos/internal/kql"
	"custos/internal/store"
)

// Late materialization of dictionary strings.
//
// The store keeps low-cardinality string columns (Level, Host, User, ...)
// dictionary-encoded, and can hand them over codes-only
// (store.SelectHints.CodesOnly): Codes and Dict set, Str nil, so no string
// header is built for each row. The executor asks for that for a scan column
// only when every use of the column in the pipeline above the scan is one
// that reads codes (codesOnlyColumns):
//
//   - a dictionary predicate (dictLeafCol: col == 'c', !=, <, <=, >, >=, =~,
//     !~, in, in~,
//     has/contains/startswith/endswith and their case-sensitive forms,
//     matches regex, each with constants; negations are not() around them),
//     which the evaluator computes once per dictionary entry and maps
//     through the codes (evaluator.dictLeaf);
//   - a bare copy of the column in project/extend (the vector moves on
//     under its new name, and the rule follows that name);
//   - a bare group key of the summarize that consumes the pipeline (colDict
//     groups by code), or the bare argument of its dcount/dcountif
//     (dcountAgg.updateCodes hashes each dictionary entry once).
//
// Filters gather codes only, so the rows they drop never get a string.
// Every other consumer gets the column materialized first, in one place:
// drive calls materializeBatch on each batch before the sink, except for
// the bare group keys of an aggregation. A column used any other way (a
// function argument, a sort key, a dcount argument, ...) is not asked for
// codes-only at all.

// dictLeafCol reports whether c is a predicate over one string column and
// constants only, computed per dictionary entry by evaluator.dictLeaf, and
// names the column.
func dictLeafCol(c *kql.FnCall) (string, bool) {
	col := func(e kql.Scalar) (string, bool) {
		r, ok := e.(*kql.ColRef)
		if !ok || r.T != store.TypeString {
			return "", false
		}
		return r.Name, true
	}
	isConst := func(e kql.Scalar) bool { _, ok := e.(*kql.Const); return ok }
	switch c.Fn {
	case kql.OpEq, kql.OpNe, kql.OpLt, kql.OpLe, kql.OpGt, kql.OpGe, kql.OpEqCI, kql.OpNeCI:
		if len(c.Args) != 2 {
			return "", false
		}
		if name, ok := col(c.Args[0]); ok && isConst(c.Args[1]) {
			return name, true
		}
		if name, ok := col(c.Args[1]); ok && isConst(c.Args[0]) {
			return name, true
		}
		return "", false
	case kql.OpContains, kql.OpContainsCS, kql.OpHas, kql.OpHasCS, kql.OpHasPrefix, kql.OpHasPrefixCS,
		kql.OpHasSuffix, kql.OpHasSuffixCS, kql.OpStartsWith, kql.OpStartsWithCS, kql.OpEndsWith, kql.OpEndsWithCS,
		kql.OpMatchesRegex, kql.OpIn, kql.OpInCI:
		if len(c.Args) < 2 {
			return "", false
		}
		name, ok := col(c.Args[0])
		if !ok {
			return "", false
		}
		for _, a := range c.Args[1:] {
			if !isConst(a) {
				return "", false
			}
		}
		return name, true
	}
	return "", false
}

// dictLeaf evaluates the dictionary predicate c (dictLeafCol) over the n
// rows of column col, whose vector v has dictionary codes: once per
// dictionary entry, then per row by code. A codes-only v whose dictionary is
// larger than the batch (a block cut down to a few rows) is materialized
// for the n rows instead; ok is false when v has Str and the row-by-row
// kernels are the better choice.
func (ev *evaluator) dictLeaf(c *kql.FnCall, col string, v *store.Vector, n int) (out *store.Vector, ok bool, err error) {
	if len(v.Codes) < n {
		if v.CodesOnly() {
			return nil, true, fmt.Errorf("column %s: %d dictionary codes, want %d", col, len(v.Codes), n)
		}
		return nil, false, nil
	}
	one := func(x *store.Vector, rows int) (*store.Vector, error) {
		return ev.call(c, &store.Batch{Schema: store.Schema{{Name: col, Type: x.Type}}, Cols: []*store.Vector{x}, Len: rows})
	}
	if len(v.Dict) == 0 || len(v.Dict) > n || v.Nulls != nil {
		if !v.CodesOnly() {
			return nil, false, nil
		}
		m, err := materialize(v, n)
		if err != nil {
			return nil, true, err
		}
		out, err := one(m, n)
		return out, true, err
	}
	res, err := one(&store.Vector{Type: v.Type, Str: v.Dict}, len(v.Dict))
	if err != nil {
		return nil, true, err
	}
	out = newVector(store.TypeBool, n)
	for i, code := range v.Codes[:n] {
		if int(code) >= len(v.Dict) {
			return nil, true, fmt.Errorf("column %s: dictionary code %d out of range %d", col, code, len(v.Dict))
		}
		out.Bool[i] = res.Bool[code]
	}
	if res.Nulls != nil {
		out.Nulls = make([]bool, n)
		for i, code := range v.Codes[:n] {
			out.Nulls[i] = res.Nulls[code]
		}
	}
	return out, true, nil
}

// materialize returns v with Str filled from its dictionary for its first
// n rows when v is codes-only, else v itself.
func materialize(v *store.Vector, n int) (*store.Vector, error) {
	if !v.CodesOnly() {
		return v, nil
	}
	if len(v.Codes) < n {
		return nil, fmt.Errorf("%d dictionary codes, want %d", len(v.Codes), n)
	}
	out := *v
	out.Codes = v.Codes[:n:n]
	out.Str = make([]string, n)
	for i, code := range out.Codes {
		if int(code) >= len(v.Dict) {
			return nil, fmt.Errorf("dictionary code %d out of range %d", code, len(v.Dict))
		}
		out.Str[i] = v.Dict[code]
	}
	return &out, nil
}

// materializeBatch returns b with every codes-only vector materialized,
// except those of the columns in keep; b itself when there is none.
func materializeBatch(b *store.Batch, keep map[string]bool) (*store.Batch, error) {
	var out *store.Batch
	for i, v := range b.Cols {
		if v == nil || !v.CodesOnly() || keep[b.Schema[i].Name] {
			continue
		}
		m, err := materialize(v, b.Len)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", b.Schema[i].Name, err)
		}
		if out == nil {
			out = &store.Batch{Schema: b.Schema, Cols: append([]*store.Vector(nil), b.Cols...), Len: b.Len}
		}
		out.Cols[i] = m
	}
	if out == nil {
		return b, nil
	}
	return out, nil
}

// codeRefs calls use for every column e reads other than through a
// dictionary predicate (dictLeafCol).
func codeRefs(e kql.Scalar, use func(name string)) {
	switch e := e.(type) {
	case *kql.ColRef:
		use(e.Name)
	case *kql.FnCall:
		if _, ok := dictLeafCol(e); ok {
			return
		}
		for _, a := range e.Args {
			codeRefs(a, use)
		}
	}
}

// codesOnlyColumns returns the string columns of p's scan that the
// pipeline can take codes-only (see the comment at the top of this file),
// and the names under which they reach agg's bare group keys and dcount
// arguments (agg is the
// consuming aggregation, nil for any other sink); the sink gets every other
// codes-only column materialized (drive).
func codesOnlyColumns(p pipeline, agg *kql.Aggregate) (cols []string, keys map[string]bool) {
	s, ok := p.base.(*kql.Scan)
	if !ok {
		return nil, nil
	}
	cand := map[string]bool{}
	for _, c := range s.Schema() {
		if c.Type == store.TypeString && c.Name != kql.TimeColumn {
			cand[c.Name] = true
		}
	}
	for len(cand) > 0 {
		// alias maps the names under which the candidates travel to the
		// scan column they are; bad gets the columns used otherwise.
		alias := map[string]string{}
		for c := range cand {
			alias[c] = c
		}
		bad := map[string]bool{}
		mark := func(name string) {
			if o, ok := alias[name]; ok {
				bad[o] = true
			}
		}
		for _, op := range p.ops {
			switch op := op.(type) {
			case *kql.Filter:
				codeRefs(op.Pred, mark)
			case *kql.Compute:
				next := map[string]string{}
				for _, c := range op.Cols {
					if r, ok := c.X.(*kql.ColRef); ok {
						if o, ok := alias[r.Name]; ok {
							next[c.Name] = o
						}
						continue
					}
					codeRefs(c.X, mark)
				}
				alias = next
			default: // expand, parse-kv, pack: read columns their own way
				return nil, nil
			}
		}
		keys = map[string]bool{}
		if agg != nil {
			for _, k := range agg.Keys {
				if r, ok := k.X.(*kql.ColRef); ok {
					if _, ok := alias[r.Name]; ok {
						keys[r.Name] = true
					}
					continue
				}
				codeRefs(k.X, mark)
			}
			for _, a := range agg.Aggs {
				for j, e := range a.Args {
					if r, ok := e.(*kql.ColRef); ok && j == 0 && (a.Fn == kql.AggDcount || a.Fn == kql.AggDcountIf) {
						if _, ok := alias[r.Name]; ok {
							keys[r.Name] = true // dcountAgg.updateCodes
							continue
						}
					}
					codeRefs(e, mark)
				}
			}
		}
		if len(bad) == 0 {
			break
		}
		for c := range bad {
			delete(cand, c)
		}
	}
	if len(cand) == 0 {
		return nil, nil
	}
	for _, c := range s.Schema() {
		if cand[c.Name] {
			cols = append(cols, c.Name)
		}
	}
	return cols, keys
}
