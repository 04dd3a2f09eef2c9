package arm

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"

	"custos/internal/api"
	"custos/internal/catalog"
	"custos/internal/identity"
	"custos/internal/rbac"
)

// The Custos directory API (Custos.Directory): users, groups with nested
// membership, and service principals with client secret and certificate
// credentials, at the root scope of the caller's tenant:
//
//	/providers/Custos.Directory/users[/{objectId}[/setPassword|enrollTotp|confirmTotp|revokeSessions]]
//	/providers/Custos.Directory/groups[/{objectId}[/members[/{memberId}]]]
//	/providers/Custos.Directory/servicePrincipals[/{id}[/addPassword|removePassword|addKey|removeKey]]
//
// Reads need */read at "/" (Reader); writes need Microsoft.Authorization
// actions at "/" (Owner, User Access Administrator): managing principals
// and their credentials is access administration, so Contributor (whose
// notActions exclude Microsoft.Authorization writes) cannot.

// Directory actions.
const (
	actUserRead     rbac.Action = "Microsoft.Authorization/directory/users/read"
	actUserWrite    rbac.Action = "Microsoft.Authorization/directory/users/write"
	actUserDelete   rbac.Action = "Microsoft.Authorization/directory/users/delete"
	actGroupRead    rbac.Action = "Microsoft.Authorization/directory/groups/read"
	actGroupWrite   rbac.Action = "Microsoft.Authorization/directory/groups/write"
	actGroupDelete  rbac.Action = "Microsoft.Authorization/directory/groups/delete"
	actSPRead       rbac.Action = "Microsoft.Authorization/directory/servicePrincipals/read"
	actSPWrite      rbac.Action = "Microsoft.Authorization/directory/servicePrincipals/write"
	actSPDelete     rbac.Action = "Microsoft.Authorization/directory/servicePrincipals/delete"
	providerDirPath             = "/providers/Custos.Directory"
)

const (
	pUsers  = providerDirPath + "/users"
	pUser   = pUsers + "/{objectId}"
	pGroups = providerDirPath + "/groups"
	pGroup  = pGroups + "/{objectId}"
	pMember = pGroup + "/members/{memberId}"
	pSPs    = providerDirPath + "/servicePrincipals"
	pSP     = pSPs + "/{objectId}"
)

// directoryRoutes returns the Custos.Directory routes.
func (a *API) directoryRoutes() []api.Route {
	r := func(method, pattern string, act rbac.Action, h handler) api.Route {
		return api.Route{Method: method, Pattern: pattern, Audience: identity.AudienceManagement, Action: act, Scope: rootScope, Handler: a.wrap(h)}
	}
	return []api.Route{
		r(http.MethodGet, pUsers, actUserRead, a.listUsers),
		r(http.MethodGet, pUser, actUserRead, a.getUser),
		r(http.MethodPut, pUser, actUserWrite, a.putUser),
		r(http.MethodDelete, pUser, actUserDelete, a.deleteUser),
		r(http.MethodPost, pUser+"/setPassword", actUserWrite, a.setPassword),
		r(http.MethodPost, pUser+"/enrollTotp", actUserWrite, a.enrollTOTP),
		r(http.MethodPost, pUser+"/confirmTotp", actUserWrite, a.confirmTOTP),
		r(http.MethodPost, pUser+"/revokeSessions", actUserWrite, a.revokeSessions),

		r(http.MethodGet, pGroups, actGroupRead, a.listGroups),
		r(http.MethodGet, pGroup, actGroupRead, a.getGroup),
		r(http.MethodPut, pGroup, actGroupWrite, a.putGroup),
		r(http.MethodDelete, pGroup, actGroupDelete, a.deleteGroup),
		r(http.MethodGet, pGroup+"/members", actGroupRead, a.listMembers),
		r(http.MethodPut, pMember, actGroupWrite, a.addMember),
		r(http.MethodDelete, pMember, actGroupWrite, a.removeMember),

		r(http.MethodGet, pSPs, actSPRead, a.listSPs),
		r(http.MethodPost, pSPs, actSPWrite, a.createSP),
		r(http.MethodGet, pSP, actSPRead, a.getSP),
		r(http.MethodDelete, pSP, actSPDelete, a.deleteSP),
		r(http.MethodPost, pSP+"/addPassword", actSPWrite, a.addPassword),
		r(http.MethodPost, pSP+"/removePassword", actSPWrite, a.removePassword),
		r(http.MethodPost, pSP+"/addKey", actSPWrite, a.addKey),
		r(http.MethodPost, pSP+"/removeKey", actSPWrite, a.removeKey),
	}
}

