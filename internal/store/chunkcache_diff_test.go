package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"
)

// TestChunkCacheDifferential runs one random workload — commits with rows
// out of time order and nulls, flushes, merges (copy and re-encoding), a
// column added on the way — on two stores, one with a cache small enough to
// evict and expire and one with the cache off, and asks both the same random
// questions (time ranges, projections, codes-only strings), each one three
// times on the cached store: every answer must match. It covers the entries
// a query admits, a flush or merge packs (fresh), a copy merge moves
// (rekey), the heap tier's entries (promoted: hits hand out the cached
// slices), and the eviction and expiry around them. Every reader scribbles
// over the headers of the batches it was handed and appends to their
// slices once it has read them, which must never reach a cached chunk.
func TestChunkCacheDifferential(t *testing.T) {
	for seed := range uint64(3) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { chunkCacheDiff(t, seed) })
	}
}

func chunkCacheDiff(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	ctx := context.Background()
	blockRows := []int{64, 256}[seed%2]
	open := func(cache int64) *DB {
		dir := t.TempDir()
		db, err := Open(Options{Dir: filepath.Join(dir, "data"), Keys: testKeys(t, dir), DisableBackground: true,
			BlockRows: blockRows, MaxPartsPerDay: 2, ReadCacheBytes: cache, Now: func() time.Time { return baseTime.Add(time.Hour) }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	cached, plain := open([]int64{24, 200, 60}[seed]*(4096+160)), open(0)
	dbs := []*DB{cached, plain}
	ref := TableRef{WorkspaceID: testWS, Table: "Diff_CL"}
	schema := Schema{{"TimeGenerated", TypeDatetime}, {"L", TypeLong}, {"Host", TypeString}, {"R", TypeReal}, {"B", TypeBool}}
	for _, db := range dbs {
		if err := db.EnsureTable(ctx, ref, schema, 0); err != nil {
			t.Fatal(err)
		}
	}
	next := 0
	batch := func(n int, s Schema) *Batch {
		b := &Batch{Schema: s, Len: n}
		for _, c := range s {
			b.Cols = append(b.Cols, &Vector{Type: c.Type, Nulls: make([]bool, n)})
		}
		for k := range n {
			i := next + k
			for j, c := range s {
				v := b.Cols[j]
				null := c.Name != "TimeGenerated" && c.Type != TypeString && rng.IntN(9) == 0
				v.Nulls[k] = null
				switch c.Type {
				case TypeDatetime: // mostly ascending, some rows late
					v.Int = append(v.Int, TicksFromTime(baseTime)+int64(i-rng.IntN(50))*TicksPerSecond)
				case TypeLong:
					v.Int = append(v.Int, int64(rng.IntN(1000)-500))
				case TypeString:
					v.Str = append(v.Str, fmt.Sprintf("web-%d", rng.IntN(1+int(seed)*40+5)))
				case TypeReal:
					v.Real = append(v.Real, float64(rng.IntN(100))/4)
				case TypeBool:
					v.Bool = append(v.Bool, rng.IntN(2) == 0)
				}
			}
		}
		next += n
		return b
	}
	render := func(db *DB, tr TimeRange, h SelectHints) []string {
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
			for i := range b.Len {
				row := ""
				for j, c := range b.Schema {
					if c.Name == ColItemID || c.Name == ColTimeReceived {
						continue
					}
					v := b.Cols[j]
					switch {
					case v.IsNull(i):
						row += c.Name + "=null "
					case classOf(v.Type) == classInt:
						row += fmt.Sprintf("%s=%d ", c.Name, v.Int[i])
					case classOf(v.Type) == classReal:
						row += fmt.Sprintf("%s=%g ", c.Name, v.Real[i])
					case classOf(v.Type) == classBool:
						row += fmt.Sprintf("%s=%v ", c.Name, v.Bool[i])
					case v.CodesOnly():
						row += fmt.Sprintf("%s=%q ", c.Name, v.Dict[v.Codes[i]])
					default:
						row += fmt.Sprintf("%s=%q ", c.Name, v.Str[i])
					}
				}
				rows = append(rows, row)
			}
			for _, v := range b.Cols {
				v.Int = append(v.Int, 42)
				v.Codes = append(v.Codes, 0)
				v.Str = append(v.Str, "scribble")
				v.Nulls = append(v.Nulls, true)
				v.Type = TypeBool
			}
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		sort.Strings(rows)
		return rows
	}
	for round := range 30 {
		if round == 15 { // the schema grows: a column in front of the others
			schema = append(Schema{{"A", TypeLong}}, schema...)
			for _, db := range dbs {
				if err := db.EnsureTable(ctx, ref, schema, 0); err != nil {
					t.Fatal(err)
				}
			}
		}
		n := []int{20, 150, blockRows * 2, blockRows*3 + 17}[rng.IntN(4)]
		b := batch(n, schema)
		for _, db := range dbs {
			commit(t, db, ref, b)
		}
		op := rng.IntN(4)
		for _, db := range dbs {
			if op >= 1 {
				if err := db.Flush(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if op >= 2 {
				if err := db.Merge(ctx); err != nil {
					t.Fatal(err)
				}
			}
		}
		for range 3 {
			lo := rng.IntN(next + 1)
			hi := lo + rng.IntN(next-lo+60) + 1
			tr := TimeRange{From: TicksFromTime(baseTime) + int64(lo-50)*TicksPerSecond, To: TicksFromTime(baseTime) + int64(hi)*TicksPerSecond}
			if rng.IntN(4) == 0 {
				tr = AllTime
			}
			var h SelectHints
			for _, c := range schema {
				if rng.IntN(3) > 0 {
					h.Columns = append(h.Columns, c.Name)
				}
			}
			if rng.IntN(2) == 0 {
				h.CodesOnly = []string{"Host"}
			}
			want := render(plain, tr, h)
			for k := range 3 {
				if got := render(cached, tr, h); !slices.Equal(got, want) {
					t.Fatalf("round %d, read %d of %+v %v: cached store answers %d rows, uncached %d\nfirst cached: %v\nfirst uncached: %v",
						round, k, tr, h, len(got), len(want), firstRow(got), firstRow(want))
				}
			}
		}
		checkCache(t, &cached.rcache)
		if round%10 == 9 { // expire what the last rounds did not read
			c := &cached.rcache
			c.mu.Lock()
			c.reads = 1 << 30
			c.ageLocked()
			c.mu.Unlock()
		}
	}
	// Periods without a read: everything expires (a count of at most 15
	// halves to 0 in four, and goes at the fifth); answers still match.
	for range 5 {
		c := &cached.rcache
		c.mu.Lock()
		c.reads = 1 << 30
		c.ageLocked()
		c.mu.Unlock()
	}
	checkCache(t, &cached.rcache)
	if n, _ := cached.rcache.size(); n != 0 {
		t.Fatalf("%d chunks cached after five periods without a read", n)
	}
	if got, want := render(cached, AllTime, SelectHints{}), render(plain, AllTime, SelectHints{}); !slices.Equal(got, want) {
		t.Fatal("after expiry the cached store answers differently")
	}
	st := cached.ReadCacheStats()
	if st.Hits == 0 || st.Admitted == 0 || st.Fresh == 0 || st.Rekeyed == 0 || st.Evictions == 0 || st.Expired == 0 || st.Promoted == 0 {
		t.Fatalf("the workload did not exercise every path of the cache: %+v", st)
	}
}

func firstRow(rows []string) string {
	if len(rows) == 0 {
		return "(none)"
	}
	return rows[0]
}
