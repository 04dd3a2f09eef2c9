package purge_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"custos/internal/engine"
	"custos/internal/store"
)

// maskingExamples are the transformKql examples of docs/sensitive-data.md;
// the test checks that the document carries each one verbatim and runs it
// through the engine's transformation compiler and runtime, which ingestion
// applies to every record of a data collection rule's data flow.
var maskingExamples = []struct {
	name string
	kql  string
	in   map[string]string
	want map[string]string // output column → value; "" column absent means dropped
	drop bool              // the row is dropped
}{
	{
		name: "email keeps the domain",
		kql:  `source | extend Email = strcat("***@", extract("@(.+)$", 1, Email))`,
		in:   map[string]string{"Email": "alice.smith@contoso.com"},
		want: map[string]string{"Email": "***@contoso.com"},
	},
	{
		name: "email pseudonymized",
		kql:  `source | extend UserHash = hash_sha256(tolower(Email)) | project-away Email`,
		in:   map[string]string{"Email": "Alice.Smith@Contoso.com"},
		want: map[string]string{"UserHash": sha256Hex("alice.smith@contoso.com")},
	},
	{
		name: "ip last octet zeroed",
		kql:  `source | extend ClientIP = strcat(extract(@"^(\d+\.\d+\.\d+)\.\d+$", 1, ClientIP), ".0")`,
		in:   map[string]string{"ClientIP": "203.0.113.77"},
		want: map[string]string{"ClientIP": "203.0.113.0"},
	},
	{
		name: "card number keeps the last four digits",
		kql:  `source | extend CardNumber = strcat("************", substring(CardNumber, strlen(CardNumber) - 4))`,
		in:   map[string]string{"CardNumber": "4111111111111111"},
		want: map[string]string{"CardNumber": "************1111"},
	},
	{
		name: "bearer token cut from a message",
		kql:  `source | extend Message = iff(Message matches regex @"[Bb]earer\s+\S+", strcat(extract(@"^(.*?)[Bb]earer\s", 1, Message), "Bearer [REDACTED]"), Message)`,
		in:   map[string]string{"Message": "GET /api Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc"},
		want: map[string]string{"Message": "GET /api Authorization: Bearer [REDACTED]"},
	},
	{
		name: "token column dropped",
		kql:  `source | project-away Token`,
		in:   map[string]string{"Token": "ghp_0123456789abcdef", "Message": "hello"},
		want: map[string]string{"Message": "hello", "Token": ""},
	},
	{
		name: "records with a password dropped",
		kql:  `source | where not(Message has "password")`,
		in:   map[string]string{"Message": "login ok password=hunter2"},
		drop: true,
	},
}

func TestMaskingExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/sensitive-data.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, ex := range maskingExamples {
		t.Run(ex.name, func(t *testing.T) {
			if !strings.Contains(string(doc), ex.kql) {
				t.Errorf("docs/sensitive-data.md lacks the example %s", ex.kql)
			}
			var schema store.Schema
			b := &store.Batch{Len: 1}
			schema = append(schema, store.Column{Name: "TimeGenerated", Type: store.TypeDatetime})
			b.Cols = append(b.Cols, &store.Vector{Type: store.TypeDatetime, Int: []int64{0}})
			for _, name := range []string{"Email", "ClientIP", "CardNumber", "Message", "Token"} {
				schema = append(schema, store.Column{Name: name, Type: store.TypeString})
				b.Cols = append(b.Cols, &store.Vector{Type: store.TypeString, Str: []string{ex.in[name]}})
			}
			b.Schema = schema
			tr, err := engine.CompileTransform(ex.kql, schema)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			out, err := tr.Run(context.Background(), b)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if ex.drop {
				if out != nil && out.Len != 0 {
					t.Fatalf("got %d rows; want the row dropped", out.Len)
				}
				return
			}
			if out == nil || out.Len != 1 {
				t.Fatalf("got %v; want one row", out)
			}
			for col, want := range ex.want {
				v := out.Col(col)
				if want == "" {
					if v != nil {
						t.Errorf("column %s still present", col)
					}
					continue
				}
				if v == nil {
					t.Fatalf("no column %s in %v", col, out.Schema)
				}
				if v.Str[0] != want {
					t.Errorf("%s = %q; want %q", col, v.Str[0], want)
				}
			}
			for _, secret := range []string{"alice.smith", "113.77", "411111111111", "eyJhbGci", "ghp_"} {
				for i, c := range out.Cols {
					for _, s := range c.Str {
						if strings.Contains(strings.ToLower(s), strings.ToLower(secret)) {
							t.Errorf("column %s still holds %q: %q", out.Schema[i].Name, secret, s)
						}
					}
				}
			}
		})
	}
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
