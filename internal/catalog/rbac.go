package catalog

import (
	"context"
	"fmt"
	"strings"

	"custos/internal/rbac"
)

var _ rbac.AssignmentStore = (*DB)(nil)

func rbacNotFound(format string, args ...any) *Error {
	e := notFound("RoleAssignmentNotFound", format, args...)
	e.also = rbac.ErrNotFound
	return e
}

// normalizeScope trims a trailing slash (except for the root scope "/").
func normalizeScope(s string) string {
	if len(s) > 1 {
		s = strings.TrimRight(s, "/")
	}
	if s == "" {
		s = "/"
	}
	return s
}

const roleAssignmentColumns = `id, name, scope, role_definition_id, principal_id, principal_type, condition, created_at`

func scanRoleAssignments(rows interface {
	Next() bool
	Scan(...any) error
	Err() error
}) ([]rbac.RoleAssignment, error) {
	var out []rbac.RoleAssignment
	for rows.Next() {
		var a rbac.RoleAssignment
		var scope, created string
		if err := rows.Scan(&a.ID, &a.Name, &scope, &a.RoleDefinitionID, &a.PrincipalID, &a.PrincipalType, &a.Condition, &created); err != nil {
			return nil, err
		}
		a.Scope = rbac.Scope(scope)
		var err error
		if a.Created, err = parseTime(created); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// RoleAssignmentsFor implements rbac.AssignmentStore.
func (c *DB) RoleAssignmentsFor(ctx context.Context, principalIDs []string) ([]rbac.RoleAssignment, error) {
	if len(principalIDs) == 0 {
		return nil, nil
	}
	var out []rbac.RoleAssignment
	// Bounded IN lists keep every engine under its parameter limit.
	const chunk = 200
	for start := 0; start < len(principalIDs); start += chunk {
		ids := principalIDs[start:min(start+chunk, len(principalIDs))]
		args := make([]any, len(ids))
		for i, id := range ids {
			args[i] = strings.ToLower(id)
		}
		q := `SELECT ` + roleAssignmentColumns + ` FROM role_assignments WHERE principal_id IN (?` +
			strings.Repeat(", ?", len(ids)-1) + `) ORDER BY ra_key`
		rows, err := c.r().query(ctx, q, args...)
		if err != nil {
			return nil, fmt.Errorf("list role assignments: %w", err)
		}
		got, err := scanRoleAssignments(rows)
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("list role assignments: %w", err)
		}
		out = append(out, got...)
	}
	return out, nil
}

// ListRoleAssignments implements rbac.AssignmentStore: the assignments at
// scopePrefix or below it (ARM ID segments compare case-insensitively).
func (c *DB) ListRoleAssignments(ctx context.Context, scopePrefix rbac.Scope) ([]rbac.RoleAssignment, error) {
	prefix := key(normalizeScope(string(scopePrefix)))
	var rows interface {
		Next() bool
		Scan(...any) error
		Err() error
		Close() error
	}
	var err error
	if prefix == "/" {
		rows, err = c.r().query(ctx, `SELECT `+roleAssignmentColumns+` FROM role_assignments ORDER BY ra_key`)
	} else {
		rows, err = c.r().query(ctx, `SELECT `+roleAssignmentColumns+` FROM role_assignments
			WHERE scope_key = ? OR scope_key LIKE ? ESCAPE '\' ORDER BY ra_key`, prefix, escapeLike(prefix)+"/%")
	}
	if err != nil {
		return nil, fmt.Errorf("list role assignments: %w", err)
	}
	defer rows.Close()
	out, err := scanRoleAssignments(rows)
	if err != nil {
		return nil, fmt.Errorf("list role assignments: %w", err)
	}
	return out, nil
}

func escapeLike(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

// CreateRoleAssignment implements rbac.AssignmentStore. ID, Name, Scope,
// RoleDefinitionID and PrincipalID are required; an existing ID is a conflict.
// A zero Created is set to now.
func (c *DB) CreateRoleAssignment(ctx context.Context, a rbac.RoleAssignment) error {
	if a.ID == "" || a.Name == "" || a.Scope == "" || a.RoleDefinitionID == "" || a.PrincipalID == "" {
		return Invalid("InvalidParameter", "roleAssignment",
			"A role assignment needs an ID, a name, a scope, a role definition ID and a principal ID.")
	}
	if a.Created.IsZero() {
		a.Created = c.nowUTC()
	}
	scope := normalizeScope(string(a.Scope))
	_, err := c.r().exec(ctx, `INSERT INTO role_assignments (ra_key, id, name, scope, scope_key, role_definition_id, principal_id,
		principal_type, condition, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		key(a.ID), a.ID, a.Name, scope, key(scope), a.RoleDefinitionID, strings.ToLower(a.PrincipalID), a.PrincipalType,
		a.Condition, fmtTime(a.Created))
	if c.d.isUniqueViolation(err) {
		return conflict("RoleAssignmentExists", "The role assignment '%s' already exists.", a.ID)
	}
	if err != nil {
		return fmt.Errorf("create role assignment: %w", err)
	}
	return nil
}

// DeleteRoleAssignment implements rbac.AssignmentStore. It returns an error
// matching rbac.ErrNotFound when no assignment has the ID.
func (c *DB) DeleteRoleAssignment(ctx context.Context, id string) error {
	res, err := c.r().exec(ctx, `DELETE FROM role_assignments WHERE ra_key = ?`, key(id))
	if err != nil {
		return fmt.Errorf("delete role assignment: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return rbacNotFound("The role assignment '%s' could not be found.", truncate(id, 300))
	}
	return nil
}
