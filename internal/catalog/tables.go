package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"custos/internal/store"
)

// TableType says whether a table is built in or custom, as Azure's
// schema.tableType.
type TableType string

// Table types.
const (
	TableTypeMicrosoft TableType = "Microsoft"
	TableTypeCustomLog TableType = "CustomLog"
)

// Table plans.
const (
	PlanAnalytics = "Analytics"
	PlanBasic     = "Basic"
)

// Table limits, as Azure's.
const (
	MinTableRetentionInDays      = 4
	MaxTableRetentionInDays      = 730
	MaxTableTotalRetentionInDays = 4383
	MaxColumnsPerTable           = 500
	maxColumnNameLen             = 45
	maxDescriptionLen            = 1024
)

// Column is a table column. Type is the KQL type.
type Column struct {
	Name         string
	Type         store.ColumnType
	Description  string
	DisplayName  string
	DataTypeHint string // "uri", "guid", "armPath" or "ip"; optional
}

// Table is a table of a workspace.
type Table struct {
	SubscriptionID      string
	ResourceGroup       string
	WorkspaceName       string
	WorkspaceCustomerID string
	// WorkspaceRetentionInDays is the workspace default that RetentionInDays
	// -1 refers to.
	WorkspaceRetentionInDays int

	Name        string
	Type        TableType
	Description string
	// StandardColumns are the columns Azure defines for a built-in table
	// (empty for custom tables).
	StandardColumns []Column
	// Columns are user-defined: all columns of a custom table, or the "_CF"
	// columns added to a built-in table.
	Columns              []Column
	RetentionInDays      int // -1: the workspace's retention
	TotalRetentionInDays int // -1: the table's retention
	Plan                 string
	PlanModified         time.Time
	ETag                 string
	Audit                Audit
}

// ID returns the table's ARM resource ID.
func (t *Table) ID() string {
	return TableResourceID(t.SubscriptionID, t.ResourceGroup, t.WorkspaceName, t.Name)
}

// Ref returns the store's name for the table.
func (t *Table) Ref() store.TableRef {
	return store.TableRef{WorkspaceID: t.WorkspaceCustomerID, Table: t.Name}
}

// EffectiveRetentionInDays resolves -1 to the workspace's retention.
func (t *Table) EffectiveRetentionInDays() int {
	if t.RetentionInDays <= 0 {
		return t.WorkspaceRetentionInDays
	}
	return t.RetentionInDays
}

// EffectiveTotalRetentionInDays resolves -1 to the table's retention. Data
// older than this is removed; it is what the store's retention is set to.
func (t *Table) EffectiveTotalRetentionInDays() int {
	if t.TotalRetentionInDays <= 0 {
		return t.EffectiveRetentionInDays()
	}
	return t.TotalRetentionInDays
}

// storeOwned are the system columns that the store adds to every table.
var storeOwned = map[string]bool{
	"TimeGenerated": true, "_TimeReceived": true, "_ItemId": true, "_ResourceId": true, "TenantId": true, "Type": true,
}

// SystemColumns are the columns every table has besides its own, as the
// store provides them; _ItemId and _TimeReceived are hidden in Azure but
// queryable.
func SystemColumns() []Column {
	return []Column{
		{Name: "TenantId", Type: store.TypeString, Description: "ID of the workspace that stores the record."},
		{Name: "Type", Type: store.TypeString, Description: "Name of the table."},
		{Name: "_ResourceId", Type: store.TypeString, Description: "ARM ID of the resource the record is associated with."},
		{Name: "_ItemId", Type: store.TypeString, Description: "Unique ID of the record."},
		{Name: "_TimeReceived", Type: store.TypeDatetime, Description: "Time the record was received."},
	}
}

// StoreSchema is the schema to pass to the store's EnsureTable: the table's
// columns without the system columns that the store owns.
func (t *Table) StoreSchema() store.Schema {
	var s store.Schema
	for _, c := range t.allColumns() {
		if !storeOwned[c.Name] {
			s = append(s, store.Column{Name: c.Name, Type: c.Type})
		}
	}
	return s
}

