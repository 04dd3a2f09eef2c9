package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"sort"
	"unsafe"

	"github.com/klauspost/compress/zstd"
)

// Token encoding of string columns (column flag bit2, parts only).
//
// Free text such as log messages repeats words far more than whole values
// repeat, so dictionary encoding of values does not apply and zstd alone
// models the words poorly (on bench/gen's messages: 235 bytes per row at
// 4,000-row blocks). Splitting every value into tokens — maximal runs of
// ASCII letters and digits, and maximal runs of other bytes — and storing a
// per-chunk token table (most frequent first) plus one uvarint index per token
// gives zstd a stream it compresses to 183 bytes per row. Any byte string
// round-trips: a value is the concatenation of its tokens.
//
// Layout: uvarint d | d uvarint token lengths | the tokens' bytes | n uvarint
// per-row token counts | one uvarint token index per token, rows in order.

const (
	// tokenMinAvgLen: shorter values gain too little to pay for tokenizing.
	tokenMinAvgLen = 24
	// tokenMaxTableShare: give up when the distinct tokens' bytes exceed this
	// share of the text (unique IDs, hashes: nothing repeats).
	tokenMaxTableShare = 0.5
	// tokenProbeBytes: the table share is first checked after this much text.
	tokenProbeBytes = 64 << 10
)

var alnum = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	return
}()

// shortTokenSlots sizes the direct table of one- and two-byte tokens:
// index b0 for one byte, 256 + b0<<8 | b1 for two.
const shortTokenSlots = 256 + 1<<16

// tokens decodes n token-encoded strings. Every count and index is checked
// before use, and the decoded text is bounded by maxChunkBytes, so a small
// input cannot expand without limit.
//
// The token table is kept as one byte slice with offsets, padded so that a
// token of up to 16 bytes (nearly all of them) is copied into the output as
// one 16-byte move; the output has the same slack, and a move's excess bytes
// are overwritten by the next token.
func (d *decoder) tokens(n int) []string {
	nt := d.count("token count", len(d.b))
	if d.err != nil {
		return nil
	}
	off := make([]uint32, nt+1) // token x is blob[off[x]:off[x+1]]
	tableBytes := 0
	for i := range nt {
		l := d.count("string length", len(d.b))
		tableBytes += l
		if d.err != nil || tableBytes > len(d.b) {
			d.fail(fmt.Errorf("strings need %d bytes: %w", tableBytes, errShort))
			return nil
		}
		off[i+1] = uint32(tableBytes)
	}
	data := d.bytes(tableBytes)
	if d.err != nil {
		return nil
	}
	blob := make([]byte, tableBytes+16)
	copy(blob, data)
	perRow := make([]int, n) // token counts, then end offsets
	sumTokens := 0
	for i := range perRow {
		k := d.count("tokens per row", len(d.b))
		perRow[i] = k
		sumTokens += k
		if d.err == nil && sumTokens > len(d.b) { // every index takes at least one byte
			d.fail(fmt.Errorf("%d token indexes: %w", sumTokens, errShort))
		}
	}
	if d.err == nil && sumTokens > len(d.b) {
		d.fail(fmt.Errorf("%d token indexes: %w", sumTokens, errShort))
	}
	if d.err != nil {
		return nil
	}
	// One pass: each index is decoded, checked and its token copied. The
	// output grows by doubling (its final size is unknown until the end),
	// keeping 16 bytes of slack for the 16-byte moves.
	b := d.b
	p := 0
	buf := make([]byte, min(4*len(b), maxChunkBytes)+16)
	o := 0
	for i, c := range perRow {
		for range c {
			if p >= len(b) {
				d.fail(fmt.Errorf("token indexes: %w", errShort))
				return nil
			}
			x := uint64(b[p])
			if x < 0x80 {
				p++
			} else {
				v, w := binary.Uvarint(b[p:])
				if w <= 0 {
					d.fail(fmt.Errorf("bad token index: %w", errShort))
					return nil
				}
				x, p = v, p+w
			}
			if x >= uint64(nt) {
				d.fail(fmt.Errorf("token index %d out of range %d", x, nt))
				return nil
			}
			s, e := off[x], off[x+1]
			l := int(e - s)
			if o+l+16 > len(buf) {
				if o+l > maxChunkBytes {
					d.fail(fmt.Errorf("token-encoded text exceeds %d bytes", maxChunkBytes))
					return nil
				}
				nb := make([]byte, min(max(2*len(buf), o+l+16), maxChunkBytes+16))
				copy(nb, buf[:o])
				buf = nb
			}
			if l <= 16 {
				// len(buf[o:]) >= 16 and len(blob[s:]) >= 16: both carry 16 bytes of slack.
				*(*[16]byte)(buf[o:]) = *(*[16]byte)(blob[s:])
			} else {
				copy(buf[o:], blob[s:e])
			}
			o += l
		}
		perRow[i] = o
	}
	d.b = b[p:]
	total := o
	if len(buf) > 2*total+64 {
		// Far too big: keep only the text (the strings alias buf).
		buf = append([]byte(nil), buf[:total]...)
	}
	// buf is never written again: the strings alias it without a copy.
	all := unsafe.String(unsafe.SliceData(buf), total)
	out := make([]string, n)
	start := 0
	for i, e := range perRow {
		out[i] = all[start:e]
		start = e
	}
	return out
}

