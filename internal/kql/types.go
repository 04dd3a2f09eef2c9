package kql

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"custos/internal/store"
)

// Type is a KQL scalar type. It is the store's column type, so a bound
// expression's type is directly the type of the column it produces.
type Type = store.ColumnType

// IsInteger reports whether t is int or long.
func IsInteger(t Type) bool { return t == store.TypeInt || t == store.TypeLong }

// IsNumeric reports whether t is int, long, real or decimal.
func IsNumeric(t Type) bool {
	switch t {
	case store.TypeInt, store.TypeLong, store.TypeReal, store.TypeDecimal:
		return true
	}
	return false
}

// IsStringLike reports whether t is held as text (string, guid, dynamic).
func IsStringLike(t Type) bool {
	return t == store.TypeString || t == store.TypeGUID || t == store.TypeDynamic
}

// IsIntHeld reports whether values of t live in Vector.Int.
func IsIntHeld(t Type) bool {
	switch t {
	case store.TypeInt, store.TypeLong, store.TypeDatetime, store.TypeTimespan:
		return true
	}
	return false
}

// IsRealHeld reports whether values of t live in Vector.Real.
func IsRealHeld(t Type) bool { return t == store.TypeReal || t == store.TypeDecimal }

// Value is one scalar value of a KQL type: a literal, a constant, or one cell
// of a result. Null marks the null value of its type (strings are never null).
type Value struct {
	Type Type
	Null bool
	Bool bool
	Int  int64   // int, long, datetime (ticks), timespan (ticks)
	Real float64 // real, decimal
	Str  string  // string, guid, dynamic (compact JSON)
}

// NullValue returns the null value of type t; for strings that is "".
func NullValue(t Type) Value {
	if t == store.TypeString {
		return Value{Type: t}
	}
	return Value{Type: t, Null: true}
}

// LongValue returns a long.
func LongValue(v int64) Value { return Value{Type: store.TypeLong, Int: v} }

// RealValue returns a real.
func RealValue(v float64) Value { return Value{Type: store.TypeReal, Real: v} }

// StringValue returns a string.
func StringValue(s string) Value { return Value{Type: store.TypeString, Str: s} }

// BoolValue returns a bool.
func BoolValue(b bool) Value { return Value{Type: store.TypeBool, Bool: b} }

// DatetimeValue returns a datetime of the given ticks since the Unix epoch.
func DatetimeValue(ticks int64) Value { return Value{Type: store.TypeDatetime, Int: ticks} }

// TimespanValue returns a timespan of the given ticks.
func TimespanValue(ticks int64) Value { return Value{Type: store.TypeTimespan, Int: ticks} }

// String formats v the way tostring() does: datetimes as ISO 8601 with 7
// fractional digits, timespans as [-][d.]hh:mm:ss[.fffffff], null as "".
func (v Value) String() string {
	if v.Null {
		return ""
	}
	switch v.Type {
	case store.TypeBool:
		if v.Bool {
			return "true"
		}
		return "false"
	case store.TypeInt, store.TypeLong:
		return strconv.FormatInt(v.Int, 10)
	case store.TypeReal:
		return FormatReal(v.Real)
	case store.TypeDecimal:
		if IsDecimalText(v.Str) {
			return v.Str // the exact digits the engine keeps beside the float64
		}
		return FormatReal(v.Real)
	case store.TypeDatetime:
		return FormatDatetime(v.Int)
	case store.TypeTimespan:
		return FormatTimespan(v.Int)
	default:
		return v.Str
	}
}

// IsDecimalText reports whether s is a decimal in the canonical text the
// engine writes (Decimal.String): an optional '-', an integer part without
// superfluous leading zeros, and an optional '.' followed by digits; no
// exponent, no '+'. A decimal Value's Str in that form is its exact value.
func IsDecimalText(s string) bool {
	s = strings.TrimPrefix(s, "-")
	intPart, frac, hasDot := strings.Cut(s, ".")
	if intPart == "" || (len(intPart) > 1 && intPart[0] == '0') || (hasDot && frac == "") {
		return false
	}
	for _, part := range [2]string{intPart, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return false
			}
		}
	}
	return true
}

