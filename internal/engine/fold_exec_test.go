package engine

import (
	"context"
	"testing"

	"custos/internal/kql"
	"custos/internal/store"
)

// TestPrepareFoldsConstants checks that the executor folds column-free
// subexpressions of the plan before running it (prepareNode), keeps
// column references, window functions and volatile functions as they are,
// leaves a transformation's shared plan untouched, and that the folded plan
// gives the same rows.
func TestPrepareFoldsConstants(t *testing.T) {
	ctx := context.Background()
	q := `range x from 1 to 3 step 1
| extend a = x + strlen(strcat("ab", "c")) * 2, b = tolower("ABC"), r = rand() >= 0.0, n = row_number()
| where x > 1 + 0`
	plan, err := kql.Compile(q, kql.MapCatalog(nil), kql.BindOptions{})
	if err != nil {
		t.Fatal(err)
	}
	x := New(Options{}).newExecutor(&Request{}, 0)
	root := plan.Results[0]
	if err := x.prepareNode(root); err != nil {
		t.Fatal(err)
	}
	f, ok := root.(*kql.Filter)
	if !ok {
		t.Fatalf("root is %T; want a Filter", root)
	}
	cmp := f.Pred.(*kql.FnCall)
	if c, ok := cmp.Args[1].(*kql.Const); !ok || c.V.Int != 1 {
		t.Errorf("1 + 0 was not folded: %#v", cmp.Args[1])
	}
	comp := f.Input.(*kql.Compute)
	cols := map[string]kql.Scalar{}
	for _, c := range comp.Cols {
		cols[c.Name] = c.X
	}
	if c, ok := cols["b"].(*kql.Const); !ok || c.V.Str != "abc" {
		t.Errorf("tolower(\"ABC\") was not folded: %#v", cols["b"])
	}
	add, ok := cols["a"].(*kql.FnCall)
	if !ok {
		t.Fatalf("a = %#v; want x + const", cols["a"])
	}
	if c, ok := add.Args[1].(*kql.Const); !ok || c.V.Int != 6 {
		t.Errorf("strlen(strcat(...)) * 2 was not folded: %#v", add.Args[1])
	}
	if _, ok := cols["r"].(*kql.Const); ok {
		t.Error("rand() was folded; it is volatile")
	}
	if _, ok := cols["n"].(*kql.Const); ok {
		t.Error("row_number() was folded")
	}
	bs, err := x.run(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	rows := 0
	for _, b := range bs {
		for i := 0; i < b.Len; i++ {
			a := b.Cols[b.Schema.Index("a")].Int[i]
			xv := b.Cols[b.Schema.Index("x")].Int[i]
			if a != xv+6 {
				t.Errorf("row %d: a = %d; want %d", i, a, xv+6)
			}
			rows++
		}
	}
	if rows != 2 {
		t.Errorf("got %d rows; want 2", rows)
	}

	// A transformation's plan is shared by concurrent runs: never folded.
	in := store.Schema{{Name: "TimeGenerated", Type: store.TypeDatetime}, {Name: "Msg", Type: store.TypeString}}
	tr, err := CompileTransform(`source | extend u = toupper("x")`, in)
	if err != nil {
		t.Fatal(err)
	}
	b := &store.Batch{Schema: in, Len: 1, Cols: []*store.Vector{
		{Type: store.TypeDatetime, Int: []int64{0}}, {Type: store.TypeString, Str: []string{"m"}},
	}}
	if _, err := tr.Run(ctx, b); err != nil {
		t.Fatal(err)
	}
	for _, c := range tr.plan.Results[0].(*kql.Compute).Cols {
		if _, ok := c.X.(*kql.Const); ok && c.Name == "u" {
			t.Error("the transformation's shared plan was rewritten")
		}
	}
}
