package engine

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"

	"custos/internal/kql"
	"custos/internal/store"
)

// Dynamic values are handled as raw JSON so that property order and number
// spelling survive (Kusto keeps a bag's insertion order).

// compactRaw returns the compact form of one JSON value.
func compactRaw(r json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, r) != nil {
		return string(r)
	}
	return b.String()
}

// dynArray parses a dynamic array; ok is false for anything else.
func dynArray(s string) ([]json.RawMessage, bool) {
	if !strings.HasPrefix(s, "[") {
		return nil, false
	}
	var arr []json.RawMessage
	if json.Unmarshal([]byte(s), &arr) != nil || arr == nil {
		return nil, false
	}
	for i := range arr {
		arr[i] = json.RawMessage(compactRaw(arr[i]))
	}
	return arr, true
}

// dynBag parses a property bag keeping its key order; ok is false for
// anything that is not a JSON object.
func dynBag(s string) (keys []string, vals []json.RawMessage, ok bool) {
	if !strings.HasPrefix(s, "{") {
		return nil, nil, false
	}
	d := json.NewDecoder(strings.NewReader(s))
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, false
	}
	seen := map[string]int{}
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return nil, nil, false
		}
		k, isStr := tok.(string)
		if !isStr {
			return nil, nil, false
		}
		var raw json.RawMessage
		if d.Decode(&raw) != nil {
			return nil, nil, false
		}
		if j, dup := seen[k]; dup { // the last duplicate wins, as in JSON.NET
			vals[j] = json.RawMessage(compactRaw(raw))
			continue
		}
		seen[k] = len(keys)
		keys, vals = append(keys, k), append(vals, json.RawMessage(compactRaw(raw)))
	}
	return keys, vals, true
}

func rawArrayText(arr []json.RawMessage) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, r := range arr {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(r)
	}
	b.WriteByte(']')
	return b.String()
}

func rawBagText(keys []string, vals []json.RawMessage) string {
	s := make([]string, len(vals))
	for i, v := range vals {
		s[i] = string(v)
	}
	return jsonObjectText(keys, s)
}

// dynKey is the identity of a dynamic element for set operations and
// array_index_of: numbers compare by value (1 and 1.0 are equal), other
// values by their compact JSON text.
func dynKey(r json.RawMessage) string {
	s := string(r)
	if len(s) > 0 && (s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) {
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return "n:" + strconv.FormatFloat(f, 'g', -1, 64)
		}
	}
	return s
}

// dynSortClass orders element kinds as array_sort_asc does: numbers, then
// strings, then everything else; nulls are placed separately.
func dynSortClass(r json.RawMessage) int {
	switch s := string(r); {
	case s == "null":
		return 3
	case s[0] == '"':
		return 1
	case s[0] == '-' || (s[0] >= '0' && s[0] <= '9'):
		return 0
	}
	return 2
}

func dynCompare(a, b json.RawMessage) int {
	ca, cb := dynSortClass(a), dynSortClass(b)
	if ca != cb {
		return ca - cb
	}
	switch ca {
	case 0:
		fa, _ := strconv.ParseFloat(string(a), 64)
		fb, _ := strconv.ParseFloat(string(b), 64)
		switch {
		case fa < fb:
			return -1
		case fa > fb:
			return 1
		}
		return 0
	case 1:
		var sa, sb string
		_ = json.Unmarshal(a, &sa)
		_ = json.Unmarshal(b, &sb)
		return strings.Compare(sa, sb)
	}
	return strings.Compare(string(a), string(b))
}

// treePaths lists treepath()'s leaf paths of v under prefix.
func treePaths(v json.RawMessage, prefix string, out *[]string, seen map[string]bool) {
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			*out = append(*out, p)
		}
	}
	s := string(v)
	switch {
	case strings.HasPrefix(s, "{"):
		keys, vals, _ := dynBag(s)
		for i, k := range keys {
			p := prefix + "['" + k + "']"
			add(p)
			treePaths(vals[i], p, out, seen)
		}
	case strings.HasPrefix(s, "["):
		arr, _ := dynArray(s)
		if len(arr) == 0 {
			return
		}
		p := prefix + "[0]"
		add(p)
		for _, e := range arr {
			treePaths(e, p, out, seen)
		}
	}
}

// seriesValues reads a dynamic array of numbers; null (or non-numeric)
// elements are NaN and flagged missing.
func seriesValues(arr []json.RawMessage) (vals []float64, missing []bool) {
	vals, missing = make([]float64, len(arr)), make([]bool, len(arr))
	for i, r := range arr {
		f, err := strconv.ParseFloat(string(r), 64)
		if err != nil {
			vals[i], missing[i] = math.NaN(), true
			continue
		}
		vals[i] = f
	}
	return vals, missing
}

