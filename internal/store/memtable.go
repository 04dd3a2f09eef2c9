package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
	"unsafe"
)

// memSegRows bounds the rows of one memtable segment. Segments never grow
// past it, so a busy memtable is a list of fixed-size column segments rather
// than one ever-growing slice per column that append copies on every growth,
// and a query task covers one segment.
const memSegRows = 16384

// memSeg is a run of rows of a memPart in columnar form. Rows are only
// appended; readers take views of the first n rows, which no writer touches
// again.
type memSeg struct {
	vecs []*Vector // aligned with memPart.schema
	n    int
}

// memPart holds the committed, not yet flushed rows of one table and day, as
// a list of segments. Guarded by the table's mu.
type memPart struct {
	day        int64
	schema     Schema // storage columns; grows when the table gains columns
	segs       []*memSeg
	n          int
	minT, maxT int64
	bytes      int64
	seq        uint64 // once frozen: the WAL seq its part will record
}

func newMemPart(day int64, storage Schema) *memPart {
	return &memPart{day: day, schema: append(Schema(nil), storage...)}
}

// newSeg starts a segment. The first segment of a memPart grows as rows
// come (a table that gets a few rows should not hold a full segment); later
// ones are allocated at full size at once.
func (m *memPart) newSeg() *memSeg {
	sg := &memSeg{vecs: make([]*Vector, len(m.schema))}
	capRows := 0
	if len(m.segs) > 0 {
		capRows = memSegRows
	}
	for i, c := range m.schema {
		sg.vecs[i] = emptyVecCap(c.Type, capRows)
	}
	m.segs = append(m.segs, sg)
	return sg
}

// extend adds the columns of storage that m lacks, as nulls.
func (m *memPart) extend(storage Schema) {
	for _, c := range storage {
		if m.schema.Index(c.Name) < 0 {
			m.schema = append(m.schema, c)
			for _, sg := range m.segs {
				sg.vecs = append(sg.vecs, nullVec(c.Type, sg.n))
			}
		}
	}
}

// appendRows appends the rows idx (all rows if nil) of a batch of n rows in
// the given schema; columns m has and the batch lacks become null.
func (m *memPart) appendRows(schema Schema, vecs []*Vector, n int, idx []int32) {
	k := n
	if idx != nil {
		k = len(idx)
	}
	src := make([]int, len(m.schema))
	for j, c := range m.schema {
		si := schema.Index(c.Name)
		if si >= 0 && classOf(schema[si].Type) != classOf(c.Type) {
			si = -1
		}
		src[j] = si
	}
	tcol := m.schema.Index(ColTimeGenerated)
	for done := 0; done < k; {
		var sg *memSeg
		if len(m.segs) > 0 && m.segs[len(m.segs)-1].n < memSegRows {
			sg = m.segs[len(m.segs)-1]
		} else {
			sg = m.newSeg()
		}
		take := min(k-done, memSegRows-sg.n)
		lo, hi := done, done+take
		var sub []int32
		if idx != nil {
			sub = idx[lo:hi]
		}
		for j, dst := range sg.vecs {
			if src[j] < 0 {
				appendNulls(dst, sg.n, take)
				continue
			}
			appendVec(dst, sg.n, vecs[src[j]], lo, hi, sub)
			m.bytes += estimateBytes(dst, sg.n, sg.n+take)
		}
		for i, t := range sg.vecs[tcol].Int[sg.n : sg.n+take] {
			if m.n == 0 && done == 0 && i == 0 {
				m.minT, m.maxT = t, t
			}
			m.minT, m.maxT = min(m.minT, t), max(m.maxT, t)
		}
		sg.n += take
		m.n += take
		done += take
	}
}

// memView is a read-only snapshot of a memPart's first n rows.
type memView struct {
	day        int64
	schema     Schema
	segs       []memSegView
	n          int
	minT, maxT int64
}

// memSegView is a read-only snapshot of a segment's first n rows.
type memSegView struct {
	vecs []*Vector
	n    int
}

func (m *memPart) view() memView {
	v := memView{day: m.day, schema: append(Schema(nil), m.schema...), n: m.n, minT: m.minT, maxT: m.maxT}
	v.segs = make([]memSegView, 0, len(m.segs))
	for _, sg := range m.segs {
		if sg.n == 0 {
			continue
		}
		sv := memSegView{vecs: make([]*Vector, len(sg.vecs)), n: sg.n}
		for i, x := range sg.vecs {
			sv.vecs[i] = viewVec(x, 0, sg.n)
		}
		v.segs = append(v.segs, sv)
	}
	return v
}

