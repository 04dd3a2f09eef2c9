package store

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
)

// ccSchema is the schema of the cache policy tests: a time, a number and a
// dictionary-friendly string (Host) — what the soak's rules read.
var ccSchema = Schema{{"TimeGenerated", TypeDatetime}, {"L", TypeLong}, {"Host", TypeString}}

// ccBatch is rows lo..lo+n-1: one second apart, L = i, Host one of 7.
func ccBatch(lo, n int) *Batch {
	b := &Batch{Schema: ccSchema, Len: n, Cols: []*Vector{{Type: TypeDatetime}, {Type: TypeLong}, {Type: TypeString}}}
	for i := lo; i < lo+n; i++ {
		b.Cols[0].Int = append(b.Cols[0].Int, TicksFromTime(baseTime)+int64(i)*TicksPerSecond)
		b.Cols[1].Int = append(b.Cols[1].Int, int64(i))
		b.Cols[2].Str = append(b.Cols[2].Str, fmt.Sprintf("web-%d", i%7))
	}
	return b
}

// ccRange is the time range of rows lo..hi-1 of ccBatch.
func ccRange(lo, hi int) TimeRange {
	return TimeRange{From: TicksFromTime(baseTime) + int64(lo)*TicksPerSecond, To: TicksFromTime(baseTime) + int64(hi)*TicksPerSecond}
}

var ccCols = SelectHints{Columns: []string{"TimeGenerated", "L", "Host"}}

// checkCache checks the cache's bookkeeping: every entry in the ring is in
// the map under its own key and slot, the holes, bytes and per-column counts
// add up, and the bytes are within the limit.
func checkCache(t *testing.T, c *chunkCache) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	entries, holes := 0, 0
	var bytes, heap int64
	cols := map[colKey]int32{}
	for i, e := range c.ring {
		if e == nil {
			holes++
			continue
		}
		entries++
		bytes += e.bytes
		if (e.v == nil) == (e.hv == nil) {
			t.Fatalf("ring slot %d: entry off the heap %v, in the heap tier %v: want exactly one", i, e.v != nil, e.hv != nil)
		}
		if e.hv != nil {
			heap += vectorBytes(e.hv)
			if e.bytes != heapCharge(e.hv) {
				t.Fatalf("ring slot %d: heap tier entry charged %d bytes, want %d", i, e.bytes, heapCharge(e.hv))
			}
		}
		if e.slot != i || c.parts[e.p][e.id] != e {
			t.Fatalf("ring slot %d: entry (slot %d) is not in the map under its key", i, e.slot)
		}
		cols[c.colKeyOf(e.p, e.id)]++
	}
	inMap := 0
	for _, m := range c.parts {
		inMap += len(m)
	}
	if holes != c.holes || inMap != entries || bytes != c.bytes || !maps.Equal(cols, c.cols) {
		t.Fatalf("cache bookkeeping: holes %d/%d, entries ring %d map %d, bytes %d/%d, cols %v/%v", holes, c.holes, entries, inMap, bytes, c.bytes, cols, c.cols)
	}
	if c.bytes > c.limit {
		t.Fatalf("cache holds %d bytes, limit %d", c.bytes, c.limit)
	}
	if heap != c.heapBytes || heap > c.heapTierLimit() {
		t.Fatalf("heap tier holds %d bytes, counted %d, bound %d", heap, c.heapBytes, c.heapTierLimit())
	}
}

// cachedBlocks returns the blocks of the table's parts that have every
// column of ccSchema cached, by block min time.
func cachedBlocks(db *DB, ref TableRef) map[int64]bool {
	out := map[int64]bool{}
	db.rcache.mu.Lock()
	defer db.rcache.mu.Unlock()
	for p, m := range db.rcache.parts {
		if p.table != ref.Table || p.obsolete.Load() {
			continue
		}
		for bi, bm := range p.meta.blocks {
			all := true
			for _, c := range ccSchema {
				if _, ok := m[chunkID{int32(bi), int32(p.meta.cols.Index(c.Name))}]; !ok {
					all = false
				}
			}
			if all {
				out[bm.minT] = true
			}
		}
	}
	return out
}

