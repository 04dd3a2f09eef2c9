package engine

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"

	"custos/internal/kql"
	"custos/internal/store"
)

// join runs a hash join. The right side is materialized and indexed: each
// distinct key gets a dense key ID (a strTable or intTable for one key
// column of one storage class, encoded bytes otherwise) and the right rows
// of a key form a list in row order. The left side streams through the
// pipeline's workers, which probe the index in parallel; the output keeps
// the left side's order. Null keys never match.
func (x *executor) join(ctx context.Context, j *kql.HashJoin) ([]*store.Batch, error) {
	rs := j.Right.Schema()
	rightBs, err := x.run(ctx, j.Right)
	if err != nil {
		return nil, err
	}
	rb := emptyBatch(rs)
	if len(rightBs) > 0 {
		rb = concatBatches(rs, rightBs)
	}
	rkeys, err := keyVectors(rb, j.RightKeys)
	if err != nil {
		return nil, err
	}
	leftTypes := make([]store.ColumnType, len(j.LeftKeys))
	ls := j.Left.Schema()
	for i, k := range j.LeftKeys {
		c := ls.Index(k)
		if c < 0 {
			return nil, fmt.Errorf("BUG: join key %q not in the left schema", k)
		}
		leftTypes[i] = ls[c].Type
	}
	idx := buildJoinIndex(leftTypes, rkeys, rb.Len, ^uint64(0))
	sz := batchBytes(rb) + idx.memBytes()
	if err := x.reserve(sz); err != nil {
		return nil, err
	}
	defer x.release(sz)

	shared := &joinShared{x: x, j: j, idx: idx, rb: rb, schema: j.Schema(), candidates: map[int]*store.Batch{}}
	p := split(j.Left)
	w := x.nWorkers(p)
	sinks := make([]sink, w)
	js := make([]*joinSink, w)
	for i := range sinks {
		js[i] = &joinSink{joinShared: shared}
		switch j.Kind {
		case "rightouter", "fullouter", "rightsemi", "rightanti":
			js[i].rightMatched = make([]bool, rb.Len)
		}
		sinks[i] = js[i]
	}
	err = x.drive(ctx, p, sinks)
	for _, s := range js {
		defer x.release(s.held)
	}
	if err != nil {
		return nil, err
	}
	var parts []seqBatch
	for _, s := range js {
		parts = append(parts, s.out...)
	}
	slices.SortFunc(parts, func(a, b seqBatch) int { return a.seq - b.seq })
	var out []*store.Batch
	var held int64 // output bytes reserved here, released when the join returns
	defer func() { x.release(held) }()
	emit := func(ob *store.Batch) error {
		osz := batchBytes(ob)
		if err := x.reserve(osz); err != nil {
			return err
		}
		held += osz
		out = append(out, ob)
		return nil
	}
	if j.Kind == "innerunique" {
		// Each key's first left row in left order wins: the workers found
		// the candidates, the de-duplication runs here in order.
		seen := make([]bool, idx.nKeys)
		for _, sb := range parts {
			c := sb.b
			var lsel, rsel []int32
			for k, i := range c.Cols[0].Int {
				kid := c.Cols[1].Int[k]
				if seen[kid] {
					continue
				}
				seen[kid] = true
				for m := idx.head[kid]; m >= 0; m = idx.next[m] {
					lsel, rsel = append(lsel, int32(i)), append(rsel, m)
				}
			}
			if len(lsel) == 0 {
				continue
			}
			if err := emit(shared.output(shared.candidates[sb.seq], lsel, rsel)); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	for _, sb := range parts {
		out = append(out, sb.b)
	}
	var rightMatched []bool
	for _, s := range js {
		if s.rightMatched == nil {
			continue
		}
		if rightMatched == nil {
			rightMatched = s.rightMatched
			continue
		}
		for i, m := range s.rightMatched {
			rightMatched[i] = rightMatched[i] || m
		}
	}
	if rightMatched == nil {
		return out, nil
	}
	// The right rows of the right kinds: matched ones for rightsemi,
	// unmatched ones (null keys included) for the others.
	want := j.Kind == "rightsemi"
	var rsel []int32
	for i, m := range rightMatched {
		if m == want {
			rsel = append(rsel, int32(i))
		}
	}
	if len(rsel) == 0 {
		return out, nil
	}
	ob := &store.Batch{Schema: shared.schema, Len: len(rsel)}
	if j.HasLeft() {
		for _, c := range j.Left.Schema() {
			ob.Cols = append(ob.Cols, nullVector(c.Type, len(rsel)))
		}
	}
	for _, c := range rb.Cols {
		ob.Cols = append(ob.Cols, gather(c, rsel))
	}
	if err := emit(ob); err != nil {
		return nil, err
	}
	return out, nil
}

// joinShared is what the probing workers of one join share (read-only).
type joinShared struct {
	x      *executor
	j      *kql.HashJoin
	idx    *joinIndex
	rb     *store.Batch
	schema store.Schema

	mu sync.Mutex
	// candidates holds innerunique's left batches by sequence number.
	candidates map[int]*store.Batch // guarded by mu
}

// output builds an output batch from left rows lsel of lb and right rows
// rsel (-1: no right row).
func (s *joinShared) output(lb *store.Batch, lsel, rsel []int32) *store.Batch {
	ob := &store.Batch{Schema: s.schema, Len: len(lsel)}
	for _, c := range lb.Cols {
		ob.Cols = append(ob.Cols, gather(c, lsel))
	}
	if s.j.HasRight() {
		for _, c := range s.rb.Cols {
			ob.Cols = append(ob.Cols, gatherOrNull(c, rsel))
		}
	}
	return ob
}

// joinSink probes one worker's left batches.
type joinSink struct {
	*joinShared
	out          []seqBatch
	held         int64
	rightMatched []bool // for the kinds that output or filter right rows
	kids         []int32
	codeKids     []int32
	buf          []byte
}

func (s *joinSink) consume(seq int, lb *store.Batch) (bool, error) {
	if lb.Len == 0 {
		return false, nil
	}
	lkeys, err := keyVectors(lb, s.j.LeftKeys)
	if err != nil {
		return true, err
	}
	s.kids = s.idx.probe(lkeys, lb.Len, s.kids[:0], &s.codeKids, &s.buf)
	idx := s.idx
	var lsel, rsel []int32
	switch s.j.Kind {
	case "innerunique":
		// Candidates: left rows with a matching key, with their key IDs.
		cand := newVector(store.TypeLong, 0)
		kv := newVector(store.TypeLong, 0)
		for i, kid := range s.kids {
			if kid >= 0 {
				cand.Int = append(cand.Int, int64(i))
				kv.Int = append(kv.Int, int64(kid))
			}
		}
		if len(cand.Int) == 0 {
			return false, nil
		}
		s.out = append(s.out, seqBatch{seq: seq, b: &store.Batch{Cols: []*store.Vector{cand, kv}, Len: len(cand.Int)}})
		s.mu.Lock()
		s.candidates[seq] = lb
		s.mu.Unlock()
		return false, s.reserve(batchBytes(lb) + int64(len(cand.Int))*16)
	case "inner", "rightouter":
		for i, kid := range s.kids {
			if kid < 0 {
				continue
			}
			for m := idx.head[kid]; m >= 0; m = idx.next[m] {
				lsel, rsel = append(lsel, int32(i)), append(rsel, m)
			}
		}
	case "leftouter", "fullouter":
		for i, kid := range s.kids {
			if kid < 0 {
				lsel, rsel = append(lsel, int32(i)), append(rsel, -1)
				continue
			}
			for m := idx.head[kid]; m >= 0; m = idx.next[m] {
				lsel, rsel = append(lsel, int32(i)), append(rsel, m)
			}
		}
	case "leftsemi":
		for i, kid := range s.kids {
			if kid >= 0 {
				lsel = append(lsel, int32(i))
			}
		}
	case "leftanti":
		for i, kid := range s.kids {
			if kid < 0 {
				lsel = append(lsel, int32(i))
			}
		}
	case "rightsemi", "rightanti":
		// Right rows are emitted once every left row is seen.
	default:
		return true, fmt.Errorf("BUG: join kind %q", s.j.Kind)
	}
	if s.rightMatched != nil {
		for _, kid := range s.kids {
			if kid < 0 {
				continue
			}
			for m := idx.head[kid]; m >= 0; m = idx.next[m] {
				s.rightMatched[m] = true
			}
		}
	}
	if len(lsel) == 0 {
		return false, nil
	}
	ob := s.output(lb, lsel, rsel)
	s.out = append(s.out, seqBatch{seq: seq, b: ob})
	return false, s.reserve(batchBytes(ob))
}

func (s *joinSink) reserve(n int64) error {
	if err := s.x.reserve(n); err != nil {
		return err
	}
	s.held += n
	return nil
}

// joinIndex is the right side of a join: key IDs and, per key, its right
// rows as a list (head[key], next[row], -1 ends).
type joinIndex struct {
	strs  *strTable        // one string-like key on both sides
	ints  *intTable        // one key of the same number class on both sides
	bytes map[string]int32 // otherwise: encoded keys
	class keyClass
	nKeys int
	head  []int32
	next  []int32
	mem   int64
}

type keyClass uint8

const (
	keyBytes keyClass = iota
	keyStr
	keyInt
	keyReal
	keyBool
)

// classOf picks the index for one key column of types l (left) and r.
func classOf(l, r store.ColumnType) keyClass {
	switch {
	case kql.IsStringLike(l) && kql.IsStringLike(r):
		return keyStr
	case kql.IsIntHeld(l) && kql.IsIntHeld(r):
		return keyInt
	case l == store.TypeDecimal && r == store.TypeDecimal:
		return keyBytes // exact decimal keys (appendKey), not float64 bits
	case kql.IsRealHeld(l) && kql.IsRealHeld(r):
		return keyReal
	case l == store.TypeBool && r == store.TypeBool:
		return keyBool
	}
	return keyBytes
}

// numKey is the intTable key of a non-null number or bool, with the same
// equality as appendKey: -0 equals +0.
func numKey(c keyClass, v *store.Vector, i int) uint64 {
	switch c {
	case keyInt:
		return uint64(v.Int[i])
	case keyReal:
		f := v.Real[i]
		if f == 0 {
			f = 0
		}
		return math.Float64bits(f)
	}
	return uint64(boolInt(v.Bool[i]))
}

// buildJoinIndex indexes the n right rows; hashMask narrows the hash tables'
// hashes (all ones except in tests that force collisions).
func buildJoinIndex(leftTypes []store.ColumnType, rkeys []*store.Vector, n int, hashMask uint64) *joinIndex {
	idx := &joinIndex{next: make([]int32, n)}
	if len(rkeys) == 1 {
		idx.class = classOf(leftTypes[0], rkeys[0].Type)
	}
	kids := make([]int32, n)
	var buf []byte
	switch idx.class {
	case keyStr:
		idx.strs = newStrTable()
		idx.strs.hashMask = hashMask
		for i := range n {
			if rkeys[0].IsNull(i) {
				kids[i] = -1
				continue
			}
			kids[i] = int32(idx.strs.id(rkeys[0].Str[i]))
		}
		idx.nKeys = idx.strs.len()
		idx.mem = idx.strs.memBytes()
	case keyInt, keyReal, keyBool:
		idx.ints = newIntTable()
		idx.ints.hashMask = hashMask
		for i := range n {
			if rkeys[0].IsNull(i) {
				kids[i] = -1
				continue
			}
			kids[i] = int32(idx.ints.id(numKey(idx.class, rkeys[0], i)))
		}
		idx.nKeys = idx.ints.len()
		idx.mem = idx.ints.memBytes()
	default:
		idx.bytes = map[string]int32{}
		for i := range n {
			var ok bool
			if buf, ok = joinKey(buf[:0], rkeys, i); !ok {
				kids[i] = -1
				continue
			}
			id, seen := idx.bytes[string(buf)]
			if !seen {
				id = int32(len(idx.bytes))
				idx.bytes[string(buf)] = id
				idx.mem += int64(len(buf)) + 48
			}
			kids[i] = id
		}
		idx.nKeys = len(idx.bytes)
	}
	idx.head = make([]int32, idx.nKeys)
	for k := range idx.head {
		idx.head[k] = -1
	}
	// Backwards, so that each key's list is in row order.
	for i := n - 1; i >= 0; i-- {
		idx.next[i] = -1
		if k := kids[i]; k >= 0 {
			idx.next[i] = idx.head[k]
			idx.head[k] = int32(i)
		}
	}
	return idx
}

func (idx *joinIndex) memBytes() int64 {
	return idx.mem + int64(len(idx.head)+len(idx.next))*4
}

// probe appends the key ID of every left row (-1: null key or no match) to
// out. Safe for concurrent use: it only reads the index; codeKids and buf
// are the caller's scratch.
func (idx *joinIndex) probe(keys []*store.Vector, n int, out []int32, codeKids *[]int32, buf *[]byte) []int32 {
	switch idx.class {
	case keyStr:
		v := keys[0]
		if len(v.Codes) >= n && len(v.Dict) > 0 && len(v.Dict) <= 4*n+64 && v.Nulls == nil {
			// A dictionary-encoded block: look each code up once.
			ck := *codeKids
			if cap(ck) < len(v.Dict) {
				ck = make([]int32, len(v.Dict))
			}
			ck = ck[:len(v.Dict)]
			for c := range ck {
				ck[c] = -2
			}
			for i, c := range v.Codes[:n] {
				if int(c) < len(ck) && v.Dict[c] == v.Str[i] {
					if ck[c] == -2 {
						ck[c] = idx.strs.find(v.Str[i])
					}
					out = append(out, ck[c])
					continue
				}
				out = append(out, idx.strs.find(v.Str[i]))
			}
			*codeKids = ck
			return out
		}
		for i, s := range v.Str[:n] {
			if v.IsNull(i) {
				out = append(out, -1)
				continue
			}
			out = append(out, idx.strs.find(s))
		}
	case keyInt, keyReal, keyBool:
		v := keys[0]
		for i := range n {
			if v.IsNull(i) {
				out = append(out, -1)
				continue
			}
			out = append(out, idx.ints.find(numKey(idx.class, v, i)))
		}
	default:
		b := *buf
		for i := range n {
			var ok bool
			if b, ok = joinKey(b[:0], keys, i); !ok {
				out = append(out, -1)
				continue
			}
			id, found := idx.bytes[string(b)]
			if !found {
				id = -1
			}
			out = append(out, id)
		}
		*buf = b
	}
	return out
}

func keyVectors(b *store.Batch, names []string) ([]*store.Vector, error) {
	out := make([]*store.Vector, len(names))
	for i, n := range names {
		v := b.Col(n)
		if v == nil {
			return nil, fmt.Errorf("BUG: join key %q not in batch", n)
		}
		out[i] = v
	}
	return out, nil
}

// joinKey encodes row i's keys; ok is false when a key is null.
func joinKey(buf []byte, keys []*store.Vector, i int) ([]byte, bool) {
	for _, k := range keys {
		if k.IsNull(i) {
			return buf, false
		}
		buf = appendKey(buf, k, i)
	}
	return buf, true
}

// gatherOrNull is gather where index -1 produces a null row.
func gatherOrNull(v *store.Vector, sel []int32) *store.Vector {
	nulls := 0
	for _, i := range sel {
		if i < 0 {
			nulls++
		}
	}
	if nulls == 0 {
		return gather(v, sel)
	}
	if nulls == len(sel) || v.Len() == 0 {
		return nullVector(v.Type, len(sel))
	}
	safe := make([]int32, len(sel))
	for j, i := range sel {
		safe[j] = max(i, 0)
	}
	out := gather(v, safe)
	out.Dict, out.Codes = nil, nil
	if out.Nulls == nil && v.Type != store.TypeString {
		out.Nulls = make([]bool, len(sel))
	}
	for j, i := range sel {
		if i >= 0 {
			continue
		}
		switch {
		case v.Type == store.TypeBool:
			out.Bool[j] = false
		case kql.IsIntHeld(v.Type):
			out.Int[j] = 0
		case kql.IsRealHeld(v.Type):
			out.Real[j] = 0
		default:
			out.Str[j] = ""
		}
		if out.Nulls != nil {
			out.Nulls[j] = v.Type != store.TypeString
		}
	}
	return out
}
