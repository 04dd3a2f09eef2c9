package arm

import (
	"encoding/json"
	"errors"
	"net/http"

	"custos/internal/api"
	"custos/internal/catalog"
	"custos/internal/rbac"
)

// workspaceWire is a workspace as the Microsoft.OperationalInsights API
// returns it.
type workspaceWire struct {
	ID         string             `json:"id"`
	Name       string             `json:"name"`
	Type       string             `json:"type"`
	Location   string             `json:"location"`
	Tags       map[string]string  `json:"tags"`
	Etag       string             `json:"etag"`
	Properties workspacePropsWire `json:"properties"`
	SystemData *systemData        `json:"systemData,omitempty"`
}

type workspacePropsWire struct {
	CustomerID                      string                `json:"customerId"`
	ProvisioningState               string                `json:"provisioningState"`
	Sku                             workspaceSkuWire      `json:"sku"`
	RetentionInDays                 int                   `json:"retentionInDays"`
	WorkspaceCapping                workspaceCappingWire  `json:"workspaceCapping"`
	Features                        workspaceFeaturesWire `json:"features"`
	PublicNetworkAccessForIngestion string                `json:"publicNetworkAccessForIngestion"`
	PublicNetworkAccessForQuery     string                `json:"publicNetworkAccessForQuery"`
	CreatedDate                     string                `json:"createdDate"`
	ModifiedDate                    string                `json:"modifiedDate"`
}

type workspaceSkuWire struct {
	Name string `json:"name"`
}

type workspaceCappingWire struct {
	DailyQuotaGb        float64 `json:"dailyQuotaGb"`
	DataIngestionStatus string  `json:"dataIngestionStatus"`
}

type workspaceFeaturesWire struct {
	EnableLogAccessUsingOnlyResourcePermissions bool `json:"enableLogAccessUsingOnlyResourcePermissions"`
	DisableLocalAuth                            bool `json:"disableLocalAuth"`
	Legacy                                      int  `json:"legacy"`
	SearchVersion                               int  `json:"searchVersion"`
}

// workspaceRequest is a workspace PUT body. Unknown properties are rejected;
// read-only properties of a GET response are accepted, and customerId must
// then match.
type workspaceRequest struct {
	Location   string                 `json:"location"`
	Tags       map[string]string      `json:"tags"`
	Properties *workspacePropsRequest `json:"properties"`

	ID         *string         `json:"id"`
	Name       *string         `json:"name"`
	Type       *string         `json:"type"`
	Etag       *string         `json:"etag"`
	SystemData json.RawMessage `json:"systemData"`
}

type workspacePropsRequest struct {
	Sku *struct {
		Name          string  `json:"name"`
		LastSkuUpdate *string `json:"lastSkuUpdate"`
	} `json:"sku"`
	RetentionInDays  *int `json:"retentionInDays"`
	WorkspaceCapping *struct {
		DailyQuotaGb        *float64 `json:"dailyQuotaGb"`
		QuotaNextResetTime  *string  `json:"quotaNextResetTime"`
		DataIngestionStatus *string  `json:"dataIngestionStatus"`
	} `json:"workspaceCapping"`
	Features *struct {
		EnableLogAccessUsingOnlyResourcePermissions *bool `json:"enableLogAccessUsingOnlyResourcePermissions"`
		DisableLocalAuth                            *bool `json:"disableLocalAuth"`
		Legacy                                      *int  `json:"legacy"`
		SearchVersion                               *int  `json:"searchVersion"`
	} `json:"features"`
	PublicNetworkAccessForIngestion string `json:"publicNetworkAccessForIngestion"`
	PublicNetworkAccessForQuery     string `json:"publicNetworkAccessForQuery"`

	CustomerID        *string `json:"customerId"`
	ProvisioningState *string `json:"provisioningState"`
	CreatedDate       *string `json:"createdDate"`
	ModifiedDate      *string `json:"modifiedDate"`
}

// decodeWorkspace turns a PUT body into the catalog's workspace. Omitted
// properties take their defaults (PUT replaces); new workspaces use resource
// permissions for log access unless told otherwise, as Azure does.
func decodeWorkspace(req *workspaceRequest) (catalog.Workspace, error) {
	w := catalog.Workspace{Location: req.Location, Tags: req.Tags, EnableLogAccessUsingOnlyResourcePermissions: true}
	p := req.Properties
	if p == nil {
		return w, nil
	}
	if p.Sku != nil {
		w.SKU = p.Sku.Name
	}
	if p.RetentionInDays != nil {
		if *p.RetentionInDays == 0 { // explicit 0 is out of range, not "default"
			return w, catalog.Invalid("InvalidParameter", "properties.retentionInDays",
				"The retentionInDays value 0 is out of range: it must be between %d and %d days.", catalog.MinRetentionInDays, catalog.MaxRetentionInDays)
		}
		w.RetentionInDays = *p.RetentionInDays
	}
	if p.WorkspaceCapping != nil && p.WorkspaceCapping.DailyQuotaGb != nil {
		if *p.WorkspaceCapping.DailyQuotaGb == 0 {
			return w, catalog.Invalid("InvalidParameter", "properties.workspaceCapping.dailyQuotaGb",
				"The dailyQuotaGb value must be -1 (no cap) or a positive number.")
		}
		w.DailyQuotaGB = *p.WorkspaceCapping.DailyQuotaGb
	}
	if f := p.Features; f != nil {
		if f.EnableLogAccessUsingOnlyResourcePermissions != nil {
			w.EnableLogAccessUsingOnlyResourcePermissions = *f.EnableLogAccessUsingOnlyResourcePermissions
		}
		if f.DisableLocalAuth != nil {
			w.DisableLocalAuth = *f.DisableLocalAuth
		}
	}
	w.PublicNetworkAccessForIngestion = p.PublicNetworkAccessForIngestion
	w.PublicNetworkAccessForQuery = p.PublicNetworkAccessForQuery
	if p.CustomerID != nil {
		w.CustomerID = *p.CustomerID
	}
	return w, nil
}

