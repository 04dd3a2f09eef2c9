package arm

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"custos/internal/api"
	"custos/internal/catalog"
	"custos/internal/identity"
	"custos/internal/rbac"
)

// Microsoft.Authorization: role definitions, role assignments and management
// locks, served at every scope ARM allows them: the root, a subscription, a
// resource group, a resource and a child resource (a workspace table).

// Authorization actions, as Azure names them.
const (
	actRoleDefinitionRead   rbac.Action = "Microsoft.Authorization/roleDefinitions/read"
	actRoleDefinitionWrite  rbac.Action = "Microsoft.Authorization/roleDefinitions/write"
	actRoleDefinitionDelete rbac.Action = "Microsoft.Authorization/roleDefinitions/delete"
	actLockRead             rbac.Action = "Microsoft.Authorization/locks/read"
	actLockWrite            rbac.Action = "Microsoft.Authorization/locks/write"
	actLockDelete           rbac.Action = "Microsoft.Authorization/locks/delete"
)

const providerAuthorization = "/providers/Microsoft.Authorization"

// authzScope is one shape of scope that Microsoft.Authorization resources
// hang under.
type authzScope struct {
	prefix string
	scope  func(*http.Request) rbac.Scope
}

func resourceScope(r *http.Request) rbac.Scope {
	return rbac.Scope(catalog.ResourceGroupResourceID(r.PathValue("subscriptionId"), r.PathValue("resourceGroupName")) +
		"/providers/" + r.PathValue("resourceProviderNamespace") + "/" + r.PathValue("resourceType") + "/" + r.PathValue("resourceName"))
}

func childResourceScope(r *http.Request) rbac.Scope {
	return rbac.Scope(string(resourceScope(r)) + "/" + r.PathValue("childResourceType") + "/" + r.PathValue("childResourceName"))
}

var authzScopes = []authzScope{
	{"", rootScope},
	{pSubscription, subscriptionScope},
	{pResourceGroup, resourceGroupScope},
	{pResourceGroup + "/providers/{resourceProviderNamespace}/{resourceType}/{resourceName}", resourceScope},
	{pResourceGroup + "/providers/{resourceProviderNamespace}/{resourceType}/{resourceName}/{childResourceType}/{childResourceName}", childResourceScope},
}

// authorizationRoutes returns the Microsoft.Authorization routes at every
// scope shape.
func (a *API) authorizationRoutes() []api.Route {
	r := func(method, pattern string, act rbac.Action, scope func(*http.Request) rbac.Scope, h handler) api.Route {
		return api.Route{Method: method, Pattern: pattern, Audience: identity.AudienceManagement, Action: act, Scope: scope, Handler: a.wrap(h)}
	}
	var out []api.Route
	for _, s := range authzScopes {
		defs := s.prefix + providerAuthorization + "/roleDefinitions"
		ras := s.prefix + providerAuthorization + "/roleAssignments"
		locks := s.prefix + providerAuthorization + "/locks"
		out = append(out,
			r(http.MethodGet, defs, actRoleDefinitionRead, s.scope, a.listRoleDefinitions(s.scope)),
			r(http.MethodGet, defs+"/{roleDefinitionId}", actRoleDefinitionRead, s.scope, a.getRoleDefinition(s.scope)),
			r(http.MethodPut, defs+"/{roleDefinitionId}", actRoleDefinitionWrite, s.scope, a.putRoleDefinition(s.scope)),
			r(http.MethodDelete, defs+"/{roleDefinitionId}", actRoleDefinitionDelete, s.scope, a.deleteRoleDefinition(s.scope)),

			r(http.MethodGet, ras, rbac.ActionRoleAssignmentRead, s.scope, a.listRoleAssignments(s.scope)),
			r(http.MethodGet, ras+"/{roleAssignmentName}", rbac.ActionRoleAssignmentRead, s.scope, a.getRoleAssignment(s.scope)),
			r(http.MethodPut, ras+"/{roleAssignmentName}", rbac.ActionRoleAssignmentWrite, s.scope, a.putRoleAssignment(s.scope)),
			r(http.MethodDelete, ras+"/{roleAssignmentName}", rbac.ActionRoleAssignmentDelete, s.scope, a.deleteRoleAssignment(s.scope)),

			r(http.MethodGet, locks, actLockRead, s.scope, a.listLocks(s.scope)),
			r(http.MethodGet, locks+"/{lockName}", actLockRead, s.scope, a.getLock(s.scope)),
			r(http.MethodPut, locks+"/{lockName}", actLockWrite, s.scope, a.putLock(s.scope)),
			r(http.MethodDelete, locks+"/{lockName}", actLockDelete, s.scope, a.deleteLock(s.scope)),
		)
	}
	return out
}

