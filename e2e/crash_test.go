package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"
)

// crashLedger records every batch the ingestion clients sent and whether the
// server acknowledged it (204). Safe for concurrent use.
type crashLedger struct {
	mu    sync.Mutex
	sent  map[string]int  // batch ID → rows; guarded by mu
	acked map[string]bool // batch ID → acknowledged; guarded by mu
	nack  int             // acknowledged batches; guarded by mu
}

func (l *crashLedger) record(batch string, rows int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent[batch] = rows
	if ok {
		l.acked[batch] = true
		l.nack++
	}
}

func (l *crashLedger) acks() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.nack
}

const crashBatchRows = 20

var crashColumns = []Column{
	{Name: "TimeGenerated", Type: "datetime"},
	{Name: "RowId", Type: "string"},
	{Name: "BatchId", Type: "string"},
	{Name: "Client", Type: "int"},
	{Name: "Payload", Type: "string"},
}

// How a crash round ends.
type crashEnd int

const (
	endKill          crashEnd = iota // SIGKILL while clients ingest
	endStop                          // SIGTERM and a clean exit: memtables flush into parts
	endKillDuringEnd                 // SIGTERM, then SIGKILL a moment later: mid-drain or mid-flush
)

func (e crashEnd) String() string {
	return [...]string{"SIGKILL", "SIGTERM", "SIGTERM then SIGKILL"}[e]
}

// TestCrashSafety runs concurrent Azure SDK ingestion clients against the
// server and ends each round at a seeded random moment with SIGKILL, a
// graceful SIGTERM (so that parts, merges and WAL replay meet), or SIGTERM
// followed by SIGKILL during the shutdown flush; once it also kills a
// start-up (WAL replay). After every restart each acknowledged row is present
// exactly once, no row is duplicated or invented, and an unacknowledged batch
// is either wholly present or wholly absent.
func TestCrashSafety(t *testing.T) {
	seed := crashSeed(t)
	rounds := 8
	if v := os.Getenv("E2E_CRASH_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 4 {
			t.Fatalf("E2E_CRASH_ROUNDS=%q: want an integer >= 4", v)
		}
		rounds = n
	}
	t.Logf("%d rounds", rounds)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	s, c := newServer(t)
	ctx := testCtx(t, 150*time.Second)
	if err := c.CreateTable(ctx, "Crash_CL", crashColumns); err != nil {
		t.Fatal(err)
	}
	rule, err := c.CreateDCR(ctx, "crash-dcr", "Custom-Crash", crashColumns, "Crash_CL", "")
	if err != nil {
		t.Fatal(err)
	}

	led := &crashLedger{sent: map[string]int{}, acked: map[string]bool{}}
	const clients = 4
	// A quarter of the rounds end gracefully and a quarter with a kill during
	// shutdown (at least one each); the rest with SIGKILL; in seeded order.
	ends := make([]crashEnd, rounds)
	for i := range rounds / 4 {
		ends[2*i], ends[2*i+1] = endStop, endKillDuringEnd
	}
	rng.Shuffle(len(ends), func(i, j int) { ends[i], ends[j] = ends[j], ends[i] })
	startupKill := 1 + rng.IntN(rounds-1) // before this round, one start is killed before it is ready
	base := time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Second)

	for round := range rounds {
		if round > 0 {
			if round == startupKill {
				// Kill a start-up at a random moment: during catalog open, WAL
				// replay or before the listener is ready.
				if err := s.Spawn(); err != nil {
					t.Fatal(err)
				}
				d := time.Duration(rng.IntN(400)) * time.Millisecond
				time.Sleep(d)
				if err := s.Kill(); err != nil && err != ErrNotRunning {
					t.Fatal(err)
				}
				t.Logf("round %d: killed a start-up after %v", round, d)
			}
			if err := s.Start(ctx); err != nil {
				t.Fatalf("round %d: restart: %v", round, err)
			}
			verifyCrashLedger(t, ctx, c, led, fmt.Sprintf("after restart %d", round))
		}

		// Run the clients until a random moment, and at least until this
		// round has an acknowledged batch.
		before := led.acks()
		runFor := time.Duration(200+rng.IntN(1300)) * time.Millisecond
		cctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for cl := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				crashClient(cctx, c, rule, led, round, cl, base)
			}()
		}
		deadline := time.Now().Add(runFor)
		for time.Now().Before(deadline) || led.acks() == before {
			if ctx.Err() != nil {
				stop()
				wg.Wait()
				t.Fatalf("round %d: no batch acknowledged before the test deadline", round)
			}
			time.Sleep(10 * time.Millisecond)
		}
		switch ends[round] {
		case endStop:
			if err := s.Stop(60 * time.Second); err != nil {
				t.Fatalf("round %d: graceful stop: %v", round, err)
			}
		case endKillDuringEnd:
			if err := s.Terminate(); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond)
			if err := s.Kill(); err != nil && err != ErrNotRunning {
				t.Fatalf("round %d: %v", round, err)
			}
		default:
			if err := s.Kill(); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		t.Logf("round %d: %v after %v (%d batches acknowledged so far)", round, ends[round], runFor, led.acks())
		stop()
		wg.Wait()
	}

	if err := s.Start(ctx); err != nil {
		t.Fatalf("final restart: %v", err)
	}
	verifyCrashLedger(t, ctx, c, led, "after the final restart")
	if err := s.Stop(60 * time.Second); err != nil {
		t.Fatalf("final graceful stop: %v", err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatalf("start after the final flush: %v", err)
	}
	verifyCrashLedger(t, ctx, c, led, "after a graceful stop and start")
}

