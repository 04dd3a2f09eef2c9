package conformance

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"custos/internal/engine"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expectations of the case files with the in-process results (review the diff!)")

func loadCases(t *testing.T) []Case {
	t.Helper()
	cs, err := LoadCases("testdata")
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) < 100 {
		t.Fatalf("loaded %d cases; the suite has more", len(cs))
	}
	return cs
}

// TestCasesInProcess runs every case on the engine directly.
func TestCasesInProcess(t *testing.T) {
	cs := loadCases(t)
	rs := Run(context.Background(), cs, EngineRunner(engine.New(engine.Options{})))
	if *rewrite {
		rewriteCases(t, rs)
		return
	}
	for _, r := range rs {
		if !r.Pass {
			t.Errorf("%s:%d %s\n%s\ngot:\n%swant:\n%s", r.Case.File, r.Case.Line, r.Case.Name, r.Case.Query, r.Got, r.Case.Want)
		}
	}
}

// TestDocUpToDate fails when docs/kql.md is not what the generator writes.
func TestDocUpToDate(t *testing.T) {
	cs := loadCases(t)
	rs := Run(context.Background(), cs, EngineRunner(engine.New(engine.Options{})))
	want := Doc(rs)
	path := filepath.Join("..", "..", "docs", "kql.md")
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v (generate it with: go run ./internal/conformance/kqldoc)", path, err)
	}
	if string(got) != want {
		t.Fatalf("docs/kql.md is stale: regenerate it with `go run ./internal/conformance/kqldoc` from the repository root")
	}
}

func TestCoverageAnnotations(t *testing.T) {
	c := Case{Query: `let T = datatable(a:long)[1];
T | where a > 0 | mv-expand x = pack_array(a) | summarize dcount(a), n = count_distinct(a) by tostring(x) | project-away n`}
	c.annotate()
	if got := strings.Join(c.Operators, ","); got != "datatable,mv-expand,project-away,summarize,where" {
		t.Errorf("operators = %s", got)
	}
	if got := strings.Join(c.Functions, ","); got != "count_distinct,dcount,pack_array,tostring" {
		t.Errorf("functions = %s", got)
	}
	if got := strings.Join(c.Scalar, ","); got != ">" {
		t.Errorf("scalar operators = %s", got)
	}
}

// rewriteCases replaces each case's expectation with what ran.
func rewriteCases(t *testing.T, rs []Result) {
	t.Helper()
	byFile := map[string][]Result{}
	for _, r := range rs {
		byFile[r.Case.File] = append(byFile[r.Case.File], r)
	}
	for file, list := range byFile {
		path := filepath.Join("testdata", file)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		var out []string
		next := 0
		for i := 0; i < len(lines); i++ {
			out = append(out, lines[i])
			if lines[i] != "----" || next >= len(list) {
				continue
			}
			out = append(out, strings.Split(strings.TrimSuffix(list[next].Got, "\n"), "\n")...)
			next++
			for i+1 < len(lines) && lines[i+1] != "" {
				i++
			}
		}
		if err := os.WriteFile(path, []byte(strings.Join(out, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
