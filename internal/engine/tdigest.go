package engine

import (
	"math"
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
// A group keeps its values exactly up to tdExact of them, so small groups get
// the exact nearest-rank answer. Beyond that it becomes a merging T-Digest
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
	tdExact       = 4096
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
	n        float64
	base     int64 // offset of integer-held values
	hasBase  bool
	exact    []float64  // exact mode: every value (offset by base)
	cents    []centroid // digest mode: sorted centroids
	vals     []float64  // digest mode: unit values not yet merged
	wbuf     []centroid // digest mode: weighted centroids not yet merged
	spare    []centroid // compress's output buffer, swapped with cents
	digest   bool
	min, max float64
}

func (d *tdigest) add(v float64, w float64) {
	if d.digest && w == 1 { // the common case, first
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
	d.n += w
	if !d.digest {
		if w == 1 {
			d.exact = append(d.exact, v)
			if len(d.exact) <= tdExact {
				return
			}
		}
		// Past tdExact values (or at the first weighted centroid): the
		// exact values become the first buffer of the digest.
		// The buffer is allocated once at its full size: growing it by
		// appends cost more than sorting it.
		d.digest = true
		d.vals = append(make([]float64, 0, tdBuffer), d.exact...)
		d.exact = nil
		if w == 1 {
			d.compress()
			return
		}
	}
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

func (d *tdigest) merge(o *tdigest) {
	if o.n == 0 {
		return
	}
	shift := 0.0
	if o.hasBase {
		if !d.hasBase {
			d.base, d.hasBase = o.base, true
		}
		shift = float64(o.base - d.base)
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
		slices.Sort(d.exact)
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
		a.groups[m[i]].merge(d)
	}
}

func (a *percentileAgg) result(nGroups int) *store.Vector {
	a.grow(nGroups)
	if a.array {
		out := newVector(store.TypeDynamic, nGroups)
		var b strings.Builder
		for g := range nGroups {
			d := a.groups[g]
			if d.n == 0 {
				out.Str[g] = "[]"
				continue
			}
			b.Reset()
			b.WriteByte('[')
			for i, p := range a.percents {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(jsonValue(a.value(d, p)))
			}
			b.WriteByte(']')
			out.Str[g] = b.String()
		}
		return out
	}
	rt := a.t
	if rt == store.TypeDecimal {
		rt = store.TypeReal
	}
	out := emptyVector(rt, nGroups)
	for g := range nGroups {
		d := a.groups[g]
		if d.n == 0 {
			appendValue(out, kql.NullValue(rt))
			continue
		}
		v := a.value(d, a.percents[0])
		v.Type = rt
		appendValue(out, v)
	}
	return out
}

// value is group d's p-th percentile as a value of the input type.
func (a *percentileAgg) value(d *tdigest, p float64) kql.Value {
	q := d.quantile(p)
	if kql.IsIntHeld(a.t) {
		return kql.Value{Type: a.t, Int: d.base + int64(math.Round(q))}
	}
	return kql.Value{Type: a.t, Real: q}
}

// radixScratch holds sortFloats' key buffers (2·tdBuffer uint64s).
var radixScratch = sync.Pool{New: func() any { b := make([]uint64, 0, 2*tdBuffer); return &b }}

// radixCounts holds sortFloats's digit counts (48 KiB, so not on the stack).
var radixCounts = sync.Pool{New: func() any { return new([6][1 << 11]uint32) }}

// sortFloats sorts vs (no NaNs) ascending. Large buffers are radix-sorted:
// each float64 maps to a uint64 with the same order (sign bit flipped for
// positives, all bits for negatives), then six stable 11-bit passes, each
// skipped when all keys share its digit. That is a few sequential sweeps
// instead of pdqsort's ~log2(n) compare-and-swap rounds.
func sortFloats(vs []float64) {
	n := len(vs)
	if n < 512 {
		slices.Sort(vs)
		return
	}
	bp := radixScratch.Get().(*[]uint64)
	defer radixScratch.Put(bp)
	if cap(*bp) < 2*n {
		*bp = make([]uint64, 0, 2*n)
	}
	buf := (*bp)[:2*n]
	a, b := buf[:n], buf[n:]
	for i, f := range vs {
		u := math.Float64bits(f)
		if u>>63 != 0 {
			u = ^u
		} else {
			u |= 1 << 63
		}
		a[i] = u
	}
	// One read pass counts the digits of all six passes.
	const digit = 11
	const passes = (64 + digit - 1) / digit
	cnts := radixCounts.Get().(*[passes][1 << digit]uint32)
	defer radixCounts.Put(cnts)
	*cnts = [passes][1 << digit]uint32{}
	for _, u := range a {
		for p := range passes {
			cnts[p][(u>>(p*digit))&(1<<digit-1)]++
		}
	}
	for p := range passes {
		shift := uint(p * digit)
		cnt := &cnts[p]
		if int(cnt[(a[0]>>shift)&(1<<digit-1)]) == n {
			continue // every key has this digit
		}
		var sum uint32
		for i, c := range cnt {
			cnt[i] = sum
			sum += c
		}
		for _, u := range a {
			d := (u >> shift) & (1<<digit - 1)
			b[cnt[d]] = u
			cnt[d]++
		}
		a, b = b, a
	}
	for i, u := range a {
		if u>>63 != 0 {
			u &^= 1 << 63
		} else {
			u = ^u
		}
		vs[i] = math.Float64frombits(u)
	}
}
