package engine

import (
	"math"
	"strings"
	"time"

	"custos/internal/kql"
	"custos/internal/store"
)

// rfcDatetimeLayouts are the RFC 822 and RFC 850 forms of Kusto's
// supported datetime formats that kql.ParseDatetime does not cover (with
// and without weekday, seconds and zone; two-digit years).
var rfcDatetimeLayouts = [...]string{
	"Mon, 2 Jan 06 15:04:05 MST", "Mon, 2 Jan 06 15:04:05", "Mon, 2 Jan 06 15:04", "Mon, 2 Jan 06 15:04 MST",
	"2 Jan 06 15:04:05 MST", "2 Jan 06 15:04:05", "2 Jan 06 15:04", "2 Jan 06 15:04 MST",
	"Monday, 2-Jan-06 15:04:05 MST", "Monday, 2-Jan-06 15:04:05", "Monday, 2-Jan-06 15:04", "Monday, 2-Jan-06 15:04 MST",
	"2-Jan-06 15:04:05 MST", "2-Jan-06 15:04:05", "2-Jan-06 15:04", "2-Jan-06 15:04 MST",
	"Mon, 2 Jan 2006 15:04", "Mon, 2 Jan 2006 15:04 MST", "2 Jan 2006 15:04:05 MST",
}

// parseKustoDatetime parses every datetime format of todatetime(): ISO
// 8601 and the others kql.ParseDatetime knows, then RFC 822 and RFC 850.
func parseKustoDatetime(s string) (int64, bool) {
	if t, ok := kql.ParseDatetime(s); ok {
		return t, true
	}
	s = strings.TrimSpace(s)
	for _, layout := range rfcDatetimeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return store.TicksFromTime(t.UTC()), true
		}
	}
	return 0, false
}

// startOf returns the start of the unit ("day", "week", "month", "year",
// "hour") containing ticks, moved by offset units. Weeks start on Sunday,
// as in Kusto.
func startOf(unit string, ticks, offset int64) int64 {
	switch unit {
	case "hour":
		return (floorDiv(ticks, store.TicksPerHour) + offset) * store.TicksPerHour
	case "day":
		return (floorDiv(ticks, store.TicksPerDay) + offset) * store.TicksPerDay
	case "week":
		days := floorDiv(ticks, store.TicksPerDay)
		sunday := days - ((days+4)%7+7)%7 // 1970-01-01 was a Thursday
		return (sunday + 7*offset) * store.TicksPerDay
	case "month", "year":
		t := store.TimeFromTicks(ticks)
		y, m := int64(t.Year()), int64(t.Month()-1)
		if unit == "year" {
			y, m = y+offset, 0
		} else {
			total := y*12 + m + offset
			y, m = floorDiv(total, 12), total-floorDiv(total, 12)*12
		}
		return store.TicksFromTime(time.Date(int(y), time.Month(m+1), 1, 0, 0, 0, 0, time.UTC))
	}
	return ticks
}

// endOf is the last tick of the unit containing ticks, moved by offset.
func endOf(unit string, ticks, offset int64) int64 {
	return startOf(unit, startOf(unit, ticks, offset), 1) - 1
}

// datetimePart implements datetime_part.
func datetimePart(part string, ticks int64) int64 {
	t := store.TimeFromTicks(ticks)
	frac := ticks - floorDiv(ticks, store.TicksPerSecond)*store.TicksPerSecond
	switch part {
	case "year":
		return int64(t.Year())
	case "quarter":
		return int64((t.Month()-1)/3 + 1)
	case "month":
		return int64(t.Month())
	case "week_of_year":
		_, w := t.ISOWeek()
		return int64(w)
	case "day":
		return int64(t.Day())
	case "dayofyear":
		return int64(t.YearDay())
	case "hour":
		return int64(t.Hour())
	case "minute":
		return int64(t.Minute())
	case "second":
		return int64(t.Second())
	case "millisecond":
		return frac / store.TicksPerMillisecond
	case "microsecond":
		return frac / store.TicksPerMicrosecond
	case "nanosecond":
		return frac * 100
	}
	return 0
}

// formatTimespan implements format_timespan's specifiers: d…dddddddd (days),
// h/hh and H/HH (hours), m/mm, s/ss, f…fffffff (fraction, zero-padded),
// F…FFFFFFF (fraction without trailing zeros); other characters are copied
// and text in quotes or after a backslash is literal.
func formatTimespan(ticks int64, f string) string {
	var b strings.Builder
	neg := ticks < 0
	u := uint64(ticks)
	if neg {
		u = uint64(-ticks)
		b.WriteByte('-')
	}
	days := int(u / store.TicksPerDay)
	rem := u % store.TicksPerDay
	hours := int(rem / store.TicksPerHour)
	rem %= store.TicksPerHour
	mins := int(rem / store.TicksPerMinute)
	rem %= store.TicksPerMinute
	secs := int(rem / store.TicksPerSecond)
	frac := int(rem % store.TicksPerSecond)
	scanFormat(&b, f, func(c byte, n int) bool {
		switch c {
		case 'd':
			padInt(&b, days, n)
		case 'h', 'H':
			padInt(&b, hours, n)
		case 'm':
			padInt(&b, mins, n)
		case 's':
			padInt(&b, secs, n)
		case 'f', 'F':
			s := itoa(frac)
			for len(s) < 7 {
				s = "0" + s
			}
			s = s[:min(n, 7)]
			if c == 'F' {
				s = strings.TrimRight(s, "0")
			}
			b.WriteString(s)
		default:
			return false
		}
		return true
	})
	return b.String()
}

