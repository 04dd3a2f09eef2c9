package arm

import (
	"encoding/json"
	"net/http"

	"custos/internal/api"
	"custos/internal/catalog"
	"custos/internal/identity"
	"custos/internal/rbac"
)

// Diagnostic settings on a workspace (Microsoft.Insights/diagnosticSettings,
// api-version 2021-05-01-preview): the Audit category routes the query
// audit to the LAQueryLogs table of a destination workspace.
const (
	pDiagSettings = pWorkspace + "/providers/Microsoft.Insights/diagnosticSettings"
	pDiagSetting  = pDiagSettings + "/{diagnosticSettingName}"

	actionDiagRead   rbac.Action = "Microsoft.Insights/diagnosticSettings/read"
	actionDiagWrite  rbac.Action = "Microsoft.Insights/diagnosticSettings/write"
	actionDiagDelete rbac.Action = "Microsoft.Insights/diagnosticSettings/delete"
)

// diagnosticSettingRoutes are the routes of the workspace's diagnostic
// settings, authorized at the workspace.
func (a *API) diagnosticSettingRoutes() []api.Route {
	r := func(method, pattern string, act rbac.Action, h handler) api.Route {
		return api.Route{Method: method, Pattern: pattern, Audience: identity.AudienceManagement, Action: act,
			Scope: workspaceScope, Handler: a.wrap(h)}
	}
	return []api.Route{
		r(http.MethodGet, pDiagSettings, actionDiagRead, a.listDiagnosticSettings),
		r(http.MethodGet, pDiagSetting, actionDiagRead, a.getDiagnosticSetting),
		r(http.MethodPut, pDiagSetting, actionDiagWrite, a.putDiagnosticSetting),
		r(http.MethodDelete, pDiagSetting, actionDiagDelete, a.deleteDiagnosticSetting),
	}
}

type diagRetention struct {
	Enabled bool `json:"enabled"`
	Days    int  `json:"days"`
}

type diagLogWire struct {
	Category        *string        `json:"category"`
	CategoryGroup   *string        `json:"categoryGroup"`
	Enabled         bool           `json:"enabled"`
	RetentionPolicy *diagRetention `json:"retentionPolicy,omitempty"`
}

type diagProps struct {
	WorkspaceID                 string        `json:"workspaceId"`
	Logs                        []diagLogWire `json:"logs"`
	Metrics                     []any         `json:"metrics"`
	LogAnalyticsDestinationType *string       `json:"logAnalyticsDestinationType"`
}

type diagWire struct {
	ID         string      `json:"id"`
	Name       string      `json:"name"`
	Type       string      `json:"type"`
	Properties diagProps   `json:"properties"`
	SystemData *systemData `json:"systemData,omitempty"`
}

// diagRequest is a PUT body. Destinations other than a workspace are
// refused; read-only members of a GET answer are accepted.
type diagRequest struct {
	Properties *struct {
		WorkspaceID string        `json:"workspaceId"`
		Logs        []diagLogWire `json:"logs"`
		Metrics     []struct {
			Category        *string        `json:"category"`
			TimeGrain       *string        `json:"timeGrain"`
			Enabled         bool           `json:"enabled"`
			RetentionPolicy *diagRetention `json:"retentionPolicy"`
		} `json:"metrics"`
		LogAnalyticsDestinationType *string `json:"logAnalyticsDestinationType"`
		StorageAccountID            *string `json:"storageAccountId"`
		ServiceBusRuleID            *string `json:"serviceBusRuleId"`
		EventHubAuthorizationRuleID *string `json:"eventHubAuthorizationRuleId"`
		EventHubName                *string `json:"eventHubName"`
		MarketplacePartnerID        *string `json:"marketplacePartnerId"`
	} `json:"properties"`

	ID         *string         `json:"id"`
	Name       *string         `json:"name"`
	Type       *string         `json:"type"`
	SystemData json.RawMessage `json:"systemData"`
}