// callerTenant is the tenant of the authenticated caller: the directory
// API works in the caller's own tenant.
func callerTenant(r *http.Request) (string, error) {
	p, ok := api.PrincipalFrom(r.Context())
	if !ok || p.TenantID == "" {
		return "", api.Errorf(http.StatusUnauthorized, "AuthenticationFailed", "The request has no authenticated tenant.")
	}
	return p.TenantID, nil
}

func (a *API) needTokens() error {
	if a.tokens == nil {
		return api.Errorf(http.StatusServiceUnavailable, "ServiceUnavailable", "The token service is not available on this endpoint.")
	}
	return nil
}

// identityError maps the token service's argument errors to 400s.
func identityError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, identity.ErrWeakPassword):
		return api.Errorf(http.StatusBadRequest, "PasswordTooWeak", "%s", strings.TrimPrefix(err.Error(), "identity: "))
	case errors.Is(err, identity.ErrInvalidCode):
		return api.Errorf(http.StatusBadRequest, "InvalidVerificationCode", "The one-time code is not valid or was already used.")
	case errors.Is(err, identity.ErrInvalidArgument):
		return api.Errorf(http.StatusBadRequest, "InvalidParameter", "%s", strings.TrimPrefix(err.Error(), "identity: "))
	}
	return err
}

func requireGUID(name, v string) error {
	if !catalog.IsGUID(v) {
		return catalog.Invalid("InvalidParameter", name, "The %s '%s' is not a GUID.", name, truncateText(v, 64))
	}
	return nil
}

func truncateText(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// ----- users -----

type userProps struct {
	UserPrincipalName string `json:"userPrincipalName"`
	DisplayName       string `json:"displayName"`
	Mail              string `json:"mail"`
	AccountEnabled    bool   `json:"accountEnabled"`
	HasPassword       bool   `json:"passwordSet"`
	TOTPEnabled       bool   `json:"totpEnabled"`
	ExternalIssuer    string `json:"externalIssuer,omitempty"`
	ExternalSubject   string `json:"externalSubject,omitempty"`
	CreatedDateTime   string `json:"createdDateTime"`
}

type userWire struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Type       string    `json:"type"`
	Properties userProps `json:"properties"`
}

func toUserWire(u identity.User) userWire {
	return userWire{ID: pUsers + "/" + u.ObjectID, Name: u.ObjectID, Type: "Custos.Directory/users",
		Properties: userProps{UserPrincipalName: u.UserPrincipalName, DisplayName: u.DisplayName, Mail: u.Mail,
			AccountEnabled: u.Enabled, HasPassword: u.HasPassword, TOTPEnabled: u.TOTPEnabled, ExternalIssuer: u.ExternalIssuer,
			ExternalSubject: u.ExternalSubject, CreatedDateTime: wireTime(u.Created)}}
}

// writeTenantList answers a directory list: the caller's tenant's objects
// from fetch, in their wire form.
func writeTenantList[T, W any](w http.ResponseWriter, r *http.Request,
	fetch func(context.Context, string) ([]T, error), wire func(T) W) error {
	t, err := callerTenant(r)
	if err != nil {
		return err
	}
	items, err := fetch(r.Context(), t)
	if err != nil {
		return err
	}
	out := list[W]{Value: []W{}}
	for _, it := range items {
		out.Value = append(out.Value, wire(it))
	}
	api.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) listUsers(w http.ResponseWriter, r *http.Request) error {
	return writeTenantList(w, r, a.cat.Users, toUserWire)
}

func (a *API) getUser(w http.ResponseWriter, r *http.Request) error {
	t, err := callerTenant(r)
	if err != nil {
		return err
	}
	u, _, err := a.cat.DirectoryUser(r.Context(), t, r.PathValue("objectId"))
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, toUserWire(u))
	return nil
}

