package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"custos/internal/kql"
	"custos/internal/store"
)

// executor runs one plan. Its evaluator is prepared before any goroutine
// starts; its counters are atomic.
type executor struct {
	ev      *evaluator
	req     *Request
	lim     Limits
	workers int
	// subTypes is the type an in-subquery's values are compared as.
	subTypes map[*kql.Subquery]store.ColumnType
	// inline supplies table data directly (a transformation's input batch)
	// instead of reading it from Request.Source.
	inline map[string][]*store.Batch
	// shared holds the results of materialized subplans and the rows of
	// per-record subqueries (op_shared.go).
	shared sharedState
	// fold enables constant folding of the plan's expressions in
	// prepareNode. Only a plan compiled for this execution may be folded
	// (it is rewritten in place); a transformation's plan is shared by
	// concurrent runs and is not.
	fold bool
	// slots is the engine's pool of group-by hash table arrays (nil: none).
	slots *slotPool
	// cpu is the process's query worker slots (Options.QuerySlots; nil:
	// unbounded): a goroutine holds one while it works on one batch (see
	// onSlot), never while it waits for a batch or for another slot.
	cpu store.WorkerSlots
	// noConstBins turns off summarize's constant time bins (timebin.go),
	// for tests comparing both ways; constBins counts the batches whose
	// bin(TimeGenerated, size) key was taken as a constant.
	noConstBins bool
	constBins   atomic.Int64

	rowsScanned    atomic.Int64
	batchesScanned atomic.Int64
	bytesScanned   atomic.Int64
	mem            atomic.Int64
	peak           atomic.Int64
}

// reserve accounts n bytes of working memory and fails past the limit.
func (x *executor) reserve(n int64) error {
	v := x.mem.Add(n)
	for {
		p := x.peak.Load()
		if v <= p || x.peak.CompareAndSwap(p, v) {
			break
		}
	}
	if v > x.lim.MaxMemoryBytes {
		return &LimitError{Limit: "memory", Max: x.lim.MaxMemoryBytes, Msg: fmt.Sprintf(
			"query execution has exceeded the allowed memory limit of %d bytes; narrow the query (time range, filters, fewer columns)", x.lim.MaxMemoryBytes)}
	}
	return nil
}

func (x *executor) release(n int64) { x.mem.Add(-n) }

// subqueries runs the subqueries (toscalar, in (T)) that the expressions of
// plan n use, innermost first, and records their results for the evaluator.
func (x *executor) subqueries(ctx context.Context, n kql.PlanNode) error {
	var found []*kql.Subquery
	var walkExpr func(e kql.Scalar, inType store.ColumnType)
	walkExpr = func(e kql.Scalar, inType store.ColumnType) {
		switch e := e.(type) {
		case *kql.Subquery:
			found = append(found, e)
		case *kql.FnCall:
			for i, a := range e.Args {
				t := store.TypeInvalid
				if e.Fn == kql.OpInSubquery && i == 1 {
					t = e.Args[0].Type()
					if sq, ok := a.(*kql.Subquery); ok {
						x.subTypes[sq] = t
					}
				}
				walkExpr(a, t)
			}
		}
	}
	for _, e := range planExprs(n) {
		walkExpr(e, store.TypeInvalid)
	}
	for _, sq := range found {
		if _, done := x.ev.subs[sq]; done {
			continue
		}
		if _, done := x.ev.subSets[sq]; done {
			continue
		}
		if err := x.subqueries(ctx, sq.Node); err != nil {
			return err
		}
		if err := x.prepareNode(sq.Node); err != nil {
			return err
		}
		bs, err := x.run(ctx, sq.Node)
		if err != nil {
			return err
		}
		if !sq.Set {
			v := kql.NullValue(sq.T)
			for _, b := range bs {
				if b.Len > 0 {
					v = valueAt(b.Cols[0], 0)
					break
				}
			}
			x.ev.subs[sq] = v
			continue
		}
		want := x.subTypes[sq]
		set := &valueSet{}
		for _, b := range bs {
			col := b.Cols[0]
			if want != store.TypeInvalid && want != col.Type {
				col = castVector(col, want, b.Len)
				if kql.IsStringLike(want) {
					col = convertVector(col, store.TypeString, b.Len)
				}
			}
			for i := 0; i < b.Len; i++ {
				if col.IsNull(i) {
					continue
				}
				switch v := valueAt(col, i); {
				case v.Type == store.TypeBool:
					set.bools[boolInt(v.Bool)] = true
				case kql.IsIntHeld(v.Type):
					if set.ints == nil {
						set.ints = map[int64]struct{}{}
					}
					set.ints[v.Int] = struct{}{}
				case v.Type == store.TypeDecimal:
					set.addDec(v) // exact (eval.go)
				case kql.IsRealHeld(v.Type):
					if set.reals == nil {
						set.reals = map[float64]struct{}{}
					}
					set.reals[v.Real] = struct{}{}
				default:
					if set.strs == nil {
						set.strs = map[string]struct{}{}
					}
					set.strs[v.Str] = struct{}{}
				}
			}
		}
		x.ev.subSets[sq] = set
	}
	return nil
}

