package arm

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"strings"
	"time"

	"custos/internal/api"
	"custos/internal/catalog"
	"custos/internal/enroll"
	"custos/internal/identity"
	"custos/internal/rbac"
)

// Actions of machines and managed identities, as Azure names them.
const (
	actionMachineRead   rbac.Action = "Microsoft.HybridCompute/machines/read"
	actionMachineWrite  rbac.Action = "Microsoft.HybridCompute/machines/write"
	actionMachineDelete rbac.Action = "Microsoft.HybridCompute/machines/delete"

	actionUAIRead   rbac.Action = "Microsoft.ManagedIdentity/userAssignedIdentities/read"
	actionUAIWrite  rbac.Action = "Microsoft.ManagedIdentity/userAssignedIdentities/write"
	actionUAIDelete rbac.Action = "Microsoft.ManagedIdentity/userAssignedIdentities/delete"

	actionAssocRead   rbac.Action = "Microsoft.Insights/dataCollectionRuleAssociations/read"
	actionAssocWrite  rbac.Action = "Microsoft.Insights/dataCollectionRuleAssociations/write"
	actionAssocDelete rbac.Action = "Microsoft.Insights/dataCollectionRuleAssociations/delete"
)

// Path patterns of machines, enrollment tokens, user-assigned identities and
// associations.
const (
	pMachinesSub        = pSubscription + "/providers/Microsoft.HybridCompute/machines"
	pMachinesRG         = pResourceGroup + "/providers/Microsoft.HybridCompute/machines"
	pMachine            = pMachinesRG + "/{machineName}"
	pEnrollmentToken    = pResourceGroup + "/providers/Microsoft.HybridCompute/createEnrollmentToken"
	pAgentConfiguration = pMachine + enroll.ConfigurationSuffix
	pUAIsSub            = pSubscription + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities"
	pUAIsRG             = pResourceGroup + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities"
	pUAI                = pUAIsRG + "/{resourceName}"
	pAssocs             = pMachine + "/providers/Microsoft.Insights/dataCollectionRuleAssociations"
	pAssoc              = pAssocs + "/{associationName}"
	pDCRAssocs          = pDCR + "/associations"
)

// machineRoutes are the routes of machines, enrollment, managed identities
// and data collection rule associations.
func (a *API) machineRoutes() []api.Route {
	r := func(method, pattern string, act rbac.Action, scope func(*http.Request) rbac.Scope, h handler) api.Route {
		return api.Route{Method: method, Pattern: pattern, Audience: identity.AudienceManagement, Action: act, Scope: scope, Handler: a.wrap(h)}
	}
	return []api.Route{
		r(http.MethodGet, pMachinesSub, actionMachineRead, a.machineList().scope(a), a.listMachines),
		r(http.MethodGet, pMachinesRG, actionMachineRead, a.machineList().scope(a), a.listMachines),
		r(http.MethodGet, pMachine, actionMachineRead, machineScope, a.getMachine),
		r(http.MethodPatch, pMachine, actionMachineWrite, machineScope, a.patchMachine),
		r(http.MethodDelete, pMachine, actionMachineDelete, machineScope, a.deleteMachine),
		r(http.MethodPost, pEnrollmentToken, actionMachineWrite, resourceGroupScope, a.createEnrollmentToken),
		// The agent's configuration: ingestion-audience tokens of the
		// machine's own identity only (checked in the handler; enrollment
		// grants the identity Reader on its machine).
		{Method: http.MethodGet, Pattern: pAgentConfiguration, Audience: identity.AudienceIngestion, Action: actionMachineRead,
			Scope: machineScope, Handler: a.wrap(a.getAgentConfiguration)},

		r(http.MethodGet, pUAIsSub, actionUAIRead, a.uaiList().scope(a), a.listUAIs),
		r(http.MethodGet, pUAIsRG, actionUAIRead, a.uaiList().scope(a), a.listUAIs),
		r(http.MethodGet, pUAI, actionUAIRead, uaiScope, a.getUAI),
		r(http.MethodPut, pUAI, actionUAIWrite, uaiScope, a.putUAI),
		r(http.MethodDelete, pUAI, actionUAIDelete, uaiScope, a.deleteUAI),

		r(http.MethodGet, pAssocs, actionAssocRead, machineScope, a.listMachineAssociations),
		r(http.MethodGet, pAssoc, actionAssocRead, assocScope, a.getAssociation),
		r(http.MethodPut, pAssoc, actionAssocWrite, assocScope, a.putAssociation),
		r(http.MethodDelete, pAssoc, actionAssocDelete, assocScope, a.deleteAssociation),
		r(http.MethodGet, pDCRAssocs, actionAssocRead, dcrScope, a.listDCRAssociations),
	}
}

