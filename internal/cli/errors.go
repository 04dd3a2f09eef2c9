package cli

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// maxErrorBodyBytes bounds how much of an error response body is kept.
const maxErrorBodyBytes = 64 << 10

// APIError is an error answered by a Custos (or Azure) API, decoded from the
// Azure error envelope {"error":{"code","message",...}}, the OData envelope,
// or an Entra token-endpoint error {"error","error_description"}.
type APIError struct {
	StatusCode int
	Code       string // error.code, or x-ms-error-code when the body has none
	Message    string
	Target     string
	Details    []ErrorDetail
	Inner      *InnerError
	RequestID  string // correlation ID the server answered with, for the operator
}

// ErrorDetail is one entry of an error's details.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Target  string `json:"target,omitempty"`
}

// InnerError is the innererror of the Log Analytics envelope; Line and Pos
// locate a query syntax error.
type InnerError struct {
	Code       string      `json:"code"`
	Message    string      `json:"message,omitempty"`
	Line       int         `json:"line,omitempty"`
	Pos        int         `json:"pos,omitempty"`
	InnerError *InnerError `json:"innererror,omitempty"`
}

// Error renders the server's code and message first, then details and inner
// errors on their own lines.
func (e *APIError) Error() string {
	var b strings.Builder
	code := e.Code
	if code == "" {
		code = http.StatusText(e.StatusCode)
	}
	fmt.Fprintf(&b, "%s: %s (HTTP %d)", code, strings.TrimSpace(e.Message), e.StatusCode)
	if e.Target != "" {
		fmt.Fprintf(&b, "\n  target: %s", e.Target)
	}
	for in := e.Inner; in != nil; in = in.InnerError {
		fmt.Fprintf(&b, "\n  %s", in.Code)
		if in.Message != "" {
			fmt.Fprintf(&b, ": %s", in.Message)
		}
		if in.Line > 0 {
			fmt.Fprintf(&b, " (line %d, position %d)", in.Line, in.Pos)
		}
	}
	for _, d := range e.Details {
		fmt.Fprintf(&b, "\n  %s: %s", d.Code, d.Message)
		if d.Target != "" {
			fmt.Fprintf(&b, " [%s]", d.Target)
		}
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, "\n  correlation ID: %s", e.RequestID)
	}
	return b.String()
}

// ParseErrorResponse decodes an error response. It never fails: a body in no
// known shape becomes the message, trimmed.
func ParseErrorResponse(status int, header http.Header, body []byte) *APIError {
	e := &APIError{StatusCode: status}
	if header != nil {
		e.Code = header.Get("x-ms-error-code")
		for _, h := range []string{"x-ms-correlation-request-id", "x-ms-request-id"} {
			if v := header.Get(h); v != "" {
				e.RequestID = v
				break
			}
		}
	}
	body = bytes.TrimSpace(body)
	if decodeEnvelope(body, e) {
		return e
	}
	if len(body) > 0 {
		e.Message = printable(body, 500)
	} else {
		e.Message = http.StatusText(status)
	}
	return e
}

// decodeEnvelope fills e from a JSON error body and reports whether the body
// had a recognised shape.
func decodeEnvelope(body []byte, e *APIError) bool {
	if len(body) == 0 || body[0] != '{' {
		return false
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return false
	}
	type azureError struct {
		Code       string        `json:"code"`
		Message    string        `json:"message"`
		Target     string        `json:"target"`
		Details    []ErrorDetail `json:"details"`
		InnerError *InnerError   `json:"innererror"`
	}
	fill := func(a azureError) {
		if a.Code != "" {
			e.Code = a.Code
		}
		e.Message, e.Target, e.Details, e.Inner = a.Message, a.Target, a.Details, a.InnerError
	}
	for _, key := range []string{"error", "odata.error"} {
		v, ok := raw[key]
		if !ok {
			continue
		}
		var a azureError
		if json.Unmarshal(v, &a) == nil && (a.Code != "" || a.Message != "") {
			fill(a)
			return true
		}
		// Entra (OAuth 2.0) errors: {"error":"invalid_client","error_description":"AADSTS..."}.
		var code string
		if json.Unmarshal(v, &code) == nil && code != "" {
			e.Code = code
			var desc string
			if d, ok := raw["error_description"]; ok {
				_ = json.Unmarshal(d, &desc)
			}
			e.Message = firstLine(desc)
			return true
		}
	}
	var a azureError
	if json.Unmarshal(body, &a) == nil && a.Code != "" {
		fill(a)
		return true
	}
	return false
}

// Explain turns errors from the Azure SDK and from TLS into ones that say what
// the server answered or what to do. Other errors are returned unchanged.
func Explain(err error) error {
	if err == nil {
		return nil
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return err
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) && re.RawResponse != nil {
		return fromResponse(re.RawResponse, re.StatusCode)
	}
	var afe *azidentity.AuthenticationFailedError
	if errors.As(err, &afe) {
		if afe.RawResponse != nil {
			e := fromResponse(afe.RawResponse, afe.RawResponse.StatusCode)
			return fmt.Errorf("get a token from the Custos token service: %w", e)
		}
	}
	// azidentity flattens transport errors into its message, so the types
	// below are matched first and the standard library's wording second.
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) || strings.Contains(err.Error(), "certificate signed by unknown authority") {
		return fmt.Errorf("%w\nthe server's certificate is not signed by a trusted CA: pass --ca-file <data-dir>/tls/ca.crt (or set caFile in admin.json)", err)
	}
	var he x509.HostnameError
	if errors.As(err, &he) || strings.Contains(err.Error(), "x509: certificate is valid for") {
		return fmt.Errorf("%w\nthe endpoint's host name is not in the server certificate: use a name the certificate lists (localhost, 127.0.0.1, ...)", err)
	}
	if errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(err.Error(), "connect: connection refused") {
		return fmt.Errorf("%w\nnothing answers at the endpoint: is `custos serve` running there?", err)
	}
	return err
}

func fromResponse(resp *http.Response, status int) *APIError {
	var body []byte
	if resp.Body != nil {
		if s, ok := resp.Body.(io.Seeker); ok {
			_, _ = s.Seek(0, io.SeekStart)
		}
		body, _ = io.ReadAll(io.LimitReader(resp.Body, maxErrorBodyBytes))
	}
	return ParseErrorResponse(status, resp.Header, body)
}

// printable returns at most max runes of b as one trimmed line of valid UTF-8.
func printable(b []byte, max int) string {
	s := strings.ToValidUTF8(string(b), "?")
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > max {
		r := []rune(s)
		s = string(r[:max]) + "..."
	}
	return s
}

// firstLine returns the first line of an Entra error description; the rest is
// trace and correlation IDs, which the error body carries separately.
func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	return s
}
