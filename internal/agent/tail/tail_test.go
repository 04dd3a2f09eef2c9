package tail

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func openT(t *testing.T, dir string, mod func(*Options)) (*Tailer, *clock) {
	t.Helper()
	c := &clock{time.Unix(1000, 0)}
	o := Options{Patterns: []string{filepath.Join(dir, "*.log")}, StatePath: filepath.Join(dir, "state", "tail.json"),
		ReadFromStart: true, Now: c.now}
	if mod != nil {
		mod(&o)
	}
	tl, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tl.Close() })
	return tl, c
}

func appendFile(t *testing.T, path string, lines ...string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, l := range lines {
		if _, err := f.WriteString(l); err != nil {
			t.Fatal(err)
		}
	}
}

func poll(t *testing.T, tl *Tailer) []string {
	t.Helper()
	recs, err := tl.Poll()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, r.Text)
	}
	return out
}

func expect(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

func TestLinesAndPartialLine(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.log")
	appendFile(t, p, "one\n", "two\r\n", "thr")
	tl, _ := openT(t, dir, nil)
	expect(t, poll(t, tl), "one", "two")
	expect(t, poll(t, tl))
	appendFile(t, p, "ee\n")
	expect(t, poll(t, tl), "three")
	appendFile(t, filepath.Join(dir, "other.txt"), "not matched\n")
	expect(t, poll(t, tl))
}

func TestFirstScanStartsAtEndUnlessAsked(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.log")
	appendFile(t, p, "old\n")
	tl, _ := openT(t, dir, func(o *Options) { o.ReadFromStart = false })
	expect(t, poll(t, tl))
	appendFile(t, p, "new\n")
	appendFile(t, filepath.Join(dir, "later.log"), "from a new file\n")
	expect(t, poll(t, tl), "new", "from a new file")
}

func TestRenameRotation(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.log")
	appendFile(t, p, "a1\n", "a2\n")
	tl, c := openT(t, dir, nil)
	expect(t, poll(t, tl), "a1", "a2")

	// The writer still holds the old file after the rename.
	old, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p, p+".1"); err != nil {
		t.Fatal(err)
	}
	old.WriteString("a3 written after rename\n")
	appendFile(t, p, "b1\n")
	got := poll(t, tl)
	expect(t, got, "a3 written after rename", "b1")
	old.WriteString("a4 late\n")
	old.Close()
	c.t = c.t.Add(time.Second)
	expect(t, poll(t, tl), "a4 late")
	c.t = c.t.Add(DefaultGrace)
	expect(t, poll(t, tl))
	if len(tl.files) != 1 {
		t.Fatalf("rotated file still tracked after grace: %d files", len(tl.files))
	}
}

func TestCopyTruncate(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.log")
	appendFile(t, p, "x1\n", "x2\n", "x3\n")
	tl, _ := openT(t, dir, nil)
	expect(t, poll(t, tl), "x1", "x2", "x3")
	b, _ := os.ReadFile(p)
	os.WriteFile(filepath.Join(dir, "app.log.1"), b, 0o600)
	if err := os.Truncate(p, 0); err != nil {
		t.Fatal(err)
	}
	appendFile(t, p, "y1\n")
	expect(t, poll(t, tl), "y1")
	appendFile(t, p, "y2\n")
	expect(t, poll(t, tl), "y2")

	// Lines appended after the last poll and before the truncation are read
	// from the copy that copytruncate made.
	if err := tl.Commit(); err != nil {
		t.Fatal(err)
	}
	appendFile(t, p, "y3 unseen before the rotation\n")
	b, _ = os.ReadFile(p)
	os.WriteFile(filepath.Join(dir, "app.log.2"), b, 0o600)
	os.Truncate(p, 0)
	appendFile(t, p, "z1\n")
	expect(t, poll(t, tl), "y3 unseen before the rotation", "z1")
}

