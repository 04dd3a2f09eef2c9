package engine

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"custos/internal/kql"
	"custos/internal/store"
)

// rowFunc evaluates f row by row over the evaluated arguments. It is the
// kernel of the less frequent functions, where clarity beats speed.
func rowFunc(t store.ColumnType, args []*store.Vector, n int, f func(vals []kql.Value) kql.Value) *store.Vector {
	out := emptyVector(t, n)
	vals := make([]kql.Value, len(args))
	for i := range n {
		for j, a := range args {
			vals[j] = valueAt(a, i)
		}
		v := f(vals)
		v.Type = t
		appendValue(out, v)
	}
	return out
}

// anyNull reports whether any of vs is null (strings never are).
func anyNull(vs ...kql.Value) bool {
	for _, v := range vs {
		if v.Null {
			return true
		}
	}
	return false
}

func strV(s string) kql.Value { return kql.StringValue(s) }

// kustoRewrite turns a Kusto rewrite pattern (\1 … \9 for capture groups)
// into Go's template syntax (${1}), escaping literal dollars.
func kustoRewrite(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '$':
			b.WriteString("$$")
		case c == '\\' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			b.WriteString("${")
			b.WriteByte(s[i+1])
			b.WriteByte('}')
			i++
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// substringRunes implements substring(): a negative start counts from the
// end; a start beyond the end or a negative length gives "".
func substringRunes(s string, start int64, length int64, hasLen bool) string {
	r := []rune(s)
	n := int64(len(r))
	if start < 0 {
		start += n
		if start < 0 {
			start = 0
		}
	}
	if start >= n {
		return ""
	}
	end := n
	if hasLen {
		if length < 0 {
			return ""
		}
		if length < n-start {
			end = start + length
		}
	}
	return string(r[start:end])
}

func reverseRunes(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}

// urlEncode is .NET's HttpUtility.UrlEncode, which Kusto's url_encode
// follows: letters, digits and -_.!*() stay, a space becomes '+', every
// other byte of the UTF-8 text becomes %xx in lower-case hex.
func urlEncode(s string) string {
	const hexd = "0123456789abcdef"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '-', c == '_', c == '.', c == '!', c == '*', c == '(', c == ')':
			b.WriteByte(c)
		case c == ' ':
			b.WriteByte('+')
		default:
			b.WriteByte('%')
			b.WriteByte(hexd[c>>4])
			b.WriteByte(hexd[c&15])
		}
	}
	return b.String()
}

// urlDecode is HttpUtility.UrlDecode: '+' is a space, %xx a byte, and
// malformed escapes stay as written.
func urlDecode(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			b = append(b, ' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			v, _ := strconv.ParseUint(s[i+1:i+3], 16, 8)
			b = append(b, byte(v))
			i += 2
		default:
			b = append(b, c)
		}
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// jsonObjectText renders ordered key/value pairs (values already JSON) as
// a compact JSON object.
func jsonObjectText(keys []string, vals []string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(jsonString(k))
		b.WriteByte(':')
		b.WriteString(vals[i])
	}
	b.WriteByte('}')
	return b.String()
}

func jsonString(s string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

// parseURL implements parse_url: the parts of an absolute URL as a
// property bag in Kusto's order; null when the text is not an absolute URL.
func parseURL(s string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", false
	}
	pass, _ := u.User.Password()
	var qk, qv []string
	for _, kv := range strings.Split(u.RawQuery, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		if dk, err := url.QueryUnescape(k); err == nil {
			k = dk
		}
		if dv, err := url.QueryUnescape(v); err == nil {
			v = dv
		}
		qk, qv = append(qk, k), append(qv, jsonString(v))
	}
	path := u.EscapedPath()
	return jsonObjectText(
		[]string{"Scheme", "Host", "Port", "Path", "Username", "Password", "Query Parameters", "Fragment"},
		[]string{jsonString(u.Scheme), jsonString(u.Hostname()), jsonString(u.Port()), jsonString(path),
			jsonString(u.User.Username()), jsonString(pass), jsonObjectText(qk, qv), jsonString(u.Fragment)}), true
}

