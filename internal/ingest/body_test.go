package ingest

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"custos/internal/api"
	"custos/internal/store"
)

func gz(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readAllBody(t *testing.T, body []byte, encoding string, chunked bool) ([]byte, error) {
	t.Helper()
	r := httptest.NewRequest("POST", "/x", bytes.NewReader(body))
	if chunked {
		r.ContentLength = -1
	}
	if encoding != "" {
		r.Header.Set("Content-Encoding", encoding)
	}
	rd, _, err := bodyReader(r, DefaultMaxBodyBytes)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(rd)
}

func TestBodyReaderLimits(t *testing.T) {
	ok := bytes.Repeat([]byte("a"), DefaultMaxBodyBytes)
	if got, err := readAllBody(t, ok, "", false); err != nil || len(got) != len(ok) {
		t.Fatalf("1 MB body: %d bytes, %v", len(got), err)
	}
	if got, err := readAllBody(t, gz(t, ok), "gzip", false); err != nil || len(got) != len(ok) {
		t.Fatalf("1 MB gzip body: %d bytes, %v", len(got), err)
	}
	big := bytes.Repeat([]byte("a"), 1068792)
	for _, tc := range []struct {
		name     string
		body     []byte
		encoding string
		chunked  bool
	}{
		{"declared length", big, "", false},
		{"chunked", big, "", true},
		{"gzip bomb", gz(t, big), "gzip", true},
	} {
		_, err := readAllBody(t, tc.body, tc.encoding, tc.chunked)
		var ie *Error
		if !errors.As(err, &ie) || ie.Kind != api.KindTooLarge || ie.Code != "ContentLengthLimitExceeded" {
			t.Errorf("%s: err = %v; want ContentLengthLimitExceeded", tc.name, err)
			continue
		}
		want := "Maximum allowed content length: 1048576 bytes (1 MB). Provided content length: 1068792 bytes."
		if err.Error() != want {
			t.Errorf("%s: message %q; want %q", tc.name, err, want)
		}
	}
	_, err := readAllBody(t, []byte("not gzip"), "gzip", false)
	var ie *Error
	if !errors.As(err, &ie) || ie.Kind != api.KindInvalid {
		t.Errorf("bad gzip: err = %v; want a 400", err)
	}
	if _, err := readAllBody(t, []byte("[]"), "br", false); !errors.As(err, &ie) || ie.Code != codeUnsupportedEnc {
		t.Errorf("br: err = %v; want %s", err, codeUnsupportedEnc)
	}
}

func TestDecodeOverLimitIsTooLarge(t *testing.T) {
	rec := `{"Computer":"` + strings.Repeat("x", 1000) + `"},`
	body := "[" + strings.Repeat(rec, 1100) + "{}]"
	r := httptest.NewRequest("POST", "/x", strings.NewReader(body))
	r.ContentLength = -1
	rd, _, err := bodyReader(r, DefaultMaxBodyBytes)
	if err != nil {
		t.Fatal(err)
	}
	_, err = DecodeRecords(rd, testSchema, DecodeOptions{})
	var ie *Error
	if !errors.As(err, &ie) || ie.Kind != api.KindTooLarge {
		t.Fatalf("err = %v; want ContentLengthLimitExceeded", err)
	}
}

func TestRateLimiter(t *testing.T) {
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newRateLimiter(3, 100, func() time.Time { return now })
	for i := 0; i < 3; i++ {
		if _, ok := l.admit("dcr-a"); !ok {
			t.Fatalf("request %d refused", i)
		}
	}
	wait, ok := l.admit("dcr-a")
	if ok || wait != time.Minute {
		t.Fatalf("4th request: ok=%v wait=%v; want refused for 1m", ok, wait)
	}
	if _, ok := l.admit("dcr-b"); !ok {
		t.Fatal("another rule is throttled")
	}
	now = now.Add(61 * time.Second)
	if _, ok := l.admit("dcr-a"); !ok {
		t.Fatal("new window still throttled")
	}
	l.charge("dcr-a", 100)
	now = now.Add(15 * time.Second)
	if wait, ok := l.admit("dcr-a"); ok || wait != 45*time.Second {
		t.Fatalf("after 100 bytes: ok=%v wait=%v; want refused for 45s", ok, wait)
	}
}

func TestParseRuleAndOutputTable(t *testing.T) {
	body := `{"id":"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Insights/dataCollectionRules/r","etag":"\"1\"",
	"properties":{"immutableId":"dcr-0123456789abcdef0123456789abcdef",
	 "streamDeclarations":{"Custom-App":{"columns":[{"name":"Time","type":"datetime"},{"name":"Ok","type":"boolean"},{"name":"Data","type":"dynamic"}]}},
	 "destinations":{"logAnalytics":[{"name":"la","workspaceResourceId":"/subscriptions/s/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/w","workspaceId":"0f8fad5b-d9cb-469f-a165-70867728950e"}]},
	 "dataFlows":[{"streams":["Custom-App"],"destinations":["la"],"transformKql":"source | extend TimeGenerated = Time","outputStream":"Custom-App_CL"}]}}`
	r, err := ParseRule("", "", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if r.ImmutableID != "dcr-0123456789abcdef0123456789abcdef" || r.ETag != `"1"` || !strings.HasSuffix(r.ResourceID, "/r") {
		t.Errorf("rule = %+v", r)
	}
	want := store.Schema{{Name: "Time", Type: store.TypeDatetime}, {Name: "Ok", Type: store.TypeBool}, {Name: "Data", Type: store.TypeDynamic}}
	if got := r.Streams["Custom-App"]; len(got) != 3 || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("stream = %v; want %v", got, want)
	}
	if name, _, ok := r.stream("custom-app"); !ok || name != "Custom-App" {
		t.Errorf("stream lookup is not case-insensitive")
	}
	if f := r.flowsFor("Custom-App"); len(f) != 1 || r.DataFlows[0].OutputStream != "Custom-App_CL" {
		t.Errorf("flows = %v", f)
	}
	if d := r.Destinations["la"]; d.WorkspaceID != "0f8fad5b-d9cb-469f-a165-70867728950e" {
		t.Errorf("destination = %+v", d)
	}
	for _, tc := range [][3]string{
		{"Custom-App_CL", "Custom-App", "App_CL"}, {"Microsoft-Syslog", "Custom-X", "Syslog"}, {"", "Custom-Mine_CL", "Mine_CL"},
	} {
		if got := OutputTable(tc[0], tc[1]); got != tc[2] {
			t.Errorf("OutputTable(%q, %q) = %q; want %q", tc[0], tc[1], got, tc[2])
		}
	}
	if _, err := ParseRule("", "", []byte(`{"properties":{"streamDeclarations":{"Custom-X":{"columns":[{"name":"a","type":"blob"}]}}}}`)); err == nil {
		t.Error("unknown column type accepted")
	}
}

func TestConform(t *testing.T) {
	in := &store.Batch{Len: 2, Schema: store.Schema{
		{Name: "TimeGenerated", Type: store.TypeString}, {Name: "N", Type: store.TypeInt},
		{Name: "Extra", Type: store.TypeString}, {Name: "Type", Type: store.TypeString}, {Name: "D", Type: store.TypeDynamic},
	}, Cols: []*store.Vector{
		{Type: store.TypeString, Str: []string{"2024-01-01T00:00:00Z", ""}},
		{Type: store.TypeInt, Int: []int64{1, 0}, Nulls: []bool{false, true}},
		{Type: store.TypeString, Str: []string{"x", "y"}},
		{Type: store.TypeString, Str: []string{"spoof", "spoof"}},
		{Type: store.TypeDynamic, Str: []string{`{"a":1}`, `"s"`}},
	}}
	table := store.Schema{{Name: "TimeGenerated", Type: store.TypeDatetime}, {Name: "N", Type: store.TypeLong},
		{Name: "D", Type: store.TypeString}, {Name: "Type", Type: store.TypeString}}
	out, err := conform(in, table, DefaultMaxFieldBytes)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Schema) != 3 || out.Col("Extra") != nil || out.Col("Type") != nil {
		t.Fatalf("schema = %v; want TimeGenerated, N, D", out.Schema)
	}
	tg := out.Col("TimeGenerated")
	if tg.Type != store.TypeDatetime || tg.Int[0] != store.TicksFromTime(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("TimeGenerated = %+v", tg)
	}
	if n := out.Col("N"); n.Type != store.TypeLong || n.Int[0] != 1 || !n.IsNull(1) {
		t.Errorf("N = %+v", n)
	}
	if d := out.Col("D"); d.Str[0] != `{"a":1}` || d.Str[1] != "s" {
		t.Errorf("D = %q", d.Str)
	}
	bad := &store.Batch{Len: 1, Schema: store.Schema{{Name: "N", Type: store.TypeString}}, Cols: []*store.Vector{{Type: store.TypeString, Str: []string{"abc"}}}}
	if _, err := conform(bad, table, DefaultMaxFieldBytes); err == nil || !strings.Contains(err.Error(), "column 'N'") {
		t.Errorf("conform(bad) = %v; want an error naming column N", err)
	}
}
