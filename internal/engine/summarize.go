package engine

import (
	"context"

	"custos/internal/kql"
	"custos/internal/store"
)

// aggSink is one worker's partial aggregation.
type aggSink struct {
	x      *executor
	node   *kql.Aggregate
	table  *groupTable
	states []aggState
	gids   []int32
	keys   []*store.Vector
	// bins[i] is key i's constant time bin, if it is one (timebin.go);
	// konst and konstVec are consume's scratch for the batch's constant
	// keys.
	bins     []timeBin
	isBin    []bool
	konst    []bool
	konstVec []*store.Vector
	bytes    int64
	// stateMem is the last stateBytes total of the states; it is
	// recomputed once at least as many rows as groups went by since.
	stateMem  int64
	rowsSince int
}

func newAggSink(x *executor, n *kql.Aggregate) *aggSink {
	types := make([]store.ColumnType, len(n.Keys))
	for i, k := range n.Keys {
		types[i] = k.X.Type()
	}
	s := &aggSink{x: x, node: n, table: newGroupTable(types), states: make([]aggState, len(n.Aggs))}
	s.table.usePool(x.slots)
	if !x.noConstBins {
		for i, k := range n.Keys {
			if tb, ok := timeBinOf(k.X); ok {
				if s.bins == nil {
					s.bins, s.isBin = make([]timeBin, len(n.Keys)), make([]bool, len(n.Keys))
					s.konst, s.konstVec = make([]bool, len(n.Keys)), make([]*store.Vector, len(n.Keys))
				}
				s.bins[i], s.isBin[i] = tb, true
				s.konstVec[i] = &store.Vector{Type: store.TypeDatetime, Int: make([]int64, 1)}
			}
		}
	}
	for i, a := range n.Aggs {
		s.states[i] = newAggState(a)
	}
	sharePercentiles(n.Aggs, s.states)
	return s
}

// sharePercentiles lets the columns of one percentiles() call share one
// digest: the binder makes one percentile aggregation per requested
// percentile, all over the same argument (the same Args slice).
func sharePercentiles(aggs []*kql.AggCall, states []aggState) {
	for i, a := range aggs {
		lead, ok := states[i].(*percentileAgg)
		if !ok || lead.array || a.Fn != kql.AggPercentile || len(a.Args) == 0 || len(a.Percents) != 1 {
			continue
		}
		for j := i + 1; j < len(aggs); j++ {
			b := aggs[j]
			if _, ok := states[j].(*percentileAgg); !ok || b.Fn != a.Fn || len(b.Args) != len(a.Args) ||
				&b.Args[0] != &a.Args[0] || len(b.Percents) != 1 {
				continue
			}
			states[j] = lead.follow(b.Percents[0])
		}
	}
}

func (s *aggSink) consume(_ int, b *store.Batch) (bool, error) {
	if b.Len == 0 {
		return false, nil
	}
	s.keys = s.keys[:0]
	anyConst := false
	for i, k := range s.node.Keys {
		if s.isBin != nil {
			s.konst[i] = false
			if s.isBin[i] {
				if t, ok := s.bins[i].constant(b); ok {
					s.konst[i], anyConst = true, true
					s.konstVec[i].Int[0] = t
					s.keys = append(s.keys, s.konstVec[i])
					continue
				}
			}
		}
		v, err := s.x.ev.eval(k.X, b)
		if err != nil {
			return true, err
		}
		s.keys = append(s.keys, v)
	}
	if anyConst {
		s.x.constBins.Add(1)
		s.gids = s.table.idsConst(s.keys, s.konst, b.Len, s.gids)
	} else {
		s.gids = s.table.ids(s.keys, b.Len, s.gids)
	}
	for i, a := range s.node.Aggs {
		args := make([]*store.Vector, len(a.Args))
		for j, e := range a.Args {
			v, err := s.x.ev.eval(e, b)
			if err != nil {
				return true, err
			}
			args[j] = v
		}
		s.states[i].update(s.gids, args, s.table.n)
	}
	// Working memory: the group table as it is (hash tables, key values),
	// a per-group estimate of the aggregation states and the measured size
	// of the states that grow with their input (digests, distinct sets).
	s.rowsSince += b.Len
	if s.rowsSince >= s.table.n {
		s.rowsSince = 0
		s.stateMem = 0
		for _, st := range s.states {
			s.stateMem += stateBytes(st)
		}
	}
	if sz := s.table.memBytes() + int64(s.table.n)*int64(24*len(s.node.Aggs)) + int64(cap(s.gids))*4 + s.stateMem; sz > s.bytes {
		if err := s.x.reserve(sz - s.bytes); err != nil {
			s.bytes = sz
			return true, err
		}
		s.bytes = sz
	}
	return false, nil
}

