package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"slices"
	"time"
)

// mergeLoop runs merges until ctx is cancelled, on its own goroutine: a
// merge of MaxMergeRows rows takes seconds (minutes on a busy machine), and
// flushes must go on meanwhile, or commits wait for memtable room (throttle).
// A merge encodes on one goroutine, leaving the other CPUs to ingestion and
// flushes.
//
// A merge that fails for lack of space (ENOSPC, EDQUOT) is not tried again
// at the next tick but after a pause that doubles from mergeNoSpaceBackoff
// up to maxMergeNoSpaceBackoff while the failures go on: each attempt reads
// and decodes up to MaxMergeRows rows before its write fails, and writes
// until the filesystem is full, which takes the last free bytes from the
// WAL's appends for a moment. The first merge after the pause resets it.
func (db *DB) mergeLoop(ctx context.Context) {
	defer db.bgDone.Done()
	tick := time.NewTicker(db.opts.MaintenanceInterval)
	defer tick.Stop()
	var pause time.Duration
	var resume time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if time.Now().Before(resume) {
			continue
		}
		err := db.Merge(ctx)
		switch {
		case err == nil:
			pause = 0
		case ctx.Err() != nil:
			return
		case isNoSpace(err):
			pause = nextMergePause(pause)
			resume = time.Now().Add(pause)
			db.log.Error("store merge failed for lack of space; retrying later", slog.String("error", err.Error()),
				slog.Duration("retry_in", pause))
		default:
			db.log.Error("store merge failed", slog.String("error", err.Error()))
		}
	}
}

// The pause of the merge loop after merges failing for lack of space.
const (
	mergeNoSpaceBackoff    = 5 * time.Second
	maxMergeNoSpaceBackoff = time.Minute
)

// nextMergePause doubles the pause after another merge failed for lack of
// space, from mergeNoSpaceBackoff up to maxMergeNoSpaceBackoff.
func nextMergePause(cur time.Duration) time.Duration {
	return min(max(2*cur, mergeNoSpaceBackoff), maxMergeNoSpaceBackoff)
}

// background runs flushes and retention until ctx is cancelled.
func (db *DB) background(ctx context.Context) {
	defer db.bgDone.Done()
	tick := time.NewTicker(db.opts.MaintenanceInterval)
	defer tick.Stop()
	var lastRetention time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-db.nudge:
		}
		now := db.opts.Now()
		for _, ws := range db.openWorkspaces() {
			if ctx.Err() != nil {
				return
			}
			oldest := ws.oldestMem.Load()
			if ws.memBytes.Load() >= db.opts.MemtableBytes ||
				oldest != 0 && now.Sub(time.Unix(0, oldest)) >= db.opts.MaxMemtableAge {
				if err := ws.flush(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, ErrKeyUnavailable) {
					db.log.Error("store flush failed", slog.String("workspace_id", ws.id), slog.String("error", err.Error()))
				}
			}
		}
		if now.Sub(lastRetention) >= db.opts.RetentionInterval {
			lastRetention = now
			if err := db.EnforceRetention(ctx); err != nil && ctx.Err() == nil {
				db.log.Error("store retention failed", slog.String("error", err.Error()))
			}
		}
	}
}

func (db *DB) openWorkspaces() []*workspace {
	db.mu.RLock()
	defer db.mu.RUnlock()
	out := make([]*workspace, 0, len(db.workspaces))
	for _, ws := range db.workspaces {
		out = append(out, ws)
	}
	return out
}

func (ws *workspace) tableList() []*table {
	ws.mu.RLock()
	defer ws.mu.RUnlock()
	out := make([]*table, 0, len(ws.tables))
	for _, t := range ws.tables {
		out = append(out, t)
	}
	return out
}

// Flush writes every memtable to parts and deletes the WAL segments they
// covered. It runs in the background on its own; tests and shutdown call it.
func (db *DB) Flush(ctx context.Context) error {
	var errs []error
	for _, ws := range db.openWorkspaces() {
		if err := ws.flush(ctx); err != nil {
			errs = append(errs, fmt.Errorf("workspace %s: %w", ws.id, err))
		}
	}
	return errors.Join(errs...)
}

// rowsPerBlock picks the block size: BlockRows, fewer for wide rows so a
// block stays near 4 MiB before compression.
func (db *DB) rowsPerBlock(m *memPart) int {
	n := db.opts.BlockRows
	if m.n > 0 && m.bytes > 0 {
		per := m.bytes / int64(m.n)
		if per > 0 {
			n = min(n, max(1024, int(4<<20/per)))
		}
	}
	return n
}

