package workload

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"time"
)

// DefaultLinger is how long the ingestion reserve outlasts the last
// ingestion work when Options.Linger is zero.
const DefaultLinger = 200 * time.Millisecond

// Options configure a Pool. Zero fields take the defaults.
type Options struct {
	// Slots is the number of query worker slots: how many goroutines may do
	// query CPU work at once in the whole process. 0 means GOMAXPROCS.
	Slots int
	// IngestReserve is the number of slots withheld from queries while
	// ingestion is busy (between Ingest and its end, and Linger after): a
	// query then gets at most Slots-IngestReserve slots, never fewer than
	// one. 0 means none; it is capped at Slots-1.
	IngestReserve int
	// Linger is how long the reserve stays after the last ingestion work
	// ended, so that the short gaps between ingestion requests do not hand
	// the reserved cores to queries; 0 means DefaultLinger.
	Linger time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Pool is a set of query worker slots. It is safe for concurrent use. A nil
// *Pool is valid and bounds nothing: Do runs its function at once.
type Pool struct {
	slots   int
	reserve int
	linger  time.Duration
	now     func() time.Time

	mu          sync.Mutex
	inUse       int
	highWater   int
	queue       []chan struct{} // waiters, first come first served
	ingest      int             // ingestion works in flight
	ingestUntil time.Time       // the reserve lasts until then after the last one ended
	acquired    uint64          // slots handed out
	waited      uint64          // of which after waiting
	canceled    uint64          // waits given up because the context ended
	waitTotal   time.Duration   // time spent waiting, by all waiters
}

// New returns a pool.
func New(opts Options) *Pool {
	n := opts.Slots
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	r := min(max(opts.IngestReserve, 0), n-1)
	linger := opts.Linger
	if linger <= 0 {
		linger = DefaultLinger
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Pool{slots: n, reserve: r, linger: linger, now: now}
}

// Slots returns the number of slots (without the reserve).
func (p *Pool) Slots() int {
	if p == nil {
		return 0
	}
	return p.slots
}

// limitLocked is the number of slots queries may hold now.
func (p *Pool) limitLocked() int {
	if p.reserve > 0 && (p.ingest > 0 || p.now().Before(p.ingestUntil)) {
		return p.slots - p.reserve
	}
	return p.slots
}

// Do runs fn holding one slot, waiting for a free slot first. It returns the
// context's error, without running fn, when ctx ends before a slot is free.
// fn must not call Do (slots do not nest) nor block on other goroutines that
// may need a slot; the slot is released when fn returns or panics.
func (p *Pool) Do(ctx context.Context, fn func()) error {
	if p == nil {
		fn()
		return nil
	}
	if err := p.acquire(ctx); err != nil {
		return err
	}
	defer p.release()
	fn()
	return nil
}

func (p *Pool) acquire(ctx context.Context) error {
	p.mu.Lock()
	if len(p.queue) == 0 && p.inUse < p.limitLocked() {
		p.takeLocked()
		p.mu.Unlock()
		return nil
	}
	if err := ctx.Err(); err != nil {
		p.canceled++
		p.mu.Unlock()
		return err
	}
	ready := make(chan struct{})
	p.queue = append(p.queue, ready)
	p.mu.Unlock()

	start := p.now()
	select {
	case <-ready:
		p.mu.Lock()
		p.waited++
		p.waitTotal += p.now().Sub(start)
		p.mu.Unlock()
		return nil
	case <-ctx.Done():
	}
	p.mu.Lock()
	p.waitTotal += p.now().Sub(start)
	p.canceled++
	if i := slices.Index(p.queue, ready); i >= 0 {
		p.queue = slices.Delete(p.queue, i, i+1)
		p.mu.Unlock()
		return ctx.Err()
	}
	p.mu.Unlock()
	// The slot was granted as the context ended: hand it on.
	p.release()
	return ctx.Err()
}

// takeLocked counts one more slot in use.
func (p *Pool) takeLocked() {
	p.inUse++
	p.acquired++
	p.highWater = max(p.highWater, p.inUse)
}

func (p *Pool) release() {
	p.mu.Lock()
	p.inUse--
	p.grantLocked()
	p.mu.Unlock()
}

// grantLocked hands free slots to the waiters, first come first served.
func (p *Pool) grantLocked() {
	for len(p.queue) > 0 && p.inUse < p.limitLocked() {
		ready := p.queue[0]
		p.queue = slices.Delete(p.queue, 0, 1)
		p.takeLocked()
		close(ready)
	}
}

// Ingest marks ingestion work in flight (an ingestion request) until the
// returned function is called; while any is, and Options.Linger after,
// queries get Options.IngestReserve fewer slots. Call end exactly once.
func (p *Pool) Ingest() (end func()) {
	if p == nil || p.reserve == 0 {
		return func() {}
	}
	p.mu.Lock()
	p.ingest++
	p.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			p.ingest--
			p.ingestUntil = p.now().Add(p.linger)
			p.mu.Unlock()
		})
	}
}

// Stats is a snapshot of a pool's state and counters.
type Stats struct {
	Slots     int           // configured slots
	Limit     int           // slots queries may hold now (Slots less the reserve while ingestion is busy)
	InUse     int           // slots held now
	HighWater int           // most slots ever held at once
	Waiting   int           // goroutines waiting for a slot
	Acquired  uint64        // slots handed out
	Waited    uint64        // of which after waiting
	Canceled  uint64        // waits given up because the query's context ended
	WaitTotal time.Duration // time spent waiting, summed over waiters
}

// Stats returns the pool's state and counters.
func (p *Pool) Stats() Stats {
	if p == nil {
		return Stats{}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return Stats{
		Slots: p.slots, Limit: p.limitLocked(), InUse: p.inUse, HighWater: p.highWater, Waiting: len(p.queue),
		Acquired: p.acquired, Waited: p.waited, Canceled: p.canceled, WaitTotal: p.waitTotal,
	}
}

// WriteMetrics writes the pool's metrics in the Prometheus text exposition
// format (version 0.0.4).
func (p *Pool) WriteMetrics(w io.Writer) error {
	if p == nil {
		return nil
	}
	s := p.Stats()
	bw := bufio.NewWriter(w)
	metric := func(name, typ, help string, v any) {
		fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s %s\n%s %v\n", name, help, name, typ, name, v)
	}
	metric("custos_query_worker_slots", "gauge", "Query worker slots shared by all queries (query.maxWorkers).", s.Slots)
	metric("custos_query_worker_slots_limit", "gauge", "Slots queries may hold now: the slots less the ingestion reserve while ingestion is busy.", s.Limit)
	metric("custos_query_worker_slots_in_use", "gauge", "Query worker slots held now.", s.InUse)
	metric("custos_query_worker_slots_waiting", "gauge", "Query goroutines waiting for a worker slot.", s.Waiting)
	metric("custos_query_worker_slot_acquisitions_total", "counter", "Query worker slots handed out (one per decoded block or processed batch).", s.Acquired)
	metric("custos_query_worker_slot_waits_total", "counter", "Slot acquisitions that had to wait for a free slot.", s.Waited)
	metric("custos_query_worker_slot_wait_canceled_total", "counter", "Waits for a slot given up because the query ended (timeout or cancellation).", s.Canceled)
	metric("custos_query_worker_slot_wait_seconds_total", "counter", "Time query goroutines spent waiting for a worker slot, summed.", s.WaitTotal.Seconds())
	return bw.Flush()
}
