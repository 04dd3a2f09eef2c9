package arm

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"custos/internal/api"
	"custos/internal/catalog"
	"custos/internal/identity"
	"custos/internal/purge"
	"custos/internal/rbac"
)

// The purge API (2020-08-01) and the delete-data API (2023-09-01), served on
// the purge service (Options.Purge).

const (
	pPurge           = pWorkspace + "/purge"
	pPurgeStatus     = pWorkspace + "/operations/{purgeId}"
	pDeleteData      = pTable + "/deleteData"
	pOperationStatus = pSubscription + "/providers/Microsoft.OperationalInsights/locations/{location}/operationStatuses/{operationId}"
)

// Actions of the purge routes that rbac does not name.
const (
	actionPurgeStatusRead     rbac.Action = "Microsoft.OperationalInsights/workspaces/operations/read"
	actionTableDeleteData     rbac.Action = "Microsoft.OperationalInsights/workspaces/tables/deleteData/action"
	actionOperationStatusRead rbac.Action = "Microsoft.OperationalInsights/locations/operationStatuses/read"
)

func (a *API) purgeRoutes() []api.Route {
	r := func(method, pattern string, act rbac.Action, scope func(*http.Request) rbac.Scope, h handler) api.Route {
		return api.Route{Method: method, Pattern: pattern, Audience: identity.AudienceManagement, Action: act, Scope: scope, Handler: a.wrap(h)}
	}
	return []api.Route{
		r(http.MethodPost, pPurge, rbac.ActionWorkspacePurge, workspaceScope, a.postPurge),
		r(http.MethodGet, pPurgeStatus, actionPurgeStatusRead, workspaceScope, a.getPurgeStatus),
		r(http.MethodPost, pDeleteData, actionTableDeleteData, tableScope, a.postDeleteData),
		r(http.MethodGet, pOperationStatus, actionOperationStatusRead, a.operationScope, a.getOperationStatus),
	}
}

// operationScope authorizes a subscription-level operation status request
// at the workspace the operation belongs to, so that whoever may read that
// workspace may poll it; an unknown operation is checked at the subscription.
func (a *API) operationScope(r *http.Request) rbac.Scope {
	if a.purge != nil {
		op, err := a.purge.Operation(r.Context(), r.PathValue("operationId"))
		if err == nil && strings.EqualFold(op.SubscriptionID, r.PathValue("subscriptionId")) {
			return rbac.Scope(op.WorkspaceID)
		}
	}
	return subscriptionScope(r)
}

func (a *API) purgeService() (*purge.Service, error) {
	if a.purge == nil {
		return nil, api.Errorf(http.StatusServiceUnavailable, "ServiceUnavailable", "Purge is not enabled on this server.")
	}
	return a.purge, nil
}

func (a *API) readBody(r *http.Request) ([]byte, error) {
	max := a.maxBody
	if max <= 0 {
		max = api.DefaultMaxBodyBytes
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return nil, api.Errorf(http.StatusBadRequest, "InvalidRequestContent", "The request body could not be read.")
	}
	if int64(len(data)) > max {
		return nil, api.Errorf(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "The request body exceeds the limit of %d bytes.", max)
	}
	return data, nil
}

// submit runs the steps both APIs share: locks, workspace, rate limit, queue.
func (a *API) submit(w http.ResponseWriter, r *http.Request, scope rbac.Scope, req purge.Request) (catalog.PurgeOperation, error) {
	svc, err := a.purgeService()
	if err != nil {
		return catalog.PurgeOperation{}, err
	}
	if err := a.cat.CheckLocks(r.Context(), string(scope), catalog.LockOpPurge); err != nil {
		return catalog.PurgeOperation{}, err
	}
	op, err := svc.Submit(r.Context(), req)
	var te *purge.ThrottledError
	if errors.As(err, &te) {
		w.Header().Set("Retry-After", strconv.Itoa(int((te.RetryAfter+time.Second-1)/time.Second)))
	}
	return op, err
}

