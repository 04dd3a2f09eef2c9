package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"
)

// Bit packing (column flag colFlagPacked; parts only, see format.md).
//
// A packed stream holds values of a fixed width w (0..64 bits) back to back,
// value i in bits [i*w, (i+1)*w) of the stream read as a little-endian
// number: the first value in the low bits of the first byte. A stream of k
// values takes ceil(k*w/8) bytes, so a group of packGroup (128) values takes
// exactly 16*w bytes and every group starts on a byte.
//
// Integer columns are packed in groups of packGroup values, each with its own
// reference (the group's minimum) and width, frame-of-reference style (as
// Parquet's DELTA_BINARY_PACKED miniblocks): a group stores v - ref in
// bits.Len64(max - min) bits. Either the values themselves are packed (mode
// packFOR: narrow or unsorted integers) or the deltas between consecutive
// values (mode packDelta: TimeGenerated sorted by time, counters): a start
// value as a zigzag varint, then the groups of the n differences from the
// value before (the first value's from the start; the encoder makes that one
// pack as 0 by storing the first value less the first group's reference);
// the encoder picks whichever takes fewer bytes. All arithmetic
// is on uint64 and wraps, so the full int64 range round-trips.
//
// Dictionary codes are one stream of width bits.Len(len(dict)-1), without
// groups' headers.
const packGroup = 128

// Integer packing modes: the byte after the null bitmap.
const (
	packFOR   = 0 // groups of values
	packDelta = 1 // first value (varint), then groups of the n deltas
)

var errPackWidth = errors.New("bit width exceeds 64")

// packedLen is the byte length of k values of width w.
func packedLen(k int, w uint) int { return (k*int(w) + 7) / 8 }

// appendPacked appends vals packed at width w; every value must be below
// 1<<w (the bits above are dropped).
func appendPacked[T uint32 | uint64](dst []byte, vals []T, w uint) []byte {
	if w == 0 || len(vals) == 0 {
		return dst
	}
	mask := ^uint64(0) >> (64 - w)
	var acc uint64
	var nb uint // bits held in acc, < 64
	for _, x := range vals {
		v := uint64(x) & mask
		acc |= v << nb
		if nb+w >= 64 {
			dst = binary.LittleEndian.AppendUint64(dst, acc)
			// The bits of v that did not fit; for nb == 0 none (a shift by
			// 64 gives 0 in Go).
			acc = v >> (64 - nb)
			nb = nb + w - 64
		} else {
			nb += w
		}
	}
	for ; nb > 0; nb -= min(nb, 8) {
		dst = append(dst, byte(acc))
		acc >>= 8
	}
	return dst
}

// packScratch is the words of one group being unpacked: up to packGroup
// values of 64 bits, plus a zero word read past the end.
type packScratch [packGroup + 1]uint64

// unpackGroup decodes len(dst) ≤ packGroup values of width 1..64 from src,
// which holds exactly packedLen(len(dst), w) bytes. The loop has no
// data-dependent branch: value j is the 64 bits at its bit offset, read from
// two words, masked.
func unpackGroup[T uint32 | uint64](dst []T, src []byte, w uint, s *packScratch) {
	full := len(src) / 8
	for k := range full {
		s[k] = binary.LittleEndian.Uint64(src[8*k:])
	}
	nw := full
	if rest := src[8*full:]; len(rest) > 0 {
		var tail [8]byte
		copy(tail[:], rest)
		s[full] = binary.LittleEndian.Uint64(tail[:])
		nw++
	}
	s[nw] = 0
	mask := ^uint64(0) >> (64 - w)
	var bit uint
	for j := range dst {
		i, o := bit>>6, bit&63
		// (x<<1)<<(63-o) is x<<(64-o) without a shift by 64 when o is 0.
		v := s[i]>>o | (s[i+1]<<1)<<((63-o)&63)
		dst[j] = T(v & mask)
		bit += w
	}
}

// unpackStream decodes len(dst) values of width w from the front of d.
func unpackStream[T uint32 | uint64](d *decoder, dst []T, w uint, s *packScratch) {
	if w > 64 {
		d.fail(errPackWidth)
		return
	}
	src := d.bytes(packedLen(len(dst), w))
	if src == nil {
		return
	}
	if w == 0 {
		clear(dst)
		return
	}
	for g := 0; g < len(dst); g += packGroup {
		k := min(packGroup, len(dst)-g)
		off := g / 8 * int(w) // packGroup*w/8 bytes per full group
		unpackGroup(dst[g:g+k], src[off:off+packedLen(k, w)], w, s)
	}
}

