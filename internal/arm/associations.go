package arm

import (
	"encoding/json"
	"net/http"

	"custos/internal/api"
	"custos/internal/catalog"
)

// assocWire is a data collection rule association as Microsoft.Insights
// returns it.
type assocWire struct {
	ID         string      `json:"id"`
	Name       string      `json:"name"`
	Type       string      `json:"type"`
	Etag       string      `json:"etag"`
	Properties assocProps  `json:"properties"`
	SystemData *systemData `json:"systemData,omitempty"`
}

type assocProps struct {
	DataCollectionRuleID string `json:"dataCollectionRuleId"`
	Description          string `json:"description,omitempty"`
	ProvisioningState    string `json:"provisioningState"`
}

// assocRequest is a PUT body; read-only members of a GET answer are accepted.
type assocRequest struct {
	Properties *struct {
		DataCollectionRuleID     string          `json:"dataCollectionRuleId"`
		DataCollectionEndpointID *string         `json:"dataCollectionEndpointId"`
		Description              string          `json:"description"`
		ProvisioningState        *string         `json:"provisioningState"`
		Metadata                 json.RawMessage `json:"metadata"`
	} `json:"properties"`

	ID         *string         `json:"id"`
	Name       *string         `json:"name"`
	Type       *string         `json:"type"`
	Etag       *string         `json:"etag"`
	SystemData json.RawMessage `json:"systemData"`
}

func toAssocWire(x *catalog.DCRAssociation) assocWire {
	return assocWire{ID: x.ID(), Name: x.Name, Type: catalog.TypeDCRAssociation, Etag: x.ETag,
		Properties: assocProps{DataCollectionRuleID: x.DataCollectionRuleID, Description: x.Description, ProvisioningState: "Succeeded"},
		SystemData: toSystemData(x.Audit)}
}

func writeAssocs(w http.ResponseWriter, as []catalog.DCRAssociation) {
	out := list[assocWire]{Value: []assocWire{}}
	for i := range as {
		out.Value = append(out.Value, toAssocWire(&as[i]))
	}
	api.WriteJSON(w, http.StatusOK, out)
}

func (a *API) listMachineAssociations(w http.ResponseWriter, r *http.Request) error {
	as, err := a.cat.DCRAssociationsForResource(r.Context(), machineID(r))
	if err != nil {
		return err
	}
	writeAssocs(w, as)
	return nil
}

func (a *API) listDCRAssociations(w http.ResponseWriter, r *http.Request) error {
	as, err := a.cat.DCRAssociationsForRule(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"),
		r.PathValue("dataCollectionRuleName"))
	if err != nil {
		return err
	}
	writeAssocs(w, as)
	return nil
}

func (a *API) getAssociation(w http.ResponseWriter, r *http.Request) error {
	x, err := a.cat.DCRAssociation(r.Context(), machineID(r), r.PathValue("associationName"))
	if err != nil {
		return err
	}
	writeGet(w, x.ETag, toAssocWire(&x))
	return nil
}

func (a *API) putAssociation(w http.ResponseWriter, r *http.Request) error {
	var req assocRequest
	if err := api.DecodeJSON(r, &req, a.maxBody); err != nil {
		return err
	}
	if req.Properties == nil || req.Properties.DataCollectionRuleID == "" {
		return catalog.Invalid("InvalidPayload", "properties.dataCollectionRuleId", "The property 'properties.dataCollectionRuleId' is required.")
	}
	if req.Properties.DataCollectionEndpointID != nil && *req.Properties.DataCollectionEndpointID != "" {
		return catalog.Invalid("InvalidPayload", "properties.dataCollectionEndpointId",
			"Data collection endpoint associations are not supported: the Custos server is the endpoint.")
	}
	x, created, err := a.cat.PutDCRAssociation(r.Context(), catalog.DCRAssociation{
		ResourceID: machineID(r), Name: r.PathValue("associationName"),
		DataCollectionRuleID: req.Properties.DataCollectionRuleID, Description: req.Properties.Description,
	}, precondition(r), actor(r))
	if err != nil {
		return err
	}
	writePut(w, created, x.ETag, toAssocWire(&x))
	return nil
}

func (a *API) deleteAssociation(w http.ResponseWriter, r *http.Request) error {
	deleted, err := a.cat.DeleteDCRAssociation(r.Context(), machineID(r), r.PathValue("associationName"), precondition(r))
	if err != nil {
		return err
	}
	writeDelete(w, deleted)
	return nil
}
