package kql

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

// fuzzSeeds adds every query of the parser specification files, plus the
// files under testdata/fuzz/seeds, to the corpus.
func fuzzSeeds(f *testing.F) {
	f.Helper()
	paths, _ := filepath.Glob("testdata/parse/*")
	for _, path := range paths {
		datadriven.RunTestAny(f, path, func(_ testing.TB, d *datadriven.TestData) string {
			f.Add(d.Input)
			return d.Expected
		})
	}
	seeds, _ := filepath.Glob("testdata/fuzz/seeds/*.kql")
	for _, path := range seeds {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatalf("read seed %s: %v", path, err)
		}
		f.Add(string(b))
	}
}

// FuzzLex checks that the lexer never panics, always makes progress, covers
// the input with tokens in order, and that Redact keeps non-obfuscated text.
func FuzzLex(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, src string) {
		toks := Lex(src)
		if len(toks) == 0 || toks[len(toks)-1].Kind != TokEOF {
			t.Fatalf("token stream does not end with EOF")
		}
		if len(toks) > len(src)+1 {
			t.Fatalf("got %d tokens for %d bytes", len(toks), len(src))
		}
		last := 0
		for _, tok := range toks[:len(toks)-1] {
			if tok.Pos.Offset < last || tok.End <= tok.Pos.Offset || tok.End > len(src) {
				t.Fatalf("token %q spans [%d,%d) after offset %d", tok.Text, tok.Pos.Offset, tok.End, last)
			}
			if src[tok.Pos.Offset:tok.End] != tok.Text && tok.Kind != TokString {
				t.Fatalf("token text %q does not match source %q", tok.Text, src[tok.Pos.Offset:tok.End])
			}
			if tok.Pos.Line < 1 || tok.Pos.Col < 1 {
				t.Fatalf("bad position %+v", tok.Pos)
			}
			last = tok.End
		}
		red := Redact(src)
		if !strings.Contains(src, "h") && !strings.Contains(src, "H") && red != src {
			t.Fatalf("Redact changed a query without obfuscated strings: %q -> %q", src, red)
		}
	})
}

// FuzzParse checks that Parse never panics, finishes quickly, and either
// returns a tree or a *SyntaxError with a position inside the input; a tree
// must survive Dump and Inspect.
func FuzzParse(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, src string) {
		start := time.Now()
		q, err := Parse(src)
		if d := time.Since(start); d > 10*time.Second { // generous: the machine is shared
			t.Fatalf("Parse took %v for %d bytes", d, len(src))
		}
		if err != nil {
			se, ok := err.(*SyntaxError)
			if !ok {
				t.Fatalf("got error %T; want *SyntaxError", err)
			}
			lines := strings.Count(src, "\n") + 1
			if se.Line < 1 || se.Col < 1 || se.Line > lines {
				t.Fatalf("error position %d:%d outside the input (%d lines)", se.Line, se.Col, lines)
			}
			if se.Msg == "" {
				t.Fatalf("empty error message")
			}
			return
		}
		_ = Dump(q)
		Inspect(q, func(n Node) bool {
			if n.Position().Line < 1 {
				t.Fatalf("node %T without position", n)
			}
			return true
		})
	})
}
