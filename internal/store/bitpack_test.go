package store

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// legacyCodecVectors are the columns of testdata/codec/varint-v1.bin: each
// encoded there, compact and not, by the encoder as it was before the
// bit-packed encodings (session 8), so the reader is checked against bytes
// that encoder really wrote.
func legacyCodecVectors() []*Vector {
	var vs []*Vector
	vs = append(vs, allTypesBatch(0, 40).Cols...)
	times := &Vector{Type: TypeDatetime}
	t0 := TicksFromTime(baseTime)
	for i := range 1000 {
		times.Int = append(times.Int, t0+int64(i*i%977)*1234+int64(i)*TicksPerSecond/10)
	}
	vs = append(vs, times)
	narrow := &Vector{Type: TypeInt, Nulls: make([]bool, 300)}
	for i := range 300 {
		x := int64([]int{200, 404, 500, 201, 302}[i%5])
		if i%11 == 4 {
			narrow.Nulls[i] = true
			x = 0
		}
		narrow.Int = append(narrow.Int, x)
	}
	vs = append(vs, narrow)
	extremes := &Vector{Type: TypeLong, Int: []int64{math.MinInt64, math.MaxInt64, 0, -1, 1, math.MinInt64, math.MinInt64, math.MaxInt64, 42}}
	vs = append(vs, extremes)
	codes := &Vector{Type: TypeString}
	for i := range 500 {
		codes.Str = append(codes.Str, []string{"Information", "Warning", "Error", "Verbose", "Critical"}[(i*7)%5])
	}
	vs = append(vs, codes)
	users := &Vector{Type: TypeString}
	for i := range 700 {
		users.Str = append(users.Str, "user-"+string(rune('a'+i%26))+string(rune('a'+(i*13)%17)))
	}
	vs = append(vs, users)
	return vs
}

// decodeAll decodes enc as n values of type t and fails on an error or
// trailing bytes.
func decodeAll(t *testing.T, enc []byte, typ ColumnType, n int, codesOnly bool) *Vector {
	t.Helper()
	d := decoder{b: enc}
	v, err := decodeColumnCodes(&d, typ, n, codesOnly)
	if err != nil {
		t.Fatalf("decode %s, %d rows: %v", typ, n, err)
	}
	if len(d.b) != 0 {
		t.Fatalf("decode %s, %d rows: %d trailing bytes", typ, n, len(d.b))
	}
	return v
}

// sameValues reports where got differs from want (nil if nowhere). Null
// slots must hold the zero value in got whatever want holds there.
func sameValues(want, got *Vector) error {
	if got.Len() != want.Len() {
		return fmt.Errorf("%d values, want %d", got.Len(), want.Len())
	}
	for i := range want.Len() {
		if want.IsNull(i) != got.IsNull(i) {
			return fmt.Errorf("row %d: null %v, want %v", i, got.IsNull(i), want.IsNull(i))
		}
		switch classOf(want.Type) {
		case classInt:
			w := want.Int[i]
			if want.IsNull(i) {
				w = 0
			}
			if got.Int[i] != w {
				return fmt.Errorf("row %d: %d, want %d", i, got.Int[i], w)
			}
		case classReal:
			if math.Float64bits(got.Real[i]) != math.Float64bits(want.Real[i]) {
				return fmt.Errorf("row %d: %v, want %v", i, got.Real[i], want.Real[i])
			}
		case classBool:
			if got.Bool[i] != want.Bool[i] {
				return fmt.Errorf("row %d: %v, want %v", i, got.Bool[i], want.Bool[i])
			}
		case classStr:
			g := ""
			if got.Str != nil {
				g = got.Str[i]
			} else {
				g = got.Dict[got.Codes[i]]
			}
			if g != want.Str[i] {
				return fmt.Errorf("row %d: %q, want %q", i, g, want.Str[i])
			}
		}
	}
	return nil
}