type userRequest struct {
	Properties *struct {
		UserPrincipalName string  `json:"userPrincipalName"`
		DisplayName       *string `json:"displayName"`
		Mail              *string `json:"mail"`
		AccountEnabled    *bool   `json:"accountEnabled"`
		Password          string  `json:"password"`
		ExternalIssuer    string  `json:"externalIssuer"`
		ExternalSubject   string  `json:"externalSubject"`
		// read-only members of a GET answer, accepted and ignored
		HasPassword     *bool   `json:"passwordSet"`
		TOTPEnabled     *bool   `json:"totpEnabled"`
		CreatedDateTime *string `json:"createdDateTime"`
	} `json:"properties"`
	ID   *string `json:"id"`
	Name *string `json:"name"`
	Type *string `json:"type"`
}

// putUser creates a user (201) or updates displayName, mail and
// accountEnabled of an existing one (200). userPrincipalName, password and
// the external binding are set at creation only.
func (a *API) putUser(w http.ResponseWriter, r *http.Request) error {
	t, err := callerTenant(r)
	if err != nil {
		return err
	}
	id := strings.ToLower(r.PathValue("objectId"))
	if err := requireGUID("objectId", id); err != nil {
		return err
	}
	var req userRequest
	if err := api.DecodeJSON(r, &req, a.maxBody); err != nil {
		return err
	}
	if req.Properties == nil {
		return catalog.Invalid("InvalidRequestContent", "properties", "The request needs properties.")
	}
	p := req.Properties
	ctx := r.Context()
	if cur, _, err := a.cat.DirectoryUser(ctx, t, id); err == nil {
		if p.UserPrincipalName != "" && !strings.EqualFold(p.UserPrincipalName, cur.UserPrincipalName) || p.Password != "" ||
			p.ExternalIssuer != cur.ExternalIssuer && p.ExternalIssuer != "" {
			return catalog.Invalid("PropertyChangeNotAllowed", "properties",
				"userPrincipalName, password and the external binding cannot be changed by PUT; use setPassword, or delete and recreate the user.")
		}
		u, err := a.cat.UpdateUser(ctx, t, id, p.DisplayName, p.Mail, p.AccountEnabled, actor(r))
		if err != nil {
			return err
		}
		if a.tokens != nil {
			a.tokens.ForgetPrincipals() // a disabled user's tokens end now
		}
		api.WriteJSON(w, http.StatusOK, toUserWire(u))
		return nil
	} else if !errors.Is(err, catalog.ErrNotFound) {
		return err
	}
	if (p.ExternalIssuer == "") != (p.ExternalSubject == "") {
		return catalog.Invalid("InvalidParameter", "externalSubject", "externalIssuer and externalSubject go together.")
	}
	hash := ""
	if p.Password != "" {
		if hash, err = identity.HashPassword(rand.Reader, p.Password, identity.DefaultArgon2); err != nil {
			return identityError(err)
		}
	}
	u := identity.User{TenantID: t, ObjectID: id, UserPrincipalName: p.UserPrincipalName, ExternalIssuer: p.ExternalIssuer,
		ExternalSubject: p.ExternalSubject}
	if p.DisplayName != nil {
		u.DisplayName = *p.DisplayName
	}
	if p.Mail != nil {
		u.Mail = *p.Mail
	}
	u, err = a.cat.CreateUser(ctx, u, hash, actor(r))
	if err != nil {
		return err
	}
	if p.AccountEnabled != nil && !*p.AccountEnabled {
		if u, err = a.cat.UpdateUser(ctx, t, id, nil, nil, p.AccountEnabled, actor(r)); err != nil {
			return err
		}
	}
	api.WriteJSON(w, http.StatusCreated, toUserWire(u))
	return nil
}

func (a *API) deleteUser(w http.ResponseWriter, r *http.Request) error {
	t, err := callerTenant(r)
	if err != nil {
		return err
	}
	deleted, err := a.cat.DeleteUser(r.Context(), t, r.PathValue("objectId"))
	if err != nil {
		return err
	}
	if a.tokens != nil {
		a.tokens.ForgetPrincipals()
	}
	writeDelete(w, deleted)
	return nil
}

