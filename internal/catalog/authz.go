package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"custos/internal/api"
	"custos/internal/rbac"
)

// This file holds custom role definitions and the full role assignment
// records of the Microsoft.Authorization API (migration 0003). The
// AssignmentStore methods of rbac.go remain the minimal interface; the
// methods here read and write every column.

var (
	_ rbac.DetailedAssignmentStore = (*DB)(nil)
	_ rbac.RoleStore               = (*DB)(nil)
)

const roleAssignmentDetailColumns = roleAssignmentColumns +
	`, condition_version, description, expires_at, created_by, updated_at, updated_by`

func scanRoleAssignmentDetails(rows interface {
	Next() bool
	Scan(...any) error
	Err() error
}) ([]rbac.RoleAssignment, error) {
	var out []rbac.RoleAssignment
	for rows.Next() {
		var a rbac.RoleAssignment
		var scope, created, expires, updated string
		if err := rows.Scan(&a.ID, &a.Name, &scope, &a.RoleDefinitionID, &a.PrincipalID, &a.PrincipalType, &a.Condition, &created,
			&a.ConditionVersion, &a.Description, &expires, &a.CreatedBy, &updated, &a.UpdatedBy); err != nil {
			return nil, err
		}
		a.Scope = rbac.Scope(scope)
		var err error
		if a.Created, err = parseTime(created); err != nil {
			return nil, err
		}
		if a.Expires, err = parseTime(expires); err != nil {
			return nil, err
		}
		if a.Updated, err = parseTime(updated); err != nil {
			return nil, err
		}
		if a.Updated.IsZero() {
			a.Updated = a.Created
		}
		if a.Condition != "" && a.ConditionVersion == "" {
			a.ConditionVersion = rbac.ConditionVersion
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// RoleAssignmentDetailsFor implements rbac.DetailedAssignmentStore: every
// assignment of the given principals with all its properties.
func (c *DB) RoleAssignmentDetailsFor(ctx context.Context, principalIDs []string) ([]rbac.RoleAssignment, error) {
	var out []rbac.RoleAssignment
	const chunk = 200
	for start := 0; start < len(principalIDs); start += chunk {
		ids := principalIDs[start:min(start+chunk, len(principalIDs))]
		args := make([]any, len(ids))
		for i, id := range ids {
			args[i] = strings.ToLower(id)
		}
		rows, err := c.r().query(ctx, `SELECT `+roleAssignmentDetailColumns+` FROM role_assignments WHERE principal_id IN (?`+
			strings.Repeat(", ?", len(ids)-1)+`) ORDER BY ra_key`, args...)
		if err != nil {
			return nil, fmt.Errorf("list role assignments: %w", err)
		}
		got, err := scanRoleAssignmentDetails(rows)
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("list role assignments: %w", err)
		}
		out = append(out, got...)
	}
	return out, nil
}

// RoleAssignmentByID returns one role assignment by its full resource ID
// (case-insensitive). A missing one is an error matching ErrNotFound and
// rbac.ErrNotFound.
func (c *DB) RoleAssignmentByID(ctx context.Context, id string) (rbac.RoleAssignment, error) {
	rows, err := c.r().query(ctx, `SELECT `+roleAssignmentDetailColumns+` FROM role_assignments WHERE ra_key = ?`, key(id))
	if err != nil {
		return rbac.RoleAssignment{}, fmt.Errorf("read role assignment: %w", err)
	}
	defer rows.Close()
	got, err := scanRoleAssignmentDetails(rows)
	if err != nil {
		return rbac.RoleAssignment{}, fmt.Errorf("read role assignment: %w", err)
	}
	if len(got) == 0 {
		return rbac.RoleAssignment{}, rbacNotFound("The role assignment '%s' is not found.", truncate(id, 300))
	}
	return got[0], nil
}

// AssignmentFilter selects role assignments for ListRoleAssignmentDetails.
type AssignmentFilter struct {
	// AtScope limits the result to assignments at the scope or above it
	// (Azure's $filter=atScope()). Otherwise assignments above, at and below
	// the scope are listed, as Azure does.
	AtScope bool
	// PrincipalID, when set, keeps only that principal's assignments.
	PrincipalID string
	// RoleDefinitionID, when set, keeps only assignments of that role (GUID
	// or role definition ID).
	RoleDefinitionID string
}

// ancestorKeys returns the lower-case scope and every prefix of it on a
// segment boundary, "/" included.
func ancestorKeys(scope string) []any {
	s := key(normalizeScope(scope))
	out := []any{"/"}
	if s == "/" {
		return out
	}
	for i := 1; i < len(s); i++ {
		if s[i] == '/' {
			out = append(out, s[:i])
		}
	}
	return append(out, s)
}

// ListRoleAssignmentDetails lists role assignments relevant to scope.
func (c *DB) ListRoleAssignmentDetails(ctx context.Context, scope string, f AssignmentFilter) ([]rbac.RoleAssignment, error) {
	anc := ancestorKeys(scope)
	where := `scope_key IN (?` + strings.Repeat(", ?", len(anc)-1) + `)`
	args := anc
	if sk := key(normalizeScope(scope)); !f.AtScope && sk != "/" {
		where = `(` + where + ` OR scope_key LIKE ? ESCAPE '\')`
		args = append(args, escapeLike(sk)+"/%")
	} else if !f.AtScope {
		where = `1 = 1`
		args = nil
	}
	if f.PrincipalID != "" {
		where += ` AND principal_id = ?`
		args = append(args, strings.ToLower(f.PrincipalID))
	}
	rows, err := c.r().query(ctx, `SELECT `+roleAssignmentDetailColumns+` FROM role_assignments WHERE `+where+` ORDER BY scope_key, ra_key`, args...)
	if err != nil {
		return nil, fmt.Errorf("list role assignments: %w", err)
	}
	defer rows.Close()
	out, err := scanRoleAssignmentDetails(rows)
	if err != nil {
		return nil, fmt.Errorf("list role assignments: %w", err)
	}
	if f.RoleDefinitionID != "" {
		want := roleKey(f.RoleDefinitionID)
		kept := out[:0]
		for _, a := range out {
			if roleKey(a.RoleDefinitionID) == want {
				kept = append(kept, a)
			}
		}
		out = kept
	}
	return out, nil
}

// roleKey is the lower-case GUID at the end of a role definition ID.
func roleKey(id string) string {
	id = strings.TrimRight(id, "/")
	if i := strings.LastIndexByte(id, '/'); i >= 0 {
		id = id[i+1:]
	}
	return strings.ToLower(id)
}

// PutRoleAssignment creates a role assignment, or updates the description,
// condition and expiry of an existing one with the same ID. Changing the
// scope, role or principal of an existing assignment is refused
// (RoleAssignmentUpdateNotPermitted), and a second assignment of the same
// role to the same principal at the same scope is a conflict
// (RoleAssignmentExists), as in Azure. created reports a new assignment.
func (c *DB) PutRoleAssignment(ctx context.Context, a rbac.RoleAssignment, by Actor) (rbac.RoleAssignment, bool, error) {
	if a.ID == "" || a.Name == "" || a.Scope == "" || a.RoleDefinitionID == "" || a.PrincipalID == "" {
		return rbac.RoleAssignment{}, false, Invalid("InvalidParameter", "roleAssignment",
			"A role assignment needs an ID, a name, a scope, a role definition ID and a principal ID.")
	}
	scope := normalizeScope(string(a.Scope))
	now := c.nowUTC()
	created := false
	err := c.inTx(ctx, func(r run) error {
		rows, err := r.query(ctx, `SELECT `+roleAssignmentDetailColumns+` FROM role_assignments WHERE ra_key = ?`, key(a.ID))
		if err != nil {
			return fmt.Errorf("read role assignment: %w", err)
		}
		cur, err := scanRoleAssignmentDetails(rows)
		rows.Close()
		if err != nil {
			return fmt.Errorf("read role assignment: %w", err)
		}
		if len(cur) == 1 {
			old := cur[0]
			if roleKey(old.RoleDefinitionID) != roleKey(a.RoleDefinitionID) || !strings.EqualFold(old.PrincipalID, a.PrincipalID) ||
				key(normalizeScope(string(old.Scope))) != key(scope) {
				return &Error{Code: "RoleAssignmentUpdateNotPermitted", Kind: api.KindInvalid, base: ErrInvalid,
					Message: "Tenant ID, application ID, principal ID, and scope are not allowed to be updated."}
			}
			a.Created, a.CreatedBy = old.Created, old.CreatedBy
			a.Updated, a.UpdatedBy = now, by.ID
			_, err := r.exec(ctx, `UPDATE role_assignments SET condition = ?, condition_version = ?, description = ?, expires_at = ?,
				updated_at = ?, updated_by = ?, principal_type = ? WHERE ra_key = ?`,
				a.Condition, a.ConditionVersion, a.Description, fmtTime(a.Expires), fmtTime(now), by.ID, a.PrincipalType, key(a.ID))
			if err != nil {
				return fmt.Errorf("update role assignment: %w", err)
			}
			return nil
		}
		var n int
		if err := r.row(ctx, `SELECT COUNT(*) FROM role_assignments WHERE scope_key = ? AND principal_id = ? AND
			(role_definition_id LIKE ? ESCAPE '\' OR role_definition_id LIKE ? ESCAPE '\')`,
			key(scope), strings.ToLower(a.PrincipalID), escapeLike(roleKey(a.RoleDefinitionID)), "%/"+escapeLike(roleKey(a.RoleDefinitionID))).Scan(&n); err != nil {
			return fmt.Errorf("check role assignment: %w", err)
		}
		if n > 0 {
			return conflict("RoleAssignmentExists", "The role assignment already exists.")
		}
		// A new assignment must name a principal of the directory (a user,
		// group, service principal or managed identity), as in Azure.
		kind, err := principalExists(ctx, r, a.PrincipalID)
		if err != nil {
			return err
		}
		if kind == "" {
			return &Error{Code: "PrincipalNotFound", Kind: api.KindInvalid, base: ErrInvalid, Target: "principalId",
				Message: fmt.Sprintf("Principal %s does not exist in the directory.", truncate(strings.ReplaceAll(a.PrincipalID, "-", ""), 64))}
		}
		if a.PrincipalType == "" {
			a.PrincipalType = string(kind)
		}
		a.Created, a.CreatedBy, a.Updated, a.UpdatedBy = now, by.ID, now, by.ID
		_, err = r.exec(ctx, `INSERT INTO role_assignments (ra_key, id, name, scope, scope_key, role_definition_id, principal_id,
			principal_type, condition, created_at, condition_version, description, expires_at, created_by, updated_at, updated_by)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			key(a.ID), a.ID, a.Name, scope, key(scope), a.RoleDefinitionID, strings.ToLower(a.PrincipalID), a.PrincipalType,
			a.Condition, fmtTime(now), a.ConditionVersion, a.Description, fmtTime(a.Expires), by.ID, fmtTime(now), by.ID)
		if c.d.isUniqueViolation(err) {
			return conflict("RoleAssignmentExists", "The role assignment already exists.")
		}
		if err != nil {
			return fmt.Errorf("create role assignment: %w", err)
		}
		created = true
		return nil
	})
	if err != nil {
		return rbac.RoleAssignment{}, false, err
	}
	a.Scope = rbac.Scope(scope)
	a.PrincipalID = strings.ToLower(a.PrincipalID)
	return a, created, nil
}

// DeleteRoleAssignmentByID deletes a role assignment and returns it. deleted
// is false (and the error nil) when there was none.
func (c *DB) DeleteRoleAssignmentByID(ctx context.Context, id string) (rbac.RoleAssignment, bool, error) {
	var out rbac.RoleAssignment
	deleted := false
	err := c.inTx(ctx, func(r run) error {
		rows, err := r.query(ctx, `SELECT `+roleAssignmentDetailColumns+` FROM role_assignments WHERE ra_key = ?`, key(id))
		if err != nil {
			return fmt.Errorf("read role assignment: %w", err)
		}
		cur, err := scanRoleAssignmentDetails(rows)
		rows.Close()
		if err != nil {
			return fmt.Errorf("read role assignment: %w", err)
		}
		if len(cur) == 0 {
			return nil
		}
		if _, err := r.exec(ctx, `DELETE FROM role_assignments WHERE ra_key = ?`, key(id)); err != nil {
			return fmt.Errorf("delete role assignment: %w", err)
		}
		out, deleted = cur[0], true
		return nil
	})
	return out, deleted, err
}

// ----- custom role definitions -----

// StoredRole is a custom role definition with its audit times.
type StoredRole struct {
	rbac.RoleDefinition
	CreatedAt time.Time
	CreatedBy string
	UpdatedAt time.Time
	UpdatedBy string
}

const roleDefinitionColumns = `id, role_name, description, permissions, assignable_scopes, created_at, created_by, updated_at, updated_by`

func scanRoles(rows *sql.Rows) ([]StoredRole, error) {
	var out []StoredRole
	for rows.Next() {
		var s StoredRole
		var perms, scopes, created, updated string
		if err := rows.Scan(&s.ID, &s.Name, &s.Description, &perms, &scopes, &created, &s.CreatedBy, &updated, &s.UpdatedBy); err != nil {
			return nil, err
		}
		s.RoleType = "CustomRole"
		if err := json.Unmarshal([]byte(perms), &s.Permissions); err != nil {
			return nil, fmt.Errorf("decode stored permissions of role %s: %w", s.ID, err)
		}
		if err := json.Unmarshal([]byte(scopes), &s.AssignableScopes); err != nil {
			return nil, fmt.Errorf("decode stored assignable scopes of role %s: %w", s.ID, err)
		}
		var err error
		if s.CreatedAt, err = parseTime(created); err != nil {
			return nil, err
		}
		if s.UpdatedAt, err = parseTime(updated); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// CustomRoles lists the custom role definitions, by role name.
func (c *DB) CustomRoles(ctx context.Context) ([]StoredRole, error) {
	rows, err := c.r().query(ctx, `SELECT `+roleDefinitionColumns+` FROM role_definitions ORDER BY name_key`)
	if err != nil {
		return nil, fmt.Errorf("list role definitions: %w", err)
	}
	defer rows.Close()
	out, err := scanRoles(rows)
	if err != nil {
		return nil, fmt.Errorf("list role definitions: %w", err)
	}
	return out, nil
}

// CustomRoleDefinitions implements rbac.RoleStore.
func (c *DB) CustomRoleDefinitions(ctx context.Context) ([]rbac.RoleDefinition, error) {
	rs, err := c.CustomRoles(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]rbac.RoleDefinition, len(rs))
	for i := range rs {
		out[i] = rs[i].RoleDefinition
	}
	return out, nil
}

// CustomRole returns one custom role by GUID (or role definition ID).
func (c *DB) CustomRole(ctx context.Context, id string) (StoredRole, error) {
	rows, err := c.r().query(ctx, `SELECT `+roleDefinitionColumns+` FROM role_definitions WHERE role_key = ?`, roleKey(id))
	if err != nil {
		return StoredRole{}, fmt.Errorf("read role definition: %w", err)
	}
	defer rows.Close()
	out, err := scanRoles(rows)
	if err != nil {
		return StoredRole{}, fmt.Errorf("read role definition: %w", err)
	}
	if len(out) == 0 {
		e := notFound("RoleDefinitionDoesNotExist", "The specified role definition with ID '%s' does not exist.", truncate(roleKey(id), 100))
		e.also = rbac.ErrNotFound
		return StoredRole{}, e
	}
	return out[0], nil
}

// PutRoleDefinition creates or replaces a custom role. The caller validates
// it (rbac.ValidateRoleDefinition) and keeps built-in IDs and names out. A
// role name used by another role is a conflict (RoleDefinitionWithSameNameExists).
func (c *DB) PutRoleDefinition(ctx context.Context, d rbac.RoleDefinition, by Actor) (StoredRole, bool, error) {
	perms, err := json.Marshal(d.Permissions)
	if err != nil {
		return StoredRole{}, false, fmt.Errorf("encode permissions: %w", err)
	}
	scopes, err := json.Marshal(d.AssignableScopes)
	if err != nil {
		return StoredRole{}, false, fmt.Errorf("encode assignable scopes: %w", err)
	}
	now := c.nowUTC()
	out := StoredRole{RoleDefinition: d, UpdatedAt: now, UpdatedBy: by.ID}
	out.RoleType = "CustomRole"
	out.ID = strings.ToLower(d.ID)
	created := false
	err = c.inTx(ctx, func(r run) error {
		var createdAt, createdBy string
		err := r.row(ctx, `SELECT created_at, created_by FROM role_definitions WHERE role_key = ?`, roleKey(d.ID)).Scan(&createdAt, &createdBy)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			created = true
			out.CreatedAt, out.CreatedBy = now, by.ID
			_, err = r.exec(ctx, `INSERT INTO role_definitions (role_key, id, role_name, name_key, description, permissions,
				assignable_scopes, created_at, created_by, updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				roleKey(d.ID), out.ID, d.Name, strings.ToLower(strings.TrimSpace(d.Name)), d.Description, string(perms), string(scopes),
				fmtTime(now), by.ID, fmtTime(now), by.ID)
		case err != nil:
			return fmt.Errorf("read role definition: %w", err)
		default:
			if out.CreatedAt, err = parseTime(createdAt); err != nil {
				return err
			}
			out.CreatedBy = createdBy
			_, err = r.exec(ctx, `UPDATE role_definitions SET role_name = ?, name_key = ?, description = ?, permissions = ?,
				assignable_scopes = ?, updated_at = ?, updated_by = ? WHERE role_key = ?`,
				d.Name, strings.ToLower(strings.TrimSpace(d.Name)), d.Description, string(perms), string(scopes), fmtTime(now), by.ID, roleKey(d.ID))
		}
		if c.d.isUniqueViolation(err) {
			return conflict("RoleDefinitionWithSameNameExists", "A custom role with the same name already exists in this directory.")
		}
		if err != nil {
			return fmt.Errorf("write role definition: %w", err)
		}
		return nil
	})
	if err != nil {
		return StoredRole{}, false, err
	}
	return out, created, nil
}

// DeleteRoleDefinition deletes a custom role. A role that is still assigned
// cannot be deleted (409 RoleDefinitionHasAssignments). deleted is false
// when there was no such role.
func (c *DB) DeleteRoleDefinition(ctx context.Context, id string) (StoredRole, bool, error) {
	var out StoredRole
	deleted := false
	err := c.inTx(ctx, func(r run) error {
		rows, err := r.query(ctx, `SELECT `+roleDefinitionColumns+` FROM role_definitions WHERE role_key = ?`, roleKey(id))
		if err != nil {
			return fmt.Errorf("read role definition: %w", err)
		}
		got, err := scanRoles(rows)
		rows.Close()
		if err != nil {
			return fmt.Errorf("read role definition: %w", err)
		}
		if len(got) == 0 {
			return nil
		}
		var n int
		if err := r.row(ctx, `SELECT COUNT(*) FROM role_assignments WHERE role_definition_id LIKE ? ESCAPE '\' OR role_definition_id LIKE ? ESCAPE '\'`,
			escapeLike(roleKey(id)), "%/"+escapeLike(roleKey(id))).Scan(&n); err != nil {
			return fmt.Errorf("count role assignments: %w", err)
		}
		if n > 0 {
			return conflict("RoleDefinitionHasAssignments",
				"There are existing role assignments referencing role (code: RoleDefinitionHasAssignments); %d must be deleted first.", n)
		}
		if _, err := r.exec(ctx, `DELETE FROM role_definitions WHERE role_key = ?`, roleKey(id)); err != nil {
			return fmt.Errorf("delete role definition: %w", err)
		}
		out, deleted = got[0], true
		return nil
	})
	return out, deleted, err
}
