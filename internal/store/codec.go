package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
)

// errShort is the sticky error of a decoder that ran out of input.
var errShort = errors.New("unexpected end of data")

// maxBlockRows bounds the row count of any block, WAL record or column
// encoding read from disk, so a corrupt count cannot make us allocate without
// limit.
const maxBlockRows = 1 << 20

// decoder reads the little binary encodings used by the WAL and parts. The
// first error sticks; every length is bounded by the remaining input.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(fmt.Errorf("bad uvarint: %w", errShort))
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(fmt.Errorf("bad varint: %w", errShort))
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a uvarint that must not exceed max.
func (d *decoder) count(what string, max int) int {
	v := d.uvarint()
	if d.err == nil && v > uint64(max) {
		d.fail(fmt.Errorf("%s %d exceeds limit %d", what, v, max))
		return 0
	}
	return int(v)
}

func (d *decoder) byte1() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 1 {
		d.fail(errShort)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) u64() uint64 {
	p := d.bytes(8)
	if p == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(p)
}

// bytes returns the next n bytes (aliasing the input) or nil on error.
func (d *decoder) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.fail(fmt.Errorf("need %d bytes, have %d: %w", n, len(d.b), errShort))
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

// str reads a length-prefixed string bounded by max.
func (d *decoder) str(max int) string {
	n := d.count("string length", max)
	return string(d.bytes(n))
}

