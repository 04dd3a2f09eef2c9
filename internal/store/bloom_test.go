package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"

	"custos/internal/crypt"
	"custos/internal/offheap"
)

// appendPartMetaV1 is the version-1 part meta writer (before bloom
// sections): every bloom-flagged chunk's bloom words follow its statistics.
// Tests use it to make old-format parts.
func appendPartMetaV1(dst []byte, m *partMeta, bloomOf func(block, col int) bloom) []byte {
	dst = binary.AppendUvarint(dst, partMetaVer1)
	dst = append(dst, m.incarnation[:]...)
	dst = binary.AppendVarint(dst, m.day)
	dst = binary.AppendUvarint(dst, m.walSeq)
	dst = binary.AppendUvarint(dst, uint64(m.rows))
	dst = binary.AppendVarint(dst, m.minT)
	dst = binary.AppendVarint(dst, m.maxT)
	dst = binary.AppendUvarint(dst, uint64(len(m.replaces)))
	for _, r := range m.replaces {
		dst = appendStr(dst, r)
	}
	dst = binary.AppendUvarint(dst, uint64(len(m.cols)))
	for _, c := range m.cols {
		dst = appendStr(dst, c.Name)
		dst = append(dst, byte(c.Type))
	}
	dst = binary.AppendUvarint(dst, uint64(len(m.blocks)))
	for bi, b := range m.blocks {
		dst = binary.AppendUvarint(dst, uint64(b.rows))
		dst = binary.AppendVarint(dst, b.minT)
		dst = binary.AppendVarint(dst, b.maxT)
		for j, c := range b.cols {
			dst = binary.AppendUvarint(dst, uint64(c.off))
			dst = binary.AppendUvarint(dst, uint64(c.size))
			dst = binary.AppendUvarint(dst, uint64(c.rawSize))
			dst = append(dst, c.flags)
			if c.flags&chunkFlagIntMinMax != 0 {
				dst = binary.AppendVarint(dst, c.minI)
				dst = binary.AppendVarint(dst, c.maxI)
			}
			if c.flags&chunkFlagRealMinMax != 0 {
				dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(c.minF))
				dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(c.maxF))
			}
			if c.flags&chunkFlagBloom != 0 {
				bl := bloomOf(bi, j)
				dst = binary.AppendUvarint(dst, uint64(len(bl)))
				for _, w := range bl {
					dst = binary.LittleEndian.AppendUint64(dst, w)
				}
			}
		}
	}
	return dst
}

// rewritePartV1 returns the bytes of p's file as the version-1 writer would
// have left it: the same header and blocks, no bloom sections, and a footer
// (meta version 1, sealed with the part key) carrying every chunk's bloom.
func rewritePartV1(t *testing.T, p *part) []byte {
	t.Helper()
	var cols []int
	for j, c := range p.meta.cols {
		if classOf(c.Type) == classStr {
			cols = append(cols, j)
		}
	}
	bbs, err := p.loadBlooms(cols)
	if err != nil {
		t.Fatal(err)
	}
	defer freeBlooms(bbs)
	end := p.size
	for _, bs := range p.meta.blooms {
		if bs.size > 0 {
			end = min(end, bs.off)
		}
	}
	if end == p.size {
		t.Fatal("part has no bloom sections")
	}
	body := make([]byte, end)
	if _, err := p.f.ReadAt(body, 0); err != nil {
		t.Fatal(err)
	}
	raw := appendPartMetaV1(nil, p.meta, func(block, col int) bloom { return bbs[col].copyOf(block) })
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	sealed, err := p.key.Seal(nil, enc.EncodeAll(raw, nil), partMetaAAD(p.wsID, p.table, p.id))
	if err != nil {
		t.Fatal(err)
	}
	out := append(body, sealed...)
	out = binary.LittleEndian.AppendUint64(out, uint64(end))
	out = binary.LittleEndian.AppendUint32(out, uint32(len(sealed)))
	out = binary.LittleEndian.AppendUint32(out, crc32.Checksum(sealed, castagnoli))
	return append(out, partEndMagic...)
}

