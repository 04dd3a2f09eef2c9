package engine

import (
	"hash/maphash"
	"unsafe"
)

// Hash tables for group keys and join keys. Both assign dense IDs in
// first-seen order and use open addressing with linear probing over a
// power-of-two slot array kept at most half full, so a lookup usually reads
// one or two adjacent slots and growing never re-hashes a key.
//
// Neither is safe for concurrent use.

// strTable maps strings to dense IDs. A slot packs the upper 32 bits of the
// key's 64-bit hash (the tag) with ID+1 (0 marks an empty slot). The slot
// index is the tag's top bits, so growing moves slots by their tag alone; a
// tag match is confirmed by comparing the strings, so colliding hashes only
// cost a comparison. A key of up to 15 bytes is also kept in its slot, so
// confirming it reads no other memory (high-cardinality keys such as user
// names: the stored key's header and bytes would be two more cache misses).
type strTable struct {
	slots []strSlot
	bits  uint // len(slots) == 1<<bits
	// chunks hold the keys by ID, strChunk per chunk: appending never
	// copies the keys already stored.
	chunks [][]string
	n      int
	bytes  int64 // sum of the keys' lengths
	seed   maphash.Seed
	// hashMask is ANDed into every hash: all ones, except in tests that
	// force collisions.
	hashMask uint64
	// touched sums the slots idBatch loads ahead, so that the loads are
	// kept; its value means nothing.
	touched uint64
	// pool, if not nil, supplies the slot arrays and takes them back on
	// growth and release.
	pool *slotPool
}

// strSlot is one slot of a strTable: meta is tag<<32 | ID+1 (0: empty);
// inl holds a key of up to strInline bytes with its length in inl[15], or
// strLong in inl[15] for a longer key.
type strSlot struct {
	meta uint64
	inl  [16]byte
}

const strSlotSize = int64(unsafe.Sizeof(strSlot{}))

const (
	strInline = 15
	strLong   = 0xff
)

// matches reports whether the slot's key, known to have the same tag, is s.
func (t *strTable) matches(sl *strSlot, s string) bool {
	if len(s) <= strInline {
		return sl.inl[15] == byte(len(s)) && string(sl.inl[:len(s)]) == s
	}
	return sl.inl[15] == strLong && t.key(uint32(sl.meta)-1) == s
}

func newStrTable() *strTable {
	return &strTable{slots: make([]strSlot, 16), bits: 4, seed: maphash.MakeSeed(), hashMask: ^uint64(0)}
}

const strChunkBits = 12

func (t *strTable) len() int { return t.n }

func (t *strTable) key(id uint32) string { return t.chunks[id>>strChunkBits][id&(1<<strChunkBits-1)] }

// keys returns all keys by ID, in a new slice.
func (t *strTable) keys() []string {
	out := make([]string, 0, t.n)
	for _, c := range t.chunks {
		out = append(out, c...)
	}
	return out
}

// memBytes is the table's memory: slots, string headers and string bytes.
func (t *strTable) memBytes() int64 {
	return int64(len(t.slots))*int64(unsafe.Sizeof(strSlot{})) + int64(len(t.chunks))<<strChunkBits*int64(unsafe.Sizeof("")) + t.bytes
}

func (t *strTable) tag(s string) uint32 {
	return uint32((maphash.String(t.seed, s) & t.hashMask) >> 32)
}

// find returns the ID of s, or -1.
func (t *strTable) find(s string) int32 {
	tag := t.tag(s)
	mask := uint64(len(t.slots) - 1)
	for i := uint64(tag >> (32 - t.bits)); ; i = (i + 1) & mask {
		sl := &t.slots[i]
		if sl.meta == 0 {
			return -1
		}
		if uint32(sl.meta>>32) == tag && t.matches(sl, s) {
			return int32(uint32(sl.meta) - 1)
		}
	}
}

// id returns the ID of s, adding s if it is new.
func (t *strTable) id(s string) uint32 { return t.idTagged(s, t.tag(s)) }

// strBatch is how many keys idBatch hashes, then touches, then looks up at
// a time: enough cache misses in flight to overlap, few enough that the
// touched slots are still cached when they are looked up.
const strBatch = 64

