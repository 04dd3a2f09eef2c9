// Package store is Custos's encrypted columnar log store. It owns, per
// workspace, a write-ahead log and, per table, memtables and immutable parts
// partitioned by UTC day of TimeGenerated; merges, retention and the system
// columns (TimeGenerated, _TimeReceived, _ItemId, _ResourceId, TenantId, Type).
//
// Data path: Appender.Commit seals a batch into the workspace WAL (AES-256-GCM
// under a per-segment key) and returns after the fsync, which concurrent
// commits share; the rows are then visible in the memtable. Memtables flush
// into parts, whose column blocks are encoded by type, zstd-compressed and
// sealed separately under a per-part key, so queries read and decrypt only the
// columns and blocks they need, skipping blocks by time range and token bloom
// filters. The formats are documented in format.md and on the types in
// wal.go and part.go.
//
// store imports crypt and nothing else from Custos; in particular it must not
// import api, engine or kql.
package store
