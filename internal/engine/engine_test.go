package engine

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"custos/internal/kql"
	"custos/internal/store"
)

// testNow is the fixed now() of the specification files.
var testNow = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// formatResult renders a result as the specification files expect: the
// schema line, then one line per row.
func formatResult(res *Result) string {
	var b strings.Builder
	for ti, t := range res.Tables {
		if ti > 0 {
			fmt.Fprintf(&b, "--- %s\n", t.Name)
		}
		for i, c := range t.Schema {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s:%s", c.Name, c.Type)
		}
		b.WriteByte('\n')
		for _, bt := range t.Batches {
			for r := 0; r < bt.Len; r++ {
				for i, v := range bt.Cols {
					if i > 0 {
						b.WriteString(", ")
					}
					b.WriteString(formatCell(valueAt(v, r)))
				}
				b.WriteByte('\n')
			}
		}
	}
	return b.String()
}

func formatCell(v kql.Value) string {
	if v.Null {
		return "null"
	}
	switch v.Type {
	case store.TypeString, store.TypeGUID:
		return strconv.Quote(v.Str)
	}
	return v.String()
}

// testEnv is one specification file's environment: the tables loaded so far.
type testEnv struct {
	t      *testing.T
	eng    *Engine
	tables kql.MapCatalog
	src    store.Queryable
	ws     string
	db     *store.DB
	dbDir  string
}

func newTestEnv(t *testing.T) *testEnv {
	return &testEnv{
		t:      t,
		eng:    New(Options{Parallelism: 2}),
		tables: kql.MapCatalog{},
		ws:     "00000000-0000-0000-0000-000000000001",
	}
}

func (env *testEnv) query(d *datadriven.TestData) string {
	req := Request{
		Query:       d.Input,
		Tables:      env.tables,
		Source:      env.src,
		WorkspaceID: env.ws,
		Now:         testNow,
	}
	for _, a := range d.CmdArgs {
		switch a.Key {
		case "rowcond":
			if req.RowConditions == nil {
				req.RowConditions = map[string][]string{}
			}
			table, cond, _ := strings.Cut(a.Vals[0], ":")
			req.RowConditions[table] = append(req.RowConditions[table], cond)
		case "timespan":
			from, _ := kql.ParseDatetime(a.Vals[0])
			to, _ := kql.ParseDatetime(a.Vals[1])
			req.Timespan = store.TimeRange{From: from, To: to}
		}
	}
	res, err := env.eng.Query(context.Background(), req)
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	return formatResult(res)
}

func (env *testEnv) explain(d *datadriven.TestData) string {
	plan, err := kql.Compile(d.Input, env.tables, kql.BindOptions{})
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	var b strings.Builder
	for _, r := range plan.Results {
		b.WriteString(kql.Explain(r))
	}
	return b.String()
}

func (env *testEnv) transform(d *datadriven.TestData) string {
	// The input is a datatable whose rows are fed to the transformation
	// given after a line "----transform----".
	data, src, ok := strings.Cut(d.Input, "\n~~~\n")
	if !ok {
		d.Fatalf(env.t, "transform needs <datatable>\\n~~~\\n<transformKql>")
	}
	in, err := env.eng.Query(context.Background(), Request{Query: data, Now: testNow})
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	tr, err := CompileTransform(src, in.Tables[0].Schema)
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	batch := concatBatches(in.Tables[0].Schema, in.Tables[0].Batches)
	if batch == nil {
		batch = emptyBatch(in.Tables[0].Schema)
	}
	out, err := tr.Run(context.Background(), batch)
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	return formatResult(&Result{Tables: []Table{{Name: "PrimaryResult", Schema: tr.Output(), Batches: []*store.Batch{out}}}})
}

func TestEngine(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		if strings.Contains(filepath.ToSlash(path), "testdata/fuzz/") {
			return // go test's fuzz corpora, not specification files
		}
		env := newTestEnv(t)
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "load":
				return env.load(t, d)
			case "store":
				return env.storeCmd(t, d)
			case "query":
				return env.query(d)
			case "explain":
				return env.explain(d)
			case "transform":
				return env.transform(d)
			default:
				d.Fatalf(t, "unknown command %q", d.Cmd)
				return ""
			}
		})
	})
}