func appendStr(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// Column encoding (shared by WAL records and part blocks):
//
//	flags byte: bit0 = null bitmap follows, bit1 = dictionary-encoded strings,
//	            bit2 = token-encoded strings
//	[null bitmap: (n+7)/8 bytes, bit i set = row i is null]
//	values, by storage class:
//	  bool:   bitmap, (n+7)/8 bytes
//	  int:    n zigzag varints of the delta to the previous value (first delta from 0);
//	          datetimes sorted by time become small deltas
//	  real:   n little-endian IEEE-754 float64
//	  string: plain: n uvarint lengths, then the concatenated bytes;
//	          dictionary: uvarint d, d uvarint lengths, the d entries' bytes, then n uvarint indexes;
//	          tokens: uvarint d, d uvarint lengths, the d tokens' bytes, n uvarint token
//	          counts (one per row), then one uvarint token index per token of every row;
//	          a row is the concatenation of its tokens (see appendTokens)
//	decimal text (flag bit3, decimal columns only): after the reals, the exact
//	          text of every value as plain strings ("" where the real alone holds
//	          it); columns written before the flag existed simply lack it
const (
	colFlagNulls   = 1 << 0
	colFlagDict    = 1 << 1
	colFlagTokens  = 1 << 2
	colFlagDecText = 1 << 3
)

type storageClass uint8

const (
	classBool storageClass = iota
	classInt
	classReal
	classStr
)

func classOf(t ColumnType) storageClass {
	switch t {
	case TypeBool:
		return classBool
	case TypeInt, TypeLong, TypeDatetime, TypeTimespan:
		return classInt
	case TypeReal, TypeDecimal:
		return classReal
	default:
		return classStr
	}
}

// encodeColumn appends the encoding of rows [lo, hi) of v to dst. compact
// allows the dictionary and token encodings of strings when they pay off
// (parts; the WAL keeps the cheaper plain encoding).
func encodeColumn(dst []byte, v *Vector, lo, hi int, compact bool) []byte {
	dst, _, _ = encodeChunk(dst, v, lo, hi, compact, nil)
	return dst
}

// dictLimit is the largest dictionary a chunk of n values gets. Short values
// (identifiers such as user names, host names) take a dictionary up to 3/4 of
// the row count: grouping by such a column then hashes each distinct value once
// per block (Vector.Dict/Codes) instead of once per row, and the indexes cost
// less than the values. Longer values get one only up to n/4, leaving free
// text to the token encoding.
func dictLimit(ss []string) int {
	n := len(ss)
	total := 0
	for _, s := range ss {
		total += len(s)
	}
	if total < tokenMinAvgLen*n {
		return n * 3 / 4
	}
	return n / 4
}

// encodeChunk is encodeColumn for part chunks. When bloomScratch is not nil
// and v is a string-class vector, it also returns the chunk's token bloom
// filter, built from the distinct values or tokens the encoding found (so
// each distinct token is hashed once rather than once per occurrence). For a
// token-encoded string column, split is the offset (from the start of what
// was appended) where the token table ends and the per-row token counts
// begin; parts compress the two halves separately so a term search can read
// the table alone (see chunkFlagSplit). Otherwise split is 0.
func encodeChunk(dst []byte, v *Vector, lo, hi int, compact bool, bloomScratch map[uint64]struct{}) (out []byte, bl bloom, split int) {
	start := len(dst)
	n := hi - lo
	var flags byte
	hasNulls := false
	if v.Nulls != nil {
		for _, isNull := range v.Nulls[lo:hi] {
			if isNull {
				hasNulls = true
				break
			}
		}
	}
	if hasNulls {
		flags |= colFlagNulls
	}
	cls := classOf(v.Type)
	if v.Type == TypeDecimal && hasDecText(v, hi) && slices.ContainsFunc(v.Str[lo:hi], func(s string) bool { return s != "" }) {
		flags |= colFlagDecText
	}
	var dictIdx map[string]uint32
	var dictVals []string
	if cls == classStr && compact && n >= 16 {
		dictIdx = make(map[string]uint32)
		limit := dictLimit(v.Str[lo:hi])
		for _, s := range v.Str[lo:hi] {
			if _, ok := dictIdx[s]; !ok {
				if len(dictVals) >= limit {
					dictIdx = nil
					break
				}
				dictIdx[s] = uint32(len(dictVals))
				dictVals = append(dictVals, s)
			}
		}
		if dictIdx != nil {
			flags |= colFlagDict
		}
	}
	var tok *tokenEncoder
	if cls == classStr && compact && n >= 16 && dictIdx == nil && v.Type != TypeGUID {
		tok = getTokenEncoder()
		if tok.analyze(v.Str[lo:hi]) {
			flags |= colFlagTokens
		} else {
			putTokenEncoder(tok)
			tok = nil
		}
	}
	if bloomScratch != nil && cls == classStr {
		switch {
		case dictIdx != nil:
			// Null slots hold "" (no tokens), so the distinct values cover every row.
			bl = buildBloom(dictVals, nil, v.Type == TypeDynamic, bloomScratch)
		case tok != nil && v.Type == TypeString:
			// Strings are never null, and a value's tokens are table entries.
			bl = buildBloom(tok.toks, nil, false, bloomScratch)
		default:
			bl = buildBloom(v.Str[lo:hi], nullsOf(v, lo, hi), v.Type == TypeDynamic, bloomScratch)
		}
	}
	dst = append(dst, flags)
	if hasNulls {
		dst = appendBitmap(dst, v.Nulls[lo:hi])
	}
	switch cls {
	case classBool:
		dst = appendBitmap(dst, v.Bool[lo:hi])
	case classInt:
		var prev int64
		for _, x := range v.Int[lo:hi] {
			dst = binary.AppendVarint(dst, x-prev)
			prev = x
		}
	case classReal:
		for _, x := range v.Real[lo:hi] {
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(x))
		}
		if flags&colFlagDecText != 0 {
			dst = appendStrings(dst, v.Str[lo:hi])
		}
	case classStr:
		switch {
		case dictIdx != nil:
			dst = appendStrings(dst, dictVals)
			for _, s := range v.Str[lo:hi] {
				dst = binary.AppendUvarint(dst, uint64(dictIdx[s]))
			}
		case tok != nil:
			dst = tok.appendTableTo(dst)
			if v.Type == TypeString {
				split = len(dst) - start
			}
			dst = tok.appendRowsTo(dst)
			putTokenEncoder(tok)
		default:
			dst = appendStrings(dst, v.Str[lo:hi])
		}
	}
	return dst, bl, split
}

