package engine

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"custos/internal/kql"
	"custos/internal/store"
)

// Dynamic values are compact JSON text in Vector.Str. A null dynamic is a
// null row, an empty string, or the JSON literal null.

func dynIsNull(s string) bool { return s == "" || s == "null" }

// decodeJSON parses one JSON document, keeping numbers exact.
func decodeJSON(s string) (any, bool) {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, false
	}
	if d.More() {
		return nil, false
	}
	return v, true
}

// encodeJSON renders a decoded value as compact JSON.
func encodeJSON(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return ""
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// dynGet follows a path of keys and indexes; ok is false when it leads nowhere.
func dynGet(doc string, path []kql.Value) (string, bool) {
	if dynIsNull(doc) {
		return "", false
	}
	v, ok := decodeJSON(doc)
	if !ok {
		return "", false
	}
	for _, p := range path {
		switch cur := v.(type) {
		case map[string]any:
			if p.Type != store.TypeString {
				return "", false
			}
			if v, ok = cur[p.Str]; !ok {
				return "", false
			}
		case []any:
			if !kql.IsInteger(p.Type) {
				return "", false
			}
			i := p.Int
			if i < 0 {
				i += int64(len(cur))
			}
			if i < 0 || i >= int64(len(cur)) {
				return "", false
			}
			v = cur[i]
		default:
			return "", false
		}
	}
	if v == nil {
		return "", false
	}
	return encodeJSON(v), true
}

// dynScalarText returns the text of a dynamic scalar for conversions: a JSON
// string unquoted, other scalars as written; ok is false for null.
func dynScalarText(s string) (string, bool) {
	if dynIsNull(s) {
		return "", false
	}
	if strings.HasPrefix(s, `"`) {
		u, err := strconv.Unquote(s)
		if err != nil {
			var str string
			if json.Unmarshal([]byte(s), &str) != nil {
				return s, true
			}
			return str, true
		}
		return u, true
	}
	return s, true
}

// parseJSONText implements parse_json: valid JSON is compacted, anything
// else becomes a JSON string, and the empty string is null.
func parseJSONText(s string) (string, bool) {
	if s == "" {
		return "", false
	}
	var b bytes.Buffer
	if json.Valid([]byte(s)) && json.Compact(&b, []byte(s)) == nil {
		if b.String() == "null" {
			return "", false
		}
		return b.String(), true
	}
	q, _ := json.Marshal(s)
	return string(q), true
}

func (ev *evaluator) dynamicFunc(c *kql.FnCall, args []*store.Vector, n int) *store.Vector {
	out := newVector(c.T, n)
	nulls := make([]bool, n)
	anyNull := false
	switch c.Fn {
	case kql.FnDynGet:
		path := make([]kql.Value, len(c.Args)-1)
		for i, a := range c.Args[1:] {
			path[i] = a.(*kql.Const).V
		}
		for i := range n {
			if args[0].IsNull(i) {
				nulls[i], anyNull = true, true
				continue
			}
			v, ok := dynGet(args[0].Str[i], path)
			if !ok {
				nulls[i], anyNull = true, true
				continue
			}
			out.Str[i] = v
		}
	case kql.FnParseJSON:
		for i := range n {
			v, ok := parseJSONText(args[0].Str[i])
			if !ok {
				nulls[i], anyNull = true, true
				continue
			}
			out.Str[i] = v
		}
	case kql.FnArrayLength:
		for i := range n {
			var arr []any
			if args[0].IsNull(i) || json.Unmarshal([]byte(args[0].Str[i]), &arr) != nil || arr == nil {
				nulls[i], anyNull = true, true
				continue
			}
			out.Int[i] = int64(len(arr))
		}
	}
	if anyNull {
		out.Nulls = nulls
	}
	return out
}
