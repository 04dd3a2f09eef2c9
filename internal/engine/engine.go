package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"time"

	"custos/internal/api"
	"custos/internal/kql"
	"custos/internal/store"
)

// Errors of the engine.
var (
	// ErrLimitExceeded is matched (errors.Is) by every *LimitError: a query
	// exceeded its result size, memory or range limits.
	ErrLimitExceeded = errors.New("query limit exceeded")
	// ErrNoSource is returned when a query reads a table but the request has
	// no store.Queryable to read it from.
	ErrNoSource = errors.New("no data source for table")
)

// LimitError says which limit a query exceeded. It implements api.Coded.
type LimitError struct {
	Limit string // "rows", "bytes", "memory", "range"
	Max   int64
	Msg   string
}

func (e *LimitError) Error() string { return e.Msg }

// Is makes errors.Is(err, ErrLimitExceeded) true.
func (e *LimitError) Is(target error) bool { return target == ErrLimitExceeded }

// AzureError implements api.Coded: Log Analytics reports limit violations
// as a bad request of the query.
func (e *LimitError) AzureError() (string, api.Kind) { return "BadArgumentError", api.KindInvalid }

// ExecError is a failure while running a valid query (for example an invalid
// regular expression in a constant). It implements api.Coded.
type ExecError struct {
	Msg string
}

func (e *ExecError) Error() string { return e.Msg }

// AzureError implements api.Coded.
func (e *ExecError) AzureError() (string, api.Kind) { return "BadArgumentError", api.KindInvalid }

// Limits bound what one query may use. A zero field means the default.
type Limits struct {
	// MaxResultRows is the most rows a query may return (Azure: 500,000).
	MaxResultRows int
	// MaxResultBytes is the most result data a query may return (Azure: 64 MB).
	MaxResultBytes int64
	// MaxMemoryBytes bounds the data a query holds at once in sorts,
	// aggregations and collected intermediate results.
	MaxMemoryBytes int64
	// Timeout is the default query timeout (Azure: 3 minutes); a request may
	// ask for another one up to MaxTimeout.
	Timeout time.Duration
	// MaxTimeout is the longest timeout a request may ask for (Azure: 10 minutes).
	MaxTimeout time.Duration
}

