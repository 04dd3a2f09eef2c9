package engine

import (
	"math"
	"math/bits"
	"slices"
	"strings"
	"sync"

	"custos/internal/kql"
	"custos/internal/store"
)

// Percentiles (percentile, percentiles, percentiles_array) are Kusto's
// nearest-rank percentiles: the smallest value v such that at least p% of
// the values are <= v; p = 0 is the minimum, p = 100 the maximum.
//
// A group keeps its values exactly up to tdExact of them (64 Ki values,
// 512 KiB), so groups of that size get the exact nearest-rank answer, and
// at less cost than a digest: the values are only appended, and sorted once
// (sortFloats) when the first percentile is asked. Beyond that it becomes a merging T-Digest
// (Dunning) with compression tdCompression, whose centroid sizes are bounded
// by 4·n·q·(1−q)/δ: the rank error is then at most 0.5% at the median and
// shrinks toward the tails, inside Kusto's documented 1% bound; the minimum
// and maximum stay exact. A digest holds O(δ·log n) centroids. The answer is a centroid's mean (rounded for
// integer, datetime and timespan inputs).
//
// Integer-held values (long, datetime ticks, timespan ticks) are stored as
// float64 offsets from the group's first value so that exact mode returns
// them unchanged.
const (
	tdExact = 1 << 16
	// tdSketchExact is how many values a tdigest() sketch lists exactly;
	// a group with more is encoded as its digest.
	tdSketchExact = 4096
	tdCompression = 200
	// tdBuffer is how many unit values a digest collects before merging them
	// into its centroids: one sort of float64s and one linear merge per
	// tdBuffer values keeps the cost per value near a float64 sort's.
	tdBuffer = 8192
)

type centroid struct{ mean, w float64 }

// tdigest is one group's percentile state. Not safe for concurrent use.
//
// In digest mode, cents holds the merged centroids sorted by mean; unit
// values wait in vals and weighted centroids (from merged digests and
// decoded sketches) in wbuf until compress merges them in. After compress,
// cents holds everything.
type tdigest struct {
	n       float64
	base    int64 // offset of integer-held values
	hasBase bool
	exact   []float64  // exact mode: every value (offset by base)
	cents   []centroid // digest mode: sorted centroids
	vals    []float64  // digest mode: unit values not yet merged
	wbuf    []centroid // digest mode: weighted centroids not yet merged
	spare   []centroid // compress's output buffer, swapped with cents
	digest  bool
	sorted  bool // exact is sorted (and parts empty)
	// parts are more exact values: other workers' exact slices, kept
	// as they are by merge instead of copied into exact (read only;
	// flatten joins them when one slice is needed). nParts counts them.
	parts    [][]float64
	nParts   int
	min, max float64
}

func (d *tdigest) add(v float64, w float64) {
	if d.digest && w == 1 { // the common case of large groups, first
		d.min, d.max = min(d.min, v), max(d.max, v)
		d.n++
		d.vals = append(d.vals, v)
		if len(d.vals) >= tdBuffer {
			d.compress()
		}
		return
	}
	if d.n == 0 || v < d.min {
		d.min = v
	}
	if d.n == 0 || v > d.max {
		d.max = v
	}
	if !d.digest {
		if w == 1 && len(d.exact)+d.nParts < tdExact {
			d.n++
			if len(d.exact) == cap(d.exact) {
				d.exact = growFloats(d.exact, len(d.exact)+1)
			}
			d.exact = append(d.exact, v)
			d.sorted = false
			return
		}
		d.toDigest() // past tdExact values, or at the first weighted centroid
	}
	d.n += w
	if w == 1 {
		d.vals = append(d.vals, v)
		if len(d.vals) >= tdBuffer {
			d.compress()
		}
		return
	}
	d.wbuf = append(d.wbuf, centroid{v, w})
	if len(d.wbuf) >= 8*tdCompression {
		d.compress()
	}
}

