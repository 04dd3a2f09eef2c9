package engine

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"custos/internal/kql"
	"custos/internal/store"
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

// TestSortFloatsMatchesSort checks the bucket sort against slices.Sort on
// values of both signs, zeros, infinities, tiny and huge magnitudes, runs
// of equal values, values clustered beside one far outlier (large buckets),
// and sizes around the threshold and past the largest bucket table.
func TestSortFloatsMatchesSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{0, 1, 255, 256, 257, 3000, tdBuffer, 41_000, 1<<17 + 3} {
		for kind := range 6 {
			vs := make([]float64, n)
			for i := range vs {
				switch kind {
				case 0:
					vs[i] = rng.ExpFloat64() * 100
				case 1:
					vs[i] = rng.NormFloat64() * math.Pow(10, float64(rng.IntN(40)-20))
				case 2:
					vs[i] = float64(rng.IntN(5) - 2) // runs of equal values, zeros
				case 3:
					vs[i] = 1000 + rng.Float64() // clustered ...
					if i == n/2 {
						vs[i] = 1e300 // ... beside one outlier
					}
				case 4:
					vs[i] = float64(rng.IntN(100_000)) - 50_000 // integer-held offsets
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

// TestTDigestExactAndDigestAccuracy checks percentiles against the exact
// nearest-rank answers on skewed (log-normal, exponential with outliers),
// uniform and integer data: exact (equal) while a group holds at most
// tdExact values, also when two workers' states merge below it, and within
// 1% of rank beyond it; the minimum and maximum always exact; a tdigest()
// sketch of a large exact group is encoded as its digest.
func TestTDigestExactAndDigestAccuracy(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	gens := map[string]func() float64{
		"lognormal": func() float64 { return math.Exp(3 + 1.5*rng.NormFloat64()) },
		"exp+outliers": func() float64 {
			if rng.IntN(1000) == 0 {
				return 1e12 * rng.Float64()
			}
			return rng.ExpFloat64()
		},
		"uniform":  func() float64 { return rng.Float64()*2000 - 1000 },
		"integers": func() float64 { return float64(rng.IntN(300)) },
	}
	percents := []float64{0, 0.1, 1, 5, 25, 50, 75, 90, 95, 99, 99.9, 100}
	for name, gen := range gens {
		for _, n := range []int{100, 5000, tdExact, tdExact + 1, 300_000} {
			vals := make([]float64, n)
			w1, w2 := &tdigest{}, &tdigest{}
			for i := range vals {
				vals[i] = gen()
				if i%3 == 0 {
					w1.add(vals[i], 1)
				} else {
					w2.add(vals[i], 1)
				}
			}
			d := &tdigest{}
			d.merge(w1)
			d.merge(w2)
			sorted := slices.Clone(vals)
			slices.Sort(sorted)
			if exact := n <= tdExact; exact == d.digest {
				t.Fatalf("%s n=%d: digest mode %v", name, n, d.digest)
			}
			for _, p := range percents {
				want := sorted[max(int(math.Ceil(p/100*float64(n)))-1, 0)]
				got := d.quantile(p)
				if !d.digest || p == 0 || p == 100 {
					if got != want {
						t.Errorf("%s n=%d: percentile %v = %v, want exactly %v", name, n, p, got, want)
					}
					continue
				}
				// The rank interval of got must come within 1% of p.
				lo, _ := slices.BinarySearch(sorted, got)
				hi := lo
				for hi < n && sorted[hi] <= got {
					hi++
				}
				if float64(hi)/float64(n)*100 < p-1 || float64(lo)/float64(n)*100 > p+1 {
					t.Errorf("%s n=%d: percentile %v = %v has ranks %.3f–%.3f%%", name, n, p, got,
						float64(lo)/float64(n)*100, float64(hi)/float64(n)*100)
				}
			}
			if n > tdSketchExact {
				enc := encodeTDigest(store.TypeReal, d)
				_, back, err := decodeTDigest(enc)
				if err != nil {
					t.Fatalf("%s n=%d: sketch: %v", name, n, err)
				}
				if back.n != float64(n) || back.quantile(0) != sorted[0] || back.quantile(100) != sorted[n-1] {
					t.Errorf("%s n=%d: sketch holds n=%v min=%v max=%v", name, n, back.n, back.quantile(0), back.quantile(100))
				}
			}
		}
	}
}

// TestPercentilesShareOneDigest runs percentiles(x, ...) by a key through
// the engine (several workers' states merged) and checks that its columns
// share one digest and equal the exact nearest-rank answers — groups below
// tdExact values are exact — and the single-percentile columns asked
// separately; a datetime column's percentiles come back unchanged.
func TestPercentilesShareOneDigest(t *testing.T) {
	schema := store.Schema{{Name: "K", Type: store.TypeString}, {Name: "X", Type: store.TypeReal}, {Name: "T", Type: store.TypeDatetime}}
	rng := rand.New(rand.NewPCG(5, 6))
	const rows, batch = 120_000, 4096
	byKey := map[string][]float64{}
	byKeyT := map[string][]float64{}
	var data []*store.Batch
	for off := 0; off < rows; off += batch {
		m := min(batch, rows-off)
		b := &store.Batch{Schema: schema, Len: m}
		k, x, ts := newVector(store.TypeString, m), newVector(store.TypeReal, m), newVector(store.TypeDatetime, m)
		for i := range m {
			key := []string{"a", "b", "c"}[rng.IntN(3)]
			k.Str[i] = key
			x.Real[i] = math.Exp(2 + rng.NormFloat64())
			ts.Int[i] = 638_000_000_000_000_000 + int64(rng.IntN(1_000_000_000))
			byKey[key] = append(byKey[key], x.Real[i])
			byKeyT[key] = append(byKeyT[key], float64(ts.Int[i]))
		}
		b.Cols = []*store.Vector{k, x, ts}
		data = append(data, b)
	}
	st := newAggSink(&executor{}, mustAggregate(t, "Logs | summarize percentiles(X, 50, 95, 99, 0, 100), percentile(X, 50), percentiles(T, 5, 50) by K", schema))
	shared := 0
	for _, s := range st.states {
		if _, ok := s.(*percentileFollower); ok {
			shared++
		}
	}
	if shared != 5 { // 4 followers of X, 1 of T; percentile(X, 50) keeps its own
		t.Fatalf("%d percentile columns share a digest, want 5", shared)
	}
	res := runInlineT(t, "Logs | summarize percentiles(X, 50, 95, 99, 0, 100), percentile(X, 50), percentiles(T, 5, 50) by K | order by K asc", schema, data)
	b := res.Tables[0].Batches[0]
	for i := range b.Len {
		key := b.Cols[0].Str[i]
		xs := slices.Clone(byKey[key])
		slices.Sort(xs)
		ts := slices.Clone(byKeyT[key])
		slices.Sort(ts)
		rank := func(s []float64, p float64) float64 { return s[max(int(math.Ceil(p/100*float64(len(s))))-1, 0)] }
		for j, p := range []float64{50, 95, 99, 0, 100} {
			if got := b.Cols[1+j].Real[i]; got != rank(xs, p) {
				t.Errorf("%s: percentile %v = %v, want %v", key, p, got, rank(xs, p))
			}
		}
		if b.Cols[6].Real[i] != b.Cols[1].Real[i] {
			t.Errorf("%s: percentile(X, 50) = %v, percentiles' = %v", key, b.Cols[6].Real[i], b.Cols[1].Real[i])
		}
		for j, p := range []float64{5, 50} {
			if got := b.Cols[7+j].Int[i]; float64(got) != rank(ts, p) {
				t.Errorf("%s: datetime percentile %v = %v, want %v", key, p, got, int64(rank(ts, p)))
			}
		}
	}
}

// mustAggregate compiles query and returns its summarize node.
func mustAggregate(t *testing.T, query string, schema store.Schema) *kql.Aggregate {
	t.Helper()
	plan, err := kql.Compile(query, kql.MapCatalog{"Logs": schema}, kql.BindOptions{})
	if err != nil {
		t.Fatal(err)
	}
	found, ok := plan.Results[0].(*kql.Aggregate)
	if !ok {
		t.Fatalf("plan is %T, want a summarize", plan.Results[0])
	}
	return found
}

// TestTDigestExactParts merges exact states as uncopied parts, also states
// that hold parts themselves, and checks selection (quantiles), the sort
// (quantile), the sketch and the switch to a digest read every part, and
// that the merged states' slices are left unchanged.
func TestTDigestExactParts(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	var all []float64
	states := make([]*tdigest, 6)
	for i := range states {
		states[i] = &tdigest{}
		for range 3000 + i*1000 {
			v := math.Exp(rng.NormFloat64() * 2)
			states[i].add(v, 1)
			all = append(all, v)
		}
	}
	snapshot := slices.Clone(states[1].exact)
	// Two levels: (0 ← 1, 2) and (3 ← 4, 5), then 0 ← 3.
	for _, pair := range [][2]int{{0, 1}, {0, 2}, {3, 4}, {3, 5}, {0, 3}} {
		if !states[pair[0]].merge(states[pair[1]]) {
			t.Fatalf("merge %v copied instead of keeping parts", pair)
		}
	}
	d := states[0]
	if len(d.parts) == 0 || d.nParts+len(d.exact) != len(all) || d.n != float64(len(all)) {
		t.Fatalf("merged state: %d parts, %d+%d values, n=%v; want %d values", len(d.parts), len(d.exact), d.nParts, d.n, len(all))
	}
	sorted := slices.Clone(all)
	slices.Sort(sorted)
	want := func(p float64) float64 { return sorted[max(int(math.Ceil(p/100*float64(len(sorted))))-1, 0)] }
	ps := []float64{0, 1, 33.3, 50, 95, 99.9, 100}
	got := d.quantiles(ps, nil)
	for i, p := range ps {
		if got[i] != want(p) {
			t.Errorf("selected percentile %v = %v, want %v", p, got[i], want(p))
		}
	}
	if !slices.Equal(states[1].exact, snapshot) {
		t.Error("a merged state's values changed")
	}
	enc := encodeTDigest(store.TypeReal, d) // flattens, then a digest past tdSketchExact
	if _, back, err := decodeTDigest(enc); err != nil || back.n != float64(len(all)) {
		t.Fatalf("sketch of a state with parts: n=%v, %v", back.n, err)
	}
	if d.quantile(50) == 0 || d.quantile(100) != sorted[len(sorted)-1] {
		t.Errorf("after the sketch: median %v, max %v", d.quantile(50), d.quantile(100))
	}
	// Past tdExact values the parts go into the digest.
	e := &tdigest{}
	e.merge(states[3]) // holds states 4 and 5 as parts
	want3 := states[3].n
	for range tdExact {
		e.add(rng.Float64(), 1)
	}
	if !e.digest || e.n != want3+tdExact || len(e.parts) != 0 || e.quantile(100) != math.Max(states[3].max, e.max) {
		t.Fatalf("digest %v with n=%v and %d parts, want a digest of %v values", e.digest, e.n, len(e.parts), want3+tdExact)
	}
}
