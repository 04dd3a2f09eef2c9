package store

import (
	"slices"
	"sync"
	"unsafe"
)

// Decoded-chunk cache. A warm query of a part's block would otherwise read,
// authenticate, decrypt, decompress and decode every chunk it needs again,
// which is most of the CPU of a scan-heavy query. The cache keeps decoded
// chunks of narrow columns (at most cacheMaxRowBytes per row: numbers, times,
// dictionary-encoded and other short strings; not free text) of live parts
// only, up to Options.ReadCacheBytes in all (0, the default, turns it off):
//   - a chunk read by a query enters on its second read (a one-off scan costs
//     no packing); a chunk of a column the cache already holds for the table
//     also enters when a flush or a re-encoding merge writes it (admitFresh:
//     the newest rows are what dashboards and alert rules read next), and the
//     entries of the parts a copy merge combines move to the merged part
//     (rekey), whose blocks are the same bytes;
//   - when full, a new chunk replaces old ones chosen by a generalized CLOCK:
//     every entry has a use count (0..cacheMaxRef) that a hit raises and the
//     clock hand lowers as it passes; the hand evicts the first entry whose
//     count is 0. Chunks read again and again (the last minutes, which every
//     rule and dashboard reads) keep counts above 0; chunks read by a scan
//     once in a while are evicted first. A chunk read by a query replaces
//     that entry only if it was read more often (admit: aged read counts),
//     so queries cycling over more than the cache holds keep a stable share
//     cached instead of evicting each chunk before its next read. The cache
//     never holds more than its limit, and entries not read for a while
//     leave before it is full (ageLocked);
//   - entries of a part that is obsolete (merged away, purged, its table or
//     workspace dropped) or released (its key destroyed) are dropped at the
//     next query of the DB (sweep) or when the hand meets them, and no entry
//     is added for such a part;
//   - a workspace whose key refuses loses its entries at its next query, and
//     its queries fail before reading anything (Querier checks the key first).
//
// Chunks are kept packed outside the Go heap (chunkcache_pack.go: a cache
// in the heap slowed queries that did not use it) and a get of such an entry
// copies it into a new vector, so a reader owns what it gets. An evicted
// chunk's region is unmapped by its cleanup once no get is copying it.
//
// Chunks without a string per row (numbers, times, booleans, dictionary
// codes with their dictionary) are kept in a small heap tier instead
// (heapTierLimit: a quarter of the cache, at most 64 MiB): admitted there
// on their second read while it has room (put: the query's decoded slices,
// no copy), or moved there from off the heap when read again
// (heapPromoteFreq). A hit on such an entry hands out the cached slices
// themselves (sharedVec: a new header, capped slices; a codes-only reader
// gets no copy at all, a reader wanting Str gets a new Str), which the
// query may keep, as it keeps any vector of a Stable batch — readers never
// modify those — and the collector keeps alive as long as it does. Without
// it every hit of a warm query copied its times and codes onto the heap
// (~585 KB of a last-hour query's ~0.9 MB). A heap entry is charged twice
// its bytes to the cache's bound (the collector lets garbage grow by as
// much as the live heap: GOGC=100), and entries leave the tier as they
// leave the cache. Its slices hold no pointers but for the dictionaries',
// so the collector hardly scans it.

const cacheMaxRowBytes = 40

// cacheMaxRef is the highest use count of an entry: an entry not read again
// survives that many passes of the clock hand after its last read.
const cacheMaxRef = 3

type chunkID struct{ block, col int32 }

// cachedChunk is one entry of the cache: v off the heap, or hv in the
// heap tier.
type cachedChunk struct {
	v     *packedChunk // chunkcache_pack.go: no string header per row; nil when hv is set
	hv    *Vector      // heap tier: immutable, handed out by sharedVec (see heapTierLimit)
	bytes int64
	p     *part
	id    chunkID
	ref   uint8 // use count, see cacheMaxRef
	freq  uint8 // reads (aged), see admit
	slot  int   // index in chunkCache.ring
}

// colKey names a column of a table, for the per-column entry counts that
// decide fresh admission.
type colKey struct{ ws, table, col string }

