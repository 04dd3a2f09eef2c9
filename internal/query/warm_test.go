package query

import (
	"context"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"custos/internal/catalog"
	"custos/internal/engine"
	"custos/internal/stacktest"
	"custos/internal/store"
)

// recordingExecutor runs the real engine and remembers what it ran.
type recordingExecutor struct {
	EngineExecutor
	mu   sync.Mutex
	runs []Exec
	outs []*Output
}

func (r *recordingExecutor) Execute(ctx context.Context, x Exec) (*Output, error) {
	out, err := r.EngineExecutor.Execute(ctx, x)
	r.mu.Lock()
	r.runs, r.outs = append(r.runs, x), append(r.outs, out)
	r.mu.Unlock()
	return out, err
}

// TestWarm checks the start-up warm-up against a real catalog, store and
// engine: after Warm, a query of each workspace finds the workspace, its
// table schemas and its audit destinations in the cache (no catalog read),
// the network gate was asked once per workspace, and the warm-up query ran
// through the engine without reading a row although its table holds rows
// of the last hour. A catalog write after Warm is still seen by the next
// query (the cache's generation rule).
func TestWarm(t *testing.T) {
	ctx := context.Background()
	base := stacktest.Open(t)
	base.EnsureTables(t)
	cat, ws := base.Cat, base.Boot.Workspace.CustomerID

	cc := &countingCatalog{DB: cat}
	exec := &recordingExecutor{EngineExecutor: EngineExecutor{Engine: engine.New(engine.Options{}), Source: base.Store}}
	audit, err := NewLAQueryLogs(LAQueryLogsOptions{Destinations: cat, Store: base.Store})
	if err != nil {
		t.Fatal(err)
	}
	var gateMu sync.Mutex
	gated := map[string]int{}
	a := New(Options{
		Workspaces: CatalogWorkspaces{C: cc, Content: base.Store},
		Executor:   exec,
		Auditor:    audit,
		NetworkGate: func(_ context.Context, w Workspace) error {
			gateMu.Lock()
			gated[w.CustomerID]++
			gateMu.Unlock()
			return nil
		},
	})

	// Rows of the last hour in the table the warm-up will pick (the first
	// by name with a TimeGenerated column).
	schemas, err := cat.WorkspaceTables(ctx, ws)
	if err != nil {
		t.Fatal(err)
	}
	qs := querySchemas(schemas)
	var table string
	for _, n := range slices.Sorted(maps.Keys(qs)) {
		if qs[n].Index("TimeGenerated") >= 0 && isPlainName(n) {
			table = n
			break
		}
	}
	if table == "" {
		t.Fatal("the bootstrapped workspace has no table with TimeGenerated")
	}
	app, err := base.Store.Appender(ctx, store.TableRef{WorkspaceID: ws, Table: table})
	if err != nil {
		t.Fatal(err)
	}
	b := &store.Batch{Len: 3, Schema: store.Schema{{Name: "TimeGenerated", Type: store.TypeDatetime}},
		Cols: []*store.Vector{{Type: store.TypeDatetime}}}
	for i := range 3 {
		b.Cols[0].Int = append(b.Cols[0].Int, store.TicksFromTime(time.Now().Add(-time.Duration(i+1)*time.Minute)))
	}
	if err := app.Append(b); err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	rep, err := a.Warm(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Workspaces != 1 || !rep.Compiled || rep.Took <= 0 {
		t.Fatalf("Warm = %+v; want 1 workspace, compiled, a duration", rep)
	}
	if len(exec.runs) != 1 {
		t.Fatalf("%d warm-up queries; want 1", len(exec.runs))
	}
	x, out := exec.runs[0], exec.outs[0]
	if x.Timespan != warmRange || x.WorkspaceID != ws || x.Tables[table] == nil {
		t.Fatalf("warm-up query %q over %+v in %s; want its timespan %+v in %s over %s", x.Query, x.Timespan, x.WorkspaceID, warmRange, ws, table)
	}
	if out.Stats.RowsScanned != 0 {
		t.Fatalf("warm-up query scanned %d rows; want none", out.Stats.RowsScanned)
	}
	if n := rowsOf(out); n != 0 {
		t.Fatalf("warm-up query returned %d rows; want none", n)
	}
	if gated[ws] != 1 {
		t.Fatalf("network gate asked %d times for %s; want 1", gated[ws], ws)
	}
	if _, ok := audit.cache.dests[base.Boot.Workspace.ID()]; !ok {
		t.Fatal("the audit destinations of the workspace are not cached")
	}

	// A query's catalog reads are now served from the cache.
	before := cc.reads.Load()
	w, err := a.lookupWorkspace(ctx, ws)
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.opts.Workspaces.TableSchemas(ctx, w.CustomerID)
	if err != nil {
		t.Fatal(err)
	}
	if n := cc.reads.Load() - before; n != 0 {
		t.Fatalf("%d catalog reads by the first query after Warm; want 0", n)
	}
	if len(got) != len(qs) {
		t.Fatalf("%d cached schemas; want %d", len(got), len(qs))
	}

	// The same query reads the real table: Warm changed nothing it sees.
	res, err := exec.Execute(ctx, Exec{Query: table + " | count", Tables: got, WorkspaceID: ws, Timespan: store.AllTime, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if c := res.Tables[0].Batches[0].Cols[0].Int[0]; c != 3 {
		t.Fatalf("count after Warm = %d; want 3", c)
	}

	// A catalog write after Warm is seen by the next query.
	if _, _, err := cat.PutTable(ctx, base.Boot.Subscription.ID, base.Boot.ResourceGroup.Name, base.Boot.Workspace.Name,
		catalog.TableSpec{Name: "Late_CL", Columns: []catalog.Column{{Name: "TimeGenerated", Type: store.TypeDatetime}}},
		catalog.Precondition{}, catalog.Actor{ID: "test"}); err != nil {
		t.Fatal(err)
	}
	got, err = a.opts.Workspaces.TableSchemas(ctx, ws)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got["Late_CL"]; !ok {
		t.Fatal("a table created after Warm is not seen by the next query")
	}
}

// TestWarmBounded checks that Warm stops at its context's end and reads at
// most MaxWarmWorkspaces workspaces.
func TestWarmBounded(t *testing.T) {
	base := stacktest.Open(t)
	base.EnsureTables(t)
	exec := &recordingExecutor{EngineExecutor: EngineExecutor{Engine: engine.New(engine.Options{}), Source: base.Store}}
	a := New(Options{Workspaces: CatalogWorkspaces{C: base.Cat}, Executor: exec})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rep, err := a.Warm(ctx)
	if err == nil && (rep.Workspaces != 0 || rep.Compiled) {
		t.Fatalf("Warm with a cancelled context = %+v, nil; want nothing done", rep)
	}
	if len(exec.runs) != 0 {
		t.Fatalf("%d warm-up queries with a cancelled context; want 0", len(exec.runs))
	}
	// Not a catalog of the cache's kind: nothing to warm, no error.
	plain := New(Options{Workspaces: staticWorkspaces{}, Executor: exec})
	if rep, err := plain.Warm(context.Background()); err != nil || rep.Workspaces != 0 {
		t.Fatalf("Warm without a catalog = %+v, %v; want nothing, nil", rep, err)
	}
}

func TestIsPlainName(t *testing.T) {
	for name, want := range map[string]bool{
		"Heartbeat": true, "App_CL": true, "_x1": true, "": false, "1abc": false, "a-b": false, "a b": false, "a']": false, "é": false,
	} {
		if got := isPlainName(name); got != want {
			t.Errorf("isPlainName(%q) = %v; want %v", name, got, want)
		}
	}
}

// staticWorkspaces is a Workspaces without a catalog behind it.
type staticWorkspaces struct{}

func (staticWorkspaces) WorkspaceByCustomerID(context.Context, string) (Workspace, error) {
	return Workspace{}, ErrWorkspaceNotFound
}

func (staticWorkspaces) TableSchemas(context.Context, string) (map[string]store.Schema, error) {
	return nil, ErrWorkspaceNotFound
}

func rowsOf(out *Output) int {
	n := 0
	if out == nil || len(out.Tables) == 0 {
		return 0
	}
	for _, b := range out.Tables[0].Batches {
		if b != nil {
			n += b.Len
		}
	}
	return n
}
