package engine

import (
	"context"
	"fmt"
	"sync"

	"custos/internal/kql"
	"custos/internal/store"
)

// sharedState holds what several parts of one query's plan share: the
// results of materialized subplans (each computed once, on first use) and
// the current rows of per-record subqueries (mv-apply).
type sharedState struct {
	mu   sync.Mutex
	mats map[*kql.Materialize]*matEntry // guarded by mu
	rows map[*kql.RowSource][]*store.Batch
}

type matEntry struct {
	once sync.Once
	bs   []*store.Batch
	err  error
}

// materialized returns the result of m, running it on first use. The
// result stays in memory (and accounted) until the query ends.
func (x *executor) materialized(ctx context.Context, m *kql.Materialize) ([]*store.Batch, error) {
	x.shared.mu.Lock()
	if x.shared.mats == nil {
		x.shared.mats = map[*kql.Materialize]*matEntry{}
	}
	e := x.shared.mats[m]
	if e == nil {
		e = &matEntry{}
		x.shared.mats[m] = e
	}
	x.shared.mu.Unlock()
	e.once.Do(func() {
		if err := x.subqueries(ctx, m.Input); err != nil {
			e.err = err
			return
		}
		if err := x.prepareNode(m.Input); err != nil {
			e.err = err
			return
		}
		bs, err := x.run(ctx, m.Input)
		if err != nil {
			e.err = err
			return
		}
		var sz int64
		for _, b := range bs {
			sz += batchBytes(b)
		}
		if err := x.reserve(sz); err != nil {
			e.err = err
			return
		}
		e.bs = bs
	})
	return e.bs, e.err
}

// explore runs m at bind time to learn its output schema (evaluate plugins
// whose columns depend on the data); the result is kept for execution.
func (x *executor) explore(ctx context.Context, m *kql.Materialize) (store.Schema, error) {
	bs, err := x.materialized(ctx, m)
	if err != nil {
		return nil, err
	}
	for _, b := range bs {
		return b.Schema, nil
	}
	return m.Input.Schema(), nil
}

// runMore runs the plan nodes of the operators beyond the core ones.
func (x *executor) runMore(ctx context.Context, n kql.PlanNode) ([]*store.Batch, error) {
	switch n := n.(type) {
	case *kql.Materialize:
		return x.materialized(ctx, n)
	case *kql.RowSource:
		x.shared.mu.Lock()
		defer x.shared.mu.Unlock()
		return x.shared.rows[n], nil
	case *kql.RandomSample:
		return x.sample(ctx, n)
	case *kql.NestedTop:
		return x.topNested(ctx, n)
	case *kql.ApplyEach:
		return x.applyEach(ctx, n)
	case *kql.PartitionEach:
		return x.partitionEach(ctx, n)
	case *kql.BagUnpack:
		return x.bagUnpack(ctx, n)
	case *kql.Pivot:
		return x.pivot(ctx, n)
	case *kql.Narrow:
		return x.narrow(ctx, n)
	}
	return nil, fmt.Errorf("BUG: unknown plan node %T", n)
}

// input runs n and returns its rows as one batch (nil when there are none),
// with the batch's bytes reserved; the caller releases them.
func (x *executor) input(ctx context.Context, n kql.PlanNode) (*store.Batch, int64, error) {
	bs, err := x.run(ctx, n)
	if err != nil {
		return nil, 0, err
	}
	b := concatBatches(n.Schema(), bs)
	if b == nil || b.Len == 0 {
		return nil, 0, nil
	}
	sz := batchBytes(b)
	if err := x.reserve(sz); err != nil {
		x.release(sz)
		return nil, 0, err
	}
	return b, sz, nil
}
