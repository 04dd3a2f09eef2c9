package ingest

import (
	"io"
	"strconv"
	"sync"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// bodyScanner reads an ingestion body as JSON, streaming: it holds only the
// value being scanned (at most the body limit) in a sliding buffer. It is a
// hand-written replacement for encoding/json's Decoder token API that
// accepts and rejects exactly the same inputs, reporting the same syntax
// error messages and offsets (see decode_ref_test.go, which checks this
// against encoding/json), without the Decoder's per-value allocations.
//
// Not safe for concurrent use.
type bodyScanner struct {
	r    io.Reader
	buf  []byte
	pool *[]byte // the pooled buffer buf started as; nil once buf grew past it
	pos  int     // next unread byte of buf
	base int64   // input offset of buf[0]
	rerr error   // read error, reported once buf is exhausted

	// scanned counts the bytes encoding/json's scanner steps through in its
	// Decoder.readValue calls (values and keys, not the delimiters between
	// them). Its syntax errors carry this running count as their offset.
	scanned int64
	stack   []byte // nesting of the value being scanned

	// esc and high describe the last scanned string scalar: it contains an
	// escape sequence; it contains a byte >= 0x80.
	esc, high bool
}

const (
	scanBufBytes  = 32 << 10
	scanMinRead   = 4 << 10
	maxPooledScan = 256 << 10
	// maxNestingDepth is encoding/json's nesting limit.
	maxNestingDepth = 10000
)

var scanBufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, scanBufBytes)
	return &b
}}

func newBodyScanner(r io.Reader) *bodyScanner {
	p := scanBufPool.Get().(*[]byte)
	return &bodyScanner{r: r, buf: (*p)[:0], pool: p}
}

// release returns the buffer to the pool. The scanner must not be used after.
func (s *bodyScanner) release() {
	if s.pool != nil {
		*s.pool = s.buf[:0]
		scanBufPool.Put(s.pool)
	} else if cap(s.buf) <= maxPooledScan {
		b := s.buf[:0]
		scanBufPool.Put(&b)
	}
	s.buf, s.pool = nil, nil
}

// fill drops buf[:keep], then reads more input. It returns how far the kept
// bytes moved down (callers shift their indexes by it) and whether any byte
// was added. A read error is kept in s.rerr and reported by the callers only
// once the buffered bytes are used up, as encoding/json does.
func (s *bodyScanner) fill(keep int) (shift int, ok bool) {
	if s.rerr != nil {
		return 0, false
	}
	if keep > 0 {
		n := copy(s.buf, s.buf[keep:])
		s.buf = s.buf[:n]
		s.base += int64(keep)
		s.pos -= keep
		shift = keep
	}
	if cap(s.buf)-len(s.buf) < scanMinRead {
		nb := make([]byte, len(s.buf), 2*cap(s.buf)+scanMinRead)
		copy(nb, s.buf)
		if s.pool != nil {
			*s.pool = s.buf[:0]
			scanBufPool.Put(s.pool)
			s.pool = nil
		}
		s.buf = nb
	}
	for empty := 0; ; empty++ {
		n, err := s.r.Read(s.buf[len(s.buf):cap(s.buf)])
		s.buf = s.buf[:len(s.buf)+n]
		if err != nil {
			s.rerr = err
		}
		if n > 0 || err != nil {
			return shift, n > 0
		}
		if empty == 100 {
			s.rerr = io.ErrNoProgress
			return shift, false
		}
	}
}

func isSpace(c byte) bool {
	return c <= ' ' && (c == ' ' || c == '\t' || c == '\r' || c == '\n')
}

// peek skips whitespace and returns the next byte without consuming it, or
// the read error (io.EOF at the end).
func (s *bodyScanner) peek() (byte, error) {
	for {
		for s.pos < len(s.buf) {
			if c := s.buf[s.pos]; !isSpace(c) {
				return c, nil
			}
			s.pos++
		}
		if _, ok := s.fill(s.pos); !ok {
			return 0, s.rerr
		}
	}
}

// offset is the input offset of the next unread byte (Decoder.InputOffset).
func (s *bodyScanner) offset() int64 { return s.base + int64(s.pos) }

// syntaxError is a JSON syntax error, worded and placed as encoding/json's
// *json.SyntaxError.
type syntaxError struct {
	msg    string
	offset int64
}

