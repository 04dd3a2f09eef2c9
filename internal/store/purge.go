package store

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"

	"golang.org/x/sync/errgroup"
)

// RowPredicate selects the rows Purge removes. The engine compiles a purge
// request's KQL filters into one; Purge evaluates it block by block.
// Implementations must not keep or modify the batch.
type RowPredicate interface {
	// Columns lists the columns Match reads; nil means every column. System
	// and virtual columns (TenantId, Type) may be named.
	Columns() []string
	// Match returns one bool per row of b: true purges the row. An error
	// aborts the purge before anything is replaced.
	Match(b *Batch) ([]bool, error)
}

// RowPredicateFunc adapts a function over all columns to RowPredicate.
type RowPredicateFunc func(b *Batch) ([]bool, error)

// Columns implements RowPredicate: every column.
func (f RowPredicateFunc) Columns() []string { return nil }

// Match implements RowPredicate.
func (f RowPredicateFunc) Match(b *Batch) ([]bool, error) { return f(b) }

// ColumnIn is a RowPredicate matching rows whose string, guid or dynamic
// column Column equals one of Values (case-sensitive, as KQL's == and in).
type ColumnIn struct {
	Column string
	Values []string
}

// Columns implements RowPredicate.
func (c ColumnIn) Columns() []string { return []string{c.Column} }

// Match implements RowPredicate.
func (c ColumnIn) Match(b *Batch) ([]bool, error) {
	v := b.Col(c.Column)
	if v == nil {
		return nil, fmt.Errorf("%w: unknown column %s", ErrSchema, c.Column)
	}
	if classOf(v.Type) != classStr {
		return nil, fmt.Errorf("%w: column %s is %s, not a string", ErrSchema, c.Column, v.Type)
	}
	set := make(map[string]bool, len(c.Values))
	for _, s := range c.Values {
		set[s] = true
	}
	out := make([]bool, b.Len)
	for i, s := range v.Str {
		out[i] = !v.IsNull(i) && set[s]
	}
	return out, nil
}

// PurgeResult says what a purge did.
type PurgeResult struct {
	RowsPurged     int64
	PartsRewritten int // parts replaced by a new part (new data key) without the rows
	PartsDeleted   int // parts all of whose rows matched
	PartsScanned   int
	// Quarantined lists the table's quarantined parts, which the purge could
	// not read: the ones it found corrupt itself (DetectedBy "purge") and the
	// ones quarantined before. Rows they hold that match were not purged;
	// each record's MissedPurges counts such purges. Empty means the purge
	// covered the whole table.
	Quarantined []QuarantinedPart
}