// toDigest turns an exact group into a digest: its values are merged into
// the first centroids at once (one sort), and the unit-value buffer is
// allocated at its full size (growing it by appends cost more than sorting
// it).
func (d *tdigest) toDigest() {
	if d.digest {
		return
	}
	d.flatten()
	d.digest = true
	d.vals, d.exact = d.exact, nil
	d.compress()
	putFloats(d.vals)
	d.vals = growFloats(nil, tdBuffer)
}

// floatPools recycle the growing exact-value slices of digests by capacity
// (powers of two from 256 to tdExact values): a group's slice grows by
// doubling, and the smaller slices it leaves — and the exact slices of
// workers' states once merged — serve the next groups and queries instead
// of fresh memory (on a VM, first touches of fresh pages cost more than the
// copies).
var floatPools [17]sync.Pool

const floatPoolMin = 8 // log2 of the smallest pooled capacity

// growFloats returns a slice holding s with capacity for at least need
// values, recycling s.
func growFloats(s []float64, need int) []float64 {
	c := max(bits.Len(uint(need-1)), floatPoolMin)
	if c >= len(floatPools) {
		return slices.Grow(s, need-len(s))
	}
	var out []float64
	if p, ok := floatPools[c].Get().(*[]float64); ok {
		out = (*p)[:0]
	} else {
		out = make([]float64, 0, 1<<c)
	}
	out = append(out, s...)
	putFloats(s)
	return out
}

// putFloats gives a slice from growFloats back; others are left alone.
func putFloats(s []float64) {
	c := bits.Len(uint(cap(s))) - 1
	if c < floatPoolMin || c >= len(floatPools) || cap(s) != 1<<c {
		return
	}
	s = s[:0]
	floatPools[c].Put(&s)
}

// compress merges the waiting values and centroids into cents in one pass
// over the three sorted sequences, greedily joining neighbours while the
// merged centroid stays within the size bound 4·n·q·(1−q)/δ at its quantile.
func (d *tdigest) compress() {
	if len(d.vals) == 0 && len(d.wbuf) == 0 {
		return
	}
	sortFloats(d.vals)
	if len(d.wbuf) > 1 {
		slices.SortFunc(d.wbuf, func(a, b centroid) int {
			switch {
			case a.mean < b.mean:
				return -1
			case a.mean > b.mean:
				return 1
			}
			return 0
		})
	}
	out := d.spare[:0]
	if need := len(d.cents) + tdCompression; cap(out) < need {
		out = make([]centroid, 0, 2*need) // once or twice per digest: appends would regrow it
	}
	cs, vs, ws := d.cents, d.vals, d.wbuf
	var cur centroid
	have := false
	cum := 0.0
	n := d.n
	for len(cs) > 0 || len(vs) > 0 || len(ws) > 0 {
		// Take the smallest head of the three sequences.
		var c centroid
		switch {
		case len(vs) > 0 && (len(cs) == 0 || vs[0] <= cs[0].mean) && (len(ws) == 0 || vs[0] <= ws[0].mean):
			c = centroid{vs[0], 1}
			vs = vs[1:]
		case len(cs) > 0 && (len(ws) == 0 || cs[0].mean <= ws[0].mean):
			c = cs[0]
			cs = cs[1:]
		default:
			c = ws[0]
			ws = ws[1:]
		}
		if !have {
			cur, have = c, true
			continue
		}
		q := (cum + (cur.w+c.w)/2) / n
		limit := 4 * n * q * (1 - q) / tdCompression
		if cur.w+c.w <= limit {
			w := cur.w + c.w
			cur.mean += (c.mean - cur.mean) * c.w / w
			cur.w = w
			continue
		}
		cum += cur.w
		out = append(out, cur)
		cur = c
	}
	out = append(out, cur)
	d.spare, d.cents = d.cents[:0], out
	d.vals, d.wbuf = d.vals[:0], d.wbuf[:0]
}

