package engine

import (
	"context"
	"sort"

	"custos/internal/kql"
	"custos/internal/store"
)

// topNested runs top-nested: each level partitions the rows of the level
// above by its value expression, ranks the partitions by its aggregation
// and keeps the top N (plus an "others" partition when asked), recursively.
// Rows come out in hierarchy order: each kept value, best first, followed
// by its sub-levels.
func (x *executor) topNested(ctx context.Context, n *kql.NestedTop) ([]*store.Batch, error) {
	b, sz, err := x.input(ctx, n.Input)
	defer x.release(sz)
	if err != nil || b == nil {
		return nil, err
	}
	levels := len(n.Levels)
	ofs := make([]*store.Vector, levels)
	args := make([][]*store.Vector, levels)
	for i, l := range n.Levels {
		if ofs[i], err = x.ev.eval(l.Of.X, b); err != nil {
			return nil, err
		}
		for _, a := range l.Agg.Args {
			v, err := x.ev.eval(a, b)
			if err != nil {
				return nil, err
			}
			args[i] = append(args[i], v)
		}
	}
	extra := int64(b.Len) * 4 * int64(levels)
	if err := x.reserve(extra); err != nil {
		x.release(extra)
		return nil, err
	}
	defer x.release(extra)
	schema := n.Schema()
	out := make([]*store.Vector, len(schema))
	for i, c := range schema {
		out[i] = emptyVector(c.Type, 16)
	}
	prefix := make([]kql.Value, 0, 2*levels)
	aggOver := func(lv int, rows []int32, gids []int32, groups int) (*store.Vector, error) {
		st := newAggState(n.Levels[lv].Agg)
		gathered := make([]*store.Vector, len(args[lv]))
		for j, a := range args[lv] {
			gathered[j] = gather(a, rows)
		}
		st.update(gids, gathered, groups)
		v, err := aggResult(st, groups) // agg_decimal.go: a decimal sum can overflow
		if err != nil {
			return nil, err
		}
		return retype(v, n.Levels[lv].Agg.T), nil
	}
	var rec func(lv int, rows []int32) error
	rec = func(lv int, rows []int32) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if lv == levels {
			for i, v := range prefix {
				appendValue(out[i], v)
			}
			return nil
		}
		level := n.Levels[lv]
		index := map[string]int32{}
		var firsts []int32
		var members [][]int32
		gids := make([]int32, len(rows))
		for k, r := range rows {
			key := valueKey(valueAt(ofs[lv], int(r)))
			g, ok := index[key]
			if !ok {
				g = int32(len(firsts))
				index[key] = g
				firsts = append(firsts, r)
				members = append(members, nil)
			}
			gids[k] = g
			members[g] = append(members[g], r)
		}
		res, err := aggOver(lv, rows, gids, len(firsts))
		if err != nil {
			return err
		}
		order := make([]int, len(firsts))
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(i, j int) bool {
			a, b := order[i], order[j]
			an, bn := res.IsNull(a), res.IsNull(b)
			if an || bn {
				return !an && bn // nulls last
			}
			c := compareRows(res, a, res, b)
			if level.Asc {
				return c < 0
			}
			return c > 0
		})
		keep := len(order)
		if level.N >= 0 && int64(keep) > level.N {
			keep = int(level.N)
		}
		for _, g := range order[:keep] {
			prefix = append(prefix, valueAt(ofs[lv], int(firsts[g])), valueAt(res, g))
			if err := rec(lv+1, members[g]); err != nil {
				return err
			}
			prefix = prefix[:len(prefix)-2]
		}
		if level.Others != nil && keep < len(order) {
			var rest []int32
			for _, g := range order[keep:] {
				rest = append(rest, members[g]...)
			}
			sort.Slice(rest, func(i, j int) bool { return rest[i] < rest[j] })
			r, err := aggOver(lv, rest, make([]int32, len(rest)), 1)
			if err != nil {
				return err
			}
			prefix = append(prefix, *level.Others, valueAt(r, 0))
			if err := rec(lv+1, rest); err != nil {
				return err
			}
			prefix = prefix[:len(prefix)-2]
		}
		return nil
	}
	all := make([]int32, b.Len)
	for i := range all {
		all[i] = int32(i)
	}
	if err := rec(0, all); err != nil {
		return nil, err
	}
	if out[0].Len() == 0 {
		return nil, nil
	}
	return []*store.Batch{{Schema: schema, Cols: out, Len: out[0].Len()}}, nil
}
