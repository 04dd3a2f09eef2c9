package engine

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestTDigestRankError checks the documented accuracy: exact below tdExact
// values, and beyond it a rank error within 1% at every percentile, min and
// max exact, also when partial digests are merged.
func TestTDigestRankError(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 200_000
	vals := make([]float64, n)
	parts := make([]*tdigest, 4)
	for i := range parts {
		parts[i] = &tdigest{}
	}
	for i := range vals {
		v := rng.ExpFloat64() * 1000 // skewed, like latencies
		vals[i] = v
		parts[i%len(parts)].add(v, 1)
	}
	d := &tdigest{}
	for _, p := range parts {
		d.merge(p)
	}
	sorted := slices.Clone(vals)
	slices.Sort(sorted)
	if d.quantile(0) != sorted[0] || d.quantile(100) != sorted[n-1] {
		t.Fatalf("min/max = %v/%v, want %v/%v", d.quantile(0), d.quantile(100), sorted[0], sorted[n-1])
	}
	for p := 1.0; p < 100; p += 0.5 {
		q := d.quantile(p)
		rank, _ := slices.BinarySearch(sorted, q)
		got := float64(rank) / n * 100
		if got < p-1 || got > p+1 {
			t.Errorf("percentile %v: value %v has rank %.3f%%", p, q, got)
		}
	}
	// The size bound keeps O(δ·log n) centroids (singletons at the tails).
	if len(d.cents) > tdCompression*int(math.Log(n)+1) {
		t.Errorf("%d centroids, want a bounded digest", len(d.cents))
	}

	small := &tdigest{}
	for _, v := range vals[:1000] {
		small.add(v, 1)
	}
	s := slices.Clone(vals[:1000])
	slices.Sort(s)
	for _, p := range []float64{1, 10, 50, 90, 99} {
		want := s[int(p/100*1000+0.999999)-1]
		if got := small.quantile(p); got != want {
			t.Errorf("exact percentile %v = %v, want %v", p, got, want)
		}
	}
}

// TestSortFloatsMatchesSort checks the radix sort against slices.Sort on
// values of both signs, zeros, infinities, tiny and huge magnitudes, runs
// of equal values and sizes around the radix threshold.
func TestSortFloatsMatchesSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{0, 1, 511, 512, 513, 3000, tdBuffer} {
		for kind := range 4 {
			vs := make([]float64, n)
			for i := range vs {
				switch kind {
				case 0:
					vs[i] = rng.ExpFloat64() * 100
				case 1:
					vs[i] = rng.NormFloat64() * math.Pow(10, float64(rng.IntN(40)-20))
				case 2:
					vs[i] = float64(rng.IntN(5) - 2) // runs of equal values, zeros
				default:
					vs[i] = []float64{math.Inf(-1), math.Inf(1), -math.MaxFloat64, math.SmallestNonzeroFloat64, 0, 1e300, -1e-300}[rng.IntN(7)]
				}
			}
			want := slices.Clone(vs)
			slices.Sort(want)
			sortFloats(vs)
			if !slices.Equal(vs, want) {
				t.Fatalf("n=%d kind=%d: radix sort differs from slices.Sort", n, kind)
			}
		}
	}
}
