package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
)

// SelectStats counts what one Select read and skipped.
type SelectStats struct {
	BlocksTotal        int64 // part blocks in the snapshot's partitions
	BlocksSkippedTime  int64 // skipped by their TimeGenerated range
	BlocksSkippedTerms int64 // skipped by bloom filters (TermHints)
	BlocksRead         int64
	MemRowsScanned     int64 // memtable rows examined
	BytesRead          int64 // sealed bytes read from part files
	RowsReturned       int64
	// TimeChunksSkipped counts the blocks whose TimeGenerated was not read
	// because their rows lie in one bin of SelectHints.TimeBin.
	TimeChunksSkipped int64
}

// StatsIterator is implemented by the BatchIterators of *DB's Queriers.
type StatsIterator interface {
	BatchIterator
	Stats() SelectStats
}

// WorkerSlots bounds the CPU work of all queries of the process together
// (internal/workload's *Pool implements it): Do runs fn holding one slot,
// after waiting for a free one, and returns the context's error without
// running fn when ctx ends first. The store holds a slot only while it
// decodes one task (a part block or a memtable segment), never while it
// waits to hand a batch over, so slots never nest.
type WorkerSlots interface {
	Do(ctx context.Context, fn func()) error
}

// querier is a snapshot of one table: memtable views and referenced parts.
type querier struct {
	db      *DB
	wsID    string
	table   string
	tr      TimeRange
	full    Schema
	mems    []memView
	parts   []*part
	closed  bool
	workers int
}

// Querier opens a consistent snapshot of a table restricted to tr: the rows
// committed before the call, and no others. Close it to release its parts.
func (db *DB) Querier(ctx context.Context, ref TableRef, tr TimeRange) (Querier, error) {
	t, err := db.lookupTable(ctx, ref)
	if err != nil {
		return nil, err
	}
	if _, err := t.ws.requireKeys(ctx); err != nil {
		// Nothing of the workspace is readable now: neither is its cache.
		db.rcache.dropWorkspace(t.ws.id)
		db.bcache.dropWorkspace(t.ws.id)
		return nil, err
	}
	db.rcache.sweep()
	db.bcache.sweep()
	q := &querier{db: db, wsID: t.ws.id, table: t.name, tr: tr, workers: db.opts.QueryWorkers}
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.dropped {
		return nil, fmt.Errorf("%w: %s", ErrTableNotFound, ref.Table)
	}
	q.full = t.full
	if tr.From >= tr.To {
		return q, nil
	}
	db.reportQuarantined(ctx, t, tr)
	dayLo, dayHi := dayOf(tr.From), dayOf(tr.To-1)
	inRange := func(day int64) bool { return day >= dayLo && day <= dayHi }
	for day, ps := range t.parts {
		if !inRange(day) {
			continue
		}
		for _, p := range ps {
			if p.meta.maxT < tr.From || p.meta.minT >= tr.To {
				continue
			}
			p.acquire()
			q.parts = append(q.parts, p)
		}
	}
	addMem := func(m *memPart) {
		if m.n > 0 && inRange(m.day) && m.maxT >= tr.From && m.minT < tr.To {
			q.mems = append(q.mems, m.view())
		}
	}
	for _, m := range t.frozen {
		addMem(m)
	}
	for _, m := range t.mem {
		addMem(m)
	}
	return q, nil
}

func (q *querier) Schema() Schema { return q.full }

func (q *querier) Close() error {
	if q.closed {
		return nil
	}
	q.closed = true
	for _, p := range q.parts {
		p.release()
	}
	q.parts = nil
	q.mems = nil
	return nil
}

// outCol says where an output column comes from.
type outCol struct {
	col     Column
	virtual string // constant value for TenantId / Type
	isVirt  bool
	// codesOnly: dictionary blocks of this column are returned codes-only
	// (SelectHints.CodesOnly).
	codesOnly bool
}

type task struct {
	p     *part
	block int
	mem   *memView
	seg   int // segment of mem
}