// scopePrefix is the scope as it prefixes a child resource ID ("" for the root).
func scopePrefix(s rbac.Scope) string {
	str := strings.TrimRight(string(s), "/")
	return str
}

// ----- role definitions -----

type permissionWire struct {
	Actions        []string `json:"actions"`
	NotActions     []string `json:"notActions"`
	DataActions    []string `json:"dataActions"`
	NotDataActions []string `json:"notDataActions"`
}

type roleDefinitionProps struct {
	RoleName         string           `json:"roleName"`
	Type             string           `json:"type"`
	Description      string           `json:"description"`
	AssignableScopes []string         `json:"assignableScopes"`
	Permissions      []permissionWire `json:"permissions"`
	CreatedOn        string           `json:"createdOn,omitempty"`
	UpdatedOn        string           `json:"updatedOn,omitempty"`
	CreatedBy        *string          `json:"createdBy"`
	UpdatedBy        *string          `json:"updatedBy"`
}

type roleDefinitionWire struct {
	ID         string              `json:"id"`
	Type       string              `json:"type"`
	Name       string              `json:"name"`
	Properties roleDefinitionProps `json:"properties"`
}

// roleDefinitionRequest is a PUT body. Read-only properties are accepted
// and ignored, so that a GET result can be sent back.
type roleDefinitionRequest struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Name       string `json:"name"`
	Properties *struct {
		RoleName         string           `json:"roleName"`
		Type             string           `json:"type"`
		Description      string           `json:"description"`
		AssignableScopes []string         `json:"assignableScopes"`
		Permissions      []permissionWire `json:"permissions"`
		CreatedOn        string           `json:"createdOn"`
		UpdatedOn        string           `json:"updatedOn"`
		CreatedBy        *string          `json:"createdBy"`
		UpdatedBy        *string          `json:"updatedBy"`
	} `json:"properties"`
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func toRoleDefinitionWire(scope rbac.Scope, d rbac.RoleDefinition, audit *catalog.StoredRole) roleDefinitionWire {
	w := roleDefinitionWire{
		ID:   scopePrefix(scope) + providerAuthorization + "/roleDefinitions/" + d.ID,
		Type: "Microsoft.Authorization/roleDefinitions",
		Name: d.ID,
		Properties: roleDefinitionProps{
			RoleName: d.Name, Type: d.RoleType, Description: d.Description, AssignableScopes: nonNil(d.AssignableScopes),
			Permissions: []permissionWire{},
		},
	}
	for _, p := range d.Permissions {
		w.Properties.Permissions = append(w.Properties.Permissions, permissionWire{
			Actions: nonNil(p.Actions), NotActions: nonNil(p.NotActions), DataActions: nonNil(p.DataActions), NotDataActions: nonNil(p.NotDataActions),
		})
	}
	if audit != nil {
		w.Properties.CreatedOn, w.Properties.UpdatedOn = wireTime(audit.CreatedAt), wireTime(audit.UpdatedAt)
		cb, ub := audit.CreatedBy, audit.UpdatedBy
		w.Properties.CreatedBy, w.Properties.UpdatedBy = &cb, &ub
	}
	return w
}

func errRoleDefinitionNotFound(id string) error {
	return api.Errorf(http.StatusNotFound, "RoleDefinitionDoesNotExist", "The specified role definition with ID '%s' does not exist.", clip(id))
}

// roleVisibleAt reports whether a custom role concerns scope: one of its
// assignable scopes is at, above or below it.
func roleVisibleAt(d rbac.RoleDefinition, scope rbac.Scope) bool {
	for _, s := range d.AssignableScopes {
		if rbac.Covers(rbac.Scope(s), scope) || rbac.Covers(scope, rbac.Scope(s)) {
			return true
		}
	}
	return false
}

var (
	filterRoleNameRE = regexp.MustCompile(`(?i)^\s*roleName\s+eq\s+'([^']{1,512})'\s*$`)
	filterTypeRE     = regexp.MustCompile(`(?i)^\s*type\s+eq\s+'(BuiltInRole|CustomRole)'\s*$`)
)

