package store

import (
	"context"
	"errors"
	"math"
	"os"
	"strings"
	"syscall"
	"testing"
)

// TestPartFileReopenFails: when the finished part file cannot be opened for
// reading (EMFILE, say), finish must leave nothing in place — no part file
// and no temporary file — because a part on disk that the table does not
// know would be written again by the retried flush or merge, and the next
// start would load both. The store then still opens with every row once.
func TestPartFileReopenFails(t *testing.T) {
	env := newEnv(t)
	db := env.open(t, nil)
	defer func() { db.Close() }()
	ctx := context.Background()
	if err := db.EnsureTable(ctx, crashRef, crashSchema, 0); err != nil {
		t.Fatal(err)
	}
	commit(t, db, crashRef, crashBatch(0, 300))
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	tbl, err := db.lookupTable(ctx, crashRef)
	if err != nil {
		t.Fatal(err)
	}
	ws := tbl.ws
	before := namesIn(t, tbl.dir)

	day := int64(20000)
	id, err := newPartID(day)
	if err != nil {
		t.Fatal(err)
	}
	key, wrapped, err := newDataKeys(ctx, ws.keys.Load(), "part-"+id, partKeyAAD(ws.id, tbl.name, id))
	if err != nil {
		t.Fatal(err)
	}
	pf, err := createPartFile("write part", tbl.dir, id, key, wrapped)
	if err != nil {
		t.Fatal(err)
	}
	pf.openRead = func(string) (*os.File, error) { return nil, syscall.EMFILE }
	meta := &partMeta{incarnation: tbl.meta.incarnationBytes(), day: day, cols: tbl.storage, minT: math.MaxInt64, maxT: math.MinInt64}
	if _, err := pf.finish(meta, db.enc, ws.id, tbl.name); !errors.Is(err, syscall.EMFILE) {
		t.Fatalf("finish with a failing reopen: %v; want an error wrapping EMFILE", err)
	}
	after := namesIn(t, tbl.dir)
	for _, n := range after {
		if strings.Contains(n, id) {
			t.Fatalf("file %s of the given-up part is left in the table directory (%v)", n, after)
		}
	}
	if len(after) != len(before) {
		t.Fatalf("table directory %v; want %v as before the failed write", after, before)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = env.open(t, nil)
	got := idsIn(t, db)
	for i := range int64(300) {
		if got[i] != 1 {
			t.Fatalf("row %d stored %d times after a restart; want once", i, got[i])
		}
	}
}
