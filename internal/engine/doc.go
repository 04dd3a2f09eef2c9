// Package engine is Custos's vectorized KQL executor: it runs the plans the
// kql package binds (scan, filter, compute, aggregate, sort, top, limit,
// constant tables) over store.Batch column vectors, in parallel across
// batches, under per-query limits (result rows and bytes, working memory,
// timeout). It also compiles and runs ingestion-time transformations.
//
// The engine imports kql and store; it must not import HTTP handlers or the
// catalog. Errors it returns implement api.Coded where the client is at fault.
package engine