func (a *API) listRoleDefinitions(scopeOf func(*http.Request) rbac.Scope) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		scope := scopeOf(r)
		var byName, byType string
		if f := r.URL.Query().Get("$filter"); f != "" {
			if m := filterRoleNameRE.FindStringSubmatch(f); m != nil {
				byName = m[1]
			} else if m := filterTypeRE.FindStringSubmatch(f); m != nil {
				byType = m[1]
			} else {
				return api.Errorf(http.StatusBadRequest, "UnsupportedQuery",
					"The filter '%s' is not supported. Supported filters: roleName eq '{name}', type eq 'BuiltInRole' or type eq 'CustomRole'.", clip(f))
			}
		}
		var out []roleDefinitionWire
		keep := func(d rbac.RoleDefinition) bool {
			return (byName == "" || strings.EqualFold(d.Name, byName)) && (byType == "" || strings.EqualFold(d.RoleType, byType))
		}
		for _, d := range rbac.BuiltinRoles() {
			if keep(d) {
				out = append(out, toRoleDefinitionWire(scope, d, nil))
			}
		}
		custom, err := a.cat.CustomRoles(r.Context())
		if err != nil {
			return err
		}
		for i := range custom {
			if keep(custom[i].RoleDefinition) && roleVisibleAt(custom[i].RoleDefinition, scope) {
				out = append(out, toRoleDefinitionWire(scope, custom[i].RoleDefinition, &custom[i]))
			}
		}
		if out == nil {
			out = []roleDefinitionWire{}
		}
		api.WriteJSON(w, http.StatusOK, list[roleDefinitionWire]{Value: out})
		return nil
	}
}

func (a *API) getRoleDefinition(scopeOf func(*http.Request) rbac.Scope) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		id := r.PathValue("roleDefinitionId")
		if d, ok := rbac.BuiltinRole(id); ok && rbac.IsGUID(id) {
			writeGet(w, "", toRoleDefinitionWire(scopeOf(r), d, nil))
			return nil
		}
		if !rbac.IsGUID(id) {
			return errRoleDefinitionNotFound(id)
		}
		d, err := a.cat.CustomRole(r.Context(), id)
		if err != nil {
			return err
		}
		writeGet(w, "", toRoleDefinitionWire(scopeOf(r), d.RoleDefinition, &d))
		return nil
	}
}

func (a *API) putRoleDefinition(scopeOf func(*http.Request) rbac.Scope) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		scope := scopeOf(r)
		id := r.PathValue("roleDefinitionId")
		if !rbac.IsGUID(id) {
			return api.Errorf(http.StatusBadRequest, "InvalidRoleDefinitionId", "The role definition ID '%s' is not valid: it must be a GUID.", clip(id))
		}
		if _, ok := rbac.BuiltinRole(id); ok {
			return api.Errorf(http.StatusForbidden, "BuiltInRoleCannotBeModified", "The built-in role definition '%s' cannot be modified.", id)
		}
		var req roleDefinitionRequest
		if err := api.DecodeJSON(r, &req, a.maxBody); err != nil {
			return err
		}
		if req.Properties == nil {
			return api.Errorf(http.StatusBadRequest, "InvalidRoleDefinition", "The request body must have a 'properties' object.")
		}
		p := req.Properties
		if p.Type != "" && !strings.EqualFold(p.Type, "CustomRole") {
			return api.Errorf(http.StatusBadRequest, "InvalidRoleDefinition", "Only custom roles (type 'CustomRole') can be created.")
		}
		d := rbac.RoleDefinition{ID: strings.ToLower(id), Name: strings.TrimSpace(p.RoleName), Description: p.Description,
			RoleType: "CustomRole", AssignableScopes: p.AssignableScopes}
		for _, pw := range p.Permissions {
			d.Permissions = append(d.Permissions, rbac.Permission{Actions: pw.Actions, NotActions: pw.NotActions,
				DataActions: pw.DataActions, NotDataActions: pw.NotDataActions})
		}
		if err := rbac.ValidateRoleDefinition(d); err != nil {
			return api.Errorf(http.StatusBadRequest, "InvalidRoleDefinition", "%s", strings.TrimPrefix(err.Error(), rbac.ErrInvalidRole.Error()+": "))
		}
		for _, b := range rbac.BuiltinRoles() {
			if strings.EqualFold(b.Name, d.Name) {
				return api.Errorf(http.StatusConflict, "RoleDefinitionWithSameNameExists", "A role definition named '%s' already exists.", clip(d.Name))
			}
		}
		for _, s := range d.AssignableScopes {
			if !rbac.Covers(scope, rbac.Scope(s)) {
				return api.Errorf(http.StatusForbidden, "LinkedAuthorizationFailed",
					"The assignable scope '%s' is not at or below the request scope '%s'. Create the role at a scope that covers every assignable scope.",
					clip(s), clip(string(scope)))
			}
		}
		saved, created, err := a.cat.PutRoleDefinition(r.Context(), d, actor(r))
		if err != nil {
			return err
		}
		writePut(w, created, "", toRoleDefinitionWire(scope, saved.RoleDefinition, &saved))
		return nil
	}
}

