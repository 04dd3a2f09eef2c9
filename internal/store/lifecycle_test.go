package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// scanFiles fails if any file under dir contains one of the needles.
func scanFiles(t *testing.T, dir string, needles ...string) int {
	t.Helper()
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, n := range needles {
			if bytes.Contains(b, []byte(n)) || bytes.Contains(bytes.ToLower(b), []byte(strings.ToLower(n))) {
				t.Errorf("%s contains %q in plaintext", path, n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestEncryptionAtRest(t *testing.T) {
	env := newEnv(t)
	db := env.open(t, nil)
	ctx := context.Background()
	ref := TableRef{WorkspaceID: testWS, Table: "Secret_CL"}
	if err := db.EnsureTable(ctx, ref, Schema{{"Msg", TypeString}, {"Props", TypeDynamic}, {"Host", TypeString}}, 0); err != nil {
		t.Fatal(err)
	}
	needles := []string{"ZQXJMARKER", "hunter2-password", "db-server-0042.internal", "/subscriptions/secret-sub"}
	mk := func(n int) *Batch {
		b := &Batch{Schema: Schema{{"Msg", TypeString}, {"Props", TypeDynamic}, {"Host", TypeString}, {"_ResourceId", TypeString}}, Len: n,
			Cols: []*Vector{{Type: TypeString}, {Type: TypeDynamic}, {Type: TypeString}, {Type: TypeString}}}
		for i := range n {
			b.Cols[0].Str = append(b.Cols[0].Str, fmt.Sprintf("login ZQXJMARKER attempt %d", i))
			b.Cols[1].Str = append(b.Cols[1].Str, `{"password":"hunter2-password"}`)
			b.Cols[2].Str = append(b.Cols[2].Str, "db-server-0042.internal") // low cardinality: dictionary-encoded
			b.Cols[3].Str = append(b.Cols[3].Str, "/subscriptions/secret-sub")
		}
		return b
	}
	commit(t, db, ref, mk(500))
	scanFiles(t, env.dir, needles...) // WAL only
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	commit(t, db, ref, mk(10))
	scanFiles(t, env.dir, needles...) // parts and a new WAL segment
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if n := scanFiles(t, env.dir, needles...); n < 4 {
		t.Fatalf("scanned only %d files", n)
	}
	// Column names and the table meta are sealed too.
	scanFiles(t, filepath.Join(env.dir, "data"), "Props")
}

func flushedPartFiles(t *testing.T, dir string) []string {
	t.Helper()
	parts, err := filepath.Glob(filepath.Join(dir, "data", "workspaces", "*", "tables", "*", "*.part"))
	if err != nil {
		t.Fatal(err)
	}
	return parts
}

func TestTamperedPartFailsQuery(t *testing.T) {
	env := newEnv(t)
	db := env.open(t, nil)
	ctx := context.Background()
	ref := TableRef{WorkspaceID: testWS, Table: "T"}
	if err := db.EnsureTable(ctx, ref, Schema{{"Msg", TypeString}}, 0); err != nil {
		t.Fatal(err)
	}
	commit(t, db, ref, crashBatchFor(0, 3000))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	parts := flushedPartFiles(t, env.dir)
	if len(parts) == 0 {
		t.Fatal("no part files")
	}
	path := parts[0]
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/3] ^= 0x40 // inside a column block
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	db = env.open(t, nil)
	defer db.Close()
	q, err := db.Querier(ctx, ref, AllTime)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	it := q.Select(ctx, SelectHints{})
	rows := 0
	for it.Next() {
		rows += it.Batch().Len
	}
	it.Close()
	var ce *CorruptionError
	if !errors.As(it.Err(), &ce) || !errors.Is(it.Err(), ErrCorrupt) {
		t.Fatalf("got %v; want a *CorruptionError", it.Err())
	}
	id := strings.TrimSuffix(filepath.Base(path), ".part")
	if ce.Part != id || !strings.Contains(ce.Error(), id) {
		t.Fatalf("error %q does not name part %s", ce.Error(), id)
	}
	if db.Stats().CorruptionErrors == 0 {
		t.Fatal("corruption not counted")
	}

	// The query that met the damage quarantined the part (quarantine.go):
	// it is out of the table directory, and the table answers without it.
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("tampered part still in the table directory: %v", err)
	}
	if got := selectAll(t, db, ref); got >= 3000 {
		t.Fatalf("after quarantine: %d rows; want fewer than 3000 (the part is quarantined)", got)
	}

	// A damaged footer makes the part unopenable: Open quarantines it (it
	// never serves it) and opens the rest.
	db.Close()
	b[len(b)-30] ^= 0x01
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	o := Options{Dir: filepath.Join(env.dir, "data"), Keys: env.keys, DisableBackground: true}
	db2, err := Open(o)
	if err != nil {
		t.Fatalf("open with a damaged footer: %v; want the part quarantined", err)
	}
	defer db2.Close()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("part with a damaged footer still in the table directory: %v", err)
	}
	if qs := db2.QuarantinedParts(); len(qs) != 1 || qs[0].PartID != id || qs[0].DetectedBy != "open" {
		t.Fatalf("quarantined parts: %+v; want %s detected by open", qs, id)
	}
}

func crashBatchFor(base int64, n int) *Batch {
	b := crashBatch(base, n)
	b.Schema = b.Schema[:3]
	b.Schema[1] = Column{"Msg", TypeString}
	b.Cols = []*Vector{b.Cols[0], b.Cols[2]}
	b.Schema = Schema{{"TimeGenerated", TypeDatetime}, {"Msg", TypeString}}
	return b
}

func TestPruning(t *testing.T) {
	env := newEnv(t)
	db := env.open(t, func(o *Options) { o.BlockRows = 1024 })
	defer db.Close()
	ctx := context.Background()
	ref := TableRef{WorkspaceID: testWS, Table: "Prune_CL"}
	if err := db.EnsureTable(ctx, ref, Schema{{"Msg", TypeString}, {"N", TypeLong}}, 0); err != nil {
		t.Fatal(err)
	}
	const n = 8 * 1024
	b := &Batch{Schema: Schema{{"TimeGenerated", TypeDatetime}, {"Msg", TypeString}, {"N", TypeLong}}, Len: n,
		Cols: []*Vector{{Type: TypeDatetime}, {Type: TypeString}, {Type: TypeLong}}}
	t0 := TicksFromTime(baseTime)
	for i := range n {
		b.Cols[0].Int = append(b.Cols[0].Int, t0+int64(i)*TicksPerSecond)
		b.Cols[1].Str = append(b.Cols[1].Str, fmt.Sprintf("request served block%d user%d", i/1024, i))
		b.Cols[2].Int = append(b.Cols[2].Int, int64(i))
	}
	commit(t, db, ref, b)
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	rows, st := selectRows(t, db, ref, AllTime, SelectHints{Columns: []string{"N"}, Terms: []TermHint{{Column: "Msg", Term: "BLOCK5"}}})
	if st.BlocksTotal != 8 || st.BlocksSkippedTerms < 6 || st.BlocksRead > 2 || len(rows) < 1024 {
		t.Fatalf("term pruning: %+v, %d rows", st, len(rows))
	}
	_, st = selectRows(t, db, ref, AllTime, SelectHints{Terms: []TermHint{{Term: "user77"}}})
	if st.BlocksSkippedTerms < 6 || st.BlocksRead > 2 {
		t.Fatalf("column-less term pruning: %+v", st)
	}
	_, st = selectRows(t, db, ref, AllTime, SelectHints{Terms: []TermHint{{Term: "Prune_CL"}}})
	if st.BlocksSkippedTerms != 0 {
		t.Fatalf("a term matching Type must not skip: %+v", st)
	}
	_, st = selectRows(t, db, ref, AllTime, SelectHints{Terms: []TermHint{{Column: "Type", Term: "other"}}})
	if st.BlocksRead != 0 {
		t.Fatalf("a term on Type that cannot match must read nothing: %+v", st)
	}
	from := t0 + 2048*TicksPerSecond + 10*TicksPerSecond
	rows, st = selectRows(t, db, ref, TimeRange{From: from, To: from + 100*TicksPerSecond}, SelectHints{Columns: []string{"N"}})
	if len(rows) != 100 || st.BlocksSkippedTime != 7 || st.BlocksRead != 1 {
		t.Fatalf("time pruning: %d rows, %+v", len(rows), st)
	}
	if rows[0] != "N=2058 " || rows[99] != "N=2157 " {
		t.Fatalf("time range rows %q .. %q", rows[0], rows[99])
	}
}

func TestMergeWithConcurrentQueries(t *testing.T) {
	env := newEnv(t)
	db := env.open(t, func(o *Options) { o.MaxPartsPerDay = 2 })
	defer db.Close()
	ctx := context.Background()
	ref := TableRef{WorkspaceID: testWS, Table: "M"}
	if err := db.EnsureTable(ctx, ref, Schema{{"Msg", TypeString}}, 0); err != nil {
		t.Fatal(err)
	}
	// committed is raised after a commit returns, started before it begins:
	// a query may see a commit's rows between the two.
	var committed, started atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { // writer
		defer wg.Done()
		for i := int64(0); i < 40; i++ {
			started.Add(100)
			commit(t, db, ref, crashBatchFor(i*100, 100))
			committed.Add(100)
		}
		close(stop)
	}()
	go func() { // flusher + merger
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := db.Flush(ctx); err != nil {
				t.Error(err)
				return
			}
			if err := db.Merge(ctx); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	go func() { // reader: counts never go backwards and never exceed what was committed
		defer wg.Done()
		last := 0
		for {
			select {
			case <-stop:
				return
			default:
			}
			before := committed.Load()
			seen := countRows(t, db, ref)
			after := started.Load()
			if int64(seen) < before || int64(seen) > after || seen < last {
				t.Errorf("query saw %d rows; committed between %d and %d, previously %d", seen, before, after, last)
				return
			}
			last = seen
		}
	}()
	wg.Wait()
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if err := db.Merge(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := countRows(t, db, ref); got != 4000 {
		t.Fatalf("after merges: %d rows; want 4000", got)
	}
	tb, _ := db.lookupTable(ctx, ref)
	tb.mu.RLock()
	for day, ps := range tb.parts {
		if len(ps) > 2 {
			t.Errorf("day %d has %d parts after merging", day, len(ps))
		}
	}
	tb.mu.RUnlock()
	if db.Stats().PartsMerged == 0 {
		t.Fatal("no merge happened")
	}
	db.Close()
	// Superseded part files are gone, and a reopen sees every row once.
	db = env.open(t, nil)
	defer db.Close()
	if got := countRows(t, db, ref); got != 4000 {
		t.Fatalf("after reopen: %d rows; want 4000", got)
	}
}

func countRows(t testing.TB, db *DB, ref TableRef) int {
	t.Helper()
	ctx := context.Background()
	q, err := db.Querier(ctx, ref, AllTime)
	if err != nil {
		t.Error(err)
		return -1
	}
	defer q.Close()
	it := q.Select(ctx, SelectHints{Columns: []string{"Msg"}})
	defer it.Close()
	n := 0
	for it.Next() {
		n += it.Batch().Len
	}
	if err := it.Err(); err != nil {
		t.Error(err)
	}
	return n
}

func TestRetention(t *testing.T) {
	env := newEnv(t)
	env.now = baseTime.Add(10 * 24 * time.Hour)
	db := env.open(t, nil)
	ctx := context.Background()
	ref := TableRef{WorkspaceID: testWS, Table: "R"}
	if err := db.EnsureTable(ctx, ref, Schema{{"Msg", TypeString}}, 3); err != nil {
		t.Fatal(err)
	}
	mk := func(age time.Duration, n int) *Batch {
		b := crashBatchFor(0, n)
		for i := range b.Cols[0].Int {
			b.Cols[0].Int[i] = TicksFromTime(env.now.Add(-age))
		}
		return b
	}
	commit(t, db, ref, mk(6*24*time.Hour, 10)) // expired
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	commit(t, db, ref, mk(5*24*time.Hour, 20)) // expired, still in the memtable and WAL
	commit(t, db, ref, mk(time.Hour, 5))       // kept
	if got := countRows(t, db, ref); got != 35 {
		t.Fatalf("before retention: %d rows", got)
	}
	if err := db.EnforceRetention(ctx); err != nil {
		t.Fatal(err)
	}
	if got := countRows(t, db, ref); got != 5 {
		t.Fatalf("after retention: %d rows; want 5", got)
	}
	if db.Stats().PartsExpired != 1 || len(flushedPartFiles(t, env.dir)) != 0 {
		t.Fatalf("expired part not deleted: %+v", db.Stats())
	}
	// Crash (no flush) and reopen: the expired rows in the WAL stay gone.
	db.closeWorkspaces()
	db.closeResources()
	db = env.open(t, nil)
	defer db.Close()
	if got := countRows(t, db, ref); got != 5 {
		t.Fatalf("after replay: %d rows; want 5", got)
	}
}

func TestDropTableAndWorkspace(t *testing.T) {
	env := newEnv(t)
	db := env.open(t, nil)
	ctx := context.Background()
	ref := TableRef{WorkspaceID: testWS, Table: "D"}
	if err := db.EnsureTable(ctx, ref, Schema{{"Msg", TypeString}}, 0); err != nil {
		t.Fatal(err)
	}
	commit(t, db, ref, crashBatchFor(0, 10))
	q, err := db.Querier(ctx, ref, AllTime) // an open snapshot survives the drop
	if err != nil {
		t.Fatal(err)
	}
	if err := db.DropTable(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Appender(ctx, ref); !errors.Is(err, ErrTableNotFound) {
		t.Fatalf("appender after drop: %v", err)
	}
	it := q.Select(ctx, SelectHints{})
	n := 0
	for it.Next() {
		n += it.Batch().Len
	}
	it.Close()
	q.Close()
	if n != 10 {
		t.Fatalf("snapshot after drop saw %d rows", n)
	}
	// Recreate: the old rows, still in the WAL, must not come back after a crash.
	if err := db.EnsureTable(ctx, ref, Schema{{"Msg", TypeString}}, 0); err != nil {
		t.Fatal(err)
	}
	commit(t, db, ref, crashBatchFor(100, 3))
	db.closeWorkspaces()
	db.closeResources()
	db = env.open(t, nil)
	if got := countRows(t, db, ref); got != 3 {
		t.Fatalf("recreated table has %d rows; want 3", got)
	}
	if err := db.DropWorkspace(ctx, testWS); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(env.dir, "data", "workspaces", testWS)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("workspace directory still there: %v", err)
	}
	if _, err := db.Querier(ctx, ref, AllTime); !errors.Is(err, ErrTableNotFound) {
		t.Fatalf("query after workspace drop: %v", err)
	}
	db.Close()
	db = env.open(t, nil)
	defer db.Close()
	if _, err := db.Querier(ctx, ref, AllTime); !errors.Is(err, ErrTableNotFound) {
		t.Fatalf("query after reopen: %v", err)
	}
}

func TestGroupCommit(t *testing.T) {
	env := newEnv(t)
	db := env.open(t, nil)
	defer db.Close()
	ctx := context.Background()
	ref := TableRef{WorkspaceID: testWS, Table: "G"}
	if err := db.EnsureTable(ctx, ref, Schema{{"Msg", TypeString}}, 0); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				commit(t, db, ref, crashBatchFor(int64(g*1000+i*10), 10))
			}
		}()
	}
	wg.Wait()
	st := db.Stats()
	if st.Commits != 320 || countRows(t, db, ref) != 3200 {
		t.Fatalf("commits %d rows %d", st.Commits, countRows(t, db, ref))
	}
	if st.WALSyncs >= st.Commits {
		t.Logf("no fsync was shared (%d fsyncs for %d commits); possible on a fast disk", st.WALSyncs, st.Commits)
	}
	t.Logf("%d fsyncs for %d commits", st.WALSyncs, st.Commits)
}

