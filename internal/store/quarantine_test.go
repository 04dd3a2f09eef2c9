package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// selectAll counts the rows of ref without a PartialReport; it fails the test
// on an error.
func selectAll(t *testing.T, db *DB, ref TableRef) int {
	t.Helper()
	n, err := quarCount(context.Background(), db, ref)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func quarCount(ctx context.Context, db *DB, ref TableRef) (int, error) {
	return selectCount(ctx, db, ref, AllTime, SelectHints{})
}

// selectCount runs one Select over tr and returns the rows it yields.
func selectCount(ctx context.Context, db *DB, ref TableRef, tr TimeRange, h SelectHints) (int, error) {
	q, err := db.Querier(ctx, ref, tr)
	if err != nil {
		return 0, err
	}
	defer q.Close()
	it := q.Select(ctx, h)
	defer it.Close()
	n := 0
	for it.Next() {
		n += it.Batch().Len
	}
	return n, it.Err()
}

// TestQuarantineCorruptPart: two parts, one with a flipped byte in a column
// chunk. A query with a PartialReport answers with the other part's rows and
// names the quarantined one; the file moves to the quarantine directory with
// a record; after a restart the part is not admitted again, the listing
// shows it, and queries over its time range keep being reported partial.
func TestQuarantineCorruptPart(t *testing.T) {
	env := newEnv(t)
	db := env.open(t, func(o *Options) { o.BlockRows = 512 })
	ctx := context.Background()
	ref := TableRef{WorkspaceID: testWS, Table: "Q_CL"}
	if err := db.EnsureTable(ctx, ref, Schema{{"Msg", TypeString}}, 0); err != nil {
		t.Fatal(err)
	}
	commit(t, db, ref, crashBatchFor(0, 3000))
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	before := map[string]bool{}
	for _, p := range flushedPartFiles(t, env.dir) {
		before[p] = true
	}
	commit(t, db, ref, crashBatchFor(3000, 2000))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	var bad string
	for _, p := range flushedPartFiles(t, env.dir) {
		if !before[p] {
			bad = p
		}
	}
	if len(before) == 0 || bad == "" {
		t.Fatalf("want parts from both flushes; have %d then %q", len(before), bad)
	}
	id := strings.TrimSuffix(filepath.Base(bad), ".part")
	b, err := os.ReadFile(bad)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/3] ^= 0x40
	if err := os.WriteFile(bad, b, 0o600); err != nil {
		t.Fatal(err)
	}

	db = env.open(t, func(o *Options) { o.BlockRows = 512; o.QueryWorkers = 2 })
	qctx, rep := WithPartialReport(ctx)
	n, err := quarCount(qctx, db, ref)
	if err != nil {
		t.Fatalf("query with a partial report: %v", err)
	}
	sk := rep.Skipped()
	if len(sk) != 1 || sk[0].PartID != id || sk[0].Table != "Q_CL" || sk[0].Rows <= 0 || sk[0].Reason == "" {
		t.Fatalf("skipped: %+v; want part %s", sk, id)
	}
	healthy := 5000 - sk[0].Rows
	if n < healthy || n >= 5000 {
		t.Fatalf("partial answer has %d rows; want the healthy parts' %d (and possibly undamaged blocks of the bad one)", n, healthy)
	}
	if strings.Contains(sk[0].Reason, env.dir) {
		t.Fatalf("reason carries a path: %q", sk[0].Reason)
	}
	if _, err := os.Stat(bad); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("corrupt part still in the table directory (%v)", err)
	}
	qfile := filepath.Join(env.dir, "data", "quarantine", testWS, "Q_CL", id+".part")
	if _, err := os.Stat(qfile); err != nil {
		t.Fatalf("quarantined file: %v", err)
	}
	if _, err := os.Stat(strings.TrimSuffix(qfile, ".part") + ".json"); err != nil {
		t.Fatalf("quarantine record: %v", err)
	}
	if s := db.Stats(); s.PartsQuarantined != 1 || s.CorruptionErrors == 0 {
		t.Fatalf("stats %+v; want 1 part quarantined and corruption counted", s)
	}
	// Without a report: no error now, exactly the healthy part.
	if got := selectAll(t, db, ref); got != healthy {
		t.Fatalf("after quarantine: %d rows; want %d", got, healthy)
	}
	var sb strings.Builder
	if err := db.WriteMetrics(&sb); err != nil || !strings.Contains(sb.String(), "custos_store_parts_quarantined_total 1\n") ||
		!strings.Contains(sb.String(), "custos_store_quarantined_parts 1\n") {
		t.Fatalf("metrics (%v):\n%s", err, sb.String())
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// Restart: not admitted again, still listed, still reported.
	db = env.open(t, nil)
	defer db.Close()
	if got := selectAll(t, db, ref); got != healthy {
		t.Fatalf("after restart: %d rows; want %d", got, healthy)
	}
	qs := db.QuarantinedParts()
	if len(qs) != 1 || qs[0].PartID != id || qs[0].DetectedBy != "query" || qs[0].WorkspaceID != testWS {
		t.Fatalf("quarantined after restart: %+v", qs)
	}
	qctx, rep = WithPartialReport(ctx)
	if n, err := quarCount(qctx, db, ref); err != nil || n != healthy {
		t.Fatalf("after restart: %d rows, %v", n, err)
	}
	if sk := rep.Skipped(); len(sk) != 1 || sk[0].PartID != id {
		t.Fatalf("after restart the query is not reported partial: %+v", sk)
	}
	// A time range that misses the part is complete.
	qctx, rep = WithPartialReport(ctx)
	q, err := db.Querier(qctx, ref, TimeRange{From: qs[0].MaxTime.UnixNano()/100 + TicksPerDay*3, To: qs[0].MaxTime.UnixNano()/100 + TicksPerDay*4})
	if err != nil {
		t.Fatal(err)
	}
	q.Close()
	if sk := rep.Skipped(); len(sk) != 0 {
		t.Fatalf("a range without the part is reported partial: %+v", sk)
	}

	// Dropping the workspace deletes its quarantine.
	if err := db.DropWorkspace(ctx, testWS); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(qfile); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("quarantined file survives the workspace drop: %v", err)
	}
	if qs := db.QuarantinedParts(); len(qs) != 0 {
		t.Fatalf("listing after drop: %+v", qs)
	}
}
