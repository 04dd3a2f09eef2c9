// Package perf reads a Linux host's counters from /proc and statfs(2) and
// names them as Azure's Linux agent does, for the Perf table (objects
// Processor, Memory, Logical Disk, Network, System with Azure's counter
// names) and for InsightsMetrics (VM insights namespaces and vm.azm.ms tags).
// It also parses DCR counterSpecifiers. The parsers take io.Readers so that
// tests run them on fixture files as well as on the real /proc.
// The package imports only the standard library.
package perf
