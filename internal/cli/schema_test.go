package cli

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseColumnFlags(t *testing.T) {
	got, err := ParseColumnFlags([]string{"TimeGenerated:datetime", "Computer:STRING", "Ok:bool", "Props:dynamic:free-form bag", "N:long"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Column{
		{Name: "TimeGenerated", Type: "dateTime"},
		{Name: "Computer", Type: "string"},
		{Name: "Ok", Type: "boolean"},
		{Name: "Props", Type: "dynamic", Description: "free-form bag"},
		{Name: "N", Type: "long"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{[]string{"Computer"}, "want Name:type"},
		{[]string{":string"}, "empty name"},
		{[]string{"A:varchar"}, `unknown column type "varchar"`},
		{[]string{"A:string", "a:long"}, "given twice"},
	} {
		if _, err := ParseColumnFlags(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v; want %q", tc.in, err, tc.want)
		}
	}
}

func TestParseSchemaFile(t *testing.T) {
	cols := []Column{{Name: "TimeGenerated", Type: "dateTime"}, {Name: "Msg", Type: "string"}}
	ninety := 90
	for _, tc := range []struct {
		name string
		in   string
		want TableSpec
	}{
		{"column list", `[{"name":"TimeGenerated","type":"datetime"},{"name":"Msg","type":"string"}]`, TableSpec{Columns: cols}},
		{"schema object", "\xef\xbb\xbf" + `{"name":"T_CL","columns":[{"name":"TimeGenerated","type":"dateTime"},{"name":"Msg","type":"String"}]}`, TableSpec{Columns: cols}},
		{"ARM body", `{"properties":{"schema":{"name":"T_CL","columns":[{"name":"TimeGenerated","type":"datetime"},{"name":"Msg","type":"string"}]},"retentionInDays":90,"plan":"Analytics"}}`,
			TableSpec{Columns: cols, RetentionInDays: &ninety, Plan: "Analytics"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSchemaFile([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v; want %+v", got, tc.want)
			}
		})
	}
	for _, tc := range []struct{ in, want string }{
		{``, "empty"},
		{`"x"`, "object or array"},
		{`{}`, "no columns"},
		{`[{"type":"string"}]`, "column 1 has no name"},
		{`[{"name":"A","type":"text"}]`, `unknown column type "text"`},
		{`[{"name":"A","type":"string"},{"name":"A","type":"long"}]`, "given twice"},
		{`[{"name":"A","type":"string"}`, "schema file"},
	} {
		if _, err := ParseSchemaFile([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v; want %q", tc.in, err, tc.want)
		}
	}
}
