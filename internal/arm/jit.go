package arm

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strings"
	"time"

	"custos/internal/api"
	"custos/internal/catalog"
	"custos/internal/identity"
	"custos/internal/rbac"
)

// Just-in-time operator access (Custos.Access/accessRequests) on a
// workspace:
//
//	POST {workspace}/providers/Custos.Access/accessRequests                  create (any principal that may read the workspace)
//	GET  {workspace}/providers/Custos.Access/accessRequests[/{name}]
//	POST {workspace}/providers/Custos.Access/accessRequests/{name}/approve   a workspace owner
//	POST {workspace}/providers/Custos.Access/accessRequests/{name}/reject    a workspace owner
//	POST {workspace}/providers/Custos.Access/accessRequests/{name}/revoke    a workspace owner
//
// Approval creates a role assignment of the requested role (default Log
// Analytics Reader) to the requester at the workspace that expires after
// the requested duration. Deciding needs roleAssignments/write at the
// workspace (the route) and Custos.Access/accessRequests/approve/action
// (checked in the handler), which in just-in-time mode root assignments do
// not grant: the installation's administrators cannot approve access for
// themselves or each other.

const (
	actAccessRequestRead  rbac.Action = "Custos.Access/accessRequests/read"
	actAccessRequestWrite rbac.Action = "Custos.Access/accessRequests/write"
	pAccessRequests                   = pWorkspace + "/providers/Custos.Access/accessRequests"
	pAccessRequest                    = pAccessRequests + "/{accessRequestName}"
	// RoleLogAnalyticsReader is the default role of an access request.
	roleLogAnalyticsReader = "73c42c96-874c-492b-b04d-ab87d138a893"
)

func (a *API) accessRequestRoutes() []api.Route {
	r := func(method, pattern string, act rbac.Action, h handler) api.Route {
		return api.Route{Method: method, Pattern: pattern, Audience: identity.AudienceManagement, Action: act, Scope: workspaceScope, Handler: a.wrap(h)}
	}
	return []api.Route{
		r(http.MethodGet, pAccessRequests, actAccessRequestRead, a.listAccessRequests),
		r(http.MethodPost, pAccessRequests, actAccessRequestWrite, a.createAccessRequest),
		r(http.MethodGet, pAccessRequest, actAccessRequestRead, a.getAccessRequest),
		r(http.MethodPost, pAccessRequest+"/approve", rbac.ActionRoleAssignmentWrite, a.decideAccessRequest(true)),
		r(http.MethodPost, pAccessRequest+"/reject", rbac.ActionRoleAssignmentWrite, a.decideAccessRequest(false)),
		r(http.MethodPost, pAccessRequest+"/revoke", rbac.ActionRoleAssignmentDelete, a.revokeAccessRequest),
	}
}

type accessRequestWire struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	Properties struct {
		Status            string `json:"status"`
		RequesterID       string `json:"requesterId"`
		RequesterType     string `json:"requesterType"`
		RoleDefinitionID  string `json:"roleDefinitionId"`
		Justification     string `json:"justification"`
		DurationInMinutes int    `json:"durationInMinutes"`
		CreatedOn         string `json:"createdOn"`
		DecidedOn         string `json:"decidedOn,omitempty"`
		DecidedBy         string `json:"decidedBy,omitempty"`
		Reason            string `json:"reason,omitempty"`
		RoleAssignmentID  string `json:"roleAssignmentId,omitempty"`
		AccessExpiresOn   string `json:"accessExpiresOn,omitempty"`
	} `json:"properties"`
}

func (a *API) toAccessRequestWire(ar catalog.AccessRequest) accessRequestWire {
	var w accessRequestWire
	w.ID, w.Name, w.Type = ar.ID, ar.Name, catalog.TypeAccessRequest
	p := &w.Properties
	p.Status = ar.EffectiveStatus(a.now())
	p.RequesterID, p.RequesterType, p.Justification = ar.RequesterID, ar.RequesterType, ar.Justification
	p.RoleDefinitionID = "/providers/Microsoft.Authorization/roleDefinitions/" + ar.RoleDefinitionID
	p.DurationInMinutes = int(ar.Duration / time.Minute)
	p.CreatedOn = wireTime(ar.Created)
	if !ar.Decided.IsZero() {
		p.DecidedOn, p.DecidedBy, p.Reason = wireTime(ar.Decided), ar.DecidedBy, ar.DecisionReason
	}
	p.RoleAssignmentID = ar.AssignmentID
	if !ar.AccessExpires.IsZero() {
		p.AccessExpiresOn = wireTime(ar.AccessExpires)
	}
	return w
}

func (a *API) now() time.Time {
	if a.clock != nil {
		return a.clock()
	}
	return time.Now()
}

func newGUIDText() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32], nil
}

