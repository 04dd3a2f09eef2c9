package arm

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"custos/internal/api"
	"custos/internal/catalog"
	"custos/internal/store"
)

// tableWire is a table as the Microsoft.OperationalInsights tables API
// returns it.
type tableWire struct {
	ID         string         `json:"id"`
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Properties tablePropsWire `json:"properties"`
	SystemData *systemData    `json:"systemData,omitempty"`
}

type tablePropsWire struct {
	RetentionInDays               int             `json:"retentionInDays"`
	TotalRetentionInDays          int             `json:"totalRetentionInDays"`
	ArchiveRetentionInDays        int             `json:"archiveRetentionInDays"`
	RetentionInDaysAsDefault      bool            `json:"retentionInDaysAsDefault"`
	TotalRetentionInDaysAsDefault bool            `json:"totalRetentionInDaysAsDefault"`
	Plan                          string          `json:"plan"`
	LastPlanModifiedDate          string          `json:"lastPlanModifiedDate"`
	ProvisioningState             string          `json:"provisioningState"`
	Schema                        tableSchemaWire `json:"schema"`
}

type tableSchemaWire struct {
	Name            string       `json:"name"`
	Description     string       `json:"description,omitempty"`
	TableType       string       `json:"tableType"`
	TableSubType    string       `json:"tableSubType"`
	Columns         []columnWire `json:"columns"`
	StandardColumns []columnWire `json:"standardColumns"`
	Solutions       []string     `json:"solutions"`
}

type columnWire struct {
	Name             string `json:"name"`
	Type             string `json:"type"`
	Description      string `json:"description,omitempty"`
	DisplayName      string `json:"displayName,omitempty"`
	DataTypeHint     string `json:"dataTypeHint,omitempty"`
	IsDefaultDisplay bool   `json:"isDefaultDisplay"`
	IsHidden         bool   `json:"isHidden"`
}

// tableRequest is a table PUT or PATCH body. Read-only properties of a GET
// response are accepted and ignored.
type tableRequest struct {
	Properties *tablePropsRequest `json:"properties"`

	ID         *string         `json:"id"`
	Name       *string         `json:"name"`
	Type       *string         `json:"type"`
	SystemData json.RawMessage `json:"systemData"`
}

type tablePropsRequest struct {
	RetentionInDays      *int                `json:"retentionInDays"`
	TotalRetentionInDays *int                `json:"totalRetentionInDays"`
	Plan                 *string             `json:"plan"`
	Schema               *tableSchemaRequest `json:"schema"`

	ArchiveRetentionInDays        *int    `json:"archiveRetentionInDays"`
	RetentionInDaysAsDefault      *bool   `json:"retentionInDaysAsDefault"`
	TotalRetentionInDaysAsDefault *bool   `json:"totalRetentionInDaysAsDefault"`
	LastPlanModifiedDate          *string `json:"lastPlanModifiedDate"`
	ProvisioningState             *string `json:"provisioningState"`
}

type tableSchemaRequest struct {
	Name        *string         `json:"name"`
	Description *string         `json:"description"`
	DisplayName *string         `json:"displayName"`
	Columns     []columnRequest `json:"columns"`

	StandardColumns json.RawMessage `json:"standardColumns"`
	TableType       *string         `json:"tableType"`
	TableSubType    *string         `json:"tableSubType"`
	Solutions       json.RawMessage `json:"solutions"`
	Source          *string         `json:"source"`
	Categories      json.RawMessage `json:"categories"`
	Labels          json.RawMessage `json:"labels"`
}

type columnRequest struct {
	Name             string `json:"name"`
	Type             string `json:"type"`
	Description      string `json:"description"`
	DisplayName      string `json:"displayName"`
	DataTypeHint     string `json:"dataTypeHint"`
	IsDefaultDisplay *bool  `json:"isDefaultDisplay"`
	IsHidden         *bool  `json:"isHidden"`
}

