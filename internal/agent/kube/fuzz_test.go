package kube

import (
	"net/http"
	"testing"
	"time"
)

func FuzzParseCRI(f *testing.F) {
	for _, s := range []string{"2024-05-01T10:00:00.123456789Z stdout F hello\n", "2024-05-01T10:00:00Z stderr P x", "2024-05-01T10:00:00Z stdout F", "x", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseCRI(b)
		if err == nil && (l.Stream != "stdout" && l.Stream != "stderr" || len(l.Message) > len(b)) {
			t.Fatalf("accepted %q as %+v", b, l)
		}
		c, _ := NewLogCollector(LogOptions{Computer: "n", MaxLogBytes: 64})
		for i := 0; i < 3; i++ {
			rows, _ := c.Add("/var/log/pods/a_b_c/d/0.log", b)
			for _, r := range rows {
				if len(r.LogMessage) == 0 {
					t.Fatal("empty LogMessage")
				}
			}
		}
	})
}

func FuzzParseDocker(f *testing.F) {
	for _, s := range []string{`{"log":"hi\n","stream":"stdout","time":"2024-05-01T10:00:00Z"}`, `{"log":"part","stream":"stderr","time":"2024-05-01T10:00:00Z"}`, `{`, `{"log":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseDocker(b)
		if err == nil && l.Stream != "stdout" && l.Stream != "stderr" {
			t.Fatalf("accepted %q as %+v", b, l)
		}
		a := NewAssembler(32)
		if err == nil {
			for i := 0; i < 4; i++ {
				if e, ok := a.Add(l); ok && len(e.Message) > 32 {
					t.Fatalf("entry over the limit: %d", len(e.Message))
				}
			}
		}
	})
}

func FuzzParseLogPath(f *testing.F) {
	f.Add("/var/log/pods/ns_pod_uid/c/0.log")
	f.Add("/var/log/containers/p_ns_c-abc.log")
	f.Fuzz(func(t *testing.T, p string) {
		r, err := ParseLogPath(p)
		if err == nil && (r.Namespace == "" || r.Pod == "" || r.Container == "") {
			t.Fatalf("accepted %q as %+v", p, r)
		}
	})
}

// FuzzParseExposition: a scraped body is untrusted; parsing never panics
// and never returns more than the sample limit.
func FuzzParseExposition(f *testing.F) {
	for _, s := range []string{"# TYPE m counter\nm{a=\"b\"} 1\n", "m 1 1700000000000\n", "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 3\nh_sum 4\nh_count 3\n", "m{ 1", "m NaN\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, _, err := ParseExposition(b, http.Header{}, time.Unix(0, 0), 100)
		if err == nil && len(v) > 100 {
			t.Fatalf("%d samples", len(v))
		}
		PrometheusRows(v, nil, "n", "r")
	})
}