// chunkCache is the decoded-chunk cache of one DB; the zero value is empty
// and ready. Safe for concurrent use.
type chunkCache struct {
	limit int64 // bytes; 0: off (set once by Open)
	mu    sync.Mutex
	parts map[*part]map[chunkID]*cachedChunk
	bytes int64
	seen  map[seenKey]uint8 // reads of chunks not cached (aged; admit)
	reads int               // reads since the last aging (age)

	// The clock: every entry has a slot; removed entries leave nil holes
	// until compact. New entries take the slot the hand last freed (just
	// behind the hand: a full turn before it is examined) or go last.
	ring     []*cachedChunk
	hand     int
	holes    int
	lastFree int
	cols     map[colKey]int32 // entries per column of a table

	heapBytes int64 // the heap tier's vectors (vectorBytes; charged twice to bytes)

	st CacheStats
}

// Heap tier (see the package comment above chunkCache): an entry moves into
// it on a hit that brings its read count to heapPromoteFreq, if it fits the
// tier's bound and, at twice its size, the cache's without evicting.
const (
	heapPromoteFreq = 3
	heapTierMax     = 64 << 20
)

// heapTierLimit is the bound of the heap tier: a quarter of the cache's
// limit (charged twice: half the bound), at most heapTierMax. The tier's
// memory counts in the collector's heap goal, so a large cache keeps the
// rest off the heap.
func (c *chunkCache) heapTierLimit() int64 { return min(c.limit/4, heapTierMax) }

// heapCharge is what an entry of the heap tier holding hv counts against
// the cache's bound: twice the vector (its share of the heap goal) and the
// entry.
func heapCharge(hv *Vector) int64 { return 2*vectorBytes(hv) + 160 }

// CacheStats counts what the decoded-chunk cache did since Open.
type CacheStats struct {
	Hits      uint64 // chunks a query got from the cache
	Misses    uint64 // chunks a query decoded from a part file (cache on)
	Admitted  uint64 // chunks added after their second read
	Fresh     uint64 // chunks added as a flush or a re-encoding merge wrote them
	Rekeyed   uint64 // entries moved to the part a copy merge wrote
	Evictions uint64 // entries evicted to make room (not counting dead parts')
	Rejected  uint64 // chunks read twice but not added: read less than the entry they would evict
	Expired   uint64 // entries removed after a period without a read (ageLocked)
	Promoted  uint64 // entries moved into the heap tier (hits on them copy nothing)
	Entries   uint64 // chunks cached now
	Bytes     uint64 // their memory now (heap tier entries counted twice)
	HeapBytes uint64 // the heap tier's vectors now
	Limit     uint64 // the configured bound
}

// stats returns the cache's counters and size.
func (c *chunkCache) stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.st
	s.Entries = uint64(len(c.ring) - c.holes)
	s.Bytes = uint64(c.bytes)
	s.HeapBytes = uint64(c.heapBytes)
	s.Limit = uint64(max(c.limit, 0))
	return s
}

// get returns a vector with a cached chunk's values, or nil; with
// codesOnly a dictionary chunk comes back codes-only. The vector's header
// is new; its slices are new, or the heap tier's (capped; never to be
// modified). A hit raises the entry's use count, and may move the entry
// into the heap tier.
func (c *chunkCache) get(p *part, block, col int, codesOnly bool) *Vector {
	if c.limit <= 0 {
		return nil
	}
	c.mu.Lock()
	e, ok := c.parts[p][chunkID{int32(block), int32(col)}]
	var pc *packedChunk
	var hv *Vector
	promote := false
	if ok {
		pc, hv = e.v, e.hv
		if e.ref < cacheMaxRef {
			e.ref++
		}
		if e.freq < cacheMaxFreq {
			e.freq++
		}
		promote = hv == nil && e.freq >= heapPromoteFreq && pc.heapable() &&
			c.heapBytes+pc.bytes() <= c.heapTierLimit()
		c.st.Hits++
		c.ageLocked()
	} else {
		c.st.Misses++
	}
	c.mu.Unlock()
	switch {
	case !ok:
		return nil
	case hv != nil:
		return tierVec(hv, codesOnly)
	case promote:
		hv = pc.unpack(true)
		c.promote(e, pc, hv)
		return tierVec(hv, codesOnly)
	}
	return pc.unpack(codesOnly)
}

// promote moves entry e, whose chunk pc was unpacked into hv (codes-only
// for a dictionary), into the heap tier if it is still cached as pc and hv
// fits the tier and, charged twice, the cache without evicting. Its region
// is unmapped once no get is copying it.
func (c *chunkCache) promote(e *cachedChunk, pc *packedChunk, hv *Vector) {
	hb, charge := vectorBytes(hv), heapCharge(hv)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.v != pc || c.parts[e.p][e.id] != e ||
		c.heapBytes+hb > c.heapTierLimit() || c.bytes-e.bytes+charge > c.limit {
		return
	}
	c.bytes += charge - e.bytes
	c.heapBytes += hb
	e.v, e.hv, e.bytes = nil, hv, charge
	c.st.Promoted++
}