// TestDecodeLegacyChunks: chunks written by the encoder before the packed
// encodings (testdata/codec/varint-v1.bin, varints for integers and codes)
// still decode to the same values, fully and codes-only.
func TestDecodeLegacyChunks(t *testing.T) {
	raw, err := os.ReadFile("testdata/codec/varint-v1.bin")
	if err != nil {
		t.Fatal(err)
	}
	d := decoder{b: raw}
	sawDict := false
	for k, v := range legacyCodecVectors() {
		for _, compact := range []bool{true, false} {
			enc := d.bytes(d.count("chunk length", len(d.b)))
			if d.err != nil {
				t.Fatalf("vector %d: %v", k, d.err)
			}
			if enc[0]&colFlagPacked != 0 {
				t.Fatalf("vector %d: legacy chunk with the packed flag", k)
			}
			sawDict = sawDict || enc[0]&colFlagDict != 0
			// The encoder switch writes the same bytes as the old encoder.
			mode := encMode(0)
			if compact {
				mode = encCompact
			}
			if again, _, _ := encodeChunkMode(nil, v, 0, v.Len(), mode, false); !bytes.Equal(again, enc) {
				t.Fatalf("vector %d (%s, compact %v): encoder without packing differs from the legacy bytes", k, v.Type, compact)
			}
			for _, codesOnly := range []bool{false, true} {
				got := decodeAll(t, enc, v.Type, v.Len(), codesOnly)
				if err := sameValues(v, got); err != nil {
					t.Fatalf("vector %d (%s, compact %v, codes-only %v): %v", k, v.Type, compact, codesOnly, err)
				}
			}
		}
	}
	if len(d.b) != 0 {
		t.Fatalf("%d bytes left in the legacy file", len(d.b))
	}
	if !sawDict {
		t.Fatal("no dictionary chunk in the legacy file")
	}
}

// packCases are integer columns for the round trips: every length around
// the group size, sorted times, narrow and unsorted values, the int64
// extremes, nulls (leading, trailing, all).
func packCases() map[string]*Vector {
	r := rand.New(rand.NewPCG(7, 8))
	cases := map[string]*Vector{}
	t0 := TicksFromTime(baseTime)
	for _, n := range []int{0, 1, 2, 7, 8, 9, 63, 64, 65, 127, 128, 129, 255, 256, 257, 1000, 4096, 4097} {
		times := &Vector{Type: TypeDatetime}
		x := t0
		for range n {
			x += int64(r.IntN(20000))
			times.Int = append(times.Int, x)
		}
		cases[fmt.Sprintf("times/%d", n)] = times
		narrow := &Vector{Type: TypeInt}
		for range n {
			narrow.Int = append(narrow.Int, int64([]int{200, 404, 500, 201}[r.IntN(4)]))
		}
		cases[fmt.Sprintf("narrow/%d", n)] = narrow
		wild := &Vector{Type: TypeLong}
		for range n {
			wild.Int = append(wild.Int, int64(r.Uint64()))
		}
		cases[fmt.Sprintf("random/%d", n)] = wild
		ext := &Vector{Type: TypeTimespan}
		for i := range n {
			ext.Int = append(ext.Int, []int64{math.MinInt64, math.MaxInt64, 0, -1, math.MinInt64 + 1, math.MaxInt64 - 1}[(i*5+i/3)%6])
		}
		cases[fmt.Sprintf("extremes/%d", n)] = ext
		nulls := &Vector{Type: TypeLong, Nulls: make([]bool, n)}
		for i := range n {
			v := int64(1_000_000_000 + i*3)
			if i < 3 || i%7 == 0 || i >= n-2 {
				nulls.Nulls[i] = true
				v = 0
			}
			nulls.Int = append(nulls.Int, v)
		}
		cases[fmt.Sprintf("nulls/%d", n)] = nulls
		allNull := &Vector{Type: TypeInt, Nulls: make([]bool, n), Int: make([]int64, n)}
		for i := range n {
			allNull.Nulls[i] = true
		}
		cases[fmt.Sprintf("allnull/%d", n)] = allNull
		same := &Vector{Type: TypeDatetime}
		for range n {
			same.Int = append(same.Int, t0)
		}
		cases[fmt.Sprintf("constant/%d", n)] = same
		desc := &Vector{Type: TypeLong}
		for i := range n {
			desc.Int = append(desc.Int, int64(n-i)*1_000_003)
		}
		cases[fmt.Sprintf("descending/%d", n)] = desc
	}
	// Every width: values spanning exactly 2^w - 1 in each group.
	for w := range 65 {
		v := &Vector{Type: TypeLong}
		hi := uint64(0)
		if w > 0 {
			hi = ^uint64(0) >> (64 - w)
		}
		for i := range 300 {
			v.Int = append(v.Int, int64(uint64(i*7919)%(hi|1)&hi))
			if i%128 == 5 {
				v.Int[i] = int64(hi)
			}
			if i%128 == 9 {
				v.Int[i] = 0
			}
		}
		cases[fmt.Sprintf("width/%d", w)] = v
	}
	return cases
}

