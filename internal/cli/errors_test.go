package cli

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
)

func TestParseErrorResponse(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		header http.Header
		body   string
		want   string
		code   string
	}{
		{
			name: "ARM", status: 404,
			header: http.Header{"X-Ms-Error-Code": {"ResourceNotFound"}, "X-Ms-Correlation-Request-Id": {"c0ffee"}},
			body:   `{"error":{"code":"ResourceNotFound","message":"The Resource 'Microsoft.OperationalInsights/workspaces/nope' under resource group 'default' was not found."}}`,
			code:   "ResourceNotFound",
			want:   "ResourceNotFound: The Resource 'Microsoft.OperationalInsights/workspaces/nope' under resource group 'default' was not found. (HTTP 404)\n  correlation ID: c0ffee",
		},
		{
			name: "query syntax error", status: 400,
			body: `{"error":{"code":"BadArgumentError","message":"The request had some invalid properties","innererror":{"code":"SyntaxError","message":"A recognition error occurred in the query.","line":1,"pos":9}}}`,
			code: "BadArgumentError",
			want: "BadArgumentError: The request had some invalid properties (HTTP 400)\n  SyntaxError: A recognition error occurred in the query. (line 1, position 9)",
		},
		{
			name: "details", status: 400,
			body: `{"error":{"code":"InvalidPayload","message":"The rule is invalid.","details":[{"code":"InvalidStream","message":"Stream 'x' is not declared.","target":"properties.dataFlows[0].streams"}]}}`,
			code: "InvalidPayload",
			want: "InvalidPayload: The rule is invalid. (HTTP 400)\n  InvalidStream: Stream 'x' is not declared. [properties.dataFlows[0].streams]",
		},
		{
			name: "Entra", status: 401,
			body: `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 1\r\nCorrelation ID: 2","error_codes":[7000215]}`,
			code: "invalid_client",
			want: "invalid_client: AADSTS7000215: Invalid client secret provided. (HTTP 401)",
		},
		{
			name: "OData", status: 400,
			body: `{"odata.error":{"code":"BadRequest","message":"nope"}}`,
			code: "BadRequest", want: "BadRequest: nope (HTTP 400)",
		},
		{
			name: "plain text", status: 502, body: "<html>\n bad   gateway\n</html>",
			want: "Bad Gateway: <html> bad gateway </html> (HTTP 502)",
		},
		{
			name: "empty body, header code", status: 429, header: http.Header{"X-Ms-Error-Code": {"ThrottledError"}},
			code: "ThrottledError", want: "ThrottledError: Too Many Requests (HTTP 429)",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := ParseErrorResponse(tc.status, tc.header, []byte(tc.body))
			if e.Code != tc.code {
				t.Errorf("code = %q; want %q", e.Code, tc.code)
			}
			if e.Error() != tc.want {
				t.Errorf("got\n%s\nwant\n%s", e.Error(), tc.want)
			}
		})
	}
}

func TestExplainTLS(t *testing.T) {
	err := Explain(fmt.Errorf("Post: %w", x509.UnknownAuthorityError{}))
	if !strings.Contains(err.Error(), "--ca-file") {
		t.Fatalf("got %v", err)
	}
	plain := errors.New("plain")
	if Explain(plain) != plain {
		t.Fatal("unrelated error changed")
	}
}

func TestShouldRetry(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		err    error
		want   bool
	}{
		{"throttled", 429, nil, true},
		{"unavailable", 503, nil, true},
		{"bad request", 400, nil, false},
		{"not found", 404, nil, false},
		{"ok", 200, nil, false},
		{"reset", 0, errors.New("connection reset by peer"), true},
		{"untrusted", 0, fmt.Errorf("Get: %w", x509.UnknownAuthorityError{}), false},
		{"refused", 0, fmt.Errorf("dial: %w", syscall.ECONNREFUSED), false},
	} {
		var resp *http.Response
		if tc.err == nil {
			resp = &http.Response{StatusCode: tc.status}
		}
		if got := shouldRetry(resp, tc.err); got != tc.want {
			t.Errorf("%s: shouldRetry = %v; want %v", tc.name, got, tc.want)
		}
	}
}

func TestExplainFlattenedTLS(t *testing.T) {
	// azidentity keeps only the text of transport errors.
	err := Explain(errors.New(`ClientSecretCredential: unable to resolve an endpoint: Get "https://localhost:1/x": tls: failed to verify certificate: x509: certificate signed by unknown authority`))
	if !strings.Contains(err.Error(), "--ca-file") {
		t.Fatalf("got %v", err)
	}
	err = Explain(fmt.Errorf("dial tcp 127.0.0.1:1: %w", syscall.ECONNREFUSED))
	if !strings.Contains(err.Error(), "custos serve") {
		t.Fatalf("got %v", err)
	}
}
