package query

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"custos/internal/api"
)

// DefaultMaxBodyBytes bounds query and batch request bodies.
const DefaultMaxBodyBytes = 4 << 20

// Body is the JSON body of POST .../query (QueryBody in the Azure SDK).
type Body struct {
	Query      string   `json:"query"`
	Timespan   string   `json:"timespan,omitempty"`
	Workspaces []string `json:"workspaces,omitempty"`
	// Parameters is a Custos extension (the Log Analytics API has none):
	// values of the query's declare query_parameters, each a JSON string
	// (a literal of the parameter's type, or the string itself) or a JSON
	// number, bool, array or object.
	Parameters map[string]json.RawMessage `json:"parameters,omitempty"`
}

// Error is a client-facing query API failure in the Log Analytics envelope.
// It implements api.Coded; Inner becomes the innererror.
type Error struct {
	Code    string
	Kind    api.Kind
	Message string
	Inner   *api.InnerError
}

func (e *Error) Error() string {
	if e.Inner != nil && e.Inner.Message != "" {
		return e.Message + ": " + e.Inner.Message
	}
	return e.Message
}

// AzureError implements api.Coded.
func (e *Error) AzureError() (string, api.Kind) { return e.Code, e.Kind }

// apiError renders e as the wire envelope content.
func (e *Error) apiError(status int) *api.Error {
	return &api.Error{Status: status, Code: e.Code, Message: e.Message, InnerError: e.Inner}
}

const invalidProperties = "The request had some invalid properties"

func badArgument(innerCode, format string, args ...any) *Error {
	return &Error{Code: "BadArgumentError", Kind: api.KindInvalid, Message: invalidProperties,
		Inner: &api.InnerError{Code: innerCode, Message: fmt.Sprintf(format, args...)}}
}

// DecodeBody decodes a query request body. Unknown members are ignored, as
// Azure ignores them; a body that is not a JSON object, or whose query is
// missing, is a BadArgumentError.
func DecodeBody(data []byte) (Body, error) {
	var b Body
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return b, badArgument("QueryValidationError", "The request body is empty; expected {\"query\": \"...\"}.")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&b); err != nil {
		return Body{}, badArgument("QueryValidationError", "Invalid JSON body: %s", describeJSONError(err))
	}
	if dec.More() {
		return Body{}, badArgument("QueryValidationError", "Invalid JSON body: data after the JSON object.")
	}
	if strings.TrimSpace(b.Query) == "" {
		return Body{}, badArgument("QueryValidationError", "Parameter 'query' cannot be null or empty.")
	}
	return b, nil
}

func describeJSONError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("%v at offset %d", se, se.Offset)
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("member %q must not be a JSON %s", te.Field, te.Value)
		}
		return fmt.Sprintf("the body must be a JSON object, not a JSON %s", te.Value)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "unexpected end of input"
	}
	return err.Error()
}

// readBody reads at most limit bytes of the request body.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, badArgument("QueryValidationError", "The request body could not be read.")
	}
	if int64(len(data)) > limit {
		return nil, &Error{Code: "RequestEntityTooLarge", Kind: api.KindTooLarge,
			Message: fmt.Sprintf("The request body exceeds the limit of %d bytes.", limit)}
	}
	return data, nil
}

// requestFromHTTP extracts the query request of a GET (query string) or POST
// (JSON body) request.
func requestFromHTTP(r *http.Request, limit int64) (Body, error) {
	if r.Method == http.MethodGet {
		q := r.URL.Query()
		b := Body{Query: q.Get("query"), Timespan: q.Get("timespan")}
		if ws := q.Get("workspaces"); ws != "" {
			for _, w := range strings.Split(ws, ",") {
				if w = strings.TrimSpace(w); w != "" {
					b.Workspaces = append(b.Workspaces, w)
				}
			}
		}
		if strings.TrimSpace(b.Query) == "" {
			return Body{}, badArgument("QueryValidationError", "Parameter 'query' cannot be null or empty.")
		}
		return b, nil
	}
	data, err := readBody(r, limit)
	if err != nil {
		return Body{}, err
	}
	b, err := DecodeBody(data)
	if err != nil {
		return Body{}, err
	}
	// A timespan in the query string as well: Azure intersects the two.
	if ts := r.URL.Query().Get("timespan"); ts != "" && b.Timespan == "" {
		b.Timespan = ts
	}
	return b, nil
}

// BatchRequest is the body of POST /v1/$batch.
type BatchRequest struct {
	Requests []BatchItem `json:"requests"`
}

// BatchItem is one request of a batch, as the Azure SDK sends it.
type BatchItem struct {
	ID        string            `json:"id"`
	Headers   map[string]string `json:"headers,omitempty"`
	Body      *Body             `json:"body,omitempty"`
	Method    string            `json:"method,omitempty"`
	Path      string            `json:"path,omitempty"`
	Workspace string            `json:"workspace"`
}

// MaxBatchItems bounds the requests of one batch.
const MaxBatchItems = 100

// DecodeBatch decodes and validates a batch body: every request needs an id
// and a workspace, ids are unique, and there are at most MaxBatchItems.
func DecodeBatch(data []byte) (BatchRequest, error) {
	var br BatchRequest
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return br, badArgument("QueryValidationError", "The request body is empty; expected {\"requests\": [...]}.")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&br); err != nil {
		return BatchRequest{}, badArgument("QueryValidationError", "Invalid JSON body: %s", describeJSONError(err))
	}
	if dec.More() {
		return BatchRequest{}, badArgument("QueryValidationError", "Invalid JSON body: data after the JSON object.")
	}
	if len(br.Requests) == 0 {
		return BatchRequest{}, badArgument("QueryValidationError", "The batch has no requests.")
	}
	if len(br.Requests) > MaxBatchItems {
		return BatchRequest{}, badArgument("QueryValidationError", "The batch has %d requests; at most %d are allowed.", len(br.Requests), MaxBatchItems)
	}
	seen := make(map[string]bool, len(br.Requests))
	for i, it := range br.Requests {
		if it.ID == "" {
			return BatchRequest{}, badArgument("QueryValidationError", "Request %d of the batch has no id.", i)
		}
		if seen[it.ID] {
			return BatchRequest{}, badArgument("QueryValidationError", "The batch has more than one request with id '%s'.", truncate(it.ID, 64))
		}
		seen[it.ID] = true
		if it.Workspace == "" {
			return BatchRequest{}, badArgument("QueryValidationError", "Request '%s' of the batch has no workspace.", truncate(it.ID, 64))
		}
	}
	return br, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && (s[n]&0xC0) == 0x80 {
		n--
	}
	return s[:n] + "..."
}
