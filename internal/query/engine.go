package query

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"custos/internal/engine"
	"custos/internal/kql"
	"custos/internal/store"
)

// EngineExecutor runs queries on the KQL engine over a store. Safe for
// concurrent use.
type EngineExecutor struct {
	Engine *engine.Engine
	Source store.Queryable
}

var _ Executor = EngineExecutor{}

// Execute implements Executor.
func (x EngineExecutor) Execute(ctx context.Context, q Exec) (*Output, error) {
	timeout := noTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = dl
	}
	res, err := x.Engine.Query(ctx, engine.Request{
		Query: q.Query, Tables: kql.MapCatalog(q.Tables), Source: x.Source, WorkspaceID: q.WorkspaceID,
		Timespan: q.Timespan, RowConditions: q.RowConditions, Now: q.Now, Timeout: timeoutFrom(timeout),
	})
	if err != nil {
		return nil, err
	}
	return &Output{Tables: tablesOf(res), Statistics: Statistics(res), Stats: ExecStats{
		Duration: res.Stats.Duration, RowsScanned: res.Stats.RowsScanned, BytesScanned: res.Stats.BytesScanned,
	}}, nil
}

func tablesOf(res *engine.Result) []TableData {
	out := make([]TableData, len(res.Tables))
	for i, t := range res.Tables {
		out[i] = TableData{Name: t.Name, Schema: t.Schema, Batches: t.Batches}
	}
	return out
}

// Statistics renders the engine's statistics as the Log Analytics
// "statistics" object (executionTime in seconds, resource usage, dataset sizes).
func Statistics(res *engine.Result) json.RawMessage {
	s := res.Stats
	rows := int64(0)
	if len(res.Tables) > 0 {
		rows = int64(res.Tables[0].Rows())
	}
	out := map[string]any{"query": map[string]any{
		"executionTime": s.Duration.Seconds(),
		"resourceUsage": map[string]any{
			"memory": map[string]any{"peak_per_node": s.PeakMemoryBytes},
		},
		"inputDatasetStatistics": map[string]any{
			"rows":  map[string]any{"scanned": s.RowsScanned},
			"bytes": map[string]any{"scanned": s.BytesScanned},
		},
		"datasetStatistics": []any{map[string]any{"tableRowCount": rows, "tableSize": s.BytesReturned}},
	}}
	b, err := json.Marshal(out)
	if err != nil {
		panic(fmt.Sprintf("BUG: marshal statistics: %v", err))
	}
	return b
}

// FormatResult writes an engine result as the Log Analytics query response
// body ({"tables":[...]}, with "statistics" when withStats), formatting values
// as Azure does. The CLI uses it to print results as the API would.
func FormatResult(w io.Writer, res *engine.Result, withStats bool) error {
	var ex Extras
	if withStats {
		ex.Statistics = Statistics(res)
	}
	return WriteTables(w, tablesOf(res), ex)
}
