package engine

import (
	"cmp"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"custos/internal/kql"
	"custos/internal/store"
)

// evaluator computes bound scalar expressions over batches. It is built once
// per query (prepare compiles regular expressions, matchers and in-sets) and
// then only read, so workers share it.
type evaluator struct {
	now      int64 // the query's now(), in ticks
	matchers map[*kql.FnCall]*kql.Matcher
	regexps  map[*kql.FnCall]*regexp.Regexp
	sets     map[*kql.FnCall]*valueSet
	// Results of subqueries (toscalar, in (T)), computed before execution.
	subs    map[*kql.Subquery]kql.Value
	subSets map[*kql.Subquery]*valueSet
	// serial is set by an executor that evaluates the whole serialized
	// input as one batch, in order: only then are window functions allowed.
	serial bool
}

// valueSet is the constant list of an in operator.
type valueSet struct {
	ints  map[int64]struct{}
	reals map[float64]struct{}
	decs  map[string]struct{} // decimal constants, by decKey (exact)
	strs  map[string]struct{}
	bools [2]bool
}

// addDec adds a decimal constant to the set, exactly: a decimal compares
// with the decimals of the list by value, not by its float64.
func (s *valueSet) addDec(v kql.Value) {
	d, ok := decimalValue(v)
	if !ok {
		return
	}
	if s.decs == nil {
		s.decs = map[string]struct{}{}
	}
	s.decs[d.trimZeros(0).String()] = struct{}{}
}

func newEvaluator(now int64) *evaluator {
	return &evaluator{
		now:      now,
		matchers: map[*kql.FnCall]*kql.Matcher{},
		regexps:  map[*kql.FnCall]*regexp.Regexp{},
		sets:     map[*kql.FnCall]*valueSet{},
		subs:     map[*kql.Subquery]kql.Value{},
		subSets:  map[*kql.Subquery]*valueSet{},
	}
}

// prepare precompiles what e's evaluation needs. It must run before any
// concurrent eval.
func (ev *evaluator) prepare(e kql.Scalar) error {
	c, ok := e.(*kql.FnCall)
	if !ok {
		return nil
	}
	for _, a := range c.Args {
		if err := ev.prepare(a); err != nil {
			return err
		}
	}
	constStr := func(i int) (string, bool) {
		if i >= len(c.Args) {
			return "", false
		}
		k, ok := c.Args[i].(*kql.Const)
		if !ok || !kql.IsStringLike(k.V.Type) {
			return "", false
		}
		return k.V.Str, true
	}
	switch c.Fn {
	case kql.OpContains, kql.OpContainsCS, kql.OpHas, kql.OpHasCS, kql.OpHasPrefix, kql.OpHasPrefixCS,
		kql.OpHasSuffix, kql.OpHasSuffixCS, kql.OpStartsWith, kql.OpStartsWithCS, kql.OpEndsWith, kql.OpEndsWithCS:
		if s, ok := constStr(1); ok {
			kind, cs := matchKind(c.Fn)
			ev.matchers[c] = kql.NewMatcher(s, kind, cs)
		}
	case kql.OpMatchesRegex:
		s, _ := constStr(1)
		re, err := kql.CompileRegex(s)
		if err != nil {
			return &ExecError{Msg: err.Error()}
		}
		ev.regexps[c] = re
	case kql.FnParse:
		s, _ := constStr(1)
		re, err := regexp.Compile(s)
		if err != nil {
			return &ExecError{Msg: "invalid parse pattern: " + (&kql.RegexError{Pattern: s, Problem: "the pattern does not compile"}).Error()}
		}
		ev.regexps[c] = re
	case kql.FnExtract, kql.FnTrim:
		s, _ := constStr(0)
		re, err := kql.CompileRegex(s)
		if err != nil {
			return &ExecError{Msg: err.Error()}
		}
		if c.Fn == kql.FnTrim {
			re, err = regexp.Compile("^(?:" + s + ")|(?:" + s + ")$")
			if err != nil {
				return &ExecError{Msg: (&kql.RegexError{Pattern: s, Problem: "the pattern does not compile"}).Error()}
			}
		}
		ev.regexps[c] = re
	case kql.OpIn, kql.OpInCI:
		set := &valueSet{}
		for _, a := range c.Args[1:] {
			k := a.(*kql.Const).V
			if k.Null {
				continue
			}
			switch {
			case k.Type == store.TypeBool:
				if k.Bool {
					set.bools[1] = true
				} else {
					set.bools[0] = true
				}
			case kql.IsIntHeld(k.Type):
				if set.ints == nil {
					set.ints = map[int64]struct{}{}
				}
				set.ints[k.Int] = struct{}{}
			case k.Type == store.TypeDecimal:
				set.addDec(k)
			case kql.IsRealHeld(k.Type):
				if set.reals == nil {
					set.reals = map[float64]struct{}{}
				}
				set.reals[k.Real] = struct{}{}
			default:
				if set.strs == nil {
					set.strs = map[string]struct{}{}
				}
				set.strs[k.Str] = struct{}{}
			}
		}
		ev.sets[c] = set
	default:
		return ev.prepareExt(c)
	}
	return nil
}

