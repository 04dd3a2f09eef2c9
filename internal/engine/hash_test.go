package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"custos/internal/kql"
	"custos/internal/store"
)

// collisionMasks are the hash masks the tests run with: the real hash, a few
// bits (many keys share a slot cluster and a tag), and none at all (every
// key collides with every other).
var collisionMasks = []struct {
	name string
	mask uint64
}{{"hash", ^uint64(0)}, {"4bits", 0xf000_0000_0000_0000}, {"allcollide", 0}}

func TestStrTableMatchesMap(t *testing.T) {
	for _, cm := range collisionMasks {
		t.Run(cm.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			n := 20000
			if cm.mask == 0 {
				n = 1500 // every lookup walks the whole cluster
			}
			tab := newStrTable()
			tab.hashMask = cm.mask
			ref := map[string]uint32{}
			var order []string
			for range n {
				var s string
				switch r.IntN(10) {
				case 0:
					s = ""
				case 1:
					s = "\x00"
				case 2:
					// Longer than the 15 bytes a slot holds inline, sharing them.
					s = "a-shared-prefix" + strconv.Itoa(r.IntN(n/4))
				case 3:
					// Lengths 14 to 16, and trailing zero bytes.
					s = strings.Repeat("\x00", r.IntN(3)) + strings.Repeat("z", 14+r.IntN(3)) + strings.Repeat("\x00", r.IntN(3))
				default:
					s = "k" + strconv.Itoa(r.IntN(n/2))
				}
				want, ok := ref[s]
				if !ok {
					want = uint32(len(order))
					ref[s] = want
					order = append(order, s)
				}
				if got := tab.id(s); got != want {
					t.Fatalf("id(%q) = %d; want %d", s, got, want)
				}
			}
			if !reflect.DeepEqual(tab.keys(), order) {
				t.Fatal("keys are not in first-seen order")
			}
			for s, want := range ref {
				if got := tab.find(s); got != int32(want) {
					t.Fatalf("find(%q) = %d; want %d", s, got, want)
				}
			}
			if got := tab.find("absent"); got != -1 {
				t.Fatalf("find(absent) = %d; want -1", got)
			}
		})
	}
}

func TestIntTableMatchesMap(t *testing.T) {
	for _, cm := range collisionMasks {
		t.Run(cm.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, 4))
			n := 20000
			if cm.mask == 0 {
				n = 1500
			}
			tab := newIntTable()
			tab.hashMask = cm.mask
			ref := map[uint64]uint32{}
			for range n {
				k := uint64(r.IntN(n / 2))
				switch r.IntN(8) {
				case 0:
					k = 0
				case 1:
					k = math.MaxUint64
				}
				want, ok := ref[k]
				if !ok {
					want = uint32(len(ref))
					ref[k] = want
				}
				if got := tab.id(k); got != want {
					t.Fatalf("id(%d) = %d; want %d", k, got, want)
				}
			}
			for k, want := range ref {
				if got := tab.find(k); got != int32(want) {
					t.Fatalf("find(%d) = %d; want %d", k, got, want)
				}
			}
			if got := tab.find(12345678901); got != -1 {
				t.Fatalf("find(absent) = %d; want -1", got)
			}
		})
	}
}

// forceCollisions narrows the hashes of every table of an empty group table.
func forceCollisions(g *groupTable, mask uint64) {
	for _, d := range g.dicts {
		if d.strs != nil {
			d.strs.hashMask = mask
		} else {
			d.ints.hashMask = mask
		}
	}
	if g.pairs != nil {
		g.pairs.hashMask = mask
	}
}

// refKey is the simple path's key of row i: each column's null flag and
// normalized value, as text.
func refKey(cols []*store.Vector, i int) string {
	var b []byte
	for _, c := range cols {
		if c.IsNull(i) {
			b = append(b, "null|"...)
			continue
		}
		switch {
		case c.Type == store.TypeBool:
			b = strconv.AppendBool(b, c.Bool[i])
		case kql.IsIntHeld(c.Type):
			b = strconv.AppendInt(b, c.Int[i], 10)
		case kql.IsRealHeld(c.Type):
			f := c.Real[i]
			switch {
			case math.IsNaN(f):
				b = append(b, "NaN"...)
			case f == 0:
				b = append(b, '0')
			default:
				b = strconv.AppendUint(b, math.Float64bits(f), 16)
			}
		default:
			b = strconv.AppendQuote(b, c.Str[i])
		}
		b = append(b, '|')
	}
	return string(b)
}

