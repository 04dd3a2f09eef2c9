package engine

import (
	"context"
	"fmt"

	"custos/internal/kql"
	"custos/internal/store"
)

// join runs a hash join: the right side is built into a table keyed by the
// encoded join keys, the left side probes it in order. Null keys never match.
func (x *executor) join(ctx context.Context, j *kql.HashJoin) ([]*store.Batch, error) {
	rs := j.Right.Schema()
	rightBs, err := x.run(ctx, j.Right)
	if err != nil {
		return nil, err
	}
	rb := emptyBatch(rs)
	if len(rightBs) > 0 {
		rb = concatBatches(rs, rightBs)
	}
	sz := batchBytes(rb) + int64(rb.Len)*48
	if err := x.reserve(sz); err != nil {
		return nil, err
	}
	defer x.release(sz)
	rkeys, err := keyVectors(rb, j.RightKeys)
	if err != nil {
		return nil, err
	}
	table := make(map[string][]int32, rb.Len)
	var buf []byte
	for i := 0; i < rb.Len; i++ {
		var ok bool
		if buf, ok = joinKey(buf[:0], rkeys, i); !ok {
			continue
		}
		table[string(buf)] = append(table[string(buf)], int32(i))
	}
	leftBs, err := x.run(ctx, j.Left)
	if err != nil {
		return nil, err
	}
	out := make([]*store.Batch, 0, len(leftBs)+1)
	schema := j.Schema()
	seen := map[string]bool{}
	// rightMatched marks right rows that met a left row, for the kinds that
	// also output (or filter) right rows: rightouter, fullouter, rightsemi,
	// rightanti.
	var rightMatched []bool
	switch j.Kind {
	case "rightouter", "fullouter", "rightsemi", "rightanti":
		rightMatched = make([]bool, rb.Len)
	}
	var held int64 // output bytes reserved, released when the join returns
	defer func() { x.release(held) }()
	emit := func(ob *store.Batch) error {
		osz := batchBytes(ob)
		if err := x.reserve(osz); err != nil {
			return err
		}
		held += osz
		out = append(out, ob)
		return nil
	}
	for _, lb := range leftBs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		lkeys, err := keyVectors(lb, j.LeftKeys)
		if err != nil {
			return nil, err
		}
		var lsel, rsel []int32
		for i := 0; i < lb.Len; i++ {
			var matches []int32
			k, ok := joinKey(buf[:0], lkeys, i)
			buf = k
			if ok {
				matches = table[string(k)]
			}
			if rightMatched != nil {
				for _, m := range matches {
					rightMatched[m] = true
				}
			}
			switch j.Kind {
			case "innerunique":
				if !ok || seen[string(k)] {
					continue
				}
				seen[string(k)] = true
				for _, m := range matches {
					lsel, rsel = append(lsel, int32(i)), append(rsel, m)
				}
			case "inner", "rightouter":
				for _, m := range matches {
					lsel, rsel = append(lsel, int32(i)), append(rsel, m)
				}
			case "leftouter", "fullouter":
				if len(matches) == 0 {
					lsel, rsel = append(lsel, int32(i)), append(rsel, -1)
				}
				for _, m := range matches {
					lsel, rsel = append(lsel, int32(i)), append(rsel, m)
				}
			case "leftsemi":
				if len(matches) > 0 {
					lsel = append(lsel, int32(i))
				}
			case "leftanti":
				if len(matches) == 0 {
					lsel = append(lsel, int32(i))
				}
			case "rightsemi", "rightanti":
				// Right rows are emitted once every left row is seen.
			default:
				return nil, fmt.Errorf("BUG: join kind %q", j.Kind)
			}
		}
		if len(lsel) == 0 {
			continue
		}
		ob := &store.Batch{Schema: schema, Len: len(lsel)}
		for _, c := range lb.Cols {
			ob.Cols = append(ob.Cols, gather(c, lsel))
		}
		if j.HasRight() {
			for _, c := range rb.Cols {
				ob.Cols = append(ob.Cols, gatherOrNull(c, rsel))
			}
		}
		if err := emit(ob); err != nil {
			return nil, err
		}
	}
	if rightMatched == nil {
		return out, nil
	}
	// The right rows of the right kinds: matched ones for rightsemi,
	// unmatched ones (null keys included) for the others.
	want := j.Kind == "rightsemi"
	var rsel []int32
	for i, m := range rightMatched {
		if m == want {
			rsel = append(rsel, int32(i))
		}
	}
	if len(rsel) == 0 {
		return out, nil
	}
	ob := &store.Batch{Schema: schema, Len: len(rsel)}
	if j.HasLeft() {
		lsel := make([]int32, len(rsel))
		for i := range lsel {
			lsel[i] = -1
		}
		for _, c := range emptyBatch(j.Left.Schema()).Cols {
			ob.Cols = append(ob.Cols, gatherOrNull(c, lsel))
		}
	}
	for _, c := range rb.Cols {
		ob.Cols = append(ob.Cols, gather(c, rsel))
	}
	if err := emit(ob); err != nil {
		return nil, err
	}
	return out, nil
}

func keyVectors(b *store.Batch, names []string) ([]*store.Vector, error) {
	out := make([]*store.Vector, len(names))
	for i, n := range names {
		v := b.Col(n)
		if v == nil {
			return nil, fmt.Errorf("BUG: join key %q not in batch", n)
		}
		out[i] = v
	}
	return out, nil
}

// joinKey encodes row i's keys; ok is false when a key is null.
func joinKey(buf []byte, keys []*store.Vector, i int) ([]byte, bool) {
	for _, k := range keys {
		if k.IsNull(i) {
			return buf, false
		}
		buf = appendKey(buf, k, i)
	}
	return buf, true
}

// gatherOrNull is gather where index -1 produces a null row.
func gatherOrNull(v *store.Vector, sel []int32) *store.Vector {
	out := emptyVector(v.Type, len(sel))
	for _, i := range sel {
		if i < 0 {
			appendValue(out, kql.NullValue(v.Type))
			continue
		}
		appendRow(out, v, int(i))
	}
	return out
}