func (a *API) setPassword(w http.ResponseWriter, r *http.Request) error {
	t, err := callerTenant(r)
	if err != nil {
		return err
	}
	var req struct {
		Password string `json:"password"`
	}
	if err := api.DecodeJSON(r, &req, a.maxBody); err != nil {
		return err
	}
	hash, err := identity.HashPassword(rand.Reader, req.Password, identity.DefaultArgon2)
	if err != nil {
		return identityError(err)
	}
	if err := a.cat.SetUserPassword(r.Context(), t, r.PathValue("objectId"), hash); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) enrollTOTP(w http.ResponseWriter, r *http.Request) error {
	if err := a.needTokens(); err != nil {
		return err
	}
	t, err := callerTenant(r)
	if err != nil {
		return err
	}
	uri, err := a.tokens.EnrollTOTP(r.Context(), t, r.PathValue("objectId"))
	if err != nil {
		return identityError(err)
	}
	w.Header().Set("Cache-Control", "no-store")
	api.WriteJSON(w, http.StatusOK, struct {
		OTPAuthURI string `json:"otpauthUri"`
	}{uri})
	return nil
}

func (a *API) confirmTOTP(w http.ResponseWriter, r *http.Request) error {
	if err := a.needTokens(); err != nil {
		return err
	}
	t, err := callerTenant(r)
	if err != nil {
		return err
	}
	var req struct {
		Code string `json:"code"`
	}
	if err := api.DecodeJSON(r, &req, a.maxBody); err != nil {
		return err
	}
	if err := a.tokens.ConfirmTOTP(r.Context(), t, r.PathValue("objectId"), req.Code); err != nil {
		return identityError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) revokeSessions(w http.ResponseWriter, r *http.Request) error {
	if err := a.needTokens(); err != nil {
		return err
	}
	t, err := callerTenant(r)
	if err != nil {
		return err
	}
	if _, _, err := a.cat.DirectoryUser(r.Context(), t, r.PathValue("objectId")); err != nil {
		return err
	}
	n, err := a.tokens.RevokeUserSessions(r.Context(), t, r.PathValue("objectId"))
	if err != nil {
		return identityError(err)
	}
	api.WriteJSON(w, http.StatusOK, struct {
		Revoked int `json:"revokedRefreshTokens"`
	}{n})
	return nil
}

// ----- groups -----

type groupWire struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	Properties struct {
		DisplayName     string `json:"displayName"`
		Description     string `json:"description"`
		CreatedDateTime string `json:"createdDateTime"`
	} `json:"properties"`
}

func toGroupWire(g identity.Group) groupWire {
	var out groupWire
	out.ID, out.Name, out.Type = pGroups+"/"+g.ObjectID, g.ObjectID, "Custos.Directory/groups"
	out.Properties.DisplayName, out.Properties.Description, out.Properties.CreatedDateTime = g.DisplayName, g.Description, wireTime(g.Created)
	return out
}

func (a *API) listGroups(w http.ResponseWriter, r *http.Request) error {
	return writeTenantList(w, r, a.cat.Groups, toGroupWire)
}

func (a *API) getGroup(w http.ResponseWriter, r *http.Request) error {
	t, err := callerTenant(r)
	if err != nil {
		return err
	}
	g, err := a.cat.Group(r.Context(), t, r.PathValue("objectId"))
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, toGroupWire(g))
	return nil
}

// putGroup creates a group; a group that exists is returned unchanged
// (200) when the displayName matches, else 409.
func (a *API) putGroup(w http.ResponseWriter, r *http.Request) error {
	t, err := callerTenant(r)
	if err != nil {
		return err
	}
	id := strings.ToLower(r.PathValue("objectId"))
	if err := requireGUID("objectId", id); err != nil {
		return err
	}
	var req struct {
		Properties *struct {
			DisplayName     string  `json:"displayName"`
			Description     string  `json:"description"`
			CreatedDateTime *string `json:"createdDateTime"`
		} `json:"properties"`
		ID   *string `json:"id"`
		Name *string `json:"name"`
		Type *string `json:"type"`
	}
	if err := api.DecodeJSON(r, &req, a.maxBody); err != nil {
		return err
	}
	if req.Properties == nil {
		return catalog.Invalid("InvalidRequestContent", "properties", "The request needs properties.")
	}
	if cur, err := a.cat.Group(r.Context(), t, id); err == nil && cur.ObjectID == id {
		if !strings.EqualFold(cur.DisplayName, strings.TrimSpace(req.Properties.DisplayName)) || cur.Description != req.Properties.Description {
			return catalog.Invalid("PropertyChangeNotAllowed", "properties", "A group's displayName and description cannot be changed.")
		}
		api.WriteJSON(w, http.StatusOK, toGroupWire(cur))
		return nil
	}
	g, err := a.cat.CreateGroup(r.Context(), identity.Group{TenantID: t, ObjectID: id, DisplayName: req.Properties.DisplayName,
		Description: req.Properties.Description}, actor(r))
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusCreated, toGroupWire(g))
	return nil
}

