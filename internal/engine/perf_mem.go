package engine

// Working-memory estimates of aggregation states whose size grows with
// their input rather than only with the number of groups, so that the
// per-query memory limit sees them: percentile digests (exact values and
// buffers) and dcount's HyperLogLog sets (exact hash sets, then registers).

// stateBytes estimates the memory of an aggregation state, or returns 0
// when the state is sized by its group count alone (counted by the caller).
// It walks every group: callers amortize it over at least as many rows.
func stateBytes(s aggState) int64 {
	switch a := s.(type) {
	case *percentileAgg:
		var n int64
		for _, d := range a.groups {
			n += d.memBytes()
		}
		return n
	case *dcountAgg:
		var n int64
		for _, h := range a.sets {
			n += h.memBytes()
		}
		return n
	}
	return 0
}

func (d *tdigest) memBytes() int64 {
	return 160 + int64(cap(d.exact)+cap(d.vals))*8 + int64(cap(d.cents)+cap(d.wbuf)+cap(d.spare))*16
}

// memBytes counts a sparse entry as 24 bytes (key plus map overhead).
func (h *hll) memBytes() int64 {
	return 64 + int64(len(h.regs)) + int64(len(h.sparse))*24
}
