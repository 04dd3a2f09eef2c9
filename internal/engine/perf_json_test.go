package engine

import (
	"slices"
	"testing"
)

// slowSplit is the general path: decode the whole array, re-encode each
// element (null as "").
func slowSplit(s string) ([]string, bool) {
	v, ok := decodeJSON(s)
	if !ok {
		return nil, false
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, len(arr))
	for i, e := range arr {
		if e != nil {
			out[i] = encodeJSON(e)
		}
	}
	return out, true
}

var splitSeeds = []string{
	`[]`, ` [ ] `, `[1,2,3]`, `["a","b"]`, `[null,1,null]`, `[true,false]`, `[1.50,-0,1e3,2E-7]`,
	`["tag-1","tag-2","tag-3","tag-4","tag-5","tag-6","tag-7","tag-8","tag-9","tag-10"]`,
	`[{"b":1,"a":2},[3,[4]],"x"]`, `[ "sp" , 1 ,{ "k" : [ ] } ]`, `["\u00e9","\/","a\"b","\n"]`,
	"[\"\u2028\",\"é\",\"<&>\"]", `["\ud800"]`, `[1,]`, `[1 2]`, `{"a":1}`, `"str"`, `[`, `[[[[]]]]`,
	`["]",",","[{"]`, `[{"x":"}"}]`, "[\"\xff\"]", `[1]x`, `[1] `, `null`,
}

func TestSplitJSONArrayMatchesDecodeEncode(t *testing.T) {
	for _, s := range splitSeeds {
		checkSplit(t, s)
	}
}

func checkSplit(t *testing.T, s string) {
	t.Helper()
	got, ok := splitJSONArray(s)
	want, wok := slowSplit(s)
	if !ok {
		// The fast path may decline anything; the caller falls back. It
		// must decline what is not a valid array.
		return
	}
	if !wok {
		t.Fatalf("%q: fast path accepted %q; the general path rejects it", s, got)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%q: got %q; want %q", s, got, want)
	}
}

func FuzzSplitJSONArray(f *testing.F) {
	for _, s := range splitSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 1<<16 {
			return
		}
		checkSplit(t, s)
	})
}

func BenchmarkSplitJSONArray(b *testing.B) {
	s := splitSeeds[7]
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			splitJSONArray(s)
		}
	})
	b.Run("decode-encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			slowSplit(s)
		}
	})
}
