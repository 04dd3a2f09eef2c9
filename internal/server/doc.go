// Package server is the Custos HTTPS server shell: configuration, the data
// directory lock, first-start bootstrap (local CA, server certificate,
// platform key, catalog, admin service principal), the TLS listener with
// certificate hot reload, the middleware chain (correlation IDs, request logs,
// panic recovery, security headers, body caps, bearer authentication and one
// RBAC decision per request), the case-insensitive route table, self-metrics in
// the Prometheus text format, and graceful shutdown.
//
// It wires every other area (store, catalog, identity, rbac, engine, arm,
// ingest, query) together and is the only package that does so. Nothing inside
// internal/ may import it.
package server