// columns returns the view's rows as one vector per column (a part write
// needs them contiguous). A single segment is returned without copying;
// otherwise the values are copied once (strings by reference).
func (v *memView) columns() []*Vector {
	out := make([]*Vector, len(v.schema))
	if len(v.segs) == 1 {
		copy(out, v.segs[0].vecs)
		return out
	}
	for j, c := range v.schema {
		dst := emptyVecCap(c.Type, v.n)
		have := 0
		for _, sg := range v.segs {
			appendVec(dst, have, sg.vecs[j], 0, sg.n, nil)
			have += sg.n
		}
		out[j] = dst
	}
	return out
}

func dayOf(ticks int64) int64 {
	d := ticks / TicksPerDay
	if ticks%TicksPerDay < 0 {
		d--
	}
	return d
}

// insertRows adds a committed batch to the table's memtable, split by day.
// keep, if not nil, filters days (replay skips flushed and expired ones). It
// returns the bytes added. The caller holds t.mu.
func (t *table) insertRows(schema Schema, vecs []*Vector, n int, keep func(day int64) bool) int64 {
	if n == 0 {
		return 0
	}
	times := vecs[schema.Index(ColTimeGenerated)].Int
	d0 := dayOf(times[0])
	var groups map[int64][]int32
	for i := 1; i < n; i++ {
		if dayOf(times[i]) != d0 {
			groups = make(map[int64][]int32)
			for j := range n {
				d := dayOf(times[j])
				groups[d] = append(groups[d], int32(j))
			}
			break
		}
	}
	if groups == nil {
		groups = map[int64][]int32{d0: nil}
	}
	var added int64
	for day, idx := range groups {
		if keep != nil && !keep(day) {
			continue
		}
		m := t.mem[day]
		if m == nil {
			m = newMemPart(day, t.storage)
			t.mem[day] = m
		}
		before := m.bytes
		m.appendRows(schema, vecs, n, idx)
		added += m.bytes - before
	}
	return added
}

func (ws *workspace) noteMem(added int64) {
	if added == 0 {
		return
	}
	ws.memBytes.Add(added)
	ws.oldestMem.CompareAndSwap(0, ws.db.opts.Now().UnixNano())
	if ws.memBytes.Load() >= ws.db.opts.MemtableBytes {
		select {
		case ws.db.nudge <- struct{}{}:
		default:
		}
	}
}

// retentionCutoff returns the first day that retention keeps, or MinInt64.
func retentionCutoff(now time.Time, days int) int64 {
	if days <= 0 {
		return -1 << 62
	}
	return dayOf(TicksFromTime(now) - int64(days)*TicksPerDay)
}

