package catalog

import (
	"strings"

	"custos/internal/store"
)

// standardTable is the definition of a table that Azure creates in every
// workspace. The column lists follow Azure's table reference (spec §4.1,
// §7.3); Azure's billing columns (_SubscriptionId, _BilledSize, _IsBillable)
// are not kept.
type standardTable struct {
	name        string
	description string
	columns     []Column
}

func col(name string, t store.ColumnType, desc string) Column {
	return Column{Name: name, Type: t, Description: desc}
}

const (
	tS  = store.TypeString
	tI  = store.TypeInt
	tL  = store.TypeLong
	tR  = store.TypeReal
	tB  = store.TypeBool
	tDT = store.TypeDatetime
	tDy = store.TypeDynamic
)

// standardTables is an immutable lookup table; use standardTableDef, which copies.
var standardTables = []standardTable{
	{"Heartbeat", "Records logged by agents once per minute to report on agent health.", []Column{
		col("TimeGenerated", tDT, "Date and time the record was created."),
		col("Category", tS, "Type of agent: Azure Monitor Agent, Direct Agent, SCOM Agent or SCOM Management Server."),
		col("Computer", tS, "Computer name."),
		col("ComputerEnvironment", tS, "Environment that hosts the computer: Azure or Non-Azure."),
		col("ComputerIP", tS, "Public IP address of the computer."),
		col("ComputerPrivateIPs", tDy, "Private IP addresses of the computer."),
		col("IsGatewayInstalled", tB, "True if a Log Analytics gateway is installed."),
		col("ManagementGroupName", tS, "Name of the Operations Manager management group."),
		col("OSMajorVersion", tS, "Major version of the operating system."),
		col("OSMinorVersion", tS, "Minor version of the operating system."),
		col("OSName", tS, "Name of the operating system."),
		col("OSType", tS, "Type of operating system: Windows or Linux."),
		col("RemoteIPCountry", tS, "Country of the computer's public IP address."),
		col("RemoteIPLatitude", tR, "Latitude of the computer's public IP address."),
		col("RemoteIPLongitude", tR, "Longitude of the computer's public IP address."),
		col("Resource", tS, "Resource name."),
		col("ResourceGroup", tS, "Resource group of the computer."),
		col("ResourceId", tS, "Resource ID (legacy; use _ResourceId)."),
		col("ResourceProvider", tS, "Resource provider of the computer."),
		col("ResourceType", tS, "Resource type of the computer."),
		col("SCAgentChannel", tS, "Direct or SCManagementServer."),
		col("Solutions", tS, "Solutions deployed on the agent."),
		col("SourceSystem", tS, "Type of agent the data was collected from."),
		col("SubscriptionId", tS, "Subscription of the computer."),
		col("Version", tS, "Agent version."),
		col("VMUUID", tS, "Unique identifier of the virtual machine."),
	}},
	{"Syslog", "Syslog events on Linux computers.", []Column{
		col("TimeGenerated", tDT, "Date and time the record was created."),
		col("Computer", tS, "Computer that the event was collected from."),
		col("CollectorHostName", tS, "Name of the remote host that forwarded the event."),
		col("EventTime", tDT, "Date and time the event was generated on the host."),
		col("Facility", tS, "The part of the system that generated the message."),
		col("HostIP", tS, "IP address of the system that sent the message."),
		col("HostName", tS, "Name of the system that sent the message."),
		col("ProcessID", tI, "ID of the process that generated the message."),
		col("ProcessName", tS, "Name of the process that generated the message."),
		col("SeverityLevel", tS, "Severity level of the event."),
		col("SourceSystem", tS, "Type of agent the data was collected from."),
		col("SyslogMessage", tS, "Text of the message."),
	}},
	{"Perf", "Performance counters from Windows and Linux agents.", []Column{
		col("TimeGenerated", tDT, "Date and time the sample was taken."),
		col("BucketEndTime", tDT, "End of the aggregation bucket."),
		col("BucketStartTime", tDT, "Start of the aggregation bucket."),
		col("Computer", tS, "Computer that the counter was collected from."),
		col("CounterName", tS, "Name of the performance counter."),
		col("CounterPath", tS, "Full path of the counter: \\\\<Computer>\\object(instance)\\counter."),
		col("CounterValue", tR, "Value of the counter."),
		col("InstanceName", tS, "Name of the counter instance; empty if none."),
		col("Max", tR, "Maximum value in the bucket."),
		col("Min", tR, "Minimum value in the bucket."),
		col("ObjectName", tS, "Name of the performance object."),
		col("SampleCount", tI, "Number of samples in the bucket."),
		col("SourceSystem", tS, "Type of agent the data was collected from."),
		col("StandardDeviation", tR, "Standard deviation of the samples in the bucket."),
	}},
	{"InsightsMetrics", "Metrics collected by VM insights, Container insights and the Azure Monitor agent.", []Column{
		col("TimeGenerated", tDT, "Date and time the record was created."),
		col("AgentId", tS, "Unique ID of the agent that sourced the metric."),
		col("Computer", tS, "Computer or node that the metric is from."),
		col("Name", tS, "Name of the metric."),
		col("Namespace", tS, "Category of the metric."),
		col("Origin", tS, "System that produced the metric."),
		col("SourceSystem", tS, "Type of agent the data was collected from."),
		col("Tags", tS, "Dimensions of the metric, as a JSON string."),
		col("Val", tR, "Value of the metric."),
		col("Value", tS, "Value of the metric (legacy)."),
	}},
	{"ContainerLogV2", "Kubernetes container logs in the Container insights v2 schema.", []Column{
		col("TimeGenerated", tDT, "Date and time the log line was generated."),
		col("Computer", tS, "Name of the node that the container runs on."),
		col("ContainerId", tS, "Container ID as reported by the container engine."),
		col("ContainerName", tS, "Name of the container."),
		col("KubernetesMetadata", tDy, "Pod metadata: podUid, podLabels, podAnnotations and image details."),
		col("LogLevel", tS, "Severity: CRITICAL, ERROR, WARNING, INFO, DEBUG, TRACE or UNKNOWN."),
		col("LogMessage", tDy, "The log line; JSON lines are queryable without parse_json."),
		col("LogSource", tS, "stdout or stderr."),
		col("PodName", tS, "Name of the pod."),
		col("PodNamespace", tS, "Namespace of the pod."),
		col("SourceSystem", tS, "Type of agent the data was collected from."),
	}},
	{"AzureActivity", "Activity log records: control-plane writes, role and lock changes, denied authorizations and sign-in failures.", []Column{
		col("TimeGenerated", tDT, "Date and time the event occurred."),
		col("OperationName", tS, "Name of the operation."),
		col("OperationNameValue", tS, "Identifier of the operation (the Azure action)."),
		col("Level", tS, "Level of the event: Critical, Error, Warning or Informational."),
		col("ActivityStatus", tS, "Status of the operation."),
		col("ActivityStatusValue", tS, "Status of the operation: Started, Succeeded or Failed."),
		col("ActivitySubstatus", tS, "Substatus of the operation."),
		col("ActivitySubstatusValue", tS, "Substatus of the operation, such as the HTTP status text."),
		col("ResourceGroup", tS, "Resource group of the resource."),
		col("SubscriptionId", tS, "Subscription of the resource."),
		col("CorrelationId", tS, "Correlation ID of the request."),
		col("Caller", tS, "Object ID of the principal that performed the operation."),
		col("CallerIpAddress", tS, "IP address the request came from."),
		col("Category", tS, "Category of the event: Administrative or Security."),
		col("CategoryValue", tS, "Category of the event."),
		col("HTTPRequest", tS, "Client request ID, client IP address and HTTP method, as JSON."),
		col("Properties", tS, "Changed properties of the request (secrets removed), as JSON."),
		col("Properties_d", tDy, "Changed properties of the request (secrets removed)."),
		col("EventSubmissionTimestamp", tDT, "Date and time the event was recorded."),
		col("Authorization", tS, "Action and scope of the operation, as JSON."),
		col("Authorization_d", tDy, "Action and scope of the operation."),
		col("ResourceId", tS, "Resource ID (scope) of the operation."),
		col("OperationId", tS, "Identifier of the operation."),
		col("ResourceProvider", tS, "Resource provider of the resource."),
		col("ResourceProviderValue", tS, "Resource provider of the resource, upper case."),
		col("Resource", tS, "Name of the resource."),
		col("Hierarchy", tS, "Management group hierarchy (empty: Custos has no management groups)."),
		col("Claims", tS, "Caller's object ID, principal type and name, as JSON."),
		col("Claims_d", tDy, "Caller's object ID, principal type and name."),
		col("SourceSystem", tS, "Type of system that produced the record."),
		col("EventDataId", tS, "Unique identifier of the event."),
	}},
	{"LAQueryLogs", "Audit records of the queries run against the workspace.", []Column{
		col("TimeGenerated", tDT, "Time (UTC) when the query was submitted."),
		col("AADClientId", tS, "Client ID of the application used to run the query."),
		col("AADEmail", tS, "Email of the caller."),
		col("AADObjectId", tS, "Object ID of the caller."),
		col("AADTenantId", tS, "Tenant ID of the caller."),
		col("ConditionalDataAccess", tS, "Whether an ABAC condition was applied to the query."),
		col("CorrelationId", tS, "Unique ID of the query."),
		col("IsBillableQuery", tB, "Whether the query is billable."),
		col("IsWorkspaceInFailover", tB, "Whether the workspace was in failover."),
		col("QueryText", tS, "Text of the query as submitted."),
		col("QueryThumbprint", tS, "Hash of the query structure."),
		col("QueryTimeRangeEnd", tDT, "End of the requested time range."),
		col("QueryTimeRangeStart", tDT, "Start of the requested time range."),
		col("RecordKind", tS, "Backfill marker."),
		col("RequestClientApp", tS, "Value of the x-ms-app header."),
		col("RequestContext", tDy, "Resources the query resolved to: workspaces, applications, resources."),
		col("RequestContextFilters", tDy, "Filters applied to the request context."),
		col("RequestTarget", tS, "Resource ID or API URL of the request."),
		col("ResponseCode", tI, "HTTP status code of the response."),
		col("ResponseDurationMs", tR, "Duration of the query in milliseconds."),
		col("ResponseRowCount", tI, "Number of rows returned."),
		col("ScannedGB", tR, "Data scanned, for billable queries."),
		col("SourceSystem", tS, "Type of system that produced the record."),
		col("StatsCPUTimeMs", tR, "CPU time of the query in milliseconds."),
		col("StatsDataProcessedEnd", tDT, "Latest data time touched by the query."),
		col("StatsDataProcessedKB", tL, "Data processed by the query, in kilobytes."),
		col("StatsDataProcessedStart", tDT, "Earliest data time touched by the query."),
		col("StatsRegionCount", tI, "Number of regions accessed."),
		col("StatsWorkspaceCount", tI, "Number of workspaces accessed."),
		col("WorkspaceRegion", tS, "Region of the workspace."),
	}},
}

// StandardTableNames returns the names of the tables every workspace has.
func StandardTableNames() []string {
	out := make([]string, len(standardTables))
	for i, t := range standardTables {
		out[i] = t.name
	}
	return out
}

// standardTableDef returns a copy of the standard table named name
// (case-insensitive).
func standardTableDef(name string) (standardTable, bool) {
	for _, t := range standardTables {
		if strings.EqualFold(t.name, name) {
			t.columns = append([]Column(nil), t.columns...)
			return t, true
		}
	}
	return standardTable{}, false
}

// IsStandardTable reports whether name (case-insensitive) is a built-in table.
func IsStandardTable(name string) bool {
	_, ok := standardTableDef(name)
	return ok
}

// StandardTableSchema returns the columns of a built-in table (the input
// schema of a "Microsoft-<Table>" stream), without the store's system columns.
func StandardTableSchema(name string) (store.Schema, bool) {
	t, ok := standardTableDef(name)
	if !ok {
		return nil, false
	}
	return columnsSchema(t.columns), true
}

func columnsSchema(cols []Column) store.Schema {
	s := make(store.Schema, 0, len(cols))
	for _, c := range cols {
		s = append(s, store.Column{Name: c.Name, Type: c.Type})
	}
	return s
}