func (a *API) deleteRoleDefinition(scopeOf func(*http.Request) rbac.Scope) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		id := r.PathValue("roleDefinitionId")
		if _, ok := rbac.BuiltinRole(id); ok && rbac.IsGUID(id) {
			return api.Errorf(http.StatusForbidden, "BuiltInRoleCannotBeModified", "The built-in role definition '%s' cannot be deleted.", id)
		}
		if !rbac.IsGUID(id) {
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
		d, deleted, err := a.cat.DeleteRoleDefinition(r.Context(), id)
		if err != nil {
			return err
		}
		if !deleted {
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
		api.WriteJSON(w, http.StatusOK, toRoleDefinitionWire(scopeOf(r), d.RoleDefinition, &d))
		return nil
	}
}

// ----- role assignments -----

type roleAssignmentProps struct {
	Scope                              string  `json:"scope"`
	RoleDefinitionID                   string  `json:"roleDefinitionId"`
	PrincipalID                        string  `json:"principalId"`
	PrincipalType                      string  `json:"principalType"`
	Description                        *string `json:"description"`
	Condition                          *string `json:"condition"`
	ConditionVersion                   *string `json:"conditionVersion"`
	CreatedOn                          string  `json:"createdOn,omitempty"`
	UpdatedOn                          string  `json:"updatedOn,omitempty"`
	CreatedBy                          *string `json:"createdBy"`
	UpdatedBy                          *string `json:"updatedBy"`
	DelegatedManagedIdentityResourceID *string `json:"delegatedManagedIdentityResourceId"`
	// ExpiresOn is a Custos extension: the assignment grants nothing from
	// this time on.
	ExpiresOn *string `json:"expiresOn,omitempty"`
}

type roleAssignmentWire struct {
	ID         string              `json:"id"`
	Type       string              `json:"type"`
	Name       string              `json:"name"`
	Properties roleAssignmentProps `json:"properties"`
}

type roleAssignmentRequest struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Name       string `json:"name"`
	Properties *struct {
		RoleDefinitionID                   string  `json:"roleDefinitionId"`
		PrincipalID                        string  `json:"principalId"`
		PrincipalType                      string  `json:"principalType"`
		Description                        string  `json:"description"`
		Condition                          string  `json:"condition"`
		ConditionVersion                   string  `json:"conditionVersion"`
		DelegatedManagedIdentityResourceID *string `json:"delegatedManagedIdentityResourceId"`
		CanDelegate                        *bool   `json:"canDelegate"`
		ExpiresOn                          string  `json:"expiresOn"`
		Scope                              string  `json:"scope"`
		CreatedOn                          string  `json:"createdOn"`
		UpdatedOn                          string  `json:"updatedOn"`
		CreatedBy                          *string `json:"createdBy"`
		UpdatedBy                          *string `json:"updatedBy"`
	} `json:"properties"`
}

// roleDefinitionIDFor renders a role definition ID as Azure does for an
// assignment: under the subscription of the assignment's scope, if any.
func roleDefinitionIDFor(scope rbac.Scope, roleID string) string {
	guid := roleID
	if i := strings.LastIndexByte(guid, '/'); i >= 0 {
		guid = guid[i+1:]
	}
	parts := strings.Split(strings.Trim(string(scope), "/"), "/")
	if len(parts) >= 2 && strings.EqualFold(parts[0], "subscriptions") {
		return "/subscriptions/" + parts[1] + providerAuthorization + "/roleDefinitions/" + strings.ToLower(guid)
	}
	return providerAuthorization + "/roleDefinitions/" + strings.ToLower(guid)
}

func strPtr(s string) *string { return &s }

