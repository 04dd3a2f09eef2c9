package query

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"custos/internal/api"
	"custos/internal/identity"
	"custos/internal/kql"
	"custos/internal/rbac"
	"custos/internal/store"
)

// ActionRead is the action the query API requires on the workspace.
const ActionRead = rbac.ActionQueryRead

// Workspace is what the query API needs of a workspace.
type Workspace struct {
	CustomerID string // the workspace GUID of the /v1/workspaces/{id} paths
	ResourceID string // ARM resource ID; the RBAC scope
}

// ErrWorkspaceNotFound may be returned (wrapped) by a Workspaces implementation.
var ErrWorkspaceNotFound = errors.New("query: workspace not found")

// Workspaces looks workspaces and their table schemas up. The catalog
// implements it through a small adapter. A missing workspace is an error for
// which errors.Is(err, ErrWorkspaceNotFound) holds or an api.Coded error of
// kind api.KindNotFound. Implementations are safe for concurrent use.
type Workspaces interface {
	WorkspaceByCustomerID(ctx context.Context, customerID string) (Workspace, error)
	// TableSchemas returns every table of the workspace with its schema,
	// system columns included.
	TableSchemas(ctx context.Context, customerID string) (map[string]store.Schema, error)
}

// Authorizer authorizes each item of a batch (rbac.Authorizer).
type Authorizer interface {
	Authorize(ctx context.Context, p identity.Principal, act rbac.Action, scope rbac.Scope) (rbac.Decision, error)
}

// Exec is one query to execute.
type Exec struct {
	Query         string
	Tables        map[string]store.Schema
	WorkspaceID   string
	Timespan      store.TimeRange
	RowConditions map[string][]string
	Now           time.Time
	// Parameters are the query's parameter values (the body's
	// "parameters", a Custos extension), as text.
	Parameters map[string]string
	// Workspaces are the additional workspaces of the body's "workspaces".
	Workspaces []kql.WorkspaceTables
	// Resolve resolves workspace("x") references; nil refuses them.
	Resolve func(ref string) (kql.WorkspaceTables, bool)
	// Functions are the workspace's stored functions, by alias.
	Functions map[string]kql.StoredFunction
}

// Output is the result of one query.
type Output struct {
	Tables     []TableData
	Statistics json.RawMessage // the statistics object, or nil
	Render     json.RawMessage // the render object, or nil when the query has no render
	Stats      ExecStats       // for the query audit
}

// ExecStats are the executor's measurements of one query.
type ExecStats struct {
	Duration     time.Duration
	RowsScanned  int64
	BytesScanned int64
}

// Executor runs KQL; EngineExecutor adapts the engine.
type Executor interface {
	Execute(ctx context.Context, x Exec) (*Output, error)
}

// Options configure the query API. Zero values mean the documented defaults.
type Options struct {
	Workspaces Workspaces // required
	Executor   Executor   // required
	Authorizer Authorizer // required for $batch; nil makes every batch item 403
	// TableAccess applies table-level RBAC and ABAC row conditions: per
	// query, the tables the caller may not read are removed from the
	// engine's catalog and from /metadata, and row conditions are compiled
	// below every scan. nil reads every table of a workspace the route
	// authorized (for tests of the API shape only; the server always sets it).
	TableAccess TableAuthorizer
	// Auditor receives one record per query, allowed and denied (the query
	// audit, LAQueryLogs). nil audits nothing.
	Auditor Auditor
	// NetworkGate, when set, is called with every workspace a request
	// reads, before anything of it is read; its error is the answer (the
	// server's network isolation: public access disabled). nil admits all.
	NetworkGate func(ctx context.Context, ws Workspace) error
	Logger      *slog.Logger // nil discards logs
	// MaxBodyBytes bounds request bodies; 0 → DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// DefaultWait and MaxWait bound the Prefer: wait timeout; 0 → Azure's 180 s and 600 s.
	DefaultWait, MaxWait time.Duration
	Now                  func() time.Time
}

// API serves the Log Analytics Query API. Safe for concurrent use.
type API struct {
	opts Options
	log  *slog.Logger
}

