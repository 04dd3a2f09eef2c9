package engine

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"custos/internal/kql"
	"custos/internal/store"
)

// substituteRow replaces every column reference of e by its value in row i
// of b, making e constant.
func substituteRow(e kql.Scalar, b *store.Batch, i int) kql.Scalar {
	switch e := e.(type) {
	case *kql.ColRef:
		v := valueAt(b.Col(e.Name), i)
		v.Type = e.T
		return &kql.Const{V: v}
	case *kql.FnCall:
		args := make([]kql.Scalar, len(e.Args))
		for j, a := range e.Args {
			args[j] = substituteRow(a, b, i)
		}
		return &kql.FnCall{Fn: e.Fn, Args: args, T: e.T}
	}
	return e
}

func sameValue(a, b kql.Value) bool {
	if a.Type != b.Type || a.Null != b.Null {
		return false
	}
	if kql.IsRealHeld(a.Type) && math.IsNaN(a.Real) && math.IsNaN(b.Real) {
		return true
	}
	return a.String() == b.String()
}

// FuzzFoldVsExecute is the differential test of constant folding: each
// template is bound over the columns of a two-row datatable and executed
// over the batch; then, per row, the columns are replaced by that row's
// values and the whole expression is folded to a constant, which must
// equal the executed value.
func FuzzFoldVsExecute(f *testing.F) {
	for i := range diffTemplates {
		for _, v := range diffSeeds {
			f.Add(i, v.s, v.l, v.r, v.unix)
		}
	}
	f.Fuzz(func(t *testing.T, which int, s string, l int64, r float64, unix int64) {
		if which < 0 || len(s) > 200 {
			return
		}
		tmpl := diffTemplates[which%len(diffTemplates)]
		unix %= 253402300800
		if unix < 0 {
			unix = -unix
		}
		d := "datetime(" + kql.FormatDatetime(unix*store.TicksPerSecond) + ")"
		expr := strings.NewReplacer("{s}", "s", "{l}", "l", "{r}", "r", "{d}", "d", "{j}", "s").Replace(tmpl)
		q := fmt.Sprintf("datatable(s:string, l:long, r:real, d:datetime)[%s, long(%s), %s, %s, \"zz\", 1, 2.0, datetime(2001-02-03)] | project x = %s",
			kqlString(s), strconv.FormatInt(l, 10), kqlReal(r), d, expr)
		plan, err := kql.Compile(q, kql.MapCatalog{}, kql.BindOptions{})
		if err != nil {
			return
		}
		cmp, ok := plan.Results[0].(*kql.Compute)
		if !ok {
			t.Skipf("plan of %q is %T, not a Compute", q, plan.Results[0])
		}
		vals, ok := cmp.Input.(*kql.Values)
		if !ok {
			t.Skipf("input of %q is %T, not Values", q, cmp.Input)
		}
		b := &store.Batch{Schema: vals.Out, Len: len(vals.Rows), Cols: make([]*store.Vector, len(vals.Out))}
		for ci, c := range vals.Out {
			v := emptyVector(c.Type, b.Len)
			for _, row := range vals.Rows {
				appendValue(v, row[ci])
			}
			b.Cols[ci] = v
		}
		e := cmp.Cols[0].X
		ev := newEvaluator(store.TicksFromTime(testNow))
		if err := ev.prepare(e); err != nil {
			return // invalid constant pattern and the like: the query fails either way
		}
		got, errExec := ev.eval(e, b)
		for i := range b.Len {
			folded, errFold := ev.fold(substituteRow(e, b, i))
			if (errExec == nil) != (errFold == nil) {
				t.Fatalf("%s row %d: executed error %v, folded error %v", tmpl, i, errExec, errFold)
			}
			if errExec != nil {
				return
			}
			k, ok := folded.(*kql.Const)
			if !ok {
				t.Fatalf("%s row %d: folded to %s, not a constant", tmpl, i, folded)
			}
			want := valueAt(got, i)
			want.Type = e.Type()
			if !sameValue(k.V, want) {
				t.Fatalf("%s with s=%q l=%d r=%v d=%s, row %d\nfolded:   %#v\nexecuted: %#v", tmpl, s, l, r, d, i, k.V, want)
			}
		}
	})
}
