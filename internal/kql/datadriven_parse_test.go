package kql

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestParseSpec runs the parser specification files in testdata/parse.
//
// Commands:
//
//	parse      the input is a query; prints Dump of the tree or "error: line:col: msg"
//	expr       the input is one expression (ParseExpr)
//	redact     prints Redact(input)
//	positions  parses and prints every node's type and line:col
//
// Update expectations with: go test ./internal/kql -run TestParseSpec -rewrite (then review the diff).
func TestParseSpec(t *testing.T) {
	datadriven.Walk(t, "testdata/parse", func(t *testing.T, path string) {
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "parse":
				q, err := Parse(d.Input)
				if err != nil {
					return errorText(t, err)
				}
				return Dump(q) + "\n"
			case "expr":
				x, err := ParseExpr(d.Input)
				if err != nil {
					return errorText(t, err)
				}
				return Dump(x) + "\n"
			case "redact":
				return Redact(d.Input) + "\n"
			case "positions":
				q, err := Parse(d.Input)
				if err != nil {
					return errorText(t, err)
				}
				var b strings.Builder
				Inspect(q, func(n Node) bool {
					p := n.Position()
					fmt.Fprintf(&b, "%d:%d %T\n", p.Line, p.Col, n)
					return true
				})
				return b.String()
			default:
				d.Fatalf(t, "unknown command %q", d.Cmd)
				return ""
			}
		})
	})
}

func errorText(t *testing.T, err error) string {
	t.Helper()
	var se *SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("got error %T (%v); want *SyntaxError", err, err)
	}
	return fmt.Sprintf("error: %d:%d: %s\n", se.Line, se.Col, se.Msg)
}
