//go:build unix

package store

import (
	"fmt"
	"syscall"
)

// allocRegion maps n bytes of anonymous memory outside the Go heap (see
// packedChunk) and returns them with the function that unmaps them.
func allocRegion(n int) ([]byte, func([]byte), error) {
	const page = 4096
	size := (n + page - 1) &^ (page - 1)
	// mapPopulate (Linux) faults the pages in with the mapping, in one
	// call, instead of one page fault per 4 KiB as the copy touches them.
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE|mapPopulate)
	if err != nil {
		return nil, nil, fmt.Errorf("map %d bytes for the read cache: %w", size, err)
	}
	return mem[:n:size], unmapRegion, nil
}

func unmapRegion(mem []byte) { _ = syscall.Munmap(mem[:cap(mem)]) }
