package query

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"custos/internal/api"
	"custos/internal/catalog"
	"custos/internal/engine"
	"custos/internal/identity"
	"custos/internal/kql"
	"custos/internal/rbac"
	"custos/internal/store"
)

// Resource-context queries (spec §3.4): POST/GET /v1/{resourceId}/query
// returns the records whose _ResourceId is the resource or lies under it
// (a subscription, a resource group, a resource or a child resource),
// across every workspace that holds them, as each workspace's access
// control mode says:
//
//   - enableLogAccessUsingOnlyResourcePermissions = true ("use resource or
//     workspace permissions"): only permissions on the resource count; a
//     table is readable when Microsoft.Insights/logs/{Table}/read (or
//     logs/*/read, */read) is granted at the resource's scope;
//   - false ("require workspace permissions"): the caller's workspace and
//     table permissions apply, ABAC row conditions included, exactly as in
//     a workspace-context query.
//
// Every table of every workspace gets the row condition
// `_ResourceId =~ "{id}" or _ResourceId startswith "{id}/"` below every
// user operator, so no construct reads other resources' records.
// workspace() is not available in resource context.

// ActionResourceQuery is what the resource-context routes check at the
// resource's scope: Reader's */read and Microsoft.Insights/logs/*/read
// include it. (A role granting only logs/{Table}/read actions does not.)
const ActionResourceQuery rbac.Action = "Microsoft.Insights/logs/query/read"

// ResourceWorkspace is a workspace with its access control mode.
type ResourceWorkspace struct {
	Workspace
	ResourcePermissions bool // enableLogAccessUsingOnlyResourcePermissions
}

// ResourceWorkspaceLister lists every workspace a resource-context query
// may read. CatalogWorkspaces implements it.
type ResourceWorkspaceLister interface {
	ResourceWorkspaces(ctx context.Context) ([]ResourceWorkspace, error)
}

// allWorkspacesCatalog is what CatalogWorkspaces needs for
// ResourceWorkspaces; *catalog.DB implements it.
type allWorkspacesCatalog interface {
	AllWorkspaces(ctx context.Context) ([]catalog.Workspace, error)
}

var (
	_ allWorkspacesCatalog    = (*catalog.DB)(nil)
	_ ResourceWorkspaceLister = CatalogWorkspaces{}
)

// ResourceWorkspaces implements ResourceWorkspaceLister.
func (c CatalogWorkspaces) ResourceWorkspaces(ctx context.Context) ([]ResourceWorkspace, error) {
	ac, ok := c.C.(allWorkspacesCatalog)
	if !ok {
		return nil, errors.New("the catalog cannot list workspaces")
	}
	ws, err := ac.AllWorkspaces(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]ResourceWorkspace, len(ws))
	for i, w := range ws {
		out[i] = ResourceWorkspace{Workspace: Workspace{CustomerID: w.CustomerID, ResourceID: w.ID()},
			ResourcePermissions: w.EnableLogAccessUsingOnlyResourcePermissions}
	}
	return out, nil
}

// MultiExecutor runs one query over a primary workspace and additional
// ones. EngineExecutor implements it.
type MultiExecutor interface {
	ExecuteMulti(ctx context.Context, x Exec, more []kql.WorkspaceTables) (*Output, error)
}

var _ MultiExecutor = EngineExecutor{}

// ExecuteMulti implements MultiExecutor.
func (x EngineExecutor) ExecuteMulti(ctx context.Context, q Exec, more []kql.WorkspaceTables) (*Output, error) {
	timeout := noTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = dl
	}
	res, err := x.Engine.Query(ctx, engine.Request{
		Query: q.Query, Tables: kql.MapCatalog(q.Tables), Source: x.Source, WorkspaceID: q.WorkspaceID,
		Timespan: q.Timespan, RowConditions: q.RowConditions, Now: q.Now, Timeout: timeoutFrom(timeout),
		Workspaces: more,
	})
	if err != nil {
		return nil, err
	}
	return &Output{Tables: tablesOf(res), Statistics: Statistics(res), Stats: ExecStats{
		Duration: res.Stats.Duration, RowsScanned: res.Stats.RowsScanned, BytesScanned: res.Stats.BytesScanned,
	}}, nil
}

// ResourceRoutes returns the resource-context query routes (registered by
// the server next to Routes).
func (a *API) ResourceRoutes() []api.Route {
	var out []api.Route
	for _, p := range []string{
		"/v1/subscriptions/{subscriptionId}",
		"/v1/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}",
		"/v1/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/{ns}/{type}/{name}",
		"/v1/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/{ns}/{type}/{name}/{childType}/{childName}",
	} {
		for _, m := range []string{http.MethodPost, http.MethodGet} {
			out = append(out, api.Route{Method: m, Pattern: p + "/query", Audience: identity.AudienceQuery,
				Action: ActionResourceQuery, Scope: resourceScopeOf, Handler: a.resourceQuery})
		}
	}
	return out
}

