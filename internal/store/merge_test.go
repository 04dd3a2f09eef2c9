package store

import (
	"slices"
	"testing"
)

func TestPickMerge(t *testing.T) {
	parts := func(rows ...int) []*part {
		var out []*part
		for _, r := range rows {
			out = append(out, &part{meta: &partMeta{rows: r}})
		}
		return out
	}
	rowsOf := func(ps []*part) []int {
		var out []int
		for _, p := range ps {
			out = append(out, p.meta.rows)
		}
		return out
	}
	for _, c := range []struct {
		name    string
		rows    []int
		fanout  int
		maxRows int
		want    []int
	}{
		{"four flushes", []int{100, 90, 110, 95}, 4, 1000, []int{90, 95, 100, 110}},
		{"too few", []int{100, 90, 110}, 4, 1000, nil},
		// A merged part is not rewritten with every new flush: the small tier merges alone.
		{"small day merged whole", []int{400, 100, 100, 100, 100}, 4, 10000, []int{100, 100, 100, 100, 400}},
		{"tiers", []int{400, 100, 100, 100, 100}, 4, 700, []int{100, 100, 100, 100}},
		{"big parts wait for their tier", []int{400, 420, 100, 90}, 4, 10000, nil},
		{"second tier", []int{400, 420, 100, 390, 410}, 4, 1700, []int{390, 400, 410, 420}},
		{"row bound", []int{600, 600, 600, 600, 600}, 2, 1300, []int{600, 600}},
		{"final parts stay", []int{1000, 1000, 1000, 1000}, 4, 1000, nil},
		{"empty parts", []int{0, 0, 5, 3}, 4, 1000, nil},
		{"tier of small", []int{0, 0, 1, 3}, 3, 2, []int{0, 0, 1}},
		{"all small", []int{0, 0, 1, 3}, 3, 1000, []int{0, 0, 1, 3}},
	} {
		got := rowsOf(pickMerge(parts(c.rows...), c.fanout, c.maxRows))
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: pickMerge(%v) = %v, want %v", c.name, c.rows, got, c.want)
		}
	}
}
