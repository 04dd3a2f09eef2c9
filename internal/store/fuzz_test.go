package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"custos/internal/crypt"
)

func sampleColumns() [][]byte {
	b := allTypesBatch(0, 40)
	var out [][]byte
	for _, v := range b.Cols {
		out = append(out, append([]byte{byte(v.Type), 40}, encodeColumn(nil, v, 0, 40, true)...))
		out = append(out, append([]byte{byte(v.Type), 40}, encodeColumn(nil, v, 0, 40, false)...))
	}
	for _, v := range tokenSampleVectors() {
		out = append(out, append([]byte{byte(v.Type), byte(len(v.Str))}, encodeColumn(nil, v, 0, len(v.Str), true)...))
	}
	// Bit-packed integers (both modes, every width class, nulls) and codes.
	for _, name := range []string{"times/129", "narrow/65", "extremes/9", "nulls/129", "allnull/7", "constant/128",
		"descending/64", "width/64", "width/1", "width/33"} {
		v := packCases()[name]
		n := min(v.Len(), 255)
		out = append(out, append([]byte{byte(v.Type), byte(n)}, encodeColumn(nil, v, 0, n, true)...))
	}
	for _, nd := range []int{1, 3, 4, 37} {
		v := &Vector{Type: TypeString}
		for i := range 200 {
			v.Str = append(v.Str, fmt.Sprint("c", (i*7)%nd))
		}
		out = append(out, append([]byte{byte(TypeString), 200}, encodeColumn(nil, v, 0, 200, true)...))
	}
	return out
}

// FuzzDecodeColumn: input is type byte, row count byte, encoding.
func FuzzDecodeColumn(f *testing.F) {
	for _, s := range sampleColumns() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 2 {
			return
		}
		typ, n := ColumnType(b[0]), int(b[1])
		if typ == TypeInvalid || int(typ) >= len(typeNames) {
			return
		}
		d := decoder{b: b[2:]}
		v, err := decodeColumn(&d, typ, n)
		if err != nil {
			return
		}
		if v.Len() != n || (v.Nulls != nil && len(v.Nulls) != n) {
			t.Fatalf("decoded %d values (nulls %d); want %d", v.Len(), len(v.Nulls), n)
		}
		// Re-encoding what was decoded must decode to the same values.
		enc := encodeColumn(nil, v, 0, n, true)
		d2 := decoder{b: enc}
		v2, err := decodeColumn(&d2, typ, n)
		if err != nil || len(d2.b) != 0 {
			t.Fatalf("round trip: %v", err)
		}
		if err := sameValues(v, v2); err != nil {
			t.Fatalf("round trip: %v", err)
		}
		// A codes-only decode of the same bytes fails or succeeds with it
		// and, through the dictionary, gives the same strings.
		d3 := decoder{b: b[2:]}
		v3, err := decodeColumnCodes(&d3, typ, n, true)
		if err != nil {
			t.Fatalf("codes-only decode failed where the full decode did not: %v", err)
		}
		if v3.Len() != n {
			t.Fatalf("codes-only decode: %d values, want %d", v3.Len(), n)
		}
		if v3.CodesOnly() {
			for i, c := range v3.Codes {
				if v3.Dict[c] != v.Str[i] {
					t.Fatalf("row %d: codes-only %q, full %q", i, v3.Dict[c], v.Str[i])
				}
			}
		}
	})
}

func TestColumnTruncation(t *testing.T) {
	for _, s := range sampleColumns() {
		typ, n := ColumnType(s[0]), int(s[1])
		full := s[2:]
		for data := full[:len(full)-1]; ; data = data[:len(data)-1] {
			d := decoder{b: data}
			if _, err := decodeColumn(&d, typ, n); err == nil && len(d.b) == 0 {
				// Only acceptable if a shorter encoding is coincidentally complete; never for all prefixes.
				t.Fatalf("%s: prefix of %d/%d bytes decoded completely", typ, len(data), len(full))
			}
			if len(data) == 0 {
				break
			}
		}
	}
}

