package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// TestKillMidPurgeRewrite: SIGKILL in the middle of a large part's rewrite
// by a purge, with the binary (TestKillDuringPurge's table is small, so its
// kills mostly land before or after the rewrite). 160 batches of
// incompressible rows (80,000 rows) are flushed into one part by a graceful
// stop; each of three rounds posts a purge of one batch, polls the table's
// directory every millisecond for the rewrite's temporary file, and kills
// the server the moment it appears — while the new part is being written.
// After each restart the operation is resumed and reaches `completed`, no
// temporary file is left, the purged batch is gone and every other
// acknowledged row is present exactly once; also after a final SIGKILL and
// a graceful restart.
func TestKillMidPurgeRewrite(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: starts the custos binary")
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	r := newDiskFullRig(t, dataDir, 6*time.Minute)
	s, c, ctx := r.s, r.c, r.ctx
	for range 160 {
		if st, code := r.sendRandom("k"); st/100 != 2 {
			t.Fatalf("upload: HTTP %d %s", st, code)
		}
	}
	if err := s.Stop(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	parts, _ := StoreFiles(t, dataDir, "Crash_CL")
	t.Logf("parts before the purges: %v", parts)
	r.verify("before the purges")

	for round, batch := range []string{"k-b7", "k-b80", "k-b151"} {
		body := fmt.Sprintf(`{"table":"Crash_CL","filters":[{"column":"BatchId","operator":"==","value":%q}]}`, batch)
		st, code, resp, err := c.Do(ctx, audienceManagement, http.MethodPost, c.Admin.WorkspaceResourceID()+"/purge?api-version=2020-08-01", []byte(body))
		if err != nil || st != http.StatusAccepted {
			t.Fatalf("round %d: purge %s: HTTP %d %s: %s (%v)", round, batch, st, code, resp, err)
		}
		var op struct {
			OperationID string `json:"operationId"`
		}
		if err := json.Unmarshal(resp, &op); err != nil || op.OperationID == "" {
			t.Fatalf("purge response without operationId: %s", resp)
		}
		var tmp []string
		posted := time.Now()
		for deadline := posted.Add(30 * time.Second); len(tmp) == 0; time.Sleep(time.Millisecond) {
			if _, tmp = StoreFiles(t, dataDir, "Crash_CL"); len(tmp) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: no temporary file of the rewrite within 30 s of the purge", round)
			}
		}
		if err := s.Kill(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: killed %v after the purge of %s was accepted, with %v being written", round, time.Since(posted).Round(time.Millisecond), batch, tmp)
		// The kill landed mid-rewrite: the temporary file is still there
		// (a finished rewrite renames it into place) beside the old part.
		if now, left := StoreFiles(t, dataDir, "Crash_CL"); len(left) == 0 || fmt.Sprint(now) != fmt.Sprint(parts) {
			t.Fatalf("round %d: after the kill parts %v, temporary files %v; want the old part %v and the rewrite's temporary file", round, now, left, parts)
		}
		if err := s.Start(ctx); err != nil {
			t.Fatalf("round %d: restart after SIGKILL mid-rewrite: %v", round, err)
		}
		statusPath := c.Admin.WorkspaceResourceID() + "/operations/purge-" + op.OperationID + "?api-version=2020-08-01"
		for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			st, code, resp, err := c.Do(ctx, audienceManagement, http.MethodGet, statusPath, nil)
			if err != nil || st != http.StatusOK {
				t.Fatalf("round %d: purge status: HTTP %d %s: %s (%v)", round, st, code, resp, err)
			}
			var out struct {
				Status string `json:"status"`
			}
			_ = json.Unmarshal(resp, &out)
			if out.Status == "completed" {
				break
			}
			if out.Status != "pending" || time.Now().After(deadline) {
				t.Fatalf("round %d: purge status %s; want completed after the restart", round, resp)
			}
		}
		r.led.mu.Lock()
		r.led.sent[batch] = 0 // purged: no row of it may remain
		r.led.mu.Unlock()
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if _, tmp = StoreFiles(t, dataDir, "Crash_CL"); len(tmp) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: temporary files %v left after the purge completed", round, tmp)
			}
		}
		r.verify(fmt.Sprintf("round %d: after the purge of %s resumed and completed", round, batch))
		parts, _ = StoreFiles(t, dataDir, "Crash_CL") // the rewritten part
	}
	r.restarts(nil)
}
