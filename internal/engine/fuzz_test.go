package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"custos/internal/kql"
	"custos/internal/store"
)

// FuzzQuery runs arbitrary query text through parse, bind, plan and execute
// against a small in-memory table. Properties: no panic, and every failure is
// an error value (the engine is fed untrusted queries).
func FuzzQuery(f *testing.F) {
	addSpecQueries(f, "testdata")
	f.Add(`T | where s has "a-b" | summarize count(), dcount(s), avg(r) by bin(t, 1h), l | top 3 by count_`)
	schema := store.Schema{
		{Name: "t", Type: store.TypeDatetime}, {Name: "s", Type: store.TypeString},
		{Name: "l", Type: store.TypeLong}, {Name: "r", Type: store.TypeReal}, {Name: "b", Type: store.TypeBool},
	}
	batch := &store.Batch{Schema: schema, Len: 4, Cols: []*store.Vector{
		{Type: store.TypeDatetime, Int: []int64{0, 36_000_000_000, -5, 1 << 60}, Nulls: []bool{false, false, true, false}},
		{Type: store.TypeString, Str: []string{"a-b", "", "Ünïcode x", "abc def"}},
		{Type: store.TypeLong, Int: []int64{1, -1, 0, 1<<63 - 1}, Nulls: []bool{false, false, true, false}},
		{Type: store.TypeReal, Real: []float64{0.5, -2, 0, 1e308}},
		{Type: store.TypeBool, Bool: []bool{true, false, false, true}},
	}}
	e := New(Options{Limits: Limits{MaxResultRows: 1000, MaxMemoryBytes: 64 << 20, Timeout: 2 * time.Second}})
	f.Fuzz(func(t *testing.T, q string) {
		if len(q) > 4096 {
			return
		}
		plan, err := kql.Compile(q, kql.MapCatalog{"T": schema}, kql.BindOptions{})
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		x := e.newExecutor(&Request{Query: q}, 0)
		x.inline = map[string][]*store.Batch{"T": {batch}}
		if _, err := x.execute(ctx, plan); err != nil && errors.Is(err, context.DeadlineExceeded) {
			return
		}
	})
}

// addSpecQueries seeds f with every query of the datadriven specification
// files under dir.
func addSpecQueries(f *testing.F, dir string) {
	_ = filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		for _, block := range strings.Split(string(data), "\n\n") {
			cmd, rest, ok := strings.Cut(block, "\n")
			if !ok || !strings.HasPrefix(cmd, "query") {
				continue
			}
			q, _, _ := strings.Cut(rest, "----")
			f.Add(q)
		}
		return nil
	})
}
