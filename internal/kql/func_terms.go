package kql

import (
	"strings"

	"custos/internal/store"
)

// Kusto's term rule, defined once for the has family of operators and for
// the term hints handed to the store: a term is a maximal run of ASCII
// letters and digits, compared case-insensitively. "abc-def" has the terms
// "abc" and "def", so it has "def" but not "de" (while it contains "de").
// A needle that itself spans several terms ("abc-def") matches where it
// occurs with term boundaries at both of its alphanumeric ends.

// IsTermByte reports whether c is part of a term.
func IsTermByte(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

// Terms returns the lower-cased terms of s in order of appearance, with
// duplicates. It is the store's tokeniser, so term hints and bloom filters
// agree by construction.
func Terms(s string) []string { return store.Tokenize(s) }

// Matcher finds a needle in strings by one of the has/contains/startswith
// rules. It is immutable and safe for concurrent use.
type Matcher struct {
	needle string // lower-cased unless cs
	cs     bool   // case-sensitive
	ascii  bool   // needle is ASCII, so byte-wise ASCII folding is exact
	// term boundaries required before/after the match (has family)
	boundStart, boundEnd bool
}

// MatchKind selects the rule a Matcher applies.
type MatchKind uint8

// Match kinds.
const (
	MatchContains MatchKind = iota
	MatchHas
	MatchHasPrefix
	MatchHasSuffix
	MatchStartsWith
	MatchEndsWith
)

// NewMatcher returns a matcher for needle with the given rule.
func NewMatcher(needle string, kind MatchKind, caseSensitive bool) *Matcher {
	m := &Matcher{cs: caseSensitive, ascii: isASCII(needle)}
	if !caseSensitive {
		needle = strings.ToLower(needle)
	}
	m.needle = needle
	if needle != "" {
		switch kind {
		case MatchHas:
			m.boundStart = IsTermByte(needle[0])
			m.boundEnd = IsTermByte(needle[len(needle)-1])
		case MatchHasPrefix:
			m.boundStart = IsTermByte(needle[0])
		case MatchHasSuffix:
			m.boundEnd = IsTermByte(needle[len(needle)-1])
		}
	}
	return m
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func lowerByte(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

// index returns the first position ≥ from where the needle occurs in s, or -1.
func (m *Matcher) index(s string, from int) int {
	n := m.needle
	if m.cs {
		i := strings.Index(s[from:], n)
		if i < 0 {
			return -1
		}
		return from + i
	}
	if n == "" {
		return from
	}
	first := n[0]
	last := len(s) - len(n)
	if first >= 'a' && first <= 'z' {
		// ASCII letters fold with |0x20; the first byte decides most misses.
	outerLetter:
		for i := from; i <= last; i++ {
			if s[i]|0x20 != first {
				continue
			}
			for k := 1; k < len(n); k++ {
				if lowerByte(s[i+k]) != n[k] {
					continue outerLetter
				}
			}
			return i
		}
		return -1
	}
outer:
	for i := from; i <= last; i++ {
		j := strings.IndexByte(s[i:last+1], first)
		if j < 0 {
			return -1
		}
		i += j
		for k := 1; k < len(n); k++ {
			if lowerByte(s[i+k]) != n[k] {
				continue outer
			}
		}
		return i
	}
	return -1
}

// slow handles non-ASCII needles case-insensitively by lower-casing s.
func (m *Matcher) slow(s string) string { return strings.ToLower(s) }

// Contains reports whether s contains the needle.
func (m *Matcher) Contains(s string) bool {
	if !m.cs && !m.ascii {
		return strings.Contains(m.slow(s), m.needle)
	}
	return m.index(s, 0) >= 0
}

// Has reports whether s has the needle under the term rule the matcher was
// built with (has, hasprefix or hassuffix).
func (m *Matcher) Has(s string) bool {
	if !m.cs && !m.ascii {
		s = m.slow(s)
	}
	n := len(m.needle)
	for from := 0; from+n <= len(s); {
		i := m.index(s, from)
		if i < 0 {
			return false
		}
		okStart := !m.boundStart || i == 0 || !IsTermByte(s[i-1])
		okEnd := !m.boundEnd || i+n == len(s) || !IsTermByte(s[i+n])
		if okStart && okEnd {
			return true
		}
		from = i + 1
	}
	return n == 0
}

// StartsWith reports whether s starts with the needle.
func (m *Matcher) StartsWith(s string) bool {
	if len(s) < len(m.needle) {
		return false
	}
	if m.cs {
		return strings.HasPrefix(s, m.needle)
	}
	if !m.ascii {
		return strings.HasPrefix(m.slow(s), m.needle)
	}
	for k := 0; k < len(m.needle); k++ {
		if lowerByte(s[k]) != m.needle[k] {
			return false
		}
	}
	return true
}

// EndsWith reports whether s ends with the needle.
func (m *Matcher) EndsWith(s string) bool {
	if len(s) < len(m.needle) {
		return false
	}
	if m.cs {
		return strings.HasSuffix(s, m.needle)
	}
	if !m.ascii {
		return strings.HasSuffix(m.slow(s), m.needle)
	}
	off := len(s) - len(m.needle)
	for k := 0; k < len(m.needle); k++ {
		if lowerByte(s[off+k]) != m.needle[k] {
			return false
		}
	}
	return true
}
