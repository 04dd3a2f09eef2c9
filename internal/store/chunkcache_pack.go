package store

import (
	"custos/internal/offheap"
	"runtime"
	"unsafe"
)

// packedChunk is how the decoded-chunk cache keeps a vector: in one region
// of memory outside the Go heap (mmap on Unix; see chunkcache_mem_*.go),
// with its strings back to back and end offsets instead of one string
// header per row.
//
// Why off the heap: measured on the 2-core VM with bench/kql over 10 M rows
// (2026-11-27, bench/results/queryperf-2026-11-27.md), a full 256 MiB cache
// kept in the Go heap made queries that do not use it (dcount of an uncached
// column) ~60 % more CPU: the collector's heap goal doubled with the cached
// live heap, each cycle's garbage spread over twice the pages, and the Go
// scavenger returned them to the OS (MADV_DONTNEED) so the decoders' fresh
// allocations faulted them back in (GODEBUG=madvdontneed=0 removed most of
// the difference, but is not something a server should need). Memory the
// runtime does not manage leaves the heap goal, the collector's marking and
// the scavenger as they are without the cache.
//
// unpack copies the values into new heap slices, so nothing a query holds
// points into the region, and a region is unmapped by a cleanup once its
// packedChunk is unreachable (dropped from the cache and no get copying).
type packedChunk struct {
	typ ColumnType
	mem []byte // the region (offheap.Alloc); nil when the chunk has no values
	// Offsets into mem and lengths (in elements) of each part.
	nullsOff, nullsN int
	boolsOff, boolsN int
	intsOff, intsN   int
	realsOff, realsN int
	codesOff, codesN int // dictionary codes, one a row
	endsOff, endsN   int // where string i ends in the blob
	blobOff, blobN   int // the strings: the dictionary's entries when codes are set, else one a row
	has              uint8
}

// has bits: which slices of the vector were not nil.
const (
	hasNulls = 1 << iota
	hasBools
	hasInts
	hasReals
	hasCodes
	hasStrs
)

// packChunk packs v for the cache; ok is false for a vector it cannot keep
// (a dictionary without codes, more than 4 GiB of strings, no memory). A
// dictionary vector is packed from Dict and Codes, with Str or codes-only.
func packChunk(v *Vector) (p *packedChunk, ok bool) {
	p = &packedChunk{typ: v.Type}
	strs := v.Str
	switch {
	case v.Dict != nil && v.Codes != nil && (len(v.Codes) == len(v.Str) || v.Str == nil):
		strs = v.Dict
		p.has |= hasCodes
	case v.Dict != nil || v.Codes != nil:
		return nil, false
	}
	total := 0
	for _, s := range strs {
		total += len(s)
	}
	if total > 1<<32-1 {
		return nil, false
	}
	for _, f := range []struct {
		set bool
		bit uint8
	}{{v.Nulls != nil, hasNulls}, {v.Bool != nil, hasBools}, {v.Int != nil, hasInts}, {v.Real != nil, hasReals}, {strs != nil, hasStrs}} {
		if f.set {
			p.has |= f.bit
		}
	}
	// 8-byte parts first, then 4-byte, then bytes: every part aligned.
	off := 0
	place := func(n, size int) (int, int) {
		o := off
		off += n * size
		return o, n
	}
	p.intsOff, p.intsN = place(len(v.Int), 8)
	p.realsOff, p.realsN = place(len(v.Real), 8)
	if p.has&hasCodes != 0 {
		p.codesOff, p.codesN = place(len(v.Codes), 4)
	}
	p.endsOff, p.endsN = place(len(strs), 4)
	p.nullsOff, p.nullsN = place(len(v.Nulls), 1)
	p.boolsOff, p.boolsN = place(len(v.Bool), 1)
	p.blobOff, p.blobN = place(total, 1)
	if off == 0 {
		return p, true
	}
	mem, err := offheap.Alloc(off)
	if err != nil {
		return nil, false
	}
	p.mem = mem
	copy(regionSlice[int64](mem, p.intsOff, p.intsN), v.Int)
	copy(regionSlice[float64](mem, p.realsOff, p.realsN), v.Real)
	copy(regionSlice[uint32](mem, p.codesOff, p.codesN), v.Codes)
	copy(regionSlice[bool](mem, p.nullsOff, p.nullsN), v.Nulls)
	copy(regionSlice[bool](mem, p.boolsOff, p.boolsN), v.Bool)
	ends := regionSlice[uint32](mem, p.endsOff, p.endsN)
	blob := mem[p.blobOff : p.blobOff+p.blobN]
	at := 0
	for i, s := range strs {
		at += copy(blob[at:], s)
		ends[i] = uint32(at)
	}
	runtime.AddCleanup(p, offheap.Free, mem)
	return p, true
}

// regionSlice views n elements of type T at byte offset off of mem.
func regionSlice[T any](mem []byte, off, n int) []T {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&mem[off])), n)
}

// heapCopy returns a new heap slice with the values of src; nil when the
// vector had no such slice.
func heapCopy[T any](src []T, had bool) []T {
	if !had {
		return nil
	}
	out := make([]T, len(src))
	copy(out, src)
	return out
}

// heapable reports whether the chunk may move into the cache's heap tier:
// it has no string per row (numbers, times, booleans, or dictionary codes
// with their dictionary), so its vector holds noscan slices but for the
// dictionary's.
func (p *packedChunk) heapable() bool { return p.has&hasStrs == 0 || p.has&hasCodes != 0 }

// bytes is the chunk's memory, rounded up to the region's pages.
func (p *packedChunk) bytes() int64 { return int64(cap(p.mem)) + 160 }

// unpack returns a new vector, all on the heap, with the chunk's values.
// With codesOnly a dictionary chunk comes back codes-only (Str nil, see
// Vector.CodesOnly): no string header per row.
func (p *packedChunk) unpack(codesOnly bool) *Vector {
	m := p.mem
	v := &Vector{
		Type:  p.typ,
		Nulls: heapCopy(regionSlice[bool](m, p.nullsOff, p.nullsN), p.has&hasNulls != 0),
		Bool:  heapCopy(regionSlice[bool](m, p.boolsOff, p.boolsN), p.has&hasBools != 0),
		Int:   heapCopy(regionSlice[int64](m, p.intsOff, p.intsN), p.has&hasInts != 0),
		Real:  heapCopy(regionSlice[float64](m, p.realsOff, p.realsN), p.has&hasReals != 0),
	}
	if p.has&hasStrs != 0 {
		blob := string(m[p.blobOff : p.blobOff+p.blobN]) // one allocation; the values are substrings
		strs := make([]string, p.endsN)
		start := uint32(0)
		for i, e := range regionSlice[uint32](m, p.endsOff, p.endsN) {
			strs[i] = blob[start:e]
			start = e
		}
		if p.has&hasCodes == 0 {
			v.Str = strs
		} else {
			v.Dict = strs
			v.Codes = heapCopy(regionSlice[uint32](m, p.codesOff, p.codesN), true)
			if codesOnly {
				runtime.KeepAlive(p)
				return v
			}
			v.Str = make([]string, p.codesN)
			for i, c := range v.Codes {
				v.Str[i] = strs[c]
			}
		}
	}
	runtime.KeepAlive(p) // the region stays mapped until the copies are made
	return v
}
