package engine

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"custos/internal/kql"
	"custos/internal/store"
)

// newAggStateExt returns the states of the aggregations added with the
// registry.
func newAggStateExt(a *kql.AggCall) (aggState, bool) {
	switch a.Fn {
	case kql.AggMakeBag, kql.AggMakeBagIf:
		return &bagAgg{max: a.Accuracy}, true
	case kql.AggHLL, kql.AggHLLIf:
		p, exact := kql.DcountPrecision(a.Accuracy)
		return &hllAgg{dcountAgg{p: p, exact: exact}}, true
	case kql.AggHLLMerge:
		return &hllMergeAgg{}, true
	case kql.AggTDigest:
		return &tdigestAgg{percentileAgg{t: a.Args[0].Type()}}, true
	case kql.AggTDigestMerge:
		return &tdigestMergeAgg{}, true
	case kql.AggBuildSchema:
		return &schemaAgg{}, true
	case kql.AggCountDistinct, kql.AggCountDistinctIf:
		return &distinctAgg{}, true
	}
	return nil, false
}

// bagAgg is make_bag(): the union of the property bags of a group, the
// first value of a key winning, at most max keys.
type bagAgg struct {
	max  int
	keys [][]string
	vals [][]json.RawMessage
	seen []map[string]struct{}
}

func (a *bagAgg) grow(n int) {
	for len(a.keys) < n {
		a.keys = append(a.keys, nil)
		a.vals = append(a.vals, nil)
		a.seen = append(a.seen, map[string]struct{}{})
	}
}

func (a *bagAgg) add(g int32, k string, v json.RawMessage) {
	if _, ok := a.seen[g][k]; ok || len(a.keys[g]) >= a.max {
		return
	}
	a.seen[g][k] = struct{}{}
	a.keys[g] = append(a.keys[g], k)
	a.vals[g] = append(a.vals[g], v)
}

func (a *bagAgg) update(gids []int32, args []*store.Vector, nGroups int) {
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
		ks, vs, ok := dynBag(x.Str[i])
		if !ok {
			continue // make_bag ignores values that are not property bags
		}
		for j, k := range ks {
			a.add(g, k, vs[j])
		}
	}
}

func (a *bagAgg) merge(o aggState, m []int32, nGroups int) {
	a.grow(nGroups)
	ob := o.(*bagAgg)
	for i, ks := range ob.keys {
		for j, k := range ks {
			a.add(m[i], k, ob.vals[i][j])
		}
	}
}

func (a *bagAgg) result(nGroups int) *store.Vector {
	a.grow(nGroups)
	out := newVector(store.TypeDynamic, nGroups)
	for g := range nGroups {
		out.Str[g] = rawBagText(a.keys[g], a.vals[g])
	}
	return out
}

// schemaNode is buildschema()'s description of the values seen at one
// place: the alternatives in first-seen order — primitive type names, an
// object (properties) or an array (indexer).
type schemaNode struct {
	alts    []string // "long", "double", "string", "bool", "object", "array"
	keys    []string
	props   map[string]*schemaNode
	indexer *schemaNode
}

func (s *schemaNode) addAlt(a string) {
	if !slices.Contains(s.alts, a) {
		s.alts = append(s.alts, a)
	}
}

func (s *schemaNode) observe(v any) {
	switch x := v.(type) {
	case nil:
	case bool:
		s.addAlt("bool")
	case json.Number:
		if _, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			s.addAlt("long")
		} else {
			s.addAlt("double")
		}
	case string:
		s.addAlt("string")
	case []any:
		s.addAlt("array")
		if s.indexer == nil {
			s.indexer = &schemaNode{}
		}
		for _, e := range x {
			s.indexer.observe(e)
		}
	case orderedObject:
		s.addAlt("object")
		if s.props == nil {
			s.props = map[string]*schemaNode{}
		}
		for i, k := range x.keys {
			p, ok := s.props[k]
			if !ok {
				p = &schemaNode{}
				s.props[k] = p
				s.keys = append(s.keys, k)
			}
			p.observe(x.vals[i])
		}
	}
}

