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
)

// TypeDataExport is the ARM type of a workspace data export rule.
const TypeDataExport = "Microsoft.OperationalInsights/workspaces/dataExports"

// Data export formats.
const (
	ExportFormatJSON    = "json"
	ExportFormatParquet = "parquet"
)

// Limits on data export rules (Azure: 10 enabled rules per workspace).
const (
	MaxDataExportsPerWorkspace = 10
	maxExportTables            = 100
)

// DataExport is a Microsoft.OperationalInsights/workspaces/dataExports rule:
// the rows of TableNames are exported continuously, as they are ingested, to
// Destination. Package export owns DestConfig (JSON) and reads
// DestSecretSealed (the destination credential sealed under the workspace
// key; never returned by the API).
type DataExport struct {
	Workspace Workspace // the workspace the rule belongs to
	Name      string
	ExportID  string // GUID assigned at creation (properties.dataExportId)

	TableNames       []string
	Destination      string // file:///dir or s3://bucket/prefix
	DestConfig       string
	DestSecretSealed []byte
	Format           string // ExportFormatJSON or ExportFormatParquet
	Enabled          bool
	Audit            Audit
}

// ID returns the rule's resource ID.
func (d *DataExport) ID() string { return d.Workspace.ID() + "/dataExports/" + d.Name }

// ExportState is the progress of a rule: every row its tables received
// before LowWater (ticks of _TimeReceived) is in the destination, and Seq
// and HeadHash name the last manifest of the destination's signed chain.
type ExportState struct {
	ExportID  string
	LowWater  int64
	Seq       int64
	HeadHash  string
	UpdatedAt time.Time
}

