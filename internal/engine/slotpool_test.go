package engine

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"custos/internal/kql"
	"custos/internal/store"
)

// TestIDBatchMatchesID checks that batched lookups assign the same IDs as
// one-by-one lookups, across growth, with pooled slot arrays and with
// colliding hashes.
func TestIDBatchMatchesID(t *testing.T) {
	for _, mask := range []uint64{^uint64(0), 0xff << 56} {
		pool := newSlotPool(64 << 20)
		for round := range 3 { // later rounds reuse pooled arrays
			a, b := newStrTable(), newStrTable()
			a.hashMask, b.hashMask = mask, mask
			b.pool = pool
			var keys []string
			for i := range 70_000 {
				k := "u" + strconv.Itoa((i*7919)%50_000) // repeats
				if i%3 == 0 {
					k += "-a-key-longer-than-fifteen-bytes"
				}
				keys = append(keys, k)
			}
			var want []uint32
			for _, k := range keys {
				want = append(want, a.id(k))
			}
			got := b.idBatch(keys, nil)
			if !slices.Equal(got, want) {
				t.Fatalf("mask %x round %d: idBatch IDs differ from id", mask, round)
			}
			for i, k := range keys {
				if b.find(k) != int32(want[i]) || b.key(want[i]) != k {
					t.Fatalf("mask %x round %d: key %q lost", mask, round, k)
				}
			}
			b.release()
		}
		if pool.bytes == 0 || pool.bytes > pool.maxBytes {
			t.Fatalf("pool holds %d bytes (max %d)", pool.bytes, pool.maxBytes)
		}
	}
}

// TestSlotPoolLimit checks that the pool never holds more than its limit,
// prefers large arrays and hands out cleared arrays.
func TestSlotPoolLimit(t *testing.T) {
	small := slotsBytes(1 << minPooledBits)
	p := newSlotPool(2 * small)
	for range 3 {
		s := p.get(minPooledBits)
		s[5].meta = 42
		p.put(s)
	}
	if p.bytes != small {
		t.Fatalf("pool holds %d bytes, want %d (one array reused)", p.bytes, small)
	}
	if s := p.get(minPooledBits); s[5].meta != 0 {
		t.Fatal("pooled array not cleared")
	}
	p.put(make([]strSlot, 1<<minPooledBits))
	p.put(make([]strSlot, 2<<minPooledBits)) // evicts the small one
	if p.bytes != 2*small || len(p.free[minPooledBits]) != 0 {
		t.Fatalf("pool holds %d bytes, %d small arrays", p.bytes, len(p.free[minPooledBits]))
	}
	p.put(make([]strSlot, 4<<minPooledBits)) // too large even after eviction
	if p.bytes > p.maxBytes {
		t.Fatalf("pool holds %d bytes past its limit %d", p.bytes, p.maxBytes)
	}
	p.put(make([]strSlot, 100)) // not a pooled size
	var nilPool *slotPool
	if len(nilPool.get(minPooledBits)) != 1<<minPooledBits {
		t.Fatal("nil pool get")
	}
	nilPool.put(make([]strSlot, 1<<minPooledBits))
}

// TestCodeIDsOrder checks that dictionary-encoded vectors get the group IDs
// of their strings in first-seen row order, that a reused dictionary buffer
// is not trusted across vectors, and that a code outside the dictionary
// falls back to the strings.
func TestCodeIDsOrder(t *testing.T) {
	mk := func(dict []string, codes []uint32) *store.Vector {
		v := &store.Vector{Type: store.TypeString, Dict: dict, Codes: codes}
		for _, c := range codes {
			if int(c) < len(dict) {
				v.Str = append(v.Str, dict[c])
			} else {
				v.Str = append(v.Str, "broken")
			}
		}
		return v
	}
	d := newColDict(store.TypeString)
	got := d.ids(mk([]string{"a", "b", "c"}, []uint32{2, 2, 0, 1, 0}), 5, nil)
	got = d.ids(mk([]string{"b", "d"}, []uint32{1, 0, 1}), 3, got)
	got = d.ids(mk([]string{"d", "e"}, []uint32{1, 5, 0}), 3, got)
	want := []uint32{0, 0, 1, 2, 1, 3, 2, 3, 4, 5, 3}
	if !slices.Equal(got, want) {
		t.Fatalf("ids %v, want %v", got, want)
	}
	if k := d.vector().Str; !slices.Equal(k, []string{"c", "a", "b", "d", "e", "broken"}) {
		t.Fatalf("keys %v", k)
	}
}

// TestConcurrentPooledGroupBy runs group-bys over a high-cardinality key at
// the same time on one Engine, so their tables take and return the pool's
// arrays concurrently, and checks every answer.
func TestConcurrentPooledGroupBy(t *testing.T) {
	data := makeZipfUserBatches(150_000)
	distinct := map[string]bool{}
	for _, b := range data {
		for _, s := range b.Col("UserId").Str {
			distinct[s] = true
		}
	}
	e := New(Options{Parallelism: 2})
	const query = "Logs | summarize count() by UserId | summarize Groups=count(), Rows=sum(count_)"
	run := func() (int64, int64, error) {
		plan, err := kql.Compile(query, kql.MapCatalog{"Logs": benchSchema}, kql.BindOptions{})
		if err != nil {
			return 0, 0, err
		}
		req := &Request{Query: query, Now: time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)}
		x := e.newExecutor(req, store.TicksFromTime(req.Now))
		x.inline = map[string][]*store.Batch{"Logs": data}
		res, err := x.execute(context.Background(), plan)
		if err != nil {
			return 0, 0, err
		}
		b := res.Tables[0].Batches[0]
		return b.Cols[0].Int[0], b.Cols[1].Int[0], nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				g, r, err := run()
				if err == nil && (g != int64(len(distinct)) || r != 150_000) {
					err = fmt.Errorf("%d groups of %d rows, want %d of 150000", g, r, len(distinct))
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if e.slots.bytes == 0 {
		t.Fatal("no slot array was returned to the pool")
	}
}

// TestSlotPoolMapped checks the arrays mapped outside the heap: they come
// back zeroed, are reused, and are unmapped (and forgotten) when the pool
// drops them.
func TestSlotPoolMapped(t *testing.T) {
	one := slotsBytes(1 << minMappedBits)
	p := newSlotPool(one)
	a := p.get(minMappedBits)
	for i := range a {
		if a[i] != (strSlot{}) {
			t.Fatalf("fresh array: slot %d not empty", i)
		}
	}
	a[len(a)-1].meta = 7
	p.put(a)
	b := p.get(minMappedBits)
	if &b[0] != &a[0] || b[len(b)-1].meta != 0 {
		t.Fatal("pooled mapped array not reused or not cleared")
	}
	c := p.get(minMappedBits) // the pool is empty: a second mapping
	p.put(b)
	p.put(c) // no room: unmapped
	if p.bytes != one || len(p.mapped) > 1 {
		t.Fatalf("pool holds %d bytes and %d mapped arrays; want %d and at most 1", p.bytes, len(p.mapped), one)
	}
	p.put(make([]strSlot, 2<<minMappedBits)) // evicts b: unmapped too
	if len(p.mapped) != 0 {
		t.Fatalf("%d mapped arrays left after eviction", len(p.mapped))
	}
}