// crashClient uploads batches of crashBatchRows rows with unique IDs until
// ctx ends, recording each outcome. Errors are expected: the server dies.
func crashClient(ctx context.Context, c *Client, rule string, led *crashLedger, round, client int, base time.Time) {
	for n := 0; ctx.Err() == nil; n++ {
		batch := fmt.Sprintf("r%d-c%d-b%d", round, client, n)
		recs := make([]map[string]any, crashBatchRows)
		for i := range recs {
			recs[i] = map[string]any{
				"TimeGenerated": base.Add(time.Duration(round*100000+client*10000+n) * time.Millisecond).Format(time.RFC3339Nano),
				"RowId":         fmt.Sprintf("%s-%d", batch, i),
				"BatchId":       batch,
				"Client":        client,
				"Payload":       fmt.Sprintf("row %d of batch %s: the quick brown fox jumps over the lazy dog", i, batch),
			}
		}
		body, err := json.Marshal(recs)
		if err != nil {
			panic("BUG: " + err.Error())
		}
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		err = c.Upload(uctx, rule, "Custom-Crash", body)
		cancel()
		led.record(batch, len(recs), err == nil)
		if err != nil {
			// The server is down or going down; back off a little.
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

// verifyCrashLedger queries every row's ID count and checks the ledger.
func verifyCrashLedger(t *testing.T, ctx context.Context, c *Client, led *crashLedger, when string) {
	t.Helper()
	_, rows, err := c.QueryRows(ctx, "Crash_CL | summarize n = count() by RowId, BatchId")
	if err != nil {
		t.Fatalf("%s: query: %v", when, err)
	}
	led.mu.Lock()
	defer led.mu.Unlock()
	perBatch := map[string]int{}
	var dups, phantoms []string
	for _, r := range rows {
		if len(r) != 3 {
			t.Fatalf("%s: row %v; want RowId, BatchId, n", when, r)
		}
		id, _ := r[0].(string)
		batch, _ := r[1].(string)
		n, _ := r[2].(float64)
		if n != 1 {
			dups = append(dups, fmt.Sprintf("%s×%v", id, n))
		}
		if _, ok := led.sent[batch]; !ok {
			phantoms = append(phantoms, id)
		}
		perBatch[batch]++
	}
	var lost, partial []string
	for b, want := range led.sent {
		got := perBatch[b]
		switch {
		case led.acked[b] && got != want:
			lost = append(lost, fmt.Sprintf("%s (%d of %d rows)", b, got, want))
		case !led.acked[b] && got != 0 && got != want:
			partial = append(partial, fmt.Sprintf("%s (%d of %d rows)", b, got, want))
		}
	}
	sort.Strings(lost)
	sort.Strings(partial)
	if len(dups)+len(phantoms)+len(lost)+len(partial) > 0 {
		t.Fatalf("%s: %d acknowledged batches lost or short: %q; %d rows duplicated: %q; %d rows never sent: %q; %d unacknowledged batches partially present: %q",
			when, len(lost), head(lost), len(dups), head(dups), len(phantoms), head(phantoms), len(partial), head(partial))
	}
	unacked := 0
	for b := range led.sent {
		if !led.acked[b] && perBatch[b] > 0 {
			unacked++
		}
	}
	t.Logf("%s: %d rows, %d acknowledged batches all present once; %d of %d unacknowledged batches committed whole",
		when, len(rows), led.nack, unacked, len(led.sent)-led.nack)
}

// head returns at most the first 10 elements of list, for messages.
func head(list []string) []string {
	return list[:min(len(list), 10)]
}