// Export rule names: 4 to 63 letters, digits and hyphens, starting and
// ending with a letter or digit (Azure's rule).
var exportNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{2,61}[A-Za-z0-9]$`)

func validateDataExport(d *DataExport) error {
	if !exportNameRE.MatchString(d.Name) {
		return Invalid("InvalidResourceName", "name",
			"The data export name '%s' is invalid: use 4 to 63 letters, digits and hyphens, starting and ending with a letter or digit.",
			truncate(d.Name, 100))
	}
	if len(d.TableNames) == 0 || len(d.TableNames) > maxExportTables {
		return Invalid("InvalidParameter", "properties.tableNames", "A data export rule names 1 to %d tables.", maxExportTables)
	}
	switch d.Format {
	case "":
		d.Format = ExportFormatJSON
	case ExportFormatJSON, ExportFormatParquet:
	default:
		return Invalid("InvalidParameter", "properties.custosFormat", "The export format '%s' is invalid: use 'json' or 'parquet'.", truncate(d.Format, 50))
	}
	if d.Destination == "" {
		return Invalid("InvalidParameter", "properties.destination.resourceId", "The property 'destination.resourceId' is required.")
	}
	return nil
}

const exportColumns = `x.name, x.export_id, x.table_names, x.destination, x.dest_config, x.dest_secret_sealed, x.format, x.enabled,
	x.created_at, x.created_by, x.created_by_type, x.modified_at, x.modified_by, x.modified_by_type, ` + workspaceColumns

const exportFrom = ` FROM data_exports x JOIN workspaces w ON w.ws_key = x.ws_key JOIN resource_groups g ON g.rg_key = w.rg_key
	JOIN subscriptions s ON s.sub_key = g.sub_key `

func scanDataExport(sc interface{ Scan(...any) error }) (DataExport, error) {
	var d DataExport
	var tables, created, modified string
	var enabled int
	dst := []any{&d.Name, &d.ExportID, &tables, &d.Destination, &d.DestConfig, &d.DestSecretSealed, &d.Format, &enabled,
		&created, &d.Audit.CreatedBy, &d.Audit.CreatedByType, &modified, &d.Audit.ModifiedBy, &d.Audit.ModifiedByType}
	ws, err := scanWorkspace(prefixScanner{sc: sc, prefix: dst})
	if err != nil {
		return DataExport{}, err
	}
	d.Workspace = ws
	d.Enabled = enabled != 0
	if err := json.Unmarshal([]byte(tables), &d.TableNames); err != nil {
		return DataExport{}, fmt.Errorf("data export tables: %w", err)
	}
	if d.Audit.CreatedAt, err = parseTime(created); err != nil {
		return DataExport{}, err
	}
	if d.Audit.ModifiedAt, err = parseTime(modified); err != nil {
		return DataExport{}, err
	}
	return d, nil
}

// prefixScanner scans a row whose first columns go to prefix and the rest
// to what the caller of Scan passes.
type prefixScanner struct {
	sc     interface{ Scan(...any) error }
	prefix []any
}

func (p prefixScanner) Scan(dest ...any) error {
	return p.sc.Scan(append(append([]any{}, p.prefix...), dest...)...)
}

func listDataExports(ctx context.Context, r run, where string, args ...any) ([]DataExport, error) {
	q := `SELECT ` + exportColumns + exportFrom
	if where != "" {
		q += `WHERE ` + where
	}
	return queryAll(ctx, r, "list data exports", scanDataExport, q+` ORDER BY x.ws_key, x.name_key`, args...)
}

// PutDataExport creates or replaces a data export rule of an existing
// workspace whose tables all exist. A new rule gets a fresh dataExportId;
// an update keeps it and the creation data. prepare, when non-nil, runs
// before the write with the stored rule (nil if new) and the one to be
// written, and may fill its destination configuration or refuse it. It
// reports whether the rule was created.
func (c *DB) PutDataExport(ctx context.Context, workspaceID string, d DataExport, by Actor,
	prepare func(ctx context.Context, old, next *DataExport) error) (DataExport, bool, error) {
	if err := validateDataExport(&d); err != nil {
		return DataExport{}, false, err
	}
	created := false
	err := c.inTx(ctx, func(r run) error {
		ws, err := workspaceByID(ctx, r, workspaceID)
		if err != nil {
			return err
		}
		d.Workspace = ws
		seen := map[string]bool{}
		for i, name := range d.TableNames {
			t, err := getTable(ctx, r, &ws, name)
			if errors.Is(err, ErrNotFound) {
				return Invalid("InvalidParameter", "properties.tableNames",
					"The table '%s' does not exist in workspace '%s'.", truncate(name, 100), ws.Name)
			}
			if err != nil {
				return err
			}
			if seen[key(t.Name)] {
				return Invalid("InvalidParameter", "properties.tableNames", "The table '%s' is listed twice.", t.Name)
			}
			seen[key(t.Name)] = true
			d.TableNames[i] = t.Name
		}
		olds, err := listDataExports(ctx, r, `x.ws_key = ? AND x.name_key = ?`, key(ws.ID()), key(d.Name))
		if err != nil {
			return err
		}
		var old *DataExport
		now := c.nowUTC()
		d.Audit.ModifiedAt, d.Audit.ModifiedBy, d.Audit.ModifiedByType = now, by.ID, by.Type
		if len(olds) == 1 {
			old = &olds[0]
			d.Name, d.ExportID = old.Name, old.ExportID
			d.Audit.CreatedAt, d.Audit.CreatedBy, d.Audit.CreatedByType = old.Audit.CreatedAt, old.Audit.CreatedBy, old.Audit.CreatedByType
		} else {
			created = true
			var n int
			if err := r.row(ctx, `SELECT COUNT(*) FROM data_exports WHERE ws_key = ?`, key(ws.ID())).Scan(&n); err != nil {
				return fmt.Errorf("put data export: %w", err)
			}
			if n >= MaxDataExportsPerWorkspace {
				return conflict("DataExportLimitExceeded", "The workspace '%s' already has %d data export rules.", ws.Name, n)
			}
			if d.ExportID, err = c.newGUID(); err != nil {
				return err
			}
			d.Audit.CreatedAt, d.Audit.CreatedBy, d.Audit.CreatedByType = now, by.ID, by.Type
		}
		if prepare != nil {
			if err := prepare(ctx, old, &d); err != nil {
				return err
			}
		}
		if d.DestSecretSealed == nil {
			d.DestSecretSealed = []byte{}
		}
		tables, err := json.Marshal(d.TableNames)
		if err != nil {
			return fmt.Errorf("encode table names: %w", err)
		}
		if old != nil {
			_, err = r.exec(ctx, `UPDATE data_exports SET table_names = ?, destination = ?, dest_config = ?, dest_secret_sealed = ?,
				format = ?, enabled = ?, modified_at = ?, modified_by = ?, modified_by_type = ? WHERE ws_key = ? AND name_key = ?`,
				string(tables), d.Destination, d.DestConfig, d.DestSecretSealed, d.Format, boolInt(d.Enabled), fmtTime(now),
				by.ID, by.Type, key(ws.ID()), key(d.Name))
		} else {
			_, err = r.exec(ctx, `INSERT INTO data_exports (ws_key, name_key, name, export_id, table_names, destination, dest_config,
				dest_secret_sealed, format, enabled, created_at, created_by, created_by_type, modified_at, modified_by, modified_by_type)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				key(ws.ID()), key(d.Name), d.Name, d.ExportID, string(tables), d.Destination, d.DestConfig, d.DestSecretSealed,
				d.Format, boolInt(d.Enabled), fmtTime(now), by.ID, by.Type, fmtTime(now), by.ID, by.Type)
		}
		if err != nil {
			return fmt.Errorf("put data export: %w", err)
		}
		return nil
	})
	if err != nil {
		return DataExport{}, false, err
	}
	return d, created, nil
}

