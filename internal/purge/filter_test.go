package purge

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"custos/internal/api"
	"custos/internal/store"
)

func ticks(s string) int64 {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return store.TicksFromTime(t)
}

// testBatch has one column of every filterable type; row 3 is null
// wherever the type allows nulls.
func testBatch() *store.Batch {
	nulls := []bool{false, false, false, true}
	return &store.Batch{
		Len: 4,
		Schema: store.Schema{
			{Name: "Email", Type: store.TypeString}, {Name: "Id", Type: store.TypeGUID},
			{Name: "Dims", Type: store.TypeDynamic}, {Name: "Ok", Type: store.TypeBool},
			{Name: "Count", Type: store.TypeLong}, {Name: "Small", Type: store.TypeInt},
			{Name: "Score", Type: store.TypeReal}, {Name: "TimeGenerated", Type: store.TypeDatetime},
			{Name: "Took", Type: store.TypeTimespan},
		},
		Cols: []*store.Vector{
			{Type: store.TypeString, Str: []string{"alice@example.com", "Bob@Example.com", "", "carol@example.com"}},
			{Type: store.TypeGUID, Str: []string{"0f8fad5b-d9cb-469f-a165-70867728950e", "7c9e6679-7425-40de-944b-e07fc1f90ae7", "", ""}, Nulls: nulls},
			{Type: store.TypeDynamic, Str: []string{`{"user":"alice","n":5,"at":"2024-01-02T00:00:00Z"}`, `{"user":"Bob","n":7.5}`, `"plain"`, ""}, Nulls: nulls},
			{Type: store.TypeBool, Bool: []bool{true, false, true, false}, Nulls: nulls},
			{Type: store.TypeLong, Int: []int64{1, 50, 100, 0}, Nulls: nulls},
			{Type: store.TypeInt, Int: []int64{-3, 0, 3, 0}, Nulls: nulls},
			{Type: store.TypeReal, Real: []float64{0.5, 1.5, 2.5, 0}, Nulls: nulls},
			{Type: store.TypeDatetime, Int: []int64{ticks("2024-01-01T00:00:00Z"), ticks("2024-01-02T12:00:00Z"), ticks("2024-01-03T00:00:00Z"), 0}, Nulls: nulls},
			{Type: store.TypeTimespan, Int: []int64{store.TicksPerSecond, store.TicksPerHour, store.TicksPerDay + 2*store.TicksPerHour, 0}, Nulls: nulls},
		},
	}
}

func rowsOf(m []bool) string {
	var out []string
	for i, x := range m {
		if x {
			out = append(out, fmt.Sprint(i))
		}
	}
	return strings.Join(out, ",")
}