func varintLen(x int64) int {
	ux := uint64(x<<1) ^ uint64(x>>63)
	return (bits.Len64(ux|1) + 6) / 7
}

// groupSpan is the range of one group: its minimum and maximum.
type groupSpan struct{ lo, hi int64 }

// width is the bits of hi - lo (as unsigned: the full int64 range fits).
func (g groupSpan) width() uint { return uint(bits.Len64(uint64(g.hi) - uint64(g.lo))) }

// cost is the encoded length of a group of k values with this span.
func (g groupSpan) cost(k int) int { return varintLen(g.lo) + 1 + packedLen(k, g.width()) }

// appendPackedInts appends the packed encoding of xs (mode byte, then groups;
// see the package comment above): deltas or values, whichever is shorter.
// Null slots must already hold a value that costs nothing (fillNullInts).
// One pass gathers both modes' group spans (into spans, returned for reuse),
// one more packs the chosen one straight from xs.
func appendPackedInts(dst []byte, xs []int64, spans []groupSpan) ([]byte, []groupSpan) {
	n := len(xs)
	ng := (n + packGroup - 1) / packGroup
	spans = slices.Grow(spans[:0], 2*ng)[:2*ng]
	vs, ds := spans[:ng], spans[ng:]
	forLen, deltaLen := 0, 0
	for g := range ng {
		grp := xs[g*packGroup : min((g+1)*packGroup, n)]
		var prev int64
		if g > 0 {
			prev = xs[g*packGroup-1]
		} else if len(grp) > 1 {
			// The first value's "delta" is packed as 0, i.e. as the group's
			// reference: the first value is stored less the reference.
			prev = grp[0] - (grp[1] - grp[0])
		} else {
			prev = grp[0]
		}
		lo, hi := grp[0], grp[0]
		dlo, dhi := grp[0]-prev, grp[0]-prev
		for _, x := range grp {
			lo, hi = min(lo, x), max(hi, x)
			d := x - prev
			dlo, dhi = min(dlo, d), max(dhi, d)
			prev = x
		}
		vs[g], ds[g] = groupSpan{lo, hi}, groupSpan{dlo, dhi}
		forLen += vs[g].cost(len(grp))
		deltaLen += ds[g].cost(len(grp))
	}
	var first int64
	if n > 0 {
		first = xs[0] - ds[0].lo
		deltaLen += varintLen(first)
	}
	if n == 0 || forLen <= deltaLen {
		dst = append(dst, packFOR)
		for g := range ng {
			dst = appendGroup(dst, xs, g, vs[g], false)
		}
		return dst, spans
	}
	dst = append(dst, packDelta)
	dst = binary.AppendVarint(dst, first)
	for g := range ng {
		dst = appendGroup(dst, xs, g, ds[g], true)
	}
	return dst, spans
}

// appendGroup appends group g of xs: the zigzag varint of sp.lo, the width
// byte, then the group's values (or, with delta, their differences from the
// value before, 0 for the first value) less sp.lo, packed.
func appendGroup(dst []byte, xs []int64, g int, sp groupSpan, delta bool) []byte {
	w := sp.width()
	dst = binary.AppendVarint(dst, sp.lo)
	dst = append(dst, byte(w))
	if w == 0 {
		return dst
	}
	lo := g * packGroup
	grp := xs[lo:min(lo+packGroup, len(xs))]
	var tmp [packGroup]uint64
	t := tmp[:len(grp)]
	ref := uint64(sp.lo)
	if delta {
		prev := uint64(grp[0]) - ref // the first value packs as 0
		if g > 0 {
			prev = uint64(xs[lo-1])
		}
		for j, x := range grp {
			t[j] = uint64(x) - prev - ref
			prev = uint64(x)
		}
	} else {
		for j, x := range grp {
			t[j] = uint64(x) - ref
		}
	}
	return appendPacked(dst, t, w)
}