// segmentRE bounds what a resource ID segment in a path may contain, so
// that the ID can be quoted into the row condition.
var segmentRE = regexp.MustCompile(`^[A-Za-z0-9._()\-]{1,128}$`)

// validResourceID reports whether id is "/seg/seg..." with 2 to 10 safe
// segments.
func validResourceID(id string) bool {
	segs := strings.Split(id, "/")
	if len(segs) < 3 || len(segs) > 11 || segs[0] != "" {
		return false
	}
	for _, s := range segs[1:] {
		if !segmentRE.MatchString(s) {
			return false
		}
	}
	return true
}

// resourceIDOf rebuilds the resource ID of a resource-context path.
func resourceIDOf(r *http.Request) string {
	id := "/subscriptions/" + r.PathValue("subscriptionId")
	if rg := r.PathValue("resourceGroupName"); rg != "" {
		id += "/resourceGroups/" + rg
	}
	if ns := r.PathValue("ns"); ns != "" {
		id += "/providers/" + ns + "/" + r.PathValue("type") + "/" + r.PathValue("name")
	}
	if ct := r.PathValue("childType"); ct != "" {
		id += "/" + ct + "/" + r.PathValue("childName")
	}
	return id
}

// resourceScopeOf is the RBAC scope of a resource-context request: the
// resource ID, or "/" for a malformed one (the handler then answers 400).
func resourceScopeOf(r *http.Request) rbac.Scope {
	id := resourceIDOf(r)
	if !validResourceID(id) {
		return "/"
	}
	return rbac.Scope(id)
}

// resourceCondition is the row condition limiting a table to the
// resource's records. id passed validResourceID, so it needs no escaping.
func resourceCondition(id string) string {
	return fmt.Sprintf(`(_ResourceId =~ "%s" or _ResourceId startswith "%s/")`, id, id)
}

// resourceLogsAction is the resource-context read action of one table.
func resourceLogsAction(table string) rbac.Action {
	return rbac.Action("Microsoft.Insights/logs/" + table + "/read")
}

func (a *API) resourceQuery(w http.ResponseWriter, r *http.Request, _ rbac.Decision) {
	id := resourceIDOf(r)
	if !validResourceID(id) {
		a.writeError(w, r, badArgument("InvalidResourceId", "The resource ID '%s' is not valid.", truncate(id, 256)))
		return
	}
	body, err := requestFromHTTP(r, a.opts.MaxBodyBytes)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if len(body.Workspaces) > 0 {
		a.writeError(w, r, badArgument("WorkspacesNotSupportedInResourceContext",
			"A resource-context query reads every workspace that holds the resource's records; it takes no 'workspaces'."))
		return
	}
	start := time.Now()
	var au auditState
	out, primary, err := a.runResource(r.Context(), id, body, a.prefer(r.Header), &au)
	a.audit(r.Context(), r, Workspace{CustomerID: primary.CustomerID, ResourceID: id}, body, au.timespan, statusOf(err), time.Since(start), au.out, au.conditional)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out) // the client may have gone
}

// resourceAccess is one workspace's share of a resource-context query.
type resourceAccess struct {
	ws     ResourceWorkspace
	tables map[string]store.Schema
	rows   map[string][]string
	denied []string
}

// workspaceAccessForResource computes what the caller may read of ws for
// the resource id; ok is false when nothing.
func (a *API) workspaceAccessForResource(ctx context.Context, p identity.Principal, ws ResourceWorkspace, id string) (resourceAccess, bool, error) {
	ra := resourceAccess{ws: ws, tables: map[string]store.Schema{}, rows: map[string][]string{}}
	cond := resourceCondition(id)
	if ws.ResourcePermissions {
		tables, err := a.opts.Workspaces.TableSchemas(ctx, ws.CustomerID)
		if err != nil {
			return ra, false, fmt.Errorf("table schemas of %s: %w", ws.CustomerID, err)
		}
		for name, schema := range tables {
			d, err := a.opts.Authorizer.Authorize(ctx, p, resourceLogsAction(name), rbac.Scope(id))
			if err != nil || !d.Allowed {
				ra.denied = append(ra.denied, name)
				continue
			}
			ra.tables[name] = schema
			ra.rows[name] = []string{cond}
		}
	} else {
		ac, err := a.resolveAccess(ctx, ws.Workspace)
		if err != nil {
			var qe *Error
			if errors.As(err, &qe) && qe.Code == "InsufficientAccessError" {
				return ra, false, nil
			}
			return ra, false, err
		}
		ra.denied = ac.denied
		for name, schema := range ac.tables {
			ra.tables[name] = schema
			ra.rows[name] = append(slices.Clone(ac.rowConditions[name]), cond)
		}
	}
	sort.Strings(ra.denied)
	return ra, len(ra.tables) > 0, nil
}

