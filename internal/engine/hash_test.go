package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
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
			if !reflect.DeepEqual(tab.keys, order) {
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