// QuerySchema is the schema queries see: every column of the table,
// TimeGenerated first, then the system columns.
func (t *Table) QuerySchema() store.Schema {
	s := store.Schema{{Name: "TimeGenerated", Type: store.TypeDatetime}}
	for _, c := range t.allColumns() {
		if c.Name != "TimeGenerated" {
			s = append(s, store.Column{Name: c.Name, Type: c.Type})
		}
	}
	for _, c := range SystemColumns() {
		if s.Index(c.Name) < 0 {
			s = append(s, store.Column{Name: c.Name, Type: c.Type})
		}
	}
	return s
}

func (t *Table) allColumns() []Column {
	return append(append([]Column(nil), t.StandardColumns...), t.Columns...)
}

// TableSpec is the writable part of a table, as a PUT carries it.
type TableSpec struct {
	Name                 string
	Description          string
	Columns              []Column
	RetentionInDays      int // 0 or -1: the workspace's retention
	TotalRetentionInDays int // 0 or -1: the table's retention
	Plan                 string
}

var (
	customTableRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,59}_CL$`)
	columnNameRE  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)
)

// reservedColumns may not be used as custom column names (compared
// case-insensitively), as in Azure.
var reservedColumns = []string{"_ResourceId", "id", "_SubscriptionId", "TenantId", "Type", "UniqueId", "Title"}

var dataTypeHints = []string{"uri", "guid", "armPath", "ip"}

// validateTableSpec checks the Azure rules for a table definition and
// returns the canonical table name and type.
func validateTableSpec(spec *TableSpec) (string, TableType, error) {
	name := spec.Name
	var typ TableType
	if def, ok := standardTableDef(name); ok {
		name, typ = def.name, TableTypeMicrosoft
	} else {
		if !strings.HasSuffix(name, "_CL") {
			return "", "", Invalid("InvalidParameter", "tableName",
				"The table name '%s' is invalid: custom table names must end with '_CL', and '%s' is not a built-in table.",
				truncate(name, 100), truncate(name, 100))
		}
		if !customTableRE.MatchString(name) {
			return "", "", Invalid("InvalidParameter", "tableName",
				"The table name '%s' is invalid: it must start with a letter, contain only letters, digits and '_', end with '_CL', and be at most 63 characters.",
				truncate(name, 100))
		}
		typ = TableTypeCustomLog
	}
	if len(spec.Description) > maxDescriptionLen {
		return "", "", Invalid("InvalidParameter", "properties.schema.description", "The table description exceeds %d characters.", maxDescriptionLen)
	}
	if len(spec.Columns) > MaxColumnsPerTable {
		return "", "", Invalid("InvalidParameter", "properties.schema.columns",
			"A table can have at most %d columns; %d were given.", MaxColumnsPerTable, len(spec.Columns))
	}
	seen := map[string]bool{}
	var std []Column
	if typ == TableTypeMicrosoft {
		def, _ := standardTableDef(name)
		std = def.columns
		for _, c := range std {
			seen[strings.ToLower(c.Name)] = true
		}
	}
	hasTimeGenerated := false
	for i := range spec.Columns {
		c := &spec.Columns[i]
		target := fmt.Sprintf("properties.schema.columns[%d]", i)
		if err := validateColumnName(c.Name, target); err != nil {
			return "", "", err
		}
		if c.Type == store.TypeInvalid || !tableColumnType(c.Type) {
			return "", "", Invalid("InvalidParameter", target+".type",
				"The column '%s' has an unsupported type. Supported types are: string, int, long, real, boolean, dateTime, guid, dynamic.", c.Name)
		}
		if typ == TableTypeMicrosoft && !strings.HasSuffix(c.Name, "_CF") {
			return "", "", Invalid("InvalidParameter", target+".name",
				"The column '%s' cannot be added to the built-in table '%s': custom columns of built-in tables must end with '_CF'.", c.Name, name)
		}
		if seen[strings.ToLower(c.Name)] {
			return "", "", Invalid("InvalidParameter", target+".name", "The column name '%s' appears more than once in table '%s'.", c.Name, name)
		}
		seen[strings.ToLower(c.Name)] = true
		if c.Name == "TimeGenerated" {
			if c.Type != store.TypeDatetime {
				return "", "", Invalid("InvalidParameter", target+".type",
					"The column 'TimeGenerated' must be of type dateTime, not %s.", WireColumnType(c.Type))
			}
			hasTimeGenerated = true
		}
		if len(c.Description) > maxDescriptionLen {
			return "", "", Invalid("InvalidParameter", target+".description", "The description of column '%s' exceeds %d characters.", c.Name, maxDescriptionLen)
		}
		if c.DataTypeHint != "" {
			h, ok := canonical(c.DataTypeHint, dataTypeHints)
			if !ok {
				return "", "", Invalid("InvalidParameter", target+".dataTypeHint",
					"The dataTypeHint '%s' of column '%s' is not valid. Valid values are: %s.", truncate(c.DataTypeHint, 64), c.Name, strings.Join(dataTypeHints, ", "))
			}
			c.DataTypeHint = h
		}
	}
	if typ == TableTypeCustomLog && !hasTimeGenerated {
		return "", "", Invalid("InvalidParameter", "properties.schema.columns",
			"Table validation failed: table '%s' is missing the mandatory 'TimeGenerated' column of type dateTime.", name)
	}
	if spec.RetentionInDays == 0 {
		spec.RetentionInDays = -1
	}
	if spec.RetentionInDays != -1 && (spec.RetentionInDays < MinTableRetentionInDays || spec.RetentionInDays > MaxTableRetentionInDays) {
		return "", "", Invalid("InvalidParameter", "properties.retentionInDays",
			"The retentionInDays value %d is out of range: it must be -1 (workspace default) or between %d and %d days.",
			spec.RetentionInDays, MinTableRetentionInDays, MaxTableRetentionInDays)
	}
	if spec.TotalRetentionInDays == 0 {
		spec.TotalRetentionInDays = -1
	}
	if spec.TotalRetentionInDays != -1 && (spec.TotalRetentionInDays < MinTableRetentionInDays || spec.TotalRetentionInDays > MaxTableTotalRetentionInDays) {
		return "", "", Invalid("InvalidParameter", "properties.totalRetentionInDays",
			"The totalRetentionInDays value %d is out of range: it must be -1 (table retention) or between %d and %d days.",
			spec.TotalRetentionInDays, MinTableRetentionInDays, MaxTableTotalRetentionInDays)
	}
	if spec.Plan == "" {
		spec.Plan = PlanAnalytics
	}
	plan, ok := canonical(spec.Plan, []string{PlanAnalytics, PlanBasic})
	if !ok {
		return "", "", Invalid("InvalidParameter", "properties.plan", "The plan '%s' is not supported. Supported plans are: Analytics, Basic.", truncate(spec.Plan, 64))
	}
	spec.Plan = plan
	return name, typ, nil
}

func validateColumnName(n, target string) error {
	if n == "" || len(n) > maxColumnNameLen || !columnNameRE.MatchString(n) {
		return Invalid("InvalidParameter", target+".name",
			"The column name '%s' is invalid: column names must start with a letter and contain at most %d letters, digits or '_'.",
			truncate(n, 100), maxColumnNameLen)
	}
	for _, r := range reservedColumns {
		if strings.EqualFold(n, r) {
			return Invalid("InvalidParameter", target+".name", "The column name '%s' is reserved.", n)
		}
	}
	return nil
}

func tableColumnType(t store.ColumnType) bool {
	switch t {
	case store.TypeString, store.TypeInt, store.TypeLong, store.TypeReal, store.TypeBool, store.TypeDatetime, store.TypeGUID, store.TypeDynamic:
		return true
	}
	return false
}

// ParseTableColumnType accepts the column type names of the Tables API
// ("string", "int", "long", "real", "boolean"/"bool", "dateTime", "guid",
// "dynamic"), case-insensitively.
func ParseTableColumnType(s string) (store.ColumnType, bool) {
	t, ok := store.ParseColumnType(strings.ToLower(s))
	if !ok || !tableColumnType(t) {
		return store.TypeInvalid, false
	}
	return t, true
}

// WireColumnType is the Tables API spelling of a column type.
func WireColumnType(t store.ColumnType) string {
	switch t {
	case store.TypeBool:
		return "boolean"
	case store.TypeDatetime:
		return "dateTime"
	}
	return t.String()
}

// storedColumn is the JSON form of a column in the catalog.
type storedColumn struct {
	Name         string `json:"name"`
	Type         string `json:"type"`
	Description  string `json:"description,omitempty"`
	DisplayName  string `json:"displayName,omitempty"`
	DataTypeHint string `json:"dataTypeHint,omitempty"`
}

func marshalColumns(cols []Column) (string, error) {
	out := make([]storedColumn, len(cols))
	for i, c := range cols {
		out[i] = storedColumn{Name: c.Name, Type: c.Type.String(), Description: c.Description, DisplayName: c.DisplayName, DataTypeHint: c.DataTypeHint}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return "", fmt.Errorf("encode columns: %w", err)
	}
	return string(b), nil
}

func unmarshalColumns(s string) ([]Column, error) {
	var in []storedColumn
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		return nil, fmt.Errorf("decode stored columns: %w", err)
	}
	out := make([]Column, len(in))
	for i, c := range in {
		t, ok := store.ParseColumnType(c.Type)
		if !ok {
			return nil, fmt.Errorf("decode stored columns: unknown type %q", c.Type)
		}
		out[i] = Column{Name: c.Name, Type: t, Description: c.Description, DisplayName: c.DisplayName, DataTypeHint: c.DataTypeHint}
	}
	return out, nil
}

// insertStandardTables creates the built-in tables of a new workspace.
func (c *DB) insertStandardTables(ctx context.Context, r run, w *Workspace, by Actor) error {
	now := fmtTime(w.Audit.CreatedAt)
	for _, def := range standardTables {
		cols, err := marshalColumns(def.columns)
		if err != nil {
			return err
		}
		etag, err := c.newETag()
		if err != nil {
			return err
		}
		_, err = r.exec(ctx, `INSERT INTO workspace_tables (ws_key, name_key, name, table_type, description, standard_columns, columns,
			retention_days, total_retention_days, plan, plan_modified_at, etag, created_at, created_by, created_by_type,
			modified_at, modified_by, modified_by_type) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			key(w.ID()), key(def.name), def.name, string(TableTypeMicrosoft), def.description, cols, "[]",
			-1, -1, PlanAnalytics, now, etag, now, by.ID, by.Type, now, by.ID, by.Type)
		if err != nil {
			return fmt.Errorf("create standard table %s: %w", def.name, err)
		}
	}
	return nil
}

