package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"custos/internal/crypt"
)

// walAppendResult is one concurrent append: its payload and outcome.
type walAppendResult struct {
	payload []byte
	seq     uint64
	err     error
}

// appendConcurrently runs workers × perWorker appends of distinct payloads
// of random sizes, each followed by sync.
func appendConcurrently(t *testing.T, w *wal, workers, perWorker int) []walAppendResult {
	t.Helper()
	res := make([]walAppendResult, workers*perWorker)
	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 7))
			for i := range perWorker {
				k := g*perWorker + i
				payload := bytes.Repeat([]byte{byte(k)}, 1+r.IntN(70_000))
				copy(payload, fmt.Sprintf("payload %d/", k))
				res[k].payload = payload
				seq, err := w.append(payload)
				if err == nil {
					err = w.sync(seq)
				}
				res[k].seq, res[k].err = seq, err
			}
		})
	}
	wg.Wait()
	return res
}

// readAllRecords parses every segment of w (old and current) in order.
func readAllRecords(t *testing.T, w *wal, keys *wsKeys) map[uint64][]byte {
	t.Helper()
	got := map[uint64][]byte{}
	var last uint64
	for _, s := range append(append([]*walSegment(nil), w.old...), w.cur) {
		_, _, err := readSegment(context.Background(), s.path, w.wsID, keys, func(seq uint64, payload []byte) error {
			if last != 0 && seq != last+1 {
				return fmt.Errorf("seq %d after %d", seq, last)
			}
			last = seq
			got[seq] = bytes.Clone(payload)
			return nil
		})
		if err != nil {
			t.Fatalf("read segment %s: %v", s.path, err)
		}
	}
	return got
}

