package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	// Parts are independent: rewrite up to QueryWorkers of them at a time.
	var mu sync.Mutex // guards res
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, db.opts.QueryWorkers))
	for _, p := range parts {
		g.Go(func() error {
			n, replaced, err := db.purgePart(gctx, t, p, pred)
			if err != nil {
				db.reportCorruption(err)
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
	db.log.Info("store purge done", slog.String("workspace_id", ws.id), slog.String("table", t.name),
		slog.Int64("rows", res.RowsPurged), slog.Int("parts_rewritten", res.PartsRewritten), slog.Int("parts_deleted", res.PartsDeleted))
	return res, nil
}

// purgePart evaluates pred on one part and, if rows match, replaces the part.
// It returns the rows removed and whether a new part replaced the old one
// (false: the part was deleted, or nothing matched).
func (db *DB) purgePart(ctx context.Context, t *table, p *part, pred RowPredicate) (int, bool, error) {
	ws := t.ws
	t.mu.RLock()
	full, storage := t.full, t.storage
	inc := t.meta.incarnationBytes()
	t.mu.RUnlock()
	predCols := pred.Columns()
	if predCols == nil {
		for _, c := range full {
			predCols = append(predCols, c.Name)
		}
	}
	var buf []byte
	readCol := func(bi int, c Column) (*Vector, error) {
		rows := p.meta.blocks[bi].rows
		switch {
		case c.Name == ColTenantID:
			return constStrVec(ws.id, rows), nil
		case c.Name == ColType:
			return constStrVec(t.name, rows), nil
		}
		k := p.meta.cols.Index(c.Name)
		if k < 0 || classOf(p.meta.cols[k].Type) != classOf(c.Type) {
			return nullVec(c.Type, rows), nil
		}
		v, nb, err := p.readChunk(bi, k, db.dec, buf)
		buf = nb
		if err != nil {
			return nil, err
		}
		if v.Type != c.Type { // an int column widened to long, and the like
			w := cloneEmpty(c.Type)
			appendVec(w, 0, v, 0, rows, nil)
			v = w
		}
		return v, nil
	}
	// Pass 1: which rows match, reading only the predicate's columns.
	masks := make([][]bool, len(p.meta.blocks))
	matched := 0
	for bi, bm := range p.meta.blocks {
		b := &Batch{Len: bm.rows}
		for _, name := range predCols {
			c := full[full.Index(name)]
			v, err := readCol(bi, c)
			if err != nil {
				return 0, false, err
			}
			b.Schema = append(b.Schema, c)
			b.Cols = append(b.Cols, v)
		}
		m, err := pred.Match(b)
		if err != nil {
			return 0, false, fmt.Errorf("purge predicate: %w", err)
		}
		if len(m) != bm.rows {
			return 0, false, fmt.Errorf("purge predicate returned %d results for %d rows", len(m), bm.rows)
		}
		for _, x := range m {
			if x {
				matched++
			}
		}
		masks[bi] = m
	}
	if matched == 0 {
		return 0, false, nil
	}
	// Pass 2: copy the rows that stay into a new part.
	var np *part
	if kept := p.meta.rows - matched; kept > 0 {
		vecs := make([]*Vector, len(storage))
		for j, c := range storage {
			vecs[j] = cloneEmpty(c.Type)
		}
		n := 0
		var idx []int32
		for bi, bm := range p.meta.blocks {
			idx = idx[:0]
			for i, x := range masks[bi] {
				if !x {
					idx = append(idx, int32(i))
				}
			}
			if len(idx) == 0 {
				continue
			}
			for j, c := range storage {
				v, err := readCol(bi, c)
				if err != nil {
					return 0, false, err
				}
				appendVec(vecs[j], n, v, 0, bm.rows, idx)
			}
			n += len(idx)
		}
		var err error
		np, err = writePart(ctx, partWriteSpec{
			wsID: ws.id, keys: ws.keys.Load(), table: t.name, dir: t.dir, incarnation: inc,
			day: p.meta.day, walSeq: p.meta.walSeq, replaces: []string{p.id}, schema: storage, vecs: vecs, n: n,
			blockRows: db.opts.BlockRows, enc: db.enc,
		})
		if err != nil {
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
	return matched, np != nil, nil
}
