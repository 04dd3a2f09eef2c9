// Package workload bounds the CPU work of queries: a pool of query worker
// slots shared by every query of the process, so that concurrent queries
// together use at most as many cores as the pool has slots and ingestion
// keeps its share of the machine.
//
// A goroutine holds a slot only while it does CPU work on one unit (the
// store decodes one block, the engine applies a pipeline's operators to one
// batch), never while it waits on a channel or for another slot, so slots
// never nest and the pool cannot deadlock, whatever its size.
package workload
