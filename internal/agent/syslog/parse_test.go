package syslog

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Message
	}{
		{ // RFC 5424 §6.5 example 1
			`<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - BOM'su root' failed for lonvick on /dev/pts/8`,
			Message{Format: RFC5424, Facility: 4, Severity: 2, Time: time.Date(2003, 10, 11, 22, 14, 15, 3e6, time.UTC),
				Hostname: "mymachine.example.com", AppName: "su", MsgID: "ID47", Text: "BOM'su root' failed for lonvick on /dev/pts/8"},
		},
		{ // structured data with escapes, no MSG
			`<165>1 2003-10-11T22:14:15.003000-07:00 host app 1234 ID47 [exampleSDID@32473 iut="3" eventSource="Appl\"ication\]"][b@1 x="y"]`,
			Message{Format: RFC5424, Facility: 20, Severity: 5, Time: time.Date(2003, 10, 11, 22, 14, 15, 3e6, time.FixedZone("", -7*3600)),
				Hostname: "host", AppName: "app", ProcID: "1234", MsgID: "ID47",
				StructuredData: `[exampleSDID@32473 iut="3" eventSource="Appl\"ication\]"][b@1 x="y"]`},
		},
		{ // NILVALUE timestamp and a BOM
			"<14>1 - - - - - - \xef\xbb\xbfhello",
			Message{Format: RFC5424, Facility: 1, Severity: 6, Text: "hello"},
		},
		{ // RFC 3164 as logger --rfc3164 sends it
			`<13>Mar  9 22:14:15 web-1 myapp[4242]: disk almost full`,
			Message{Format: RFC3164, Facility: 1, Severity: 5, Time: time.Date(2025, 3, 9, 22, 14, 15, 0, time.UTC),
				Hostname: "web-1", AppName: "myapp", ProcID: "4242", Text: "disk almost full"},
		},
		{ // December message received in January belongs to last year
			`<86>Dec 31 23:59:59 host sshd: Accepted publickey`,
			Message{Format: RFC3164, Facility: 10, Severity: 6, Time: time.Date(2024, 12, 31, 23, 59, 59, 0, time.UTC),
				Hostname: "host", AppName: "sshd", Text: "Accepted publickey"},
		},
		{ // local socket style: no hostname
			`<30>Mar 10 11:59:00 systemd[1]: Started foo.service.`,
			Message{Format: RFC3164, Facility: 3, Severity: 6, Time: time.Date(2025, 3, 10, 11, 59, 0, 0, time.UTC),
				AppName: "systemd", ProcID: "1", Text: "Started foo.service."},
		},
		{ // rsyslog RSYSLOG_ForwardFormat
			`<78>2025-03-10T11:00:00.123456+01:00 db-2 CRON[77]: (root) CMD (run-parts)`,
			Message{Format: RFC3164, Facility: 9, Severity: 6, Time: time.Date(2025, 3, 10, 11, 0, 0, 123456000, time.FixedZone("", 3600)),
				Hostname: "db-2", AppName: "CRON", ProcID: "77", Text: "(root) CMD (run-parts)"},
		},
		{ // no PRI at all: user.notice, everything is text
			`just some text`,
			Message{Format: RFC3164, Facility: 1, Severity: 5, Text: "just some text"},
		},
		{ // bad PRI is text
			`<999>hello`,
			Message{Format: RFC3164, Facility: 1, Severity: 5, Text: "<999>hello"},
		},
		{ // version 1 but broken header falls back to 3164
			`<13>1 notatime host app - - - msg`,
			Message{Format: RFC3164, Facility: 1, Severity: 5, Text: "1 notatime host app - - - msg"},
		},
		{ // invalid UTF-8 is replaced
			"<13>Mar 10 11:00:00 h t: a\xffb",
			Message{Format: RFC3164, Facility: 1, Severity: 5, Time: time.Date(2025, 3, 10, 11, 0, 0, 0, time.UTC),
				Hostname: "h", AppName: "t", Text: "a\uFFFDb"},
		},
	}
	for _, tt := range tests {
		got, err := Parse([]byte(tt.in), now, time.UTC)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if !got.Time.Equal(tt.want.Time) {
			t.Errorf("Parse(%q).Time = %v; want %v", tt.in, got.Time, tt.want.Time)
		}
		got.Time, tt.want.Time = time.Time{}, time.Time{}
		if got != tt.want {
			t.Errorf("Parse(%q)\n got %+v\nwant %+v", tt.in, got, tt.want)
		}
	}
	if _, err := Parse([]byte("\r\n"), now, time.UTC); !errors.Is(err, ErrEmpty) {
		t.Errorf("empty: %v", err)
	}
}

