package arm

import (
	"encoding/json"
	"net/http"

	"custos/internal/api"
	"custos/internal/catalog"
)

// uaiWire is a user-assigned identity as Microsoft.ManagedIdentity returns it.
type uaiWire struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags"`
	Properties uaiProps          `json:"properties"`
	SystemData *systemData       `json:"systemData,omitempty"`
}

type uaiProps struct {
	TenantID    string `json:"tenantId"`
	PrincipalID string `json:"principalId"`
	ClientID    string `json:"clientId"`
}

// uaiRequest is a PUT body. Read-only properties of a GET answer are
// accepted and ignored.
type uaiRequest struct {
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags"`
	Properties json.RawMessage   `json:"properties"`

	ID         *string         `json:"id"`
	Name       *string         `json:"name"`
	Type       *string         `json:"type"`
	SystemData json.RawMessage `json:"systemData"`
}

func toUAIWire(u *catalog.UserAssignedIdentity) uaiWire {
	tags := u.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return uaiWire{ID: u.ID(), Name: u.Name, Type: catalog.TypeUserAssignedIdentity, Location: u.Location, Tags: tags,
		Properties: uaiProps{TenantID: u.TenantID, PrincipalID: u.PrincipalID, ClientID: u.ClientID}, SystemData: toSystemData(u.Audit)}
}

// uaiList lists the user-assigned identities below the path's subscription
// or resource group that the caller may read.
func (a *API) uaiList() filteredList[catalog.UserAssignedIdentity] {
	return filteredList[catalog.UserAssignedIdentity]{act: actionUAIRead, id: (*catalog.UserAssignedIdentity).ID,
		load: func(r *http.Request) ([]catalog.UserAssignedIdentity, error) {
			return a.cat.UserAssignedIdentities(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"))
		}}
}

func (a *API) listUAIs(w http.ResponseWriter, r *http.Request) error {
	return writeFilteredList(a, w, r, a.uaiList(), toUAIWire)
}

func (a *API) getUAI(w http.ResponseWriter, r *http.Request) error {
	u, err := a.cat.UserAssignedIdentity(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"), r.PathValue("resourceName"))
	if err != nil {
		return err
	}
	writeGet(w, u.ETag, toUAIWire(&u))
	return nil
}

func (a *API) putUAI(w http.ResponseWriter, r *http.Request) error {
	var req uaiRequest
	if err := api.DecodeJSON(r, &req, a.maxBody); err != nil {
		return err
	}
	u, created, err := a.cat.PutUserAssignedIdentity(r.Context(), catalog.UserAssignedIdentity{
		SubscriptionID: r.PathValue("subscriptionId"), ResourceGroup: r.PathValue("resourceGroupName"), Name: r.PathValue("resourceName"),
		Location: req.Location, Tags: req.Tags,
	}, precondition(r), actor(r))
	if err != nil {
		return err
	}
	writePut(w, created, u.ETag, toUAIWire(&u))
	return nil
}

func (a *API) deleteUAI(w http.ResponseWriter, r *http.Request) error {
	deleted, err := a.cat.DeleteUserAssignedIdentity(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"),
		r.PathValue("resourceName"), precondition(r))
	if err != nil {
		return err
	}
	writeDelete(w, deleted)
	return nil
}
