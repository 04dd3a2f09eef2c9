package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"custos/internal/workload"
)

// slotsDB opens a DB whose Selects decode under pool, with small blocks so a
// Select has many tasks: parts plus memtable rows.
func slotsDB(t *testing.T, pool *workload.Pool, workers int) (*DB, TableRef) {
	t.Helper()
	env := newEnv(t)
	db := env.open(t, func(o *Options) {
		o.QuerySlots = pool
		o.QueryWorkers = workers
		o.BlockRows = 64
	})
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()
	ref := TableRef{WorkspaceID: testWS, Table: "Slots_CL"}
	if err := db.EnsureTable(ctx, ref, allTypesSchema, 0); err != nil {
		t.Fatal(err)
	}
	commit(t, db, ref, allTypesBatch(0, 1000))
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	commit(t, db, ref, allTypesBatch(1000, 200)) // memtable rows
	return db, ref
}

// TestSelectOneSlot: with one worker slot for the whole process, many
// concurrent Selects (each with 4 decoding goroutines) all complete with
// the right rows, and never more than one task is decoded at once.
func TestSelectOneSlot(t *testing.T) {
	for _, workers := range []int{1, 4} {
		pool := workload.New(workload.Options{Slots: 1})
		db, ref := slotsDB(t, pool, workers)
		want, _ := selectRows(t, db, ref, AllTime, SelectHints{})
		if len(want) != 1200 {
			t.Fatalf("workers=%d: %d rows, want 1200", workers, len(want))
		}
		tr := TimeRange{From: TicksFromTime(baseTime.Add(100 * time.Second)), To: TicksFromTime(baseTime.Add(1100 * time.Second))}
		wantTR, _ := selectRows(t, db, ref, tr, SelectHints{})
		var wg sync.WaitGroup
		errs := make(chan error, 32)
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, w := AllTime, len(want)
				if i%2 == 1 {
					r, w = tr, len(wantTR)
				}
				n, err := slotRows(db, ref, r)
				if err == nil && n != w {
					err = fmt.Errorf("%d rows, want %d", n, w)
				}
				if err != nil {
					errs <- err
				}
			}()
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Minute):
			t.Fatalf("workers=%d: concurrent Selects on a 1-slot pool did not finish (deadlock?): %+v", workers, pool.Stats())
		}
		close(errs)
		for err := range errs {
			t.Fatalf("workers=%d: %v", workers, err)
		}
		s := pool.Stats()
		if s.HighWater != 1 || s.InUse != 0 || s.Waiting != 0 {
			t.Fatalf("workers=%d: pool after: %+v", workers, s)
		}
		// 1000 part rows in 64-row blocks, the memtable segment(s): each
		// task of each of the 18 Selects took a slot.
		if s.Acquired < 18*16 {
			t.Fatalf("workers=%d: only %d slots acquired", workers, s.Acquired)
		}
	}
}

// TestSelectSlotWaitEndsWithContext: a Select whose tasks cannot get a slot
// (another holds the only one) ends with its context's error, in time.
func TestSelectSlotWaitEndsWithContext(t *testing.T) {
	for _, workers := range []int{1, 4} {
		pool := workload.New(workload.Options{Slots: 1})
		db, ref := slotsDB(t, pool, workers)
		hold, held := make(chan struct{}), make(chan struct{})
		go pool.Do(context.Background(), func() { close(held); <-hold })
		<-held

		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		q, err := db.Querier(ctx, ref, AllTime)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		it := q.Select(ctx, SelectHints{})
		n := 0
		for it.Next() {
			n++
		}
		err = it.Err()
		it.Close()
		q.Close()
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || n != 0 {
			t.Fatalf("workers=%d: %d batches, err %v; want none and the deadline error", workers, n, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("workers=%d: the Select took %v past a 50ms deadline", workers, d)
		}
		close(hold)
		for pool.Stats().InUse != 0 {
			time.Sleep(time.Millisecond)
		}
		if s := pool.Stats(); s.Waiting != 0 || s.Canceled == 0 {
			t.Fatalf("workers=%d: pool after: %+v", workers, s)
		}
		// The pool works on.
		if got, _ := selectRows(t, db, ref, AllTime, SelectHints{}); len(got) != 1200 {
			t.Fatalf("workers=%d: %d rows after the canceled Select", workers, len(got))
		}
	}
}

// slotRows counts the rows a Select of tr returns (safe off the test's
// goroutine: it reports errors instead of failing the test).
func slotRows(db *DB, ref TableRef, tr TimeRange) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return selectCount(ctx, db, ref, tr, SelectHints{})
}
