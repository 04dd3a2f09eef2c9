package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sync"
	"unsafe"
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
//	packed (flag bit4, parts only; see bitpack.go): an int column's values
//	          are bit-packed in groups (frame of reference, of the values or of
//	          their deltas) instead of varints; a dictionary column's codes are
//	          one bit-packed stream of width bits.Len(d-1) instead of uvarints
const (
	colFlagNulls   = 1 << 0
	colFlagDict    = 1 << 1
	colFlagTokens  = 1 << 2
	colFlagDecText = 1 << 3
	colFlagPacked  = 1 << 4
)

// encMode selects the encodings encodeChunkMode may use.
type encMode uint8

const (
	// encCompact: dictionary and token strings where they pay off.
	encCompact encMode = 1 << iota
	// encPacked: bit-packed integers and dictionary codes (colFlagPacked).
	encPacked
)

// partEncoding is what parts use; the WAL uses 0 (plain strings, varints).
const partEncoding = encCompact | encPacked

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
	dst, _, _ = encodeChunk(dst, v, lo, hi, compact, false)
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

// encodeChunk is encodeColumn for part chunks. With withBloom, when v is a string-class vector, it also returns the chunk's token bloom
// filter, built from the distinct values or tokens the encoding found (so
// each distinct token is hashed once rather than once per occurrence). For a
// token-encoded string column, split is the offset (from the start of what
// was appended) where the token table ends and the per-row token counts
// begin; parts compress the two halves separately so a term search can read
// the table alone (see chunkFlagSplit). Otherwise split is 0.
func encodeChunk(dst []byte, v *Vector, lo, hi int, compact, withBloom bool) (out []byte, bl bloom, split int) {
	var mode encMode
	if compact {
		mode = partEncoding
	}
	return encodeChunkMode(dst, v, lo, hi, mode, withBloom)
}

