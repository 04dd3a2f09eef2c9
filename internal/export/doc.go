// Package export implements data export rules
// (Microsoft.OperationalInsights/workspaces/dataExports): the rows of chosen
// tables are exported continuously, as they are committed, to a directory or
// an S3-compatible bucket, as JSON lines (Azure's layout) or Parquet.
//
// Exported files are write-once: a file is never rewritten. Every flush adds
// a manifest to a signed hash chain (file name, size, SHA-256 and row count
// of each new file, and the hash of the previous manifest), signed with an
// Ed25519 key sealed under the platform key, so Verify (custos admin
// verify-export) detects a modified, missing or extra file and a broken or
// re-signed chain. Delivery is at least once and resumes after a restart
// from a persisted low-water mark of _TimeReceived.
//
// It imports store, crypt and catalog and nothing above them (no arm, no
// server); the server wires the store's commit hook to (*Exporter).OnCommit.
package export
