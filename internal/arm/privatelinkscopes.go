package arm

import (
	"encoding/json"
	"net/http"

	"custos/internal/api"
	"custos/internal/catalog"
	"custos/internal/identity"
	"custos/internal/rbac"
)

// Azure Monitor private link scopes (Microsoft.Insights/privateLinkScopes,
// api-version 2021-07-01-preview) and their scoped resources. Custos has no
// private endpoints: "private" is where a request arrived (a private
// listener or a configured private network, see docs/network.md), and a
// scope whose access mode is PrivateOnly closes its scoped workspaces to
// public requests of that kind.
const (
	pPLSsSub   = pSubscription + "/providers/Microsoft.Insights/privateLinkScopes"
	pPLSsRG    = pResourceGroup + "/providers/Microsoft.Insights/privateLinkScopes"
	pPLS       = pPLSsRG + "/{scopeName}"
	pScopedRes = pPLS + "/scopedResources"
	pScopedOne = pScopedRes + "/{scopedResourceName}"

	actionPLSRead          rbac.Action = "Microsoft.Insights/privateLinkScopes/read"
	actionPLSWrite         rbac.Action = "Microsoft.Insights/privateLinkScopes/write"
	actionPLSDelete        rbac.Action = "Microsoft.Insights/privateLinkScopes/delete"
	actionScopedRead       rbac.Action = "Microsoft.Insights/privateLinkScopes/scopedResources/read"
	actionScopedWrite      rbac.Action = "Microsoft.Insights/privateLinkScopes/scopedResources/write"
	actionScopedDelete     rbac.Action = "Microsoft.Insights/privateLinkScopes/scopedResources/delete"
	plsWireType                        = "microsoft.insights/privateLinkScopes"
	plsDefaultLocation                 = "global"
	plsMaxTags                         = 50
	plsScopedProvisioning              = "Succeeded"
	plsProvisioningSucceed             = "Succeeded"
)

// privateLinkScopeRoutes are the routes of private link scopes, authorized
// at the scope (list: at the subscription or resource group).
func (a *API) privateLinkScopeRoutes() []api.Route {
	r := func(method, pattern string, act rbac.Action, scope func(*http.Request) rbac.Scope, h handler) api.Route {
		return api.Route{Method: method, Pattern: pattern, Audience: identity.AudienceManagement, Action: act, Scope: scope, Handler: a.wrap(h)}
	}
	return []api.Route{
		r(http.MethodGet, pPLSsSub, actionPLSRead, a.plsList().scope(a), a.listPLS),
		r(http.MethodGet, pPLSsRG, actionPLSRead, a.plsList().scope(a), a.listPLS),
		r(http.MethodGet, pPLS, actionPLSRead, plsScope, a.getPLS),
		r(http.MethodPut, pPLS, actionPLSWrite, plsScope, a.putPLS),
		r(http.MethodPatch, pPLS, actionPLSWrite, plsScope, a.patchPLS),
		r(http.MethodDelete, pPLS, actionPLSDelete, plsScope, a.deletePLS),

		r(http.MethodGet, pScopedRes, actionScopedRead, plsScope, a.listScoped),
		r(http.MethodGet, pScopedOne, actionScopedRead, plsScope, a.getScoped),
		r(http.MethodPut, pScopedOne, actionScopedWrite, plsScope, a.putScoped),
		r(http.MethodDelete, pScopedOne, actionScopedDelete, plsScope, a.deleteScoped),
	}
}