func toDiagWire(d *catalog.DiagnosticSetting) diagWire {
	p := diagProps{WorkspaceID: d.WorkspaceID, Logs: []diagLogWire{}, Metrics: []any{}}
	for _, l := range d.Logs {
		lw := diagLogWire{Enabled: l.Enabled, RetentionPolicy: &diagRetention{}}
		if l.Category != "" {
			c := l.Category
			lw.Category = &c
		}
		if l.CategoryGroup != "" {
			g := l.CategoryGroup
			lw.CategoryGroup = &g
		}
		p.Logs = append(p.Logs, lw)
	}
	return diagWire{ID: d.ID(), Name: d.Name, Type: catalog.TypeDiagnosticSetting, Properties: p, SystemData: toSystemData(d.Audit)}
}

func diagWorkspaceID(r *http.Request) string { return string(workspaceScope(r)) }

func (a *API) listDiagnosticSettings(w http.ResponseWriter, r *http.Request) error {
	ds, err := a.cat.DiagnosticSettings(r.Context(), diagWorkspaceID(r))
	if err != nil {
		return err
	}
	out := list[diagWire]{Value: []diagWire{}}
	for i := range ds {
		out.Value = append(out.Value, toDiagWire(&ds[i]))
	}
	api.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) getDiagnosticSetting(w http.ResponseWriter, r *http.Request) error {
	d, err := a.cat.DiagnosticSetting(r.Context(), diagWorkspaceID(r), r.PathValue("diagnosticSettingName"))
	if err != nil {
		return err
	}
	writeGet(w, "", toDiagWire(&d))
	return nil
}

func (a *API) putDiagnosticSetting(w http.ResponseWriter, r *http.Request) error {
	var req diagRequest
	if err := api.DecodeJSON(r, &req, a.maxBody); err != nil {
		return err
	}
	p := req.Properties
	if p == nil || p.WorkspaceID == "" {
		return catalog.Invalid("BadRequest", "properties.workspaceId",
			"The property 'properties.workspaceId' is required: Custos sends diagnostic logs to a Log Analytics workspace only.")
	}
	for _, s := range []struct {
		v    *string
		name string
	}{{p.StorageAccountID, "storageAccountId"}, {p.ServiceBusRuleID, "serviceBusRuleId"},
		{p.EventHubAuthorizationRuleID, "eventHubAuthorizationRuleId"}, {p.EventHubName, "eventHubName"},
		{p.MarketplacePartnerID, "marketplacePartnerId"}} {
		if s.v != nil && *s.v != "" {
			return catalog.Invalid("BadRequest", "properties."+s.name,
				"The destination '%s' is not supported: Custos sends diagnostic logs to a Log Analytics workspace only.", s.name)
		}
	}
	for _, m := range p.Metrics {
		if m.Enabled {
			return catalog.Invalid("BadRequest", "properties.metrics", "A workspace has no diagnostic metrics in Custos.")
		}
	}
	d := catalog.DiagnosticSetting{ResourceID: diagWorkspaceID(r), Name: r.PathValue("diagnosticSettingName"), WorkspaceID: p.WorkspaceID}
	for _, l := range p.Logs {
		var e catalog.DiagnosticLog
		if l.Category != nil {
			e.Category = *l.Category
		}
		if l.CategoryGroup != nil {
			e.CategoryGroup = *l.CategoryGroup
		}
		e.Enabled = l.Enabled
		d.Logs = append(d.Logs, e)
	}
	out, created, err := a.cat.PutDiagnosticSetting(r.Context(), d, actor(r))
	if err != nil {
		return err
	}
	writePut(w, created, "", toDiagWire(&out))
	return nil
}

func (a *API) deleteDiagnosticSetting(w http.ResponseWriter, r *http.Request) error {
	deleted, err := a.cat.DeleteDiagnosticSetting(r.Context(), diagWorkspaceID(r), r.PathValue("diagnosticSettingName"))
	if err != nil {
		return err
	}
	writeDelete(w, deleted)
	return nil
}