// planExprs returns the expressions of every node of plan n.
func planExprs(n kql.PlanNode) []kql.Scalar {
	var exprs []kql.Scalar
	var walk func(kql.PlanNode)
	walk = func(n kql.PlanNode) {
		switch n := n.(type) {
		case *kql.Scan:
			for _, t := range n.Time {
				exprs = append(exprs, t.Value)
			}
		case *kql.Filter:
			exprs = append(exprs, n.Pred)
			walk(n.Input)
		case *kql.Compute:
			for _, c := range n.Cols {
				exprs = append(exprs, c.X)
			}
			walk(n.Input)
		case *kql.Aggregate:
			for _, k := range n.Keys {
				exprs = append(exprs, k.X)
			}
			for _, a := range n.Aggs {
				exprs = append(exprs, a.Args...)
			}
			walk(n.Input)
		case *kql.OrderBy:
			for _, k := range n.Keys {
				exprs = append(exprs, k.X)
			}
			walk(n.Input)
		case *kql.TopN:
			for _, k := range n.Keys {
				exprs = append(exprs, k.X)
			}
			walk(n.Input)
		case *kql.Limit:
			walk(n.Input)
		case *kql.Sequence:
			exprs = append(exprs, n.From, n.To, n.Step)
		case *kql.UnionAll:
			for _, in := range n.Inputs {
				walk(in)
			}
		case *kql.HashJoin:
			walk(n.Left)
			walk(n.Right)
		case *kql.SeriesPack:
			exprs = append(exprs, n.Step)
			if n.From != nil {
				exprs = append(exprs, n.From)
			}
			if n.To != nil {
				exprs = append(exprs, n.To)
			}
			walk(n.Input)
		case *kql.Expand:
			for _, it := range n.Items {
				exprs = append(exprs, it.X)
			}
			walk(n.Input)
		case *kql.Materialize:
			walk(n.Input)
		case kql.Composite:
			exprs = append(exprs, n.Exprs()...)
			for _, c := range n.Children() {
				walk(c)
			}
		}
	}
	walk(n)
	return exprs
}

// prepareNode precompiles every expression of the plan. Expressions with
// window functions are prepared as serialized (runSerial evaluates them on
// the whole input in order).
func (x *executor) prepareNode(n kql.PlanNode) error {
	if x.fold {
		x.foldNode(n)
	}
	serial := x.serialEvaluator()
	for _, e := range planExprs(n) {
		ev := x.ev
		if hasWindow(e) {
			ev = serial
		}
		if err := ev.prepare(e); err != nil {
			return &ExecError{Msg: err.Error()}
		}
	}
	return nil
}

// serialEvaluator is the query's evaluator (sharing its prepared state) for
// serialized single-batch evaluation, where window functions are allowed.
func (x *executor) serialEvaluator() *evaluator {
	ev := *x.ev
	ev.serial = true
	return &ev
}

// hasWindow reports whether e calls a window function (row_number, prev,
// next, row_cumsum, row_rank_*).
func hasWindow(e kql.Scalar) bool {
	c, ok := e.(*kql.FnCall)
	if !ok {
		return false
	}
	if kql.IsWindowFunction(c.Fn) {
		return true
	}
	for _, a := range c.Args {
		if hasWindow(a) {
			return true
		}
	}
	return false
}

// isSerialOp reports whether n is a row-wise operator with a window
// function: it must see its whole input as one batch, in order.
func isSerialOp(n kql.PlanNode) bool {
	switch n := n.(type) {
	case *kql.Compute:
		for _, c := range n.Cols {
			if hasWindow(c.X) {
				return true
			}
		}
	case *kql.Filter:
		return hasWindow(n.Pred)
	}
	return false
}

// runSerial runs a row-wise operator with window functions: its input in
// order, as one batch (accounted against the memory limit), evaluated with
// the serial evaluator.
func (x *executor) runSerial(ctx context.Context, n kql.PlanNode) ([]*store.Batch, error) {
	var input kql.PlanNode
	switch m := n.(type) {
	case *kql.Compute:
		input = m.Input
	case *kql.Filter:
		input = m.Input
	}
	b, sz, err := x.input(ctx, input)
	defer x.release(sz)
	if err != nil || b == nil {
		return nil, err
	}
	var out *store.Batch
	err = x.onSlot(ctx, func() (err error) {
		out, err = x.applyOpsWith(x.serialEvaluator(), []kql.PlanNode{n}, b)
		return err
	})
	if err != nil {
		return nil, err
	}
	if out.Len == 0 {
		return nil, nil
	}
	return []*store.Batch{out}, nil
}

