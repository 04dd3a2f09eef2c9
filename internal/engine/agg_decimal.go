package engine

import (
	"fmt"
	"math"
	"math/big"

	"custos/internal/kql"
	"custos/internal/store"
)

// sumDecAgg is sum()/sumif() over decimal values, computed exactly with
// .NET decimal arithmetic. A sum that leaves the decimal range fails the
// query (failure, through aggResult), as Kusto fails a query whose
// aggregation overflows ("An overflow occurs when the result of a
// computation is too large for the destination type. The overflow usually
// leads to a partial query failure.").
type sumDecAgg struct {
	sums     []Decimal
	overflow []bool
	err      error // the first overflow
}

// aggFailer is an aggregation state whose computation can fail.
type aggFailer interface {
	// failure returns the error that invalidates the state's results, or nil.
	failure() error
}

// aggResult is st.result(groups), or the state's failure.
func aggResult(st aggState, groups int) (*store.Vector, error) {
	v := st.result(groups)
	if f, ok := st.(aggFailer); ok {
		if err := f.failure(); err != nil {
			return nil, err
		}
	}
	return v, nil
}

func (a *sumDecAgg) failure() error { return a.err }

func (a *avgDecAgg) failure() error { return a.sum.err }

func (a *sumDecAgg) grow(n int) {
	for len(a.sums) < n {
		a.sums = append(a.sums, Decimal{c: new(big.Int)})
		a.overflow = append(a.overflow, false)
	}
}

func (a *sumDecAgg) add(g int32, d Decimal) {
	if a.overflow[g] {
		return
	}
	s, err := a.sums[g].Add(d)
	if err != nil {
		a.overflow[g] = true
		if a.err == nil {
			a.err = &ExecError{Msg: fmt.Sprintf("arithmetic overflow in a decimal sum or average: %s + %s: %v", a.sums[g], d, err)}
		}
		return
	}
	a.sums[g] = s
}

func (a *sumDecAgg) update(gids []int32, args []*store.Vector, nGroups int) {
	a.grow(nGroups)
	x := args[0]
	var pred *store.Vector
	if len(args) > 1 {
		pred = args[1]
	}
	for i, g := range gids {
		if !keep(pred, i) {
			continue
		}
		if d, ok := decAt(x, i); ok {
			a.add(g, d)
		}
	}
}

func (a *sumDecAgg) merge(o aggState, m []int32, nGroups int) {
	a.grow(nGroups)
	ob := o.(*sumDecAgg)
	for i, s := range ob.sums {
		if ob.overflow[i] {
			a.overflow[m[i]] = true
			if a.err == nil {
				a.err = ob.err
			}
			continue
		}
		a.add(m[i], s)
	}
}

func (a *sumDecAgg) result(nGroups int) *store.Vector {
	a.grow(nGroups)
	out := newDecVector(nGroups)
	for g := range nGroups {
		if a.overflow[g] {
			setNullAt(out, g, nGroups)
			continue
		}
		setDec(out, g, a.sums[g])
	}
	return out
}

// avgDecAgg is avg()/avgif() over decimal values: the exact sum divided by
// the count with decimal division. A group without values is null.
type avgDecAgg struct {
	sum    sumDecAgg
	counts []int64
}

func (a *avgDecAgg) update(gids []int32, args []*store.Vector, nGroups int) {
	a.sum.grow(nGroups)
	a.counts = growInt(a.counts, nGroups)
	x := args[0]
	var pred *store.Vector
	if len(args) > 1 {
		pred = args[1]
	}
	for i, g := range gids {
		if !keep(pred, i) {
			continue
		}
		if d, ok := decAt(x, i); ok {
			a.sum.add(g, d)
			a.counts[g]++
		}
	}
}

func (a *avgDecAgg) merge(o aggState, m []int32, nGroups int) {
	ob := o.(*avgDecAgg)
	a.sum.merge(&ob.sum, m, nGroups)
	a.counts = growInt(a.counts, nGroups)
	for i, c := range ob.counts {
		a.counts[m[i]] += c
	}
}

func (a *avgDecAgg) result(nGroups int) *store.Vector {
	a.sum.grow(nGroups)
	a.counts = growInt(a.counts, nGroups)
	out := newDecVector(nGroups)
	for g := range nGroups {
		if a.sum.overflow[g] || a.counts[g] == 0 {
			setNullAt(out, g, nGroups)
			continue
		}
		d, ok, err := a.sum.sums[g].Div(DecimalFromInt(a.counts[g]))
		if err != nil || !ok {
			setNullAt(out, g, nGroups)
			continue
		}
		setDec(out, g, d)
	}
	return out
}

// updateDec is minMaxAgg.update for decimals: values compare exactly
// (decimals that round to the same float64 stay apart) and the kept value
// carries its exact text.
func (a *minMaxAgg) updateDec(gids []int32, x, pred *store.Vector) {
	has := a.has
	for i, g := range gids {
		if x.IsNull(i) || !keep(pred, i) || math.IsNaN(x.Real[i]) {
			continue
		}
		if has[g] {
			c := compareRows(x, i, a.vals, int(g))
			if (a.max && c <= 0) || (!a.max && c >= 0) {
				continue
			}
		}
		has[g] = true
		setRow(a.vals, int(g), x, i)
	}
}

// decCumsum is row_cumsum over a decimal column: the running sum computed
// exactly with decimal arithmetic (restarting to 0 where restarts says), so
// the result is decimal as its argument. A null row adds nothing and gets
// the running sum, as for the other types. A sum that leaves the decimal
// range fails the query, as sum() does.
func decCumsum(x, r *store.Vector, restarts func(*store.Vector, int) bool, n int) (*store.Vector, error) {
	out := newDecVector(n)
	sum := Decimal{c: new(big.Int)}
	for i := range n {
		if restarts(r, i) {
			sum = Decimal{c: new(big.Int)}
		}
		if d, ok := decAt(x, i); ok {
			s, err := sum.Add(d)
			if err != nil {
				return nil, &ExecError{Msg: fmt.Sprintf("arithmetic overflow in row_cumsum: %s + %s: %v", sum, d, err)}
			}
			sum = s
		}
		setDec(out, i, sum)
	}
	return out, nil
}

// setKey is the key under which make_set and count_distinct remember a
// value: the value itself, except that a decimal is keyed by its exact
// digits without trailing fractional zeros, so equal decimals of different
// scale (1.0, 1.00) are one member and decimals that round to the same
// float64 are two, whether or not the row carries exact text.
func setKey(v kql.Value) kql.Value {
	if v.Type != store.TypeDecimal || v.Null {
		return v
	}
	if d, ok := decimalValue(v); ok {
		return kql.Value{Type: store.TypeDecimal, Str: d.trimZeros(0).String()}
	}
	return v
}
