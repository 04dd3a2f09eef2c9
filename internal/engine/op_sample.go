package engine

import (
	"context"
	"math/rand/v2"
	"slices"
	"strconv"

	"custos/internal/kql"
	"custos/internal/store"
)

// sample keeps n.N rows of its input chosen uniformly at random (in input
// order).
func (x *executor) sample(ctx context.Context, n *kql.RandomSample) ([]*store.Batch, error) {
	b, sz, err := x.input(ctx, n.Input)
	defer x.release(sz)
	if err != nil || b == nil {
		return nil, err
	}
	if int64(b.Len) <= n.N {
		return []*store.Batch{b}, nil
	}
	k := int(n.N)
	// Reservoir sampling of row numbers.
	sel := make([]int32, 0, k)
	for i := 0; i < b.Len; i++ {
		if i < k {
			sel = append(sel, int32(i))
			continue
		}
		if j := rand.IntN(i + 1); j < k {
			sel[j] = int32(i)
		}
	}
	slices.Sort(sel)
	return []*store.Batch{gatherBatch(b, sel)}, nil
}

// valueKey is a grouping key for one value (type, nullness and value).
func valueKey(v kql.Value) string {
	if v.Null {
		return "\x00null"
	}
	switch {
	case v.Type == store.TypeBool:
		return strconv.FormatBool(v.Bool)
	case kql.IsIntHeld(v.Type):
		return strconv.FormatInt(v.Int, 10)
	case kql.IsRealHeld(v.Type):
		return strconv.FormatFloat(v.Real, 'g', -1, 64)
	}
	return "s" + v.Str
}
