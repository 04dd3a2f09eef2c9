package arm

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"custos/internal/api"
	"custos/internal/catalog"
	"custos/internal/identity"
	"custos/internal/purge"
	"custos/internal/rbac"
	"custos/internal/store"
)

// TableStore is the part of the store that table and workspace changes reach,
// called after the catalog commit. *store.DB implements it.
type TableStore interface {
	EnsureTable(ctx context.Context, ref store.TableRef, schema store.Schema, retentionDays int) error
	DropTable(ctx context.Context, ref store.TableRef) error
	DropWorkspace(ctx context.Context, workspaceID string) error
}

// TransformCompiler compiles a DCR transformation (transformKql) for an input
// schema and returns its output schema. The server adapts
// engine.CompileTransform to it.
type TransformCompiler interface {
	CompileTransform(src string, input store.Schema) (store.Schema, error)
}

// Options configures New.
type Options struct {
	// Catalog is the control-plane store. Required.
	Catalog *catalog.DB
	// Tables receives table creations, schema changes and deletions after the
	// catalog commits them. nil means the catalog alone is changed (tools and
	// tests that run without a data store).
	Tables TableStore
	// Transforms validates transformKql at PUT time. nil means only the
	// passthrough transformation "source" is accepted.
	Transforms TransformCompiler
	// IngestionEndpoint is the Logs Ingestion API base URL reported as a data
	// collection rule's properties.endpoints.logsIngestion; "" omits it.
	IngestionEndpoint string
	// Logger receives errors that happen after a commit. nil discards them.
	Logger *slog.Logger
	// MaxBodyBytes bounds request bodies; 0 means api.DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Purge runs purge and delete-data requests (its routes are always
	// served). nil answers them 503.
	Purge *purge.Service
	// Tokens creates service principals and credentials and enrolls TOTP
	// for the Custos.Directory API. nil answers those operations 503.
	Tokens *identity.TokenService
	// Authorizer checks access request approvals and is invalidated after
	// them. nil answers access request decisions 503.
	Authorizer *rbac.Authorizer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// API is the ARM-shaped control plane. It is safe for concurrent use.
type API struct {
	cat        *catalog.DB
	tables     TableStore
	transforms TransformCompiler
	endpoint   string
	log        *slog.Logger
	maxBody    int64
	purge      *purge.Service
	tokens     *identity.TokenService
	authz      *rbac.Authorizer
	clock      func() time.Time
}

// New returns the control-plane API. A nil Catalog is a programming error.
func New(opts Options) *API {
	if opts.Catalog == nil {
		panic("BUG: arm.New without a catalog")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &API{
		cat: opts.Catalog, tables: opts.Tables, transforms: opts.Transforms,
		endpoint: strings.TrimRight(opts.IngestionEndpoint, "/"), log: opts.Logger, maxBody: opts.MaxBodyBytes,
		purge: opts.Purge, tokens: opts.Tokens, authz: opts.Authorizer, clock: opts.Now,
	}
}

// Path patterns. The server's router matches literal segments
// case-insensitively; wildcard values keep the client's casing.
const (
	pSubscriptions  = "/subscriptions"
	pSubscription   = "/subscriptions/{subscriptionId}"
	pResourceGroups = pSubscription + "/resourcegroups"
	pResourceGroup  = pResourceGroups + "/{resourceGroupName}"
	pWorkspacesSub  = pSubscription + "/providers/Microsoft.OperationalInsights/workspaces"
	pWorkspacesRG   = pResourceGroup + "/providers/Microsoft.OperationalInsights/workspaces"
	pWorkspace      = pWorkspacesRG + "/{workspaceName}"
	pTables         = pWorkspace + "/tables"
	pTable          = pTables + "/{tableName}"
	pDCRsSub        = pSubscription + "/providers/Microsoft.Insights/dataCollectionRules"
	pDCRsRG         = pResourceGroup + "/providers/Microsoft.Insights/dataCollectionRules"
	pDCR            = pDCRsRG + "/{dataCollectionRuleName}"
)

// Routes returns every control-plane endpoint with its RBAC action and scope.
func (a *API) Routes() []api.Route {
	r := func(method, pattern string, act rbac.Action, scope func(*http.Request) rbac.Scope, h handler) api.Route {
		return api.Route{Method: method, Pattern: pattern, Audience: identity.AudienceManagement, Action: act, Scope: scope, Handler: a.wrap(h)}
	}
	return append(a.withLocks(append([]api.Route{
		r(http.MethodGet, pSubscriptions, rbac.ActionSubscriptionRead, a.subscriptionListScope, a.listSubscriptions),
		r(http.MethodGet, pSubscription, rbac.ActionSubscriptionRead, subscriptionScope, a.getSubscription),
		r(http.MethodPut, pSubscription, rbac.ActionSubscriptionWrite, subscriptionScope, a.putSubscription),
		r(http.MethodDelete, pSubscription, rbac.ActionSubscriptionDelete, subscriptionScope, a.deleteSubscription),

		r(http.MethodGet, pResourceGroups, rbac.ActionResourceGroupRead, a.resourceGroupList().scope(a), a.listResourceGroups),
		r(http.MethodGet, pResourceGroup, rbac.ActionResourceGroupRead, resourceGroupScope, a.getResourceGroup),
		r(http.MethodPut, pResourceGroup, rbac.ActionResourceGroupWrite, resourceGroupScope, a.putResourceGroup),
		r(http.MethodDelete, pResourceGroup, rbac.ActionResourceGroupDelete, resourceGroupScope, a.deleteResourceGroup),

		r(http.MethodGet, pWorkspacesSub, rbac.ActionWorkspaceRead, a.workspaceList().scope(a), a.listWorkspaces),
		r(http.MethodGet, pWorkspacesRG, rbac.ActionWorkspaceRead, a.workspaceList().scope(a), a.listWorkspaces),
		r(http.MethodGet, pWorkspace, rbac.ActionWorkspaceRead, workspaceScope, a.getWorkspace),
		r(http.MethodPut, pWorkspace, rbac.ActionWorkspaceWrite, workspaceScope, a.putWorkspace),
		r(http.MethodDelete, pWorkspace, rbac.ActionWorkspaceDelete, workspaceScope, a.deleteWorkspace),

		r(http.MethodGet, pTables, rbac.ActionTableRead, workspaceScope, a.listTables),
		r(http.MethodGet, pTable, rbac.ActionTableRead, tableScope, a.getTable),
		r(http.MethodPut, pTable, rbac.ActionTableWrite, tableScope, a.putTable),
		r(http.MethodPatch, pTable, rbac.ActionTableWrite, tableScope, a.patchTable),
		r(http.MethodDelete, pTable, rbac.ActionTableDelete, tableScope, a.deleteTable),

		r(http.MethodGet, pDCRsSub, rbac.ActionDCRRead, a.dcrList().scope(a), a.listDCRs),
		r(http.MethodGet, pDCRsRG, rbac.ActionDCRRead, a.dcrList().scope(a), a.listDCRs),
		r(http.MethodGet, pDCR, rbac.ActionDCRRead, dcrScope, a.getDCR),
		r(http.MethodPut, pDCR, rbac.ActionDCRWrite, dcrScope, a.putDCR),
		r(http.MethodDelete, pDCR, rbac.ActionDCRDelete, dcrScope, a.deleteDCR),
	}, append(append(append(a.machineRoutes(), a.purgeRoutes()...), a.diagnosticSettingRoutes()...), append(a.authorizationRoutes(), a.privateLinkScopeRoutes()...)...)...)),
		// Identity and access administration is not blocked by resource locks.
		append(append(a.directoryRoutes(), a.accessRequestRoutes()...), a.ConnectedClusterRoutes()...)...)
}

func rootScope(*http.Request) rbac.Scope { return "/" }

func subscriptionScope(r *http.Request) rbac.Scope {
	return rbac.Scope(catalog.SubscriptionResourceID(r.PathValue("subscriptionId")))
}

func resourceGroupScope(r *http.Request) rbac.Scope {
	return rbac.Scope(catalog.ResourceGroupResourceID(r.PathValue("subscriptionId"), r.PathValue("resourceGroupName")))
}

func workspaceScope(r *http.Request) rbac.Scope {
	return rbac.Scope(catalog.WorkspaceResourceID(r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"), r.PathValue("workspaceName")))
}

func tableScope(r *http.Request) rbac.Scope {
	return rbac.Scope(catalog.TableResourceID(r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"),
		r.PathValue("workspaceName"), r.PathValue("tableName")))
}

func dcrScope(r *http.Request) rbac.Scope {
	return rbac.Scope(catalog.DataCollectionRuleResourceID(r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"),
		r.PathValue("dataCollectionRuleName")))
}

// handler is a route body; a returned error is written in the Azure envelope.
type handler func(w http.ResponseWriter, r *http.Request) error

// The request and response helpers below are this package's short names for
// the shared ARM conventions in wire.go.

func checkAPIVersion(r *http.Request) error { return CheckAPIVersion(r) }

func (a *API) wrap(h handler) api.HandlerFunc { return Handle(a.log, h) }

func precondition(r *http.Request) catalog.Precondition { return RequestPrecondition(r) }

func actor(r *http.Request) catalog.Actor { return RequestActor(r) }

type systemData = SystemData

func toSystemData(a catalog.Audit) *systemData { return NewSystemData(a) }

func wireTime(t time.Time) string { return WireTime(t) }

type list[T any] = List[T]

func writePut(w http.ResponseWriter, created bool, etag string, v any) { WritePut(w, created, etag, v) }

func writeGet(w http.ResponseWriter, etag string, v any) { WriteJSON(w, http.StatusOK, etag, v) }

func writeDelete(w http.ResponseWriter, deleted bool) { WriteDelete(w, deleted) }

// afterCommit reports a failure to push a committed change to the store. The
// catalog is the source of truth; the server reconciles the store with
// AllTables at start, so the client sees a 500 and may retry.
func (a *API) afterCommit(r *http.Request, what string, err error) error {
	if err == nil {
		return nil
	}
	a.log.LogAttrs(r.Context(), slog.LevelError, "store update after catalog commit failed",
		slog.String("correlation_id", api.CorrelationIDFrom(r.Context())), slog.String("change", what), slog.Any("error", err))
	return errors.Join(errors.New("store update after catalog commit"), err)
}

func (a *API) ensureTable(ctx context.Context, t *catalog.Table) error {
	if a.tables == nil {
		return nil
	}
	return a.tables.EnsureTable(ctx, t.Ref(), t.StoreSchema(), t.EffectiveTotalRetentionInDays())
}
