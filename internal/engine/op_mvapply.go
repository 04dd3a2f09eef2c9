package engine

import (
	"context"
	"fmt"

	"custos/internal/kql"
	"custos/internal/store"
)

// applyEach runs mv-apply: for each input row, the row's arrays are
// expanded into a subtable, the subquery runs on it, and each row of the
// subquery's result is output after the input row's kept columns.
func (x *executor) applyEach(ctx context.Context, n *kql.ApplyEach) ([]*store.Batch, error) {
	b, sz, err := x.input(ctx, n.Input)
	defer x.release(sz)
	if err != nil || b == nil {
		return nil, err
	}
	schema := n.Schema()
	if len(schema) == 0 {
		return nil, nil
	}
	subSchema := n.Sub.Schema()
	out := make([]*store.Vector, len(schema))
	for i, c := range schema {
		out[i] = emptyVector(c.Type, b.Len)
	}
	nKeep := len(schema) - len(subSchema)
	keep := make([]*store.Vector, nKeep)
	for i := 0; i < nKeep; i++ {
		keep[i] = b.Col(schema[i].Name)
	}
	var held int64
	defer func() { x.release(held) }()
	for r := 0; r < b.Len; r++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		e, err := x.expand(n.Expand, sliceBatch(b, r, r+1))
		if err != nil {
			return nil, err
		}
		sub := &store.Batch{Schema: n.Row.Out, Cols: make([]*store.Vector, len(n.Row.Out)), Len: e.Len}
		for i, c := range n.Row.Out {
			sub.Cols[i] = e.Col(c.Name)
		}
		x.shared.mu.Lock()
		if x.shared.rows == nil {
			x.shared.rows = map[*kql.RowSource][]*store.Batch{}
		}
		if sub.Len > 0 {
			x.shared.rows[n.Row] = []*store.Batch{sub}
		} else {
			x.shared.rows[n.Row] = nil
		}
		x.shared.mu.Unlock()
		res, err := x.run(ctx, n.Sub)
		if err != nil {
			return nil, err
		}
		for _, rb := range res {
			grow := batchBytes(rb)
			if err := x.reserve(grow); err != nil {
				x.release(grow)
				return nil, err
			}
			held += grow
			for k := 0; k < rb.Len; k++ {
				for i, v := range keep {
					appendRow(out[i], v, r)
				}
				for i, v := range rb.Cols {
					appendRow(out[nKeep+i], v, k)
				}
			}
		}
	}
	x.shared.mu.Lock()
	delete(x.shared.rows, n.Row)
	x.shared.mu.Unlock()
	rows := out[0].Len()
	if rows == 0 {
		return nil, nil
	}
	return []*store.Batch{{Schema: schema, Cols: out, Len: rows}}, nil
}

// maxPartitions bounds the partitions of one partition operator.
const maxPartitions = 10_000

// partitionEach runs partition: the subquery on the rows of each distinct
// key value, in order of first appearance, results concatenated.
func (x *executor) partitionEach(ctx context.Context, n *kql.PartitionEach) ([]*store.Batch, error) {
	b, sz, err := x.input(ctx, n.Input)
	defer x.release(sz)
	if err != nil || b == nil {
		return nil, err
	}
	key := b.Col(n.Key)
	index := map[string]int{}
	var groups [][]int32
	for r := 0; r < b.Len; r++ {
		k := valueKey(valueAt(key, r))
		g, ok := index[k]
		if !ok {
			g = len(groups)
			if g >= maxPartitions {
				return nil, &LimitError{Limit: "partitions", Max: maxPartitions, Msg: fmt.Sprintf("partition would create more than %d partitions", maxPartitions)}
			}
			index[k] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], int32(r))
	}
	if n.Slot != nil && len(groups) > kql.MaxLegacyPartitions {
		return nil, &ExecError{Msg: fmt.Sprintf("partition: the legacy strategy supports at most %d key values, the input has %d; use a transformation subquery: partition by %s (...)", kql.MaxLegacyPartitions, len(groups), n.Key)}
	}
	var out []*store.Batch
	var held int64
	defer func() { x.release(held) }()
	for _, rows := range groups {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if n.Slot != nil {
			// Legacy form: the subquery reads its own source, with the key.
			n.Slot.Set(valueAt(key, int(rows[0])))
		} else {
			part := gatherBatch(b, rows)
			part.Schema = n.Row.Out
			x.shared.mu.Lock()
			if x.shared.rows == nil {
				x.shared.rows = map[*kql.RowSource][]*store.Batch{}
			}
			x.shared.rows[n.Row] = []*store.Batch{part}
			x.shared.mu.Unlock()
		}
		res, err := x.run(ctx, n.Sub)
		if err != nil {
			return nil, err
		}
		for _, rb := range res {
			grow := batchBytes(rb)
			if err := x.reserve(grow); err != nil {
				x.release(grow)
				return nil, err
			}
			held += grow
			if rb.Len > 0 {
				out = append(out, rb)
			}
		}
	}
	x.shared.mu.Lock()
	delete(x.shared.rows, n.Row)
	x.shared.mu.Unlock()
	return out, nil
}
