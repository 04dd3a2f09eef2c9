package engine

import (
	"encoding/json"
	"math"
	"strings"

	"custos/internal/kql"
	"custos/internal/store"
)

// aggState accumulates one aggregation for all groups of a groupTable.
type aggState interface {
	// update folds rows into their groups; args are the evaluated arguments.
	update(gids []int32, args []*store.Vector, nGroups int)
	// merge folds o's groups into this state's groups: o's group i is mapping[i].
	merge(o aggState, mapping []int32, nGroups int)
	// result returns one value per group.
	result(nGroups int) *store.Vector
}

func newAggState(a *kql.AggCall) aggState {
	switch a.Fn {
	case kql.AggCount, kql.AggCountIf:
		return &countAgg{}
	case kql.AggSum, kql.AggSumIf:
		if a.T == store.TypeDecimal {
			return &sumDecAgg{} // agg_decimal.go
		}
		if kql.IsRealHeld(a.T) {
			return &sumRealAgg{}
		}
		return &sumIntAgg{t: a.T}
	case kql.AggAvg, kql.AggAvgIf:
		if a.T == store.TypeDecimal {
			return &avgDecAgg{} // agg_decimal.go
		}
		return &avgAgg{t: a.T}
	case kql.AggMin, kql.AggMax, kql.AggMinIf, kql.AggMaxIf:
		return &minMaxAgg{t: a.T, max: a.Fn == kql.AggMax || a.Fn == kql.AggMaxIf}
	case kql.AggDcount, kql.AggDcountIf:
		p, exact := kql.DcountPrecision(a.Accuracy)
		return &dcountAgg{p: p, exact: exact}
	case kql.AggTakeAny:
		return &takeAnyAgg{minMaxAgg{t: a.T}}
	case kql.AggStdev, kql.AggVariance, kql.AggStdevp, kql.AggVariancep:
		return &varianceAgg{
			stdev:      a.Fn == kql.AggStdev || a.Fn == kql.AggStdevp,
			population: a.Fn == kql.AggStdevp || a.Fn == kql.AggVariancep,
		}
	case kql.AggMakeList, kql.AggMakeSet, kql.AggMakeListIf, kql.AggMakeSetIf:
		return &listAgg{set: a.Fn == kql.AggMakeSet || a.Fn == kql.AggMakeSetIf, max: a.Accuracy}
	case kql.AggPercentile, kql.AggPercentilesArray:
		return &percentileAgg{t: a.Args[0].Type(), percents: a.Percents, array: a.Fn == kql.AggPercentilesArray}
	case kql.AggArgMax, kql.AggArgMin:
		return &argAgg{max: a.Fn == kql.AggArgMax, t: a.T}
	}
	if s, ok := newAggStateExt(a); ok {
		return s
	}
	panic("BUG: unknown aggregation " + a.Fn.String())
}

func keep(pred *store.Vector, i int) bool {
	return pred == nil || (pred.Bool[i] && !pred.IsNull(i))
}

// growInt, growReal and growBool extend a per-group state array to n
// zeroed entries. The capacity at least doubles when it must grow: a
// high-cardinality group-by adds a few thousand groups per block, and
// append's growth of a large slice (a quarter) copied the array ever more
// often — 7 MB allocated for the 1 MB of counts of bench/peers' top users.
func growInt(s []int64, n int) []int64 { return growZeroed(s, n) }

func growReal(s []float64, n int) []float64 { return growZeroed(s, n) }

func growBool(s []bool, n int) []bool { return growZeroed(s, n) }

func growZeroed[T any](s []T, n int) []T {
	if len(s) >= n {
		return s
	}
	if cap(s) >= n {
		old := len(s)
		s = s[:n]
		clear(s[old:])
		return s
	}
	t := make([]T, n, max(n, 2*cap(s)))
	copy(t, s)
	return t
}

type countAgg struct {
	counts []int64
}

