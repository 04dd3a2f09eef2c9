package ingest

import (
	"bytes"
	"io"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"custos/internal/store"
)

// benchSchema is bench/gen's table (bench/gen cannot be imported here: it
// starts the server, which imports this package).
var benchSchema = store.Schema{
	{Name: "TimeGenerated", Type: store.TypeDatetime}, {Name: "Host", Type: store.TypeString},
	{Name: "Level", Type: store.TypeString}, {Name: "Service", Type: store.TypeString},
	{Name: "Message", Type: store.TypeString}, {Name: "Latency", Type: store.TypeReal},
	{Name: "User", Type: store.TypeString}, {Name: "Status", Type: store.TypeInt},
	{Name: "RequestId", Type: store.TypeString},
}

// benchBody returns a JSON array of n records shaped like bench/gen's (~935
// bytes each: a datetime, short strings, ~750 bytes of free text, a real, an
// int and a unique hex ID).
func benchBody(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	words := []string{"bafi", "gorima", "nepo", "risate", "vozu", "kamiro", "taveli", "doan", "erinon", "ulesar"}
	levels := []string{"Info", "Info", "Info", "Info", "Warning", "Error", "Debug"}
	start := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	b := []byte{'['}
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"TimeGenerated":"`...)
		b = start.Add(time.Duration(rng.Int64N(int64(24*time.Hour)))).Truncate(time.Millisecond).AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
		b = strconv.AppendInt(append(b, `","Host":"web-`...), rng.Int64N(500), 10)
		b = append(append(b, `","Level":"`...), levels[rng.IntN(len(levels))]...)
		b = append(append(b, `","Service":"`...), words[rng.IntN(len(words))]...)
		b = append(b, `","Message":"GET /api/v1/orders/`...)
		b = strconv.AppendInt(b, rng.Int64N(100000), 10)
		b = append(b, ` status=200 trace=`...)
		b = strconv.AppendUint(b, rng.Uint64(), 16)
		for msg := 0; msg < 700+rng.IntN(100); {
			w := words[rng.IntN(len(words))]
			b = append(append(b, ' '), w...)
			msg += len(w) + 1
		}
		b = strconv.AppendFloat(append(b, `","Latency":`...), float64(rng.IntN(1_000_000))/1000, 'f', -1, 64)
		b = strconv.AppendInt(append(b, `,"User":"user-`...), rng.Int64N(1_000_000), 10)
		b = strconv.AppendInt(append(b, `","Status":`...), 200, 10)
		b = strconv.AppendUint(append(b, `,"RequestId":"`...), rng.Uint64(), 16)
		b = strconv.AppendUint(b, rng.Uint64(), 16)
		b = append(b, `"}`...)
	}
	return append(b, ']')
}

// BenchmarkDecodeRecords decodes one 500-record request body (~470 KB), the
// size bench/ingest sends, with the scanner and with the former
// encoding/json-based decoder (decode_ref_test.go) for comparison.
func BenchmarkDecodeRecords(b *testing.B) {
	body := benchBody(500, 1)
	for _, impl := range []struct {
		name   string
		decode func(io.Reader, store.Schema, DecodeOptions) (*store.Batch, error)
	}{{"scanner", DecodeRecords}, {"encoding-json", decodeRecordsStd}} {
		b.Run(impl.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				out, err := impl.decode(bytes.NewReader(body), benchSchema, DecodeOptions{})
				if err != nil || out.Len != 500 {
					b.Fatalf("decode: %v", err)
				}
			}
		})
	}
}