// tagAndTouch computes the tags of run into tags and loads each one's slot
// in a loop of independent reads, so that their cache misses overlap.
func (t *strTable) tagAndTouch(run []string, tags []uint32) {
	for j, s := range run {
		tags[j] = t.tag(s)
	}
	var touch uint64
	shift := 32 - t.bits
	for _, tag := range tags {
		touch += t.slots[tag>>shift].meta
	}
	t.touched += touch
}

// idBatch appends the ID of every key to out, adding new keys in order: the
// same IDs as calling id for each key in turn. On a table larger than the
// CPU caches, most lookups of a high-cardinality key are a cache miss on its
// slot; idBatch hashes a run of keys first and loads their slots in a tight
// loop of independent reads, so the CPU waits for the misses together
// instead of one after the other, then does the lookups on cached slots.
func (t *strTable) idBatch(keys []string, out []uint32) []uint32 {
	var tags [strBatch]uint32
	for len(keys) > 0 {
		run := keys[:min(len(keys), strBatch)]
		keys = keys[len(run):]
		t.tagAndTouch(run, tags[:len(run)])
		for j, s := range run {
			out = append(out, t.idTagged(s, tags[j]))
		}
	}
	return out
}

// idsDistinct is idBatch for keys known to be distinct (another table's
// keys, in a merge), sizing the table once: it looks every key up, grows
// the table to the smallest half-full size that holds the keys it lacks
// (reserve), then adds those in order — the same IDs as idBatch, with no
// fourfold growth step past the size the merge needs.
func (t *strTable) idsDistinct(keys []string, out []uint32) []uint32 {
	const absent = ^uint32(0)
	base := len(out)
	var tags [strBatch]uint32
	var missing []string
	for rest := keys; len(rest) > 0; {
		run := rest[:min(len(rest), strBatch)]
		rest = rest[len(run):]
		t.tagAndTouch(run, tags[:len(run)])
		for j, s := range run {
			id := t.findTagged(s, tags[j])
			if id < 0 {
				missing = append(missing, s)
				out = append(out, absent)
				continue
			}
			out = append(out, uint32(id))
		}
	}
	if len(missing) == 0 {
		return out
	}
	t.reserve(t.n + len(missing))
	added := t.idBatch(missing, make([]uint32, 0, len(missing)))
	k := 0
	for i := base; i < len(out); i++ {
		if out[i] == absent {
			out[i] = added[k]
			k++
		}
	}
	return out
}

// findTagged is find for a key whose tag is known.
func (t *strTable) findTagged(s string, tag uint32) int32 {
	mask := uint64(len(t.slots) - 1)
	for i := uint64(tag >> (32 - t.bits)); ; i = (i + 1) & mask {
		sl := &t.slots[i]
		if sl.meta == 0 {
			return -1
		}
		if uint32(sl.meta>>32) == tag && t.matches(sl, s) {
			return int32(uint32(sl.meta) - 1)
		}
	}
}

// reserve grows the table, in one step, to the smallest size that holds n
// keys at most half full (no fourfold step beyond it): a merge that knows
// how many keys it adds takes the size it needs instead of growing past it.
func (t *strTable) reserve(n int) {
	bits := t.bits
	for 2*n > 1<<bits {
		bits++
	}
	if bits > t.bits {
		t.rehash(bits)
	}
}

// idTagged is id for a key whose tag is known.
func (t *strTable) idTagged(s string, tag uint32) uint32 {
	mask := uint64(len(t.slots) - 1)
	i := uint64(tag >> (32 - t.bits))
	for {
		sl := &t.slots[i]
		if sl.meta == 0 {
			break
		}
		if uint32(sl.meta>>32) == tag && t.matches(sl, s) {
			return uint32(sl.meta) - 1
		}
		i = (i + 1) & mask
	}
	id := uint32(t.n)
	if t.n&(1<<strChunkBits-1) == 0 {
		t.chunks = append(t.chunks, make([]string, 0, 1<<strChunkBits))
	}
	c := &t.chunks[len(t.chunks)-1]
	*c = append(*c, s)
	t.n++
	t.bytes += int64(len(s))
	sl := &t.slots[i]
	sl.meta = uint64(tag)<<32 | uint64(id+1)
	if len(s) <= strInline {
		copy(sl.inl[:], s)
		sl.inl[15] = byte(len(s))
	} else {
		sl.inl[15] = strLong
	}
	if 2*t.n > len(t.slots) {
		t.grow()
	}
	return id
}

