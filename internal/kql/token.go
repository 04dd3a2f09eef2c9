package kql

// TokenKind classifies a lexical token. Keywords are not a separate kind:
// KQL keywords are context-sensitive (count, kind, with, on ... are also valid
// column names), so words are TokIdent and the parser decides by context.
type TokenKind uint8

// Token kinds.
const (
	TokEOF      TokenKind = iota
	TokIllegal            // a lexical error; Token.Err says what is wrong
	TokIdent              // a word: identifier or keyword, including $left and in~-style operator words
	TokLong               // an integer literal (decimal or 0x hex)
	TokReal               // a real literal (with '.' or exponent)
	TokTimespan           // a number with a time unit: 1d, 2h, 1.5m, 100ms, 1tick
	TokString             // a string literal of any form; Value holds the decoded text
	TokTyped              // a typed literal: datetime(...), guid(...), long(...); Value holds the raw text inside the parentheses
	TokOp                 // punctuation or a symbolic operator: ( ) [ ] { } , ; : . .. | = == != <> < <= > >= =~ !~ => + - * / % ? @
	TokBangWord           // a negated word operator: !contains, !has_cs, !in, !in~, !between, ...
)

var tokenKindNames = [...]string{
	TokEOF: "end of query", TokIllegal: "illegal token", TokIdent: "identifier", TokLong: "number",
	TokReal: "number", TokTimespan: "timespan", TokString: "string literal", TokTyped: "literal",
	TokOp: "operator", TokBangWord: "operator",
}

// String returns a human-readable name of the kind, for error messages.
func (k TokenKind) String() string {
	if int(k) < len(tokenKindNames) {
		return tokenKindNames[k]
	}
	return "token"
}

// Token is one lexical token. Text is the exact source text. For TokString
// Value is the decoded string (adjacent literals are not merged by the lexer);
// for TokTyped, Type is the type word ("datetime") and Value the raw text
// between the parentheses; for TokIdent, Value is the name. Obfuscated marks
// h"..." strings. End is the byte offset just after the token.
type Token struct {
	Kind       TokenKind
	Pos        Pos
	End        int
	Text       string
	Value      string
	Type       string
	Obfuscated bool
	Err        string // for TokIllegal
}

// is reports whether t is the operator or word s.
func (t Token) is(s string) bool {
	return (t.Kind == TokOp || t.Kind == TokIdent || t.Kind == TokBangWord) && t.Text == s
}

// describe renders t for an error message, as Kusto does: the token text in
// quotes, or a description for the end of the query.
func (t Token) describe() string {
	switch t.Kind {
	case TokEOF:
		return "end of query"
	case TokString:
		if t.Obfuscated {
			return "string literal"
		}
	}
	text := t.Text
	if len(text) > 40 {
		text = text[:40] + "..."
	}
	return "'" + text + "'"
}
