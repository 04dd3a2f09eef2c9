package engine

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"strings"

	"custos/internal/kql"
	"custos/internal/store"
)

// colDict assigns dense IDs to the distinct values of one key column, in
// first-seen order, and keeps the values. A one-entry cache of the last value
// makes runs (binned timestamps, sorted data) nearly free.
type colDict struct {
	t       store.ColumnType
	ints    map[int64]uint32 // int-held, real (as bits) and bool keys
	strs    map[string]uint32
	nullID  int64 // ID of the null value, -1 if not seen
	values  *store.Vector
	hasLast bool
	lastInt int64
	lastStr string
	lastID  uint32
	// codeIDs maps the codes of the current block dictionary to dictionary
	// IDs plus one (0: not yet seen); reset for every vector, since the
	// store may reuse dictionary buffers between blocks.
	codeIDs []uint32
}

func newColDict(t store.ColumnType) *colDict {
	d := &colDict{t: t, nullID: -1, values: emptyVector(t, 16)}
	if kql.IsStringLike(t) {
		d.strs = map[string]uint32{}
	} else {
		d.ints = map[int64]uint32{}
	}
	return d
}

func (d *colDict) size() int { return d.values.Len() }

// intKey maps a non-string value to the dictionary's integer key.
func intKey(v *store.Vector, i int) int64 {
	switch {
	case v.Type == store.TypeBool:
		return boolInt(v.Bool[i])
	case kql.IsRealHeld(v.Type):
		f := v.Real[i]
		if f == 0 {
			f = 0 // one key for -0 and +0
		}
		if math.IsNaN(f) {
			return 0x7ff8000000000001
		}
		return int64(math.Float64bits(f))
	}
	return v.Int[i]
}

func (d *colDict) add(v *store.Vector, i int) uint32 {
	id := uint32(d.values.Len())
	if d.strs != nil {
		d.values.Str = append(d.values.Str, v.Str[i])
		return id
	}
	appendRow(d.values, v, i)
	return id
}

// ids appends the dictionary ID of every row of v to out.
func (d *colDict) ids(v *store.Vector, n int, out []uint32) []uint32 {
	if d.strs != nil && len(v.Codes) >= n && len(v.Dict) > 0 && len(v.Dict) <= 4*n+64 {
		return d.codeIDsOf(v, n, out)
	}
	if d.strs != nil {
		for i, s := range v.Str[:n] {
			if d.hasLast && s == d.lastStr {
				out = append(out, d.lastID)
				continue
			}
			id, ok := d.strs[s]
			if !ok {
				id = d.add(v, i)
				d.strs[s] = id
			}
			d.hasLast, d.lastStr, d.lastID = true, s, id
			out = append(out, id)
		}
		return out
	}
	for i := range n {
		if v.Nulls != nil && v.Nulls[i] {
			if d.nullID < 0 {
				d.nullID = int64(d.add(v, i))
			}
			out = append(out, uint32(d.nullID))
			continue
		}
		k := intKey(v, i)
		if d.hasLast && k == d.lastInt {
			out = append(out, d.lastID)
			continue
		}
		id, ok := d.ints[k]
		if !ok {
			id = d.add(v, i)
			d.ints[k] = id
		}
		d.hasLast, d.lastInt, d.lastID = true, k, id
		out = append(out, id)
	}
	return out
}

// codeIDsOf is ids for a dictionary-encoded string vector: each distinct
// code is hashed once per vector instead of each row. A code outside the
// dictionary (a broken block) falls back to the row's string.
func (d *colDict) codeIDsOf(v *store.Vector, n int, out []uint32) []uint32 {
	if cap(d.codeIDs) < len(v.Dict) {
		d.codeIDs = make([]uint32, len(v.Dict))
	}
	m := d.codeIDs[:len(v.Dict)]
	clear(m)
	for i, c := range v.Codes[:n] {
		if int(c) < len(m) {
			if id := m[c]; id != 0 {
				out = append(out, id-1)
				continue
			}
		}
		s := v.Str[i]
		id, ok := d.strs[s]
		if !ok {
			id = uint32(d.values.Len())
			d.values.Str = append(d.values.Str, s)
			d.strs[s] = id
		}
		if int(c) < len(m) && v.Dict[c] == s {
			m[c] = id + 1
		}
		out = append(out, id)
	}
	// The one-value cache of the string path may be stale now.
	d.hasLast = false
	return out
}

// groupTable maps group keys to dense group IDs. Each key column has a
// dictionary; one key column's dictionary IDs are the group IDs, two are
// combined into one uint64, more are packed into a byte key. Not safe for
// concurrent use: each worker owns one.
type groupTable struct {
	types []store.ColumnType
	dicts []*colDict
	pairs map[uint64]int32 // two key columns
	bytes map[string]int32 // three or more
	// members[g*k+j] is the dictionary ID of key column j of group g (k ≥ 2).
	members []uint32
	n       int
	scratch [][]uint32
	buf     []byte
}

