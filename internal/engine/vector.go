package engine

import (
	"fmt"
	"strings"

	"custos/internal/kql"
	"custos/internal/store"
)

// newVector allocates a vector of n zero values of type t, without nulls.
func newVector(t store.ColumnType, n int) *store.Vector {
	v := &store.Vector{Type: t}
	switch {
	case t == store.TypeBool:
		v.Bool = make([]bool, n)
	case kql.IsIntHeld(t):
		v.Int = make([]int64, n)
	case kql.IsRealHeld(t):
		v.Real = make([]float64, n)
		if t == store.TypeDecimal {
			v.Str = make([]string, n) // exact text beside the float64 (decimal.go)
		}
	default:
		v.Str = make([]string, n)
	}
	return v
}

// emptyVector returns a vector of type t with capacity c and length 0.
func emptyVector(t store.ColumnType, c int) *store.Vector {
	v := &store.Vector{Type: t}
	switch {
	case t == store.TypeBool:
		v.Bool = make([]bool, 0, c)
	case kql.IsIntHeld(t):
		v.Int = make([]int64, 0, c)
	case kql.IsRealHeld(t):
		v.Real = make([]float64, 0, c)
		if t == store.TypeDecimal {
			v.Str = make([]string, 0, c)
		}
	default:
		v.Str = make([]string, 0, c)
	}
	return v
}

// nullVector returns n nulls of type t (empty strings for string).
func nullVector(t store.ColumnType, n int) *store.Vector {
	v := newVector(t, n)
	if t != store.TypeString {
		v.Nulls = make([]bool, n)
		for i := range v.Nulls {
			v.Nulls[i] = true
		}
	}
	return v
}

// constVector broadcasts val to n rows.
func constVector(val kql.Value, n int) *store.Vector {
	if val.Null {
		return nullVector(val.Type, n)
	}
	v := newVector(val.Type, n)
	switch {
	case val.Type == store.TypeBool:
		if val.Bool {
			for i := range v.Bool {
				v.Bool[i] = true
			}
		}
	case kql.IsIntHeld(val.Type):
		if val.Int != 0 {
			for i := range v.Int {
				v.Int[i] = val.Int
			}
		}
	case kql.IsRealHeld(val.Type):
		if val.Real != 0 {
			for i := range v.Real {
				v.Real[i] = val.Real
			}
		}
		if text := decValueText(val); text != "" {
			for i := range v.Str {
				v.Str[i] = text
			}
		}
	default:
		if val.Str != "" {
			for i := range v.Str {
				v.Str[i] = val.Str
			}
		}
	}
	return v
}

// valueAt returns row i of v.
func valueAt(v *store.Vector, i int) kql.Value {
	if v.IsNull(i) {
		return kql.NullValue(v.Type)
	}
	out := kql.Value{Type: v.Type}
	switch {
	case v.Type == store.TypeBool:
		out.Bool = v.Bool[i]
	case kql.IsIntHeld(v.Type):
		out.Int = v.Int[i]
	case kql.IsRealHeld(v.Type):
		out.Real = v.Real[i]
		if hasDecText(v) {
			out.Str = v.Str[i]
		}
	default:
		out.Str = v.Str[i]
	}
	return out
}

// hasDecText reports whether v is a decimal vector carrying exact text: a
// decimal vector's Str is either empty (the values are the float64s in
// Real) or has one entry per row, "" where Real alone holds the value.
func hasDecText(v *store.Vector) bool {
	return v.Type == store.TypeDecimal && len(v.Str) == len(v.Real) && len(v.Str) > 0
}

// decTextAt returns the exact text of row i of a decimal vector, or "".
func decTextAt(v *store.Vector, i int) string {
	if len(v.Str) == len(v.Real) {
		return v.Str[i]
	}
	return ""
}

// padDecText makes the text of decimal vector dst, which holds have values,
// as long as its Real before more rows are appended.
func padDecText(dst *store.Vector, have int) {
	if len(dst.Str) < have {
		dst.Str = append(dst.Str, make([]string, have-len(dst.Str))...)
	}
}

