package rbac

import "strings"

// Permission is one permissions block of a role definition. A role grants an
// operation when some block matches it in Actions (or DataActions, for data
// actions) and the same block does not exclude it in NotActions
// (NotDataActions). Patterns may contain "*" wildcards and compare
// case-insensitively.
type Permission struct {
	Actions        []string `json:"actions"`
	NotActions     []string `json:"notActions"`
	DataActions    []string `json:"dataActions"`
	NotDataActions []string `json:"notDataActions"`
}

// RoleDefinition is an Azure role definition
// (Microsoft.Authorization/roleDefinitions). ID is the bare GUID; the ARM
// resource ID is "/providers/Microsoft.Authorization/roleDefinitions/{ID}".
type RoleDefinition struct {
	ID               string
	Name             string // roleName, e.g. "Owner"
	Description      string
	RoleType         string // "BuiltInRole" or "CustomRole"
	Permissions      []Permission
	AssignableScopes []string
}

// ResourceID returns the role definition's tenant-level ARM resource ID.
func (d RoleDefinition) ResourceID() string {
	return "/providers/Microsoft.Authorization/roleDefinitions/" + d.ID
}

// Built-in role definition IDs: Azure's GUIDs.
const (
	RoleOwner                      = "8e3af657-a8ff-443c-a75c-2fe8c4bcd635"
	RoleContributor                = "b24988ac-6180-42a0-ab88-20f7382dd24c"
	RoleReader                     = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
	RoleUserAccessAdministrator    = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
	RoleMonitoringReader           = "43d0d8ad-25c7-4714-9337-8ba259a9fe05"
	RoleMonitoringContributor      = "749f88d5-cbae-40b8-bcfc-e573ddc772fa"
	RoleMonitoringMetricsPublisher = "3913510d-42f4-4e42-8a64-420c390055eb"
	RoleLogAnalyticsReader         = "73c42c96-874c-492b-b04d-ab87d138a893"
	RoleLogAnalyticsContributor    = "92aaf0da-9dab-42b6-94a3-d43ce8d16293"
	RoleDataPurger                 = "150f5e0c-0603-4f03-8c7f-cf70034c4e90"
)

// BuiltinRoles returns the built-in role definitions, as Azure defines them
// (spec §3.1; Microsoft Learn "Azure built-in roles"). The result is a fresh
// copy the caller may modify.
func BuiltinRoles() []RoleDefinition {
	out := builtinRoles()
	return out
}

// BuiltinRole returns the built-in role with the given ID. The ID may be the
// bare GUID or a role definition resource ID ending in it.
func BuiltinRole(id string) (RoleDefinition, bool) {
	id = roleGUID(id)
	for _, d := range builtinRoles() {
		if strings.EqualFold(d.ID, id) {
			return d, true
		}
	}
	return RoleDefinition{}, false
}

// roleGUID returns the last path segment of a role definition ID, so that
// "/subscriptions/x/providers/Microsoft.Authorization/roleDefinitions/{guid}"
// and "{guid}" name the same role.
func roleGUID(id string) string {
	id = strings.TrimRight(id, "/")
	if i := strings.LastIndexByte(id, '/'); i >= 0 {
		id = id[i+1:]
	}
	return strings.ToLower(id)
}

