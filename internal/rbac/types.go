package rbac

// Action is an Azure RBAC operation, either a control-plane action
// ("Microsoft.OperationalInsights/workspaces/write") or a data action
// ("Microsoft.Insights/Telemetry/Write").
type Action string

// Scope is an ARM resource ID or a prefix of one: "/",
// "/subscriptions/{sub}", "/subscriptions/{sub}/resourceGroups/{rg}", or a
// resource ID. Scopes compare case-insensitively, as ARM IDs do.
type Scope string

// Decision is the whole answer of Authorize. RowConditions are KQL predicates
// (one per table, keyed by table name; "*" for all tables) that the query
// binder compiles into the plan; they are never applied after the fact.
type Decision struct {
	Allowed       bool
	Reason        string // for the activity log only; never sent to the client
	RowConditions map[string][]string
}
