package engine

import (
	"encoding/binary"
	"math"

	"custos/internal/kql"
	"custos/internal/store"
)

// colDict assigns dense IDs to the distinct values of one key column, in
// first-seen order, and keeps the values. A one-entry cache of the last value
// makes runs (binned timestamps, sorted data) nearly free.
type colDict struct {
	t       store.ColumnType
	ints    *intTable // int-held, real (as bits) and bool keys
	decs    *strTable // decimal keys, by decKey (exact, scale-blind)
	strs    *strTable // string-like keys; vector() copies them to values
	nullID  int64     // ID of the null value, -1 if not seen
	values  *store.Vector
	hasLast bool
	lastInt int64
	lastStr string
	lastID  uint32
	// codeIDs maps the codes of the current block dictionary to dictionary
	// IDs plus one (0: not yet seen); reset for every vector, since the
	// store may reuse dictionary buffers between blocks.
	codeIDs []uint32
	// firstKeys and firstIDs are codeIDsOf's scratch: a vector's distinct
	// strings in first-seen order and their IDs.
	firstKeys []string
	firstIDs  []uint32
}

func newColDict(t store.ColumnType) *colDict {
	d := &colDict{t: t, nullID: -1, values: emptyVector(t, 16)}
	switch {
	case kql.IsStringLike(t):
		d.strs = newStrTable()
	case t == store.TypeDecimal:
		d.decs = newStrTable()
	default:
		d.ints = newIntTable()
	}
	return d
}

func (d *colDict) size() int {
	if d.strs != nil {
		return d.strs.len()
	}
	return d.values.Len()
}

// memBytes is the dictionary's memory: its hash table and kept values.
func (d *colDict) memBytes() int64 {
	if d.strs != nil {
		return d.strs.memBytes() + int64(cap(d.codeIDs))*4
	}
	if d.decs != nil {
		return d.decs.memBytes() + vectorBytes(d.values, d.values.Len())
	}
	return d.ints.memBytes() + int64(d.values.Len())*9
}

// vector returns the distinct values by ID.
func (d *colDict) vector() *store.Vector {
	if d.strs != nil && len(d.values.Str) != d.strs.len() {
		d.values.Str = d.strs.keys()
	}
	return d.values
}

// intKey maps a non-string value to the dictionary's integer key.
func intKey(v *store.Vector, i int) int64 {
	switch {
	case v.Type == store.TypeBool:
		return boolInt(v.Bool[i])
	case kql.IsRealHeld(v.Type):
		f := v.Real[i]
		if f == 0 {
			f = 0 // one key for -0 and +0
		}
		if math.IsNaN(f) {
			return 0x7ff8000000000001
		}
		return int64(math.Float64bits(f))
	}
	return v.Int[i]
}

// ids appends the dictionary ID of every row of v to out.
func (d *colDict) ids(v *store.Vector, n int, out []uint32) []uint32 {
	if d.strs != nil && len(v.Codes) >= n && len(v.Dict) > 0 && len(v.Dict) <= 4*n+64 {
		return d.codeIDsOf(v, n, out)
	}
	if d.strs != nil {
		return d.stringIDs(v, n, out)
	}
	for i := range n {
		if v.Nulls != nil && v.Nulls[i] {
			if d.nullID < 0 {
				d.nullID = int64(d.values.Len())
				appendRow(d.values, v, i)
			}
			out = append(out, uint32(d.nullID))
			continue
		}
		if d.decs != nil {
			before := d.decs.len()
			id := d.decs.id(decKey(v, i))
			if d.decs.len() > before {
				appendRow(d.values, v, i)
			}
			out = append(out, d.intID(id))
			continue
		}
		k := intKey(v, i)
		if d.hasLast && k == d.lastInt {
			out = append(out, d.lastID)
			continue
		}
		before := d.ints.len()
		id := d.ints.id(uint64(k))
		if d.ints.len() > before {
			// A new key: its dictionary ID must be its row in values,
			// which the null value may have shifted.
			appendRow(d.values, v, i)
		}
		d.hasLast, d.lastInt, d.lastID = true, k, d.intID(id)
		out = append(out, d.lastID)
	}
	return out
}

// intID turns an intTable ID into the dictionary ID: the null value, once
// seen, takes a dictionary ID of its own between table IDs.
func (d *colDict) intID(id uint32) uint32 {
	if d.nullID >= 0 && int64(id) >= d.nullID {
		return id + 1
	}
	return id
}

