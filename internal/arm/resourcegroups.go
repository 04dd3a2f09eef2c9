package arm

import (
	"errors"
	"net/http"
	"strings"

	"custos/internal/api"
	"custos/internal/catalog"
	"custos/internal/rbac"
)

// resourceGroupWire is a resource group as ARM returns it.
type resourceGroupWire struct {
	ID         string                 `json:"id"`
	Name       string                 `json:"name"`
	Type       string                 `json:"type"`
	Location   string                 `json:"location"`
	ManagedBy  string                 `json:"managedBy,omitempty"`
	Tags       map[string]string      `json:"tags"`
	Properties resourceGroupPropsWire `json:"properties"`
}

type resourceGroupPropsWire struct {
	ProvisioningState string `json:"provisioningState"`
}

// resourceGroupRequest is a resource group PUT body; read-only properties of
// a GET response are accepted and ignored.
type resourceGroupRequest struct {
	Location   string            `json:"location"`
	ManagedBy  string            `json:"managedBy"`
	Tags       map[string]string `json:"tags"`
	Properties *struct {
		ProvisioningState *string `json:"provisioningState"`
	} `json:"properties"`

	ID   *string `json:"id"`
	Name *string `json:"name"`
	Type *string `json:"type"`
}

func toResourceGroupWire(g *catalog.ResourceGroup) resourceGroupWire {
	tags := g.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return resourceGroupWire{
		ID: g.ID(), Name: g.Name, Type: catalog.TypeResourceGroup, Location: g.Location, ManagedBy: g.ManagedBy, Tags: tags,
		Properties: resourceGroupPropsWire{ProvisioningState: "Succeeded"},
	}
}

// resourceGroupList lists the subscription's resource groups that the
// caller may read.
func (a *API) resourceGroupList() filteredList[catalog.ResourceGroup] {
	return filteredList[catalog.ResourceGroup]{act: rbac.ActionResourceGroupRead, id: (*catalog.ResourceGroup).ID,
		load: func(r *http.Request) ([]catalog.ResourceGroup, error) {
			return a.cat.ResourceGroups(r.Context(), r.PathValue("subscriptionId"))
		}}
}

func (a *API) listResourceGroups(w http.ResponseWriter, r *http.Request) error {
	return writeFilteredList(a, w, r, a.resourceGroupList(), toResourceGroupWire)
}

func (a *API) getResourceGroup(w http.ResponseWriter, r *http.Request) error {
	g, err := a.cat.ResourceGroup(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"))
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, toResourceGroupWire(&g))
	return nil
}

func (a *API) putResourceGroup(w http.ResponseWriter, r *http.Request) error {
	var req resourceGroupRequest
	if err := api.DecodeJSON(r, &req, a.maxBody); err != nil {
		return err
	}
	g, created, err := a.cat.PutResourceGroup(r.Context(), catalog.ResourceGroup{
		SubscriptionID: r.PathValue("subscriptionId"), Name: r.PathValue("resourceGroupName"),
		Location: req.Location, ManagedBy: req.ManagedBy, Tags: req.Tags,
	})
	if err != nil {
		return err
	}
	writePut(w, created, "", toResourceGroupWire(&g))
	return nil
}

// deleteResourceGroup deletes a resource group. Unlike Azure, which deletes
// the contents, Custos refuses (409 ResourceGroupNotEmpty) unless
// forceDeletionTypes lists every resource type the group still contains
// (comma-separated, e.g.
// "Microsoft.OperationalInsights/workspaces,Microsoft.Insights/dataCollectionRules", or "*").
func (a *API) deleteResourceGroup(w http.ResponseWriter, r *http.Request) error {
	var force []string
	if f := r.URL.Query().Get("forceDeletionTypes"); f != "" {
		force = strings.Split(f, ",")
	}
	del, deleted, err := a.cat.DeleteResourceGroup(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"), force)
	if err != nil {
		return err
	}
	if a.tables != nil {
		var errs []error
		for _, ws := range del.Workspaces {
			errs = append(errs, a.tables.DropWorkspace(r.Context(), ws.CustomerID))
		}
		if err := a.afterCommit(r, "drop workspaces of resource group", errors.Join(errs...)); err != nil {
			return err
		}
	}
	writeDelete(w, deleted)
	return nil
}