func toWorkspaceWire(w *catalog.Workspace) workspaceWire {
	tags := w.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return workspaceWire{
		ID: w.ID(), Name: w.Name, Type: catalog.TypeWorkspace, Location: w.Location, Tags: tags, Etag: w.ETag,
		Properties: workspacePropsWire{
			CustomerID: w.CustomerID, ProvisioningState: w.ProvisioningState, Sku: workspaceSkuWire{Name: w.SKU},
			RetentionInDays:  w.RetentionInDays,
			WorkspaceCapping: workspaceCappingWire{DailyQuotaGb: w.DailyQuotaGB, DataIngestionStatus: "RespectQuota"},
			Features: workspaceFeaturesWire{
				EnableLogAccessUsingOnlyResourcePermissions: w.EnableLogAccessUsingOnlyResourcePermissions,
				DisableLocalAuth: w.DisableLocalAuth, SearchVersion: 1,
			},
			PublicNetworkAccessForIngestion: w.PublicNetworkAccessForIngestion,
			PublicNetworkAccessForQuery:     w.PublicNetworkAccessForQuery,
			CreatedDate:                     wireTime(w.Audit.CreatedAt), ModifiedDate: wireTime(w.Audit.ModifiedAt),
		},
		SystemData: toSystemData(w.Audit),
	}
}

// workspaceList lists the workspaces below the path's subscription or
// resource group that the caller may read.
func (a *API) workspaceList() filteredList[catalog.Workspace] {
	return filteredList[catalog.Workspace]{act: rbac.ActionWorkspaceRead, id: (*catalog.Workspace).ID,
		load: func(r *http.Request) ([]catalog.Workspace, error) {
			return a.cat.Workspaces(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"))
		}}
}

func (a *API) listWorkspaces(w http.ResponseWriter, r *http.Request) error {
	return writeFilteredList(a, w, r, a.workspaceList(), toWorkspaceWire)
}

func (a *API) getWorkspace(w http.ResponseWriter, r *http.Request) error {
	ws, err := a.cat.Workspace(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"), r.PathValue("workspaceName"))
	if err != nil {
		return err
	}
	writeGet(w, ws.ETag, toWorkspaceWire(&ws))
	return nil
}

func (a *API) putWorkspace(w http.ResponseWriter, r *http.Request) error {
	var req workspaceRequest
	if err := api.DecodeJSON(r, &req, a.maxBody); err != nil {
		return err
	}
	in, err := decodeWorkspace(&req)
	if err != nil {
		return err
	}
	in.SubscriptionID, in.ResourceGroup, in.Name = r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"), r.PathValue("workspaceName")
	if err := a.checkWorkspaceRetentionLocks(r, in); err != nil {
		return err
	}
	ws, created, err := a.cat.PutWorkspace(r.Context(), in, precondition(r), actor(r))
	if err != nil {
		return err
	}
	// New standard tables, and retention changes that tables on the
	// workspace default inherit, reach the store.
	if a.tables != nil {
		tables, err := a.cat.WorkspaceTables(r.Context(), ws.CustomerID)
		if err != nil {
			return a.afterCommit(r, "list workspace tables", err)
		}
		var errs []error
		for i := range tables {
			errs = append(errs, a.ensureTable(r.Context(), &tables[i]))
		}
		if err := a.afterCommit(r, "ensure workspace tables", errors.Join(errs...)); err != nil {
			return err
		}
	}
	writePut(w, created, ws.ETag, toWorkspaceWire(&ws))
	return nil
}

// deleteWorkspace deletes a workspace, its tables and its data at once
// (Azure's force=true; Custos has no soft-delete). The force query parameter
// is accepted for compatibility.
func (a *API) deleteWorkspace(w http.ResponseWriter, r *http.Request) error {
	ws, deleted, err := a.cat.DeleteWorkspace(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"),
		r.PathValue("workspaceName"), precondition(r))
	if err != nil {
		return err
	}
	if deleted && a.tables != nil {
		if err := a.afterCommit(r, "drop workspace", a.tables.DropWorkspace(r.Context(), ws.CustomerID)); err != nil {
			return err
		}
	}
	writeDelete(w, deleted)
	return nil
}