// merge folds o into d. It reports whether d now refers to o's exact
// slices (so they must not be recycled); o itself is left as it was,
// except that its exact values may be joined into one slice.
func (d *tdigest) merge(o *tdigest) (kept bool) {
	if o.n == 0 {
		return false
	}
	shift := 0.0
	if o.hasBase {
		if !d.hasBase {
			d.base, d.hasBase = o.base, true
		}
		shift = float64(o.base - d.base)
	}
	if !d.digest && !o.digest && len(d.exact)+d.nParts+len(o.exact)+o.nParts <= tdExact && shift == 0 {
		// Two exact states (workers' partial groups): o's slices become
		// parts of d, uncopied (copies into fresh memory were most of a
		// cold query's percentile time).
		for _, p := range append([][]float64{o.exact}, o.parts...) {
			if len(p) > 0 {
				d.parts = append(d.parts, p)
				d.nParts += len(p)
			}
		}
		if d.n == 0 {
			d.min, d.max = o.min, o.max
		} else {
			d.min, d.max = math.Min(d.min, o.min), math.Max(d.max, o.max)
		}
		d.n += o.n
		d.sorted = false
		return true
	}
	o.flatten()
	if !d.digest && !o.digest && len(d.exact)+d.nParts+len(o.exact) <= tdExact {
		// Exact states of different bases: one shifted append.
		d.flatten()
		if need := len(d.exact) + len(o.exact); need > cap(d.exact) {
			d.exact = growFloats(d.exact, need)
		}
		if shift == 0 {
			d.exact = append(d.exact, o.exact...)
		} else {
			for _, x := range o.exact {
				d.exact = append(d.exact, x+shift)
			}
		}
		if d.n == 0 {
			d.min, d.max = o.min+shift, o.max+shift
		} else {
			d.min, d.max = math.Min(d.min, o.min+shift), math.Max(d.max, o.max+shift)
		}
		d.n += o.n
		d.sorted = false
		return false
	}
	for _, x := range o.exact {
		d.add(x+shift, 1)
	}
	for _, x := range o.vals {
		d.add(x+shift, 1)
	}
	for _, c := range o.cents {
		d.add(c.mean+shift, c.w)
	}
	for _, c := range o.wbuf {
		d.add(c.mean+shift, c.w)
	}
	// add's min/max see only means; the other side's extremes are exact.
	d.min = math.Min(d.min, o.min+shift)
	d.max = math.Max(d.max, o.max+shift)
	return false
}

// flatten joins the parts into exact.
func (d *tdigest) flatten() {
	if len(d.parts) == 0 {
		return
	}
	if need := len(d.exact) + d.nParts; need > cap(d.exact) {
		d.exact = growFloats(d.exact, need)
	}
	for _, p := range d.parts {
		d.exact = append(d.exact, p...)
	}
	d.parts, d.nParts = nil, 0
	d.sorted = false
}

// quantile returns the nearest-rank p-th percentile (0–100).
func (d *tdigest) quantile(p float64) float64 {
	if p <= 0 {
		return d.min
	}
	if p >= 100 {
		return d.max
	}
	target := math.Ceil(p / 100 * d.n)
	if !d.digest {
		if !d.sorted {
			d.flatten()
			sortFloats(d.exact)
			d.sorted = true
		}
		i := max(int(target)-1, 0)
		return d.exact[min(i, len(d.exact)-1)]
	}
	d.compress()
	cum := 0.0
	for _, c := range d.cents {
		cum += c.w
		if cum >= target {
			return math.Min(math.Max(c.mean, d.min), d.max)
		}
	}
	return d.max
}

// percentileAgg computes percentile (one value) or percentiles_array.
type percentileAgg struct {
	t        store.ColumnType // input type
	percents []float64
	array    bool
	groups   []*tdigest
	// shared lists the percentiles of the columns that read this state
	// (own first; see follow), qcache their values per group.
	shared []float64
	qcache []float64
}