// DefaultLimits returns Azure's limits: 500,000 rows, 64 MB, 3 minutes
// (10 at most), and 2 GiB of working memory per query.
func DefaultLimits() Limits {
	return Limits{
		MaxResultRows:  500_000,
		MaxResultBytes: 64 << 20,
		MaxMemoryBytes: 2 << 30,
		Timeout:        3 * time.Minute,
		MaxTimeout:     10 * time.Minute,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxResultRows <= 0 {
		l.MaxResultRows = d.MaxResultRows
	}
	if l.MaxResultBytes <= 0 {
		l.MaxResultBytes = d.MaxResultBytes
	}
	if l.MaxMemoryBytes <= 0 {
		l.MaxMemoryBytes = d.MaxMemoryBytes
	}
	if l.Timeout <= 0 {
		l.Timeout = d.Timeout
	}
	if l.MaxTimeout <= 0 {
		l.MaxTimeout = d.MaxTimeout
	}
	return l
}

// Options configure an Engine. Zero fields take safe defaults.
type Options struct {
	Logger *slog.Logger // nil: discard
	Limits Limits
	// Parallelism is the number of worker goroutines per query stage; 0
	// means GOMAXPROCS (at most 8).
	Parallelism int
	// Clock returns the current time for queries whose Request.Now is zero;
	// nil means time.Now.
	Clock func() time.Time
	// QuerySlots, when set, bounds the CPU work of all queries together:
	// a pipeline worker applies the row-wise operators and its sink to one
	// batch, and a scan conforms one batch, holding one of its slots (the
	// server shares one internal/workload pool with the store's
	// Options.QuerySlots). Nil: every query runs Parallelism workers
	// unbounded. DCR transformations (CompileTransform) never take slots:
	// they are ingestion's work.
	QuerySlots store.WorkerSlots
}

// Engine runs KQL queries. It is safe for concurrent use.
type Engine struct {
	log     *slog.Logger
	limits  Limits
	workers int
	clock   func() time.Time
	slots   *slotPool
	cpu     store.WorkerSlots
}

// New returns an Engine.
func New(opts Options) *Engine {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	w := opts.Parallelism
	if w <= 0 {
		w = min(runtime.GOMAXPROCS(0), 8)
	}
	clock := opts.Clock
	if clock == nil {
		clock = time.Now
	}
	return &Engine{log: log, limits: opts.Limits.withDefaults(), workers: w, clock: clock, slots: newSlotPool(tablePoolBytes), cpu: opts.QuerySlots}
}

// Request is one query to run.
type Request struct {
	// Query is the KQL text.
	Query string
	// Tables resolves table names to schemas (the workspace's tables the
	// caller may read).
	Tables kql.Catalog
	// Source reads table data.
	Source store.Queryable
	// WorkspaceID is the workspace (customerId) the tables belong to.
	WorkspaceID string
	// Timespan restricts TimeGenerated in addition to the query's own
	// filters. The zero value means all time.
	Timespan store.TimeRange
	// RowConditions are KQL predicates per table name (from RBAC decisions)
	// that every row read from that table must satisfy.
	RowConditions map[string][]string
	// Now is the query's now(); zero means the engine's clock.
	Now time.Time
	// Timeout overrides the default timeout (bounded by Limits.MaxTimeout).
	Timeout time.Duration
	// Parameters are the values of the query's declared parameters
	// (declare query_parameters), as text; see kql.ParameterValue.
	Parameters map[string]string
	// Workspaces are additional workspaces (the query body's
	// "workspaces"): each table reference also reads the table in each of
	// them that has it. Their tables and row conditions are the caller's.
	Workspaces []kql.WorkspaceTables
}

// Result is the outcome of a query: its tables, PrimaryResult first.
type Result struct {
	Tables []Table
	Stats  Stats
	// Render is the primary result's render request, nil without render.
	Render *kql.Visualization
}

// Table is one result table.
type Table struct {
	Name    string
	Schema  store.Schema
	Batches []*store.Batch
}

// Rows returns the number of rows of t.
func (t *Table) Rows() int {
	n := 0
	for _, b := range t.Batches {
		n += b.Len
	}
	return n
}

// Stats describe the work a query did.
type Stats struct {
	Duration        time.Duration
	RowsScanned     int64
	BatchesScanned  int64
	BytesScanned    int64
	RowsReturned    int64
	BytesReturned   int64
	PeakMemoryBytes int64
}

// Query parses, binds, plans and runs req.Query.
func (e *Engine) Query(ctx context.Context, req Request) (*Result, error) {
	start := time.Now()
	now := req.Now
	if now.IsZero() {
		now = e.clock()
	}
	timeout := e.limits.Timeout
	if req.Timeout > 0 {
		timeout = min(req.Timeout, e.limits.MaxTimeout)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	tables := req.Tables
	if tables == nil {
		tables = kql.MapCatalog(nil)
	}
	x := e.newExecutor(&req, store.TicksFromTime(now))
	plan, err := kql.Compile(req.Query, tables, kql.BindOptions{
		RowConditions: req.RowConditions,
		Parameters:    req.Parameters,
		Workspaces:    req.Workspaces,
		Explore: func(m *kql.Materialize) (store.Schema, error) {
			return x.explore(ctx, m)
		},
	})
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return nil, fmt.Errorf("query: %w", ctx.Err())
		}
		return nil, err
	}
	res, err := x.execute(ctx, plan)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return nil, fmt.Errorf("query: %w", ctx.Err())
		}
		return nil, err
	}
	res.Stats.Duration = time.Since(start)
	e.log.LogAttrs(ctx, slog.LevelDebug, "query done",
		slog.Duration("duration", res.Stats.Duration),
		slog.Int64("rows_scanned", res.Stats.RowsScanned),
		slog.Int64("rows_returned", res.Stats.RowsReturned))
	return res, nil
}

func (e *Engine) newExecutor(req *Request, now int64) *executor {
	return &executor{
		ev:       newEvaluator(now),
		req:      req,
		lim:      e.limits,
		workers:  e.workers,
		subTypes: map[*kql.Subquery]store.ColumnType{},
		fold:     true,
		slots:    e.slots,
		cpu:      e.cpu,
	}
}
