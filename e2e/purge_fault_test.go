package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestKillDuringPurge posts purges (POST .../workspaces/{ws}/purge) against a
// table whose rows are in parts and in the WAL, SIGKILLs the server at seeded
// random moments after the 202, restarts it, and checks that each purge
// completes (it is resumed after the restart), its rows are gone, and every
// other row is present exactly once. On a small table a purge may finish
// before the kill; round 0 kills at once after the 202 to hit it midway.
func TestKillDuringPurge(t *testing.T) {
	seed := crashSeed(t)
	rng := rand.New(rand.NewPCG(seed, 0x9a26e))
	s, c := newServer(t)
	ctx := testCtx(t, 170*time.Second)
	if err := c.CreateTable(ctx, "Crash_CL", crashColumns); err != nil {
		t.Fatal(err)
	}
	rule, err := c.CreateDCR(ctx, "purge-dcr", "Custom-Crash", crashColumns, "Crash_CL", "")
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Second)
	const rowsPerBatch = 500
	want := map[string]int{} // batch → rows expected now
	upload := func(batch string, n int) {
		t.Helper()
		recs := make([]map[string]any, rowsPerBatch)
		for i := range recs {
			recs[i] = map[string]any{
				"TimeGenerated": base.Add(time.Duration(n*rowsPerBatch+i) * time.Millisecond).Format(time.RFC3339Nano),
				"RowId":         fmt.Sprintf("%s-%d", batch, i),
				"BatchId":       batch,
				"Client":        n,
				"Payload":       fmt.Sprintf("row %d of %s %s", i, batch, strings.Repeat("purge ", i%16)),
			}
		}
		body, _ := json.Marshal(recs)
		if err := c.Upload(ctx, rule, "Custom-Crash", body); err != nil {
			t.Fatalf("upload %s: %v", batch, err)
		}
		want[batch] = rowsPerBatch
	}
	// Ten batches flushed into a part by a graceful stop, ten more left in
	// the WAL and memtable.
	for i := range 10 {
		upload(fmt.Sprintf("b%d", i), i)
	}
	if err := s.Stop(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 10; i < 20; i++ {
		upload(fmt.Sprintf("b%d", i), i)
	}
	verify := func(when string) {
		t.Helper()
		_, rows, err := c.QueryRows(ctx, "Crash_CL | summarize n = count(), ids = dcount(RowId) by BatchId")
		if err != nil {
			t.Fatalf("%s: query: %v", when, err)
		}
		got := map[string]int{}
		for _, r := range rows {
			b, _ := r[0].(string)
			n, _ := r[1].(float64)
			ids, _ := r[2].(float64)
			if n != ids {
				t.Fatalf("%s: batch %s has %v rows but %v distinct RowIds (duplicates)", when, b, n, ids)
			}
			got[b] = int(n)
		}
		for b, n := range want {
			if got[b] != n {
				t.Fatalf("%s: batch %s has %d rows; want %d", when, b, got[b], n)
			}
		}
		for b, n := range got {
			if _, ok := want[b]; !ok && n > 0 {
				t.Fatalf("%s: batch %s (%d rows) was never sent", when, b, n)
			}
		}
	}
	verify("before the purges")

	purgePath := c.Admin.WorkspaceResourceID() + "/purge?api-version=2020-08-01"
	// Purge one batch from the part (oldest data) and one from the WAL each round.
	for round, targets := range [][]string{{"b1", "b12"}, {"b4", "b15"}, {"b7", "b18"}} {
		var ops []string
		for _, b := range targets {
			body := fmt.Sprintf(`{"table":"Crash_CL","filters":[{"column":"BatchId","operator":"==","value":%q}]}`, b)
			status, code, resp, err := c.Do(ctx, audienceManagement, http.MethodPost, purgePath, []byte(body))
			if err != nil {
				t.Fatal(err)
			}
			if status != http.StatusAccepted {
				t.Fatalf("round %d: purge %s: HTTP %d %s: %s", round, b, status, code, resp)
			}
			var r struct {
				OperationID string `json:"operationId"`
			}
			if err := json.Unmarshal(resp, &r); err != nil || r.OperationID == "" {
				t.Fatalf("purge response has no operationId: %s (%v)", resp, err)
			}
			ops = append(ops, r.OperationID)
			want[b] = 0
		}
		// Round 0 kills right after the 202 (the purge has at most just
		// started); later rounds at a random moment within 300 ms.
		var d time.Duration
		if round > 0 {
			d = time.Duration(rng.IntN(300)) * time.Millisecond
		}
		time.Sleep(d)
		if err := s.Kill(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: SIGKILL %v after purging %v", round, d, targets)
		if err := s.Start(ctx); err != nil {
			t.Fatalf("round %d: restart: %v", round, err)
		}
		for _, id := range ops {
			statusPath := c.Admin.WorkspaceResourceID() + "/operations/purge-" + id + "?api-version=2020-08-01"
			var last string
			for deadline := time.Now().Add(60 * time.Second); ; {
				st, code, resp, err := c.Do(ctx, audienceManagement, http.MethodGet, statusPath, nil)
				if err != nil {
					t.Fatal(err)
				}
				if st != http.StatusOK {
					t.Fatalf("round %d: purge status %s: HTTP %d %s: %s", round, id, st, code, resp)
				}
				var r struct {
					Status string `json:"status"`
				}
				_ = json.Unmarshal(resp, &r)
				last = r.Status
				if last == "completed" {
					break
				}
				if last != "pending" {
					t.Fatalf("round %d: purge %s status %q: %s", round, id, last, resp)
				}
				if time.Now().After(deadline) {
					t.Fatalf("round %d: purge %s still %q 60 s after the restart", round, id, last)
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
		verify(fmt.Sprintf("after round %d", round))
	}
	// And after a graceful restart (WAL replay must not bring purged rows back).
	if err := s.Stop(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	verify("after a graceful stop and start")
}
