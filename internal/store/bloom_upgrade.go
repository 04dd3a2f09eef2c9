package store

import (
	"context"
	"fmt"
	"slices"
)

// UpgradeParts rewrites every part of part meta version 1 (blooms in the
// footer) in the current format (bloom sections, see bloom.go) and returns
// how many it rewrote. Version-1 parts answer queries correctly as they are,
// but the first term-hint query of each (and each after its blooms left the
// cache) reads and decodes its whole footer again; a rewritten part reads one
// small section per column. A rewrite copies the blocks as a merge does (one
// AES-GCM open and seal of the compressed bytes, no decoding), under a new
// part key, and replaces the old part as a merge does: crash-safe (the new
// part names the old one it replaces), queries meanwhile keep the old part.
// Merges upgrade the parts they combine anyway; this is for data that will
// not be merged again (days at their final part count). Runs under the merge
// lock.
func (db *DB) UpgradeParts(ctx context.Context) (int, error) {
	db.mergeMu.Lock()
	defer db.mergeMu.Unlock()
	n := 0
	for _, ws := range db.openWorkspaces() {
		if _, err := ws.requireKeys(ctx); err != nil {
			continue // upgraded once the key is back
		}
		for _, t := range ws.tableList() {
			t.mu.RLock()
			var old []*part
			for _, ps := range t.parts {
				for _, p := range ps {
					if p.meta.ver == partMetaVer1 {
						old = append(old, p)
					}
				}
			}
			t.mu.RUnlock()
			for _, p := range old {
				if err := ctx.Err(); err != nil {
					return n, err
				}
				done, err := db.upgradePart(ctx, ws, t, p)
				if err != nil {
					db.reportCorruption(err)
					db.quarantineFromErr(ctx, t, err, "merge")
					return n, fmt.Errorf("upgrade part %s of %s: %w", p.id, t.name, err)
				}
				if done {
					n++
				}
			}
		}
	}
	return n, nil
}

// upgradePart rewrites p by copying its blocks (a merge of one part) and
// puts the new part in its place; false if p left the table meanwhile.
func (db *DB) upgradePart(ctx context.Context, ws *workspace, t *table, p *part) (bool, error) {
	t.mu.RLock()
	storage := t.storage
	inc := t.meta.incarnationBytes()
	live := !t.dropped && slices.Contains(t.parts[p.meta.day], p)
	if live {
		p.acquire()
	}
	t.mu.RUnlock()
	if !live {
		return false, nil
	}
	defer p.release()
	np, err := writePart(ctx, partWriteSpec{
		wsID: ws.id, keys: ws.keys.Load(), table: t.name, dir: t.dir, incarnation: inc,
		day: p.meta.day, walSeq: p.meta.walSeq, replaces: []string{p.id}, schema: storage, n: p.meta.rows,
		from: []*part{p}, enc: db.enc,
	})
	if err != nil {
		return false, err
	}
	t.mu.Lock()
	cur := t.parts[p.meta.day]
	i := slices.Index(cur, p)
	if t.dropped || i < 0 { // dropped, expired, merged or purged meanwhile
		t.mu.Unlock()
		np.obsolete.Store(true)
		np.release()
		return false, nil
	}
	next := slices.Clone(cur)
	next[i] = np
	t.parts[p.meta.day] = next
	t.mu.Unlock()
	p.obsolete.Store(true)
	p.release() // the table's reference; the file goes when the last reader is done
	return true, nil
}
