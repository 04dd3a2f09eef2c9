package store

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
)

// TestSelectCodesOnly checks SelectHints.CodesOnly: a dictionary-encoded
// string column comes back codes-only (Str nil) from a part, whether the
// block is decoded fresh or unpacked from the chunk cache, and whole or cut
// by the time range; a column not dictionary-encoded and memtable rows come
// back with Str; and the rows, read through the codes, are the rows of the
// same Select without the hint.
func TestSelectCodesOnly(t *testing.T) {
	env := newEnv(t)
	db := env.open(t, withReadCache)
	defer db.Close()
	ctx := context.Background()
	ref := TableRef{WorkspaceID: testWS, Table: "Codes_CL"}
	schema := Schema{{"TimeGenerated", TypeDatetime}, {"Level", TypeString}, {"Msg", TypeString}}
	if err := db.EnsureTable(ctx, ref, schema, 0); err != nil {
		t.Fatal(err)
	}
	batch := func(lo, n int) *Batch {
		b := &Batch{Schema: schema, Len: n, Cols: []*Vector{{Type: TypeDatetime}, {Type: TypeString}, {Type: TypeString}}}
		for i := lo; i < lo+n; i++ {
			b.Cols[0].Int = append(b.Cols[0].Int, TicksFromTime(baseTime)+int64(i)*TicksPerSecond)
			b.Cols[1].Str = append(b.Cols[1].Str, []string{"Error", "", "Warning", "Info"}[i%4])
			b.Cols[2].Str = append(b.Cols[2].Str, fmt.Sprintf("message %d", i))
		}
		return b
	}
	commit(t, db, ref, batch(0, 500))
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	commit(t, db, ref, batch(500, 10)) // stays in the memtable
	from := TicksFromTime(baseTime) + 100*TicksPerSecond
	for _, tr := range []TimeRange{AllTime, {From: from, To: from + 300*TicksPerSecond}} {
		want := codesRows(t, db, ref, tr, SelectHints{}, nil)
		// Cold (fresh decode), second read (admitted to the cache), warm (unpacked).
		for round := range 3 {
			var kinds []string
			got := codesRows(t, db, ref, tr, SelectHints{CodesOnly: []string{"Level", "Msg", "Nope"}}, &kinds)
			if !slices.Equal(got, want) {
				t.Fatalf("range %v round %d: codes-only rows differ:\n%v\n%v", tr, round, got[:3], want[:3])
			}
			if !slices.Contains(kinds, "Level:codes") || (tr == AllTime) != slices.Contains(kinds, "Level:str") {
				t.Fatalf("range %v round %d: Level came back as %v, want codes-only from the part and Str from the memtable (not in the cut range)", tr, round, kinds)
			}
			if slices.Contains(kinds, "Msg:codes") {
				t.Fatalf("range %v round %d: Msg (not dictionary-encoded) came back codes-only", tr, round)
			}
		}
	}

	// A chunk first decoded codes-only (cold, then admitted on its second
	// read: packed from Dict and Codes) comes back with Str to a reader
	// without the hint, and codes-only again to one with it.
	ref2 := TableRef{WorkspaceID: testWS, Table: "Codes2_CL"}
	if err := db.EnsureTable(ctx, ref2, schema, 0); err != nil {
		t.Fatal(err)
	}
	commit(t, db, ref2, batch(0, 300))
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	codes := SelectHints{CodesOnly: []string{"Level"}}
	var kinds []string
	first := codesRows(t, db, ref2, AllTime, codes, &kinds)
	if !slices.Contains(kinds, "Level:codes") || slices.Contains(kinds, "Level:str") {
		t.Fatalf("cold read: Level came back as %v, want codes-only", kinds)
	}
	before := db.rcache.bytes
	codesRows(t, db, ref2, AllTime, codes, nil)
	if db.rcache.bytes <= before {
		t.Fatalf("second codes-only read admitted nothing to the cache (%d bytes before and after)", before)
	}
	kinds = nil
	eager := codesRows(t, db, ref2, AllTime, SelectHints{}, &kinds)
	if !slices.Equal(eager, first) || !slices.Contains(kinds, "Level:str") || slices.Contains(kinds, "Level:codes") {
		t.Fatalf("reader without the hint after a codes-only admission: kinds %v, rows equal %v", kinds, slices.Equal(eager, first))
	}
	kinds = nil
	if warm := codesRows(t, db, ref2, AllTime, codes, &kinds); !slices.Equal(warm, first) || slices.Contains(kinds, "Level:str") {
		t.Fatalf("warm codes-only read: kinds %v, rows equal %v", kinds, slices.Equal(warm, first))
	}
}

