// Package activity is Custos's tamper-evident activity log: who changed
// what in the control plane, role and lock changes, denied authorizations
// and sign-in failures, as Azure's activity log records them.
//
// Records are appended to a hash chain kept in the catalog: each record
// carries the SHA-256 of the previous one (and its own sequence number), so
// that changing, deleting or reordering a stored record breaks the chain.
// Periodic checkpoints sign the chain head with an Ed25519 key whose private
// half is sealed by the platform key; Verify checks both and names the first
// bad record. Records can also be appended to a JSON-lines file and
// forwarded into the AzureActivity table of an operator-chosen workspace.
//
// activity imports api (request-scoped principal and correlation ID), rbac
// and identity (to wrap authorization), catalog's row types through a small
// Store interface, and store's Appendable for forwarding. It never imports
// server.
package activity