func (a *API) createAccessRequest(w http.ResponseWriter, r *http.Request) error {
	p, ok := api.PrincipalFrom(r.Context())
	if !ok {
		return api.Errorf(http.StatusUnauthorized, "AuthenticationFailed", "The request has no authenticated principal.")
	}
	var req struct {
		Properties *struct {
			Justification     string `json:"justification"`
			DurationInMinutes int    `json:"durationInMinutes"`
			RoleDefinitionID  string `json:"roleDefinitionId"`
		} `json:"properties"`
	}
	if err := api.DecodeJSON(r, &req, a.maxBody); err != nil {
		return err
	}
	if req.Properties == nil {
		return catalog.Invalid("InvalidRequestContent", "properties", "The request needs properties.")
	}
	role := roleLogAnalyticsReader
	if req.Properties.RoleDefinitionID != "" {
		role = strings.ToLower(req.Properties.RoleDefinitionID[strings.LastIndexByte(req.Properties.RoleDefinitionID, '/')+1:])
		if a.authz == nil {
			return api.Errorf(http.StatusServiceUnavailable, "ServiceUnavailable", "Role definitions cannot be checked now.")
		}
		def, ok, err := a.authz.LookupRole(r.Context(), role)
		if err != nil {
			return err
		}
		if !ok {
			return catalog.Invalid("RoleDefinitionDoesNotExist", "roleDefinitionId", "The role definition '%s' does not exist.", truncateText(role, 64))
		}
		if roleGrantsAuthorization(def) {
			return catalog.Invalid("InvalidRoleForAccessRequest", "roleDefinitionId",
				"An access request grants data access only; a role that can change role assignments cannot be requested.")
		}
	}
	name, err := newGUIDText()
	if err != nil {
		return err
	}
	ptype := string(p.Kind)
	if ptype == "" {
		ptype = string(identity.KindServicePrincipal)
	}
	ar, err := a.cat.CreateAccessRequest(r.Context(), catalog.AccessRequest{Name: name, Scope: string(workspaceScope(r)), TenantID: p.TenantID,
		RequesterID: p.ObjectID, RequesterType: ptype, RoleDefinitionID: role, Justification: req.Properties.Justification,
		Duration: time.Duration(req.Properties.DurationInMinutes) * time.Minute})
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusCreated, a.toAccessRequestWire(ar))
	return nil
}

// roleGrantsAuthorization reports whether a role could change role
// assignments (Owner, User Access Administrator, custom roles alike).
func roleGrantsAuthorization(d rbac.RoleDefinition) bool {
	for _, p := range d.Permissions {
		for _, act := range p.Actions {
			l := strings.ToLower(act)
			if l == "*" || strings.HasPrefix(l, "microsoft.authorization/") && !strings.HasSuffix(l, "/read") {
				return true
			}
		}
	}
	return false
}

func (a *API) listAccessRequests(w http.ResponseWriter, r *http.Request) error {
	sub, rg, ws := r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"), r.PathValue("workspaceName")
	if _, err := a.cat.Workspace(r.Context(), sub, rg, ws); err != nil {
		return err
	}
	ars, err := a.cat.AccessRequests(r.Context(), string(workspaceScope(r)))
	if err != nil {
		return err
	}
	out := list[accessRequestWire]{Value: []accessRequestWire{}}
	for _, ar := range ars {
		out.Value = append(out.Value, a.toAccessRequestWire(ar))
	}
	api.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) getAccessRequest(w http.ResponseWriter, r *http.Request) error {
	ar, err := a.cat.AccessRequest(r.Context(), string(workspaceScope(r)), strings.ToLower(r.PathValue("accessRequestName")))
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, a.toAccessRequestWire(ar))
	return nil
}

// checkApprover requires Custos.Access/accessRequests/approve/action at the
// workspace, which in just-in-time mode root assignments do not grant.
func (a *API) checkApprover(r *http.Request) error {
	p, ok := api.PrincipalFrom(r.Context())
	if !ok {
		return api.Errorf(http.StatusUnauthorized, "AuthenticationFailed", "The request has no authenticated principal.")
	}
	if a.authz == nil {
		return api.Errorf(http.StatusServiceUnavailable, "ServiceUnavailable", "Access requests cannot be decided on this endpoint.")
	}
	scope := workspaceScope(r)
	d, err := a.authz.Authorize(r.Context(), p, rbac.ActionAccessRequestApprove, scope)
	if err != nil || !d.Allowed {
		return api.Errorf(http.StatusForbidden, "AuthorizationFailed",
			"The client '%s' with object id '%s' does not have authorization to perform action '%s' over scope '%s'. Access requests are decided by owners of the workspace (assignments below the root scope).",
			p.AppID, p.ObjectID, rbac.ActionAccessRequestApprove, scope)
	}
	return nil
}

func (a *API) decideAccessRequest(approve bool) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := a.checkApprover(r); err != nil {
			return err
		}
		var req struct {
			Reason string `json:"reason"`
		}
		if r.ContentLength != 0 {
			if err := api.DecodeJSON(r, &req, a.maxBody); err != nil {
				return err
			}
		}
		name, err := newGUIDText()
		if err != nil {
			return err
		}
		ar, err := a.cat.DecideAccessRequest(r.Context(), string(workspaceScope(r)), strings.ToLower(r.PathValue("accessRequestName")),
			approve, req.Reason, name, actor(r))
		if err != nil {
			return err
		}
		if a.authz != nil {
			a.authz.Invalidate()
		}
		api.WriteJSON(w, http.StatusOK, a.toAccessRequestWire(ar))
		return nil
	}
}

func (a *API) revokeAccessRequest(w http.ResponseWriter, r *http.Request) error {
	if err := a.checkApprover(r); err != nil {
		return err
	}
	ar, err := a.cat.RevokeAccessRequest(r.Context(), string(workspaceScope(r)), strings.ToLower(r.PathValue("accessRequestName")), actor(r))
	if err != nil {
		return err
	}
	if a.authz != nil {
		a.authz.Invalidate()
	}
	api.WriteJSON(w, http.StatusOK, a.toAccessRequestWire(ar))
	return nil
}