const tableColumnsSQL = `s.subscription_id, g.name, w.name, w.customer_id, w.retention_days, t.name, t.table_type, t.description,
	t.standard_columns, t.columns, t.retention_days, t.total_retention_days, t.plan, t.plan_modified_at, t.etag,
	t.created_at, t.created_by, t.created_by_type, t.modified_at, t.modified_by, t.modified_by_type`

const tableFrom = ` FROM workspace_tables t JOIN workspaces w ON w.ws_key = t.ws_key
	JOIN resource_groups g ON g.rg_key = w.rg_key JOIN subscriptions s ON s.sub_key = g.sub_key `

func scanTable(sc interface{ Scan(...any) error }) (Table, error) {
	var t Table
	var typ, stdCols, cols, planMod, created, modified string
	err := sc.Scan(&t.SubscriptionID, &t.ResourceGroup, &t.WorkspaceName, &t.WorkspaceCustomerID, &t.WorkspaceRetentionInDays,
		&t.Name, &typ, &t.Description, &stdCols, &cols, &t.RetentionInDays, &t.TotalRetentionInDays, &t.Plan, &planMod, &t.ETag,
		&created, &t.Audit.CreatedBy, &t.Audit.CreatedByType, &modified, &t.Audit.ModifiedBy, &t.Audit.ModifiedByType)
	if err != nil {
		return Table{}, err
	}
	t.Type = TableType(typ)
	if t.StandardColumns, err = unmarshalColumns(stdCols); err != nil {
		return Table{}, err
	}
	if t.Columns, err = unmarshalColumns(cols); err != nil {
		return Table{}, err
	}
	if t.PlanModified, err = parseTime(planMod); err != nil {
		return Table{}, err
	}
	if t.Audit.CreatedAt, err = parseTime(created); err != nil {
		return Table{}, err
	}
	if t.Audit.ModifiedAt, err = parseTime(modified); err != nil {
		return Table{}, err
	}
	return t, nil
}

