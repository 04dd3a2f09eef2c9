package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"

	"custos/internal/kql"
	"custos/internal/store"
)

// addPart adds n units of part to ticks (calendar-aware for months and years).
func addPart(part string, n, ticks int64) int64 {
	switch part {
	case "year", "quarter", "month":
		months := n
		if part == "year" {
			months = n * 12
		} else if part == "quarter" {
			months = n * 3
		}
		// As .NET's AddMonths: the day is clamped to the target month's length.
		t := store.TimeFromTicks(ticks)
		total := int64(t.Year())*12 + int64(t.Month()-1) + months
		y, m := int(floorDiv(total, 12)), time.Month(total-floorDiv(total, 12)*12+1)
		last := time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
		d := min(t.Day(), last)
		return store.TicksFromTime(time.Date(y, m, d, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC))
	case "week":
		return ticks + n*7*store.TicksPerDay
	case "day":
		return ticks + n*store.TicksPerDay
	case "hour":
		return ticks + n*store.TicksPerHour
	case "minute":
		return ticks + n*store.TicksPerMinute
	case "second":
		return ticks + n*store.TicksPerSecond
	case "millisecond":
		return ticks + n*store.TicksPerMillisecond
	case "microsecond":
		return ticks + n*store.TicksPerMicrosecond
	}
	return ticks + n/100 // nanosecond
}

// diffPart is datetime_diff: the number of part boundaries between b and a.
func diffPart(part string, a, b int64) int64 {
	ta, tb := store.TimeFromTicks(a), store.TimeFromTicks(b)
	switch part {
	case "year":
		return int64(ta.Year() - tb.Year())
	case "quarter":
		return int64((ta.Year()*4 + (int(ta.Month())-1)/3) - (tb.Year()*4 + (int(tb.Month())-1)/3))
	case "month":
		return int64((ta.Year()*12 + int(ta.Month())) - (tb.Year()*12 + int(tb.Month())))
	case "week":
		// Weeks start on Sunday.
		wa := floorDiv(floorDiv(a, store.TicksPerDay)+4, 7)
		wb := floorDiv(floorDiv(b, store.TicksPerDay)+4, 7)
		return wa - wb
	case "day":
		return floorDiv(a, store.TicksPerDay) - floorDiv(b, store.TicksPerDay)
	case "hour":
		return floorDiv(a, store.TicksPerHour) - floorDiv(b, store.TicksPerHour)
	case "minute":
		return floorDiv(a, store.TicksPerMinute) - floorDiv(b, store.TicksPerMinute)
	case "second":
		return floorDiv(a, store.TicksPerSecond) - floorDiv(b, store.TicksPerSecond)
	case "millisecond":
		return floorDiv(a, store.TicksPerMillisecond) - floorDiv(b, store.TicksPerMillisecond)
	case "microsecond":
		return floorDiv(a, store.TicksPerMicrosecond) - floorDiv(b, store.TicksPerMicrosecond)
	}
	return (a - b) * 100
}

// formatDatetime implements format_datetime's specifiers (yyyy, yy, MM, M,
// dd, d, HH, H, hh, h, mm, m, ss, s, f..fffffff, tt); other characters are
// copied, and text in quotes or after a backslash is literal.
func formatDatetime(ticks int64, f string) string {
	t := store.TimeFromTicks(ticks)
	frac := ticks % store.TicksPerSecond
	if frac < 0 {
		frac += store.TicksPerSecond
	}
	var b strings.Builder
	scanFormat(&b, f, func(c byte, n int) bool {
		switch c {
		case 'y':
			if n <= 2 {
				padInt(&b, t.Year()%100, n)
			} else {
				padInt(&b, t.Year(), n)
			}
		case 'M':
			padInt(&b, int(t.Month()), n)
		case 'd':
			padInt(&b, t.Day(), n)
		case 'H':
			padInt(&b, t.Hour(), n)
		case 'h':
			h := t.Hour() % 12
			if h == 0 {
				h = 12
			}
			padInt(&b, h, n)
		case 'm':
			padInt(&b, t.Minute(), n)
		case 's':
			padInt(&b, t.Second(), n)
		case 'f', 'F':
			s := itoa(int(frac))
			for len(s) < 7 {
				s = "0" + s
			}
			if n > 7 {
				n = 7
			}
			b.WriteString(s[:n])
		case 't':
			if t.Hour() < 12 {
				b.WriteString("AM"[:min(n, 2)])
			} else {
				b.WriteString("PM"[:min(n, 2)])
			}
		default:
			return false
		}
		return true
	})
	return b.String()
}

