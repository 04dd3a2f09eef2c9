package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"custos/internal/api"
	"custos/internal/kql"
	"custos/internal/store"
)

// regexEntryPoints are queries with every way a user's regular expression
// reaches the engine; %P is replaced by the pattern as a verbatim string.
var regexEntryPoints = []string{
	`T | where s matches regex %P`,
	`T | parse kind=regex s with %P x:string`,
	`T | parse-where kind=regex s with "a" x:string %P`,
	`T | extend e = extract(%P, 0, s)`,
	`T | extend e = extract_all(%P, s)`,
	`T | extend e = replace_regex(s, %P, "x")`,
	`T | extend e = countof(s, %P, "regex")`,
	`T | extend e = indexof_regex(s, %P)`,
	`T | extend e = trim(%P, s), f = trim_start(%P, s), g = trim_end(%P, s)`,
	`T | parse-kv s as (a:long) with (regex=%P)`,
}

// FuzzRegexEntryPoints feeds arbitrary patterns to every regex entry point.
// Properties: no panic; a query that fails does so with an error the query
// API maps to a 400 (a syntax or semantic error, or an ExecError), and no
// message carries Go's regexp internals ("error parsing regexp").
func FuzzRegexEntryPoints(f *testing.F) {
	for _, p := range []string{`a)`, `(a))`, `[a`, `x{2,1}`, `(?P<n`, `\`, `(a)=(b)`, `a+b`, `(?i)A`, `*`} {
		f.Add(p)
	}
	schema := store.Schema{{Name: "s", Type: store.TypeString}}
	batch := &store.Batch{Schema: schema, Len: 3, Cols: []*store.Vector{
		{Type: store.TypeString, Str: []string{"a=1 a(b", "", "xyz"}},
	}}
	e := New(Options{Limits: Limits{MaxResultRows: 1000, MaxMemoryBytes: 64 << 20, Timeout: 2 * time.Second}})
	f.Fuzz(func(t *testing.T, pattern string) {
		if len(pattern) > 512 {
			return
		}
		lit := `@'` + strings.ReplaceAll(pattern, `'`, `''`) + `'`
		for _, tmpl := range regexEntryPoints {
			q := strings.ReplaceAll(tmpl, "%P", lit)
			err := runRegexQuery(e, q, schema, batch)
			if err == nil || errors.Is(err, context.DeadlineExceeded) {
				continue
			}
			var se *kql.SyntaxError
			var sem *kql.SemanticError
			var coded api.Coded
			if !errors.As(err, &se) && !errors.As(err, &sem) && !errors.As(err, &coded) {
				t.Fatalf("%s: error %T %q would be a 500", q, err, err)
			}
			if strings.Contains(err.Error(), "error parsing regexp") {
				t.Fatalf("%s: Go regexp internals in %q", q, err)
			}
		}
	})
}

// runRegexQuery compiles and runs q over table T holding batch.
func runRegexQuery(e *Engine, q string, schema store.Schema, batch *store.Batch) error {
	plan, err := kql.Compile(q, kql.MapCatalog{"T": schema}, kql.BindOptions{})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	x := e.newExecutor(&Request{Query: q}, 0)
	x.inline = map[string][]*store.Batch{"T": {batch}}
	_, err = x.execute(ctx, plan)
	return err
}

// TestRegexErrorsAreSemantic checks every entry point with an unbalanced ')'.
func TestRegexErrorsAreSemantic(t *testing.T) {
	schema := store.Schema{{Name: "s", Type: store.TypeString}}
	batch := &store.Batch{Schema: schema, Len: 1, Cols: []*store.Vector{{Type: store.TypeString, Str: []string{"a(b"}}}}
	e := New(Options{})
	for _, tmpl := range regexEntryPoints {
		q := strings.ReplaceAll(tmpl, "%P", `@'(a))'`)
		err := runRegexQuery(e, q, schema, batch)
		var sem *kql.SemanticError
		if !errors.As(err, &sem) {
			t.Errorf("%s: got %v (%T), want a SemanticError", q, err, err)
			continue
		}
		if !strings.Contains(sem.Msg, "invalid regular expression '(a))': unexpected ')'") {
			t.Errorf("%s: message %q does not name the pattern and the problem", q, sem.Msg)
		}
	}
}
