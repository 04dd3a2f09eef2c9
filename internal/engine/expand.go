package engine

import (
	"encoding/json"
	"strings"

	"custos/internal/kql"
	"custos/internal/store"
)

// expandValue splits one dynamic value into the elements mv-expand produces:
// a null gives one null element, an empty array or bag none, a scalar itself.
func expandValue(s string, null, bag bool) []string {
	if null || dynIsNull(s) {
		return []string{""}
	}
	if out, ok := splitJSONArray(s); ok { // fast path for arrays (perf_json.go)
		return out
	}
	v, ok := decodeJSON(s)
	if !ok {
		return []string{s}
	}
	switch v := v.(type) {
	case []any:
		out := make([]string, len(v))
		for i, e := range v {
			if e == nil {
				continue
			}
			out[i] = encodeJSON(e)
		}
		return out
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		// Keep the document's key order when possible.
		keys = orderedKeys(s, keys)
		out := make([]string, len(keys))
		for i, k := range keys {
			if bag {
				out[i] = encodeJSON(map[string]any{k: v[k]})
			} else {
				out[i] = encodeJSON([]any{k, v[k]})
			}
		}
		return out
	}
	return []string{s}
}

// orderedKeys returns keys in the order they appear in the JSON object s.
func orderedKeys(s string, keys []string) []string {
	d := json.NewDecoder(stringsReader(s))
	var out []string
	if _, err := d.Token(); err != nil {
		return keys
	}
	for d.More() {
		t, err := d.Token()
		if err != nil {
			return keys
		}
		k, ok := t.(string)
		if !ok {
			return keys
		}
		out = append(out, k)
		var skip json.RawMessage
		if err := d.Decode(&skip); err != nil {
			return keys
		}
	}
	if len(out) != len(keys) {
		return keys
	}
	return out
}

// expand runs mv-expand on one batch.
func (x *executor) expand(m *kql.Expand, b *store.Batch) (*store.Batch, error) {
	items := make([]*store.Vector, len(m.Items))
	for i, it := range m.Items {
		v, err := x.ev.eval(it.X, b)
		if err != nil {
			return nil, err
		}
		items[i] = v
	}
	var sel []int32
	var idx []int64
	vals := make([][]string, len(items))
	valNull := make([][]bool, len(items))
	elems := make([][]string, len(items))
	for r := 0; r < b.Len; r++ {
		n := 0
		for i, v := range items {
			elems[i] = expandValue(v.Str[r], v.IsNull(r), m.Bag)
			n = max(n, len(elems[i]))
		}
		if m.Limit > 0 && int64(n) > m.Limit {
			n = int(m.Limit)
		}
		for k := 0; k < n; k++ {
			sel = append(sel, int32(r))
			idx = append(idx, int64(k))
			for i := range items {
				e, null := "", true
				if k < len(elems[i]) && elems[i][k] != "" {
					e, null = elems[i][k], false
				}
				vals[i] = append(vals[i], e)
				valNull[i] = append(valNull[i], null)
			}
		}
	}
	schema := m.Schema()
	out := &store.Batch{Schema: schema, Cols: make([]*store.Vector, len(schema)), Len: len(sel)}
	for i, c := range b.Schema {
		if j := schema.Index(c.Name); j >= 0 {
			out.Cols[j] = gather(b.Cols[i], sel)
		}
	}
	for i, it := range m.Items {
		v := &store.Vector{Type: store.TypeDynamic, Str: vals[i]}
		if vals[i] == nil {
			v.Str = []string{}
		}
		anyNull := false
		for _, nl := range valNull[i] {
			anyNull = anyNull || nl
		}
		if anyNull {
			v.Nulls = valNull[i]
		}
		if t := m.Types[i]; t != store.TypeDynamic {
			v = convertVector(v, t, len(sel))
		}
		out.Cols[schema.Index(it.Name)] = v
	}
	if m.IndexCol != "" {
		out.Cols[schema.Index(m.IndexCol)] = &store.Vector{Type: store.TypeLong, Int: append([]int64{}, idx...)}
	}
	return out, nil
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }
