package engine

import (
	"context"
	"testing"
	"time"

	"custos/internal/kql"
	"custos/internal/store"
)

// FuzzLanguage runs arbitrary query text through the binder and executor
// with what FuzzQuery lacks: stored functions, another workspace, query
// parameters and the bind-time exploration of data-dependent plugins.
// Properties: no panic, every failure is an error value.
func FuzzLanguage(f *testing.F) {
	addSpecQueries(f, "testdata_lang")
	f.Add(`let f = (T:(s:string), n:long = 2) { T | take n }; T | invoke f() | evaluate bag_unpack(d)`)
	f.Add(`T | mv-apply x = pack_array(l, l) on (top-nested 1 of x by count())`)
	f.Add(`Fn(3) | union workspace("w2").T | facet by s with (sample 1)`)
	schema := store.Schema{
		{Name: "s", Type: store.TypeString}, {Name: "l", Type: store.TypeLong}, {Name: "d", Type: store.TypeDynamic},
	}
	batch := &store.Batch{Schema: schema, Len: 3, Cols: []*store.Vector{
		{Type: store.TypeString, Str: []string{"a=1, b=2", "", "x"}},
		{Type: store.TypeLong, Int: []int64{1, 0, -7}, Nulls: []bool{false, true, false}},
		{Type: store.TypeDynamic, Str: []string{`{"a":1,"b":"x"}`, `[1,2]`, ``}},
	}}
	cat := &langCatalog{
		MapCatalog: kql.MapCatalog{"T": schema},
		funcs:      map[string]kql.StoredFunction{"Fn": {Name: "Fn", Params: "n:long = 1", Body: "T | take n"}},
		workspaces: map[string]kql.WorkspaceTables{"w2": {ID: "w2", Tables: kql.MapCatalog{"T": schema}}},
	}
	e := New(Options{Limits: Limits{MaxResultRows: 1000, MaxMemoryBytes: 64 << 20, Timeout: 2 * time.Second}})
	f.Fuzz(func(t *testing.T, q string) {
		if len(q) > 4096 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		x := e.newExecutor(&Request{Query: q}, 0)
		x.inline = map[string][]*store.Batch{"T": {batch}}
		plan, err := kql.Compile(q, cat, kql.BindOptions{
			Parameters: map[string]string{"p": "5"},
			Explore:    func(m *kql.Materialize) (store.Schema, error) { return x.explore(ctx, m) },
		})
		if err != nil {
			return
		}
		_, _ = x.execute(ctx, plan)
	})
}