// FormatReal formats a real the way Kusto prints it (shortest round-trip
// form; NaN, Infinity and -Infinity spelled as in .NET).
func FormatReal(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// FormatDatetime formats ticks since the Unix epoch as ISO 8601 UTC with seven
// fractional digits, as the Log Analytics API returns datetimes.
func FormatDatetime(ticks int64) string {
	t := store.TimeFromTicks(ticks)
	frac := ticks % store.TicksPerSecond
	if frac < 0 {
		frac += store.TicksPerSecond
	}
	return fmt.Sprintf("%s.%07dZ", t.Format("2006-01-02T15:04:05"), frac)
}

// FormatTimespan formats ticks as Kusto's constant format [-][d.]hh:mm:ss[.fffffff].
func FormatTimespan(ticks int64) string {
	var b strings.Builder
	u := uint64(ticks)
	if ticks < 0 {
		b.WriteByte('-')
		u = uint64(-ticks) // also right for MinInt64 as uint64
	}
	days := u / store.TicksPerDay
	rem := u % store.TicksPerDay
	if days > 0 {
		fmt.Fprintf(&b, "%d.", days)
	}
	h := rem / store.TicksPerHour
	rem %= store.TicksPerHour
	m := rem / store.TicksPerMinute
	rem %= store.TicksPerMinute
	s := rem / store.TicksPerSecond
	frac := rem % store.TicksPerSecond
	fmt.Fprintf(&b, "%02d:%02d:%02d", h, m, s)
	if frac > 0 {
		fmt.Fprintf(&b, ".%07d", frac)
	}
	return b.String()
}

// datetimeLayouts are the formats todatetime() and datetime() literals accept,
// most specific first. All are read as UTC unless they carry an offset.
var datetimeLayouts = [...]string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.9999999",
	"2006-01-02T15:04:05",
	"2006-01-02T15:04",
	"2006-01-02 15:04:05.9999999Z07:00",
	"2006-01-02 15:04:05.9999999",
	"2006-01-02 15:04:05",
	"2006-01-02 15:04",
	"2006-01-02",
	"2006-01",
	"2006",
	time.RFC1123,
	time.RFC1123Z,
	"Mon, 2 Jan 2006 15:04:05 MST",
	"01/02/2006 15:04:05",
	"01/02/2006",
	"2 Jan 2006 15:04:05",
	"2 Jan 2006",
	"Jan 2 2006",
}

// ParseDatetime parses the datetime formats Kusto accepts (ISO 8601, RFC 822
// and a few common variants) into ticks since the Unix epoch. ok is false when
// s is not a datetime.
func ParseDatetime(s string) (ticks int64, ok bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	for _, layout := range datetimeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return store.TicksFromTime(t), true
		}
	}
	return 0, false
}

// ParseTimespan parses Kusto's timespan text: the constant format
// [-][d.]hh:mm[:ss[.fffffff]] and the literal forms 1d, 2h, 30m, 10s, 100ms,
// 5microsecond, 1tick, 1.5h. ok is false when s is not a timespan.
func ParseTimespan(s string) (ticks int64, ok bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	if strings.Contains(s, ":") {
		return parseTimespanClock(s)
	}
	i := 0
	for i < len(s) && (s[i] == '.' || s[i] == '-' || s[i] == '+' || (s[i] >= '0' && s[i] <= '9')) {
		i++
	}
	num, unit := s[:i], strings.ToLower(s[i:])
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, false
	}
	var mul float64
	switch unit {
	case "d", "day", "days":
		mul = store.TicksPerDay
	case "h", "hr", "hrs", "hour", "hours":
		mul = store.TicksPerHour
	case "m", "min", "minute", "minutes":
		mul = store.TicksPerMinute
	case "s", "sec", "second", "seconds":
		mul = store.TicksPerSecond
	case "ms", "milli", "millis", "millisecond", "milliseconds":
		mul = store.TicksPerMillisecond
	case "microsecond", "microseconds":
		mul = store.TicksPerMicrosecond
	case "tick", "ticks":
		mul = 1
	case "":
		mul = store.TicksPerDay // timespan(2) is two days
	default:
		return 0, false
	}
	v := f * mul
	if math.IsNaN(v) || v > math.MaxInt64 || v < math.MinInt64 {
		return 0, false
	}
	return int64(math.Round(v)), true
}

func parseTimespanClock(s string) (int64, bool) {
	neg := false
	if strings.HasPrefix(s, "-") {
		neg, s = true, s[1:]
	}
	var days int64
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, false
	}
	if d, rest, found := strings.Cut(parts[0], "."); found {
		v, err := strconv.ParseInt(d, 10, 64)
		if err != nil || v < 0 || v > 10675199 {
			return 0, false
		}
		days, parts[0] = v, rest
	}
	h, err1 := strconv.ParseInt(parts[0], 10, 64)
	m, err2 := strconv.ParseInt(parts[1], 10, 64)
	if err1 != nil || err2 != nil || h < 0 || h > 23 || m < 0 || m > 59 {
		return 0, false
	}
	var secTicks int64
	if len(parts) == 3 {
		sec, frac, _ := strings.Cut(parts[2], ".")
		sv, err := strconv.ParseInt(sec, 10, 64)
		if err != nil || sv < 0 || sv > 59 {
			return 0, false
		}
		secTicks = sv * store.TicksPerSecond
		if frac != "" {
			if len(frac) > 7 {
				frac = frac[:7]
			}
			fv, err := strconv.ParseInt(frac+strings.Repeat("0", 7-len(frac)), 10, 64)
			if err != nil || fv < 0 {
				return 0, false
			}
			secTicks += fv
		}
	}
	t := days*store.TicksPerDay + h*store.TicksPerHour + m*store.TicksPerMinute + secTicks
	if neg {
		t = -t
	}
	return t, true
}