// Select implements Querier. Tasks (part blocks after pruning, memtable
// slices) are decoded by up to QueryWorkers goroutines and handed out through
// one iterator, in no particular order.
func (q *querier) Select(ctx context.Context, h SelectHints) BatchIterator {
	it := &iterator{}
	if q.closed {
		it.err = errors.New("store: select on a closed querier")
		return it
	}
	// Output columns.
	var out []outCol
	add := func(c Column) {
		oc := outCol{col: c}
		switch c.Name {
		case ColTenantID:
			oc.isVirt, oc.virtual = true, q.wsID
		case ColType:
			oc.isVirt, oc.virtual = true, q.table
		}
		out = append(out, oc)
	}
	if h.Columns == nil {
		for _, c := range q.full {
			add(c)
		}
	} else {
		seen := make(map[string]bool)
		for _, name := range h.Columns {
			if i := q.full.Index(name); i >= 0 && !seen[name] {
				seen[name] = true
				add(q.full[i])
			}
		}
	}
	schema := make(Schema, len(out))
	for i, oc := range out {
		schema[i] = oc.col
		if !oc.isVirt && classOf(oc.col.Type) == classStr && slices.Contains(h.CodesOnly, oc.col.Name) {
			out[i].codesOnly = true
		}
	}

	// Term hints: hashed once. A hint on a virtual column is decided here;
	// the others are checked against the blooms of each block when its task
	// runs (blockMayMatch), which reads the part's bloom sections on demand.
	var hints []termHint
	for _, th := range h.Terms {
		hs := termHashes(th.Term)
		if len(hs) == 0 {
			continue
		}
		hasAllIn := func(s string) bool {
			have := map[uint64]bool{}
			forEachTokenHash(s, func(x uint64) { have[x] = true })
			for _, x := range hs {
				if !have[x] {
					return false
				}
			}
			return true
		}
		switch th.Column {
		case ColTenantID, ColType:
			v := q.wsID
			if th.Column == ColType {
				v = q.table
			}
			if !hasAllIn(v) {
				it.stats.BlocksTotal = q.countBlocks()
				it.stats.BlocksSkippedTerms = it.stats.BlocksTotal
				it.done = true
				return it // no row can match
			}
			continue
		case "":
			if !hasAllIn(q.wsID) && !hasAllIn(q.table) { // else the term may match a virtual column
				hints = append(hints, termHint{hashes: hs})
			}
		default:
			if i := q.full.Index(th.Column); i < 0 || classOf(q.full[i].Type) != classStr {
				continue
			}
			hints = append(hints, termHint{column: th.Column, hashes: hs})
		}
	}
	it.hints = hints
	if h.TimeBin.Size > 0 {
		it.timeBin = h.TimeBin
	}
	// Column hints on string columns: a block whose chunk of the column is
	// split token-encoded is filtered row by row through its token table.
	colTerms := map[string][]string{}
	for _, th := range h.Terms {
		if th.Column == "" {
			continue
		}
		if i := q.full.Index(th.Column); i < 0 || q.full[i].Type != TypeString {
			continue
		}
		for _, tok := range Tokenize(th.Term) {
			if !slices.Contains(colTerms[th.Column], tok) {
				colTerms[th.Column] = append(colTerms[th.Column], tok)
			}
		}
	}
	for col, terms := range colTerms {
		it.colTerms = append(it.colTerms, colTerm{column: col, terms: terms})
	}

	var tasks []task
	for _, p := range q.parts {
		for b := range p.meta.blocks {
			it.stats.BlocksTotal++
			bm := &p.meta.blocks[b]
			if bm.maxT < q.tr.From || bm.minT >= q.tr.To {
				it.stats.BlocksSkippedTime++
				continue
			}
			tasks = append(tasks, task{p: p, block: b})
		}
	}
	for i := range q.mems {
		m := &q.mems[i]
		for s := range m.segs {
			tasks = append(tasks, task{mem: m, seg: s})
		}
	}
	it.init(ctx, q, out, schema, tasks, h.Limit)
	if h.Limit <= 0 && len(it.hints) == 0 && len(it.colTerms) == 0 {
		it.prefetch() // prefetch.go
	}
	return it
}

func (q *querier) countBlocks() int64 {
	var n int64
	for _, p := range q.parts {
		n += int64(len(p.meta.blocks))
	}
	return n
}

