package purge

import (
	"errors"
	"testing"

	"custos/internal/api"
)

// FuzzDecodePurgeBody: arbitrary bodies never panic; a body that decodes
// either compiles against the test schema or fails with a client error, and
// a compiled predicate matches a batch without panicking and with one
// answer per row.
func FuzzDecodePurgeBody(f *testing.F) {
	for _, s := range []string{
		`{"table":"Heartbeat","filters":[{"column":"TimeGenerated","operator":">","value":"2017-09-01T00:00:00"}]}`,
		`{"table":"T","filters":[{"column":"Email","operator":"in~","value":["A@x","b"]}]}`,
		`{"table":"T","filters":[{"column":"Dims","operator":"between","value":[1,2],"key":"n"}]}`,
		`{"table":"T","filters":[{"column":"Took","operator":"<=","value":"1.02:03:04.5"}]}`,
		`{"table":"T","filters":[{"column":"Count","operator":"==","value":"9223372036854775807"}]}`,
		`{"table":"T","filters":[{"column":"Ok","operator":"in","value":[true,"false"]}]}`,
		`{"table":"T","filters":[{"column":"Score","operator":">","value":1e308}]}`,
		`{"table":"T","filters":[{"column":"Id","operator":"=~","value":"0F8FAD5B-D9CB-469F-A165-70867728950E"}]}`,
		`{"table":"T","filters":[{"column":"Dims","operator":">=","value":"2024-01-01","key":"at"}]}`,
		`{"table":"","filters":null}`, `[]`, `{`, ``,
	} {
		f.Add([]byte(s))
	}
	schema := testBatch().Schema
	f.Fuzz(func(t *testing.T, data []byte) {
		body, err := DecodePurgeBody(data)
		if err != nil {
			var c api.Coded
			var ae *api.Error
			if !errors.As(err, &c) && !errors.As(err, &ae) {
				t.Fatalf("decode error %T is not an API error: %v", err, err)
			}
			return
		}
		p, err := Compile(body.Filters, schema)
		if err != nil {
			var ie *InvalidError
			if !errors.As(err, &ie) {
				t.Fatalf("compile error %T is not an *InvalidError: %v", err, err)
			}
			return
		}
		b := testBatch()
		m, err := p.Match(b)
		if err != nil {
			t.Fatalf("match: %v", err)
		}
		if len(m) != b.Len {
			t.Fatalf("match returned %d answers for %d rows", len(m), b.Len)
		}
	})
}

// FuzzDecodeDeleteDataBody: the delete-data decoder never panics.
func FuzzDecodeDeleteDataBody(f *testing.F) {
	f.Add([]byte(`{"filters":[{"column":"TimeGenerated","operator":"<","value":"2024-09-23T00:00:00"}]}`))
	f.Add([]byte(`{"filters":[{"column":"x","operator":"between","value":[1]}]}`))
	schema := testBatch().Schema
	f.Fuzz(func(t *testing.T, data []byte) {
		body, err := DecodeDeleteDataBody(data)
		if err != nil {
			return
		}
		if p, err := Compile(body.Filters, schema); err == nil {
			if _, err := p.Match(testBatch()); err != nil {
				t.Fatalf("match: %v", err)
			}
		}
	})
}
