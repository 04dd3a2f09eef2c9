package store

import "sync"

// Tokenize splits s into the terms that Kusto's has operator matches and that
// the store's bloom filters index: maximal runs of ASCII letters and digits
// ([0-9A-Za-z]), lower-cased. Every other byte, including all non-ASCII
// UTF-8 bytes, separates terms. The engine must derive TermHints with the same
// rules, so a block whose filter lacks a term cannot hold a matching row.
func Tokenize(s string) []string {
	var out []string
	start := -1
	for i := 0; i <= len(s); i++ {
		if i < len(s) && isTokenByte(s[i]) {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			out = append(out, toLowerASCII(s[start:i]))
			start = -1
		}
	}
	return out
}

func isTokenByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func toLowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// FNV-1a over lower-cased bytes, finished with a 64-bit mixer so the two
// halves used for double hashing are independent enough.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func mix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// forEachTokenHash calls fn with the hash of every token of s (see Tokenize)
// without allocating.
func forEachTokenHash(s string, fn func(uint64)) {
	h := uint64(fnvOffset)
	in := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isTokenByte(c) {
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			h = (h ^ uint64(c)) * fnvPrime
			in = true
			continue
		}
		if in {
			fn(mix64(h))
			h, in = fnvOffset, false
		}
	}
	if in {
		fn(mix64(h))
	}
}

// tokenHash is the hash forEachTokenHash gives the single token tok (a
// non-empty run of ASCII letters and digits).
func tokenHash(tok string) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		h = (h ^ uint64(c)) * fnvPrime
	}
	return mix64(h)
}

// forEachDynamicTokenHash indexes JSON text twice: as stored, and with JSON
// escape sequences (\n, \u003c, ...) read as separators. The union covers a
// has test against either the escaped text or its decoded form.
func forEachDynamicTokenHash(s string, fn func(uint64)) {
	forEachTokenHash(s, fn)
	hasEscape := false
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			hasEscape = true
			break
		}
	}
	if !hasEscape {
		return
	}
	h := uint64(fnvOffset)
	in := false
	flush := func() {
		if in {
			fn(mix64(h))
			h, in = fnvOffset, false
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) {
			flush()
			if s[i+1] == 'u' {
				i += 5
			} else {
				i++
			}
			continue
		}
		if isTokenByte(c) {
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			h = (h ^ uint64(c)) * fnvPrime
			in = true
			continue
		}
		flush()
	}
	flush()
}

// bloom is a split-free bloom filter over token hashes: bloomHashes probes
// derived by double hashing, about bloomBitsPerToken bits per distinct token
// (about 1% false positives).
type bloom []uint64

const (
	bloomHashes       = 6
	bloomBitsPerToken = 10
	maxBloomWords     = 1 << 20 // 8 MiB; bounds what a corrupt footer may claim
)

func newBloom(distinct int) bloom {
	words := (distinct*bloomBitsPerToken + 63) / 64
	if words < 1 {
		words = 1
	}
	if words > maxBloomWords {
		words = maxBloomWords
	}
	return make(bloom, words)
}

func (b bloom) add(h uint64) {
	n := uint64(len(b)) * 64
	h1, h2 := h, (h>>32|h<<32)|1
	for i := uint64(0); i < bloomHashes; i++ {
		bit := (h1 + i*h2) % n
		b[bit>>6] |= 1 << (bit & 63)
	}
}

func (b bloom) has(h uint64) bool {
	if len(b) == 0 {
		return true
	}
	n := uint64(len(b)) * 64
	h1, h2 := h, (h>>32|h<<32)|1
	for i := uint64(0); i < bloomHashes; i++ {
		bit := (h1 + i*h2) % n
		if b[bit>>6]&(1<<(bit&63)) == 0 {
			return false
		}
	}
	return true
}

// buildBloom indexes the tokens of ss (the non-null strings of one column
// block). dynamic selects the JSON-aware tokeniser. The distinct hashes are
// collected in a pooled open-addressing set (hashSet), not a Go map: a chunk
// adds tens of thousands.
func buildBloom(ss []string, nulls []bool, dynamic bool) bloom {
	set := hashSets.Get().(*hashSet)
	defer func() {
		set.reset()
		hashSets.Put(set)
	}()
	add := set.add
	for i, s := range ss {
		if nulls != nil && nulls[i] {
			continue
		}
		if dynamic {
			forEachDynamicTokenHash(s, add)
		} else {
			forEachTokenHash(s, add)
		}
	}
	b := newBloom(set.len())
	set.each(b.add)
	return b
}

// bloomOfHashes is buildBloom over strings whose token hashes are hs (with
// repeats: tokens that differ only in case hash alike): the same filter, bit
// for bit.
func bloomOfHashes(hs []uint64) bloom {
	set := hashSets.Get().(*hashSet)
	defer func() {
		set.reset()
		hashSets.Put(set)
	}()
	for _, h := range hs {
		set.add(h)
	}
	b := newBloom(set.len())
	set.each(b.add)
	return b
}

// hashSet is a set of 64-bit hashes: open addressing, linear probing, at most
// half full. Zero, the free-slot marker, is tracked apart.
type hashSet struct {
	slots []uint64
	n     int
	zero  bool
}

var hashSets = sync.Pool{New: func() any { return new(hashSet) }}

func (s *hashSet) add(h uint64) {
	if h == 0 {
		s.zero = true
		return
	}
	if 2*(s.n+1) > len(s.slots) {
		s.grow()
	}
	mask := uint64(len(s.slots) - 1)
	for i := (h * tokHashMul) >> 32 & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case 0:
			s.slots[i] = h
			s.n++
			return
		case h:
			return
		}
	}
}

func (s *hashSet) grow() {
	old := s.slots
	s.slots = make([]uint64, max(1024, 2*len(old)))
	s.n = 0
	for _, h := range old {
		if h != 0 {
			s.add(h)
		}
	}
}

func (s *hashSet) len() int {
	if s.zero {
		return s.n + 1
	}
	return s.n
}

func (s *hashSet) each(fn func(uint64)) {
	if s.zero {
		fn(0)
	}
	for _, h := range s.slots {
		if h != 0 {
			fn(h)
		}
	}
}

// reset empties the set, keeping its table unless it grew past 1 Mi slots.
func (s *hashSet) reset() {
	if len(s.slots) > 1<<20 {
		s.slots = nil
	} else if s.n > 0 {
		clear(s.slots)
	}
	s.n, s.zero = 0, false
}

// termHashes returns the hashes of the tokens of a term hint.
func termHashes(term string) []uint64 {
	var hs []uint64
	forEachTokenHash(term, func(h uint64) { hs = append(hs, h) })
	return hs
}

// bloomHasAll reports whether every hash may be in b.
func bloomHasAll(b bloom, hs []uint64) bool {
	for _, h := range hs {
		if !b.has(h) {
			return false
		}
	}
	return true
}