// execute runs every result of the plan.
func (x *executor) execute(ctx context.Context, p *kql.Plan) (*Result, error) {
	res := &Result{}
	for i, root := range p.Results {
		if err := x.subqueries(ctx, root); err != nil {
			return nil, err
		}
		if err := x.prepareNode(root); err != nil {
			return nil, err
		}
		batches, err := x.runRoot(ctx, root)
		if err != nil {
			return nil, err
		}
		name := "PrimaryResult"
		if i > 0 {
			name = fmt.Sprintf("Table_%d", i)
		}
		t := Table{Name: name, Schema: root.Schema(), Batches: batches}
		var rows, bytes int64
		for _, b := range batches {
			rows += int64(b.Len)
			bytes += batchBytes(b)
		}
		if err := x.checkResult(rows, bytes); err != nil {
			return nil, err
		}
		res.Stats.RowsReturned += rows
		res.Stats.BytesReturned += bytes
		res.Tables = append(res.Tables, t)
	}
	if len(p.Render) > 0 {
		res.Render = p.Render[0]
	}
	res.Stats.RowsScanned = x.rowsScanned.Load()
	res.Stats.BatchesScanned = x.batchesScanned.Load()
	res.Stats.BytesScanned = x.bytesScanned.Load()
	res.Stats.PeakMemoryBytes = x.peak.Load()
	return res, nil
}

func (x *executor) checkResult(rows, bytes int64) error {
	if rows > int64(x.lim.MaxResultRows) {
		return &LimitError{Limit: "rows", Max: int64(x.lim.MaxResultRows), Msg: fmt.Sprintf(
			"query result set has exceeded the internal record count limit %d (E_QUERY_RESULT_SET_TOO_LARGE); use take or summarize to reduce it", x.lim.MaxResultRows)}
	}
	if bytes > x.lim.MaxResultBytes {
		return &LimitError{Limit: "bytes", Max: x.lim.MaxResultBytes, Msg: fmt.Sprintf(
			"query result set has exceeded the internal data size limit %d bytes (E_QUERY_RESULT_SET_TOO_LARGE); project fewer columns or reduce the rows", x.lim.MaxResultBytes)}
	}
	return nil
}

// runRoot runs a result root; a streaming root stops early once it has
// produced more rows than a result may hold.
func (x *executor) runRoot(ctx context.Context, n kql.PlanNode) ([]*store.Batch, error) {
	if isSerialOp(n) {
		return x.run(ctx, n)
	}
	switch n.(type) {
	case *kql.Scan, *kql.Filter, *kql.Compute, *kql.Expand, *kql.ParseKV, *kql.Pack:
		return x.collect(ctx, split(n), 0, int64(x.lim.MaxResultRows))
	}
	return x.run(ctx, n)
}

// pipeline is a source node plus the row-wise operators above it (bottom-up).
type pipeline struct {
	base kql.PlanNode
	ops  []kql.PlanNode
}

func split(n kql.PlanNode) pipeline {
	var ops []kql.PlanNode
	for {
		if isSerialOp(n) {
			break
		}
		switch m := n.(type) {
		case *kql.Filter:
			ops = append(ops, m)
			n = m.Input
			continue
		case *kql.Compute:
			ops = append(ops, m)
			n = m.Input
			continue
		case *kql.Expand:
			ops = append(ops, m)
			n = m.Input
			continue
		case *kql.ParseKV:
			ops = append(ops, m)
			n = m.Input
			continue
		case *kql.Pack:
			ops = append(ops, m)
			n = m.Input
			continue
		}
		break
	}
	slices.Reverse(ops)
	return pipeline{base: n, ops: ops}
}

// run materializes the output of n.
func (x *executor) run(ctx context.Context, n kql.PlanNode) ([]*store.Batch, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if isSerialOp(n) {
		return x.runSerial(ctx, n)
	}
	switch n := n.(type) {
	case *kql.Values:
		return x.values(n)
	case *kql.Sequence:
		return x.sequence(n)
	case *kql.Scan, *kql.Filter, *kql.Compute, *kql.Expand, *kql.ParseKV, *kql.Pack:
		return x.collect(ctx, split(n), 0, 0)
	case *kql.Limit:
		if n.N <= 0 {
			return nil, nil
		}
		return x.collect(ctx, split(n.Input), n.N, 0)
	case *kql.Aggregate:
		return x.aggregate(ctx, n)
	case *kql.OrderBy:
		in, err := x.run(ctx, n.Input)
		if err != nil {
			return nil, err
		}
		b := concatBatches(n.Input.Schema(), in)
		if b == nil || b.Len == 0 {
			return in, nil
		}
		var sorted *store.Batch
		err = x.onSlot(ctx, func() (err error) {
			sorted, err = x.ev.sortBatch(b, n.Keys)
			return err
		})
		if err != nil {
			return nil, err
		}
		return []*store.Batch{sorted}, nil
	case *kql.TopN:
		return x.top(ctx, n)
	case *kql.HashJoin:
		return x.join(ctx, n)
	case *kql.SeriesPack:
		return x.series(ctx, n)
	case *kql.UnionAll:
		var out []*store.Batch
		for _, in := range n.Inputs {
			bs, err := x.run(ctx, in)
			if err != nil {
				return nil, err
			}
			out = append(out, bs...)
		}
		return out, nil
	}
	return x.runMore(ctx, n)
}

// applyOps runs the row-wise operators of a pipeline on one batch.
func (x *executor) applyOps(ops []kql.PlanNode, b *store.Batch) (*store.Batch, error) {
	return x.applyOpsWith(x.ev, ops, b)
}