// appendValue appends val (which must have v's storage class) to v.
func appendValue(v *store.Vector, val kql.Value) {
	n := v.Len()
	if val.Null && v.Type != store.TypeString {
		if v.Nulls == nil {
			v.Nulls = make([]bool, n, n+16)
		}
	}
	if v.Nulls != nil {
		v.Nulls = append(v.Nulls, val.Null && v.Type != store.TypeString)
	}
	switch {
	case v.Type == store.TypeBool:
		v.Bool = append(v.Bool, val.Bool && !val.Null)
	case kql.IsIntHeld(v.Type):
		x := val.Int
		if val.Null {
			x = 0
		}
		v.Int = append(v.Int, x)
	case kql.IsRealHeld(v.Type):
		x := val.Real
		if val.Null {
			x = 0
		}
		if v.Type == store.TypeDecimal {
			padDecText(v, len(v.Real))
			v.Str = append(v.Str, decValueText(val))
		}
		v.Real = append(v.Real, x)
	default:
		v.Str = append(v.Str, val.Str)
		v.Dict, v.Codes = nil, nil // Str changed: codes no longer describe it
	}
}

// appendRow appends row i of src to dst (same storage class).
func appendRow(dst, src *store.Vector, i int) {
	null := src.IsNull(i)
	if null && dst.Nulls == nil {
		dst.Nulls = make([]bool, dst.Len(), cap(dst.Int)+cap(dst.Real)+cap(dst.Str)+cap(dst.Bool)+1)
	}
	if dst.Nulls != nil {
		dst.Nulls = append(dst.Nulls, null)
	}
	switch {
	case dst.Type == store.TypeBool:
		dst.Bool = append(dst.Bool, src.Bool[i])
	case kql.IsIntHeld(dst.Type):
		dst.Int = append(dst.Int, src.Int[i])
	case kql.IsRealHeld(dst.Type):
		if dst.Type == store.TypeDecimal {
			padDecText(dst, len(dst.Real))
			dst.Str = append(dst.Str, decTextAt(src, i))
		}
		dst.Real = append(dst.Real, src.Real[i])
	default:
		dst.Str = append(dst.Str, src.Str[i])
		dst.Dict, dst.Codes = nil, nil
	}
}

// gather returns the rows sel of v as a new vector.
func gather(v *store.Vector, sel []int32) *store.Vector {
	out := &store.Vector{Type: v.Type}
	switch {
	case v.Type == store.TypeBool:
		out.Bool = make([]bool, len(sel))
		for j, i := range sel {
			out.Bool[j] = v.Bool[i]
		}
	case kql.IsIntHeld(v.Type):
		out.Int = make([]int64, len(sel))
		src := v.Int
		for j, i := range sel {
			out.Int[j] = src[i]
		}
	case kql.IsRealHeld(v.Type):
		out.Real = make([]float64, len(sel))
		src := v.Real
		for j, i := range sel {
			out.Real[j] = src[i]
		}
		if hasDecText(v) {
			out.Str = make([]string, len(sel))
			for j, i := range sel {
				out.Str[j] = v.Str[i]
			}
		}
	case v.CodesOnly(): // the rows keep their codes; no string is built (latemat.go)
		out.Dict, out.Codes = v.Dict, make([]uint32, len(sel))
		for j, i := range sel {
			out.Codes[j] = v.Codes[i]
		}
	default:
		out.Str = make([]string, len(sel))
		src := v.Str
		for j, i := range sel {
			out.Str[j] = src[i]
		}
		if v.Codes != nil && len(v.Codes) == len(v.Str) { // keep block codes for a later group-by
			out.Dict, out.Codes = v.Dict, make([]uint32, len(sel))
			for j, i := range sel {
				out.Codes[j] = v.Codes[i]
			}
		} else if len(sel)*sparseSelection <= len(src) {
			copyStrings(out.Str)
		}
	}
	if v.Nulls != nil {
		nulls := make([]bool, len(sel))
		any := false
		for j, i := range sel {
			if v.Nulls[i] {
				nulls[j] = true
				any = true
			}
		}
		if any {
			out.Nulls = nulls
		}
	}
	return out
}