func (a *API) deleteGroup(w http.ResponseWriter, r *http.Request) error {
	t, err := callerTenant(r)
	if err != nil {
		return err
	}
	deleted, err := a.cat.DeleteGroup(r.Context(), t, r.PathValue("objectId"))
	if err != nil {
		return err
	}
	writeDelete(w, deleted)
	return nil
}

type memberWire struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	PrincipalType string `json:"principalType"`
	DisplayName   string `json:"displayName"`
}

func (a *API) listMembers(w http.ResponseWriter, r *http.Request) error {
	t, err := callerTenant(r)
	if err != nil {
		return err
	}
	ms, err := a.cat.GroupMembers(r.Context(), t, r.PathValue("objectId"))
	if err != nil {
		return err
	}
	out := list[memberWire]{Value: []memberWire{}}
	for _, m := range ms {
		out.Value = append(out.Value, memberWire{ID: pGroups + "/" + strings.ToLower(r.PathValue("objectId")) + "/members/" + m.ObjectID,
			Name: m.ObjectID, PrincipalType: string(m.Kind), DisplayName: m.Name})
	}
	api.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) addMember(w http.ResponseWriter, r *http.Request) error {
	t, err := callerTenant(r)
	if err != nil {
		return err
	}
	if r.ContentLength > 0 {
		var ignored map[string]any
		if err := api.DecodeJSON(r, &ignored, a.maxBody); err != nil {
			return err
		}
	}
	gid, mid := strings.ToLower(r.PathValue("objectId")), strings.ToLower(r.PathValue("memberId"))
	if p, ok := api.PrincipalFrom(r.Context()); ok && a.authz != nil {
		d, err := a.authz.CheckSelfMembership(r.Context(), p, mid)
		if err != nil {
			return err
		}
		if !d.Allowed {
			return api.Errorf(http.StatusForbidden, "SelfAssignmentNotAllowed", "%s; another administrator must make this change.", d.Reason)
		}
	}
	m, err := a.cat.AddGroupMember(r.Context(), t, gid, mid, actor(r))
	created := true
	if errors.Is(err, catalog.ErrConflict) {
		ms, lerr := a.cat.GroupMembers(r.Context(), t, gid)
		if lerr != nil {
			return lerr
		}
		for _, x := range ms {
			if x.ObjectID == mid {
				m, err, created = x, nil, false
			}
		}
	}
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	api.WriteJSON(w, status, memberWire{ID: pGroups + "/" + gid + "/members/" + m.ObjectID, Name: m.ObjectID,
		PrincipalType: string(m.Kind), DisplayName: m.Name})
	return nil
}

func (a *API) removeMember(w http.ResponseWriter, r *http.Request) error {
	t, err := callerTenant(r)
	if err != nil {
		return err
	}
	removed, err := a.cat.RemoveGroupMember(r.Context(), t, r.PathValue("objectId"), r.PathValue("memberId"))
	if err != nil {
		return err
	}
	writeDelete(w, removed)
	return nil
}

// ----- service principals -----

type passwordCredentialWire struct {
	KeyID       string `json:"keyId"`
	Hint        string `json:"hint"`
	EndDateTime string `json:"endDateTime"`
	SecretText  string `json:"secretText,omitempty"` // only in the answer that creates it
}

type keyCredentialWire struct {
	KeyID                 string `json:"keyId"`
	DisplayName           string `json:"displayName"`
	Type                  string `json:"type"`
	CustomKeyIdentifier   string `json:"customKeyIdentifier,omitempty"` // base64 SHA-1 thumbprint (x5t) of a certificate
	StartDateTime         string `json:"startDateTime,omitempty"`
	EndDateTime           string `json:"endDateTime,omitempty"`
	CertificateThumbprint string `json:"thumbprintSha256,omitempty"`
}

type spWire struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	Properties struct {
		AppID               string                   `json:"appId"`
		DisplayName         string                   `json:"displayName"`
		PrincipalType       string                   `json:"principalType"`
		AccountEnabled      bool                     `json:"accountEnabled"`
		ResourceID          string                   `json:"resourceId,omitempty"`
		PasswordCredentials []passwordCredentialWire `json:"passwordCredentials"`
		KeyCredentials      []keyCredentialWire      `json:"keyCredentials"`
		CreatedDateTime     string                   `json:"createdDateTime"`
	} `json:"properties"`
}

