package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCrashDuringMerge builds more parts for one table and day than the store
// keeps (a graceful stop flushes one part each time), so that the next start
// merges them in the background, and SIGKILLs the server at seeded random
// moments while that merge may be running. After every restart the table
// holds every row exactly once; in the end the merge completes and leaves no
// temporary files.
func TestCrashDuringMerge(t *testing.T) {
	seed := crashSeed(t)
	rng := rand.New(rand.NewPCG(seed, 0x3e59e))
	s, c := newServer(t)
	ctx := testCtx(t, 150*time.Second)
	cols := []Column{{Name: "TimeGenerated", Type: "datetime"}, {Name: "RowId", Type: "string"}, {Name: "Payload", Type: "string"}}
	if err := c.CreateTable(ctx, "Merge_CL", cols); err != nil {
		t.Fatal(err)
	}
	rule, err := c.CreateDCR(ctx, "merge-dcr", "Custom-Merge", cols, "Merge_CL", "")
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().UTC().Add(-10 * time.Minute)
	// Five flushes: each start before the fifth stop sees at most 4 parts,
	// so nothing merges until the kill rounds below.
	const parts, batchesPerPart, rowsPerBatch = 5, 8, 1000
	total := 0
	for p := range parts {
		if p > 0 {
			if err := s.Start(ctx); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		errs := make(chan error, batchesPerPart)
		for b := range batchesPerPart {
			wg.Add(1)
			go func() {
				defer wg.Done()
				recs := make([]map[string]any, rowsPerBatch)
				for i := range recs {
					id := fmt.Sprintf("p%d-b%d-%d", p, b, i)
					recs[i] = map[string]any{
						"TimeGenerated": base.Add(time.Duration((p*batchesPerPart+b)*rowsPerBatch+i) * time.Millisecond).Format(time.RFC3339Nano),
						"RowId":         id,
						"Payload":       "merge payload " + id + " " + strings.Repeat("x", i%64),
					}
				}
				body, _ := json.Marshal(recs)
				if err := c.Upload(ctx, rule, "Custom-Merge", body); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("part %d: upload: %v", p, err)
		}
		total += batchesPerPart * rowsPerBatch
		if err := s.Stop(60 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(findParts(t, s.DataDir(), "Merge_CL")); n != parts {
		t.Fatalf("%d parts after %d flushes; want %d (more than the 4 per day that trigger a merge)", n, parts, parts)
	}

	// Kill later in each round, so that the kills sweep the window in which
	// the merge runs (it starts at the store's first maintenance tick, ~1 s
	// after opening, and is redone from scratch after a kill).
	interrupted := 0
	for round := range 6 {
		if err := s.Start(ctx); err != nil {
			t.Fatalf("round %d: start: %v", round, err)
		}
		ready := time.Now()
		d := time.Duration(700+200*round+rng.IntN(200)) * time.Millisecond
		verifyExactlyOnce(t, ctx, c, total, fmt.Sprintf("round %d", round))
		time.Sleep(time.Until(ready.Add(d)))
		if err := s.Kill(); err != nil {
			t.Fatal(err)
		}
		np, nt := len(findParts(t, s.DataDir(), "Merge_CL")), len(tempFiles(t, s.DataDir()))
		if np > parts || nt > 0 {
			interrupted++
		}
		t.Logf("round %d: SIGKILL %v after the start was ready: %d parts, %d temporary files on disk", round, d, np, nt)
	}
	t.Logf("%d of 6 kills left an unfinished merge behind (more parts than flushed, or temporary files)", interrupted)

	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	verifyExactlyOnce(t, ctx, c, total, "after the last kill")
	// Let the merge finish: the part count drops to the per-day limit.
	deadline := time.Now().Add(60 * time.Second)
	for len(findParts(t, s.DataDir(), "Merge_CL")) > 4 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if err := s.Stop(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	n := len(findParts(t, s.DataDir(), "Merge_CL"))
	if n > 4 {
		t.Errorf("%d parts remain for one day after the merge had a minute; want at most 4", n)
	}
	if tmp := tempFiles(t, s.DataDir()); len(tmp) > 0 {
		t.Errorf("temporary files left after a clean stop: %v", tmp)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	verifyExactlyOnce(t, ctx, c, total, fmt.Sprintf("merged into %d parts", n))
}

// crashSeed returns E2E_SEED, or a time-based seed; either is logged.
func crashSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("E2E_SEED"); v != "" {
		if _, err := fmt.Sscan(v, &seed); err != nil {
			t.Fatalf("E2E_SEED=%q: %v", v, err)
		}
	}
	t.Logf("seed %d (replay with E2E_SEED=%d)", seed, seed)
	return seed
}

// verifyExactlyOnce checks that Merge_CL holds total rows with distinct RowIds.
func verifyExactlyOnce(t *testing.T, ctx context.Context, c *Client, total int, when string) {
	t.Helper()
	_, rows, err := c.QueryRows(ctx, "Merge_CL | count")
	if err != nil {
		t.Fatalf("%s: count: %v", when, err)
	}
	if got := rows[0][0].(float64); int(got) != total {
		t.Fatalf("%s: %v rows; want %d", when, got, total)
	}
	_, rows, err = c.QueryRows(ctx, "Merge_CL | summarize n = count() by RowId | where n != 1 | count")
	if err != nil {
		t.Fatalf("%s: duplicates: %v", when, err)
	}
	if got := rows[0][0].(float64); got != 0 {
		t.Fatalf("%s: %v RowIds appear more than once", when, got)
	}
}

// tempFiles lists the store's unfinished writes (.tmp-*).
func tempFiles(t *testing.T, dataDir string) []string {
	t.Helper()
	var tmp []string
	err := filepath.WalkDir(filepath.Join(dataDir, "store"), func(path string, d os.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if strings.HasPrefix(d.Name(), ".tmp") {
			tmp = append(tmp, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tmp
}