// decodeTableSpec turns a body into a table spec. With merge (PATCH, or a PUT
// that omits the schema of an existing table) omitted properties keep the
// values of old.
func decodeTableSpec(name string, req *tableRequest, old *catalog.Table, merge bool) (catalog.TableSpec, error) {
	spec := catalog.TableSpec{Name: name}
	if old != nil && merge {
		spec.Description, spec.Columns, spec.Plan = old.Description, old.Columns, old.Plan
		spec.RetentionInDays, spec.TotalRetentionInDays = old.RetentionInDays, old.TotalRetentionInDays
	}
	p := req.Properties
	if p == nil {
		if old != nil {
			spec.Columns = old.Columns
		}
		return spec, nil
	}
	if p.RetentionInDays != nil {
		spec.RetentionInDays = *p.RetentionInDays
		if spec.RetentionInDays == 0 {
			return spec, catalog.Invalid("InvalidParameter", "properties.retentionInDays",
				"The retentionInDays value 0 is out of range: it must be -1 (workspace default) or between %d and %d days.",
				catalog.MinTableRetentionInDays, catalog.MaxTableRetentionInDays)
		}
	}
	if p.TotalRetentionInDays != nil {
		spec.TotalRetentionInDays = *p.TotalRetentionInDays
		if spec.TotalRetentionInDays == 0 {
			return spec, catalog.Invalid("InvalidParameter", "properties.totalRetentionInDays",
				"The totalRetentionInDays value 0 is out of range: it must be -1 (table retention) or between %d and %d days.",
				catalog.MinTableRetentionInDays, catalog.MaxTableTotalRetentionInDays)
		}
	}
	if p.Plan != nil {
		spec.Plan = *p.Plan
	}
	s := p.Schema
	if s == nil {
		if old != nil {
			spec.Columns = old.Columns
		}
		return spec, nil
	}
	if s.Name != nil && *s.Name != "" && !strings.EqualFold(*s.Name, name) {
		return spec, catalog.Invalid("InvalidParameter", "properties.schema.name",
			"The schema name '%s' does not match the table name '%s'.", *s.Name, name)
	}
	if s.Description != nil {
		spec.Description = *s.Description
	}
	if s.Columns == nil && old != nil {
		spec.Columns = old.Columns
		return spec, nil
	}
	spec.Columns = make([]catalog.Column, 0, len(s.Columns))
	for i, c := range s.Columns {
		t, ok := catalog.ParseTableColumnType(c.Type)
		if !ok {
			return spec, catalog.Invalid("InvalidParameter", fmt.Sprintf("properties.schema.columns[%d].type", i),
				"The column '%s' has an unsupported type '%s'. Supported types are: string, int, long, real, boolean, dateTime, guid, dynamic.",
				c.Name, c.Type)
		}
		spec.Columns = append(spec.Columns, catalog.Column{Name: c.Name, Type: t, Description: c.Description, DisplayName: c.DisplayName, DataTypeHint: c.DataTypeHint})
	}
	return spec, nil
}

func toColumnWire(cols []catalog.Column) []columnWire {
	out := make([]columnWire, 0, len(cols))
	for _, c := range cols {
		out = append(out, columnWire{Name: c.Name, Type: catalog.WireColumnType(c.Type), Description: c.Description,
			DisplayName: c.DisplayName, DataTypeHint: c.DataTypeHint})
	}
	return out
}

// wireStandardColumns lists a table's standard columns as Azure does: the
// built-in columns of a Microsoft table, then the visible system columns.
func wireStandardColumns(t *catalog.Table) []columnWire {
	out := toColumnWire(t.StandardColumns)
	have := map[string]bool{}
	for _, c := range t.StandardColumns {
		have[c.Name] = true
	}
	for _, c := range t.Columns {
		have[c.Name] = true
	}
	for _, c := range catalog.SystemColumns() {
		if have[c.Name] || strings.HasPrefix(c.Name, "_") && c.Name != "_ResourceId" {
			continue // _ItemId and _TimeReceived are hidden, as in Azure
		}
		out = append(out, columnWire{Name: c.Name, Type: catalog.WireColumnType(c.Type), Description: c.Description})
	}
	return out
}

