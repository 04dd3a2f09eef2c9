package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// MaxUploadBytes is the Logs Ingestion API's limit on one request body:
// 1 MB (1,048,576 bytes), compressed or not.
const MaxUploadBytes = 1 << 20

// Batch is one upload: a JSON array of records.
type Batch struct {
	Body  []byte // the JSON array; valid only during the callback
	First int    // index of the first record in the input (0-based)
	Count int    // number of records
}

// BatchStats counts what SplitRecords read and emitted.
type BatchStats struct {
	Records int
	Batches int
	Bytes   int64 // total size of the emitted bodies
}

// SplitRecords reads log records from r, either one JSON array of objects or
// JSON lines (one object per line; any whitespace between objects is
// accepted), and calls emit with JSON-array batches of at most maxBytes bytes
// (MaxUploadBytes when maxBytes <= 0), in input order. Records are compacted;
// their values, including number literals, are passed through unchanged. A
// record that cannot fit in a batch on its own, a value that is not an
// object, or malformed JSON is an error naming the record. If emit returns an
// error, SplitRecords stops and returns it, with the stats of the batches
// emitted successfully before it.
func SplitRecords(r io.Reader, maxBytes int, emit func(Batch) error) (BatchStats, error) {
	if maxBytes <= 0 {
		maxBytes = MaxUploadBytes
	}
	br := bufio.NewReaderSize(r, 64<<10)
	if bom, err := br.Peek(3); err == nil && bytes.Equal(bom, []byte("\xef\xbb\xbf")) {
		_, _ = br.Discard(3)
	}
	first, err := peekNonSpace(br)
	if err != nil {
		return BatchStats{}, err
	}
	b := &batcher{max: maxBytes, emit: emit, buf: make([]byte, 0, min(maxBytes, 1<<20))}
	b.reset()
	dec := json.NewDecoder(br)
	if first == '[' {
		if _, err := dec.Token(); err != nil {
			return b.stats, fmt.Errorf("read JSON array: %w", err)
		}
		for dec.More() {
			if err := b.next(dec); err != nil {
				return b.stats, err
			}
		}
		if _, err := dec.Token(); err != nil {
			return b.stats, fmt.Errorf("read JSON array after record %d: %w", b.index, err)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return b.stats, errors.New("input has data after the JSON array")
		}
	} else {
		for dec.More() {
			if err := b.next(dec); err != nil {
				return b.stats, err
			}
		}
		if tok, err := dec.Token(); !errors.Is(err, io.EOF) {
			if err != nil {
				return b.stats, fmt.Errorf("record %d (near byte %d): %w", b.index+1, dec.InputOffset(), err)
			}
			return b.stats, fmt.Errorf("record %d (near byte %d): unexpected %v", b.index+1, dec.InputOffset(), tok)
		}
	}
	if err := b.flush(); err != nil {
		return b.stats, err
	}
	if b.stats.Records == 0 {
		return b.stats, errors.New("input has no records")
	}
	return b.stats, nil
}

// peekNonSpace returns the first byte that is not JSON whitespace, without
// consuming it.
func peekNonSpace(br *bufio.Reader) (byte, error) {
	for {
		c, err := br.ReadByte()
		if errors.Is(err, io.EOF) {
			return 0, errors.New("input is empty")
		}
		if err != nil {
			return 0, fmt.Errorf("read input: %w", err)
		}
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c, br.UnreadByte()
	}
}

type batcher struct {
	max   int
	emit  func(Batch) error
	buf   []byte // "[" + records so far, comma separated
	count int    // records in buf
	index int    // records read so far
	stats BatchStats
	rec   bytes.Buffer
}

func (b *batcher) reset() {
	b.buf = append(b.buf[:0], '[')
	b.count = 0
}

// next decodes one record and adds it, flushing first if it would not fit.
func (b *batcher) next(dec *json.Decoder) error {
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return fmt.Errorf("record %d (near byte %d): %w", b.index+1, dec.InputOffset(), err)
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return fmt.Errorf("record %d (near byte %d): want a JSON object, got %s", b.index+1, dec.InputOffset(), jsonKind(raw))
	}
	b.rec.Reset()
	if err := json.Compact(&b.rec, raw); err != nil {
		return fmt.Errorf("record %d: %w", b.index+1, err)
	}
	rec := b.rec.Bytes()
	if len(rec)+2 > b.max {
		return fmt.Errorf("record %d is %d bytes; one request can carry at most %d bytes, so it cannot be sent", b.index+1, len(rec), b.max)
	}
	need := len(rec) + 1 // the closing ']'
	if b.count > 0 {
		need++ // the separating ','
	}
	if len(b.buf)+need > b.max {
		if err := b.flush(); err != nil {
			return err
		}
	}
	if b.count > 0 {
		b.buf = append(b.buf, ',')
	}
	b.buf = append(b.buf, rec...)
	b.count++
	b.index++
	return nil
}

func (b *batcher) flush() error {
	if b.count == 0 {
		return nil
	}
	b.buf = append(b.buf, ']')
	if err := b.emit(Batch{Body: b.buf, First: b.index - b.count, Count: b.count}); err != nil {
		return err
	}
	b.stats.Records += b.count
	b.stats.Batches++
	b.stats.Bytes += int64(len(b.buf))
	b.reset()
	return nil
}

func jsonKind(raw []byte) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}
