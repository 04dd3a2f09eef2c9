package kql

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// typedLiteralWords are the type words whose "(...)" argument is lexed as raw
// text, because it is not made of KQL tokens: datetime(2024-01-01T10:00:00Z),
// guid(74be27de-...), timespan(1.10:00:00).
var typedLiteralWords = map[string]bool{
	"datetime": true, "date": true, "timespan": true, "time": true, "guid": true, "uniqueid": true,
	"int": true, "long": true, "int64": true, "real": true, "double": true, "bool": true, "boolean": true,
	"decimal": true,
}

// bangWords are the operators that may be negated with a leading '!'.
var bangWords = map[string]bool{
	"contains": true, "contains_cs": true, "has": true, "has_cs": true,
	"hasprefix": true, "hasprefix_cs": true, "hassuffix": true, "hassuffix_cs": true,
	"startswith": true, "startswith_cs": true, "endswith": true, "endswith_cs": true,
	"in": true, "between": true, "like": true, "like_cs": true, "containscs": true,
}

// timespanUnits maps a timespan literal suffix to its length in ticks.
var timespanUnits = map[string]int64{
	"d": 864_000_000_000, "day": 864_000_000_000, "days": 864_000_000_000,
	"h": 36_000_000_000, "hr": 36_000_000_000, "hrs": 36_000_000_000, "hour": 36_000_000_000, "hours": 36_000_000_000,
	"m": 600_000_000, "min": 600_000_000, "minute": 600_000_000, "minutes": 600_000_000,
	"s": 10_000_000, "sec": 10_000_000, "second": 10_000_000, "seconds": 10_000_000,
	"ms": 10_000, "milli": 10_000, "millis": 10_000, "millisecond": 10_000, "milliseconds": 10_000,
	"microsecond": 10, "microseconds": 10, "micro": 10, "micros": 10,
	"tick": 1, "ticks": 1,
}

// maxTypedLiteralLen bounds the text of a typed literal such as
// datetime(...), parentheses included.
const maxTypedLiteralLen = 128

// multiOps are the symbolic operators of two characters, longest match first.
var multiOps = []string{"==", "!=", "<>", "<=", ">=", "=~", "!~", "=>", ".."}

// lexer turns query text into tokens. It never fails: a lexical error becomes
// a TokIllegal token and lexing continues after it, so Redact works on any
// input. Not safe for concurrent use.
type lexer struct {
	src  string
	off  int // byte offset of the next rune
	line int
	col  int
}

// lex returns all tokens of src, ending with one TokEOF token.
func lex(src string) []Token {
	lx := &lexer{src: src, line: 1, col: 1}
	toks := make([]Token, 0, len(src)/4+1)
	for {
		t := lx.next()
		toks = append(toks, t)
		if t.Kind == TokEOF {
			return toks
		}
	}
}

// Lex returns the tokens of src, ending with a TokEOF token. Lexical errors
// are returned as TokIllegal tokens whose Err says what is wrong; Lex itself
// never fails. It is meant for tools (redaction, highlighting); Parse lexes
// internally.
func Lex(src string) []Token { return lex(src) }

func (lx *lexer) pos() Pos { return Pos{Offset: lx.off, Line: lx.line, Col: lx.col} }

func (lx *lexer) peekByte(n int) byte {
	if lx.off+n < len(lx.src) {
		return lx.src[lx.off+n]
	}
	return 0
}

// advance moves past n bytes, keeping line and column (in runes) current.
func (lx *lexer) advance(n int) {
	end := lx.off + n
	if end > len(lx.src) {
		end = len(lx.src)
	}
	for lx.off < end {
		c := lx.src[lx.off]
		switch {
		case c == '\n':
			lx.line++
			lx.col = 1
			lx.off++
		case c < utf8.RuneSelf:
			lx.col++
			lx.off++
		default:
			_, size := utf8.DecodeRuneInString(lx.src[lx.off:])
			lx.col++
			lx.off += size
		}
	}
}

