package rbac

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned by an AssignmentStore when the record does not exist.
var ErrNotFound = errors.New("rbac: not found")

// RoleAssignment grants a role definition to a principal at a scope, as in
// Microsoft.Authorization/roleAssignments.
type RoleAssignment struct {
	ID               string // full resource ID: {scope}/providers/Microsoft.Authorization/roleAssignments/{name}
	Name             string // GUID
	Scope            Scope
	RoleDefinitionID string // GUID of the role definition (built-in roles use Azure's GUIDs)
	PrincipalID      string // object ID of a user, group, service principal or managed identity
	PrincipalType    string // identity.PrincipalKind as text
	Condition        string // ABAC condition; empty for none
	Created          time.Time
}

// AssignmentStore persists role assignments. The catalog implements it.
// Implementations are safe for concurrent use.
type AssignmentStore interface {
	// RoleAssignmentsFor returns every assignment whose principal is one of principalIDs.
	RoleAssignmentsFor(ctx context.Context, principalIDs []string) ([]RoleAssignment, error)
	ListRoleAssignments(ctx context.Context, scopePrefix Scope) ([]RoleAssignment, error)
	CreateRoleAssignment(ctx context.Context, a RoleAssignment) error
	DeleteRoleAssignment(ctx context.Context, id string) error
}
