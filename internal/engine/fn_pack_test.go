package engine

import (
	"testing"

	"custos/internal/kql"
	"custos/internal/store"
)

// TestPackAllAndSeriesStatsColumns evaluates the expressions kql.PackAll
// and kql.SeriesStatsColumns bind for the binder (pack_all() and the
// multi-column series_stats()).
func TestPackAllAndSeriesStatsColumns(t *testing.T) {
	schema := store.Schema{{Name: "a", Type: store.TypeLong}, {Name: "s", Type: store.TypeString}, {Name: "y", Type: store.TypeDynamic}}
	b := &store.Batch{Schema: schema, Len: 2, Cols: []*store.Vector{
		{Type: store.TypeLong, Int: []int64{1, 0}, Nulls: []bool{false, true}},
		{Type: store.TypeString, Str: []string{"x", ""}},
		{Type: store.TypeDynamic, Str: []string{"[1,5,3]", "[]"}},
	}}
	ev := newEvaluator(0)
	for _, tc := range []struct {
		ignore bool
		want   []string
	}{
		{false, []string{`{"a":1,"s":"x","y":[1,5,3]}`, `{"a":null,"s":"","y":[]}`}},
		{true, []string{`{"a":1,"s":"x","y":[1,5,3]}`, `{"y":[]}`}},
	} {
		e := kql.PackAll(schema, tc.ignore)
		if err := ev.prepare(e); err != nil {
			t.Fatal(err)
		}
		v, err := ev.eval(e, b)
		if err != nil {
			t.Fatal(err)
		}
		for i, w := range tc.want {
			if v.Str[i] != w {
				t.Errorf("pack_all(%v) row %d = %s; want %s", tc.ignore, i, v.Str[i], w)
			}
		}
	}
	cols, err := kql.SeriesStatsColumns("series_stats_y", &kql.ColRef{Name: "y", T: store.TypeDynamic}, false)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"series_stats_y_min": "1", "series_stats_y_max_idx": "1", "series_stats_y_avg": "3", "series_stats_y_variance": "4"}
	for _, c := range cols {
		w, ok := want[c.Name]
		if !ok {
			continue
		}
		v, err := ev.eval(c.X, b)
		if err != nil {
			t.Fatal(err)
		}
		if got := valueAt(v, 0).String(); got != w {
			t.Errorf("%s = %s; want %s", c.Name, got, w)
		}
		if !v.IsNull(1) {
			t.Errorf("%s of an empty series is %v; want null", c.Name, valueAt(v, 1))
		}
	}
	if _, err := kql.SeriesStatsColumns("x", &kql.ColRef{Name: "a", T: store.TypeLong}, false); err == nil {
		t.Error("series_stats of a long: want an error")
	}
}
