package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// record returns a compact JSON object of exactly size bytes.
func record(t testing.TB, i, size int) string {
	t.Helper()
	head := fmt.Sprintf(`{"i":%d,"m":"`, i)
	pad := size - len(head) - 2
	if pad < 0 {
		t.Fatalf("record size %d too small", size)
	}
	return head + strings.Repeat("x", pad) + `"}`
}

type collected struct {
	batches [][]byte
	firsts  []int
	counts  []int
}

func (c *collected) emit(b Batch) error {
	c.batches = append(c.batches, append([]byte(nil), b.Body...))
	c.firsts = append(c.firsts, b.First)
	c.counts = append(c.counts, b.Count)
	return nil
}

func TestSplitRecordsBoundary(t *testing.T) {
	const size = 1000
	// n records in one array take 2 + n*size + (n-1) bytes.
	perBatch := (MaxUploadBytes - 1) / (size + 1)
	exact := 2 + perBatch*size + (perBatch - 1)
	if exact > MaxUploadBytes {
		t.Fatalf("test arithmetic: %d", exact)
	}

	for _, tc := range []struct {
		name    string
		max     int
		records int
		want    []int // records per batch
	}{
		{"exactly the limit", exact, perBatch, []int{perBatch}},
		{"one byte short", exact - 1, perBatch, []int{perBatch - 1, 1}},
		{"default limit, one over", 0, perBatch + 1, []int{perBatch, 1}},
		{"three batches", 0, 2*perBatch + 5, []int{perBatch, perBatch, 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var in strings.Builder
			in.WriteString("[\n")
			for i := range tc.records {
				if i > 0 {
					in.WriteString(",\n")
				}
				in.WriteString(record(t, i, size))
			}
			in.WriteString("\n]\n")
			var c collected
			st, err := SplitRecords(strings.NewReader(in.String()), tc.max, c.emit)
			if err != nil {
				t.Fatal(err)
			}
			limit := tc.max
			if limit == 0 {
				limit = MaxUploadBytes
			}
			if fmt.Sprint(c.counts) != fmt.Sprint(tc.want) {
				t.Fatalf("records per batch = %v; want %v", c.counts, tc.want)
			}
			next := 0
			var total int64
			for bi, b := range c.batches {
				if len(b) > limit {
					t.Errorf("batch %d is %d bytes; limit %d", bi, len(b), limit)
				}
				total += int64(len(b))
				var recs []map[string]any
				if err := json.Unmarshal(b, &recs); err != nil {
					t.Fatalf("batch %d is not a JSON array: %v", bi, err)
				}
				if c.firsts[bi] != next {
					t.Errorf("batch %d First = %d; want %d", bi, c.firsts[bi], next)
				}
				for _, r := range recs {
					if int(r["i"].(float64)) != next {
						t.Fatalf("record order: got %v; want %d", r["i"], next)
					}
					next++
				}
			}
			if next != tc.records || st.Records != tc.records || st.Batches != len(tc.want) || st.Bytes != total {
				t.Errorf("stats %+v, %d records seen; want %d records, %d batches, %d bytes", st, next, tc.records, len(tc.want), total)
			}
		})
	}
}

func TestSplitRecordsJSONLines(t *testing.T) {
	in := "\xef\xbb\xbf" + `{"a":1,"big":12345678901234567890}
{"a":2, "s":"x y"}

  {"a":3,"nested":{"k":[1,2]}}` + "\r\n"
	var c collected
	st, err := SplitRecords(strings.NewReader(in), 0, c.emit)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"a":1,"big":12345678901234567890},{"a":2,"s":"x y"},{"a":3,"nested":{"k":[1,2]}}]`
	if st.Records != 3 || len(c.batches) != 1 || string(c.batches[0]) != want {
		t.Fatalf("got %d records, batches %q; want %s", st.Records, c.batches, want)
	}
}

func TestSplitRecordsErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "  \n", "input is empty"},
		{"empty array", "[]", "no records"},
		{"array of numbers", `[{"a":1}, 5]`, "record 2 (near byte"},
		{"jsonl string", `{"a":1}` + "\n\"x\"", "record 2 (near byte 11): want a JSON object, got a string"},
		{"malformed line", "{\"a\":1}\n{\"a\":}", "record 2"},
		{"after array", `[{"a":1}] {"b":2}`, "data after the JSON array"},
		{"unterminated array", `[{"a":1}`, "after record 1"},
		{"stray bracket", "{\"a\":1}\n]", "record 2"},
		{"too big", `[{"m":"` + strings.Repeat("x", 200) + `"}]`, "record 1 is 208 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c collected
			_, err := SplitRecords(strings.NewReader(tc.in), 100, c.emit)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v; want error containing %q", err, tc.want)
			}
		})
	}
}

func TestSplitRecordsEmitErrorStops(t *testing.T) {
	var in bytes.Buffer
	for i := range 10 {
		in.WriteString(record(t, i, 40) + "\n")
	}
	boom := errors.New("server said no")
	calls := 0
	st, err := SplitRecords(&in, 100, func(b Batch) error {
		calls++
		if calls == 3 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v; want %v", err, boom)
	}
	// 100-byte batches hold two 40-byte records; two batches went through.
	if calls != 3 || st.Batches != 2 || st.Records != 4 {
		t.Fatalf("calls %d, stats %+v; want 3 calls, 2 batches, 4 records", calls, st)
	}
}

func FuzzSplitRecords(f *testing.F) {
	f.Add([]byte(`[{"a":1},{"b":"x"}]`), 64)
	f.Add([]byte("{\"a\":1}\n{\"b\":[1,2,{}]}\n"), 20)
	f.Add([]byte(`[{"a":1}] x`), 0)
	f.Add([]byte("\xef\xbb\xbf[ ]"), 10)
	f.Fuzz(func(t *testing.T, in []byte, max int) {
		if max > 4096 || max < -1 {
			max = 4096
		}
		limit := max
		if limit <= 0 {
			limit = MaxUploadBytes
		}
		records := 0
		st, err := SplitRecords(bytes.NewReader(in), max, func(b Batch) error {
			if len(b.Body) > limit {
				t.Fatalf("batch of %d bytes over limit %d", len(b.Body), limit)
			}
			var recs []map[string]json.RawMessage
			if err := json.Unmarshal(b.Body, &recs); err != nil {
				t.Fatalf("batch is not an array of objects: %v: %q", err, b.Body)
			}
			if len(recs) != b.Count || b.First != records {
				t.Fatalf("batch First %d Count %d; have %d records, %d so far", b.First, b.Count, len(recs), records)
			}
			records += len(recs)
			return nil
		})
		if st.Records != records {
			t.Fatalf("stats %d records; emitted %d (err %v)", st.Records, records, err)
		}
	})
}