func (a *percentileAgg) grow(n int) {
	for len(a.groups) < n {
		a.groups = append(a.groups, &tdigest{})
	}
}

func (a *percentileAgg) update(gids []int32, args []*store.Vector, nGroups int) {
	a.grow(nGroups)
	x := args[0]
	intHeld := kql.IsIntHeld(x.Type)
	if kql.IsRealHeld(x.Type) && x.Nulls == nil {
		for i, g := range gids {
			if v := x.Real[i]; v == v { // not NaN
				a.groups[g].add(v, 1)
			}
		}
		return
	}
	for i, g := range gids {
		if x.IsNull(i) {
			continue
		}
		d := a.groups[g]
		if intHeld {
			if !d.hasBase {
				d.base, d.hasBase = x.Int[i], true
			}
			d.add(float64(x.Int[i]-d.base), 1)
			continue
		}
		v := realAt(x, i)
		if math.IsNaN(v) {
			continue
		}
		d.add(v, 1)
	}
}

func (a *percentileAgg) merge(o aggState, m []int32, nGroups int) {
	a.grow(nGroups)
	for i, d := range o.(*percentileAgg).groups {
		if !a.groups[m[i]].merge(d) {
			// The worker's state is dropped after the merge: its
			// exact values' slice serves the next groups.
			putFloats(d.exact)
			d.exact = nil
		}
	}
}

func (a *percentileAgg) result(nGroups int) *store.Vector {
	a.grow(nGroups)
	if a.array {
		out := newVector(store.TypeDynamic, nGroups)
		var b strings.Builder
		var qs []float64
		for g := range nGroups {
			d := a.groups[g]
			if d.n == 0 {
				out.Str[g] = "[]"
				continue
			}
			b.Reset()
			b.WriteByte('[')
			qs = d.quantiles(a.percents, qs)
			for i, q := range qs {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(jsonValue(a.value(d, q)))
			}
			b.WriteByte(']')
			out.Str[g] = b.String()
		}
		return out
	}
	return a.column(nGroups, 0)
}

// column is the result column of the k-th percentile that the state
// computes (a.percents[0] alone unless columns share it, see follow).
func (a *percentileAgg) column(nGroups, k int) *store.Vector {
	a.grow(nGroups)
	rt := a.t
	if rt == store.TypeDecimal {
		rt = store.TypeReal
	}
	if len(a.shared) > 1 && len(a.qcache) < nGroups*len(a.shared) {
		// All shared percentiles of a group at once: one selection.
		a.qcache = a.qcache[:0]
		var qs []float64
		for g := range nGroups {
			qs = a.groups[g].quantiles(a.shared, qs)
			a.qcache = append(a.qcache, qs...)
		}
	}
	out := emptyVector(rt, nGroups)
	for g := range nGroups {
		d := a.groups[g]
		if d.n == 0 {
			appendValue(out, kql.NullValue(rt))
			continue
		}
		var q float64
		if len(a.shared) > 1 {
			q = a.qcache[g*len(a.shared)+k]
		} else {
			q = d.quantile(a.percents[0])
		}
		v := a.value(d, q)
		v.Type = rt
		appendValue(out, v)
	}
	return out
}

// follow makes a column for percentile p of the same argument that reads
// this state instead of keeping its own: percentiles(x, 50, 95, 99) binds
// one aggregation per percentile, and without sharing each would fold
// every value into a digest of its own.
func (a *percentileAgg) follow(p float64) aggState {
	if len(a.shared) == 0 {
		a.shared = []float64{a.percents[0]}
	}
	a.shared = append(a.shared, p)
	return &percentileFollower{lead: a, k: len(a.shared) - 1}
}

// percentileFollower is a percentile column computed by another column's
// state (percentileAgg.follow): the lead folds and merges the rows.
type percentileFollower struct {
	lead *percentileAgg
	k    int
}