// maxMatchTerms bounds the terms one matchTerms call checks; rows must hold
// the first maxMatchTerms only (a weaker filter, so still correct: the engine
// re-checks every predicate).
const maxMatchTerms = 8

// matchTerms finds the rows of a split token-encoded string chunk (see
// chunkFlagSplit) that contain every one of terms as a whole token, compared
// case-insensitively (terms are lower-case, as Tokenize returns them). It
// first decompresses only the token table: when some term is not in it, no row
// can match and it returns no rows without reading further. Otherwise it walks
// the per-row token indexes and rebuilds only the matching values. ok is false
// when the chunk is not split (the caller then reads it whole).
func (p *part) matchTerms(block, col int, dec *zstd.Decoder, buf []byte, terms []string) (rows []int32, vals []string, ok bool, grown []byte, err error) {
	bm := &p.meta.blocks[block]
	cm := &bm.cols[col]
	if cm.flags&chunkFlagSplit == 0 || p.meta.cols[col].Type != TypeString || len(terms) == 0 {
		return nil, nil, false, buf, nil
	}
	terms = terms[:min(len(terms), maxMatchTerms)]
	comp, buf, err := p.openChunk(block, col, buf)
	if err != nil {
		return nil, nil, false, buf, err
	}
	n, w := binary.Uvarint(comp)
	if w <= 0 || n > uint64(len(comp)-w) {
		return nil, nil, false, buf, p.corrupt(block, col, errors.New("bad split chunk frame length"))
	}
	rawA, err := dec.DecodeAll(comp[w:w+int(n)], nil)
	if err != nil {
		return nil, nil, false, buf, p.corrupt(block, col, fmt.Errorf("decompress: %w", err))
	}
	if len(rawA) > cm.rawSize {
		return nil, nil, false, buf, p.corrupt(block, col, fmt.Errorf("decompressed more than %d bytes", cm.rawSize))
	}
	toks, err := parseTokenTable(rawA)
	if err != nil {
		return nil, nil, false, buf, p.corrupt(block, col, err)
	}
	mark, full, all := markTerms(toks, terms)
	if !all {
		return nil, nil, true, buf, nil // some term is in no row of the block
	}
	rawB, err := dec.DecodeAll(comp[w+int(n):], make([]byte, 0, cm.rawSize-len(rawA)))
	if err != nil {
		return nil, nil, false, buf, p.corrupt(block, col, fmt.Errorf("decompress: %w", err))
	}
	if len(rawA)+len(rawB) != cm.rawSize {
		return nil, nil, false, buf, p.corrupt(block, col, fmt.Errorf("decompressed %d bytes, want %d", len(rawA)+len(rawB), cm.rawSize))
	}
	rows, vals, err = matchTokenRows(rawB, bm.rows, toks, mark, full)
	if err != nil {
		return nil, nil, false, buf, p.corrupt(block, col, err)
	}
	return rows, vals, true, buf, nil
}

// tokenTable is a parsed token table: token x is text[off[x]:off[x+1]]. One
// string and one offset array, with no string header per token, keep a
// probe's allocation small and free of pointers.
type tokenTable struct {
	text string
	off  []uint32
}

func (t *tokenTable) len() int { return len(t.off) - 1 }

func (t *tokenTable) tok(x uint64) string { return t.text[t.off[x]:t.off[x+1]] }

// parseTokenTable parses the first half of a split chunk: the column flags
// (token encoding, no nulls) and the token table.
func parseTokenTable(rawA []byte) (tokenTable, error) {
	d := decoder{b: rawA}
	if f := d.byte1(); d.err == nil && f != colFlagTokens {
		return tokenTable{}, fmt.Errorf("split chunk with column flags %#x", f)
	}
	nt := d.count("token count", len(d.b))
	if d.err != nil {
		return tokenTable{}, d.err
	}
	off := make([]uint32, nt+1)
	total := 0
	for i := range nt {
		l := d.count("string length", len(d.b))
		total += l
		if d.err != nil || total > len(d.b) {
			return tokenTable{}, fmt.Errorf("strings need %d bytes: %w", total, errShort)
		}
		off[i+1] = uint32(total)
	}
	data := d.bytes(total)
	if d.err == nil && len(d.b) != 0 {
		d.fail(fmt.Errorf("%d bytes after the token table", len(d.b)))
	}
	if d.err != nil {
		return tokenTable{}, d.err
	}
	return tokenTable{text: string(data), off: off}, nil
}

// markTerms returns, per token table entry, the bit set of the terms (at most
// 8) it equals case-insensitively; full has one bit per term, and all reports
// whether every term is in the table.
func markTerms(toks tokenTable, terms []string) (mark []uint8, full uint8, all bool) {
	mark = make([]uint8, toks.len())
	var found uint8
	for i, term := range terms {
		for id := range mark {
			if int(toks.off[id+1]-toks.off[id]) == len(term) && equalFoldASCII(toks.tok(uint64(id)), term) {
				mark[id] |= 1 << i
				found |= 1 << i
			}
		}
	}
	full = uint8(1<<len(terms) - 1)
	return mark, full, found == full
}