func builtinRoles() []RoleDefinition {
	root := []string{"/"}
	role := func(id, name, desc string, p Permission) RoleDefinition {
		return RoleDefinition{ID: id, Name: name, Description: desc, RoleType: "BuiltInRole",
			Permissions: []Permission{p}, AssignableScopes: root}
	}
	return []RoleDefinition{
		role(RoleOwner, "Owner",
			"Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.",
			Permission{Actions: []string{"*"}}),
		role(RoleContributor, "Contributor",
			"Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC, manage assignments in Azure Blueprints, or share image galleries.",
			Permission{Actions: []string{"*"}, NotActions: []string{
				"Microsoft.Authorization/*/Delete",
				"Microsoft.Authorization/*/Write",
				"Microsoft.Authorization/elevateAccess/Action",
				"Microsoft.Blueprint/blueprintAssignments/write",
				"Microsoft.Blueprint/blueprintAssignments/delete",
				"Microsoft.Compute/galleries/share/action",
				"Microsoft.Purview/consents/write",
				"Microsoft.Purview/consents/delete",
			}}),
		role(RoleReader, "Reader",
			"View all resources, but does not allow you to make any changes.",
			Permission{Actions: []string{"*/read"}}),
		role(RoleUserAccessAdministrator, "User Access Administrator",
			"Lets you manage user access to Azure resources.",
			Permission{Actions: []string{"*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"}}),
		role(RoleMonitoringReader, "Monitoring Reader",
			"Can read all monitoring data.",
			Permission{Actions: []string{"*/read", "Microsoft.OperationalInsights/workspaces/search/action", "Microsoft.Support/*"}}),
		role(RoleMonitoringContributor, "Monitoring Contributor",
			"Can read all monitoring data and update monitoring settings.",
			Permission{Actions: []string{
				"*/read",
				"Microsoft.AlertsManagement/alerts/*",
				"Microsoft.AlertsManagement/alertsSummary/*",
				"Microsoft.Insights/actiongroups/*",
				"Microsoft.Insights/activityLogAlerts/*",
				"Microsoft.Insights/AlertRules/*",
				"Microsoft.Insights/components/*",
				"Microsoft.Insights/createNotifications/*",
				"Microsoft.Insights/dataCollectionEndpoints/*",
				"Microsoft.Insights/dataCollectionRules/*",
				"Microsoft.Insights/dataCollectionRuleAssociations/*",
				"Microsoft.Insights/DiagnosticSettings/*",
				"Microsoft.Insights/eventtypes/*",
				"Microsoft.Insights/LogDefinitions/*",
				"Microsoft.Insights/metricalerts/*",
				"Microsoft.Insights/MetricDefinitions/*",
				"Microsoft.Insights/Metrics/*",
				"Microsoft.Insights/notificationStatus/*",
				"Microsoft.Insights/Register/Action",
				"Microsoft.Insights/scheduledqueryrules/*",
				"Microsoft.Insights/webtests/*",
				"Microsoft.Insights/workbooks/*",
				"Microsoft.Insights/workbooktemplates/*",
				"Microsoft.Insights/privateLinkScopes/*",
				"Microsoft.Insights/privateLinkScopeOperationStatuses/*",
				"Microsoft.OperationalInsights/workspaces/write",
				"Microsoft.OperationalInsights/workspaces/intelligencepacks/*",
				"Microsoft.OperationalInsights/workspaces/savedSearches/*",
				"Microsoft.OperationalInsights/workspaces/search/action",
				"Microsoft.OperationalInsights/workspaces/sharedKeys/action",
				"Microsoft.OperationalInsights/workspaces/storageinsightconfigs/*",
				"Microsoft.Support/*",
				"Microsoft.AlertsManagement/smartDetectorAlertRules/*",
				"Microsoft.AlertsManagement/actionRules/*",
				"Microsoft.AlertsManagement/smartGroups/*",
				"Microsoft.AlertsManagement/migrateFromSmartDetection/*",
				"Microsoft.AlertsManagement/investigations/*",
				"Microsoft.Monitor/investigations/*",
			}}),
		role(RoleMonitoringMetricsPublisher, "Monitoring Metrics Publisher",
			"Enables publishing metrics against Azure resources",
			Permission{
				Actions: []string{"Microsoft.Insights/Register/Action", "Microsoft.Support/*",
					"Microsoft.Resources/subscriptions/resourceGroups/read"},
				DataActions: []string{"Microsoft.Insights/Metrics/Write", "Microsoft.Insights/Telemetry/Write"},
			}),
		role(RoleLogAnalyticsReader, "Log Analytics Reader",
			"Log Analytics Reader can view and search all monitoring data as well as and view monitoring settings, including viewing the configuration of Azure diagnostics on all Azure resources.",
			Permission{
				Actions: []string{"*/read", "Microsoft.OperationalInsights/workspaces/analytics/query/action",
					"Microsoft.OperationalInsights/workspaces/search/action", "Microsoft.Support/*"},
				NotActions: []string{"Microsoft.OperationalInsights/workspaces/sharedKeys/read"},
			}),
		role(RoleLogAnalyticsContributor, "Log Analytics Contributor",
			"Log Analytics Contributor can read all monitoring data and edit monitoring settings. Editing monitoring settings includes adding the VM extension to VMs; reading storage account keys to be able to configure collection of logs from Azure Storage; adding solutions; and configuring Azure diagnostics on all Azure resources.",
			Permission{Actions: []string{
				"*/read",
				"Microsoft.ClassicCompute/virtualMachines/extensions/*",
				"Microsoft.ClassicStorage/storageAccounts/listKeys/action",
				"Microsoft.Compute/virtualMachines/extensions/*",
				"Microsoft.HybridCompute/machines/extensions/write",
				"Microsoft.Insights/alertRules/*",
				"Microsoft.Insights/diagnosticSettings/*",
				"Microsoft.OperationalInsights/*",
				"Microsoft.OperationsManagement/*",
				"Microsoft.Resources/deployments/*",
				"Microsoft.Resources/subscriptions/resourcegroups/deployments/*",
				"Microsoft.Storage/storageAccounts/listKeys/action",
				"Microsoft.Support/*",
			}}),
		role(RoleDataPurger, "Data Purger",
			"Can purge analytics data",
			Permission{Actions: []string{
				"Microsoft.Insights/components/*/read",
				"Microsoft.Insights/components/purge/action",
				"Microsoft.OperationalInsights/workspaces/*/read",
				"Microsoft.OperationalInsights/workspaces/purge/action",
			}}),
	}
}
