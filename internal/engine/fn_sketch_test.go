package engine

import (
	"testing"

	"custos/internal/store"
)

// FuzzSketchDecode feeds arbitrary text to the hll and tdigest decoders
// (sketches come back from users): no panic, and whatever decodes
// re-encodes to a sketch that decodes to the same encoding.
func FuzzSketchDecode(f *testing.F) {
	h := newHLL(14, 1000)
	for i := range 50 {
		h.add(hashInt(int64(i)))
	}
	f.Add(encodeHLL(h))
	for i := range 2000 {
		h.add(hashInt(int64(i)))
	}
	f.Add(encodeHLL(h))
	d := &tdigest{}
	for i := range 100 {
		d.add(float64(i), 1)
	}
	f.Add(encodeTDigest(store.TypeReal, d))
	f.Add(`["tdigest","long",5,0,3,[[0,1],[3,2]]]`)
	f.Add(`["hll",14,1000,"s","AAAAAAAAAAE="]`)
	f.Add(`["hll",4,0,"d","AAAAAAAAAAAAAAAAAAAAAA=="]`)
	f.Fuzz(func(t *testing.T, s string) {
		if h, err := decodeHLL(s); err == nil {
			enc := encodeHLL(h)
			h2, err := decodeHLL(enc)
			if err != nil {
				t.Fatalf("re-decode %s: %v", enc, err)
			}
			if encodeHLL(h2) != enc || h2.count() != h.count() {
				t.Fatalf("hll round trip changed %s", enc)
			}
		}
		if typ, d, err := decodeTDigest(s); err == nil {
			enc := encodeTDigest(typ, d)
			typ2, d2, err := decodeTDigest(enc)
			if err != nil {
				t.Fatalf("re-decode %s: %v", enc, err)
			}
			if typ2 != typ || d2.n != d.n {
				t.Fatalf("tdigest round trip changed %s", enc)
			}
			_ = d2.quantile(50)
		}
	})
}
