package query

import (
	"net/http"
	"sort"

	"custos/internal/api"
	"custos/internal/rbac"
)

type metadataColumn struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

type metadataTable struct {
	ID             string           `json:"id"`
	Name           string           `json:"name"`
	TimespanColumn string           `json:"timespanColumn,omitempty"`
	Columns        []metadataColumn `json:"columns"`
}

type metadataWorkspace struct {
	ID         string   `json:"id"`
	ResourceID string   `json:"resourceId"`
	Tables     []string `json:"tables"`
}

// metadataFunction is a workspace function (a saved search with an alias)
// in the metadata response.
type metadataFunction struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Parameters string   `json:"parameters,omitempty"`
	Body       string   `json:"body"`
	Workspaces []string `json:"workspaces"`
}

// metadata serves GET/POST /v1/workspaces/{id}/metadata: the tables and
// columns of the workspace, in the shape of Azure's metadata response.
func (a *API) metadata(w http.ResponseWriter, r *http.Request, _ rbac.Decision) {
	ws, err := a.lookupWorkspace(r.Context(), r.PathValue("workspaceId"))
	if err == nil && a.opts.NetworkGate != nil {
		err = a.opts.NetworkGate(r.Context(), ws)
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	ac, err := a.resolveAccess(r.Context(), ws)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	tables := ac.tables // only the tables the caller may read
	names := make([]string, 0, len(tables))
	for n := range tables {
		names = append(names, n)
	}
	sort.Strings(names)
	funcs, err := a.storedFunctions(r.Context(), ws)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	out := struct {
		Tables     []metadataTable     `json:"tables"`
		Functions  []metadataFunction  `json:"functions"`
		Workspaces []metadataWorkspace `json:"workspaces"`
	}{Tables: []metadataTable{}, Functions: []metadataFunction{}}
	fnames := make([]string, 0, len(funcs))
	for n := range funcs {
		fnames = append(fnames, n)
	}
	sort.Strings(fnames)
	for _, n := range fnames {
		f := funcs[n]
		out.Functions = append(out.Functions, metadataFunction{ID: "func/" + n, Name: n, Parameters: f.Params, Body: f.Body,
			Workspaces: []string{ws.CustomerID}})
	}
	wsEntry := metadataWorkspace{ID: ws.CustomerID, ResourceID: ws.ResourceID, Tables: []string{}}
	for _, n := range names {
		t := metadataTable{ID: "t/" + n, Name: n, Columns: []metadataColumn{}}
		for _, c := range tables[n] {
			t.Columns = append(t.Columns, metadataColumn{Name: c.Name, Type: c.Type.String()})
			if c.Name == "TimeGenerated" {
				t.TimespanColumn = "TimeGenerated"
			}
		}
		out.Tables = append(out.Tables, t)
		wsEntry.Tables = append(wsEntry.Tables, t.ID)
	}
	out.Workspaces = []metadataWorkspace{wsEntry}
	api.WriteJSON(w, http.StatusOK, out)
}