// randomKeyBatch makes n rows of the given key types with few distinct
// values, nulls (non-strings), empty strings, NaN and -0.
func randomKeyBatch(r *rand.Rand, types []store.ColumnType, n, distinct int) []*store.Vector {
	out := make([]*store.Vector, len(types))
	for j, ty := range types {
		v := newVector(ty, n)
		if !kql.IsStringLike(ty) {
			v.Nulls = make([]bool, n)
		}
		for i := range n {
			k := r.IntN(distinct)
			if v.Nulls != nil && k == 0 {
				v.Nulls[i] = true
				continue
			}
			switch {
			case ty == store.TypeBool:
				v.Bool[i] = k%2 == 0
			case kql.IsIntHeld(ty):
				v.Int[i] = int64(k) - int64(distinct/2)
			case kql.IsRealHeld(ty):
				switch k {
				case 1:
					v.Real[i] = math.NaN()
				case 2:
					v.Real[i] = math.Copysign(0, -1)
				case 3:
					v.Real[i] = 0
				default:
					v.Real[i] = float64(k) / 4
				}
			default:
				if k == 1 {
					v.Str[i] = ""
				} else {
					v.Str[i] = fmt.Sprintf("v%d", k)
				}
			}
		}
		out[j] = v
	}
	return out
}

// TestGroupTableMatchesSimplePath feeds random keys of one, two and three
// columns through the group table, in several batches and with forced hash
// collisions, and checks the group IDs and key values against a map keyed
// by each row's values.
func TestGroupTableMatchesSimplePath(t *testing.T) {
	typeSets := [][]store.ColumnType{
		{store.TypeString},
		{store.TypeLong},
		{store.TypeReal},
		{store.TypeBool},
		{store.TypeString, store.TypeLong},
		{store.TypeDatetime, store.TypeString},
		{store.TypeString, store.TypeReal, store.TypeInt},
	}
	for _, types := range typeSets {
		for _, cm := range collisionMasks {
			t.Run(fmt.Sprint(types, "/", cm.name), func(t *testing.T) {
				r := rand.New(rand.NewPCG(uint64(len(types)), uint64(types[0])))
				g := newGroupTable(types)
				forceCollisions(g, cm.mask)
				ref := map[string]int32{}
				var firstRows [][]*store.Vector // per group: the batch it was first seen in
				var firstIdx []int
				for blk := range 6 {
					n := 300 + r.IntN(300)
					cols := randomKeyBatch(r, types, n, 40)
					if blk == 3 && kql.IsStringLike(types[0]) {
						cols[0] = withDict(cols[0], r) // store-style dictionary codes
					}
					got := append([]int32(nil), g.ids(cols, n, nil)...)
					for i := range n {
						k := refKey(cols, i)
						want, ok := ref[k]
						if !ok {
							want = int32(len(ref))
							ref[k] = want
							firstRows = append(firstRows, cols)
							firstIdx = append(firstIdx, i)
						}
						if got[i] != want {
							t.Fatalf("block %d row %d (%s): group %d; want %d", blk, i, k, got[i], want)
						}
					}
				}
				if g.n != len(ref) {
					t.Fatalf("%d groups; want %d", g.n, len(ref))
				}
				kv := g.keyVectors()
				for grp := range g.n {
					if a, b := refKey(kv, grp), refKey(firstRows[grp], firstIdx[grp]); a != b {
						t.Fatalf("group %d key values %s; want %s", grp, a, b)
					}
				}
				if g.memBytes() <= 0 {
					t.Fatal("memBytes is not positive")
				}
			})
		}
	}
}

