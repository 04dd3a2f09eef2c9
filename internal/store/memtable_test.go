package store

import (
	"encoding/hex"
	"math/rand/v2"
	"regexp"
	"testing"
)

// itemIDsRef is itemIDs' formatting as it was written first: each ID
// formatted whole from the 16 bytes.
func itemIDsRef(base12 [12]byte, n int) []string {
	var base [16]byte
	copy(base[:], base12[:])
	base[6] = base[6]&0x0f | 0x40
	base[8] = base[8]&0x3f | 0x80
	out := make([]string, n)
	for i := range n {
		b := base
		b[12], b[13], b[14], b[15] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
		o := make([]byte, 36)
		hex.Encode(o[0:8], b[0:4])
		o[8] = '-'
		hex.Encode(o[9:13], b[4:6])
		o[13] = '-'
		hex.Encode(o[14:18], b[6:8])
		o[18] = '-'
		hex.Encode(o[19:23], b[8:10])
		o[23] = '-'
		hex.Encode(o[24:36], b[10:16])
		out[i] = string(o)
	}
	return out
}

// TestItemIDs: the prefix-once formatting gives the same IDs as formatting
// each whole, version-4/variant-1 GUIDs, distinct within a commit.
func TestItemIDs(t *testing.T) {
	guid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 2, 17, 500, 70_000} {
		var base [12]byte
		for i := range base {
			base[i] = byte(r.Uint32())
		}
		got, want := itemIDsFrom(base, n), itemIDsRef(base, n)
		if len(got) != n {
			t.Fatalf("n=%d: %d IDs", n, len(got))
		}
		seen := make(map[string]bool, n)
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("n=%d, row %d: %q, want %q", n, i, got[i], want[i])
			}
			if !guid.MatchString(got[i]) || seen[got[i]] {
				t.Fatalf("n=%d, row %d: %q is not a new v4 GUID", n, i, got[i])
			}
			seen[got[i]] = true
		}
	}
	a, err := itemIDs(3)
	if err != nil {
		t.Fatal(err)
	}
	b, err := itemIDs(3)
	if err != nil {
		t.Fatal(err)
	}
	if a[0] == b[0] || a[0][:28] != a[2][:28] {
		t.Fatalf("two commits share IDs or one commit's differ in the random part: %v %v", a, b)
	}
}

func BenchmarkItemIDs(b *testing.B) {
	for b.Loop() {
		if _, err := itemIDs(500); err != nil {
			b.Fatal(err)
		}
	}
}
