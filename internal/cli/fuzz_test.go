package cli

import (
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseErrorResponse: server bodies are untrusted; decoding never panics
// and the rendered error is one valid UTF-8 message with the status in it.
func FuzzParseErrorResponse(f *testing.F) {
	f.Add(400, `{"error":{"code":"BadArgumentError","message":"m","innererror":{"code":"SyntaxError","line":1,"pos":2,"innererror":{"code":"X"}}}}`)
	f.Add(401, `{"error":"invalid_client","error_description":"AADSTS7000215: x\r\ny"}`)
	f.Add(404, `{"odata.error":{"code":"NotFound","message":{"lang":"en","value":"v"}}}`)
	f.Add(500, `{"code":"InternalServerError","details":[{"code":"a","message":"b","target":"c"}]}`)
	f.Add(502, "<html>bad\xffgateway</html>")
	f.Add(429, ``)
	f.Fuzz(func(t *testing.T, status int, body string) {
		e := ParseErrorResponse(status, http.Header{}, []byte(body))
		s := e.Error()
		if !strings.Contains(s, "(HTTP ") {
			t.Fatalf("no status in %q", s)
		}
		if !utf8.ValidString(s) {
			t.Fatalf("invalid UTF-8 in %q", s)
		}
	})
}

// FuzzParseSchemaFile: schema files never panic the parser, and an accepted
// schema has named columns with types the Tables API knows.
func FuzzParseSchemaFile(f *testing.F) {
	f.Add(`[{"name":"TimeGenerated","type":"datetime"}]`)
	f.Add(`{"properties":{"schema":{"columns":[{"name":"A","type":"bool"}]},"retentionInDays":30}}`)
	f.Add(`{"name":"T_CL","columns":[]}`)
	f.Add("\xef\xbb\xbf[]")
	f.Fuzz(func(t *testing.T, in string) {
		spec, err := ParseSchemaFile([]byte(in))
		if err != nil {
			return
		}
		if len(spec.Columns) == 0 {
			t.Fatal("accepted a schema without columns")
		}
		for _, c := range spec.Columns {
			if c.Name == "" {
				t.Fatal("accepted a column without a name")
			}
			if _, err := NormalizeColumnType(c.Type); err != nil {
				t.Fatalf("accepted column type %q: %v", c.Type, err)
			}
		}
	})
}

// FuzzParseConfig: admin.json is decoded strictly and never panics.
func FuzzParseConfig(f *testing.F) {
	f.Add(adminJSON)
	f.Add(`{"endpoint":1}`)
	f.Add(`{} {}`)
	f.Fuzz(func(t *testing.T, in string) {
		c, err := ParseConfig([]byte(in))
		if err != nil {
			return
		}
		_ = c.Validate(NeedCredentials|NeedResourceGroup, "")
	})
}
