package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"custos/internal/api"
	"custos/internal/store"
)

// diffSchema has a column of every type, and two that differ only in case.
var diffSchema = append(append(store.Schema{}, testSchema...),
	store.Column{Name: "Data", Type: store.TypeDynamic}, store.Column{Name: "data", Type: store.TypeString},
	store.Column{Name: "Dec", Type: store.TypeDecimal})

// checkSameAsReference decodes body with DecodeRecords and with the former
// encoding/json implementation and fails unless both give the same batch or
// the same error (code, kind and message, offsets included). It reads the
// body in chunks of every size in chunks, so values straddle buffer refills,
// every other read with preallocated column vectors (DecodeOptions.Capacity).
func checkSameAsReference(t *testing.T, body []byte, opts DecodeOptions, chunks ...int) {
	t.Helper()
	want, wantErr := decodeRecordsStd(bytes.NewReader(body), diffSchema, opts)
	readers := []io.Reader{bytes.NewReader(body)}
	for _, n := range chunks {
		readers = append(readers, &chunkReader{data: body, n: n})
	}
	for i, r := range readers {
		o := opts
		if i%2 == 1 {
			o.Capacity = 3 // preallocated vectors (the API passes the last body's record count)
		}
		got, err := DecodeRecords(r, diffSchema, o)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("body %q (%T): err = %v; want %v", clip(body), r, err, wantErr)
		}
		if err != nil {
			var ge, we *Error
			if !errors.As(err, &ge) || !errors.As(wantErr, &we) || *ge != *we {
				t.Fatalf("body %q (%T):\n got error %#v\nwant error %#v", clip(body), r, err, wantErr)
			}
			continue
		}
		if !sameBatch(got, want) {
			t.Fatalf("body %q (%T):\n got %s\nwant %s", clip(body), r, dumpBatch(got), dumpBatch(want))
		}
	}
}

