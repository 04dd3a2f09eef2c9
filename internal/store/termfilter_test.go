package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// termFilterRows builds n free-text rows (token-encoded in parts) over a
// vocabulary of 300 words; rows whose index is in marked carry the given
// extra text.
func termFilterRows(n int, marked map[int]string) (*Batch, []string) {
	rng := rand.New(rand.NewPCG(7, 9))
	vocab := make([]string, 300)
	for i := range vocab {
		vocab[i] = fmt.Sprintf("w%dx", i)
	}
	b := &Batch{Schema: Schema{{ColTimeGenerated, TypeDatetime}, {"Message", TypeString}, {"N", TypeLong}}, Len: n}
	tg, msg, num := &Vector{Type: TypeDatetime}, &Vector{Type: TypeString}, &Vector{Type: TypeLong}
	base := int64(20_000) * TicksPerDay
	for i := range n {
		var sb strings.Builder
		for k := range 12 + rng.IntN(8) {
			if k > 0 {
				sb.WriteString([]string{" ", ", ", ". "}[rng.IntN(3)])
			}
			sb.WriteString(vocab[rng.IntN(len(vocab))])
		}
		if extra, ok := marked[i]; ok {
			sb.WriteString(extra)
		}
		tg.Int = append(tg.Int, base+int64(i)*TicksPerSecond)
		msg.Str = append(msg.Str, sb.String())
		num.Int = append(num.Int, int64(i))
	}
	b.Cols = []*Vector{tg, msg, num}
	return b, msg.Str
}

// TestTermRowFilter checks that a column term hint on a token-encoded string
// column is answered from the chunk's token table: blocks without the term
// are skipped without decoding the column, and blocks with it return exactly
// the rows holding the term (case-insensitively, as a whole token), with the
// other columns aligned, the time range applied, and values intact.
func TestTermRowFilter(t *testing.T) {
	ctx := context.Background()
	env := newEnv(t)
	db := env.open(t, func(o *Options) { o.BlockRows = 1024 })
	defer db.Close()
	ref := TableRef{testWS, "Text_CL"}
	if err := db.EnsureTable(ctx, ref, Schema{{"Message", TypeString}, {"N", TypeLong}}, 0); err != nil {
		t.Fatal(err)
	}
	const n = 5000
	marked := map[int]string{
		17:   " Quokka here",
		18:   " quokka, and KOALA",
		1500: " (quokka)",
		1501: " quokkas are not quokka-like", // "quokkas" is not the term; "quokka" is
		2999: " koala only",
		3000: " xquokka is not it",
		4990: " last QUOKKA koala",
	}
	b, msgs := termFilterRows(n, marked)
	a, err := db.Appender(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Append(b); err != nil {
		t.Fatal(err)
	}
	if err := a.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// The Message chunks must be split token chunks for the test to mean anything.
	q0, err := db.Querier(ctx, ref, AllTime)
	if err != nil {
		t.Fatal(err)
	}
	p := q0.(*querier).parts[0]
	mi := p.meta.cols.Index("Message")
	for bi, bm := range p.meta.blocks {
		if bm.cols[mi].flags&chunkFlagSplit == 0 {
			t.Fatalf("block %d: Message chunk is not split (flags %#x)", bi, bm.cols[mi].flags)
		}
	}
	q0.Close()

	want := func(terms []string, lo, hi int) []int64 {
		var out []int64
		for i := lo; i < hi; i++ {
			toks := Tokenize(msgs[i])
			ok := true
			for _, term := range terms {
				if !slices.Contains(toks, term) {
					ok = false
				}
			}
			if ok {
				out = append(out, int64(i))
			}
		}
		return out
	}
	base := int64(20_000) * TicksPerDay
	for _, c := range []struct {
		name   string
		hints  []TermHint
		terms  []string
		lo, hi int
	}{
		{"one term", []TermHint{{"Message", "quokka"}}, []string{"quokka"}, 0, n},
		{"upper-case hint", []TermHint{{"Message", "QUOKKA"}}, []string{"quokka"}, 0, n},
		{"two terms", []TermHint{{"Message", "quokka"}, {"Message", "koala"}}, []string{"quokka", "koala"}, 0, n},
		{"phrase hint", []TermHint{{"Message", "koala quokka"}}, []string{"quokka", "koala"}, 0, n},
		{"absent term", []TermHint{{"Message", "wombat"}}, []string{"wombat"}, 0, n},
		{"common word", []TermHint{{"Message", "w7x"}}, []string{"w7x"}, 0, n},
		{"time range", []TermHint{{"Message", "quokka"}}, []string{"quokka"}, 18, 1501},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr := TimeRange{From: base + int64(c.lo)*TicksPerSecond, To: base + int64(c.hi)*TicksPerSecond}
			q, err := db.Querier(ctx, ref, tr)
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			it := q.Select(ctx, SelectHints{Columns: []string{"N", "Message"}, Terms: c.hints})
			var got []int64
			for it.Next() {
				bt := it.Batch()
				for i := range bt.Len {
					nv := bt.Cols[0].Int[i]
					if bt.Cols[1].Str[i] != msgs[nv] {
						t.Fatalf("row %d: Message %q, want %q", nv, bt.Cols[1].Str[i], msgs[nv])
					}
					got = append(got, nv)
				}
			}
			if err := it.Err(); err != nil {
				t.Fatal(err)
			}
			st := it.(StatsIterator).Stats()
			it.Close()
			slices.Sort(got)
			w := want(c.terms, c.lo, c.hi)
			if !slices.Equal(got, w) {
				t.Fatalf("rows %v, want %v", got, w)
			}
			if c.name == "absent term" && st.BlocksRead != 0 {
				t.Errorf("absent term: %d blocks read, want 0 (stats %+v)", st.BlocksRead, st)
			}
			if c.name != "common word" && st.RowsReturned != int64(len(w)) {
				t.Errorf("%d rows returned, want only the %d matches (stats %+v)", st.RowsReturned, len(w), st)
			}
		})
	}
	// Without hints every row comes back.
	q, err := db.Querier(ctx, ref, AllTime)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	it := q.Select(ctx, SelectHints{Columns: []string{"Message"}})
	rows := 0
	for it.Next() {
		rows += it.Batch().Len
	}
	it.Close()
	if rows != n {
		t.Fatalf("%d rows without hints, want %d", rows, n)
	}
}