// runResource executes a resource-context query and renders the response
// body. primary is the workspace the engine ran against (for the audit).
func (a *API) runResource(ctx context.Context, id string, body Body, pr Preferences, au *auditState) ([]byte, Workspace, error) {
	lister, ok := a.opts.Workspaces.(ResourceWorkspaceLister)
	multi, ok2 := a.opts.Executor.(MultiExecutor)
	if !ok || !ok2 || a.opts.Authorizer == nil {
		return nil, Workspace{}, badArgument("ResourceContextNotSupported", "Resource-context queries are not available on this endpoint.")
	}
	p, ok := api.PrincipalFrom(ctx)
	if !ok || p.ObjectID == "" {
		return nil, Workspace{}, insufficientAccess()
	}
	now := a.opts.Now()
	tr, err := ParseTimespan(body.Timespan, now)
	if err != nil {
		return nil, Workspace{}, badArgument("InvalidTimespan", "%v", err)
	}
	au.timespan = tr
	all, err := lister.ResourceWorkspaces(ctx)
	if err != nil {
		return nil, Workspace{}, fmt.Errorf("list workspaces: %w", err)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].CustomerID < all[j].CustomerID })
	var readable []resourceAccess
	for _, ws := range all {
		if a.opts.NetworkGate != nil && a.opts.NetworkGate(ctx, ws.Workspace) != nil {
			continue // not reachable from this network: its records are not returned
		}
		ra, ok, err := a.workspaceAccessForResource(ctx, p, ws, id)
		if err != nil {
			a.log.LogAttrs(ctx, slog.LevelError, "resource-context access could not be computed; workspace skipped",
				slog.String("workspace_id", ws.CustomerID), slog.Any("error", err))
			continue
		}
		if ok {
			readable = append(readable, ra)
		}
		if len(readable) >= maxResourceWorkspaces {
			break
		}
	}
	if len(readable) == 0 {
		return nil, Workspace{}, insufficientAccess()
	}
	au.conditional = true
	primary := readable[0]
	more := make([]kql.WorkspaceTables, 0, len(readable)-1)
	for _, ra := range readable[1:] {
		more = append(more, kql.WorkspaceTables{ID: ra.ws.CustomerID, Tables: kql.MapCatalog(ra.tables), RowConditions: ra.rows})
	}
	qctx, cancel := context.WithTimeout(ctx, pr.Wait)
	defer cancel()
	qctx, partial := withPartialReport(qctx)
	start := time.Now()
	out, err := multi.ExecuteMulti(qctx, Exec{Query: body.Query, Tables: primary.tables, WorkspaceID: primary.ws.CustomerID,
		Timespan: tr, RowConditions: primary.rows, Now: now}, more)
	au.out = out
	if err != nil {
		if errors.Is(qctx.Err(), context.DeadlineExceeded) {
			return nil, primary.ws.Workspace, gatewayTimeout()
		}
		return nil, primary.ws.Workspace, err
	}
	ex := Extras{Error: partialError(partial)}
	if pr.IncludeStatistics {
		ex.Statistics = out.Statistics
		if len(ex.Statistics) == 0 {
			ex.Statistics = minimalStatistics(time.Since(start), out.Tables)
		}
	}
	if pr.IncludeRender && len(out.Render) > 0 {
		ex.Render = out.Render
	}
	if pr.IncludePermissions {
		ex.Permissions = resourcePermissions(id, readable)
	}
	var buf bytes.Buffer
	if err := WriteTables(&buf, out.Tables, ex); err != nil {
		return nil, primary.ws.Workspace, fmt.Errorf("format result: %w", err)
	}
	return buf.Bytes(), primary.ws.Workspace, nil
}

// maxResourceWorkspaces bounds the workspaces one resource-context query reads.
const maxResourceWorkspaces = 100

// resourcePermissions renders the permissions section of a resource-context
// answer: the resource, and per workspace read the tables left out.
func resourcePermissions(id string, readable []resourceAccess) []byte {
	var b bytes.Buffer
	b.WriteString(`{"resources":[{"resourceId":`)
	writeJSONString(&b, id)
	b.WriteString(`}],"dataSources":[`)
	for i, ra := range readable {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"resourceId":`)
		writeJSONString(&b, ra.ws.ResourceID)
		b.WriteString(`,"denyTables":[`)
		for j, t := range ra.denied {
			if j > 0 {
				b.WriteByte(',')
			}
			writeJSONString(&b, t)
		}
		b.WriteString(`]}`)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

func writeJSONString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			fmt.Fprintf(b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
}
