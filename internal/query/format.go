package query

import (
	"encoding/json"
	"io"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"custos/internal/store"
)

// TableData is one result table in columnar form (the shape of engine.Table).
type TableData struct {
	Name    string
	Schema  store.Schema
	Batches []*store.Batch
}

// Extras are the optional top-level members of a query response.
type Extras struct {
	Statistics json.RawMessage // "statistics", with Prefer include-statistics=true
	Render     json.RawMessage // "render", with Prefer include-render=true
	Error      json.RawMessage // "error" for a partial failure (code PartialError)
	// Permissions is "permissions", with Prefer include-permissions=true.
	Permissions json.RawMessage
}

// WriteTables writes {"tables":[...]} (plus the non-empty extras) in the
// Log Analytics wire format, streaming rows to w. Values are formatted as
// Azure formats them (see AppendValue).
func WriteTables(w io.Writer, tables []TableData, ex Extras) error {
	// buf is written out whenever it passes 32 KiB: no bufio.Writer around w
	// (it copied every byte once more and allocated 64 KiB per response).
	buf := make([]byte, 0, 4096)
	buf = append(buf, `{"tables":[`...)
	for ti, t := range tables {
		if ti > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"name":`...)
		buf = AppendJSONString(buf, t.Name)
		buf = append(buf, `,"columns":[`...)
		for ci, c := range t.Schema {
			if ci > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, `{"name":`...)
			buf = AppendJSONString(buf, c.Name)
			buf = append(buf, `,"type":`...)
			buf = AppendJSONString(buf, c.Type.String())
			buf = append(buf, '}')
		}
		buf = append(buf, `],"rows":[`...)
		first := true
		for _, b := range t.Batches {
			if b == nil {
				continue
			}
			for r := 0; r < b.Len; r++ {
				if !first {
					buf = append(buf, ',')
				}
				first = false
				buf = append(buf, '[')
				for ci := range t.Schema {
					if ci > 0 {
						buf = append(buf, ',')
					}
					if ci < len(b.Cols) && b.Cols[ci] != nil {
						buf = AppendValue(buf, b.Cols[ci], r)
					} else {
						buf = append(buf, "null"...)
					}
				}
				buf = append(buf, ']')
				if len(buf) >= 32<<10 {
					if _, err := w.Write(buf); err != nil {
						return err
					}
					buf = buf[:0]
				}
			}
		}
		buf = append(buf, "]}"...)
	}
	buf = append(buf, ']')
	for _, m := range []struct {
		name string
		raw  json.RawMessage
	}{{"statistics", ex.Statistics}, {"render", ex.Render}, {"permissions", ex.Permissions}, {"error", ex.Error}} {
		if len(m.raw) > 0 {
			buf = append(buf, ',')
			buf = AppendJSONString(buf, m.name)
			buf = append(buf, ':')
			buf = append(buf, m.raw...)
		}
	}
	buf = append(buf, '}', '\n')
	_, err := w.Write(buf)
	return err
}

// AppendValue appends row i of v as Azure's Log Analytics API writes it:
// null for nulls; bool as true/false; int and long as JSON numbers; real as a
// JSON number, or the strings "NaN", "Infinity", "-Infinity"; decimal as a
// string; datetime as ISO 8601 UTC with "Z" and up to 7 fractional digits
// (trailing zeros dropped, none for whole seconds); timespan as
// [-][d.]hh:mm:ss[.fffffff]; guid and string as strings; dynamic as a string
// holding its JSON text.
func AppendValue(dst []byte, v *store.Vector, i int) []byte {
	if v.IsNull(i) {
		return append(dst, "null"...)
	}
	switch v.Type {
	case store.TypeBool:
		return strconv.AppendBool(dst, v.Bool[i])
	case store.TypeInt, store.TypeLong:
		return strconv.AppendInt(dst, v.Int[i], 10)
	case store.TypeReal:
		return AppendReal(dst, v.Real[i])
	case store.TypeDecimal:
		// The engine keeps a decimal's exact text (scale and all 29 digits)
		// in Str beside its nearest float64; stored columns have only Real.
		if len(v.Str) == len(v.Real) && v.Str[i] != "" {
			dst = append(dst, '"')
			dst = append(dst, v.Str[i]...)
			return append(dst, '"')
		}
		f := v.Real[i]
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return AppendReal(dst, f)
		}
		dst = append(dst, '"')
		dst = strconv.AppendFloat(dst, f, 'f', -1, 64)
		return append(dst, '"')
	case store.TypeDatetime:
		dst = append(dst, '"')
		dst = AppendDatetime(dst, v.Int[i])
		return append(dst, '"')
	case store.TypeTimespan:
		dst = append(dst, '"')
		dst = AppendTimespan(dst, v.Int[i])
		return append(dst, '"')
	case store.TypeString, store.TypeGUID, store.TypeDynamic:
		return AppendJSONString(dst, v.Str[i])
	}
	return append(dst, "null"...)
}

// AppendReal appends f as a JSON number, or NaN/±Infinity as Azure's strings.
func AppendReal(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(dst, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(dst, `"-Infinity"`...)
	}
	// The shortest text that round-trips, with an exponent only for very large
	// or small magnitudes, as encoding/json writes floats.
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	return strconv.AppendFloat(dst, f, format, -1, 64)
}

// AppendDatetime appends ticks as ISO 8601 UTC ("2024-01-02T03:04:05.1234567Z").
func AppendDatetime(dst []byte, ticks int64) []byte {
	return store.TimeFromTicks(ticks).AppendFormat(dst, time.RFC3339Nano)
}

// AppendTimespan appends ticks as Kusto's timespan text [-][d.]hh:mm:ss[.fffffff].
func AppendTimespan(dst []byte, t int64) []byte {
	u := uint64(t)
	if t < 0 {
		dst = append(dst, '-')
		u = -u
	}
	frac := u % store.TicksPerSecond
	secs := u / store.TicksPerSecond
	if d := secs / 86400; d > 0 {
		dst = strconv.AppendUint(dst, d, 10)
		dst = append(dst, '.')
	}
	dst = append2(dst, secs/3600%24)
	dst = append(dst, ':')
	dst = append2(dst, secs/60%60)
	dst = append(dst, ':')
	dst = append2(dst, secs%60)
	if frac != 0 {
		dst = append(dst, '.')
		var b [7]byte
		for k := 6; k >= 0; k-- {
			b[k] = byte('0' + frac%10)
			frac /= 10
		}
		dst = append(dst, b[:]...)
	}
	return dst
}

func append2(dst []byte, n uint64) []byte {
	return append(dst, byte('0'+n/10), byte('0'+n%10))
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD;
// control characters and U+2028/U+2029 are escaped.
func AppendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