func nullsOf(v *Vector, lo, hi int) []bool {
	if v.Nulls == nil {
		return nil
	}
	return v.Nulls[lo:hi]
}

func appendStrings(dst []byte, ss []string) []byte {
	if len(ss) == 0 {
		return dst
	}
	dst = binary.AppendUvarint(dst, uint64(len(ss)))
	for _, s := range ss {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
	}
	for _, s := range ss {
		dst = append(dst, s...)
	}
	return dst
}

func appendBitmap(dst []byte, bits []bool) []byte {
	var cur byte
	for i, b := range bits {
		if b {
			cur |= 1 << (i & 7)
		}
		if i&7 == 7 {
			dst = append(dst, cur)
			cur = 0
		}
	}
	if len(bits)&7 != 0 {
		dst = append(dst, cur)
	}
	return dst
}

func (d *decoder) bitmap(n int) []bool {
	p := d.bytes((n + 7) / 8)
	if p == nil {
		return nil
	}
	out := make([]bool, n)
	for i := range out {
		out[i] = p[i>>3]&(1<<(i&7)) != 0
	}
	return out
}

// strings decodes what appendStrings wrote for n strings.
func (d *decoder) strings(n int) []string {
	if n == 0 {
		return []string{}
	}
	if got := d.count("string count", maxBlockRows); got != n {
		if d.err == nil {
			d.fail(fmt.Errorf("string count %d, want %d", got, n))
		}
		return nil
	}
	return d.stringsBody(n)
}

// stringsBody decodes n lengths and the string bytes.
func (d *decoder) stringsBody(n int) []string {
	lens := make([]int, n)
	total := 0
	for i := range lens {
		l := d.count("string length", len(d.b))
		lens[i] = l
		total += l
		if d.err != nil || total > len(d.b) {
			d.fail(fmt.Errorf("strings need %d bytes: %w", total, errShort))
			return nil
		}
	}
	data := d.bytes(total)
	if data == nil {
		return nil
	}
	all := string(data) // one allocation; the values are substrings
	out := make([]string, n)
	off := 0
	for i, l := range lens {
		out[i] = all[off : off+l]
		off += l
	}
	return out
}