// bloomTestDB makes a table of n free-text rows (termFilterRows) flushed as
// one part of 1024-row blocks, and returns it with the part's path.
func bloomTestDB(t *testing.T, env *testEnv, mod func(*Options)) (*DB, TableRef, []string) {
	t.Helper()
	ctx := context.Background()
	db := env.open(t, func(o *Options) {
		o.BlockRows = 1024
		if mod != nil {
			mod(o)
		}
	})
	ref := TableRef{testWS, "Text_CL"}
	if err := db.EnsureTable(ctx, ref, Schema{{"Message", TypeString}, {"N", TypeLong}}, 0); err != nil {
		t.Fatal(err)
	}
	b, msgs := termFilterRows(5000, map[int]string{17: " quokka", 2500: " quokka koala", 4990: " koala"})
	commit(t, db, ref, b)
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return db, ref, msgs
}

type needleResult struct {
	rows  []string
	stats SelectStats
}

func needles(t *testing.T, db *DB, ref TableRef) []needleResult {
	t.Helper()
	var out []needleResult
	for _, h := range [][]TermHint{
		{{Column: "Message", Term: "quokka"}},
		{{Column: "Message", Term: "koala"}},
		{{Term: "quokka"}}, // any column
		{{Column: "Message", Term: "w1x"}},
		{{Column: "Message", Term: "nosuchterm"}},
	} {
		rows, st := selectRows(t, db, ref, AllTime, SelectHints{Terms: h})
		out = append(out, needleResult{rows, st})
	}
	return out
}

func sameNeedles(t *testing.T, what string, got, want []needleResult) {
	t.Helper()
	for i := range want {
		if !slices.Equal(got[i].rows, want[i].rows) {
			t.Fatalf("%s: needle %d: %d rows, want %d", what, i, len(got[i].rows), len(want[i].rows))
		}
		g, w := got[i].stats, want[i].stats
		if g.BlocksTotal != w.BlocksTotal || g.BlocksSkippedTerms != w.BlocksSkippedTerms || g.BlocksRead != w.BlocksRead {
			t.Fatalf("%s: needle %d: stats %+v, want %+v", what, i, g, w)
		}
	}
}