// matchTokenRows parses the second half of a split chunk of nrows rows —
// per-row token counts, then the token indexes — and returns the rows whose
// tokens carry every bit of full in mark, with their values rebuilt from toks.
func matchTokenRows(rawB []byte, nrows int, toks tokenTable, mark []uint8, full uint8) (rows []int32, vals []string, err error) {
	nt := toks.len()
	d := decoder{b: rawB}
	counts := make([]int, nrows)
	sum := 0
	for i := range counts {
		k := d.count("tokens per row", len(d.b))
		counts[i] = k
		sum += k
		if d.err == nil && sum > len(d.b) {
			d.fail(fmt.Errorf("%d token indexes: %w", sum, errShort))
		}
	}
	if d.err != nil {
		return nil, nil, d.err
	}
	b := d.b
	starts := make([]int, len(counts)+1) // token ordinal of each row's first token
	for i, k := range counts {
		starts[i+1] = starts[i] + k
	}
	// Candidate rows: those holding terms[0], found by searching the index
	// bytes for the uvarints of its table entries. A uvarint ends with its only
	// byte below 0x80, so a match at p is a whole index exactly when p == 0 or
	// b[p-1] < 0x80; and the ordinal of that index is the number of such bytes
	// before p.
	type cand struct {
		row   int32
		start int // byte offset of the row's first index
	}
	var cands []cand
	var pat [binary.MaxVarintLen64]byte
	for id, m := range mark {
		if m&1 == 0 {
			continue
		}
		pattern := binary.AppendUvarint(pat[:0], uint64(id))
		ord, counted := 0, 0
		for off := 0; off < len(b); {
			i := bytes.Index(b[off:], pattern)
			if i < 0 {
				break
			}
			q := off + i
			off = q + 1
			if q > 0 && b[q-1] >= 0x80 {
				continue // inside another index
			}
			ord += countUvarintEnds(b[counted:q])
			counted = q
			r := sort.Search(len(counts), func(r int) bool { return starts[r+1] > ord })
			if r >= len(counts) {
				return nil, nil, errors.New("token index beyond the last row")
			}
			// Walk back to the row's first index: past ord-starts[r] index ends.
			start, back := q, ord-starts[r]
			for back > 0 && start > 0 {
				start--
				if start == 0 || b[start-1] < 0x80 {
					back--
				}
			}
			if back != 0 {
				return nil, nil, errors.New("token indexes do not match the row counts")
			}
			cands = append(cands, cand{int32(r), start})
		}
	}
	slices.SortFunc(cands, func(x, y cand) int { return int(x.row) - int(y.row) })
	cands = slices.CompactFunc(cands, func(x, y cand) bool { return x.row == y.row })
	ids := make([]uint32, 0, 256)
	for _, c := range cands {
		k := counts[c.row]
		ids = ids[:0]
		var acc uint8
		pos := c.start
		size := 0
		for range k {
			x, w := binary.Uvarint(b[pos:])
			if w <= 0 || x >= uint64(nt) {
				return nil, nil, fmt.Errorf("bad token index in row %d", c.row)
			}
			pos += w
			acc |= mark[x]
			ids = append(ids, uint32(x))
			size += int(toks.off[x+1] - toks.off[x])
		}
		if acc != full {
			continue
		}
		if size > maxChunkBytes {
			return nil, nil, fmt.Errorf("token-encoded value exceeds %d bytes", maxChunkBytes)
		}
		v := make([]byte, 0, size)
		for _, x := range ids {
			v = append(v, toks.tok(uint64(x))...)
		}
		rows = append(rows, c.row)
		vals = append(vals, string(v))
	}
	// The whole stream must hold exactly the indexes the counts announce.
	if n := countUvarintEnds(b); n != starts[len(counts)] || (len(b) > 0 && b[len(b)-1] >= 0x80) {
		return nil, nil, fmt.Errorf("%d token indexes, row counts say %d", n, starts[len(counts)])
	}
	return rows, vals, nil
}

// countUvarintEnds counts the bytes below 0x80 in b: the number of uvarints
// that end in b. Eight bytes at a time.
func countUvarintEnds(b []byte) int {
	n := 0
	for len(b) >= 8 {
		w := binary.LittleEndian.Uint64(b)
		n += bits.OnesCount64(^w & 0x8080808080808080)
		b = b[8:]
	}
	for _, c := range b {
		if c < 0x80 {
			n++
		}
	}
	return n
}

// equalFoldASCII compares a and b (of equal length) ignoring ASCII case.
func equalFoldASCII(a, b string) bool {
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x != y {
			if 'A' <= x && x <= 'Z' {
				x += 'a' - 'A'
			}
			if 'A' <= y && y <= 'Z' {
				y += 'a' - 'A'
			}
			if x != y {
				return false
			}
		}
	}
	return true
}