// tierVec returns what a get of heap tier vector hv hands out: its slices
// in a new header (sharedVec), and for a reader that wants Str of a
// dictionary chunk a new Str beside the shared Dict and Codes.
func tierVec(hv *Vector, codesOnly bool) *Vector {
	v := sharedVec(hv)
	if v.CodesOnly() && !codesOnly {
		v.Str = make([]string, len(v.Codes))
		for i, k := range v.Codes {
			v.Str[i] = v.Dict[k]
		}
	}
	return v
}

// cacheEstimate returns the bytes a chunk of v is counted as while it is
// decided whether it may enter, and whether it is narrow enough to be
// cached at all (at most cacheMaxRowBytes a row).
func cacheEstimate(v *Vector) (int64, bool) {
	rows := max(v.Len(), 1)
	est := vectorBytes(v) // at least the packed size: 16 bytes a string header, 4 packed
	if v.CodesOnly() {
		// Counted as if decoded with Str, so a chunk is admitted alike
		// whichever reader decoded it.
		est += int64(len(v.Codes)) * 16
	}
	return est, est <= int64(rows)*cacheMaxRowBytes
}

// put adds a decoded chunk and reports whether v is now shared (cached):
// the caller must then hand out v's slices only in new headers (sharedVec)
// and never modify them. A chunk is admitted on its second read only, and
// into a full cache only past admit's frequency filter; it evicts what the
// clock hand finds unused. A chunk without a string per row enters the
// heap tier as it is (v's slices, no copy) while the tier has room, any
// other off the heap (packed).
func (c *chunkCache) put(p *part, block, col int, v *Vector) bool {
	if c.limit <= 0 {
		return false
	}
	est, ok := cacheEstimate(v)
	if !ok {
		return false
	}
	id := chunkID{int32(block), int32(col)}
	freq, ok := c.admit(p, id, est)
	if !ok {
		return false
	}
	hv := tierForm(v)
	var hb, n int64
	if hv != nil {
		hb, n = vectorBytes(hv), heapCharge(hv)
		c.mu.Lock()
		if c.heapBytes+hb > c.heapTierLimit() {
			hv = nil
		}
		c.mu.Unlock()
	}
	var pc *packedChunk
	if hv == nil {
		if pc, ok = packChunk(v); !ok {
			return false
		}
		n = pc.bytes()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p.obsolete.Load() || p.refs.Load() <= 0 {
		return false
	}
	if _, ok := c.parts[p][id]; ok {
		return false // another query decoded it at the same time
	}
	if hv != nil && c.heapBytes+hb > c.heapTierLimit() {
		return false // another query filled the tier meanwhile
	}
	if !c.makeRoomLocked(n) {
		return false
	}
	c.insertLocked(&cachedChunk{v: pc, hv: hv, bytes: n, p: p, id: id, freq: freq})
	c.st.Admitted++
	return true
}

// tierForm returns the heap tier's vector of decoded chunk v, sharing its
// slices: v in a new header, a dictionary chunk codes-only (Dict and
// Codes; a reader wanting Str gets one built, see tierVec); nil for a
// chunk with a string per row (plain strings, decimals' text), which stays
// off the heap.
func tierForm(v *Vector) *Vector {
	switch {
	case v.Codes != nil && v.Dict != nil && (v.Str == nil || len(v.Str) == len(v.Codes)):
		hv := sharedVec(v)
		hv.Str = nil
		return hv
	case v.Str != nil || v.Dict != nil || v.Codes != nil:
		return nil
	}
	return sharedVec(v)
}

// insertLocked adds e (not yet in the cache; room made) with use count 0.
func (c *chunkCache) insertLocked(e *cachedChunk) {
	if c.parts == nil {
		c.parts = map[*part]map[chunkID]*cachedChunk{}
		c.cols = map[colKey]int32{}
	}
	m := c.parts[e.p]
	if m == nil {
		m = map[chunkID]*cachedChunk{}
		c.parts[e.p] = m
	}
	m[e.id] = e
	if c.lastFree >= 0 && c.lastFree < len(c.ring) && c.ring[c.lastFree] == nil {
		e.slot = c.lastFree
		c.ring[e.slot] = e
		c.holes--
	} else {
		e.slot = len(c.ring)
		c.ring = append(c.ring, e)
	}
	c.lastFree = -1
	c.bytes += e.bytes
	if e.hv != nil {
		c.heapBytes += vectorBytes(e.hv)
	}
	c.cols[c.colKeyOf(e.p, e.id)]++
}

func (c *chunkCache) colKeyOf(p *part, id chunkID) colKey {
	return colKey{p.wsID, p.table, p.meta.cols[id.col].Name}
}

// removeLocked takes e out of the cache.
func (c *chunkCache) removeLocked(e *cachedChunk) {
	m := c.parts[e.p]
	delete(m, e.id)
	if len(m) == 0 {
		delete(c.parts, e.p)
	}
	c.ring[e.slot] = nil
	c.holes++
	c.bytes -= e.bytes
	if e.hv != nil {
		c.heapBytes -= vectorBytes(e.hv)
	}
	k := c.colKeyOf(e.p, e.id)
	if c.cols[k]--; c.cols[k] <= 0 {
		delete(c.cols, k)
	}
}

// makeRoomLocked evicts entries until n more bytes fit, and reports whether
// they do. Entries of dead parts go as the hand meets them; a live entry
// with a use count above 0 loses one and stays. Every step removes an entry
// or lowers a count, so a call ends within cacheMaxRef+1 turns.
func (c *chunkCache) makeRoomLocked(n int64) bool {
	if n > c.limit {
		return false
	}
	for c.bytes+n > c.limit {
		if len(c.ring) == c.holes {
			return false // nothing left to evict (cannot happen: bytes > 0)
		}
		if v := c.victimLocked(); v != nil {
			c.removeLocked(v)
			c.lastFree = c.hand
			c.hand++
			c.st.Evictions++
		}
	}
	c.compactLocked()
	return true
}

// compactLocked closes the ring's holes once they are more than half of it.
func (c *chunkCache) compactLocked() {
	if c.holes < 64 || c.holes*2 < len(c.ring) {
		return
	}
	ring := make([]*cachedChunk, 0, len(c.ring)-c.holes)
	hand := 0
	for i, e := range c.ring {
		if i == c.hand {
			hand = len(ring)
		}
		if e != nil {
			e.slot = len(ring)
			ring = append(ring, e)
		}
	}
	c.ring, c.hand, c.holes, c.lastFree = ring, hand, 0, -1
}

// seenKey names a chunk by part address and position (a reused
// address at worst credits a chunk with reads of another).
type seenKey struct {
	part uintptr
	id   chunkID
}

// maxSeen bounds the chunks remembered as read but not cached (~10 MB).
const maxSeen = 1 << 18

// cacheMaxFreq caps the read counts of admit's frequency filter.
const cacheMaxFreq = 15

// admit reports whether a chunk of about est bytes may be packed and added,
// and its read count. It counts the read; a chunk is admitted on its second
// read (a one-off query costs no packing) if its part is live and it is not
// cached. When the cache is full it must also have been read more often
// than the entry the clock hand would evict next (TinyLFU's filter, with
// counts halved every 16 reads per entry so that they follow the load):
// without it, queries cycling over more chunks than the cache holds would
// evict every chunk before its next read and pack chunks for nothing (the
// old rule, nothing added once full, kept a stable share; this keeps one
// too, and still lets chunks read more often than the cached ones in).
func (c *chunkCache) admit(p *part, id chunkID, est int64) (uint8, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p.obsolete.Load() || p.refs.Load() <= 0 || est > c.limit {
		return 0, false
	}
	if _, ok := c.parts[p][id]; ok {
		return 0, false
	}
	k := seenKey{uintptr(unsafe.Pointer(p)), id}
	if c.seen == nil || len(c.seen) >= maxSeen {
		c.seen = map[seenKey]uint8{}
	}
	n := c.seen[k]
	if n < cacheMaxFreq {
		n++
	}
	c.seen[k] = n
	c.ageLocked()
	if n < 2 {
		return n, false
	}
	for c.bytes+est > c.limit {
		v := c.victimLocked()
		if v == nil {
			continue // a dead part's entry went; look again
		}
		if n <= v.freq {
			c.st.Rejected++
			return n, false
		}
		break
	}
	delete(c.seen, k)
	return n, true
}

// victimLocked moves the clock hand to the entry it would evict next and
// returns it; on the way it lowers use counts, and removes an entry of a
// dead part and returns nil. The cache must not be empty.
func (c *chunkCache) victimLocked() *cachedChunk {
	for {
		if c.hand >= len(c.ring) {
			c.hand = 0
		}
		e := c.ring[c.hand]
		switch {
		case e == nil:
		case e.p.obsolete.Load() || e.p.refs.Load() <= 0:
			c.removeLocked(e)
			c.lastFree = c.hand
			c.hand++
			return nil
		case e.ref > 0:
			e.ref--
		default:
			return e
		}
		c.hand++
	}
}

// ageLocked counts a read and, every 16 reads per cached chunk (at least
// 4096), halves every read count, so admit compares recent popularity, and
// removes the entries whose count was already 0: not read during a whole
// period (an entry admitted on its second read goes after three periods
// without a read, a fresh one after two). So the cache holds what queries
// re-read — the windows of rules and dashboards move on with the clock —
// rather than filling to its limit with rows nobody asks for any more (in a
// soak the cache would otherwise grow for as long as the table does).
func (c *chunkCache) ageLocked() {
	c.reads++
	if c.reads < 16*max(len(c.ring)-c.holes, 256) {
		return
	}
	c.reads = 0
	for _, e := range c.ring {
		switch {
		case e == nil:
		case e.freq == 0:
			c.removeLocked(e)
			c.st.Expired++
		default:
			e.freq /= 2
		}
	}
	c.compactLocked()
	for k, n := range c.seen {
		if n /= 2; n == 0 {
			delete(c.seen, k)
		} else {
			c.seen[k] = n
		}
	}
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
		c.removeLocked(e)
	}
	c.compactLocked()
}