func (f *percentileFollower) update([]int32, []*store.Vector, int) {}

func (f *percentileFollower) merge(aggState, []int32, int) {}

func (f *percentileFollower) result(nGroups int) *store.Vector { return f.lead.column(nGroups, f.k) }

// value is a percentile q of group d as a value of the input type.
func (a *percentileAgg) value(d *tdigest, q float64) kql.Value {
	if kql.IsIntHeld(a.t) {
		return kql.Value{Type: a.t, Int: d.base + int64(math.Round(q))}
	}
	return kql.Value{Type: a.t, Real: q}
}

// quantiles returns the nearest-rank percentiles ps of d in dst. An exact
// group of many values, asked for a few percentiles, selects them (one
// bucket count, then a sort of only the buckets that hold the asked ranks)
// instead of sorting all its values.
func (d *tdigest) quantiles(ps []float64, dst []float64) []float64 {
	dst = dst[:0]
	if d.digest || d.sorted || len(d.exact)+d.nParts < 1024 || len(ps) > 8 {
		for _, p := range ps {
			dst = append(dst, d.quantile(p))
		}
		return dst
	}
	n := len(d.exact) + d.nParts
	var ranks [8]int
	for i, p := range ps {
		ranks[i] = min(max(int(math.Ceil(p/100*float64(n)))-1, 0), n-1)
	}
	dst = selectRanks(append([][]float64{d.exact}, d.parts...), ranks[:len(ps)], dst)
	for i, p := range ps { // the extremes are kept exactly
		if p <= 0 {
			dst[i] = d.min
		} else if p >= 100 {
			dst[i] = d.max
		}
	}
	return dst
}

// floatKey maps a float64 to a uint64 of the same order (no NaNs): the sign
// bit flipped for positives, all bits for negatives.
func floatKey(f float64) uint64 {
	u := math.Float64bits(f)
	if u>>63 != 0 {
		return ^u
	}
	return u | 1<<63
}

// selectRanks appends the values of the 0-based ranks of the values of
// parts (no NaNs), as if they were one sorted slice, to dst; parts are left
// as they are. Like sortFloats it counts
// the values into about n/2 buckets by the leading bits of their keys above
// the smallest; each asked rank then falls in one bucket, and only the
// values of those buckets are collected and sorted.
func selectRanks(parts [][]float64, ranks []int, dst []float64) []float64 {
	lo, hi := uint64(math.MaxUint64), uint64(0)
	n := 0
	for _, vs := range parts {
		n += len(vs)
		for _, f := range vs {
			u := floatKey(f)
			lo, hi = min(lo, u), max(hi, u)
		}
	}
	shift, cp, cnt := bucketCounts(n, lo, hi)
	defer sortCounts.Put(cp)
	for _, vs := range parts {
		for _, f := range vs {
			cnt[(floatKey(f)-lo)>>shift]++
		}
	}
	bp := sortScratch.Get().(*[]uint64)
	defer sortScratch.Put(bp)
	for _, r := range ranks {
		// The bucket holding rank r, and r's rank inside it.
		b, before := 0, 0
		for ; before+int(cnt[b]) <= r; b++ {
			before += int(cnt[b])
		}
		in := (*bp)[:0]
		for _, vs := range parts {
			for _, f := range vs {
				if u := floatKey(f); int((u-lo)>>shift) == b {
					in = append(in, u)
				}
			}
		}
		slices.Sort(in)
		u := in[r-before]
		*bp = in
		if u>>63 != 0 {
			u &^= 1 << 63
		} else {
			u = ^u
		}
		dst = append(dst, math.Float64frombits(u))
	}
	return dst
}

// sortScratch holds sortFloats' key buffers (2·n uint64s).
var sortScratch = sync.Pool{New: func() any { b := make([]uint64, 0, 2*tdBuffer); return &b }}

