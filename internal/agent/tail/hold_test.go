package tail

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestCommitHolds: a record the caller still keeps in memory holds its
// file's checkpoint, so a restart reads it (and what follows) again; once
// released, the checkpoint moves on and nothing is read twice.
func TestCommitHolds(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.log")
	appendFile(t, p, "a0\n", "a1\n", "a2\n")
	tl, _ := openT(t, dir, nil)
	recs, err := tl.Poll()
	if err != nil || len(recs) != 3 {
		t.Fatalf("poll: %v %v", recs, err)
	}
	if recs[0].Start.Offset != 0 || recs[1].Start.Offset != 3 || recs[2].Start.Offset != 6 || !recs[0].Start.SameFile(recs[2].Start) {
		t.Fatalf("starts: %+v", recs)
	}
	// a1 and a2 are kept in memory (held), a0 was stored.
	if err := tl.Commit(recs[1].Start, recs[2].Start); err != nil {
		t.Fatal(err)
	}
	appendFile(t, p, "a3\n")
	expect(t, poll(t, tl), "a3")
	if err := tl.Commit(recs[1].Start); err != nil { // still held
		t.Fatal(err)
	}
	tl.Close() // a crash: a1.. were never stored

	tl2, _ := openT(t, dir, nil)
	expect(t, poll(t, tl2), "a1", "a2", "a3")
	if err := tl2.Commit(); err != nil { // all stored
		t.Fatal(err)
	}
	tl2.Close()
	tl3, _ := openT(t, dir, nil)
	expect(t, poll(t, tl3))
}

// TestHeldFileOutlivesRotation: a file rotated away (and deleted) while
// its lines are held is neither closed nor forgotten until the hold ends.
func TestHeldFileOutlivesRotation(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.log")
	appendFile(t, p, "old0\n", "old1\n")
	tl, c := openT(t, dir, func(o *Options) { o.Grace = time.Second })
	recs, _ := tl.Poll()
	if len(recs) != 2 {
		t.Fatalf("poll: %v", recs)
	}
	if err := tl.Commit(recs[1].Start); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p, filepath.Join(dir, "app.log.1")); err != nil {
		t.Fatal(err)
	}
	appendFile(t, p, "new0\n")
	expect(t, poll(t, tl), "new0")
	c.t = c.t.Add(5 * time.Second)
	expect(t, poll(t, tl))
	if err := tl.Commit(recs[1].Start); err != nil {
		t.Fatal(err)
	}
	if got := tl.Closed(); len(got) != 0 {
		t.Fatalf("closed while held: %v", got)
	}
	tl.Close() // a crash: old1 was never stored; the rotated file is found again

	tl2, c2 := openT(t, dir, func(o *Options) { o.Grace = time.Second })
	expect(t, poll(t, tl2), "old1") // new0 was stored: its checkpoint is past it
	if err := tl2.Commit(); err != nil {
		t.Fatal(err)
	}
	c2.t = c2.t.Add(5 * time.Second)
	expect(t, poll(t, tl2))
	if err := tl2.Commit(); err != nil { // released: the rotated file is closed
		t.Fatal(err)
	}
	if len(tl2.files) != 1 {
		t.Fatalf("%d files followed after the hold ended; want the new app.log only", len(tl2.files))
	}
}

// TestRewind: a caller that cannot keep records from some point on has
// them read again by the next poll.
func TestRewind(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.log")
	appendFile(t, p, "r0\n", "r1\n", "r2\n")
	tl, _ := openT(t, dir, nil)
	recs, _ := tl.Poll()
	if len(recs) != 3 {
		t.Fatalf("poll: %v", recs)
	}
	if !tl.Rewind(recs[1].Start) {
		t.Fatal("Rewind refused")
	}
	if tl.Rewind(Pos{id: recs[1].Start.id, Offset: 100}) {
		t.Fatal("Rewind past the read position accepted")
	}
	appendFile(t, p, "r3\n")
	expect(t, poll(t, tl), "r1", "r2", "r3")
	if !(Pos{}).IsZero() || recs[0].Start.IsZero() {
		t.Fatal("IsZero")
	}
}
