// Package ingest implements the Logs Ingestion API of Azure Monitor:
// POST /dataCollectionRules/{immutableId}/streams/{stream}. It decodes a JSON
// array body (optionally gzip-compressed) record by record into column vectors
// typed by the data collection rule's stream declaration, runs each data
// flow's transformKql, and appends the result to the destination workspace's
// table through the store, committing only when the whole request is valid.
//
// It owns the wire decoding of ingestion bodies, the per-rule rate limits and
// the cache of compiled transformations. It reaches the catalog (rules) and the
// store (appenders) only through the small interfaces declared in Options; it
// must not import internal/server, internal/arm or internal/query.
package ingest
