package kql

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"custos/internal/store"
)

// parseTypeName maps a KQL type name (with Kusto's aliases) to its type.
func parseTypeName(s string) (store.ColumnType, bool) {
	if s == "int64" {
		return store.TypeLong, true
	}
	return store.ParseColumnType(s)
}

// numberLiteral converts a TokLong, TokReal or TokTimespan token. A non-empty
// message reports an invalid literal.
func numberLiteral(t Token, neg bool) (*Literal, string) {
	lit := &Literal{Pos: t.Pos, Raw: t.Text}
	switch t.Kind {
	case TokLong:
		lit.Type = store.TypeLong
		v, ok := parseLong(t.Text, neg)
		if !ok {
			return lit, fmt.Sprintf("the number %s is out of range for long", t.Text)
		}
		lit.Int = v
	case TokReal:
		lit.Type = store.TypeReal
		v, err := strconv.ParseFloat(t.Text, 64)
		if err != nil || math.IsInf(v, 0) {
			return lit, fmt.Sprintf("the number %s is out of range for real", t.Text)
		}
		if neg {
			v = -v
		}
		lit.Real = v
	case TokTimespan:
		lit.Type = store.TypeTimespan
		ticks, ok := unitTicks(t.Value, timespanUnits[t.Type])
		if !ok {
			return lit, fmt.Sprintf("the timespan %s is out of range", t.Text)
		}
		if neg {
			ticks = -ticks
		}
		lit.Int = ticks
	}
	return lit, ""
}

// parseLong parses a decimal or 0x hex integer; neg negates it, so the
// minimum long is representable.
func parseLong(s string, neg bool) (int64, bool) {
	base, digits := 10, s
	if len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		base, digits = 16, s[2:]
	}
	u, err := strconv.ParseUint(digits, base, 64)
	if err != nil {
		return 0, false
	}
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		return -int64(u), true
	}
	if base == 16 {
		return int64(u), true // hex literals may set the sign bit, as in Kusto
	}
	if u > math.MaxInt64 {
		return 0, false
	}
	return int64(u), true
}

// unitTicks multiplies a decimal number by a unit in ticks, rounding to the
// nearest tick.
func unitTicks(num string, unit int64) (int64, bool) {
	if !strings.ContainsAny(num, ".eE") {
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || (unit != 0 && (n > math.MaxInt64/unit || n < math.MinInt64/unit)) {
			return 0, false
		}
		return n * unit, true
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, false
	}
	v := math.Round(f * float64(unit))
	if math.IsNaN(v) || v >= math.MaxInt64 || v <= math.MinInt64 {
		return 0, false
	}
	return int64(v), true
}