func (a *countAgg) update(gids []int32, args []*store.Vector, nGroups int) {
	a.counts = growInt(a.counts, nGroups)
	c := a.counts
	if len(args) == 0 {
		for _, g := range gids {
			c[g]++
		}
		return
	}
	p := args[0]
	if p.Type != store.TypeBool {
		// count(expr) counts non-null values.
		for i, g := range gids {
			if !p.IsNull(i) {
				c[g]++
			}
		}
		return
	}
	for i, g := range gids {
		if p.Bool[i] && !p.IsNull(i) {
			c[g]++
		}
	}
}

func (a *countAgg) merge(o aggState, m []int32, nGroups int) {
	a.counts = growInt(a.counts, nGroups)
	for i, c := range o.(*countAgg).counts {
		a.counts[m[i]] += c
	}
}

func (a *countAgg) result(nGroups int) *store.Vector {
	a.counts = growInt(a.counts, nGroups)
	return &store.Vector{Type: store.TypeLong, Int: a.counts[:nGroups]}
}

type sumIntAgg struct {
	t    store.ColumnType
	sums []int64
}

func (a *sumIntAgg) update(gids []int32, args []*store.Vector, nGroups int) {
	a.sums = growInt(a.sums, nGroups)
	x := args[0]
	var pred *store.Vector
	if len(args) > 1 {
		pred = args[1]
	}
	s := a.sums
	switch {
	case x.Type == store.TypeBool:
		for i, g := range gids {
			if x.Bool[i] && !x.IsNull(i) && keep(pred, i) {
				s[g]++
			}
		}
	case x.Nulls == nil && pred == nil:
		for i, g := range gids {
			s[g] += x.Int[i]
		}
	default:
		for i, g := range gids {
			if !x.IsNull(i) && keep(pred, i) {
				s[g] += x.Int[i]
			}
		}
	}
}

func (a *sumIntAgg) merge(o aggState, m []int32, nGroups int) {
	a.sums = growInt(a.sums, nGroups)
	for i, s := range o.(*sumIntAgg).sums {
		a.sums[m[i]] += s
	}
}

func (a *sumIntAgg) result(nGroups int) *store.Vector {
	a.sums = growInt(a.sums, nGroups)
	return &store.Vector{Type: a.t, Int: a.sums[:nGroups]}
}

type sumRealAgg struct {
	sums []float64
}

func (a *sumRealAgg) update(gids []int32, args []*store.Vector, nGroups int) {
	a.sums = growReal(a.sums, nGroups)
	x := args[0]
	var pred *store.Vector
	if len(args) > 1 {
		pred = args[1]
	}
	s := a.sums
	for i, g := range gids {
		if !x.IsNull(i) && keep(pred, i) {
			s[g] += realAt(x, i)
		}
	}
}

func realAt(x *store.Vector, i int) float64 {
	switch {
	case kql.IsRealHeld(x.Type):
		return x.Real[i]
	case x.Type == store.TypeBool:
		return float64(boolInt(x.Bool[i]))
	}
	return float64(x.Int[i])
}

func (a *sumRealAgg) merge(o aggState, m []int32, nGroups int) {
	a.sums = growReal(a.sums, nGroups)
	for i, s := range o.(*sumRealAgg).sums {
		a.sums[m[i]] += s
	}
}

func (a *sumRealAgg) result(nGroups int) *store.Vector {
	a.sums = growReal(a.sums, nGroups)
	return &store.Vector{Type: store.TypeReal, Real: a.sums[:nGroups]}
}

type avgAgg struct {
	t      store.ColumnType
	sums   []float64
	counts []int64
}