func jsonNumber(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "null"
	}
	return kql.FormatReal(f)
}

// seriesStats computes series_stats_dynamic's bag: min, min_idx, max,
// max_idx, avg, stdev, variance over the non-missing elements.
func seriesStats(arr []json.RawMessage, ignoreNonFinite bool) string {
	vals, missing := seriesValues(arr)
	var n, sum, sumSq float64
	minV, maxV, minI, maxI := math.Inf(1), math.Inf(-1), -1, -1
	for i, v := range vals {
		if missing[i] || (ignoreNonFinite && (math.IsInf(v, 0) || math.IsNaN(v))) {
			continue
		}
		n++
		sum += v
		sumSq += v * v
		if v < minV {
			minV, minI = v, i
		}
		if v > maxV {
			maxV, maxI = v, i
		}
	}
	keys := []string{"min", "min_idx", "max", "max_idx", "avg", "stdev", "variance"}
	if n == 0 {
		return jsonObjectText(keys, []string{"null", "null", "null", "null", "null", "null", "null"})
	}
	avg := sum / n
	variance := 0.0
	if n > 1 {
		variance = (sumSq - sum*sum/n) / (n - 1)
		if variance < 0 {
			variance = 0
		}
	}
	return jsonObjectText(keys, []string{jsonNumber(minV), strconv.Itoa(minI), jsonNumber(maxV), strconv.Itoa(maxI),
		jsonNumber(avg), jsonNumber(math.Sqrt(variance)), jsonNumber(variance)})
}

// seriesFill implements series_fill_forward/backward/const/linear. missing
// reports which elements are to be filled (those equal to the placeholder,
// null by default).
func seriesFill(fn kql.FuncID, arr []json.RawMessage, placeholder string, constant json.RawMessage, fillEdges bool) []json.RawMessage {
	isMissing := func(r json.RawMessage) bool {
		if placeholder == "" || placeholder == "null" {
			return string(r) == "null"
		}
		return dynKey(r) == dynKey(json.RawMessage(placeholder))
	}
	out := slices.Clone(arr)
	switch fn {
	case kql.FnSeriesFillForward:
		var last json.RawMessage
		for i, r := range out {
			if isMissing(r) {
				if last != nil {
					out[i] = last
				}
				continue
			}
			last = r
		}
	case kql.FnSeriesFillBackward:
		var next json.RawMessage
		for i := len(out) - 1; i >= 0; i-- {
			if isMissing(out[i]) {
				if next != nil {
					out[i] = next
				}
				continue
			}
			next = out[i]
		}
	case kql.FnSeriesFillConst:
		for i, r := range out {
			if isMissing(r) {
				out[i] = constant
			}
		}
	case kql.FnSeriesFillLinear:
		known := -1
		for i := 0; i <= len(out); i++ {
			if i < len(out) && isMissing(out[i]) {
				continue
			}
			if i < len(out) && known >= 0 && i-known > 1 {
				a, _ := strconv.ParseFloat(string(out[known]), 64)
				b, _ := strconv.ParseFloat(string(out[i]), 64)
				for k := known + 1; k < i; k++ {
					v := a + (b-a)*float64(k-known)/float64(i-known)
					out[k] = json.RawMessage(jsonNumber(v))
				}
			}
			if fillEdges {
				switch {
				case known < 0 && i < len(out):
					for k := 0; k < i; k++ {
						out[k] = out[i]
					}
				case i == len(out) && known >= 0:
					for k := known + 1; k < len(out); k++ {
						out[k] = out[known]
					}
				}
			}
			if i < len(out) {
				known = i
			}
		}
	}
	return out
}