// TestSummarizeHighCardinalityMerge runs summarize by a 50,000-value key
// (and the empty string) through the engine with parallel workers whose
// group tables are merged, and checks the totals against hand-counted ones.
func TestSummarizeHighCardinalityMerge(t *testing.T) {
	// Two workers each see half of the batches; their tables are merged.
	// 50,000 distinct keys, each twice, plus empty strings.
	schema := store.Schema{{Name: "K", Type: store.TypeString}, {Name: "N", Type: store.TypeLong}}
	var batches []*store.Batch
	const distinct = 50_000
	for half := range 2 {
		for off := 0; off < distinct; off += 5000 {
			b := &store.Batch{Schema: schema, Len: 5000}
			k, n := newVector(store.TypeString, 5000), newVector(store.TypeLong, 5000)
			for i := range 5000 {
				if (off+i)%1000 == 0 {
					k.Str[i] = ""
				} else {
					k.Str[i] = "key-" + strconv.Itoa(off+i)
				}
				n.Int[i] = int64(half + 1)
			}
			b.Cols = []*store.Vector{k, n}
			batches = append(batches, b)
		}
	}
	res := runInlineT(t, "Logs | summarize c=count(), s=sum(N) by K | summarize groups=count(), rows=sum(c), total=sum(s), maxc=max(c)", schema, batches)
	got := rowsOf(res)
	// 49,950 non-empty keys with 2 rows each; the empty key 50 × 2 = 100 rows.
	want := []string{"49951|100000|150000|100|"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v; want %v", got, want)
	}
}

// TestJoinIndexMatchesNestedLoop builds join indexes over random right keys
// (one string, one long, one real, two columns) with and without forced
// hash collisions, and checks every left row's matches against a nested
// loop with the simple path's key equality (null keys never match).
func TestJoinIndexMatchesNestedLoop(t *testing.T) {
	typeSets := [][]store.ColumnType{
		{store.TypeString}, {store.TypeLong}, {store.TypeReal}, {store.TypeString, store.TypeLong},
	}
	for _, types := range typeSets {
		for _, cm := range collisionMasks {
			t.Run(fmt.Sprint(types, "/", cm.name), func(t *testing.T) {
				r := rand.New(rand.NewPCG(11, uint64(types[0])))
				right := randomKeyBatch(r, types, 700, 60)
				left := randomKeyBatch(r, types, 900, 80)
				if types[0] == store.TypeString && len(types) == 1 {
					left[0] = withDict(left[0], r) // the code path of store blocks
				}
				idx := buildJoinIndex(types, right, 700, cm.mask)
				var ck []int32
				var buf []byte
				kids := idx.probe(left, 900, nil, &ck, &buf)
				rkeys := make([]string, 700)
				for m := range rkeys {
					if !hasNull(right, m) {
						rkeys[m] = refKey(right, m)
					}
				}
				for i := range 900 {
					var want []int32
					lk, lnull := refKey(left, i), hasNull(left, i)
					for m := range 700 {
						if !lnull && rkeys[m] != "" && rkeys[m] == lk {
							want = append(want, int32(m))
						}
					}
					var got []int32
					if kid := kids[i]; kid >= 0 {
						for m := idx.head[kid]; m >= 0; m = idx.next[m] {
							got = append(got, m)
						}
					}
					if !reflect.DeepEqual(got, want) {
						t.Fatalf("left row %d (%s): right rows %v; want %v", i, lk, got, want)
					}
				}
			})
		}
	}
}

func hasNull(cols []*store.Vector, i int) bool {
	for _, c := range cols {
		if c.IsNull(i) {
			return true
		}
	}
	return false
}