func (ws *workspace) flush(ctx context.Context) error {
	ws.flushMu.Lock()
	defer ws.flushMu.Unlock()
	if ws.pending {
		return nil
	}
	// While the customer-managed key refuses nothing is written: the rows
	// stay in the memtable and the WAL until it is restored.
	if _, err := ws.requireKeys(ctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	ws.gate.Lock()
	if ws.dropped || ws.wal == nil {
		ws.gate.Unlock()
		return nil
	}
	tables := ws.tableList()
	empty := true
	for _, t := range tables {
		t.mu.RLock()
		if len(t.mem) > 0 || len(t.frozen) > 0 {
			empty = false
		}
		t.mu.RUnlock()
	}
	if empty {
		ws.gate.Unlock()
		return nil
	}
	seq, err := ws.wal.rotate(ctx)
	if err != nil {
		ws.gate.Unlock()
		return fmt.Errorf("flush: %w", err)
	}
	for _, t := range tables {
		t.mu.Lock()
		for _, m := range t.mem {
			m.seq = seq
			t.frozen = append(t.frozen, m)
		}
		t.mem = make(map[int64]*memPart)
		t.mu.Unlock()
	}
	ws.oldestMem.Store(0)
	ws.gate.Unlock()

	var errs []error
	remaining := false
	for _, t := range tables {
		t.mu.RLock()
		frozen := slices.Clone(t.frozen)
		t.mu.RUnlock()
		for _, m := range frozen {
			if err := ws.flushMem(ctx, t, m); err != nil {
				errs = append(errs, err)
				remaining = true
			}
		}
	}
	if remaining {
		ws.retryFlushSoon()
		return errors.Join(errs...)
	}
	return ws.wal.deleteOld(seq)
}

// flushRetryDelay is how soon the background loop retries a flush that
// froze memtables and could not write all of their parts (a full disk).
const flushRetryDelay = 5 * time.Second

// retryFlushSoon makes the background loop retry the flush within
// flushRetryDelay even if no row arrives: the freeze cleared oldestMem, and
// frozen memtables would otherwise wait in memory (their WAL kept) for the
// next commit or the shutdown. It marks the oldest unflushed row as due.
func (ws *workspace) retryFlushSoon() {
	due := ws.db.opts.Now().Add(flushRetryDelay - ws.db.opts.MaxMemtableAge).UnixNano()
	for {
		cur := ws.oldestMem.Load()
		if cur != 0 && cur <= due || ws.oldestMem.CompareAndSwap(cur, due) {
			return
		}
	}
}

// flushMem writes one frozen memtable as a part and swaps it in.
func (ws *workspace) flushMem(ctx context.Context, t *table, m *memPart) error {
	t.mu.RLock()
	if t.dropped {
		t.mu.RUnlock()
		return nil
	}
	v := m.view()
	inc := t.meta.incarnationBytes()
	t.mu.RUnlock()
	if v.n == 0 {
		t.mu.Lock()
		t.frozen = slices.DeleteFunc(t.frozen, func(x *memPart) bool { return x == m })
		t.mu.Unlock()
		return nil
	}
	// The blocks of columns that queries of the table read through the
	// chunk cache enter it as they are written (chunkcache.go: admitFresh).
	var fresh []freshChunk
	p, err := writePart(ctx, partWriteSpec{
		wsID: ws.id, keys: ws.keys.Load(), table: t.name, dir: t.dir, incarnation: inc,
		day: m.day, walSeq: m.seq, schema: v.schema, vecs: v.columns(), n: v.n,
		blockRows: ws.db.rowsPerBlock(m), enc: ws.db.enc, encFast: ws.db.encFast,
		cacheCols: ws.db.rcache.freshColumns(ws.id, t.name, v.schema), cacheMax: ws.db.rcache.limit, fresh: &fresh,
	})
	if err != nil {
		return fmt.Errorf("flush table %s: %w", t.name, err)
	}
	ws.db.rcache.admitFresh(p, fresh)
	t.mu.Lock()
	if t.dropped {
		t.mu.Unlock()
		p.obsolete.Store(true)
		p.release()
		return nil
	}
	t.frozen = slices.DeleteFunc(t.frozen, func(x *memPart) bool { return x == m })
	t.parts[m.day] = append(t.parts[m.day], p)
	t.mu.Unlock()
	ws.memBytes.Add(-m.bytes)
	ws.db.m.flushes.Add(1)
	return nil
}

// Merge combines the parts of every table and day that has more than
// MaxPartsPerDay parts, smallest first, up to MaxMergeRows rows per merge.
// Ingestion and queries continue meanwhile; open Queriers keep the old parts.
func (db *DB) Merge(ctx context.Context) error {
	db.mergeMu.Lock()
	defer db.mergeMu.Unlock()
	var errs []error
	for _, ws := range db.openWorkspaces() {
		for _, t := range ws.tableList() {
			t.mu.RLock()
			var days []int64
			for day, ps := range t.parts {
				if len(ps) > db.opts.MaxPartsPerDay {
					days = append(days, day)
				}
			}
			t.mu.RUnlock()
			for _, day := range days {
				if err := ctx.Err(); err != nil {
					return err
				}
				if err := db.mergeDay(ctx, ws, t, day); err != nil {
					db.reportCorruption(err)
					db.quarantineFromErr(ctx, t, err, "merge")
					errs = append(errs, fmt.Errorf("merge %s day %d: %w", t.name, day, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

func (db *DB) mergeDay(ctx context.Context, ws *workspace, t *table, day int64) error {
	if _, err := ws.requireKeys(ctx); err != nil {
		return nil // merged once the key is back
	}
	t.mu.RLock()
	cands := slices.Clone(t.parts[day])
	storage := t.storage
	inc := t.meta.incarnationBytes()
	dropped := t.dropped
	t.mu.RUnlock()
	if dropped || len(cands) < 2 {
		return nil
	}
	pick := pickMerge(cands, max(db.opts.MaxPartsPerDay, 2), db.opts.MaxMergeRows)
	if len(pick) < 2 {
		return nil
	}
	rows := 0
	for _, p := range pick {
		rows += p.meta.rows
	}
	t.mu.RLock()
	for _, p := range pick {
		p.acquire()
	}
	t.mu.RUnlock()
	defer func() {
		for _, p := range pick {
			p.release()
		}
	}()

	var walSeq uint64
	var ids []string
	for _, p := range pick {
		walSeq = max(walSeq, p.meta.walSeq)
		ids = append(ids, p.id)
	}
	var np *part
	var err error
	var fresh []freshChunk // blocks of a re-encoding merge packed for the chunk cache
	copied := db.copyMergeable(pick)
	start := time.Now()
	if copied {
		np, err = writePart(ctx, partWriteSpec{
			wsID: ws.id, keys: ws.keys.Load(), table: t.name, dir: t.dir, incarnation: inc,
			day: day, walSeq: walSeq, replaces: ids, schema: storage, n: rows, from: pick, enc: db.enc,
		})
	} else {
		np, err = db.reencodeMerge(ctx, ws, t, day, pick, storage, inc, rows, walSeq, ids, &fresh)
	}
	if err != nil {
		return err
	}
	t.mu.Lock()
	cur := t.parts[day]
	present := !t.dropped
	for _, p := range pick {
		if !slices.Contains(cur, p) {
			present = false
		}
	}
	if !present { // dropped or expired meanwhile
		t.mu.Unlock()
		np.obsolete.Store(true)
		np.release()
		return nil
	}
	t.parts[day] = append(slices.DeleteFunc(slices.Clone(cur), func(p *part) bool { return slices.Contains(pick, p) }), np)
	t.mu.Unlock()
	if copied {
		// The merged part's blocks are the old parts' chunks: their cache
		// entries move to it instead of leaving with the old parts.
		db.rcache.rekey(np, pick)
	}
	db.rcache.admitFresh(np, fresh)
	for _, p := range pick {
		p.obsolete.Store(true)
		p.release() // the table's reference; the file goes when the last reader is done
	}
	db.m.merges.Add(1)
	db.logMerge(ws, t, day, pick, np, copied, time.Since(start))
	return nil
}

// logMerge reports a merge: at Info when it re-encoded its rows (it
// tokenized, compressed and built blooms for every row again, which costs
// about 50 times a copying merge), at Debug when it copied blocks.
func (db *DB) logMerge(ws *workspace, t *table, day int64, pick []*part, np *part, copied bool, took time.Duration) {
	level, msg := slog.LevelInfo, "store merge re-encoded parts"
	if copied {
		level, msg = slog.LevelDebug, "store merge copied parts"
	}
	db.log.LogAttrs(context.Background(), level, msg, slog.String("workspace_id", ws.id), slog.String("table", t.name),
		slog.String("day", TimeFromTicks(day*TicksPerDay).Format("2006-01-02")), slog.Int("parts", len(pick)),
		slog.Int("rows", np.meta.rows), slog.Int("blocks", len(np.meta.blocks)), slog.Duration("took", took))
}

// copyMergeable reports whether a merge of parts may copy their blocks (see
// copyBlocks) rather than decode and re-encode the rows: when blocks of fewer
// than min(1024, BlockRows) rows hold at most an eighth of the rows. Flushes
// of a busy table make full blocks and one partial block per part, so their
// merges copy; a quiet table's flushes make tiny blocks, which a re-encoding
// merge combines into full ones (cheap, as they are small).
func (db *DB) copyMergeable(pick []*part) bool {
	small := min(1024, db.opts.BlockRows)
	total, inSmall := 0, 0
	for _, p := range pick {
		for _, b := range p.meta.blocks {
			total += b.rows
			if b.rows < small {
				inSmall += b.rows
			}
		}
	}
	return total > 0 && inSmall*8 <= total
}

// reencodeMerge decodes the rows of pick and writes them as one new part,
// sorted by TimeGenerated and cut into blocks afresh.
func (db *DB) reencodeMerge(ctx context.Context, ws *workspace, t *table, day int64, pick []*part, storage Schema, inc [16]byte, rows int, walSeq uint64, ids []string, fresh *[]freshChunk) (*part, error) {
	vecs := make([]*Vector, len(storage))
	for i, c := range storage {
		vecs[i] = emptyVecCap(c.Type, rows)
	}
	n := 0
	var buf []byte
	for _, p := range pick {
		for bi, bm := range p.meta.blocks {
			for j, c := range storage {
				k := p.meta.cols.Index(c.Name)
				if k < 0 || classOf(p.meta.cols[k].Type) != classOf(c.Type) {
					appendNulls(vecs[j], n, bm.rows)
					continue
				}
				v, nb, err := p.readChunk(bi, k, db.dec, buf)
				buf = nb
				if err != nil {
					return nil, err
				}
				appendVec(vecs[j], n, v, 0, bm.rows, nil)
			}
			n += bm.rows
		}
	}
	m := &memPart{n: n, bytes: 0}
	for j := range storage {
		m.bytes += estimateBytes(vecs[j], 0, n)
	}
	return writePart(ctx, partWriteSpec{
		wsID: ws.id, keys: ws.keys.Load(), table: t.name, dir: t.dir, incarnation: inc,
		day: day, walSeq: walSeq, replaces: ids, schema: storage, vecs: vecs, n: n,
		blockRows: db.rowsPerBlock(m), enc: db.enc, encFast: db.encFast, workers: 1,
		cacheCols: db.rcache.freshColumns(ws.id, t.name, storage), cacheMax: db.rcache.limit, fresh: fresh,
	})
}

// pickMerge chooses the parts of one day to merge. A day of more than fanout
// parts and at most maxRows rows is merged whole. Larger days are merged
// size-tiered: parts fall
// into tiers by the base-4 logarithm of their row counts, and a merge combines
// at least fanout parts of the lowest tier that has that many, smallest first,
// up to maxRows rows in all (bigger parts are not merged). So a row is
// rewritten about log4(part size / flush size) times rather than on every
// merge, and a merge's memory stays bounded by maxRows. It returns nil when no
// tier has enough parts.
func pickMerge(cands []*part, fanout, maxRows int) []*part {
	slices.SortFunc(cands, func(a, b *part) int { return a.meta.rows - b.meta.rows })
	// A day small enough to merge whole is merged whole once it has more than
	// fanout parts: small tables keep one part per day.
	total := 0
	for _, p := range cands {
		total += p.meta.rows
	}
	if len(cands) > fanout && total <= maxRows {
		return cands
	}
	tier := func(p *part) int { return bits.Len(uint(p.meta.rows)) / 2 }
	for i := 0; i < len(cands); {
		j := i
		for j < len(cands) && tier(cands[j]) == tier(cands[i]) {
			j++
		}
		k, rows := i, 0
		for k < j && rows+cands[k].meta.rows <= maxRows {
			rows += cands[k].meta.rows
			k++
		}
		if k-i >= fanout {
			return cands[i:k]
		}
		i = j
	}
	return nil
}

// EnforceRetention deletes the day partitions of every table whose rows are
// all older than the table's retention, measured with Options.Now.
func (db *DB) EnforceRetention(ctx context.Context) error {
	now := db.opts.Now()
	for _, ws := range db.openWorkspaces() {
		for _, t := range ws.tableList() {
			if err := ctx.Err(); err != nil {
				return err
			}
			var expired []*part
			t.mu.Lock()
			cut := retentionCutoff(now, t.meta.RetentionDays)
			for day, ps := range t.parts {
				if day < cut {
					expired = append(expired, ps...)
					delete(t.parts, day)
				}
			}
			for day, m := range t.mem {
				if day < cut {
					ws.memBytes.Add(-m.bytes)
					delete(t.mem, day)
				}
			}
			t.mu.Unlock()
			for _, p := range expired {
				p.obsolete.Store(true)
				p.release()
				db.m.partsExpired.Add(1)
			}
			if len(expired) > 0 {
				db.log.Info("store retention dropped parts", slog.String("workspace_id", ws.id),
					slog.String("table", t.name), slog.Int("parts", len(expired)))
			}
		}
	}
	return nil
}
