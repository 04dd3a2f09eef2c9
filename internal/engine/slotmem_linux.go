//go:build linux

package engine

import (
	"syscall"
	"unsafe"
)

// mapSlots maps n zeroed slots outside the Go heap, their pages faulted in
// by the mmap call itself (MAP_POPULATE): on the 2-core VM of bench/peers a
// page fault per 4 KiB as a fresh array is first written costs about twice
// as much. strSlot holds no pointers, so the GC need not see the memory.
func mapSlots(n int) ([]strSlot, bool) {
	size := n * int(strSlotSize)
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE|syscall.MAP_POPULATE)
	if err != nil {
		return nil, false
	}
	return unsafe.Slice((*strSlot)(unsafe.Pointer(unsafe.SliceData(mem))), n), true
}

// unmapSlots unmaps an array from mapSlots; nothing may use it afterwards.
func unmapSlots(s []strSlot) {
	_ = syscall.Munmap(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*int(strSlotSize)))
}
