package engine

import (
	"cmp"
	"container/heap"
	"math"
	"slices"

	"custos/internal/kql"
	"custos/internal/store"
)

// rowComparator compares rows of one batch by evaluated sort keys.
type rowComparator struct {
	keys []kql.OrderKey
	vecs []*store.Vector
}

func (ev *evaluator) newComparator(keys []kql.OrderKey, b *store.Batch) (*rowComparator, error) {
	rc := &rowComparator{keys: keys, vecs: make([]*store.Vector, len(keys))}
	for i, k := range keys {
		v, err := ev.eval(k.X, b)
		if err != nil {
			return nil, err
		}
		rc.vecs[i] = v
	}
	return rc, nil
}

// compare orders rows i and j: negative when i sorts first.
func (rc *rowComparator) compare(i, j int32) int {
	for k, key := range rc.keys {
		v := rc.vecs[k]
		ni, nj := isNullForSort(v, int(i)), isNullForSort(v, int(j))
		var c int
		switch {
		case ni && nj:
			c = 0
		case ni:
			if key.NullsFirst {
				return -1
			}
			return 1
		case nj:
			if key.NullsFirst {
				return 1
			}
			return -1
		default:
			switch {
			case v.Type == store.TypeBool:
				c = cmp.Compare(boolInt(v.Bool[i]), boolInt(v.Bool[j]))
			case kql.IsIntHeld(v.Type):
				c = cmp.Compare(v.Int[i], v.Int[j])
			case kql.IsRealHeld(v.Type):
				c = cmp.Compare(v.Real[i], v.Real[j])
				if c == 0 && hasDecText(v) {
					c = decTieCompare(v, int(i), int(j)) // equal float64s, maybe different decimals
				}
			default:
				c = cmp.Compare(v.Str[i], v.Str[j])
			}
			if key.Desc {
				c = -c
			}
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

// isNullForSort treats null and NaN as "no value" for nulls first/last.
func isNullForSort(v *store.Vector, i int) bool {
	if v.IsNull(i) {
		return true
	}
	return kql.IsRealHeld(v.Type) && math.IsNaN(v.Real[i])
}

// sortBatch sorts b stably by keys.
func (ev *evaluator) sortBatch(b *store.Batch, keys []kql.OrderKey) (*store.Batch, error) {
	rc, err := ev.newComparator(keys, b)
	if err != nil {
		return nil, err
	}
	perm := make([]int32, b.Len)
	for i := range perm {
		perm[i] = int32(i)
	}
	slices.SortStableFunc(perm, rc.compare)
	return gatherBatch(b, perm), nil
}

// topRows returns the first n rows of b in key order (stable), using a
// bounded heap when n is small relative to b.
func (ev *evaluator) topRows(b *store.Batch, keys []kql.OrderKey, n int64) (*store.Batch, error) {
	if n <= 0 {
		return sliceBatch(b, 0, 0), nil
	}
	if int64(b.Len) <= n || n*8 > int64(b.Len) {
		s, err := ev.sortBatch(b, keys)
		if err != nil {
			return nil, err
		}
		if int64(s.Len) > n {
			s = sliceBatch(s, 0, int(n))
		}
		return s, nil
	}
	rc, err := ev.newComparator(keys, b)
	if err != nil {
		return nil, err
	}
	// Max-heap of the n best rows: the root is the worst kept row. Ties keep
	// the earlier row, so the result matches a stable sort.
	h := &rowHeap{less: func(i, j int32) bool {
		c := rc.compare(i, j)
		if c == 0 {
			return i > j
		}
		return c > 0
	}}
	for i := int32(0); i < int32(b.Len); i++ {
		if int64(len(h.rows)) < n {
			heap.Push(h, i)
			continue
		}
		worst := h.rows[0]
		c := rc.compare(i, worst)
		if c < 0 {
			h.rows[0] = i
			heap.Fix(h, 0)
		}
	}
	rows := h.rows
	slices.SortStableFunc(rows, func(x, y int32) int {
		if c := rc.compare(x, y); c != 0 {
			return c
		}
		return cmp.Compare(x, y)
	})
	return gatherBatch(b, rows), nil
}

type rowHeap struct {
	rows []int32
	less func(i, j int32) bool
}

func (h *rowHeap) Len() int           { return len(h.rows) }
func (h *rowHeap) Less(i, j int) bool { return h.less(h.rows[i], h.rows[j]) }
func (h *rowHeap) Swap(i, j int)      { h.rows[i], h.rows[j] = h.rows[j], h.rows[i] }
func (h *rowHeap) Push(x any)         { h.rows = append(h.rows, x.(int32)) }
func (h *rowHeap) Pop() any {
	x := h.rows[len(h.rows)-1]
	h.rows = h.rows[:len(h.rows)-1]
	return x
}