// encodeChunkMode is encodeChunk with the encodings chosen by mode (tests
// and benchmarks write the encodings of earlier versions with it).
func encodeChunkMode(dst []byte, v *Vector, lo, hi int, mode encMode, withBloom bool) (out []byte, bl bloom, split int) {
	compact := mode&encCompact != 0
	packed := mode&encPacked != 0
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
	var dictCodes []uint32 // per row, in the first pass
	if cls == classStr && compact && n >= 16 {
		dm := dictMaps.Get().(map[string]uint32)
		defer putDictMap(dm)
		dictIdx = dm
		limit := dictLimit(v.Str[lo:hi])
		dictCodes = getCodes(n)
		for _, s := range v.Str[lo:hi] {
			c, ok := dictIdx[s]
			if !ok {
				if len(dictVals) >= limit {
					dictIdx = nil
					break
				}
				c = uint32(len(dictVals))
				dictIdx[s] = c
				dictVals = append(dictVals, s)
			}
			dictCodes = append(dictCodes, c)
		}
		if dictIdx != nil {
			flags |= colFlagDict
		} else {
			putCodes(dictCodes)
			dictCodes = nil
		}
	}
	var tok *tokenEncoder
	if cls == classStr && compact && n >= 16 && dictIdx == nil && v.Type != TypeGUID {
		tok = getTokenEncoder()
		if tok.analyzeHashing(v.Str[lo:hi], withBloom && v.Type == TypeString) {
			flags |= colFlagTokens
		} else {
			putTokenEncoder(tok)
			tok = nil
		}
	}
	if packed && (cls == classInt || dictIdx != nil) {
		flags |= colFlagPacked
	}
	if withBloom && cls == classStr {
		switch {
		case dictIdx != nil:
			// Null slots hold "" (no tokens), so the distinct values cover every row.
			bl = buildBloom(dictVals, nil, v.Type == TypeDynamic)
		case tok != nil && v.Type == TypeString:
			// Strings are never null, and a value's tokens are table
			// entries, hashed as analyzeHashing added them.
			bl = bloomOfHashes(tok.hashes)
		default:
			bl = buildBloom(v.Str[lo:hi], nullsOf(v, lo, hi), v.Type == TypeDynamic)
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
		if flags&colFlagPacked != 0 {
			sc := intScratches.Get().(*intScratch)
			xs := v.Int[lo:hi]
			if hasNulls {
				sc.ints = fillNullInts(xs, v.Nulls[lo:hi], sc.ints)
				xs = sc.ints
			}
			dst, sc.spans = appendPackedInts(dst, xs, sc.spans)
			intScratches.Put(sc)
			break
		}
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
			dst = appendCodes(dst, flags, dictCodes, len(dictVals))
			putCodes(dictCodes)
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

// dictMaps recycles encodeChunk's dictionary maps: a map that keeps its
// buckets is filled without growing, which was most of the cost of trying a
// dictionary on high-cardinality columns.
var dictMaps = sync.Pool{New: func() any { return make(map[string]uint32, 1024) }}

func putDictMap(m map[string]uint32) {
	if len(m) > 1<<16 {
		return // rare; do not keep a huge map alive
	}
	clear(m) // drops the references to the column's strings
	dictMaps.Put(m)
}

// appendCodes appends the codes of a dictionary of nd entries: bit-packed
// when flags has colFlagPacked, else uvarints.
func appendCodes(dst []byte, flags byte, codes []uint32, nd int) []byte {
	if flags&colFlagPacked != 0 {
		return appendPacked(dst, codes, codeWidth(nd))
	}
	for _, c := range codes {
		dst = binary.AppendUvarint(dst, uint64(c))
	}
	return dst
}

// dictCodes reads len(codes) codes of a dictionary of nd entries, written
// by appendCodes with flags, and checks them against nd.
func (d *decoder) dictCodes(flags byte, codes []uint32, nd int) {
	if flags&colFlagPacked != 0 {
		d.packedCodes(codes, nd)
		return
	}
	for i := range codes {
		idx := d.uvarint()
		if d.err == nil && idx >= uint64(nd) {
			d.fail(fmt.Errorf("dictionary index %d out of range %d", idx, nd))
		}
		if d.err != nil {
			return
		}
		codes[i] = uint32(idx)
	}
}

// intScratch is encodeChunk's scratch for packing an int column: the values
// with null slots filled, and the groups' spans.
type intScratch struct {
	ints  []int64
	spans []groupSpan
}

var intScratches = sync.Pool{New: func() any { return new(intScratch) }}

// codeWidth is the bit width of the packed codes of a dictionary of nd
// entries.
func codeWidth(nd int) uint { return uint(bits.Len(uint(max(nd, 1) - 1))) }

// codePool recycles the per-row dictionary codes of encodeChunk.
var codePool = sync.Pool{New: func() any { return new([]uint32) }}

func getCodes(n int) []uint32 {
	p := codePool.Get().(*[]uint32)
	return slices.Grow((*p)[:0], n)
}

func putCodes(c []uint32) {
	c = c[:0]
	codePool.Put(&c)
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
	return decodeColumnCodes(d, t, n, false)
}

// decodeColumnCodes decodes n values of type t; with codesOnly a
// dictionary-encoded string chunk comes back codes-only (Codes and Dict,
// Str nil: see Vector.CodesOnly) and no string header per row is built.
// Every code is still checked against the dictionary.
func decodeColumnCodes(d *decoder, t ColumnType, n int, codesOnly bool) (*Vector, error) {
	if n < 0 || n > maxBlockRows {
		return nil, fmt.Errorf("row count %d out of range", n)
	}
	v := &Vector{Type: t}
	flags := d.byte1()
	if flags&^(colFlagNulls|colFlagDict|colFlagTokens|colFlagDecText|colFlagPacked) != 0 {
		return nil, fmt.Errorf("unknown column flags %#x", flags)
	}
	if flags&colFlagPacked != 0 && classOf(t) != classInt && flags&colFlagDict == 0 {
		return nil, fmt.Errorf("packed flag on %s column without a dictionary", t)
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
		if flags&colFlagPacked != 0 {
			// Every group of packGroup values takes at least two bytes.
			if 1+2*((n+packGroup-1)/packGroup) > len(d.b) {
				d.fail(errShort)
				break
			}
			var s packScratch
			v.Int = d.packedInts(n, &s)
			for i, isNull := range v.Nulls {
				if isNull && v.Int != nil {
					v.Int[i] = 0
				}
			}
			break
		}
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
			codes := make([]uint32, n)
			d.dictCodes(flags, codes, len(dict))
			v.Dict, v.Codes = dict, codes
			if !codesOnly && d.err == nil {
				v.Str = make([]string, n)
				for i, c := range codes {
					v.Str[i] = dict[c]
				}
			}
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
// order of first occurrence. Token boundaries are found eight bytes at a time
// (alnumMask). Tokens of one or two bytes are numbered through a direct index;
// longer ones through an open-addressing table whose slots hold the token's
// length and key: for tokens of up to eight bytes the bytes themselves, so a
// lookup is one probe and one integer comparison, without touching the token
// text; for longer tokens a hash, confirmed by comparing the text.
// Reused through tokenEncoders.
type tokenEncoder struct {
	toks   []string
	counts []uint32 // occurrences per token ID
	rows   []uint32 // tokens per row
	seq    []uint32 // token IDs, rows in order
	rank   []uint32 // token ID → index in frequency order
	order  []uint32 // frequency order → token ID
	// short maps tokens of one or two bytes to ID+1: index b0 for one byte,
	// 256 + b0<<8 | b1 for two.
	short     []uint32
	shortUsed []int
	slots     []tokSlot // long tokens; len is a power of two
	shift     uint      // 64 - log2(len(slots))
	longs     int       // long tokens in slots
	buckets   []uint32  // frequency sort scratch
	// hashes holds the bloom hash (tokenHash) of every distinct
	// alphanumeric token, computed as analyzeHashing adds it (hash set):
	// the chunk's bloom is built from them (bloomOfHashes) without reading
	// the token table again.
	hashes []uint64
	codes  []uint64 // appendRowsTo: per token ID, its index's uvarint bytes | length<<32
}

// tokSlot is one entry of the long-token table: id is the token ID + 1 (0:
// free), n its length and key its bytes (n ≤ 8, little-endian) or hash.
type tokSlot struct {
	key uint64
	id  uint32
	n   uint32
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
	t.toks, t.counts, t.rows, t.seq, t.hashes = t.toks[:0], t.counts[:0], t.rows[:0], t.seq[:0], t.hashes[:0]
	tokenEncoders.Put(t)
}

const (
	tokHashMul   = 0x9e3779b97f4a7c15
	minTokenSlot = 1 << 12
	swarOnes     = 0x0101010101010101
	swarHigh     = 0x8080808080808080
)

// alnumMask returns, for the eight bytes of w (little-endian), 0x80 in each
// byte that is an ASCII letter or digit and 0 elsewhere. Every lane stays
// within 0..0xff, so no carry or borrow crosses lanes.
func alnumMask(w uint64) uint64 {
	x := w &^ swarHigh
	digit := (x + (0x80-'0')*swarOnes) & ((0x80+'9')*swarOnes - x)
	l := x | 0x20*swarOnes
	letter := (l + (0x80-'a')*swarOnes) & ((0x80+'z')*swarOnes - l)
	return (digit | letter) &^ w & swarHigh
}

// load8 returns the eight bytes of s at i, little-endian; i+8 <= len(s).
func load8(s string, i int) uint64 {
	return binary.LittleEndian.Uint64(unsafe.Slice(unsafe.StringData(s[i:]), 8))
}

// runEnd returns the end of the run of bytes of s of class a
// (alphanumeric or not) that continues at j: the first position from j on
// whose byte is of the other class, or len(s). Eight bytes at a time.
func runEnd(s string, j int, a bool) int {
	for j+8 <= len(s) {
		m := alnumMask(load8(s, j))
		if a {
			m ^= swarHigh
		}
		if m != 0 {
			return j + bits.TrailingZeros64(m)>>3
		}
		j += 8
	}
	for j < len(s) && alnum[s[j]] == a {
		j++
	}
	return j
}

// tokenKey returns the key of a token of 3 to 8 bytes (its bytes) or, for a
// longer one, a hash of its bytes.
func tokenKey(tok string) uint64 {
	n := len(tok)
	if n <= 8 {
		var k uint64
		if n == 8 {
			return load8(tok, 0)
		}
		for i := n - 1; i >= 0; i-- {
			k = k<<8 | uint64(tok[i])
		}
		return k
	}
	h := uint64(n)
	i := 0
	for ; i+8 <= n; i += 8 {
		h = (h ^ load8(tok, i)) * tokHashMul
		h ^= h >> 32
	}
	if i < n {
		h = (h ^ load8(tok, n-8)) * tokHashMul
		h ^= h >> 32
	}
	return h
}

// longID returns the ID of the token tok (longer than two bytes) with key k,
// adding it if new.
func (t *tokenEncoder) longID(tok string, k uint64) (id uint32, added bool) {
	if 2*(t.longs+1) > len(t.slots) {
		t.grow()
	}
	n := uint32(len(tok))
	mask := uint64(len(t.slots) - 1)
	for i := ((k + uint64(n)) * tokHashMul) >> t.shift; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.id == 0 {
			id = uint32(len(t.toks))
			*s = tokSlot{key: k, id: id + 1, n: n}
			t.longs++
			t.toks = append(t.toks, tok)
			t.counts = append(t.counts, 0)
			return id, true
		}
		if s.key == k && s.n == n && (n <= 8 || t.toks[s.id-1] == tok) {
			return s.id - 1, false
		}
	}
}

func (t *tokenEncoder) grow() {
	n := max(minTokenSlot, 2*len(t.slots))
	old := t.slots
	t.slots = make([]tokSlot, n)
	t.shift = uint(64 - bits.TrailingZeros(uint(n)))
	mask := uint64(n - 1)
	for _, s := range old {
		if s.id == 0 {
			continue
		}
		i := ((s.key + uint64(s.n)) * tokHashMul) >> t.shift
		for t.slots[i].id != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = s
	}
}

// analyze tokenizes ss and reports whether the token encoding is worth
// using (the same decision as tokenCoder.analyze). On false the encoder
// holds partial state; put it back.
func (t *tokenEncoder) analyze(ss []string) bool { return t.analyzeHashing(ss, false) }

// analyzeHashing is analyze that, with hash, also collects the bloom hash
// of every distinct alphanumeric token in t.hashes as the token enters the
// table: the chunk's bloom then needs no second pass over the tokens.
func (t *tokenEncoder) analyzeHashing(ss []string, hash bool) bool {
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
	// Room for about one token per four bytes of text (log text averages
	// five or six), so the sequence is not grown a dozen times per chunk.
	t.seq = slices.Grow(t.seq[:0], total/3)
	for _, s := range ss {
		k := 0
		for i := 0; i < len(s); {
			// The token is the run of bytes of s[i]'s class (alphanumeric
			// or not). Most separators are one byte (a space between
			// words), decided by the next byte without the eight-byte scan.
			a := alnum[s[i]]
			j := i + 1
			if j < len(s) && alnum[s[j]] == a {
				j = runEnd(s, j+1, a)
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
					t.counts = append(t.counts, 0)
					table += j - i
					if hash && a {
						t.hashes = append(t.hashes, tokenHash(s[i:j]))
					}
				}
			} else {
				var key uint64
				if j-i <= 8 && i+8 <= len(s) {
					key = load8(s, i) & (1<<(8*uint(j-i)) - 1) // a shift by 64 gives 0: all ones
				} else {
					key = tokenKey(s[i:j])
				}
				// longID's first probe, inlined: most long tokens are
				// already in the table, found in their home slot.
				n := uint32(j - i)
				hit := false
				if len(t.slots) > 0 {
					sl := &t.slots[((key+uint64(n))*tokHashMul)>>t.shift]
					if sl.id != 0 && sl.key == key && sl.n == n && (n <= 8 || t.toks[sl.id-1] == s[i:j]) {
						id, hit = sl.id-1, true
					}
				}
				if !hit {
					var added bool
					if id, added = t.longID(s[i:j], key); added {
						table += j - i
						if hash && a {
							t.hashes = append(t.hashes, tokenHash(s[i:j]))
						}
					}
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
	t.sortByFrequency()
	t.rank = slices.Grow(t.rank[:0], len(t.toks))[:len(t.toks)]
	for r, id := range t.order {
		t.rank[id] = uint32(r)
	}
	return true
}

// freqBuckets: tokens seen fewer times than this are ordered by a counting
// sort; the (few) more frequent ones by a stable comparison sort.
const freqBuckets = 256

// sortByFrequency fills order with the token IDs, most frequent first, ties
// in ID order (a stable sort by descending count).
func (t *tokenEncoder) sortByFrequency() {
	t.order = slices.Grow(t.order[:0], len(t.toks))[:len(t.toks)]
	// buckets[c] = the first position of the tokens seen c times (c <
	// freqBuckets); the frequent ones take the positions before them all.
	t.buckets = slices.Grow(t.buckets[:0], freqBuckets+1)[:freqBuckets+1]
	clear(t.buckets)
	frequent := 0
	for _, c := range t.counts {
		if c >= freqBuckets {
			frequent++
		} else {
			t.buckets[c]++
		}
	}
	pos := uint32(frequent)
	for c := freqBuckets - 1; c >= 0; c-- {
		n := t.buckets[c]
		t.buckets[c] = pos
		pos += n
	}
	f := 0
	for id, c := range t.counts {
		if c >= freqBuckets {
			t.order[f] = uint32(id)
			f++
		} else {
			t.order[t.buckets[c]] = uint32(id)
			t.buckets[c]++
		}
	}
	slices.SortStableFunc(t.order[:frequent], func(a, b uint32) int {
		ca, cb := t.counts[a], t.counts[b]
		switch {
		case ca > cb:
			return -1
		case ca < cb:
			return 1
		}
		return 0
	})
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

// appendRowsTo appends the per-row token counts and the token indexes. The
// indexes are written into room grown once for the worst case (five bytes
// per uint32 rank), most of them one or two bytes at a time.
func (t *tokenEncoder) appendRowsTo(dst []byte) []byte {
	dst = slices.Grow(dst, binary.MaxVarintLen32*(len(t.rows)+len(t.seq)))
	for _, k := range t.rows {
		dst = binary.AppendUvarint(dst, uint64(k))
	}
	out := dst[len(dst) : len(dst)+binary.MaxVarintLen32*len(t.seq)]
	rank := t.rank
	p := 0
	if len(rank) <= 1<<21 {
		// Every index fits in three bytes: each token's uvarint is looked
		// up (bytes and length, by token ID) and stored as four bytes, of
		// which the next token's overwrite the excess — no branch per
		// token. out has room: five bytes per token, at most three used.
		t.codes = slices.Grow(t.codes[:0], len(rank))[:len(rank)]
		codes := t.codes
		for id, r := range rank {
			switch {
			case r < 0x80:
				codes[id] = 1<<32 | uint64(r)
			case r < 0x4000:
				codes[id] = 2<<32 | uint64(r&0x7f|0x80) | uint64(r>>7)<<8
			default:
				codes[id] = 3<<32 | uint64(r&0x7f|0x80) | uint64((r>>7)&0x7f|0x80)<<8 | uint64(r>>14)<<16
			}
		}
		for _, id := range t.seq {
			c := codes[id]
			binary.LittleEndian.PutUint32(out[p:], uint32(c))
			p += int(c >> 32)
		}
		return dst[:len(dst)+p]
	}
	for _, id := range t.seq {
		r := rank[id]
		switch {
		case r < 0x80:
			out[p] = byte(r)
			p++
		case r < 0x4000:
			out[p] = byte(r) | 0x80
			out[p+1] = byte(r >> 7)
			p += 2
		default:
			p += binary.PutUvarint(out[p:], uint64(r))
		}
	}
	return dst[:len(dst)+p]
}
