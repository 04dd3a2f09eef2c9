package store

// Helpers over Vectors. Views share memory with their source and cap the
// capacity, so appending to a view never writes into the source.

func cloneEmpty(t ColumnType) *Vector { return &Vector{Type: t} }

// emptyVecCap returns an empty vector of type t with room for n values.
func emptyVecCap(t ColumnType, n int) *Vector {
	v := &Vector{Type: t}
	if n <= 0 {
		return v
	}
	switch classOf(t) {
	case classBool:
		v.Bool = make([]bool, 0, n)
	case classInt:
		v.Int = make([]int64, 0, n)
	case classReal:
		v.Real = make([]float64, 0, n)
		if t == TypeDecimal {
			v.Str = make([]string, 0, n)
		}
	default:
		v.Str = make([]string, 0, n)
	}
	return v
}

// viewVec returns rows [lo, hi) of v without copying.
func viewVec(v *Vector, lo, hi int) *Vector {
	out := &Vector{Type: v.Type}
	if v.Nulls != nil {
		out.Nulls = v.Nulls[lo:hi:hi]
	}
	switch classOf(v.Type) {
	case classBool:
		out.Bool = v.Bool[lo:hi:hi]
	case classInt:
		out.Int = v.Int[lo:hi:hi]
	case classReal:
		out.Real = v.Real[lo:hi:hi]
		if hasDecText(v, hi) {
			out.Str = v.Str[lo:hi:hi]
		}
	default:
		if v.Str != nil { // nil: codes-only
			out.Str = v.Str[lo:hi:hi]
		}
		if v.Codes != nil {
			out.Dict, out.Codes = v.Dict, v.Codes[lo:hi:hi]
		}
	}
	return out
}

// gatherVec returns the rows idx of v, copied.
func gatherVec(v *Vector, idx []int32) *Vector {
	out := &Vector{Type: v.Type}
	if v.Nulls != nil {
		out.Nulls = make([]bool, len(idx))
		for i, j := range idx {
			out.Nulls[i] = v.Nulls[j]
		}
	}
	switch classOf(v.Type) {
	case classBool:
		out.Bool = make([]bool, len(idx))
		for i, j := range idx {
			out.Bool[i] = v.Bool[j]
		}
	case classInt:
		out.Int = make([]int64, len(idx))
		for i, j := range idx {
			out.Int[i] = v.Int[j]
		}
	case classReal:
		out.Real = make([]float64, len(idx))
		for i, j := range idx {
			out.Real[i] = v.Real[j]
		}
		if hasDecText(v, len(v.Real)) {
			out.Str = make([]string, len(idx))
			for i, j := range idx {
				out.Str[i] = v.Str[j]
			}
		}
	default:
		if v.Str != nil { // nil: codes-only
			out.Str = make([]string, len(idx))
			for i, j := range idx {
				out.Str[i] = v.Str[j]
			}
		}
		if v.Codes != nil {
			out.Dict, out.Codes = v.Dict, make([]uint32, len(idx))
			for i, j := range idx {
				out.Codes[i] = v.Codes[j]
			}
		}
	}
	return out
}

// nullVec returns n nulls of type t; strings are empty, not null.
func nullVec(t ColumnType, n int) *Vector {
	v := &Vector{Type: t}
	appendNulls(v, 0, n)
	return v
}

func constStrVec(s string, n int) *Vector {
	v := &Vector{Type: TypeString, Str: make([]string, n)}
	for i := range v.Str {
		v.Str[i] = s
	}
	return v
}

// appendNulls appends n nulls to dst, which holds have values.
func appendNulls(dst *Vector, have, n int) {
	if n == 0 {
		return
	}
	switch classOf(dst.Type) {
	case classBool:
		dst.Bool = append(dst.Bool, make([]bool, n)...)
	case classInt:
		dst.Int = append(dst.Int, make([]int64, n)...)
	case classReal:
		if dst.Type == TypeDecimal {
			padDecText(dst, have)
			dst.Str = append(dst.Str, make([]string, n)...)
		}
		dst.Real = append(dst.Real, make([]float64, n)...)
	default:
		dst.Str = append(dst.Str, make([]string, n)...)
		if dst.Type == TypeString {
			return // strings are empty, never null
		}
	}
	if dst.Nulls == nil {
		dst.Nulls = make([]bool, have, have+n)
	}
	for range n {
		dst.Nulls = append(dst.Nulls, true)
	}
}

