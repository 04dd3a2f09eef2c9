package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"custos/bench/gen"
	"custos/bench/logdata"
)

// TestEvictDir writes files under a real directory (on a disk filesystem:
// tmpfs would keep its pages; see diskTempDir), reads them into the page
// cache and checks that evictDir reports them resident before and drops them.
func TestEvictDir(t *testing.T) {
	dir := diskTempDir(t)
	if err := os.MkdirAll(filepath.Join(dir, "part", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("custos-page-cache "), 1<<16) // ~1.1 MB
	paths := []string{filepath.Join(dir, "a.dat"), filepath.Join(dir, "part", "sub", "b.dat"), filepath.Join(dir, "empty")}
	for i, p := range paths {
		b := data
		if i == 2 {
			b = nil
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := os.ReadFile(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(paths[0], filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	before, after, err := evictDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if before < int64(len(data)) {
		t.Fatalf("resident before eviction: %d bytes; want at least one file's %d", before, len(data))
	}
	if after > int64(os.Getpagesize())*2 {
		t.Fatalf("resident after eviction: %d bytes (before %d); want the files dropped", after, before)
	}
	f, err := os.Open(paths[1])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n, err := resident(f); err != nil || n > int64(os.Getpagesize())*2 {
		t.Fatalf("a nested file after eviction: %d bytes resident, %v", n, err)
	}
	if _, _, err := evictDir(filepath.Join(dir, "missing")); err != nil {
		t.Fatalf("a missing directory: %v; want nothing to evict", err)
	}
}

// TestRenderMethod checks that the report says how queries were timed and
// shows ClickBench's hot table only when there were two warm-up runs.
func TestRenderMethod(t *testing.T) {
	d := &dataset{gen: logdata.New(logdata.Options{Seed: 42, Rows: 10, End: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)}), rows: 10}
	qs := questions(d.gen.Options())
	r := result{Name: "Custos", LoadWall: time.Second, LoadCPU: time.Second, Disk: 1 << 20, PeakRSS: 1 << 20, Evicted: 5 << 20}
	for range qs {
		r.Cold = append(r.Cold, 20*time.Millisecond)
		r.Hot = append(r.Hot, 3*time.Millisecond)
		r.Warm = append(r.Warm, 2*time.Millisecond)
		r.Rows = append(r.Rows, 1)
		r.QueryCPU = append(r.QueryCPU, time.Millisecond)
	}
	out := render(gen.Machine{}, []result{r}, qs, d, 8, 5, 2, true)
	for _, want := range []string{"-warmup 2 -drop-cache=true", "then 2 unmeasured runs", "the median of the next 5 runs",
		"the system's files dropped from the page cache", "ClickBench's hot run", "| last hour by service | 3ms (1.00×) |", "| last hour by service | 2ms (1.00×) / 20ms; CPU 1ms; 1 rows |",
		"Page cache dropped before the cold runs (sum over the questions): Custos 5.2 MB."} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	out = render(gen.Machine{}, []result{r}, qs, d, 8, 5, 0, false)
	if strings.Contains(out, "ClickBench's hot run") || strings.Contains(out, "Page cache dropped") || !strings.Contains(out, "the page cache kept") {
		t.Errorf("report without warm-up or eviction:\n%s", out)
	}
}

// diskTempDir is t.TempDir when that is on a disk filesystem, and otherwise
// (a tmpfs /tmp, as on some CI machines) a temporary directory next to the
// test's sources, which are on disk.
func diskTempDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != unix.TMPFS_MAGIC {
		return dir
	}
	dir, err := os.MkdirTemp(".", "evicttest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
