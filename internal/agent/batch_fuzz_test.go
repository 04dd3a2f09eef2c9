package agent

import (
	"bytes"
	"compress/gzip"
	"io"
	"testing"
	"time"
)

// FuzzDecodePayload feeds queue payloads — read back from disk, so possibly
// damaged — to decodePayload: it never panics, a payload it accepts has a
// DCR and a stream and its body is the bytes after the header line, and a
// payload encodePayload built from the fuzzed records decodes to the same
// header and to a gzip body holding exactly the records' JSON array.
func FuzzDecodePayload(f *testing.F) {
	good, _ := encodePayload(target{ImmutableID: "dcr-0123", Stream: "Custom-Text"}, [][]byte{[]byte(`{"a":1}`), []byte(`{"b":"x"}`)}, time.Unix(1700000000, 0))
	for _, s := range [][]byte{good, good[:len(good)/2], []byte("\n"), []byte(`{"dcr":"x"}` + "\n"), []byte(`{"dcr":"x","stream":"y","records":-1}` + "\nbody"), []byte(`not json` + "\n"), {}} {
		f.Add(s, []byte(`{"k":"v"}`))
	}
	f.Fuzz(func(t *testing.T, p, record []byte) {
		h, body, err := decodePayload(p)
		if err == nil {
			if h.DCR == "" || h.Stream == "" {
				t.Fatalf("accepted a header without dcr or stream: %+v", h)
			}
			if !bytes.HasSuffix(p, body) || len(body) >= len(p) {
				t.Fatalf("body is not what follows the header line")
			}
		}
		// Round trip: whatever the record bytes, the payload carries them
		// verbatim (records are JSON already; the queue does not parse them).
		tg := target{ImmutableID: "dcr-" + string(bytes.ToValidUTF8(record, nil)), Stream: "Custom-X"}
		if tg.ImmutableID == "dcr-" {
			tg.ImmutableID = "dcr-0"
		}
		enc, err := encodePayload(tg, [][]byte{record, record}, time.Unix(1700000000, 0).UTC())
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		h, body, err = decodePayload(enc)
		if err != nil {
			t.Fatalf("decode of an encoded payload: %v", err)
		}
		if h.DCR != tg.ImmutableID || h.Stream != tg.Stream || h.Records != 2 {
			t.Fatalf("header %+v; want dcr %q stream %q records 2", h, tg.ImmutableID, tg.Stream)
		}
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("gzip body: %v", err)
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("gzip body: %v", err)
		}
		want := append(append(append(append([]byte{'['}, record...), ','), record...), ']')
		if !bytes.Equal(raw, want) {
			t.Fatalf("body %q; want %q", raw, want)
		}
	})
}
