package kql

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"custos/internal/api"
)

func TestSyntaxErrorIsCoded(t *testing.T) {
	_, err := Parse("T | where")
	var se *SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("got %T (%v); want *SyntaxError", err, err)
	}
	var c api.Coded
	if !errors.As(err, &c) {
		t.Fatalf("*SyntaxError does not implement api.Coded")
	}
	code, kind := c.AzureError()
	if code != "BadArgumentError" || kind != api.KindInvalid {
		t.Errorf("got AzureError() = %q, %q; want BadArgumentError, %q", code, kind, api.KindInvalid)
	}
	if got, want := err.Error(), "Syntax error at 1:10: expected an expression but found end of query"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
	if e := api.ToError(err); e.Status != 400 || e.Code != "BadArgumentError" {
		t.Errorf("api.ToError: got %d %s; want 400 BadArgumentError", e.Status, e.Code)
	}
}

func TestParseLimits(t *testing.T) {
	long := "print " + strings.Repeat("1+", MaxQueryLength/2) + "1"
	if _, err := Parse(long); err == nil || !strings.Contains(err.Error(), "too long") {
		t.Errorf("over-long query: got %v; want a 'too long' error", err)
	}
	deep := "print " + strings.Repeat("(", MaxNestingDepth+5) + "1" + strings.Repeat(")", MaxNestingDepth+5)
	if _, err := Parse(deep); err == nil || !strings.Contains(err.Error(), "nested too deeply") {
		t.Errorf("deep query: got %v; want a nesting error", err)
	}
	ok := "print " + strings.Repeat("(", 20) + "1" + strings.Repeat(")", 20)
	if _, err := Parse(ok); err != nil {
		t.Errorf("20 levels of parentheses: got %v; want success", err)
	}
	if _, err := Parse("print \"\xff\""); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("invalid UTF-8: got %v; want a UTF-8 error", err)
	}
}

// TestParsePathological checks that hostile inputs near the size limit are
// rejected cleanly or parsed. Their cost (no quadratic or exponential paths)
// is measured by BenchmarkParsePathological, not asserted with wall time.
func TestParsePathological(t *testing.T) {
	n := MaxQueryLength/8 - 16
	cases := map[string]string{
		"typed literal openers": strings.Repeat("int(", n),
		"open parens":           "print " + strings.Repeat("(", n),
		"unary minus":           "print " + strings.Repeat("- ", n) + "1",
		"dynamic nesting":       "print dynamic(" + strings.Repeat("[", n),
		"long list":             "print " + strings.Repeat("a,", n) + "a",
		"tuple names":           "T | extend (" + strings.Repeat("a,", n) + "a) = 1",
		"pipes":                 "T" + strings.Repeat(" | take 1", n/4),
		"strings":               "print " + strings.Repeat(`"a" `, n),
		"unterminated quotes":   strings.Repeat(`"`+"\n", n),
		"hyphen words":          "T | " + strings.Repeat("project-", n/2),
		"bangs":                 strings.Repeat("!", n),
		"let chain":             strings.Repeat("let x = 1; ", n/3) + "print x",
		"comments":              strings.Repeat("//\n", n),
		"brackets":              "print " + strings.Repeat("a[", n),
		"members":               "print a" + strings.Repeat(".b", n),
		"datatable":             "datatable(a:long)[" + strings.Repeat("1,", n) + "1]",
	}
	for name, src := range cases {
		_, err := Parse(src)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Errorf("%s: got %T; want *SyntaxError", name, err)
			}
		}
		_ = Redact(src)
	}
}

// pathologicalQueries returns hostile inputs of about n repetitions each.
func pathologicalQueries(n int) map[string]string {
	return map[string]string{
		"tuple names": "T | extend (" + strings.Repeat("a,", n) + "a) = 1",
		"long list":   "print " + strings.Repeat("a,", n) + "a",
		"open parens": "print " + strings.Repeat("(", n),
		"members":     "print a" + strings.Repeat(".b", n),
	}
}

// BenchmarkParsePathological shows how parsing hostile inputs scales: the
// time per byte should stay flat from n=1000 to n=16000.
func BenchmarkParsePathological(b *testing.B) {
	for _, n := range []int{1000, 16000} {
		for name, src := range pathologicalQueries(n) {
			b.Run(fmt.Sprintf("%s/n=%d", name, n), func(b *testing.B) {
				b.SetBytes(int64(len(src)))
				for b.Loop() {
					_, _ = Parse(src)
				}
			})
		}
	}
}