func toTableWire(t *catalog.Table) tableWire {
	subType := "DataCollectionRuleBased"
	if t.Type == catalog.TableTypeMicrosoft {
		subType = "Any"
	}
	return tableWire{
		ID: t.ID(), Name: t.Name, Type: catalog.TypeTable,
		Properties: tablePropsWire{
			RetentionInDays: t.EffectiveRetentionInDays(), TotalRetentionInDays: t.EffectiveTotalRetentionInDays(),
			ArchiveRetentionInDays:   t.EffectiveTotalRetentionInDays() - t.EffectiveRetentionInDays(),
			RetentionInDaysAsDefault: t.RetentionInDays <= 0, TotalRetentionInDaysAsDefault: t.TotalRetentionInDays <= 0,
			Plan: t.Plan, LastPlanModifiedDate: wireTime(t.PlanModified), ProvisioningState: "Succeeded",
			Schema: tableSchemaWire{
				Name: t.Name, Description: t.Description, TableType: string(t.Type), TableSubType: subType,
				Columns: toColumnWire(t.Columns), StandardColumns: wireStandardColumns(t), Solutions: []string{"LogManagement"},
			},
		},
		SystemData: toSystemData(t.Audit),
	}
}

func (a *API) listTables(w http.ResponseWriter, r *http.Request) error {
	ts, err := a.cat.Tables(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"), r.PathValue("workspaceName"))
	if err != nil {
		return err
	}
	out := list[tableWire]{Value: []tableWire{}}
	for i := range ts {
		out.Value = append(out.Value, toTableWire(&ts[i]))
	}
	api.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) getTable(w http.ResponseWriter, r *http.Request) error {
	t, err := a.cat.Table(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"), r.PathValue("workspaceName"), r.PathValue("tableName"))
	if err != nil {
		return err
	}
	writeGet(w, t.ETag, toTableWire(&t))
	return nil
}

func (a *API) putTable(w http.ResponseWriter, r *http.Request) error {
	return a.writeTable(w, r, false)
}
func (a *API) patchTable(w http.ResponseWriter, r *http.Request) error {
	return a.writeTable(w, r, true)
}

func (a *API) writeTable(w http.ResponseWriter, r *http.Request, merge bool) error {
	var req tableRequest
	if err := api.DecodeJSON(r, &req, a.maxBody); err != nil {
		return err
	}
	sub, rg, ws, name := r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"), r.PathValue("workspaceName"), r.PathValue("tableName")
	var old *catalog.Table
	cur, err := a.cat.Table(r.Context(), sub, rg, ws, name)
	switch {
	case err == nil:
		old = &cur
	case !errors.Is(err, catalog.ErrNotFound):
		return err
	case merge:
		return err // PATCH needs an existing table
	}
	spec, err := decodeTableSpec(name, &req, old, merge)
	if err != nil {
		return err
	}
	if old != nil && retentionChanged(old, spec) {
		if err := a.checkRetentionLocks(r, tableScope(r)); err != nil {
			return err
		}
	}
	t, created, err := a.cat.PutTable(r.Context(), sub, rg, ws, spec, precondition(r), actor(r))
	if err != nil {
		return err
	}
	if err := a.afterCommit(r, "ensure table", a.ensureTable(r.Context(), &t)); err != nil {
		return err
	}
	writePut(w, created, t.ETag, toTableWire(&t))
	return nil
}

func (a *API) deleteTable(w http.ResponseWriter, r *http.Request) error {
	t, deleted, err := a.cat.DeleteTable(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"),
		r.PathValue("workspaceName"), r.PathValue("tableName"), precondition(r))
	if err != nil {
		return err
	}
	if deleted && a.tables != nil {
		err := a.tables.DropTable(r.Context(), t.Ref())
		if errors.Is(err, store.ErrTableNotFound) {
			err = nil // never written to; nothing to drop
		}
		if err := a.afterCommit(r, "drop table", err); err != nil {
			return err
		}
	}
	writeDelete(w, deleted)
	return nil
}
