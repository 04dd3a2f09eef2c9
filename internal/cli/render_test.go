package cli

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

func TestTableWrite(t *testing.T) {
	tb := &Table{Columns: []string{"NAME", "CUSTOMER ID", "N"}, Rows: [][]string{
		{"default", "aaaa", "1"},
		{"prod-europe", "b", ""},
		{"short"}, // missing cells render empty
	}}
	var buf bytes.Buffer
	if err := tb.Write(&buf); err != nil {
		t.Fatal(err)
	}
	want := "NAME         CUSTOMER ID  N\n" +
		"default      aaaa         1\n" +
		"prod-europe  b\n" +
		"short\n"
	if buf.String() != want {
		t.Fatalf("got\n%q\nwant\n%q", buf.String(), want)
	}
}

func TestSafeText(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"plain", 0, "plain"},
		{"two\nlines\tand tab", 0, `two\nlines\tand tab`},
		{"\x1b[31mred\x1b[0m", 0, `\u001b[31mred\u001b[0m`},
		{"bidi \u202eevil", 0, `bidi \u202eevil`},
		{"bad \xff utf8", 0, "bad \uFFFD utf8"},
		{"héllo wörld", 5, "héllo..."},
	} {
		if got := SafeText(tc.in, tc.max); got != tc.want {
			t.Errorf("SafeText(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

func TestWriteFields(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteFields(&buf, [][2]string{{"Name", "x"}, {"Customer ID", "y\x07"}}); err != nil {
		t.Fatal(err)
	}
	want := "Name:        x\nCustomer ID: y\\u0007\n"
	if buf.String() != want {
		t.Fatalf("got %q; want %q", buf.String(), want)
	}
}

func TestFormatValue(t *testing.T) {
	for _, tc := range []struct {
		v    any
		typ  string
		want string
	}{
		{nil, "string", ""},
		{"abc", "string", "abc"},
		{true, "bool", "true"},
		{float64(1234567890123), "long", "1234567890123"},
		{float64(3), "real", "3"},
		{0.25, "real", "0.25"},
		{1e-9, "real", "1e-09"},
		{1e22, "real", "1e+22"},
		{math.NaN(), "real", "NaN"},
		{math.Inf(-1), "real", "-Infinity"},
		{map[string]any{"k": []any{1.0, "x"}}, "dynamic", `{"k":[1,"x"]}`},
		{[]any{}, "dynamic", `[]`},
	} {
		if got := FormatValue(tc.v, tc.typ); got != tc.want {
			t.Errorf("FormatValue(%v, %s) = %q; want %q", tc.v, tc.typ, got, tc.want)
		}
	}
}

func TestResultTableText(t *testing.T) {
	rt := ResultTable{
		Name:    "PrimaryResult",
		Columns: []ResultColumn{{Name: "Computer", Type: "string"}, {Name: "count_", Type: "long"}},
		Rows:    [][]any{{"web-1", float64(42)}, {nil, float64(7)}},
	}
	var buf bytes.Buffer
	if err := rt.TextTable().Write(&buf); err != nil {
		t.Fatal(err)
	}
	want := "Computer  count_\nweb-1     42\n          7\n"
	if buf.String() != want {
		t.Fatalf("got %q; want %q", buf.String(), want)
	}
}

func TestWriteRawJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteRawJSON(&buf, []byte(`{"a":[1,2],"b":"<x>"}`)); err != nil {
		t.Fatal(err)
	}
	if want := "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": \"<x>\"\n}\n"; buf.String() != want {
		t.Fatalf("got %q; want %q", buf.String(), want)
	}
	if err := WriteRawJSON(&buf, []byte(`{`)); err == nil || !strings.Contains(err.Error(), "invalid JSON") {
		t.Fatalf("got %v", err)
	}
}
