package kql

import (
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"custos/internal/store"
)

// bindCatalog is the schema the bind specification files are written against.
var bindCatalog = MapCatalog{
	"Heartbeat": {
		{Name: "TimeGenerated", Type: store.TypeDatetime},
		{Name: "Computer", Type: store.TypeString},
		{Name: "CPU", Type: store.TypeReal},
		{Name: "Level", Type: store.TypeString},
		{Name: "Count", Type: store.TypeLong},
		{Name: "Id", Type: store.TypeGUID},
	},
}

// TestBind runs testdata/bind: "bind" prints the optimized plan or the
// error; "schema" prints the result schema. Rewrite with -rewrite.
func TestBind(t *testing.T) {
	datadriven.Walk(t, "testdata/bind", func(t *testing.T, path string) {
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			opts := BindOptions{}
			for _, a := range d.CmdArgs {
				switch a.Key {
				case "transform":
					opts.PerRecordOnly = true
				case "rowcond":
					table, cond, _ := strings.Cut(a.Vals[0], ":")
					opts.RowConditions = map[string][]string{table: {cond}}
				}
			}
			plan, err := Compile(d.Input, bindCatalog, opts)
			if err != nil {
				return "error: " + err.Error() + "\n"
			}
			var b strings.Builder
			for _, r := range plan.Results {
				switch d.Cmd {
				case "bind":
					b.WriteString(Explain(r))
				case "schema":
					for i, c := range r.Schema() {
						if i > 0 {
							b.WriteString(", ")
						}
						b.WriteString(c.Name + ":" + c.Type.String())
					}
					b.WriteByte('\n')
				default:
					d.Fatalf(t, "unknown command %q", d.Cmd)
				}
			}
			return b.String()
		})
	})
}
