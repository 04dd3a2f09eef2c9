package store

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// tokenSampleVectors are free-text columns that take the token encoding:
// repeated words, punctuation runs, non-ASCII and invalid UTF-8, empty
// values, and (dynamic) nulls.
func tokenSampleVectors() []*Vector {
	words := []string{"alpha", "Beta", "gamma42", "δέλτα", "x", "\xff\xfe", "--", "  ", "status=200"}
	text := &Vector{Type: TypeString}
	dyn := &Vector{Type: TypeDynamic}
	for i := range 60 {
		var sb strings.Builder
		for k := range 8 + i%5 {
			sb.WriteString(words[(i*7+k*3)%len(words)])
			sb.WriteString([]string{" ", ", ", ". ", ""}[k%4])
		}
		s := sb.String()
		if i%17 == 5 {
			s = ""
		}
		text.Str = append(text.Str, s)
		dyn.Str = append(dyn.Str, fmt.Sprintf(`{"msg":"%s","n":%d,"tags":["a","b"]}`, words[i%len(words)]+" repeated words here", i))
		dyn.Nulls = append(dyn.Nulls, i%9 == 4)
		if i%9 == 4 {
			dyn.Str[i] = ""
		}
	}
	return []*Vector{text, dyn}
}

func TestTokenEncodingRoundTrip(t *testing.T) {
	for _, v := range tokenSampleVectors() {
		n := len(v.Str)
		enc := encodeColumn(nil, v, 0, n, true)
		if enc[0]&colFlagTokens == 0 {
			t.Fatalf("%s: flags %#x, want the token encoding", v.Type, enc[0])
		}
		d := decoder{b: enc}
		got, err := decodeColumn(&d, v.Type, n)
		if err != nil || len(d.b) != 0 {
			t.Fatalf("%s: %v (%d trailing bytes)", v.Type, err, len(d.b))
		}
		if !slices.Equal(got.Str, v.Str) {
			t.Fatalf("%s: round trip differs:\n%q\n%q", v.Type, got.Str[:3], v.Str[:3])
		}
		if v.Nulls != nil && !slices.Equal(got.Nulls, v.Nulls) {
			t.Fatalf("%s: nulls differ", v.Type)
		}
		// A sub-range encodes on its own.
		enc = encodeColumn(nil, v, 10, 50, true)
		d = decoder{b: enc}
		if got, err = decodeColumn(&d, v.Type, 40); err != nil || !slices.Equal(got.Str, v.Str[10:50]) {
			t.Fatalf("%s: sub-range: %v", v.Type, err)
		}
	}
}

// Unique values (IDs, hashes) keep the plain encoding: the token table would
// hold all the text.
func TestTokenEncodingSkipsUniqueValues(t *testing.T) {
	v := &Vector{Type: TypeString}
	for i := range 200 {
		v.Str = append(v.Str, fmt.Sprintf("%032x", uint64(i)*0x9e3779b97f4a7c15))
	}
	enc := encodeColumn(nil, v, 0, 200, true)
	if enc[0]&(colFlagTokens|colFlagDict) != 0 {
		t.Fatalf("flags %#x: want plain strings", enc[0])
	}
	// Short values are not tokenized either.
	short := &Vector{Type: TypeString, Str: slices.Repeat([]string{"a b", "c d", "e f", "g h", "i j"}, 10)}
	short.Str = append(short.Str, "k l", "m n", "o p", "q r", "s t", "u v", "w x", "y z", "0 1", "2 3", "4 5", "6 7", "8 9")
	if enc := encodeColumn(nil, short, 0, len(short.Str), true); enc[0]&colFlagTokens != 0 {
		t.Fatalf("short values tokenized")
	}
	// GUIDs never are.
	g := tokenSampleVectors()[0]
	g.Type = TypeGUID
	if enc := encodeColumn(nil, g, 0, len(g.Str), true); enc[0]&colFlagTokens != 0 {
		t.Fatalf("guid column tokenized")
	}
}

// Hostile token encodings fail with an error: an index out of range, counts
// larger than the input, and a tiny input expanding past the text bound.
func TestTokenDecodingRejectsBadInput(t *testing.T) {
	cases := map[string][]byte{
		"index out of range": {colFlagTokens, 1, 1, 'a', 1, 1, 5},
		"counts exceed":      {colFlagTokens, 1, 1, 'a', 200, 1},
		"no indexes":         {colFlagTokens, 1, 1, 'a', 1, 1},
		"dict and tokens":    {colFlagTokens | colFlagDict, 1, 1, 'a', 1, 1, 0},
	}
	for name, b := range cases {
		d := decoder{b: b}
		if _, err := decodeColumn(&d, TypeString, 2); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	// 64 KiB token repeated by one-byte indexes: 4096 rows × 1024 tokens = 256 GiB.
	big := []byte{colFlagTokens, 1}
	big = append(big, 0x80, 0x80, 0x04) // length 65536
	big = append(big, make([]byte, 65536)...)
	rows := 4096
	for range rows {
		big = append(big, 0x80, 0x08) // 1024 tokens
	}
	big = append(big, make([]byte, rows*1024)...)
	d := decoder{b: big}
	if _, err := decodeColumn(&d, TypeString, rows); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("bomb: %v", err)
	}
}

// The dictionary encoding exposes its codes; views and gathers keep them
// consistent with Str.
func TestDictionaryCodes(t *testing.T) {
	v := &Vector{Type: TypeString}
	for i := range 100 {
		v.Str = append(v.Str, []string{"Info", "Warning", "Error"}[i%3])
	}
	enc := encodeColumn(nil, v, 0, 100, true)
	d := decoder{b: enc}
	got, err := decodeColumn(&d, TypeString, 100)
	if err != nil {
		t.Fatal(err)
	}
	check := func(w *Vector) {
		t.Helper()
		if len(w.Codes) != len(w.Str) {
			t.Fatalf("%d codes for %d values", len(w.Codes), len(w.Str))
		}
		for i, c := range w.Codes {
			if w.Dict[c] != w.Str[i] {
				t.Fatalf("row %d: Dict[%d] = %q, Str %q", i, c, w.Dict[c], w.Str[i])
			}
		}
	}
	if len(got.Dict) != 3 {
		t.Fatalf("dict %q", got.Dict)
	}
	check(got)
	check(viewVec(got, 10, 20))
	check(gatherVec(got, []int32{5, 1, 99}))
	if !slices.Equal(got.Str, v.Str) {
		t.Fatal("values differ")
	}
}
