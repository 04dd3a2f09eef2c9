package store

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"custos/internal/crypt"
)

const crashEnv = "CUSTOS_STORE_CRASH_CHILD"

var crashRef = TableRef{WorkspaceID: testWS, Table: "Crash_CL"}

var crashSchema = Schema{{"Id", TypeLong}, {"Msg", TypeString}}

func crashBatch(base int64, n int) *Batch {
	b := &Batch{Schema: Schema{{"TimeGenerated", TypeDatetime}, {"Id", TypeLong}, {"Msg", TypeString}}, Len: n,
		Cols: []*Vector{{Type: TypeDatetime}, {Type: TypeLong}, {Type: TypeString}}}
	for i := range int64(n) {
		id := base + i
		// Spread rows over three days so commits touch several partitions.
		b.Cols[0].Int = append(b.Cols[0].Int, TicksFromTime(baseTime)+(id%3)*TicksPerDay+id%1000)
		b.Cols[1].Int = append(b.Cols[1].Int, id)
		b.Cols[2].Str = append(b.Cols[2].Str, fmt.Sprintf("message %d with some padding text to make rows realistic", id))
	}
	return b
}

// TestCrashChild is the child process of TestCrashSafety: it commits batches
// from several goroutines and prints each acknowledged batch, until killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("child process of TestCrashSafety")
	}
	round, _ := strconv.ParseInt(os.Getenv(crashEnv+"_ROUND"), 10, 64)
	keys, err := crypt.OpenPlatformKey(filepath.Join(dir, "platform.key"))
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	db, err := Open(Options{Dir: filepath.Join(dir, "data"), Keys: keys, MemtableBytes: 64 << 10,
		MaintenanceInterval: 5 * time.Millisecond, MaxPartsPerDay: 2, BlockRows: 1024})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	ctx := context.Background()
	if err := db.EnsureTable(ctx, crashRef, crashSchema, 0); err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for g := range int64(4) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := int64(0); ; c++ {
				base := round*1_000_000_000 + g*100_000_000 + c*100
				n := 1 + int(c%50)
				a, err := db.Appender(ctx, crashRef)
				if err == nil {
					err = a.Append(crashBatch(base, n))
				}
				if err == nil {
					err = a.Commit(ctx)
				}
				mu.Lock()
				if err != nil {
					fmt.Fprintln(out, "error", err)
				} else {
					fmt.Fprintln(out, "ack", base, n)
				}
				out.Flush()
				mu.Unlock()
				if err != nil {
					os.Exit(3)
				}
			}
		}()
	}
	wg.Wait()
}

func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	dir := t.TempDir()
	if _, err := crypt.OpenPlatformKey(filepath.Join(dir, "platform.key")); err != nil {
		t.Fatal(err)
	}
	acked := map[int64]bool{}
	rounds := 6
	for round := 1; round <= rounds; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnv+"="+dir, fmt.Sprintf("%s_ROUND=%d", crashEnv, round))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var lines []string
		done := make(chan struct{})
		firstAck := make(chan struct{})
		go func() {
			defer close(done)
			sc := bufio.NewScanner(stdout)
			acked := false
			for sc.Scan() {
				lines = append(lines, sc.Text())
				if !acked && strings.HasPrefix(sc.Text(), "ack") {
					acked = true
					close(firstAck)
				}
			}
		}()
		// Kill at a random moment after the child is up (its start-up and
		// replay may take seconds on a loaded machine or under -race).
		select {
		case <-firstAck:
		case <-done:
		case <-time.After(60 * time.Second):
		}
		time.Sleep(time.Duration(200+rand.IntN(600)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
		cmd.Wait()
		n := 0
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) == 3 && f[0] == "ack" {
				base, _ := strconv.ParseInt(f[1], 10, 64)
				k, _ := strconv.Atoi(f[2])
				for i := range int64(k) {
					acked[base+i] = true
				}
				n++
			} else if len(f) > 0 && f[0] == "error" {
				t.Fatalf("round %d: child: %s", round, l)
			} else if strings.HasPrefix(l, "ok") || strings.HasPrefix(l, "PASS") || strings.HasPrefix(l, "FAIL") {
				t.Fatalf("round %d: child exited before it was killed: %v", round, lines[max(0, len(lines)-5):])
			}
		}
		if n == 0 {
			t.Fatalf("round %d: child acknowledged nothing; output %q", round, lines)
		}

		// Reopen in this process and check every acknowledged row is there exactly once.
		keys := testKeys(t, dir)
		db, err := Open(Options{Dir: filepath.Join(dir, "data"), Keys: keys, DisableBackground: true})
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		seen := countIDs(t, db)
		for id := range acked {
			if seen[id] != 1 {
				t.Fatalf("round %d: acknowledged row %d seen %d times", round, id, seen[id])
			}
		}
		for id, c := range seen {
			if c != 1 {
				t.Fatalf("round %d: row %d seen %d times", round, id, c)
			}
		}
		t.Logf("round %d: %d commits acknowledged, %d rows acked in total, %d rows present", round, n, len(acked), len(seen))
		if round%2 == 0 { // sometimes the parent's clean close flushes; sometimes the child replays
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
		} else {
			db.closeWorkspaces()
			db.closeResources()
		}
	}
}

func countIDs(t testing.TB, db *DB) map[int64]int {
	t.Helper()
	ctx := context.Background()
	q, err := db.Querier(ctx, crashRef, AllTime)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	it := q.Select(ctx, SelectHints{Columns: []string{"Id"}})
	defer it.Close()
	seen := map[int64]int{}
	for it.Next() {
		for _, id := range it.Batch().Cols[0].Int {
			seen[id]++
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return seen
}