// termHint is a term hint checked against the blocks' blooms: its token
// hashes, in one column or (column "") any string column.
type termHint struct {
	column string
	hashes []uint64
}

// blockMayMatch reports whether block b of p may hold every term hint, by
// the blooms of its chunks (loaded through the DB's bloom cache).
func (it *iterator) blockMayMatch(p *part, b int) (bool, error) {
	bm := &p.meta.blocks[b]
	cache := &it.q.db.bcache
	for _, hn := range it.hints {
		if hn.column != "" {
			j := p.meta.cols.Index(hn.column)
			if j < 0 {
				return false, nil // column absent from the part: empty everywhere
			}
			if bm.cols[j].flags&chunkFlagBloom == 0 {
				continue
			}
			bb, err := cache.get(p, j)
			if err != nil {
				return false, err
			}
			if bb != nil && !bb.mayHaveAll(b, hn.hashes) {
				return false, nil
			}
			continue
		}
		any := false
		for j, c := range p.meta.cols {
			if classOf(c.Type) != classStr {
				continue
			}
			if bm.cols[j].flags&chunkFlagBloom == 0 {
				any = true
				break
			}
			bb, err := cache.get(p, j)
			if err != nil {
				return false, err
			}
			if bb == nil || bb.mayHaveAll(b, hn.hashes) {
				any = true
				break
			}
		}
		if !any {
			return false, nil
		}
	}
	return true, nil
}

// colTerm is the lower-case terms every kept row holds in one column.
type colTerm struct {
	column string
	terms  []string
}

type result struct {
	b     *Batch
	err   error
	owned bool // see iterator.Stable
}

// iterator runs the tasks of one Select. Next, Batch, Err and Close must be
// called from one goroutine.
type iterator struct {
	q      *querier
	out    []outCol
	schema Schema
	tasks  []task
	limit  int

	colTerms []colTerm   // set by Select before init
	hints    []termHint  // set by Select before init
	timeBin  TimeBinHint // set by Select before init (SelectHints.TimeBin)

	ctx     context.Context
	cancel  context.CancelFunc
	results chan result
	wg      sync.WaitGroup
	nextTsk atomic.Int64
	started bool

	cur      *Batch
	curOwned bool
	err      error
	done     bool
	returned int

	stats       SelectStats
	blocksRead  atomic.Int64
	bytesRead   atomic.Int64
	memRows     atomic.Int64
	tokenSkips  atomic.Int64 // blocks whose token tables lack a term
	bloomSkips  atomic.Int64 // blocks whose blooms lack a term
	rowsMatched atomic.Int64
	timeSkips   atomic.Int64 // blocks whose TimeGenerated was filled, not read (TimeBin)

	fillMu sync.Mutex
	fills  map[int64][]int64 // timeFill's read-only vectors by value
}

func (it *iterator) init(ctx context.Context, q *querier, out []outCol, schema Schema, tasks []task, limit int) {
	it.q, it.out, it.schema, it.tasks, it.limit = q, out, schema, tasks, limit
	it.ctx, it.cancel = context.WithCancel(ctx)
}

func (it *iterator) start() {
	it.started = true
	workers := min(it.q.workers, len(it.tasks))
	if workers <= 1 {
		return // run inline in Next
	}
	it.results = make(chan result, workers)
	for range workers {
		it.wg.Add(1)
		go it.work()
	}
	go func() {
		it.wg.Wait()
		close(it.results)
	}()
}

