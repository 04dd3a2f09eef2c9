package rbac

import (
	"context"
	"fmt"
	"strings"

	"custos/internal/identity"
)

// Just-in-time operator access. With Options.JustInTime, assignments at the
// root scope "/" — the installation's administrators — grant none of the
// actions below; a workspace's data is then readable only through
// assignments at the subscription or below, such as the expiring one an
// approved access request creates.

// ActionAccessRequestApprove is the action a workspace owner needs to
// approve or reject a just-in-time access request (Owner has it through
// "*"); with JustInTime it is not granted by root assignments, so
// administrators cannot approve their own access.
const ActionAccessRequestApprove Action = "Custos.Access/accessRequests/approve/action"

// jitPrefixes are the lower-cased operation prefixes of data access.
var jitPrefixes = []string{
	"microsoft.operationalinsights/workspaces/query/",
	"microsoft.operationalinsights/workspaces/tables/data/",
	"microsoft.insights/logs/",
	"custos.access/accessrequests/approve/",
}

// JITRestricted reports whether act reads log data (or approves access to
// it), and so is not granted by root assignments in just-in-time mode.
func JITRestricted(act Action) bool {
	l := strings.ToLower(string(act))
	for _, p := range jitPrefixes {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return false
}

// JustInTime reports whether the authorizer runs in just-in-time mode.
func (a *Authorizer) JustInTime() bool { return a != nil && a.jit }

// jitProbes are the data-access operations a role is tested for when a
// principal assigns it to themselves in just-in-time mode: running queries,
// reading table data (granular RBAC), reading resource-context logs and
// approving access requests.
var jitProbes = []Action{ActionQueryRead, ActionTableDataRead, ActionResourceLogsRead, ActionAccessRequestApprove}

// CheckSelfGrant decides whether p may create the role assignment ra (of
// role) in just-in-time mode. Outside that mode, and for assignments to
// principals other than p and the groups p belongs to, it allows. An
// assignment to p itself (or to one of its groups, directly or through
// nesting) whose role grants data access at ra.Scope that p does not already
// hold there is refused: administrators of the installation reach log data
// only through an access request that a workspace owner approves, or through
// a role that another administrator assigns to them — never by granting it
// to themselves. The Decision's Reason says which access was refused.
func (a *Authorizer) CheckSelfGrant(ctx context.Context, p identity.Principal, ra RoleAssignment, role RoleDefinition) (Decision, error) {
	if !a.JustInTime() || p.ObjectID == "" {
		return Decision{Allowed: true, Reason: "not in just-in-time mode"}, nil
	}
	self, err := a.isSelfOrGroup(ctx, p, ra.PrincipalID)
	if err != nil {
		return Decision{Reason: "group memberships unavailable"}, fmt.Errorf("check self-assignment: %w", err)
	}
	if !self {
		return Decision{Allowed: true, Reason: "assignment to another principal"}, nil
	}
	cr := compileRole(role)
	probes, wild := selfGrantProbes(role)
	if wild != "" {
		return Decision{Reason: fmt.Sprintf("role %q grants %q, a wildcard over log data access; in just-in-time mode a principal cannot grant itself such a role (another administrator can)",
			role.Name, wild)}, nil
	}
	for _, act := range probes {
		if !cr.allows(strings.ToLower(string(act)), act.IsData()) {
			continue
		}
		held, err := a.Authorize(ctx, p, act, ra.Scope)
		if err != nil {
			return Decision{Reason: "authorization unavailable"}, fmt.Errorf("check self-assignment: %w", err)
		}
		if !held.Allowed {
			return Decision{Reason: fmt.Sprintf("role %q grants %s at %s, which the caller does not hold there; in just-in-time mode a principal cannot grant itself access to log data",
				role.Name, act, ra.Scope)}, nil
		}
	}
	return Decision{Allowed: true, Reason: "the role grants the caller no data access it lacks"}, nil
}

// selfGrantProbes returns the operations CheckSelfGrant tests role for: the
// standard jitProbes plus every concrete operation the role names that reads
// log data (a legacy per-table query action, say). wild is a wildcard
// pattern of the role that reaches into log data access without matching
// any standard probe (such as "…/workspaces/query/Perf/*"): whether the
// caller already holds everything it covers cannot be decided, so such a
// role is refused.
func selfGrantProbes(role RoleDefinition) (probes []Action, wild string) {
	probes = append(probes, jitProbes...)
	for _, perm := range role.Permissions {
		for _, list := range [][]string{perm.Actions, perm.DataActions} {
			for _, raw := range list {
				pat := strings.ToLower(strings.TrimSpace(raw))
				star := strings.IndexByte(pat, '*')
				if star < 0 {
					if JITRestricted(Action(pat)) {
						probes = append(probes, Action(pat))
					}
					continue
				}
				if !overlapsJIT(pat[:star]) {
					continue
				}
				cp := compilePattern(pat)
				covered := false
				for _, pr := range jitProbes {
					if cp.match(strings.ToLower(string(pr))) {
						covered = true
						break
					}
				}
				if !covered {
					return nil, raw
				}
			}
		}
	}
	return probes, ""
}

// overlapsJIT reports whether a pattern beginning with the literal prefix
// (the text before its first "*") can match a just-in-time restricted
// operation.
func overlapsJIT(prefix string) bool {
	for _, p := range jitPrefixes {
		if strings.HasPrefix(prefix, p) || strings.HasPrefix(p, prefix) {
			return true
		}
	}
	return false
}

// isSelfOrGroup reports whether principalID is p or a group p belongs to.
func (a *Authorizer) isSelfOrGroup(ctx context.Context, p identity.Principal, principalID string) (bool, error) {
	if strings.EqualFold(principalID, p.ObjectID) {
		return true, nil
	}
	ids := []string{strings.ToLower(p.ObjectID)}
	for _, g := range p.GroupIDs {
		if strings.EqualFold(g, principalID) {
			return true, nil
		}
		ids = append(ids, strings.ToLower(g))
	}
	if a.groups == nil {
		return false, nil
	}
	gs, err := a.groups.TransitiveGroups(ctx, ids)
	if err != nil {
		return false, err
	}
	for _, g := range gs {
		if strings.EqualFold(g, principalID) {
			return true, nil
		}
	}
	return false, nil
}

// CheckSelfMembership decides whether p may add memberID to a group in
// just-in-time mode: adding oneself, or a group one belongs to, is refused,
// since the group may hold data roles (or get them later) and membership
// would otherwise be a way around CheckSelfGrant. Another administrator
// makes such changes. Outside just-in-time mode it allows.
func (a *Authorizer) CheckSelfMembership(ctx context.Context, p identity.Principal, memberID string) (Decision, error) {
	if !a.JustInTime() || p.ObjectID == "" {
		return Decision{Allowed: true, Reason: "not in just-in-time mode"}, nil
	}
	self, err := a.isSelfOrGroup(ctx, p, memberID)
	if err != nil {
		return Decision{Reason: "group memberships unavailable"}, fmt.Errorf("check self-membership: %w", err)
	}
	if self {
		return Decision{Reason: "in just-in-time mode a principal cannot add itself, or a group it belongs to, to a group"}, nil
	}
	return Decision{Allowed: true, Reason: "membership of another principal"}, nil
}
