// Package offheap allocates memory outside the Go heap for large,
// pointer-free buffers that live long or are re-faulted often (the store's
// decoded-chunk cache, the engine's group-by slot arrays): the garbage
// collector neither scans them nor counts them in its heap goal, and on
// Linux their pages are faulted in by the mapping call itself
// (MAP_POPULATE), one call instead of a page fault per 4 KiB as they are
// first written — about 13 µs each on the 2-core VM of the benchmarks.
//
// Memory from Alloc must hold no Go pointers and must be given back with
// Free exactly once, after its last use.
package offheap
