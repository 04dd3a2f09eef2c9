// Package query implements the Log Analytics Query API of Azure Monitor:
// GET/POST /v1/workspaces/{workspaceId}/query, POST /v1/$batch and
// GET /v1/workspaces/{workspaceId}/metadata. It parses the request (query,
// ISO 8601 timespan, Prefer options), runs the KQL through the engine with the
// caller's RBAC row conditions, and writes results in Azure's JSON shape with
// Azure's value formatting (FormatResult, shared with the CLI).
//
// It reaches the catalog (workspaces, table schemas) only through the small
// interfaces declared in Options, and the data only through the engine; it
// must not import internal/server, internal/arm or internal/ingest.
package query