// replayWAL re-inserts the records that are in the WAL but not in parts,
// drops a torn tail, and starts a fresh segment.
func (ws *workspace) replayWAL(ctx context.Context) error {
	dir := filepath.Join(ws.dir, "wal")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	seqs, err := listSegments(dir)
	if err != nil {
		return err
	}
	var maxSeq uint64
	covered := make(map[*table]map[int64]uint64)
	cutoff := make(map[*table]int64)
	for _, t := range ws.tables {
		c := make(map[int64]uint64)
		for day, ps := range t.parts {
			for _, p := range ps {
				c[day] = max(c[day], p.meta.walSeq)
				maxSeq = max(maxSeq, p.meta.walSeq)
			}
		}
		covered[t] = c
		cutoff[t] = retentionCutoff(ws.db.opts.Now(), t.meta.RetentionDays)
	}
	var segs []*walSegment
	var added int64
	for i, first := range seqs {
		path := segmentPath(dir, first)
		seg, validLen, err := readSegment(ctx, path, ws.id, ws.keys.Load(), func(seq uint64, payload []byte) error {
			rec, err := decodeWALRecord(payload)
			if err != nil {
				return &CorruptionError{Path: path, Block: -1, Err: fmt.Errorf("record %d: %w", seq, err)}
			}
			t := ws.tables[rec.table]
			if t == nil || t.meta.incarnationBytes() != rec.incarnation {
				return nil // the table was dropped
			}
			if rec.schema.Index(ColTimeGenerated) < 0 || rec.schema[rec.schema.Index(ColTimeGenerated)].Type != TypeDatetime {
				return &CorruptionError{Path: path, Block: -1, Err: fmt.Errorf("record %d lacks TimeGenerated", seq)}
			}
			c, cut := covered[t], cutoff[t]
			added += t.insertRows(rec.schema, rec.vecs, rec.n, func(day int64) bool {
				return day >= cut && seq > c[day]
			})
			return nil
		})
		switch {
		case err == nil:
		case errors.Is(err, errTorn) && i == len(seqs)-1:
			if seg == nil {
				ws.db.log.Warn("removing WAL segment with a torn header", slog.String("path", path))
				if err := os.Remove(path); err != nil {
					return err
				}
				continue
			}
			ws.db.log.Warn("dropping torn WAL tail", slog.String("path", path), slog.Int64("offset", validLen), slog.String("reason", err.Error()))
			if err := os.Truncate(path, validLen); err != nil {
				return fmt.Errorf("truncate torn WAL tail: %w", err)
			}
		case errors.Is(err, errTorn):
			err = &CorruptionError{Path: path, Block: -1, Err: err}
			fallthrough
		default:
			ws.db.reportCorruption(err)
			return fmt.Errorf("replay WAL: %w", err)
		}
		if seg.lastSeq < seg.firstSeq { // no records: nothing to keep
			seg.key.Destroy()
			if err := os.Remove(path); err != nil {
				return err
			}
			continue
		}
		segs = append(segs, seg)
		maxSeq = max(maxSeq, seg.lastSeq)
	}
	ws.wal = &wal{wsID: ws.id, dir: dir, keys: &ws.keys, log: ws.db.log, m: &ws.db.m, old: segs, next: maxSeq + 1}
	cur, err := ws.wal.createSegment(ctx, maxSeq+1)
	if err != nil {
		return err
	}
	ws.wal.cur = cur
	ws.wal.written = maxSeq
	ws.wal.publish()
	ws.wal.synced.Store(maxSeq)
	if added == 0 {
		return ws.wal.deleteOld(maxSeq)
	}
	ws.noteMem(added)
	return nil
}

// appender buffers rows for one table until Commit.
type appender struct {
	db     *DB
	t      *table
	schema Schema // the table's storage schema when the appender started
	full   Schema
	vecs   []*Vector
	n      int
	done   bool
}

// Appender starts a write batch for a table created by EnsureTable.
func (db *DB) Appender(ctx context.Context, ref TableRef) (Appender, error) {
	t, err := db.lookupTable(ctx, ref)
	if err != nil {
		return nil, err
	}
	if _, err := t.ws.requireKeys(ctx); err != nil {
		return nil, err
	}
	t.mu.RLock()
	a := &appender{db: db, t: t, schema: t.storage, full: t.full}
	t.mu.RUnlock()
	a.vecs = make([]*Vector, len(a.schema))
	for i, c := range a.schema {
		a.vecs[i] = cloneEmpty(c.Type)
	}
	return a, nil
}

func compatible(table, batch ColumnType) bool {
	if table == batch {
		return true
	}
	switch table {
	case TypeLong:
		return batch == TypeInt
	case TypeReal, TypeDecimal:
		return batch == TypeReal || batch == TypeDecimal
	}
	return false
}

// OwnedAppender is implemented by the store's appenders. AppendOwned is
// Append for a batch the caller gives up: on success the appender may keep
// b's vectors (and change them) instead of copying the rows, so the caller
// must neither read nor write them afterwards, and no two columns of b may
// share a vector or its backing arrays.
type OwnedAppender interface {
	AppendOwned(b *Batch) error
}

// Append implements Appender.
func (a *appender) Append(b *Batch) error { return a.append(b, false) }

// AppendOwned implements OwnedAppender: the first batch's vectors become the
// appender's where their type is the column's (no copy of the rows).
func (a *appender) AppendOwned(b *Batch) error { return a.append(b, true) }

