package engine

import (
	"math"

	"custos/internal/kql"
	"custos/internal/store"
)

// pruneScanTimeFilters drops, from the filters directly above a store scan,
// the conjuncts on TimeGenerated that every row the scan emits satisfies
// anyway: the scan reads the time range its bounds and the request's
// timespan make (x.timeRange) and conform drops every row outside it and
// every row whose TimeGenerated is null, which is what such a comparison
// would drop. "where TimeGenerated >= X and TimeGenerated < Y" then costs no
// comparison, no boolean vectors and no selection per row. A filter left
// without conjuncts is dropped. The plan is not modified (filters are
// rebuilt), so a plan run again (materialize, subqueries) is unaffected.
//
// Inline inputs (let-bound tables) are left alone: conform finds no
// TimeGenerated column in a batch without one and enforces nothing there.
func (x *executor) pruneScanTimeFilters(p pipeline) pipeline {
	s, ok := p.base.(*kql.Scan)
	if !ok || len(p.ops) == 0 {
		return p
	}
	if _, inline := x.inline[s.Table]; inline {
		return p
	}
	if i := s.TableSchema.Index(kql.TimeColumn); i < 0 || s.TableSchema[i].Type != store.TypeDatetime {
		return p
	}
	tr, ok, err := x.timeRange(s)
	if err != nil || !ok || tr == store.AllTime {
		return p // nothing restricted: conform keeps null times, so keep every filter
	}
	var ops []kql.PlanNode
	changed := false
	i := 0
	for ; i < len(p.ops); i++ {
		f, ok := p.ops[i].(*kql.Filter)
		if !ok {
			break
		}
		var kept []kql.Scalar
		for _, c := range conjunctsOf(f.Pred, nil) {
			if x.impliedByRange(c, tr) {
				changed = true
				continue
			}
			kept = append(kept, c)
		}
		if len(kept) == 0 {
			continue // every row passes
		}
		pred := kept[0]
		for _, c := range kept[1:] {
			pred = &kql.FnCall{Fn: kql.OpAnd, Args: []kql.Scalar{pred, c}, T: store.TypeBool}
		}
		ops = append(ops, &kql.Filter{Input: f.Input, Pred: pred})
	}
	if !changed {
		return p
	}
	return pipeline{base: p.base, ops: append(ops, p.ops[i:]...)}
}

// conjunctsOf appends the operands of a tree of ands to dst.
func conjunctsOf(e kql.Scalar, dst []kql.Scalar) []kql.Scalar {
	if c, ok := e.(*kql.FnCall); ok && c.Fn == kql.OpAnd && len(c.Args) == 2 {
		return conjunctsOf(c.Args[1], conjunctsOf(c.Args[0], dst))
	}
	return append(dst, e)
}

// impliedByRange reports whether c is "TimeGenerated op constant" (either
// way round) and true for every non-null time in tr, which is not empty.
func (x *executor) impliedByRange(c kql.Scalar, tr store.TimeRange) bool {
	call, ok := c.(*kql.FnCall)
	if !ok || len(call.Args) != 2 {
		return false
	}
	op := call.Fn
	ref, ok := call.Args[0].(*kql.ColRef)
	val := call.Args[1]
	if !ok {
		if ref, ok = call.Args[1].(*kql.ColRef); !ok {
			return false
		}
		val = call.Args[0]
		switch op { // constant op column → column op' constant
		case kql.OpGe:
			op = kql.OpLe
		case kql.OpGt:
			op = kql.OpLt
		case kql.OpLe:
			op = kql.OpGe
		case kql.OpLt:
			op = kql.OpGt
		}
	}
	if ref.Name != kql.TimeColumn || ref.T != store.TypeDatetime || val.Type() != store.TypeDatetime || !kql.IsConstant(val) {
		return false
	}
	v, err := x.ev.evalConst(val)
	if err != nil || v.Null {
		return false
	}
	t := v.Int
	// Every time in [tr.From, tr.To) satisfies "time op t".
	switch op {
	case kql.OpGe:
		return tr.From >= t
	case kql.OpGt:
		return tr.From > t
	case kql.OpLt:
		return tr.To <= t
	case kql.OpLe:
		return t < math.MaxInt64 && tr.To <= t+1
	case kql.OpEq:
		return t < math.MaxInt64 && tr.From >= t && tr.To <= t+1
	}
	return false
}