func TestPackedIntRoundTrip(t *testing.T) {
	for name, v := range packCases() {
		n := v.Len()
		enc := encodeColumn(nil, v, 0, n, true)
		if enc[0]&colFlagPacked == 0 {
			t.Fatalf("%s: not packed", name)
		}
		if err := sameValues(v, decodeAll(t, enc, v.Type, n, false)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// The WAL keeps varints.
		if wal := encodeColumn(nil, v, 0, n, false); wal[0]&colFlagPacked != 0 {
			t.Fatalf("%s: the WAL encoding is packed", name)
		}
		// A sub-range encodes on its own.
		if n > 10 {
			sub := viewVec(v, 3, n-4)
			enc := encodeColumn(nil, v, 3, n-4, true)
			if err := sameValues(sub, decodeAll(t, enc, v.Type, n-7, false)); err != nil {
				t.Fatalf("%s [3:n-4]: %v", name, err)
			}
		}
	}
}

// TestPackedIntModes: sorted times pack their deltas, narrow unsorted
// integers their values, and both take fewer bytes than varints.
func TestPackedIntModes(t *testing.T) {
	cases := packCases()
	for name, mode := range map[string]byte{"times/4096": packDelta, "narrow/4096": packFOR, "descending/4096": packDelta} {
		v := cases[name]
		enc := encodeColumn(nil, v, 0, v.Len(), true)
		if enc[1] != mode {
			t.Errorf("%s: mode %d, want %d", name, enc[1], mode)
		}
		old, _, _ := encodeChunkMode(nil, v, 0, v.Len(), encCompact, false)
		if len(enc) >= len(old) {
			t.Errorf("%s: packed %d bytes, varints %d", name, len(enc), len(old))
		}
	}
	// A constant column is a few bytes whatever its length.
	if enc := encodeColumn(nil, cases["constant/4097"], 0, 4097, true); len(enc) > 80 {
		t.Errorf("constant column: %d bytes", len(enc))
	}
}

func TestPackedCodesRoundTrip(t *testing.T) {
	for _, nd := range []int{1, 2, 3, 4, 5, 7, 8, 9, 255, 256, 257, 1000, 3000} {
		for _, n := range []int{16, 17, 128, 129, 4096, 4100} {
			if nd > n*3/4 {
				continue
			}
			v := &Vector{Type: TypeString}
			for i := range n {
				c := (i * 31) % nd
				if i < nd {
					c = i // every entry used
				}
				v.Str = append(v.Str, fmt.Sprintf("h%d", c))
			}
			enc := encodeColumn(nil, v, 0, n, true)
			if enc[0] != colFlagDict|colFlagPacked {
				t.Fatalf("nd %d n %d: flags %#x", nd, n, enc[0])
			}
			for _, codesOnly := range []bool{false, true} {
				got := decodeAll(t, enc, TypeString, n, codesOnly)
				if err := sameValues(v, got); err != nil {
					t.Fatalf("nd %d n %d codes-only %v: %v", nd, n, codesOnly, err)
				}
				if len(got.Dict) != nd {
					t.Fatalf("nd %d n %d: dictionary of %d", nd, n, len(got.Dict))
				}
			}
		}
	}
	// Nullable dictionary columns (dynamic) keep their bitmap.
	v := &Vector{Type: TypeDynamic, Nulls: make([]bool, 64)}
	for i := range 64 {
		s := fmt.Sprintf(`{"k":%d}`, i%3)
		if i%5 == 0 {
			v.Nulls[i], s = true, ""
		}
		v.Str = append(v.Str, s)
	}
	enc := encodeColumn(nil, v, 0, 64, true)
	if enc[0] != colFlagDict|colFlagPacked|colFlagNulls {
		t.Fatalf("dynamic: flags %#x", enc[0])
	}
	if err := sameValues(v, decodeAll(t, enc, TypeDynamic, 64, false)); err != nil {
		t.Fatal(err)
	}
}

// TestPackedCodesOutOfRange: a packed code beyond a dictionary whose size
// is not a power of two is refused, fully and codes-only.
func TestPackedCodesOutOfRange(t *testing.T) {
	v := &Vector{Type: TypeString}
	for i := range 40 {
		v.Str = append(v.Str, []string{"a", "b", "c"}[i%3])
	}
	enc := encodeColumn(nil, v, 0, 40, true)
	// flags, d=3, lengths 1,1,1, "abc", then 40 codes of 2 bits: set the
	// last code to 3.
	enc[len(enc)-1] |= 0xc0
	for _, codesOnly := range []bool{false, true} {
		d := decoder{b: enc}
		if _, err := decodeColumnCodes(&d, TypeString, 40, codesOnly); err == nil || !strings.Contains(err.Error(), "out of range") {
			t.Fatalf("codes-only %v: err %v", codesOnly, err)
		}
	}
}

// TestPackedIntBadInput: malformed packed integers fail with an error.
func TestPackedIntBadInput(t *testing.T) {
	for name, b := range map[string][]byte{
		"no mode":        {colFlagPacked},
		"unknown mode":   {colFlagPacked, 7, 0, 0},
		"width 65":       {colFlagPacked, packFOR, 0, 65},
		"short group":    {colFlagPacked, packFOR, 0, 8, 1, 2},
		"delta no first": {colFlagPacked, packDelta},
		"delta of none":  {colFlagPacked, packDelta, 2},
		"missing group":  {colFlagPacked, packDelta, 2, 0, 0},
		"packed real":    {colFlagPacked, 0, 0, 0, 0, 0, 0, 0, 0},
	} {
		typ, n := TypeLong, 4
		switch name {
		case "delta of none":
			n = 0
		case "missing group":
			n = 200
		case "packed real":
			typ, n = TypeReal, 1
		}
		d := decoder{b: b}
		if v, err := decodeColumn(&d, typ, n); err == nil {
			t.Errorf("%s: decoded %v", name, v.Int)
		}
	}
}

func TestAppendPackedWidths(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var s packScratch
	for w := uint(0); w <= 64; w++ {
		for _, k := range []int{0, 1, 5, 127, 128, 129, 300} {
			vals := make([]uint64, k)
			for i := range vals {
				vals[i] = r.Uint64()
				if w < 64 {
					vals[i] &= 1<<w - 1
				}
			}
			b := appendPacked(nil, vals, w)
			if len(b) != packedLen(k, w) {
				t.Fatalf("w %d k %d: %d bytes, want %d", w, k, len(b), packedLen(k, w))
			}
			got := make([]uint64, k)
			d := decoder{b: b}
			unpackStream(&d, got, w, &s)
			if d.err != nil || len(d.b) != 0 {
				t.Fatalf("w %d k %d: %v, %d left", w, k, d.err, len(d.b))
			}
			if !slices.Equal(got, vals) {
				t.Fatalf("w %d k %d: values differ", w, k)
			}
		}
	}
}

// TestRawChunks: a flushed part stores the chunks zstd barely shrinks
// (bit-packed irregular times, a sequence's zero-width deltas) without
// zstd, flagged chunkFlagRaw, text with zstd, and every chunk (a random
// three-value dictionary's codes either way) reads back the values written,
// before and after a merge copies the blocks.
func TestRawChunks(t *testing.T) {
	ctx := context.Background()
	env := newEnv(t)
	db := env.open(t, func(o *Options) { o.BlockRows = 1024; o.MaxPartsPerDay = 1 })
	defer db.Close()
	ref := TableRef{testWS, "Raw_CL"}
	if err := db.EnsureTable(ctx, ref, Schema{{"N", TypeLong}, {"Level", TypeString}, {"Msg", TypeString}}, 0); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 6))
	const n = 3000
	tg, num, lvl, msg := &Vector{Type: TypeDatetime}, &Vector{Type: TypeLong}, &Vector{Type: TypeString}, &Vector{Type: TypeString}
	x := int64(20_000) * TicksPerDay
	for i := range n {
		x += int64(r.IntN(1 << 20))
		tg.Int = append(tg.Int, x)
		num.Int = append(num.Int, int64(i))
		lvl.Str = append(lvl.Str, []string{"Error", "Warning", "Information"}[r.IntN(3)])
		msg.Str = append(msg.Str, fmt.Sprintf("request %d from host-%d took %d ms", i, i%7, i%100))
	}
	for _, half := range [][2]int{{0, n / 2}, {n / 2, n}} {
		b := &Batch{Schema: Schema{{ColTimeGenerated, TypeDatetime}, {"N", TypeLong}, {"Level", TypeString}, {"Msg", TypeString}}, Len: half[1] - half[0]}
		for _, v := range []*Vector{tg, num, lvl, msg} {
			b.Cols = append(b.Cols, viewVec(v, half[0], half[1]))
		}
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
	}
	check := func(stage string, wantParts int) {
		q, err := db.Querier(ctx, ref, AllTime)
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		parts := q.(*querier).parts
		if len(parts) != wantParts {
			t.Fatalf("%s: %d parts, want %d", stage, len(parts), wantParts)
		}
		want := map[string]*Vector{ColTimeGenerated: tg, "N": num, "Level": lvl, "Msg": msg}
		row := 0
		for _, p := range parts {
			for bi, bm := range p.meta.blocks {
				for name, v := range want {
					j := p.meta.cols.Index(name)
					raw := bm.cols[j].flags&chunkFlagRaw != 0
					if wantRaw := name == ColTimeGenerated || name == "N"; name != "Level" && raw != wantRaw {
						t.Fatalf("%s: block %d column %s: raw %v, want %v", stage, bi, name, raw, wantRaw)
					}
					got, _, err := p.readChunk(bi, j, db.dec, nil)
					if err != nil {
						t.Fatalf("%s: block %d column %s: %v", stage, bi, name, err)
					}
					if err := sameValues(viewVec(v, row, row+bm.rows), got); err != nil {
						t.Fatalf("%s: block %d column %s: %v", stage, bi, name, err)
					}
				}
				row += bm.rows
			}
		}
		if row != n {
			t.Fatalf("%s: %d rows", stage, row)
		}
	}
	check("flushed", 2)
	if err := db.Merge(ctx); err != nil {
		t.Fatal(err)
	}
	check("merged", 1)
}

