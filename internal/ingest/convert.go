package ingest

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"custos/internal/store"
)

// DefaultMaxFieldBytes is Azure's limit for one field value (64 KB); longer
// string and dynamic values are truncated, not rejected.
const DefaultMaxFieldBytes = 64 * 1024

// rawKind returns the JSON kind of a raw value by its first byte.
func rawKind(raw []byte) byte {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return 0
	}
	switch c := raw[0]; c {
	case '"', '{', '[', 't', 'f', 'n':
		return c
	default:
		return '0' // number
	}
}

// rawString unquotes a raw JSON string.
func rawString(raw []byte) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", err
	}
	return s, nil
}

// describeRaw renders a raw value for an error message, shortened.
func describeRaw(raw []byte) string {
	const max = 64
	s := string(bytes.TrimSpace(raw))
	if len(s) > max {
		s = truncateUTF8(s, max) + "..."
	}
	return s
}

// truncateUTF8 cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// appendNull appends a null (an empty string for string columns, which are never null).
func appendNull(v *store.Vector) {
	n := v.Len()
	if v.Type == store.TypeString {
		v.Str = append(v.Str, "")
		return
	}
	if v.Nulls == nil {
		v.Nulls = make([]bool, n, n+1)
	}
	v.Nulls = append(v.Nulls, true)
	switch v.Type {
	case store.TypeBool:
		v.Bool = append(v.Bool, false)
	case store.TypeInt, store.TypeLong, store.TypeDatetime, store.TypeTimespan:
		v.Int = append(v.Int, 0)
	case store.TypeReal, store.TypeDecimal:
		v.Real = append(v.Real, 0)
	default:
		v.Str = append(v.Str, "")
	}
}

func markNotNull(v *store.Vector) {
	if v.Nulls != nil {
		v.Nulls = append(v.Nulls, false)
	}
}

// converter turns JSON values into column values. Its zero value (with
// maxField set) reads untrusted JSON through encoding/json; the body decoder
// sets scanned, because its scanner has already checked the values, and plain
// per string value, so strings are unquoted without encoding/json.
type converter struct {
	maxField int
	scanned  bool // values are valid JSON without surrounding whitespace
	plain    bool // the current value is a string without escapes, valid UTF-8
	scratch  []byte
	arena    *strArena // where string column values are carved from; nil: one allocation each
}

// strArena carves strings out of shared 64 KB blocks instead of allocating
// each: a 500-record body has ~3,000 string values, and their allocations were
// the largest remaining cost of decoding it. The values of one body live in
// the same memtable until the same flush, so sharing blocks keeps nothing
// alive much longer; larger values get their own allocation. A strings.Builder
// never modifies bytes it has handed out, so the strings stay immutable.
// Not safe for concurrent use.
type strArena struct{ b strings.Builder }

const (
	arenaBlockBytes = 64 << 10
	arenaMaxValue   = 4 << 10
)

func (a *strArena) str(p []byte) string {
	if a == nil || len(p) > arenaMaxValue {
		return string(p)
	}
	if len(p) == 0 {
		return ""
	}
	if a.b.Cap()-a.b.Len() < len(p) {
		a.b = strings.Builder{}
		a.b.Grow(arenaBlockBytes)
	}
	start := a.b.Len()
	a.b.Write(p)
	return a.b.String()[start:]
}

// appendRaw converts one raw JSON value to the vector's type and appends it.
// On error nothing is appended. maxField bounds string and dynamic values.
func appendRaw(v *store.Vector, raw []byte, maxField int) error {
	cv := converter{maxField: maxField}
	return cv.append(v, raw)
}

// unquote returns the string a JSON string literal stands for.
func (cv *converter) unquote(raw []byte) (string, error) {
	if !cv.scanned {
		return rawString(raw)
	}
	if cv.plain {
		return string(raw[1 : len(raw)-1]), nil
	}
	cv.scratch = appendUnquoted(cv.scratch[:0], raw, false)
	return string(cv.scratch), nil
}

// unquoteField is unquote cut to maxField bytes.
func (cv *converter) unquoteField(raw []byte) (string, error) {
	if !cv.scanned {
		s, err := rawString(raw)
		if err != nil {
			return "", err
		}
		return truncateUTF8(s, cv.maxField), nil
	}
	b := raw[1 : len(raw)-1]
	if !cv.plain {
		cv.scratch = appendUnquoted(cv.scratch[:0], raw, false)
		b = cv.scratch
	}
	return cv.arena.str(truncateBytesUTF8(b, cv.maxField)), nil
}

