package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"custos/internal/api"
)

// Just-in-time access requests (Custos.Access/accessRequests): a principal
// asks for time-bound data access to a workspace; an owner of the workspace
// approves (which creates an expiring role assignment, in the same
// transaction) or rejects.

// Access request states.
const (
	AccessPending  = "Pending"
	AccessApproved = "Approved"
	AccessRejected = "Rejected"
	AccessExpired  = "Expired" // approved access that has ended, or a request left pending too long
)

// Limits of access requests.
const (
	MaxAccessDuration     = 8 * time.Hour
	MinAccessDuration     = 5 * time.Minute
	PendingRequestTimeout = 24 * time.Hour
)

// TypeAccessRequest is the resource type of access requests.
const TypeAccessRequest = "Custos.Access/accessRequests"

// AccessRequest is one request for time-bound access to a workspace.
type AccessRequest struct {
	ID               string // {workspace}/providers/Custos.Access/accessRequests/{name}
	Name             string // GUID
	Scope            string // workspace resource ID
	TenantID         string
	RequesterID      string
	RequesterType    string
	RoleDefinitionID string // GUID of the role to grant (default Log Analytics Reader)
	Justification    string
	Duration         time.Duration
	Status           string
	Created          time.Time
	Decided          time.Time
	DecidedBy        string
	DecisionReason   string
	AssignmentID     string    // the role assignment an approval created
	AccessExpires    time.Time // end of approved access
}

// EffectiveStatus is Status with time applied: approved access past its
// end, and pending requests older than PendingRequestTimeout, are Expired.
func (a AccessRequest) EffectiveStatus(now time.Time) string {
	switch {
	case a.Status == AccessApproved && !now.Before(a.AccessExpires):
		return AccessExpired
	case a.Status == AccessPending && !now.Before(a.Created.Add(PendingRequestTimeout)):
		return AccessExpired
	}
	return a.Status
}

const accessRequestColumns = `id, name, scope, tenant_id, requester_id, requester_type, role_definition_id, justification, duration_seconds,
	status, created_at, decided_at, decided_by, decision_reason, assignment_id, access_expires_at`

func scanAccessRequest(sc interface{ Scan(...any) error }) (AccessRequest, error) {
	var a AccessRequest
	var secs int64
	var created, decided, expires string
	if err := sc.Scan(&a.ID, &a.Name, &a.Scope, &a.TenantID, &a.RequesterID, &a.RequesterType, &a.RoleDefinitionID, &a.Justification,
		&secs, &a.Status, &created, &decided, &a.DecidedBy, &a.DecisionReason, &a.AssignmentID, &expires); err != nil {
		return a, err
	}
	a.Duration = time.Duration(secs) * time.Second
	var err error
	if a.Created, err = parseTime(created); err != nil {
		return a, err
	}
	if a.Decided, err = parseTime(decided); err != nil {
		return a, err
	}
	a.AccessExpires, err = parseTime(expires)
	return a, err
}

func errAccessRequestNotFound(name string) *Error {
	return notFound("AccessRequestNotFound", "The access request '%s' was not found.", truncate(name, 64))
}