// parsePath implements parse_path for Windows, UNC, Unix and URL-style paths.
func parsePath(s string) string {
	scheme, root, rest := "", "", s
	if i := strings.Index(s, "://"); i > 0 {
		scheme = s[:i]
		after := s[i+3:]
		host, _, _ := strings.Cut(after, "/")
		root = host
	} else if len(s) >= 2 && s[1] == ':' && ((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')) {
		root = s[:2]
	}
	sep := strings.LastIndexAny(rest, `\/`)
	dir, file := "", rest
	if sep >= 0 {
		dir, file = rest[:sep], rest[sep+1:]
	}
	stream := ""
	if j := strings.IndexByte(file, ':'); j >= 0 {
		file, stream = file[:j], file[j+1:]
	}
	dirName := dir
	if k := strings.LastIndexAny(dir, `\/`); k >= 0 {
		dirName = dir[k+1:]
	}
	ext := ""
	if k := strings.LastIndexByte(file, '.'); k >= 0 {
		ext = file[k+1:]
	}
	return jsonObjectText(
		[]string{"Scheme", "RootPath", "DirectoryPath", "DirectoryName", "Filename", "Extension", "AlternateDataStreamName"},
		[]string{jsonString(scheme), jsonString(root), jsonString(dir), jsonString(dirName), jsonString(file), jsonString(ext), jsonString(stream)})
}

// formatBytes implements format_bytes(size, precision, units).
func formatBytes(size float64, precision int64, units string) (string, bool) {
	names := []string{"Bytes", "KB", "MB", "GB", "TB", "PB", "EB"}
	precision = max(0, min(precision, 15))
	idx := -1
	if units != "" {
		for i, u := range names {
			if strings.EqualFold(u, units) {
				idx = i
			}
		}
		if idx < 0 {
			return "", false
		}
	} else {
		idx = 0
		for a := math.Abs(size); a >= 1024 && idx < len(names)-1; a /= 1024 {
			idx++
		}
	}
	v := size / math.Pow(1024, float64(idx))
	p := math.Pow(10, float64(precision))
	v = math.Round(v*p) / p
	return strconv.FormatFloat(v, 'f', -1, 64) + " " + names[idx], true
}

// dotnetGUIDBytes returns a GUID's bytes in .NET's Guid.ToByteArray order
// (the first three groups little-endian).
func dotnetGUIDBytes(g string) ([]byte, bool) {
	h := strings.ReplaceAll(g, "-", "")
	raw, err := hex.DecodeString(h)
	if err != nil || len(raw) != 16 {
		return nil, false
	}
	out := make([]byte, 16)
	out[0], out[1], out[2], out[3] = raw[3], raw[2], raw[1], raw[0]
	out[4], out[5] = raw[5], raw[4]
	out[6], out[7] = raw[7], raw[6]
	copy(out[8:], raw[8:])
	return out, true
}

func guidFromDotnetBytes(b []byte) string {
	raw := make([]byte, 16)
	raw[0], raw[1], raw[2], raw[3] = b[3], b[2], b[1], b[0]
	raw[4], raw[5] = b[5], b[4]
	raw[6], raw[7] = b[7], b[6]
	copy(raw[8:], b[8:])
	h := hex.EncodeToString(raw)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// parseGUID accepts the GUID spellings of toguid(): 32 hex digits with or
// without hyphens, optionally in braces.
func parseGUID(s string) (string, bool) {
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}")
	h := s
	if len(s) == 36 {
		if s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
			return "", false
		}
		h = strings.ReplaceAll(s, "-", "")
	}
	if len(h) != 32 {
		return "", false
	}
	if _, err := hex.DecodeString(h); err != nil {
		return "", false
	}
	h = strings.ToLower(h)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], true
}