func TestCompileOperators(t *testing.T) {
	b := testBatch()
	for _, c := range []struct {
		col, op, value, key string
		want                string // matching rows
	}{
		// strings: == is case-sensitive, =~ not; in/in~ take lists or one value
		{"Email", "==", `"alice@example.com"`, "", "0"},
		{"Email", "==", `"ALICE@example.com"`, "", ""},
		{"Email", "=~", `"bob@example.com"`, "", "1"},
		{"Email", "in", `["alice@example.com","carol@example.com","x"]`, "", "0,3"},
		{"Email", "in", `"carol@example.com"`, "", "3"},
		{"Email", "in~", `["BOB@EXAMPLE.COM","CAROL@example.com"]`, "", "1,3"},
		{"Email", "==", `""`, "", "2"},
		// guids compare case-insensitively (stored lower case); null never matches
		{"Id", "==", `"0F8FAD5B-D9CB-469F-A165-70867728950E"`, "", "0"},
		{"Id", "in", `["7c9e6679-7425-40de-944b-e07fc1f90ae7",""]`, "", "1,2"},
		// dynamic with a key (custom dimensions), and without
		{"Dims", "==", `"alice"`, "user", "0"},
		{"Dims", "=~", `"bob"`, "user", "1"},
		{"Dims", "in", `["Bob","nobody"]`, "user", "1"},
		{"Dims", ">", `6`, "n", "1"},
		{"Dims", "between", `[5, 7.5]`, "n", "0,1"},
		{"Dims", "==", `5`, "n", "0"},
		{"Dims", ">=", `"2024-01-02"`, "at", "0"},
		{"Dims", "==", `"plain"`, "", "2"},
		// bool
		{"Ok", "==", `true`, "", "0,2"},
		{"Ok", "==", `"False"`, "", "1"},
		{"Ok", "in", `[true,false]`, "", "0,1,2"},
		// long and int, numbers or numeric strings
		{"Count", "==", `50`, "", "1"},
		{"Count", ">", `1`, "", "1,2"},
		{"Count", ">=", `"50"`, "", "1,2"},
		{"Count", "<", `50`, "", "0"},
		{"Count", "<=", `50`, "", "0,1"},
		{"Count", "between", `[2, 100]`, "", "1,2"},
		{"Count", "in", `[1, 100]`, "", "0,2"},
		{"Count", ">", `49.5`, "", "1,2"},
		{"Small", "<", `0`, "", "0"},
		{"Small", "between", `[-3, 0]`, "", "0,1"},
		// real
		{"Score", ">", `1`, "", "1,2"},
		{"Score", "==", `1.5`, "", "1"},
		{"Score", "between", `[0.5, 1.5]`, "", "0,1"},
		// datetime: zone-less values are UTC; between is inclusive
		{"TimeGenerated", ">", `"2024-01-01T00:00:00"`, "", "1,2"},
		{"TimeGenerated", ">=", `"2024-01-01"`, "", "0,1,2"},
		{"TimeGenerated", "<", `"2024-01-02T12:00:00Z"`, "", "0"},
		{"TimeGenerated", "<=", `"2024-01-02T13:00:00+01:00"`, "", "0,1"},
		{"TimeGenerated", "==", `"2024-01-03T00:00:00Z"`, "", "2"},
		{"TimeGenerated", "between", `["2024-01-01T00:00:00Z", "2024-01-02T12:00:00Z"]`, "", "0,1"},
		{"TimeGenerated", "in", `["2024-01-01", "datetime(2024-01-03)"]`, "", "0,2"},
		// timespan: KQL literal forms
		{"Took", "==", `"1s"`, "", "0"},
		{"Took", ">", `"00:30:00"`, "", "1,2"},
		{"Took", ">=", `"1.02:00:00"`, "", "2"},
		{"Took", "between", `["1h", "2d"]`, "", "1,2"},
		{"Took", "<", `"1000ms"`, "", ""},
	} {
		name := c.col + " " + c.op + " " + c.value
		p, err := Compile([]Filter{{Column: c.col, Operator: c.op, Value: []byte(c.value), Key: c.key}}, b.Schema)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		m, err := p.Match(b)
		if err != nil {
			t.Errorf("%s: match: %v", name, err)
			continue
		}
		if got := rowsOf(m); got != c.want {
			t.Errorf("%s (key %q): got rows [%s]; want [%s]", name, c.key, got, c.want)
		}
	}
}

