package store

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"custos/bench/logdata"
)

// encodeBenchBlock returns one part block's worth (4,096 rows) of bench/gen
// records as vectors, keyed by column name.
func encodeBenchBlock(tb testing.TB) (names []string, vecs []*Vector) {
	g := logdata.New(logdata.Options{Seed: 1, Rows: 100_000, End: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)})
	js, _ := g.AppendBatch(nil, 40_000, 4096)
	var recs []struct {
		TimeGenerated                       time.Time
		Host, Level, Service, Message, User string
		RequestId                           string
		Latency                             float64
		Status                              int64
	}
	if err := json.Unmarshal(js, &recs); err != nil {
		tb.Fatal(err)
	}
	names = []string{"TimeGenerated", "Host", "Level", "Service", "Message", "Latency", "User", "Status", "RequestId"}
	types := []ColumnType{TypeDatetime, TypeString, TypeString, TypeString, TypeString, TypeReal, TypeString, TypeInt, TypeString}
	for _, t := range types {
		vecs = append(vecs, &Vector{Type: t})
	}
	for _, r := range recs {
		vecs[0].Int = append(vecs[0].Int, TicksFromTime(r.TimeGenerated))
		vecs[1].Str = append(vecs[1].Str, r.Host)
		vecs[2].Str = append(vecs[2].Str, r.Level)
		vecs[3].Str = append(vecs[3].Str, r.Service)
		vecs[4].Str = append(vecs[4].Str, r.Message)
		vecs[5].Real = append(vecs[5].Real, r.Latency)
		vecs[6].Str = append(vecs[6].Str, r.User)
		vecs[7].Int = append(vecs[7].Int, r.Status)
		vecs[8].Str = append(vecs[8].Str, r.RequestId)
	}
	return names, vecs
}

// BenchmarkEncodeChunk times the encoding of one 4,096-row block per column
// of bench/gen data, without and with zstd.
func BenchmarkEncodeChunk(b *testing.B) {
	names, vecs := encodeBenchBlock(b)
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderCRC(false))
	fast, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderCRC(false))
	fastLit, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderCRC(false), zstd.WithAllLitEntropyCompression(true))
	for j, v := range vecs {
		b.Run(names[j], func(b *testing.B) {
			var raw []byte
			c0 := processCPU(b)
			for b.Loop() {
				raw, _, _ = encodeChunk(raw[:0], v, 0, v.Len(), true, true)
			}
			b.ReportMetric(float64((processCPU(b)-c0).Nanoseconds())/float64(b.N)/4096, "cpu-ns/row")
		})
		// zstd settings for the block: head compresses the chunk (or, with
		// a tail encoder and a split token chunk, the part before the split,
		// tail the rest); "zstd" is the former production setting.
		for _, z := range []struct {
			name       string
			head, tail *zstd.Encoder
			needSplit  bool
		}{
			{"zstd", enc, fast, false},
			{"zstd-split-lit", fastLit, fastLit, true},
			{"zstd-split-litA", fastLit, fast, true},
			{"zstd-fastest", fast, nil, false},
			{"zstd-fastest-lit", fastLit, nil, false},
		} {
			b.Run(names[j]+"/"+z.name, func(b *testing.B) {
				raw, _, split := encodeChunk(nil, v, 0, v.Len(), true, true)
				if z.needSplit && split == 0 {
					b.Skip("not split")
				}
				var comp []byte
				c0 := processCPU(b)
				for b.Loop() {
					if z.tail != nil && split > 0 {
						comp = z.head.EncodeAll(raw[:split], comp[:0])
						comp = z.tail.EncodeAll(raw[split:], comp)
					} else {
						comp = z.head.EncodeAll(raw, comp[:0])
					}
				}
				b.ReportMetric(float64((processCPU(b)-c0).Nanoseconds())/float64(b.N)/4096, "cpu-ns/row")
				b.ReportMetric(float64(len(comp))/4096, "B/row")
			})
		}
	}
}

// BenchmarkIntCodec compares the varint encodings of integers and
// dictionary codes (parts before session 8) with the bit-packed ones
// (colFlagPacked) on one 4,096-row block of bench/gen data: TimeGenerated
// sorted as a part stores it, Status (a narrow int) and the dictionary codes
// of Level, Service, Host and User. Sub-benchmarks: encode (ns/row, raw and
// zstd bytes/row with the part writer's zstd settings), decode of the raw
// encoding (codes-only for strings, as queries read them), and zstd decode.
func BenchmarkIntCodec(b *testing.B) {
	names, vecs := encodeBenchBlock(b)
	zenc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithAllLitEntropyCompression(true), zstd.WithEncoderCRC(false))
	zdec, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	defer zdec.Close()
	cols := []string{"TimeGenerated", "Status", "Level", "Service", "Host", "User"}
	for _, name := range cols {
		v := vecs[slices.Index(names, name)]
		if name == "TimeGenerated" {
			v = &Vector{Type: v.Type, Int: slices.Sorted(slices.Values(v.Int))}
		}
		n := v.Len()
		for _, e := range []struct {
			name string
			mode encMode
		}{{"varint", encCompact}, {"packed", partEncoding}} {
			raw, _, _ := encodeChunkMode(nil, v, 0, n, e.mode, false)
			comp := zenc.EncodeAll(raw, nil)
			b.Run(name+"/"+e.name+"/encode", func(b *testing.B) {
				var out []byte
				c0 := processCPU(b)
				for b.Loop() {
					out, _, _ = encodeChunkMode(out[:0], v, 0, n, e.mode, false)
				}
				b.ReportMetric(float64((processCPU(b)-c0).Nanoseconds())/float64(b.N)/float64(n), "cpu-ns/row")
				b.ReportMetric(float64(len(raw))/float64(n), "raw-B/row")
				b.ReportMetric(float64(len(comp))/float64(n), "zstd-B/row")
			})
			b.Run(name+"/"+e.name+"/decode", func(b *testing.B) {
				c0 := processCPU(b)
				for b.Loop() {
					d := decoder{b: raw}
					if _, err := decodeColumnCodes(&d, v.Type, n, true); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64((processCPU(b)-c0).Nanoseconds())/float64(b.N)/float64(n), "cpu-ns/row")
			})
			b.Run(name+"/"+e.name+"/unzstd", func(b *testing.B) {
				var out []byte
				c0 := processCPU(b)
				for b.Loop() {
					var err error
					if out, err = zdec.DecodeAll(comp, out[:0]); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64((processCPU(b)-c0).Nanoseconds())/float64(b.N)/float64(n), "cpu-ns/row")
			})
		}
	}
}