// newGUID returns a random version-4 GUID.
func newGUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("new_guid: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}

// dynTypeName is gettype() of a dynamic value.
func dynTypeName(s string) string {
	if dynIsNull(s) {
		return "null"
	}
	switch s[0] {
	case '{':
		return "dictionary"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "bool"
	}
	if strings.ContainsAny(s, ".eE") {
		return "real"
	}
	if v, err := strconv.ParseInt(s, 10, 64); err == nil && v >= math.MinInt32 && v <= math.MaxInt32 {
		return "int"
	}
	return "long"
}

// regexAt returns the precompiled pattern of argument i of c.
func (ev *evaluator) regexAt(c *kql.FnCall) *regexp.Regexp { return ev.regexps[c] }

// stringFunctions evaluates the string, conversion and hashing functions of
// the registry.
func (ev *evaluator) stringFunctions(c *kql.FnCall, args []*store.Vector, n int) (*store.Vector, bool, error) {
	t := c.T
	str1 := func(f func(string) string) *store.Vector {
		out := newVector(t, n)
		for i := range n {
			out.Str[i] = f(args[0].Str[i])
		}
		return out
	}
	switch c.Fn {
	case kql.FnReplaceRegex:
		re := ev.regexAt(c)
		out := newVector(store.TypeString, n)
		for i := range n {
			out.Str[i] = re.ReplaceAllString(args[0].Str[i], kustoRewrite(args[2].Str[i]))
		}
		return out, true, nil
	case kql.FnTrimStart, kql.FnTrimEnd:
		re := ev.regexAt(c)
		out := newVector(store.TypeString, n)
		for i := range n {
			out.Str[i] = re.ReplaceAllString(args[1].Str[i], "")
		}
		return out, true, nil
	case kql.FnExtractAll:
		re := ev.regexAt(c)
		var groups []int
		if len(c.Args) == 3 {
			_ = json.Unmarshal([]byte(c.Args[2].(*kql.Const).V.Str), &groups)
		}
		return rowFunc(t, args[:2], n, func(v []kql.Value) kql.Value {
			ms := re.FindAllStringSubmatch(v[1].Str, -1)
			if len(ms) == 0 {
				return kql.NullValue(t)
			}
			var rows []any
			for _, m := range ms {
				switch {
				case groups != nil:
					row := make([]string, len(groups))
					for k, g := range groups {
						row[k] = m[g]
					}
					if len(row) == 1 {
						rows = append(rows, row[0])
					} else {
						rows = append(rows, row)
					}
				case len(m) == 1:
					rows = append(rows, m[0])
				case len(m) == 2:
					rows = append(rows, m[1])
				default:
					rows = append(rows, m[1:])
				}
			}
			return kql.Value{Str: encodeJSON(rows)}
		}), true, nil
	case kql.FnIndexOfRegex:
		re := ev.regexAt(c)
		out := newVector(store.TypeLong, n)
		for i := range n {
			s := args[0].Str[i]
			loc := re.FindStringIndex(s)
			if loc == nil {
				out.Int[i] = -1
				continue
			}
			out.Int[i] = int64(utf8.RuneCountInString(s[:loc[0]]))
		}
		return out, true, nil
	case kql.FnCountOfRegex:
		re := ev.regexAt(c)
		out := newVector(store.TypeLong, n)
		for i := range n {
			out.Int[i] = int64(len(re.FindAllStringIndex(args[0].Str[i], -1)))
		}
		return out, true, nil
	case kql.FnReverse:
		return str1(reverseRunes), true, nil
	case kql.FnBase64Encode:
		return str1(func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }), true, nil
	case kql.FnBase64Decode:
		return str1(func(s string) string {
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil || !utf8.Valid(b) {
				return ""
			}
			return string(b)
		}), true, nil
	case kql.FnBase64FromGUID:
		return rowFunc(t, args, n, func(v []kql.Value) kql.Value {
			b, ok := dotnetGUIDBytes(v[0].Str)
			if v[0].Null || !ok {
				return strV("")
			}
			return strV(base64.StdEncoding.EncodeToString(b))
		}), true, nil
	case kql.FnBase64ToGUID:
		return rowFunc(t, args, n, func(v []kql.Value) kql.Value {
			b, err := base64.StdEncoding.DecodeString(v[0].Str)
			if err != nil || len(b) != 16 {
				return kql.NullValue(t)
			}
			return kql.Value{Str: guidFromDotnetBytes(b)}
		}), true, nil
	case kql.FnBase64ToArray:
		return rowFunc(t, args, n, func(v []kql.Value) kql.Value {
			b, err := base64.StdEncoding.DecodeString(v[0].Str)
			if err != nil {
				return kql.NullValue(t)
			}
			arr := make([]int, len(b))
			for i, x := range b {
				arr[i] = int(x)
			}
			return kql.Value{Str: encodeJSON(arr)}
		}), true, nil
	case kql.FnBase64FromArray:
		return rowFunc(t, args, n, func(v []kql.Value) kql.Value {
			var arr []int64
			if v[0].Null || json.Unmarshal([]byte(v[0].Str), &arr) != nil {
				return strV("")
			}
			b := make([]byte, len(arr))
			for i, x := range arr {
				if x < 0 || x > 255 {
					return strV("")
				}
				b[i] = byte(x)
			}
			return strV(base64.StdEncoding.EncodeToString(b))
		}), true, nil
	case kql.FnURLEncode:
		return str1(urlEncode), true, nil
	case kql.FnURLDecode:
		return str1(urlDecode), true, nil
	case kql.FnParseURL:
		return rowFunc(t, args, n, func(v []kql.Value) kql.Value {
			s, ok := parseURL(v[0].Str)
			if !ok {
				return kql.NullValue(t)
			}
			return kql.Value{Str: s}
		}), true, nil
	case kql.FnParsePath:
		return str1(parsePath), true, nil
	case kql.FnIsASCII, kql.FnIsUTF8:
		out := newVector(store.TypeBool, n)
		for i := range n {
			s := args[0].Str[i]
			if c.Fn == kql.FnIsUTF8 {
				out.Bool[i] = utf8.ValidString(s)
				continue
			}
			ascii := true
			for k := 0; k < len(s); k++ {
				if s[k] >= 0x80 {
					ascii = false
					break
				}
			}
			out.Bool[i] = ascii
		}
		return out, true, nil
	case kql.FnStrrep:
		return rowFunc(t, args, n, func(v []kql.Value) kql.Value {
			if v[1].Null || v[1].Int <= 0 {
				return strV("")
			}
			times := min(v[1].Int, 1024)
			delim := ""
			if len(v) == 3 {
				delim = v[2].Str
			}
			// Kusto caps the result at 1,048,576 characters.
			if int64(len(v[0].Str)+len(delim))*times > 1<<20 {
				return strV("")
			}
			parts := make([]string, times)
			for k := range parts {
				parts[k] = v[0].Str
			}
			return strV(strings.Join(parts, delim))
		}), true, nil
	case kql.FnStrcmp:
		out := newVector(store.TypeInt, n)
		for i := range n {
			out.Int[i] = int64(strings.Compare(args[0].Str[i], args[1].Str[i]))
		}
		return out, true, nil
	case kql.FnFormatBytes:
		return rowFunc(t, args, n, func(v []kql.Value) kql.Value {
			if anyNull(v[0], v[1]) {
				return strV("")
			}
			s, _ := formatBytes(v[0].Real, v[1].Int, v[2].Str)
			return strV(s)
		}), true, nil
	case kql.FnHash:
		return evalHash(t, args, n), true, nil
	case kql.FnHashMD5:
		return str1(func(s string) string { sum := md5.Sum([]byte(s)); return hex.EncodeToString(sum[:]) }), true, nil
	case kql.FnHashSHA1:
		return str1(func(s string) string { sum := sha1.Sum([]byte(s)); return hex.EncodeToString(sum[:]) }), true, nil
	case kql.FnToGUID:
		return rowFunc(t, args, n, func(v []kql.Value) kql.Value {
			g, ok := parseGUID(v[0].Str)
			if !ok {
				return kql.NullValue(t)
			}
			return kql.Value{Str: g}
		}), true, nil
	case kql.FnGetType:
		return str1(dynTypeName), true, nil
	case kql.FnToHex:
		return rowFunc(t, args, n, func(v []kql.Value) kql.Value {
			if anyNull(v...) {
				return strV("")
			}
			s := strconv.FormatUint(uint64(v[0].Int), 16)
			if len(v) == 2 && int64(len(s)) < v[1].Int && v[1].Int <= 64 {
				s = strings.Repeat("0", int(v[1].Int)-len(s)) + s
			}
			return strV(s)
		}), true, nil
	case kql.FnNewGUID:
		out := newVector(store.TypeGUID, n)
		for i := range n {
			g, err := newGUID()
			if err != nil {
				return nil, true, err
			}
			out.Str[i] = g
		}
		return out, true, nil
	case kql.FnDynamicToString:
		return rowFunc(t, args, n, func(v []kql.Value) kql.Value {
			if v[0].Null {
				return kql.Value{Str: "null"}
			}
			return kql.Value{Str: jsonValue(v[0])}
		}), true, nil
	}
	return nil, false, nil
}