func toRoleAssignmentWire(ra rbac.RoleAssignment) roleAssignmentWire {
	scope := scopePrefix(ra.Scope)
	if scope == "" {
		scope = "/"
	}
	p := roleAssignmentProps{
		Scope: scope, RoleDefinitionID: roleDefinitionIDFor(ra.Scope, ra.RoleDefinitionID), PrincipalID: ra.PrincipalID,
		PrincipalType: ra.PrincipalType, CreatedOn: wireTime(ra.Created), UpdatedOn: wireTime(ra.Updated),
	}
	if ra.Description != "" {
		p.Description = strPtr(ra.Description)
	}
	if ra.Condition != "" {
		p.Condition, p.ConditionVersion = strPtr(ra.Condition), strPtr(ra.ConditionVersion)
	}
	if ra.CreatedBy != "" {
		p.CreatedBy = strPtr(ra.CreatedBy)
	}
	if ra.UpdatedBy != "" {
		p.UpdatedBy = strPtr(ra.UpdatedBy)
	}
	if !ra.Expires.IsZero() {
		p.ExpiresOn = strPtr(ra.Expires.UTC().Format(time.RFC3339))
	}
	return roleAssignmentWire{ID: ra.ID, Type: "Microsoft.Authorization/roleAssignments", Name: ra.Name, Properties: p}
}

func roleAssignmentID(scope rbac.Scope, name string) string {
	return scopePrefix(scope) + providerAuthorization + "/roleAssignments/" + name
}

var principalTypes = []string{"User", "Group", "ServicePrincipal", "ForeignGroup", "Device"}

func (a *API) putRoleAssignment(scopeOf func(*http.Request) rbac.Scope) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		scope := scopeOf(r)
		name := r.PathValue("roleAssignmentName")
		if !rbac.IsGUID(name) {
			return api.Errorf(http.StatusBadRequest, "InvalidRoleAssignmentId", "The role assignment ID '%s' is not valid. The role assignment ID must be a GUID.", clip(name))
		}
		var req roleAssignmentRequest
		if err := api.DecodeJSON(r, &req, a.maxBody); err != nil {
			return err
		}
		if req.Properties == nil {
			return api.Errorf(http.StatusBadRequest, "InvalidRoleAssignmentRequest", "The request body must have a 'properties' object.")
		}
		p := req.Properties
		if p.DelegatedManagedIdentityResourceID != nil && *p.DelegatedManagedIdentityResourceID != "" {
			return api.Errorf(http.StatusBadRequest, "InvalidRoleAssignmentRequest", "delegatedManagedIdentityResourceId is not supported.")
		}
		if p.PrincipalType != "" && !slices.Contains(principalTypes, p.PrincipalType) {
			return api.Errorf(http.StatusBadRequest, "InvalidPrincipalType",
				"The principal type '%s' is invalid. Allowed values: %s.", clip(p.PrincipalType), strings.Join(principalTypes, ", "))
		}
		role, ok := rbac.BuiltinRole(p.RoleDefinitionID)
		if !ok {
			custom, err := a.cat.CustomRole(r.Context(), p.RoleDefinitionID)
			if err != nil {
				if api.ToError(err).Status == http.StatusNotFound {
					return api.Errorf(http.StatusBadRequest, "RoleDefinitionDoesNotExist", "The specified role definition with ID '%s' does not exist.", clip(p.RoleDefinitionID))
				}
				return err
			}
			role = custom.RoleDefinition
		}
		ra := rbac.RoleAssignment{
			ID: roleAssignmentID(scope, strings.ToLower(name)), Name: strings.ToLower(name), Scope: scope,
			RoleDefinitionID: role.ID, PrincipalID: strings.ToLower(p.PrincipalID), PrincipalType: p.PrincipalType,
			Condition: strings.TrimSpace(p.Condition), ConditionVersion: p.ConditionVersion, Description: p.Description,
		}
		if ra.Condition != "" && ra.ConditionVersion == "" {
			ra.ConditionVersion = rbac.ConditionVersion
		}
		if p.ExpiresOn != "" {
			t, err := time.Parse(time.RFC3339, p.ExpiresOn)
			if err != nil {
				return api.Errorf(http.StatusBadRequest, "InvalidExpiresOn", "properties.expiresOn must be an RFC 3339 time, e.g. 2030-01-31T00:00:00Z.")
			}
			if !t.After(time.Now()) {
				return api.Errorf(http.StatusBadRequest, "InvalidExpiresOn", "properties.expiresOn is in the past.")
			}
			ra.Expires = t.UTC()
		}
		if err := rbac.ValidateAssignment(ra, role); err != nil {
			code := "InvalidRoleAssignmentRequest"
			if strings.Contains(err.Error(), "condition") {
				code = "InvalidCondition"
			}
			return api.Errorf(http.StatusBadRequest, code, "%s", err.Error())
		}
		if err := a.checkSelfGrant(r, ra, role); err != nil {
			return err
		}
		saved, created, err := a.cat.PutRoleAssignment(r.Context(), ra, actor(r))
		if err != nil {
			return err
		}
		saved.Scope = scope
		writePut(w, created, "", toRoleAssignmentWire(saved))
		return nil
	}
}

