package ingest

// This file keeps the encoding/json-based body decoder that DecodeRecords
// replaced, as the reference the scanner is checked against
// (FuzzDecodeRecordsDifferential, TestDecodeRecordsMatchesReference).

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"custos/internal/api"
	"custos/internal/store"
)

// decodeRecordsStd reads an ingestion body, a JSON array of objects, from r and
// converts it into one column vector per column of schema. It reads token by
// token and never holds more than one field value besides the vectors.
// Properties that name no declared column are ignored (matched first exactly,
// then case-insensitively); missing ones are null. Errors are *Error values
// whose message names the record index and the column.
func decodeRecordsStd(r io.Reader, schema store.Schema, opts DecodeOptions) (*store.Batch, error) {
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
		return nil, jsonErrorStd("the body is not valid JSON", err)
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
			return nil, jsonErrorStd(fmt.Sprintf("record %d is not valid JSON", rec), err)
		}
		if d, ok := tok.(json.Delim); !ok || d != '{' {
			return nil, errorf(api.KindInvalid, codeInvalidContent, "Record %d is not a JSON object.", rec)
		}
		clear(seen)
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return nil, jsonErrorStd(fmt.Sprintf("record %d is not valid JSON", rec), err)
			}
			key, ok := tok.(string)
			if !ok {
				return nil, errorf(api.KindInvalid, codeInvalidContent, "Record %d is not valid JSON.", rec)
			}
			if err := dec.Decode(&raw); err != nil {
				return nil, jsonErrorStd(fmt.Sprintf("record %d, property %q is not valid JSON", rec, truncateUTF8(key, 128)), err)
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
			if err := appendRawStd(v, raw, opts.MaxFieldBytes); err != nil {
				return nil, errorf(api.KindInvalid, codeInvalidContent,
					"Record %d, column '%s': cannot convert %s to %s: %v.", rec, schema[col].Name, describeRaw(raw), schema[col].Type, err)
			}
			seen[col] = true
		}
		if _, err := dec.Token(); err != nil { // the closing '}'
			return nil, jsonErrorStd(fmt.Sprintf("record %d is not valid JSON", rec), err)
		}
		for i, ok := range seen {
			if !ok {
				appendNull(b.Cols[i])
			}
		}
		b.Len++
	}
	if _, err := dec.Token(); err != nil { // the closing ']'
		return nil, jsonErrorStd("the body is not valid JSON", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err == nil {
			return nil, errorf(api.KindInvalid, codeInvalidContent, "The request body has data after the JSON array.")
		}
		return nil, jsonErrorStd("the body is not valid JSON", err)
	}
	return b, nil
}