func (a *API) postPurge(w http.ResponseWriter, r *http.Request) error {
	ws, err := a.cat.Workspace(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"), r.PathValue("workspaceName"))
	if err != nil {
		return err
	}
	data, err := a.readBody(r)
	if err != nil {
		return err
	}
	body, err := purge.DecodePurgeBody(data)
	if err != nil {
		return err
	}
	op, err := a.submit(w, r, workspaceScope(r), purge.Request{
		Kind: catalog.PurgeKindPurge, Workspace: ws, Table: body.Table, Filters: body.Filters, CreatedBy: actor(r).ID,
	})
	if err != nil {
		return err
	}
	w.Header().Set("x-ms-status-location", baseURL(r)+ws.ID()+"/operations/purge-"+op.ID+"?api-version="+url.QueryEscape(r.URL.Query().Get("api-version")))
	api.WriteJSON(w, http.StatusAccepted, struct {
		OperationID string `json:"operationId"`
	}{op.ID})
	return nil
}

func (a *API) getPurgeStatus(w http.ResponseWriter, r *http.Request) error {
	svc, err := a.purgeService()
	if err != nil {
		return err
	}
	id := r.PathValue("purgeId")
	op, err := svc.Operation(r.Context(), id)
	if errors.Is(err, catalog.ErrNotFound) || (err == nil && !strings.EqualFold(op.WorkspaceID, string(workspaceScope(r)))) {
		return purge.OperationNotFound(id)
	}
	if err != nil {
		return err
	}
	out := struct {
		Status string `json:"status"`
		Error  string `json:"error,omitempty"`
	}{Status: op.Status, Error: op.Error}
	api.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) postDeleteData(w http.ResponseWriter, r *http.Request) error {
	sub := r.PathValue("subscriptionId")
	ws, err := a.cat.Workspace(r.Context(), sub, r.PathValue("resourceGroupName"), r.PathValue("workspaceName"))
	if err != nil {
		return err
	}
	data, err := a.readBody(r)
	if err != nil {
		return err
	}
	body, err := purge.DecodeDeleteDataBody(data)
	if err != nil {
		return err
	}
	op, err := a.submit(w, r, tableScope(r), purge.Request{
		Kind: catalog.PurgeKindDeleteData, Workspace: ws, Table: r.PathValue("tableName"), Filters: body.Filters, CreatedBy: actor(r).ID,
	})
	if err != nil {
		return err
	}
	status := baseURL(r) + "/subscriptions/" + ws.SubscriptionID + "/providers/Microsoft.OperationalInsights/locations/" +
		url.PathEscape(ws.Location) + "/operationStatuses/" + op.ID + "?api-version=" + url.QueryEscape(r.URL.Query().Get("api-version"))
	w.Header().Set("Azure-AsyncOperation", status)
	w.Header().Set("Location", status)
	w.Header().Set("Retry-After", "10")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// operationStatusWire is ARM's asynchronous operation status.
type operationStatusWire struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Status    string     `json:"status"` // InProgress, Succeeded, Failed
	StartTime string     `json:"startTime,omitempty"`
	EndTime   string     `json:"endTime,omitempty"`
	Error     *api.Error `json:"error,omitempty"`
}

func (a *API) getOperationStatus(w http.ResponseWriter, r *http.Request) error {
	svc, err := a.purgeService()
	if err != nil {
		return err
	}
	id := r.PathValue("operationId")
	op, err := svc.Operation(r.Context(), id)
	if errors.Is(err, catalog.ErrNotFound) || (err == nil && (!strings.EqualFold(op.SubscriptionID, r.PathValue("subscriptionId")) ||
		!strings.EqualFold(strings.ReplaceAll(op.Location, " ", ""), strings.ReplaceAll(r.PathValue("location"), " ", "")))) {
		return purge.OperationNotFound(id)
	}
	if err != nil {
		return err
	}
	out := operationStatusWire{ID: r.URL.Path, Name: op.ID, StartTime: wireTime(op.CreatedAt), EndTime: wireTime(op.CompletedAt)}
	switch op.Status {
	case catalog.PurgeStatusCompleted:
		out.Status = "Succeeded"
	case catalog.PurgeStatusFailed:
		out.Status = "Failed"
		out.Error = &api.Error{Code: "OperationFailed", Message: op.Error}
	default:
		out.Status = "InProgress"
	}
	api.WriteJSON(w, http.StatusOK, out)
	return nil
}

// baseURL is the scheme and host the client called, for status links.
func baseURL(r *http.Request) string {
	return "https://" + r.Host
}