func TestCompileAnd(t *testing.T) {
	b := testBatch()
	p, err := Compile([]Filter{
		{Column: "Count", Operator: ">", Value: []byte(`0`)},
		{Column: "Email", Operator: "=~", Value: []byte(`"BOB@example.com"`)},
	}, b.Schema)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Columns(); strings.Join(got, ",") != "Count,Email" {
		t.Errorf("Columns() = %v; want [Count Email]", got)
	}
	m, err := p.Match(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := rowsOf(m); got != "1" {
		t.Errorf("got rows [%s]; want [1]", got)
	}
}

func TestCompileErrors(t *testing.T) {
	schema := testBatch().Schema
	for _, c := range []struct {
		f        Filter
		fragment string
	}{
		{Filter{Column: "Nope", Operator: "==", Value: []byte(`"x"`)}, "no column 'Nope'"},
		{Filter{Column: "email", Operator: "==", Value: []byte(`"x"`)}, "case-sensitive"},
		{Filter{Column: "Email", Operator: "!=", Value: []byte(`"x"`)}, "operator '!=' is not supported"},
		{Filter{Column: "Email", Operator: "contains", Value: []byte(`"x"`)}, "not supported"},
		{Filter{Column: "Email", Operator: ">", Value: []byte(`"x"`)}, "string columns support"},
		{Filter{Column: "Email", Operator: "==", Value: []byte(`5`)}, "must be a string"},
		{Filter{Column: "Email", Operator: "==", Value: []byte(`["a"]`)}, "single value"},
		{Filter{Column: "Email", Operator: "==", Value: nil}, "must have a 'value'"},
		{Filter{Column: "Email", Operator: "==", Value: []byte(`null`)}, "must have a 'value'"},
		{Filter{Column: "Email", Operator: "in", Value: []byte(`[]`)}, "empty"},
		{Filter{Column: "Email", Operator: "==", Value: []byte(`"x"`), Key: "k"}, "only to dynamic"},
		{Filter{Column: "Count", Operator: "=~", Value: []byte(`5`)}, "strings only"},
		{Filter{Column: "Count", Operator: "==", Value: []byte(`"five"`)}, "must be a number"},
		{Filter{Column: "Count", Operator: "between", Value: []byte(`[5]`)}, "exactly two"},
		{Filter{Column: "Count", Operator: "between", Value: []byte(`[9, 5]`)}, "empty"},
		{Filter{Column: "Ok", Operator: ">", Value: []byte(`true`)}, "== and in only"},
		{Filter{Column: "Ok", Operator: "==", Value: []byte(`"yes"`)}, "true or false"},
		{Filter{Column: "TimeGenerated", Operator: ">", Value: []byte(`"yesterday"`)}, "not a valid datetime"},
		{Filter{Column: "TimeGenerated", Operator: ">", Value: []byte(`20240101`)}, "datetime string"},
		{Filter{Column: "TimeGenerated", Operator: "between", Value: []byte(`["2024-02-01","2024-01-01"]`)}, "empty"},
		{Filter{Column: "Took", Operator: "==", Value: []byte(`"1 fortnight"`)}, "not a valid timespan"},
		{Filter{Column: "Took", Operator: "==", Value: []byte(`"25:00:00"`)}, "not a valid timespan"},
		{Filter{Column: "", Operator: "==", Value: []byte(`"x"`)}, "must name a 'column'"},
	} {
		_, err := Compile([]Filter{c.f}, schema)
		var ie *InvalidError
		if !errors.As(err, &ie) {
			t.Errorf("%+v: got %v; want an *InvalidError", c.f, err)
			continue
		}
		if code, kind := ie.AzureError(); code == "" || kind != api.KindInvalid {
			t.Errorf("%+v: AzureError() = %q, %q", c.f, code, kind)
		}
		if !strings.Contains(ie.Message, c.fragment) {
			t.Errorf("%+v: error %q lacks %q", c.f, ie.Message, c.fragment)
		}
	}
	if _, err := Compile(nil, schema); err == nil || !strings.Contains(err.Error(), "At least one filter") {
		t.Errorf("no filters: got %v", err)
	}
	many := make([]Filter, MaxFilters+1)
	for i := range many {
		many[i] = Filter{Column: "Email", Operator: "==", Value: []byte(`"x"`)}
	}
	if _, err := Compile(many, schema); err == nil || !strings.Contains(err.Error(), "At most") {
		t.Errorf("too many filters: got %v", err)
	}
}

func TestDecodeBodies(t *testing.T) {
	b, err := DecodePurgeBody([]byte(`{"table":"Heartbeat","filters":[{"column":"TimeGenerated","operator":">","value":"2017-09-01T00:00:00"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if b.Table != "Heartbeat" || len(b.Filters) != 1 || b.Filters[0].Operator != ">" || string(b.Filters[0].Value) != `"2017-09-01T00:00:00"` {
		t.Errorf("decoded %+v", b)
	}
	for body, fragment := range map[string]string{
		`{"filters":[{"column":"a","operator":"==","value":1}]}`: "must name a 'table'",
		`{"table":"T"}`: "At least one filter",
		`{"table":"T","filters":[{"column":"a","operator":"==","value":1}],"x":1}`: "unknown field",
		`{"table":"T","filters":[{"column":"a","operator":"==","valu":1}]}`:        "unknown field",
		`{"table":"T","filters":[{"column":"a","operator":"like","value":1}]}`:     "not supported",
		`{"table":"T","filters":[]} {}`:                                            "after the JSON value",
		``:                                                                         "empty",
		`[]`:                                                                       "cannot use",
	} {
		_, err := DecodePurgeBody([]byte(body))
		if err == nil || !strings.Contains(err.Error(), fragment) {
			t.Errorf("DecodePurgeBody(%s): got %v; want %q", body, err, fragment)
		}
	}
	d, err := DecodeDeleteDataBody([]byte(`{"filters":[{"column":"TimeGenerated","operator":"<","value":"2024-09-23T00:00:00"}]}`))
	if err != nil || len(d.Filters) != 1 {
		t.Fatalf("DecodeDeleteDataBody: %+v, %v", d, err)
	}
	if _, err := DecodeDeleteDataBody([]byte(`{"table":"T","filters":[{"column":"a","operator":"==","value":1}]}`)); err == nil {
		t.Error("deleteData body with a table: no error")
	}
}

func TestMatchChecksBatch(t *testing.T) {
	b := testBatch()
	p, err := Compile([]Filter{{Column: "Count", Operator: "==", Value: []byte(`1`)}}, b.Schema)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Match(&store.Batch{Len: 1}); err == nil {
		t.Error("batch without the column: no error")
	}
	short := &store.Batch{Len: 3, Schema: store.Schema{{Name: "Count", Type: store.TypeLong}}, Cols: []*store.Vector{{Type: store.TypeLong, Int: []int64{1}}}}
	if _, err := p.Match(short); err == nil {
		t.Error("short vector: no error")
	}
}
