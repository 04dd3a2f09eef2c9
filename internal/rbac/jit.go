package rbac

import "strings"

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