// sortCounts holds sortFloats' bucket counts (up to 1<<sortMaxBucketBits).
var sortCounts = sync.Pool{New: func() any { c := make([]uint32, 1<<13); return &c }}

const (
	// sortMaxBucketBits bounds the bucket table of sortFloats (256 KiB).
	sortMaxBucketBits = 16
	// sortSmallBucket is the largest bucket sortFloats insertion-sorts;
	// larger ones (clustered values) are pdqsorted.
	sortSmallBucket = 24
)

// sortFloats sorts vs (no NaNs) ascending. Each float64 maps to a uint64
// with the same order (sign bit flipped for positives, all bits for
// negatives); one pass distributes the keys into about n/2 buckets by their
// leading bits above the smallest key (the span of the buffer's keys, so
// buckets follow the values' magnitude: roughly logarithmic, which spreads
// skewed data such as latencies), and each bucket is then sorted on its own
// — insertion sort when small, pdqsort when values cluster. That is four
// sequential sweeps instead of an LSD radix sort's six scatter passes; the
// worst case (everything in one bucket) is pdqsort's n·log n.
func sortFloats(vs []float64) {
	n := len(vs)
	if n < 256 {
		slices.Sort(vs)
		return
	}
	bp := sortScratch.Get().(*[]uint64)
	defer sortScratch.Put(bp)
	if cap(*bp) < 2*n {
		*bp = make([]uint64, 0, 2*n)
	}
	buf := (*bp)[:2*n]
	a, b := buf[:n], buf[n:]
	lo, hi := uint64(math.MaxUint64), uint64(0)
	for i, f := range vs {
		u := math.Float64bits(f)
		if u>>63 != 0 {
			u = ^u
		} else {
			u |= 1 << 63
		}
		a[i] = u
		lo, hi = min(lo, u), max(hi, u)
	}
	if lo == hi {
		return // all equal
	}
	shift, cp, cnt := bucketCounts(n, lo, hi)
	defer sortCounts.Put(cp)
	for _, u := range a {
		cnt[(u-lo)>>shift]++
	}
	var sum uint32
	for i, c := range cnt {
		cnt[i] = sum
		sum += c
	}
	for _, u := range a {
		d := (u - lo) >> shift
		b[cnt[d]] = u
		cnt[d]++
	}
	// cnt[i] is now the end of bucket i. Keys in one bucket share all bits
	// above shift, so with shift 0 a bucket holds equal keys.
	if shift > 0 {
		s := uint32(0)
		for _, e := range cnt {
			switch k := e - s; {
			case k < 2:
			case k <= sortSmallBucket:
				insertionSortU64(b[s:e])
			default:
				slices.Sort(b[s:e])
			}
			s = e
		}
	}
	for i, u := range b {
		if u>>63 != 0 {
			u &^= 1 << 63
		} else {
			u = ^u
		}
		vs[i] = math.Float64frombits(u)
	}
}

func insertionSortU64(s []uint64) {
	for i := 1; i < len(s); i++ {
		x := s[i]
		j := i
		for ; j > 0 && s[j-1] > x; j-- {
			s[j] = s[j-1]
		}
		s[j] = x
	}
}

// bucketCounts sizes the buckets of a one-pass bucket sort of n keys in
// [lo, hi]: a key k goes to bucket (k-lo)>>shift. cnt is that many zeroed
// counters from sortCounts; the caller puts cp back when done.
func bucketCounts(n int, lo, hi uint64) (shift int, cp *[]uint32, cnt []uint32) {
	bbits := min(bits.Len(uint(n))-1, sortMaxBucketBits)
	shift = max(bits.Len64(hi-lo)-bbits, 0)
	nb := int((hi-lo)>>shift) + 1
	cp = sortCounts.Get().(*[]uint32)
	if len(*cp) < nb {
		*cp = make([]uint32, 1<<bbits)
	}
	cnt = (*cp)[:nb]
	clear(cnt)
	return shift, cp, cnt
}