func (t *strTable) grow() {
	if t.bits >= 31 {
		panic("BUG: strTable beyond 2^30 keys")
	}
	// Between 4K and 1M slots the table grows fourfold: a high-cardinality
	// group-by reaches its final size with a third of the rehashing (and of
	// the fresh arrays, costly to fault in on a cold start) that doubling
	// takes, for at most twice the memory of a table of that size. Small
	// tables, and large ones where memory counts more, double.
	step := uint(1)
	if t.bits >= 12 && t.bits < 20 {
		step = 2
	}
	t.rehash(t.bits + step)
}

// rehash moves the keys into a new array of 1<<bits slots.
func (t *strTable) rehash(bits uint) {
	if bits > 31 {
		panic("BUG: strTable beyond 2^30 keys")
	}
	old := t.slots
	t.bits = bits
	t.slots = t.pool.get(t.bits)
	mask := uint64(len(t.slots) - 1)
	for j := range old {
		sl := &old[j]
		if sl.meta == 0 {
			continue
		}
		i := uint64(uint32(sl.meta>>32) >> (32 - t.bits))
		for t.slots[i].meta != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = *sl
	}
	t.pool.put(old)
}

// release gives the slot array back to the pool; the table must not be
// used for lookups afterwards (its keys stay readable).
func (t *strTable) release() {
	t.pool.put(t.slots)
	t.slots = nil
}

// intTable maps 64-bit keys to dense IDs.
type intTable struct {
	keys []uint64 // keys[i] is the key of slot i when ids[i] != 0
	ids  []uint32 // ID+1; 0 marks an empty slot
	bits uint
	n    int
	// hashMask is ANDed into every hash: all ones, except in tests that
	// force collisions.
	hashMask uint64
}

func newIntTable() *intTable {
	return &intTable{keys: make([]uint64, 16), ids: make([]uint32, 16), bits: 4, hashMask: ^uint64(0)}
}

func (t *intTable) len() int { return t.n }

func (t *intTable) memBytes() int64 { return int64(len(t.keys)) * 12 }

func (t *intTable) slot(k uint64) uint64 {
	return (mix64(k^0x9e3779b97f4a7c15) & t.hashMask) >> (64 - t.bits)
}

// find returns the ID of k, or -1.
func (t *intTable) find(k uint64) int32 {
	mask := uint64(len(t.ids) - 1)
	for i := t.slot(k); ; i = (i + 1) & mask {
		id := t.ids[i]
		if id == 0 {
			return -1
		}
		if t.keys[i] == k {
			return int32(id - 1)
		}
	}
}

// id returns the ID of k, adding k if it is new.
func (t *intTable) id(k uint64) uint32 {
	mask := uint64(len(t.ids) - 1)
	i := t.slot(k)
	for {
		id := t.ids[i]
		if id == 0 {
			break
		}
		if t.keys[i] == k {
			return id - 1
		}
		i = (i + 1) & mask
	}
	id := uint32(t.n)
	t.n++
	t.keys[i], t.ids[i] = k, id+1
	if 2*t.n > len(t.ids) {
		t.grow()
	}
	return id
}

func (t *intTable) grow() {
	if t.bits >= 31 {
		panic("BUG: intTable beyond 2^30 keys")
	}
	oldK, oldI := t.keys, t.ids
	t.bits++
	t.keys, t.ids = make([]uint64, 1<<t.bits), make([]uint32, 1<<t.bits)
	mask := uint64(len(t.ids) - 1)
	for j, id := range oldI {
		if id == 0 {
			continue
		}
		k := oldK[j]
		i := t.slot(k)
		for t.ids[i] != 0 {
			i = (i + 1) & mask
		}
		t.keys[i], t.ids[i] = k, id
	}
}