// Purge removes the rows of a table that pred matches, from every part, the
// memtable and the WAL. It first flushes the workspace, so rows committed
// before the call are in parts and the WAL segments that held them are
// deleted. Then each part with matching rows is rewritten without them as a
// new part with a new data key, swapped in atomically, and the old part file
// and its key are deleted (once open Queriers that still read it close).
// Ingestion and queries go on meanwhile; merges wait. Rows committed after
// Purge starts are not purged. A crash midway leaves each part either old or
// replaced (the new part names the old one it replaces).
//
// A part that fails its integrity check while the purge reads it is
// quarantined as on the query path (DetectedBy "purge"), and the purge goes
// on with the other parts: it never stops half-way because of one damaged
// part. The result lists that part and every part quarantined earlier, and
// their quarantine records count the purge as missed (see
// QuarantinedPart.MissedPurges), because their rows could not be purged.
func (db *DB) Purge(ctx context.Context, ref TableRef, pred RowPredicate) (PurgeResult, error) {
	var res PurgeResult
	if pred == nil {
		return res, errors.New("purge: no predicate")
	}
	t, err := db.lookupTable(ctx, ref)
	if err != nil {
		return res, err
	}
	ws := t.ws
	if _, err := ws.requireKeys(ctx); err != nil {
		return res, fmt.Errorf("purge: %w", err)
	}
	t.mu.RLock()
	full := t.full
	t.mu.RUnlock()
	for _, c := range pred.Columns() {
		if full.Index(c) < 0 {
			return res, fmt.Errorf("purge: %w: unknown column %s", ErrSchema, c)
		}
	}
	db.mergeMu.Lock() // no merge reads a part that is being replaced
	defer db.mergeMu.Unlock()
	if err := ws.flush(ctx); err != nil {
		return res, fmt.Errorf("purge: flush: %w", err)
	}
	t.mu.RLock()
	if t.dropped {
		t.mu.RUnlock()
		return res, fmt.Errorf("purge: %w: %s", ErrTableNotFound, ref.Table)
	}
	var parts []*part
	for _, ps := range t.parts {
		for _, p := range ps {
			p.acquire()
			parts = append(parts, p)
		}
	}
	t.mu.RUnlock()
	release := func() {
		for _, p := range parts {
			p.release()
		}
		parts = nil
	}
	defer release()
	// Parts are independent and so are their blocks: parts are purged
	// concurrently, and every block scan or rewrite takes one of QueryWorkers
	// slots, so the purge uses every core whether the table has one large
	// part or many small ones.
	workers := max(1, db.opts.QueryWorkers)
	sem := make(chan struct{}, workers)
	var mu sync.Mutex // guards res
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for _, p := range parts {
		g.Go(func() error {
			n, replaced, err := db.purgePart(gctx, t, p, pred, sem)
			if err != nil {
				db.reportCorruption(err)
				var ce *CorruptionError
				if errors.As(err, &ce) && ce.Part == p.id && gctx.Err() == nil {
					// Take the damaged part out of the table and go on with
					// the rest; the quarantine records list it below.
					db.quarantinePart(ctx, ws.id, t.name, p.id, ce, "purge")
					mu.Lock()
					res.PartsScanned++
					mu.Unlock()
					return nil
				}
				return fmt.Errorf("purge part %s: %w", p.id, err)
			}
			mu.Lock()
			defer mu.Unlock()
			res.PartsScanned++
			if n == 0 {
				return nil
			}
			res.RowsPurged += int64(n)
			if replaced {
				res.PartsRewritten++
			} else {
				res.PartsDeleted++
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return res, err
	}
	release() // the last reference to a replaced part deletes its file
	if err := syncDir(t.dir); err != nil {
		return res, fmt.Errorf("purge: %w", err)
	}
	db.m.rowsPurged.Add(uint64(res.RowsPurged))
	db.m.partsPurged.Add(uint64(res.PartsRewritten + res.PartsDeleted))
	res.Quarantined = db.notePurgeMissed(t)
	db.log.Info("store purge done", slog.String("workspace_id", ws.id), slog.String("table", t.name),
		slog.Int64("rows", res.RowsPurged), slog.Int("parts_rewritten", res.PartsRewritten), slog.Int("parts_deleted", res.PartsDeleted),
		slog.Int("parts_quarantined", len(res.Quarantined)))
	if len(res.Quarantined) > 0 {
		ids := make([]string, len(res.Quarantined))
		for i, q := range res.Quarantined {
			ids[i] = q.PartID
		}
		db.log.Error("purge could not read quarantined parts: rows in them that match were not purged; delete them, or purge again after restoring them",
			slog.String("workspace_id", ws.id), slog.String("table", t.name), slog.Any("parts", ids))
	}
	return res, nil
}

// purgePart evaluates pred on one part and, if rows match, replaces the part.
// It returns the rows removed and whether a new part replaced the old one
// (false: the part was deleted, or nothing matched). Block work runs on the
// purge's shared worker slots (sem).
func (db *DB) purgePart(ctx context.Context, t *table, p *part, pred RowPredicate, sem chan struct{}) (int, bool, error) {
	ws := t.ws
	t.mu.RLock()
	full := t.full
	inc := t.meta.incarnationBytes()
	t.mu.RUnlock()
	predCols := pred.Columns()
	if predCols == nil {
		for _, c := range full {
			predCols = append(predCols, c.Name)
		}
	}
	// Pass 1: which rows match, reading only the predicate's columns.
	nb := len(p.meta.blocks)
	masks := make([][]bool, nb)
	matched := make([]int, nb)
	err := runBlocks(ctx, sem, nb, func(bi int) error {
		rows := p.meta.blocks[bi].rows
		b := &Batch{Len: rows}
		var buf []byte
		for _, name := range predCols {
			c := full[full.Index(name)]
			var v *Vector
			switch k := p.meta.cols.Index(c.Name); {
			case c.Name == ColTenantID:
				v = constStrVec(ws.id, rows)
			case c.Name == ColType:
				v = constStrVec(t.name, rows)
			case k < 0 || classOf(p.meta.cols[k].Type) != classOf(c.Type):
				v = nullVec(c.Type, rows)
			default:
				var err error
				if v, buf, err = p.readChunk(bi, k, db.dec, buf); err != nil {
					return err
				}
				if v.Type != c.Type { // an int column widened to long, and the like
					w := cloneEmpty(c.Type)
					appendVec(w, 0, v, 0, rows, nil)
					v = w
				}
			}
			b.Schema = append(b.Schema, c)
			b.Cols = append(b.Cols, v)
		}
		m, err := pred.Match(b)
		if err != nil {
			return fmt.Errorf("purge predicate: %w", err)
		}
		if len(m) != rows {
			return fmt.Errorf("purge predicate returned %d results for %d rows", len(m), rows)
		}
		for _, x := range m {
			if x {
				matched[bi]++
			}
		}
		masks[bi] = m
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	total := 0
	for _, n := range matched {
		total += n
	}
	if total == 0 {
		return 0, false, nil
	}
	// Pass 2: a new part without the matching rows.
	var np *part
	if total < p.meta.rows {
		if np, err = db.rewritePart(ctx, ws, t.name, t.dir, inc, p, masks, matched, sem); err != nil {
			return 0, false, err
		}
	}
	t.mu.Lock()
	cur := t.parts[p.meta.day]
	if t.dropped || !slices.Contains(cur, p) { // dropped or expired meanwhile: nothing to replace
		t.mu.Unlock()
		if np != nil {
			np.obsolete.Store(true)
			np.release()
		}
		return 0, false, nil
	}
	next := slices.DeleteFunc(slices.Clone(cur), func(x *part) bool { return x == p })
	if np != nil {
		next = append(next, np)
	}
	if len(next) == 0 {
		delete(t.parts, p.meta.day)
	} else {
		t.parts[p.meta.day] = next
	}
	t.mu.Unlock()
	p.obsolete.Store(true)
	p.release() // the table's reference; the file and key go with the last reader
	return total, np != nil, nil
}

// runBlocks calls fn for blocks 0..n-1, each on its own goroutine while it
// holds a slot of sem. The first error cancels the rest and is returned.
func runBlocks(ctx context.Context, sem chan struct{}, n int, fn func(bi int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	for bi := range n {
		select {
		case sem <- struct{}{}:
		case <-gctx.Done():
			return errors.Join(g.Wait(), gctx.Err())
		}
		g.Go(func() error {
			defer func() { <-sem }()
			if err := gctx.Err(); err != nil {
				return err
			}
			return fn(bi)
		})
	}
	return g.Wait()
}

// purgeScratch is one block rewrite's reusable buffers.
type purgeScratch struct {
	buf, raw, comp, half, aad []byte
}

var purgeScratches = sync.Pool{New: func() any { return &purgeScratch{} }}

// rewritePart writes a new part holding the rows of p that masks do not
// select, under a new data key, and returns it open. Blocks without a match
// are copied: each chunk's compressed bytes are opened with the old part key
// and sealed again under the new one (the AAD names the new part and block
// index), with the old chunk statistics. Blocks with matches are filtered
// chunk by chunk at the encoding level (see filterChunk), compressed and
// sealed. Blocks are processed concurrently (sem) and written in order; the
// file is fsynced and renamed into place as writePart does, and names p as
// the part it replaces, so a crash leaves either p or its replacement.
func (db *DB) rewritePart(ctx context.Context, ws *workspace, table, dir string, inc [16]byte, p *part, masks [][]bool, matched []int, sem chan struct{}) (*part, error) {
	id, err := newPartID(p.meta.day)
	if err != nil {
		return nil, err
	}
	key, wrapped, err := newDataKeys(ctx, ws.keys.Load(), "part-"+id, partKeyAAD(ws.id, table, id))
	if err != nil {
		return nil, fmt.Errorf("rewrite part: %w", err)
	}
	pf, err := createPartFile("rewrite part", dir, id, key, wrapped)
	if err != nil {
		return nil, err
	}
	defer pf.abort() // a no-op once finish has put the part in place
	meta := &partMeta{
		incarnation: inc, day: p.meta.day, walSeq: p.meta.walSeq, replaces: []string{p.id},
		cols: p.meta.cols, minT: math.MaxInt64, maxT: math.MinInt64,
	}
	var src []int // old block index of each new block
	for bi, bm := range p.meta.blocks {
		if matched[bi] < bm.rows {
			src = append(src, bi)
		}
	}
	// The old part's blooms, read once (not through the query cache): kept
	// for copied blocks, the starting point of filtered ones.
	var bcols []int
	for j, c := range p.meta.cols {
		if classOf(c.Type) == classStr {
			bcols = append(bcols, j)
		}
	}
	blooms, err := p.loadBlooms(bcols)
	if err != nil {
		return nil, err
	}
	defer freeBlooms(blooms)
	err = orderedBlocks(ctx, sem, len(src), func(nbi int) (*encodedBlock, error) {
		sc := purgeScratches.Get().(*purgeScratch)
		defer purgeScratches.Put(sc)
		bi := src[nbi]
		if matched[bi] == 0 {
			return db.copyBlock(p, bi, blooms, ws.id, table, id, nbi, key, sc)
		}
		return db.filterBlock(p, bi, masks[bi], blooms, ws.id, table, id, nbi, key, sc)
	}, func(eb *encodedBlock) error {
		meta.rows += eb.meta.rows
		return pf.addBlock(meta, eb)
	})
	if err != nil {
		return nil, pf.errorf("%w", err)
	}
	return pf.finish(meta, db.enc, ws.id, table)
}

// orderedBlocks runs produce for 0..n-1 concurrently, each while holding a
// slot of sem, and hands the results to consume in order. At most two blocks
// per slot are waiting to be consumed, which bounds memory.
func orderedBlocks(ctx context.Context, sem chan struct{}, n int, produce func(i int) (*encodedBlock, error), consume func(*encodedBlock) error) error {
	ctx, cancel := context.WithCancel(ctx)
	results := make([]chan *encodedBlock, n)
	for i := range results {
		results[i] = make(chan *encodedBlock, 1)
	}
	window := make(chan struct{}, 2*cap(sem))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the producer: starts block i once a window slot and a worker slot are free
		defer wg.Done()
		for i := range n {
			select {
			case window <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				eb, err := produce(i)
				<-sem
				if err != nil {
					eb = &encodedBlock{err: err}
				}
				results[i] <- eb
			}()
		}
	}()
	defer func() {
		cancel()
		wg.Wait()
	}()
	for i := range n {
		var eb *encodedBlock
		select {
		case eb = <-results[i]:
		case <-ctx.Done():
			return ctx.Err()
		}
		if eb.err != nil {
			return eb.err
		}
		if err := consume(eb); err != nil {
			return err
		}
		<-window
	}
	return nil
}

// copyBlock re-seals block bi of p, which loses no row, as block nbi of the
// new part id under key, without decompressing it.
func (db *DB) copyBlock(p *part, bi int, blooms []*bloomBlock, wsID, table, id string, nbi int, key layers, sc *purgeScratch) (*encodedBlock, error) {
	bm := &p.meta.blocks[bi]
	eb := &encodedBlock{
		meta:   blockMeta{rows: bm.rows, minT: bm.minT, maxT: bm.maxT, cols: make([]chunkMeta, len(bm.cols))},
		chunks: make([][]byte, len(bm.cols)),
	}
	for j, c := range p.meta.cols {
		comp, buf, err := p.openChunk(bi, j, sc.buf)
		sc.buf = buf
		if err != nil {
			return nil, err
		}
		sc.aad = blockAAD(sc.aad[:0], wsID, table, id, nbi, c.Name)
		sealed, err := key.Seal(make([]byte, 0, len(comp)+128), comp, sc.aad)
		if err != nil {
			return nil, err
		}
		cm := bm.cols[j] // statistics and bloom are unchanged
		cm.off, cm.size = 0, len(sealed)
		if cm.flags&chunkFlagBloom != 0 {
			if blooms[j] == nil {
				return nil, p.corrupt(bi, j, errors.New("bloom flag on a column without blooms"))
			}
			eb.setBloom(j, blooms[j].copyOf(bi))
		}
		eb.meta.cols[j] = cm
		eb.chunks[j] = sealed
	}
	return eb, nil
}

// filterBlock rewrites block bi of p without the rows drop selects, as block
// nbi of the new part id under key.
func (db *DB) filterBlock(p *part, bi int, drop []bool, blooms []*bloomBlock, wsID, table, id string, nbi int, key layers, sc *purgeScratch) (*encodedBlock, error) {
	bm := &p.meta.blocks[bi]
	keep := make([]int32, 0, bm.rows)
	for i, x := range drop {
		if !x {
			keep = append(keep, int32(i))
		}
	}
	eb := &encodedBlock{
		meta:   blockMeta{rows: len(keep), cols: make([]chunkMeta, len(bm.cols))},
		chunks: make([][]byte, len(bm.cols)),
	}
	for j, c := range p.meta.cols {
		comp, buf, err := p.openChunk(bi, j, sc.buf)
		sc.buf = buf
		if err != nil {
			return nil, err
		}
		raw, err := p.decompressChunk(bi, j, db.dec, comp, false)
		if err != nil {
			return nil, err
		}
		var v *Vector
		var bl, old bloom
		var split int
		if bm.cols[j].flags&chunkFlagBloom != 0 && blooms[j] != nil {
			old = blooms[j].copyOf(bi)
		}
		sc.raw, v, bl, split, err = filterChunk(sc.raw[:0], raw, c.Type, bm.rows, keep, old)
		if err != nil {
			return nil, p.corrupt(bi, j, err)
		}
		if split > 0 {
			sc.half = db.enc.EncodeAll(sc.raw[:split], sc.half[:0])
			sc.comp = binary.AppendUvarint(sc.comp[:0], uint64(len(sc.half)))
			sc.comp = append(sc.comp, sc.half...)
			sc.comp = db.enc.EncodeAll(sc.raw[split:], sc.comp)
		} else {
			sc.comp = db.enc.EncodeAll(sc.raw, sc.comp[:0])
		}
		sc.aad = blockAAD(sc.aad[:0], wsID, table, id, nbi, c.Name)
		sealed, err := key.Seal(make([]byte, 0, len(sc.comp)+128), sc.comp, sc.aad)
		if err != nil {
			return nil, err
		}
		cm := chunkMeta{size: len(sealed), rawSize: len(sc.raw)}
		if split > 0 {
			cm.flags |= chunkFlagSplit
		}
		fillChunkStats(&cm, v, c.Type)
		if cm.flags&chunkFlagBloom != 0 {
			eb.setBloom(j, bl)
		}
		if c.Name == ColTimeGenerated {
			eb.meta.minT, eb.meta.maxT = math.MaxInt64, math.MinInt64
			for _, t := range v.Int {
				eb.meta.minT, eb.meta.maxT = min(eb.meta.minT, t), max(eb.meta.maxT, t)
			}
		}
		eb.meta.cols[j] = cm
		eb.chunks[j] = sealed
	}
	return eb, nil
}

// filterChunk appends to dst the column encoding raw (n rows of type t)
// reduced to the rows keep (ascending, not empty), and returns the kept
// values for numeric and bool columns (for the chunk statistics; nil for
// strings), the token bloom filter of string columns and, for token-encoded
// strings, the split offset (see encodeChunk).
//
// Dictionary- and token-encoded strings are filtered without rebuilding the
// values: the kept rows' codes are renumbered over the entries they still
// use, so no dictionary entry or token that only purged rows held remains,
// and the bloom filter is built from the remaining entries — or is old, the
// chunk's filter, when every entry is still used, since the filter is a
// function of the set of entries. Other columns are decoded, gathered and
// encoded again.
func filterChunk(dst, raw []byte, t ColumnType, n int, keep []int32, old bloom) (out []byte, kept *Vector, bl bloom, split int, err error) {
	if len(raw) == 0 {
		return dst, nil, nil, 0, errShort
	}
	flags := raw[0]
	if classOf(t) != classStr || flags&(colFlagDict|colFlagTokens) == 0 {
		d := decoder{b: raw}
		v, err := decodeColumn(&d, t, n)
		if err == nil && len(d.b) != 0 {
			err = fmt.Errorf("%d trailing bytes", len(d.b))
		}
		if err != nil {
			return dst, nil, nil, 0, err
		}
		v = gatherVec(v, keep)
		// Integers stay bit-packed (see bitpack.go); strings here are plain.
		dst, bl, _ = encodeChunkMode(dst, v, 0, len(keep), encPacked, true)
		if classOf(t) == classStr {
			return dst, nil, bl, 0, nil
		}
		return dst, v, nil, 0, nil
	}
	if flags&^(colFlagNulls|colFlagDict|colFlagTokens|colFlagPacked) != 0 || flags&colFlagDict != 0 && flags&colFlagTokens != 0 ||
		flags&colFlagPacked != 0 && flags&colFlagDict == 0 {
		return dst, nil, nil, 0, fmt.Errorf("bad column flags %#x", flags)
	}
	d := decoder{b: raw[1:]}
	var nulls []bool
	hasNulls := false
	if flags&colFlagNulls != 0 {
		all := d.bitmap(n)
		if d.err != nil {
			return dst, nil, nil, 0, d.err
		}
		nulls = make([]bool, len(keep))
		for k, r := range keep {
			nulls[k] = all[r]
			hasNulls = hasNulls || all[r]
		}
	}
	start := len(dst)
	outFlags := flags &^ colFlagNulls
	if hasNulls {
		outFlags |= colFlagNulls
	}
	dst = append(dst, outFlags)
	if hasNulls {
		dst = appendBitmap(dst, nulls)
	}
	if flags&colFlagDict != 0 {
		nd := d.count("dictionary size", n)
		dict := d.stringsBody(nd)
		codes := make([]uint32, n)
		d.dictCodes(flags, codes, nd)
		if d.err == nil && len(d.b) != 0 {
			d.fail(fmt.Errorf("%d trailing bytes", len(d.b)))
		}
		if d.err != nil {
			return dst[:start], nil, nil, 0, d.err
		}
		remap := make([]int32, nd)
		for i := range remap {
			remap[i] = -1
		}
		var used []string // first-use order, as encodeChunk builds dictionaries
		for k, r := range keep {
			c := codes[r]
			if remap[c] < 0 {
				remap[c] = int32(len(used))
				used = append(used, dict[c])
			}
			codes[k] = uint32(remap[c])
		}
		dst = appendStrings(dst, used)
		dst = appendCodes(dst, flags, codes[:len(keep)], len(used))
		if len(used) == nd && old != nil {
			return dst, nil, old, 0, nil
		}
		return dst, nil, buildBloom(used, nil, t == TypeDynamic), 0, nil
	}
	// Tokens: table, per-row counts, indexes (see tokens.go).
	nt := d.count("token count", len(d.b))
	var toks []string
	if nt > 0 {
		toks = d.stringsBody(nt)
	}
	perRow := make([]int, n+1) // start ordinal of each row's tokens, then the end
	for i := range n {
		k := d.count("tokens per row", len(d.b))
		perRow[i+1] = perRow[i] + k
		if d.err == nil && perRow[i+1] > len(d.b) { // every index takes at least one byte
			d.fail(fmt.Errorf("%d token indexes: %w", perRow[i+1], errShort))
		}
	}
	if d.err != nil {
		return dst[:start], nil, nil, 0, d.err
	}
	idx := make([]uint32, perRow[n])
	for i := range idx {
		x := d.uvarint()
		if d.err == nil && x >= uint64(nt) {
			d.fail(fmt.Errorf("token index %d out of range %d", x, nt))
		}
		idx[i] = uint32(x)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail(fmt.Errorf("%d trailing bytes", len(d.b)))
	}
	if d.err != nil {
		return dst[:start], nil, nil, 0, d.err
	}
	remap := make([]int32, nt)
	for i := range remap {
		remap[i] = -1
	}
	var used []string
	var count []uint32
	rowTokens := make([]uint32, len(keep))
	seq := idx[:0] // rewritten in place: kept rows come in order
	for k, r := range keep {
		rowTokens[k] = uint32(perRow[r+1] - perRow[r])
		for _, x := range idx[perRow[r]:perRow[r+1]] {
			id := remap[x]
			if id < 0 {
				id = int32(len(used))
				remap[x] = id
				used = append(used, toks[x])
				count = append(count, 0)
			}
			count[id]++
			seq = append(seq, uint32(id))
		}
	}
	// Most frequent first, as tokenCoder orders its table.
	order := make([]uint32, len(used))
	for i := range order {
		order[i] = uint32(i)
	}
	slices.SortStableFunc(order, func(a, b uint32) int { return cmp.Compare(count[b], count[a]) })
	rank := make([]uint32, len(used))
	for r, id := range order {
		rank[id] = uint32(r)
	}
	dst = binary.AppendUvarint(dst, uint64(len(used)))
	for _, id := range order {
		dst = binary.AppendUvarint(dst, uint64(len(used[id])))
	}
	for _, id := range order {
		dst = append(dst, used[id]...)
	}
	if t == TypeString && !hasNulls {
		split = len(dst) - start
	}
	for _, c := range rowTokens {
		dst = binary.AppendUvarint(dst, uint64(c))
	}
	for _, id := range seq {
		dst = binary.AppendUvarint(dst, uint64(rank[id]))
	}
	if t == TypeString {
		// A value's tokens are table entries, and strings are never null.
		if len(used) == nt && old != nil {
			return dst, nil, old, split, nil
		}
		return dst, nil, buildBloom(used, nil, false), split, nil
	}
	// Dynamic text is tokenized differently (JSON escapes), so hash the values.
	vals := make([]string, len(keep))
	var sb []byte
	o := 0
	for k, c := range rowTokens {
		sb = sb[:0]
		for _, id := range seq[o : o+int(c)] {
			sb = append(sb, used[id]...)
		}
		o += int(c)
		vals[k] = string(sb)
	}
	return dst, nil, buildBloom(vals, nulls, true), 0, nil
}