// codeIDsOf is ids for a dictionary-encoded string vector: each distinct
// code is hashed once per vector instead of each row. The codes are first
// listed in the order their rows come, so the table assigns IDs in the same
// first-seen order as row by row, and looked up together (strTable.idBatch).
// A vector with a code outside its dictionary (a broken block) is taken row
// by row, by its strings.
func (d *colDict) codeIDsOf(v *store.Vector, n int, out []uint32) []uint32 {
	if cap(d.codeIDs) < len(v.Dict) {
		d.codeIDs = make([]uint32, len(v.Dict))
	}
	m := d.codeIDs[:len(v.Dict)]
	clear(m)
	first := d.firstKeys[:0]
	codes := v.Codes[:n]
	for _, c := range codes {
		if int(c) >= len(m) {
			return d.stringIDs(v, n, out)
		}
		if m[c] == 0 {
			m[c] = 1
			first = append(first, v.Dict[c])
		}
	}
	ids := d.strs.idBatch(first, d.firstIDs[:0])
	clear(first) // drop the references to the block's strings
	d.firstKeys, d.firstIDs = first[:0], ids[:0]
	k := 0
	for _, c := range codes {
		if m[c] == 1 {
			m[c] = ids[k] + 2
			k++
		}
		out = append(out, m[c]-2)
	}
	// The one-value cache of the string path may be stale now.
	d.hasLast = false
	return out
}

// stringIDs is ids for a string vector, row by row. A codes-only vector
// (a dictionary much larger than the batch, or a code outside it, whose row
// gets the empty string: the engine's checkVector refuses such blocks) is
// materialized for the n rows first.
func (d *colDict) stringIDs(v *store.Vector, n int, out []uint32) []uint32 {
	t := d.strs
	if v.CodesOnly() {
		m := *v
		m.Str = make([]string, n)
		for i, c := range v.Codes[:n] {
			if int(c) < len(v.Dict) {
				m.Str[i] = v.Dict[c]
			}
		}
		v = &m
	}
	for _, s := range v.Str[:n] {
		if d.hasLast && s == d.lastStr {
			out = append(out, d.lastID)
			continue
		}
		id := t.id(s)
		d.hasLast, d.lastStr, d.lastID = true, s, id
		out = append(out, id)
	}
	return out
}

// groupTable maps group keys to dense group IDs. Each key column has a
// dictionary; one key column's dictionary IDs are the group IDs, two are
// combined into one uint64 in an intTable, more are packed into a byte key.
// Not safe for concurrent use: each worker owns one.
type groupTable struct {
	types []store.ColumnType
	dicts []*colDict
	pairs *intTable        // two key columns
	bytes map[string]int32 // three or more
	// bytesMem is the memory of the bytes map's keys and entries.
	bytesMem int64
	// members[g*k+j] is the dictionary ID of key column j of group g (k ≥ 2).
	members []uint32
	n       int
	scratch [][]uint32
	buf     []byte
}

func newGroupTable(types []store.ColumnType) *groupTable {
	g := &groupTable{types: types, dicts: make([]*colDict, len(types)), scratch: make([][]uint32, len(types))}
	for i, t := range types {
		g.dicts[i] = newColDict(t)
	}
	switch {
	case len(types) == 2:
		g.pairs = newIntTable()
	case len(types) > 2:
		g.bytes = map[string]int32{}
	}
	return g
}

// memBytes is the memory of the table: dictionaries, hash tables, members.
func (g *groupTable) memBytes() int64 {
	var n int64
	for _, d := range g.dicts {
		n += d.memBytes()
	}
	if g.pairs != nil {
		n += g.pairs.memBytes()
	}
	return n + g.bytesMem + int64(cap(g.members))*4
}

// ids assigns the group ID of every row of the key vectors to out, creating
// groups as needed.
func (g *groupTable) ids(keys []*store.Vector, n int, out []int32) []int32 {
	return g.idsConst(keys, nil, n, out)
}

