package engine

import (
	"testing"
	"time"

	"custos/internal/store"
)

// TestFormatLiterals: format_datetime and format_timespan share the format
// grammar (scanFormat): quoted text and backslash-escaped characters are
// literal, an unclosed quote runs to the end, other non-specifiers are copied.
func TestFormatLiterals(t *testing.T) {
	dt := store.TicksFromTime(time.Date(2024, 3, 4, 15, 6, 7, 120_000_000, time.UTC))
	ts := int64(1*store.TicksPerDay + 2*store.TicksPerHour + 3*store.TicksPerMinute + 4*store.TicksPerSecond + 5_000_000)
	for _, tc := range []struct{ got, want string }{
		{formatDatetime(dt, `yyyy-MM-dd 'at' HH:mm`), "2024-03-04 at 15:06"},
		{formatDatetime(dt, `"day" d, \h\h hh tt`), "day 4, hh 03 PM"},
		{formatDatetime(dt, `ss.fff 'open`), "07.120 open"},
		{formatDatetime(dt, `yy/M#`), "24/3#"},
		{formatTimespan(ts, `d'd 'hh\:mm\:ss`), "1d 02:03:04"},
		{formatTimespan(ts, `"ms": FFF, fff`), "ms: 5, 500"},
		{formatTimespan(-ts, `d.hh`), "-1.02"},
		{formatTimespan(ts, `ss\`), "04"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
