package kql

import (
	"fmt"
	"strings"
	"testing"
)

// tokString renders tokens as "kind:text" (plus the decoded value when it
// differs) for compact comparisons.
func tokString(toks []Token) string {
	parts := make([]string, 0, len(toks))
	for _, t := range toks {
		if t.Kind == TokEOF {
			break
		}
		s := fmt.Sprintf("%d:%s", t.Kind, t.Text)
		switch {
		case t.Kind == TokIllegal:
			s += "!" + t.Err
		case t.Kind == TokTyped || t.Kind == TokTimespan:
			s += "=" + t.Type + "|" + t.Value
		case t.Value != t.Text:
			s += "=" + t.Value
		}
		if t.Obfuscated {
			s += "(h)"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

func TestLexTokens(t *testing.T) {
	id, lng, real, ts, str, typed, op, bang, bad := TokIdent, TokLong, TokReal, TokTimespan, TokString, TokTyped, TokOp, TokBangWord, TokIllegal
	tests := []struct {
		src  string
		want string
	}{
		{"T | where x", fmt.Sprintf("%d:T %d:| %d:where %d:x", id, op, id, id)},
		{"$left.a", fmt.Sprintf("%d:$left %d:. %d:a", id, op, id)},
		{"1d d1 1.5h 100ms 2microseconds", fmt.Sprintf("%d:1d=d|1 %d:d1 %d:1.5h=h|1.5 %d:100ms=ms|100 %d:2microseconds=microseconds|2", ts, id, ts, ts, ts)},
		{"12 0xff 1.5 1e3 2.5E-2", fmt.Sprintf("%d:12 %d:0xff %d:1.5 %d:1e3 %d:2.5E-2", lng, lng, real, real, real)},
		{"1..5", fmt.Sprintf("%d:1 %d:.. %d:5", lng, op, lng)},
		{`"a\"b" 'c'`, fmt.Sprintf(`%d:"a\"b"=a"b %d:'c'=c`, str, str)},
		{`@"c:\x" h"s" H'y'`, fmt.Sprintf(`%d:@"c:\x"=c:\x %d:h"s"=s(h) %d:H'y'=y(h)`, str, str, str)},
		{"datetime(2024-01-01 10:00) guid( x ) date", fmt.Sprintf("%d:datetime(2024-01-01 10:00)=datetime|2024-01-01 10:00 %d:guid( x )=guid|x %d:date", typed, typed, id)},
		{"a !contains b !in~ c in~ d !has_cs e", fmt.Sprintf("%d:a %d:!contains %d:b %d:!in~ %d:c %d:in~ %d:d %d:!has_cs %d:e", id, bang, id, bang, id, id, id, bang, id)},
		{"== != <> <= >= =~ !~ => = < > ! ~", fmt.Sprintf("%d:== %d:!= %d:<> %d:<= %d:>= %d:=~ %d:!~ %d:=> %d:= %d:< %d:> %d:! %d:~", op, op, op, op, op, op, op, op, op, op, op, op, op)},
		{"a // comment\nb", fmt.Sprintf("%d:a %d:b", id, id)},
		{"x # y", fmt.Sprintf("%d:x %d:#!unexpected character '#' %d:y", id, bad, id)},
		{"5parsecs", fmt.Sprintf("%d:5parsecs!invalid number or timespan literal '5parsecs'", bad)},
		{"```a\nb```", fmt.Sprintf("%d:```a\nb```=a\nb", str)},
		{"h```s```", fmt.Sprintf("%d:h```s```=s(h)", str)},
		{"éclair", fmt.Sprintf("%d:éclair", id)},
	}
	for _, tt := range tests {
		if got := tokString(Lex(tt.src)); got != tt.want {
			t.Errorf("Lex(%q):\n got %s\nwant %s", tt.src, got, tt.want)
		}
	}
}

func TestLexPositions(t *testing.T) {
	toks := Lex("ab\n  ü + \"é\" x\n\ty")
	want := []struct{ line, col, off int }{{1, 1, 0}, {2, 3, 5}, {2, 5, 8}, {2, 7, 10}, {2, 11, 15}, {3, 2, 18}}
	if len(toks) != len(want)+1 {
		t.Fatalf("got %d tokens; want %d: %s", len(toks), len(want)+1, tokString(toks))
	}
	for i, w := range want {
		p := toks[i].Pos
		if p.Line != w.line || p.Col != w.col || p.Offset != w.off {
			t.Errorf("token %d (%q): got %d:%d@%d; want %d:%d@%d", i, toks[i].Text, p.Line, p.Col, p.Offset, w.line, w.col, w.off)
		}
	}
}

func TestRedactKeepsPlainQueries(t *testing.T) {
	for _, src := range []string{
		"T | where a == 'h' and h == \"x\"",
		"print hash(\"x\"), h, H",
		"",
		"unterminated \"string",
	} {
		if got := Redact(src); got != src {
			t.Errorf("Redact(%q) = %q; want it unchanged", src, got)
		}
	}
}

func TestParseObfuscatedNeverLeaks(t *testing.T) {
	secret := "hunter2-S3cret"
	queries := []string{
		`T | where p == h"` + secret + `"`,
		`T | where p == h"` + secret,
		`T | where p == h'` + secret + `' | frobnicate`,
		`print h@"` + secret + `" h"x" +`,
		`print x = h"` + secret + `" h`,
		`print dynamic({"k": h"` + secret + `"})`,
		`print dynamic({"k": h"` + secret + `"}) +`,
	}
	for _, src := range queries {
		if strings.Contains(Redact(src), secret) {
			t.Errorf("Redact(%q) leaks the secret", src)
		}
		q, err := Parse(src)
		if err != nil {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("Parse(%q) error leaks the secret: %v", src, err)
			}
			continue
		}
		if strings.Contains(Dump(q), secret) {
			t.Errorf("Dump of %q leaks the secret", src)
		}
		Inspect(q, func(n Node) bool {
			if l, ok := n.(*Literal); ok && strings.Contains(l.Raw, secret) {
				t.Errorf("Literal.Raw of %q leaks the secret", src)
			}
			return true
		})
	}
}
