// Package agentoutage holds the fault test of issue 11's "an agent cut off
// from the server for 10 minutes under load": the real custos-agent tails a
// file written at a steady rate while the real server is stopped for the
// outage, then restarted; every line must arrive exactly once. CI runs a
// 2-minute outage; `go test ./test/faults/agentoutage -outage 10m -timeout 30m`
// is the full run (docs/reliability.md).
package agentoutage