func newTestWAL(t *testing.T, keys *wsKeys) *wal {
	t.Helper()
	var p atomic.Pointer[wsKeys]
	p.Store(keys)
	w := &wal{wsID: "ws", dir: t.TempDir(), keys: &p, next: 1}
	seg, err := w.createSegment(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	w.cur = seg
	t.Cleanup(func() { w.close() })
	return w
}

// TestWALParallelSeal: records appended concurrently are written in sequence
// order, each exactly once, with single and double encryption, and read back
// unchanged.
func TestWALParallelSeal(t *testing.T) {
	for _, double := range []bool{false, true} {
		t.Run(fmt.Sprintf("double=%v", double), func(t *testing.T) {
			k0, _ := crypt.GenerateKey("ws")
			keys := &wsKeys{service: k0}
			if double {
				keys.infra, _ = crypt.GenerateKey("ws-infra")
			}
			w := newTestWAL(t, keys)
			res := appendConcurrently(t, w, 8, 30)
			got := readAllRecords(t, w, keys)
			if len(got) != len(res) {
				t.Fatalf("%d records on disk, %d appended", len(got), len(res))
			}
			for _, r := range res {
				if r.err != nil {
					t.Fatalf("append: %v", r.err)
				}
				if !bytes.Equal(got[r.seq], r.payload) {
					t.Fatalf("record %d: payload differs (%d bytes on disk, %d appended)", r.seq, len(got[r.seq]), len(r.payload))
				}
			}
		})
	}
}

// TestWALParallelSealWriteFault: when the write of one record fails (rolled
// back, as for ENOSPC) under concurrent appends, numbering continues without a
// gap, every acknowledged record is on disk exactly once and no refused one is.
func TestWALParallelSealWriteFault(t *testing.T) {
	k0, _ := crypt.GenerateKey("ws")
	keys := &wsKeys{service: k0}
	w := newTestWAL(t, keys)
	var faults atomic.Int32
	w.writeFault = func(seq uint64) error {
		if seq%37 == 0 && faults.Add(1) <= 4 {
			return syscall.ENOSPC
		}
		return nil
	}
	res := appendConcurrently(t, w, 8, 40)
	got := readAllRecords(t, w, keys)
	acked, refused := 0, 0
	onDisk := map[string]bool{}
	for _, p := range got {
		onDisk[string(p)] = true
	}
	for _, r := range res {
		if r.err != nil {
			refused++
			if !errors.Is(r.err, syscall.ENOSPC) {
				t.Fatalf("refused append: %v; want an ENOSPC-wrapped error", r.err)
			}
			if onDisk[string(r.payload)] {
				t.Fatalf("refused record %q is on disk", r.payload[:16])
			}
			continue
		}
		acked++
		if !bytes.Equal(got[r.seq], r.payload) {
			t.Fatalf("acknowledged record %d: payload differs", r.seq)
		}
	}
	if refused == 0 || faults.Load() == 0 {
		t.Fatalf("no append was refused (%d faults injected)", faults.Load())
	}
	if acked != len(got) {
		t.Fatalf("%d records on disk, %d acknowledged", len(got), acked)
	}
	t.Logf("%d acknowledged, %d refused after %d injected write faults", acked, refused, min(faults.Load(), 4))
}

// TestAppendOwned: a batch handed over with AppendOwned gives the same rows
// as Append — strings with null slots (cleared), nulls of every type, a
// vector shared by two columns, more Appends after the adopted one — in the
// memtable, in parts and after a WAL replay.
func TestAppendOwned(t *testing.T) {
	env := newEnv(t)
	db := env.open(t, nil)
	ctx := context.Background()
	schema := append(append(Schema(nil), allTypesSchema...), Column{"S2", TypeString}, Column{"N", TypeLong})
	batch := func(lo, n int) *Batch {
		b := allTypesBatch(lo, n)
		b.Schema = schema
		s := b.Cols[schema.Index("S")]
		s.Nulls = make([]bool, n) // nulls in a string column, with text in the null slots
		for i := range n {
			if i%4 == 1 {
				s.Nulls[i] = true
			}
		}
		n2 := &Vector{Type: TypeLong, Nulls: make([]bool, n), Int: make([]int64, n, n+100)} // no true null, spare capacity
		b.Cols = append(b.Cols, s, n2)                                                      // S2 shares S's vector
		return b
	}
	refA := TableRef{WorkspaceID: testWS, Table: "Copied_CL"}
	refB := TableRef{WorkspaceID: testWS, Table: "Owned_CL"}
	for _, ref := range []TableRef{refA, refB} {
		if err := db.EnsureTable(ctx, ref, schema, 0); err != nil {
			t.Fatal(err)
		}
		a, err := db.Appender(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		app := a.Append
		if ref == refB {
			app = a.(OwnedAppender).AppendOwned
		}
		for _, b := range []*Batch{batch(0, 40), batch(40, 25)} {
			if err := app(b); err != nil {
				t.Fatal(err)
			}
		}
		if err := a.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	rows := func(ref TableRef) []string {
		got, _ := selectRows(t, db, ref, AllTime, SelectHints{})
		for i := range got {
			got[i] = strings.ReplaceAll(got[i], ref.Table, "T")
		}
		return got
	}
	want := rows(refA)
	if len(want) != 65 || !strings.Contains(want[1], `S=""`) {
		t.Fatalf("copied rows: %d, e.g. %s", len(want), want[1])
	}
	check := func(when string) {
		t.Helper()
		if got := rows(refB); !slices.Equal(got, want) {
			t.Fatalf("%s: owned rows differ:\n got %q\nwant %q", when, got[:2], want[:2])
		}
	}
	check("memtable")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = env.open(t, nil) // replays the WAL
	want = rows(refA)
	check("after WAL replay")
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	want = rows(refA)
	check("parts")
	db.Close()
}

// TestWALGroupCommitCoveredWaiter: a committer whose record the running fsync
// covers returns when that fsync ends, even if another committer's record
// (written after the fsync started) needs the next fsync and that one is
// slow. Before, waiters queued on a mutex held across the fsync, so a later
// committer could take it first and hold a covered one through a second
// fsync.
func TestWALGroupCommitCoveredWaiter(t *testing.T) {
	k0, _ := crypt.GenerateKey("ws")
	w := newTestWAL(t, &wsKeys{service: k0})
	var calls atomic.Int32
	started := make(chan int32, 4)
	release := []chan struct{}{make(chan struct{}), make(chan struct{})}
	w.fsync = func(f *os.File) error {
		n := calls.Add(1)
		started <- n
		if n <= 2 {
			<-release[n-1]
		}
		return f.Sync()
	}
	seq1, err := w.append([]byte("one"))
	if err != nil {
		t.Fatal(err)
	}
	seq2, err := w.append([]byte("two"))
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 3)
	go func() { errs <- w.sync(seq1) }() // leader: its fsync covers seq1 and seq2
	if n := <-started; n != 1 {
		t.Fatalf("fsync %d started first", n)
	}
	done2 := make(chan error, 1)
	go func() { done2 <- w.sync(seq2) }() // covered by the running fsync
	seq3, err := w.append([]byte("three"))
	if err != nil {
		t.Fatal(err)
	}
	done3 := make(chan error, 1)
	go func() { done3 <- w.sync(seq3) }() // needs the next fsync
	time.Sleep(50 * time.Millisecond)     // let both queue behind fsync 1
	close(release[0])
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done2:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a committer covered by the finished fsync still waits behind the next one")
	}
	if n := <-started; n != 2 {
		t.Fatalf("fsync %d started second", n)
	}
	select {
	case <-done3:
		t.Fatal("record 3 acknowledged before the fsync covering it ended")
	case <-time.After(20 * time.Millisecond):
	}
	close(release[1])
	if err := <-done3; err != nil {
		t.Fatal(err)
	}
	if got := w.synced.Load(); got != seq3 {
		t.Fatalf("synced %d, want %d", got, seq3)
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d fsyncs for three records in two groups, want 2", n)
	}
}

// TestWALRotateLazySegment: rotate creates the next segment without fsyncs
// (it runs under the exclusive gate that holds every commit up); the first
// commit in it syncs the header and directory entry. A crash before that
// commit may leave the new segment with a torn header: a restart removes it
// and loses nothing acknowledged. Records in rotated segments replay.
func TestWALRotateLazySegment(t *testing.T) {
	e := newEnv(t)
	db := e.open(t, nil)
	ctx := context.Background()
	if err := db.EnsureTable(ctx, crashRef, crashSchema, 0); err != nil {
		t.Fatal(err)
	}
	commit(t, db, crashRef, crashBatch(0, 10))
	ws, err := db.workspace(ctx, testWS, false)
	if err != nil {
		t.Fatal(err)
	}
	rotate := func() *walSegment {
		t.Helper()
		ws.gate.Lock()
		defer ws.gate.Unlock()
		if _, err := ws.wal.rotate(ctx); err != nil {
			t.Fatal(err)
		}
		return ws.wal.cur
	}
	seg := rotate()
	if !seg.dirSync {
		t.Fatal("rotate synced the new segment under the gate")
	}
	commit(t, db, crashRef, crashBatch(10, 10))
	if seg.dirSync {
		t.Fatal("the first commit in the new segment left its directory entry unsynced")
	}
	last := rotate()
	// A crash now: copy the directory as it is, and tear the new segment's
	// header as a power cut before any fsync of it could.
	crash := filepath.Join(t.TempDir(), "crash")
	copyTree(t, filepath.Join(e.dir, "data"), crash)
	rel, err := filepath.Rel(filepath.Join(e.dir, "data"), last.path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(crash, rel), 5); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2, err := Open(Options{Dir: crash, Keys: e.keys, DisableBackground: true, Now: func() time.Time { return e.now }})
	if err != nil {
		t.Fatalf("restart after a crash with a torn new segment: %v", err)
	}
	defer db2.Close()
	got := idsIn(t, db2)
	if len(got) != 20 {
		t.Fatalf("%d distinct rows after restart, want 20", len(got))
	}
	for id, n := range got {
		if n != 1 || id < 0 || id >= 20 {
			t.Fatalf("row %d stored %d times", id, n)
		}
	}
	commit(t, db2, crashRef, crashBatch(20, 5))
	if got := idsIn(t, db2); len(got) != 25 {
		t.Fatalf("%d rows after a commit on the restarted store, want 25", len(got))
	}
}
