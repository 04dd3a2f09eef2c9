package query

import (
	"errors"
	"strings"
	"testing"

	"custos/internal/api"
)

func TestDecodeBody(t *testing.T) {
	b, err := DecodeBody([]byte(`{"query":"Heartbeat | take 1","timespan":"PT1H","workspaces":["a"],"extra":1}`))
	if err != nil || b.Query != "Heartbeat | take 1" || b.Timespan != "PT1H" || len(b.Workspaces) != 1 {
		t.Fatalf("DecodeBody = %+v, %v", b, err)
	}
	for _, tc := range []struct{ body, want string }{
		{``, "empty"},
		{`[]`, "must be a JSON object"},
		{`{"query":1}`, `member "query"`},
		{`{"query":"x"`, "unexpected end"},
		{`{"query":""}`, "cannot be null"},
		{`{"timespan":"PT1H"}`, "cannot be null"},
		{`{"query":"x"} {}`, "after the JSON object"},
		{`{"query":"x",}`, "invalid character"},
	} {
		_, err := DecodeBody([]byte(tc.body))
		var qe *Error
		if !errors.As(err, &qe) || qe.Code != "BadArgumentError" || qe.Kind != api.KindInvalid || qe.Inner == nil {
			t.Errorf("DecodeBody(%q) = %v; want a BadArgumentError", tc.body, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("DecodeBody(%q) = %q; want it to contain %q", tc.body, err, tc.want)
		}
	}
}

func TestDecodeBatch(t *testing.T) {
	br, err := DecodeBatch([]byte(`{"requests":[{"id":"1","headers":{"Prefer":"wait=60"},"body":{"query":"T","timespan":"PT1H"},"method":"POST","path":"/query","workspace":"w"},{"id":"2","workspace":"w"}]}`))
	if err != nil || len(br.Requests) != 2 || br.Requests[0].Body.Query != "T" || br.Requests[0].Headers["Prefer"] != "wait=60" {
		t.Fatalf("DecodeBatch = %+v, %v", br, err)
	}
	for _, tc := range []struct{ body, want string }{
		{`{"requests":[]}`, "no requests"},
		{`{"requests":[{"id":"1","workspace":"w"},{"id":"1","workspace":"w"}]}`, "more than one request with id '1'"},
		{`{"requests":[{"workspace":"w"}]}`, "has no id"},
		{`{"requests":[{"id":"x"}]}`, "has no workspace"},
		{`{"requests":{}}`, "must not be a JSON object"},
		{`nope`, "invalid character"},
	} {
		_, err := DecodeBatch([]byte(tc.body))
		var qe *Error
		if !errors.As(err, &qe) || qe.Code != "BadArgumentError" {
			t.Errorf("DecodeBatch(%q) = %v; want a BadArgumentError", tc.body, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("DecodeBatch(%q) = %q; want it to contain %q", tc.body, err, tc.want)
		}
	}
}

func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"query":"Heartbeat | take 1","timespan":"PT1H"}`, `{"query":"x","workspaces":["a","b"]}`, `[]`, `{}`, `null`,
		`{"requests":[{"id":"1","body":{"query":"T"},"method":"POST","path":"/query","workspace":"w"}]}`,
		`{"requests":[{"id":"1","workspace":"w"},{"id":"1","workspace":"w"}]}`, `{"query":"\ud800"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for name, decode := range map[string]func([]byte) error{
			"body":  func(d []byte) error { _, err := DecodeBody(d); return err },
			"batch": func(d []byte) error { _, err := DecodeBatch(d); return err },
		} {
			if err := decode(data); err != nil {
				var qe *Error
				if !errors.As(err, &qe) || qe.Kind != api.KindInvalid {
					t.Fatalf("%s: error %v is not a BadArgumentError", name, err)
				}
			}
		}
		if b, err := DecodeBody(data); err == nil {
			_, _ = ParseTimespan(b.Timespan, testNow)
		}
	})
}
