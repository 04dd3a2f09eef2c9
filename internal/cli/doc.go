// Package cli is the plumbing behind the custos command-line client verbs:
// client configuration (admin.json, environment, flags), an authenticated
// connection to a Custos server (azidentity tokens from the Custos token
// service, TLS 1.2+ trusting the server's CA), the ARM-shaped control-plane
// calls for workspaces, tables and data collection rules, the query and
// ingestion calls through the Azure SDK for Go clients, JSON-array and
// JSON-lines batching for ingestion, Azure error envelope decoding, and
// aligned-table rendering.
//
// It talks to a server only over HTTPS and imports none of the server's
// packages, so the client verbs can be reasoned about (and one day built)
// apart from the server.
package cli
