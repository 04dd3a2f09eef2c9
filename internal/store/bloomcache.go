package store

import (
	"container/list"
	"sync"
)

// bloomCache keeps loaded bloom sections (bloom.go) of live parts for the
// term hints of queries, up to limit bytes in all, least recently used out
// first. Sections live outside the Go heap (offheap, like the decoded-chunk
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
	lru   list.List // of *bloomEntry, most recent at the front
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
	elem  *list.Element // nil until loaded and kept
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
		if e.elem != nil {
			c.lru.MoveToFront(e.elem)
		}
		c.mu.Unlock()
		<-e.ready
		return e.bb, e.err
	}
	if c.m == nil {
		c.m = map[bloomKey]*bloomEntry{}
	}
	e := &bloomEntry{key: k, ready: make(chan struct{})}
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
		e.elem = c.lru.PushFront(e)
		c.bytes += e.bytes
		for c.bytes > c.limit && c.lru.Len() > 0 {
			c.removeLocked(c.lru.Back().Value.(*bloomEntry))
		}
	}
	c.mu.Unlock()
	close(e.ready)
	return e.bb, e.err
}

func (c *bloomCache) removeLocked(e *bloomEntry) {
	if e.elem != nil {
		c.lru.Remove(e.elem)
		e.elem = nil
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
		if e.elem != nil && (k.p.obsolete.Load() || k.p.refs.Load() <= 0) {
			c.removeLocked(e)
		}
	}
}

// dropWorkspace drops the entries of every part of workspace wsID.
func (c *bloomCache) dropWorkspace(wsID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.m {
		if e.elem != nil && k.p.wsID == wsID {
			c.removeLocked(e)
		}
	}
}

// stats returns the number of kept sections, their bytes and the sections
// loaded from part files so far.
func (c *bloomCache) stats() (sections int, bytes, loads int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len(), c.bytes, c.loads
}