func (s *schemaNode) mergeFrom(o *schemaNode) {
	for _, a := range o.alts {
		s.addAlt(a)
	}
	if o.indexer != nil {
		if s.indexer == nil {
			s.indexer = &schemaNode{}
		}
		s.indexer.mergeFrom(o.indexer)
	}
	for _, k := range o.keys {
		if s.props == nil {
			s.props = map[string]*schemaNode{}
		}
		p, ok := s.props[k]
		if !ok {
			p = &schemaNode{}
			s.props[k] = p
			s.keys = append(s.keys, k)
		}
		p.mergeFrom(o.props[k])
	}
}

func (s *schemaNode) text() string {
	var alts []string
	for _, a := range s.alts {
		switch a {
		case "object":
			vals := make([]string, len(s.keys))
			for i, k := range s.keys {
				vals[i] = s.props[k].text()
			}
			alts = append(alts, jsonObjectText(s.keys, vals))
		case "array":
			alts = append(alts, jsonObjectText([]string{"indexer"}, []string{s.indexer.text()}))
		default:
			alts = append(alts, jsonString(a))
		}
	}
	switch len(alts) {
	case 0:
		return "null"
	case 1:
		return alts[0]
	}
	return "[" + strings.Join(alts, ",") + "]"
}

// orderedObject is a JSON object decoded with its key order.
type orderedObject struct {
	keys []string
	vals []any
}

// decodeOrdered decodes JSON keeping object key order and exact numbers.
func decodeOrdered(d *json.Decoder) (any, error) {
	tok, err := d.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			var o orderedObject
			for d.More() {
				kt, err := d.Token()
				if err != nil {
					return nil, err
				}
				v, err := decodeOrdered(d)
				if err != nil {
					return nil, err
				}
				o.keys, o.vals = append(o.keys, kt.(string)), append(o.vals, v)
			}
			_, err := d.Token()
			return o, err
		case '[':
			arr := []any{}
			for d.More() {
				v, err := decodeOrdered(d)
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			_, err := d.Token()
			return arr, err
		}
	}
	return tok, nil
}

// schemaAgg is buildschema().
type schemaAgg struct{ nodes []*schemaNode }

func (a *schemaAgg) grow(n int) {
	for len(a.nodes) < n {
		a.nodes = append(a.nodes, &schemaNode{})
	}
}

func (a *schemaAgg) update(gids []int32, args []*store.Vector, nGroups int) {
	a.grow(nGroups)
	x := args[0]
	for i, g := range gids {
		if x.IsNull(i) || dynIsNull(x.Str[i]) {
			continue
		}
		d := json.NewDecoder(strings.NewReader(x.Str[i]))
		d.UseNumber()
		v, err := decodeOrdered(d)
		if err != nil {
			continue
		}
		a.nodes[g].observe(v)
	}
}

func (a *schemaAgg) merge(o aggState, m []int32, nGroups int) {
	a.grow(nGroups)
	for i, s := range o.(*schemaAgg).nodes {
		a.nodes[m[i]].mergeFrom(s)
	}
}

func (a *schemaAgg) result(nGroups int) *store.Vector {
	a.grow(nGroups)
	out := emptyVector(store.TypeDynamic, nGroups)
	for g := range nGroups {
		if len(a.nodes[g].alts) == 0 {
			appendValue(out, kql.NullValue(store.TypeDynamic))
			continue
		}
		appendValue(out, kql.Value{Type: store.TypeDynamic, Str: a.nodes[g].text()})
	}
	return out
}

// distinctAgg is count_distinct(): the exact number of distinct non-null
// values of a group.
type distinctAgg struct{ sets []map[kql.Value]struct{} }

func (a *distinctAgg) grow(n int) {
	for len(a.sets) < n {
		a.sets = append(a.sets, map[kql.Value]struct{}{})
	}
}

func (a *distinctAgg) update(gids []int32, args []*store.Vector, nGroups int) {
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
		a.sets[g][setKey(valueAt(x, i))] = struct{}{} // decimals by exact value
	}
}

func (a *distinctAgg) merge(o aggState, m []int32, nGroups int) {
	a.grow(nGroups)
	for i, s := range o.(*distinctAgg).sets {
		for v := range s {
			a.sets[m[i]][v] = struct{}{}
		}
	}
}

func (a *distinctAgg) result(nGroups int) *store.Vector {
	a.grow(nGroups)
	out := newVector(store.TypeLong, nGroups)
	for g := range nGroups {
		out.Int[g] = int64(len(a.sets[g]))
	}
	return out
}
