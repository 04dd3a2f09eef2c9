package engine

import (
	"encoding/json"
	"unicode/utf8"
	"unsafe"
)

// splitJSONArray is mv-expand's fast path for a dynamic array: it returns
// the elements exactly as decodeJSON + encodeJSON would render them (null
// elements as ""), without building the decoded tree. Scalars (numbers,
// true, false, and strings the encoder would not re-escape) are the
// element's own text; nested arrays and objects go through
// decodeJSON/encodeJSON one by one, so their rendering (sorted keys) stays
// identical. ok is false when s is not a valid JSON array; the caller then
// takes the general path.
func splitJSONArray(s string) (out []string, ok bool) {
	i := skipSpace(s, 0)
	if i >= len(s) || s[i] != '[' {
		return nil, false
	}
	if !json.Valid(unsafe.Slice(unsafe.StringData(s), len(s))) {
		return nil, false
	}
	i = skipSpace(s, i+1)
	if i < len(s) && s[i] == ']' {
		return []string{}, true
	}
	for i < len(s) {
		start := i
		end, verbatim := jsonElementEnd(s, i)
		elem := s[start:end]
		switch {
		case elem == "null":
			out = append(out, "")
		case verbatim:
			out = append(out, elem)
		default:
			v, ok := decodeJSON(elem)
			if !ok {
				return nil, false
			}
			out = append(out, encodeJSON(v))
		}
		i = skipSpace(s, end)
		if i >= len(s) {
			return nil, false
		}
		if s[i] == ']' {
			return out, true
		}
		if s[i] != ',' {
			return nil, false
		}
		i = skipSpace(s, i+1)
	}
	return nil, false
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// jsonElementEnd returns the end of the valid JSON value starting at i and
// whether its text is what encodeJSON would produce for it.
func jsonElementEnd(s string, i int) (end int, verbatim bool) {
	switch s[i] {
	case '"':
		verbatim = true
		for j := i + 1; j < len(s); j++ {
			switch c := s[j]; {
			case c == '\\':
				verbatim = false
				j++
			case c == '"':
				return j + 1, verbatim && encodesAsIs(s[i+1:j])
			}
		}
		return len(s), false
	case '[', '{':
		depth := 0
		for j := i; j < len(s); j++ {
			switch s[j] {
			case '"':
				for j++; j < len(s) && s[j] != '"'; j++ {
					if s[j] == '\\' {
						j++
					}
				}
			case '[', '{':
				depth++
			case ']', '}':
				depth--
				if depth == 0 {
					return j + 1, false
				}
			}
		}
		return len(s), false
	}
	j := i
	for j < len(s) && s[j] != ',' && s[j] != ']' && s[j] != ' ' && s[j] != '\t' && s[j] != '\n' && s[j] != '\r' {
		j++
	}
	return j, true // numbers stay as written (decodeJSON uses json.Number), true/false/null
}

// encodesAsIs reports whether encoding/json (HTML escaping off) writes the
// unescaped string body b unchanged: valid UTF-8 without control characters,
// U+2028 or U+2029.
func encodesAsIs(b string) bool {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if c < 0x20 {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(b[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			return false
		}
		i += size
	}
	return true
}