// TestChunkCacheEvictsColdFirst fills a cache of 60 chunks with a hot range
// (the newest 5 blocks, read again and again as rules read the last
// minutes) and then scans 40 blocks (120 chunks) three times: the cache
// stays within its limit and full, and the hot blocks survive the scans —
// a query of them afterwards decodes nothing. Then another range is read
// again and again: it displaces scan chunks (evictions), while the hot
// blocks stay. Before this policy a full cache admitted nothing new; an
// LRU would have lost the hot blocks to the scan.
func TestChunkCacheEvictsColdFirst(t *testing.T) {
	env := newEnv(t)
	const rows, blocks = 256, 40
	// A chunk of 256 rows packs into one 4 KiB page (+160 bytes).
	chunk := int64(4096 + 160)
	db := env.open(t, func(o *Options) { o.BlockRows = rows; o.ReadCacheBytes = 60 * chunk })
	defer db.Close()
	ctx := context.Background()
	ref := TableRef{WorkspaceID: testWS, Table: "Evict_CL"}
	if err := db.EnsureTable(ctx, ref, ccSchema, 0); err != nil {
		t.Fatal(err)
	}
	commit(t, db, ref, ccBatch(0, rows*blocks))
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	blockTime := func(b int) int64 { return TicksFromTime(baseTime) + int64(b*rows)*TicksPerSecond }
	hot := ccRange(rows*(blocks-5), rows*blocks)
	want, _ := selectRows(t, db, ref, hot, ccCols)
	for range 5 {
		if got, _ := selectRows(t, db, ref, hot, ccCols); !slices.Equal(got, want) {
			t.Fatal("warm read of the hot range differs")
		}
	}
	checkCache(t, &db.rcache)
	if n := len(cachedBlocks(db, ref)); n != 5 {
		t.Fatalf("%d blocks cached after reading the hot range, want 5", n)
	}
	all, _ := selectRows(t, db, ref, AllTime, ccCols)
	for range 3 {
		if got, _ := selectRows(t, db, ref, AllTime, ccCols); !slices.Equal(got, all) {
			t.Fatal("scan through the cache answered differently")
		}
		checkCache(t, &db.rcache)
	}
	st := db.ReadCacheStats()
	// Full: within a chunk of the limit (entries in the heap tier count
	// twice their vectors, which for codes is less than a page).
	if st.Bytes > st.Limit || int64(st.Bytes) < int64(st.Limit)-chunk || st.Entries < 55 || st.Entries > 66 {
		t.Fatalf("after scanning 120 chunks through a 60-chunk cache: %+v, want it full", st)
	}
	cached := cachedBlocks(db, ref)
	for b := blocks - 5; b < blocks; b++ {
		if !cached[blockTime(b)] {
			t.Errorf("hot block %d evicted by the scan (cached blocks: %d)", b, len(cached))
		}
	}
	before := db.ReadCacheStats()
	if got, _ := selectRows(t, db, ref, hot, ccCols); !slices.Equal(got, want) {
		t.Fatal("hot range after the scan differs")
	}
	after := db.ReadCacheStats()
	if after.Misses != before.Misses || after.Hits-before.Hits != 15 {
		t.Fatalf("hot range after the scan: %d misses, %d hits; want 0 and 15", after.Misses-before.Misses, after.Hits-before.Hits)
	}

	// A second hot range among the blocks the scan did not leave cached:
	// read often, it gets in, evicting scan chunks read less.
	var second []int
	for b := 0; b < blocks-5 && len(second) < 4; b++ {
		if !cached[blockTime(b)] {
			second = append(second, b)
		}
	}
	if len(second) < 4 {
		t.Fatalf("only %d blocks left uncached by the scan", len(second))
	}
	for range 8 {
		for _, b := range second {
			selectRows(t, db, ref, ccRange(b*rows, (b+1)*rows), ccCols)
		}
		checkCache(t, &db.rcache)
	}
	cached = cachedBlocks(db, ref)
	for _, b := range second {
		if !cached[blockTime(b)] {
			t.Errorf("block %d, read 8 times, is not cached", b)
		}
	}
	for b := blocks - 5; b < blocks; b++ {
		if !cached[blockTime(b)] {
			t.Errorf("hot block %d evicted by the second range", b)
		}
	}
	if end := db.ReadCacheStats(); end.Evictions == 0 || end.Bytes > end.Limit {
		t.Fatalf("second hot range: %+v, want evictions within the limit", end)
	}
}