// TestCountUvarintEnds checks the word-at-a-time count against a plain decode.
func TestCountUvarintEnds(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		var b []byte
		k := rng.IntN(100)
		for range k {
			b = binary.AppendUvarint(b, rng.Uint64N(1<<uint(rng.IntN(30)+1)))
		}
		if got := countUvarintEnds(b); got != k {
			t.Fatalf("countUvarintEnds = %d, want %d", got, k)
		}
	}
}

// splitSample encodes a token-encoded string column and returns the two
// halves of its split chunk encoding.
func splitSample(t testing.TB) (rawA, rawB []byte, rows int) {
	v := tokenSampleVectors()[0]
	enc, _, split := encodeChunk(nil, v, 0, len(v.Str), true, false)
	if split == 0 {
		t.Fatal("sample is not split token-encoded")
	}
	return enc[:split], enc[split:], len(v.Str)
}

// FuzzMatchTokenRows feeds damaged second halves of a split chunk to the
// row matcher: it must fail or succeed, never panic, and on the intact input
// find exactly the rows that hold the term.
func FuzzMatchTokenRows(f *testing.F) {
	rawA, rawB, rows := splitSample(f)
	f.Add(rawB, uint16(rows))
	f.Add(rawB[:len(rawB)/2], uint16(rows))
	f.Add([]byte{}, uint16(0))
	toks, err := parseTokenTable(rawA)
	if err != nil {
		f.Fatal(err)
	}
	mark, full, all := markTerms(toks, []string{"gamma42"})
	if !all {
		f.Fatal("sample lacks its term")
	}
	f.Fuzz(func(t *testing.T, b []byte, n uint16) {
		got, vals, err := matchTokenRows(b, int(n), toks, mark, full)
		if err != nil {
			return
		}
		if len(got) != len(vals) {
			t.Fatalf("%d rows, %d values", len(got), len(vals))
		}
		for i, r := range got {
			if int(r) >= int(n) || i > 0 && got[i-1] >= r {
				t.Fatalf("rows %v out of order or range %d", got, n)
			}
		}
	})
}

