package store

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"custos/internal/crypt"
)

// findDecrypted decrypts every part and WAL segment under the workspace
// directory with the store's own keys and returns where needle occurs in a
// value. Every other file is searched as raw bytes. Encryption alone would
// hide the needle from a raw scan, so this is what shows that purged values
// are really gone, not just sealed.
func findDecrypted(t *testing.T, db *DB, needle string) []string {
	t.Helper()
	ctx := context.Background()
	db.mu.RLock()
	ws := db.workspaces[testWS]
	db.mu.RUnlock()
	keys := ws.keys.Load()
	var hits []string
	strHit := func(where string, v *Vector) {
		for _, s := range v.Str {
			if strings.Contains(s, needle) {
				hits = append(hits, where)
				return
			}
		}
	}
	err := filepath.WalkDir(db.opts.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(raw, []byte(needle)) {
			hits = append(hits, path+" (raw)")
		}
		switch {
		case strings.HasSuffix(path, ".part"):
			table := filepath.Base(filepath.Dir(path))
			p, err := openPart(ctx, path, ws.id, table, keys)
			if err != nil {
				return fmt.Errorf("open %s: %w", path, err)
			}
			defer p.release()
			for bi := range p.meta.blocks {
				for ci := range p.meta.cols {
					v, _, err := p.readChunk(bi, ci, db.dec, nil)
					if err != nil {
						return err
					}
					strHit(fmt.Sprintf("%s block %d", path, bi), v)
					// The encoding itself too: a dictionary entry or token
					// that no row uses any more must not survive either.
					comp, _, err := p.openChunk(bi, ci, nil)
					if err != nil {
						return err
					}
					raw, err := p.decompressChunk(bi, ci, db.dec, comp, false)
					if err != nil {
						return err
					}
					if bytes.Contains(raw, []byte(needle)) {
						hits = append(hits, fmt.Sprintf("%s block %d column %s (encoding)", path, bi, p.meta.cols[ci].Name))
					}
				}
			}
		case strings.HasSuffix(path, ".wal"):
			seg, _, err := readSegment(ctx, path, ws.id, keys, func(seq uint64, payload []byte) error {
				rec, err := decodeWALRecord(payload)
				if err != nil {
					return err
				}
				for _, v := range rec.vecs {
					strHit(fmt.Sprintf("%s record %d", path, seq), v)
				}
				return nil
			})
			if seg != nil {
				seg.key.Destroy()
			}
			if err != nil && !strings.Contains(err.Error(), "torn") {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

var purgeSchema = Schema{{"User", TypeString}, {"Msg", TypeString}, {"N", TypeLong}}

func purgeBatch(lo, n int, day int, victim func(i int) bool) *Batch {
	b := &Batch{Schema: append(Schema{{"TimeGenerated", TypeDatetime}}, purgeSchema...), Len: n,
		Cols: []*Vector{{Type: TypeDatetime}, {Type: TypeString}, {Type: TypeString}, {Type: TypeLong}}}
	for k := range n {
		i := lo + k
		b.Cols[0].Int = append(b.Cols[0].Int, TicksFromTime(baseTime.AddDate(0, 0, day))+int64(i)*TicksPerSecond)
		user, msg := fmt.Sprintf("user-%d", i%13), fmt.Sprintf("message %d", i)
		if victim(i) {
			user, msg = "victim", "ssn 078-05-1120 of victim"
		}
		b.Cols[1].Str = append(b.Cols[1].Str, user)
		b.Cols[2].Str = append(b.Cols[2].Str, msg)
		b.Cols[3].Int = append(b.Cols[3].Int, int64(i))
	}
	return b
}

func TestPurge(t *testing.T) {
	for _, double := range []bool{false, true} {
		t.Run(fmt.Sprintf("double=%v", double), func(t *testing.T) { testPurge(t, double) })
	}
}

func testPurge(t *testing.T, double bool) {
	env := newEnv(t)
	ctx := context.Background()
	db := env.open(t, func(o *Options) { o.BlockRows = 64; o.MaxPartsPerDay = 2 })
	defer db.Close()
	ref := TableRef{WorkspaceID: testWS, Table: "Purge"}
	if err := db.EnsureTable(ctx, ref, purgeSchema, 0); err != nil {
		t.Fatal(err)
	}
	var fk *crypt.FileKey
	if double {
		var err error
		fk, err = crypt.CreateFileKey(filepath.Join(t.TempDir(), "cmk.key"))
		if err != nil {
			t.Fatal(err)
		}
		if err := db.SetWorkspaceEncryption(ctx, testWS, WorkspaceEncryption{Provider: fk, DoubleEncryption: true}); err != nil {
			t.Fatal(err)
		}
	}
	const needle = "078-05-1120"
	total, victims := 0, 0
	add := func(lo, n, day int, victim func(int) bool) {
		t.Helper()
		commit(t, db, ref, purgeBatch(lo, n, day, victim))
		total += n
		for i := lo; i < lo+n; i++ {
			if victim(i) {
				victims++
			}
		}
	}
	every := func(k int) func(int) bool { return func(i int) bool { return i%k == 0 } }
	// Several parts over two days, merged; one part made only of victims;
	// rows left in the memtable and WAL.
	for r := range 4 {
		add(r*500, 500, 0, every(37))
		add(r*500, 300, 1, every(101))
		if err := db.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Merge(ctx); err != nil {
		t.Fatal(err)
	}
	if db.Stats().PartsMerged == 0 {
		t.Fatal("no merge happened")
	}
	add(5000, 40, 2, func(int) bool { return true })
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	add(6000, 200, 0, every(7)) // memtable + WAL only
	if hits := findDecrypted(t, db, needle); len(hits) == 0 {
		t.Fatal("the needle is not in the store before the purge: the search is broken")
	}
	partsBefore := map[string]bool{}
	for _, p := range flushedPartFiles(t, env.dir) {
		partsBefore[filepath.Base(p)] = true
	}

	// Concurrent ingestion and queries during the purge.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var extra atomic.Int64
	var bgErr atomic.Value
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := tryCommit(db, ref, purgeBatch(100000+i*10, 10, 0, func(int) bool { return false })); err != nil {
				bgErr.Store(err)
				return
			}
			extra.Add(10)
		}
	}()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := tryCount(db, ref); err != nil {
				bgErr.Store(err)
				return
			}
		}
	}()
	time.Sleep(20 * time.Millisecond)
	res, err := db.Purge(ctx, ref, ColumnIn{Column: "User", Values: []string{"victim"}})
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if e := bgErr.Load(); e != nil {
		t.Fatalf("concurrent work failed: %v", e)
	}
	if res.RowsPurged != int64(victims) || res.PartsDeleted != 1 || res.PartsRewritten == 0 {
		t.Fatalf("purge result %+v; want %d rows, 1 part deleted", res, victims)
	}
	if n, err := tryCount(db, ref); err != nil || n != total-victims+int(extra.Load()) {
		t.Fatalf("%d rows after purge, %v; want %d", n, err, total-victims+int(extra.Load()))
	}
	rows, _ := selectRows(t, db, ref, AllTime, SelectHints{})
	for _, r := range rows {
		if strings.Contains(r, "victim") {
			t.Fatalf("purged row returned: %s", r)
		}
	}
	for _, p := range flushedPartFiles(t, env.dir) {
		delete(partsBefore, filepath.Base(p))
	}
	if len(partsBefore) == 0 {
		t.Fatal("no old part file was deleted")
	}
	// Nothing left anywhere: parts, merged parts, WAL, temporary files.
	if hits := findDecrypted(t, db, needle); len(hits) > 0 {
		t.Fatalf("purged value still on disk: %v", hits)
	}
	if hits := findDecrypted(t, db, "victim"); len(hits) > 0 {
		t.Fatalf("purged value still on disk: %v", hits)
	}
	// And after a restart (replay must not bring anything back).
	db.Close()
	db = env.open(t, nil)
	defer db.Close()
	if double {
		if err := db.SetWorkspaceKeyProvider(ctx, testWS, fk); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := tryCount(db, ref); err != nil || n != total-victims+int(extra.Load()) {
		t.Fatalf("%d rows after restart, %v", n, err)
	}
	if hits := findDecrypted(t, db, needle); len(hits) > 0 {
		t.Fatalf("purged value on disk after restart: %v", hits)
	}
	if st := db.Stats(); st.CorruptionErrors != 0 {
		t.Fatalf("%d corruption errors", st.CorruptionErrors)
	}
}

func TestPurgeErrors(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	db := env.open(t, nil)
	defer db.Close()
	ref := TableRef{WorkspaceID: testWS, Table: "P"}
	if err := db.EnsureTable(ctx, ref, purgeSchema, 0); err != nil {
		t.Fatal(err)
	}
	commit(t, db, ref, purgeBatch(0, 100, 0, func(i int) bool { return i < 3 }))
	if _, err := db.Purge(ctx, ref, nil); err == nil {
		t.Fatal("nil predicate accepted")
	}
	if _, err := db.Purge(ctx, ref, ColumnIn{Column: "Nope", Values: []string{"x"}}); err == nil {
		t.Fatal("unknown column accepted")
	}
	if _, err := db.Purge(ctx, ref, ColumnIn{Column: "N", Values: []string{"1"}}); err == nil {
		t.Fatal("string match on a long column accepted")
	}
	bad := RowPredicateFunc(func(b *Batch) ([]bool, error) { return make([]bool, 1), nil })
	if _, err := db.Purge(ctx, ref, bad); err == nil {
		t.Fatal("predicate with a wrong result length accepted")
	}
	if _, err := db.Purge(ctx, TableRef{WorkspaceID: testWS, Table: "Missing"}, bad); err == nil {
		t.Fatal("purge of a missing table succeeded")
	}
	// Virtual and system columns can be matched; nothing matching changes nothing.
	res, err := db.Purge(ctx, ref, ColumnIn{Column: "Type", Values: []string{"Other"}})
	if err != nil || res.RowsPurged != 0 {
		t.Fatalf("%+v, %v", res, err)
	}
	res, err = db.Purge(ctx, ref, RowPredicateFunc(func(b *Batch) ([]bool, error) {
		out := make([]bool, b.Len)
		tenant := b.Col("TenantId")
		for i := range out {
			out[i] = tenant.Str[i] == testWS && b.Col("User").Str[i] == "victim"
		}
		return out, nil
	}))
	if err != nil || res.RowsPurged != 3 {
		t.Fatalf("%+v, %v", res, err)
	}
	if n := countRows(t, db, ref); n != 97 {
		t.Fatalf("%d rows; want 97", n)
	}
}

var purgeEncSchema = Schema{{"User", TypeString}, {"Msg", TypeString}, {"Props", TypeDynamic},
	{"Id", TypeGUID}, {"Flag", TypeBool}, {"Cpu", TypeReal}, {"N", TypeLong}}

// purgeEncBatch holds rows whose columns take every chunk encoding: User
// dictionary, Msg tokens (split), Props tokens with nulls and JSON escapes,
// Id plain with nulls. Victim rows carry "zqxvictim" in User, Msg and Props.
func purgeEncBatch(lo, n int, victim func(int) bool) *Batch {
	b := &Batch{Schema: append(Schema{{"TimeGenerated", TypeDatetime}}, purgeEncSchema...), Len: n}
	for _, c := range b.Schema {
		b.Cols = append(b.Cols, &Vector{Type: c.Type})
	}
	for _, j := range []int{3, 4, 6} {
		b.Cols[j].Nulls = make([]bool, n)
	}
	for k := range n {
		i := lo + k
		user := fmt.Sprintf("user-%d", i%13)
		msg := fmt.Sprintf("GET /orders/%d for customer cust-%d status %d after %d ms", i*7919%100003, i%50, 200+i%3, i%997)
		props := fmt.Sprintf(`{"req":%d,"path":"/orders/%d","note":"retry\nafter %d ms"}`, i, i%211, i%89)
		if victim(i) {
			user = "zqxvictim"
			msg = fmt.Sprintf("GET /orders/%d for customer zqxvictim ssn 078-05-1120", i)
			props = `{"owner":"zqxvictim","note":"line\nzqxvictim2","ssn":"078-05-1120"}`
		}
		b.Cols[0].Int = append(b.Cols[0].Int, TicksFromTime(baseTime)+int64(i)*TicksPerSecond)
		b.Cols[1].Str = append(b.Cols[1].Str, user)
		b.Cols[2].Str = append(b.Cols[2].Str, msg)
		b.Cols[3].Str = append(b.Cols[3].Str, props)
		b.Cols[3].Nulls[k] = i%9 == 4 && !victim(i)
		b.Cols[4].Str = append(b.Cols[4].Str, fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i*31))
		b.Cols[4].Nulls[k] = i%7 == 2
		b.Cols[5].Bool = append(b.Cols[5].Bool, i%3 == 0)
		b.Cols[6].Real = append(b.Cols[6].Real, float64(i)/4)
		b.Cols[6].Nulls[k] = i%11 == 5
		b.Cols[7].Int = append(b.Cols[7].Int, int64(i*i))
	}
	return b
}

// TestPurgeEncodings purges rows from blocks of every kind — blocks without
// a victim (copied by re-sealing), blocks with some (filtered at the encoding
// level), blocks of victims only (dropped) — and checks that every other row
// reads back unchanged, term hints still work on the filtered split chunks,
// no purged value is left in any value or encoding, and each string chunk's
// bloom filter is exactly the one its remaining values give.
func TestPurgeEncodings(t *testing.T) {
	for _, double := range []bool{false, true} {
		t.Run(fmt.Sprintf("double=%v", double), func(t *testing.T) {
			env := newEnv(t)
			ctx := context.Background()
			const blockRows = 64
			db := env.open(t, func(o *Options) { o.BlockRows = blockRows })
			defer db.Close()
			ref := TableRef{WorkspaceID: testWS, Table: "PurgeEnc"}
			if err := db.EnsureTable(ctx, ref, purgeEncSchema, 0); err != nil {
				t.Fatal(err)
			}
			if double {
				fk, err := crypt.CreateFileKey(filepath.Join(t.TempDir(), "cmk.key"))
				if err != nil {
					t.Fatal(err)
				}
				if err := db.SetWorkspaceEncryption(ctx, testWS, WorkspaceEncryption{Provider: fk, DoubleEncryption: true}); err != nil {
					t.Fatal(err)
				}
			}
			// Block k (rows 64k..64k+63): k%4 == 1 some victims, k%4 == 3 all victims.
			victim := func(i int) bool {
				switch (i / blockRows) % 4 {
				case 1:
					return i%5 == 0
				case 3:
					return true
				}
				return false
			}
			const n = 16 * blockRows
			commit(t, db, ref, purgeEncBatch(0, n, victim))
			if err := db.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			before, _ := selectRows(t, db, ref, AllTime, SelectHints{})
			var want []string
			victims := 0
			for _, r := range before {
				if strings.Contains(r, "zqxvictim") {
					victims++
				} else {
					want = append(want, r)
				}
			}
			if victims == 0 || len(before) != n {
				t.Fatalf("%d rows, %d victims", len(before), victims)
			}
			// Every encoding is present before the purge, or the test proves less than it says.
			flags := map[string]byte{}
			eachChunk(t, db, func(p *part, bi, ci int, raw []byte) { flags[p.meta.cols[ci].Name] |= raw[0] })
			for col, f := range map[string]byte{"User": colFlagDict, "Msg": colFlagTokens, "Props": colFlagTokens | colFlagNulls, "Id": colFlagNulls, "Cpu": colFlagNulls} {
				if flags[col]&f != f {
					t.Fatalf("column %s encoded with flags %#x, want %#x among them", col, flags[col], f)
				}
			}

			res, err := db.Purge(ctx, ref, ColumnIn{Column: "User", Values: []string{"zqxvictim"}})
			if err != nil {
				t.Fatal(err)
			}
			if res.RowsPurged != int64(victims) || res.PartsRewritten != 1 {
				t.Fatalf("purge result %+v; want %d rows from 1 part", res, victims)
			}
			after, _ := selectRows(t, db, ref, AllTime, SelectHints{})
			if !slices.Equal(after, want) {
				t.Fatalf("rows after the purge differ: %d rows, want %d", len(after), len(want))
			}
			// Term hints read the filtered split chunks' token tables.
			hinted, _ := selectRows(t, db, ref, AllTime, SelectHints{Terms: []TermHint{{Column: "Msg", Term: "cust"}}})
			if len(hinted) != len(want) {
				t.Fatalf("term hint: %d rows, want %d", len(hinted), len(want))
			}
			if rows, _ := selectRows(t, db, ref, AllTime, SelectHints{Terms: []TermHint{{Column: "Msg", Term: "zqxvictim"}}}); len(rows) != 0 {
				t.Fatalf("term hint found purged rows: %v", rows)
			}
			for _, needle := range []string{"zqxvictim", "078-05-1120"} {
				if hits := findDecrypted(t, db, needle); len(hits) > 0 {
					t.Fatalf("purged value %q still on disk: %v", needle, hits)
				}
			}
			// 16 blocks, 4 of victims only: 12 remain; each string chunk's
			// bloom is exactly what its values give.
			blocks := 0
			eachChunk(t, db, func(p *part, bi, ci int, raw []byte) {
				if ci == 0 {
					blocks++
				}
				c := p.meta.cols[ci]
				if classOf(c.Type) != classStr {
					return
				}
				d := decoder{b: raw}
				v, err := decodeColumn(&d, c.Type, p.meta.blocks[bi].rows)
				if err != nil {
					t.Fatal(err)
				}
				bb, err := p.loadBloom(ci)
				if err != nil || bb == nil {
					t.Fatalf("block %d column %s: bloom section: %v", bi, c.Name, err)
				}
				got := bb.copyOf(bi)
				bb.free()
				if exp := buildBloom(v.Str, v.Nulls, c.Type == TypeDynamic); !slices.Equal(got, exp) {
					t.Fatalf("block %d column %s: bloom differs from its values' (%d vs %d words)", bi, c.Name, len(got), len(exp))
				}
			})
			if blocks != 12 {
				t.Fatalf("%d blocks after the purge, want 12", blocks)
			}
			if st := db.Stats(); st.CorruptionErrors != 0 {
				t.Fatalf("%d corruption errors", st.CorruptionErrors)
			}
		})
	}
}

// eachChunk calls fn with the decompressed encoding of every chunk of every
// part of the test workspace.
func eachChunk(t *testing.T, db *DB, fn func(p *part, bi, ci int, raw []byte)) {
	t.Helper()
	db.mu.RLock()
	ws := db.workspaces[testWS]
	db.mu.RUnlock()
	paths, err := filepath.Glob(filepath.Join(db.opts.Dir, "workspaces", testWS, "tables", "*", "*.part"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range paths {
		p, err := openPart(context.Background(), path, ws.id, filepath.Base(filepath.Dir(path)), ws.keys.Load())
		if err != nil {
			t.Fatal(err)
		}
		for bi := range p.meta.blocks {
			for ci := range p.meta.cols {
				comp, _, err := p.openChunk(bi, ci, nil)
				if err != nil {
					t.Fatal(err)
				}
				raw, err := p.decompressChunk(bi, ci, db.dec, comp, false)
				if err != nil {
					t.Fatal(err)
				}
				fn(p, bi, ci, raw)
			}
		}
		p.release()
	}
}

var purgeRows = flag.Int("purge.rows", 500_000, "rows in the table BenchmarkPurgeScale purges 1 % of")

// BenchmarkPurgeScale purges 1 % of the rows (spread over every block) of a
// flushed table of -purge.rows rows of bench_test.go's log rows, flushed every
// million rows, and reports the purge's wall time, the CPU seconds the process
// spent in it (the machine may be shared) and rows/s. bench/purge/run.sh runs
// it with 10 M rows.
func BenchmarkPurgeScale(b *testing.B) {
	n := *purgeRows
	var cpu, wall time.Duration
	b.StopTimer()
	for range b.N {
		_, db, ref := benchDB(b)
		for i := 0; i < n; i += 10000 {
			bt, _ := benchBatch(i, min(10000, n-i))
			commit(b, db, ref, bt)
			if (i+10000)%1_000_000 == 0 {
				if err := db.Flush(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := db.Flush(context.Background()); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		c0, t0 := processCPU(b), time.Now()
		b.StartTimer()
		res, err := db.Purge(context.Background(), ref, onePercent{})
		b.StopTimer()
		cpu += processCPU(b) - c0
		wall += time.Since(t0)
		if err != nil || res.RowsPurged != int64(n/100) {
			b.Fatalf("%+v, %v; want %d rows purged", res, err, n/100)
		}
		db.Close()
	}
	b.StartTimer()
	b.ReportMetric(float64(n)*float64(b.N)/wall.Seconds(), "rows/s")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
	b.ReportMetric(wall.Seconds()/float64(b.N), "wall-s/op")
}

// FuzzFilterChunk checks filterChunk against decode-gather: for string
// columns in every encoding encodeChunk picks (plain, dictionary, tokens,
// with and without nulls), the filtered encoding decodes to exactly the kept
// rows, its bloom filter is exactly the kept values' filter, and a split
// offset ends a parseable token table.
func FuzzFilterChunk(f *testing.F) {
	f.Add([]byte("GET /orders/1 for alpha\x00GET /orders/2 for beta\x00GET /orders/3 for alpha ok\x00x"), uint8(0), uint64(0x1111))
	f.Add([]byte("user-1\x00user-2\x00user-1\x00victim"), uint8(1), uint64(0x8))
	f.Add([]byte(`{"a":"b\nc"}`+"\x00"+`{"a":1}`+"\x00"+`{"zz":"line\nvictim2"}`), uint8(5), uint64(0xf0f0))
	f.Add([]byte("0f8fad5b-d9cb-469f-a165-70867728950e\x00\x007c9e6679-7425-40de-944b-e07fc1f90ae7"), uint8(6), uint64(3))
	f.Fuzz(func(t *testing.T, data []byte, kind uint8, mask uint64) {
		base := strings.Split(string(data), "\x00")
		if len(base) > 2000 {
			base = base[:2000]
		}
		vals := slices.Clone(base)
		for len(vals) < 40 { // enough rows for the dictionary and token encodings
			vals = append(vals, base...)
		}
		n := len(vals)
		typ := []ColumnType{TypeString, TypeDynamic, TypeGUID}[int(kind)%3]
		v := &Vector{Type: typ, Str: vals}
		if typ != TypeString && kind&4 != 0 {
			v.Nulls = make([]bool, n)
			for i := range v.Nulls {
				if i%7 == 3 {
					v.Nulls[i], v.Str[i] = true, ""
				}
			}
		}
		raw, bl, _ := encodeChunk(nil, v, 0, n, true, true)
		var keep []int32
		for i := range n {
			if mask&(1<<(i%64)) == 0 {
				keep = append(keep, int32(i))
			}
		}
		if len(keep) == 0 {
			keep = []int32{int32(n - 1)}
		}
		out, _, gotBl, split, err := filterChunk(nil, raw, typ, n, keep, bl)
		if err != nil {
			t.Fatalf("filterChunk: %v", err)
		}
		d := decoder{b: out}
		got, err := decodeColumn(&d, typ, len(keep))
		if err != nil || len(d.b) != 0 {
			t.Fatalf("decode filtered: %v, %d trailing bytes", err, len(d.b))
		}
		want := gatherVec(v, keep)
		for i := range keep {
			if got.Str[i] != want.Str[i] || got.IsNull(i) != want.IsNull(i) {
				t.Fatalf("row %d: got %q (null %v), want %q (null %v)", i, got.Str[i], got.IsNull(i), want.Str[i], want.IsNull(i))
			}
		}
		if exp := buildBloom(want.Str, want.Nulls, typ == TypeDynamic); !slices.Equal(gotBl, exp) {
			t.Fatalf("bloom differs from the kept values' (%d vs %d words)", len(gotBl), len(exp))
		}
		if split > 0 {
			if _, err := parseTokenTable(out[:split]); err != nil {
				t.Fatalf("split at %d: %v", split, err)
			}
		}
	})
}
