package store

import (
	"encoding/binary"
	"slices"
	"sync"
)

// The first token coder, kept as the reference implementation that
// tokenEncoder (codec.go) must match byte for byte (codec_test.go). It uses
// a Go map per token; production encodes with tokenEncoder.

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
	// short maps tokens of one or two bytes (separators such as " " or ", ",
	// short words: about half of all tokens of free text) to ID+1 without
	// hashing: index b0 for one byte, 256 + b0<<8 | b1 for two.
	short     []uint32
	shortUsed []int // indexes of short set, to reset
}

var tokenCoders = sync.Pool{New: func() any { return &tokenCoder{ids: make(map[string]uint32)} }}

func getTokenCoder() *tokenCoder { return tokenCoders.Get().(*tokenCoder) }

func putTokenCoder(t *tokenCoder) {
	if t == nil {
		return
	}
	clear(t.ids)
	for _, k := range t.shortUsed {
		t.short[k] = 0
	}
	t.shortUsed = t.shortUsed[:0]
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
	if t.short == nil {
		t.short = make([]uint32, shortTokenSlots)
	}
	for _, s := range ss {
		k := 0
		for i := 0; i < len(s); {
			a := alnum[s[i]]
			j := i + 1
			for j < len(s) && alnum[s[j]] == a {
				j++
			}
			tok := s[i:j]
			var id uint32
			if len(tok) <= 2 {
				k := int(tok[0])
				if len(tok) == 2 {
					k = 256 + int(tok[0])<<8 | int(tok[1])
				}
				if x := t.short[k]; x != 0 {
					id = x - 1
				} else {
					id = uint32(len(t.toks))
					t.short[k] = id + 1
					t.shortUsed = append(t.shortUsed, k)
					t.toks = append(t.toks, tok)
					t.counts = append(t.counts, 0)
					table += len(tok)
				}
			} else {
				var ok bool
				if id, ok = t.ids[tok]; !ok {
					id = uint32(len(t.toks))
					t.ids[tok] = id
					t.toks = append(t.toks, tok)
					t.counts = append(t.counts, 0)
					table += len(tok)
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
func (t *tokenCoder) appendTableTo(dst []byte) []byte {
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
func (t *tokenCoder) appendRowsTo(dst []byte) []byte {
	for _, k := range t.rows {
		dst = binary.AppendUvarint(dst, uint64(k))
	}
	for _, id := range t.seq {
		dst = binary.AppendUvarint(dst, uint64(t.rank[id]))
	}
	return dst
}