// TestChunkCacheCyclicScan reads 20 blocks in turn through a cache of 10
// blocks' chunks: the cache keeps a stable share (about half of each scan
// hits) instead of evicting every chunk before its next read (an LRU or a
// plain CLOCK hits nothing and packs every chunk it reads).
func TestChunkCacheCyclicScan(t *testing.T) {
	env := newEnv(t)
	const rows, blocks = 256, 20
	db := env.open(t, func(o *Options) { o.BlockRows = rows; o.ReadCacheBytes = 30 * (4096 + 160) })
	defer db.Close()
	ctx := context.Background()
	ref := TableRef{WorkspaceID: testWS, Table: "Cycle_CL"}
	if err := db.EnsureTable(ctx, ref, ccSchema, 0); err != nil {
		t.Fatal(err)
	}
	commit(t, db, ref, ccBatch(0, rows*blocks))
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		selectRows(t, db, ref, AllTime, ccCols)
	}
	before := db.ReadCacheStats()
	for range 4 {
		selectRows(t, db, ref, AllTime, ccCols)
		checkCache(t, &db.rcache)
	}
	after := db.ReadCacheStats()
	hits, packed := after.Hits-before.Hits, after.Admitted-before.Admitted
	if hits < 4*25 || packed > 4*5 {
		t.Fatalf("4 scans of 60 chunks through a 30-chunk cache: %d hits (want >= 100), %d chunks packed (want <= 20)", hits, packed)
	}
}

// TestChunkCacheCopyMergeKeeps: a copy merge of three flushed parts (full
// blocks) moves their cached chunks to the merged part, so the next query
// decodes nothing; also when the table's schema grew between the parts
// (column indexes differ), and the answers are the same as a cold read.
func TestChunkCacheCopyMergeKeeps(t *testing.T) {
	env := newEnv(t)
	db := env.open(t, func(o *Options) { o.BlockRows = 256; o.MaxPartsPerDay = 2; withReadCache(o) })
	defer db.Close()
	ctx := context.Background()
	ref := TableRef{WorkspaceID: testWS, Table: "Merge_CL"}
	if err := db.EnsureTable(ctx, ref, ccSchema, 0); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if i == 2 { // the third part has a column more, at the front of the user columns
			grown := append(Schema{{"A", TypeLong}}, ccSchema...)
			if err := db.EnsureTable(ctx, ref, grown, 0); err != nil {
				t.Fatal(err)
			}
		}
		commit(t, db, ref, ccBatch(i*512, 512))
		if err := db.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	want, _ := selectRows(t, db, ref, AllTime, ccCols)
	selectRows(t, db, ref, AllTime, ccCols) // admitted on the second read
	n0, _ := db.rcache.size()
	if n0 != 3*2*3 {
		t.Fatalf("%d chunks cached before the merge, want 18 (3 parts × 2 blocks × 3 columns)", n0)
	}
	if err := db.Merge(ctx); err != nil {
		t.Fatal(err)
	}
	if db.Stats().PartsMerged == 0 {
		t.Fatal("no merge happened")
	}
	db.rcache.sweep()
	checkCache(t, &db.rcache)
	st := db.ReadCacheStats()
	if st.Rekeyed != 18 || st.Entries != 18 {
		t.Fatalf("after the merge: %+v, want 18 entries moved", st)
	}
	got, _ := selectRows(t, db, ref, AllTime, ccCols)
	after := db.ReadCacheStats()
	if !slices.Equal(got, want) {
		t.Fatal("query after the merge answers differently")
	}
	if after.Misses != st.Misses || after.Hits-st.Hits != 18 {
		t.Fatalf("query after the merge: %d misses, %d hits; want 0 and 18", after.Misses-st.Misses, after.Hits-st.Hits)
	}
	for p := range db.rcache.parts {
		if p.obsolete.Load() || len(p.meta.replaces) != 3 {
			t.Fatalf("entries of part %s (replaces %d) after the merge", p.id, len(p.meta.replaces))
		}
	}
	db.rcache.dropWorkspace(testWS)
	if cold, _ := selectRows(t, db, ref, AllTime, ccCols); !slices.Equal(cold, want) {
		t.Fatal("cold read after the merge differs")
	}
}

