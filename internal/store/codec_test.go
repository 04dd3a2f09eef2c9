package store

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// tokenEncodingsOf runs the write path (tokenEncoder) and the reference
// (tokenCoder) over ss and returns their decisions and encodings.
func tokenEncodingsOf(ss []string) (gotOK, wantOK bool, got, want []byte) {
	enc := getTokenEncoder()
	defer putTokenEncoder(enc)
	ref := getTokenCoder()
	defer putTokenCoder(ref)
	gotOK, wantOK = enc.analyze(ss), ref.analyze(ss)
	if gotOK && wantOK {
		got = enc.appendRowsTo(enc.appendTableTo(nil))
		want = ref.appendRowsTo(ref.appendTableTo(nil))
	}
	return
}

func checkTokenEncoding(t *testing.T, name string, ss []string) {
	t.Helper()
	gotOK, wantOK, got, want := tokenEncodingsOf(ss)
	if gotOK != wantOK {
		t.Fatalf("%s: tokenEncoder chose %v, tokenCoder %v", name, gotOK, wantOK)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: encodings differ (%d vs %d bytes)", name, len(got), len(want))
	}
	if gotOK {
		d := decoder{b: got}
		back := d.tokens(len(ss))
		if d.err != nil || len(d.b) != 0 {
			t.Fatalf("%s: decode: %v, %d trailing bytes", name, d.err, len(d.b))
		}
		for i := range ss {
			if back[i] != ss[i] {
				t.Fatalf("%s: row %d = %q, want %q", name, i, back[i], ss[i])
			}
		}
	}
}

// TestTokenEncoderMatchesReference: the hashed write path produces exactly
// the bytes of the reference tokenizer, on free text (with enough distinct
// tokens to grow its table several times), on values that are not worth
// tokenizing, and after reuse from the pool.
func TestTokenEncoderMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	words := make([]string, 20000)
	for i := range words {
		words[i] = fmt.Sprintf("w%xq", r.Uint32()%50000)
	}
	for round := range 3 {
		var ss []string
		for i := range 4000 {
			var sb strings.Builder
			for k := range 5 + i%40 {
				if k > 0 {
					sb.WriteString([]string{" ", ", ", " - ", "=", "\t"}[r.IntN(5)])
				}
				switch r.IntN(10) {
				case 0:
					sb.WriteString(words[r.IntN(len(words))])
				case 1:
					fmt.Fprintf(&sb, "%d", r.IntN(1000))
				case 2:
					sb.WriteString("ünïcödé")
				default:
					sb.WriteString([]string{"error", "connection", "to", "a", "GET", "/api/v1/items", "timeout", "ms"}[r.IntN(8)])
				}
			}
			ss = append(ss, sb.String())
		}
		checkTokenEncoding(t, fmt.Sprintf("free text %d", round), ss)
	}
	unique := make([]string, 2000)
	for i := range unique {
		unique[i] = fmt.Sprintf("%016x%016x-%d", r.Uint64(), r.Uint64(), i)
	}
	checkTokenEncoding(t, "unique IDs", unique)
	checkTokenEncoding(t, "short values", []string{"a", "bb", "ccc", "", "a"})
	long := strings.Repeat("alpha beta gamma ", 10000)
	checkTokenEncoding(t, "one long value", []string{long, long[:100], ""})
}

func FuzzTokenEncoder(f *testing.F) {
	f.Add("error: connection to db-1 timed out after 30 ms|GET /api/v1/items 200|ok", 24)
	f.Add("a|bb|ccc|dddd|a b c d e f g h i j k l m n o p q r s t u v w x y z", 1)
	f.Add("\x00\xff\xfe||  ||x", 3)
	f.Fuzz(func(t *testing.T, text string, repeat int) {
		ss := strings.Split(text, "|")
		repeat = 1 + (repeat&0xff)%64
		var all []string
		for i := range repeat {
			for _, s := range ss {
				all = append(all, s+fmt.Sprint(i%7))
			}
		}
		checkTokenEncoding(t, "fuzz", all)
	})
}
