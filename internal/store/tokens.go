package store

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"unsafe"
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

// tokenCoder builds the token encoding of one column chunk. Reused through
// tokenCoders.
type tokenCoder struct {
	ids    map[string]uint32
	toks   []string
	counts []uint32 // occurrences per token ID
	rows   []uint32 // tokens per row
	seq    []uint32 // token IDs, rows in order
	rank   []uint32 // token ID → index in frequency order
	order  []uint32 // frequency order → token ID
}

var tokenCoders = sync.Pool{New: func() any { return &tokenCoder{ids: make(map[string]uint32)} }}

func getTokenCoder() *tokenCoder { return tokenCoders.Get().(*tokenCoder) }

func putTokenCoder(t *tokenCoder) {
	if t == nil {
		return
	}
	clear(t.ids)
	clear(t.toks) // drop references to the column's strings
	t.toks, t.counts, t.rows, t.seq = t.toks[:0], t.counts[:0], t.rows[:0], t.seq[:0]
	tokenCoders.Put(t)
}

// analyze tokenizes ss and reports whether the token encoding is worth
// using. On false the coder holds partial state; put it back.
func (t *tokenCoder) analyze(ss []string) bool {
	total := 0
	for _, s := range ss {
		total += len(s)
	}
	if total < tokenMinAvgLen*len(ss) {
		return false
	}
	text, table := 0, 0
	probed := false
	for _, s := range ss {
		k := 0
		for i := 0; i < len(s); {
			a := alnum[s[i]]
			j := i + 1
			for j < len(s) && alnum[s[j]] == a {
				j++
			}
			tok := s[i:j]
			id, ok := t.ids[tok]
			if !ok {
				id = uint32(len(t.toks))
				t.ids[tok] = id
				t.toks = append(t.toks, tok)
				t.counts = append(t.counts, 0)
				table += len(tok)
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

// appendTo appends the encoding analyze prepared.
func (t *tokenCoder) appendTo(dst []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(t.toks)))
	for _, id := range t.order {
		dst = binary.AppendUvarint(dst, uint64(len(t.toks[id])))
	}
	for _, id := range t.order {
		dst = append(dst, t.toks[id]...)
	}
	for _, k := range t.rows {
		dst = binary.AppendUvarint(dst, uint64(k))
	}
	for _, id := range t.seq {
		dst = binary.AppendUvarint(dst, uint64(t.rank[id]))
	}
	return dst
}

// tokenScratch holds decoded token indexes between the two passes of
// tokens; pooled because chunks hold ~10^5 tokens.
var tokenScratch = sync.Pool{New: func() any { return new([]uint32) }}

// tokens decodes n token-encoded strings. Every count and index is checked
// before use, and the decoded text is bounded by maxChunkBytes, so a small
// input cannot expand without limit.
func (d *decoder) tokens(n int) []string {
	nt := d.count("token count", len(d.b))
	if d.err != nil {
		return nil
	}
	var toks []string
	if nt > 0 {
		toks = d.stringsBody(nt)
	}
	if d.err != nil {
		return nil
	}
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
	sp := tokenScratch.Get().(*[]uint32)
	defer tokenScratch.Put(sp)
	idx := slices.Grow((*sp)[:0], sumTokens)[:sumTokens]
	*sp = idx
	b := d.b
	p, total := 0, 0
	for i := range idx {
		x := uint64(b[p]) // sumTokens <= len(b) was checked, and p < len(b) below
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
		idx[i] = uint32(x)
		total += len(toks[x])
		if total > maxChunkBytes {
			d.fail(fmt.Errorf("token-encoded text exceeds %d bytes", maxChunkBytes))
			return nil
		}
		if p >= len(b) && i+1 < len(idx) {
			d.fail(fmt.Errorf("token indexes: %w", errShort))
			return nil
		}
	}
	d.b = b[p:]
	buf := make([]byte, total)
	o, k := 0, 0
	for i, c := range perRow {
		for _, x := range idx[k : k+c] {
			o += copy(buf[o:], toks[x])
		}
		k += c
		perRow[i] = o
	}
	// buf is never written again: the strings alias it without a copy.
	all := unsafe.String(unsafe.SliceData(buf), len(buf))
	out := make([]string, n)
	start := 0
	for i, e := range perRow {
		out[i] = all[start:e]
		start = e
	}
	return out
}
