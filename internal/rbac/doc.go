// Package rbac is Custos's single authorization entry point: Azure-style role
// definitions (actions, notActions, dataActions, notDataActions with
// wildcards), role assignments at ARM scope prefixes, and Authorize, which
// every request passes through. It denies by default and fails closed: an
// error from Authorize means deny.
//
// It also owns ABAC role assignment conditions (condition.go: the Log
// Analytics subset, compiled to KQL row predicates), table-level access for
// queries (TableAccess), role and assignment validation, and assignment
// expiry. Custom roles come from a RoleStore (the catalog).
//
// rbac owns the built-in role definitions (with Azure's GUIDs) and the action
// names the handlers authorize. Role assignments are persisted by an
// AssignmentStore (the catalog implements it). rbac imports identity for the
// Principal type and nothing above it; it must not import net/http handlers,
// api, or any storage package.
package rbac