func (a *avgAgg) update(gids []int32, args []*store.Vector, nGroups int) {
	a.sums = growReal(a.sums, nGroups)
	a.counts = growInt(a.counts, nGroups)
	x := args[0]
	var pred *store.Vector
	if len(args) > 1 {
		pred = args[1]
	}
	if kql.IsRealHeld(x.Type) && x.Nulls == nil && pred == nil {
		for i, g := range gids {
			a.sums[g] += x.Real[i]
			a.counts[g]++
		}
		return
	}
	for i, g := range gids {
		if !x.IsNull(i) && keep(pred, i) {
			a.sums[g] += realAt(x, i)
			a.counts[g]++
		}
	}
}

func (a *avgAgg) merge(o aggState, m []int32, nGroups int) {
	a.sums = growReal(a.sums, nGroups)
	a.counts = growInt(a.counts, nGroups)
	ob := o.(*avgAgg)
	for i := range ob.sums {
		a.sums[m[i]] += ob.sums[i]
		a.counts[m[i]] += ob.counts[i]
	}
}

func (a *avgAgg) result(nGroups int) *store.Vector {
	a.sums = growReal(a.sums, nGroups)
	a.counts = growInt(a.counts, nGroups)
	out := newVector(a.t, nGroups)
	for g := range nGroups {
		if a.counts[g] == 0 {
			if out.Nulls == nil {
				out.Nulls = make([]bool, nGroups)
			}
			out.Nulls[g] = true
			continue
		}
		avg := a.sums[g] / float64(a.counts[g])
		if a.t == store.TypeTimespan {
			out.Int[g] = int64(math.Round(avg))
		} else {
			out.Real[g] = avg
		}
	}
	return out
}

type minMaxAgg struct {
	t    store.ColumnType
	max  bool
	has  []bool
	vals *store.Vector
}

func (a *minMaxAgg) grow(n int) {
	if a.vals == nil {
		a.vals = emptyVector(a.t, n)
	}
	a.has = growBool(a.has, n)
	for a.vals.Len() < n {
		appendValue(a.vals, kql.Value{Type: a.t})
	}
}

func (a *minMaxAgg) update(gids []int32, args []*store.Vector, nGroups int) {
	a.grow(nGroups)
	x := args[0]
	var pred *store.Vector
	if len(args) > 1 {
		pred = args[1]
	}
	has := a.has
	switch {
	case a.t == store.TypeDecimal:
		a.updateDec(gids, x, pred) // exact (agg_decimal.go)
	case kql.IsIntHeld(a.t):
		v := a.vals.Int
		for i, g := range gids {
			if x.IsNull(i) || !keep(pred, i) {
				continue
			}
			c := x.Int[i]
			if !has[g] || (a.max && c > v[g]) || (!a.max && c < v[g]) {
				v[g], has[g] = c, true
			}
		}
	case kql.IsRealHeld(a.t):
		v := a.vals.Real
		for i, g := range gids {
			if x.IsNull(i) || !keep(pred, i) || math.IsNaN(x.Real[i]) {
				continue
			}
			c := x.Real[i]
			if !has[g] || (a.max && c > v[g]) || (!a.max && c < v[g]) {
				v[g], has[g] = c, true
			}
		}
	case a.t == store.TypeBool:
		v := a.vals.Bool
		for i, g := range gids {
			if x.IsNull(i) || !keep(pred, i) {
				continue
			}
			c := x.Bool[i]
			if !has[g] || (a.max && c && !v[g]) || (!a.max && !c && v[g]) {
				v[g], has[g] = c, true
			}
		}
	default:
		v := a.vals.Str
		for i, g := range gids {
			if !keep(pred, i) {
				continue
			}
			c := x.Str[i]
			if c == "" && a.t == store.TypeString {
				continue // Kusto's min/max skip empty strings, as nulls
			}
			if !has[g] || (a.max && c > v[g]) || (!a.max && c < v[g]) {
				v[g], has[g] = c, true
			}
		}
	}
}

func (a *minMaxAgg) merge(o aggState, m []int32, nGroups int) {
	a.grow(nGroups)
	ob := o.(*minMaxAgg)
	if ob.vals == nil {
		return
	}
	nulls := make([]bool, len(ob.has))
	for i, h := range ob.has {
		nulls[i] = !h
	}
	v := *ob.vals
	v.Nulls = nulls
	a.update(m, []*store.Vector{&v}, nGroups)
}

