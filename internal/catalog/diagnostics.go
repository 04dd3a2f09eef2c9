package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// TypeDiagnosticSetting is the ARM type of a diagnostic setting.
const TypeDiagnosticSetting = "Microsoft.Insights/diagnosticSettings"

// Diagnostic log categories and category groups a workspace has. Custos
// routes the Audit category (the query audit) to the LAQueryLogs table.
const (
	DiagnosticCategoryAudit      = "Audit"
	DiagnosticCategoryGroupAudit = "audit"
	DiagnosticCategoryGroupAll   = "allLogs"
)

// DiagnosticLog is one entry of a diagnostic setting's logs: a category or
// a category group, enabled or not.
type DiagnosticLog struct {
	Category      string `json:"category,omitempty"`
	CategoryGroup string `json:"categoryGroup,omitempty"`
	Enabled       bool   `json:"enabled"`
}

// DiagnosticSetting is a Microsoft.Insights/diagnosticSettings extension
// resource on a workspace: the workspace's audit logs go to the
// destination workspace.
type DiagnosticSetting struct {
	// ResourceID is the workspace the setting extends.
	ResourceID string
	Name       string
	// WorkspaceID is the destination workspace's resource ID.
	WorkspaceID string
	Logs        []DiagnosticLog
	Audit       Audit
}

// ID returns the setting's ARM ID.
func (d *DiagnosticSetting) ID() string {
	return d.ResourceID + "/providers/" + TypeDiagnosticSetting + "/" + d.Name
}

// RoutesAudit reports whether the setting sends the Audit category.
func (d *DiagnosticSetting) RoutesAudit() bool {
	for _, l := range d.Logs {
		if !l.Enabled {
			continue
		}
		if strings.EqualFold(l.Category, DiagnosticCategoryAudit) ||
			strings.EqualFold(l.CategoryGroup, DiagnosticCategoryGroupAudit) ||
			strings.EqualFold(l.CategoryGroup, DiagnosticCategoryGroupAll) {
			return true
		}
	}
	return false
}

var diagNameRE = regexp.MustCompile(`^[A-Za-z0-9][-A-Za-z0-9_. ]{0,259}$`)

// validateDiagnosticSetting checks the Azure rules Custos enforces.
func validateDiagnosticSetting(d *DiagnosticSetting) error {
	if !diagNameRE.MatchString(d.Name) || strings.HasSuffix(d.Name, " ") || strings.HasSuffix(d.Name, ".") {
		return Invalid("InvalidResourceName", "name",
			"The diagnostic setting name '%s' is invalid: use 1 to 260 letters, digits, spaces, '-', '_' and '.', starting with a letter or digit.",
			truncate(d.Name, 100))
	}
	if _, _, _, ok := ParseWorkspaceResourceID(d.WorkspaceID); !ok {
		return Invalid("BadRequest", "properties.workspaceId",
			"The property 'workspaceId' must be a Log Analytics workspace resource ID; got '%s'. Custos supports workspace destinations only.",
			truncate(d.WorkspaceID, 300))
	}
	if len(d.Logs) == 0 || len(d.Logs) > 16 {
		return Invalid("BadRequest", "properties.logs", "A diagnostic setting needs 1 to 16 log entries.")
	}
	for i, l := range d.Logs {
		target := fmt.Sprintf("properties.logs[%d]", i)
		switch {
		case (l.Category == "") == (l.CategoryGroup == ""):
			return Invalid("BadRequest", target, "Each log entry names either a category or a categoryGroup.")
		case l.Category != "" && !strings.EqualFold(l.Category, DiagnosticCategoryAudit):
			return Invalid("BadRequest", target+".category",
				"Category '%s' is not supported for workspaces; the supported category is 'Audit'.", truncate(l.Category, 100))
		case l.CategoryGroup != "" && !strings.EqualFold(l.CategoryGroup, DiagnosticCategoryGroupAudit) &&
			!strings.EqualFold(l.CategoryGroup, DiagnosticCategoryGroupAll):
			return Invalid("BadRequest", target+".categoryGroup",
				"Category group '%s' is not supported; use 'audit' or 'allLogs'.", truncate(l.CategoryGroup, 100))
		}
	}
	return nil
}