// DataExport returns one rule of a workspace (by resource ID).
func (c *DB) DataExport(ctx context.Context, workspaceID, name string) (DataExport, error) {
	ws, err := workspaceByID(ctx, c.r(), workspaceID)
	if err != nil {
		return DataExport{}, err
	}
	out, err := listDataExports(ctx, c.r(), `x.ws_key = ? AND x.name_key = ?`, key(ws.ID()), key(name))
	if err != nil {
		return DataExport{}, err
	}
	if len(out) == 0 {
		return DataExport{}, errResourceNotFound(TypeDataExport+"/"+name, ws.ResourceGroup)
	}
	return out[0], nil
}

// DataExports lists the rules of a workspace (by resource ID).
func (c *DB) DataExports(ctx context.Context, workspaceID string) ([]DataExport, error) {
	ws, err := workspaceByID(ctx, c.r(), workspaceID)
	if err != nil {
		return nil, err
	}
	return listDataExports(ctx, c.r(), `x.ws_key = ?`, key(ws.ID()))
}

// AllDataExports lists every rule of every workspace, for the exporter.
func (c *DB) AllDataExports(ctx context.Context) ([]DataExport, error) {
	return listDataExports(ctx, c.r(), "")
}

// DeleteDataExport removes a rule and its progress; it reports whether the
// rule existed. Files already exported stay in the destination.
func (c *DB) DeleteDataExport(ctx context.Context, workspaceID, name string) (bool, error) {
	deleted := false
	err := c.inTx(ctx, func(r run) error {
		ws, err := workspaceByID(ctx, r, workspaceID)
		if err != nil {
			return err
		}
		olds, err := listDataExports(ctx, r, `x.ws_key = ? AND x.name_key = ?`, key(ws.ID()), key(name))
		if err != nil || len(olds) == 0 {
			return err
		}
		if _, err := r.exec(ctx, `DELETE FROM data_exports WHERE ws_key = ? AND name_key = ?`, key(ws.ID()), key(name)); err != nil {
			return fmt.Errorf("delete data export: %w", err)
		}
		if _, err := r.exec(ctx, `DELETE FROM data_export_state WHERE export_id = ?`, olds[0].ExportID); err != nil {
			return fmt.Errorf("delete data export: %w", err)
		}
		deleted = true
		return nil
	})
	return deleted, err
}

// ExportState returns a rule's progress; a rule that never exported has
// the zero state (with ExportID set).
func (c *DB) ExportState(ctx context.Context, exportID string) (ExportState, error) {
	st := ExportState{ExportID: exportID}
	var updated string
	err := c.r().row(ctx, `SELECT low_water, seq, head_hash, updated_at FROM data_export_state WHERE export_id = ?`, exportID).
		Scan(&st.LowWater, &st.Seq, &st.HeadHash, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return st, nil
	}
	if err != nil {
		return ExportState{}, fmt.Errorf("export state: %w", err)
	}
	if st.UpdatedAt, err = parseTime(updated); err != nil {
		return ExportState{}, err
	}
	return st, nil
}

// SetExportState records a rule's progress.
func (c *DB) SetExportState(ctx context.Context, st ExportState) error {
	if strings.TrimSpace(st.ExportID) == "" {
		return errors.New("set export state: no export ID")
	}
	_, err := c.r().exec(ctx, `INSERT INTO data_export_state (export_id, low_water, seq, head_hash, updated_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (export_id) DO UPDATE SET low_water = excluded.low_water, seq = excluded.seq, head_hash = excluded.head_hash,
		updated_at = excluded.updated_at`, st.ExportID, st.LowWater, st.Seq, st.HeadHash, fmtTime(c.nowUTC()))
	if err != nil {
		return fmt.Errorf("set export state: %w", err)
	}
	return nil
}