// compact returns raw without insignificant whitespace; the result is valid
// until the next call.
func (cv *converter) compact(raw []byte) ([]byte, error) {
	if !cv.scanned {
		buf := bytes.NewBuffer(cv.scratch[:0])
		if err := json.Compact(buf, raw); err != nil {
			return nil, err
		}
		cv.scratch = buf.Bytes()
		return cv.scratch, nil
	}
	cv.scratch = appendCompact(cv.scratch[:0], raw)
	return cv.scratch, nil
}

// truncateBytesUTF8 is truncateUTF8 for bytes.
func truncateBytesUTF8(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(b[cut]) {
		cut--
	}
	return b[:cut]
}

// append converts one JSON value to the vector's type and appends it. On
// error nothing is appended.
func (cv *converter) append(v *store.Vector, raw []byte) error {
	kind := rawKind(raw)
	if kind == 'n' {
		appendNull(v)
		return nil
	}
	if kind == '"' && v.Type != store.TypeString && v.Type != store.TypeDynamic && string(bytes.TrimSpace(raw)) == `""` {
		appendNull(v) // an empty string is null for typed columns, as todatetime("") is
		return nil
	}
	switch v.Type {
	case store.TypeString:
		s, err := cv.toStringValue(raw, kind)
		if err != nil {
			return err
		}
		v.Str = append(v.Str, s)
		return nil
	case store.TypeDynamic:
		c, err := cv.compact(raw)
		if err != nil {
			return err
		}
		var s string
		if len(c) > cv.maxField {
			// A cut JSON document is not JSON any more: keep the truncated text as a dynamic string.
			b, _ := json.Marshal(string(truncateBytesUTF8(c, cv.maxField)))
			s = string(b)
		} else {
			s = string(c)
		}
		markNotNull(v)
		v.Str = append(v.Str, s)
		return nil
	case store.TypeBool:
		b, err := cv.toBool(raw, kind)
		if err != nil {
			return err
		}
		markNotNull(v)
		v.Bool = append(v.Bool, b)
		return nil
	case store.TypeInt, store.TypeLong:
		n, err := cv.toInt(raw, kind, v.Type == store.TypeInt)
		if err != nil {
			return err
		}
		markNotNull(v)
		v.Int = append(v.Int, n)
		return nil
	case store.TypeReal, store.TypeDecimal:
		f, err := cv.toReal(raw, kind)
		if err != nil {
			return err
		}
		markNotNull(v)
		v.Real = append(v.Real, f)
		return nil
	case store.TypeDatetime:
		if kind != '"' {
			return errors.New("a datetime must be an ISO 8601 string")
		}
		if cv.scanned && cv.plain {
			if t, ok := parseRFC3339Ticks(raw[1 : len(raw)-1]); ok {
				markNotNull(v)
				v.Int = append(v.Int, t)
				return nil
			}
		}
		s, err := cv.unquote(raw)
		if err != nil {
			return err
		}
		t, err := ParseDatetime(s)
		if err != nil {
			return err
		}
		markNotNull(v)
		v.Int = append(v.Int, t)
		return nil
	case store.TypeTimespan:
		var ticks int64
		switch kind {
		case '"':
			s, err := cv.unquote(raw)
			if err != nil {
				return err
			}
			if ticks, err = ParseTimespan(s); err != nil {
				return err
			}
		case '0':
			n, err := cv.toInt(raw, kind, false)
			if err != nil {
				return err
			}
			ticks = n
		default:
			return errors.New("a timespan must be a string such as \"1.02:03:04\"")
		}
		markNotNull(v)
		v.Int = append(v.Int, ticks)
		return nil
	case store.TypeGUID:
		if kind != '"' {
			return errors.New("a guid must be a string")
		}
		s, err := cv.unquote(raw)
		if err != nil {
			return err
		}
		g, err := ParseGUID(s)
		if err != nil {
			return err
		}
		markNotNull(v)
		v.Str = append(v.Str, g)
		return nil
	}
	return fmt.Errorf("unsupported column type %s", v.Type)
}