func (e *syntaxError) Error() string { return e.msg }

// numberRangeError reports a number a float64 cannot hold where encoding/json
// would decode into an interface value (an *json.UnmarshalTypeError).
type numberRangeError struct{}

func (numberRangeError) Error() string { return "number out of range" }

// Token states of encoding/json's Decoder, for tokenError's wording.
const (
	tokTopValue = iota
	tokArrayStart
	tokArrayValue
	tokArrayComma
	tokObjectStart
	tokObjectKey
	tokObjectColon
	tokObjectValue
	tokObjectComma
)

// tokenError is the Decoder's error for an unexpected byte c at s.pos.
func (s *bodyScanner) tokenError(c byte, state int) error {
	var context string
	switch state {
	case tokTopValue, tokArrayStart, tokArrayValue, tokObjectValue:
		context = " looking for beginning of value"
	case tokArrayComma:
		context = " after array element"
	case tokObjectKey:
		context = " looking for beginning of object key string"
	case tokObjectColon:
		context = " after object key"
	case tokObjectComma:
		context = " after object key:value pair"
	}
	return &syntaxError{"invalid character " + quoteChar(c) + context, s.offset()}
}

// quoteChar formats c as encoding/json does in its messages.
func quoteChar(c byte) string {
	if c == '\'' {
		return `'\''`
	}
	if c == '"' {
		return `'"'`
	}
	q := strconv.Quote(string(rune(c)))
	return "'" + q[1:len(q)-1] + "'"
}

// Scanner states, one per state function of encoding/json's scanner.
const (
	stBegin        = iota // stateBeginValue
	stBeginOrEmpty        // after '['
	stKeyOrEmpty          // after '{'
	stKey                 // after ',' in an object
	stString
	stStringEsc
	stStringU1
	stStringU2
	stStringU3
	stStringU4
	stNeg
	st0
	st1
	stDot
	stDot0
	stE
	stESign
	stE0
	stT
	stTr
	stTru
	stF
	stFa
	stFal
	stFals
	stN
	stNu
	stNul
	stEnd // stateEndValue
)

const (
	parseObjectKey = iota
	parseObjectValue
	parseArrayValue
)