// appendVec appends rows [lo, hi) of src (or the rows idx, if idx is not nil)
// to dst, which holds have values. src and dst have the same storage class.
func appendVec(dst *Vector, have int, src *Vector, lo, hi int, idx []int32) {
	n := hi - lo
	if idx != nil {
		n = len(idx)
	}
	srcNulls := false
	if src.Nulls != nil && dst.Type != TypeString {
		if idx == nil {
			for _, b := range src.Nulls[lo:hi] {
				if b {
					srcNulls = true
					break
				}
			}
		} else {
			for _, j := range idx {
				if src.Nulls[j] {
					srcNulls = true
					break
				}
			}
		}
	}
	if srcNulls && dst.Nulls == nil {
		dst.Nulls = make([]bool, have, have+n)
	}
	if dst.Nulls != nil {
		switch {
		case !srcNulls:
			dst.Nulls = append(dst.Nulls, make([]bool, n)...)
		case idx == nil:
			dst.Nulls = append(dst.Nulls, src.Nulls[lo:hi]...)
		default:
			for _, j := range idx {
				dst.Nulls = append(dst.Nulls, src.Nulls[j])
			}
		}
	}
	switch classOf(dst.Type) {
	case classBool:
		if idx == nil {
			dst.Bool = append(dst.Bool, src.Bool[lo:hi]...)
		} else {
			for _, j := range idx {
				dst.Bool = append(dst.Bool, src.Bool[j])
			}
		}
	case classInt:
		if idx == nil {
			dst.Int = append(dst.Int, src.Int[lo:hi]...)
		} else {
			for _, j := range idx {
				dst.Int = append(dst.Int, src.Int[j])
			}
		}
	case classReal:
		if idx == nil {
			dst.Real = append(dst.Real, src.Real[lo:hi]...)
		} else {
			for _, j := range idx {
				dst.Real = append(dst.Real, src.Real[j])
			}
		}
		if dst.Type == TypeDecimal {
			padDecText(dst, have)
			switch {
			case !hasDecText(src, len(src.Real)):
				dst.Str = append(dst.Str, make([]string, n)...)
			case idx == nil:
				dst.Str = append(dst.Str, src.Str[lo:hi]...)
			default:
				for _, j := range idx {
					dst.Str = append(dst.Str, src.Str[j])
				}
			}
		}
	default:
		if idx == nil {
			dst.Str = append(dst.Str, src.Str[lo:hi]...)
		} else {
			for _, j := range idx {
				dst.Str = append(dst.Str, src.Str[j])
			}
		}
		if dst.Type == TypeString && src.Nulls != nil {
			// A null string is the empty string: clear what the source held in null slots.
			base := len(dst.Str) - n
			for i := range n {
				j := lo + i
				if idx != nil {
					j = int(idx[i])
				}
				if src.Nulls[j] {
					dst.Str[base+i] = ""
				}
			}
		}
	}
}

// estimateBytes approximates the memory held by rows [lo, hi) of v.
func estimateBytes(v *Vector, lo, hi int) int64 {
	switch classOf(v.Type) {
	case classBool:
		return int64(hi - lo)
	case classInt, classReal:
		n := 8 * int64(hi-lo)
		if hasDecText(v, hi) {
			for _, s := range v.Str[lo:hi] {
				n += 16 + int64(len(s))
			}
		}
		return n
	default:
		n := int64(16 * (hi - lo))
		for _, s := range v.Str[lo:hi] {
			n += int64(len(s))
		}
		return n
	}
}

// A decimal vector (TypeDecimal) may carry each value's exact text in Str
// beside the nearest float64 in Real (the query engine keeps 29 significant
// digits and the scale there); "" in a row means Real alone holds the value.
// The store keeps and encodes that text (colFlagDecText) so a stored decimal
// reads back exactly.

// hasDecText reports whether decimal vector v carries text for its first n rows.
func hasDecText(v *Vector, n int) bool {
	return v.Type == TypeDecimal && len(v.Str) >= n && len(v.Str) > 0 && len(v.Str) <= len(v.Real)
}

// padDecText extends the text of decimal vector dst, which holds have
// values, to have entries before more rows are appended.
func padDecText(dst *Vector, have int) {
	if len(dst.Str) < have {
		dst.Str = append(dst.Str, make([]string, have-len(dst.Str))...)
	}
}

// decTextOK reports whether s may be the stored text of a decimal: empty, or
// at most 40 characters of sign, digits and one point (the engine writes
// what System.Decimal prints). Anything else in a part is corruption.
func decTextOK(s string) bool {
	if len(s) > 40 {
		return false
	}
	dots := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
		case c == '-' && i == 0:
		case c == '.':
			dots++
		default:
			return false
		}
	}
	return dots <= 1
}