// indexOfRange evaluates indexof(s, match, start [, length [, occurrence]])
// as Kusto documents it: a negative start counts from the end, length -1
// (the default) examines the rest of s, and the result is the
// character index in s of the occurrence-th match, each searched for in
// the range of length characters after the previous one, -1 when there is
// none; length < -1, occurrence < 0 or a null
// argument give null.
func indexOfRange(args []*store.Vector, n int) *store.Vector {
	out := newVector(store.TypeLong, n)
	at := func(k, i int, def int64) (int64, bool) {
		if len(args) <= k {
			return def, true
		}
		if args[k].IsNull(i) {
			return 0, false
		}
		return args[k].Int[i], true
	}
	for i := range n {
		start, ok1 := at(2, i, 0)
		length, ok2 := at(3, i, -1)
		occ, ok3 := at(4, i, 1)
		if !ok1 || !ok2 || !ok3 || length < -1 || occ < 0 {
			setNullAt(out, i, n)
			continue
		}
		rs := []rune(args[0].Str[i])
		match := []rune(args[1].Str[i])
		if start < 0 {
			start = max(int64(len(rs))+start, 0)
		}
		out.Int[i] = -1
		if start > int64(len(rs)) || occ == 0 {
			continue
		}
		// Each further occurrence is searched for from one past the
		// previous one, over the same length (the documentation's idx8).
		found := int64(-1)
		for k := int64(0); k < occ; k++ {
			end := int64(len(rs))
			if length >= 0 && length < end {
				end = min(end, start+length)
			}
			found = -1
			for j := start; j+int64(len(match)) <= end; j++ {
				if string(rs[j:j+int64(len(match))]) == string(match) {
					found = j
					break
				}
			}
			if found < 0 {
				break
			}
			start = found + 1
		}
		out.Int[i] = found
	}
	return out
}