func (a *minMaxAgg) result(nGroups int) *store.Vector {
	a.grow(nGroups)
	out := sliceVector(a.vals, 0, nGroups)
	for g := range nGroups {
		if !a.has[g] && a.t != store.TypeString {
			if out.Nulls == nil {
				out.Nulls = make([]bool, nGroups)
			}
			out.Nulls[g] = true
		}
	}
	return out
}

type dcountAgg struct {
	p, exact int
	sets     []*hll
	hashes   []uint64 // dictHashes's buffer
	seen     []uint8  // addDictOnce's buffer
}

func (a *dcountAgg) grow(n int) {
	for len(a.sets) < n {
		a.sets = append(a.sets, newHLL(a.p, a.exact))
	}
}

func (a *dcountAgg) update(gids []int32, args []*store.Vector, nGroups int) {
	a.grow(nGroups)
	x := args[0]
	var pred *store.Vector
	if len(args) > 1 {
		pred = args[1]
	}
	if x.CodesOnly() {
		if len(x.Dict) <= 4*len(gids)+64 {
			a.updateCodes(gids, x, pred, nGroups)
			return
		}
		// A dictionary much larger than the batch: hash the rows' strings.
		m, err := materialize(x, len(gids))
		if err != nil {
			panic("BUG: dcount of a codes-only vector that checkVector let through: " + err.Error())
		}
		x = m
	}
	if nGroups == 1 && a.addDictOnce(x, pred, len(gids)) {
		return
	}
	if hs := a.dictHashes(x, len(gids)); hs != nil {
		// A dictionary-encoded string vector: each distinct value is
		// hashed once per vector instead of once per row.
		for i, g := range gids {
			if x.IsNull(i) || !keep(pred, i) {
				continue
			}
			c := x.Codes[i]
			if int(c) < len(hs) && x.Dict[c] == x.Str[i] {
				a.sets[g].add(hs[c])
			} else {
				a.sets[g].add(hashString(x.Str[i]))
			}
		}
		return
	}
	for i, g := range gids {
		if x.IsNull(i) || !keep(pred, i) {
			continue
		}
		a.sets[g].add(hashValue(x, i))
	}
}

// updateCodes is update for a codes-only string vector (latemat.go): each
// dictionary entry is hashed once, and with one group added once. A code
// outside the dictionary (a broken block) counts as the empty string, as in
// colDict.stringIDs.
func (a *dcountAgg) updateCodes(gids []int32, x, pred *store.Vector, nGroups int) {
	n := len(gids)
	if nGroups == 1 {
		if cap(a.seen) < len(x.Dict) {
			a.seen = make([]uint8, len(x.Dict))
		}
		seen := a.seen[:len(x.Dict)]
		clear(seen)
		for i, c := range x.Codes[:n] {
			if x.IsNull(i) || !keep(pred, i) {
				continue
			}
			if int(c) < len(seen) {
				seen[c] = 1
			} else {
				a.sets[0].add(hashString(""))
			}
		}
		for c, s := range seen {
			if s != 0 {
				a.sets[0].add(hashString(x.Dict[c]))
			}
		}
		return
	}
	if cap(a.hashes) < len(x.Dict) {
		a.hashes = make([]uint64, len(x.Dict))
	}
	hs := a.hashes[:len(x.Dict)]
	for i, s := range x.Dict {
		hs[i] = hashString(s)
	}
	for i, g := range gids {
		if x.IsNull(i) || !keep(pred, i) {
			continue
		}
		if c := x.Codes[i]; int(c) < len(hs) {
			a.sets[g].add(hs[c])
		} else {
			a.sets[g].add(hashString(""))
		}
	}
}