// TestJoinKindsParallelMatchOrder runs every join kind over inline data
// split into many batches (so several workers probe) and checks the rows
// and their order against a sequential nested-loop reference.
func TestJoinKindsParallelMatchOrder(t *testing.T) {
	schema := store.Schema{{Name: "K", Type: store.TypeString}, {Name: "N", Type: store.TypeLong}}
	r := rand.New(rand.NewPCG(21, 22))
	var batches []*store.Batch
	var ks []string
	var ns []int64
	for range 20 {
		b := &store.Batch{Schema: schema, Len: 100}
		k, n := newVector(store.TypeString, 100), newVector(store.TypeLong, 100)
		for i := range 100 {
			k.Str[i] = "k" + strconv.Itoa(r.IntN(150))
			if r.IntN(20) == 0 {
				k.Str[i] = ""
			}
			n.Int[i] = int64(len(ns))
			ks, ns = append(ks, k.Str[i]), append(ns, n.Int[i])
		}
		b.Cols = []*store.Vector{k, n}
		batches = append(batches, b)
	}
	// Right side: rows with N % 7 == 0, renamed, a third of them with keys
	// no left row has.
	var rk []string
	var rn []int64
	for i := range ks {
		if ns[i]%7 == 0 {
			k := ks[i]
			if ns[i]%3 == 0 {
				k += "x"
			}
			rk, rn = append(rk, k), append(rn, ns[i])
		}
	}
	right := `(Logs | where N % 7 == 0 | project K=strcat(K, iff(N % 3 == 0, "x", "")), M=N)`
	row := func(vals ...string) string { return strings.Join(vals, "|") + "|" }
	for _, kind := range []string{"innerunique", "inner", "leftouter", "leftsemi", "leftanti", "rightouter", "fullouter", "rightsemi", "rightanti"} {
		res := runInlineT(t, "Logs | join kind="+kind+" "+right+" on K", schema, batches)
		got := rowsOf(res)
		var want []string
		seen := map[string]bool{}
		matched := make([]bool, len(rk))
		for i := range ks {
			var ms []int
			for m := range rk {
				if rk[m] == ks[i] {
					ms = append(ms, m)
				}
			}
			for _, m := range ms {
				matched[m] = true
			}
			lrow := func(m int) string {
				if m < 0 {
					return row(ks[i], strconv.FormatInt(ns[i], 10), "", "") // null M
				}
				return row(ks[i], strconv.FormatInt(ns[i], 10), rk[m], strconv.FormatInt(rn[m], 10))
			}
			switch kind {
			case "innerunique":
				if len(ms) > 0 && !seen[ks[i]] {
					seen[ks[i]] = true
					for _, m := range ms {
						want = append(want, lrow(m))
					}
				}
			case "inner", "rightouter":
				for _, m := range ms {
					want = append(want, lrow(m))
				}
			case "leftouter", "fullouter":
				if len(ms) == 0 {
					want = append(want, lrow(-1))
				}
				for _, m := range ms {
					want = append(want, lrow(m))
				}
			case "leftsemi":
				if len(ms) > 0 {
					want = append(want, row(ks[i], strconv.FormatInt(ns[i], 10)))
				}
			case "leftanti":
				if len(ms) == 0 {
					want = append(want, row(ks[i], strconv.FormatInt(ns[i], 10)))
				}
			}
		}
		for m := range rk {
			switch {
			case (kind == "rightouter" || kind == "fullouter") && !matched[m]:
				want = append(want, row("", "", rk[m], strconv.FormatInt(rn[m], 10))) // null N
			case kind == "rightsemi" && matched[m], kind == "rightanti" && !matched[m]:
				want = append(want, row(rk[m], strconv.FormatInt(rn[m], 10)))
			}
		}
		if !reflect.DeepEqual(got, want) {
			i := 0
			for i < min(len(got), len(want)) && got[i] == want[i] {
				i++
			}
			t.Errorf("kind=%s: %d rows, want %d; first difference at row %d:\n got %v\nwant %v", kind, len(got), len(want), i, got[i:min(i+3, len(got))], want[i:min(i+3, len(want))])
		}
	}
}

// TestSummarizeMemoryLimitCountsStates checks that the memory limit sees
// the group table and the digests: percentiles by a 40,000-value key needs
// several MB and fails under a 1 MB limit, and succeeds without it.
func TestSummarizeMemoryLimitCountsStates(t *testing.T) {
	schema := store.Schema{{Name: "K", Type: store.TypeString}, {Name: "L", Type: store.TypeReal}}
	var batches []*store.Batch
	for off := 0; off < 200_000; off += 10_000 {
		b := &store.Batch{Schema: schema, Len: 10_000}
		k, l := newVector(store.TypeString, 10_000), newVector(store.TypeReal, 10_000)
		for i := range 10_000 {
			k.Str[i] = "key-" + strconv.Itoa((off+i)%40_000)
			l.Real[i] = float64(i % 977)
		}
		b.Cols = []*store.Vector{k, l}
		batches = append(batches, b)
	}
	const q = "Logs | summarize percentiles(L, 50, 99) by K | count"
	run := func(limit int64) (*Result, error) {
		e := New(Options{Limits: Limits{MaxMemoryBytes: limit}})
		req := &Request{Query: q}
		plan, err := kql.Compile(q, kql.MapCatalog{"Logs": schema}, kql.BindOptions{})
		if err != nil {
			t.Fatal(err)
		}
		x := e.newExecutor(req, 0)
		x.inline = map[string][]*store.Batch{"Logs": batches}
		return x.execute(context.Background(), plan)
	}
	res, err := run(0)
	if err != nil {
		t.Fatal(err)
	}
	if got := rowsOf(res); !reflect.DeepEqual(got, []string{"40000|"}) {
		t.Fatalf("got %v", got)
	}
	if res.Stats.PeakMemoryBytes < 4<<20 {
		t.Errorf("peak memory %d; want the digests' and table's several MB counted", res.Stats.PeakMemoryBytes)
	}
	if _, err := run(1 << 20); !errors.Is(err, ErrLimitExceeded) {
		t.Fatalf("with a 1 MB limit: err %v; want ErrLimitExceeded", err)
	}
}