func (lx *lexer) skipSpaceAndComments() {
	for lx.off < len(lx.src) {
		c := lx.src[lx.off]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			lx.advance(1)
		case c == '/' && lx.peekByte(1) == '/':
			i := strings.IndexByte(lx.src[lx.off:], '\n')
			if i < 0 {
				lx.advance(len(lx.src) - lx.off)
			} else {
				lx.advance(i)
			}
		case c >= utf8.RuneSelf:
			r, _ := utf8.DecodeRuneInString(lx.src[lx.off:])
			if !unicode.IsSpace(r) {
				return
			}
			lx.advance(utf8.RuneLen(r))
		default:
			return
		}
	}
}

func isWordStart(c byte) bool {
	return c == '_' || c == '$' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isWordByte(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// wordLen returns the length of the identifier-like word at s (letters,
// digits, '_'; a leading '$' allowed; non-ASCII letters allowed).
func wordLen(s string) int {
	i := 0
	if i < len(s) && s[i] == '$' {
		i++
	}
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if !isWordByte(c) {
				break
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			break
		}
		i += size
	}
	return i
}

func (lx *lexer) emit(kind TokenKind, start Pos, text string) Token {
	return Token{Kind: kind, Pos: start, End: start.Offset + len(text), Text: text, Value: text}
}

func (lx *lexer) illegal(start Pos, msg string) Token {
	end := lx.off
	if end == start.Offset { // always make progress
		_, size := utf8.DecodeRuneInString(lx.src[lx.off:])
		lx.advance(size)
		end = lx.off
	}
	return Token{Kind: TokIllegal, Pos: start, End: end, Text: lx.src[start.Offset:end], Err: msg}
}

func (lx *lexer) next() Token {
	lx.skipSpaceAndComments()
	start := lx.pos()
	if lx.off >= len(lx.src) {
		return Token{Kind: TokEOF, Pos: start, End: lx.off}
	}
	rest := lx.src[lx.off:]
	c := rest[0]

	switch {
	case c == '"' || c == '\'':
		return lx.lexString(start, false)
	case c == '`' && strings.HasPrefix(rest, "```"):
		return lx.lexString(start, false)
	case c == '@' && (lx.peekByte(1) == '"' || lx.peekByte(1) == '\''):
		return lx.lexString(start, false)
	case (c == 'h' || c == 'H') && isObfuscatedStart(rest[1:]):
		lx.advance(1)
		t := lx.lexString(start, true)
		return t
	case isDigit(c):
		return lx.lexNumber(start)
	case isWordStart(c) || c >= utf8.RuneSelf:
		n := wordLen(rest)
		if n == 0 || (n == 1 && c == '$') {
			return lx.illegal(start, "unexpected character "+strconv.QuoteRune(firstRune(rest)))
		}
		word := rest[:n]
		// in~ is one operator word.
		if word == "in" && n < len(rest) && rest[n] == '~' {
			lx.advance(n + 1)
			return lx.emit(TokIdent, start, "in~")
		}
		if typedLiteralWords[word] {
			if t, ok := lx.lexTyped(start, word); ok {
				return t
			}
		}
		lx.advance(n)
		return lx.emit(TokIdent, start, word)
	case c == '!':
		// !contains, !has_cs, !in, !in~, !between ...
		if n := wordLen(rest[1:]); n > 0 && rest[1] != '$' {
			word := rest[1 : 1+n]
			if bangWords[word] {
				text := rest[:1+n]
				if word == "in" && 1+n < len(rest) && rest[1+n] == '~' {
					text = "!in~"
				}
				lx.advance(len(text))
				return lx.emit(TokBangWord, start, text)
			}
		}
	}
	for _, op := range multiOps {
		if strings.HasPrefix(rest, op) {
			lx.advance(len(op))
			return lx.emit(TokOp, start, op)
		}
	}
	if strings.IndexByte("()[]{},;:.|=<>+-*/%?@~!", c) >= 0 {
		lx.advance(1)
		return lx.emit(TokOp, start, rest[:1])
	}
	return lx.illegal(start, "unexpected character "+strconv.QuoteRune(firstRune(rest)))
}

func firstRune(s string) rune {
	r, _ := utf8.DecodeRuneInString(s)
	return r
}

// isObfuscatedStart reports whether s (the text after an 'h' or 'H') starts
// a string literal, making the h an obfuscation prefix.
func isObfuscatedStart(s string) bool {
	if s == "" {
		return false
	}
	switch s[0] {
	case '"', '\'':
		return true
	case '@':
		return len(s) > 1 && (s[1] == '"' || s[1] == '\'')
	case '`':
		return strings.HasPrefix(s, "```")
	}
	return false
}

// lexString lexes one string literal at the current offset (after any h
// prefix, which start already covers).
func (lx *lexer) lexString(start Pos, obfuscated bool) Token {
	rest := lx.src[lx.off:]
	var (
		value string
		n     int
		err   string
	)
	switch {
	case strings.HasPrefix(rest, "```"):
		end := strings.Index(rest[3:], "```")
		if end < 0 {
			lx.advance(len(rest))
			return Token{Kind: TokIllegal, Pos: start, End: lx.off, Text: lx.src[start.Offset:lx.off], Err: "unterminated multi-line string literal", Obfuscated: obfuscated}
		}
		value, n = rest[3:3+end], end+6
	case rest[0] == '@':
		value, n, err = scanVerbatim(rest[1:])
		n++
	default:
		value, n, err = scanQuoted(rest)
	}
	lx.advance(n)
	t := Token{Kind: TokString, Pos: start, End: lx.off, Text: lx.src[start.Offset:lx.off], Value: value, Obfuscated: obfuscated}
	if err != "" {
		t.Kind, t.Err, t.Value = TokIllegal, err, ""
	}
	return t
}

// scanVerbatim scans @"..." (s starts at the quote): no escapes, a doubled
// quote stands for one quote; no newlines.
func scanVerbatim(s string) (value string, n int, err string) {
	q := s[0]
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == q && i+1 < len(s) && s[i+1] == q:
			b.WriteByte(q)
			i++
		case c == q:
			return b.String(), i + 1, ""
		case c == '\n':
			return "", i, "unterminated string literal"
		default:
			b.WriteByte(c)
		}
	}
	return "", len(s), "unterminated string literal"
}

