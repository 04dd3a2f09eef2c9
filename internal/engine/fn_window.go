package engine

import (
	"fmt"

	"custos/internal/kql"
	"custos/internal/store"
)

// Window functions (row_number, prev, next, row_cumsum, row_rank_dense,
// row_rank_min) read neighbouring rows, so they are correct only when the
// batch they are evaluated on is the whole serialized input, in order. The
// executor signals that with evaluator.serial; without it prepare refuses
// them rather than answer per batch.

// errWindowNeedsSerial is returned for a window function outside a
// serialized single-batch evaluation.
func errWindowNeedsSerial(fn kql.FuncID) error {
	return fmt.Errorf("function '%s' is not supported yet: window functions need the executor to evaluate the serialized input as one batch", fn)
}

// windowFunction evaluates a window function over b, which must be the
// whole serialized input.
func (ev *evaluator) windowFunction(c *kql.FnCall, args []*store.Vector, n int) (*store.Vector, error) {
	if !ev.serial {
		return nil, errWindowNeedsSerial(c.Fn)
	}
	restartAt := func(k int) *store.Vector {
		if len(args) > k {
			return args[k]
		}
		return nil
	}
	restarts := func(r *store.Vector, i int) bool { return r != nil && !r.IsNull(i) && r.Bool[i] }
	t := c.T
	switch c.Fn {
	case kql.FnRowNumber:
		out := newVector(store.TypeLong, n)
		r := restartAt(1)
		k := int64(0)
		for i := range n {
			if i > 0 && restarts(r, i) {
				k = 0
			}
			out.Int[i] = args[0].Int[i] + k
			k++
		}
		return out, nil
	case kql.FnPrev, kql.FnNext:
		out := emptyVector(t, n)
		for i := range n {
			off := args[1].Int[i]
			j := int64(i) - off
			if c.Fn == kql.FnNext {
				j = int64(i) + off
			}
			switch {
			case j >= 0 && j < int64(n):
				appendRow(out, args[0], int(j))
			case len(args) == 3:
				appendRow(out, args[2], i)
			default:
				appendValue(out, kql.NullValue(t))
			}
		}
		return out, nil
	case kql.FnRowCumsum:
		r := restartAt(1)
		if t == store.TypeDecimal {
			return decCumsum(args[0], r, restarts, n)
		}
		out := newVector(t, n)
		var si int64
		var sr float64
		for i := range n {
			if restarts(r, i) {
				si, sr = 0, 0
			}
			if !args[0].IsNull(i) {
				if kql.IsRealHeld(t) {
					sr += args[0].Real[i]
				} else {
					si += args[0].Int[i]
				}
			}
			if kql.IsRealHeld(t) {
				out.Real[i] = sr
			} else {
				out.Int[i] = si
			}
		}
		return out, nil
	case kql.FnRowWindowSession:
		// A row starts a new session when it is the first, when restart is
		// true, or when it is farther than MaxDistanceFromFirst from the
		// session's first value or farther than MaxDistanceBetweenNeighbors
		// from the previous row's value; every row gets its session's first
		// value. A null value is null, and the next value starts a new
		// session (as the Kusto documentation says).
		out := newVector(t, n)
		r := restartAt(3)
		var start, last int64
		open := false
		for i := range n {
			if args[0].IsNull(i) {
				setNullAt(out, i, n)
				open = false
				continue
			}
			x := args[0].Int[i]
			newSession := !open || restarts(r, i) ||
				args[1].IsNull(i) || x-start > args[1].Int[i] ||
				args[2].IsNull(i) || x-last > args[2].Int[i]
			if newSession {
				start, open = x, true
			}
			last = x
			out.Int[i] = start
		}
		return out, nil
	case kql.FnRowRankDense, kql.FnRowRankMin:
		out := newVector(store.TypeLong, n)
		r := restartAt(1)
		var rank, start int64
		for i := range n {
			switch {
			case i == 0 || restarts(r, i):
				rank, start = 1, int64(i)
			case compareNullable(args[0], i, args[0], i-1) != 0:
				if c.Fn == kql.FnRowRankDense {
					rank++
				} else {
					rank = int64(i) - start + 1
				}
			}
			out.Int[i] = rank
		}
		return out, nil
	}
	return nil, fmt.Errorf("BUG: %s is not a window function", c.Fn)
}

// compareNullable compares two rows, nulls equal to each other and before
// any value.
func compareNullable(a *store.Vector, i int, b *store.Vector, j int) int {
	an, bn := a.IsNull(i), b.IsNull(j)
	switch {
	case an && bn:
		return 0
	case an:
		return -1
	case bn:
		return 1
	case a.Type == store.TypeBool:
		return cmpInt(boolInt(a.Bool[i]), boolInt(b.Bool[j]))
	}
	return compareRows(a, i, b, j)
}
