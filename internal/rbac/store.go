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

	// The fields below were added with the role assignment API. Stores that
	// predate them leave them zero, which means: condition version "2.0" when
	// there is a condition, no description, never expires.

	ConditionVersion string    // "2.0" when Condition is set
	Description      string    // free text shown by the API
	Expires          time.Time // Custos extension: zero means never; at or after it the assignment grants nothing
	CreatedBy        string    // object ID of the principal that created it
	Updated          time.Time
	UpdatedBy        string
}

// Expired reports whether the assignment has an expiry at or before now.
func (a RoleAssignment) Expired(now time.Time) bool {
	return !a.Expires.IsZero() && !now.Before(a.Expires)
}

// DetailedAssignmentStore is implemented by assignment stores that persist
// every RoleAssignment field (the catalog does). When the Authorizer's Store
// implements it, Authorize reads assignments through it, so that expiry is
// enforced.
type DetailedAssignmentStore interface {
	RoleAssignmentDetailsFor(ctx context.Context, principalIDs []string) ([]RoleAssignment, error)
}

// RoleStore is implemented by stores that hold custom role definitions (the
// catalog does). When the Authorizer's Store implements it, custom roles are
// loaded from it and refreshed as often as cached assignments.
type RoleStore interface {
	CustomRoleDefinitions(ctx context.Context) ([]RoleDefinition, error)
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