// rekey moves the entries of the parts a copy merge combined (from, in the
// order copyBlocks copied them) to the merged part np: block b of from[i] is
// block b + (blocks of from[:i]) of np, and a column keeps its name (its
// index may differ if the schema grew). An entry whose column np lacks or
// holds with another type, or whose block does not line up, is dropped.
// Called by the merge once np has replaced the old parts in the table.
func (c *chunkCache) rekey(np *part, from []*part) {
	if c.limit <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	base := 0
	for _, p := range from {
		base += len(p.meta.blocks)
	}
	aligned := base == len(np.meta.blocks)
	dead := np.obsolete.Load() || np.refs.Load() <= 0
	base = 0
	for _, p := range from {
		for id, e := range c.parts[p] {
			old := p.meta.cols[id.col]
			k := np.meta.cols.Index(old.Name)
			nb := base + int(id.block)
			if dead || !aligned || k < 0 || np.meta.cols[k].Type != old.Type ||
				np.meta.blocks[nb].rows != p.meta.blocks[id.block].rows {
				c.removeLocked(e)
				continue
			}
			nid := chunkID{int32(nb), int32(k)}
			if _, ok := c.parts[np][nid]; ok {
				c.removeLocked(e)
				continue
			}
			delete(c.parts[p], id)
			e.p, e.id = np, nid
			m := c.parts[np]
			if m == nil {
				m = map[chunkID]*cachedChunk{}
				c.parts[np] = m
			}
			m[nid] = e
			c.st.Rekeyed++
		}
		if len(c.parts[p]) == 0 {
			delete(c.parts, p)
		}
		base += len(p.meta.blocks)
	}
	c.compactLocked()
}