// addDictOnce is update for one group over a dictionary-encoded string
// vector of n rows: adding a value to a distinct counter twice changes
// nothing, so each dictionary entry some kept row holds is hashed and added
// once. It reports false (having done nothing) for other vectors.
func (a *dcountAgg) addDictOnce(x *store.Vector, pred *store.Vector, n int) bool {
	if !kql.IsStringLike(x.Type) || len(x.Codes) < n || len(x.Dict) == 0 || len(x.Dict) > n || len(x.Str) < n {
		return false
	}
	if cap(a.seen) < len(x.Dict) {
		a.seen = make([]uint8, len(x.Dict))
	}
	seen := a.seen[:len(x.Dict)]
	clear(seen)
	set := a.sets[0]
	for i, c := range x.Codes[:n] {
		if x.IsNull(i) || !keep(pred, i) {
			continue
		}
		if int(c) >= len(seen) || x.Dict[c] != x.Str[i] {
			set.add(hashString(x.Str[i])) // a code that does not match its value
			continue
		}
		seen[c] = 1
	}
	for c, s := range seen {
		if s != 0 {
			set.add(hashString(x.Dict[c]))
		}
	}
	return true
}

// dictHashes returns the hashes of x's block dictionary when x is a
// dictionary-encoded string vector of n rows whose dictionary is no larger
// than its rows (so hashing it is never more work), else nil. The slice is
// reused by the next call.
func (a *dcountAgg) dictHashes(x *store.Vector, n int) []uint64 {
	if !kql.IsStringLike(x.Type) || len(x.Codes) < n || len(x.Dict) == 0 || len(x.Dict) > n || len(x.Str) < n {
		return nil
	}
	if cap(a.hashes) < len(x.Dict) {
		a.hashes = make([]uint64, len(x.Dict))
	}
	hs := a.hashes[:len(x.Dict)]
	for i, s := range x.Dict {
		hs[i] = hashString(s)
	}
	return hs
}

// hashValue is row i's hash for a distinct counter. A decimal hashes its
// exact, scale-normalised digits (decKey): decimals that round to the same
// float64 count apart, and 1.0 and 1.00 count once.
func hashValue(x *store.Vector, i int) uint64 {
	switch {
	case x.Type == store.TypeDecimal:
		return hashString(decKey(x, i))
	case x.Type == store.TypeBool:
		return hashInt(boolInt(x.Bool[i]))
	case kql.IsIntHeld(x.Type):
		return hashInt(x.Int[i])
	case kql.IsRealHeld(x.Type):
		return hashReal(x.Real[i])
	}
	return hashString(x.Str[i])
}

func (a *dcountAgg) merge(o aggState, m []int32, nGroups int) {
	a.grow(nGroups)
	for i, s := range o.(*dcountAgg).sets {
		a.sets[m[i]].merge(s)
	}
}

func (a *dcountAgg) result(nGroups int) *store.Vector {
	a.grow(nGroups)
	out := newVector(store.TypeLong, nGroups)
	for g := range nGroups {
		out.Int[g] = a.sets[g].count()
	}
	return out
}

type takeAnyAgg struct {
	minMaxAgg
}

func (a *takeAnyAgg) update(gids []int32, args []*store.Vector, nGroups int) {
	if a.vals == nil {
		a.minMaxAgg.t = args[0].Type
	}
	a.grow(nGroups)
	x := args[0]
	for i, g := range gids {
		if a.has[g] || x.IsNull(i) {
			continue
		}
		a.has[g] = true
		setRow(a.vals, int(g), x, i)
	}
}

func setRow(dst *store.Vector, j int, src *store.Vector, i int) {
	switch {
	case dst.Type == store.TypeBool:
		dst.Bool[j] = src.Bool[i]
	case kql.IsIntHeld(dst.Type):
		dst.Int[j] = src.Int[i]
	case kql.IsRealHeld(dst.Type):
		dst.Real[j] = src.Real[i]
		if hasDecText(dst) {
			dst.Str[j] = decTextAt(src, i) // a decimal's exact text (decimal.go)
		}
	default:
		dst.Str[j] = src.Str[i]
	}
}

