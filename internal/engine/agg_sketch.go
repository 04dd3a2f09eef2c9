package engine

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"

	"custos/internal/kql"
	"custos/internal/store"
)

// Sketches (hll, tdigest) are dynamic values in Custos's own encoding:
//
//	["hll", precision, exactThreshold, "s"|"d", base64]
//	    "s": sorted 64-bit big-endian hashes (exact mode), "d": 2^p registers
//	["tdigest", type, base, min, max, [[mean, weight], ...]]
//	    means are offsets from base for long, datetime and timespan inputs
//
// They are read back from query results and user input, so the decoders
// bound every size and reject anything malformed.

const hllTag, tdigestTag = "hll", "tdigest"

func encodeHLL(h *hll) string {
	var kind string
	var payload []byte
	if h.regs == nil {
		kind = "s"
		hs := make([]uint64, 0, len(h.sparse))
		for x := range h.sparse {
			hs = append(hs, x)
		}
		slices.Sort(hs)
		payload = make([]byte, 8*len(hs))
		for i, x := range hs {
			binary.BigEndian.PutUint64(payload[8*i:], x)
		}
	} else {
		kind, payload = "d", h.regs
	}
	return fmt.Sprintf(`["%s",%d,%d,"%s","%s"]`, hllTag, h.p, h.exact, kind, base64.StdEncoding.EncodeToString(payload))
}

// decodeHLL parses a sketch made by encodeHLL.
func decodeHLL(s string) (*hll, error) {
	var parts []json.RawMessage
	if err := json.Unmarshal([]byte(s), &parts); err != nil || len(parts) != 5 {
		return nil, fmt.Errorf("not an hll sketch")
	}
	var tag, kind, data string
	var p, exact int
	if json.Unmarshal(parts[0], &tag) != nil || tag != hllTag || json.Unmarshal(parts[1], &p) != nil ||
		json.Unmarshal(parts[2], &exact) != nil || json.Unmarshal(parts[3], &kind) != nil || json.Unmarshal(parts[4], &data) != nil {
		return nil, fmt.Errorf("not an hll sketch")
	}
	if p < 4 || p > 18 || exact < 0 || exact > 1<<16 {
		return nil, fmt.Errorf("hll sketch: precision %d or threshold %d out of range", p, exact)
	}
	raw, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return nil, fmt.Errorf("hll sketch: %w", err)
	}
	h := newHLL(p, exact)
	switch kind {
	case "s":
		if len(raw)%8 != 0 || len(raw)/8 > exact {
			return nil, fmt.Errorf("hll sketch: bad exact set")
		}
		for i := 0; i < len(raw); i += 8 {
			h.sparse[binary.BigEndian.Uint64(raw[i:])] = struct{}{}
		}
	case "d":
		if len(raw) != 1<<p {
			return nil, fmt.Errorf("hll sketch: %d registers for precision %d", len(raw), p)
		}
		for _, r := range raw {
			if int(r) > 64-p+1 {
				return nil, fmt.Errorf("hll sketch: register out of range")
			}
		}
		h.sparse, h.regs = nil, slices.Clone(raw)
	default:
		return nil, fmt.Errorf("hll sketch: unknown kind %q", kind)
	}
	return h, nil
}

func encodeTDigest(t store.ColumnType, d *tdigest) string {
	var b strings.Builder
	fmt.Fprintf(&b, `["%s","%s",%d,%s,%s,[`, tdigestTag, t, d.base, jsonNumber(d.min), jsonNumber(d.max))
	first := true
	entry := func(mean, w float64) {
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteByte('[')
		b.WriteString(jsonNumber(mean))
		b.WriteByte(',')
		b.WriteString(jsonNumber(w))
		b.WriteByte(']')
	}
	d.flatten()
	if !d.digest && len(d.exact) > tdSketchExact {
		d.toDigest()
	}
	if d.digest {
		d.compress()
		for _, c := range d.cents {
			entry(c.mean, c.w)
		}
	} else {
		sorted := slices.Clone(d.exact)
		slices.Sort(sorted)
		for _, x := range sorted {
			entry(x, 1)
		}
	}
	b.WriteString("]]")
	return b.String()
}