// TestBloomSections: a flushed part's blooms are in its bloom sections, not
// in its meta; needle queries skip blocks by them (and keep skipping through
// the cache, which loads each section once); an old (meta version 1) part
// with its blooms in the footer opens and answers identically, keeps no
// bloom in memory, and a merge writes it out in the new format.
func TestBloomSections(t *testing.T) {
	ctx := context.Background()
	env := newEnv(t)
	db, ref, _ := bloomTestDB(t, env, nil)
	ps := partsOf(t, db, ref)
	if len(ps) != 1 || ps[0].meta.ver != partMetaVer {
		t.Fatalf("%d parts; want one of meta version %d", len(ps), partMetaVer)
	}
	p := ps[0]
	mi := p.meta.cols.Index("Message")
	if p.meta.blooms[mi].size == 0 || p.meta.blooms[p.meta.cols.Index("N")].size != 0 {
		t.Fatalf("bloom sections %+v; want one for Message only", p.meta.blooms)
	}
	want := needles(t, db, ref)
	if want[0].stats.BlocksSkippedTerms == 0 || want[4].stats.BlocksSkippedTerms != want[4].stats.BlocksTotal {
		t.Fatalf("needle stats %+v / %+v: blooms skip nothing", want[0].stats, want[4].stats)
	}
	if len(want[0].rows) != 2 || len(want[1].rows) != 2 || len(want[2].rows) < 2 || len(want[4].rows) != 0 {
		t.Fatalf("needle rows: %d %d %d %d", len(want[0].rows), len(want[1].rows), len(want[2].rows), len(want[4].rows))
	}
	strCols := 0
	for _, c := range p.meta.cols {
		if classOf(c.Type) == classStr {
			strCols++
		}
	}
	// Each section is read once (the column-less hint reads every string
	// column's: Message, _ItemId, _ResourceId), then comes from the cache.
	if _, _, loads := db.bcache.stats(); loads != int64(strCols) {
		t.Fatalf("%d bloom section loads for five queries of one part; want %d (once per string column)", loads, strCols)
	}
	// Version 1: the same blocks, the blooms in the footer.
	old := rewritePartV1(t, p)
	path := p.path
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, old, 0o600); err != nil {
		t.Fatal(err)
	}
	db = env.open(t, func(o *Options) { o.BlockRows = 1024; o.MaxPartsPerDay = 1 })
	defer db.Close()
	ps = partsOf(t, db, ref)
	if len(ps) != 1 || ps[0].meta.ver != partMetaVer1 || ps[0].meta.blooms != nil {
		t.Fatalf("reopened: %d parts, version %d; want one of version 1 without bloom sections", len(ps), ps[0].meta.ver)
	}
	sameNeedles(t, "version-1 part", needles(t, db, ref), want)
	// A second part, then a merge: the merged part is version 2 and answers alike.
	b, _ := termFilterRows(5000, nil)
	for i := range b.Cols[0].Int {
		b.Cols[0].Int[i] += 10_000 * TicksPerSecond
	}
	commit(t, db, ref, b)
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Merge(ctx); err != nil {
		t.Fatal(err)
	}
	ps = partsOf(t, db, ref)
	if len(ps) != 1 || ps[0].meta.ver != partMetaVer || ps[0].meta.rows != 10000 {
		t.Fatalf("after the merge: %d parts (version %d); want one of version %d", len(ps), ps[0].meta.ver, partMetaVer)
	}
	got := needles(t, db, ref)
	for _, i := range []int{0, 1, 4} { // w1x (needle 3) is also in the new rows
		if !slices.Equal(got[i].rows, want[i].rows) {
			t.Fatalf("merged: needle %d: %d rows, want %d", i, len(got[i].rows), len(want[i].rows))
		}
	}
	// The any-column needle also probes the _ItemId blooms, whose content
	// (random IDs) and so false positives differ from run to run: it must
	// return the Message needle's rows; it may return more blocks, which the
	// engine's filter drops.
	for _, r := range want[0].rows {
		if !slices.Contains(got[2].rows, r) {
			t.Fatalf("merged: the any-column needle misses row %s (%d rows)", r, len(got[2].rows))
		}
	}
	if got[4].stats.BlocksSkippedTerms != got[4].stats.BlocksTotal {
		t.Fatalf("merged: absent term stats %+v", got[4].stats)
	}
}

// TestBloomSectionTampered: a damaged bloom section fails the query that
// needs it with a *CorruptionError naming the part and the bloom section, and
// the part is quarantined like one with a damaged block; a query without term
// hints never reads the section.
func TestBloomSectionTampered(t *testing.T) {
	ctx := context.Background()
	env := newEnv(t)
	db, ref, _ := bloomTestDB(t, env, nil)
	p := partsOf(t, db, ref)[0]
	bs := p.meta.blooms[p.meta.cols.Index("Message")]
	path := p.path
	db.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[bs.off+int64(bs.size)/2] ^= 0x10
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	db = env.open(t, nil)
	defer db.Close()
	if n := countRows(t, db, ref); n != 5000 {
		t.Fatalf("a scan without hints read %d rows; want 5000", n)
	}
	q, err := db.Querier(ctx, ref, AllTime)
	if err != nil {
		t.Fatal(err)
	}
	it := q.Select(ctx, SelectHints{Terms: []TermHint{{Column: "Message", Term: "quokka"}}})
	for it.Next() {
	}
	it.Close()
	q.Close()
	var ce *CorruptionError
	if !errors.As(it.Err(), &ce) || ce.Part != p.id || !strings.Contains(ce.Error(), "bloom section") {
		t.Fatalf("got %v; want a *CorruptionError of part %s's bloom section", it.Err(), p.id)
	}
	qs := db.QuarantinedParts()
	if len(qs) != 1 || qs[0].PartID != p.id || qs[0].DetectedBy != "query" || !strings.Contains(qs[0].Reason, "column Message") {
		t.Fatalf("quarantine records %+v", qs)
	}
	if n := countRows(t, db, ref); n != 0 {
		t.Fatalf("%d rows after the quarantine; want 0", n)
	}
}

