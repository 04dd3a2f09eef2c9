package engine

import (
	"encoding/csv"
	"encoding/json"
	"math"
	"math/bits"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // datetime_utc_to_local must not depend on the host's zoneinfo
	"unicode/utf8"

	"custos/internal/kql"
	"custos/internal/store"
)

// regexQuote escapes s as .NET's Regex.Escape does (Kusto's regex_quote).
func regexQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\', '*', '+', '?', '|', '{', '[', '(', ')', '^', '$', '.', '#', ' ':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\f':
			b.WriteString(`\f`)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// ipv4Tokens finds the IPv4 addresses in text: dotted quads not glued to
// further digits, dots or letters, as has_ipv4 requires.
func ipv4Tokens(text string) []string {
	var out []string
	for i := 0; i < len(text); {
		c := text[i]
		if c < '0' || c > '9' || (i > 0 && (isIPGlue(text[i-1]))) {
			i++
			continue
		}
		j := i
		for j < len(text) && ((text[j] >= '0' && text[j] <= '9') || text[j] == '.') {
			j++
		}
		cand := text[i:j]
		if j < len(text) && isIPGlue(text[j]) && text[j] != '.' {
			cand = ""
		}
		if cand != "" {
			if _, _, ok := parseIPv4Prefix(strings.TrimSuffix(cand, ".")); ok && !strings.Contains(cand, "/") {
				out = append(out, strings.TrimSuffix(cand, "."))
			}
		}
		i = j + 1
	}
	return out
}

func isIPGlue(c byte) bool {
	return (c >= '0' && c <= '9') || c == '.' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'
}

// seriesOperand reads a series_* operand: an array of numbers (nulls and
// non-numbers are NaN) or a scalar number broadcast to any length.
func seriesOperand(s string) (vals []float64, scalar float64, isScalar, ok bool) {
	if arr, isArr := dynArray(s); isArr {
		vals, _ = seriesValues(arr)
		return vals, 0, false, true
	}
	f, err := strconv.ParseFloat(s, 64)
	return nil, f, true, err == nil
}

// miscFunctions evaluates FnMisc calls (kql/func_misc.go) and rand().
func (ev *evaluator) miscFunctions(c *kql.FnCall, args []*store.Vector, n int) (*store.Vector, bool) {
	t := c.T
	null := kql.NullValue(t)
	dyn := func(s string) kql.Value { return kql.Value{Str: s} }
	if c.Fn == kql.FnRand {
		out := newVector(t, n)
		for i := range n {
			if len(args) == 1 {
				if args[0].IsNull(i) || args[0].Int[i] <= 0 {
					if out.Nulls == nil {
						out.Nulls = make([]bool, n)
					}
					out.Nulls[i] = true
					continue
				}
				out.Int[i] = rand.Int64N(args[0].Int[i])
				continue
			}
			out.Real[i] = rand.Float64()
		}
		return out, true
	}
	if c.Fn != kql.FnMisc {
		return nil, false
	}
	name := c.Args[0].(*kql.Const).V.Str
	args = args[1:]
	var f func(v []kql.Value) kql.Value
	switch name {
	case "strcat_array":
		f = func(v []kql.Value) kql.Value {
			arr, ok := dynArray(v[0].Str)
			if !ok {
				return kql.StringValue("")
			}
			parts := make([]string, len(arr))
			for i, e := range arr {
				parts[i], _ = dynScalarText(string(e))
			}
			return kql.StringValue(strings.Join(parts, v[1].Str))
		}
	case "regex_quote":
		f = func(v []kql.Value) kql.Value { return kql.StringValue(regexQuote(v[0].Str)) }
	case "to_utf8":
		f = func(v []kql.Value) kql.Value {
			b := []byte(v[0].Str)
			out := make([]int, len(b))
			for i, x := range b {
				out[i] = int(x)
			}
			return dyn(encodeJSON(out))
		}
	case "unicode_codepoints_from_string":
		f = func(v []kql.Value) kql.Value {
			rs := []rune(v[0].Str)
			out := make([]int, len(rs))
			for i, r := range rs {
				out[i] = int(r)
			}
			return dyn(encodeJSON(out))
		}
	case "string_size":
		f = func(v []kql.Value) kql.Value { return kql.LongValue(int64(len(v[0].Str))) }
	case "parse_csv":
		f = func(v []kql.Value) kql.Value {
			r := csv.NewReader(strings.NewReader(v[0].Str))
			r.FieldsPerRecord = -1
			rec, err := r.Read()
			if err != nil {
				return dyn(`[""]`)
			}
			return dyn(encodeJSON(rec))
		}
	case "make_string":
		f = func(v []kql.Value) kql.Value {
			var b strings.Builder
			for _, x := range v {
				var cps []int64
				if x.Type == store.TypeDynamic {
					if json.Unmarshal([]byte(x.Str), &cps) != nil {
						return kql.StringValue("")
					}
				} else if !x.Null {
					cps = []int64{x.Int}
				}
				for _, cp := range cps {
					if cp < 0 || cp > utf8.MaxRune {
						return kql.StringValue("")
					}
					b.WriteRune(rune(cp))
				}
			}
			return kql.StringValue(b.String())
		}
	case "bitset_count_ones":
		f = func(v []kql.Value) kql.Value {
			if v[0].Null {
				return null
			}
			return kql.LongValue(int64(bits.OnesCount64(uint64(v[0].Int))))
		}
	case "ipv4_netmask_suffix":
		f = func(v []kql.Value) kql.Value {
			_, p, ok := parseIPv4Prefix(v[0].Str)
			if !ok {
				return null
			}
			return kql.LongValue(int64(p))
		}
	case "has_ipv4", "has_ipv4_prefix":
		f = func(v []kql.Value) kql.Value {
			want := strings.TrimSpace(v[1].Str)
			if name == "has_ipv4" {
				if _, p, ok := parseIPv4Prefix(want); !ok || p != 32 || strings.Contains(want, "/") {
					return null
				}
			}
			for _, tok := range ipv4Tokens(v[0].Str) {
				if name == "has_ipv4" && tok == want {
					return kql.BoolValue(true)
				}
				if name == "has_ipv4_prefix" && strings.HasPrefix(tok, want) && (strings.HasSuffix(want, ".") || len(tok) == len(want)) {
					return kql.BoolValue(true)
				}
			}
			return kql.BoolValue(false)
		}
	case "array_iff", "array_iif":
		f = func(v []kql.Value) kql.Value {
			conds, ok := dynArray(v[0].Str)
			if !ok {
				return null
			}
			pick := func(s string, i int) json.RawMessage {
				if arr, isArr := dynArray(s); isArr {
					if i < len(arr) {
						return arr[i]
					}
					return json.RawMessage("null")
				}
				if s == "" {
					return json.RawMessage("null")
				}
				return json.RawMessage(s)
			}
			out := make([]json.RawMessage, len(conds))
			for i, cnd := range conds {
				switch string(cnd) {
				case "true", "1":
					out[i] = pick(v[1].Str, i)
				case "false", "0":
					out[i] = pick(v[2].Str, i)
				default:
					out[i] = json.RawMessage("null")
				}
			}
			return dyn(rawArrayText(out))
		}
	case "array_rotate_left", "array_rotate_right", "array_shift_left", "array_shift_right":
		f = func(v []kql.Value) kql.Value {
			arr, ok := dynArray(v[0].Str)
			if !ok || v[1].Null {
				return null
			}
			l := int64(len(arr))
			if l == 0 {
				return dyn("[]")
			}
			k := v[1].Int
			if strings.HasSuffix(name, "_right") {
				k = -k
			}
			out := make([]json.RawMessage, l)
			if strings.HasPrefix(name, "array_rotate") {
				k = ((k % l) + l) % l
				for i := range l {
					out[i] = arr[(i+k)%l]
				}
				return dyn(rawArrayText(out))
			}
			fill := json.RawMessage("null")
			if len(v) == 3 && v[2].Str != "" {
				fill = json.RawMessage(v[2].Str)
			}
			for i := range l {
				j := i + k
				if j >= 0 && j < l {
					out[i] = arr[j]
				} else {
					out[i] = fill
				}
			}
			return dyn(rawArrayText(out))
		}
	case "datetime_utc_to_local", "datetime_local_to_utc":
		zones := map[string]*time.Location{}
		f = func(v []kql.Value) kql.Value {
			if v[0].Null {
				return null
			}
			loc, seen := zones[v[1].Str]
			if !seen {
				l, err := time.LoadLocation(v[1].Str)
				if err != nil || v[1].Str == "" || v[1].Str == "Local" {
					l = nil
				}
				zones[v[1].Str], loc = l, l
			}
			if loc == nil {
				return null
			}
			u := store.TimeFromTicks(v[0].Int)
			if name == "datetime_utc_to_local" {
				_, off := u.In(loc).Zone()
				return kql.Value{Int: v[0].Int + int64(off)*store.TicksPerSecond}
			}
			// The wall-clock time u in loc (ambiguous times take the first offset, as .NET does).
			wall := time.Date(u.Year(), u.Month(), u.Day(), u.Hour(), u.Minute(), u.Second(), u.Nanosecond(), loc)
			return kql.Value{Int: store.TicksFromTime(wall.UTC())}
		}
	case "jaccard_index":
		f = func(v []kql.Value) kql.Value {
			a, ok1 := dynArray(v[0].Str)
			b, ok2 := dynArray(v[1].Str)
			if !ok1 || !ok2 {
				return null
			}
			sa, sb := map[string]bool{}, map[string]bool{}
			for _, e := range a {
				sa[dynKey(e)] = true
			}
			for _, e := range b {
				sb[dynKey(e)] = true
			}
			inter, union := 0, len(sa)
			for k := range sb {
				if sa[k] {
					inter++
				} else {
					union++
				}
			}
			if union == 0 {
				return kql.RealValue(math.NaN())
			}
			return kql.RealValue(float64(inter) / float64(union))
		}
	case "series_add", "series_subtract", "series_multiply", "series_divide":
		f = func(v []kql.Value) kql.Value {
			a, as, aScalar, ok1 := seriesOperand(v[0].Str)
			b, bs, bScalar, ok2 := seriesOperand(v[1].Str)
			if !ok1 || !ok2 || (aScalar && bScalar) {
				return null
			}
			l := max(len(a), len(b))
			if !aScalar && !bScalar {
				l = min(len(a), len(b))
			}
			out := make([]string, l)
			for i := range l {
				x, y := as, bs
				if !aScalar {
					x = a[i]
				}
				if !bScalar {
					y = b[i]
				}
				var r float64
				switch name {
				case "series_add":
					r = x + y
				case "series_subtract":
					r = x - y
				case "series_multiply":
					r = x * y
				default:
					r = x / y
				}
				out[i] = jsonNumber(r)
			}
			return dyn("[" + strings.Join(out, ",") + "]")
		}
	default:
		return nil, false
	}
	return rowFunc(t, args, n, f), true
}