func (it *iterator) work() {
	defer it.wg.Done()
	var buf []byte
	for {
		i := int(it.nextTsk.Add(1) - 1)
		if i >= len(it.tasks) || it.ctx.Err() != nil {
			return
		}
		b, err := it.runTask(i, &buf)
		if err != nil && it.ctx.Err() != nil && errors.Is(err, it.ctx.Err()) {
			return // no slot before the end: Next reports the context's error
		}
		if b == nil && err == nil {
			continue
		}
		select {
		case it.results <- result{b: b, err: err, owned: it.tasks[i].p != nil}:
		case <-it.ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

// runTask runs task i holding one of the DB's query worker slots
// (Options.QuerySlots), if it has them; waiting for the slot ends with the
// iterator's context.
func (it *iterator) runTask(i int, buf *[]byte) (b *Batch, err error) {
	slots := it.q.db.opts.QuerySlots
	if slots == nil {
		return it.runOrSkip(&it.tasks[i], buf)
	}
	if serr := slots.Do(it.ctx, func() { b, err = it.runOrSkip(&it.tasks[i], buf) }); serr != nil {
		return nil, serr
	}
	return b, err
}

// Next implements BatchIterator.
func (it *iterator) Next() bool {
	if it.done || it.err != nil {
		return false
	}
	if it.limit > 0 && it.returned >= it.limit {
		it.finish()
		return false
	}
	if !it.started {
		it.start()
	}
	for {
		var r result
		if it.results == nil { // inline
			i := int(it.nextTsk.Add(1) - 1)
			if i >= len(it.tasks) {
				it.finish()
				return false
			}
			if err := it.ctx.Err(); err != nil {
				r.err = err
			} else {
				var buf []byte
				r.b, r.err = it.runTask(i, &buf)
				r.owned = it.tasks[i].p != nil
			}
		} else {
			var ok bool
			r, ok = <-it.results
			if !ok {
				if err := it.ctx.Err(); err != nil && !it.done {
					it.err = err
				}
				it.finish()
				return false
			}
		}
		if r.err != nil {
			it.err = r.err
			it.q.db.reportCorruption(r.err)
			it.finish()
			return false
		}
		if r.b == nil || r.b.Len == 0 {
			continue
		}
		it.cur, it.curOwned = r.b, r.owned
		it.returned += r.b.Len
		return true
	}
}

func (it *iterator) finish() {
	it.done = true
	if it.cancel != nil {
		it.cancel()
	}
	if it.results != nil {
		for range it.results { // drain so workers exit
		}
	}
	it.wg.Wait()
}

func (it *iterator) Batch() *Batch { return it.cur }

// Stable reports whether the vectors of the current batch stay as they are
// after the next call to Next, so the caller may keep them without copying
// (and must not modify them): true for a block of a part file (vectors
// decoded for this call or kept in the decoded-chunk cache, which nothing
// modifies), false for memtable rows, which are views of the memtable's
// growing buffers.
func (it *iterator) Stable() bool { return it.cur != nil && it.curOwned }

func (it *iterator) Err() error { return it.err }

// Close implements BatchIterator; it stops the workers and waits for them.
func (it *iterator) Close() error {
	if !it.done {
		it.finish()
	}
	it.cur = nil
	return nil
}

// Stats implements StatsIterator.
func (it *iterator) Stats() SelectStats {
	s := it.stats
	s.BlocksRead = it.blocksRead.Load()
	s.BytesRead = it.bytesRead.Load()
	s.MemRowsScanned = it.memRows.Load()
	s.BlocksSkippedTerms += it.tokenSkips.Load() + it.bloomSkips.Load()
	s.BlocksRead -= it.tokenSkips.Load()
	s.RowsReturned = int64(it.returned)
	s.TimeChunksSkipped = it.timeSkips.Load()
	return s
}

// run produces the batch of one task, or nil when no row is in the time range.
func (it *iterator) run(tk *task, buf *[]byte) (*Batch, error) {
	tr := it.q.tr
	if tk.mem != nil {
		m := tk.mem
		sg := &m.segs[tk.seg]
		it.memRows.Add(int64(sg.n))
		times := sg.vecs[m.schema.Index(ColTimeGenerated)].Int
		var idx []int32
		all := true
		for i := range sg.n {
			if !tr.Contains(times[i]) {
				all = false
				break
			}
		}
		if !all {
			for i := range sg.n {
				if tr.Contains(times[i]) {
					idx = append(idx, int32(i))
				}
			}
			if len(idx) == 0 {
				return nil, nil
			}
		}
		n := sg.n
		if !all {
			n = len(idx)
		}
		b := &Batch{Schema: it.schema, Cols: make([]*Vector, len(it.out)), Len: n}
		for i, oc := range it.out {
			switch j := m.schema.Index(oc.col.Name); {
			case oc.isVirt:
				b.Cols[i] = constStrVec(oc.virtual, n)
			case j < 0:
				b.Cols[i] = nullVec(oc.col.Type, n)
			case all:
				b.Cols[i] = sg.vecs[j]
			default:
				b.Cols[i] = gatherVec(sg.vecs[j], idx)
			}
		}
		return b, nil
	}

	p, bi := tk.p, tk.block
	bm := &p.meta.blocks[bi]
	if len(it.hints) > 0 {
		ok, err := it.blockMayMatch(p, bi)
		if err != nil {
			return nil, err
		}
		if !ok {
			it.bloomSkips.Add(1)
			return nil, nil
		}
	}
	it.blocksRead.Add(1)
	lo, hi := 0, bm.rows
	cache := &it.q.db.rcache
	read := func(j int, codesOnly bool) (*Vector, error) {
		it.bytesRead.Add(int64(bm.cols[j].size))
		if v := cache.get(p, bi, j, codesOnly); v != nil {
			return v, nil // a new header; its slices are capped
		}
		// A codes-only column's dictionary block is decoded without Str
		// (no string header per row); the cache packs Dict and Codes either
		// way, and unpack builds Str for a later reader that wants it.
		v, nb, err := p.readChunkCodes(bi, j, it.q.db.dec, *buf, codesOnly)
		*buf = nb
		if err == nil && cache.put(p, bi, j, v) {
			v = sharedVec(v)
		}
		return v, err
	}
	tcol := p.meta.cols.Index(ColTimeGenerated)
	var timeVec *Vector
	if bm.minT < tr.From || bm.maxT >= tr.To {
		if tcol < 0 {
			return nil, &CorruptionError{Path: p.path, Part: p.id, Block: bi, Err: errors.New("part lacks TimeGenerated")}
		}
		v, err := read(tcol, false)
		if err != nil {
			return nil, err
		}
		if len(v.Int) != bm.rows {
			return nil, &CorruptionError{Path: p.path, Part: p.id, Block: bi, Column: ColTimeGenerated, Err: errors.New("row count mismatch")}
		}
		timeVec = v
		lo = sort.Search(len(v.Int), func(i int) bool { return v.Int[i] >= tr.From })
		hi = sort.Search(len(v.Int), func(i int) bool { return v.Int[i] >= tr.To })
		if lo >= hi {
			return nil, nil
		}
	}
	// Term hints on split token chunks: keep only the rows holding the terms.
	var keep []int32      // block rows to return, ascending; nil: all of [lo, hi)
	var keepCol = -1      // the column whose values matchTerms rebuilt
	var keepVals []string // those values, aligned with keep
	for _, ct := range it.colTerms {
		j := p.meta.cols.Index(ct.column)
		if j < 0 || p.meta.cols[j].Type != TypeString {
			continue
		}
		rows, vals, ok, nb, err := p.matchTerms(bi, j, it.q.db.dec, *buf, ct.terms)
		*buf = nb
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		it.bytesRead.Add(int64(bm.cols[j].size))
		rows, vals = clipRows(rows, vals, lo, hi)
		if keep != nil {
			rows, _ = intersectRows(keep, rows, vals)
			keepVals = intersectVals(keep, rows, keepVals)
		} else {
			keepCol, keepVals = j, vals
		}
		keep = rows
		if len(keep) == 0 {
			it.tokenSkips.Add(1)
			return nil, nil
		}
	}
	n := hi - lo
	if keep != nil {
		n = len(keep)
		it.rowsMatched.Add(int64(n))
	}
	b := &Batch{Schema: it.schema, Cols: make([]*Vector, len(it.out)), Len: n}
	fillTime := false
	if k := it.schema.Index(ColTimeGenerated); k >= 0 && tcol >= 0 && it.schema[k].Type == TypeDatetime && p.meta.cols[tcol].Type == TypeDatetime {
		// Block rows are sorted by TimeGenerated, never null, within the
		// block's [minT, maxT]; those kept are also within the time cut.
		b.TimeBounded, b.TimeMin, b.TimeMax = true, max(bm.minT, tr.From), min(bm.maxT, tr.To-1)
		// The caller bins TimeGenerated and reads it no other way: a block
		// inside one bin needs no read, every row gets one tick of that bin
		// (timeFill), which becomes the batch's lower bound.
		if fillTime = timeVec == nil && it.timeBin.Size > 0 && it.timeBin.OneBin(b.TimeMin, b.TimeMax); fillTime {
			b.TimeMin = it.timeBin.fillTick(b.TimeMin, tr.From)
		}
	}
	for i, oc := range it.out {
		if oc.isVirt {
			b.Cols[i] = constStrVec(oc.virtual, n)
			continue
		}
		j := p.meta.cols.Index(oc.col.Name)
		if j < 0 || classOf(p.meta.cols[j].Type) != classOf(oc.col.Type) {
			b.Cols[i] = nullVec(oc.col.Type, n)
			continue
		}
		if keep != nil && j == keepCol {
			b.Cols[i] = &Vector{Type: oc.col.Type, Str: keepVals}
			continue
		}
		if j == tcol && fillTime {
			it.timeSkips.Add(1)
			b.Cols[i] = &Vector{Type: oc.col.Type, Int: it.timeFill(b.TimeMin, n)}
			continue
		}
		var v *Vector
		if j == tcol && timeVec != nil {
			v = timeVec
		} else {
			var err error
			if v, err = read(j, oc.codesOnly); err != nil {
				return nil, err
			}
		}
		v.Type = oc.col.Type // v is this batch's own header (sharedVec)
		switch {
		case keep != nil:
			v = gatherVec(v, keep)
		case lo != 0 || hi != bm.rows:
			v = viewVec(v, lo, hi)
		}
		b.Cols[i] = v
	}
	return b, nil
}

// clipRows keeps the rows (ascending) in [lo, hi), with their values.
func clipRows(rows []int32, vals []string, lo, hi int) ([]int32, []string) {
	a := sort.Search(len(rows), func(i int) bool { return int(rows[i]) >= lo })
	z := sort.Search(len(rows), func(i int) bool { return int(rows[i]) >= hi })
	return rows[a:z], vals[a:z]
}

// intersectRows returns the rows of b (ascending) that are also in a, with
// their values from vals (aligned with b).
func intersectRows(a, b []int32, vals []string) ([]int32, []string) {
	var rows []int32
	var out []string
	i := 0
	for k, r := range b {
		for i < len(a) && a[i] < r {
			i++
		}
		if i < len(a) && a[i] == r {
			rows = append(rows, r)
			out = append(out, vals[k])
		}
	}
	return rows, out
}

// intersectVals returns the values (aligned with a) of the rows of a that are in b.
func intersectVals(a, b []int32, vals []string) []string {
	var out []string
	j := 0
	for k, r := range a {
		for j < len(b) && b[j] < r {
			j++
		}
		if j < len(b) && b[j] == r {
			out = append(out, vals[k])
		}
	}
	return out
}

// fillTick returns the tick that stands for every row of a block whose
// rows lie in one bin from lo (its lower bound) on, with the time cut
// starting at from (<= lo): the bin's start, or from when that is later,
// so that the blocks of one bin share it — or lo itself where the bin's
// start does not compute (int64 wrapping at the extremes). The tick is in
// lo's bin, within the time cut and not above lo.
func (h TimeBinHint) fillTick(lo, from int64) int64 {
	k := h.Index(lo)
	t := k*h.Size + h.At
	if t > lo || h.Index(t) != k {
		return lo
	}
	return max(t, from)
}

// maxTimeFills bounds the values an iterator keeps filled vectors for.
const maxTimeFills = 64

// timeFill returns n copies of tick t, for a TimeGenerated the store
// fills instead of reading (SelectHints.TimeBin). Blocks of one bin share
// one vector: nothing writes to it (the batches of part blocks are read
// only, see iterator.Stable), and its capacity is capped at n.
func (it *iterator) timeFill(t int64, n int) []int64 {
	it.fillMu.Lock()
	defer it.fillMu.Unlock()
	v := it.fills[t]
	if len(v) < n {
		v = make([]int64, n)
		for i := range v {
			v[i] = t
		}
		if it.fills == nil {
			it.fills = make(map[int64][]int64)
		}
		if len(it.fills) < maxTimeFills || it.fills[t] != nil {
			it.fills[t] = v
		}
	}
	return v[:n:n]
}