func sampleRecord() []byte {
	b := allTypesBatch(0, 30)
	schema := append(Schema(nil), b.Schema...)
	r := walRecord{table: "AllTypes_CL", n: 30, schema: schema, vecs: b.Cols}
	r.incarnation[3] = 9
	return r.appendTo(nil)
}

func FuzzDecodeWALRecord(f *testing.F) {
	f.Add(sampleRecord())
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeWALRecord(b)
		if err != nil {
			return
		}
		for i, v := range r.vecs {
			if v.Len() != r.n {
				t.Fatalf("column %d has %d values; want %d", i, v.Len(), r.n)
			}
		}
	})
}

func TestWALRecordTruncation(t *testing.T) {
	full := sampleRecord()
	r, err := decodeWALRecord(full)
	if err != nil || r.n != 30 || r.table != "AllTypes_CL" {
		t.Fatalf("decode: %v", err)
	}
	for data := full[:len(full)-1]; ; data = data[:len(data)-1] {
		if _, err := decodeWALRecord(data); err == nil {
			t.Fatalf("prefix of %d/%d bytes decoded", len(data), len(full))
		}
		if len(data) == 0 {
			break
		}
	}
}

func samplePartMeta() []byte {
	m := &partMeta{day: 19723, walSeq: 42, rows: 3, minT: 1, maxT: 9, replaces: []string{"a", "b"},
		cols: Schema{{"TimeGenerated", TypeDatetime}, {"S", TypeString}, {"R", TypeReal}}}
	m.blocks = []blockMeta{{rows: 3, minT: 1, maxT: 9, cols: []chunkMeta{
		{off: 10, size: 5, rawSize: 7, flags: chunkFlagIntMinMax, minI: 1, maxI: 9},
		{off: 15, size: 5, rawSize: 7, flags: chunkFlagBloom},
		{off: 20, size: 5, rawSize: 7, flags: chunkFlagRealMinMax, minF: -1, maxF: 2},
	}}}
	m.blooms = []bloomSection{{}, {off: 25, size: 40}, {}}
	return m.appendTo(nil)
}

// samplePartMetaV1 is samplePartMeta as the version-1 writer put it: the
// chunk's bloom words in the meta, no bloom sections.
func samplePartMetaV1() []byte {
	m, err := decodePartMeta(samplePartMeta(), 1<<20, nil)
	if err != nil {
		panic(err)
	}
	return appendPartMetaV1(nil, m, func(block, col int) bloom { return bloom{1, 2} })
}

func FuzzDecodePartMeta(f *testing.F) {
	f.Add(samplePartMeta())
	f.Add(samplePartMetaV1())
	raw, err := decodePartMeta(samplePartMeta(), 1<<20, nil)
	if err != nil {
		f.Fatal(err)
	}
	raw.blocks[0].cols[0].flags |= chunkFlagRaw // a raw chunk (session 8)
	f.Add(raw.appendTo(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodePartMeta(b, 1<<20, func(block, col int, words []byte) {
			if len(words)%8 != 0 || len(words) > 8*maxBloomWords {
				t.Fatalf("block %d column %d: %d bloom bytes", block, col, len(words))
			}
		})
		if err != nil {
			return
		}
		if m.ver == partMetaVer1 {
			return // re-encoded only by the test writer
		}
		for _, bm := range m.blocks {
			if len(bm.cols) != len(m.cols) {
				t.Fatal("block columns do not match the part columns")
			}
		}
		if !bytes.Equal(m.appendTo(nil), b) {
			// Varints have one canonical form in Go's encoder; a non-canonical
			// input may decode, but must re-encode to something that decodes equally.
			if _, err := decodePartMeta(m.appendTo(nil), 1<<20, nil); err != nil {
				t.Fatalf("re-encoded meta does not decode: %v", err)
			}
		}
	})
}

