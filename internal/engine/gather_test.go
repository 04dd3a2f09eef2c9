package engine

import (
	"strings"
	"testing"
	"unsafe"

	"custos/internal/store"
)

// A sparse gather must not keep the source's string buffer alive: the
// store's decoded chunks are one buffer per block, and a selective filter
// over many blocks would otherwise pin all of them.
func TestGatherSparseCopiesStrings(t *testing.T) {
	const rows = 64
	buf := strings.Repeat("0123456789abcdef", rows) // one buffer, as a decoded chunk
	v := &store.Vector{Type: store.TypeString, Str: make([]string, rows)}
	for i := range v.Str {
		v.Str[i] = buf[16*i : 16*i+16]
	}
	inBuf := func(s string) bool {
		p, lo := uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(unsafe.Pointer(unsafe.StringData(buf)))
		return p >= lo && p < lo+uintptr(len(buf))
	}

	sparse := gather(v, []int32{3, 40})
	if len(sparse.Str) != 2 || sparse.Str[0] != v.Str[3] || sparse.Str[1] != v.Str[40] {
		t.Fatalf("sparse gather = %q", sparse.Str)
	}
	for _, s := range sparse.Str {
		if inBuf(s) {
			t.Errorf("sparse gather keeps a substring of the source buffer: %q", s)
		}
	}

	// A dense selection shares the source (copying would cost more than
	// the buffer it could free).
	sel := make([]int32, rows/2)
	for i := range sel {
		sel[i] = int32(2 * i)
	}
	dense := gather(v, sel)
	for j, s := range dense.Str {
		if s != v.Str[2*j] {
			t.Fatalf("dense gather row %d = %q, want %q", j, s, v.Str[2*j])
		}
	}
	if !inBuf(dense.Str[0]) {
		t.Errorf("dense gather copied its strings")
	}
}