// TestChunkCacheFreshFlush: once queries read a table's columns through the
// cache, a flush packs the blocks it writes of those columns (not of
// others), so a query of the newest rows decodes nothing; the fresh chunks
// answer like a decode of the part (numbers, a dictionary string read with
// and without codes-only), and a re-encoding merge of small parts admits
// the blocks it writes.
func TestChunkCacheFreshFlush(t *testing.T) {
	env := newEnv(t)
	db := env.open(t, func(o *Options) { o.BlockRows = 256; o.MaxPartsPerDay = 2; withReadCache(o) })
	defer db.Close()
	ctx := context.Background()
	ref := TableRef{WorkspaceID: testWS, Table: "Fresh_CL"}
	if err := db.EnsureTable(ctx, ref, ccSchema, 0); err != nil {
		t.Fatal(err)
	}
	commit(t, db, ref, ccBatch(0, 512))
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// A flush before any query: nothing is packed.
	if st := db.ReadCacheStats(); st.Fresh != 0 || st.Entries != 0 {
		t.Fatalf("flush of a table nobody read filled the cache: %+v", st)
	}
	twoCols := SelectHints{Columns: []string{"TimeGenerated", "Host"}}
	selectRows(t, db, ref, AllTime, twoCols)
	selectRows(t, db, ref, AllTime, twoCols)
	commit(t, db, ref, ccBatch(512, 600))
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	st := db.ReadCacheStats()
	if st.Fresh != 3*2 { // 600 rows: 3 blocks of TimeGenerated and Host; L is not read
		t.Fatalf("flush admitted %d chunks, want 6: %+v", st.Fresh, st)
	}
	checkCache(t, &db.rcache)
	newest := ccRange(512, 1112)
	got, _ := selectRows(t, db, ref, newest, twoCols)
	after := db.ReadCacheStats()
	if after.Misses != st.Misses {
		t.Fatalf("query of the flushed rows decoded %d chunks", after.Misses-st.Misses)
	}
	var kinds []string
	codes := codesRows(t, db, ref, newest, SelectHints{Columns: []string{"TimeGenerated", "Host"}, CodesOnly: []string{"Host"}}, &kinds)
	if !slices.Contains(kinds, "Host:codes") {
		t.Fatalf("fresh Host chunks came back as %v to a codes-only reader, want codes", kinds)
	}
	db.rcache.dropWorkspace(testWS)
	if cold, _ := selectRows(t, db, ref, newest, twoCols); !slices.Equal(cold, got) {
		t.Fatal("fresh chunks answer differently from a decode of the part")
	}
	if cold := codesRows(t, db, ref, newest, SelectHints{Columns: []string{"TimeGenerated", "Host"}, CodesOnly: []string{"Host"}}, nil); !slices.Equal(cold, codes) {
		t.Fatal("fresh chunks answer a codes-only reader differently from a decode")
	}

	// Re-encoding merge: parts of small blocks (200 rows) are decoded and
	// written afresh; the columns the cache holds enter as they are written.
	ref2 := TableRef{WorkspaceID: testWS, Table: "Reenc_CL"}
	if err := db.EnsureTable(ctx, ref2, ccSchema, 0); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		commit(t, db, ref2, ccBatch(i*200, 200))
		if err := db.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		selectRows(t, db, ref2, AllTime, ccCols)
	}
	want, _ := selectRows(t, db, ref2, AllTime, ccCols)
	st = db.ReadCacheStats()
	if err := db.Merge(ctx); err != nil {
		t.Fatal(err)
	}
	db.rcache.sweep()
	checkCache(t, &db.rcache)
	mid := db.ReadCacheStats()
	if mid.Fresh-st.Fresh != 3*3 { // 600 rows in blocks of 256: 3 blocks × 3 columns
		t.Fatalf("re-encoding merge admitted %d chunks, want 9 (%+v)", mid.Fresh-st.Fresh, mid)
	}
	if got, _ := selectRows(t, db, ref2, AllTime, ccCols); !slices.Equal(got, want) {
		t.Fatal("query after the re-encoding merge differs")
	}
	if end := db.ReadCacheStats(); end.Misses != mid.Misses {
		t.Fatalf("query after the re-encoding merge decoded %d chunks", end.Misses-mid.Misses)
	}
}