// TestBloomCacheBounded: with a cache smaller than the sections, sections
// leave (at random) so the kept bytes stay within the limit,
// answers do not change, and entries of merged-away parts leave at the next
// query.
func TestBloomCacheBounded(t *testing.T) {
	ctx := context.Background()
	env := newEnv(t)
	db := env.open(t, func(o *Options) { o.BlockRows = 256; o.BloomCacheBytes = 3 * 4096; o.MaxPartsPerDay = 100 })
	defer db.Close()
	ref := TableRef{testWS, "Text_CL"}
	if err := db.EnsureTable(ctx, ref, Schema{{"Message", TypeString}, {"N", TypeLong}}, 0); err != nil {
		t.Fatal(err)
	}
	for k := range 6 {
		b, _ := termFilterRows(1000, map[int]string{k * 100: " quokka"})
		for i := range b.Cols[0].Int {
			b.Cols[0].Int[i] += int64(k) * 2000 * TicksPerSecond
		}
		commit(t, db, ref, b)
		if err := db.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	h := SelectHints{Terms: []TermHint{{Column: "Message", Term: "quokka"}}}
	for range 3 {
		rows, st := selectRows(t, db, ref, AllTime, h)
		if len(rows) != 6 || st.BlocksSkippedTerms == 0 {
			t.Fatalf("%d rows, stats %+v; want 6 rows and skipped blocks", len(rows), st)
		}
		if n, bytes, _ := db.bcache.stats(); bytes > 3*4096 || n > 3 {
			t.Fatalf("cache holds %d sections, %d bytes; limit 3 pages", n, bytes)
		}
	}
	if _, _, loads := db.bcache.stats(); loads <= 6 || loads > 6*3 {
		t.Fatalf("%d loads in 3 rounds over 6 sections with room for 3; want some reloads, at most 18", loads)
	}
	// Room for all: the second round loads nothing.
	db.bcache.limit = 1 << 20
	selectRows(t, db, ref, AllTime, h)
	_, _, before := db.bcache.stats()
	selectRows(t, db, ref, AllTime, h)
	if n, _, after := db.bcache.stats(); after != before || n != 6 {
		t.Fatalf("%d sections kept, %d loads in a warm round; want 6 and 0", n, after-before)
	}
	db.opts.MaxPartsPerDay = 2
	if err := db.Merge(ctx); err != nil {
		t.Fatal(err)
	}
	if len(partsOf(t, db, ref)) != 1 {
		t.Fatal("parts not merged")
	}
	if rows, _ := selectRows(t, db, ref, AllTime, h); len(rows) != 6 {
		t.Fatalf("%d rows after the merge", len(rows))
	}
	if n, _, _ := db.bcache.stats(); n != 1 {
		t.Fatalf("%d sections kept after the merge; want the merged part's only", n)
	}
}

// TestBloomsOutOfHeap: opening a store of many parts does not put their
// blooms in the Go heap, and neither does reading all of them into the
// cache: the heap grows by much less than the blooms' bytes.
func TestBloomsOutOfHeap(t *testing.T) {
	if !offheap.OutsideHeap {
		t.Skip("no mmap on this platform: the cache lives in the Go heap")
	}
	ctx := context.Background()
	env := newEnv(t)
	db := env.open(t, func(o *Options) { o.MaxPartsPerDay = 1000 })
	ref := TableRef{testWS, "Ids_CL"}
	if err := db.EnsureTable(ctx, ref, Schema{{"Message", TypeString}}, 0); err != nil {
		t.Fatal(err)
	}
	const parts, rows = 30, 4000
	rng := rand.New(rand.NewPCG(1, 2))
	for k := range parts {
		b := &Batch{Schema: Schema{{ColTimeGenerated, TypeDatetime}, {"Message", TypeString}}, Len: rows}
		tg, msg := &Vector{Type: TypeDatetime}, &Vector{Type: TypeString}
		for i := range rows {
			tg.Int = append(tg.Int, baseTime.UnixMilli()*TicksPerMillisecond+int64(k*rows+i)*TicksPerMillisecond)
			var sb strings.Builder
			for range 24 {
				fmt.Fprintf(&sb, "%x ", rng.Uint64())
			}
			msg.Str = append(msg.Str, sb.String())
		}
		b.Cols = []*Vector{tg, msg}
		commit(t, db, ref, b)
		if err := db.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	h0 := heap()
	db = env.open(t, nil)
	defer db.Close()
	ps := partsOf(t, db, ref)
	if len(ps) != parts {
		t.Fatalf("%d parts; want %d", len(ps), parts)
	}
	var bloomBytes int64
	for _, p := range ps {
		for _, bs := range p.meta.blooms {
			bloomBytes += int64(bs.size)
		}
	}
	h1 := heap()
	if rows, _ := selectRows(t, db, ref, AllTime, SelectHints{Terms: []TermHint{{Column: "Message", Term: "nosuchtoken"}}}); len(rows) != 0 {
		t.Fatal("rows for an absent term")
	}
	if n, _, _ := db.bcache.stats(); n != parts {
		t.Fatalf("%d sections cached; want %d", n, parts)
	}
	h2 := heap()
	t.Logf("blooms %d bytes in %d parts; heap before open %d, after open %d, after caching every section %d", bloomBytes, parts, h0, h1, h2)
	if bloomBytes < 2<<20 {
		t.Fatalf("only %d bytes of blooms: the test means nothing", bloomBytes)
	}
	if grow := int64(h1) - int64(h0); grow > bloomBytes/4 {
		t.Fatalf("opening the store grew the heap by %d bytes; the blooms are %d bytes", grow, bloomBytes)
	}
	if grow := int64(h2) - int64(h1); grow > bloomBytes/4 {
		t.Fatalf("caching the blooms grew the heap by %d bytes; they are %d bytes", grow, bloomBytes)
	}
}

// FuzzBloomSection: any bytes a (decrypted, so authenticated) bloom section
// may hold are either refused by checkBloomSection or safe to use.
func FuzzBloomSection(f *testing.F) {
	f.Add(encodeBloomSection([]bloom{{1, 2}, nil, {3}}, 3), 3)
	f.Add(encodeBloomSection(nil, 2), 2)
	f.Add(encodeBloomSection([]bloom{{^uint64(0)}}, 1), 1)
	f.Fuzz(func(t *testing.T, plain []byte, n int) {
		if n < 0 || n > 1<<16 {
			return
		}
		if err := checkBloomSection(plain, n); err != nil {
			return
		}
		bb, err := newBloomBlock(plain)
		if err != nil {
			t.Fatal(err)
		}
		defer bb.free()
		for b := range n {
			bb.mayHaveAll(b, []uint64{1, 12345, ^uint64(0)})
			bl := bb.copyOf(b)
			if len(bl) > maxBloomWords {
				t.Fatalf("block %d: %d words", b, len(bl))
			}
		}
	})
}

// TestUpgradeParts: UpgradeParts rewrites a version-1 part with bloom
// sections; answers and skipped blocks do not change, the old file goes,
// and a second call has nothing to do.
func TestUpgradeParts(t *testing.T) {
	ctx := context.Background()
	env := newEnv(t)
	db, ref, _ := bloomTestDB(t, env, nil)
	want := needles(t, db, ref)
	p := partsOf(t, db, ref)[0]
	old, path := rewritePartV1(t, p), p.path
	db.Close()
	if err := os.WriteFile(path, old, 0o600); err != nil {
		t.Fatal(err)
	}
	db = env.open(t, nil)
	if n, err := db.UpgradeParts(ctx); err != nil || n != 1 {
		t.Fatalf("UpgradeParts: %d, %v; want 1 part", n, err)
	}
	ps := partsOf(t, db, ref)
	if len(ps) != 1 || ps[0].meta.ver != partMetaVer || ps[0].path == path {
		t.Fatalf("after the upgrade: %d parts, version %d", len(ps), ps[0].meta.ver)
	}
	sameNeedles(t, "upgraded part", needles(t, db, ref), want)
	if n, err := db.UpgradeParts(ctx); err != nil || n != 0 {
		t.Fatalf("second UpgradeParts: %d, %v; want 0", n, err)
	}
	db.Close()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the version-1 file is still there: %v", err)
	}
	db = env.open(t, nil)
	defer db.Close()
	sameNeedles(t, "upgraded part, reopened", needles(t, db, ref), want)
}

// TestBloomSectionsDoubleEncryption: with double encryption the bloom
// sections are sealed twice like the blocks (the second layer's key is the
// workspace's infrastructure key) and needle queries still skip blocks.
func TestBloomSectionsDoubleEncryption(t *testing.T) {
	ctx := context.Background()
	env := newEnv(t)
	db := env.open(t, func(o *Options) { o.BlockRows = 1024 })
	defer db.Close()
	fk, err := crypt.CreateFileKey(filepath.Join(t.TempDir(), "customer.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetWorkspaceEncryption(ctx, testWS, WorkspaceEncryption{Provider: fk, DoubleEncryption: true}); err != nil {
		t.Fatal(err)
	}
	ref := TableRef{testWS, "Text_CL"}
	if err := db.EnsureTable(ctx, ref, Schema{{"Message", TypeString}, {"N", TypeLong}}, 0); err != nil {
		t.Fatal(err)
	}
	b, _ := termFilterRows(5000, map[int]string{17: " quokka", 2500: " quokka koala", 4990: " koala"})
	commit(t, db, ref, b)
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	p := partsOf(t, db, ref)[0]
	if len(p.key) != 2 {
		t.Fatal("part not double-encrypted")
	}
	got := needles(t, db, ref)
	if len(got[0].rows) != 2 || got[0].stats.BlocksSkippedTerms == 0 || got[4].stats.BlocksSkippedTerms != got[4].stats.BlocksTotal {
		t.Fatalf("needles under double encryption: %d rows, stats %+v / %+v", len(got[0].rows), got[0].stats, got[4].stats)
	}
	// The section opens under both layers and not under the inner one alone.
	bs := p.meta.blooms[p.meta.cols.Index("Message")]
	sealed := make([]byte, bs.size)
	if _, err := p.f.ReadAt(sealed, bs.off); err != nil {
		t.Fatal(err)
	}
	aad := bloomAAD(nil, p.wsID, p.table, p.id, "Message")
	if _, err := p.key[:1].Open(nil, sealed, aad); err == nil {
		t.Fatal("a double-encrypted bloom section opened with the inner key alone")
	}
	if _, err := p.key.Open(nil, sealed, aad); err != nil {
		t.Fatalf("bloom section: %v", err)
	}
}

// TestBloomCacheConcurrent: concurrent needle queries over parts whose
// sections do not all fit load, share and evict sections safely (run with
// -race) and all get the same answer.
func TestBloomCacheConcurrent(t *testing.T) {
	ctx := context.Background()
	env := newEnv(t)
	db := env.open(t, func(o *Options) {
		o.BlockRows = 256
		o.BloomCacheBytes = 2 * 4096
		o.MaxPartsPerDay = 100
		o.QueryWorkers = 4
	})
	defer db.Close()
	ref := TableRef{testWS, "Text_CL"}
	if err := db.EnsureTable(ctx, ref, Schema{{"Message", TypeString}, {"N", TypeLong}}, 0); err != nil {
		t.Fatal(err)
	}
	for k := range 5 {
		b, _ := termFilterRows(1000, map[int]string{k * 100: " quokka"})
		for i := range b.Cols[0].Int {
			b.Cols[0].Int[i] += int64(k) * 2000 * TicksPerSecond
		}
		commit(t, db, ref, b)
		if err := db.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				hs := []TermHint{{Column: "Message", Term: "quokka"}}
				if g%2 == 1 {
					hs = []TermHint{{Term: "quokka"}}
				}
				q, err := db.Querier(ctx, ref, AllTime)
				if err != nil {
					errs <- err
					return
				}
				it := q.Select(ctx, SelectHints{Terms: hs, Columns: []string{"N"}})
				rows := 0
				for it.Next() {
					rows += it.Batch().Len
				}
				it.Close()
				q.Close()
				if err := it.Err(); err != nil {
					errs <- err
					return
				}
				if g%2 == 0 && rows != 5 {
					errs <- fmt.Errorf("%d rows; want 5", rows)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if _, bytes, _ := db.bcache.stats(); bytes > 2*4096 {
		t.Fatalf("cache holds %d bytes; limit %d", bytes, 2*4096)
	}
}