// decodeColumn decodes n values of type t.
func decodeColumn(d *decoder, t ColumnType, n int) (*Vector, error) {
	if n < 0 || n > maxBlockRows {
		return nil, fmt.Errorf("row count %d out of range", n)
	}
	v := &Vector{Type: t}
	flags := d.byte1()
	if flags&^(colFlagNulls|colFlagDict|colFlagTokens|colFlagDecText) != 0 {
		return nil, fmt.Errorf("unknown column flags %#x", flags)
	}
	if flags&colFlagDecText != 0 && t != TypeDecimal {
		return nil, fmt.Errorf("decimal text flag on %s column", t)
	}
	if flags&colFlagNulls != 0 {
		v.Nulls = d.bitmap(n)
	}
	cls := classOf(t)
	if flags&(colFlagDict|colFlagTokens) != 0 && cls != classStr {
		return nil, fmt.Errorf("dictionary or token flag on %s column", t)
	}
	if flags&colFlagDict != 0 && flags&colFlagTokens != 0 {
		return nil, errors.New("both dictionary and token flags")
	}
	switch cls {
	case classBool:
		v.Bool = d.bitmap(n)
		if v.Bool == nil {
			v.Bool = []bool{}
		}
	case classInt:
		if n > len(d.b) { // every value takes at least one byte
			d.fail(errShort)
			break
		}
		v.Int = make([]int64, n)
		var prev int64
		for i := range v.Int {
			prev += d.varint()
			v.Int[i] = prev
		}
	case classReal:
		p := d.bytes(8 * n)
		if p == nil {
			break
		}
		v.Real = make([]float64, n)
		for i := range v.Real {
			v.Real[i] = math.Float64frombits(binary.LittleEndian.Uint64(p[8*i:]))
		}
		if flags&colFlagDecText != 0 {
			v.Str = d.strings(n)
			for _, s := range v.Str {
				if !decTextOK(s) {
					d.fail(fmt.Errorf("bad decimal text %q", s))
					break
				}
			}
		}
	case classStr:
		if flags&colFlagDict != 0 {
			nd := d.count("dictionary size", n)
			if nd == 0 && d.err == nil {
				d.fail(errors.New("empty dictionary"))
			}
			dict := d.stringsBody(nd)
			if d.err != nil {
				break
			}
			v.Str = make([]string, n)
			codes := make([]uint32, n)
			for i := range v.Str {
				idx := d.uvarint()
				if idx >= uint64(len(dict)) {
					d.fail(fmt.Errorf("dictionary index %d out of range %d", idx, len(dict)))
					break
				}
				v.Str[i] = dict[idx]
				codes[i] = uint32(idx)
			}
			v.Dict, v.Codes = dict, codes
		} else if flags&colFlagTokens != 0 {
			v.Str = d.tokens(n)
		} else {
			v.Str = d.strings(n)
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	return v, nil
}

// tokenEncoder is the write path of the token encoding (see tokens.go for the
// layout and tokenCoder (tokencoder_ref_test.go), the reference it must match byte for
// byte): it tokenizes a chunk's strings and numbers the distinct tokens in
// order of first occurrence. Tokens of one or two bytes are numbered through a
// direct index; longer ones through an open-addressing table keyed by a hash
// computed while the token is scanned, so a token costs one probe and, on a
// hash match, one comparison — not a Go map lookup with its own hashing.
// Reused through tokenEncoders.
type tokenEncoder struct {
	toks   []string
	hashes []uint64 // per token ID (long tokens only; 0 for short ones)
	counts []uint32 // occurrences per token ID
	rows   []uint32 // tokens per row
	seq    []uint32 // token IDs, rows in order
	rank   []uint32 // token ID → index in frequency order
	order  []uint32 // frequency order → token ID
	// short maps tokens of one or two bytes to ID+1: index b0 for one byte,
	// 256 + b0<<8 | b1 for two.
	short     []uint32
	shortUsed []int
	slots     []uint32 // long tokens: ID+1 or 0 (free); len is a power of two
	longs     int      // long tokens in slots
}

var tokenEncoders = sync.Pool{New: func() any { return &tokenEncoder{} }}

func getTokenEncoder() *tokenEncoder { return tokenEncoders.Get().(*tokenEncoder) }

func putTokenEncoder(t *tokenEncoder) {
	if t == nil {
		return
	}
	for _, k := range t.shortUsed {
		t.short[k] = 0
	}
	t.shortUsed = t.shortUsed[:0]
	if t.longs > 0 {
		clear(t.slots)
	}
	t.longs = 0
	clear(t.toks) // drop references to the column's strings
	t.toks, t.hashes, t.counts, t.rows, t.seq = t.toks[:0], t.hashes[:0], t.counts[:0], t.rows[:0], t.seq[:0]
	tokenEncoders.Put(t)
}

const (
	tokHashSeed  = 0x9e3779b97f4a7c15
	tokHashMul   = 0xff51afd7ed558ccd
	minTokenSlot = 1 << 12
)

// longID returns the ID of the long token tok with hash h, adding it if new.
func (t *tokenEncoder) longID(tok string, h uint64) (id uint32, added bool) {
	if 2*(t.longs+1) > len(t.slots) {
		t.grow()
	}
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == 0 {
			id = uint32(len(t.toks))
			t.slots[i] = id + 1
			t.longs++
			t.toks = append(t.toks, tok)
			t.hashes = append(t.hashes, h)
			t.counts = append(t.counts, 0)
			return id, true
		}
		if t.hashes[s-1] == h && t.toks[s-1] == tok {
			return s - 1, false
		}
	}
}

func (t *tokenEncoder) grow() {
	n := max(minTokenSlot, 2*len(t.slots))
	t.slots = make([]uint32, n)
	mask := uint64(n - 1)
	for id, h := range t.hashes {
		if len(t.toks[id]) <= 2 {
			continue
		}
		i := h & mask
		for t.slots[i] != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = uint32(id) + 1
	}
}

// analyze tokenizes ss and reports whether the token encoding is worth
// using (the same decision as tokenCoder.analyze). On false the encoder
// holds partial state; put it back.
func (t *tokenEncoder) analyze(ss []string) bool {
	total := 0
	for _, s := range ss {
		total += len(s)
	}
	if total < tokenMinAvgLen*len(ss) {
		return false
	}
	text, table := 0, 0
	probed := false
	if t.short == nil {
		t.short = make([]uint32, shortTokenSlots)
	}
	for _, s := range ss {
		k := 0
		for i := 0; i < len(s); {
			a := alnum[s[i]]
			h := uint64(tokHashSeed)
			j := i
			for j < len(s) && alnum[s[j]] == a {
				h = (h ^ uint64(s[j])) * tokHashMul
				j++
			}
			var id uint32
			if j-i <= 2 {
				x := int(s[i])
				if j-i == 2 {
					x = 256 + int(s[i])<<8 | int(s[i+1])
				}
				if v := t.short[x]; v != 0 {
					id = v - 1
				} else {
					id = uint32(len(t.toks))
					t.short[x] = id + 1
					t.shortUsed = append(t.shortUsed, x)
					t.toks = append(t.toks, s[i:j])
					t.hashes = append(t.hashes, 0)
					t.counts = append(t.counts, 0)
					table += j - i
				}
			} else {
				var added bool
				h ^= h >> 29
				if id, added = t.longID(s[i:j], h); added {
					table += j - i
				}
			}
			t.counts[id]++
			t.seq = append(t.seq, id)
			k++
			i = j
		}
		t.rows = append(t.rows, uint32(k))
		text += len(s)
		if !probed && text >= tokenProbeBytes {
			probed = true
			if float64(table) > tokenMaxTableShare*float64(text) {
				return false
			}
		}
	}
	if float64(table) > tokenMaxTableShare*float64(text) {
		return false
	}
	// Most frequent first, so common tokens get one-byte indexes.
	t.order = t.order[:0]
	for i := range t.toks {
		t.order = append(t.order, uint32(i))
	}
	slices.SortStableFunc(t.order, func(a, b uint32) int {
		ca, cb := t.counts[a], t.counts[b]
		switch {
		case ca > cb:
			return -1
		case ca < cb:
			return 1
		}
		return 0
	})
	t.rank = slices.Grow(t.rank[:0], len(t.toks))[:len(t.toks)]
	for r, id := range t.order {
		t.rank[id] = uint32(r)
	}
	return true
}

// appendTableTo appends the token table: the count, lengths and bytes.
func (t *tokenEncoder) appendTableTo(dst []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(t.toks)))
	for _, id := range t.order {
		dst = binary.AppendUvarint(dst, uint64(len(t.toks[id])))
	}
	for _, id := range t.order {
		dst = append(dst, t.toks[id]...)
	}
	return dst
}

// appendRowsTo appends the per-row token counts and the token indexes.
func (t *tokenEncoder) appendRowsTo(dst []byte) []byte {
	dst = slices.Grow(dst, len(t.rows)+2*len(t.seq))
	for _, k := range t.rows {
		dst = binary.AppendUvarint(dst, uint64(k))
	}
	for _, id := range t.seq {
		if r := t.rank[id]; r < 0x80 {
			dst = append(dst, byte(r))
		} else {
			dst = binary.AppendUvarint(dst, uint64(r))
		}
	}
	return dst
}