// aggregate runs summarize: partial aggregation per worker, then a merge.
func (x *executor) aggregate(ctx context.Context, n *kql.Aggregate) ([]*store.Batch, error) {
	p := split(n.Input)
	w := x.nWorkers(p)
	sinks := make([]sink, w)
	as := make([]*aggSink, w)
	for i := range sinks {
		as[i] = newAggSink(x, n)
		sinks[i] = as[i]
	}
	err := x.drive(ctx, p, sinks)
	for _, s := range as {
		defer x.release(s.bytes)
		defer s.table.release()
	}
	if err != nil {
		return nil, err
	}
	global := as[0]
	for _, o := range as[1:] {
		if o.table.n == 0 {
			continue
		}
		mapping := global.table.idsOfDistinct(o.table.keyVectors(), o.table.n)
		for i := range global.states {
			global.states[i].merge(o.states[i], mapping, global.table.n)
		}
	}
	groups := global.table.n
	if len(n.Keys) == 0 && groups == 0 {
		groups = 1 // summarize without by yields one row, even over no input
	}
	out := &store.Batch{Schema: n.Schema(), Len: groups}
	for _, k := range global.table.keyVectors() {
		out.Cols = append(out.Cols, sliceVector(k, 0, groups))
	}
	for _, s := range global.states {
		v, err := aggResult(s, groups) // agg_decimal.go: a decimal sum can overflow
		if err != nil {
			return nil, err
		}
		out.Cols = append(out.Cols, v)
	}
	for i, c := range out.Schema {
		if out.Cols[i].Type != c.Type {
			out.Cols[i] = retype(out.Cols[i], c.Type)
		}
	}
	if groups == 0 {
		return nil, nil
	}
	return []*store.Batch{out}, nil
}

// topSink keeps one worker's candidates for top N.
type topSink struct {
	x     *executor
	node  *kql.TopN
	cands []*store.Batch
	rows  int64
	bytes int64
}

func (s *topSink) consume(_ int, b *store.Batch) (bool, error) {
	if b.Len == 0 {
		return false, nil
	}
	t, err := s.x.ev.topRows(b, s.node.Keys, s.node.N)
	if err != nil {
		return true, err
	}
	s.cands = append(s.cands, t)
	s.rows += int64(t.Len)
	if s.rows > 4*s.node.N+1024 {
		all := concatBatches(s.node.Schema(), s.cands)
		t, err := s.x.ev.topRows(all, s.node.Keys, s.node.N)
		if err != nil {
			return true, err
		}
		s.cands, s.rows = []*store.Batch{t}, int64(t.Len)
	}
	sz := batchBytes(t)
	if err := s.x.reserve(sz); err != nil {
		return true, err
	}
	s.bytes += sz
	return false, nil
}

func (x *executor) top(ctx context.Context, n *kql.TopN) ([]*store.Batch, error) {
	p := split(n.Input)
	w := x.nWorkers(p)
	sinks := make([]sink, w)
	ts := make([]*topSink, w)
	for i := range sinks {
		ts[i] = &topSink{x: x, node: n}
		sinks[i] = ts[i]
	}
	err := x.drive(ctx, p, sinks)
	for _, s := range ts {
		defer x.release(s.bytes)
	}
	if err != nil {
		return nil, err
	}
	var all []*store.Batch
	for _, s := range ts {
		all = append(all, s.cands...)
	}
	if len(all) == 0 {
		return nil, nil
	}
	b, err := x.ev.topRows(concatBatches(n.Schema(), all), n.Keys, n.N)
	if err != nil {
		return nil, err
	}
	return []*store.Batch{b}, nil
}
