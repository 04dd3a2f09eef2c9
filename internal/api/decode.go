package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// DefaultMaxBodyBytes bounds control-plane request bodies.
const DefaultMaxBodyBytes = 4 << 20

// DecodeJSON decodes the request body into v strictly: unknown fields, trailing
// data and bodies over maxBytes (DefaultMaxBodyBytes when 0) are errors in the
// Azure envelope.
func DecodeJSON(r *http.Request, v any, maxBytes int64) error {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBodyBytes
	}
	body := io.LimitReader(r.Body, maxBytes+1)
	data, err := io.ReadAll(body)
	if err != nil {
		return Errorf(http.StatusBadRequest, "InvalidRequestContent", "The request body could not be read: %v", err)
	}
	if int64(len(data)) > maxBytes {
		return Errorf(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "The request body exceeds the limit of %d bytes.", maxBytes)
	}
	return UnmarshalStrict(data, v)
}

// UnmarshalStrict decodes data into v, rejecting unknown fields and trailing data.
func UnmarshalStrict(data []byte, v any) error {
	if len(data) == 0 {
		return Errorf(http.StatusBadRequest, "InvalidRequestContent", "The request body is empty.")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return Errorf(http.StatusBadRequest, "InvalidRequestContent", "The request content was invalid and could not be deserialized: %s", describeJSONError(err))
	}
	if dec.More() {
		return Errorf(http.StatusBadRequest, "InvalidRequestContent", "The request content has data after the JSON value.")
	}
	return nil
}

func describeJSONError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at offset %d: %v", se.Offset, se)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q: cannot use a JSON %s as %s", te.Field, te.Value, te.Type)
	}
	return err.Error()
}
