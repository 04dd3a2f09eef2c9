package engine

import (
	"unsafe"

	"custos/internal/offheap"
)

// mapSlots returns n zeroed slots outside the Go heap (offheap.Alloc:
// pre-faulted on Linux, where a page fault per 4 KiB as a fresh array is
// first written costs about twice as much on the benchmarks' VM), or false
// where memory cannot be mapped: the caller then uses the heap. strSlot
// holds no pointers, so the GC need not see the memory.
func mapSlots(n int) ([]strSlot, bool) {
	if !offheap.OutsideHeap {
		return nil, false
	}
	mem, err := offheap.Alloc(n * int(strSlotSize))
	if err != nil {
		return nil, false
	}
	return unsafe.Slice((*strSlot)(unsafe.Pointer(unsafe.SliceData(mem))), n), true
}

// unmapSlots frees an array from mapSlots; nothing may use it afterwards.
func unmapSlots(s []strSlot) {
	offheap.Free(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*int(strSlotSize)))
}
