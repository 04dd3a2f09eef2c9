//go:build unix

package offheap

import (
	"fmt"
	"syscall"
)

// OutsideHeap reports whether Alloc maps memory outside the Go heap.
const OutsideHeap = true

// Alloc maps n zeroed bytes of anonymous memory, rounded up to whole pages
// (the capacity of the result).
func Alloc(n int) ([]byte, error) {
	const page = 4096
	size := (n + page - 1) &^ (page - 1)
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE|mapPopulate)
	if err != nil {
		return nil, fmt.Errorf("map %d bytes: %w", size, err)
	}
	return mem[:n:size], nil
}

// Free unmaps memory from Alloc.
func Free(mem []byte) { _ = syscall.Munmap(mem[:cap(mem)]) }