// TestChunkCacheConcurrentMerges runs queries of the newest rows and of the
// whole table while a writer commits, flushes and merges, through a cache
// small enough to evict (run with -race): every query sees every committed
// row, and the cache's bookkeeping holds.
func TestChunkCacheConcurrentMerges(t *testing.T) {
	env := newEnv(t)
	db := env.open(t, func(o *Options) { o.BlockRows = 128; o.MaxPartsPerDay = 2; o.ReadCacheBytes = 40 * (4096 + 160) })
	defer db.Close()
	ctx := context.Background()
	ref := TableRef{WorkspaceID: testWS, Table: "Conc_CL"}
	if err := db.EnsureTable(ctx, ref, ccSchema, 0); err != nil {
		t.Fatal(err)
	}
	const rounds, per = 12, 300
	commit(t, db, ref, ccBatch(0, per))
	var mu sync.Mutex
	committed := per
	done := make(chan struct{})
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				mu.Lock()
				n := committed
				mu.Unlock()
				tr := AllTime
				if g > 0 {
					tr = ccRange(max(n-400, 0), n)
				}
				got, _ := selectRows(t, db, ref, tr, ccCols)
				lo := 0
				if g > 0 {
					lo = max(n-400, 0)
				}
				if len(got) < n-lo {
					errs <- fmt.Errorf("query saw %d rows of [%d, %d)", len(got), lo, n)
					return
				}
			}
		}()
	}
	for i := 1; i < rounds; i++ {
		commit(t, db, ref, ccBatch(i*per, per))
		mu.Lock()
		committed = (i + 1) * per
		mu.Unlock()
		if err := db.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if err := db.Merge(ctx); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	db.rcache.sweep()
	checkCache(t, &db.rcache)
	st := db.ReadCacheStats()
	if st.Hits == 0 || db.Stats().PartsMerged == 0 || st.Rekeyed+st.Fresh == 0 {
		t.Fatalf("no hits, merges or merge-time entries: cache %+v, store %+v", st, db.Stats())
	}
	if got, _ := selectRows(t, db, ref, AllTime, ccCols); len(got) != rounds*per {
		t.Fatalf("%d rows at the end, want %d", len(got), rounds*per)
	}
}

