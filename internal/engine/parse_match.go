package engine

import (
	"regexp/syntax"
	"strings"
	"unicode/utf8"
)

// parseMatcher matches the regular expressions the binder compiles for the
// parse operator when they have the common shape — ASCII literal text,
// string captures ((?s:.*?), or (?s:.*) last before $), integer captures
// ([-+]?\d+) and skipped text ((?s:.*?)), with ^ or an unanchored start — by
// a direct backtracking search instead of the regexp package, which spends
// most of a parse query's time in its general backtracker. It finds the
// leftmost-first match, as regexp does: the earliest start, then the choices
// in priority order (lazy groups shortest first, greedy ones longest first).
// Failures are memoized per (element, position), so a row costs at most
// elements × length steps, as regexp's bounded backtracker does.
//
// A parseMatcher is immutable; each caller keeps its own parseScratch.
type parseMatcher struct {
	elems     []parseElem
	anchored  bool // ^ at the start
	endAnchor bool // $ at the end
	groups    int
}

type parseElemKind uint8

const (
	elemLit  parseElemKind = iota // literal ASCII text
	elemLazy                      // (?s:.*?), captured or not
	elemRest                      // (?s:.*) followed by $: the rest of the text
	elemInt                       // [-+]?\d+, greedy
)

type parseElem struct {
	kind  parseElemKind
	lit   string
	group int // capture group, 0 when not captured
}

// compileParseMatcher recognizes expr's shape, or returns nil when it is
// not one parseMatcher handles (regexp is used then).
func compileParseMatcher(expr string) *parseMatcher {
	if strings.HasPrefix(expr, "(?") && !strings.HasPrefix(expr, "(?s:") && !strings.HasPrefix(expr, "(?:") {
		return nil // flags (i, m, s, U) apply to the whole pattern
	}
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil
	}
	var subs []*syntax.Regexp
	if re.Op == syntax.OpConcat {
		subs = re.Sub
	} else {
		subs = []*syntax.Regexp{re}
	}
	m := &parseMatcher{}
	if len(subs) > 0 && subs[0].Op == syntax.OpBeginText {
		m.anchored, subs = true, subs[1:]
	}
	if n := len(subs); n > 0 && subs[n-1].Op == syntax.OpEndText {
		m.endAnchor, subs = true, subs[:n-1]
	}
	for i, s := range subs {
		group := 0
		if s.Op == syntax.OpCapture {
			group, s = s.Cap, s.Sub[0]
			if group != m.groups+1 {
				return nil
			}
			m.groups = group
		}
		switch {
		case s.Op == syntax.OpLiteral && group == 0:
			if s.Flags&syntax.FoldCase != 0 {
				return nil
			}
			var sb strings.Builder
			for _, r := range s.Rune {
				if r >= utf8.RuneSelf {
					return nil
				}
				sb.WriteRune(r)
			}
			if sb.Len() == 0 {
				return nil
			}
			m.elems = append(m.elems, parseElem{kind: elemLit, lit: sb.String()})
		case isAnyStar(s) && s.Flags&syntax.NonGreedy != 0:
			m.elems = append(m.elems, parseElem{kind: elemLazy, group: group})
		case isAnyStar(s) && i == len(subs)-1 && m.endAnchor:
			m.elems = append(m.elems, parseElem{kind: elemRest, group: group})
		case isSignedDigits(s):
			m.elems = append(m.elems, parseElem{kind: elemInt, group: group})
		default:
			return nil
		}
	}
	if m.groups == 0 {
		return nil
	}
	return m
}

// isAnyStar reports whether s is (?s:.*) or (?s:.*?).
func isAnyStar(s *syntax.Regexp) bool {
	return s.Op == syntax.OpStar && len(s.Sub) == 1 && s.Sub[0].Op == syntax.OpAnyChar
}

