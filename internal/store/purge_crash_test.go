package store

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const purgeCrashEnv = "CUSTOS_STORE_PURGE_CRASH_CHILD"

// Three batches of purgeCrashRows rows each, one per day; every 50th row is
// a victim. The third batch's rows run past midnight (baseTime is 03:04:05
// and row i is i seconds later), so it lands in two store days and two
// parts: the check counts victims per store day, which is what a part holds.
const (
	purgeCrashDays = 3
	purgeCrashRows = 30000
)

var purgeCrashRef = TableRef{WorkspaceID: testWS, Table: "PurgeCrash"}

func purgeCrashVictim(i int) bool { return i%50 == 0 }

func purgeCrashOptions(dir string) Options {
	return Options{Dir: filepath.Join(dir, "data"), DisableBackground: true, BlockRows: 256, MaxPartsPerDay: 16, QueryWorkers: 2}
}

// TestPurgeCrashChild is the child process of TestPurgeKillMidRewrite: it
// purges the victims and says when it starts and when it is done.
func TestPurgeCrashChild(t *testing.T) {
	dir := os.Getenv(purgeCrashEnv)
	if dir == "" {
		t.Skip("child process of TestPurgeKillMidRewrite")
	}
	o := purgeCrashOptions(dir)
	o.Keys = testKeys(t, dir)
	db, err := Open(o)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	fmt.Println("purging")
	res, err := db.Purge(context.Background(), purgeCrashRef, ColumnIn{Column: "User", Values: []string{"victim"}})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(3)
	}
	fmt.Println("done", res.RowsPurged, res.PartsRewritten)
	os.Exit(0)
}

