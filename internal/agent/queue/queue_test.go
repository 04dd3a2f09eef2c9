package queue

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func openT(t *testing.T, dir string, max, seg int64) *Queue {
	t.Helper()
	q, err := Open(Options{Dir: dir, MaxBytes: max, SegmentBytes: seg})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

func next(t *testing.T, q *Queue) Entry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	e, err := q.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return e
}

func TestFIFOAckAndReopen(t *testing.T) {
	dir := t.TempDir()
	q := openT(t, dir, 1<<20, 64<<10)
	for i := range 300 {
		if err := q.Append(fmt.Appendf(nil, "entry-%04d-%s", i, strings.Repeat("x", 500))); err != nil {
			t.Fatal(err)
		}
	}
	if st := q.Stats(); st.Entries != 300 {
		t.Fatalf("entries = %d; want 300", st.Entries)
	}
	for i := range 100 {
		e := next(t, q)
		again := next(t, q)
		if string(e.Payload) != string(again.Payload) {
			t.Fatal("Next without Ack returned a different entry")
		}
		if want := fmt.Sprintf("entry-%04d-", i); !strings.HasPrefix(string(e.Payload), want) {
			t.Fatalf("got %q; want prefix %q", e.Payload[:12], want)
		}
		if err := q.Ack(e); err != nil {
			t.Fatal(err)
		}
		if err := q.Ack(e); !errors.Is(err, ErrNotHead) {
			t.Fatalf("double ack: got %v; want ErrNotHead", err)
		}
	}
	q.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) < 2 {
		t.Fatalf("expected several segments, got %d", len(segs))
	}

	q2 := openT(t, dir, 1<<20, 64<<10)
	if st := q2.Stats(); st.Entries != 200 {
		t.Fatalf("after reopen entries = %d; want 200", st.Entries)
	}
	for i := 100; i < 300; i++ {
		e := next(t, q2)
		if want := fmt.Sprintf("entry-%04d-", i); !strings.HasPrefix(string(e.Payload), want) {
			t.Fatalf("got %q; want prefix %q", e.Payload[:12], want)
		}
		if err := q2.Ack(e); err != nil {
			t.Fatal(err)
		}
	}
	if st := q2.Stats(); st.Entries != 0 {
		t.Fatalf("entries = %d; want 0", st.Entries)
	}
	segs, _ = filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) != 1 {
		t.Fatalf("consumed segments not deleted: %d left", len(segs))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := q2.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next on empty queue: %v", err)
	}
}

