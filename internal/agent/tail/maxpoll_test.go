package tail

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMaxPollBytes: a backlog is read over several polls, each within the
// per-poll budget shared between the files, every line once and in order.
func TestMaxPollBytes(t *testing.T) {
	dir := t.TempDir()
	const lines = 20000 // ~1 MB per file
	for _, name := range []string{"a.log", "b.log"} {
		var b strings.Builder
		for i := 0; i < lines; i++ {
			fmt.Fprintf(&b, "%s line %06d %s\n", name, i, strings.Repeat("x", 32))
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tl, err := Open(Options{Patterns: []string{filepath.Join(dir, "*.log")}, StatePath: filepath.Join(dir, "state.json"),
		ReadFromStart: true, MaxRecordBytes: 1024, MaxPollBytes: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	next := map[string]int{}
	polls := 0
	for total := 0; total < 2*lines; {
		recs, err := tl.Poll()
		if err != nil {
			t.Fatal(err)
		}
		if polls++; polls > 100 {
			t.Fatalf("%d of %d lines after 100 polls", total, 2*lines)
		}
		var bytes int
		for _, r := range recs {
			bytes += len(r.Text) + 1
			name := filepath.Base(r.Path)
			if want := fmt.Sprintf("%s line %06d ", name, next[name]); !strings.HasPrefix(r.Text, want) {
				t.Fatalf("got %q; want a line starting %q", r.Text, want)
			}
			next[name]++
		}
		if bytes > 256<<10 {
			t.Fatalf("poll %d read %d bytes; budget 256 KiB", polls, bytes)
		}
		total += len(recs)
	}
	if polls < 8 {
		t.Errorf("2 MB read in %d polls of at most 256 KiB", polls)
	}
}
