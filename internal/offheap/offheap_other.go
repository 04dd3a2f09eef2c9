//go:build !unix

package offheap

// OutsideHeap reports whether Alloc maps memory outside the Go heap: not
// without mmap, where Alloc falls back to the Go heap.
const OutsideHeap = false

// Alloc returns n zeroed bytes from the Go heap.
func Alloc(n int) ([]byte, error) { return make([]byte, n), nil }

// Free does nothing: the garbage collector frees the memory.
func Free([]byte) {}