// adoptVec returns v ready to be the appender's vector of a column of type t
// (it holds n rows), or nil if it must be copied instead.
func adoptVec(t ColumnType, v *Vector, n int) *Vector {
	if v.Type != t || t == TypeDecimal || v.Dict != nil || v.Codes != nil {
		return nil
	}
	if v.Nulls != nil {
		if t == TypeString {
			for i, null := range v.Nulls { // a null string is the empty string
				if null {
					v.Str[i] = ""
				}
			}
			v.Nulls = nil
		} else if !slices.Contains(v.Nulls, true) {
			v.Nulls = nil
		} else {
			v.Nulls = v.Nulls[:n:n]
		}
	}
	// Clip, so later appends never write into memory the caller held.
	switch classOf(t) {
	case classBool:
		v.Bool = v.Bool[:n:n]
	case classInt:
		v.Int = v.Int[:n:n]
	case classReal:
		v.Real = v.Real[:n:n]
	default:
		v.Str = v.Str[:n:n]
	}
	return v
}

func (a *appender) append(b *Batch, owned bool) error {
	if a.done {
		return ErrAppenderDone
	}
	if b == nil || b.Len == 0 {
		return nil
	}
	if b.Len < 0 || len(b.Cols) != len(b.Schema) {
		return fmt.Errorf("%w: batch has %d columns for %d schema entries", ErrSchema, len(b.Cols), len(b.Schema))
	}
	if a.n+b.Len > maxBlockRows {
		return fmt.Errorf("%w: more than %d rows in one commit", ErrSchema, maxBlockRows)
	}
	src := make([]int, len(a.schema))
	for i := range src {
		src[i] = -1
	}
	for k, c := range b.Schema {
		v := b.Cols[k]
		if v == nil || v.Type != c.Type || v.Len() != b.Len || (v.Nulls != nil && len(v.Nulls) != b.Len) {
			return fmt.Errorf("%w: column %s: vector does not match its schema entry or the batch length", ErrSchema, c.Name)
		}
		if isStoreOwned(c.Name) {
			continue
		}
		j := a.schema.Index(c.Name)
		if j < 0 {
			return fmt.Errorf("%w: unknown column %s", ErrSchema, c.Name)
		}
		if !compatible(a.schema[j].Type, c.Type) {
			return fmt.Errorf("%w: column %s is %s, got %s", ErrSchema, c.Name, a.schema[j].Type, c.Type)
		}
		if src[j] >= 0 {
			return fmt.Errorf("%w: duplicate column %s", ErrSchema, c.Name)
		}
		src[j] = k
	}
	first := a.n == 0
	if first {
		for j, c := range a.schema { // one allocation per column for the usual single Append
			if k := src[j]; owned && k >= 0 && !slices.Contains(a.vecs[:j], b.Cols[k]) {
				if v := adoptVec(c.Type, b.Cols[k], b.Len); v != nil {
					a.vecs[j] = v
					continue
				}
			}
			a.vecs[j] = emptyVecCap(c.Type, b.Len)
		}
	}
	for j, k := range src {
		if k < 0 {
			appendNulls(a.vecs[j], a.n, b.Len)
			continue
		}
		if first && a.vecs[j] == b.Cols[k] {
			continue // adopted
		}
		appendVec(a.vecs[j], a.n, b.Cols[k], 0, b.Len, nil)
	}
	a.n += b.Len
	return nil
}

// Rollback implements Appender.
func (a *appender) Rollback() error {
	a.done = true
	a.vecs = nil
	return nil
}

// itemIDs returns n GUID-formatted IDs: 12 random bytes per commit and a
// 4-byte row counter, version 4 / variant 1 bits set.
func itemIDs(n int) ([]string, error) {
	var base [12]byte
	if _, err := io.ReadFull(rand.Reader, base[:]); err != nil {
		return nil, fmt.Errorf("generate _ItemId: %w", err)
	}
	return itemIDsFrom(base, n), nil
}

// itemIDsFrom formats the IDs of itemIDs from the commit's random bytes. The
// first 28 characters are the same for every row: they are formatted once
// and copied, and only the counter's 8 hex digits are formatted per row. The
// strings share one buffer that is never written after they are made.
func itemIDsFrom(base [12]byte, n int) []string {
	if n == 0 {
		return []string{}
	}
	base[6] = base[6]&0x0f | 0x40
	base[8] = base[8]&0x3f | 0x80
	var prefix [28]byte
	hex.Encode(prefix[0:8], base[0:4])
	prefix[8] = '-'
	hex.Encode(prefix[9:13], base[4:6])
	prefix[13] = '-'
	hex.Encode(prefix[14:18], base[6:8])
	prefix[18] = '-'
	hex.Encode(prefix[19:23], base[8:10])
	prefix[23] = '-'
	hex.Encode(prefix[24:28], base[10:12])
	const digits = "0123456789abcdef"
	buf := make([]byte, 36*n)
	for i := range n {
		o := buf[36*i : 36*i+36]
		copy(o, prefix[:])
		c := uint32(i)
		for k := 35; k >= 28; k-- {
			o[k] = digits[c&0xf]
			c >>= 4
		}
	}
	all := unsafe.String(&buf[0], len(buf))
	out := make([]string, n)
	for i := range out {
		out[i] = all[36*i : 36*i+36]
	}
	return out
}