// decodeTDigest parses a sketch made by encodeTDigest.
func decodeTDigest(s string) (store.ColumnType, *tdigest, error) {
	var parts []json.RawMessage
	bad := fmt.Errorf("not a tdigest sketch")
	if err := json.Unmarshal([]byte(s), &parts); err != nil || len(parts) != 6 {
		return 0, nil, bad
	}
	var tag, typ string
	var base int64
	var lo, hi float64
	var entries [][2]float64
	if json.Unmarshal(parts[0], &tag) != nil || tag != tdigestTag || json.Unmarshal(parts[1], &typ) != nil ||
		json.Unmarshal(parts[2], &base) != nil || json.Unmarshal(parts[3], &lo) != nil ||
		json.Unmarshal(parts[4], &hi) != nil || json.Unmarshal(parts[5], &entries) != nil {
		return 0, nil, bad
	}
	t, ok := store.ParseColumnType(typ)
	if !ok || !(kql.IsNumeric(t) || t == store.TypeDatetime || t == store.TypeTimespan) {
		return 0, nil, fmt.Errorf("tdigest sketch: bad type %q", typ)
	}
	if len(entries) > 4*tdSketchExact || lo > hi {
		return 0, nil, fmt.Errorf("tdigest sketch: malformed")
	}
	d := &tdigest{base: base, hasBase: kql.IsIntHeld(t)}
	for _, e := range entries {
		if !(e[1] >= 1) || math.IsInf(e[1], 0) || math.IsNaN(e[0]) || math.IsInf(e[0], 0) || e[1] > 1e15 {
			return 0, nil, fmt.Errorf("tdigest sketch: bad centroid")
		}
		d.add(e[0], e[1])
	}
	if d.n > 0 {
		d.min, d.max = lo, hi
	}
	return t, d, nil
}

// hllAgg is hll() and hll_if(): dcount's counter, returned as a sketch.
type hllAgg struct{ dcountAgg }

func (a *hllAgg) merge(o aggState, m []int32, nGroups int) {
	a.dcountAgg.merge(&o.(*hllAgg).dcountAgg, m, nGroups)
}

func (a *hllAgg) result(nGroups int) *store.Vector {
	a.grow(nGroups)
	out := newVector(store.TypeDynamic, nGroups)
	for g := range nGroups {
		out.Str[g] = encodeHLL(a.sets[g])
	}
	return out
}

// hllMergeAgg is hll_merge(): the union of the sketches of a group.
// Sketches of different precision do not merge; the group's result is null.
type hllMergeAgg struct {
	sets []*hll
	bad  []bool
}

func (a *hllMergeAgg) grow(n int) {
	for len(a.sets) < n {
		a.sets = append(a.sets, nil)
		a.bad = append(a.bad, false)
	}
}

func (a *hllMergeAgg) add(g int32, h *hll) {
	switch cur := a.sets[g]; {
	case cur == nil:
		a.sets[g] = h
	case cur.p != h.p:
		a.bad[g] = true
	default:
		cur.merge(h)
	}
}

func (a *hllMergeAgg) update(gids []int32, args []*store.Vector, nGroups int) {
	a.grow(nGroups)
	x := args[0]
	for i, g := range gids {
		if x.IsNull(i) || dynIsNull(x.Str[i]) {
			continue
		}
		h, err := decodeHLL(x.Str[i])
		if err != nil {
			a.bad[g] = true
			continue
		}
		a.add(g, h)
	}
}

func (a *hllMergeAgg) merge(o aggState, m []int32, nGroups int) {
	a.grow(nGroups)
	ob := o.(*hllMergeAgg)
	for i, h := range ob.sets {
		if ob.bad[i] {
			a.bad[m[i]] = true
		}
		if h != nil {
			a.add(m[i], h)
		}
	}
}

func (a *hllMergeAgg) result(nGroups int) *store.Vector {
	a.grow(nGroups)
	out := emptyVector(store.TypeDynamic, nGroups)
	for g := range nGroups {
		if a.sets[g] == nil || a.bad[g] {
			appendValue(out, kql.NullValue(store.TypeDynamic))
			continue
		}
		appendValue(out, kql.Value{Type: store.TypeDynamic, Str: encodeHLL(a.sets[g])})
	}
	return out
}

// tdigestAgg is tdigest(): percentile's digest, returned as a sketch.
type tdigestAgg struct{ percentileAgg }

func (a *tdigestAgg) merge(o aggState, m []int32, nGroups int) {
	a.percentileAgg.merge(&o.(*tdigestAgg).percentileAgg, m, nGroups)
}

func (a *tdigestAgg) result(nGroups int) *store.Vector {
	a.grow(nGroups)
	out := emptyVector(store.TypeDynamic, nGroups)
	for g := range nGroups {
		if a.groups[g].n == 0 {
			appendValue(out, kql.NullValue(store.TypeDynamic))
			continue
		}
		appendValue(out, kql.Value{Type: store.TypeDynamic, Str: encodeTDigest(a.t, a.groups[g])})
	}
	return out
}

// tdigestMergeAgg is tdigest_merge(): the union of the digests of a group;
// digests of different types make the group's result null.
type tdigestMergeAgg struct {
	types  []store.ColumnType
	groups []*tdigest
	bad    []bool
}