// typedLiteral converts a TokTyped token: datetime(...), timespan(...),
// guid(...), int(...), long(...), real(...), bool(...), decimal(...).
func typedLiteral(t Token) (*Literal, string) {
	lit := &Literal{Pos: t.Pos, Raw: t.Text}
	v := t.Value
	isNull := v == "null"
	bad := func(what string) (*Literal, string) {
		return lit, fmt.Sprintf("invalid %s literal '%s'", what, t.Text)
	}
	switch t.Type {
	case "datetime", "date":
		lit.Type = store.TypeDatetime
		if isNull {
			lit.Null = true
			return lit, ""
		}
		ticks, ok := parseDatetime(v)
		if !ok {
			return bad("datetime")
		}
		lit.Int = ticks
	case "timespan", "time":
		lit.Type = store.TypeTimespan
		if isNull {
			lit.Null = true
			return lit, ""
		}
		ticks, ok := parseTimespan(v)
		if !ok {
			return bad("timespan")
		}
		lit.Int = ticks
	case "guid", "uniqueid":
		lit.Type = store.TypeGUID
		if isNull {
			lit.Null = true
			return lit, ""
		}
		g, ok := canonicalGUID(v)
		if !ok {
			return bad("guid")
		}
		lit.Str = g
	case "int":
		lit.Type = store.TypeInt
		if isNull {
			lit.Null = true
			return lit, ""
		}
		n, ok := parseSignedLong(v)
		if !ok || n > math.MaxInt32 || n < math.MinInt32 {
			return bad("int")
		}
		lit.Int = n
	case "long", "int64":
		lit.Type = store.TypeLong
		if isNull {
			lit.Null = true
			return lit, ""
		}
		n, ok := parseSignedLong(v)
		if !ok {
			return bad("long")
		}
		lit.Int = n
	case "real", "double":
		lit.Type = store.TypeReal
		switch strings.ToLower(v) {
		case "null":
			lit.Null = true
		case "nan":
			lit.Real = math.NaN()
		case "inf", "+inf":
			lit.Real = math.Inf(1)
		case "-inf":
			lit.Real = math.Inf(-1)
		default:
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || strings.ContainsAny(v, "xXpP_") || math.IsInf(f, 0) || math.IsNaN(f) {
				return bad("real")
			}
			lit.Real = f
		}
	case "decimal":
		lit.Type = store.TypeDecimal
		if isNull {
			lit.Null = true
			return lit, ""
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || strings.ContainsAny(v, "xXpP_") || math.IsInf(f, 0) || math.IsNaN(f) {
			return bad("decimal")
		}
		lit.Real, lit.Str = f, v
	case "bool", "boolean":
		lit.Type = store.TypeBool
		switch strings.ToLower(v) {
		case "null":
			lit.Null = true
		case "true", "1":
			lit.Bool = true
		case "false", "0":
		default:
			return bad("bool")
		}
	default:
		return bad(t.Type)
	}
	return lit, ""
}

func parseSignedLong(v string) (int64, bool) {
	neg := false
	switch {
	case strings.HasPrefix(v, "-"):
		neg, v = true, v[1:]
	case strings.HasPrefix(v, "+"):
		v = v[1:]
	}
	if v == "" || v[0] == '+' || v[0] == '-' {
		return 0, false
	}
	return parseLong(v, neg)
}

// parseTimespan parses the text of timespan(...): "2d", "1.5h", "15 seconds",
// "2" (days), "hh:mm", "hh:mm:ss[.f]", "d.hh:mm:ss[.f]", with an optional sign.
func parseTimespan(v string) (int64, bool) {
	neg := false
	switch {
	case strings.HasPrefix(v, "-"):
		neg, v = true, strings.TrimSpace(v[1:])
	case strings.HasPrefix(v, "+"):
		v = strings.TrimSpace(v[1:])
	}
	ticks, ok := parseUnsignedTimespan(v)
	if !ok {
		return 0, false
	}
	if neg {
		ticks = -ticks
	}
	return ticks, true
}

func parseUnsignedTimespan(v string) (int64, bool) {
	if v == "" {
		return 0, false
	}
	if strings.Contains(v, ":") {
		return parseClockTimespan(v)
	}
	// number followed by an optional unit, possibly separated by spaces
	i := 0
	for i < len(v) && (isDigit(v[i]) || v[i] == '.') {
		i++
	}
	num, unit := v[:i], strings.TrimSpace(v[i:])
	if num == "" || strings.Count(num, ".") > 1 || num[0] == '.' || num[len(num)-1] == '.' {
		return 0, false
	}
	if unit == "" {
		return unitTicks(num, store.TicksPerDay)
	}
	u, ok := timespanUnits[unit]
	if !ok {
		return 0, false
	}
	return unitTicks(num, u)
}

// parseClockTimespan parses "[d.]hh:mm[:ss[.fffffff]]".
func parseClockTimespan(v string) (int64, bool) {
	var days int64
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, false
	}
	hourPart := parts[0]
	if d, h, ok := strings.Cut(hourPart, "."); ok {
		n, err := strconv.ParseInt(d, 10, 64)
		if err != nil || n < 0 || n > 10_675_199 || !allDigits(d) {
			return 0, false
		}
		days, hourPart = n, h
	}
	hours, ok1 := smallInt(hourPart, 23)
	minutes, ok2 := smallInt(parts[1], 59)
	if !ok1 || !ok2 {
		return 0, false
	}
	var secTicks int64
	if len(parts) == 3 {
		sec, frac, hasFrac := strings.Cut(parts[2], ".")
		s, ok := smallInt(sec, 59)
		if !ok {
			return 0, false
		}
		secTicks = s * store.TicksPerSecond
		if hasFrac {
			f, ok := fractionTicks(frac)
			if !ok {
				return 0, false
			}
			secTicks += f
		}
	}
	total := days*store.TicksPerDay + hours*store.TicksPerHour + minutes*store.TicksPerMinute + secTicks
	if total < 0 {
		return 0, false
	}
	return total, true
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

func smallInt(s string, limit int64) (int64, bool) {
	if !allDigits(s) || len(s) > 2 {
		return 0, false
	}
	n, _ := strconv.ParseInt(s, 10, 64)
	return n, n <= limit
}

// fractionTicks converts the digits after a decimal point to ticks
// (7 digits of precision; further digits are truncated).
func fractionTicks(frac string) (int64, bool) {
	if !allDigits(frac) || len(frac) > 9 {
		return 0, false
	}
	padded := (frac + "0000000")[:7]
	n, _ := strconv.ParseInt(padded, 10, 64)
	return n, true
}

var literalDatetimeLayouts = []string{
	time.RFC1123, time.RFC1123Z, time.RFC822, time.RFC822Z, time.RFC850,
	"Mon, 2 Jan 2006 15:04:05 MST", "2 Jan 2006 15:04:05 MST", "2 Jan 2006 15:04:05",
	"2 Jan 2006", "Jan 2 2006", "Jan 2 2006 15:04:05",
}

// parseDatetime parses the text of datetime(...): ISO 8601 forms such as
// 2024-01-01, 2024-01-01 10:00, 2024-01-01T10:00:00.1234567Z,
// 2024-01-01T10:00:00+02:00, and RFC 822/850/1123 forms. The result is ticks
// since the Unix epoch, UTC (a time without zone is UTC, as in Kusto).
func parseDatetime(v string) (int64, bool) {
	if t, ok := parseISODatetime(v); ok {
		return store.TicksFromTime(t), true
	}
	for _, layout := range literalDatetimeLayouts {
		if t, err := time.Parse(layout, v); err == nil {
			return store.TicksFromTime(t), true
		}
	}
	return 0, false
}

func parseISODatetime(v string) (time.Time, bool) {
	// date part: YYYY-MM-DD (also YYYY-MM and YYYY)
	if len(v) < 4 || !allDigits(v[:4]) {
		return time.Time{}, false
	}
	year, _ := strconv.Atoi(v[:4])
	month, day := 1, 1
	rest := v[4:]
	if strings.HasPrefix(rest, "-") {
		if len(rest) < 3 || !allDigits(rest[1:3]) {
			return time.Time{}, false
		}
		month, _ = strconv.Atoi(rest[1:3])
		rest = rest[3:]
		if strings.HasPrefix(rest, "-") {
			if len(rest) < 3 || !allDigits(rest[1:3]) {
				return time.Time{}, false
			}
			day, _ = strconv.Atoi(rest[1:3])
			rest = rest[3:]
		}
	} else if rest != "" {
		return time.Time{}, false
	}
	if year < 1 || month < 1 || month > 12 || day < 1 || day > daysIn(year, month) {
		return time.Time{}, false
	}
	var hour, minute, sec, ticks int64
	loc := time.UTC
	if rest != "" {
		if rest[0] != 'T' && rest[0] != ' ' {
			return time.Time{}, false
		}
		rest = strings.TrimLeft(rest[1:], " ")
		// zone suffix
		zoneOffset := 0
		switch {
		case strings.HasSuffix(rest, "Z") || strings.HasSuffix(rest, "z"):
			rest = rest[:len(rest)-1]
		default:
			if i := strings.LastIndexAny(rest, "+-"); i > 0 {
				z := rest[i+1:]
				hh, mm, ok := strings.Cut(z, ":")
				if !ok && len(z) == 4 {
					hh, mm = z[:2], z[2:]
				}
				h, ok1 := smallInt(hh, 14)
				m, ok2 := smallInt(mm, 59)
				if !ok1 || !ok2 {
					return time.Time{}, false
				}
				zoneOffset = int(h*3600 + m*60)
				if rest[i] == '-' {
					zoneOffset = -zoneOffset
				}
				rest = rest[:i]
			}
		}
		if zoneOffset != 0 {
			loc = time.FixedZone("", zoneOffset)
		}
		parts := strings.Split(rest, ":")
		if len(parts) < 2 || len(parts) > 3 {
			return time.Time{}, false
		}
		var ok1, ok2 bool
		hour, ok1 = smallInt(parts[0], 23)
		minute, ok2 = smallInt(parts[1], 59)
		if !ok1 || !ok2 {
			return time.Time{}, false
		}
		if len(parts) == 3 {
			s, frac, hasFrac := strings.Cut(parts[2], ".")
			var ok bool
			if sec, ok = smallInt(s, 59); !ok {
				return time.Time{}, false
			}
			if hasFrac {
				if ticks, ok = fractionTicks(frac); !ok {
					return time.Time{}, false
				}
			}
		}
	}
	t := time.Date(year, time.Month(month), day, int(hour), int(minute), int(sec), int(ticks*100), loc)
	return t.UTC(), true
}

func daysIn(year, month int) int {
	return time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// canonicalGUID validates a GUID (8-4-4-4-12 hex, or 32 hex digits) and
// returns it in canonical lower-case form.
func canonicalGUID(v string) (string, bool) {
	s := strings.ToLower(v)
	if len(s) == 32 {
		s = s[:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
	}
	if len(s) != 36 {
		return "", false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return "", false
			}
			continue
		}
		if !isDigit(c) && (c < 'a' || c > 'f') {
			return "", false
		}
	}
	return s, true
}

// ---------------------------------------------------------------------------
// dynamic literals

// parseDynamic parses "dynamic(value)" where value is JSON extended with
// Kusto literals (single-quoted strings, datetime(...), timespans, guids).
// The literal's Str is compact JSON.
func (p *parser) parseDynamic() Expr {
	start := p.next() // dynamic
	p.expect("(")
	lit := &Literal{Pos: start.Pos, Type: store.TypeDynamic}
	if p.atWord("null") && p.peek(1).is(")") {
		p.next()
		lit.Null, lit.Str = true, "null"
	} else {
		saved := p.sawObfuscated
		p.sawObfuscated = false
		var b strings.Builder
		p.dynamicValue(&b)
		lit.Str = b.String()
		lit.Obfuscated = p.sawObfuscated
		p.sawObfuscated = saved || p.sawObfuscated
	}
	end := p.expect(")")
	if p.err == nil {
		lit.Raw = p.lx.src[start.Pos.Offset:end.End]
		if lit.Obfuscated {
			lit.Raw = "dynamic(" + redactedString + ")"
		}
	}
	return lit
}

func writeJSONString(b *strings.Builder, s string) {
	enc, _ := json.Marshal(s) // a string always marshals
	b.Write(enc)
}

func (p *parser) dynamicValue(b *strings.Builder) {
	if !p.enter() {
		return
	}
	defer p.leave()
	t := p.tok()
	switch {
	case t.is("{"):
		p.next()
		b.WriteByte('{')
		first := true
		for !p.at("}") && p.tok().Kind != TokEOF {
			if !first {
				b.WriteByte(',')
			}
			first = false
			k := p.tok()
			switch k.Kind {
			case TokString:
				p.next()
				writeJSONString(b, k.Value)
			case TokIdent:
				p.next()
				writeJSONString(b, k.Text)
			default:
				p.expected("a property name")
				return
			}
			p.expect(":")
			b.WriteByte(':')
			p.dynamicValue(b)
			if !p.accept(",") {
				break
			}
		}
		p.expect("}")
		b.WriteByte('}')
	case t.is("["):
		p.next()
		b.WriteByte('[')
		first := true
		for !p.at("]") && p.tok().Kind != TokEOF {
			if !first {
				b.WriteByte(',')
			}
			first = false
			p.dynamicValue(b)
			if !p.accept(",") {
				break
			}
		}
		p.expect("]")
		b.WriteByte(']')
	case t.Kind == TokString:
		lit := p.parseStringLiteral()
		writeJSONString(b, lit.Str)
	case t.Kind == TokLong || t.Kind == TokReal || t.Kind == TokTimespan || t.is("-") || t.is("+"):
		x := p.parseUnary()
		lit, ok := x.(*Literal)
		if !ok {
			p.failAt(t, "expected a literal value in dynamic()")
			return
		}
		writeDynamicScalar(b, lit)
	case t.Kind == TokTyped:
		p.next()
		lit, msg := typedLiteral(t)
		if msg != "" {
			p.failAt(t, msg)
			return
		}
		writeDynamicScalar(b, lit)
	case t.Kind == TokIdent && (t.Text == "null" || isBoolWord(t.Text)):
		p.next()
		if t.Text == "null" {
			b.WriteString("null")
		} else {
			b.WriteString(strconv.FormatBool(strings.EqualFold(t.Text, "true")))
		}
	default:
		p.expected("a dynamic value")
	}
}

// writeDynamicScalar writes a scalar literal as the JSON value Kusto stores
// in a dynamic: numbers as numbers, datetimes, timespans and guids as strings.
func writeDynamicScalar(b *strings.Builder, lit *Literal) {
	if lit.Null {
		b.WriteString("null")
		return
	}
	switch lit.Type {
	case store.TypeBool:
		b.WriteString(strconv.FormatBool(lit.Bool))
	case store.TypeInt, store.TypeLong:
		b.WriteString(strconv.FormatInt(lit.Int, 10))
	case store.TypeReal, store.TypeDecimal:
		if math.IsNaN(lit.Real) || math.IsInf(lit.Real, 0) {
			writeJSONString(b, strconv.FormatFloat(lit.Real, 'g', -1, 64))
			return
		}
		b.WriteString(strconv.FormatFloat(lit.Real, 'g', -1, 64))
	case store.TypeDatetime:
		writeJSONString(b, formatDatetimeLit(lit.Int))
	case store.TypeTimespan:
		writeJSONString(b, FormatTimespan(lit.Int))
	default:
		writeJSONString(b, lit.Str)
	}
}

// formatDatetimeLit renders ticks since the Unix epoch as Kusto does:
// 2024-01-01T10:00:00.1234567Z (always seven fraction digits).
func formatDatetimeLit(ticks int64) string {
	t := store.TimeFromTicks(ticks)
	frac := (ticks%store.TicksPerSecond + store.TicksPerSecond) % store.TicksPerSecond
	return fmt.Sprintf("%s.%07dZ", t.Format("2006-01-02T15:04:05"), frac)
}