// Commit implements Appender: it stamps the system columns, seals the rows
// into one WAL record, waits for the (shared) fsync and then makes the rows
// visible. The fsync is not abandoned when ctx is cancelled.
func (a *appender) Commit(ctx context.Context) error {
	if a.done {
		return ErrAppenderDone
	}
	a.done = true
	if a.n == 0 {
		return nil
	}
	t, ws := a.t, a.t.ws
	now := TicksFromTime(a.db.opts.Now())
	if tg := a.vecs[a.schema.Index(ColTimeGenerated)]; tg.Nulls != nil {
		for i, isNull := range tg.Nulls {
			if isNull {
				tg.Int[i] = now
			}
		}
		tg.Nulls = nil
	}
	tr := a.vecs[a.schema.Index(ColTimeReceived)]
	tr.Nulls = nil
	for i := range tr.Int {
		tr.Int[i] = now
	}
	ids, err := itemIDs(a.n)
	if err != nil {
		return err
	}
	item := a.vecs[a.schema.Index(ColItemID)]
	item.Str, item.Nulls = ids, nil

	t.mu.RLock()
	inc := t.meta.incarnationBytes()
	t.mu.RUnlock()
	rec := walRecord{table: t.name, incarnation: inc, n: a.n, schema: a.schema, vecs: a.vecs}
	var size int64 = 64
	for i, c := range a.schema {
		size += int64(len(c.Name)) + 16 + estimateBytes(a.vecs[i], 0, a.n)
	}
	// The record is encoded into a reused buffer: a fresh ~600 KB buffer per
	// commit costs page faults and zeroing on every request.
	pb := payloadPool.Get().(*[]byte)
	payload := rec.appendTo(slices.Grow((*pb)[:0], int(min(size, maxRecordBytes))))
	defer func() {
		if cap(payload) <= maxPooledFrame {
			*pb = payload[:0]
			payloadPool.Put(pb)
		}
	}()

	if _, err := ws.requireKeys(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if err := ws.throttle(ctx); err != nil {
		return err
	}
	ws.gate.RLock()
	defer ws.gate.RUnlock()
	if ws.dropped || t.dropped {
		return fmt.Errorf("commit: %w: %s", ErrTableNotFound, t.name)
	}
	seq, err := ws.wal.append(payload)
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if err := ws.wal.sync(seq); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	t.mu.Lock()
	added := t.insertRows(a.schema, a.vecs, a.n, nil)
	t.mu.Unlock()
	ws.noteMem(added)
	a.db.m.commits.Add(1)
	a.db.m.rowsCommitted.Add(uint64(a.n))
	if hook := a.db.opts.OnCommit; hook != nil { // the memtable copied the rows: hand a.vecs over
		hook(TableRef{WorkspaceID: ws.id, Table: t.name}, &Batch{Schema: append(Schema(nil), a.schema...), Cols: a.vecs, Len: a.n})
	}
	a.vecs = nil
	return nil
}

// payloadPool recycles the buffers Commit encodes WAL records into (the WAL
// is done with a record's payload when append returns).
var payloadPool = sync.Pool{New: func() any { return new([]byte) }}

// throttle makes a commit wait while the workspace's memtables hold more than
// four times MemtableBytes, that is while flushing falls behind ingestion, so
// memory stays bounded. It gives up when ctx ends.
func (ws *workspace) throttle(ctx context.Context) error {
	if ws.db.opts.DisableBackground {
		return nil
	}
	limit := 4 * ws.db.opts.MemtableBytes
	for ws.memBytes.Load() > limit {
		select {
		case ws.db.nudge <- struct{}{}:
		default:
		}
		t := time.NewTimer(5 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("commit: memtable full while flushing catches up: %w", ctx.Err())
		case <-t.C:
		}
	}
	return nil
}
