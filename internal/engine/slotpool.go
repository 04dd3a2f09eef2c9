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
type slotPool struct {
	mu       sync.Mutex
	free     map[uint][][]strSlot // by log2 of the length
	bytes    int64
	maxBytes int64
}

// tablePoolBytes is the most an Engine's slotPool keeps: the two final
// tables of a 2-worker group-by over ~400K keys (bench/peers' top users)
// and their last growth step.
const tablePoolBytes = 96 << 20

// minPooledBits is the smallest pooled array: 2^14 slots (384 KiB).
const minPooledBits = 14

func newSlotPool(maxBytes int64) *slotPool {
	return &slotPool{free: map[uint][][]strSlot{}, maxBytes: maxBytes}
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
	}
	return make([]strSlot, 1<<bits)
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
			l[len(l)-1] = nil
			p.free[b] = l[:len(l)-1]
		}
	}
	if p.bytes+slotsBytes(len(s)) > p.maxBytes {
		return
	}
	p.free[bits] = append(p.free[bits], s)
	p.bytes += slotsBytes(len(s))
}