func matchKind(fn kql.FuncID) (kql.MatchKind, bool) {
	switch fn {
	case kql.OpContains:
		return kql.MatchContains, false
	case kql.OpContainsCS:
		return kql.MatchContains, true
	case kql.OpHas:
		return kql.MatchHas, false
	case kql.OpHasCS:
		return kql.MatchHas, true
	case kql.OpHasPrefix:
		return kql.MatchHasPrefix, false
	case kql.OpHasPrefixCS:
		return kql.MatchHasPrefix, true
	case kql.OpHasSuffix:
		return kql.MatchHasSuffix, false
	case kql.OpHasSuffixCS:
		return kql.MatchHasSuffix, true
	case kql.OpStartsWith:
		return kql.MatchStartsWith, false
	case kql.OpStartsWithCS:
		return kql.MatchStartsWith, true
	case kql.OpEndsWith:
		return kql.MatchEndsWith, false
	}
	return kql.MatchEndsWith, true
}

// eval computes e for every row of b.
func (ev *evaluator) eval(e kql.Scalar, b *store.Batch) (*store.Vector, error) {
	switch e := e.(type) {
	case *kql.ColRef:
		v := b.Col(e.Name)
		if v == nil {
			return nil, fmt.Errorf("BUG: column %q not in batch", e.Name)
		}
		return v, nil
	case *kql.Const:
		return constValueVector(e.V, b.Len), nil
	case *kql.FnCall:
		return ev.call(e, b)
	case *kql.Subquery:
		v, ok := ev.subs[e]
		if !ok {
			return nil, fmt.Errorf("BUG: subquery not computed")
		}
		return constValueVector(v, b.Len), nil
	case *kql.PartitionKey:
		return constValueVector(e.Slot.Get(e.T), b.Len), nil
	}
	return nil, fmt.Errorf("BUG: unknown expression %T", e)
}

// evalConst evaluates a column-free expression to a single value.
func (ev *evaluator) evalConst(e kql.Scalar) (kql.Value, error) {
	if k, ok := e.(*kql.Const); ok {
		return k.V, nil
	}
	v, err := ev.eval(e, &store.Batch{Len: 1})
	if err != nil {
		return kql.Value{}, err
	}
	out := valueAt(v, 0)
	if v.Type == store.TypeDecimal && !out.Null {
		if d, ok := decAt(v, 0); ok {
			out.Str = d.String() // keep the exact digits in a folded constant
		}
	}
	return out, nil
}

func (ev *evaluator) call(c *kql.FnCall, b *store.Batch) (*store.Vector, error) {
	n := b.Len
	// A string predicate over a dictionary-coded column: once per entry
	// (latemat.go); the only way a codes-only column is compared.
	if col, ok := dictLeafCol(c); ok {
		if v := b.Col(col); v != nil && v.Codes != nil {
			if out, ok, err := ev.dictLeaf(c, col, v, n); ok {
				return out, err
			}
		}
	}
	// Operators with a constant right side get scalar kernels.
	switch c.Fn {
	case kql.OpEq, kql.OpNe, kql.OpLt, kql.OpLe, kql.OpGt, kql.OpGe:
		return ev.compare(c, b)
	case kql.OpAnd, kql.OpOr:
		return ev.logical(c, b)
	case kql.FnNow:
		return constVector(kql.DatetimeValue(ev.now), n), nil
	case kql.OpIn, kql.OpInCI:
		x, err := ev.eval(c.Args[0], b)
		if err != nil {
			return nil, err
		}
		return inSet(ev.sets[c], x, n, c.Fn == kql.OpInCI), nil
	case kql.OpInSubquery:
		x, err := ev.eval(c.Args[0], b)
		if err != nil {
			return nil, err
		}
		set := ev.subSets[c.Args[1].(*kql.Subquery)]
		if set == nil {
			return nil, fmt.Errorf("BUG: subquery set not computed")
		}
		return inSet(set, x, n, false), nil
	case kql.FnIff, kql.FnCase, kql.FnCoalesce:
		return ev.conditional(c, b)
	}
	if m := ev.matchers[c]; m != nil {
		x, err := ev.eval(c.Args[0], b)
		if err != nil {
			return nil, err
		}
		return matchVector(c.Fn, m, x.Str[:n]), nil
	}
	args := make([]*store.Vector, len(c.Args))
	for i, a := range c.Args {
		v, err := ev.eval(a, b)
		if err != nil {
			return nil, err
		}
		args[i] = v
	}
	switch c.Fn {
	case kql.OpCast:
		return castVector(args[0], c.T, n), nil
	case kql.OpAdd, kql.OpSub, kql.OpMul, kql.OpDiv, kql.OpMod:
		if c.T == store.TypeDecimal {
			return decArith(c.Fn, args[0], args[1], n)
		}
		return arith(c.Fn, c.T, args[0], args[1], n), nil
	case kql.OpDivSpans:
		out := newVector(store.TypeReal, n)
		out.Nulls = orNulls(args[0].Nulls, args[1].Nulls, n)
		for i := range n {
			out.Real[i] = float64(args[0].Int[i]) / float64(args[1].Int[i])
		}
		return out, nil
	case kql.OpNeg:
		if c.T == store.TypeDecimal {
			out := newDecVector(n)
			for i := range n {
				if d, ok := decAt(args[0], i); ok {
					setDec(out, i, d.Neg())
				} else {
					setNullAt(out, i, n)
				}
			}
			return out, nil
		}
		out := newVector(c.T, n)
		out.Nulls = orNulls(args[0].Nulls, nil, n)
		if kql.IsRealHeld(c.T) {
			for i := range n {
				out.Real[i] = -args[0].Real[i]
			}
		} else {
			for i := range n {
				out.Int[i] = -args[0].Int[i]
			}
		}
		return out, nil
	case kql.OpNot:
		out := newVector(store.TypeBool, n)
		out.Nulls = orNulls(args[0].Nulls, nil, n)
		for i := range n {
			out.Bool[i] = !args[0].Bool[i]
		}
		return out, nil
	case kql.OpEqCI, kql.OpNeCI:
		out := newVector(store.TypeBool, n)
		want := c.Fn == kql.OpEqCI
		for i := range n {
			out.Bool[i] = strings.EqualFold(args[0].Str[i], args[1].Str[i]) == want
		}
		return out, nil
	case kql.OpContains, kql.OpContainsCS, kql.OpHas, kql.OpHasCS, kql.OpHasPrefix, kql.OpHasPrefixCS,
		kql.OpHasSuffix, kql.OpHasSuffixCS, kql.OpStartsWith, kql.OpStartsWithCS, kql.OpEndsWith, kql.OpEndsWithCS:
		// Non-constant needle: a matcher per row.
		kind, cs := matchKind(c.Fn)
		out := newVector(store.TypeBool, n)
		for i := range n {
			m := kql.NewMatcher(args[1].Str[i], kind, cs)
			out.Bool[i] = matchOne(c.Fn, m, args[0].Str[i])
		}
		return out, nil
	case kql.OpMatchesRegex:
		re := ev.regexps[c]
		out := newVector(store.TypeBool, n)
		for i := range n {
			out.Bool[i] = re.MatchString(args[0].Str[i])
		}
		return out, nil
	}
	return ev.function(c, args, n)
}