func TestNextWakesOnAppend(t *testing.T) {
	q := openT(t, t.TempDir(), 0, 0)
	done := make(chan Entry)
	go func() {
		e, err := q.Next(context.Background())
		if err == nil {
			done <- e
		}
		close(done)
	}()
	time.Sleep(20 * time.Millisecond)
	if err := q.Append([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-done:
		if string(e.Payload) != "hello" {
			t.Fatalf("got %q", e.Payload)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Next did not wake up")
	}
}

func TestTornTailIsCut(t *testing.T) {
	dir := t.TempDir()
	q := openT(t, dir, 0, 0)
	for i := range 5 {
		if err := q.Append(fmt.Appendf(nil, "e%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	q.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	f, err := os.OpenFile(segs[len(segs)-1], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{100, 0, 0, 0, 1, 2, 3, 4, 'p', 'a'}) // header promising 100 bytes, 2 present
	f.Close()

	q2 := openT(t, dir, 0, 0)
	if st := q2.Stats(); st.Entries != 5 {
		t.Fatalf("entries = %d; want 5", st.Entries)
	}
	if err := q2.Append([]byte("after")); err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 6 {
		e := next(t, q2)
		got = append(got, string(e.Payload))
		q2.Ack(e)
	}
	if strings.Join(got, ",") != "e0,e1,e2,e3,e4,after" {
		t.Fatalf("got %v", got)
	}

	// A corrupt checksum in the last entry is cut as well.
	q2.Close()
	if err := os.WriteFile(filepath.Join(dir, "cursor"), []byte(`{"segment":0,"offset":0}`), 0o600); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(segs[len(segs)-1])
	b[len(b)-1] ^= 0xff
	os.WriteFile(segs[len(segs)-1], b, 0o600)
	q3 := openT(t, dir, 0, 0)
	if st := q3.Stats(); st.Entries != 5 {
		t.Fatalf("entries after corrupt tail = %d; want 5", st.Entries)
	}
}

func TestFullQueueDropsOldestAndCounts(t *testing.T) {
	dir := t.TempDir()
	q := openT(t, dir, 256<<10, 64<<10) // 4 segments of 64 KiB
	payload := strings.Repeat("y", 1000)
	for i := range 1000 {
		if err := q.Append(fmt.Appendf(nil, "%06d%s", i, payload)); err != nil {
			t.Fatal(err)
		}
	}
	st := q.Stats()
	if st.Bytes > 256<<10 {
		t.Fatalf("queue holds %d bytes; cap is %d", st.Bytes, 256<<10)
	}
	if st.Dropped == 0 || int(st.Dropped)+st.Entries != 1000 {
		t.Fatalf("dropped %d + entries %d != 1000", st.Dropped, st.Entries)
	}
	// The head is the oldest surviving entry, and the rest follow in order.
	e := next(t, q)
	first, _ := strconv.Atoi(string(e.Payload[:6]))
	if first != int(st.Dropped) {
		t.Fatalf("head is entry %d; want %d", first, st.Dropped)
	}
	q.Close()
	q2 := openT(t, dir, 256<<10, 64<<10)
	if got := q2.Stats(); got.Dropped != st.Dropped {
		t.Fatalf("dropped count not persisted: %d; want %d", got.Dropped, st.Dropped)
	}
	if err := q2.Append(make([]byte, 200<<10)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized append: %v", err)
	}
}

// TestCrashKeepsAppendedEntries re-executes the test binary as a child that
// appends entries and acknowledges some of them, printing each Append and Ack
// once it has returned; the child is killed with SIGKILL mid-stream. Every
// entry the child reported as appended and not acknowledged must be in the
// queue, in order, and nothing acknowledged may come back.
func TestCrashKeepsAppendedEntries(t *testing.T) {
	if os.Getenv("QUEUE_CRASH_CHILD") != "" {
		crashChild(os.Getenv("QUEUE_CRASH_CHILD"))
		return
	}
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	dir := t.TempDir()
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashKeepsAppendedEntries$")
		cmd.Env = append(os.Environ(), "QUEUE_CRASH_CHILD="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		appended := map[string]bool{}
		acked := map[string]bool{}
		var order []string
		sc := bufio.NewScanner(out)
		// The kill timer starts at the child's first append, so that a slow
		// start on a loaded machine does not kill it before it did anything.
		var deadline <-chan time.Time
		armed := false
		lines := make(chan string)
		go func() {
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
	read:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					break read
				}
				if !armed {
					armed = true
					deadline = time.After(time.Duration(100+100*round) * time.Millisecond)
				}
				kind, id, _ := strings.Cut(l, " ")
				switch kind {
				case "A":
					appended[id] = true
					order = append(order, id)
				case "K":
					acked[id] = true
				}
			case <-deadline:
				cmd.Process.Signal(syscall.SIGKILL)
				deadline = nil
			}
		}
		cmd.Wait()
		if len(appended) == 0 {
			t.Fatalf("round %d: child appended nothing", round)
		}

		q := openT(t, dir, 0, 64<<10)
		present := map[string]bool{}
		var got []string
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			e, err := q.Next(ctx)
			cancel()
			if err != nil {
				break
			}
			id := string(e.Payload[:strings.IndexByte(string(e.Payload), ' ')])
			present[id] = true
			got = append(got, id)
			if err := q.Ack(e); err != nil {
				t.Fatal(err)
			}
		}
		q.Close()
		// The child acknowledges from the head, so what is gone must be a
		// prefix of what it appended; at most one entry of that prefix may
		// have been acknowledged without the child living to report it.
		k := len(order)
		for i, id := range order {
			if present[id] {
				k = i
				break
			}
		}
		unreported := 0
		for _, id := range order[:k] {
			if !acked[id] {
				unreported++
			}
		}
		if unreported > 1 {
			t.Fatalf("round %d: %d appended entries before the head are lost", round, unreported)
		}
		for _, id := range order[k:] {
			if !present[id] {
				t.Fatalf("round %d: entry %s was appended, not acknowledged, and is lost", round, id)
			}
		}
		for id := range present {
			if acked[id] {
				t.Fatalf("round %d: acknowledged entry %s came back", round, id)
			}
		}
		for i := 1; i < len(got); i++ {
			a, _ := strconv.Atoi(strings.Split(got[i-1], "-")[1])
			b, _ := strconv.Atoi(strings.Split(got[i], "-")[1])
			if b <= a {
				t.Fatalf("round %d: order broken: %s after %s", round, got[i], got[i-1])
			}
		}
		t.Logf("round %d: %d appended, %d acked by the child, %d recovered", round, len(appended), len(acked), len(got))
	}
}

func crashChild(dir string) {
	q, err := Open(Options{Dir: dir, SegmentBytes: 64 << 10})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	w := bufio.NewWriter(os.Stdout)
	pid := os.Getpid()
	for i := 0; ; i++ {
		id := fmt.Sprintf("%d-%d", pid, i)
		if err := q.Append(fmt.Appendf(nil, "%s %s", id, strings.Repeat("z", 2000))); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Fprintf(w, "A %s\n", id)
		w.Flush()
		if i%3 == 0 {
			e, err := q.Next(context.Background())
			if err != nil {
				os.Exit(2)
			}
			if err := q.Ack(e); err != nil {
				os.Exit(2)
			}
			fmt.Fprintf(w, "K %s\n", string(e.Payload[:strings.IndexByte(string(e.Payload), ' ')]))
			w.Flush()
		}
	}
}