func TestPartMetaTruncation(t *testing.T) {
	for _, full := range [][]byte{samplePartMeta(), samplePartMetaV1()} {
		if _, err := decodePartMeta(full, 1<<20, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := decodePartMeta(full, 21, nil); err == nil {
			t.Fatal("chunk beyond the file size accepted")
		}
		for data := full[:len(full)-1]; ; data = data[:len(data)-1] {
			if _, err := decodePartMeta(data, 1<<20, nil); err == nil {
				t.Fatalf("prefix of %d/%d bytes decoded", len(data), len(full))
			}
			if len(data) == 0 {
				break
			}
		}
	}
	if _, err := decodePartMeta(samplePartMeta(), 64, nil); err == nil {
		t.Fatal("bloom section beyond the file size accepted")
	}
}

func TestHeaderTruncation(t *testing.T) {
	ctx := context.Background()
	k, err := crypt.GenerateKey("ws")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	w := &wal{wsID: "ws", dir: dir, keys: keyPointer(k)}
	seg, err := w.createSegment(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	seg.f.Close()
	full, err := readFileBytes(seg.path)
	if err != nil {
		t.Fatal(err)
	}
	if first, _, _, err := parseSegmentHeader(full); err != nil || first != 7 {
		t.Fatalf("header: %d, %v", first, err)
	}
	for data := full[:len(full)-1]; ; data = data[:len(data)-1] {
		if _, _, _, err := parseSegmentHeader(data); err == nil {
			t.Fatalf("WAL header prefix of %d bytes parsed", len(data))
		}
		if _, err := parsePartHeader(data); err == nil {
			t.Fatalf("part header parser accepted a WAL header prefix")
		}
		if len(data) == 0 {
			break
		}
	}
}

func FuzzWALSegment(f *testing.F) {
	k, err := crypt.NewKey("ws", bytes.Repeat([]byte{3}, crypt.KeySize))
	if err != nil {
		f.Fatal(err)
	}
	dir := f.TempDir()
	w := &wal{wsID: "ws", dir: dir, keys: keyPointer(k), next: 1}
	seg, err := w.createSegment(context.Background(), 1)
	if err != nil {
		f.Fatal(err)
	}
	w.cur = seg
	if _, err := w.append(sampleRecord()); err != nil {
		f.Fatal(err)
	}
	seg.f.Close()
	full, err := readFileBytes(seg.path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(full)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, valid, err := parseSegment(context.Background(), b, "fuzz.wal", "ws", &wsKeys{service: k}, func(seq uint64, payload []byte) error {
			_, err := decodeWALRecord(payload)
			return err
		})
		if valid < 0 || valid > int64(len(b)) {
			t.Fatalf("valid length %d of %d", valid, len(b))
		}
		_ = err
	})
}

func readFileBytes(path string) ([]byte, error) { return os.ReadFile(path) }

func writeFileBytes(path string, b []byte) error { return os.WriteFile(path, b, 0o600) }

// sampleSegment writes a WAL segment of three sample records under a new
// key in a temporary directory and returns the key, the directory and the
// segment's bytes.
func sampleSegment(t *testing.T) (*crypt.Key, string, []byte) {
	t.Helper()
	k, err := crypt.GenerateKey("ws")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	w := &wal{wsID: "ws", dir: dir, keys: keyPointer(k), next: 1}
	seg, err := w.createSegment(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	w.cur = seg
	for range 3 {
		if _, err := w.append(sampleRecord()); err != nil {
			t.Fatal(err)
		}
	}
	seg.f.Close()
	full, err := readFileBytes(seg.path)
	if err != nil {
		t.Fatal(err)
	}
	return k, dir, full
}

func TestWALSegmentTruncation(t *testing.T) {
	k, dir, full := sampleSegment(t)
	path := dir + "/trunc.wal"
	for l := len(full) - 1; l >= 0; l-- {
		records := 0
		_, valid, err := parseSegment(context.Background(), full[:l], path, "ws", &wsKeys{service: k}, func(uint64, []byte) error { records++; return nil })
		if err != nil && !errors.Is(err, errTorn) {
			t.Fatalf("prefix %d: got %v; want a torn-tail error", l, err)
		}
		if valid > int64(l) || (err == nil && valid != int64(l)) {
			t.Fatalf("prefix %d: valid length %d", l, valid)
		}
		if records > 3 {
			t.Fatalf("prefix %d: %d records", l, records)
		}
	}
	// A flipped byte inside a sealed record whose CRC is fixed up is tampering, not a torn write.
	bad := append([]byte(nil), full...)
	bad[len(bad)-5] ^= 1
	if err := writeFileBytes(path, bad); err != nil {
		t.Fatal(err)
	}
	if _, _, err := readSegment(context.Background(), path, "ws", &wsKeys{service: k}, func(uint64, []byte) error { return nil }); !errors.Is(err, errTorn) {
		t.Fatalf("flipped byte: got %v; want a checksum (torn) error", err)
	}
}

func keyPointer(k *crypt.Key) *atomic.Pointer[wsKeys] {
	var p atomic.Pointer[wsKeys]
	p.Store(&wsKeys{service: k})
	return &p
}

func FuzzParseKeyFile(f *testing.F) {
	f.Add([]byte(wsKeyMagic + "wrapped"))
	f.Add((&keyFile{serviceKeyID: "file-1", customer: true, serviceWrapped: []byte("w0"), infraWrapped: []byte("w1")}).encode())
	f.Add([]byte(wsKeyMagicV2 + `{"service":{"wrapped":"!!"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		kf, err := parseKeyFile(b)
		if err != nil {
			return
		}
		again, err := parseKeyFile(kf.encode())
		if err != nil || !bytes.Equal(again.serviceWrapped, kf.serviceWrapped) || !bytes.Equal(again.infraWrapped, kf.infraWrapped) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func TestDoubleHeaderTruncation(t *testing.T) {
	ctx := context.Background()
	k0, _ := crypt.GenerateKey("ws")
	k1, _ := crypt.GenerateKey("ws-infra")
	var p atomic.Pointer[wsKeys]
	p.Store(&wsKeys{service: k0, infra: k1})
	w := &wal{wsID: "ws", dir: t.TempDir(), keys: &p}
	seg, err := w.createSegment(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	seg.f.Close()
	full, err := readFileBytes(seg.path)
	if err != nil {
		t.Fatal(err)
	}
	first, wrapped, _, err := parseSegmentHeader(full)
	if err != nil || first != 3 || len(wrapped) != 2 {
		t.Fatalf("header: %d, %d layers, %v", first, len(wrapped), err)
	}
	if _, err := unwrapDataKeys(ctx, &wsKeys{service: k0}, "wal-0000000000000003", wrapped, segmentKeyAAD("ws", 3)); err == nil {
		t.Fatal("double-encrypted segment opened without the infrastructure key")
	}
	for data := full[:len(full)-1]; ; data = data[:len(data)-1] {
		if _, _, _, err := parseSegmentHeader(data); err == nil {
			t.Fatalf("WAL v2 header prefix of %d bytes parsed", len(data))
		}
		if len(data) == 0 {
			break
		}
	}
}

// TestWALBitRotMidSegment: a record with a bad checksum followed by valid
// records is damage, not a torn tail: replay must not drop the acknowledged
// records after it.
func TestWALBitRotMidSegment(t *testing.T) {
	k, _, full := sampleSegment(t)
	_, _, off, err := parseSegmentHeader(full)
	if err != nil {
		t.Fatal(err)
	}
	first := int(binary.LittleEndian.Uint32(full[off:]))
	for _, at := range []int{off + walFrameHeader + first/2, off + 1, off + 13} { // payload, length, CRC of record 1
		bad := append([]byte(nil), full...)
		bad[at] ^= 0x5a
		_, valid, err := parseSegment(context.Background(), bad, "x.wal", "ws", &wsKeys{service: k}, func(uint64, []byte) error { return nil })
		var ce *CorruptionError
		if !errors.As(err, &ce) || errors.Is(err, errTorn) || valid != int64(off) {
			t.Fatalf("byte %d flipped: got %v (valid %d); want a corruption error at %d", at, err, valid, off)
		}
	}
}
