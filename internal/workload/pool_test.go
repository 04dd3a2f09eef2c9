package workload

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestBound runs many goroutines through a pool of n slots and checks that
// no more than n ran at once and every one ran.
func TestBound(t *testing.T) {
	for _, n := range []int{1, 2, 3} {
		p := New(Options{Slots: n})
		var cur, peak, ran atomic.Int64
		var wg sync.WaitGroup
		for range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 20 {
					err := p.Do(context.Background(), func() {
						c := cur.Add(1)
						for {
							pk := peak.Load()
							if c <= pk || peak.CompareAndSwap(pk, c) {
								break
							}
						}
						time.Sleep(10 * time.Microsecond)
						cur.Add(-1)
						ran.Add(1)
					})
					if err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		if ran.Load() != 64*20 {
			t.Fatalf("n=%d: ran %d, want %d", n, ran.Load(), 64*20)
		}
		s := p.Stats()
		if peak.Load() > int64(n) || s.HighWater > n {
			t.Fatalf("n=%d: %d ran at once (high water %d)", n, peak.Load(), s.HighWater)
		}
		if s.InUse != 0 || s.Waiting != 0 || s.Acquired != 64*20 {
			t.Fatalf("n=%d: after: %+v", n, s)
		}
		if n < 64 && s.Waited == 0 {
			t.Fatalf("n=%d: nobody waited: %+v", n, s)
		}
	}
}

// TestCancelWhileWaiting: a waiter whose context ends gets its error and
// leaves the queue; the slot goes to the next waiter when it frees.
func TestCancelWhileWaiting(t *testing.T) {
	p := New(Options{Slots: 1})
	hold := make(chan struct{})
	held := make(chan struct{})
	go p.Do(context.Background(), func() { close(held); <-hold })
	<-held

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	ran := false
	start := time.Now()
	err := p.Do(ctx, func() { ran = true })
	if !errors.Is(err, context.DeadlineExceeded) || ran {
		t.Fatalf("Do = %v, ran %v; want the deadline error and fn not run", err, ran)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("waited %v past a 20ms deadline", d)
	}
	s := p.Stats()
	if s.Waiting != 0 || s.Canceled != 1 || s.WaitTotal <= 0 {
		t.Fatalf("after the canceled wait: %+v", s)
	}
	// A second waiter gets the slot once it is released.
	got := make(chan error)
	go func() { got <- p.Do(context.Background(), func() {}) }()
	for p.Stats().Waiting != 1 {
		time.Sleep(time.Millisecond)
	}
	close(hold)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.InUse != 0 {
		t.Fatalf("slot leaked: %+v", s)
	}
	// An ended context with a free slot still runs: the caller checks its
	// context itself.
	done, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if err := p.Do(done, func() { ran = true }); err != nil || !ran {
		t.Fatalf("Do with a free slot = %v, ran %v", err, ran)
	}
}

// TestCancelRace cancels many waiters while slots are released, so some
// are granted a slot as their context ends; no slot may leak.
func TestCancelRace(t *testing.T) {
	p := New(Options{Slots: 2})
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%7)*50*time.Microsecond)
			defer cancel()
			_ = p.Do(ctx, func() { time.Sleep(20 * time.Microsecond) })
		}()
	}
	wg.Wait()
	s := p.Stats()
	if s.InUse != 0 || s.Waiting != 0 || s.HighWater > 2 {
		t.Fatalf("after: %+v", s)
	}
	if err := p.Do(context.Background(), func() {}); err != nil {
		t.Fatal(err)
	}
}

func TestPanicReleases(t *testing.T) {
	p := New(Options{Slots: 1})
	func() {
		defer func() { _ = recover() }()
		_ = p.Do(context.Background(), func() { panic("boom") })
	}()
	if s := p.Stats(); s.InUse != 0 {
		t.Fatalf("slot leaked by a panic: %+v", s)
	}
}

func TestNilPool(t *testing.T) {
	var p *Pool
	ran := false
	if err := p.Do(context.Background(), func() { ran = true }); err != nil || !ran {
		t.Fatalf("nil pool: %v %v", err, ran)
	}
	p.Ingest()()
	if p.Stats() != (Stats{}) || p.WriteMetrics(&bytes.Buffer{}) != nil {
		t.Fatal("nil pool stats or metrics")
	}
}

// TestIngestReserve: while ingestion is busy (and Linger after), queries get
// Slots-IngestReserve slots; then all of them again.
func TestIngestReserve(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	p := New(Options{Slots: 3, IngestReserve: 1, Linger: time.Second, Now: clock})
	if s := p.Stats(); s.Limit != 3 {
		t.Fatalf("idle limit %d", s.Limit)
	}
	end := p.Ingest()
	if s := p.Stats(); s.Limit != 2 {
		t.Fatalf("busy limit %d, want 2", s.Limit)
	}
	// Two slots held; a third query goroutine waits.
	hold := make(chan struct{})
	var holding sync.WaitGroup
	for range 2 {
		holding.Add(1)
		go p.Do(context.Background(), func() { holding.Done(); <-hold })
	}
	holding.Wait()
	third := make(chan struct{})
	go p.Do(context.Background(), func() { close(third) })
	for p.Stats().Waiting != 1 {
		time.Sleep(time.Millisecond)
	}
	end()
	end() // idempotent
	advance(500 * time.Millisecond)
	if s := p.Stats(); s.Limit != 2 {
		t.Fatalf("limit %d within the linger, want 2", s.Limit)
	}
	advance(time.Second)
	if s := p.Stats(); s.Limit != 3 || s.Waiting != 1 {
		t.Fatalf("after the linger: %+v", s)
	}
	// The waiter is granted at the next release.
	close(hold)
	<-third
	for p.Stats().InUse != 0 {
		time.Sleep(time.Millisecond)
	}
	if s := p.Stats(); s.HighWater != 2 {
		t.Fatalf("after: %+v", s)
	}
	// The reserve never takes the last slot.
	one := New(Options{Slots: 1, IngestReserve: 1})
	defer one.Ingest()()
	if s := one.Stats(); s.Limit != 1 {
		t.Fatalf("1-slot pool limit %d while ingesting", s.Limit)
	}
}

func TestMetrics(t *testing.T) {
	p := New(Options{Slots: 2})
	_ = p.Do(context.Background(), func() {})
	var b bytes.Buffer
	if err := p.WriteMetrics(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"custos_query_worker_slots 2\n", "custos_query_worker_slots_in_use 0\n", "custos_query_worker_slots_waiting 0\n",
		"custos_query_worker_slot_acquisitions_total 1\n", "custos_query_worker_slot_wait_seconds_total 0\n",
		"# TYPE custos_query_worker_slot_wait_seconds_total counter\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, b.String())
		}
	}
}
