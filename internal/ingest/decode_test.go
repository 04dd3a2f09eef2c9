package ingest

import (
	"errors"
	"math"
	"strings"
	"testing"

	"custos/internal/api"
	"custos/internal/store"
)

var testSchema = store.Schema{
	{Name: "TimeGenerated", Type: store.TypeDatetime},
	{Name: "Computer", Type: store.TypeString},
	{Name: "Count", Type: store.TypeLong},
	{Name: "Small", Type: store.TypeInt},
	{Name: "Ratio", Type: store.TypeReal},
	{Name: "Ok", Type: store.TypeBool},
	{Name: "Props", Type: store.TypeDynamic},
	{Name: "Id", Type: store.TypeGUID},
	{Name: "Took", Type: store.TypeTimespan},
}

func decode(t *testing.T, body string) *store.Batch {
	t.Helper()
	b, err := DecodeRecords(strings.NewReader(body), testSchema, DecodeOptions{})
	if err != nil {
		t.Fatalf("DecodeRecords(%s): %v", body, err)
	}
	return b
}

func TestDecodeRecordsTypes(t *testing.T) {
	b := decode(t, `[
	 {"TimeGenerated":"2024-01-02T03:04:05.1234567Z","Computer":"web-1","Count":"42","Small":7,"Ratio":"1.5","Ok":"true",
	  "Props":{"a":[1, 2], "b":"x"},"Id":"{0F8FAD5B-D9CB-469F-A165-70867728950E}","Took":"1.02:03:04.5","Ignored":{"deep":[1]}},
	 {"computer": 12, "count": 1e3, "Ratio": 2, "Ok": false, "Props": "text", "Took": 10},
	 {}
	]`)
	if b.Len != 3 {
		t.Fatalf("Len = %d; want 3", b.Len)
	}
	ts := b.Col("TimeGenerated")
	if got, want := store.TimeFromTicks(ts.Int[0]).Format("2006-01-02T15:04:05.0000000Z"), "2024-01-02T03:04:05.1234567Z"; got != want {
		t.Errorf("TimeGenerated = %s; want %s", got, want)
	}
	if !ts.IsNull(1) || !ts.IsNull(2) || ts.IsNull(0) {
		t.Errorf("TimeGenerated nulls = %v; want [false true true]", ts.Nulls)
	}
	if got := b.Col("Computer").Str; got[0] != "web-1" || got[1] != "12" || got[2] != "" {
		t.Errorf("Computer = %q", got)
	}
	if got := b.Col("Count").Int; got[0] != 42 || got[1] != 1000 {
		t.Errorf("Count = %v", got)
	}
	if got := b.Col("Small"); got.Int[0] != 7 || !got.IsNull(1) {
		t.Errorf("Small = %v %v", got.Int, got.Nulls)
	}
	if got := b.Col("Ratio").Real; got[0] != 1.5 || got[1] != 2 {
		t.Errorf("Ratio = %v", got)
	}
	if got := b.Col("Ok"); !got.Bool[0] || got.Bool[1] || got.IsNull(1) || !got.IsNull(2) {
		t.Errorf("Ok = %v %v", got.Bool, got.Nulls)
	}
	if got := b.Col("Props").Str; got[0] != `{"a":[1,2],"b":"x"}` || got[1] != `"text"` {
		t.Errorf("Props = %q", got)
	}
	if got := b.Col("Id").Str[0]; got != "0f8fad5b-d9cb-469f-a165-70867728950e" {
		t.Errorf("Id = %q", got)
	}
	took := b.Col("Took").Int
	if want := int64(store.TicksPerDay + 2*store.TicksPerHour + 3*store.TicksPerMinute + 4*store.TicksPerSecond + 5*store.TicksPerSecond/10); took[0] != want || took[1] != 10 {
		t.Errorf("Took = %v; want [%d 10 ...]", took, want)
	}
	for i, c := range b.Cols {
		if c.Len() != 3 || (c.Nulls != nil && len(c.Nulls) != 3) {
			t.Errorf("column %s: len %d nulls %d; want 3", b.Schema[i].Name, c.Len(), len(c.Nulls))
		}
	}
}

