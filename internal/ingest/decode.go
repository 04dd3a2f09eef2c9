package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"custos/internal/api"
	"custos/internal/store"
)

// DecodeOptions tune DecodeRecords.
type DecodeOptions struct {
	// MaxFieldBytes truncates longer string and dynamic values; 0 means
	// DefaultMaxFieldBytes.
	MaxFieldBytes int
	// MaxRecords bounds the number of records; 0 means no bound beyond the
	// body size limit.
	MaxRecords int
}

// DecodeRecords reads an ingestion body, a JSON array of objects, from r and
// converts it into one column vector per column of schema. It reads token by
// token and never holds more than one field value besides the vectors.
// Properties that name no declared column are ignored (matched first exactly,
// then case-insensitively); missing ones are null. Errors are *Error values
// whose message names the record index and the column.
func DecodeRecords(r io.Reader, schema store.Schema, opts DecodeOptions) (*store.Batch, error) {
	if opts.MaxFieldBytes <= 0 {
		opts.MaxFieldBytes = DefaultMaxFieldBytes
	}
	exact := make(map[string]int, len(schema))
	fold := make(map[string]int, len(schema))
	for i, c := range schema {
		exact[c.Name] = i
		if _, dup := fold[strings.ToLower(c.Name)]; !dup {
			fold[strings.ToLower(c.Name)] = i
		}
	}
	b := &store.Batch{Schema: schema, Cols: make([]*store.Vector, len(schema))}
	for i, c := range schema {
		b.Cols[i] = &store.Vector{Type: c.Type}
	}

	dec := json.NewDecoder(r)
	tok, err := dec.Token()
	if err != nil {
		return nil, jsonError("the body is not valid JSON", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, errorf(api.KindInvalid, codeInvalidContent, "The request body must be a JSON array of records.")
	}
	seen := make([]bool, len(schema))
	var raw json.RawMessage
	for rec := 0; dec.More(); rec++ {
		if opts.MaxRecords > 0 && rec >= opts.MaxRecords {
			return nil, errorf(api.KindInvalid, codeInvalidContent, "The request body has more than %d records.", opts.MaxRecords)
		}
		tok, err := dec.Token()
		if err != nil {
			return nil, jsonError(fmt.Sprintf("record %d is not valid JSON", rec), err)
		}
		if d, ok := tok.(json.Delim); !ok || d != '{' {
			return nil, errorf(api.KindInvalid, codeInvalidContent, "Record %d is not a JSON object.", rec)
		}
		clear(seen)
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return nil, jsonError(fmt.Sprintf("record %d is not valid JSON", rec), err)
			}
			key, ok := tok.(string)
			if !ok {
				return nil, errorf(api.KindInvalid, codeInvalidContent, "Record %d is not valid JSON.", rec)
			}
			if err := dec.Decode(&raw); err != nil {
				return nil, jsonError(fmt.Sprintf("record %d, property %q is not valid JSON", rec, truncateUTF8(key, 128)), err)
			}
			col, ok := exact[key]
			if !ok {
				col, ok = fold[strings.ToLower(key)]
			}
			if !ok {
				continue
			}
			v := b.Cols[col]
			if seen[col] {
				// A repeated property: the last value wins, as with JSON objects generally.
				truncateVector(v, rec)
			}
			if err := appendRaw(v, raw, opts.MaxFieldBytes); err != nil {
				return nil, errorf(api.KindInvalid, codeInvalidContent,
					"Record %d, column '%s': cannot convert %s to %s: %v.", rec, schema[col].Name, describeRaw(raw), schema[col].Type, err)
			}
			seen[col] = true
		}
		if _, err := dec.Token(); err != nil { // the closing '}'
			return nil, jsonError(fmt.Sprintf("record %d is not valid JSON", rec), err)
		}
		for i, ok := range seen {
			if !ok {
				appendNull(b.Cols[i])
			}
		}
		b.Len++
	}
	if _, err := dec.Token(); err != nil { // the closing ']'
		return nil, jsonError("the body is not valid JSON", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err == nil {
			return nil, errorf(api.KindInvalid, codeInvalidContent, "The request body has data after the JSON array.")
		}
		return nil, jsonError("the body is not valid JSON", err)
	}
	return b, nil
}

// truncateVector cuts v back to n values (used when a record repeats a property).
func truncateVector(v *store.Vector, n int) {
	if v.Nulls != nil {
		v.Nulls = v.Nulls[:n]
	}
	switch v.Type {
	case store.TypeBool:
		v.Bool = v.Bool[:n]
	case store.TypeInt, store.TypeLong, store.TypeDatetime, store.TypeTimespan:
		v.Int = v.Int[:n]
	case store.TypeReal, store.TypeDecimal:
		v.Real = v.Real[:n]
	default:
		v.Str = v.Str[:n]
	}
}

// jsonError turns a decoder error into a client error, keeping size-limit
// errors from the body reader intact.
func jsonError(what string, err error) error {
	var ie *Error
	if errors.As(err, &ie) {
		return ie
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errorf(api.KindInvalid, codeInvalidContent, "The request content was invalid and could not be deserialized: %s: unexpected end of input.", what)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return errorf(api.KindInvalid, codeInvalidContent, "The request content was invalid and could not be deserialized: %s: %v at offset %d.", what, se, se.Offset)
	}
	var ue *json.UnmarshalTypeError
	if errors.As(err, &ue) {
		return errorf(api.KindInvalid, codeInvalidContent, "The request content was invalid and could not be deserialized: %s.", what)
	}
	// Anything else is a read failure (including a gzip stream error).
	return errorf(api.KindInvalid, codeInvalidContent, "The request content was invalid and could not be read: %s: %v.", what, err)
}