func listTables(ctx context.Context, r run, where string, args ...any) ([]Table, error) {
	q := `SELECT ` + tableColumnsSQL + tableFrom
	if where != "" {
		q += `WHERE ` + where
	}
	return queryAll(ctx, r, "list tables", scanTable, q+` ORDER BY w.ws_key, t.name_key`, args...)
}

func getTable(ctx context.Context, r run, ws *Workspace, name string) (Table, error) {
	t, err := scanTable(r.row(ctx, `SELECT `+tableColumnsSQL+tableFrom+`WHERE t.ws_key = ? AND t.name_key = ?`, key(ws.ID()), key(name)))
	if errors.Is(err, sql.ErrNoRows) {
		return Table{}, errResourceNotFound(TypeWorkspace+"/"+ws.Name+"/tables/"+name, ws.ResourceGroup)
	}
	if err != nil {
		return Table{}, fmt.Errorf("get table: %w", err)
	}
	return t, nil
}

// PutTable creates or updates a table of a workspace. Columns may be added;
// changing a column's type or removing a column is rejected. Built-in tables
// keep their standard columns and accept only "_CF" columns. It reports
// whether the table was created.
func (c *DB) PutTable(ctx context.Context, sub, rg, ws string, spec TableSpec, pre Precondition, by Actor) (Table, bool, error) {
	name, typ, err := validateTableSpec(&spec)
	if err != nil {
		return Table{}, false, err
	}
	cols, err := marshalColumns(spec.Columns)
	if err != nil {
		return Table{}, false, err
	}
	etag, err := c.newETag()
	if err != nil {
		return Table{}, false, err
	}
	var out Table
	created := false
	err = c.inTx(ctx, func(r run) error {
		w, err := getWorkspace(ctx, r, sub, rg, ws)
		if errors.Is(err, ErrNotFound) {
			if _, perr := requireResourceGroup(ctx, r, sub, rg); perr != nil {
				return perr
			}
		}
		if err != nil {
			return err
		}
		old, err := getTable(ctx, r, &w, name)
		exists := err == nil
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := pre.check(exists, old.ETag); err != nil {
			return err
		}
		now := c.nowUTC()
		if exists {
			if err := checkColumnChanges(old.Columns, spec.Columns, old.Name); err != nil {
				return err
			}
			planMod := old.PlanModified
			if old.Plan != spec.Plan {
				planMod = now
			}
			_, err = r.exec(ctx, `UPDATE workspace_tables SET description = ?, columns = ?, retention_days = ?, total_retention_days = ?,
				plan = ?, plan_modified_at = ?, etag = ?, modified_at = ?, modified_by = ?, modified_by_type = ?
				WHERE ws_key = ? AND name_key = ?`,
				spec.Description, cols, spec.RetentionInDays, spec.TotalRetentionInDays, spec.Plan, fmtTime(planMod), etag,
				fmtTime(now), by.ID, by.Type, key(w.ID()), key(name))
			if err != nil {
				return fmt.Errorf("update table: %w", err)
			}
		} else {
			if typ == TableTypeMicrosoft {
				// A built-in table that was never created (a workspace from
				// an older catalog): create it with its standard columns.
				def, _ := standardTableDef(name)
				old.StandardColumns = def.columns
			}
			std, err := marshalColumns(old.StandardColumns)
			if err != nil {
				return err
			}
			created = true
			_, err = r.exec(ctx, `INSERT INTO workspace_tables (ws_key, name_key, name, table_type, description, standard_columns, columns,
				retention_days, total_retention_days, plan, plan_modified_at, etag, created_at, created_by, created_by_type,
				modified_at, modified_by, modified_by_type) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				key(w.ID()), key(name), name, string(typ), spec.Description, std, cols, spec.RetentionInDays, spec.TotalRetentionInDays,
				spec.Plan, fmtTime(now), etag, fmtTime(now), by.ID, by.Type, fmtTime(now), by.ID, by.Type)
			if err != nil {
				return fmt.Errorf("insert table: %w", err)
			}
		}
		out, err = getTable(ctx, r, &w, name)
		if err != nil {
			return err
		}
		if out.TotalRetentionInDays != -1 && out.TotalRetentionInDays < out.EffectiveRetentionInDays() {
			return Invalid("InvalidParameter", "properties.totalRetentionInDays",
				"The totalRetentionInDays value %d must not be less than the table's retention (%d days).",
				out.TotalRetentionInDays, out.EffectiveRetentionInDays())
		}
		return nil
	})
	if err != nil {
		return Table{}, false, err
	}
	return out, created, nil
}

// checkColumnChanges allows only additions: every existing column must stay,
// with the same type.
func checkColumnChanges(old, updated []Column, table string) error {
	byName := map[string]Column{}
	for _, c := range updated {
		byName[strings.ToLower(c.Name)] = c
	}
	for _, o := range old {
		n, ok := byName[strings.ToLower(o.Name)]
		if !ok {
			return Invalid("InvalidParameter", "properties.schema.columns",
				"The column '%s' of table '%s' cannot be removed; a schema update may only add columns.", o.Name, table)
		}
		if n.Type != o.Type {
			return Invalid("InvalidParameter", "properties.schema.columns",
				"The type of column '%s' of table '%s' cannot be changed from %s to %s.", o.Name, table, WireColumnType(o.Type), WireColumnType(n.Type))
		}
		if n.Name != o.Name {
			return Invalid("InvalidParameter", "properties.schema.columns",
				"The column '%s' of table '%s' cannot be renamed to '%s'.", o.Name, table, n.Name)
		}
	}
	return nil
}

// Table returns one table of a workspace (names compare case-insensitively).
func (c *DB) Table(ctx context.Context, sub, rg, ws, name string) (Table, error) {
	r := c.r()
	w, err := c.Workspace(ctx, sub, rg, ws)
	if err != nil {
		return Table{}, err
	}
	return getTable(ctx, r, &w, name)
}

// Tables lists the tables of a workspace, by name.
func (c *DB) Tables(ctx context.Context, sub, rg, ws string) ([]Table, error) {
	w, err := c.Workspace(ctx, sub, rg, ws)
	if err != nil {
		return nil, err
	}
	return listTables(ctx, c.r(), `t.ws_key = ?`, key(w.ID()))
}

// WorkspaceTables lists the tables of the workspace with the given customerId.
func (c *DB) WorkspaceTables(ctx context.Context, customerID string) ([]Table, error) {
	w, err := c.WorkspaceByCustomerID(ctx, customerID)
	if err != nil {
		return nil, err
	}
	return listTables(ctx, c.r(), `t.ws_key = ?`, key(w.ID()))
}

// TableByCustomerID returns one table of the workspace with the given
// customerId; the name compares case-insensitively.
func (c *DB) TableByCustomerID(ctx context.Context, customerID, name string) (Table, error) {
	w, err := c.WorkspaceByCustomerID(ctx, customerID)
	if err != nil {
		return Table{}, err
	}
	return getTable(ctx, c.r(), &w, name)
}

// AllTables lists every table of every workspace; the server passes each to
// the store's EnsureTable at start.
func (c *DB) AllTables(ctx context.Context) ([]Table, error) {
	return listTables(ctx, c.r(), "")
}

// DeleteTable deletes a custom table. Built-in tables cannot be deleted. It
// returns the deleted table, or false when there was nothing to delete.
func (c *DB) DeleteTable(ctx context.Context, sub, rg, ws, name string, pre Precondition) (Table, bool, error) {
	var out Table
	deleted := false
	err := c.inTx(ctx, func(r run) error {
		w, err := getWorkspace(ctx, r, sub, rg, ws)
		if errors.Is(err, ErrNotFound) {
			if _, perr := requireResourceGroup(ctx, r, sub, rg); perr != nil {
				return perr
			}
		}
		if err != nil {
			return err
		}
		if IsStandardTable(name) {
			return Invalid("InvalidParameter", "tableName",
				"The table '%s' is a built-in table and cannot be deleted.", name)
		}
		old, err := getTable(ctx, r, &w, name)
		exists := err == nil
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := pre.check(exists, old.ETag); err != nil {
			return err
		}
		if !exists {
			return nil
		}
		if _, err := r.exec(ctx, `DELETE FROM workspace_tables WHERE ws_key = ? AND name_key = ?`, key(w.ID()), key(name)); err != nil {
			return fmt.Errorf("delete table: %w", err)
		}
		out, deleted = old, true
		return nil
	})
	return out, deleted, err
}
