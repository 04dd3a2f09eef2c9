// Package arm serves Custos's ARM-shaped control plane: subscriptions,
// resource groups, Log Analytics workspaces and their tables, and data
// collection rules, with Azure Resource Manager's paths, bodies, status
// codes, ETags and error envelopes, so that Azure SDK management clients and
// templates work against Custos.
//
// Handlers are returned as []api.Route by (*API).Routes; the server puts each
// behind TLS, bearer authentication for the management audience, and one RBAC
// Authorize call for the route's action and scope. Handlers are thin: check
// api-version, decode strictly, validate, call the catalog, push table changes
// to the store (through the Tables consumer interface), encode.
//
// arm imports api, catalog, rbac, identity and store (for types only). It must
// not import the server, the data-plane packages or the store implementation.
package arm
