package engine

import (
	"context"
	"fmt"
	"time"

	"custos/internal/kql"
	"custos/internal/store"
)

// SourceTable is the name a transformation uses for its input records.
const SourceTable = "source"

// Transform is a compiled ingestion-time transformation (a DCR's
// transformKql). It is immutable and safe for concurrent use.
type Transform struct {
	plan   *kql.Plan
	input  store.Schema
	output store.Schema
	limits Limits
	clock  func() time.Time
}

// CompileTransform compiles src against the input stream's schema, bound as
// the table "source". Only per-record operators are allowed (where, extend,
// project, project-away, project-keep, project-rename, project-reorder);
// any other operator is rejected with an error naming it.
func CompileTransform(src string, input store.Schema) (*Transform, error) {
	plan, err := kql.Compile(src, kql.MapCatalog{SourceTable: input}, kql.BindOptions{PerRecordOnly: true})
	if err != nil {
		return nil, err
	}
	if len(plan.Results) != 1 {
		return nil, &kql.SemanticError{Line: 1, Col: 1, Msg: "a transformation must have exactly one tabular expression"}
	}
	if !readsSource(plan.Results[0]) {
		return nil, &kql.SemanticError{Line: 1, Col: 1, Msg: "a transformation must read the 'source' table"}
	}
	return &Transform{
		plan:   plan,
		input:  input,
		output: plan.Results[0].Schema(),
		limits: DefaultLimits(),
		clock:  time.Now,
	}, nil
}

func readsSource(n kql.PlanNode) bool {
	for {
		switch m := n.(type) {
		case *kql.Scan:
			return m.Table == SourceTable
		case *kql.Filter:
			n = m.Input
		case *kql.Compute:
			n = m.Input
		default:
			return false
		}
	}
}

// Output returns the schema of the records Run produces.
func (t *Transform) Output() store.Schema { return t.output }

// Run applies the transformation to a batch of input records and returns the
// output records (possibly none). The input must match the schema the
// transformation was compiled for; columns it lacks are null. The output may
// share memory with in (columns passed through unchanged), so the caller
// must not modify in while it uses the output.
func (t *Transform) Run(ctx context.Context, in *store.Batch) (*store.Batch, error) {
	if in == nil {
		return emptyBatch(t.output), nil
	}
	if len(in.Cols) != len(in.Schema) {
		return nil, fmt.Errorf("transform: batch has %d columns for %d schema entries", len(in.Cols), len(in.Schema))
	}
	x := &executor{
		ev:       newEvaluator(store.TicksFromTime(t.clock())),
		req:      &Request{},
		lim:      t.limits,
		workers:  1,
		inline:   map[string][]*store.Batch{SourceTable: {in}},
		subTypes: map[*kql.Subquery]store.ColumnType{},
	}
	root := t.plan.Results[0]
	if err := x.subqueries(ctx, root); err != nil {
		return nil, fmt.Errorf("transform: %w", err)
	}
	if err := x.prepareNode(root); err != nil {
		return nil, err
	}
	batches, err := x.run(ctx, root)
	if err != nil {
		return nil, fmt.Errorf("transform: %w", err)
	}
	if len(batches) == 0 {
		return emptyBatch(t.output), nil
	}
	out := concatBatches(t.output, batches)
	out.Schema = t.output
	return out, nil
}