// idsConst is ids where konst[j] (konst may be nil) marks key column j as
// one value for all n rows, held in row 0 of keys[j]: its dictionary ID is
// looked up once. The dictionary copies a new value, so keys[j] may be
// reused afterwards.
func (g *groupTable) idsConst(keys []*store.Vector, konst []bool, n int, out []int32) []int32 {
	if cap(out) < n {
		out = make([]int32, 0, n)
	}
	out = out[:0]
	k := len(g.types)
	if k == 0 {
		if g.n == 0 && n > 0 {
			g.n = 1
		}
		for range n {
			out = append(out, 0)
		}
		return out
	}
	for j, d := range g.dicts {
		if cap(g.scratch[j]) < n {
			g.scratch[j] = make([]uint32, 0, n)
		}
		if konst != nil && konst[j] && n > 0 {
			sc := d.ids(keys[j], 1, g.scratch[j][:0])
			for range n - 1 {
				sc = append(sc, sc[0])
			}
			g.scratch[j] = sc
			continue
		}
		g.scratch[j] = d.ids(keys[j], n, g.scratch[j][:0])
	}
	switch k {
	case 1:
		for _, id := range g.scratch[0] {
			out = append(out, int32(id))
		}
		g.n = g.dicts[0].size()
	case 2:
		a, b := g.scratch[0], g.scratch[1]
		var lastKey uint64
		lastID := int32(-1)
		for i := range n {
			key := uint64(a[i])<<32 | uint64(b[i])
			if lastID >= 0 && key == lastKey {
				out = append(out, lastID)
				continue
			}
			id := int32(g.pairs.id(key))
			if int(id) == g.n {
				g.members = append(g.members, a[i], b[i])
				g.n++
			}
			lastKey, lastID = key, id
			out = append(out, id)
		}
	default:
		for i := range n {
			buf := g.buf[:0]
			for j := range k {
				buf = binary.LittleEndian.AppendUint32(buf, g.scratch[j][i])
			}
			g.buf = buf
			id, ok := g.bytes[string(buf)]
			if !ok {
				id = int32(g.n)
				g.bytes[string(buf)] = id
				g.bytesMem += int64(len(buf)) + 48
				for j := range k {
					g.members = append(g.members, g.scratch[j][i])
				}
				g.n++
			}
			out = append(out, id)
		}
	}
	return out
}

// idsOfDistinct is ids for key vectors whose rows are distinct keys (another
// table's groups, in a merge): a single string key is looked up in batches
// (strTable.idBatch), with no run cache to check.
func (g *groupTable) idsOfDistinct(keys []*store.Vector, n int) []int32 {
	if len(g.dicts) != 1 || g.dicts[0].strs == nil || keys[0].Codes != nil {
		return g.ids(keys, n, nil)
	}
	d := g.dicts[0]
	var ids []uint32
	if 2*(d.strs.n+n) > len(d.strs.slots) {
		// The merge may grow the table: find the keys it adds first, so
		// that it grows once to the size it needs. Growing as it goes
		// would take a fourfold step (150K merged keys: from 256K to 1M
		// slots, 24 MB, instead of 512K).
		ids = d.strs.idsDistinct(keys[0].Str[:n], make([]uint32, 0, n))
	} else {
		ids = d.strs.idBatch(keys[0].Str[:n], make([]uint32, 0, n))
	}
	d.hasLast = false
	g.n = d.size()
	out := make([]int32, n)
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out
}

// usePool makes the string dictionaries of the table take their slot
// arrays from p (nil: allocate them).
func (g *groupTable) usePool(p *slotPool) {
	for _, d := range g.dicts {
		if d.strs != nil {
			d.strs.pool = p
		}
	}
}

// release returns the pooled slot arrays; the table must not assign IDs
// afterwards, but keyVectors still works.
func (g *groupTable) release() {
	for _, d := range g.dicts {
		if d.strs != nil && d.strs.pool != nil {
			d.strs.release()
		}
	}
}

// keyVectors returns the key values of all groups, one vector per key column.
func (g *groupTable) keyVectors() []*store.Vector {
	k := len(g.types)
	out := make([]*store.Vector, k)
	if k == 1 {
		out[0] = g.dicts[0].vector()
		return out
	}
	sel := make([]int32, g.n)
	for j := range k {
		for grp := range g.n {
			sel[grp] = int32(g.members[grp*k+j])
		}
		out[j] = gather(g.dicts[j].vector(), sel)
	}
	return out
}

// appendKey encodes row i of k for a hash key: a null flag, then the value
// (8 bytes for numbers, length-prefixed bytes for strings).
func appendKey(b []byte, k *store.Vector, i int) []byte {
	if k.IsNull(i) {
		return append(b, 0)
	}
	switch {
	case k.Type == store.TypeBool:
		if k.Bool[i] {
			return append(b, 1, 1)
		}
		return append(b, 1, 0)
	case kql.IsIntHeld(k.Type):
		b = append(b, 1)
		return binary.LittleEndian.AppendUint64(b, uint64(k.Int[i]))
	case k.Type == store.TypeDecimal:
		s := decKey(k, i) // exact, as colDict groups decimals
		b = append(b, 2)
		b = binary.AppendUvarint(b, uint64(len(s)))
		return append(b, s...)
	case kql.IsRealHeld(k.Type):
		f := k.Real[i]
		if f == 0 {
			f = 0
		}
		b = append(b, 1)
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
	default:
		s := k.Str[i]
		b = append(b, 1)
		b = binary.AppendUvarint(b, uint64(len(s)))
		return append(b, s...)
	}
}
