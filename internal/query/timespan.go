package query

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"custos/internal/store"
)

// ParseTimespan parses the timespan of a query request relative to now:
//   - an ISO 8601 duration ("PT1H", "P1D", "P1DT2H", "P2W", "PT0.5S"): the
//     range [now-duration, now);
//   - an interval "start/end" with RFC 3339 or ISO 8601 date-times (a bare
//     date is midnight UTC): [start, end);
//   - "start/duration" or "duration/end".
//
// An empty string is all time. Years count 365 days and months 30 days, as
// .NET's XmlConvert does for durations.
func ParseTimespan(s string, now time.Time) (store.TimeRange, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return store.AllTime, nil
	}
	if a, b, ok := strings.Cut(s, "/"); ok {
		a, b = strings.TrimSpace(a), strings.TrimSpace(b)
		var from, to int64
		var err error
		switch {
		case isDuration(a) && isDuration(b):
			return store.TimeRange{}, fmt.Errorf("timespan %q: an interval needs at least one date-time", s)
		case isDuration(a):
			var d int64
			if d, err = ParseDuration(a); err != nil {
				return store.TimeRange{}, err
			}
			if to, err = parseInstant(b); err != nil {
				return store.TimeRange{}, err
			}
			from = to - d
		case isDuration(b):
			var d int64
			if d, err = ParseDuration(b); err != nil {
				return store.TimeRange{}, err
			}
			if from, err = parseInstant(a); err != nil {
				return store.TimeRange{}, err
			}
			to = from + d
		default:
			if from, err = parseInstant(a); err != nil {
				return store.TimeRange{}, err
			}
			if to, err = parseInstant(b); err != nil {
				return store.TimeRange{}, err
			}
		}
		if to < from {
			return store.TimeRange{}, fmt.Errorf("timespan %q: the end is before the start", s)
		}
		return store.TimeRange{From: from, To: to}, nil
	}
	d, err := ParseDuration(s)
	if err != nil {
		return store.TimeRange{}, err
	}
	if d < 0 {
		return store.TimeRange{}, fmt.Errorf("timespan %q: a duration must not be negative", s)
	}
	n := store.TicksFromTime(now)
	return store.TimeRange{From: n - d, To: n}, nil
}

func isDuration(s string) bool {
	return strings.HasPrefix(s, "P") || strings.HasPrefix(s, "p") || strings.HasPrefix(s, "-P")
}

var instantLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05Z0700",
	"2006-01-02T15:04:05",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04",
	"2006-01-02",
}

func parseInstant(s string) (int64, error) {
	for _, l := range instantLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return store.TicksFromTime(t), nil
		}
	}
	return 0, fmt.Errorf("timespan: %q is not an ISO 8601 date-time", s)
}

// ParseDuration parses an ISO 8601 duration into ticks. The last component
// may have a fraction ("PT1.5H", "PT0.25S").
func ParseDuration(s string) (int64, error) {
	orig := s
	bad := func(why string) (int64, error) {
		return 0, fmt.Errorf("timespan: %q is not an ISO 8601 duration: %s", orig, why)
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	if len(s) < 2 || (s[0] != 'P' && s[0] != 'p') {
		return bad("it must start with P")
	}
	s = s[1:]
	var total float64
	inTime, seen, fracSeen := false, false, false
	lastRank := -1
	for len(s) > 0 {
		if s[0] == 'T' || s[0] == 't' {
			if inTime {
				return bad("T appears twice")
			}
			inTime = true
			s = s[1:]
			if len(s) == 0 {
				return bad("nothing after T")
			}
			continue
		}
		i := 0
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.' || s[i] == ',') {
			i++
		}
		if i == 0 || i == len(s) {
			return bad("expected a number followed by a unit")
		}
		if fracSeen {
			return bad("only the last component may have a fraction")
		}
		num := strings.ReplaceAll(s[:i], ",", ".")
		fracSeen = strings.Contains(num, ".")
		n, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return bad("bad number")
		}
		var unit float64
		var rank int
		switch u := s[i] | 0x20; {
		case !inTime && u == 'y':
			unit, rank = 365*store.TicksPerDay, 0
		case !inTime && u == 'm':
			unit, rank = 30*store.TicksPerDay, 1
		case !inTime && u == 'w':
			unit, rank = 7*store.TicksPerDay, 2
		case !inTime && u == 'd':
			unit, rank = store.TicksPerDay, 3
		case inTime && u == 'h':
			unit, rank = store.TicksPerHour, 4
		case inTime && u == 'm':
			unit, rank = store.TicksPerMinute, 5
		case inTime && u == 's':
			unit, rank = store.TicksPerSecond, 6
		default:
			return bad(fmt.Sprintf("unexpected unit %q", s[i]))
		}
		if rank <= lastRank {
			return bad("components out of order")
		}
		lastRank = rank
		total += n * unit
		seen = true
		s = s[i+1:]
	}
	if !seen {
		return bad("no components")
	}
	if total >= math.MaxInt64/4 {
		return bad("too long")
	}
	t := int64(math.Round(total))
	if neg {
		t = -t
	}
	return t, nil
}