// cloneVector copies v, so it stays valid after the store reuses its buffers.
func cloneVector(v *store.Vector, n int) *store.Vector {
	out := &store.Vector{Type: v.Type}
	switch {
	case v.Type == store.TypeBool:
		out.Bool = append([]bool(nil), v.Bool[:n]...)
	case kql.IsIntHeld(v.Type):
		out.Int = append([]int64(nil), v.Int[:n]...)
	case kql.IsRealHeld(v.Type):
		out.Real = append([]float64(nil), v.Real[:n]...)
		if hasDecText(v) {
			out.Str = append([]string(nil), v.Str[:n]...)
		}
	case v.CodesOnly():
		out.Dict = append([]string(nil), v.Dict...)
		out.Codes = append([]uint32(nil), v.Codes[:n]...)
	default:
		out.Str = append([]string(nil), v.Str[:n]...)
		if len(v.Codes) >= n { // keep block codes (copied too) for a later group-by
			out.Dict = append([]string(nil), v.Dict...)
			out.Codes = append([]uint32(nil), v.Codes[:n]...)
		}
	}
	if v.Nulls != nil {
		out.Nulls = append([]bool(nil), v.Nulls[:n]...)
	}
	return out
}

// sliceVector returns rows [from, to) of v, sharing memory.
func sliceVector(v *store.Vector, from, to int) *store.Vector {
	out := &store.Vector{Type: v.Type}
	switch {
	case v.Type == store.TypeBool:
		out.Bool = v.Bool[from:to]
	case kql.IsIntHeld(v.Type):
		out.Int = v.Int[from:to]
	case kql.IsRealHeld(v.Type):
		out.Real = v.Real[from:to]
		if hasDecText(v) {
			out.Str = v.Str[from:to:to]
		}
	default:
		if !v.CodesOnly() {
			out.Str = v.Str[from:to]
		}
		if v.Codes != nil && to <= len(v.Codes) {
			out.Dict, out.Codes = v.Dict, v.Codes[from:to:to]
		}
	}
	if v.Nulls != nil {
		out.Nulls = v.Nulls[from:to]
	}
	return out
}

// appendVector appends all rows of src to dst (same storage class).
func appendVector(dst, src *store.Vector, n int) {
	had := dst.Len()
	if src.Nulls != nil && dst.Nulls == nil {
		dst.Nulls = make([]bool, had, had+n)
	}
	switch {
	case dst.Type == store.TypeBool:
		dst.Bool = append(dst.Bool, src.Bool[:n]...)
	case kql.IsIntHeld(dst.Type):
		dst.Int = append(dst.Int, src.Int[:n]...)
	case kql.IsRealHeld(dst.Type):
		if dst.Type == store.TypeDecimal {
			padDecText(dst, len(dst.Real))
			if hasDecText(src) {
				dst.Str = append(dst.Str, src.Str[:n]...)
			} else {
				dst.Str = append(dst.Str, make([]string, n)...)
			}
		}
		dst.Real = append(dst.Real, src.Real[:n]...)
	default:
		dst.Str = append(dst.Str, src.Str[:n]...)
		dst.Dict, dst.Codes = nil, nil
	}
	if dst.Nulls != nil {
		if src.Nulls != nil {
			dst.Nulls = append(dst.Nulls, src.Nulls[:n]...)
		} else {
			dst.Nulls = append(dst.Nulls, make([]bool, n)...)
		}
	}
}

// orNulls returns the union of two null masks (nil when neither has nulls).
func orNulls(a, b []bool, n int) []bool {
	switch {
	case a == nil && b == nil:
		return nil
	case a == nil:
		return append([]bool(nil), b[:n]...)
	case b == nil:
		return append([]bool(nil), a[:n]...)
	}
	out := make([]bool, n)
	for i := range out {
		out[i] = a[i] || b[i]
	}
	return out
}

// sparseSelection: a gather keeping at most 1/sparseSelection of a string
// vector's rows copies the kept strings (copyStrings).
const sparseSelection = 4

// copyStrings replaces ss by copies in one new allocation. The store decodes
// a chunk's strings as substrings of one buffer (megabytes for a block of
// log messages); a filter that keeps a few rows of each block would otherwise
// keep every block's whole buffer alive until the query ends — gigabytes for
// a selective query over many blocks (found by the soak: 200 alert rules,
// 8 at a time, each holding the matching rows of a 5-minute window).
func copyStrings(ss []string) {
	n := 0
	for _, s := range ss {
		n += len(s)
	}
	if n == 0 {
		return
	}
	var b strings.Builder
	b.Grow(n)
	for _, s := range ss {
		b.WriteString(s)
	}
	all, off := b.String(), 0
	for j, s := range ss {
		ss[j] = all[off : off+len(s)]
		off += len(s)
	}
}