func toKeyWire(k identity.KeyCredential) keyCredentialWire {
	kw := keyCredentialWire{KeyID: k.KeyID, DisplayName: k.DisplayName, Type: "AsymmetricX509Cert"}
	if len(k.Certificate) == 0 {
		kw.Type = "PublicKey"
	} else {
		kw.CustomKeyIdentifier = base64.StdEncoding.EncodeToString(sha1Sum(k.Certificate))
		kw.CertificateThumbprint = base64.RawURLEncoding.EncodeToString(sha256Sum(k.Certificate))
	}
	if !k.NotBefore.IsZero() {
		kw.StartDateTime = wireTime(k.NotBefore)
	}
	if !k.Expires.IsZero() {
		kw.EndDateTime = wireTime(k.Expires)
	}
	return kw
}

func toSPWire(s catalog.ServicePrincipalInfo) spWire {
	var out spWire
	out.ID, out.Name, out.Type = pSPs+"/"+s.ObjectID, s.ObjectID, "Custos.Directory/servicePrincipals"
	p := &out.Properties
	p.AppID, p.DisplayName, p.PrincipalType, p.AccountEnabled, p.ResourceID = s.AppID, s.DisplayName, string(s.Kind), s.Enabled, s.ResourceID
	if p.PrincipalType == "" {
		p.PrincipalType = string(identity.KindServicePrincipal)
	}
	p.CreatedDateTime = wireTime(s.Created)
	p.PasswordCredentials = []passwordCredentialWire{}
	for _, sec := range s.Secrets {
		p.PasswordCredentials = append(p.PasswordCredentials, passwordCredentialWire{KeyID: sec.KeyID, Hint: sec.Hint, EndDateTime: wireTime(sec.Expires)})
	}
	p.KeyCredentials = []keyCredentialWire{}
	for _, k := range s.Keys {
		p.KeyCredentials = append(p.KeyCredentials, toKeyWire(k))
	}
	return out
}

func (a *API) listSPs(w http.ResponseWriter, r *http.Request) error {
	return writeTenantList(w, r, a.cat.ServicePrincipals, toSPWire)
}

func (a *API) getSP(w http.ResponseWriter, r *http.Request) error {
	t, err := callerTenant(r)
	if err != nil {
		return err
	}
	s, err := a.cat.ServicePrincipalByID(r.Context(), t, r.PathValue("objectId"))
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, toSPWire(s))
	return nil
}

// createSP creates a service principal (application) with one client
// secret, shown once in the answer (passwordCredentials[0].secretText).
func (a *API) createSP(w http.ResponseWriter, r *http.Request) error {
	if err := a.needTokens(); err != nil {
		return err
	}
	t, err := callerTenant(r)
	if err != nil {
		return err
	}
	var req struct {
		DisplayName string `json:"displayName"`
	}
	if err := api.DecodeJSON(r, &req, a.maxBody); err != nil {
		return err
	}
	sp, secret, err := a.tokens.CreateServicePrincipal(r.Context(), t, req.DisplayName)
	if err != nil {
		return identityError(err)
	}
	info, err := a.cat.ServicePrincipalByID(r.Context(), t, sp.ObjectID)
	if err != nil {
		return err
	}
	out := toSPWire(info)
	for i := range out.Properties.PasswordCredentials {
		out.Properties.PasswordCredentials[i].SecretText = secret
	}
	w.Header().Set("Cache-Control", "no-store")
	api.WriteJSON(w, http.StatusCreated, out)
	return nil
}

func (a *API) deleteSP(w http.ResponseWriter, r *http.Request) error {
	t, err := callerTenant(r)
	if err != nil {
		return err
	}
	id := r.PathValue("objectId")
	if s, err := a.cat.ServicePrincipalByID(r.Context(), t, id); err == nil {
		id = s.ObjectID
	}
	if p, ok := api.PrincipalFrom(r.Context()); ok && strings.EqualFold(p.ObjectID, id) {
		return catalog.Invalid("CannotDeleteSelf", "objectId", "A principal cannot delete itself.")
	}
	deleted, err := a.cat.DeleteServicePrincipal(r.Context(), t, id)
	if err != nil {
		return err
	}
	if a.tokens != nil {
		a.tokens.ForgetPrincipals()
	}
	writeDelete(w, deleted)
	return nil
}