// TestColdCodesOnlyNoStr checks the fresh decode of a codes-only column:
// the dictionary decoder builds no Str (directly, and in bytes allocated by
// a cold Select with the chunk cache off: 16 bytes a row less than without
// the hint), and still rejects a code outside the dictionary.
func TestColdCodesOnlyNoStr(t *testing.T) {
	vals := make([]string, 1000)
	for i := range vals {
		vals[i] = []string{"Error", "Warning", "Info"}[i%3]
	}
	enc := encodeColumn(nil, &Vector{Type: TypeString, Str: vals}, 0, len(vals), true)
	if enc[0]&colFlagDict == 0 {
		t.Fatalf("test column not dictionary-encoded (flags %#x)", enc[0])
	}
	d := decoder{b: enc}
	v, err := decodeColumnCodes(&d, TypeString, len(vals), true)
	if err != nil || len(d.b) != 0 {
		t.Fatalf("decode: %v, %d bytes left", err, len(d.b))
	}
	if !v.CodesOnly() || v.Len() != len(vals) {
		t.Fatalf("codes-only decode: Str %v, %d codes, %d dictionary entries", v.Str != nil, len(v.Codes), len(v.Dict))
	}
	for i, c := range v.Codes {
		if v.Dict[c] != vals[i] {
			t.Fatalf("row %d: %q, want %q", i, v.Dict[c], vals[i])
		}
	}
	d = decoder{b: enc}
	full, err := decodeColumn(&d, TypeString, len(vals))
	if err != nil || !slices.Equal(full.Str, vals) || !slices.Equal(full.Codes, v.Codes) {
		t.Fatalf("full decode: %v", err)
	}
	// The last code is the last byte (a one-byte uvarint): out of range.
	bad := slices.Clone(enc)
	bad[len(bad)-1] = 0x7f
	for _, co := range []bool{true, false} {
		d = decoder{b: bad}
		if _, err := decodeColumnCodes(&d, TypeString, len(vals), co); err == nil || !strings.Contains(err.Error(), "out of range") {
			t.Fatalf("codesOnly %v: code outside the dictionary: err %v", co, err)
		}
	}

	// Cold Select, chunk cache off: every block is decoded fresh.
	env := newEnv(t)
	db := env.open(t, nil)
	defer db.Close()
	ctx := context.Background()
	ref := TableRef{WorkspaceID: testWS, Table: "Cold_CL"}
	schema := Schema{{"TimeGenerated", TypeDatetime}, {"Level", TypeString}}
	if err := db.EnsureTable(ctx, ref, schema, 0); err != nil {
		t.Fatal(err)
	}
	const rows = 20_000
	b := &Batch{Schema: schema, Len: rows, Cols: []*Vector{{Type: TypeDatetime}, {Type: TypeString, Str: make([]string, rows)}}}
	for i := range rows {
		b.Cols[0].Int = append(b.Cols[0].Int, TicksFromTime(baseTime)+int64(i)*TicksPerSecond)
		b.Cols[1].Str[i] = vals[i%len(vals)]
	}
	commit(t, db, ref, b)
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	alloc := func(h SelectHints) uint64 {
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		q, err := db.Querier(ctx, ref, AllTime)
		if err != nil {
			t.Fatal(err)
		}
		it := q.Select(ctx, h)
		n := 0
		for it.Next() {
			bt := it.Batch()
			n += bt.Len
			if v := bt.Cols[0]; (len(h.CodesOnly) > 0) != v.CodesOnly() {
				t.Fatalf("hints %v: Level codes-only %v", h, v.CodesOnly())
			}
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		it.Close()
		q.Close()
		runtime.ReadMemStats(&m1)
		if n != rows {
			t.Fatalf("%d rows, want %d", n, rows)
		}
		return m1.TotalAlloc - m0.TotalAlloc
	}
	alloc(SelectHints{Columns: []string{"Level"}}) // first use of pools and scratch
	eager := alloc(SelectHints{Columns: []string{"Level"}})
	codes := alloc(SelectHints{Columns: []string{"Level"}, CodesOnly: []string{"Level"}})
	// Str is 16 bytes a row; allow a tenth of it for noise.
	if eager < codes || eager-codes < 16*rows*9/10 {
		t.Fatalf("cold Select allocated %d bytes codes-only and %d without the hint: want at least %d less", codes, eager, 16*rows*9/10)
	}
}

// codesRows renders the selected rows (codes-only vectors read through their
// dictionary) sorted; kinds, when not nil, gets "Col:codes" or "Col:str" for
// every string vector seen.
func codesRows(t *testing.T, db *DB, ref TableRef, tr TimeRange, h SelectHints, kinds *[]string) []string {
	t.Helper()
	ctx := context.Background()
	q, err := db.Querier(ctx, ref, tr)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	it := q.Select(ctx, h)
	defer it.Close()
	var rows []string
	for it.Next() {
		b := it.Batch()
		for j, c := range b.Schema {
			v := b.Cols[j]
			if v.Len() != b.Len {
				t.Fatalf("column %s: %d values, batch %d", c.Name, v.Len(), b.Len)
			}
			if kinds != nil && c.Type == TypeString && c.Name != ColTenantID && c.Name != ColType && c.Name != ColItemID && c.Name != ColResourceID {
				k := c.Name + ":str"
				if v.CodesOnly() {
					k = c.Name + ":codes"
				}
				if !slices.Contains(*kinds, k) {
					*kinds = append(*kinds, k)
				}
			}
		}
		for i := range b.Len {
			row := ""
			for j, c := range b.Schema {
				if c.Name == ColItemID || c.Name == ColTimeReceived {
					continue
				}
				v := b.Cols[j]
				switch {
				case classOf(v.Type) == classInt:
					row += fmt.Sprintf("%s=%d ", c.Name, v.Int[i])
				case v.CodesOnly():
					row += fmt.Sprintf("%s=%q ", c.Name, v.Dict[v.Codes[i]])
				default:
					row += fmt.Sprintf("%s=%q ", c.Name, v.Str[i])
				}
			}
			rows = append(rows, row)
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(rows)
	return rows
}

// BenchmarkColdCodesOnly reads 100,000 rows of a flushed part with the chunk
// cache off, so every block is a fresh decode (the first query after a
// restart): two dictionary columns asked for codes-only ("codes") against
// the same Select without the hint ("eager"). B/op is the number to watch:
// a codes-only decode builds no string header per row.
func BenchmarkColdCodesOnly(b *testing.B) {
	env := newEnv(b)
	db := env.open(b, nil)
	defer db.Close()
	ctx := context.Background()
	ref := TableRef{WorkspaceID: testWS, Table: "ColdCodes_CL"}
	schema := Schema{{"TimeGenerated", TypeDatetime}, {"Level", TypeString}, {"Host", TypeString}}
	if err := db.EnsureTable(ctx, ref, schema, 0); err != nil {
		b.Fatal(err)
	}
	const rows = 100_000
	bt := &Batch{Schema: schema, Len: rows, Cols: []*Vector{{Type: TypeDatetime}, {Type: TypeString}, {Type: TypeString}}}
	for i := range rows {
		bt.Cols[0].Int = append(bt.Cols[0].Int, TicksFromTime(baseTime)+int64(i)*TicksPerSecond/100)
		bt.Cols[1].Str = append(bt.Cols[1].Str, []string{"Error", "Warning", "Info", "Verbose"}[i%4])
		bt.Cols[2].Str = append(bt.Cols[2].Str, fmt.Sprintf("web-%d", i%37))
	}
	commit(b, db, ref, bt)
	if err := db.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, h SelectHints) {
		for b.Loop() {
			q, err := db.Querier(ctx, ref, AllTime)
			if err != nil {
				b.Fatal(err)
			}
			it := q.Select(ctx, h)
			n := 0
			for it.Next() {
				n += it.Batch().Len
			}
			if err := it.Err(); err != nil {
				b.Fatal(err)
			}
			it.Close()
			q.Close()
			if n != rows {
				b.Fatalf("%d rows, want %d", n, rows)
			}
		}
	}
	b.Run("codes", func(b *testing.B) {
		b.ReportAllocs()
		run(b, SelectHints{Columns: []string{"Level", "Host"}, CodesOnly: []string{"Level", "Host"}})
	})
	b.Run("eager", func(b *testing.B) {
		b.ReportAllocs()
		run(b, SelectHints{Columns: []string{"Level", "Host"}})
	})
}