func (a *takeAnyAgg) merge(o aggState, m []int32, nGroups int) {
	a.grow(nGroups)
	ob := o.(*takeAnyAgg)
	for i, h := range ob.has {
		if h && !a.has[m[i]] {
			a.has[m[i]] = true
			setRow(a.vals, int(m[i]), ob.vals, i)
		}
	}
}

// varianceAgg keeps count, mean and the sum of squared deviations per group
// (Welford), merged with Chan's formula; stdev and variance are the sample
// statistics, as Kusto's.
type varianceAgg struct {
	stdev bool
	// population selects stdevp/variancep (divide by n, not n-1).
	population bool
	n          []int64
	mean       []float64
	m2         []float64
}

func (a *varianceAgg) grow(k int) {
	a.n = growInt(a.n, k)
	a.mean = growReal(a.mean, k)
	a.m2 = growReal(a.m2, k)
}

func (a *varianceAgg) update(gids []int32, args []*store.Vector, nGroups int) {
	a.grow(nGroups)
	x := args[0]
	for i, g := range gids {
		if x.IsNull(i) {
			continue
		}
		v := realAt(x, i)
		a.n[g]++
		d := v - a.mean[g]
		a.mean[g] += d / float64(a.n[g])
		a.m2[g] += d * (v - a.mean[g])
	}
}

func (a *varianceAgg) merge(o aggState, m []int32, nGroups int) {
	a.grow(nGroups)
	ob := o.(*varianceAgg)
	for i := range ob.n {
		g := m[i]
		if ob.n[i] == 0 {
			continue
		}
		na, nb := float64(a.n[g]), float64(ob.n[i])
		d := ob.mean[i] - a.mean[g]
		tot := na + nb
		a.mean[g] += d * nb / tot
		a.m2[g] += ob.m2[i] + d*d*na*nb/tot
		a.n[g] += ob.n[i]
	}
}

func (a *varianceAgg) result(nGroups int) *store.Vector {
	a.grow(nGroups)
	out := newVector(store.TypeReal, nGroups)
	for g := range nGroups {
		if a.n[g] < 2 {
			continue // Kusto returns 0 for a single value
		}
		d := float64(a.n[g] - 1)
		if a.population {
			d = float64(a.n[g])
		}
		v := a.m2[g] / d
		if a.stdev {
			v = math.Sqrt(v)
		}
		out.Real[g] = v
	}
	return out
}

// listAgg builds make_list / make_set as dynamic JSON arrays.
type listAgg struct {
	set   bool
	max   int
	lists [][]kql.Value
	seen  []map[kql.Value]struct{}
}

func (a *listAgg) grow(n int) {
	for len(a.lists) < n {
		a.lists = append(a.lists, nil)
		if a.set {
			a.seen = append(a.seen, map[kql.Value]struct{}{})
		}
	}
}

func (a *listAgg) add(g int32, v kql.Value) {
	if len(a.lists[g]) >= a.max {
		return
	}
	if a.set {
		k := setKey(v) // agg_decimal.go: decimals by exact value
		if _, ok := a.seen[g][k]; ok {
			return
		}
		a.seen[g][k] = struct{}{}
	}
	a.lists[g] = append(a.lists[g], v)
}

func (a *listAgg) update(gids []int32, args []*store.Vector, nGroups int) {
	a.grow(nGroups)
	x := args[0]
	var pred *store.Vector
	if len(args) > 1 {
		pred = args[1]
	}
	for i, g := range gids {
		if x.IsNull(i) || !keep(pred, i) {
			continue
		}
		a.add(g, valueAt(x, i))
	}
}

func (a *listAgg) merge(o aggState, m []int32, nGroups int) {
	a.grow(nGroups)
	for i, l := range o.(*listAgg).lists {
		for _, v := range l {
			a.add(m[i], v)
		}
	}
}

