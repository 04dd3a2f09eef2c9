package engine

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"custos/internal/kql"
)

// langCatalog is the catalog of the language specification files: the
// loaded tables, stored workspace functions, and other workspaces.
type langCatalog struct {
	kql.MapCatalog
	funcs      map[string]kql.StoredFunction
	workspaces map[string]kql.WorkspaceTables
	wsTables   map[string]kql.MapCatalog // tables loaded into other workspaces
}

func (c *langCatalog) Function(name string) (kql.StoredFunction, bool) {
	f, ok := c.funcs[name]
	return f, ok
}

func (c *langCatalog) Workspace(ref string) (kql.WorkspaceTables, bool) {
	w, ok := c.workspaces[ref]
	return w, ok
}

var (
	_ kql.FunctionCatalog  = (*langCatalog)(nil)
	_ kql.WorkspaceCatalog = (*langCatalog)(nil)
)

// TestLanguage runs the specification files of testdata_lang: statements
// (functions, materialize, query parameters), the operators beyond the
// first slice, stored functions and cross-workspace queries.
//
// Commands: load (as in TestEngine; ws=ID loads into another workspace),
// function name=N params=(text) <body>, workspace name=N id=ID
// tables=(T, ...) [rowcond=T:cond], and query [params=(k=v, ...)]
// [render] [rowcond=T:cond] [also=(workspace, ...)].
func TestLanguage(t *testing.T) {
	datadriven.Walk(t, "testdata_lang", func(t *testing.T, path string) {
		env := newTestEnv(t)
		cat := &langCatalog{MapCatalog: env.tables, funcs: map[string]kql.StoredFunction{}, workspaces: map[string]kql.WorkspaceTables{}, wsTables: map[string]kql.MapCatalog{}}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "load":
				ws, table := env.ws, ""
				for _, a := range d.CmdArgs {
					switch a.Key {
					case "ws":
						env.ws = a.Vals[0]
					case "table":
						table = a.Vals[0]
					}
				}
				if env.ws == ws {
					return env.load(t, d)
				}
				// A table of another workspace: not in the primary catalog.
				prev, had := env.tables[table]
				out := env.load(t, d)
				if cat.wsTables[env.ws] == nil {
					cat.wsTables[env.ws] = kql.MapCatalog{}
				}
				cat.wsTables[env.ws][table] = env.tables[table]
				if had {
					env.tables[table] = prev
				} else {
					delete(env.tables, table)
				}
				env.ws = ws
				return out
			case "function":
				f := kql.StoredFunction{Body: d.Input}
				for _, a := range d.CmdArgs {
					switch a.Key {
					case "name":
						f.Name = a.Vals[0]
					case "params":
						f.Params = strings.Join(a.Vals, ", ")
					}
				}
				cat.funcs[f.Name] = f
				return "ok\n"
			case "workspace":
				var name string
				w := kql.WorkspaceTables{}
				tables := kql.MapCatalog{}
				for _, a := range d.CmdArgs {
					switch a.Key {
					case "name":
						name = a.Vals[0]
					case "id":
						w.ID = a.Vals[0]
					case "tables":
						for _, v := range a.Vals {
							tables[v] = nil
						}
					case "rowcond":
						table, cond, _ := strings.Cut(a.Vals[0], ":")
						if w.RowConditions == nil {
							w.RowConditions = map[string][]string{}
						}
						w.RowConditions[table] = append(w.RowConditions[table], cond)
					}
				}
				for v := range tables {
					tables[v] = cat.wsTables[w.ID][v]
				}
				w.Tables = tables
				cat.workspaces[name] = w
				return "ok\n"
			case "query":
				return env.langQuery(d, cat)
			default:
				d.Fatalf(t, "unknown command %q", d.Cmd)
				return ""
			}
		})
	})
}

func (env *testEnv) langQuery(d *datadriven.TestData, cat *langCatalog) string {
	req := Request{Query: d.Input, Tables: cat, Source: env.src, WorkspaceID: env.ws, Now: testNow}
	render := false
	for _, a := range d.CmdArgs {
		switch a.Key {
		case "params":
			req.Parameters = map[string]string{}
			for _, v := range a.Vals {
				k, val, _ := strings.Cut(v, "=")
				req.Parameters[k] = val
			}
		case "render":
			render = true
		case "also":
			for _, v := range a.Vals {
				req.Workspaces = append(req.Workspaces, cat.workspaces[v])
			}
		case "rowcond":
			if req.RowConditions == nil {
				req.RowConditions = map[string][]string{}
			}
			table, cond, _ := strings.Cut(a.Vals[0], ":")
			req.RowConditions[table] = append(req.RowConditions[table], cond)
		}
	}
	res, err := env.eng.Query(context.Background(), req)
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	out := formatResult(res)
	if render {
		js, _ := json.Marshal(res.Render)
		out += "render: " + string(js) + "\n"
	}
	return out
}