// scanFormat writes format string f to b: each run of n equal characters c
// goes to spec, which writes it and reports true if c is a specifier; other
// characters are copied, text in single or double quotes (to the closing
// quote or the end) and the character after a backslash are literal. It is
// the grammar format_datetime and format_timespan share.
func scanFormat(b *strings.Builder, f string, spec func(c byte, n int) bool) {
	for i := 0; i < len(f); {
		c := f[i]
		j := i
		for j < len(f) && f[j] == c {
			j++
		}
		switch c {
		case '\'', '"':
			end := strings.IndexByte(f[i+1:], c)
			if end < 0 {
				b.WriteString(f[i+1:])
				return
			}
			b.WriteString(f[i+1 : i+1+end])
			i += end + 2
			continue
		case '\\':
			if i+1 < len(f) {
				b.WriteByte(f[i+1])
			}
			i += 2
			continue
		}
		if !spec(c, j-i) {
			b.WriteString(f[i:j])
		}
		i = j
	}
}

// padInt writes v in decimal, zero-padded to w digits.
func padInt(b *strings.Builder, v, w int) {
	s := itoa(v)
	for len(s) < w {
		s = "0" + s
	}
	b.WriteString(s)
}

func itoa(v int) string {
	if v == 0 {
		return "0"
	}
	neg := v < 0
	if neg {
		v = -v
	}
	var buf [20]byte
	i := len(buf)
	for v > 0 {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	if neg {
		i--
		buf[i] = '-'
	}
	return string(buf[i:])
}

// moreFunctions evaluates hashing, split, datetime arithmetic, min_of/max_of
// and format_datetime.
func (ev *evaluator) moreFunctions(c *kql.FnCall, args []*store.Vector, n int) (*store.Vector, bool) {
	out := newVector(c.T, n)
	switch c.Fn {
	case kql.FnHashSHA256:
		for i := range n {
			sum := sha256.Sum256([]byte(args[0].Str[i]))
			out.Str[i] = hex.EncodeToString(sum[:])
		}
	case kql.FnSplit:
		for i := range n {
			if args[1].Str[i] == "" {
				out.Str[i] = "[]"
				continue
			}
			parts := strings.Split(args[0].Str[i], args[1].Str[i])
			var v any = parts
			if len(args) == 3 {
				k := args[2].Int[i]
				if args[2].IsNull(i) || k < 0 || k >= int64(len(parts)) {
					v = []string{}
				} else {
					v = []string{parts[k]}
				}
			}
			js, _ := json.Marshal(v)
			out.Str[i] = string(js)
		}
	case kql.FnDatetimeAdd:
		part := c.Args[0].(*kql.Const).V.Str
		out.Nulls = orNulls(args[1].Nulls, args[2].Nulls, n)
		for i := range n {
			out.Int[i] = addPart(part, args[1].Int[i], args[2].Int[i])
		}
	case kql.FnDatetimeDiff:
		part := c.Args[0].(*kql.Const).V.Str
		out.Nulls = orNulls(args[1].Nulls, args[2].Nulls, n)
		for i := range n {
			out.Int[i] = diffPart(part, args[1].Int[i], args[2].Int[i])
		}
	case kql.FnMinOf, kql.FnMaxOf:
		out = emptyVector(c.T, n)
		for i := range n {
			best := -1
			for j, a := range args {
				if a.IsNull(i) {
					continue
				}
				if best < 0 {
					best = j
					continue
				}
				cmpv := compareRows(a, i, args[best], i)
				if (c.Fn == kql.FnMinOf && cmpv < 0) || (c.Fn == kql.FnMaxOf && cmpv > 0) {
					best = j
				}
			}
			if best < 0 {
				appendValue(out, kql.NullValue(c.T))
			} else {
				appendRow(out, args[best], i)
			}
		}
	case kql.FnFormatDatetime:
		f := c.Args[1].(*kql.Const).V.Str
		for i := range n {
			if args[0].IsNull(i) {
				continue
			}
			out.Str[i] = formatDatetime(args[0].Int[i], f)
		}
	default:
		return nil, false
	}
	return out, true
}

// compareRows compares row i of a with row j of b (same storage class).
func compareRows(a *store.Vector, i int, b *store.Vector, j int) int {
	switch {
	case kql.IsIntHeld(a.Type):
		return cmpInt(a.Int[i], b.Int[j])
	case kql.IsRealHeld(a.Type):
		switch {
		case a.Real[i] < b.Real[j]:
			return -1
		case a.Real[i] > b.Real[j]:
			return 1
		case a.Type == store.TypeDecimal && b.Type == store.TypeDecimal:
			return decCompareRows(a, i, b, j) // equal float64s, maybe different decimals
		}
		return 0
	}
	return strings.Compare(a.Str[i], b.Str[j])
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
