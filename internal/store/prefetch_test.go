package store

import (
	"slices"
	"testing"
)

// TestCoalesceSpans: the read-ahead advises nearby chunks as one range —
// spans closer than the gap (or overlapping, or nested) merge, in offset
// order whatever order the tasks listed them in; farther ones stay apart.
func TestCoalesceSpans(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []span
		want []span
	}{
		{"empty", nil, nil},
		{"one", []span{{10, 20}}, []span{{10, 20}}},
		{"gap below the bound merges", []span{{100, 200}, {0, 50}}, []span{{0, 200}}},
		{"gap at the bound stays apart", []span{{0, 50}, {150, 200}}, []span{{0, 50}, {150, 200}}},
		{"nested and overlapping", []span{{0, 100}, {10, 20}, {90, 130}}, []span{{0, 130}}},
		{"runs", []span{{1000, 1010}, {0, 10}, {1050, 1060}, {20, 30}}, []span{{0, 30}, {1000, 1060}}},
	} {
		if got := coalesceSpans(slices.Clone(tc.in), 100); !slices.Equal(got, tc.want) {
			t.Errorf("%s: coalesceSpans(%v) = %v; want %v", tc.name, tc.in, got, tc.want)
		}
	}
}