// freshColumns reports, per column of schema, whether blocks of a table's
// new part should enter the cache as they are written: the cache is on and
// holds chunks of that column of the table (queries read it), and the type
// is one packFresh handles. nil: none.
func (c *chunkCache) freshColumns(wsID, table string, schema Schema) []bool {
	if c.limit <= 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []bool
	for j, col := range schema {
		if c.cols[colKey{wsID, table, col.Name}] > 0 && freshType(col.Type) {
			if out == nil {
				out = make([]bool, len(schema))
			}
			out[j] = true
		}
	}
	return out
}

// freshChunk is a chunk packed by a flush or a re-encoding merge as it wrote
// block block (see partWriteSpec.cacheCols).
type freshChunk struct {
	block, col int
	v          *packedChunk
}

// admitFresh adds the chunks a flush or merge packed for its new part p,
// each with use count 0, evicting as put does. A chunk already cached (a
// query got there first) is kept.
func (c *chunkCache) admitFresh(p *part, chunks []freshChunk) {
	if c.limit <= 0 || len(chunks) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p.obsolete.Load() || p.refs.Load() <= 0 {
		return
	}
	for _, fc := range chunks {
		id := chunkID{int32(fc.block), int32(fc.col)}
		if _, ok := c.parts[p][id]; ok {
			continue
		}
		n := fc.v.bytes()
		if !c.makeRoomLocked(n) {
			return
		}
		c.insertLocked(&cachedChunk{v: fc.v, bytes: n, p: p, id: id, freq: 1})
		c.st.Fresh++
	}
}