// applyOpsWith is applyOps with the evaluator ev.
func (x *executor) applyOpsWith(ev *evaluator, ops []kql.PlanNode, b *store.Batch) (*store.Batch, error) {
	for _, op := range ops {
		if b.Len == 0 {
			return emptyBatch(op.Schema()), nil
		}
		switch op := op.(type) {
		case *kql.Filter:
			pred, err := ev.eval(op.Pred, b)
			if err != nil {
				return nil, err
			}
			if sel := selected(pred, b.Len); sel != nil {
				b = gatherBatch(b, sel)
			}
		case *kql.Compute:
			out := &store.Batch{Schema: op.Schema(), Cols: make([]*store.Vector, len(op.Cols)), Len: b.Len}
			if err := ev.parseGroups(op, b, out.Cols); err != nil {
				return nil, err
			}
			for i, c := range op.Cols {
				if out.Cols[i] != nil {
					continue
				}
				v, err := ev.eval(c.X, b)
				if err != nil {
					return nil, err
				}
				out.Cols[i] = v
			}
			b = out
		case *kql.Expand:
			out, err := x.expand(op, b)
			if err != nil {
				return nil, err
			}
			b = out
		case *kql.ParseKV:
			out, err := x.parseKV(op, b)
			if err != nil {
				return nil, err
			}
			b = out
		case *kql.Pack:
			b = packColumns(op, b)
		}
	}
	return b, nil
}

// selected returns the rows of a filter's predicate that are true (not
// null), or nil when every row is: most batches of a selective scan pass
// whole, and need neither the selection nor the gather.
func selected(pred *store.Vector, n int) []int32 {
	all := 0
	for i, t := range pred.Bool[:n] {
		if !t || (pred.Nulls != nil && pred.Nulls[i]) {
			break
		}
		all = i + 1
	}
	if all == n {
		return nil
	}
	sel := make([]int32, all, n)
	for i := range sel {
		sel[i] = int32(i)
	}
	for i := all; i < n; i++ {
		if pred.Bool[i] && (pred.Nulls == nil || !pred.Nulls[i]) {
			sel = append(sel, int32(i))
		}
	}
	return sel
}

// sink consumes the batches of a pipeline; each worker owns one.
type sink interface {
	consume(seq int, b *store.Batch) (stop bool, err error)
}

type seqBatch struct {
	seq int
	b   *store.Batch
}