func matchOne(fn kql.FuncID, m *kql.Matcher, s string) bool {
	switch fn {
	case kql.OpContains, kql.OpContainsCS:
		return m.Contains(s)
	case kql.OpStartsWith, kql.OpStartsWithCS:
		return m.StartsWith(s)
	case kql.OpEndsWith, kql.OpEndsWithCS:
		return m.EndsWith(s)
	}
	return m.Has(s)
}

func matchVector(fn kql.FuncID, m *kql.Matcher, xs []string) *store.Vector {
	out := newVector(store.TypeBool, len(xs))
	res := out.Bool
	switch fn {
	case kql.OpContains, kql.OpContainsCS:
		for i, s := range xs {
			res[i] = m.Contains(s)
		}
	case kql.OpStartsWith, kql.OpStartsWithCS:
		for i, s := range xs {
			res[i] = m.StartsWith(s)
		}
	case kql.OpEndsWith, kql.OpEndsWithCS:
		for i, s := range xs {
			res[i] = m.EndsWith(s)
		}
	default:
		for i, s := range xs {
			res[i] = m.Has(s)
		}
	}
	return out
}

// compare evaluates ==, !=, <, <=, >, >= with typed kernels; a constant on
// either side is compared as a scalar.
func (ev *evaluator) compare(c *kql.FnCall, b *store.Batch) (*store.Vector, error) {
	n := b.Len
	op := c.Fn
	l, r := c.Args[0], c.Args[1]
	if _, ok := l.(*kql.Const); ok {
		if _, ok := r.(*kql.Const); !ok {
			l, r = r, l
			op = flipOp(op)
		}
	}
	x, err := ev.eval(l, b)
	if err != nil {
		return nil, err
	}
	if x.Type == store.TypeDecimal {
		y, err := ev.eval(r, b)
		if err != nil {
			return nil, err
		}
		return decCompare(op, x, y, n), nil
	}
	out := newVector(store.TypeBool, n)
	if k, ok := r.(*kql.Const); ok {
		if k.V.Null {
			return nullVector(store.TypeBool, n), nil
		}
		out.Nulls = orNulls(x.Nulls, nil, n)
		switch {
		case x.Type == store.TypeBool:
			cmpVS(op, boolsToInts(x.Bool[:n]), boolInt(k.V.Bool), out.Bool)
		case kql.IsIntHeld(x.Type):
			cmpVS(op, x.Int[:n], k.V.Int, out.Bool)
		case kql.IsRealHeld(x.Type):
			cmpVS(op, x.Real[:n], k.V.Real, out.Bool)
		default:
			cmpVS(op, x.Str[:n], k.V.Str, out.Bool)
		}
		return out, nil
	}
	y, err := ev.eval(r, b)
	if err != nil {
		return nil, err
	}
	out.Nulls = orNulls(x.Nulls, y.Nulls, n)
	switch {
	case x.Type == store.TypeBool:
		cmpVV(op, boolsToInts(x.Bool[:n]), boolsToInts(y.Bool[:n]), out.Bool)
	case kql.IsIntHeld(x.Type):
		cmpVV(op, x.Int[:n], y.Int[:n], out.Bool)
	case kql.IsRealHeld(x.Type):
		cmpVV(op, x.Real[:n], y.Real[:n], out.Bool)
	default:
		cmpVV(op, x.Str[:n], y.Str[:n], out.Bool)
	}
	return out, nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func boolsToInts(bs []bool) []int64 {
	out := make([]int64, len(bs))
	for i, b := range bs {
		if b {
			out[i] = 1
		}
	}
	return out
}

func flipOp(op kql.FuncID) kql.FuncID {
	switch op {
	case kql.OpLt:
		return kql.OpGt
	case kql.OpLe:
		return kql.OpGe
	case kql.OpGt:
		return kql.OpLt
	case kql.OpGe:
		return kql.OpLe
	}
	return op
}

func cmpVS[T cmp.Ordered](op kql.FuncID, x []T, k T, out []bool) {
	switch op {
	case kql.OpEq:
		for i, v := range x {
			out[i] = v == k
		}
	case kql.OpNe:
		for i, v := range x {
			out[i] = v != k
		}
	case kql.OpLt:
		for i, v := range x {
			out[i] = v < k
		}
	case kql.OpLe:
		for i, v := range x {
			out[i] = v <= k
		}
	case kql.OpGt:
		for i, v := range x {
			out[i] = v > k
		}
	case kql.OpGe:
		for i, v := range x {
			out[i] = v >= k
		}
	}
}

func cmpVV[T cmp.Ordered](op kql.FuncID, x, y []T, out []bool) {
	switch op {
	case kql.OpEq:
		for i, v := range x {
			out[i] = v == y[i]
		}
	case kql.OpNe:
		for i, v := range x {
			out[i] = v != y[i]
		}
	case kql.OpLt:
		for i, v := range x {
			out[i] = v < y[i]
		}
	case kql.OpLe:
		for i, v := range x {
			out[i] = v <= y[i]
		}
	case kql.OpGt:
		for i, v := range x {
			out[i] = v > y[i]
		}
	case kql.OpGe:
		for i, v := range x {
			out[i] = v >= y[i]
		}
	}
}

// logical evaluates and/or with Kusto's three-valued logic: false and null is
// false, true or null is true, otherwise null wins.
func (ev *evaluator) logical(c *kql.FnCall, b *store.Batch) (*store.Vector, error) {
	n := b.Len
	x, err := ev.eval(c.Args[0], b)
	if err != nil {
		return nil, err
	}
	y, err := ev.eval(c.Args[1], b)
	if err != nil {
		return nil, err
	}
	out := newVector(store.TypeBool, n)
	if x.Nulls == nil && y.Nulls == nil {
		if c.Fn == kql.OpAnd {
			for i := range n {
				out.Bool[i] = x.Bool[i] && y.Bool[i]
			}
		} else {
			for i := range n {
				out.Bool[i] = x.Bool[i] || y.Bool[i]
			}
		}
		return out, nil
	}
	nulls := make([]bool, n)
	anyNull := false
	for i := range n {
		xn, yn := x.IsNull(i), y.IsNull(i)
		xv, yv := x.Bool[i] && !xn, y.Bool[i] && !yn
		if c.Fn == kql.OpAnd {
			switch {
			case (!xn && !xv) || (!yn && !yv):
				out.Bool[i] = false
			case xn || yn:
				nulls[i], anyNull = true, true
			default:
				out.Bool[i] = true
			}
		} else {
			switch {
			case xv || yv:
				out.Bool[i] = true
			case xn || yn:
				nulls[i], anyNull = true, true
			}
		}
	}
	if anyNull {
		out.Nulls = nulls
	}
	return out, nil
}

func inSet(set *valueSet, x *store.Vector, n int, ci bool) *store.Vector {
	out := newVector(store.TypeBool, n)
	switch {
	case x.Type == store.TypeBool:
		for i := range n {
			out.Bool[i] = !x.IsNull(i) && set.bools[boolInt(x.Bool[i])]
		}
	case kql.IsIntHeld(x.Type):
		for i := range n {
			_, ok := set.ints[x.Int[i]]
			out.Bool[i] = ok && !x.IsNull(i)
		}
	case x.Type == store.TypeDecimal && set.decs != nil:
		for i := range n {
			if x.IsNull(i) {
				continue
			}
			_, ok := set.decs[decKey(x, i)]
			if !ok {
				_, ok = set.reals[x.Real[i]]
			}
			out.Bool[i] = ok
		}
	case kql.IsRealHeld(x.Type):
		for i := range n {
			_, ok := set.reals[x.Real[i]]
			out.Bool[i] = ok && !x.IsNull(i)
		}
	default:
		for i := range n {
			s := x.Str[i]
			if ci {
				s = strings.ToLower(s)
			}
			_, ok := set.strs[s]
			out.Bool[i] = ok
		}
	}
	return out
}

// ringArith computes o = a op b for the operators that need no zero or sign
// handling (+, -, *), the same for integers and reals, and reports whether op
// was one of them. float64 and int64 are different GC shapes, so each gets its
// own compiled loop.
func ringArith[T int64 | float64](op kql.FuncID, a, b, o []T) bool {
	switch op {
	case kql.OpAdd:
		for i := range o {
			o[i] = a[i] + b[i]
		}
	case kql.OpSub:
		for i := range o {
			o[i] = a[i] - b[i]
		}
	case kql.OpMul:
		for i := range o {
			o[i] = a[i] * b[i]
		}
	default:
		return false
	}
	return true
}

// arith evaluates + - * / % on operands of one storage class. Integer
// overflow wraps (two's complement, as .NET's unchecked arithmetic); integer
// division or modulo by zero is null; real division follows IEEE 754. Modulo
// is always non-negative, as in Kusto.
func arith(op kql.FuncID, t store.ColumnType, x, y *store.Vector, n int) *store.Vector {
	out := newVector(t, n)
	out.Nulls = orNulls(x.Nulls, y.Nulls, n)
	if kql.IsRealHeld(x.Type) {
		a, b, o := x.Real[:n], y.Real[:n], out.Real
		if ringArith(op, a, b, o) {
			return out
		}
		switch op {
		case kql.OpDiv:
			for i := range o {
				o[i] = a[i] / b[i]
			}
		case kql.OpMod:
			for i := range o {
				m := math.Mod(a[i], b[i])
				if m < 0 {
					m += math.Abs(b[i])
				}
				o[i] = m
			}
		}
		return out
	}
	a, b, o := x.Int[:n], y.Int[:n], out.Int
	switch {
	case ringArith(op, a, b, o):
	case op == kql.OpDiv, op == kql.OpMod:
		for i := range o {
			if b[i] == 0 {
				if out.Nulls == nil {
					out.Nulls = make([]bool, n)
				}
				out.Nulls[i] = true
				continue
			}
			if op == kql.OpDiv {
				o[i] = a[i] / b[i]
			} else {
				m := a[i] % b[i]
				if m < 0 {
					if b[i] < 0 {
						m -= b[i]
					} else {
						m += b[i]
					}
				}
				o[i] = m
			}
		}
	}
	if t == store.TypeInt {
		for i := range o {
			o[i] = int64(int32(o[i]))
		}
	}
	return out
}

// castVector converts exactly between storage classes (the binder's OpCast).
func castVector(x *store.Vector, t store.ColumnType, n int) *store.Vector {
	if t == store.TypeDecimal && x.Type != store.TypeDecimal {
		return toDecimalVector(x, n)
	}
	switch {
	case kql.IsIntHeld(x.Type) && kql.IsIntHeld(t):
		return retype(x, t)
	case kql.IsRealHeld(x.Type) && kql.IsRealHeld(t):
		out := *x
		out.Type = t
		return &out
	case kql.IsStringLike(x.Type) && kql.IsStringLike(t):
		out := *x
		out.Type = t
		return &out
	case kql.IsIntHeld(x.Type) && kql.IsRealHeld(t):
		out := newVector(t, n)
		out.Nulls = orNulls(x.Nulls, nil, n)
		for i := range n {
			out.Real[i] = float64(x.Int[i])
		}
		return out
	case kql.IsRealHeld(x.Type) && kql.IsIntHeld(t):
		out := newVector(t, n)
		out.Nulls = orNulls(x.Nulls, nil, n)
		for i := range n {
			f := x.Real[i]
			if math.IsNaN(f) || math.IsInf(f, 0) || f > math.MaxInt64 || f < math.MinInt64 {
				if out.Nulls == nil {
					out.Nulls = make([]bool, n)
				}
				out.Nulls[i] = true
				continue
			}
			out.Int[i] = int64(math.Round(f))
		}
		return out
	}
	return convertVector(x, t, n)
}

// conditional evaluates iff, case and coalesce.
func (ev *evaluator) conditional(c *kql.FnCall, b *store.Batch) (*store.Vector, error) {
	n := b.Len
	args := make([]*store.Vector, len(c.Args))
	for i, a := range c.Args {
		v, err := ev.eval(a, b)
		if err != nil {
			return nil, err
		}
		args[i] = v
	}
	out := emptyVector(c.T, n)
	switch c.Fn {
	case kql.FnIff:
		cond, yes, no := args[0], args[1], args[2]
		for i := range n {
			if cond.Bool[i] && !cond.IsNull(i) {
				appendRow(out, yes, i)
			} else {
				appendRow(out, no, i)
			}
		}
	case kql.FnCase:
		last := len(args) - 1
		for i := range n {
			picked := args[last]
			for p := 0; p+1 < last+1 && p < last; p += 2 {
				if args[p].Bool[i] && !args[p].IsNull(i) {
					picked = args[p+1]
					break
				}
			}
			appendRow(out, picked, i)
		}
	case kql.FnCoalesce:
		for i := range n {
			picked := args[len(args)-1]
			for _, a := range args {
				if a.IsNull(i) || (a.Type == store.TypeString && a.Str[i] == "") {
					continue
				}
				picked = a
				break
			}
			appendRow(out, picked, i)
		}
	}
	return out, nil
}

// kustoEpochOffset is the number of ticks between 0001-01-01 (.NET's and
// Kusto's tick origin, used by tolong(datetime) and todatetime(long)) and the
// Unix epoch (the store's origin).
const kustoEpochOffset = 621355968000000000

// convertVector implements the to*() conversion functions: unparsable or
// out-of-range input gives null.
func convertVector(x *store.Vector, t store.ColumnType, n int) *store.Vector {
	if t == store.TypeString {
		out := newVector(t, n)
		for i := range n {
			if x.IsNull(i) {
				continue
			}
			if x.Type == store.TypeDynamic {
				out.Str[i], _ = dynScalarText(x.Str[i])
				continue
			}
			if x.Type == store.TypeDecimal {
				d, _ := decAt(x, i)
				out.Str[i] = d.String()
				continue
			}
			out.Str[i] = valueAt(x, i).String()
		}
		return out
	}
	if x.Type == t {
		return x
	}
	out := newVector(t, n)
	nulls := make([]bool, n)
	anyNull := false
	setNull := func(i int) { nulls[i], anyNull = true, true }
	for i := range n {
		if x.IsNull(i) {
			setNull(i)
			continue
		}
		v := valueAt(x, i)
		if !convertOne(v, t, out, i) {
			setNull(i)
		}
	}
	if anyNull {
		out.Nulls = nulls
	}
	return out
}

// convertOne converts v to type t into row i of out; false means null.
func convertOne(v kql.Value, t store.ColumnType, out *store.Vector, i int) bool {
	if v.Type == store.TypeDynamic {
		text, ok := dynScalarText(v.Str)
		if !ok {
			return false
		}
		v = kql.StringValue(text)
	}
	switch t {
	case store.TypeBool:
		switch {
		case v.Type == store.TypeBool:
			out.Bool[i] = v.Bool
		case kql.IsIntHeld(v.Type):
			out.Bool[i] = v.Int != 0
		case kql.IsRealHeld(v.Type):
			out.Bool[i] = v.Real != 0
		default:
			switch strings.ToLower(strings.TrimSpace(v.Str)) {
			case "true", "1":
				out.Bool[i] = true
			case "false", "0":
				out.Bool[i] = false
			default:
				return false
			}
		}
		return true
	case store.TypeInt, store.TypeLong:
		var x int64
		switch {
		case v.Type == store.TypeBool:
			x = boolInt(v.Bool)
		case v.Type == store.TypeDatetime:
			x = v.Int + kustoEpochOffset
		case kql.IsIntHeld(v.Type):
			x = v.Int
		case v.Type == store.TypeDecimal:
			// Truncated from the exact value (decimal.go), not its float64.
			d, ok := decimalValue(v)
			if !ok {
				return false
			}
			if x, ok = d.Int64(); !ok {
				return false
			}
		case kql.IsRealHeld(v.Type):
			f := math.Trunc(v.Real)
			if math.IsNaN(f) || f > math.MaxInt64 || f < math.MinInt64 {
				return false
			}
			x = int64(f)
		default:
			s := strings.TrimSpace(v.Str)
			p, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				f, ferr := strconv.ParseFloat(s, 64)
				if ferr != nil || math.IsNaN(f) || math.IsInf(f, 0) || f > math.MaxInt64 || f < math.MinInt64 {
					return false
				}
				p = int64(math.Trunc(f))
			}
			x = p
		}
		if t == store.TypeInt && (x > math.MaxInt32 || x < math.MinInt32) {
			return false
		}
		out.Int[i] = x
		return true
	case store.TypeReal, store.TypeDecimal:
		switch {
		case v.Type == store.TypeBool:
			out.Real[i] = float64(boolInt(v.Bool))
		case v.Type == store.TypeDatetime:
			out.Real[i] = float64(v.Int + kustoEpochOffset)
		case kql.IsIntHeld(v.Type):
			out.Real[i] = float64(v.Int)
		case kql.IsRealHeld(v.Type):
			out.Real[i] = v.Real
		default:
			s := strings.TrimSpace(v.Str)
			switch strings.ToLower(s) {
			case "nan":
				out.Real[i] = math.NaN()
				return true
			case "infinity", "+infinity", "inf", "+inf":
				out.Real[i] = math.Inf(1)
				return true
			case "-infinity", "-inf":
				out.Real[i] = math.Inf(-1)
				return true
			}
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return false
			}
			out.Real[i] = f
		}
		return true
	case store.TypeDatetime:
		switch {
		case kql.IsIntHeld(v.Type) && v.Type != store.TypeTimespan:
			out.Int[i] = v.Int - kustoEpochOffset
			if v.Type == store.TypeDatetime {
				out.Int[i] = v.Int
			}
		case kql.IsStringLike(v.Type):
			ticks, ok := parseKustoDatetime(v.Str)
			if !ok {
				return false
			}
			out.Int[i] = ticks
		default:
			return false
		}
		return true
	case store.TypeTimespan:
		switch {
		case v.Type == store.TypeTimespan || kql.IsInteger(v.Type):
			out.Int[i] = v.Int
		case kql.IsRealHeld(v.Type):
			if math.IsNaN(v.Real) || math.IsInf(v.Real, 0) {
				return false
			}
			out.Int[i] = int64(v.Real)
		case kql.IsStringLike(v.Type):
			ticks, ok := kql.ParseTimespan(v.Str)
			if !ok {
				return false
			}
			out.Int[i] = ticks
		default:
			return false
		}
		return true
	}
	return false
}