// chunkReader returns at most n bytes per Read.
type chunkReader struct {
	data []byte
	n    int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(c.n, len(p), len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

func clip(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

func sameBatch(a, b *store.Batch) bool {
	if a.Len != b.Len || len(a.Cols) != len(b.Cols) {
		return false
	}
	for i := range a.Cols {
		x, y := a.Cols[i], b.Cols[i]
		if x.Type != y.Type || !reflect.DeepEqual(x.Str, y.Str) || !reflect.DeepEqual(x.Int, y.Int) ||
			!reflect.DeepEqual(x.Bool, y.Bool) || !reflect.DeepEqual(x.Nulls, y.Nulls) || len(x.Real) != len(y.Real) {
			return false
		}
		for j := range x.Real {
			if math.Float64bits(x.Real[j]) != math.Float64bits(y.Real[j]) {
				return false
			}
		}
	}
	return true
}

func dumpBatch(b *store.Batch) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%d rows:", b.Len)
	for i, c := range b.Cols {
		fmt.Fprintf(&sb, " %s=%q%v%v%v%v", b.Schema[i].Name, c.Str, c.Int, c.Real, c.Bool, c.Nulls)
	}
	return sb.String()
}

// diffCases are bodies chosen to reach every branch of the scanner and of the
// Decoder states it stands in for: each is decoded by both implementations.
var diffCases = []string{
	``, ` `, `[]`, ` [ ] `, `[]  `, "[]\n\t", `[{}]`, `[{},{}]`, `[ { } , { } ]`,
	`{}`, `{"a":1}`, `"text"`, `"te`, `1`, `-`, `1e999`, `-1e999`, `1e-999`, `tru`, `trux`, `nul`, `x`, `]`, `}`, `:`, `,`,
	`[`, `[[`, `[[]]`, `[1]`, `["s"]`, `[1e999]`, `[true]`, `[null]`, `[nul`, `[1x]`, `[}`, `[]]`, `[]}`, `[],`, `[]:`,
	`[] []`, `[] {}`, `[] 1`, `[] 1e999`, `[] "x"`, `[] "x`, `[] x`, `[] tru`, `[] nulx`,
	`[{}`, `[{},`, `[{},]`, `[{} {}]`, `[{}{}]`, `[{},,{}]`, `[,{}]`, `[{}]}`, `[{]`, `[{}}]`, `[{"a":1]`, `[{"a":1}}`,
	`[{"a"}]`, `[{"a" 1}]`, `[{"a":}]`, `[{"a":,}]`, `[{"a":1,}]`, `[{"a":1 "b":2}]`, `[{"a":1,,"b":2}]`, `[{,}]`, `[{1:2}]`,
	`[{"a":1}`, `[{"a":1`, `[{"a":12`, `[{"a":"x`, `[{"a":"x"`, `[{"a":`, `[{"a"`, `[{"a`, `[{"`, `[{`, `[{"a":tr`, `[{"a":true`,
	`[{"a":01}]`, `[{"a":-01}]`, `[{"a":1.}]`, `[{"a":1.e5}]`, `[{"a":1e}]`, `[{"a":1e+}]`, `[{"a":1E-2}]`, `[{"a":-}]`,
	`[{"a":.5}]`, `[{"a":+1}]`, `[{"a":1x}]`, `[{"a":truex}]`, `[{"a":nulL}]`, `[{"a":fals}]`, `[{"a":falsey}]`,
	`[{"a":"\x"}]`, `[{"a":"\u12"}]`, `[{"a":"\u12G4"}]`, `[{"a":"` + "\x01" + `"}]`, `[{"a":"` + "\x7f\xff" + `"}]`,
	`[{"a":{"b":[1,{"c":[]}]}}]`, `[{"a":{"b" 1}}]`, `[{"a":{"b":1,}}]`, `[{"a":{,}}]`, `[{"a":[1,]}]`, `[{"a":[,1]}]`,
	`[{"a":[1 2]}]`, `[{"a":{"b":1 "c":2}}]`, `[{"a":[}]`, `[{"a":{]}]`, `[{"a":{"b":1]}]`, `[{"a":[1}]`, `[{"a":{1:1}}]`,
	`[{"a":[[[[[[]]]]]]}]`, `[{"a":{"":{}}}]`,
	// Conversions.
	`[{"TimeGenerated":"2024-01-02T03:04:05.1234567Z","Computer":"web-1","Count":"42","Small":7,"Ratio":"1.5","Ok":"true"}]`,
	`[{"Props":{"a":[1, 2], "b" : "x y"},"Id":"{0F8FAD5B-D9CB-469F-A165-70867728950E}","Took":"1.02:03:04.5"}]`,
	`[{"computer": 12, "count": 1e3, "Ratio": 2, "Ok": false, "Props": "text", "Took": 10}]`,
	`[{"Computer":{"x": [1, "a b"]}},{"Computer":[ ]},{"Computer":true},{"Computer":-1.5e3},{"Computer":null}]`,
	`[{"Computer":"\u00e9\ud83d\ude00\ud800\udc00x\ud800","Props":"\ud800\u0041","Data":{"k":"\n\t\"\\\/"}}]`,
	`[{"Computer":"` + "\xc3\x28 \xed\xa0\x80 \xef\xbf\xbd" + `"},{"Props":["` + "\xff" + `"]}]`,
	`[{"Count":1,"Count":null},{"Count":2,"count":3},{"COUNT":4}]`, `[{"data":1,"Data":2,"DATA":3}]`,
	`[{"Count":"abc"}]`, `[{"Count":1.5}]`, `[{"Count":"1e3"}]`, `[{"Count":9223372036854775807}]`, `[{"Count":9223372036854775808}]`,
	`[{"Count":" 12 "}]`, `[{"Count":true}]`, `[{"Count":[1]}]`, `[{"Small":3000000000}]`, `[{"Small":-2147483648}]`,
	`[{"Ratio":"NaN"}]`, `[{"Ratio":"Infinity"}]`, `[{"Ratio":1e400}]`, `[{"Ratio":"x"}]`, `[{"Ratio":[1]}]`, `[{"Ratio":true}]`, `[{"Dec":"0.1"}]`,
	`[{"Ok":1},{"Ok":0},{"Ok":"TRUE"},{"Ok":" false "},{"Ok":2}]`, `[{"Ok":"maybe"}]`, `[{"Ok":{}}]`,
	`[{"TimeGenerated":"yesterday"}]`, `[{"TimeGenerated":12}]`, `[{"TimeGenerated":""}]`, `[{"TimeGenerated":"2024-02-30T00:00:00Z"}]`,
	`[{"TimeGenerated":"2024-01-02T03:04:05+01:00"},{"TimeGenerated":"2024-01-02 03:04:05"},{"TimeGenerated":"0000-01-01T00:00:00Z"}]`,
	`[{"Id":"not-a-guid"}]`, `[{"Id":1}]`, `[{"Id":""}]`, `[{"Took":"25:00:00"}]`, `[{"Took":true}]`, `[{"Took":1.5}]`,
	`[{"Props":null,"Data":[]},{"Props":" "}]`, `[{"Computer":""},{"Props":""}]`,
	`[{"x":1,"Computer":"a"},{"Computer":"b","y":{"deep":[1,2,{"z":null}]}}]`,
	`[{"Compu\u0074er":"escaped key"},{"` + "\xff" + `":1}]`,
}

func TestDecodeRecordsMatchesReference(t *testing.T) {
	for _, body := range diffCases {
		checkSameAsReference(t, []byte(body), DecodeOptions{MaxFieldBytes: 16}, 1, 2, 3, 7)
		checkSameAsReference(t, []byte(body), DecodeOptions{MaxRecords: 2})
	}
	// Values longer than the scanner's buffer, field truncation, depth limits.
	long := strings.Repeat("é", 40_000)
	for _, body := range []string{
		`[{"Computer":"` + long + `","Props":["` + long + `"],"Data":"` + long + `"}]`,
		`[{"Computer":"` + strings.Repeat("a\\n", 30_000) + `"}]`,
		`[{"Props":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}]`,
		`[{"Props":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}]`,
		`[{"Props":` + strings.Repeat(`{"a":`, 10001) + `1` + strings.Repeat("}", 10001) + `}]`,
		`[{"Count":` + strings.Repeat("1", 70_000) + `}]`,
		`[{"Computer":` + strings.Repeat("1", 70_000) + `}]`,
		`[{"Computer":"x"` + strings.Repeat(" ", 100_000) + `}]`,
		string(benchBody(200, 2)),
	} {
		checkSameAsReference(t, []byte(body), DecodeOptions{}, 1000, 4096)
	}
}

// TestDecodeRecordsReadErrors checks that read errors (the body size limit, a
// failing reader) are reported as such.
func TestDecodeRecordsReadErrors(t *testing.T) {
	body := benchBody(20, 3)
	_, err := DecodeRecords(&countingReader{r: bytes.NewReader(body), limit: int64(len(body) / 2), declared: -1}, diffSchema, DecodeOptions{})
	var ie *Error
	if !errors.As(err, &ie) || ie.Kind != api.KindTooLarge {
		t.Errorf("over the limit: err = %v; want ContentLengthLimitExceeded", err)
	}
	_, err = DecodeRecords(iotest.TimeoutReader(bytes.NewReader(body)), diffSchema, DecodeOptions{})
	// Where the error surfaces depends on how much each implementation reads
	// ahead, so only its kind is compared.
	if !errors.As(err, &ie) || ie.Kind != api.KindInvalid || !strings.Contains(err.Error(), "could not be read: ") || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("failing reader: err = %v; want a read error", err)
	}
	_, werr := decodeRecordsStd(iotest.TimeoutReader(bytes.NewReader(body)), diffSchema, DecodeOptions{})
	if werr == nil {
		t.Errorf("reference accepted a failing reader")
	}
}

// FuzzDecodeRecordsDifferential checks DecodeRecords against the former
// encoding/json implementation on arbitrary bodies, valid and invalid: same
// batch or same error, also when the body arrives in small reads. It also
// checks that encoding/json's own verdict (json.Valid) agrees on whether the
// body is JSON at all when the reference reports a syntax problem.
func FuzzDecodeRecordsDifferential(f *testing.F) {
	for _, s := range diffCases {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, body []byte, chunk uint8) {
		checkSameAsReference(t, body, DecodeOptions{MaxFieldBytes: 24}, int(chunk%16)+1)
		if _, err := DecodeRecords(bytes.NewReader(body), diffSchema, DecodeOptions{}); err == nil && !json.Valid(body) {
			t.Fatalf("body %q accepted, but it is not valid JSON", clip(body))
		}
	})
}