func machineID(r *http.Request) string {
	return catalog.MachineResourceID(r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"), r.PathValue("machineName"))
}

func machineScope(r *http.Request) rbac.Scope { return rbac.Scope(machineID(r)) }

func uaiScope(r *http.Request) rbac.Scope {
	return rbac.Scope(catalog.UserAssignedIdentityResourceID(r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"),
		r.PathValue("resourceName")))
}

func assocScope(r *http.Request) rbac.Scope {
	return rbac.Scope(machineID(r) + "/providers/" + catalog.TypeDCRAssociation + "/" + r.PathValue("associationName"))
}

// machineWire is a machine as Microsoft.HybridCompute returns it, with the
// system-assigned identity's client ID and enabled flag added.
type machineWire struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags"`
	Identity   machineIdentity   `json:"identity"`
	Properties machineProps      `json:"properties"`
	SystemData *systemData       `json:"systemData,omitempty"`
}

type machineIdentity struct {
	Type        string `json:"type"`
	PrincipalID string `json:"principalId"`
	TenantID    string `json:"tenantId"`
	ClientID    string `json:"clientId"`
}

type machineProps struct {
	ProvisioningState string `json:"provisioningState"`
	Status            string `json:"status"`
	DisplayName       string `json:"displayName"`
	MachineFqdn       string `json:"machineFqdn"`
	OSType            string `json:"osType,omitempty"`
	OSName            string `json:"osName,omitempty"`
	OSVersion         string `json:"osVersion,omitempty"`
	AgentVersion      string `json:"agentVersion,omitempty"`
	// IdentityEnabled is Custos's: false while the identity is disabled.
	IdentityEnabled bool `json:"identityEnabled"`
}

func toMachineWire(m *catalog.Machine) machineWire {
	tags := m.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	status := "Connected"
	if !m.IdentityEnabled {
		status = "Disconnected"
	}
	return machineWire{
		ID: m.ID(), Name: m.Name, Type: catalog.TypeMachine, Location: m.Location, Tags: tags,
		Identity: machineIdentity{Type: "SystemAssigned", PrincipalID: m.PrincipalID, TenantID: m.TenantID, ClientID: m.ClientID},
		Properties: machineProps{ProvisioningState: "Succeeded", Status: status, DisplayName: enroll.ShortHostname(m.Hostname),
			MachineFqdn: m.Hostname, OSType: m.OSType, OSName: m.OSName, OSVersion: m.OSVersion, AgentVersion: m.AgentVersion,
			IdentityEnabled: m.IdentityEnabled},
		SystemData: toSystemData(m.Audit),
	}
}

