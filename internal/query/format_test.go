package query

import (
	"bytes"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"custos/internal/store"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

func ticks(s string) int64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return store.TicksFromTime(t)
}

func TestWriteTablesGolden(t *testing.T) {
	schema := store.Schema{
		{Name: "b", Type: store.TypeBool}, {Name: "i", Type: store.TypeInt}, {Name: "l", Type: store.TypeLong},
		{Name: "r", Type: store.TypeReal}, {Name: "dec", Type: store.TypeDecimal}, {Name: "dt", Type: store.TypeDatetime},
		{Name: "ts", Type: store.TypeTimespan}, {Name: "s", Type: store.TypeString}, {Name: "g", Type: store.TypeGUID},
		{Name: "dyn", Type: store.TypeDynamic},
	}
	b := &store.Batch{Schema: schema, Len: 6, Cols: []*store.Vector{
		{Type: store.TypeBool, Bool: []bool{true, false, false, true, true, false}, Nulls: []bool{false, false, true, false, false, false}},
		{Type: store.TypeInt, Int: []int64{1, -2, 0, math.MaxInt32, math.MinInt32, 0}, Nulls: []bool{false, false, true, false, false, false}},
		{Type: store.TypeLong, Int: []int64{math.MaxInt64, math.MinInt64, 0, 42, 0, 7}, Nulls: []bool{false, false, true, false, false, false}},
		{Type: store.TypeReal, Real: []float64{0.5, math.NaN(), 0, math.Inf(1), math.Inf(-1), 1e21}, Nulls: []bool{false, false, true, false, false, false}},
		{Type: store.TypeDecimal, Real: []float64{1.25, 100, 0, -0.001, 0, 3}, Nulls: []bool{false, false, true, false, false, false}},
		{Type: store.TypeDatetime, Int: []int64{
			ticks("2018-02-02T15:03:12.18Z"), ticks("2018-02-02T15:16:53.932Z"), 0,
			ticks("2024-01-02T03:04:05Z"), ticks("2023-02-03T19:43:49.4788396Z"), ticks("1969-12-31T23:59:59.9999999Z"),
		}, Nulls: []bool{false, false, true, false, false, false}},
		{Type: store.TypeTimespan, Int: []int64{0, 15 * store.TicksPerSecond / 10, 0, store.TicksPerDay + 2*store.TicksPerHour + 3*store.TicksPerMinute + 4*store.TicksPerSecond, -store.TicksPerMinute - 1, 10 * store.TicksPerMinute}, Nulls: []bool{false, false, true, false, false, false}},
		{Type: store.TypeString, Str: []string{"plain", "quote\" back\\ nl\n tab\t ctl\x01", "", "é😀", "bad\xffutf8", "\u2028"}},
		{Type: store.TypeGUID, Str: []string{"0f8fad5b-d9cb-469f-a165-70867728950e", "", "", "", "", ""}, Nulls: []bool{false, true, true, true, true, true}},
		{Type: store.TypeDynamic, Str: []string{`{"a":[1,2],"b":"x"}`, `[]`, ``, `"text"`, `null`, `12`}, Nulls: []bool{false, false, true, false, false, false}},
	}}
	var buf bytes.Buffer
	stats := json.RawMessage(`{"query":{"executionTime":0.01}}`)
	if err := WriteTables(&buf, []TableData{{Name: "PrimaryResult", Schema: schema, Batches: []*store.Batch{b, nil}}}, Extras{Statistics: stats}); err != nil {
		t.Fatal(err)
	}
	if !json.Valid(buf.Bytes()) {
		t.Fatalf("output is not valid JSON: %s", buf.Bytes())
	}
	golden(t, "format.golden.json", buf.Bytes())
}

func TestWriteTablesEmpty(t *testing.T) {
	var buf bytes.Buffer
	schema := store.Schema{{Name: "Computer", Type: store.TypeString}}
	if err := WriteTables(&buf, []TableData{{Name: "PrimaryResult", Schema: schema}}, Extras{}); err != nil {
		t.Fatal(err)
	}
	want := `{"tables":[{"name":"PrimaryResult","columns":[{"name":"Computer","type":"string"}],"rows":[]}]}` + "\n"
	if buf.String() != want {
		t.Errorf("got %s; want %s", buf.String(), want)
	}
}

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "abc", "a\"b", "\\", "\x00\x1f", "é", "😀", "<&>", "\u2028\u2029"} {
		got := AppendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil || back != s {
			t.Errorf("AppendJSONString(%q) = %s; decodes to %q, %v", s, got, back, err)
		}
	}
}

func TestAppendTimespan(t *testing.T) {
	for _, tc := range []struct {
		ticks int64
		want  string
	}{
		{0, "00:00:00"},
		{store.TicksPerSecond, "00:00:01"},
		{1, "00:00:00.0000001"},
		{store.TicksPerDay, "1.00:00:00"},
		{-store.TicksPerHour, "-01:00:00"},
		{math.MaxInt64, "10675199.02:48:05.4775807"},
		{math.MinInt64, "-10675199.02:48:05.4775808"},
	} {
		if got := string(AppendTimespan(nil, tc.ticks)); got != tc.want {
			t.Errorf("AppendTimespan(%d) = %s; want %s", tc.ticks, got, tc.want)
		}
	}
}