func TestOpenLocksDirectory(t *testing.T) {
	env := newEnv(t)
	db := env.open(t, nil)
	defer db.Close()
	_, err := Open(Options{Dir: filepath.Join(env.dir, "data"), Keys: env.keys, DisableBackground: true})
	if err == nil {
		t.Fatal("a second Open of the same directory succeeded")
	}
}

func TestBackgroundFlush(t *testing.T) {
	env := newEnv(t)
	db := env.open(t, func(o *Options) {
		o.DisableBackground = false
		o.MemtableBytes = 1 << 10
		o.MaintenanceInterval = 10 * time.Millisecond
	})
	defer db.Close()
	ctx := context.Background()
	ref := TableRef{WorkspaceID: testWS, Table: "BG"}
	if err := db.EnsureTable(ctx, ref, Schema{{"Msg", TypeString}}, 0); err != nil {
		t.Fatal(err)
	}
	commit(t, db, ref, crashBatchFor(0, 100))
	deadline := time.Now().Add(5 * time.Second)
	for db.Stats().PartsFlushed == 0 {
		if time.Now().After(deadline) {
			t.Fatal("background flush did not happen")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := countRows(t, db, ref); got != 100 {
		t.Fatalf("%d rows; want 100", got)
	}
}

func TestWrongKeyFailsClosed(t *testing.T) {
	env := newEnv(t)
	db := env.open(t, nil)
	ctx := context.Background()
	ref := TableRef{WorkspaceID: testWS, Table: "K"}
	if err := db.EnsureTable(ctx, ref, Schema{{"Msg", TypeString}}, 0); err != nil {
		t.Fatal(err)
	}
	commit(t, db, ref, crashBatchFor(0, 10))
	db.Close()
	other := testKeys(t, t.TempDir())
	if _, err := Open(Options{Dir: filepath.Join(env.dir, "data"), Keys: other, DisableBackground: true}); err == nil {
		t.Fatal("store opened under another platform key")
	}
}

func TestSelectLimit(t *testing.T) {
	env := newEnv(t)
	db := env.open(t, func(o *Options) { o.BlockRows = 1024; o.QueryWorkers = 1 })
	defer db.Close()
	ctx := context.Background()
	ref := TableRef{WorkspaceID: testWS, Table: "L"}
	if err := db.EnsureTable(ctx, ref, Schema{{"Msg", TypeString}}, 0); err != nil {
		t.Fatal(err)
	}
	commit(t, db, ref, crashBatchFor(0, 10*1024))
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	rows, st := selectRows(t, db, ref, AllTime, SelectHints{Columns: []string{"Msg"}, Limit: 10})
	if len(rows) < 10 || st.BlocksRead >= st.BlocksTotal {
		t.Fatalf("limit 10: %d rows, %+v", len(rows), st)
	}
}