// TestPartMetaRawFlag: the raw chunk flag round-trips through the part meta
// and is refused together with the split flag.
func TestPartMetaRawFlag(t *testing.T) {
	m := &partMeta{day: 19723, rows: 3, minT: 1, maxT: 9, cols: Schema{{"TimeGenerated", TypeDatetime}, {"S", TypeString}}}
	m.blocks = []blockMeta{{rows: 3, minT: 1, maxT: 9, cols: []chunkMeta{
		{off: 10, size: 5, rawSize: 7, flags: chunkFlagIntMinMax | chunkFlagRaw, minI: 1, maxI: 9},
		{off: 15, size: 5, rawSize: 7, flags: chunkFlagRaw},
	}}}
	m.blooms = []bloomSection{{}, {}}
	got, err := decodePartMeta(m.appendTo(nil), 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.blocks[0].cols[0].flags != chunkFlagIntMinMax|chunkFlagRaw || got.blocks[0].cols[1].flags != chunkFlagRaw {
		t.Fatalf("flags %#x %#x", got.blocks[0].cols[0].flags, got.blocks[0].cols[1].flags)
	}
	m.blocks[0].cols[1].flags = chunkFlagRaw | chunkFlagSplit
	if _, err := decodePartMeta(m.appendTo(nil), 1<<20, nil); err == nil || !strings.Contains(err.Error(), "raw and split") {
		t.Fatalf("raw and split: %v", err)
	}
}

// TestZstdTrialSkip: after a raw chunk, a block encoder stores the column's
// next rawSkip-1 chunks raw without compressing them, then tries zstd again;
// a column zstd shrinks is tried every time.
func TestZstdTrialSkip(t *testing.T) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderCRC(false))
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 1))
	noise := make([]byte, 4096)
	for i := range noise {
		noise[i] = byte(r.Uint32())
	}
	text := bytes.Repeat([]byte("compressible "), 300)
	var e blockEncoder
	for b := range 2*rawSkip + 1 {
		for j, raw := range [][]byte{noise, text} {
			e.raw = append(e.raw[:0], raw...)
			skip := e.skipZstdTrial(j, 2)
			if !skip {
				e.comp = enc.EncodeAll(e.raw, e.comp[:0])
			}
			stored, flag := e.storedChunk(j, 0, skip)
			wantSkip := j == 0 && b%rawSkip != 0
			if skip != wantSkip {
				t.Fatalf("block %d column %d: skipped %v, want %v", b, j, skip, wantSkip)
			}
			if wantRaw := j == 0; (flag == chunkFlagRaw) != wantRaw || wantRaw && !bytes.Equal(stored, raw) {
				t.Fatalf("block %d column %d: flag %#x", b, j, flag)
			}
		}
	}
}