// function evaluates the remaining scalar functions over evaluated arguments.
func (ev *evaluator) function(c *kql.FnCall, args []*store.Vector, n int) (*store.Vector, error) {
	switch c.Fn {
	case kql.FnAgo:
		out := newVector(store.TypeDatetime, n)
		out.Nulls = orNulls(args[0].Nulls, nil, n)
		for i := range n {
			out.Int[i] = ev.now - args[0].Int[i]
		}
		return out, nil
	case kql.FnBin:
		if c.T == store.TypeDecimal && args[0].Type == store.TypeDecimal {
			return decBin(args[0], args[1], n) // decimal.go: exact
		}
		return binVector(args[0], args[1], c.T, n), nil
	case kql.FnFloor:
		if c.T == store.TypeDecimal && args[0].Type == store.TypeDecimal {
			return decMap(args[0], n, Decimal.Floor), nil
		}
		if kql.IsRealHeld(args[0].Type) {
			return mapReal(args[0], n, math.Floor), nil
		}
		return args[0], nil
	case kql.FnToString, kql.FnToInt, kql.FnToLong, kql.FnToReal, kql.FnToBool, kql.FnToDatetime, kql.FnToTimespan:
		if c.T == store.TypeDecimal {
			return toDecimalVector(args[0], n), nil
		}
		return convertVector(args[0], c.T, n), nil
	case kql.FnStrcat, kql.FnStrcatDelim:
		strs := make([]*store.Vector, len(args))
		for i, a := range args {
			strs[i] = convertVector(a, store.TypeString, n)
		}
		out := newVector(store.TypeString, n)
		var sb strings.Builder
		for i := range n {
			sb.Reset()
			if c.Fn == kql.FnStrcat {
				for _, s := range strs {
					sb.WriteString(s.Str[i])
				}
			} else {
				for j, s := range strs[1:] {
					if j > 0 {
						sb.WriteString(strs[0].Str[i])
					}
					sb.WriteString(s.Str[i])
				}
			}
			out.Str[i] = sb.String()
		}
		return out, nil
	case kql.FnStrlen:
		out := newVector(store.TypeLong, n)
		for i := range n {
			out.Int[i] = int64(utf8.RuneCountInString(args[0].Str[i]))
		}
		return out, nil
	case kql.FnToLower, kql.FnToUpper:
		out := newVector(store.TypeString, n)
		f := strings.ToLower
		if c.Fn == kql.FnToUpper {
			f = strings.ToUpper
		}
		for i := range n {
			out.Str[i] = f(args[0].Str[i])
		}
		return out, nil
	case kql.FnSubstring:
		out := newVector(store.TypeString, n)
		for i := range n {
			if args[1].IsNull(i) || (len(args) == 3 && args[2].IsNull(i)) {
				continue
			}
			var l int64
			if len(args) == 3 {
				l = args[2].Int[i]
			}
			out.Str[i] = substringRunes(args[0].Str[i], args[1].Int[i], l, len(args) == 3)
		}
		return out, nil
	case kql.FnIndexOf:
		if len(args) > 2 {
			return indexOfRange(args, n), nil
		}
		out := newVector(store.TypeLong, n)
		for i := range n {
			s := args[0].Str[i]
			j := strings.Index(s, args[1].Str[i])
			if j > 0 {
				j = utf8.RuneCountInString(s[:j])
			}
			out.Int[i] = int64(j)
		}
		return out, nil
	case kql.FnCountOf:
		out := newVector(store.TypeLong, n)
		for i := range n {
			if args[1].Str[i] == "" {
				continue
			}
			// Plain matches may overlap: countof("aaaa", "aa") is 3.
			src, sub := args[0].Str[i], args[1].Str[i]
			var k int64
			for j := strings.Index(src, sub); j >= 0; j = strings.Index(src, sub) {
				k++
				_, size := utf8.DecodeRuneInString(src[j:])
				src = src[j+size:]
			}
			out.Int[i] = k
		}
		return out, nil
	case kql.FnReplaceString:
		out := newVector(store.TypeString, n)
		for i := range n {
			if args[1].Str[i] == "" {
				out.Str[i] = args[0].Str[i]
				continue
			}
			out.Str[i] = strings.ReplaceAll(args[0].Str[i], args[1].Str[i], args[2].Str[i])
		}
		return out, nil
	case kql.FnTrim:
		re := ev.regexps[c]
		out := newVector(store.TypeString, n)
		for i := range n {
			out.Str[i] = re.ReplaceAllString(args[1].Str[i], "")
		}
		return out, nil
	case kql.FnDynGet, kql.FnParseJSON, kql.FnArrayLength:
		return ev.dynamicFunc(c, args, n), nil
	case kql.FnParse:
		re := ev.regexps[c]
		g := int(args[2].Int[0])
		out := newVector(c.T, n)
		nulls := make([]bool, n)
		anyNull := false
		for i := range n {
			m := re.FindStringSubmatchIndex(args[0].Str[i])
			if m == nil || 2*g+1 >= len(m) || m[2*g] < 0 {
				if c.T != store.TypeString {
					nulls[i], anyNull = true, true
				}
				continue
			}
			text := args[0].Str[i][m[2*g]:m[2*g+1]]
			if c.T == store.TypeString {
				out.Str[i] = text
				continue
			}
			if !convertOne(kql.StringValue(text), c.T, out, i) {
				nulls[i], anyNull = true, true
			}
		}
		if anyNull {
			out.Nulls = nulls
		}
		return out, nil
	case kql.FnExtract:
		re := ev.regexps[c]
		out := newVector(store.TypeString, n)
		for i := range n {
			g := args[1].Int[i]
			m := re.FindStringSubmatch(args[2].Str[i])
			if m != nil && g >= 0 && g < int64(len(m)) {
				out.Str[i] = m[g]
			}
		}
		return out, nil
	case kql.FnIsEmpty, kql.FnIsNotEmpty, kql.FnIsNull, kql.FnIsNotNull:
		out := newVector(store.TypeBool, n)
		x := args[0]
		for i := range n {
			var r bool
			switch c.Fn {
			case kql.FnIsEmpty:
				r = x.IsNull(i) || (kql.IsStringLike(x.Type) && x.Str[i] == "")
			case kql.FnIsNotEmpty:
				r = !(x.IsNull(i) || (kql.IsStringLike(x.Type) && x.Str[i] == ""))
			case kql.FnIsNull:
				r = x.IsNull(i)
			default:
				r = !x.IsNull(i)
			}
			out.Bool[i] = r
		}
		return out, nil
	case kql.FnIsNaN:
		out := newVector(store.TypeBool, n)
		out.Nulls = orNulls(args[0].Nulls, nil, n)
		for i := range n {
			out.Bool[i] = math.IsNaN(args[0].Real[i])
		}
		return out, nil
	case kql.FnAbs:
		x := args[0]
		if c.T == store.TypeDecimal && x.Type == store.TypeDecimal {
			return decMap(x, n, Decimal.Abs), nil
		}
		if kql.IsRealHeld(x.Type) {
			return mapReal(x, n, math.Abs), nil
		}
		out := newVector(c.T, n)
		out.Nulls = orNulls(x.Nulls, nil, n)
		for i := range n {
			v := x.Int[i]
			if v < 0 {
				v = -v
			}
			out.Int[i] = v
		}
		return out, nil
	case kql.FnRound:
		if c.T == store.TypeDecimal {
			var places *store.Vector
			if len(args) == 2 {
				places = args[1]
			}
			return decRound(args[0], places, n)
		}
		out := newVector(store.TypeReal, n)
		out.Nulls = orNulls(args[0].Nulls, nil, n)
		for i := range n {
			digits := int64(0)
			if len(args) == 2 {
				digits = args[1].Int[i]
			}
			p := math.Pow(10, float64(digits))
			out.Real[i] = math.Round(args[0].Real[i]*p) / p
		}
		return out, nil
	case kql.FnSqrt:
		return mapReal(args[0], n, math.Sqrt), nil
	case kql.FnLog:
		return mapReal(args[0], n, math.Log), nil
	case kql.FnLog10:
		return mapReal(args[0], n, math.Log10), nil
	case kql.FnExp:
		return mapReal(args[0], n, math.Exp), nil
	case kql.FnCeiling:
		return mapReal(args[0], n, math.Ceil), nil
	case kql.FnPow:
		out := newVector(store.TypeReal, n)
		out.Nulls = orNulls(args[0].Nulls, args[1].Nulls, n)
		for i := range n {
			out.Real[i] = math.Pow(args[0].Real[i], args[1].Real[i])
		}
		return out, nil
	case kql.FnStartOfDay, kql.FnStartOfHour:
		step := int64(store.TicksPerDay)
		if c.Fn == kql.FnStartOfHour {
			step = store.TicksPerHour
		}
		out := newVector(store.TypeDatetime, n)
		out.Nulls = orNulls(args[0].Nulls, nil, n)
		for i := range n {
			out.Int[i] = floorDiv(args[0].Int[i], step) * step
		}
		return out, nil
	case kql.FnDayOfWeek:
		out := newVector(store.TypeTimespan, n)
		out.Nulls = orNulls(args[0].Nulls, nil, n)
		for i := range n {
			days := floorDiv(args[0].Int[i], store.TicksPerDay)
			out.Int[i] = ((days+4)%7 + 7) % 7 * store.TicksPerDay
		}
		return out, nil
	case kql.FnGetYear, kql.FnGetMonth, kql.FnHourOfDay:
		out := newVector(store.TypeInt, n)
		out.Nulls = orNulls(args[0].Nulls, nil, n)
		for i := range n {
			t := store.TimeFromTicks(args[0].Int[i])
			switch c.Fn {
			case kql.FnGetYear:
				out.Int[i] = int64(t.Year())
			case kql.FnGetMonth:
				out.Int[i] = int64(t.Month())
			default:
				out.Int[i] = int64(t.Hour())
			}
		}
		return out, nil
	}
	if out, ok := ev.moreFunctions(c, args, n); ok {
		return out, nil
	}
	if out, ok, err := ev.extFunctions(c, args, n); ok {
		return out, err
	}
	return nil, fmt.Errorf("function %s is not supported by the executor", c.Fn)
}

