package kql

import "strings"

// redactedString replaces obfuscated string literals in redacted text.
const redactedString = `"***"`

// Redact returns src with every obfuscated string literal (h"...", h'...',
// h@"...", h```...```) replaced by "***", for logs and the query audit. It
// only lexes, so it works on any input, including queries that do not parse;
// an unterminated obfuscated literal is redacted to the end of its line (or,
// for h```, of the query). All other text, comments included, is kept as is.
func Redact(src string) string {
	lx := &lexer{src: src, line: 1, col: 1}
	var b strings.Builder
	last := 0
	for {
		t := lx.next()
		if t.Kind == TokEOF {
			break
		}
		if t.Obfuscated && (t.Kind == TokString || t.Kind == TokIllegal) {
			if b.Len() == 0 {
				b.Grow(len(src))
			}
			b.WriteString(src[last:t.Pos.Offset])
			b.WriteString(redactedString)
			last = t.End
		}
	}
	if last == 0 {
		return src
	}
	b.WriteString(src[last:])
	return b.String()
}
