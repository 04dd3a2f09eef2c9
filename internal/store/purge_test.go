package store

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