// gatherBatch keeps rows sel of b.
func gatherBatch(b *store.Batch, sel []int32) *store.Batch {
	out := &store.Batch{Schema: b.Schema, Cols: make([]*store.Vector, len(b.Cols)), Len: len(sel)}
	for i, c := range b.Cols {
		out.Cols[i] = gather(c, sel)
	}
	return out
}

// sliceBatch returns rows [from, to) of b, sharing memory.
func sliceBatch(b *store.Batch, from, to int) *store.Batch {
	out := &store.Batch{Schema: b.Schema, Cols: make([]*store.Vector, len(b.Cols)), Len: to - from}
	for i, c := range b.Cols {
		out.Cols[i] = sliceVector(c, from, to)
	}
	return out
}

// concatBatches joins batches of the same schema into one.
func concatBatches(schema store.Schema, bs []*store.Batch) *store.Batch {
	if len(bs) == 1 {
		return bs[0]
	}
	total := 0
	for _, b := range bs {
		total += b.Len
	}
	out := &store.Batch{Schema: schema, Cols: make([]*store.Vector, len(schema)), Len: total}
	for i, c := range schema {
		v := emptyVector(c.Type, total)
		for _, b := range bs {
			appendVector(v, b.Cols[i], b.Len)
		}
		out.Cols[i] = v
	}
	return out
}

// emptyBatch returns a batch of schema with no rows.
func emptyBatch(schema store.Schema) *store.Batch {
	out := &store.Batch{Schema: schema, Cols: make([]*store.Vector, len(schema))}
	for i, c := range schema {
		out.Cols[i] = emptyVector(c.Type, 0)
	}
	return out
}

// batchBytes estimates the memory a batch holds, for the memory limit.
func batchBytes(b *store.Batch) int64 {
	var n int64
	for _, c := range b.Cols {
		n += vectorBytes(c, b.Len)
	}
	return n
}

func vectorBytes(v *store.Vector, n int) int64 {
	var s int64
	switch {
	case v.Type == store.TypeBool:
		s = int64(n)
	case kql.IsIntHeld(v.Type), kql.IsRealHeld(v.Type):
		s = 8 * int64(n)
		if hasDecText(v) {
			for _, x := range v.Str[:n] {
				s += 16 + int64(len(x))
			}
		}
	case v.CodesOnly():
		s = 4 * int64(n)
	default:
		s = 16 * int64(n)
		for _, x := range v.Str[:n] {
			s += int64(len(x))
		}
	}
	if v.Nulls != nil {
		s += int64(n)
	}
	return s
}

// checkVector verifies that a vector handed in from outside (the store, a
// transform's input) is consistent with its declared type and length, so that
// kernels never index out of range.
func checkVector(v *store.Vector, t store.ColumnType, n int) error {
	if v == nil {
		return fmt.Errorf("missing vector")
	}
	if v.Type != t {
		if !(kql.IsIntHeld(v.Type) && kql.IsIntHeld(t)) && !(kql.IsRealHeld(v.Type) && kql.IsRealHeld(t)) &&
			!(kql.IsStringLike(v.Type) && kql.IsStringLike(t)) {
			return fmt.Errorf("type %s, want %s", v.Type, t)
		}
	}
	var l int
	switch {
	case t == store.TypeBool:
		l = len(v.Bool)
	case kql.IsIntHeld(t):
		l = len(v.Int)
	case kql.IsRealHeld(t):
		l = len(v.Real)
	case v.CodesOnly():
		// The codes are not checked against the dictionary here (a loop
		// over every row, 2 % of the soak's CPU): each reader of a
		// codes-only vector checks the codes it uses (latemat.go).
		l = len(v.Codes)
	default:
		l = len(v.Str)
	}
	if l < n {
		return fmt.Errorf("%d values, want %d", l, n)
	}
	if v.Nulls != nil && len(v.Nulls) < n {
		return fmt.Errorf("%d null flags, want %d", len(v.Nulls), n)
	}
	return nil
}

// retype returns v relabelled as type t when both share a storage class
// (int data in a long column, a guid column read as string).
func retype(v *store.Vector, t store.ColumnType) *store.Vector {
	if v.Type == t {
		return v
	}
	out := *v
	out.Type = t
	if t == store.TypeInt {
		out.Int = make([]int64, len(v.Int))
		for i, x := range v.Int {
			out.Int[i] = int64(int32(x))
		}
	}
	return &out
}