// makeDatetime implements make_datetime; ok is false for an invalid date.
func makeDatetime(v []float64) (int64, bool) {
	for _, x := range v[:5] {
		if x != math.Trunc(x) {
			return 0, false
		}
	}
	y, mo, d, h, mi, s := int(v[0]), int(v[1]), int(v[2]), int(v[3]), int(v[4]), v[5]
	if y < 1 || y > 9999 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || !(s >= 0 && s < 60) {
		return 0, false
	}
	if d > time.Date(y, time.Month(mo)+1, 0, 0, 0, 0, 0, time.UTC).Day() {
		return 0, false
	}
	base := store.TicksFromTime(time.Date(y, time.Month(mo), d, h, mi, 0, 0, time.UTC))
	return base + int64(math.Round(s*store.TicksPerSecond)), true
}

// datetimeFunctions evaluates the datetime and timespan functions of the
// registry.
func (ev *evaluator) datetimeFunctions(c *kql.FnCall, args []*store.Vector, n int) (*store.Vector, bool) {
	t := c.T
	constStr := func(i int) string { return c.Args[i].(*kql.Const).V.Str }
	switch c.Fn {
	case kql.FnBinAt:
		return rowFunc(t, args, n, func(v []kql.Value) kql.Value {
			if anyNull(v...) {
				return kql.NullValue(t)
			}
			if kql.IsRealHeld(t) {
				if !(v[1].Real > 0) {
					return kql.NullValue(t)
				}
				return kql.Value{Real: math.Floor((v[0].Real-v[2].Real)/v[1].Real)*v[1].Real + v[2].Real}
			}
			if v[1].Int <= 0 {
				return kql.NullValue(t)
			}
			return kql.Value{Int: floorDiv(v[0].Int-v[2].Int, v[1].Int)*v[1].Int + v[2].Int}
		}), true
	case kql.FnStartOf, kql.FnEndOf:
		unit := constStr(0)
		return rowFunc(t, args[1:], n, func(v []kql.Value) kql.Value {
			if anyNull(v...) {
				return kql.NullValue(t)
			}
			if c.Fn == kql.FnStartOf {
				return kql.Value{Int: startOf(unit, v[0].Int, v[1].Int)}
			}
			return kql.Value{Int: endOf(unit, v[0].Int, v[1].Int)}
		}), true
	case kql.FnDayOfMonth, kql.FnDayOfYear, kql.FnWeekOfYear:
		part := map[kql.FuncID]string{kql.FnDayOfMonth: "day", kql.FnDayOfYear: "dayofyear", kql.FnWeekOfYear: "week_of_year"}[c.Fn]
		out := newVector(t, n)
		out.Nulls = orNulls(args[0].Nulls, nil, n)
		for i := range n {
			out.Int[i] = datetimePart(part, args[0].Int[i])
		}
		return out, true
	case kql.FnDatetimePart:
		part := constStr(0)
		out := newVector(t, n)
		out.Nulls = orNulls(args[1].Nulls, nil, n)
		for i := range n {
			out.Int[i] = datetimePart(part, args[1].Int[i])
		}
		return out, true
	case kql.FnFormatTimespan:
		f := constStr(1)
		out := newVector(store.TypeString, n)
		for i := range n {
			if !args[0].IsNull(i) {
				out.Str[i] = formatTimespan(args[0].Int[i], f)
			}
		}
		return out, true
	case kql.FnMakeDatetime:
		return rowFunc(t, args, n, func(v []kql.Value) kql.Value {
			if anyNull(v...) {
				return kql.NullValue(t)
			}
			fs := make([]float64, 6)
			for i := range fs {
				fs[i] = v[i].Real
			}
			ticks, ok := makeDatetime(fs)
			if !ok {
				return kql.NullValue(t)
			}
			return kql.Value{Int: ticks}
		}), true
	case kql.FnMakeTimespan:
		return rowFunc(t, args, n, func(v []kql.Value) kql.Value {
			if anyNull(v...) {
				return kql.NullValue(t)
			}
			var d, h, m, s float64
			switch len(v) {
			case 2:
				h, m = v[0].Real, v[1].Real
			case 3:
				h, m, s = v[0].Real, v[1].Real, v[2].Real
			default:
				d, h, m, s = v[0].Real, v[1].Real, v[2].Real, v[3].Real
			}
			ticks := d*store.TicksPerDay + h*store.TicksPerHour + m*store.TicksPerMinute + s*store.TicksPerSecond
			if math.IsNaN(ticks) || math.Abs(ticks) > math.MaxInt64/2 {
				return kql.NullValue(t)
			}
			return kql.Value{Int: int64(math.Round(ticks))}
		}), true
	case kql.FnUnixToDatetime:
		per := c.Args[0].(*kql.Const).V.Real
		// Kusto's datetime range is years 1 to 9999.
		const lo, hi = -62135596800 * store.TicksPerSecond, 253402300800 * store.TicksPerSecond
		return rowFunc(t, args[1:], n, func(v []kql.Value) kql.Value {
			if v[0].Null {
				return kql.NullValue(t)
			}
			if kql.IsIntHeld(v[0].Type) {
				x := v[0].Int
				if per < 1 {
					return kql.Value{Int: floorDiv(x, 100)}
				}
				p := int64(per)
				if x > hi/p || x < lo/p {
					return kql.NullValue(t)
				}
				return kql.Value{Int: x * p}
			}
			x := v[0].Real * per
			if math.IsNaN(x) || x < lo || x >= hi {
				return kql.NullValue(t)
			}
			return kql.Value{Int: int64(math.Round(x))}
		}), true
	case kql.FnDatetimeToUnix:
		per := c.Args[0].(*kql.Const).V.Real
		out := newVector(store.TypeReal, n)
		out.Nulls = orNulls(args[1].Nulls, nil, n)
		for i := range n {
			out.Real[i] = float64(args[1].Int[i]) / per
		}
		return out, true
	}
	return nil, false
}

