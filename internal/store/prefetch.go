package store

import (
	"cmp"
	"slices"
)

// Read-ahead for a Select's part chunks.
//
// A part file is block-major (a block's chunks of all columns lie
// together), so a scan of a few columns reads small islands of each file,
// one pread per chunk, each of which waits for the disk on a cold page
// cache. prefetch tells the OS up front which ranges the Select's first
// tasks will read (posix_fadvise WILLNEED on Linux), so the disk works on
// them together while the workers decode; a chunk already in the page
// cache costs the advice call only.

const (
	// prefetchWindow bounds the chunk bytes one Select advises, so a
	// scan of a large table does not push the rest of the page cache out
	// ahead of its workers.
	prefetchWindow = 64 << 20
	// prefetchGap: chunks of one file closer than this are advised as
	// one range (the bytes between are read too, for one call fewer).
	prefetchGap = 32 << 10
)

// prefetch advises the chunks that the Select's part tasks, in task order
// and up to prefetchWindow bytes, will read: the non-virtual output
// columns the part has, less TimeGenerated where the block will be filled
// (SelectHints.TimeBin; an estimate, which only makes the advice looser).
// It is not used for Selects that may stop early or skip blocks (a limit,
// term hints): their reads are not known up front.
func (it *iterator) prefetch() {
	var order []*part
	spans := map[*part][]span{}
	var total int64
	tr := it.q.tr
tasks:
	for _, tk := range it.tasks {
		p := tk.p
		if p == nil {
			continue
		}
		bm := &p.meta.blocks[tk.block]
		lo, hi := max(bm.minT, tr.From), min(bm.maxT, tr.To-1)
		cut := bm.minT < tr.From || bm.maxT >= tr.To
		for _, oc := range it.out {
			if oc.isVirt {
				continue
			}
			j := p.meta.cols.Index(oc.col.Name)
			if j < 0 || (oc.col.Name == ColTimeGenerated && !cut && it.timeBin.Size > 0 && it.timeBin.OneBin(lo, hi)) {
				continue
			}
			cm := &bm.cols[j]
			if total += int64(cm.size); total > prefetchWindow {
				break tasks
			}
			if spans[p] == nil {
				order = append(order, p)
			}
			spans[p] = append(spans[p], span{cm.off, cm.off + int64(cm.size)})
		}
	}
	for _, p := range order {
		for _, s := range coalesceSpans(spans[p], prefetchGap) {
			adviseWillNeed(p.f, s.off, s.end-s.off)
		}
	}
}

// span is a byte range [off, end) of a part file.
type span struct{ off, end int64 }

// coalesceSpans sorts ss by offset and merges spans closer than gap (or
// overlapping) into one, so that each advice call covers a run of nearby
// chunks. It reorders ss in place.
func coalesceSpans(ss []span, gap int64) []span {
	if len(ss) == 0 {
		return nil
	}
	slices.SortFunc(ss, func(a, b span) int { return cmp.Compare(a.off, b.off) })
	out := []span{ss[0]}
	for _, s := range ss[1:] {
		cur := &out[len(out)-1]
		if s.off-cur.end < gap {
			cur.end = max(cur.end, s.end)
			continue
		}
		out = append(out, s)
	}
	return out
}
