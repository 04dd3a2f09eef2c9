package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"custos/internal/api"
	"custos/internal/engine"
	"custos/internal/kql"
	"custos/internal/query"
	"custos/internal/store"
)

// Now is the fixed now() of the cases: the in-process runner passes it to
// the engine; cases run through the API must not depend on now().
var Now = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// Result is the outcome of one case.
type Result struct {
	Case Case
	Got  string // the table as run, or "error: ..."
	Pass bool
}

// Runner runs a query and renders its first table in the case format; a
// query error is rendered as ErrorText does. The error result is for
// failures of the runner itself (transport, decoding).
type Runner func(ctx context.Context, q string) (string, error)

// ErrorText is the case form of a query error: its Azure inner error code
// and position ("error: SyntaxError at 1:5"), which the API and the engine
// report alike, so expectations do not depend on message wording.
func ErrorText(code string, line, col int) string {
	return fmt.Sprintf("error: %s at %d:%d\n", code, line, col)
}

// Run runs every case with run and compares the outcome with the
// expectation.
func Run(ctx context.Context, cases []Case, run Runner) []Result {
	out := make([]Result, len(cases))
	for i, c := range cases {
		got, err := run(ctx, c.Query)
		if err != nil {
			got = "runner error: " + err.Error() + "\n"
		}
		out[i] = Result{Case: c, Got: got, Pass: got == c.Want}
	}
	return out
}

// engineErrorText renders an engine error like the API's envelope does.
func engineErrorText(err error) string {
	var se *kql.SyntaxError
	if errors.As(err, &se) {
		return ErrorText("SyntaxError", se.Line, se.Col)
	}
	var sem *kql.SemanticError
	if errors.As(err, &sem) {
		return ErrorText("SemanticError", sem.Line, sem.Col)
	}
	var c api.Coded
	if errors.As(err, &c) {
		// as the query API answers it: the Azure code and the error's own text
		code, _ := c.AzureError()
		return "error: " + code + ": " + c.Error() + "\n"
	}
	return "error: " + err.Error() + "\n"
}

// EngineRunner runs queries in process on e, with no tables (cases carry
// their data inline).
func EngineRunner(e *engine.Engine) Runner {
	return func(ctx context.Context, q string) (string, error) {
		res, err := e.Query(ctx, engine.Request{Query: q, Now: Now})
		if err != nil {
			return engineErrorText(err), nil
		}
		if len(res.Tables) == 0 {
			return "", fmt.Errorf("no result table")
		}
		t := res.Tables[0]
		var b strings.Builder
		writeHeader(&b, t.Schema)
		for _, bt := range t.Batches {
			if bt == nil {
				continue
			}
			for r := 0; r < bt.Len; r++ {
				row := []byte{'['}
				for ci := range t.Schema {
					if ci > 0 {
						row = append(row, ',')
					}
					row = query.AppendValue(row, bt.Cols[ci], r)
				}
				b.Write(append(row, ']', '\n'))
			}
		}
		return b.String(), nil
	}
}

func writeHeader(b *strings.Builder, s store.Schema) {
	for i, c := range s {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(b, "%s:%s", c.Name, c.Type)
	}
	b.WriteByte('\n')
}

// WireTable is one table of a query API response, decoded with exact
// numbers.
type WireTable struct {
	Name    string `json:"name"`
	Columns []struct {
		Name string `json:"name"`
		Type string `json:"type"`
	} `json:"columns"`
	Rows []json.RawMessage `json:"rows"`
}

// FormatWire renders the first table of a query API response body in the
// case format.
func FormatWire(body []byte) (string, error) {
	var resp struct {
		Tables []WireTable `json:"tables"`
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if err := d.Decode(&resp); err != nil {
		return "", fmt.Errorf("decode response: %w", err)
	}
	if len(resp.Tables) == 0 {
		return "", fmt.Errorf("no result table")
	}
	t := resp.Tables[0]
	var b strings.Builder
	for i, c := range t.Columns {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s:%s", c.Name, c.Type)
	}
	b.WriteByte('\n')
	for _, r := range t.Rows {
		var cb bytes.Buffer
		if err := json.Compact(&cb, r); err != nil {
			return "", fmt.Errorf("row: %w", err)
		}
		b.Write(cb.Bytes())
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// Tally is the pass count of one operator or function.
type Tally struct {
	Name         string
	Pass, Failed int
}

// Tallies counts results per tabular operator, scalar operator and
// function, each sorted by name.
func Tallies(rs []Result) (ops, scalar, funcs []Tally) {
	count := func(get func(Case) []string) []Tally {
		m := map[string]*Tally{}
		for _, r := range rs {
			for _, n := range get(r.Case) {
				t := m[n]
				if t == nil {
					t = &Tally{Name: n}
					m[n] = t
				}
				if r.Pass {
					t.Pass++
				} else {
					t.Failed++
				}
			}
		}
		out := make([]Tally, 0, len(m))
		for _, t := range m {
			out = append(out, *t)
		}
		slices.SortFunc(out, func(a, b Tally) int { return strings.Compare(a.Name, b.Name) })
		return out
	}
	return count(func(c Case) []string { return c.Operators }),
		count(func(c Case) []string { return c.Scalar }),
		count(func(c Case) []string { return c.Functions })
}

// PassTable renders the tallies as the plain-text table the suite prints.
func PassTable(rs []Result) string {
	ops, scalar, funcs := Tallies(rs)
	var b strings.Builder
	pass := 0
	for _, r := range rs {
		if r.Pass {
			pass++
		}
	}
	fmt.Fprintf(&b, "KQL conformance: %d/%d cases pass\n", pass, len(rs))
	section := func(title string, ts []Tally) {
		fmt.Fprintf(&b, "\n%-34s %6s %6s\n", title, "pass", "fail")
		for _, t := range ts {
			mark := ""
			if t.Failed > 0 {
				mark = "  <-- FAIL"
			}
			fmt.Fprintf(&b, "%-34s %6d %6d%s\n", t.Name, t.Pass, t.Failed, mark)
		}
	}
	section("tabular operator", ops)
	section("scalar operator", scalar)
	section("function / aggregation", funcs)
	return b.String()
}
