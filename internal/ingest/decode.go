package ingest

import (
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
	// Capacity is the number of records to allocate the column vectors for
	// up front (capped at MaxCapacityHint); 0 lets them grow from empty. A
	// good guess saves the repeated growing of every vector.
	Capacity int
}

// MaxCapacityHint caps DecodeOptions.Capacity.
const MaxCapacityHint = 8192

// DecodeRecords reads an ingestion body, a JSON array of objects, from r and
// converts it into one column vector per column of schema. It streams: besides
// the vectors it holds one field value at a time (plus a read buffer).
// Properties that name no declared column are ignored (matched first exactly,
// then case-insensitively); missing ones are null. Errors are *Error values
// whose message names the record index and the column.
//
// The JSON is read by a hand-written scanner that accepts exactly what
// encoding/json's Decoder accepts and words its errors the same way, offsets
// included (checked by FuzzDecodeRecordsDifferential against the former
// encoding/json implementation).
func DecodeRecords(r io.Reader, schema store.Schema, opts DecodeOptions) (*store.Batch, error) {
	if opts.MaxFieldBytes <= 0 {
		opts.MaxFieldBytes = DefaultMaxFieldBytes
	}
	d := recordDecoder{
		schema: schema,
		exact:  make(map[string]int, len(schema)),
		fold:   make(map[string]int, len(schema)),
		b:      &store.Batch{Schema: schema, Cols: make([]*store.Vector, len(schema))},
		seen:   make([]bool, len(schema)),
		cv:     converter{maxField: opts.MaxFieldBytes, scanned: true, arena: new(strArena)},
		max:    opts.MaxRecords,
		s:      newBodyScanner(r),
	}
	defer d.s.release()
	for i, c := range schema {
		d.exact[c.Name] = i
		if _, dup := d.fold[strings.ToLower(c.Name)]; !dup {
			d.fold[strings.ToLower(c.Name)] = i
		}
		d.b.Cols[i] = newVector(c.Type, min(opts.Capacity, MaxCapacityHint))
	}
	d.distinct = len(d.exact) == len(schema)
	if err := d.decode(); err != nil {
		return nil, err
	}
	if d.b.Len == 0 && opts.Capacity > 0 {
		for i, c := range schema { // an empty body gives empty vectors, preallocated or not
			d.b.Cols[i] = &store.Vector{Type: c.Type}
		}
	}
	return d.b, nil
}

// newVector returns an empty vector of type t with room for n values.
func newVector(t store.ColumnType, n int) *store.Vector {
	v := &store.Vector{Type: t}
	if n <= 0 {
		return v
	}
	switch t {
	case store.TypeBool:
		v.Bool = make([]bool, 0, n)
	case store.TypeInt, store.TypeLong, store.TypeDatetime, store.TypeTimespan:
		v.Int = make([]int64, 0, n)
	case store.TypeReal, store.TypeDecimal:
		v.Real = make([]float64, 0, n)
	default:
		v.Str = make([]string, 0, n)
	}
	return v
}

// recordDecoder is the state of one DecodeRecords call. Its control flow
// mirrors the encoding/json Token calls of the former implementation (see
// decode_ref_test.go): each step below names the Decoder state it stands for,
// because the error messages depend on it.
type recordDecoder struct {
	schema      store.Schema
	exact, fold map[string]int
	b           *store.Batch
	seen        []bool
	cv          converter
	max         int
	s           *bodyScanner
	key         []byte // the current property name, unquoted
	// next is the column the next property probably names (the one after
	// the last match: records of one body share their key order); only
	// used when the schema's names are distinct, so it finds what exact
	// would.
	next     int
	distinct bool
}

const bodyWhat = "the body is not valid JSON"

func recordWhat(rec int) string { return fmt.Sprintf("record %d is not valid JSON", rec) }

func (d *recordDecoder) decode() error {
	s := d.s
	// The opening '[' (Token in state tokenTopValue).
	c, err := s.peek()
	if err != nil {
		return jsonError(bodyWhat, err)
	}
	switch c {
	case '[':
		s.pos++
	case '{':
		return errNotArray()
	case ']', '}', ':', ',':
		return jsonError(bodyWhat, s.tokenError(c, tokTopValue))
	default:
		if err := s.scanScalarToken(); err != nil {
			return jsonError(bodyWhat, err)
		}
		return errNotArray()
	}

	state := tokArrayStart
	for rec := 0; ; rec++ {
		// More.
		c, err := s.peek()
		if err != nil || c == ']' || c == '}' {
			break
		}
		if d.max > 0 && rec >= d.max {
			return errorf(api.KindInvalid, codeInvalidContent, "The request body has more than %d records.", d.max)
		}
		// Token: the record's '{'.
		if state == tokArrayComma {
			if c != ',' {
				return jsonError(recordWhat(rec), s.tokenError(c, state))
			}
			s.pos++
			state = tokArrayValue
			if c, err = s.peek(); err != nil {
				return jsonError(recordWhat(rec), err)
			}
		}
		switch c {
		case '{':
			s.pos++
		case '[':
			return errorf(api.KindInvalid, codeInvalidContent, "Record %d is not a JSON object.", rec)
		case ']', '}', ':', ',':
			return jsonError(recordWhat(rec), s.tokenError(c, state))
		default:
			if err := s.scanScalarToken(); err != nil {
				return jsonError(recordWhat(rec), err)
			}
			return errorf(api.KindInvalid, codeInvalidContent, "Record %d is not a JSON object.", rec)
		}
		if err := d.record(rec); err != nil {
			return err
		}
		d.b.Len++
		state = tokArrayComma
	}

	// The closing ']'.
	c, err = s.peek()
	if err != nil {
		return jsonError(bodyWhat, err)
	}
	if c != ']' {
		return jsonError(bodyWhat, s.tokenError(c, state))
	}
	s.pos++

	// Nothing may follow (Token in state tokenTopValue must report io.EOF).
	c, err = s.peek()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return jsonError(bodyWhat, err)
	}
	switch c {
	case '[', '{':
	case ']', '}', ':', ',':
		return jsonError(bodyWhat, s.tokenError(c, tokTopValue))
	default:
		if err := s.scanScalarToken(); err != nil {
			return jsonError(bodyWhat, err)
		}
	}
	return errorf(api.KindInvalid, codeInvalidContent, "The request body has data after the JSON array.")
}

