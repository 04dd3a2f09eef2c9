package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestClockJumpsBack runs the real server with its clock following an
// offset file (the test-only CUSTOS_TEST_CLOCK_OFFSET_FILE hook) and makes
// the clock jump backwards twice while a client ingests and queries:
//
//   - 90 seconds back (an NTP step within the token service's 2-minute clock
//     skew): the tokens issued before the jump stay valid, ingestion and
//     queries go on;
//   - 2 hours back: a token issued before the jump has its nbf and iat 2 h
//     in the server's future; the server issued it itself before its clock
//     was stepped back, so it stays valid (the token service judges such
//     tokens against its clock before the step: the latest issue plus the
//     monotonic time since) and the first client — whose SDK keeps its cached
//     token — goes on ingesting and querying without a new token; a token
//     issued after the jump works too; graceful restarts under the shifted
//     clock replay and flush, and the background merge combines the day's
//     parts. After a restart the server no longer knows of the step: the old
//     token is then refused with 401 InvalidAuthenticationToken (the
//     documented limit), and a new one works;
//   - then the clock jumps forward again and the first client works again.
//
// Throughout, no request fails except the old token's after the restart,
// the server never panics or exits, and at the end every acknowledged batch
// is present exactly once — also after the merge and a final restart.
func TestClockJumpsBack(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: starts the custos binary")
	}
	ctx := testCtx(t, 8*time.Minute)
	cols := []Column{{Name: "TimeGenerated", Type: "datetime"}, {Name: "Batch", Type: "string"}, {Name: "Seq", Type: "long"}}
	env := startClockServer(t, ctx, t.TempDir(), "Clock_CL", "Custom-Clock", "clock-dcr", cols)
	s, c, rule := env.s, env.c, env.dcr
	adm := c.Admin
	setOffset := func(d string) { t.Helper(); env.setOffset(t, d) }
	const rowsPerBatch = 25
	acked := map[string]bool{}
	ingest := func(cl *Client, phase string, n int) {
		t.Helper()
		for i := range n {
			id := fmt.Sprintf("%s-%03d", phase, i)
			recs := make([]map[string]any, rowsPerBatch)
			for j := range recs {
				// The client's clock is not shifted: rows carry real times,
				// which after the jump lie in the server's future.
				recs[j] = map[string]any{"TimeGenerated": time.Now().UTC().Add(-time.Minute).Format(time.RFC3339Nano), "Batch": id, "Seq": j}
			}
			body, _ := json.Marshal(recs)
			if err := cl.Upload(ctx, rule, "Custom-Clock", body); err != nil {
				t.Fatalf("upload %s (phase %s): %v", id, phase, err)
			}
			acked[id] = true
		}
	}
	// verify checks every acknowledged batch is stored exactly once, and
	// that the query answers completely.
	verify := func(cl *Client, when string) {
		t.Helper()
		_, rows, err := cl.QueryRows(ctx, "Clock_CL | summarize n = count() by Batch")
		if err != nil {
			t.Fatalf("%s: query: %v", when, err)
		}
		got := map[string]int64{}
		for _, r := range rows {
			b, _ := r[0].(string)
			n, _ := r[1].(float64)
			got[b] = int64(n)
		}
		for id := range acked {
			if got[id] != rowsPerBatch {
				t.Fatalf("%s: batch %s has %d rows; want %d", when, id, got[id], rowsPerBatch)
			}
		}
		if len(got) != len(acked) {
			t.Fatalf("%s: %d batches stored; %d acknowledged", when, len(got), len(acked))
		}
		t.Logf("%s: %d batches, each exactly once", when, len(got))
	}
	restart := func() {
		t.Helper()
		if err := s.Stop(60 * time.Second); err != nil {
			t.Fatal(err)
		}
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}

	ingest(c, "before", 10)
	verify(c, "before the jumps")

	// 1. A small step back: tokens issued before it stay valid.
	setOffset("-90s")
	ingest(c, "minus90s", 10)
	verify(c, "90 s back, same token")

	// 2. Two hours back. A token issued before the jump is now 2 h in the
	// server's future.
	staleTok, err := c.Token(ctx, audienceQuery)
	if err != nil {
		t.Fatal(err)
	}
	setOffset("-2h")
	tryStale := func() (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, adm.Endpoint+"/v1/workspaces/"+adm.WorkspaceID+"/query",
			strings.NewReader(`{"query":"Clock_CL | count"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+staleTok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(body)
	}
	if st, body := tryStale(); st != http.StatusOK {
		t.Fatalf("a token the server issued before its clock jumped 2 h back: HTTP %d %.300s; want 200 (valid for the rest of its lifetime)", st, body)
	}
	// The first client keeps its cached tokens (ingestion and query
	// audiences, both issued before the jump) and goes on.
	ingest(c, "minus2h-old", 10)
	verify(c, "2 hours back, tokens from before the jump")
	c2, err := NewClient(adm)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c2.HTTP.CloseIdleConnections)
	if err := c2.GrantDataRoles(ctx); err != nil { // role assignments made under the shifted clock
		t.Fatal(err)
	}
	ingest(c2, "minus2h", 10)
	verify(c2, "2 hours back, new token")
	// _TimeReceived follows the server's clock: the newest rows were
	// received "before" the oldest ones, and nothing minds.
	_, rows, err := c2.QueryRows(ctx, "Clock_CL | summarize max(_TimeReceived) by p = substring(Batch, 0, 5) | order by p asc")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("latest _TimeReceived per phase: %v", rows)

	// Restarts under the shifted clock: WAL replay, flush, and enough
	// parts for the background merge (more than 4 in one day).
	for i := range 5 {
		ingest(c2, fmt.Sprintf("restart%d", i), 4)
		restart()
	}
	verify(c2, "after 5 restarts at -2h")
	// The restarted server has not seen the step: a token from before it
	// now has its nbf in the server's future and is refused (the client must
	// fetch a new token; docs/security.md).
	if st, body := tryStale(); st != http.StatusUnauthorized || !strings.Contains(body, "InvalidAuthenticationToken") {
		t.Fatalf("the token from before the jump, after restarts at -2h: HTTP %d %.300s; want 401 InvalidAuthenticationToken", st, body)
	} else {
		t.Logf("token from before the 2 h jump after a restart: HTTP %d %.200s", st, body)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		n := 0
		for _, p := range findParts(t, s.DataDir(), "Clock_CL") {
			if !strings.Contains(filepath.ToSlash(p), "/quarantine/") {
				n++
			}
		}
		if n <= 4 {
			t.Logf("merged: %d parts", n)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d parts of Clock_CL 90 s after start: the merge did not run under the shifted clock", n)
		}
		time.Sleep(time.Second)
	}
	verify(c2, "after the merge at -2h")

	// 3. Forward again: the first client's token is valid again.
	setOffset("0s")
	ingest(c, "after", 5)
	verify(c, "clock restored, first token")
	restart()
	verify(c, "final restart")
	if !s.Running() {
		t.Fatal("the server exited")
	}
	logb, _ := s.Log()
	if strings.Contains(string(logb), "panic") {
		t.Fatal("the server log mentions a panic")
	}
}