func plsScope(r *http.Request) rbac.Scope {
	return rbac.Scope(catalog.PrivateLinkScopeResourceID(r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"), r.PathValue("scopeName")))
}

type accessModeSettingsWire struct {
	IngestionAccessMode string                        `json:"ingestionAccessMode"`
	QueryAccessMode     string                        `json:"queryAccessMode"`
	Exclusions          []catalog.AccessModeExclusion `json:"exclusions"`
}

type plsPropsWire struct {
	ProvisioningState          string                 `json:"provisioningState"`
	PrivateEndpointConnections []any                  `json:"privateEndpointConnections"`
	AccessModeSettings         accessModeSettingsWire `json:"accessModeSettings"`
}

type plsWire struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags"`
	Properties plsPropsWire      `json:"properties"`
	SystemData *systemData       `json:"systemData,omitempty"`
}

type accessModeRequest struct {
	IngestionAccessMode *string                       `json:"ingestionAccessMode"`
	QueryAccessMode     *string                       `json:"queryAccessMode"`
	Exclusions          []catalog.AccessModeExclusion `json:"exclusions"`
}

// plsRequest is a PUT or PATCH body; read-only members of a GET answer are
// accepted and ignored.
type plsRequest struct {
	Location   *string           `json:"location"`
	Tags       map[string]string `json:"tags"`
	Properties *struct {
		AccessModeSettings         *accessModeRequest `json:"accessModeSettings"`
		ProvisioningState          *string            `json:"provisioningState"`
		PrivateEndpointConnections json.RawMessage    `json:"privateEndpointConnections"`
	} `json:"properties"`
	ID         *string         `json:"id"`
	Name       *string         `json:"name"`
	Type       *string         `json:"type"`
	Etag       *string         `json:"etag"`
	SystemData json.RawMessage `json:"systemData"`
}

func toPLSWire(p *catalog.PrivateLinkScope) plsWire {
	tags := p.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	ex := p.Exclusions
	if ex == nil {
		ex = []catalog.AccessModeExclusion{}
	}
	return plsWire{ID: p.ID(), Name: p.Name, Type: plsWireType, Location: p.Location, Tags: tags,
		Properties: plsPropsWire{ProvisioningState: plsProvisioningSucceed, PrivateEndpointConnections: []any{},
			AccessModeSettings: accessModeSettingsWire{IngestionAccessMode: p.IngestionAccessMode, QueryAccessMode: p.QueryAccessMode, Exclusions: ex}},
		SystemData: toSystemData(p.Audit)}
}

// plsList lists the private link scopes below the path's subscription or
// resource group that the caller may read.
func (a *API) plsList() filteredList[catalog.PrivateLinkScope] {
	return filteredList[catalog.PrivateLinkScope]{act: actionPLSRead, id: (*catalog.PrivateLinkScope).ID,
		load: func(r *http.Request) ([]catalog.PrivateLinkScope, error) {
			return a.cat.PrivateLinkScopes(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"))
		}}
}

func (a *API) listPLS(w http.ResponseWriter, r *http.Request) error {
	return writeFilteredList(a, w, r, a.plsList(), toPLSWire)
}

func (a *API) getPLS(w http.ResponseWriter, r *http.Request) error {
	p, err := a.cat.PrivateLinkScope(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"), r.PathValue("scopeName"))
	if err != nil {
		return err
	}
	writeGet(w, p.ETag, toPLSWire(&p))
	return nil
}

// applyPLSRequest fills p from a request body. For PUT (full) the access
// mode settings are required, as in Azure; PATCH changes only what it names
// (tags, in Azure's PATCH; Custos also takes accessModeSettings).
func applyPLSRequest(p *catalog.PrivateLinkScope, req *plsRequest, full bool) error {
	if req.Location != nil {
		p.Location = *req.Location
	}
	if req.Tags != nil || full {
		p.Tags = req.Tags
	}
	if len(p.Tags) > plsMaxTags {
		return catalog.Invalid("InvalidTag", "tags", "At most %d tags are allowed.", plsMaxTags)
	}
	var ams *accessModeRequest
	if req.Properties != nil {
		ams = req.Properties.AccessModeSettings
	}
	if full && (ams == nil || ams.IngestionAccessMode == nil || ams.QueryAccessMode == nil) {
		return catalog.Invalid("InvalidParameter", "properties.accessModeSettings",
			"The properties 'accessModeSettings.ingestionAccessMode' and 'accessModeSettings.queryAccessMode' are required ('Open' or 'PrivateOnly').")
	}
	if ams != nil {
		if ams.IngestionAccessMode != nil {
			p.IngestionAccessMode = *ams.IngestionAccessMode
		}
		if ams.QueryAccessMode != nil {
			p.QueryAccessMode = *ams.QueryAccessMode
		}
		if ams.Exclusions != nil || full {
			p.Exclusions = ams.Exclusions
		}
	}
	return nil
}

func (a *API) putPLS(w http.ResponseWriter, r *http.Request) error {
	var req plsRequest
	if err := api.DecodeJSON(r, &req, a.maxBody); err != nil {
		return err
	}
	if req.Location == nil || *req.Location == "" {
		return catalog.Invalid("LocationRequired", "location", "The location property is required for this definition ('global' for private link scopes).")
	}
	p := catalog.PrivateLinkScope{SubscriptionID: r.PathValue("subscriptionId"), ResourceGroup: r.PathValue("resourceGroupName"),
		Name: r.PathValue("scopeName")}
	if err := applyPLSRequest(&p, &req, true); err != nil {
		return err
	}
	out, created, err := a.cat.PutPrivateLinkScope(r.Context(), p, precondition(r), actor(r))
	if err != nil {
		return err
	}
	writePut(w, created, out.ETag, toPLSWire(&out))
	return nil
}

func (a *API) patchPLS(w http.ResponseWriter, r *http.Request) error {
	var req plsRequest
	if err := api.DecodeJSON(r, &req, a.maxBody); err != nil {
		return err
	}
	p, err := a.cat.PrivateLinkScope(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"), r.PathValue("scopeName"))
	if err != nil {
		return err
	}
	if err := applyPLSRequest(&p, &req, false); err != nil {
		return err
	}
	pre := precondition(r)
	if pre.IfMatch == "" {
		pre.IfMatch = p.ETag // no lost update between the read and the write
	}
	out, _, err := a.cat.PutPrivateLinkScope(r.Context(), p, pre, actor(r))
	if err != nil {
		return err
	}
	writeGet(w, out.ETag, toPLSWire(&out))
	return nil
}

func (a *API) deletePLS(w http.ResponseWriter, r *http.Request) error {
	deleted, err := a.cat.DeletePrivateLinkScope(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"),
		r.PathValue("scopeName"), precondition(r))
	if err != nil {
		return err
	}
	writeDelete(w, deleted)
	return nil
}

type scopedPropsWire struct {
	LinkedResourceID  string `json:"linkedResourceId"`
	ProvisioningState string `json:"provisioningState"`
}

type scopedWire struct {
	ID         string          `json:"id"`
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Properties scopedPropsWire `json:"properties"`
	SystemData *systemData     `json:"systemData,omitempty"`
}

type scopedRequest struct {
	Properties *struct {
		LinkedResourceID  *string `json:"linkedResourceId"`
		ProvisioningState *string `json:"provisioningState"`
	} `json:"properties"`
	ID         *string         `json:"id"`
	Name       *string         `json:"name"`
	Type       *string         `json:"type"`
	SystemData json.RawMessage `json:"systemData"`
}

func toScopedWire(s *catalog.ScopedResource) scopedWire {
	return scopedWire{ID: s.ID(), Name: s.Name, Type: catalog.TypeScopedResource,
		Properties: scopedPropsWire{LinkedResourceID: s.LinkedResourceID, ProvisioningState: plsScopedProvisioning},
		SystemData: toSystemData(s.Audit)}
}

func (a *API) listScoped(w http.ResponseWriter, r *http.Request) error {
	ss, err := a.cat.ScopedResources(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"), r.PathValue("scopeName"))
	if err != nil {
		return err
	}
	out := list[scopedWire]{Value: []scopedWire{}}
	for i := range ss {
		out.Value = append(out.Value, toScopedWire(&ss[i]))
	}
	api.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) getScoped(w http.ResponseWriter, r *http.Request) error {
	s, err := a.cat.ScopedResource(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"), r.PathValue("scopeName"),
		r.PathValue("scopedResourceName"))
	if err != nil {
		return err
	}
	writeGet(w, "", toScopedWire(&s))
	return nil
}

func (a *API) putScoped(w http.ResponseWriter, r *http.Request) error {
	var req scopedRequest
	if err := api.DecodeJSON(r, &req, a.maxBody); err != nil {
		return err
	}
	if req.Properties == nil || req.Properties.LinkedResourceID == nil {
		return catalog.Invalid("InvalidParameter", "properties.linkedResourceId", "The property 'properties.linkedResourceId' is required.")
	}
	s := catalog.ScopedResource{Name: r.PathValue("scopedResourceName"), LinkedResourceID: *req.Properties.LinkedResourceID}
	out, created, err := a.cat.PutScopedResource(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"),
		r.PathValue("scopeName"), s, actor(r))
	if err != nil {
		return err
	}
	writePut(w, created, "", toScopedWire(&out))
	return nil
}

func (a *API) deleteScoped(w http.ResponseWriter, r *http.Request) error {
	deleted, err := a.cat.DeleteScopedResource(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"),
		r.PathValue("scopeName"), r.PathValue("scopedResourceName"))
	if err != nil {
		return err
	}
	writeDelete(w, deleted)
	return nil
}
