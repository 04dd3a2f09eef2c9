package engine

import "sync"

// slotPool keeps the slot arrays of large string hash tables (group-by keys)
// between queries and between the growth steps of one query, so a query
// that groups by a high-cardinality key reuses memory that is already
// mapped instead of taking fresh pages from the OS: on the 2-core VM of
// bench/peers, faulting in a fresh 24 MB table cost about 2 µs per 4 KiB
// page, more than the lookups that filled it. Arrays are pointer-free, so
// the pool adds nothing to the garbage collector's scanning. It holds at
// most maxBytes; arrays below minPooledBits slots are not pooled.
// Safe for concurrent use.
//
// Large arrays (minMappedBits and up) are mapped outside the Go heap with
// their pages faulted in by the mapping call (mapSlots: MAP_POPULATE on
// Linux), which halves the cost of the first query's fresh pages — the
// cold-start case the pool cannot help — and keeps them out of the GC's
// heap goal. They are unmapped when the pool drops them; tables always give
// their arrays back (summarize releases its table in a defer).
type slotPool struct {
	mu       sync.Mutex
	free     map[uint][][]strSlot // by log2 of the length
	bytes    int64
	maxBytes int64
	mapped   map[*strSlot]bool // first slot of each array from mapSlots
}

// tablePoolBytes is the most an Engine's slotPool keeps: the two final
// tables of a 2-worker group-by over ~400K keys (bench/peers' top users)
// and their last growth step.
const tablePoolBytes = 96 << 20

// minPooledBits is the smallest pooled array: 2^14 slots (384 KiB).
const minPooledBits = 14

// minMappedBits is the smallest array mapped outside the heap: 2^16 slots
// (1.5 MiB).
const minMappedBits = 16

func newSlotPool(maxBytes int64) *slotPool {
	return &slotPool{free: map[uint][][]strSlot{}, maxBytes: maxBytes, mapped: map[*strSlot]bool{}}
}

func slotsBytes(n int) int64 { return int64(n) * strSlotSize }

// get returns an all-empty array of 1<<bits slots.
func (p *slotPool) get(bits uint) []strSlot {
	if p != nil && bits >= minPooledBits {
		p.mu.Lock()
		l := p.free[bits]
		if len(l) > 0 {
			s := l[len(l)-1]
			l[len(l)-1] = nil
			p.free[bits] = l[:len(l)-1]
			p.bytes -= slotsBytes(len(s))
			p.mu.Unlock()
			clear(s)
			return s
		}
		p.mu.Unlock()
		if bits >= minMappedBits {
			if s, ok := mapSlots(1 << bits); ok { // fresh pages are all zero
				p.mu.Lock()
				p.mapped[&s[0]] = true
				p.mu.Unlock()
				return s
			}
		}
	}
	return make([]strSlot, 1<<bits)
}

// drop forgets an array the pool does not keep, unmapping it if it was
// mapped. p.mu is held.
func (p *slotPool) drop(s []strSlot) {
	if p.mapped[&s[0]] {
		delete(p.mapped, &s[0])
		unmapSlots(s)
	}
}

// put offers an array back; it is dropped when the pool is full.
func (p *slotPool) put(s []strSlot) {
	if p == nil || len(s) < 1<<minPooledBits || len(s)&(len(s)-1) != 0 {
		return
	}
	bits := uint(0)
	for 1<<bits < len(s) {
		bits++
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// Make room by dropping smaller arrays: a large table is the costlier
	// one to fault in again.
	for b := uint(minPooledBits); b < bits && p.bytes+slotsBytes(len(s)) > p.maxBytes; b++ {
		for l := p.free[b]; len(l) > 0 && p.bytes+slotsBytes(len(s)) > p.maxBytes; l = p.free[b] {
			p.bytes -= slotsBytes(len(l[len(l)-1]))
			p.drop(l[len(l)-1])
			l[len(l)-1] = nil
			p.free[b] = l[:len(l)-1]
		}
	}
	if p.bytes+slotsBytes(len(s)) > p.maxBytes {
		p.drop(s)
		return
	}
	p.free[bits] = append(p.free[bits], s)
	p.bytes += slotsBytes(len(s))
}
