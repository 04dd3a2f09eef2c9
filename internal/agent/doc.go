// Package agent is custos-agent's collection and delivery pipeline: it reads
// data collection rules (RuleSource), runs the data sources they ask for
// (syslog sockets, performance counters from /proc, log files, Heartbeat),
// batches records per DCR stream (≤ 1 MB, gzip) into a bounded on-disk
// queue (package queue), and delivers them to the Logs Ingestion API with
// bearer tokens from a TokenSource, retrying with backoff until the API
// acknowledges each batch.
//
// The agent talks to Custos only over HTTPS like any other client. This
// package and its subpackages must never import the server's packages
// (store, engine, kql, catalog, identity, server, ingest, ...); a test in
// cmd/custos-agent enforces it with `go list -deps`.
package agent
