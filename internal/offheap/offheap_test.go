package offheap

import "testing"

func TestAllocFree(t *testing.T) {
	for _, n := range []int{1, 4096, 4097, 3 << 20} {
		mem, err := Alloc(n)
		if err != nil {
			t.Fatal(err)
		}
		if len(mem) != n || cap(mem) < n {
			t.Fatalf("Alloc(%d): len %d cap %d", n, len(mem), cap(mem))
		}
		for i := range mem {
			if mem[i] != 0 {
				t.Fatalf("Alloc(%d): byte %d not zero", n, i)
			}
		}
		mem[0], mem[n-1] = 1, 2
		Free(mem)
	}
}