// toStringValue renders a value for a string column, cut to maxField bytes:
// strings unquoted, objects and arrays compacted, numbers and booleans as
// their JSON text.
func (cv *converter) toStringValue(raw []byte, kind byte) (string, error) {
	switch kind {
	case '"':
		return cv.unquoteField(raw)
	case '{', '[':
		c, err := cv.compact(raw)
		if err != nil {
			return "", err
		}
		return cv.arena.str(truncateBytesUTF8(c, cv.maxField)), nil
	default:
		return cv.arena.str(truncateBytesUTF8(bytes.TrimSpace(raw), cv.maxField)), nil
	}
}

func (cv *converter) toBool(raw []byte, kind byte) (bool, error) {
	switch kind {
	case 't':
		return true, nil
	case 'f':
		return false, nil
	case '"':
		s, err := cv.unquote(raw)
		if err != nil {
			return false, err
		}
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "true", "1":
			return true, nil
		case "false", "0":
			return false, nil
		}
	case '0':
		switch string(bytes.TrimSpace(raw)) {
		case "1":
			return true, nil
		case "0":
			return false, nil
		}
	}
	return false, errors.New("not a boolean")
}

func (cv *converter) toInt(raw []byte, kind byte, int32Range bool) (int64, error) {
	var s string
	switch kind {
	case '0':
		s = string(bytes.TrimSpace(raw))
	case '"':
		var err error
		if s, err = cv.unquote(raw); err != nil {
			return 0, err
		}
		s = strings.TrimSpace(s)
	case 't':
		return 1, nil
	case 'f':
		return 0, nil
	default:
		return 0, errors.New("not a number")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// JSON writers may print integral values as 1e3 or 12.0.
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || math.IsNaN(f) || math.IsInf(f, 0) || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
			return 0, errors.New("not an integer")
		}
		n = int64(f)
	}
	if int32Range && (n < math.MinInt32 || n > math.MaxInt32) {
		return 0, errors.New("out of range for int")
	}
	return n, nil
}

func (cv *converter) toReal(raw []byte, kind byte) (float64, error) {
	var s string
	switch kind {
	case '0':
		s = string(bytes.TrimSpace(raw))
	case '"':
		var err error
		if s, err = cv.unquote(raw); err != nil {
			return 0, err
		}
		s = strings.TrimSpace(s)
	default:
		return 0, errors.New("not a number")
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
			return f, nil // ±Inf or 0 for out-of-range magnitudes, as .NET parses them
		}
		return 0, errors.New("not a number")
	}
	return f, nil
}

// minTicks and maxTicks bound datetimes to years 1..9999, as Kusto does.
var (
	minTicks = store.TicksFromTime(time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC))
	maxTicks = store.TicksFromTime(time.Date(9999, 12, 31, 23, 59, 59, 999999900, time.UTC))
)

var datetimeLayouts = []string{
	"2006-01-02T15:04:05Z07:00",
	"2006-01-02T15:04:05Z0700",
	"2006-01-02T15:04:05",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04",
	"2006-01-02",
}

// ParseDatetime parses an ISO 8601 / RFC 3339 date-time into ticks since the
// Unix epoch. A value without an offset is UTC; fractions beyond 100 ns are
// truncated, as Kusto does.
func ParseDatetime(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if len(s) < len("2006-01-02") || len(s) > 64 {
		return 0, fmt.Errorf("%q is not an ISO 8601 datetime", s)
	}
	for _, layout := range datetimeLayouts {
		t, err := time.Parse(layout, s)
		if err != nil {
			continue
		}
		ticks := store.TicksFromTime(t)
		if ticks < minTicks || ticks > maxTicks {
			return 0, fmt.Errorf("%q is outside the datetime range", s)
		}
		return ticks, nil
	}
	return 0, fmt.Errorf("%q is not an ISO 8601 datetime", s)
}