// isSignedDigits reports whether s is [-+]?\d+, both greedy.
func isSignedDigits(s *syntax.Regexp) bool {
	if s.Op != syntax.OpConcat || len(s.Sub) != 2 {
		return false
	}
	q, p := s.Sub[0], s.Sub[1]
	return q.Op == syntax.OpQuest && q.Flags&syntax.NonGreedy == 0 && len(q.Sub) == 1 &&
		q.Sub[0].Op == syntax.OpCharClass && equalRunes(q.Sub[0].Rune, []rune{'+', '+', '-', '-'}) &&
		p.Op == syntax.OpPlus && p.Flags&syntax.NonGreedy == 0 && len(p.Sub) == 1 &&
		p.Sub[0].Op == syntax.OpCharClass && equalRunes(p.Sub[0].Rune, []rune{'0', '9'})
}

func equalRunes(a, b []rune) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// parseScratch is the per-caller state of parseMatcher.match.
type parseScratch struct {
	s    string
	caps []int
	memo []uint64 // failed (element, position) pairs
}

// match reports whether s matches and fills caps (2 × (groups+1) entries,
// as regexp's FindStringSubmatchIndex).
func (m *parseMatcher) match(sc *parseScratch, s string) bool {
	sc.s = s
	if need := 2 * (m.groups + 1); len(sc.caps) != need {
		sc.caps = make([]int, need)
	}
	words := ((len(m.elems)+1)*(len(s)+1) + 63) / 64
	if cap(sc.memo) < words {
		sc.memo = make([]uint64, words)
	}
	sc.memo = sc.memo[:words]
	clear(sc.memo)
	for start := 0; start <= len(s); {
		if !m.anchored && len(m.elems) > 0 && m.elems[0].kind == elemLit {
			i := strings.Index(s[start:], m.elems[0].lit)
			if i < 0 {
				return false
			}
			start += i
		}
		if m.at(sc, 0, start) {
			sc.caps[0] = start
			return true
		}
		if m.anchored || start == len(s) {
			return false
		}
		_, w := utf8.DecodeRuneInString(s[start:])
		start += w
	}
	return false
}

// at reports whether elements k... match at pos, setting their captures and
// caps[1] (the match's end).
func (m *parseMatcher) at(sc *parseScratch, k, pos int) bool {
	s := sc.s
	if k == len(m.elems) {
		if m.endAnchor && pos != len(s) {
			return false
		}
		sc.caps[1] = pos
		return true
	}
	bit := k*(len(s)+1) + pos
	if sc.memo[bit/64]&(1<<(bit%64)) != 0 {
		return false
	}
	if m.try(sc, k, pos) {
		return true
	}
	sc.memo[bit/64] |= 1 << (bit % 64)
	return false
}

func (m *parseMatcher) try(sc *parseScratch, k, pos int) bool {
	s := sc.s
	e := &m.elems[k]
	set := func(end int) {
		if e.group > 0 {
			sc.caps[2*e.group], sc.caps[2*e.group+1] = pos, end
		}
	}
	switch e.kind {
	case elemLit:
		return strings.HasPrefix(s[pos:], e.lit) && m.at(sc, k+1, pos+len(e.lit))
	case elemRest:
		set(len(s))
		return m.at(sc, k+1, len(s))
	case elemInt:
		p := pos
		if p < len(s) && (s[p] == '+' || s[p] == '-') {
			// [-+]? is greedy: with the sign first, then without (which
			// needs a digit at pos, so fails on a sign).
			p++
		}
		end := p
		for end < len(s) && '0' <= s[end] && s[end] <= '9' {
			end++
		}
		for ; end > p; end-- { // \d+ is greedy: longest first
			set(end)
			if m.at(sc, k+1, end) {
				return true
			}
		}
		return false
	}
	// elemLazy: shortest first. When a literal follows, only the positions
	// where it occurs can succeed; an ASCII literal only occurs at rune
	// boundaries, which are the positions regexp steps through.
	if k+1 < len(m.elems) && m.elems[k+1].kind == elemLit {
		lit := m.elems[k+1].lit
		for j := pos; j <= len(s); j++ {
			i := strings.Index(s[j:], lit)
			if i < 0 {
				return false
			}
			j += i
			set(j)
			if m.at(sc, k+1, j) {
				return true
			}
		}
		return false
	}
	for j := pos; ; {
		set(j)
		if m.at(sc, k+1, j) {
			return true
		}
		if j >= len(s) {
			return false
		}
		_, w := utf8.DecodeRuneInString(s[j:])
		j += w
	}
}