func (a *tdigestMergeAgg) grow(n int) {
	for len(a.groups) < n {
		a.groups = append(a.groups, nil)
		a.types = append(a.types, 0)
		a.bad = append(a.bad, false)
	}
}

func (a *tdigestMergeAgg) add(g int32, t store.ColumnType, d *tdigest) {
	switch {
	case a.groups[g] == nil:
		a.groups[g], a.types[g] = d, t
	case a.types[g] != t:
		a.bad[g] = true
	default:
		a.groups[g].merge(d)
	}
}

func (a *tdigestMergeAgg) update(gids []int32, args []*store.Vector, nGroups int) {
	a.grow(nGroups)
	x := args[0]
	for i, g := range gids {
		if x.IsNull(i) || dynIsNull(x.Str[i]) {
			continue
		}
		t, d, err := decodeTDigest(x.Str[i])
		if err != nil {
			a.bad[g] = true
			continue
		}
		a.add(g, t, d)
	}
}

func (a *tdigestMergeAgg) merge(o aggState, m []int32, nGroups int) {
	a.grow(nGroups)
	ob := o.(*tdigestMergeAgg)
	for i, d := range ob.groups {
		if ob.bad[i] {
			a.bad[m[i]] = true
		}
		if d != nil {
			a.add(m[i], ob.types[i], d)
		}
	}
}

func (a *tdigestMergeAgg) result(nGroups int) *store.Vector {
	a.grow(nGroups)
	out := emptyVector(store.TypeDynamic, nGroups)
	for g := range nGroups {
		if a.groups[g] == nil || a.bad[g] {
			appendValue(out, kql.NullValue(store.TypeDynamic))
			continue
		}
		appendValue(out, kql.Value{Type: store.TypeDynamic, Str: encodeTDigest(a.types[g], a.groups[g])})
	}
	return out
}

// sketchFunctions evaluates the scalar sketch functions: dcount_hll,
// percentile_tdigest, percentiles_array_tdigest, hll_merge, tdigest_merge.
func (ev *evaluator) sketchFunctions(c *kql.FnCall, args []*store.Vector, n int) (*store.Vector, bool, error) {
	t := c.T
	null := kql.NullValue(t)
	switch c.Fn {
	case kql.FnDcountHLL:
		return rowFunc(t, args, n, func(v []kql.Value) kql.Value {
			h, err := decodeHLL(v[0].Str)
			if v[0].Null || err != nil {
				return null
			}
			return kql.LongValue(h.count())
		}), true, nil
	case kql.FnHLLMerge:
		return rowFunc(t, args, n, func(v []kql.Value) kql.Value {
			var acc *hll
			for _, x := range v {
				if x.Null || dynIsNull(x.Str) {
					continue
				}
				h, err := decodeHLL(x.Str)
				if err != nil || (acc != nil && acc.p != h.p) {
					return null
				}
				if acc == nil {
					acc = h
				} else {
					acc.merge(h)
				}
			}
			if acc == nil {
				return null
			}
			return kql.Value{Str: encodeHLL(acc)}
		}), true, nil
	case kql.FnTDigestMerge:
		return rowFunc(t, args, n, func(v []kql.Value) kql.Value {
			var acc *tdigest
			var at store.ColumnType
			for _, x := range v {
				if x.Null || dynIsNull(x.Str) {
					continue
				}
				dt, d, err := decodeTDigest(x.Str)
				if err != nil || (acc != nil && at != dt) {
					return null
				}
				if acc == nil {
					acc, at = d, dt
				} else {
					acc.merge(d)
				}
			}
			if acc == nil {
				return null
			}
			return kql.Value{Str: encodeTDigest(at, acc)}
		}), true, nil
	case kql.FnPercentileTDigest:
		var percents []float64
		for _, a := range c.Args[1:] {
			percents = append(percents, a.(*kql.Const).V.Real)
		}
		return rowFunc(t, args[:1], n, func(v []kql.Value) kql.Value {
			dt, d, err := decodeTDigest(v[0].Str)
			if v[0].Null || err != nil || d.n == 0 {
				return null
			}
			vals := make([]string, len(percents))
			var last float64
			for i, p := range percents {
				last = d.quantile(p)
				if kql.IsIntHeld(dt) {
					last = float64(d.base) + math.Round(last)
				}
				vals[i] = jsonNumber(last)
			}
			if t == store.TypeDynamic {
				return kql.Value{Str: "[" + strings.Join(vals, ",") + "]"}
			}
			return kql.RealValue(last)
		}), true, nil
	}
	return nil, false, nil
}
