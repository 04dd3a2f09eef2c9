//go:build !linux

package engine

// mapSlots is Linux-only (see slotmem_linux.go); elsewhere slot arrays come
// from the Go heap.
func mapSlots(int) ([]strSlot, bool) { return nil, false }

func unmapSlots([]strSlot) {}