func (a *API) getRoleAssignment(scopeOf func(*http.Request) rbac.Scope) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		ra, err := a.cat.RoleAssignmentByID(r.Context(), roleAssignmentID(scopeOf(r), r.PathValue("roleAssignmentName")))
		if err != nil {
			return err
		}
		writeGet(w, "", toRoleAssignmentWire(ra))
		return nil
	}
}

func (a *API) deleteRoleAssignment(scopeOf func(*http.Request) rbac.Scope) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		ra, deleted, err := a.cat.DeleteRoleAssignmentByID(r.Context(), roleAssignmentID(scopeOf(r), r.PathValue("roleAssignmentName")))
		if err != nil {
			return err
		}
		if !deleted {
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
		api.WriteJSON(w, http.StatusOK, toRoleAssignmentWire(ra))
		return nil
	}
}

var (
	filterAtScopeRE   = regexp.MustCompile(`(?i)^atScope\(\)$`)
	filterPrincipalRE = regexp.MustCompile(`(?i)^(?:principalId\s+eq\s+'([0-9a-f-]{36})'|assignedTo\('([0-9a-f-]{36})'\))$`)
)

// parseAssignmentFilter understands "atScope()", "principalId eq '{id}'",
// "assignedTo('{id}')" and their conjunction with "and".
func parseAssignmentFilter(f string) (catalog.AssignmentFilter, error) {
	var out catalog.AssignmentFilter
	if strings.TrimSpace(f) == "" {
		return out, nil
	}
	for _, part := range regexp.MustCompile(`(?i)\s+and\s+`).Split(strings.TrimSpace(f), -1) {
		part = strings.TrimSpace(part)
		switch {
		case filterAtScopeRE.MatchString(part):
			out.AtScope = true
		case filterPrincipalRE.MatchString(part):
			m := filterPrincipalRE.FindStringSubmatch(part)
			out.PrincipalID = m[1] + m[2]
		default:
			return out, api.Errorf(http.StatusBadRequest, "UnsupportedQuery",
				"The filter '%s' is not supported. Supported filters: atScope(), principalId eq '{id}', assignedTo('{id}'), joined with 'and'.", clip(f))
		}
	}
	return out, nil
}

func (a *API) listRoleAssignments(scopeOf func(*http.Request) rbac.Scope) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		f, err := parseAssignmentFilter(r.URL.Query().Get("$filter"))
		if err != nil {
			return err
		}
		ras, err := a.cat.ListRoleAssignmentDetails(r.Context(), string(scopeOf(r)), f)
		if err != nil {
			return err
		}
		out := make([]roleAssignmentWire, 0, len(ras))
		for _, ra := range ras {
			out = append(out, toRoleAssignmentWire(ra))
		}
		api.WriteJSON(w, http.StatusOK, list[roleAssignmentWire]{Value: out})
		return nil
	}
}

// checkSelfGrant refuses, in just-in-time mode, a role assignment by which
// the caller would grant itself (or a group it belongs to) access to log
// data it does not already hold at that scope (rbac.CheckSelfGrant). The
// refusal points at the access-request flow.
func (a *API) checkSelfGrant(r *http.Request, ra rbac.RoleAssignment, role rbac.RoleDefinition) error {
	if a.authz == nil {
		return nil
	}
	p, ok := api.PrincipalFrom(r.Context())
	if !ok {
		return nil
	}
	d, err := a.authz.CheckSelfGrant(r.Context(), p, ra, role)
	if err != nil {
		return err
	}
	if !d.Allowed {
		return api.Errorf(http.StatusForbidden, "SelfAssignmentNotAllowed",
			"%s. Request time-bound access instead (custos access request, or POST {workspace}/providers/Custos.Access/accessRequests), which an owner of the workspace approves, or have another administrator assign the role.", d.Reason)
	}
	return nil
}