func TestFilter(t *testing.T) {
	f, err := NewFilter([]string{"auth", "Local7", "cron"}, []string{"Warning", "Error", "Critical", "Alert", "Emergency"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		fac, sev int
		want     bool
	}{{4, 4, true}, {4, 5, false}, {23, 0, true}, {9, 3, true}, {1, 0, false}, {24, 0, false}, {4, -1, false}} {
		if got := f.Match(tt.fac, tt.sev); got != tt.want {
			t.Errorf("Match(%d,%d) = %v; want %v", tt.fac, tt.sev, got, tt.want)
		}
	}
	all, _ := NewFilter([]string{"*"}, []string{"*"})
	if !all.Match(0, 7) || !all.Match(23, 0) {
		t.Error("* should match everything")
	}
	if _, err := NewFilter([]string{"nope"}, nil); err == nil {
		t.Error("unknown facility accepted")
	}
	if _, err := NewFilter(nil, []string{"loud"}); err == nil {
		t.Error("unknown level accepted")
	}
	if FacilityName(10) != "authpriv" || SeverityName(3) != "err" || FacilityName(99) != "" {
		t.Error("names")
	}
}

func TestFramer(t *testing.T) {
	in := "12 <13>1 - - -\n<14>Mar 10 11:00:00 h t: lf framed\n\n5 <1>ab" + "<15>last without newline"
	f := NewFramer(strings.NewReader(in), 0)
	var got []string
	for {
		b, err := f.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(b))
	}
	want := []string{"<13>1 - - -\n", "<14>Mar 10 11:00:00 h t: lf framed", "<1>ab", "<15>last without newline"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	f = NewFramer(strings.NewReader("999999 x"), 100)
	if _, err := f.Next(); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversized frame: %v", err)
	}
	long := "<13>" + strings.Repeat("a", 500) + "\nnext\n"
	f = NewFramer(strings.NewReader(long), 100)
	b, _ := f.Next()
	if len(b) != 100 {
		t.Fatalf("long line cut to %d; want 100", len(b))
	}
	if b, _ := f.Next(); string(b) != "next" {
		t.Fatalf("after long line got %q", b)
	}
}

func TestFormat5424RoundTrip(t *testing.T) {
	m := Message{Format: RFC5424, Facility: 16, Severity: 3, Time: time.Date(2025, 1, 2, 3, 4, 5, 678000, time.UTC),
		Hostname: "h", AppName: "a", ProcID: "9", MsgID: "M", StructuredData: `[x@1 k="v"]`, Text: "hello world"}
	got, err := Parse(Format5424(m), now, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Time.Equal(m.Time) {
		t.Fatalf("time %v; want %v", got.Time, m.Time)
	}
	got.Time, m.Time = time.Time{}, time.Time{}
	if got != m {
		t.Fatalf("got %+v\nwant %+v", got, m)
	}
	if n, ok := got.ProcessID(); !ok || n != 9 {
		t.Fatalf("ProcessID = %d, %v", n, ok)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - BOM'su root' failed`,
		`<165>1 2003-10-11T22:14:15.003000-07:00 host app 1234 ID47 [a@1 k="v\"]"] msg`,
		`<13>Mar  9 22:14:15 web-1 myapp[4242]: disk almost full`,
		`<78>2025-03-10T11:00:00.123456+01:00 db-2 CRON[77]: (root) CMD`,
		`<30>Mar 10 11:59:00 systemd[1]: Started`,
		`<0>`, `<191>1 - - - - - -`, `[`, "<13>1 - - - - - [", "\xff\xfe",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b, now, time.UTC)
		if err != nil {
			if !errors.Is(err, ErrEmpty) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if m.Facility < 0 || m.Facility > 23 || m.Severity < 0 || m.Severity > 7 {
			t.Fatalf("facility %d severity %d out of range", m.Facility, m.Severity)
		}
		if len(m.Text) > 3*MaxMessageBytes || len(m.Hostname) > maxHostname || len(m.ProcID) > 3*maxProcID {
			t.Fatal("field over its bound")
		}
		if m.Format == RFC5424 {
			// Round trip: what parsed as RFC 5424 formats back to the same message.
			again, err := Parse(Format5424(m), now, time.UTC)
			if err != nil || again.Format != RFC5424 {
				t.Fatalf("re-parse of %q: %v %v", Format5424(m), again.Format, err)
			}
			if !again.Time.Equal(m.Time) && !(m.Time.Nanosecond()%1000 != 0) {
				t.Fatalf("time %v != %v", again.Time, m.Time)
			}
			again.Time, m.Time = time.Time{}, time.Time{}
			if again.Text != m.Text && !bytes.HasPrefix([]byte(m.Text), []byte("\xef\xbb\xbf")) {
				t.Fatalf("text %q != %q", again.Text, m.Text)
			}
		}
	})
}

func FuzzFramer(f *testing.F) {
	f.Add([]byte("12 <13>1 - - -\n<14>lf\n"))
	f.Add([]byte("99999999999999 x"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr := NewFramer(bytes.NewReader(b), 1024)
		for range len(b) + 1 {
			m, err := fr.Next()
			if err != nil {
				return
			}
			if len(m) > 1024 {
				t.Fatalf("frame of %d bytes", len(m))
			}
		}
	})
}