// literalNext maps a literal state to the byte it expects, the next state and
// the error context.
var literalNext = [...]struct {
	want byte
	next int
	ctx  string
}{
	stT:    {'r', stTr, "in literal true (expecting 'r')"},
	stTr:   {'u', stTru, "in literal true (expecting 'u')"},
	stTru:  {'e', stEnd, "in literal true (expecting 'e')"},
	stF:    {'a', stFa, "in literal false (expecting 'a')"},
	stFa:   {'l', stFal, "in literal false (expecting 'l')"},
	stFal:  {'s', stFals, "in literal false (expecting 's')"},
	stFals: {'e', stEnd, "in literal false (expecting 'e')"},
	stN:    {'u', stNu, "in literal null (expecting 'u')"},
	stNu:   {'l', stNul, "in literal null (expecting 'l')"},
	stNul:  {'l', stEnd, "in literal null (expecting 'l')"},
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// scanValue reads one JSON value from s.pos, as Decoder.readValue does:
// leading whitespace is skipped, a scalar ends before the first byte that
// cannot continue it (which stays unread), an object or array after its
// closing bracket. It returns the value's bounds in s.buf, without the
// leading whitespace; they are valid until the next fill. At the end of the
// input a scalar that could end there is complete; anything else is
// io.ErrUnexpectedEOF. Other read errors are returned as they are.
func (s *bodyScanner) scanValue() (start, end int, err error) {
	origin := s.pos
	start = -1
	st := stBegin
	stack := s.stack[:0]
	esc, high := false, byte(0)
	i := s.pos
	for {
		buf := s.buf
		for i < len(buf) {
			c := buf[i]
			switch st {
			case stBegin:
				if isSpace(c) {
					i++
					continue
				}
				if start < 0 {
					start = i
				}
				switch {
				case c == '"':
					st = stString
				case c == '{' || c == '[':
					ps := byte(parseObjectKey)
					st = stKeyOrEmpty
					if c == '[' {
						ps, st = parseArrayValue, stBeginOrEmpty
					}
					stack = append(stack, ps)
					if len(stack) > maxNestingDepth {
						return 0, 0, s.fail(c, "exceeded max depth", i-origin, stack)
					}
				case c == '-':
					st = stNeg
				case c == '0':
					st = st0
				case '1' <= c && c <= '9':
					st = st1
				case c == 't':
					st = stT
				case c == 'f':
					st = stF
				case c == 'n':
					st = stN
				default:
					return 0, 0, s.fail(c, "looking for beginning of value", i-origin, stack)
				}
				i++
			case stBeginOrEmpty:
				if isSpace(c) {
					i++
					continue
				}
				st = stBegin
				if c == ']' {
					st = stEnd
				}
			case stKeyOrEmpty:
				if isSpace(c) {
					i++
					continue
				}
				st = stKey
				if c == '}' {
					stack[len(stack)-1] = parseObjectValue
					st = stEnd
				}
			case stKey:
				if isSpace(c) {
					i++
					continue
				}
				if c != '"' {
					return 0, 0, s.fail(c, "looking for beginning of object key string", i-origin, stack)
				}
				st = stString
				i++
			case stString:
				j := i
				for j < len(buf) {
					c = buf[j]
					if c < 0x20 || c == '"' || c == '\\' {
						break
					}
					high |= c
					j++
				}
				i = j
				if j == len(buf) {
					continue
				}
				switch {
				case c == '"':
					st = stEnd
				case c == '\\':
					esc = true
					st = stStringEsc
				default:
					return 0, 0, s.fail(c, "in string literal", i-origin, stack)
				}
				i++
			case stStringEsc:
				switch c {
				case 'b', 'f', 'n', 'r', 't', '\\', '/', '"':
					st = stString
				case 'u':
					st = stStringU1
				default:
					return 0, 0, s.fail(c, "in string escape code", i-origin, stack)
				}
				i++
			case stStringU1, stStringU2, stStringU3, stStringU4:
				if !isHex(c) {
					return 0, 0, s.fail(c, `in \u hexadecimal character escape`, i-origin, stack)
				}
				st++
				if st > stStringU4 {
					st = stString
				}
				i++
			case stNeg:
				switch {
				case c == '0':
					st = st0
				case '1' <= c && c <= '9':
					st = st1
				default:
					return 0, 0, s.fail(c, "in numeric literal", i-origin, stack)
				}
				i++
			case st1:
				for i < len(buf) && '0' <= buf[i] && buf[i] <= '9' {
					i++
				}
				if i < len(buf) {
					st = st0
				}
			case st0:
				switch c {
				case '.':
					st = stDot
					i++
				case 'e', 'E':
					st = stE
					i++
				default:
					st = stEnd
				}
			case stDot:
				if c < '0' || c > '9' {
					return 0, 0, s.fail(c, "after decimal point in numeric literal", i-origin, stack)
				}
				st = stDot0
				i++
			case stDot0, stE0:
				for i < len(buf) && '0' <= buf[i] && buf[i] <= '9' {
					i++
				}
				if i == len(buf) {
					continue
				}
				if c = buf[i]; st == stDot0 && (c == 'e' || c == 'E') {
					st = stE
					i++
				} else {
					st = stEnd
				}
			case stE:
				st = stESign
				if c == '+' || c == '-' {
					i++
				}
			case stESign:
				if c < '0' || c > '9' {
					return 0, 0, s.fail(c, "in exponent of numeric literal", i-origin, stack)
				}
				st = stE0
				i++
			case stT, stTr, stTru, stF, stFa, stFal, stFals, stN, stNu, stNul:
				l := &literalNext[st]
				if c != l.want {
					return 0, 0, s.fail(c, l.ctx, i-origin, stack)
				}
				st = l.next
				i++
			case stEnd:
				n := len(stack)
				if n == 0 {
					// The scalar ended before c.
					return s.endValue(origin, start, i, stack, esc, high)
				}
				if isSpace(c) {
					i++
					continue
				}
				switch stack[n-1] {
				case parseObjectKey:
					if c != ':' {
						return 0, 0, s.fail(c, "after object key", i-origin, stack)
					}
					stack[n-1] = parseObjectValue
					st = stBegin
				case parseObjectValue:
					switch c {
					case ',':
						stack[n-1] = parseObjectKey
						st = stKey
					case '}':
						stack = stack[:n-1]
					default:
						return 0, 0, s.fail(c, "after object key:value pair", i-origin, stack)
					}
				default: // parseArrayValue
					switch c {
					case ',':
						st = stBegin
					case ']':
						stack = stack[:n-1]
					default:
						return 0, 0, s.fail(c, "after array element", i-origin, stack)
					}
				}
				i++
				if len(stack) == 0 {
					return s.endValue(origin, start, i, stack, esc, high)
				}
			}
		}
		shift, ok := s.fill(origin)
		origin -= shift
		i -= shift
		if start >= 0 {
			start -= shift
		}
		if ok {
			continue
		}
		s.stack = stack
		if s.rerr != io.EOF {
			return 0, 0, s.rerr
		}
		if len(stack) == 0 && (st == stEnd || st == st0 || st == st1 || st == stDot0 || st == stE0) {
			return s.endValue(origin, start, i, stack, esc, high)
		}
		return 0, 0, io.ErrUnexpectedEOF
	}
}

// fail is the scanner's syntax error at byte c, which is at distance off
// from where the value's scan began.
func (s *bodyScanner) fail(c byte, context string, off int, stack []byte) error {
	s.stack = stack
	return &syntaxError{"invalid character " + quoteChar(c) + " " + context, s.scanned + int64(off) + 1}
}

func (s *bodyScanner) endValue(origin, start, end int, stack []byte, esc bool, high byte) (int, int, error) {
	s.stack = stack
	s.scanned += int64(end - origin)
	s.pos = end
	s.esc, s.high = esc, high >= utf8.RuneSelf
	return start, end, nil
}

// scanScalarToken reads a value where the Decoder's Token would decode it
// into an interface value (only scalars reach here): syntax errors as
// scanValue, and a number beyond float64 is an UnmarshalTypeError.
func (s *bodyScanner) scanScalarToken() error {
	start, end, err := s.scanValue()
	if err != nil {
		return err
	}
	if c := s.buf[start]; c == '-' || '0' <= c && c <= '9' {
		if _, err := strconv.ParseFloat(string(s.buf[start:end]), 64); err != nil {
			return numberRangeError{}
		}
	}
	return nil
}

// appendUnquoted appends the content of the JSON string literal q, which the
// scanner accepted, to dst, as encoding/json unquotes it: escapes decoded,
// invalid UTF-8 and unpaired surrogates replaced by U+FFFD. plain says q has
// no escapes and is valid UTF-8, so its content is copied as it is.
func appendUnquoted(dst, q []byte, plain bool) []byte {
	s := q[1 : len(q)-1]
	if plain {
		return append(dst, s...)
	}
	for r := 0; r < len(s); {
		c := s[r]
		switch {
		case c == '\\':
			r++
			switch e := s[r]; e {
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				rr := getu4(s[r-1:])
				r += 5
				if utf16.IsSurrogate(rr) {
					if rr1 := getu4(s[r:]); rr1 >= 0 {
						if d := utf16.DecodeRune(rr, rr1); d != unicode.ReplacementChar {
							r += 6
							dst = utf8.AppendRune(dst, d)
							continue
						}
					}
					rr = unicode.ReplacementChar
				}
				dst = utf8.AppendRune(dst, rr)
				continue
			default: // '"', '\\', '/'
				dst = append(dst, e)
			}
			r++
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			r++
		default:
			rr, size := utf8.DecodeRune(s[r:])
			r += size
			dst = utf8.AppendRune(dst, rr)
		}
	}
	return dst
}

// getu4 decodes \uXXXX at the start of s, or returns -1.
func getu4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// isPlain reports whether the scanned string literal q can be used without
// unquoting: no escapes, valid UTF-8.
func isPlain(q []byte, esc, high bool) bool {
	return !esc && (!high || utf8.Valid(q[1:len(q)-1]))
}

// appendCompact appends the valid JSON value v without insignificant
// whitespace, as json.Compact does.
func appendCompact(dst, v []byte) []byte {
	start := 0
	inString, escaped := false, false
	for i, c := range v {
		switch {
		case inString:
			if escaped {
				escaped = false
			} else if c == '\\' {
				escaped = true
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case isSpace(c):
			dst = append(dst, v[start:i]...)
			start = i + 1
		}
	}
	return append(dst, v[start:]...)
}
