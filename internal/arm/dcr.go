package arm

import (
	"encoding/json"
	"net/http"

	"custos/internal/api"
	"custos/internal/catalog"
	"custos/internal/rbac"
)

// dcrWire is a data collection rule as Microsoft.Insights returns it.
type dcrWire struct {
	ID         string                `json:"id"`
	Name       string                `json:"name"`
	Type       string                `json:"type"`
	Location   string                `json:"location"`
	Tags       map[string]string     `json:"tags"`
	Kind       string                `json:"kind,omitempty"`
	Identity   json.RawMessage       `json:"identity,omitempty"`
	Etag       string                `json:"etag"`
	Properties catalog.DCRProperties `json:"properties"`
	SystemData *systemData           `json:"systemData,omitempty"`
}

// dcrRequest is a data collection rule PUT body. Unknown properties are
// rejected; read-only ones are accepted and ignored (immutableId must match).
type dcrRequest struct {
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags"`
	Kind       string            `json:"kind"`
	Identity   json.RawMessage   `json:"identity"`
	Properties *dcrPropsRequest  `json:"properties"`

	ID         *string         `json:"id"`
	Name       *string         `json:"name"`
	Type       *string         `json:"type"`
	Etag       *string         `json:"etag"`
	SystemData json.RawMessage `json:"systemData"`
}

type dcrPropsRequest struct {
	Description              string                               `json:"description"`
	DataCollectionEndpointID string                               `json:"dataCollectionEndpointId"`
	StreamDeclarations       map[string]catalog.StreamDeclaration `json:"streamDeclarations"`
	DataSources              map[string][]json.RawMessage         `json:"dataSources"`
	Destinations             *catalog.DCRDestinations             `json:"destinations"`
	DataFlows                []catalog.DataFlow                   `json:"dataFlows"`

	ImmutableID       *string         `json:"immutableId"`
	Endpoints         json.RawMessage `json:"endpoints"`
	ProvisioningState *string         `json:"provisioningState"`
	Metadata          json.RawMessage `json:"metadata"`
}

func toDCRWire(d *catalog.DataCollectionRule) dcrWire {
	tags := d.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return dcrWire{
		ID: d.ID(), Name: d.Name, Type: catalog.TypeDataCollectionRule, Location: d.Location, Tags: tags, Kind: d.Kind,
		Identity: d.Identity, Etag: d.ETag, Properties: d.Properties, SystemData: toSystemData(d.Audit),
	}
}

// dcrList lists the data collection rules below the path's subscription or
// resource group that the caller may read.
func (a *API) dcrList() filteredList[catalog.DataCollectionRule] {
	return filteredList[catalog.DataCollectionRule]{act: rbac.ActionDCRRead, id: (*catalog.DataCollectionRule).ID,
		load: func(r *http.Request) ([]catalog.DataCollectionRule, error) {
			return a.cat.DataCollectionRules(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"))
		}}
}

func (a *API) listDCRs(w http.ResponseWriter, r *http.Request) error {
	return writeFilteredList(a, w, r, a.dcrList(), toDCRWire)
}

func (a *API) getDCR(w http.ResponseWriter, r *http.Request) error {
	d, err := a.cat.DataCollectionRule(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"), r.PathValue("dataCollectionRuleName"))
	if err != nil {
		return err
	}
	writeGet(w, d.ETag, toDCRWire(&d))
	return nil
}

func (a *API) putDCR(w http.ResponseWriter, r *http.Request) error {
	var req dcrRequest
	if err := api.DecodeJSON(r, &req, a.maxBody); err != nil {
		return err
	}
	d, err := a.validateDCR(r.Context(), &req)
	if err != nil {
		return err
	}
	d.SubscriptionID, d.ResourceGroup, d.Name = r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"), r.PathValue("dataCollectionRuleName")
	saved, created, err := a.cat.PutDataCollectionRule(r.Context(), d, precondition(r), actor(r))
	if err != nil {
		return err
	}
	writePut(w, created, saved.ETag, toDCRWire(&saved))
	return nil
}

func (a *API) deleteDCR(w http.ResponseWriter, r *http.Request) error {
	_, deleted, err := a.cat.DeleteDataCollectionRule(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"),
		r.PathValue("dataCollectionRuleName"), precondition(r))
	if err != nil {
		return err
	}
	writeDelete(w, deleted)
	return nil
}