// machineList lists the machines below the path's subscription or resource
// group that the caller may read.
func (a *API) machineList() filteredList[catalog.Machine] {
	return filteredList[catalog.Machine]{act: actionMachineRead, id: (*catalog.Machine).ID,
		load: func(r *http.Request) ([]catalog.Machine, error) {
			return a.cat.Machines(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"))
		}}
}

func (a *API) listMachines(w http.ResponseWriter, r *http.Request) error {
	return writeFilteredList(a, w, r, a.machineList(), toMachineWire)
}

func (a *API) getMachine(w http.ResponseWriter, r *http.Request) error {
	m, err := a.cat.Machine(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"), r.PathValue("machineName"))
	if err != nil {
		return err
	}
	writeGet(w, m.ETag, toMachineWire(&m))
	return nil
}

// machinePatch is a machine PATCH body: tags, and whether the identity is
// enabled (disabling it makes its tokens stop working).
type machinePatch struct {
	Tags       *map[string]string `json:"tags"`
	Properties *struct {
		IdentityEnabled *bool `json:"identityEnabled"`
	} `json:"properties"`
}

func (a *API) patchMachine(w http.ResponseWriter, r *http.Request) error {
	var req machinePatch
	if err := api.DecodeJSON(r, &req, a.maxBody); err != nil {
		return err
	}
	u := catalog.MachineUpdate{Tags: req.Tags}
	if req.Properties != nil {
		u.IdentityEnabled = req.Properties.IdentityEnabled
	}
	m, err := a.cat.UpdateMachine(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"), r.PathValue("machineName"),
		u, precondition(r), actor(r))
	if err != nil {
		return err
	}
	writeGet(w, m.ETag, toMachineWire(&m))
	return nil
}

func (a *API) deleteMachine(w http.ResponseWriter, r *http.Request) error {
	deleted, err := a.cat.DeleteMachine(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"),
		r.PathValue("machineName"), precondition(r))
	if err != nil {
		return err
	}
	writeDelete(w, deleted)
	return nil
}

// enrollmentTokenRequest is the optional body of createEnrollmentToken.
type enrollmentTokenRequest struct {
	// ExpiresInSeconds is the token's lifetime (default 3600, 60 to 604800).
	ExpiresInSeconds *int64 `json:"expiresInSeconds"`
}

// enrollmentTokenWire is the answer: the token is shown once.
type enrollmentTokenWire struct {
	ID                 string `json:"id"`
	Token              string `json:"token"`
	ResourceGroupID    string `json:"resourceGroupId"`
	ExpiresOn          string `json:"expiresOn"`
	EnrollmentEndpoint string `json:"enrollmentEndpoint"`
}

func (a *API) createEnrollmentToken(w http.ResponseWriter, r *http.Request) error {
	return a.writeEnrollmentToken(w, r, a.cat.CreateEnrollmentToken, enroll.Path)
}

// writeEnrollmentToken serves POST …/createEnrollmentToken for machines and
// connected clusters: it reads the optional lifetime, stores the hash of a
// new one-time token with create, and answers the token (shown once) with
// the enrollment endpoint (the server's base URL plus path).
func (a *API) writeEnrollmentToken(w http.ResponseWriter, r *http.Request,
	create func(ctx context.Context, sub, rg string, hash []byte, expires time.Time, by catalog.Actor) (catalog.EnrollmentToken, error),
	path string) error {
	var req enrollmentTokenRequest
	if r.ContentLength != 0 {
		body, err := readBody(r, a.maxBody)
		if err != nil {
			return err
		}
		if len(strings.TrimSpace(string(body))) > 0 {
			if err := api.UnmarshalStrict(body, &req); err != nil {
				return err
			}
		}
	}
	life := identity.DefaultEnrollmentTokenLifetime
	if req.ExpiresInSeconds != nil {
		life = time.Duration(*req.ExpiresInSeconds) * time.Second
		if life < identity.MinEnrollmentTokenLifetime || life > identity.MaxEnrollmentTokenLifetime {
			return catalog.Invalid("InvalidParameter", "expiresInSeconds",
				"The property 'expiresInSeconds' must be between %d and %d.", int64(identity.MinEnrollmentTokenLifetime.Seconds()),
				int64(identity.MaxEnrollmentTokenLifetime.Seconds()))
		}
	}
	tok, hash, err := identity.NewEnrollmentToken(rand.Reader)
	if err != nil {
		return err
	}
	et, err := create(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"), hash, time.Now().Add(life), actor(r))
	if err != nil {
		return err
	}
	base := a.endpoint
	if base == "" {
		base = "https://" + r.Host
	}
	w.Header().Set("Cache-Control", "no-store")
	api.WriteJSON(w, http.StatusOK, enrollmentTokenWire{ID: et.ID, Token: tok,
		ResourceGroupID: catalog.ResourceGroupResourceID(et.SubscriptionID, et.ResourceGroup),
		ExpiresOn:       et.Expires.UTC().Format(time.RFC3339), EnrollmentEndpoint: base + path})
	return nil
}

// readBody reads a request body up to maxBytes (api.DefaultMaxBodyBytes when 0).
func readBody(r *http.Request, maxBytes int64) ([]byte, error) {
	if maxBytes <= 0 {
		maxBytes = api.DefaultMaxBodyBytes
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBytes+1))
	if err != nil {
		return nil, api.Errorf(http.StatusBadRequest, "InvalidRequestContent", "The request body could not be read.")
	}
	if int64(len(data)) > maxBytes {
		return nil, api.Errorf(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "The request body exceeds the limit of %d bytes.", maxBytes)
	}
	return data, nil
}