// TestMatchTokenRowsAgainstDecode compares the matcher with a full decode.
func TestMatchTokenRowsAgainstDecode(t *testing.T) {
	v := tokenSampleVectors()[0]
	rawA, rawB, rows := splitSample(t)
	toks, err := parseTokenTable(rawA)
	if err != nil {
		t.Fatal(err)
	}
	for _, terms := range [][]string{{"gamma42"}, {"alpha", "beta"}, {"x"}, {"status", "200"}, {"nope"}} {
		mark, full, all := markTerms(toks, terms)
		var want []int32
		for i, s := range v.Str {
			ok := true
			for _, term := range terms {
				if !slices.Contains(Tokenize(s), term) {
					ok = false
				}
			}
			if ok {
				want = append(want, int32(i))
			}
		}
		if !all {
			if len(want) != 0 {
				t.Fatalf("%v: table lacks a term, but rows %v hold them", terms, want)
			}
			continue
		}
		got, vals, err := matchTokenRows(rawB, rows, toks, mark, full)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%v: rows %v, want %v", terms, got, want)
		}
		for i, r := range got {
			if vals[i] != v.Str[r] {
				t.Fatalf("%v: row %d value %q, want %q", terms, r, vals[i], v.Str[r])
			}
		}
	}
	// Every prefix of the rows half fails or matches a subset; none panics.
	mark, full, _ := markTerms(toks, []string{"gamma42"})
	for k := range len(rawB) {
		matchTokenRows(rawB[:k], rows, toks, mark, full)
	}
}

// logMessages returns n log-like messages: a request line, numbers, a
// 16-hex-digit trace ID, words, and every 7th row a token longer than 16
// bytes, so both copy paths of decoder.tokens run.
func logMessages(n int) []string {
	rng := rand.New(rand.NewPCG(3, 5))
	words := []string{"bafe", "doluma", "rite", "sa", "gomi", "ponevo", "tala", "fisa", "rone", "kaluri"}
	out := make([]string, n)
	var sb strings.Builder
	for i := range out {
		sb.Reset()
		fmt.Fprintf(&sb, "GET /api/v1/orders/%d status=200 user=user-%d latency_ms=%.3f trace=%016x ",
			rng.IntN(100000), rng.IntN(1000000), rng.Float64()*100, rng.Uint64())
		if i%7 == 3 {
			fmt.Fprintf(&sb, "averyveryverylongtokenindeed%d ", i)
		}
		for range 10 + rng.IntN(20) {
			sb.WriteString(words[rng.IntN(len(words))])
			sb.WriteString([]string{" ", ", ", ". "}[rng.IntN(3)])
		}
		out[i] = sb.String()
	}
	return out
}

func TestTokenDecodingLogMessages(t *testing.T) {
	v := &Vector{Type: TypeString, Str: logMessages(5000)}
	enc := encodeColumn(nil, v, 0, len(v.Str), true)
	if enc[0]&colFlagTokens == 0 {
		t.Fatalf("flags %#x, want the token encoding", enc[0])
	}
	d := decoder{b: enc}
	got, err := decodeColumn(&d, TypeString, len(v.Str))
	if err != nil || len(d.b) != 0 {
		t.Fatalf("%v (%d trailing bytes)", err, len(d.b))
	}
	for i := range v.Str {
		if got.Str[i] != v.Str[i] {
			t.Fatalf("row %d: %q, want %q", i, got.Str[i], v.Str[i])
		}
	}
}

// BenchmarkTokenDecode decodes a 16,384-row token-encoded block of log
// messages (the Message column of a part).
func BenchmarkTokenDecode(b *testing.B) {
	v := &Vector{Type: TypeString, Str: logMessages(16384)}
	enc := encodeColumn(nil, v, 0, len(v.Str), true)
	raw := 0
	for _, s := range v.Str {
		raw += len(s)
	}
	b.SetBytes(int64(raw))
	b.ReportAllocs()
	for b.Loop() {
		d := decoder{b: enc}
		if _, err := decodeColumn(&d, TypeString, len(v.Str)); err != nil {
			b.Fatal(err)
		}
	}
}