// TestStrTableReserveMerge checks the merge path's sizing: idsDistinct
// assigns the IDs idBatch does and grows once, to the smallest half-full
// size (TestGroupMergeSizing shows a case where idBatch overgrows).
func TestStrTableReserveMerge(t *testing.T) {
	for _, collide := range []bool{false, true} {
		a, b := newStrTable(), newStrTable()
		if collide {
			a.hashMask, b.hashMask = 0xffff_0000_0000_0000, 0xffff_0000_0000_0000
		}
		var bKeys []string
		for i := range 30000 {
			a.id(fmt.Sprintf("user-%d", i))
		}
		for i := 20000; i < 70000; i++ {
			k := fmt.Sprintf("user-%d", i)
			b.id(k)
			bKeys = append(bKeys, k)
		}
		ref := newStrTable() // the IDs idBatch assigns
		if collide {
			ref.hashMask = a.hashMask
		}
		for i := range 30000 {
			ref.id(fmt.Sprintf("user-%d", i))
		}
		want := ref.idBatch(bKeys, nil)
		ids := a.idsDistinct(bKeys, nil)
		if len(a.slots) != 1<<18 { // 70000 keys at most half full, no fourfold step
			t.Fatalf("collide=%v: %d slots after the merge, want %d", collide, len(a.slots), 1<<18)
		}
		for j, id := range ids {
			if id != want[j] {
				t.Fatalf("collide=%v: %s has ID %d, want %d", collide, bKeys[j], id, want[j])
			}
		}
		for i := range 70000 {
			if got := a.find(fmt.Sprintf("user-%d", i)); got != int32(i) {
				t.Fatalf("collide=%v: user-%d has ID %d after the merge", collide, i, got)
			}
		}
	}
}

// TestGroupMergeSizing checks that a summarize merge of two workers' string
// tables takes the size it needs, not the next fourfold step, and answers
// as the row-by-row path does.
func TestGroupMergeSizing(t *testing.T) {
	pool := newSlotPool(tablePoolBytes)
	mk := func() *groupTable {
		g := newGroupTable([]store.ColumnType{store.TypeString})
		g.usePool(pool)
		return g
	}
	vec := func(lo, hi int) *store.Vector {
		v := &store.Vector{Type: store.TypeString}
		for i := lo; i < hi; i++ {
			v.Str = append(v.Str, fmt.Sprintf("u%d", i))
		}
		return v
	}
	g1, g2 := mk(), mk()
	g1.ids([]*store.Vector{vec(0, 100000)}, 100000, nil)
	g2.ids([]*store.Vector{vec(50000, 150000)}, 100000, nil)
	if n := len(g1.dicts[0].strs.slots); n != 1<<18 {
		t.Fatalf("worker table has %d slots, want %d", n, 1<<18)
	}
	mapping := g1.idsOfDistinct(g2.keyVectors(), g2.n)
	if g1.n != 150000 {
		t.Fatalf("%d groups after the merge, want 150000", g1.n)
	}
	// 150000 keys need 2^19 slots half full; growing key by key would have
	// taken the fourfold step from 2^18 to 2^20.
	if n := len(g1.dicts[0].strs.slots); n != 1<<19 {
		t.Fatalf("merged table has %d slots, want %d", n, 1<<19)
	}
	for i, id := range mapping {
		if want := int32(50000 + i); id != want {
			t.Fatalf("key u%d merged to group %d, want %d", 50000+i, id, want)
		}
	}
	g1.release()
	g2.release()
}