// CreateAccessRequest stores a new pending request on an existing
// workspace. The caller fills Name (a GUID), Scope (the workspace ID),
// TenantID, the requester, the role, the justification and the duration.
func (c *DB) CreateAccessRequest(ctx context.Context, a AccessRequest) (AccessRequest, error) {
	switch {
	case !IsGUID(a.Name):
		return a, Invalid("InvalidParameter", "name", "An access request name must be a GUID.")
	case strings.TrimSpace(a.Justification) == "" || len(a.Justification) > 1024:
		return a, Invalid("InvalidParameter", "justification", "A justification of 1 to 1024 characters is required.")
	case a.Duration < MinAccessDuration || a.Duration > MaxAccessDuration:
		return a, Invalid("InvalidParameter", "duration", "The duration must be between %v and %v.", MinAccessDuration, MaxAccessDuration)
	case a.RequesterID == "":
		return a, Invalid("InvalidParameter", "requester", "An access request needs a requester.")
	}
	sub, rg, ws, ok := ParseWorkspaceResourceID(a.Scope)
	if !ok {
		return a, Invalid("InvalidParameter", "scope", "Access requests are made on a workspace.")
	}
	w, err := c.Workspace(ctx, sub, rg, ws)
	if err != nil {
		return a, err
	}
	a.Scope = w.ID()
	a.ID = a.Scope + "/providers/" + TypeAccessRequest + "/" + strings.ToLower(a.Name)
	a.Name = strings.ToLower(a.Name)
	a.Status, a.Created = AccessPending, c.nowUTC()
	_, err = c.r().exec(ctx, `INSERT INTO access_requests (request_key, `+accessRequestColumns+`, ws_key) VALUES
		(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', '', '', '', '', ?)`, key(a.ID), a.ID, a.Name, a.Scope, strings.ToLower(a.TenantID),
		strings.ToLower(a.RequesterID), a.RequesterType, a.RoleDefinitionID, a.Justification, int64(a.Duration/time.Second), a.Status,
		fmtTime(a.Created), key(w.ID()))
	if c.d.isUniqueViolation(err) {
		return a, conflict("AccessRequestExists", "An access request named '%s' already exists.", a.Name)
	}
	if err != nil {
		return a, fmt.Errorf("create access request: %w", err)
	}
	return a, nil
}

// AccessRequest returns one request of a workspace.
func (c *DB) AccessRequest(ctx context.Context, workspaceID, name string) (AccessRequest, error) {
	id := strings.TrimRight(workspaceID, "/") + "/providers/" + TypeAccessRequest + "/" + name
	a, err := scanAccessRequest(c.r().row(ctx, `SELECT `+accessRequestColumns+` FROM access_requests WHERE request_key = ?`, key(id)))
	if errors.Is(err, sql.ErrNoRows) {
		return a, errAccessRequestNotFound(name)
	}
	if err != nil {
		return a, fmt.Errorf("get access request: %w", err)
	}
	return a, nil
}

// AccessRequests lists the requests of a workspace, newest first.
func (c *DB) AccessRequests(ctx context.Context, workspaceID string) ([]AccessRequest, error) {
	return queryAll(ctx, c.r(), "list access requests", scanAccessRequest,
		`SELECT `+accessRequestColumns+` FROM access_requests WHERE ws_key = ? ORDER BY created_at DESC, name`, key(strings.TrimRight(workspaceID, "/")))
}

