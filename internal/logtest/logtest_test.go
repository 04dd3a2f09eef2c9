package logtest

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

func TestBufferConcurrentWriters(t *testing.T) {
	var b Buffer
	log := slog.New(slog.NewTextHandler(&b, nil))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				log.Info("line", "writer", i, "n", j)
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	out := b.String()
	if n := strings.Count(out, "\n"); n != 400 {
		t.Fatalf("got %d lines; want 400", n)
	}
	if !strings.Contains(out, fmt.Sprintf("writer=%d n=%d", 7, 49)) {
		t.Fatalf("a line is missing:\n%s", out)
	}
}