// drive runs pipeline p with one worker per sink. The source (a scan or a
// materialized input) is read by one goroutine; workers apply the row-wise
// operators and feed their sink. A sink may stop the source early.
func (x *executor) drive(ctx context.Context, p pipeline, sinks []sink) error {
	p = x.pruneScanTimeFilters(p)
	// Dictionary strings the pipeline can take as codes (latemat.go); the
	// sink gets them materialized, but for an aggregation's bare keys.
	var agg *kql.Aggregate
	if len(sinks) > 0 {
		if a, ok := sinks[0].(*aggSink); ok {
			agg = a.node
		}
	}
	codesOnly, codeKeys := codesOnlyColumns(p, agg)
	// A TimeGenerated used only as constant bins is not read for blocks
	// inside one bin (timebin.go).
	var tbin store.TimeBinHint
	if !x.noConstBins {
		tbin = timeBinHint(p, agg)
	}
	g, gctx := errgroup.WithContext(ctx)
	ch := make(chan seqBatch, len(sinks))
	stop := make(chan struct{})
	var stopOnce sync.Once
	halt := func() { stopOnce.Do(func() { close(stop) }) }

	g.Go(func() error {
		defer close(ch)
		seq := 0
		emit := func(b *store.Batch) (bool, error) {
			select {
			case ch <- seqBatch{seq: seq, b: b}:
				seq++
				return true, nil
			case <-stop:
				return false, nil
			case <-gctx.Done():
				return false, gctx.Err()
			}
		}
		switch base := p.base.(type) {
		case *kql.Scan:
			return x.scan(gctx, base, codesOnly, tbin, emit)
		default:
			in, err := x.run(gctx, base)
			if err != nil {
				return err
			}
			for _, b := range in {
				more, err := emit(b)
				if err != nil || !more {
					return err
				}
			}
			return nil
		}
	})
	for _, s := range sinks {
		g.Go(func() error {
			for sb := range ch {
				var st bool
				err := x.onSlot(gctx, func() error {
					b, err := x.applyOps(p.ops, sb.b)
					if err != nil {
						return err
					}
					if codesOnly != nil {
						if b, err = materializeBatch(b, codeKeys); err != nil {
							return err
						}
					}
					st, err = s.consume(sb.seq, b)
					return err
				})
				if err != nil {
					return err
				}
				if st {
					halt()
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// onSlot runs fn, the work on one batch, holding one of the query worker
// slots (Options.QuerySlots) if the engine has them. Waiting for the slot
// ends with ctx (the query's timeout), with ctx's error. fn must not block
// on other goroutines of the query nor run a pipeline: slots do not nest.
func (x *executor) onSlot(ctx context.Context, fn func() error) error {
	if x.cpu == nil {
		return fn()
	}
	var err error
	if serr := x.cpu.Do(ctx, func() { err = fn() }); serr != nil {
		return serr
	}
	return err
}

func (x *executor) nWorkers(p pipeline) int {
	if s, ok := p.base.(*kql.Scan); ok {
		if bs, ok := x.inline[s.Table]; ok {
			return max(1, min(x.workers, len(bs)))
		}
		return x.workers
	}
	return 1
}

// collectShared is the state all collect sinks of one pipeline share.
type collectShared struct {
	rows  atomic.Int64
	limit int64 // stop after this many rows (take); 0 = none
	cap   int64 // fail past this many rows (result limit); 0 = none
}

type collectSink struct {
	x      *executor
	shared *collectShared
	parts  []seqBatch
	bytes  int64
}

func (s *collectSink) consume(seq int, b *store.Batch) (bool, error) {
	if b.Len == 0 {
		return false, nil
	}
	sz := batchBytes(b)
	if err := s.x.reserve(sz); err != nil {
		return true, err
	}
	s.bytes += sz
	s.parts = append(s.parts, seqBatch{seq: seq, b: b})
	total := s.shared.rows.Add(int64(b.Len))
	if s.shared.cap > 0 && total > s.shared.cap && s.shared.limit == 0 {
		return true, s.x.checkResult(total, 0)
	}
	return s.shared.limit > 0 && total >= s.shared.limit, nil
}

// collect runs a pipeline and returns its batches in source order; limit > 0
// keeps only the first limit rows and stops reading once it has them.
func (x *executor) collect(ctx context.Context, p pipeline, limit, rowCap int64) ([]*store.Batch, error) {
	shared := &collectShared{limit: limit, cap: rowCap}
	n := x.nWorkers(p)
	sinks := make([]sink, n)
	cs := make([]*collectSink, n)
	for i := range sinks {
		cs[i] = &collectSink{x: x, shared: shared}
		sinks[i] = cs[i]
	}
	if limit == 0 && len(p.ops) == 0 {
		if _, ok := p.base.(*kql.Scan); !ok {
			return x.run(ctx, p.base)
		}
	}
	err := x.drive(ctx, p, sinks)
	for _, s := range cs {
		defer x.release(s.bytes)
	}
	if err != nil {
		return nil, err
	}
	var parts []seqBatch
	for _, s := range cs {
		parts = append(parts, s.parts...)
	}
	slices.SortFunc(parts, func(a, b seqBatch) int { return a.seq - b.seq })
	out := make([]*store.Batch, 0, len(parts))
	var rows int64
	for _, sb := range parts {
		b := sb.b
		if limit > 0 && rows+int64(b.Len) > limit {
			b = sliceBatch(b, 0, int(limit-rows))
		}
		if b.Len > 0 {
			out = append(out, b)
		}
		rows += int64(b.Len)
		if limit > 0 && rows >= limit {
			break
		}
	}
	return out, nil
}

// values materializes a constant table.
func (x *executor) values(n *kql.Values) ([]*store.Batch, error) {
	b := &store.Batch{Schema: n.Out, Cols: make([]*store.Vector, len(n.Out)), Len: len(n.Rows)}
	for i, c := range n.Out {
		v := emptyVector(c.Type, len(n.Rows))
		for _, r := range n.Rows {
			appendValue(v, r[i])
		}
		b.Cols[i] = v
	}
	if b.Len == 0 {
		return nil, nil
	}
	return []*store.Batch{b}, nil
}

// maxRangeRows bounds the rows range may generate.
const maxRangeRows = 10_000_000

// sequence materializes range.
func (x *executor) sequence(n *kql.Sequence) ([]*store.Batch, error) {
	from, err := x.ev.evalConst(n.From)
	if err != nil {
		return nil, err
	}
	to, err := x.ev.evalConst(n.To)
	if err != nil {
		return nil, err
	}
	step, err := x.ev.evalConst(n.Step)
	if err != nil {
		return nil, err
	}
	if from.Null || to.Null || step.Null {
		return nil, nil
	}
	tooMany := &LimitError{Limit: "range", Max: maxRangeRows, Msg: fmt.Sprintf("range would produce more than %d rows", maxRangeRows)}
	const batchRows = 65536
	var out []*store.Batch
	cur := emptyVector(n.T, 1024)
	flush := func() {
		if l := cur.Len(); l > 0 {
			out = append(out, &store.Batch{Schema: n.Schema(), Cols: []*store.Vector{cur}, Len: l})
			cur = emptyVector(n.T, 1024)
		}
	}
	if n.T == store.TypeDecimal {
		// decimal.go: exact steps (0.1 to 0.3 step 0.1 ends at 0.3).
		vals, err := decSequence(from, to, step, maxRangeRows, tooMany)
		if err != nil {
			return nil, err
		}
		for lo := 0; lo < vals.Len(); lo += batchRows {
			hi := min(lo+batchRows, vals.Len())
			out = append(out, &store.Batch{Schema: n.Schema(), Cols: []*store.Vector{sliceVector(vals, lo, hi)}, Len: hi - lo})
		}
		return out, nil
	}
	if kql.IsRealHeld(n.T) {
		f, t, s := from.Real, to.Real, step.Real
		if s == 0 || math.IsNaN(s) || math.IsNaN(f) || math.IsNaN(t) {
			return nil, &ExecError{Msg: "range: step must be a non-zero number"}
		}
		if cnt := (t-f)/s + 1; cnt > maxRangeRows {
			return nil, tooMany
		}
		for i := 0; ; i++ {
			v := f + float64(i)*s
			if (s > 0 && v > t) || (s < 0 && v < t) {
				break
			}
			cur.Real = append(cur.Real, v)
			if cur.Len() == batchRows {
				flush()
			}
		}
	} else {
		f, t, s := from.Int, to.Int, step.Int
		if s == 0 {
			return nil, &ExecError{Msg: "range: step must not be zero"}
		}
		if (s > 0 && t >= f) || (s < 0 && t <= f) {
			cnt := (float64(t)-float64(f))/float64(s) + 1
			if cnt > maxRangeRows {
				return nil, tooMany
			}
			for v := f; (s > 0 && v <= t) || (s < 0 && v >= t); v += s {
				cur.Int = append(cur.Int, v)
				if cur.Len() == batchRows {
					flush()
				}
				if (s > 0 && v > math.MaxInt64-s) || (s < 0 && v < math.MinInt64-s) {
					break
				}
			}
		}
	}
	flush()
	return out, nil
}

// timeRange combines the request timespan with a scan's time bounds; ok is
// false when no row can match.
func (x *executor) timeRange(s *kql.Scan) (tr store.TimeRange, ok bool, err error) {
	tr = x.req.Timespan
	if tr == (store.TimeRange{}) {
		tr = store.AllTime
	}
	for _, b := range s.Time {
		v, err := x.ev.evalConst(b.Value)
		if err != nil {
			return tr, false, err
		}
		if v.Null {
			return tr, false, nil
		}
		t := v.Int
		switch b.Op {
		case kql.OpGe:
			tr.From = max(tr.From, t)
		case kql.OpGt:
			if t < math.MaxInt64 {
				tr.From = max(tr.From, t+1)
			} else {
				return tr, false, nil
			}
		case kql.OpLt:
			tr.To = min(tr.To, t)
		case kql.OpLe:
			if t < math.MaxInt64 {
				tr.To = min(tr.To, t+1)
			}
		case kql.OpEq:
			tr.From = max(tr.From, t)
			if t < math.MaxInt64 {
				tr.To = min(tr.To, t+1)
			}
		}
	}
	return tr, tr.From < tr.To, nil
}

// scan reads a table and emits batches that hold exactly the scan's columns,
// copied out of the store's buffers and restricted to the time range.
//
// codesOnly names string columns the pipeline takes codes-only
// (store.SelectHints.CodesOnly, latemat.go); tbin is the bin the pipeline
// reads TimeGenerated as, if only that (store.SelectHints.TimeBin,
// timebin.go).
func (x *executor) scan(ctx context.Context, s *kql.Scan, codesOnly []string, tbin store.TimeBinHint, emit func(*store.Batch) (bool, error)) error {
	tr, ok, err := x.timeRange(s)
	if err != nil || !ok {
		return err
	}
	restricted := tr != store.AllTime
	if bs, ok := x.inline[s.Table]; ok {
		for _, b := range bs {
			x.batchesScanned.Add(1)
			x.rowsScanned.Add(int64(b.Len))
			nb, err := x.conform(s, b, tr, restricted, false)
			if err != nil {
				return err
			}
			more, err := emit(nb)
			if err != nil || !more {
				return err
			}
		}
		return nil
	}
	if x.req.Source == nil {
		return fmt.Errorf("table %s: %w", s.Table, ErrNoSource)
	}
	ws := x.req.WorkspaceID
	if s.Workspace != "" {
		ws = s.Workspace
	}
	q, err := x.req.Source.Querier(ctx, store.TableRef{WorkspaceID: ws, Table: s.Table}, tr)
	if err != nil {
		return fmt.Errorf("open table %s: %w", s.Table, err)
	}
	defer q.Close()
	hints := store.SelectHints{Terms: s.Terms, Limit: s.Limit, CodesOnly: codesOnly, TimeBin: tbin}
	if s.Columns != nil {
		hints.Columns = append([]string{}, s.Columns...)
		if restricted && !slices.Contains(hints.Columns, kql.TimeColumn) {
			hints.Columns = append(hints.Columns, kql.TimeColumn)
		}
	}
	it := q.Select(ctx, hints)
	defer it.Close()
	// A batch the store hands over (see store's iterator Stable) is used as
	// is, like inline input; other batches are copied out of its buffers.
	owner, _ := it.(interface{ Stable() bool })
	for it.Next() {
		b := it.Batch()
		if b == nil {
			continue
		}
		x.batchesScanned.Add(1)
		x.rowsScanned.Add(int64(b.Len))
		var nb *store.Batch
		err := x.onSlot(ctx, func() (err error) {
			nb, err = x.conform(s, b, tr, restricted, owner == nil || !owner.Stable())
			return err
		})
		if err != nil {
			return err
		}
		x.bytesScanned.Add(batchBytes(nb))
		more, err := emit(nb)
		if err != nil || !more {
			return err
		}
	}
	if err := it.Err(); err != nil {
		if errors.Is(err, context.Canceled) && ctx.Err() == nil {
			return nil
		}
		return fmt.Errorf("read table %s: %w", s.Table, err)
	}
	return nil
}

// conform builds a batch with exactly the scan's columns: missing columns are
// null, every vector is validated, and rows outside the time range are
// dropped. With copy, vectors are copied out of the store's buffers, which
// are only valid until the iterator's next call; inline input is immutable
// and used as is.
func (x *executor) conform(s *kql.Scan, b *store.Batch, tr store.TimeRange, restricted, copy bool) (*store.Batch, error) {
	if b.Len < 0 || len(b.Cols) != len(b.Schema) {
		return nil, fmt.Errorf("table %s: malformed batch from store", s.Table)
	}
	var sel []int32
	if restricted {
		tg := b.Col(kql.TimeColumn)
		if tg != nil {
			if err := checkVector(tg, store.TypeDatetime, b.Len); err != nil {
				return nil, fmt.Errorf("table %s column %s: %w", s.Table, kql.TimeColumn, err)
			}
			all := true
			for i, t := range tg.Int[:b.Len] {
				if !tr.Contains(t) || tg.IsNull(i) {
					all = false
					break
				}
			}
			if !all {
				sel = make([]int32, 0, b.Len)
				for i, t := range tg.Int[:b.Len] {
					if tr.Contains(t) && !tg.IsNull(i) {
						sel = append(sel, int32(i))
					}
				}
			}
		}
	}
	schema := s.Schema()
	n := b.Len
	if sel != nil {
		n = len(sel)
	}
	out := &store.Batch{Schema: schema, Cols: make([]*store.Vector, len(schema)), Len: n}
	for i, c := range schema {
		v := b.Col(c.Name)
		if v == nil {
			out.Cols[i] = nullVector(c.Type, n)
			continue
		}
		if err := checkVector(v, c.Type, b.Len); err != nil {
			return nil, fmt.Errorf("table %s column %s: %w", s.Table, c.Name, err)
		}
		switch {
		case sel != nil:
			v = gather(v, sel)
			if copy && v.Codes != nil { // the store may reuse the block dictionary's buffer
				v.Dict = append([]string(nil), v.Dict...)
			}
		case copy:
			v = cloneVector(v, b.Len)
		case v.Len() != b.Len:
			v = sliceVector(v, 0, b.Len)
		}
		out.Cols[i] = retype(v, c.Type)
	}
	// The store's bound on TimeGenerated holds for the rows kept, whose
	// values are unchanged (summarize's constant bins, timebin.go).
	if b.TimeBounded && b.Col(kql.TimeColumn) != nil {
		if j := schema.Index(kql.TimeColumn); j >= 0 && schema[j].Type == store.TypeDatetime {
			out.TimeBounded, out.TimeMin, out.TimeMax = true, b.TimeMin, b.TimeMax
		}
	}
	return out, nil
}

// foldNode replaces, in place, every plan expression of n by its constant
// folded form (ev.fold): column-free subexpressions are evaluated once
// instead of once per batch. Expressions with window functions are left
// alone, and so is any expression whose folding fails: its error, if real,
// surfaces when the rows are evaluated, as without folding (an expression
// over no rows must not fail).
func (x *executor) foldNode(n kql.PlanNode) {
	for _, ref := range planExprRefs(n) {
		if *ref == nil || hasWindow(*ref) {
			continue
		}
		if f, err := x.ev.fold(*ref); err == nil && f.Type() == (*ref).Type() {
			*ref = f
		}
	}
}

// planExprRefs returns the places of the expressions of plan n that
// foldNode may rewrite: those planExprs lists, except the ones composite
// nodes hold (which they return as copies).
func planExprRefs(n kql.PlanNode) []*kql.Scalar {
	var refs []*kql.Scalar
	var walk func(kql.PlanNode)
	walk = func(n kql.PlanNode) {
		switch n := n.(type) {
		case *kql.Scan:
			for i := range n.Time {
				refs = append(refs, &n.Time[i].Value)
			}
		case *kql.Filter:
			refs = append(refs, &n.Pred)
			walk(n.Input)
		case *kql.Compute:
			for i := range n.Cols {
				refs = append(refs, &n.Cols[i].X)
			}
			walk(n.Input)
		case *kql.Aggregate:
			for i := range n.Keys {
				refs = append(refs, &n.Keys[i].X)
			}
			for _, a := range n.Aggs {
				for j := range a.Args {
					refs = append(refs, &a.Args[j])
				}
			}
			walk(n.Input)
		case *kql.OrderBy:
			for i := range n.Keys {
				refs = append(refs, &n.Keys[i].X)
			}
			walk(n.Input)
		case *kql.TopN:
			for i := range n.Keys {
				refs = append(refs, &n.Keys[i].X)
			}
			walk(n.Input)
		case *kql.Limit:
			walk(n.Input)
		case *kql.Sequence:
			refs = append(refs, &n.From, &n.To, &n.Step)
		case *kql.UnionAll:
			for _, in := range n.Inputs {
				walk(in)
			}
		case *kql.HashJoin:
			walk(n.Left)
			walk(n.Right)
		case *kql.SeriesPack:
			refs = append(refs, &n.Step)
			if n.From != nil {
				refs = append(refs, &n.From)
			}
			if n.To != nil {
				refs = append(refs, &n.To)
			}
			walk(n.Input)
		case *kql.Expand:
			for i := range n.Items {
				refs = append(refs, &n.Items[i].X)
			}
			walk(n.Input)
		case *kql.Materialize:
			walk(n.Input)
		case kql.Composite:
			for _, c := range n.Children() {
				walk(c)
			}
		}
	}
	walk(n)
	return refs
}

// parseGroups evaluates together the columns of op that are captures of one
// parse operator — FnParse calls over the same input with the same pattern —
// so each row is matched once for all of them rather than once per capture,
// by a parseMatcher when the pattern has its shape. It fills their places in
// cols and leaves the others nil.
func (ev *evaluator) parseGroups(op *kql.Compute, b *store.Batch, cols []*store.Vector) error {
	var done []bool
	for i, c := range op.Cols {
		first, ok := parseCapture(c.X)
		if !ok || (done != nil && done[i]) {
			continue
		}
		group := []int{i}
		for j := i + 1; j < len(op.Cols); j++ {
			if o, ok := parseCapture(op.Cols[j].X); ok && sameParse(first, o) {
				group = append(group, j)
			}
		}
		re := ev.regexps[first]
		if re == nil {
			continue // not prepared: evaluated one by one
		}
		if done == nil {
			done = make([]bool, len(op.Cols))
		}
		in, err := ev.eval(first.Args[0], b)
		if err != nil {
			return err
		}
		calls := make([]*kql.FnCall, len(group))
		for k, j := range group {
			calls[k] = op.Cols[j].X.(*kql.FnCall)
			done[j] = true
		}
		for k, v := range parseCaptures(re, in, b.Len, calls) {
			cols[group[k]] = v
		}
	}
	return nil
}

// parseCapture returns e as a capture of a parse operator (FnParse with a
// constant pattern and group).
func parseCapture(e kql.Scalar) (*kql.FnCall, bool) {
	c, ok := e.(*kql.FnCall)
	if !ok || c.Fn != kql.FnParse || len(c.Args) != 3 {
		return nil, false
	}
	p, ok1 := c.Args[1].(*kql.Const)
	g, ok2 := c.Args[2].(*kql.Const)
	if !ok1 || !ok2 || !kql.IsStringLike(p.V.Type) || !kql.IsIntHeld(g.V.Type) {
		return nil, false
	}
	return c, true
}

// sameParse reports whether two captures come from one parse: the same
// pattern over the same input expression.
func sameParse(a, b *kql.FnCall) bool {
	if a.Args[1].(*kql.Const).V.Str != b.Args[1].(*kql.Const).V.Str {
		return false
	}
	if a.Args[0] == b.Args[0] {
		return true
	}
	x, ok1 := a.Args[0].(*kql.ColRef)
	y, ok2 := b.Args[0].(*kql.ColRef)
	return ok1 && ok2 && x.Name == y.Name
}

// parseCaptures matches re once per row of in and returns the capture of
// each call (its group, converted to its type; a failed match or
// conversion is null, or "" for strings), as FnParse computes one.
func parseCaptures(re *regexp.Regexp, in *store.Vector, n int, calls []*kql.FnCall) []*store.Vector {
	outs := make([]*store.Vector, len(calls))
	groups := make([]int, len(calls))
	nulls := make([][]bool, len(calls))
	for k, c := range calls {
		outs[k] = newVector(c.T, n)
		groups[k] = int(c.Args[2].(*kql.Const).V.Int)
	}
	setNull := func(k, i int) {
		if nulls[k] == nil {
			nulls[k] = make([]bool, n)
		}
		nulls[k][i] = true
	}
	pm := compileParseMatcher(re.String())
	var sc parseScratch
	var m []int
	for i := range n {
		s := in.Str[i]
		if pm != nil {
			m = nil
			if pm.match(&sc, s) {
				m = sc.caps
			}
		} else {
			m = re.FindStringSubmatchIndex(s)
		}
		for k, c := range calls {
			g := groups[k]
			if m == nil || 2*g+1 >= len(m) || m[2*g] < 0 {
				if c.T != store.TypeString {
					setNull(k, i)
				}
				continue
			}
			text := s[m[2*g]:m[2*g+1]]
			if c.T == store.TypeString {
				outs[k].Str[i] = text
				continue
			}
			if !convertOne(kql.StringValue(text), c.T, outs[k], i) {
				setNull(k, i)
			}
		}
	}
	for k := range outs {
		outs[k].Nulls = nulls[k]
	}
	return outs
}