// TestPurgeKillMidRewrite kills a process at random moments while it purges
// a table of four parts (three days of about 117 blocks, the third running
// into a fourth day), then reopens the store and checks the promise of
// Purge's doc: each part is either the old one or its replacement, never both
// and never a mixture — every other row is present exactly once, and each
// store day's victims are either all there or all gone. The next round purges again from that state; at the end a purge
// runs to completion and no victim is left. Temporary files of a rewrite cut
// short are removed when the store opens.
func TestPurgeKillMidRewrite(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	dir := t.TempDir()
	ctx := context.Background()
	// fill (re)creates the store with one large part per day.
	fill := func() {
		t.Helper()
		if err := os.RemoveAll(filepath.Join(dir, "data")); err != nil {
			t.Fatal(err)
		}
		o := purgeCrashOptions(dir)
		o.Keys = testKeys(t, dir)
		db, err := Open(o)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.EnsureTable(ctx, purgeCrashRef, purgeSchema, 0); err != nil {
			t.Fatal(err)
		}
		for d := range purgeCrashDays {
			commit(t, db, purgeCrashRef, purgeBatch(d*purgeCrashRows, purgeCrashRows, d, purgeCrashVictim))
			if err := db.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	fill()
	// The store partitions by the day of TimeGenerated; rowDay is that day
	// (as the store computes it) of row i, and victimsPerDay counts the
	// victims each store day holds after fill.
	rowDay := func(i int) int64 {
		d := i / purgeCrashRows
		return dayOf(TicksFromTime(baseTime.AddDate(0, 0, d)) + int64(i)*TicksPerSecond)
	}
	victimsPerDay := make(map[int64]int)
	for i := range purgeCrashDays * purgeCrashRows {
		if purgeCrashVictim(i % purgeCrashRows) {
			victimsPerDay[rowDay(i)]++
		}
	}

	// check opens the store and verifies the either-old-or-new property; it
	// returns how many store days still hold their victims.
	tmpGlob := filepath.Join(dir, "data", "workspaces", "*", "tables", "*", ".tmp-*")
	check := func(when string) int {
		t.Helper()
		o := purgeCrashOptions(dir)
		o.Keys = testKeys(t, dir)
		db, err := Open(o)
		if err != nil {
			t.Fatalf("%s: reopen: %v", when, err)
		}
		defer db.Close()
		tmps, _ := filepath.Glob(tmpGlob)
		if len(tmps) != 0 {
			t.Fatalf("%s: temporary files left after open: %v", when, tmps)
		}
		q, err := db.Querier(ctx, purgeCrashRef, AllTime)
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		it := q.Select(ctx, SelectHints{})
		defer it.Close()
		seen := make(map[int64]int, purgeCrashDays*purgeCrashRows)
		victims := make(map[int64]int, len(victimsPerDay))
		for it.Next() {
			b := it.Batch()
			nc, uc := b.Cols[b.Schema.Index("N")], b.Cols[b.Schema.Index("User")]
			for r := range b.Len {
				n := nc.Int[r]
				if uc.Str[r] == "victim" {
					victims[rowDay(int(n))]++
				}
				seen[n]++
			}
		}
		if err := it.Err(); err != nil {
			t.Fatalf("%s: query: %v", when, err)
		}
		for i := range purgeCrashDays * purgeCrashRows {
			want := 1
			if purgeCrashVictim(i%purgeCrashRows) && victims[rowDay(i)] == 0 {
				want = 0
			}
			if seen[int64(i)] != want {
				t.Fatalf("%s: row %d seen %d times; want %d (day victims %v)", when, i, seen[int64(i)], want, victims)
			}
		}
		left := 0
		for d, v := range victims {
			if v != victimsPerDay[d] {
				t.Fatalf("%s: day %d holds %d of its %d victims: a part was half purged", when, d, v, victimsPerDay[d])
			}
			left++
		}
		return left
	}

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	killed := 0
	// est is how long a whole purge took when one last ran to the end (the
	// child prints "done"); kills land at a random moment within it, so the
	// test interrupts rewrites on an idle machine as on a loaded one.
	est := 100 * time.Millisecond
	// partial counts rounds whose kill fell between two part replacements
	// (some days purged, others not): the states the test is for.
	partial := 0
	prevLeft := len(victimsPerDay)
	for round := 0; round < 6 || ((killed == 0 || partial == 0) && round < 30); round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestPurgeCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), purgeCrashEnv+"="+dir)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		started := make(chan struct{})
		done := make(chan []string)
		var startedAt, doneAt time.Time // written by the reader before done is sent
		go func() {
			var lines []string
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines = append(lines, sc.Text())
				if sc.Text() == "purging" {
					startedAt = time.Now()
					close(started)
				}
				if strings.HasPrefix(sc.Text(), "done") {
					doneAt = time.Now()
				}
			}
			done <- lines
		}()
		select {
		case <-started:
		case <-time.After(2 * time.Minute):
			_ = cmd.Process.Kill()
			t.Fatalf("round %d: the child did not start purging within 2 minutes: %q", round, <-done)
		}
		d := time.Duration(rng.Int64N(int64(est)))
		time.Sleep(d)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		var lines []string
		select {
		case lines = <-done:
		case <-time.After(time.Minute):
			t.Fatalf("round %d: the child's output did not end within a minute of SIGKILL", round)
		}
		_ = cmd.Wait()
		cut, _ := filepath.Glob(tmpGlob) // rewrites the kill cut short
		finished := false
		for _, l := range lines {
			if strings.HasPrefix(l, "error") {
				t.Fatalf("round %d: child: %s", round, l)
			}
			if strings.HasPrefix(l, "done") {
				finished = true
			}
		}
		left := check(fmt.Sprintf("round %d (killed after %v, finished %v)", round, d, finished))
		switch {
		case finished && !doneAt.IsZero() && !startedAt.IsZero():
			est = max(doneAt.Sub(startedAt), time.Millisecond)
		case finished:
		case left == prevLeft:
			// Killed before any part was replaced: on a loaded machine a
			// purge takes longer than the last estimate, so aim later.
			killed++
			est = est * 3 / 2
		default:
			killed++
			if left > 0 {
				partial++
			}
		}
		prevLeft = left
		t.Logf("round %d: killed %v after the purge started (finished before the kill: %v, %d part rewrites cut short); %d of %d days still hold victims",
			round, d, finished, len(cut), left, len(victimsPerDay))
		if left == 0 {
			fill() // nothing left to purge: start again from large parts
			prevLeft = len(victimsPerDay)
		}
	}
	if killed == 0 {
		t.Fatal("every purge finished before its kill: the test did not interrupt a rewrite")
	}
	if partial == 0 {
		t.Fatal("no kill fell between two part replacements: the test did not see a partly purged table")
	}
	// A purge that runs to the end removes every victim.
	o := purgeCrashOptions(dir)
	o.Keys = testKeys(t, dir)
	db, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Purge(ctx, purgeCrashRef, ColumnIn{Column: "User", Values: []string{"victim"}}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if left := check("after a complete purge"); left != 0 {
		t.Fatalf("after a complete purge %d days hold victims", left)
	}
}