// fillNullInts returns xs with every null slot holding the value before it
// (the first non-null value for leading nulls), so a null costs a zero delta
// and stays within its group's range; xs itself is not changed (the copy goes
// to buf). The decoder puts zeros back.
func fillNullInts(xs []int64, nulls []bool, buf []int64) []int64 {
	out := append(buf[:0], xs...)
	var prev int64
	first := true
	for i, isNull := range nulls {
		if !isNull {
			if first {
				for k := range i {
					out[k] = xs[i]
				}
				first = false
			}
			prev = xs[i]
			continue
		}
		if !first {
			out[i] = prev
		}
	}
	return out
}

// packedInts decodes n packed integers (after the flags and nulls).
func (d *decoder) packedInts(n int, s *packScratch) []int64 {
	mode := d.byte1()
	var prev uint64
	switch {
	case d.err != nil:
		return nil
	case mode == packDelta && n == 0:
		d.fail(errors.New("delta packing of no values"))
		return nil
	case mode == packDelta:
		prev = uint64(d.varint())
	case mode != packFOR:
		d.fail(fmt.Errorf("unknown integer packing %d", mode))
		return nil
	}
	out := make([]int64, n)
	var u [packGroup]uint64
	for g := 0; g < n && d.err == nil; g += packGroup {
		grp := out[g:min(g+packGroup, n)]
		ref := uint64(d.varint())
		w := uint(d.byte1())
		switch {
		case d.err != nil:
			return nil
		case w > 64:
			d.fail(errPackWidth)
			return nil
		case w == 0:
			clear(u[:len(grp)])
		default:
			src := d.bytes(packedLen(len(grp), w))
			if src == nil {
				return nil
			}
			unpackGroup(u[:len(grp)], src, w, s)
		}
		if mode == packFOR {
			for j := range grp {
				grp[j] = int64(u[j] + ref)
			}
		} else {
			for j := range grp {
				prev += u[j] + ref
				grp[j] = int64(prev)
			}
		}
	}
	if d.err != nil {
		return nil
	}
	return out
}

// packedCodes decodes len(codes) dictionary codes of a dictionary of nd
// entries. Codes are checked against nd once, after the loop, through their
// maximum (and not at all when nd is a power of two: the width admits no
// larger code).
func (d *decoder) packedCodes(codes []uint32, nd int) {
	var s packScratch
	unpackStream(d, codes, codeWidth(nd), &s)
	if d.err != nil || nd&(nd-1) == 0 {
		return
	}
	var hi uint32
	for _, c := range codes {
		hi = max(hi, c)
	}
	if int(hi) >= nd {
		d.fail(fmt.Errorf("dictionary index %d out of range %d", hi, nd))
	}
}

// rawSkip: once a column's chunk is stored raw, a block encoder stores the
// column's next rawSkip-1 chunks raw without trying zstd (whose trial costs
// more than the packing: ~5.6 ns per TimeGenerated row at the part writer's
// settings), then tries again.
const rawSkip = 8

// skipZstdTrial reports whether chunk column j (of ncols) is to be stored
// raw without compressing it first.
func (e *blockEncoder) skipZstdTrial(j, ncols int) bool {
	if len(e.rawLeft) != ncols {
		e.rawLeft = make([]uint8, ncols)
	}
	if e.rawLeft[j] > 0 {
		e.rawLeft[j]--
		return true
	}
	return false
}

// storedChunk is storedChunk for column j of the block being encoded: e.raw
// when skip (skipZstdTrial's answer), else e.raw or its frame e.comp; a raw
// result starts a run of skipped trials.
func (e *blockEncoder) storedChunk(j, split int, skip bool) ([]byte, byte) {
	if skip {
		return e.raw, chunkFlagRaw
	}
	stored, flag := storedChunk(e.raw, e.comp, split)
	if flag == chunkFlagRaw && j < len(e.rawLeft) {
		e.rawLeft[j] = rawSkip - 1
	}
	return stored, flag
}

// storedChunk returns what a part stores of a chunk whose column encoding
// is raw and zstd frame comp, and the chunk flag that says which: the
// encoding itself (chunkFlagRaw) when zstd saves less than a tenth of its
// bytes, which is common for bit-packed integers and codes (the packing
// leaves little redundancy), and saves the decompression on every read.
// Split chunks (two frames) always keep their frames.
func storedChunk(raw, comp []byte, split int) ([]byte, byte) {
	if split == 0 && 10*len(comp) > 9*len(raw) {
		return raw, chunkFlagRaw
	}
	return comp, 0
}
