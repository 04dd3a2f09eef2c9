package store

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
)

// TestChunkCache checks the decoded-chunk cache of the read path: a warm
// query answers the same from cached chunks, what a reader does to the
// vectors it was handed never reaches the cache, and the chunks of purged
// parts and dropped tables leave the cache at the next query.
// withReadCache turns the decoded-chunk cache on (it is off by default).
func withReadCache(o *Options) { o.ReadCacheBytes = 256 << 20 }

func TestChunkCache(t *testing.T) {
	env := newEnv(t)
	db := env.open(t, withReadCache)
	defer db.Close()
	ctx := context.Background()
	ref := TableRef{WorkspaceID: testWS, Table: "Cache_CL"}
	other := TableRef{WorkspaceID: testWS, Table: "Other_CL"}
	for _, r := range []TableRef{ref, other} {
		if err := db.EnsureTable(ctx, r, allTypesSchema, 0); err != nil {
			t.Fatal(err)
		}
	}
	commit(t, db, ref, allTypesBatch(0, 300))
	commit(t, db, other, allTypesBatch(0, 10))
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := db.rcache.size(); n != 0 {
		t.Fatalf("%d chunks cached before any query", n)
	}
	cold, _ := selectRows(t, db, ref, AllTime, SelectHints{})
	// A chunk is admitted on its second read.
	if n, _ := db.rcache.size(); n != 0 {
		t.Fatalf("%d chunks cached after their first read", n)
	}
	if again, _ := selectRows(t, db, ref, AllTime, SelectHints{}); !slices.Equal(cold, again) {
		t.Fatal("second query differs from the first")
	}
	chunks, bytes := db.rcache.size()
	if chunks == 0 || bytes <= 0 {
		t.Fatalf("nothing cached after a query of a part (%d chunks, %d bytes)", chunks, bytes)
	}
	// Free text (the JSON column Dyn: ~50 bytes a row) is not cached.
	for p, m := range db.rcache.parts {
		for id := range m {
			if name := p.meta.cols[id.col].Name; name == "Dyn" {
				t.Errorf("column %s cached: wider than %d bytes a row", name, cacheMaxRowBytes)
			}
		}
	}

	// A reader that scribbles over the batch it was handed (headers and
	// appends) changes nothing for the next query.
	q, err := db.Querier(ctx, ref, AllTime)
	if err != nil {
		t.Fatal(err)
	}
	it := q.Select(ctx, SelectHints{})
	for it.Next() {
		if !it.(interface{ Stable() bool }).Stable() {
			t.Fatal("a batch of a part is not Stable")
		}
		for _, v := range it.Batch().Cols {
			v.Type = TypeBool
			v.Int = append(v.Int, 1)
			v.Str = append(v.Str, "scribble")
			v.Nulls = nil
		}
	}
	it.Close()
	q.Close()
	warm, _ := selectRows(t, db, ref, AllTime, SelectHints{})
	if !slices.Equal(cold, warm) {
		t.Fatalf("warm query differs from the cold one:\n%v\n%v", cold[:3], warm[:3])
	}
	if n, _ := db.rcache.size(); n != chunks {
		t.Fatalf("warm query changed the cache: %d chunks, was %d", n, chunks)
	}

	// Purge rewrites the part: the old part's chunks go at the next query,
	// and the answer has the row removed.
	if _, err := db.Purge(ctx, ref, ColumnIn{Column: "S", Values: []string{"row 7 alpha-Beta"}}); err != nil {
		t.Fatal(err)
	}
	after, _ := selectRows(t, db, ref, AllTime, SelectHints{})
	if len(after) != len(cold)-1 {
		t.Fatalf("%d rows after purging one of %d", len(after), len(cold))
	}
	for p := range db.rcache.parts {
		if p.obsolete.Load() {
			t.Fatalf("part %s is obsolete (purged) and still cached", p.id)
		}
	}

	// Dropping the table: its chunks go at the next query of the DB.
	if err := db.DropTable(ctx, ref); err != nil {
		t.Fatal(err)
	}
	selectRows(t, db, other, AllTime, SelectHints{})
	for p := range db.rcache.parts {
		if p.table == ref.Table {
			t.Fatalf("part %s of dropped table %s still cached", p.id, p.table)
		}
	}
	if _, b := db.rcache.size(); b != func() int64 {
		var n int64
		for _, m := range db.rcache.parts {
			for _, e := range m {
				n += e.bytes
			}
		}
		return n
	}() {
		t.Fatalf("cache byte count %d does not match its entries", b)
	}
}