func newGroupTable(types []store.ColumnType) *groupTable {
	g := &groupTable{types: types, dicts: make([]*colDict, len(types)), scratch: make([][]uint32, len(types))}
	for i, t := range types {
		g.dicts[i] = newColDict(t)
	}
	switch {
	case len(types) == 2:
		g.pairs = map[uint64]int32{}
	case len(types) > 2:
		g.bytes = map[string]int32{}
	}
	return g
}

// ids assigns the group ID of every row of the key vectors to out, creating
// groups as needed.
func (g *groupTable) ids(keys []*store.Vector, n int, out []int32) []int32 {
	out = out[:0]
	k := len(g.types)
	if k == 0 {
		if g.n == 0 && n > 0 {
			g.n = 1
		}
		for range n {
			out = append(out, 0)
		}
		return out
	}
	for j, d := range g.dicts {
		g.scratch[j] = d.ids(keys[j], n, g.scratch[j][:0])
	}
	switch k {
	case 1:
		for _, id := range g.scratch[0] {
			out = append(out, int32(id))
		}
		g.n = g.dicts[0].size()
	case 2:
		a, b := g.scratch[0], g.scratch[1]
		for i := range n {
			key := uint64(a[i])<<32 | uint64(b[i])
			id, ok := g.pairs[key]
			if !ok {
				id = int32(g.n)
				g.pairs[key] = id
				g.members = append(g.members, a[i], b[i])
				g.n++
			}
			out = append(out, id)
		}
	default:
		for i := range n {
			buf := g.buf[:0]
			for j := range k {
				buf = binary.LittleEndian.AppendUint32(buf, g.scratch[j][i])
			}
			g.buf = buf
			id, ok := g.bytes[string(buf)]
			if !ok {
				id = int32(g.n)
				g.bytes[string(buf)] = id
				for j := range k {
					g.members = append(g.members, g.scratch[j][i])
				}
				g.n++
			}
			out = append(out, id)
		}
	}
	return out
}

// keyVectors returns the key values of all groups, one vector per key column.
func (g *groupTable) keyVectors() []*store.Vector {
	k := len(g.types)
	out := make([]*store.Vector, k)
	if k == 1 {
		out[0] = g.dicts[0].values
		return out
	}
	sel := make([]int32, g.n)
	for j := range k {
		for grp := range g.n {
			sel[grp] = int32(g.members[grp*k+j])
		}
		out[j] = gather(g.dicts[j].values, sel)
	}
	return out
}

// appendKey encodes row i of k for a hash key: a null flag, then the value
// (8 bytes for numbers, length-prefixed bytes for strings).
func appendKey(b []byte, k *store.Vector, i int) []byte {
	if k.IsNull(i) {
		return append(b, 0)
	}
	switch {
	case k.Type == store.TypeBool:
		if k.Bool[i] {
			return append(b, 1, 1)
		}
		return append(b, 1, 0)
	case kql.IsIntHeld(k.Type):
		b = append(b, 1)
		return binary.LittleEndian.AppendUint64(b, uint64(k.Int[i]))
	case kql.IsRealHeld(k.Type):
		f := k.Real[i]
		if f == 0 {
			f = 0
		}
		b = append(b, 1)
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
	default:
		s := k.Str[i]
		b = append(b, 1)
		b = binary.AppendUvarint(b, uint64(len(s)))
		return append(b, s...)
	}
}

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
		if kql.IsRealHeld(a.T) {
			return &sumRealAgg{}
		}
		return &sumIntAgg{t: a.T}
	case kql.AggAvg, kql.AggAvgIf:
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
	panic("BUG: unknown aggregation " + a.Fn.String())
}

func keep(pred *store.Vector, i int) bool {
	return pred == nil || (pred.Bool[i] && !pred.IsNull(i))
}

func growInt(s []int64, n int) []int64 {
	for len(s) < n {
		s = append(s, 0)
	}
	return s
}

func growReal(s []float64, n int) []float64 {
	for len(s) < n {
		s = append(s, 0)
	}
	return s
}

func growBool(s []bool, n int) []bool {
	for len(s) < n {
		s = append(s, false)
	}
	return s
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
	for i, g := range gids {
		if x.IsNull(i) || !keep(pred, i) {
			continue
		}
		a.sets[g].add(hashValue(x, i))
	}
}

func hashValue(x *store.Vector, i int) uint64 {
	switch {
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
		if _, ok := a.seen[g][v]; ok {
			return
		}
		a.seen[g][v] = struct{}{}
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