// DecideAccessRequest approves or rejects a pending request. Approval
// creates, in the same transaction, a role assignment (assignmentName, a
// GUID) of the requested role to the requester at the workspace, expiring
// at now + the requested duration. The decider may not be the requester.
func (c *DB) DecideAccessRequest(ctx context.Context, workspaceID, name string, approve bool, reason, assignmentName string, by Actor) (AccessRequest, error) {
	now := c.nowUTC()
	var out AccessRequest
	err := c.inTx(ctx, func(r run) error {
		id := strings.TrimRight(workspaceID, "/") + "/providers/" + TypeAccessRequest + "/" + name
		a, err := scanAccessRequest(r.row(ctx, `SELECT `+accessRequestColumns+` FROM access_requests WHERE request_key = ?`, key(id)))
		if errors.Is(err, sql.ErrNoRows) {
			return errAccessRequestNotFound(name)
		}
		if err != nil {
			return fmt.Errorf("get access request: %w", err)
		}
		if st := a.EffectiveStatus(now); st != AccessPending {
			return conflict("AccessRequestNotPending", "The access request is %s; only pending requests can be approved or rejected.", st)
		}
		if strings.EqualFold(by.ID, a.RequesterID) {
			return &Error{Code: "SelfApprovalNotAllowed", Kind: api.KindForbidden, base: ErrInvalid,
				Message: "The requester of an access request cannot approve or reject it."}
		}
		if len(reason) > 1024 {
			return Invalid("InvalidParameter", "reason", "The reason is longer than 1024 characters.")
		}
		a.Decided, a.DecidedBy, a.DecisionReason = now, by.ID, reason
		a.Status = AccessRejected
		if approve {
			if !IsGUID(assignmentName) {
				return Invalid("InvalidParameter", "assignmentName", "The role assignment name must be a GUID.")
			}
			a.Status, a.AccessExpires = AccessApproved, now.Add(a.Duration)
			a.AssignmentID = a.Scope + "/providers/Microsoft.Authorization/roleAssignments/" + strings.ToLower(assignmentName)
			scope := normalizeScope(a.Scope)
			roleID := "/providers/Microsoft.Authorization/roleDefinitions/" + a.RoleDefinitionID
			_, err := r.exec(ctx, `INSERT INTO role_assignments (ra_key, id, name, scope, scope_key, role_definition_id, principal_id,
				principal_type, condition, created_at, condition_version, description, expires_at, created_by, updated_at, updated_by)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, '', ?, '', ?, ?, ?, ?, ?)`,
				key(a.AssignmentID), a.AssignmentID, strings.ToLower(assignmentName), scope, key(scope), roleID, a.RequesterID,
				a.RequesterType, fmtTime(now), "Just-in-time access request "+a.Name+": "+truncate(a.Justification, 200),
				fmtTime(a.AccessExpires), by.ID, fmtTime(now), by.ID)
			if err != nil {
				return fmt.Errorf("create role assignment for access request: %w", err)
			}
		}
		_, err = r.exec(ctx, `UPDATE access_requests SET status = ?, decided_at = ?, decided_by = ?, decision_reason = ?, assignment_id = ?,
			access_expires_at = ? WHERE request_key = ?`, a.Status, fmtTime(a.Decided), a.DecidedBy, a.DecisionReason, a.AssignmentID,
			fmtTime(a.AccessExpires), key(id))
		if err != nil {
			return fmt.Errorf("decide access request: %w", err)
		}
		out = a
		return nil
	})
	return out, err
}

// RevokeAccessRequest ends approved access early: it deletes the role
// assignment the approval created and marks the request Expired.
func (c *DB) RevokeAccessRequest(ctx context.Context, workspaceID, name string, by Actor) (AccessRequest, error) {
	now := c.nowUTC()
	var out AccessRequest
	err := c.inTx(ctx, func(r run) error {
		id := strings.TrimRight(workspaceID, "/") + "/providers/" + TypeAccessRequest + "/" + name
		a, err := scanAccessRequest(r.row(ctx, `SELECT `+accessRequestColumns+` FROM access_requests WHERE request_key = ?`, key(id)))
		if errors.Is(err, sql.ErrNoRows) {
			return errAccessRequestNotFound(name)
		}
		if err != nil {
			return fmt.Errorf("get access request: %w", err)
		}
		if a.EffectiveStatus(now) != AccessApproved {
			return conflict("AccessRequestNotActive", "Only approved access that has not ended can be revoked.")
		}
		if _, err := r.exec(ctx, `DELETE FROM role_assignments WHERE ra_key = ?`, key(a.AssignmentID)); err != nil {
			return fmt.Errorf("revoke access: %w", err)
		}
		a.Status, a.AccessExpires = AccessExpired, now
		a.DecisionReason = strings.TrimSpace(a.DecisionReason + " (revoked by " + by.ID + ")")
		if _, err := r.exec(ctx, `UPDATE access_requests SET status = ?, access_expires_at = ?, decision_reason = ? WHERE request_key = ?`,
			a.Status, fmtTime(now), a.DecisionReason, key(id)); err != nil {
			return fmt.Errorf("revoke access: %w", err)
		}
		out = a
		return nil
	})
	return out, err
}