func mapReal(x *store.Vector, n int, f func(float64) float64) *store.Vector {
	out := newVector(store.TypeReal, n)
	out.Nulls = orNulls(x.Nulls, nil, n)
	for i := range n {
		out.Real[i] = f(x.Real[i])
	}
	return out
}

// floorDiv divides rounding towards negative infinity.
func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// binVector rounds values down to a multiple of the bin size; a bin size of
// zero or less gives null.
func binVector(x, size *store.Vector, t store.ColumnType, n int) *store.Vector {
	out := newVector(t, n)
	out.Nulls = orNulls(x.Nulls, size.Nulls, n)
	setNull := func(i int) {
		if out.Nulls == nil {
			out.Nulls = make([]bool, n)
		}
		out.Nulls[i] = true
	}
	if kql.IsRealHeld(t) {
		for i := range n {
			s := size.Real[i]
			if !(s > 0) {
				setNull(i)
				continue
			}
			out.Real[i] = math.Floor(x.Real[i]/s) * s
		}
		return out
	}
	xs, ss := x.Int[:n], size.Int[:n]
	for i := range n {
		s := ss[i]
		if s <= 0 {
			setNull(i)
			continue
		}
		out.Int[i] = floorDiv(xs[i], s) * s
	}
	return out
}

// constValueVector is constVector keeping a negative zero: constVector
// leaves zero values as allocated (+0), but -0.0 (a literal, real(-0), a
// folded expression) must stay -0, as it does in a datatable column and
// in computed values, and as IEEE doubles do in Kusto.
func constValueVector(val kql.Value, n int) *store.Vector {
	if val.Type == store.TypeDecimal && !val.Null {
		if d, ok := decimalValue(val); ok {
			v := newDecVector(n)
			f, text := d.Float64(), d.String()
			for i := range n {
				v.Real[i], v.Str[i] = f, text
			}
			return v
		}
	}
	v := constVector(val, n)
	if !val.Null && kql.IsRealHeld(val.Type) && val.Real == 0 && math.Signbit(val.Real) {
		for i := range v.Real {
			v.Real[i] = val.Real
		}
	}
	return v
}