// parseRFC3339Ticks is ParseDatetime's fast path for the common form
// "2006-01-02T15:04:05[.fffffffff](Z|±07:00)", read straight from bytes. It
// applies exactly the rules of time.Parse's own RFC 3339 fast path, which
// ParseDatetime's first layout takes, plus ParseDatetime's length and range
// checks; ok is false for anything else, which ParseDatetime then decides.
func parseRFC3339Ticks(s []byte) (ticks int64, ok bool) {
	if len(s) < len("2006-01-02T15:04:05Z") || len(s) > 64 || s[0] < '0' || s[0] > '9' {
		return 0, false
	}
	ok = true
	num := func(b []byte, lo, hi int) int {
		x := 0
		for _, c := range b {
			if c < '0' || c > '9' {
				ok = false
				return lo
			}
			x = x*10 + int(c-'0')
		}
		if x < lo || x > hi {
			ok = false
			return lo
		}
		return x
	}
	year := num(s[0:4], 0, 9999)
	month := num(s[5:7], 1, 12)
	day := num(s[8:10], 1, daysIn(month, year))
	hour := num(s[11:13], 0, 23)
	minute := num(s[14:16], 0, 59)
	sec := num(s[17:19], 0, 59)
	if !ok || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return 0, false
	}
	s = s[19:]
	nsec := 0
	if len(s) >= 2 && s[0] == '.' && '0' <= s[1] && s[1] <= '9' {
		n := 2
		for n < len(s) && '0' <= s[n] && s[n] <= '9' {
			n++
		}
		digits := s[1:min(n, 10)] // nanoseconds: further digits are dropped
		for _, c := range digits {
			nsec = nsec*10 + int(c-'0')
		}
		for range 9 - len(digits) {
			nsec *= 10
		}
		s = s[n:]
	}
	offset := 0
	if len(s) != 1 || s[0] != 'Z' {
		if len(s) != len("-07:00") {
			return 0, false
		}
		hr, mm := num(s[1:3], 0, 23), num(s[4:6], 0, 59)
		if !ok || (s[0] != '-' && s[0] != '+') || s[3] != ':' {
			return 0, false
		}
		offset = (hr*60 + mm) * 60
		if s[0] == '-' {
			offset = -offset
		}
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	ticks = (t.Unix()-int64(offset))*store.TicksPerSecond + int64(nsec)/100
	if ticks < minTicks || ticks > maxTicks {
		return 0, false // ParseDatetime words the error
	}
	return ticks, true
}

// daysIn is the number of days of month m (1-12) in year, as time counts them.
func daysIn(m, year int) int {
	switch m {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// ParseTimespan parses Kusto's timespan text "[-][d.]hh:mm:ss[.fffffff]" into ticks.
func ParseTimespan(s string) (int64, error) {
	orig := s
	bad := func() (int64, error) { return 0, fmt.Errorf("%q is not a timespan [-][d.]hh:mm:ss[.fffffff]", orig) }
	s = strings.TrimSpace(s)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var days int64
	if dot := strings.IndexByte(s, '.'); dot >= 0 && dot < strings.IndexByte(s+":", ':') {
		d, err := strconv.ParseInt(s[:dot], 10, 64)
		if err != nil || d < 0 || d > 10675199 {
			return bad()
		}
		days, s = d, s[dot+1:]
	}
	var frac int64
	if dot := strings.IndexByte(s, '.'); dot >= 0 {
		f := s[dot+1:]
		if len(f) == 0 || len(f) > 7 {
			return bad()
		}
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil || n < 0 {
			return bad()
		}
		for i := len(f); i < 7; i++ {
			n *= 10
		}
		frac, s = n, s[:dot]
	}
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return bad()
	}
	var hms [3]int64
	limits := [3]int64{23, 59, 59}
	for i, p := range parts {
		if len(p) == 0 || len(p) > 2 {
			return bad()
		}
		n, err := strconv.ParseInt(p, 10, 64)
		if err != nil || n < 0 || n > limits[i] {
			return bad()
		}
		hms[i] = n
	}
	ticks := days*store.TicksPerDay + hms[0]*store.TicksPerHour + hms[1]*store.TicksPerMinute + hms[2]*store.TicksPerSecond + frac
	if neg {
		ticks = -ticks
	}
	return ticks, nil
}

// ParseGUID accepts a GUID as 32 hex digits, optionally hyphenated 8-4-4-4-12
// and optionally in braces, and returns its canonical lower-case form.
func ParseGUID(s string) (string, error) {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "{") && strings.HasSuffix(t, "}") {
		t = t[1 : len(t)-1]
	}
	var digits string
	switch len(t) {
	case 36:
		if t[8] != '-' || t[13] != '-' || t[18] != '-' || t[23] != '-' {
			return "", fmt.Errorf("%q is not a guid", s)
		}
		digits = t[:8] + t[9:13] + t[14:18] + t[19:23] + t[24:]
	case 32:
		digits = t
	default:
		return "", fmt.Errorf("%q is not a guid", s)
	}
	var b [16]byte
	if _, err := hex.Decode(b[:], []byte(digits)); err != nil {
		return "", fmt.Errorf("%q is not a guid", s)
	}
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}