// TestReadCacheMetrics checks the cache's /metrics lines after a cold and a
// warm query: hits, misses and the size as ReadCacheStats has them.
func TestReadCacheMetrics(t *testing.T) {
	env := newEnv(t)
	db := env.open(t, withReadCache)
	defer db.Close()
	ctx := context.Background()
	ref := TableRef{WorkspaceID: testWS, Table: "Metrics_CL"}
	if err := db.EnsureTable(ctx, ref, ccSchema, 0); err != nil {
		t.Fatal(err)
	}
	commit(t, db, ref, ccBatch(0, 100))
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		selectRows(t, db, ref, AllTime, ccCols)
	}
	var sb strings.Builder
	if err := db.WriteReadCacheMetrics(&sb); err != nil {
		t.Fatal(err)
	}
	st := db.ReadCacheStats()
	if st.Hits != 3 || st.Misses != 6 || st.Admitted != 3 || st.Entries != 3 || st.Limit != 256<<20 {
		t.Fatalf("stats after a cold, an admitting and a warm query of 3 chunks: %+v", st)
	}
	for _, want := range []string{
		"# TYPE custos_store_read_cache_hits_total counter\ncustos_store_read_cache_hits_total 3\n",
		"custos_store_read_cache_misses_total 6\n",
		"custos_store_read_cache_admitted_total 3\n",
		"# TYPE custos_store_read_cache_entries gauge\ncustos_store_read_cache_entries 3\n",
		fmt.Sprintf("custos_store_read_cache_bytes %d\n", st.Bytes),
		fmt.Sprintf("# TYPE custos_store_read_cache_heap_bytes gauge\ncustos_store_read_cache_heap_bytes %d\n", st.HeapBytes),
		fmt.Sprintf("# TYPE custos_store_read_cache_promoted_total counter\ncustos_store_read_cache_promoted_total %d\n", st.Promoted),
		"custos_store_read_cache_limit_bytes 268435456\n",
		"custos_store_read_cache_evictions_total 0\n",
	} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, sb.String())
		}
	}
}

// TestChunkCacheExpires: entries not read for a while leave before the
// cache is full — the rows a rule's window has moved past — while entries
// read in every period stay; a fresh (flushed) entry nobody reads goes
// after two periods.
func TestChunkCacheExpires(t *testing.T) {
	env := newEnv(t)
	db := env.open(t, func(o *Options) { o.BlockRows = 256; withReadCache(o) })
	defer db.Close()
	ctx := context.Background()
	ref := TableRef{WorkspaceID: testWS, Table: "Expire_CL"}
	if err := db.EnsureTable(ctx, ref, ccSchema, 0); err != nil {
		t.Fatal(err)
	}
	commit(t, db, ref, ccBatch(0, 512)) // blocks 0 (old) and 1 (current)
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	old, cur := ccRange(0, 256), ccRange(256, 512)
	for range 2 {
		selectRows(t, db, ref, old, ccCols)
	}
	age := func() { // one period: the reads that trigger an aging
		c := &db.rcache
		c.mu.Lock()
		c.reads = 1 << 30
		c.ageLocked()
		c.mu.Unlock()
	}
	for period := range 3 {
		for range 2 {
			selectRows(t, db, ref, cur, ccCols)
		}
		if period == 0 {
			commit(t, db, ref, ccBatch(512, 256)) // a fresh part nobody reads
			if err := db.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if st := db.ReadCacheStats(); st.Fresh != 3 {
				t.Fatalf("flush admitted %d chunks, want 3", st.Fresh)
			}
		}
		age()
		checkCache(t, &db.rcache)
	}
	cached := cachedBlocks(db, ref)
	st := db.ReadCacheStats()
	if cached[old.From] || !cached[cur.From] || len(cached) != 1 || st.Expired != 6 {
		t.Fatalf("after 3 periods: old block cached %v, current %v, %d blocks; %+v; want only the current block, 6 expired",
			cached[old.From], cached[cur.From], len(cached), st)
	}
}
