package store

import (
	"sync"
	"unsafe"
)

// Decoded-chunk cache. A warm query of a part's block would otherwise read,
// authenticate, decrypt, decompress and decode every chunk it needs again,
// which is most of the CPU of a scan-heavy query. The cache keeps decoded
// chunks of narrow columns (at most cacheMaxRowBytes per row: numbers, times,
// dictionary-encoded and other short strings; not free text) of live parts
// only, up to Options.ReadCacheBytes in all (0, the default, turns it off):
//   - entries of a part that is obsolete (merged away, purged, its table or
//     workspace dropped) or released (its key destroyed) are dropped at the
//     next query of the DB (sweep), and no entry is added for such a part;
//   - a workspace whose key refuses loses its entries at its next query, and
//     its queries fail before reading anything (Querier checks the key first);
//   - once full, nothing more is added until dead parts free room (a scan
//     pattern larger than the cache then keeps a stable share cached instead
//     of evicting what the next query needs first).
//
// Chunks are kept packed outside the Go heap (chunkcache_pack.go: a cache
// in the heap slowed queries that did not use it) and every get copies one
// into a new vector, so a reader owns what it gets. A chunk decoded by a
// query and added to the cache is still handed to that query (as sharedVec:
// capped slices), and batches of part blocks report Stable.

const cacheMaxRowBytes = 40

type chunkID struct{ block, col int32 }

type cachedChunk struct {
	v     *packedChunk // chunkcache_pack.go: no string header per row
	bytes int64
}

// chunkCache is the decoded-chunk cache of one DB; the zero value is empty
// and ready. Safe for concurrent use.
type chunkCache struct {
	limit int64 // bytes; 0: off (set once by Open)
	mu    sync.Mutex
	parts map[*part]map[chunkID]cachedChunk
	bytes int64
	seen  map[seenKey]struct{} // chunks read once since (admit)
}

// get returns a new vector with a cached chunk's values, or nil; with
// codesOnly a dictionary chunk comes back codes-only.
func (c *chunkCache) get(p *part, block, col int, codesOnly bool) *Vector {
	c.mu.Lock()
	e, ok := c.parts[p][chunkID{int32(block), int32(col)}]
	c.mu.Unlock()
	if ok {
		return e.v.unpack(codesOnly)
	}
	return nil
}

// put adds a decoded chunk and reports whether v is now shared (cached).
// A chunk is admitted on its second read only: a scan larger than the
// cache or a one-off query then costs no packing, and once the cache is
// full a chunk costs one map lookup.
func (c *chunkCache) put(p *part, block, col int, v *Vector) bool {
	if c.limit <= 0 {
		return false
	}
	rows := max(v.Len(), 1)
	est := vectorBytes(v) // at least the packed size: 16 bytes a string header, 4 packed
	if v.CodesOnly() {
		// Counted as if decoded with Str, so a chunk is admitted alike
		// whichever reader decoded it.
		est += int64(len(v.Codes)) * 16
	}
	if est > int64(rows)*cacheMaxRowBytes {
		return false
	}
	id := chunkID{int32(block), int32(col)}
	if !c.admit(p, id, est) {
		return false
	}
	pc, ok := packChunk(v)
	if !ok {
		return false
	}
	n := pc.bytes()
	c.mu.Lock()
	defer c.mu.Unlock()
	if p.obsolete.Load() || p.refs.Load() <= 0 || c.bytes+n > c.limit {
		return false
	}
	if c.parts == nil {
		c.parts = map[*part]map[chunkID]cachedChunk{}
	}
	m := c.parts[p]
	if m == nil {
		m = map[chunkID]cachedChunk{}
		c.parts[p] = m
	}
	if _, ok := m[id]; ok {
		return false // another query decoded it at the same time
	}
	m[id] = cachedChunk{v: pc, bytes: n}
	c.bytes += n
	return true
}

// seenKey names a chunk read once; the part is by address only (a reused
// address at worst admits a chunk one read early).
type seenKey struct {
	part uintptr
	id   chunkID
}

// maxSeen bounds the chunks remembered as read once (~10 MB).
const maxSeen = 1 << 18

// admit reports whether a chunk of about est bytes may be packed and added:
// it was read before, is not cached, its part is live and it fits.
func (c *chunkCache) admit(p *part, id chunkID, est int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p.obsolete.Load() || p.refs.Load() <= 0 {
		return false
	}
	if _, ok := c.parts[p][id]; ok {
		return false
	}
	if c.bytes+est > c.limit {
		c.sweepLocked()
		if c.bytes+est > c.limit {
			return false
		}
	}
	k := seenKey{uintptr(unsafe.Pointer(p)), id}
	if _, ok := c.seen[k]; !ok {
		if c.seen == nil || len(c.seen) >= maxSeen {
			c.seen = map[seenKey]struct{}{}
		}
		c.seen[k] = struct{}{}
		return false
	}
	delete(c.seen, k)
	return true
}

// sharedVec returns a new header for cached vector v whose slices end at
// their length, so that neither a change of the header nor an append by a
// reader reaches the cached vector.
func sharedVec(v *Vector) *Vector {
	c := *v
	c.Int = c.Int[:len(c.Int):len(c.Int)]
	c.Real = c.Real[:len(c.Real):len(c.Real)]
	c.Bool = c.Bool[:len(c.Bool):len(c.Bool)]
	c.Nulls = c.Nulls[:len(c.Nulls):len(c.Nulls)]
	c.Str = c.Str[:len(c.Str):len(c.Str)]
	c.Dict = c.Dict[:len(c.Dict):len(c.Dict)]
	c.Codes = c.Codes[:len(c.Codes):len(c.Codes)]
	return &c
}

// sweep drops the entries of parts that are obsolete or released.
func (c *chunkCache) sweep() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweepLocked()
}

func (c *chunkCache) sweepLocked() {
	for p := range c.parts {
		if p.obsolete.Load() || p.refs.Load() <= 0 {
			c.dropLocked(p)
		}
	}
}

// dropWorkspace drops the entries of every part of workspace wsID.
func (c *chunkCache) dropWorkspace(wsID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for p := range c.parts {
		if p.wsID == wsID {
			c.dropLocked(p)
		}
	}
}

func (c *chunkCache) dropLocked(p *part) {
	for _, e := range c.parts[p] {
		c.bytes -= e.bytes
	}
	delete(c.parts, p)
}

// size returns the number of cached chunks and their bytes.
func (c *chunkCache) size() (chunks int, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.parts {
		chunks += len(m)
	}
	return chunks, c.bytes
}

// vectorBytes estimates the memory of a decoded vector: its slices, string
// headers and string bytes (a dictionary's entries once).
func vectorBytes(v *Vector) int64 {
	n := int64(len(v.Int))*8 + int64(len(v.Real))*8 + int64(len(v.Bool)) + int64(len(v.Nulls)) +
		int64(len(v.Codes))*4 + int64(len(v.Str))*16
	if v.Dict != nil {
		n += int64(len(v.Dict)) * 16
		for _, s := range v.Dict {
			n += int64(len(s))
		}
		return n
	}
	for _, s := range v.Str {
		n += int64(len(s))
	}
	return n
}