// jsonError turns a decoder error into a client error, keeping size-limit
// errors from the body reader intact.
func jsonErrorStd(what string, err error) error {
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

// appendRaw converts one raw JSON value to the vector's type and appends it.
// On error nothing is appended. maxField bounds string and dynamic values.
func appendRawStd(v *store.Vector, raw []byte, maxField int) error {
	kind := rawKind(raw)
	if kind == 'n' {
		appendNull(v)
		return nil
	}
	if kind == '"' && v.Type != store.TypeString && v.Type != store.TypeDynamic && string(bytes.TrimSpace(raw)) == `""` {
		appendNull(v) // an empty string is null for typed columns, as todatetime("") is
		return nil
	}
	switch v.Type {
	case store.TypeString:
		s, err := toStringValueStd(raw, kind)
		if err != nil {
			return err
		}
		v.Str = append(v.Str, truncateUTF8(s, maxField))
		return nil
	case store.TypeDynamic:
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return err
		}
		s := buf.String()
		if len(s) > maxField {
			// A cut JSON document is not JSON any more: keep the truncated text as a dynamic string.
			b, _ := json.Marshal(truncateUTF8(s, maxField))
			s = string(b)
		}
		markNotNull(v)
		v.Str = append(v.Str, s)
		return nil
	case store.TypeBool:
		b, err := toBoolStd(raw, kind)
		if err != nil {
			return err
		}
		markNotNull(v)
		v.Bool = append(v.Bool, b)
		return nil
	case store.TypeInt, store.TypeLong:
		n, err := toIntStd(raw, kind, v.Type == store.TypeInt)
		if err != nil {
			return err
		}
		markNotNull(v)
		v.Int = append(v.Int, n)
		return nil
	case store.TypeReal, store.TypeDecimal:
		f, err := toRealStd(raw, kind)
		if err != nil {
			return err
		}
		markNotNull(v)
		v.Real = append(v.Real, f)
		return nil
	case store.TypeDatetime:
		if kind != '"' {
			return errors.New("a datetime must be an ISO 8601 string")
		}
		s, err := rawStringStd(raw)
		if err != nil {
			return err
		}
		t, err := ParseDatetime(s)
		if err != nil {
			return err
		}
		markNotNull(v)
		v.Int = append(v.Int, t)
		return nil
	case store.TypeTimespan:
		var ticks int64
		switch kind {
		case '"':
			s, err := rawStringStd(raw)
			if err != nil {
				return err
			}
			if ticks, err = ParseTimespan(s); err != nil {
				return err
			}
		case '0':
			n, err := toIntStd(raw, kind, false)
			if err != nil {
				return err
			}
			ticks = n
		default:
			return errors.New("a timespan must be a string such as \"1.02:03:04\"")
		}
		markNotNull(v)
		v.Int = append(v.Int, ticks)
		return nil
	case store.TypeGUID:
		if kind != '"' {
			return errors.New("a guid must be a string")
		}
		s, err := rawStringStd(raw)
		if err != nil {
			return err
		}
		g, err := ParseGUID(s)
		if err != nil {
			return err
		}
		markNotNull(v)
		v.Str = append(v.Str, g)
		return nil
	}
	return fmt.Errorf("unsupported column type %s", v.Type)
}

func toStringValueStd(raw []byte, kind byte) (string, error) {
	switch kind {
	case '"':
		return rawStringStd(raw)
	case '{', '[':
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return "", err
		}
		return buf.String(), nil
	default: // numbers and booleans keep their JSON text
		return string(bytes.TrimSpace(raw)), nil
	}
}

func toBoolStd(raw []byte, kind byte) (bool, error) {
	switch kind {
	case 't':
		return true, nil
	case 'f':
		return false, nil
	case '"':
		s, err := rawStringStd(raw)
		if err != nil {
			return false, err
		}
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "true", "1":
			return true, nil
		case "false", "0":
			return false, nil
		}
	case '0':
		switch string(bytes.TrimSpace(raw)) {
		case "1":
			return true, nil
		case "0":
			return false, nil
		}
	}
	return false, errors.New("not a boolean")
}

func toIntStd(raw []byte, kind byte, int32Range bool) (int64, error) {
	var s string
	switch kind {
	case '0':
		s = string(bytes.TrimSpace(raw))
	case '"':
		var err error
		if s, err = rawStringStd(raw); err != nil {
			return 0, err
		}
		s = strings.TrimSpace(s)
	case 't':
		return 1, nil
	case 'f':
		return 0, nil
	default:
		return 0, errors.New("not a number")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// JSON writers may print integral values as 1e3 or 12.0.
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || math.IsNaN(f) || math.IsInf(f, 0) || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
			return 0, errors.New("not an integer")
		}
		n = int64(f)
	}
	if int32Range && (n < math.MinInt32 || n > math.MaxInt32) {
		return 0, errors.New("out of range for int")
	}
	return n, nil
}

func toRealStd(raw []byte, kind byte) (float64, error) {
	var s string
	switch kind {
	case '0':
		s = string(bytes.TrimSpace(raw))
	case '"':
		var err error
		if s, err = rawStringStd(raw); err != nil {
			return 0, err
		}
		s = strings.TrimSpace(s)
	default:
		return 0, errors.New("not a number")
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
			return f, nil // ±Inf or 0 for out-of-range magnitudes, as .NET parses them
		}
		return 0, errors.New("not a number")
	}
	return f, nil
}

// rawString unquotes a raw JSON string.
func rawStringStd(raw []byte) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", err
	}
	return s, nil
}
