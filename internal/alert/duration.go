package alert

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// maxISODuration bounds parsed durations (Azure's longest alert durations
// are days).
const maxISODuration = 366 * 24 * time.Hour

// ParseISODuration parses the ISO 8601 durations Azure uses for alert rules:
// "P[nW|nD][T[nH][nM][nS]]" with whole numbers ("PT5M", "P1D", "PT1H30M").
// Years and months are refused: their length varies.
func ParseISODuration(s string) (time.Duration, error) {
	if len(s) < 3 || len(s) > 32 || (s[0] != 'P' && s[0] != 'p') {
		return 0, fmt.Errorf("%q is not an ISO 8601 duration such as PT5M", truncate(s, 40))
	}
	rest := strings.ToUpper(s[1:])
	var total time.Duration
	inTime := false
	seen := ""
	for rest != "" {
		if rest[0] == 'T' {
			if inTime {
				return 0, fmt.Errorf("%q is not an ISO 8601 duration: T appears twice", s)
			}
			inTime = true
			rest = rest[1:]
			if rest == "" {
				return 0, fmt.Errorf("%q is not an ISO 8601 duration: nothing after T", s)
			}
			continue
		}
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i == len(rest) || i > 9 {
			return 0, fmt.Errorf("%q is not an ISO 8601 duration such as PT5M", truncate(s, 40))
		}
		n, _ := strconv.Atoi(rest[:i])
		unit := rest[i]
		rest = rest[i+1:]
		var d time.Duration
		switch {
		case !inTime && unit == 'W':
			d = 7 * 24 * time.Hour
		case !inTime && unit == 'D':
			d = 24 * time.Hour
		case inTime && unit == 'H':
			d = time.Hour
		case inTime && unit == 'M':
			d = time.Minute
		case inTime && unit == 'S':
			d = time.Second
		default:
			return 0, fmt.Errorf("%q is not a supported ISO 8601 duration (use days, hours, minutes or seconds)", truncate(s, 40))
		}
		tag := string(unit)
		if inTime {
			tag = "T" + tag
		}
		if strings.Contains(seen, "|"+tag+"|") {
			return 0, fmt.Errorf("%q is not an ISO 8601 duration: %s appears twice", s, tag)
		}
		seen += "|" + tag + "|"
		// Compare before multiplying: nine digits of days overflow int64
		// nanoseconds (and used to wrap to a negative duration).
		if time.Duration(n) > (maxISODuration-total)/d {
			return 0, fmt.Errorf("%q is longer than %d days", truncate(s, 40), int(maxISODuration/(24*time.Hour)))
		}
		total += time.Duration(n) * d
		if total > maxISODuration {
			return 0, fmt.Errorf("%q is longer than %d days", truncate(s, 40), int(maxISODuration/(24*time.Hour)))
		}
	}
	return total, nil
}

// FormatISODuration renders d as Azure does: "PT5M", "PT1H", "P1D", "PT1H30M".
func FormatISODuration(d time.Duration) string {
	if d <= 0 {
		return "PT0S"
	}
	var b strings.Builder
	b.WriteByte('P')
	if days := d / (24 * time.Hour); days > 0 {
		fmt.Fprintf(&b, "%dD", days)
		d -= days * 24 * time.Hour
	}
	if d > 0 {
		b.WriteByte('T')
		if h := d / time.Hour; h > 0 {
			fmt.Fprintf(&b, "%dH", h)
			d -= h * time.Hour
		}
		if m := d / time.Minute; m > 0 {
			fmt.Fprintf(&b, "%dM", m)
			d -= m * time.Minute
		}
		if s := d / time.Second; s > 0 {
			fmt.Fprintf(&b, "%dS", s)
		}
	}
	return b.String()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
