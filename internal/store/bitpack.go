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
// values (mode packDelta: TimeGenerated sorted by time, counters), after the
// first value; the encoder picks whichever takes fewer bytes. All arithmetic
// is on uint64 and wraps, so the full int64 range round-trips.
//
// Dictionary codes are one stream of width bits.Len(len(dict)-1), without
// groups' headers.
const packGroup = 128

// Integer packing modes: the byte after the null bitmap.
const (
	packFOR   = 0 // groups of values
	packDelta = 1 // first value (varint), then groups of the n-1 deltas
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

// groupRange returns the minimum of vals (as int64) and the width of
// max - min.
func groupRange(vals []uint64) (ref uint64, w uint) {
	lo, hi := int64(vals[0]), int64(vals[0])
	for _, x := range vals[1:] {
		lo, hi = min(lo, int64(x)), max(hi, int64(x))
	}
	return uint64(lo), uint(bits.Len64(uint64(hi) - uint64(lo)))
}

// packedGroupsLen is the encoded length of vals in groups (reference varint,
// width byte, packed bits).
func packedGroupsLen(vals []uint64) int {
	total := 0
	for g := 0; g < len(vals); g += packGroup {
		grp := vals[g:min(g+packGroup, len(vals))]
		ref, w := groupRange(grp)
		total += varintLen(int64(ref)) + 1 + packedLen(len(grp), w)
	}
	return total
}

func varintLen(x int64) int {
	ux := uint64(x<<1) ^ uint64(x>>63)
	return (bits.Len64(ux|1) + 6) / 7
}

// appendPackedGroups appends vals in groups: per group the zigzag varint of
// its minimum, its width byte and its values less the minimum, packed.
func appendPackedGroups(dst []byte, vals []uint64, tmp *[packGroup]uint64) []byte {
	for g := 0; g < len(vals); g += packGroup {
		grp := vals[g:min(g+packGroup, len(vals))]
		ref, w := groupRange(grp)
		dst = binary.AppendVarint(dst, int64(ref))
		dst = append(dst, byte(w))
		t := tmp[:len(grp)]
		for j, x := range grp {
			t[j] = x - ref
		}
		dst = appendPacked(dst, t, w)
	}
	return dst
}

// appendPackedInts appends the packed encoding of xs (mode byte, then groups;
// see the package comment above): deltas or values, whichever is shorter.
// Null slots must already hold a value that costs nothing (fillNullInts).
func appendPackedInts(dst []byte, xs []int64, scratch []uint64) ([]byte, []uint64) {
	n := len(xs)
	scratch = slices.Grow(scratch[:0], 2*n)[:2*n]
	vals, deltas := scratch[:n], scratch[n:max(n, 2*n-1)]
	for i, x := range xs {
		vals[i] = uint64(x)
	}
	forLen := packedGroupsLen(vals)
	for i := 1; i < n; i++ {
		deltas[i-1] = vals[i] - vals[i-1]
	}
	var tmp [packGroup]uint64
	if n > 0 && varintLen(xs[0])+packedGroupsLen(deltas) < forLen {
		dst = append(dst, packDelta)
		dst = binary.AppendVarint(dst, xs[0])
		dst = appendPackedGroups(dst, deltas, &tmp)
	} else {
		dst = append(dst, packFOR)
		dst = appendPackedGroups(dst, vals, &tmp)
	}
	return dst, scratch[:0]
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

// decodePackedInts decodes n packed integers (after the flags and nulls).
func (d *decoder) packedInts(n int, s *packScratch) []int64 {
	mode := d.byte1()
	if d.err != nil {
		return nil
	}
	out := make([]int64, n)
	var prev uint64
	vals := out
	switch mode {
	case packFOR:
	case packDelta:
		if n == 0 {
			d.fail(errors.New("delta packing of no values"))
			return nil
		}
		prev = uint64(d.varint())
		out[0] = int64(prev)
		vals = out[1:]
	default:
		d.fail(fmt.Errorf("unknown integer packing %d", mode))
		return nil
	}
	var u [packGroup]uint64
	for g := 0; g < len(vals) && d.err == nil; g += packGroup {
		grp := vals[g:min(g+packGroup, len(vals))]
		ref := uint64(d.varint())
		w := uint(d.byte1())
		if d.err != nil {
			break
		}
		if w > 64 {
			d.fail(errPackWidth)
			break
		}
		if w == 0 {
			clear(u[:len(grp)])
		} else {
			src := d.bytes(packedLen(len(grp), w))
			if src == nil {
				break
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