// scanQuoted scans a "..." or '...' literal with backslash escapes.
func scanQuoted(s string) (value string, n int, err string) {
	q := s[0]
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == q:
			return b.String(), i + 1, ""
		case c == '\n':
			return "", i, "unterminated string literal"
		case c == '\\':
			if i+1 >= len(s) {
				return "", len(s), "unterminated string literal"
			}
			i++
			switch e := s[i]; e {
			case '\\', '\'', '"':
				b.WriteByte(e)
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case 'a':
				b.WriteByte('\a')
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'v':
				b.WriteByte('\v')
			case '0', '1', '2', '3', '4', '5', '6', '7':
				j, v := i, 0
				for j < len(s) && j < i+3 && s[j] >= '0' && s[j] <= '7' {
					v = v*8 + int(s[j]-'0')
					j++
				}
				if v > 0xff {
					return "", j, "invalid octal escape in string literal"
				}
				b.WriteByte(byte(v))
				i = j - 1
			case 'x', 'u', 'U':
				digits := map[byte]int{'x': 2, 'u': 4, 'U': 8}[e]
				if i+digits >= len(s) {
					return "", len(s), "invalid escape sequence in string literal"
				}
				v, perr := strconv.ParseUint(s[i+1:i+1+digits], 16, 32)
				if perr != nil || (e != 'x' && !utf8.ValidRune(rune(v))) {
					return "", i + 1, "invalid escape sequence in string literal"
				}
				if e == 'x' {
					b.WriteByte(byte(v))
				} else {
					b.WriteRune(rune(v))
				}
				i += digits
			default:
				return "", i + 1, "invalid escape sequence '\\" + string(rune(e)) + "' in string literal"
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", len(s), "unterminated string literal"
}

// lexNumber lexes an integer, real or timespan literal.
func (lx *lexer) lexNumber(start Pos) Token {
	rest := lx.src[lx.off:]
	if len(rest) > 1 && rest[0] == '0' && (rest[1] == 'x' || rest[1] == 'X') {
		i := 2
		for i < len(rest) && strings.IndexByte("0123456789abcdefABCDEF", rest[i]) >= 0 {
			i++
		}
		if i == 2 || (i < len(rest) && isWordByte(rest[i])) {
			lx.advance(i + wordLen(rest[i:]))
			return lx.illegal(start, "invalid hexadecimal literal")
		}
		lx.advance(i)
		return lx.emit(TokLong, start, rest[:i])
	}
	i := 0
	for i < len(rest) && isDigit(rest[i]) {
		i++
	}
	kind := TokLong
	if i+1 < len(rest) && rest[i] == '.' && isDigit(rest[i+1]) {
		kind = TokReal
		i++
		for i < len(rest) && isDigit(rest[i]) {
			i++
		}
	}
	if i < len(rest) && (rest[i] == 'e' || rest[i] == 'E') {
		j := i + 1
		if j < len(rest) && (rest[j] == '+' || rest[j] == '-') {
			j++
		}
		if j < len(rest) && isDigit(rest[j]) {
			for j < len(rest) && isDigit(rest[j]) {
				j++
			}
			kind, i = TokReal, j
		}
	}
	if i < len(rest) && (isWordByte(rest[i]) || rest[i] >= utf8.RuneSelf) {
		n := wordLen(rest[i:])
		unit := rest[i : i+n]
		if _, ok := timespanUnits[unit]; ok && !strings.ContainsAny(rest[:i], "eE") {
			lx.advance(i + n)
			t := lx.emit(TokTimespan, start, rest[:i+n])
			t.Value, t.Type = rest[:i], unit
			return t
		}
		lx.advance(i + n)
		return lx.illegal(start, "invalid number or timespan literal '"+rest[:i+n]+"'")
	}
	lx.advance(i)
	return lx.emit(kind, start, rest[:i])
}

// lexTyped lexes "word(...)" as one TokTyped token when the parentheses hold
// a literal argument. ok is false when word is not followed by '(' (it is
// then an ordinary identifier, e.g. a column named "date").
func (lx *lexer) lexTyped(start Pos, word string) (Token, bool) {
	rest := lx.src[lx.off:]
	i := len(word)
	for i < len(rest) && (rest[i] == ' ' || rest[i] == '\t') {
		i++
	}
	if i >= len(rest) || rest[i] != '(' {
		return Token{}, false
	}
	// The argument is short (the longest is a datetime in RFC 850 form), so
	// the search for ')' is bounded: scanning to the end of the input for
	// every "int(" would make lexing quadratic.
	window := rest[i:]
	if len(window) > maxTypedLiteralLen {
		window = window[:maxTypedLiteralLen]
	}
	closeAt := strings.IndexByte(window, ')')
	nl := strings.IndexByte(window, '\n')
	if closeAt < 0 || (nl >= 0 && nl < closeAt) {
		lx.advance(len(word))
		return lx.illegal(start, "unterminated "+word+"(...) literal: expected ')'"), true
	}
	inner := rest[i+1 : i+closeAt]
	if q := strings.TrimSpace(inner); len(q) >= 2 && (q[0] == '"' || q[0] == '\'') && q[len(q)-1] == q[0] &&
		!strings.ContainsAny(q[1:len(q)-1], "\"'`\\") {
		// datetime("2015-01-01"), as the Kusto documentation writes it: the
		// quoted text is the literal's argument.
		inner = q[1 : len(q)-1]
	} else if strings.ContainsAny(inner, "\"'`") {
		// not a literal argument (and never swallow a string, which could be
		// an h"..." secret that Redact must see)
		return Token{}, false
	}
	lx.advance(i + closeAt + 1)
	t := lx.emit(TokTyped, start, rest[:i+closeAt+1])
	t.Type, t.Value = word, strings.TrimSpace(inner)
	return t, true
}
