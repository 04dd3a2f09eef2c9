package store

import (
	"context"
	"fmt"
	"slices"
	"sort"
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