func errNotArray() error {
	return errorf(api.KindInvalid, codeInvalidContent, "The request body must be a JSON array of records.")
}

// record reads the properties of record rec after its '{', through the
// closing '}', and completes every column with a value or a null.
func (d *recordDecoder) record(rec int) error {
	s := d.s
	clear(d.seen)
	state := tokObjectStart
	for {
		// More.
		c, err := s.peek()
		if err != nil || c == ']' || c == '}' {
			break
		}
		// Token: the property name.
		if state == tokObjectComma {
			if c != ',' {
				return jsonError(recordWhat(rec), s.tokenError(c, state))
			}
			s.pos++
			state = tokObjectKey
			if c, err = s.peek(); err != nil {
				return jsonError(recordWhat(rec), err)
			}
		}
		if c != '"' {
			return jsonError(recordWhat(rec), s.tokenError(c, state))
		}
		ks, ke, err := s.scanValue()
		if err != nil {
			return jsonError(recordWhat(rec), err)
		}
		q := s.buf[ks:ke]
		d.key = appendUnquoted(d.key[:0], q, isPlain(q, s.esc, s.high))
		col := d.column(d.key)

		// Decode: the ':' (tokenObjectColon), then the value.
		if c, err = s.peek(); err != nil {
			return jsonError(d.propertyWhat(rec), err)
		}
		if c != ':' {
			return jsonError(d.propertyWhat(rec), &syntaxError{"expected colon after object key", s.offset()})
		}
		s.pos++
		vs, ve, err := s.scanValue()
		if err != nil {
			return jsonError(d.propertyWhat(rec), err)
		}
		state = tokObjectComma
		if col < 0 {
			continue
		}
		raw := s.buf[vs:ve]
		v := d.b.Cols[col]
		if d.seen[col] {
			// A repeated property: the last value wins, as with JSON objects generally.
			truncateVector(v, rec)
		}
		d.cv.plain = raw[0] == '"' && isPlain(raw, s.esc, s.high)
		if err := d.cv.append(v, raw); err != nil {
			return errorf(api.KindInvalid, codeInvalidContent,
				"Record %d, column '%s': cannot convert %s to %s: %v.", rec, d.schema[col].Name, describeRaw(raw), d.schema[col].Type, err)
		}
		d.seen[col] = true
	}
	// Token: the closing '}'.
	c, err := s.peek()
	if err != nil {
		return jsonError(recordWhat(rec), err)
	}
	if c != '}' {
		return jsonError(recordWhat(rec), s.tokenError(c, state))
	}
	s.pos++
	for i, ok := range d.seen {
		if !ok {
			appendNull(d.b.Cols[i])
		}
	}
	return nil
}

func (d *recordDecoder) propertyWhat(rec int) string {
	return fmt.Sprintf("record %d, property %q is not valid JSON", rec, truncateUTF8(string(d.key), 128))
}

// column returns the schema index a property name maps to, or -1.
func (d *recordDecoder) column(key []byte) int {
	if g := d.next; d.distinct && g < len(d.schema) && d.schema[g].Name == string(key) {
		d.next = g + 1
		return g
	}
	if i, ok := d.exact[string(key)]; ok {
		d.next = i + 1
		return i
	}
	if i, ok := d.fold[strings.ToLower(string(key))]; ok {
		return i
	}
	return -1
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

// jsonError turns a read or syntax error into a client error, keeping
// size-limit errors from the body reader intact. The wording is that of the
// former encoding/json-based decoder.
func jsonError(what string, err error) error {
	var ie *Error
	if errors.As(err, &ie) {
		return ie
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errorf(api.KindInvalid, codeInvalidContent, "The request content was invalid and could not be deserialized: %s: unexpected end of input.", what)
	}
	var se *syntaxError
	if errors.As(err, &se) {
		return errorf(api.KindInvalid, codeInvalidContent, "The request content was invalid and could not be deserialized: %s: %s at offset %d.", what, se.msg, se.offset)
	}
	if errors.As(err, new(numberRangeError)) {
		return errorf(api.KindInvalid, codeInvalidContent, "The request content was invalid and could not be deserialized: %s.", what)
	}
	// Anything else is a read failure (including a gzip stream error).
	return errorf(api.KindInvalid, codeInvalidContent, "The request content was invalid and could not be read: %s: %v.", what, err)
}
