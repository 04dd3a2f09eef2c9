package engine

import (
	"testing"

	"custos/internal/kql"
	"custos/internal/store"
)

// TestPruneScanTimeFilters checks which comparisons on TimeGenerated the
// executor drops above a store scan (the answers themselves are checked
// against hand-computed results in testdata/store/timefilter).
func TestPruneScanTimeFilters(t *testing.T) {
	schema := store.Schema{{Name: "TimeGenerated", Type: store.TypeDatetime}, {Name: "Computer", Type: store.TypeString}, {Name: "N", Type: store.TypeLong}}
	cat := kql.MapCatalog{"T": schema}
	cases := []struct {
		query  string
		inline bool
		ops    int    // row-wise operators left above the scan
		pred   string // the first filter's predicate left, "" for none
	}{
		{query: "T | where TimeGenerated >= datetime(2024-01-01) and TimeGenerated < datetime(2024-01-02) | summarize count()", ops: 0},
		{query: "T | where datetime(2024-01-01) <= TimeGenerated | summarize count()", ops: 0},
		{query: "T | where TimeGenerated == datetime(2024-01-01) | summarize count()", ops: 0},
		{query: "T | where TimeGenerated > ago(1h) | where TimeGenerated < now() | summarize count()", ops: 0},
		{query: "T | where TimeGenerated >= datetime(2024-01-01) and N > 1 | summarize count()", ops: 1, pred: "N"},
		{query: "T | where TimeGenerated >= datetime(2024-01-01) or N > 1 | summarize count()", ops: 1, pred: "or"},
		{query: "T | where TimeGenerated >= datetime(2024-01-01) | summarize count()", inline: true, ops: 1, pred: "TimeGenerated"},
		{query: "T | where TimeGenerated >= datetime(null) | summarize count()", ops: 1, pred: "TimeGenerated"},
		{query: "T | where N > 1 | summarize count()", ops: 1, pred: "N"},
	}
	e := New(Options{Parallelism: 2})
	for _, c := range cases {
		req := Request{Query: c.query, Tables: cat, Now: testNow}
		x := e.newExecutor(&req, store.TicksFromTime(testNow))
		if c.inline {
			x.inline = map[string][]*store.Batch{"T": nil}
		}
		plan, err := kql.Compile(c.query, cat, kql.BindOptions{})
		if err != nil {
			t.Fatalf("%s: %v", c.query, err)
		}
		agg, ok := plan.Results[0].(*kql.Aggregate)
		if !ok {
			t.Fatalf("%s: root is %T", c.query, plan.Results[0])
		}
		before := split(agg.Input)
		orig := before.ops[0].(*kql.Filter).Pred
		p := x.pruneScanTimeFilters(before)
		if before.ops[0].(*kql.Filter).Pred != orig {
			t.Errorf("%s: the plan's filter was modified", c.query)
		}
		if len(p.ops) != c.ops {
			t.Errorf("%s: %d operators left, want %d", c.query, len(p.ops), c.ops)
			continue
		}
		if c.ops == 0 {
			continue
		}
		f := p.ops[0].(*kql.Filter)
		got := describePred(f.Pred)
		if got != c.pred {
			t.Errorf("%s: predicate left is %s, want %s", c.query, got, c.pred)
		}
	}
}

// describePred names a predicate by its first column or its operator.
func describePred(e kql.Scalar) string {
	switch e := e.(type) {
	case *kql.ColRef:
		return e.Name
	case *kql.FnCall:
		if e.Fn == kql.OpOr {
			return "or"
		}
		for _, a := range e.Args {
			if s := describePred(a); s != "" {
				return s
			}
		}
	}
	return ""
}