// PutDiagnosticSetting creates or replaces a diagnostic setting on a
// workspace. The workspace and the destination workspace must exist. It
// reports whether the setting was created.
func (c *DB) PutDiagnosticSetting(ctx context.Context, d DiagnosticSetting, by Actor) (DiagnosticSetting, bool, error) {
	if err := validateDiagnosticSetting(&d); err != nil {
		return DiagnosticSetting{}, false, err
	}
	logs, err := json.Marshal(d.Logs)
	if err != nil {
		return DiagnosticSetting{}, false, fmt.Errorf("encode diagnostic logs: %w", err)
	}
	created := false
	err = c.inTx(ctx, func(r run) error {
		ws, err := workspaceByID(ctx, r, d.ResourceID)
		if err != nil {
			return err
		}
		dest, err := workspaceByID(ctx, r, d.WorkspaceID)
		if errors.Is(err, ErrNotFound) {
			return Invalid("BadRequest", "properties.workspaceId", "The destination workspace '%s' does not exist.", truncate(d.WorkspaceID, 300))
		}
		if err != nil {
			return err
		}
		d.ResourceID, d.WorkspaceID = ws.ID(), dest.ID()
		old, err := getDiagnosticSetting(ctx, r, d.ResourceID, d.Name)
		exists := err == nil
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		now := c.nowUTC()
		d.Audit.ModifiedAt, d.Audit.ModifiedBy, d.Audit.ModifiedByType = now, by.ID, by.Type
		if exists {
			d.Name = old.Name
			d.Audit.CreatedAt, d.Audit.CreatedBy, d.Audit.CreatedByType = old.Audit.CreatedAt, old.Audit.CreatedBy, old.Audit.CreatedByType
			_, err = r.exec(ctx, `UPDATE diagnostic_settings SET dest_ws_id = ?, dest_ws_key = ?, logs = ?, modified_at = ?,
				modified_by = ?, modified_by_type = ? WHERE ws_key = ? AND name_key = ?`,
				d.WorkspaceID, key(d.WorkspaceID), string(logs), fmtTime(now), by.ID, by.Type, key(d.ResourceID), key(d.Name))
		} else {
			created = true
			d.Audit.CreatedAt, d.Audit.CreatedBy, d.Audit.CreatedByType = now, by.ID, by.Type
			_, err = r.exec(ctx, `INSERT INTO diagnostic_settings (ws_key, name_key, name, dest_ws_id, dest_ws_key, logs,
				created_at, created_by, created_by_type, modified_at, modified_by, modified_by_type)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, key(d.ResourceID), key(d.Name), d.Name, d.WorkspaceID,
				key(d.WorkspaceID), string(logs), fmtTime(now), by.ID, by.Type, fmtTime(now), by.ID, by.Type)
		}
		if err != nil {
			return fmt.Errorf("put diagnostic setting: %w", err)
		}
		return nil
	})
	if err != nil {
		return DiagnosticSetting{}, false, err
	}
	return d, created, nil
}

// workspaceByID resolves a workspace resource ID inside a transaction.
func workspaceByID(ctx context.Context, r run, id string) (Workspace, error) {
	sub, rg, name, ok := ParseWorkspaceResourceID(id)
	if !ok {
		return Workspace{}, Invalid("InvalidResourceId", "resourceUri",
			"The resource '%s' cannot have diagnostic settings in Custos: only workspaces can.", truncate(id, 300))
	}
	if _, err := requireResourceGroup(ctx, r, sub, rg); err != nil {
		return Workspace{}, err
	}
	return getWorkspace(ctx, r, sub, rg, name)
}

const diagColumns = `d.ws_key, d.name, d.dest_ws_id, d.logs, d.created_at, d.created_by, d.created_by_type,
	d.modified_at, d.modified_by, d.modified_by_type`

func scanDiagnosticSetting(sc interface{ Scan(...any) error }) (DiagnosticSetting, error) {
	var d DiagnosticSetting
	var wsKey, logs, created, modified string
	if err := sc.Scan(&wsKey, &d.Name, &d.WorkspaceID, &logs, &created, &d.Audit.CreatedBy, &d.Audit.CreatedByType,
		&modified, &d.Audit.ModifiedBy, &d.Audit.ModifiedByType); err != nil {
		return DiagnosticSetting{}, err
	}
	if err := json.Unmarshal([]byte(logs), &d.Logs); err != nil {
		return DiagnosticSetting{}, fmt.Errorf("decode diagnostic logs: %w", err)
	}
	d.ResourceID = wsKey
	var err error
	if d.Audit.CreatedAt, err = parseTime(created); err != nil {
		return DiagnosticSetting{}, err
	}
	if d.Audit.ModifiedAt, err = parseTime(modified); err != nil {
		return DiagnosticSetting{}, err
	}
	return d, nil
}

func listDiagnosticSettings(ctx context.Context, r run, where string, args ...any) ([]DiagnosticSetting, error) {
	rows, err := r.query(ctx, `SELECT `+diagColumns+` FROM diagnostic_settings d WHERE `+
		where+` ORDER BY d.ws_key, d.name_key`, args...)
	if err != nil {
		return nil, fmt.Errorf("list diagnostic settings: %w", err)
	}
	defer rows.Close()
	out := []DiagnosticSetting{}
	for rows.Next() {
		d, err := scanDiagnosticSetting(rows)
		if err != nil {
			return nil, fmt.Errorf("list diagnostic settings: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

func getDiagnosticSetting(ctx context.Context, r run, wsID, name string) (DiagnosticSetting, error) {
	ds, err := listDiagnosticSettings(ctx, r, `d.ws_key = ? AND d.name_key = ?`, key(wsID), key(name))
	if err != nil {
		return DiagnosticSetting{}, err
	}
	if len(ds) == 0 {
		return DiagnosticSetting{}, notFound("ResourceNotFound", "The diagnostic setting '%s' was not found on resource '%s'.",
			truncate(name, 100), truncate(wsID, 300))
	}
	return ds[0], nil
}

// withWorkspaceID puts the workspace's resource ID in its stored casing.
func withWorkspaceID(ws Workspace, ds []DiagnosticSetting) []DiagnosticSetting {
	for i := range ds {
		ds[i].ResourceID = ws.ID()
	}
	return ds
}

// DiagnosticSetting returns one diagnostic setting of a workspace.
func (c *DB) DiagnosticSetting(ctx context.Context, workspaceID, name string) (DiagnosticSetting, error) {
	ws, err := workspaceByID(ctx, c.r(), workspaceID)
	if err != nil {
		return DiagnosticSetting{}, err
	}
	d, err := getDiagnosticSetting(ctx, c.r(), ws.ID(), name)
	if err != nil {
		return DiagnosticSetting{}, err
	}
	return withWorkspaceID(ws, []DiagnosticSetting{d})[0], nil
}

// DiagnosticSettings lists the diagnostic settings of a workspace.
func (c *DB) DiagnosticSettings(ctx context.Context, workspaceID string) ([]DiagnosticSetting, error) {
	ws, err := workspaceByID(ctx, c.r(), workspaceID)
	if err != nil {
		return nil, err
	}
	ds, err := listDiagnosticSettings(ctx, c.r(), `d.ws_key = ?`, key(ws.ID()))
	if err != nil {
		return nil, err
	}
	return withWorkspaceID(ws, ds), nil
}

// DeleteDiagnosticSetting removes a diagnostic setting; it reports whether
// it existed.
func (c *DB) DeleteDiagnosticSetting(ctx context.Context, workspaceID, name string) (bool, error) {
	ws, err := workspaceByID(ctx, c.r(), workspaceID)
	if err != nil {
		return false, err
	}
	res, err := c.r().exec(ctx, `DELETE FROM diagnostic_settings WHERE ws_key = ? AND name_key = ?`, key(ws.ID()), key(name))
	if err != nil {
		return false, fmt.Errorf("delete diagnostic setting: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("delete diagnostic setting: %w", err)
	}
	return n > 0, nil
}

// QueryAuditDestinations returns the customer IDs of the existing workspaces
// that receive the query audit (LAQueryLogs) of the workspace with resource
// ID workspaceID: the destinations of its diagnostic settings with the
// Audit category (or the audit/allLogs group) enabled, each once.
func (c *DB) QueryAuditDestinations(ctx context.Context, workspaceID string) ([]string, error) {
	rows, err := c.r().query(ctx, `SELECT d.logs, w.customer_id FROM diagnostic_settings d
		JOIN workspaces w ON w.ws_key = d.dest_ws_key WHERE d.ws_key = ? ORDER BY d.name_key`, key(workspaceID))
	if err != nil {
		return nil, fmt.Errorf("query audit destinations: %w", err)
	}
	defer rows.Close()
	var out []string
	seen := map[string]bool{}
	for rows.Next() {
		var logs, customer string
		if err := rows.Scan(&logs, &customer); err != nil {
			return nil, fmt.Errorf("query audit destinations: %w", err)
		}
		d := DiagnosticSetting{}
		if err := json.Unmarshal([]byte(logs), &d.Logs); err != nil {
			return nil, fmt.Errorf("query audit destinations: decode logs: %w", err)
		}
		if d.RoutesAudit() && !seen[customer] {
			seen[customer] = true
			out = append(out, customer)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query audit destinations: %w", err)
	}
	return out, nil
}
