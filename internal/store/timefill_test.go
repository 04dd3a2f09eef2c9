package store

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestTimeBinFill selects a table of small blocks (plus memtable rows) with
// and without SelectHints.TimeBin, for several bin sizes, origins and time
// ranges, and requires that every row keeps its bin, level and number, that
// each batch's TimeGenerated lies within its bounds and the time range, and
// that the store filled blocks with the hint and never without it.
func TestTimeBinFill(t *testing.T) {
	e := newEnv(t)
	db := e.open(t, func(o *Options) { o.BlockRows = 50 })
	defer db.Close()
	ctx := context.Background()
	ref := TableRef{WorkspaceID: "00000000-0000-0000-0000-0000000000f1", Table: "Logs"}
	schema := Schema{{"TimeGenerated", TypeDatetime}, {"Level", TypeString}, {"N", TypeLong}}
	if err := db.EnsureTable(ctx, ref, schema, 0); err != nil {
		t.Fatal(err)
	}
	levels := []string{"Error", "Info", "Warning"}
	load := func(times []int64) {
		b := &Batch{Schema: schema, Len: len(times)}
		for _, c := range schema {
			b.Cols = append(b.Cols, &Vector{Type: c.Type})
		}
		for i, tk := range times {
			b.Cols[0].Int = append(b.Cols[0].Int, tk)
			b.Cols[1].Str = append(b.Cols[1].Str, levels[(i*5)%len(levels)])
			b.Cols[2].Int = append(b.Cols[2].Int, int64(i))
		}
		commit(t, db, ref, b)
	}
	h := int64(TicksPerHour)
	day := TicksFromTime(baseTime)
	var times []int64
	for k := range int64(12) { // hour edges, one tick either side
		for j := range int64(30) {
			times = append(times, day+k*h-1-j, day+k*h+j)
		}
	}
	r := rand.New(rand.NewPCG(3, 5))
	for range 2000 {
		times = append(times, day+r.Int64N(TicksPerDay))
	}
	for i := range 300 { // before the epoch
		times = append(times, -2*h+int64(i)*31*TicksPerSecond)
	}
	load(times[:1500])
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	load(times[1500:])
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	load([]int64{day + 5*h, day + 5*h + 1, -1}) // memtable rows

	type rowKey struct {
		bin   int64
		level string
		n     int64
	}
	rows := func(tr TimeRange, bin, hint TimeBinHint) ([]rowKey, SelectStats) {
		q, err := db.Querier(ctx, ref, tr)
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		it := q.Select(ctx, SelectHints{Columns: []string{"TimeGenerated", "Level", "N"}, TimeBin: hint})
		defer it.Close()
		var out []rowKey
		for it.Next() {
			b := it.Batch()
			tg, lv, nv := b.Col("TimeGenerated"), b.Col("Level"), b.Col("N")
			for i := range b.Len {
				x := tg.Int[i]
				if !tr.Contains(x) {
					t.Fatalf("%v %+v: row time %d outside the range", tr, hint, x)
				}
				if b.TimeBounded && (x < b.TimeMin || x > b.TimeMax) {
					t.Fatalf("%v %+v: row time %d outside the batch's bounds [%d, %d]", tr, hint, x, b.TimeMin, b.TimeMax)
				}
				out = append(out, rowKey{bin.Index(x), lv.Str[i], nv.Int[i]})
			}
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(out, func(a, b rowKey) int {
			if c := a.n - b.n; c != 0 {
				return int(c)
			}
			if c := a.bin - b.bin; c != 0 {
				return int(max(min(c, 1), -1))
			}
			if a.level < b.level {
				return -1
			}
			if a.level > b.level {
				return 1
			}
			return 0
		})
		return out, it.(StatsIterator).Stats()
	}
	var filled int64
	for _, bin := range []TimeBinHint{{Size: TicksPerMinute}, {Size: h}, {Size: h, At: 17}, {Size: TicksPerDay}, {Size: 7 * TicksPerSecond, At: -3}} {
		for _, tr := range []TimeRange{AllTime, {From: day + 2*h, To: day + 5*h}, {From: day + 2*h + 1, To: day + 5*h - 1}, {From: -h - 5, To: day + h/2}} {
			want, st := rows(tr, bin, TimeBinHint{})
			if st.TimeChunksSkipped != 0 {
				t.Fatalf("%v: %d time chunks filled without the hint", tr, st.TimeChunksSkipped)
			}
			if len(want) == 0 {
				t.Fatalf("%v: no rows", tr)
			}
			for round := range 2 { // then with the decoded-chunk cache
				got, st := rows(tr, bin, bin)
				if !slices.Equal(got, want) {
					t.Fatalf("%v %+v round %d: %d rows with the hint differ from %d without (first: %v, %v)", tr, bin, round, len(got), len(want), got[:min(3, len(got))], want[:min(3, len(want))])
				}
				filled += st.TimeChunksSkipped
			}
		}
	}
	if filled == 0 {
		t.Fatal("no block's TimeGenerated was filled: the test does not exercise the hint")
	}
	t.Logf("%d blocks filled", filled)
}
