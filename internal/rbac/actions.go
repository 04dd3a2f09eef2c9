package rbac

import "strings"

// Control-plane actions the Custos handlers authorize. The names are Azure's,
// so that built-in roles and custom role JSON written for Azure mean the same
// here.
const (
	ActionSubscriptionRead   Action = "Microsoft.Resources/subscriptions/read"
	ActionSubscriptionWrite  Action = "Microsoft.Resources/subscriptions/write"
	ActionSubscriptionDelete Action = "Microsoft.Resources/subscriptions/delete"

	ActionResourceGroupRead   Action = "Microsoft.Resources/subscriptions/resourceGroups/read"
	ActionResourceGroupWrite  Action = "Microsoft.Resources/subscriptions/resourceGroups/write"
	ActionResourceGroupDelete Action = "Microsoft.Resources/subscriptions/resourceGroups/delete"

	ActionWorkspaceRead       Action = "Microsoft.OperationalInsights/workspaces/read"
	ActionWorkspaceWrite      Action = "Microsoft.OperationalInsights/workspaces/write"
	ActionWorkspaceDelete     Action = "Microsoft.OperationalInsights/workspaces/delete"
	ActionWorkspaceSharedKeys Action = "Microsoft.OperationalInsights/workspaces/sharedKeys/action"
	ActionWorkspacePurge      Action = "Microsoft.OperationalInsights/workspaces/purge/action"
	ActionWorkspaceSearch     Action = "Microsoft.OperationalInsights/workspaces/search/action"

	ActionTableRead   Action = "Microsoft.OperationalInsights/workspaces/tables/read"
	ActionTableWrite  Action = "Microsoft.OperationalInsights/workspaces/tables/write"
	ActionTableDelete Action = "Microsoft.OperationalInsights/workspaces/tables/delete"

	// ActionQueryRead is what the Log Analytics Query API checks on the
	// workspace (run queries, read metadata).
	ActionQueryRead Action = "Microsoft.OperationalInsights/workspaces/query/read"
	// ActionResourceLogsRead is the resource-context read permission
	// (Microsoft.Insights/logs/*/read covers every table).
	ActionResourceLogsRead Action = "Microsoft.Insights/logs/read"

	ActionDCRRead   Action = "Microsoft.Insights/dataCollectionRules/read"
	ActionDCRWrite  Action = "Microsoft.Insights/dataCollectionRules/write"
	ActionDCRDelete Action = "Microsoft.Insights/dataCollectionRules/delete"

	ActionScheduledQueryRuleRead   Action = "Microsoft.Insights/scheduledQueryRules/read"
	ActionScheduledQueryRuleWrite  Action = "Microsoft.Insights/scheduledQueryRules/write"
	ActionScheduledQueryRuleDelete Action = "Microsoft.Insights/scheduledQueryRules/delete"

	ActionActionGroupRead   Action = "Microsoft.Insights/actionGroups/read"
	ActionActionGroupWrite  Action = "Microsoft.Insights/actionGroups/write"
	ActionActionGroupDelete Action = "Microsoft.Insights/actionGroups/delete"

	ActionRoleAssignmentRead   Action = "Microsoft.Authorization/roleAssignments/read"
	ActionRoleAssignmentWrite  Action = "Microsoft.Authorization/roleAssignments/write"
	ActionRoleAssignmentDelete Action = "Microsoft.Authorization/roleAssignments/delete"
	ActionRoleDefinitionRead   Action = "Microsoft.Authorization/roleDefinitions/read"

	// ActionMetricsRead guards the server's own Prometheus /metrics endpoint
	// (checked at scope "/"); Reader and Monitoring Reader have it via */read.
	ActionMetricsRead Action = "Microsoft.Insights/Metrics/Read"
)

// Data actions: operations on the data inside a resource rather than on the
// resource. A role grants them only through dataActions; "*" in actions
// (Owner, Contributor) does not include them, as in Azure.
const (
	// ActionTelemetryWrite is what the Logs Ingestion API checks on the DCR.
	ActionTelemetryWrite Action = "Microsoft.Insights/Telemetry/Write"
	// ActionMetricsWrite publishes custom metrics.
	ActionMetricsWrite Action = "Microsoft.Insights/Metrics/Write"
	// ActionTableDataRead is the granular-RBAC data action "Read workspace data".
	ActionTableDataRead Action = "Microsoft.OperationalInsights/workspaces/tables/data/read"
)

// dataActions lists, lower-cased, the operations that are data actions. It is
// an immutable lookup table.
var dataActions = map[string]bool{
	strings.ToLower(string(ActionTelemetryWrite)): true,
	strings.ToLower(string(ActionMetricsWrite)):   true,
	strings.ToLower(string(ActionTableDataRead)):  true,
}

// IsData reports whether a is a data action, which roles grant through
// dataActions rather than actions. Besides the known data actions, any
// operation with a "/data/" segment is one, following Azure's naming.
func (a Action) IsData() bool {
	l := strings.ToLower(string(a))
	return dataActions[l] || strings.Contains(l, "/data/")
}

// valid reports whether a looks like an Azure operation name:
// "{Namespace}/{type}[/...]/{verb}" without wildcards or spaces.
func (a Action) valid() bool {
	s := string(a)
	if len(s) < 3 || len(s) > 512 || strings.ContainsAny(s, "* \t\r\n") {
		return false
	}
	i := strings.IndexByte(s, '/')
	return i > 0 && i < len(s)-1 && !strings.Contains(s, "//") && !strings.HasSuffix(s, "/")
}