func TestDecodeRecordsDuplicateKeyLastWins(t *testing.T) {
	b := decode(t, `[{"Count":1,"Count":null},{"Count":2,"count":3}]`)
	c := b.Col("Count")
	if !c.IsNull(0) || c.Int[1] != 3 || len(c.Int) != 2 {
		t.Errorf("Count = %v %v; want [null 3]", c.Int, c.Nulls)
	}
}

func TestDecodeRecordsTruncatesLongFields(t *testing.T) {
	long := strings.Repeat("é", 40_000) // 80,000 bytes
	b, err := DecodeRecords(strings.NewReader(`[{"Computer":"`+long+`","Props":["`+long+`"]}]`), testSchema, DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(b.Col("Computer").Str[0]); got != DefaultMaxFieldBytes {
		t.Errorf("len(Computer) = %d; want %d", got, DefaultMaxFieldBytes)
	}
	if got := b.Col("Props").Str[0]; len(got) > DefaultMaxFieldBytes+16 || !strings.HasPrefix(got, `"[\"`) {
		t.Errorf("Props has %d bytes, prefix %q; want a truncated dynamic string", len(got), got[:8])
	}
}

func TestDecodeRecordsErrors(t *testing.T) {
	for _, tc := range []struct {
		body, want string
	}{
		{`{"Computer":"x"}`, "must be a JSON array"},
		{`"text"`, "must be a JSON array"},
		{``, "unexpected end of input"},
		{`[{"Computer":"x"}`, "unexpected end of input"},
		{`[{"Computer":"x"},]`, "invalid character"},
		{`[1]`, "Record 0 is not a JSON object"},
		{`[{}, [1]]`, "Record 1 is not a JSON object"},
		{`[{}, {"Count":"abc"}]`, "Record 1, column 'Count': cannot convert \"abc\" to long"},
		{`[{"Count":1.5}]`, "Record 0, column 'Count'"},
		{`[{"Small":3000000000}]`, "out of range for int"},
		{`[{"TimeGenerated":"yesterday"}]`, "Record 0, column 'TimeGenerated'"},
		{`[{"TimeGenerated":12}]`, "ISO 8601"},
		{`[{"Ok":"maybe"}]`, "column 'Ok'"},
		{`[{"Id":"not-a-guid"}]`, "column 'Id'"},
		{`[{"Ratio":[1]}]`, "column 'Ratio'"},
		{`[] []`, "data after the JSON array"},
		{`[{"Computer" "x"}]`, "expected colon"},
	} {
		_, err := DecodeRecords(strings.NewReader(tc.body), testSchema, DecodeOptions{})
		var ie *Error
		if !errors.As(err, &ie) || ie.Kind != api.KindInvalid || ie.Code != codeInvalidContent {
			t.Errorf("DecodeRecords(%q) = %v; want an InvalidRequestContent *Error", tc.body, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("DecodeRecords(%q) = %q; want it to contain %q", tc.body, err, tc.want)
		}
	}
}

func TestParseDatetime(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"2024-01-02T03:04:05Z", "2024-01-02T03:04:05Z"},
		{"2024-01-02T03:04:05.123456789Z", "2024-01-02T03:04:05.1234567Z"},
		{"2024-01-02T05:04:05+02:00", "2024-01-02T03:04:05Z"},
		{"2024-01-02T05:04:05+0200", "2024-01-02T03:04:05Z"},
		{"2024-01-02T03:04:05", "2024-01-02T03:04:05Z"},
		{"2024-01-02 03:04:05", "2024-01-02T03:04:05Z"},
		{"2024-01-02T03:04", "2024-01-02T03:04:00Z"},
		{"2024-01-02", "2024-01-02T00:00:00Z"},
		{"0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"},
	} {
		ticks, err := ParseDatetime(tc.in)
		if err != nil {
			t.Errorf("ParseDatetime(%q): %v", tc.in, err)
			continue
		}
		if got := store.TimeFromTicks(ticks).Format("2006-01-02T15:04:05.9999999Z"); got != tc.want {
			t.Errorf("ParseDatetime(%q) = %s; want %s", tc.in, got, tc.want)
		}
	}
	for _, in := range []string{"", "2024", "2024-13-01", "01/02/2024", "2024-01-02T25:00:00Z", "tomorrow"} {
		if _, err := ParseDatetime(in); err == nil {
			t.Errorf("ParseDatetime(%q) succeeded; want an error", in)
		}
	}
}