func (a *API) spOf(r *http.Request) (string, catalog.ServicePrincipalInfo, error) {
	t, err := callerTenant(r)
	if err != nil {
		return "", catalog.ServicePrincipalInfo{}, err
	}
	s, err := a.cat.ServicePrincipalByID(r.Context(), t, r.PathValue("objectId"))
	if err != nil {
		return "", s, err
	}
	if s.Kind == identity.KindManagedIdentity {
		return "", s, catalog.Invalid("ManagedIdentityCredentials", "objectId", "The credentials of a managed identity are managed by Custos.")
	}
	return t, s, nil
}

func (a *API) addPassword(w http.ResponseWriter, r *http.Request) error {
	if err := a.needTokens(); err != nil {
		return err
	}
	t, s, err := a.spOf(r)
	if err != nil {
		return err
	}
	if r.ContentLength != 0 {
		var req struct{}
		if err := api.DecodeJSON(r, &req, a.maxBody); err != nil {
			return err
		}
	}
	cs, secret, err := a.tokens.AddClientSecret(r.Context(), t, s.AppID)
	if err != nil {
		return identityError(err)
	}
	w.Header().Set("Cache-Control", "no-store")
	api.WriteJSON(w, http.StatusOK, passwordCredentialWire{KeyID: cs.KeyID, Hint: cs.Hint, EndDateTime: wireTime(cs.Expires), SecretText: secret})
	return nil
}

type keyIDRequest struct {
	KeyID string `json:"keyId"`
}

func (a *API) removePassword(w http.ResponseWriter, r *http.Request) error {
	t, s, err := a.spOf(r)
	if err != nil {
		return err
	}
	var req keyIDRequest
	if err := api.DecodeJSON(r, &req, a.maxBody); err != nil {
		return err
	}
	ok, err := a.cat.DeleteClientSecret(r.Context(), t, s.AppID, req.KeyID)
	if err != nil {
		return err
	}
	if !ok {
		return api.Errorf(http.StatusNotFound, "NotFound", "No password credential with keyId '%s'.", truncateText(req.KeyID, 64))
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// addKey registers a certificate's public key: {"certificate": PEM or
// base64 DER, "displayName": "..."}.
func (a *API) addKey(w http.ResponseWriter, r *http.Request) error {
	if err := a.needTokens(); err != nil {
		return err
	}
	t, s, err := a.spOf(r)
	if err != nil {
		return err
	}
	var req struct {
		Certificate string `json:"certificate"`
		DisplayName string `json:"displayName"`
	}
	if err := api.DecodeJSON(r, &req, a.maxBody); err != nil {
		return err
	}
	der, err := certificateDER(req.Certificate)
	if err != nil {
		return err
	}
	k, err := a.tokens.AddCertificate(r.Context(), t, s.AppID, req.DisplayName, der)
	if err != nil {
		return identityError(err)
	}
	api.WriteJSON(w, http.StatusOK, toKeyWire(k))
	return nil
}

// certificateDER accepts one PEM CERTIFICATE block or base64 DER.
func certificateDER(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	bad := catalog.Invalid("InvalidCertificate", "certificate", "The certificate must be one PEM CERTIFICATE block or base64 DER.")
	if s == "" || len(s) > 64<<10 {
		return nil, bad
	}
	if strings.HasPrefix(s, "-----BEGIN") {
		b, rest := pem.Decode([]byte(s))
		if b == nil || b.Type != "CERTIFICATE" || strings.TrimSpace(string(rest)) != "" {
			return nil, bad
		}
		return b.Bytes, nil
	}
	der, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, bad
	}
	return der, nil
}

func (a *API) removeKey(w http.ResponseWriter, r *http.Request) error {
	t, s, err := a.spOf(r)
	if err != nil {
		return err
	}
	var req keyIDRequest
	if err := api.DecodeJSON(r, &req, a.maxBody); err != nil {
		return err
	}
	ok, err := a.cat.DeleteKeyCredential(r.Context(), t, s.AppID, req.KeyID)
	if err != nil {
		return err
	}
	if !ok {
		return api.Errorf(http.StatusNotFound, "NotFound", "No key credential with keyId '%s'.", truncateText(req.KeyID, 64))
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func sha1Sum(b []byte) []byte {
	h := sha1.Sum(b)
	return h[:]
}

func sha256Sum(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}