func TestRestartResumesAtCommit(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.log")
	for i := range 10 {
		appendFile(t, p, fmt.Sprintf("l%d\n", i))
	}
	tl, _ := openT(t, dir, nil)
	if got := poll(t, tl); len(got) != 10 {
		t.Fatalf("got %d lines", len(got))
	}
	if err := tl.Commit(); err != nil {
		t.Fatal(err)
	}
	appendFile(t, p, "l10\n")
	expect(t, poll(t, tl), "l10") // read but never committed: a crash now
	tl.Close()

	appendFile(t, p, "l11\n")
	tl2, _ := openT(t, dir, func(o *Options) { o.ReadFromStart = false })
	expect(t, poll(t, tl2), "l10", "l11") // resumes at the commit, not at the end
	tl2.Commit()
	tl2.Close()

	// Rotated by rename while the agent was down.
	appendFile(t, p, "l12\n")
	os.Rename(p, p+".1")
	appendFile(t, p, "n0\n")
	tl3, _ := openT(t, dir, func(o *Options) { o.ReadFromStart = false })
	expect(t, poll(t, tl3), "l12", "n0")
	tl3.Commit()
	tl3.Close()

	// Copy-truncated while the agent was down: the file is shorter than the checkpoint.
	os.Truncate(p, 0)
	appendFile(t, p, "t0\n")
	tl4, _ := openT(t, dir, nil)
	expect(t, poll(t, tl4), "t0")
}

func TestMultiline(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.log")
	start := regexp.MustCompile(`^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}`)
	tl, c := openT(t, dir, func(o *Options) { o.RecordStart = start })
	appendFile(t, p, "2025-01-01 10:00:00 first\n", "  at frame 1\n", "  at frame 2\n", "2025-01-01 10:00:01 second\n")
	expect(t, poll(t, tl), "2025-01-01 10:00:00 first\n  at frame 1\n  at frame 2")
	tl.Commit()
	// The pending record is not committed: a restart re-reads it.
	tl2, _ := openT(t, dir, func(o *Options) { o.RecordStart = start })
	expect(t, poll(t, tl2))
	c.t = c.t.Add(DefaultFlushAfter)
	expect(t, poll(t, tl), "2025-01-01 10:00:01 second")
	tl.Commit()
	tl2.Close()
	tl3, c3 := openT(t, dir, func(o *Options) { o.RecordStart = start })
	c3.t = c3.t.Add(time.Hour)
	expect(t, poll(t, tl3))
}

func TestLongLinesAreCut(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.log")
	tl, _ := openT(t, dir, func(o *Options) { o.MaxRecordBytes = 10 })
	appendFile(t, p, strings.Repeat("a", 25))
	expect(t, poll(t, tl), "aaaaaaaaaa")
	appendFile(t, p, "bbb\nshort\n")
	expect(t, poll(t, tl), "short")
}

func TestClosedReportsGoneFilesOnly(t *testing.T) {
	dir := t.TempDir()
	p, q := filepath.Join(dir, "app.log"), filepath.Join(dir, "gone.log")
	appendFile(t, p, "a1\n")
	appendFile(t, q, "g1\n")
	tl, c := openT(t, dir, nil)
	expect(t, poll(t, tl), "a1", "g1")
	if got := tl.Closed(); got != nil {
		t.Fatalf("Closed before anything closed = %q", got)
	}
	// app.log rotates (its successor takes the name); gone.log is deleted.
	if err := os.Rename(p, p+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, p, "b1\n")
	if err := os.Remove(q); err != nil {
		t.Fatal(err)
	}
	expect(t, poll(t, tl), "b1")
	if got := tl.Closed(); got != nil {
		t.Fatalf("Closed within the grace period = %q", got)
	}
	c.t = c.t.Add(DefaultGrace + time.Second)
	expect(t, poll(t, tl))
	if got := tl.Closed(); len(got) != 1 || got[0] != q {
		t.Fatalf("Closed = %q, want only %q (app.log is followed again under its name)", got, q)
	}
	if got := tl.Closed(); got != nil {
		t.Fatalf("Closed twice = %q", got)
	}
}