// dynamicFunctions evaluates the dynamic, IP and series functions of the
// registry.
func (ev *evaluator) dynamicFunctions(c *kql.FnCall, args []*store.Vector, n int) (*store.Vector, bool) {
	t := c.T
	null := kql.NullValue(t)
	dyn := func(s string) kql.Value { return kql.Value{Str: s} }
	switch c.Fn {
	case kql.FnBagPack, kql.FnBagPackNonEmpty:
		return rowFunc(t, args, n, func(v []kql.Value) kql.Value {
			keys := make([]string, 0, len(v)/2)
			vals := make([]json.RawMessage, 0, len(v)/2)
			for i := 0; i < len(v); i += 2 {
				r := v[i+1].Str
				if r == "" {
					r = "null"
				}
				if c.Fn == kql.FnBagPackNonEmpty && (r == "null" || r == `""`) {
					continue
				}
				if j := slices.Index(keys, v[i].Str); j >= 0 {
					vals[j] = json.RawMessage(r)
					continue
				}
				keys, vals = append(keys, v[i].Str), append(vals, json.RawMessage(r))
			}
			return dyn(rawBagText(keys, vals))
		}), true
	case kql.FnPackArray:
		return rowFunc(t, args, n, func(v []kql.Value) kql.Value {
			arr := make([]json.RawMessage, len(v))
			for i, x := range v {
				r := x.Str
				if r == "" {
					r = "null"
				}
				arr[i] = json.RawMessage(r)
			}
			return dyn(rawArrayText(arr))
		}), true
	case kql.FnArrayConcat, kql.FnSetUnion, kql.FnSetIntersect, kql.FnSetDifference:
		return rowFunc(t, args, n, func(v []kql.Value) kql.Value {
			arrs := make([][]json.RawMessage, len(v))
			for i, x := range v {
				a, ok := dynArray(x.Str)
				if !ok {
					return null
				}
				arrs[i] = a
			}
			var out []json.RawMessage
			switch c.Fn {
			case kql.FnArrayConcat:
				out = []json.RawMessage{}
				for _, a := range arrs {
					out = append(out, a...)
				}
			case kql.FnSetUnion:
				seen := map[string]bool{}
				out = []json.RawMessage{}
				for _, a := range arrs {
					for _, e := range a {
						if k := dynKey(e); !seen[k] {
							seen[k] = true
							out = append(out, e)
						}
					}
				}
			default:
				others := make([]map[string]bool, len(arrs)-1)
				for i, a := range arrs[1:] {
					others[i] = map[string]bool{}
					for _, e := range a {
						others[i][dynKey(e)] = true
					}
				}
				seen := map[string]bool{}
				out = []json.RawMessage{}
				for _, e := range arrs[0] {
					k := dynKey(e)
					if seen[k] {
						continue
					}
					keep := true
					for _, o := range others {
						if o[k] != (c.Fn == kql.FnSetIntersect) {
							keep = false
							break
						}
					}
					if keep {
						seen[k] = true
						out = append(out, e)
					}
				}
			}
			return dyn(rawArrayText(out))
		}), true
	case kql.FnArraySlice:
		return rowFunc(t, args, n, func(v []kql.Value) kql.Value {
			arr, ok := dynArray(v[0].Str)
			if !ok || anyNull(v[1], v[2]) {
				return null
			}
			l := int64(len(arr))
			s, e := v[1].Int, v[2].Int
			if s < 0 {
				s += l
			}
			if e < 0 {
				e += l
			}
			s = max(s, 0)
			e = min(e, l-1)
			if s > e || s >= l {
				return dyn("[]")
			}
			return dyn(rawArrayText(arr[s : e+1]))
		}), true
	case kql.FnArrayIndexOf, kql.FnSetHasElement:
		return rowFunc(t, args, n, func(v []kql.Value) kql.Value {
			arr, ok := dynArray(v[0].Str)
			if !ok {
				return null
			}
			needle := v[1].Str
			if needle == "" {
				needle = "null"
			}
			k := dynKey(json.RawMessage(needle))
			start := int64(0)
			if len(v) == 3 {
				if v[2].Null {
					return null
				}
				start = v[2].Int
				if start < 0 {
					start = max(0, start+int64(len(arr)))
				}
			}
			for i := start; i < int64(len(arr)); i++ {
				if dynKey(arr[i]) == k {
					if c.Fn == kql.FnSetHasElement {
						return kql.BoolValue(true)
					}
					return kql.LongValue(i)
				}
			}
			if c.Fn == kql.FnSetHasElement {
				return kql.BoolValue(false)
			}
			return kql.LongValue(-1)
		}), true
	case kql.FnArraySortAsc, kql.FnArraySortDesc:
		return rowFunc(t, args, n, func(v []kql.Value) kql.Value {
			arr, ok := dynArray(v[0].Str)
			if !ok {
				return null
			}
			nullsLast := v[1].Null || v[1].Bool
			var vals, nulls []json.RawMessage
			for _, e := range arr {
				if string(e) == "null" {
					nulls = append(nulls, e)
				} else {
					vals = append(vals, e)
				}
			}
			slices.SortStableFunc(vals, dynCompare)
			if c.Fn == kql.FnArraySortDesc {
				slices.Reverse(vals)
			}
			out := append([]json.RawMessage{}, vals...)
			if nullsLast {
				out = append(out, nulls...)
			} else {
				out = append(nulls, out...)
			}
			return dyn(rawArrayText(out))
		}), true
	case kql.FnArrayReverse:
		return rowFunc(t, args, n, func(v []kql.Value) kql.Value {
			arr, ok := dynArray(v[0].Str)
			if !ok {
				return null
			}
			slices.Reverse(arr)
			return dyn(rawArrayText(arr))
		}), true
	case kql.FnArraySum:
		return rowFunc(t, args, n, func(v []kql.Value) kql.Value {
			arr, ok := dynArray(v[0].Str)
			if !ok {
				return null
			}
			sum := 0.0
			for _, e := range arr {
				f, err := strconv.ParseFloat(string(e), 64)
				if err != nil {
					return null
				}
				sum += f
			}
			return kql.RealValue(sum)
		}), true
	case kql.FnBagKeys:
		return rowFunc(t, args, n, func(v []kql.Value) kql.Value {
			keys, _, ok := dynBag(v[0].Str)
			if !ok {
				return null
			}
			if keys == nil {
				keys = []string{}
			}
			return dyn(encodeJSON(keys))
		}), true
	case kql.FnBagHasKey:
		return rowFunc(t, args, n, func(v []kql.Value) kql.Value {
			keys, _, ok := dynBag(v[0].Str)
			if !ok {
				return null
			}
			return kql.BoolValue(slices.Contains(keys, strings.TrimPrefix(v[1].Str, "$.")))
		}), true
	case kql.FnBagMerge:
		return rowFunc(t, args, n, func(v []kql.Value) kql.Value {
			var keys []string
			var vals []json.RawMessage
			for _, x := range v {
				ks, vs, ok := dynBag(x.Str)
				if !ok {
					return null
				}
				for i, k := range ks {
					if !slices.Contains(keys, k) { // the first bag's value wins
						keys, vals = append(keys, k), append(vals, vs[i])
					}
				}
			}
			return dyn(rawBagText(keys, vals))
		}), true
	case kql.FnBagRemoveKeys:
		return rowFunc(t, args, n, func(v []kql.Value) kql.Value {
			keys, vals, ok := dynBag(v[0].Str)
			if !ok {
				return null
			}
			var drop []string
			if v[1].Null || json.Unmarshal([]byte(v[1].Str), &drop) != nil {
				return null
			}
			var ok2 []string
			var ov []json.RawMessage
			for i, k := range keys {
				removed := false
				for _, d := range drop {
					if strings.TrimPrefix(d, "$.") == k {
						removed = true
					}
				}
				if !removed {
					ok2, ov = append(ok2, k), append(ov, vals[i])
				}
			}
			return dyn(rawBagText(ok2, ov))
		}), true
	case kql.FnZip:
		return rowFunc(t, args, n, func(v []kql.Value) kql.Value {
			arrs := make([][]json.RawMessage, len(v))
			longest := 0
			for i, x := range v {
				a, ok := dynArray(x.Str)
				if !ok {
					return null
				}
				arrs[i] = a
				longest = max(longest, len(a))
			}
			out := make([]json.RawMessage, longest)
			for i := range longest {
				row := make([]json.RawMessage, len(arrs))
				for j, a := range arrs {
					row[j] = json.RawMessage("null")
					if i < len(a) {
						row[j] = a[i]
					}
				}
				out[i] = json.RawMessage(rawArrayText(row))
			}
			return dyn(rawArrayText(out))
		}), true
	case kql.FnTreePath:
		return rowFunc(t, args, n, func(v []kql.Value) kql.Value {
			if dynIsNull(v[0].Str) {
				return null
			}
			paths := []string{}
			treePaths(json.RawMessage(v[0].Str), "", &paths, map[string]bool{})
			return dyn(encodeJSON(paths))
		}), true
	case kql.FnSeriesStats:
		return rowFunc(t, args, n, func(v []kql.Value) kql.Value {
			arr, ok := dynArray(v[0].Str)
			if !ok {
				return null
			}
			return dyn(seriesStats(arr, !v[1].Null && v[1].Bool))
		}), true
	case kql.FnSeriesFillForward, kql.FnSeriesFillBackward, kql.FnSeriesFillConst, kql.FnSeriesFillLinear:
		return rowFunc(t, args, n, func(v []kql.Value) kql.Value {
			arr, ok := dynArray(v[0].Str)
			if !ok {
				return null
			}
			placeholder, constant, edges := "null", json.RawMessage("0"), true
			switch c.Fn {
			case kql.FnSeriesFillConst:
				if len(v) > 1 && v[1].Str != "" {
					constant = json.RawMessage(v[1].Str)
				}
				if len(v) > 2 {
					placeholder = v[2].Str
				}
			case kql.FnSeriesFillLinear:
				if len(v) > 1 {
					placeholder = v[1].Str
				}
				if len(v) > 2 {
					edges = v[2].Null || v[2].Bool
				}
			default:
				if len(v) > 1 {
					placeholder = v[1].Str
				}
			}
			return dyn(rawArrayText(seriesFill(c.Fn, arr, placeholder, constant, edges)))
		}), true
	}
	return ev.ipFunctions(c, args, n)
}