func (a *listAgg) result(nGroups int) *store.Vector {
	a.grow(nGroups)
	out := newVector(store.TypeDynamic, nGroups)
	var b strings.Builder
	for g := range nGroups {
		b.Reset()
		b.WriteByte('[')
		for i, v := range a.lists[g] {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(jsonValue(v))
		}
		b.WriteByte(']')
		out.Str[g] = b.String()
	}
	return out
}

// jsonValue renders a value as JSON inside a dynamic value.
func jsonValue(v kql.Value) string {
	if v.Null {
		return "null"
	}
	switch {
	case v.Type == store.TypeBool, kql.IsInteger(v.Type):
		return v.String()
	case kql.IsRealHeld(v.Type):
		if math.IsNaN(v.Real) || math.IsInf(v.Real, 0) {
			return `"` + v.String() + `"`
		}
		return v.String()
	case v.Type == store.TypeDynamic:
		if v.Str == "" {
			return "null"
		}
		return v.Str
	}
	b, _ := json.Marshal(v.String())
	return string(b)
}

// argAgg is one output column of arg_max / arg_min: per group it keeps the
// extreme of args[0] (nulls, NaN and empty strings skipped) and the value of
// args[1] on that row. The first extreme wins on ties, in update and in merge,
// so the sibling columns of one arg_max call all pick the same row.
type argAgg struct {
	max  bool
	t    store.ColumnType // result type (of ExprToReturn)
	has  []bool
	keys *store.Vector
	vals []kql.Value
}

func (a *argAgg) grow(n int, kt store.ColumnType) {
	if a.keys == nil {
		a.keys = emptyVector(kt, n)
	}
	a.has = growBool(a.has, n)
	for a.keys.Len() < n {
		appendValue(a.keys, kql.Value{Type: a.keys.Type})
	}
	for len(a.vals) < n {
		a.vals = append(a.vals, kql.NullValue(a.t))
	}
}

// better reports whether row i of x beats group g's current extreme.
func (a *argAgg) better(x *store.Vector, i int, g int32) bool {
	if !a.has[g] {
		return true
	}
	var c int
	if x.Type == store.TypeBool {
		c = cmpInt(boolInt(x.Bool[i]), boolInt(a.keys.Bool[g]))
	} else {
		c = compareRows(x, i, a.keys, int(g))
	}
	if a.max {
		return c > 0
	}
	return c < 0
}

func skipArgKey(x *store.Vector, i int) bool {
	switch {
	case x.IsNull(i):
		return true
	case kql.IsRealHeld(x.Type):
		return math.IsNaN(x.Real[i])
	case x.Type == store.TypeString:
		return x.Str[i] == ""
	}
	return false
}

func (a *argAgg) update(gids []int32, args []*store.Vector, nGroups int) {
	x, r := args[0], args[1]
	a.grow(nGroups, x.Type)
	for i, g := range gids {
		if skipArgKey(x, i) || !a.better(x, i, g) {
			continue
		}
		a.has[g] = true
		setRow(a.keys, int(g), x, i)
		a.vals[g] = valueAt(r, i)
	}
}

func (a *argAgg) merge(o aggState, m []int32, nGroups int) {
	ob := o.(*argAgg)
	if ob.keys == nil {
		return
	}
	a.grow(nGroups, ob.keys.Type)
	for i, h := range ob.has {
		g := m[i]
		if !h || !a.better(ob.keys, i, g) {
			continue
		}
		a.has[g] = true
		setRow(a.keys, int(g), ob.keys, i)
		a.vals[g] = ob.vals[i]
	}
}

func (a *argAgg) result(nGroups int) *store.Vector {
	out := emptyVector(a.t, nGroups)
	for g := range nGroups {
		if g < len(a.vals) {
			appendValue(out, a.vals[g])
		} else {
			appendValue(out, kql.NullValue(a.t))
		}
	}
	return out
}
