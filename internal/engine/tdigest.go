package engine

import (
	"math"
	"slices"
	"strings"

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
)

type centroid struct{ mean, w float64 }

type tdigest struct {
	n        float64
	base     int64 // offset of integer-held values
	hasBase  bool
	exact    []float64  // exact mode: every value (offset by base)
	cents    []centroid // digest mode: sorted centroids
	buf      []centroid // digest mode: not yet merged
	digest   bool
	min, max float64
}

func (d *tdigest) add(v float64, w float64) {
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
		d.digest = true
		for _, x := range d.exact {
			d.buf = append(d.buf, centroid{x, 1})
		}
		d.exact = nil
		if w == 1 {
			d.compress()
			return
		}
	}
	d.buf = append(d.buf, centroid{v, w})
	if len(d.buf) >= 8*tdCompression {
		d.compress()
	}
}

// compress merges buf into the centroids, greedily joining neighbours while
// the merged centroid stays within the size bound at its quantile.
func (d *tdigest) compress() {
	if len(d.buf) == 0 {
		return
	}
	all := append(d.cents, d.buf...)
	d.buf = d.buf[:0]
	slices.SortFunc(all, func(a, b centroid) int {
		switch {
		case a.mean < b.mean:
			return -1
		case a.mean > b.mean:
			return 1
		}
		return 0
	})
	out := make([]centroid, 0, 2*tdCompression)
	cur := all[0]
	cum := 0.0
	for _, c := range all[1:] {
		q := (cum + (cur.w+c.w)/2) / d.n
		limit := math.Max(1, 4*d.n*q*(1-q)/tdCompression)
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
	d.cents = append(out, cur)
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
	for _, c := range o.cents {
		d.add(c.mean+shift, c.w)
	}
	for _, c := range o.buf {
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