// New returns the query API. It panics if a required dependency is missing,
// which is a wiring bug.
func New(opts Options) *API {
	if opts.Workspaces == nil || opts.Executor == nil {
		panic("BUG: query.New needs Workspaces and Executor")
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.DefaultWait <= 0 {
		opts.DefaultWait = DefaultWait
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = MaxWait
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts.Workspaces = withCatalogCache(opts.Workspaces)
	return &API{opts: opts, log: log}
}

// withCatalogCache puts a generation-checked cache (cachedCatalog) in front
// of a CatalogWorkspaces whose catalog says when it changed and has
// everything the cache forwards (*catalog.DB); other Workspaces are used as
// they are.
func withCatalogCache(w Workspaces) Workspaces {
	cw, ok := w.(CatalogWorkspaces)
	if !ok {
		return w
	}
	_, isFn := cw.C.(functionCatalog)
	_, isRes := cw.C.(resolverCatalog)
	g, isGen := cw.C.(Generational)
	if !isFn || !isRes || !isGen {
		return w
	}
	cw.C = newCachedCatalog(cw.C, g, time.Now)
	return cw
}

// Routes returns the query endpoints.
func (a *API) Routes() []api.Route {
	r := func(method, pattern string, scope func(*http.Request) rbac.Scope, h api.HandlerFunc) api.Route {
		return api.Route{Method: method, Pattern: pattern, Audience: identity.AudienceQuery, Action: ActionRead, Scope: scope, Handler: h}
	}
	return []api.Route{
		r(http.MethodPost, "/v1/workspaces/{workspaceId}/query", a.workspaceScope, a.query),
		r(http.MethodGet, "/v1/workspaces/{workspaceId}/query", a.workspaceScope, a.query),
		r(http.MethodGet, "/v1/workspaces/{workspaceId}/metadata", a.workspaceScope, a.metadata),
		r(http.MethodPost, "/v1/workspaces/{workspaceId}/metadata", a.workspaceScope, a.metadata),
		r(http.MethodPost, "/v1/$batch", a.batchScope, a.batch),
	}
}

// workspaceScope returns the workspace's resource ID, or "/" when it is unknown
// (the handler then answers 404 to a caller allowed that far).
func (a *API) workspaceScope(r *http.Request) rbac.Scope {
	ws, err := a.opts.Workspaces.WorkspaceByCustomerID(r.Context(), r.PathValue("workspaceId"))
	if err != nil || ws.ResourceID == "" {
		return "/"
	}
	return rbac.Scope(ws.ResourceID)
}

// batchScope authorizes a batch on the workspace of its first request (each
// request is authorized again on its own workspace). It reads the body and
// puts it back for the handler. A batch that does not validate (duplicate
// ids, ...) is still scoped by its first workspace, so that its author gets
// the 400 rather than a 403.
func (a *API) batchScope(r *http.Request) rbac.Scope {
	data, err := readBody(r, a.opts.MaxBodyBytes)
	if err != nil {
		return "/"
	}
	r.Body = readCloser{bytes.NewReader(data)}
	var loose struct {
		Requests []struct {
			Workspace string `json:"workspace"`
		} `json:"requests"`
	}
	if json.Unmarshal(data, &loose) != nil || len(loose.Requests) == 0 || loose.Requests[0].Workspace == "" {
		return "/"
	}
	ws, err := a.opts.Workspaces.WorkspaceByCustomerID(r.Context(), loose.Requests[0].Workspace)
	if err != nil || ws.ResourceID == "" {
		return "/"
	}
	return rbac.Scope(ws.ResourceID)
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

func isNotFound(err error, sentinel error) bool {
	if errors.Is(err, sentinel) {
		return true
	}
	var c api.Coded
	if errors.As(err, &c) {
		_, kind := c.AzureError()
		return kind == api.KindNotFound
	}
	return false
}

func pathNotFound() *Error {
	return &Error{Code: "PathNotFoundError", Kind: api.KindNotFound, Message: "The requested path does not exist"}
}

func (a *API) lookupWorkspace(ctx context.Context, id string) (Workspace, error) {
	ws, err := a.opts.Workspaces.WorkspaceByCustomerID(ctx, id)
	if err != nil {
		if isNotFound(err, ErrWorkspaceNotFound) {
			return Workspace{}, pathNotFound()
		}
		return Workspace{}, fmt.Errorf("look up workspace %s: %w", id, err)
	}
	return ws, nil
}

func (a *API) query(w http.ResponseWriter, r *http.Request, _ rbac.Decision) {
	body, err := requestFromHTTP(r, a.opts.MaxBodyBytes)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	ws, err := a.lookupWorkspace(r.Context(), r.PathValue("workspaceId"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var au auditState
	start := time.Now()
	out, err := a.run(r.Context(), ws, body, a.prefer(r.Header), &au)
	a.audit(r.Context(), r, ws, body, au.timespan, statusOf(err), time.Since(start), au.out, au.conditional)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out) // the client may have gone
}

func (a *API) prefer(h http.Header) Preferences {
	p := ParsePrefer(h)
	if len(h.Values("Prefer")) == 0 || !hasWait(h) {
		p.Wait = a.opts.DefaultWait
	}
	if p.Wait > a.opts.MaxWait {
		p.Wait = a.opts.MaxWait
	}
	return p
}

func hasWait(h http.Header) bool {
	for _, v := range h.Values("Prefer") {
		if strings.Contains(strings.ToLower(v), "wait=") {
			return true
		}
	}
	return false
}

// auditState collects what the query audit needs from run.
type auditState struct {
	timespan    store.TimeRange
	out         *Output
	conditional bool
}

// run executes one query and renders the 200 response body. The caller's
// table access is resolved here, for every query: tables it may not read
// are not in the engine's catalog, and its row conditions are compiled
// directly above every scan of their table.
func (a *API) run(ctx context.Context, ws Workspace, body Body, p Preferences, au *auditState) ([]byte, error) {
	params, err := parameterTexts(body.Parameters)
	if err != nil {
		return nil, err
	}
	if a.opts.NetworkGate != nil {
		if err := a.opts.NetworkGate(ctx, ws); err != nil {
			return nil, err
		}
	}
	now := a.opts.Now()
	tr, err := ParseTimespan(body.Timespan, now)
	if err != nil {
		return nil, badArgument("InvalidTimespan", "%v", err)
	}
	au.timespan = tr
	ac, err := a.resolveAccess(ctx, ws)
	if err != nil {
		return nil, err
	}
	au.conditional = ac.conditional()
	extra, err := a.additionalWorkspaces(ctx, ws, body.Workspaces)
	if err != nil {
		return nil, err
	}
	funcs, err := a.storedFunctions(ctx, ws)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.Wait)
	defer cancel()
	ctx, partial := withPartialReport(ctx)
	start := time.Now()
	self := kql.WorkspaceTables{ID: ws.CustomerID, Tables: kql.MapCatalog(ac.tables), RowConditions: ac.rowConditions}
	out, err := a.opts.Executor.Execute(ctx, Exec{
		Query: body.Query, Tables: ac.tables, WorkspaceID: ws.CustomerID,
		Timespan: tr, RowConditions: ac.rowConditions, Now: now,
		Parameters: params, Workspaces: extra, Resolve: a.workspaceResolver(ctx, ws, self), Functions: funcs,
	})
	au.out = out
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, gatewayTimeout()
		}
		return nil, err
	}
	ex := Extras{Error: partialError(partial)}
	if p.IncludeStatistics {
		ex.Statistics = out.Statistics
		if len(ex.Statistics) == 0 {
			ex.Statistics = minimalStatistics(time.Since(start), out.Tables)
		}
	}
	if p.IncludeRender && len(out.Render) > 0 {
		ex.Render = out.Render
	}
	if p.IncludePermissions {
		ex.Permissions = permissionsSection(ws, ac.denied)
	}
	var buf bytes.Buffer
	if err := WriteTables(&buf, out.Tables, ex); err != nil {
		return nil, fmt.Errorf("format result: %w", err)
	}
	return buf.Bytes(), nil
}

func gatewayTimeout() *Error {
	return &Error{Code: "GatewayTimeout", Kind: api.KindTimeout,
		Message: "The gateway did not receive a response from 'Microsoft.OperationalInsights' within the specified time period."}
}

// minimalStatistics is the statistics object when the executor reports none.
func minimalStatistics(took time.Duration, tables []TableData) json.RawMessage {
	rows := 0
	if len(tables) > 0 {
		for _, b := range tables[0].Batches {
			if b != nil {
				rows += b.Len
			}
		}
	}
	s := fmt.Sprintf(`{"query":{"executionTime":%s,"resourceUsage":{},"datasetStatistics":[{"tableRowCount":%d}]}}`,
		AppendReal(nil, took.Seconds()), rows)
	return json.RawMessage(s)
}

// writeError writes err in the Log Analytics envelope.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := toAPIError(err)
	if e.Status >= 500 {
		api.WriteError(w, r, a.log, err) // logs and hides the internal text
		return
	}
	w.Header().Set("x-ms-error-code", e.Code)
	api.WriteJSON(w, e.Status, struct {
		Error *api.Error `json:"error"`
	}{e})
}
