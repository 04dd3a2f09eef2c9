package store

import (
	"math/rand/v2"
	"sync"
)

// bloomCache keeps loaded bloom sections (bloom.go) of live parts for the
// term hints of queries, up to limit bytes in all; when full, a section
// chosen at random leaves for a new one. Random rather than least recently
// used: a needle over a time window whose sections exceed the cache (a whole
// table, the last week) reads them in the same order every time, which
// under LRU evicts each section just before it is needed again (no hit at
// all), while random replacement keeps about the cache's share of them
// cached; a small hot set (dashboards over the last hour) stays anyway, as
// its sections are reloaded at once when evicted. Sections live outside the Go heap (offheap, like the decoded-chunk
// cache, and for the same reason: memory the collector neither scans nor
// counts in its heap goal), so the cache costs the Go heap a small entry per
// section whatever its limit. A section is loaded once however many queries
// ask for it at the same time (the others wait for the first). Entries of
// parts that are obsolete (merged away, purged, dropped) or released go at
// the next Querier (sweep) or when evicted; a workspace whose key refuses
// loses its entries (dropWorkspace). Safe for concurrent use; the zero value
// with a limit set is ready.
type bloomCache struct {
	limit int64 // bytes; <= 0: nothing is kept (every lookup loads)
	mu    sync.Mutex
	m     map[bloomKey]*bloomEntry
	kept  []*bloomEntry // the loaded entries, for picking one at random
	bytes int64
	// loads counts sections read from part files (for tests and stats).
	loads int64
}

type bloomKey struct {
	p   *part
	col int
}

type bloomEntry struct {
	key   bloomKey
	ready chan struct{} // closed once bb/err are set
	bb    *bloomBlock
	err   error
	bytes int64
	idx   int // in kept; -1 until loaded and kept, and once removed
}

// get returns the bloom section of column col of p, loading it if needed;
// nil when the column has no blooms. The caller may use it until it drops
// the pointer.
func (c *bloomCache) get(p *part, col int) (*bloomBlock, error) {
	if c.limit <= 0 {
		c.mu.Lock()
		c.loads++
		c.mu.Unlock()
		return p.loadBloom(col)
	}
	k := bloomKey{p, col}
	c.mu.Lock()
	if e, ok := c.m[k]; ok {
		c.mu.Unlock()
		<-e.ready
		return e.bb, e.err
	}
	if c.m == nil {
		c.m = map[bloomKey]*bloomEntry{}
	}
	e := &bloomEntry{key: k, ready: make(chan struct{}), idx: -1}
	c.m[k] = e
	c.loads++
	c.mu.Unlock()

	e.bb, e.err = p.loadBloom(col)

	c.mu.Lock()
	switch {
	case e.err != nil:
		delete(c.m, k) // a later query tries again (the part is quarantined meanwhile)
	case p.obsolete.Load() || p.refs.Load() <= 0:
		delete(c.m, k)
	default:
		if e.bb != nil {
			e.bytes = e.bb.bytes()
		} else {
			e.bytes = 64
		}
		e.idx = len(c.kept)
		c.kept = append(c.kept, e)
		c.bytes += e.bytes
		for c.bytes > c.limit && len(c.kept) > 0 {
			v := c.kept[rand.IntN(len(c.kept))]
			if v == e && len(c.kept) > 1 {
				continue // another goes first; e leaves only if alone and too big
			}
			c.removeLocked(v)
		}
	}
	c.mu.Unlock()
	close(e.ready)
	return e.bb, e.err
}

func (c *bloomCache) removeLocked(e *bloomEntry) {
	if e.idx >= 0 {
		last := c.kept[len(c.kept)-1]
		c.kept[e.idx], last.idx = last, e.idx
		c.kept[len(c.kept)-1] = nil
		c.kept = c.kept[:len(c.kept)-1]
		e.idx = -1
		c.bytes -= e.bytes
	}
	if c.m[e.key] == e {
		delete(c.m, e.key)
	}
}

// sweep drops the entries of parts that are obsolete or released.
func (c *bloomCache) sweep() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.m {
		if e.idx >= 0 && (k.p.obsolete.Load() || k.p.refs.Load() <= 0) {
			c.removeLocked(e)
		}
	}
}

// dropWorkspace drops the entries of every part of workspace wsID.
func (c *bloomCache) dropWorkspace(wsID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.m {
		if e.idx >= 0 && k.p.wsID == wsID {
			c.removeLocked(e)
		}
	}
}

// stats returns the number of kept sections, their bytes and the sections
// loaded from part files so far.
func (c *bloomCache) stats() (sections int, bytes, loads int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.kept), c.bytes, c.loads
}