// TestChunkCacheWorkspaceDropped checks that a dropped workspace's chunks
// leave the cache.
func TestChunkCacheWorkspaceDropped(t *testing.T) {
	env := newEnv(t)
	db := env.open(t, withReadCache)
	defer db.Close()
	ctx := context.Background()
	ref := TableRef{WorkspaceID: testWS, Table: "Cache_CL"}
	if err := db.EnsureTable(ctx, ref, allTypesSchema, 0); err != nil {
		t.Fatal(err)
	}
	commit(t, db, ref, allTypesBatch(0, 100))
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	selectRows(t, db, ref, AllTime, SelectHints{})
	selectRows(t, db, ref, AllTime, SelectHints{}) // admitted on the second read
	if n, _ := db.rcache.size(); n == 0 {
		t.Fatal("nothing cached")
	}
	if err := db.DropWorkspace(ctx, testWS); err != nil {
		t.Fatal(err)
	}
	db.rcache.sweep()
	if n, b := db.rcache.size(); n != 0 || b != 0 {
		t.Fatalf("%d chunks (%d bytes) cached after the workspace was dropped", n, b)
	}
}

// TestChunkCacheConcurrent runs queries of one part at the same time (run it
// with -race): they fill and read the cache together and all answer alike.
func TestChunkCacheConcurrent(t *testing.T) {
	env := newEnv(t)
	db := env.open(t, func(o *Options) { o.BlockRows = 64; withReadCache(o) })
	defer db.Close()
	ctx := context.Background()
	ref := TableRef{WorkspaceID: testWS, Table: "Cache_CL"}
	if err := db.EnsureTable(ctx, ref, allTypesSchema, 0); err != nil {
		t.Fatal(err)
	}
	commit(t, db, ref, allTypesBatch(0, 1000))
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	want, _ := selectRows(t, db, ref, AllTime, SelectHints{})
	db.rcache.dropWorkspace(testWS) // start cold
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				got, _ := selectRows(t, db, ref, AllTime, SelectHints{Columns: nil})
				if !slices.Equal(got, want) {
					errs <- "a concurrent query answered differently"
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

// TestPackChunk checks that a cached chunk unpacks to the vector it was
// packed from: plain and dictionary-encoded strings (empty ones included),
// numbers, nulls; and that a dictionary without codes is not cached.
func TestPackChunk(t *testing.T) {
	vecs := []*Vector{
		{Type: TypeString, Str: []string{"a", "", "ccc", "", "dd"}, Nulls: []bool{false, true, false, false, false}},
		{Type: TypeString, Str: []string{"x", "y", "x", "x"}, Dict: []string{"x", "y"}, Codes: []uint32{0, 1, 0, 0}},
		{Type: TypeString, Str: []string{}},
		{Type: TypeLong, Int: []int64{1, -2, 3}},
		{Type: TypeReal, Real: []float64{1.5, 2}},
		{Type: TypeBool, Bool: []bool{true, false}, Nulls: []bool{false, true}},
	}
	for i, v := range vecs {
		p, ok := packChunk(v)
		if !ok {
			t.Fatalf("vector %d not packed", i)
		}
		u := p.unpack(false)
		if u.Type != v.Type || !slices.Equal(u.Str, v.Str) || !slices.Equal(u.Dict, v.Dict) ||
			!slices.Equal(u.Codes, v.Codes) || !slices.Equal(u.Int, v.Int) || !slices.Equal(u.Real, v.Real) ||
			!slices.Equal(u.Bool, v.Bool) || !slices.Equal(u.Nulls, v.Nulls) || (u.Str == nil) != (v.Str == nil) {
			t.Fatalf("vector %d: unpacked %+v, packed %+v", i, u, v)
		}
		// Appending to what a reader got never reaches the cache.
		u.Int = append(u.Int, 99)
		u.Codes = append(u.Codes, 7)
		if len(u.Str) > 0 {
			u.Str[0] = "changed"
		}
		if w := p.unpack(false); !slices.Equal(w.Int, v.Int) || !slices.Equal(w.Codes, v.Codes) || !slices.Equal(w.Str, v.Str) {
			t.Fatalf("vector %d: a reader's change reached the cache", i)
		}
		// Codes-only: a dictionary chunk without Str, the same codes and
		// dictionary; any other chunk as without.
		c := p.unpack(true)
		if v.Codes != nil {
			if !c.CodesOnly() || c.Len() != len(v.Str) || !slices.Equal(c.Codes, v.Codes) || !slices.Equal(c.Dict, v.Dict) {
				t.Fatalf("vector %d: codes-only unpack %+v", i, c)
			}
		} else if !slices.Equal(c.Str, v.Str) || c.CodesOnly() || (c.Str == nil) != (v.Str == nil) {
			t.Fatalf("vector %d: codes-only unpack of a chunk without codes %+v", i, c)
		}
	}
	if _, ok := packChunk(&Vector{Type: TypeString, Str: []string{"a"}, Dict: []string{"a"}}); ok {
		t.Fatal("a dictionary without codes was packed")
	}
}

// freshVecs are block vectors of a part being written, as the encoder sees
// them: a low- and a high-cardinality dictionary column, one with nulls, a
// chunk under the encoder's 16-row dictionary minimum, free text (no
// dictionary), and a number column.
func freshVecs() []*Vector {
	low, high, nulls, text := &Vector{Type: TypeString}, &Vector{Type: TypeString}, &Vector{Type: TypeString}, &Vector{Type: TypeString}
	for i := range 4096 {
		low.Str = append(low.Str, []string{"Information", "Warning", "Error"}[i%3])
		high.Str = append(high.Str, fmt.Sprintf("user-%d", (i*7919)%1500))
		nulls.Str = append(nulls.Str, fmt.Sprintf("web-%d", i%40))
		nulls.Nulls = append(nulls.Nulls, i%5 == 0)
		if i%5 == 0 {
			nulls.Str[i] = ""
		}
		text.Str = append(text.Str, fmt.Sprintf("request %d from host web-%d took %d ms", i, i%50, i%997))
	}
	num := &Vector{Type: TypeLong}
	for i := range 4096 {
		num.Int = append(num.Int, int64(i*i%1000))
	}
	return []*Vector{low, high, nulls, {Type: TypeString, Str: []string{"a", "b", "a"}}, text, num}
}

// TestPackFreshFromEncoding: a chunk a flush packs for the cache from the
// encoder's own encoding (its dictionary and codes) is exactly what a read
// of the written chunk decodes — a dictionary where the chunk has one and
// Str where it has none, with and without codes-only — and holds the same
// values as one packed with a dictionary of its own (buildDict).
func TestPackFreshFromEncoding(t *testing.T) {
	for i, v := range freshVecs() {
		raw, _, _ := encodeChunk(nil, v, 0, v.Len(), true, true)
		fromRaw, ok := packFresh(v, 1<<30, raw)
		own, ok2 := packFresh(v, 1<<30, nil)
		if !ok || !ok2 {
			if i == 4 { // free text: wider than the cache takes
				continue
			}
			t.Fatalf("vector %d not packed (from the encoding %v, own dictionary %v)", i, ok, ok2)
		}
		for _, codesOnly := range []bool{false, true} {
			d := decoder{b: raw}
			read, err := decodeColumnCodes(&d, v.Type, v.Len(), codesOnly)
			if err != nil {
				t.Fatal(err)
			}
			got := fromRaw.unpack(codesOnly)
			if got.CodesOnly() != read.CodesOnly() || (got.Codes == nil) != (read.Codes == nil) ||
				!slices.Equal(got.Str, read.Str) || !slices.Equal(got.Dict, read.Dict) || !slices.Equal(got.Codes, read.Codes) ||
				!slices.Equal(got.Int, read.Int) || !slices.Equal(got.Nulls, read.Nulls) {
				t.Fatalf("vector %d codesOnly=%v: packed from the encoding %+v, a read decodes %+v", i, codesOnly, got, read)
			}
			if a, b := vecStrings(got), vecStrings(own.unpack(codesOnly)); !slices.Equal(a, b) {
				t.Fatalf("vector %d codesOnly=%v: values differ from a chunk packed with its own dictionary", i, codesOnly)
			}
		}
	}
}

// vecStrings renders every row of v (nulls included) for comparisons.
func vecStrings(v *Vector) []string {
	out := make([]string, v.Len())
	for i := range out {
		switch {
		case v.IsNull(i):
			out[i] = "null"
		case v.Int != nil:
			out[i] = fmt.Sprint(v.Int[i])
		case v.CodesOnly():
			out[i] = v.Dict[v.Codes[i]]
		default:
			out[i] = v.Str[i]
		}
	}
	return out
}

// TestChunkCacheRetainedBatches: a reader may keep the vectors of Stable
// batches after the iterator moved on and closed (the engine keeps them
// without copying), also when they are the heap tier's own slices: after
// the entries are dropped, evicted by other reads and a collection has run,
// the kept vectors still hold the values they had.
func TestChunkCacheRetainedBatches(t *testing.T) {
	env := newEnv(t)
	db := env.open(t, func(o *Options) { o.BlockRows = 256; o.ReadCacheBytes = 1 << 20 })
	defer db.Close()
	ctx := context.Background()
	ref := TableRef{WorkspaceID: testWS, Table: "Keep_CL"}
	if err := db.EnsureTable(ctx, ref, ccSchema, 0); err != nil {
		t.Fatal(err)
	}
	commit(t, db, ref, ccBatch(0, 256*20))
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	hot := ccRange(0, 256*4)
	h := SelectHints{Columns: []string{"TimeGenerated", "L", "Host"}, CodesOnly: []string{"Host"}}
	codesRows(t, db, ref, hot, h, nil)
	codesRows(t, db, ref, hot, h, nil) // admitted: the tier has room
	var kept []*Batch
	q, err := db.Querier(ctx, ref, hot)
	if err != nil {
		t.Fatal(err)
	}
	it := q.Select(ctx, h)
	for it.Next() {
		kept = append(kept, it.Batch())
	}
	it.Close()
	q.Close()
	render := func() (out []string) {
		for _, b := range kept {
			for _, v := range b.Cols {
				out = append(out, vecStrings(v)...)
			}
		}
		return out
	}
	want := render()
	if st := db.ReadCacheStats(); st.HeapBytes == 0 || st.Hits < 8 || len(want) == 0 {
		t.Fatalf("the third read was not answered from the heap tier: %+v", st)
	}
	db.rcache.dropWorkspace(testWS)
	for range 3 { // other blocks through the cache: admissions, evictions
		codesRows(t, db, ref, AllTime, h, nil)
	}
	runtime.GC()
	runtime.GC()
	if got := render(); !slices.Equal(got, want) {
		t.Fatal("vectors kept from a read changed after their entries left the cache")
	}
}
