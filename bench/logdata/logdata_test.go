package logdata

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestBatchIsValidDeterministicJSON(t *testing.T) {
	g := New(Options{Seed: 7, Rows: 10_000, End: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)})
	a, st := g.AppendBatch(nil, 500, 1000)
	b, _ := New(Options{Seed: 7, Rows: 10_000, End: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)}).AppendBatch(nil, 500, 1000)
	if !bytes.Equal(a, b) {
		t.Fatal("the same batch differs between two generators with the same seed")
	}
	if c, _ := g.AppendBatch(nil, 1500, 1000); bytes.Equal(a, c) {
		t.Fatal("two different batches are equal")
	}
	var recs []map[string]any
	if err := json.Unmarshal(a, &recs); err != nil {
		t.Fatalf("batch is not a JSON array: %v", err)
	}
	if len(recs) != 1000 || st.Rows != 1000 || st.RawBytes != len(a) {
		t.Fatalf("%d records, stats %+v, %d bytes", len(recs), st, len(a))
	}
	if per := len(a) / 1000; per < 850 || per > 1200 {
		t.Fatalf("%d bytes per record; want about 1 KB", per)
	}
	ids := map[string]bool{}
	for _, r := range recs {
		for _, c := range Columns {
			if _, ok := r[c.Name]; !ok {
				t.Fatalf("record lacks %s: %v", c.Name, r)
			}
		}
		ts, err := time.Parse(time.RFC3339Nano, r["TimeGenerated"].(string))
		if err != nil || ts.Before(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) || !ts.Before(time.Date(2026, 1, 2, 0, 0, 1, 0, time.UTC)) {
			t.Fatalf("TimeGenerated %v (%v) outside the span", r["TimeGenerated"], err)
		}
		ids[r["RequestId"].(string)] = true
	}
	if len(ids) != 1000 {
		t.Fatalf("%d distinct RequestIds in 1000 records", len(ids))
	}
}

func TestRareTermFrequency(t *testing.T) {
	g := New(Options{Seed: 1, Rows: 2_000_000})
	rare, rows := 0, 0
	var buf []byte
	for first := 0; first < 400_000; first += 1000 {
		var st Batch
		buf, st = g.AppendBatch(buf[:0], first, 1000)
		rare += st.Rare
		rows += st.Rows
		if got := strings.Count(string(buf), RareTerm); got != st.Rare {
			t.Fatalf("batch %d: %d occurrences of the rare term; stats say %d", first, got, st.Rare)
		}
	}
	if rare == 0 || rare > 10 {
		t.Fatalf("%d rare records in %d; want about %d", rare, rows, RarePerMillion*rows/1_000_000)
	}
	for _, w := range g.vocab {
		if w == RareTerm {
			t.Fatal("the vocabulary contains the rare term")
		}
	}
}

func BenchmarkAppendBatch(b *testing.B) {
	g := New(Options{Seed: 1, Rows: 1 << 30})
	var buf []byte
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		var st Batch
		buf, st = g.AppendBatch(buf[:0], i*1000, 1000)
		b.SetBytes(int64(st.RawBytes))
	}
}