// mathFunctions evaluates the math functions of the registry.
func (ev *evaluator) mathFunctions(c *kql.FnCall, args []*store.Vector, n int) (*store.Vector, bool) {
	switch c.Fn {
	case kql.FnMath:
		var f func(float64) float64
		switch c.Args[0].(*kql.Const).V.Str {
		case "exp2":
			f = math.Exp2
		case "exp10":
			f = func(x float64) float64 { return math.Pow(10, x) }
		case "log2":
			f = math.Log2
		case "sin":
			f = math.Sin
		case "cos":
			f = math.Cos
		case "tan":
			f = math.Tan
		case "asin":
			f = math.Asin
		case "acos":
			f = math.Acos
		case "atan":
			f = math.Atan
		case "cot":
			f = func(x float64) float64 { return 1 / math.Tan(x) }
		case "degrees":
			f = func(x float64) float64 { return x * 180 / math.Pi }
		case "radians":
			f = func(x float64) float64 { return x * math.Pi / 180 }
		case "gamma":
			f = math.Gamma
		default: // loggamma
			f = func(x float64) float64 { v, _ := math.Lgamma(x); return v }
		}
		return mapReal(args[1], n, f), true
	case kql.FnAtan2:
		out := newVector(store.TypeReal, n)
		out.Nulls = orNulls(args[0].Nulls, args[1].Nulls, n)
		for i := range n {
			out.Real[i] = math.Atan2(args[0].Real[i], args[1].Real[i])
		}
		return out, true
	case kql.FnSign:
		return mapReal(args[0], n, func(x float64) float64 {
			switch {
			case x > 0:
				return 1
			case x < 0:
				return -1
			}
			return x // 0 or NaN
		}), true
	case kql.FnIsInf, kql.FnIsFinite:
		out := newVector(store.TypeBool, n)
		out.Nulls = orNulls(args[0].Nulls, nil, n)
		for i := range n {
			x := args[0].Real[i]
			if c.Fn == kql.FnIsInf {
				out.Bool[i] = math.IsInf(x, 0)
			} else {
				out.Bool[i] = !math.IsInf(x, 0) && !math.IsNaN(x)
			}
		}
		return out, true
	case kql.FnBinaryNot:
		out := newVector(store.TypeLong, n)
		out.Nulls = orNulls(args[0].Nulls, nil, n)
		for i := range n {
			out.Int[i] = ^args[0].Int[i]
		}
		return out, true
	case kql.FnBinaryAnd, kql.FnBinaryOr, kql.FnBinaryXor, kql.FnBinaryShiftLeft, kql.FnBinaryShiftRight:
		out := newVector(store.TypeLong, n)
		out.Nulls = orNulls(args[0].Nulls, args[1].Nulls, n)
		a, b := args[0].Int[:n], args[1].Int[:n]
		for i := range n {
			switch c.Fn {
			case kql.FnBinaryAnd:
				out.Int[i] = a[i] & b[i]
			case kql.FnBinaryOr:
				out.Int[i] = a[i] | b[i]
			case kql.FnBinaryXor:
				out.Int[i] = a[i] ^ b[i]
			case kql.FnBinaryShiftLeft:
				out.Int[i] = a[i] << (uint64(b[i]) & 63) // .NET masks the count
			default:
				out.Int[i] = a[i] >> (uint64(b[i]) & 63)
			}
		}
		return out, true
	}
	return nil, false
}