// freshType reports whether packFresh packs a column of type t the way a
// read of the part decodes it: numbers, times, booleans, plain strings.
// Decimals (text kept beside the float), GUIDs and dynamics are left to
// admission on a second read.
func freshType(t ColumnType) bool {
	switch t {
	case TypeBool, TypeInt, TypeLong, TypeDatetime, TypeTimespan, TypeReal, TypeString:
		return true
	}
	return false
}

// addFresh packs block vector v of column j of a part being written for
// the chunk cache (eb.packs) when the write asks for that column
// (partWriteSpec.cacheCols); raw is the column encoding the block encoder
// has just made of v (before compression), whose dictionary packFresh takes
// instead of building its own.
func (eb *encodedBlock) addFresh(s *partWriteSpec, j int, v *Vector, raw []byte) {
	if j >= len(s.cacheCols) || !s.cacheCols[j] {
		return
	}
	if pc, ok := packFresh(v, s.cacheMax, raw); ok {
		if eb.packs == nil {
			eb.packs = make([]*packedChunk, len(eb.chunks))
		}
		eb.packs[j] = pc
	}
}

// packFresh packs block vector v of a part being written (a view of the
// memtable or of a merge's rows) as a read of the written chunk would decode
// it: no null flags when nothing is null, and strings as a dictionary (codes
// only: unpack builds Str for a reader that wants it) when the encoder made
// one. raw, if not nil, is the encoder's column encoding of v: a dictionary
// string chunk is then decoded from it (its dictionary and packed codes,
// several times cheaper than hashing every row again, and exactly what a
// read decodes); without it packFresh builds the dictionary the encoder
// would (buildDict). ok is false for a type freshType refuses or a chunk
// too wide or too large for the cache.
func packFresh(v *Vector, limit int64, raw []byte) (*packedChunk, bool) {
	if !freshType(v.Type) {
		return nil, false
	}
	n := v.Len()
	w := &Vector{Type: v.Type, Int: v.Int, Real: v.Real, Bool: v.Bool}
	if slices.Contains(v.Nulls, true) {
		w.Nulls = v.Nulls
	}
	switch {
	case v.Type != TypeString:
	case len(raw) > 0 && raw[0]&colFlagDict != 0:
		d := decoder{b: raw}
		dv, err := decodeColumnCodes(&d, TypeString, n, true)
		if err != nil || len(d.b) != 0 || !dv.CodesOnly() {
			return nil, false // cannot happen: the encoder just wrote it
		}
		w = dv
	default:
		strs := v.Str
		if strs == nil && v.Codes != nil { // codes-only
			strs = make([]string, len(v.Codes))
			for i, c := range v.Codes {
				strs[i] = v.Dict[c]
			}
		}
		w.Str = strs
		if raw == nil {
			if d, codes, ok := buildDict(strs); ok {
				w.Str, w.Dict, w.Codes = nil, d, codes
			}
		}
	}
	if w.Len() != n {
		return nil, false
	}
	est, ok := cacheEstimate(w)
	if !ok || est > limit {
		return nil, false
	}
	return packChunk(w)
}

// buildDict returns the distinct values of ss in order of first use and each
// row's code, when they fit in the dictionary the part encoder would give
// the chunk (dictLimit).
func buildDict(ss []string) (dict []string, codes []uint32, ok bool) {
	if len(ss) == 0 {
		return nil, nil, false
	}
	limit := dictLimit(ss)
	idx := make(map[string]uint32, min(limit, 1024))
	codes = make([]uint32, len(ss))
	for i, s := range ss {
		c, seen := idx[s]
		if !seen {
			if len(dict) >= limit {
				return nil, nil, false
			}
			c = uint32(len(dict))
			idx[s] = c
			dict = append(dict, s)
		}
		codes[i] = c
	}
	return dict, codes, true
}

// size returns the number of cached chunks and their bytes.
func (c *chunkCache) size() (chunks int, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ring) - c.holes, c.bytes
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

// ReadCacheStats returns the decoded-chunk cache's counters and size
// (Options.ReadCacheBytes).
func (db *DB) ReadCacheStats() CacheStats { return db.rcache.stats() }