func TestTimespanRoundTrip(t *testing.T) {
	for _, s := range []string{"00:00:00", "00:00:01.5000000", "1.00:00:00", "-2.03:04:05.0000001", "10675199.02:48:05.4775807"} {
		ticks, err := ParseTimespan(s)
		if err != nil {
			t.Errorf("ParseTimespan(%q): %v", s, err)
			continue
		}
		if got := formatTimespan(ticks); got != s {
			t.Errorf("formatTimespan(ParseTimespan(%q)) = %q", s, got)
		}
	}
	for _, s := range []string{"", "1:2", "24:00:00", "00:60:00", "1.2.3", "00:00:00.12345678", "x"} {
		if _, err := ParseTimespan(s); err == nil {
			t.Errorf("ParseTimespan(%q) succeeded; want an error", s)
		}
	}
	if got := formatTimespan(math.MinInt64 + 1); !strings.HasPrefix(got, "-10675199.") {
		t.Errorf("formatTimespan(min) = %q", got)
	}
}

func FuzzDecodeRecords(f *testing.F) {
	for _, s := range []string{
		`[]`, `[{}]`, `[{"TimeGenerated":"2024-01-02T03:04:05Z","Computer":"a","Count":1,"Props":{"x":[1,{"y":null}]}}]`,
		`[{"Count":"12","Ratio":"NaN","Ok":1,"Id":"0f8fad5bd9cb469fa16570867728950e","Took":"1.00:00:00"}]`,
		`[{"Count":1,"Count":2}]`, `[1,2]`, `{"a":1}`, `[{"Computer":"\u00e9\ud83d\ude00"}]`, `[[`, `[{"a":`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := DecodeRecords(strings.NewReader(string(body)), testSchema, DecodeOptions{MaxFieldBytes: 64})
		if err != nil {
			var ie *Error
			if !errors.As(err, &ie) || ie.Kind != api.KindInvalid {
				t.Fatalf("error %v is not a client error", err)
			}
			return
		}
		for i, c := range b.Cols {
			if c.Len() != b.Len || (c.Nulls != nil && len(c.Nulls) != b.Len) {
				t.Fatalf("column %s: %d values, %d nulls; want %d", b.Schema[i].Name, c.Len(), len(c.Nulls), b.Len)
			}
			if c.Type == store.TypeString || c.Type == store.TypeDynamic {
				for _, s := range c.Str {
					if len(s) > 6*64+2 {
						t.Fatalf("column %s: value of %d bytes exceeds the field limit", b.Schema[i].Name, len(s))
					}
				}
			}
		}
	})
}

// FuzzParseRFC3339Ticks checks the datetime fast path against ParseDatetime:
// whenever it accepts, ParseDatetime gives the same ticks.
func FuzzParseRFC3339Ticks(f *testing.F) {
	for _, s := range []string{
		"2024-01-02T03:04:05Z", "2024-01-02T03:04:05.1234567Z", "2024-01-02T03:04:05.123456789123Z", "2024-02-29T00:00:00Z",
		"2023-02-29T00:00:00Z", "2024-01-02T03:04:05+01:30", "2024-01-02T03:04:05-23:59", "0000-01-01T00:00:00Z",
		"0001-01-01T00:00:00+00:01", "9999-12-31T23:59:59.9999999Z", "9999-12-31T23:59:59-01:00", "2024-01-02T03:04:05,5Z",
		"2024-01-02T24:00:00Z", "2024-01-02T03:04:05.Z", "1900-02-29T00:00:00Z", "2000-02-29T00:00:00Z",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseRFC3339Ticks([]byte(s))
		if !ok {
			return
		}
		want, err := ParseDatetime(s)
		if err != nil || got != want {
			t.Fatalf("parseRFC3339Ticks(%q) = %d; ParseDatetime = %d, %v", s, got, want, err)
		}
	})
}
