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
		Query: q.Query, Tables: execCatalog{MapCatalog: kql.MapCatalog(q.Tables), resolve: q.Resolve, funcs: q.Functions},
		Source: x.Source, WorkspaceID: q.WorkspaceID,
		Timespan: q.Timespan, RowConditions: q.RowConditions, Now: q.Now, Timeout: timeoutFrom(timeout),
		Parameters: q.Parameters, Workspaces: q.Workspaces,
	})
	if err != nil {
		return nil, err
	}
	out := &Output{Tables: tablesOf(res), Statistics: Statistics(res), Stats: ExecStats{
		Duration: res.Stats.Duration, RowsScanned: res.Stats.RowsScanned, BytesScanned: res.Stats.BytesScanned,
	}}
	if res.Render != nil {
		if out.Render, err = json.Marshal(res.Render); err != nil {
			return nil, fmt.Errorf("encode render: %w", err)
		}
	}
	return out, nil
}

// execCatalog is the engine's view of one query's catalog: the workspace's
// tables (as the caller may read them), its stored functions and the
// resolver of workspace("x").
type execCatalog struct {
	kql.MapCatalog
	resolve func(ref string) (kql.WorkspaceTables, bool)
	funcs   map[string]kql.StoredFunction
}

// Function implements kql.FunctionCatalog.
func (c execCatalog) Function(name string) (kql.StoredFunction, bool) {
	f, ok := c.funcs[name]
	return f, ok
}

// Workspace implements kql.WorkspaceCatalog.
func (c execCatalog) Workspace(ref string) (kql.WorkspaceTables, bool) {
	if c.resolve == nil {
		return kql.WorkspaceTables{}, false
	}
	return c.resolve(ref)
}

var (
	_ kql.FunctionCatalog  = execCatalog{}
	_ kql.WorkspaceCatalog = execCatalog{}
	_ kql.TableLister      = execCatalog{}
)

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
