package engine

import (
	"encoding/binary"
	"math"
	"math/bits"
)

// hll is a HyperLogLog distinct counter with Kusto's dcount behaviour: exact
// while the set is small (a sparse set of 64-bit hashes up to the accuracy
// level's threshold), then 2^p one-byte registers. Not safe for concurrent use.
type hll struct {
	p      uint8
	exact  int
	sparse map[uint64]struct{}
	regs   []uint8
}

func newHLL(precision, exact int) *hll {
	return &hll{p: uint8(precision), exact: exact, sparse: map[uint64]struct{}{}}
}

func (h *hll) add(x uint64) {
	if h.regs == nil {
		h.sparse[x] = struct{}{}
		if len(h.sparse) > h.exact {
			h.densify()
		}
		return
	}
	h.addDense(x)
}

func (h *hll) addDense(x uint64) {
	idx := x >> (64 - h.p)
	w := x<<h.p | 1<<(h.p-1)
	rho := uint8(bits.LeadingZeros64(w)) + 1
	if rho > h.regs[idx] {
		h.regs[idx] = rho
	}
}

func (h *hll) densify() {
	h.regs = make([]uint8, 1<<h.p)
	for x := range h.sparse {
		h.addDense(x)
	}
	h.sparse = nil
}

func (h *hll) merge(o *hll) {
	if o.regs == nil {
		for x := range o.sparse {
			h.add(x)
		}
		return
	}
	if h.regs == nil {
		h.densify()
	}
	for i, r := range o.regs {
		if r > h.regs[i] {
			h.regs[i] = r
		}
	}
}

func (h *hll) count() int64 {
	if h.regs == nil {
		return int64(len(h.sparse))
	}
	m := float64(len(h.regs))
	var sum float64
	zeros := 0
	for _, r := range h.regs {
		sum += 1 / float64(uint64(1)<<r)
		if r == 0 {
			zeros++
		}
	}
	alpha := 0.7213 / (1 + 1.079/m)
	est := alpha * m * m / sum
	if est <= 2.5*m && zeros > 0 {
		est = m * math.Log(m/float64(zeros)) // linear counting for small cardinalities
	}
	return int64(est + 0.5)
}

// Hashing for dcount and for composite group keys: deterministic (so results
// are reproducible across runs), 64-bit, well mixed.

func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

func hashInt(x int64) uint64 { return mix64(uint64(x) ^ 0x9e3779b97f4a7c15) }

func hashReal(f float64) uint64 {
	if f == 0 {
		f = 0 // -0 and +0 are one value
	}
	if math.IsNaN(f) {
		return mix64(0x7ff8000000000001)
	}
	return mix64(math.Float64bits(f) ^ 0x2545f4914f6cdd1d)
}

func hashString(s string) uint64 {
	h := uint64(len(s))*0x9e3779b97f4a7c15 ^ 0x5bd1e995
	for len(s) >= 8 {
		h = mix64(h ^ binary.LittleEndian.Uint64([]byte(s[:8])))
		s = s[8:]
	}
	var tail uint64
	for i := 0; i < len(s); i++ {
		tail |= uint64(s[i]) << (8 * i)
	}
	return mix64(h ^ tail ^ 0xa0761d6478bd642f)
}
