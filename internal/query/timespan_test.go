package query

import (
	"net/http"
	"testing"
	"time"

	"custos/internal/store"
)

func TestParseTimespan(t *testing.T) {
	now := time.Date(2024, 3, 10, 12, 0, 0, 0, time.UTC)
	n := store.TicksFromTime(now)
	at := func(s string) int64 { return ticks(s) }
	for _, tc := range []struct {
		in       string
		from, to int64
	}{
		{"PT1H", n - store.TicksPerHour, n},
		{"P1D", n - store.TicksPerDay, n},
		{"P1DT2H", n - store.TicksPerDay - 2*store.TicksPerHour, n},
		{"PT30M", n - 30*store.TicksPerMinute, n},
		{"PT0.5S", n - store.TicksPerSecond/2, n},
		{"PT1.5H", n - 90*store.TicksPerMinute, n},
		{"P2W", n - 14*store.TicksPerDay, n},
		{"P1Y", n - 365*store.TicksPerDay, n},
		{"p1dt1m", n - store.TicksPerDay - store.TicksPerMinute, n},
		{"2024-01-01T00:00:00Z/2024-01-02T00:00:00Z", at("2024-01-01T00:00:00Z"), at("2024-01-02T00:00:00Z")},
		{"2024-01-01/2024-01-02", at("2024-01-01T00:00:00Z"), at("2024-01-02T00:00:00Z")},
		{"2024-01-01T02:00:00+02:00/2024-01-01T01:00:00Z", at("2024-01-01T00:00:00Z"), at("2024-01-01T01:00:00Z")},
		{"2024-01-01T00:00:00.5Z/PT1H", at("2024-01-01T00:00:00.5Z"), at("2024-01-01T01:00:00.5Z")},
		{"PT1H/2024-01-01T01:00:00Z", at("2024-01-01T00:00:00Z"), at("2024-01-01T01:00:00Z")},
	} {
		got, err := ParseTimespan(tc.in, now)
		if err != nil {
			t.Errorf("ParseTimespan(%q): %v", tc.in, err)
			continue
		}
		if got.From != tc.from || got.To != tc.to {
			t.Errorf("ParseTimespan(%q) = [%s, %s); want [%s, %s)", tc.in,
				store.TimeFromTicks(got.From), store.TimeFromTicks(got.To), store.TimeFromTicks(tc.from), store.TimeFromTicks(tc.to))
		}
	}
	if got, err := ParseTimespan("", now); err != nil || got != store.AllTime {
		t.Errorf("ParseTimespan(\"\") = %v, %v; want AllTime", got, err)
	}
	for _, in := range []string{"1h", "P", "PT", "P1H", "PT1D", "P1DT", "PT1M1H", "PT1.5H30M", "P-1D", "2024-01-02/2024-01-01",
		"PT1H/PT2H", "yesterday/today", "2024-01-01/", "/PT1H", "-PT1H", "P1D1D", "PTXS"} {
		if r, err := ParseTimespan(in, now); err == nil {
			t.Errorf("ParseTimespan(%q) = %v; want an error", in, r)
		}
	}
}

func TestParsePrefer(t *testing.T) {
	h := http.Header{}
	if p := ParsePrefer(h); p.Wait != DefaultWait || p.IncludeRender || p.IncludeStatistics {
		t.Errorf("ParsePrefer(none) = %+v", p)
	}
	h.Add("Prefer", "include-statistics=true,include-render=true")
	h.Add("Prefer", " wait=60 ")
	p := ParsePrefer(h)
	if p.Wait != 60*time.Second || !p.IncludeRender || !p.IncludeStatistics {
		t.Errorf("ParsePrefer = %+v", p)
	}
	h = http.Header{"Prefer": {"wait=100000, Include-Statistics=TRUE, include-render=false, wait=abc"}}
	p = ParsePrefer(h)
	if p.Wait != MaxWait || !p.IncludeStatistics || p.IncludeRender {
		t.Errorf("ParsePrefer = %+v", p)
	}
	if p := ParsePrefer(http.Header{"Prefer": {"wait=0"}}); p.Wait != DefaultWait {
		t.Errorf("wait=0 gives %v; want the default", p.Wait)
	}
}

var testNow = time.Date(2024, 3, 10, 12, 0, 0, 0, time.UTC)

func FuzzParseTimespan(f *testing.F) {
	for _, s := range []string{"PT1H", "P1DT2H", "2024-01-01/2024-01-02", "2024-01-01T00:00:00Z/PT1H", "PT1H/2024-01-01", "P1.5D", "-PT1H", "P9999999999999Y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseTimespan(s, testNow)
		if err == nil && r.To < r.From {
			t.Fatalf("ParseTimespan(%q) = %v: end before start", s, r)
		}
	})
}
