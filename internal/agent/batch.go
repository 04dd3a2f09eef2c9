package agent

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// MaxBatchBytes bounds the uncompressed JSON array of one request. The Logs
// Ingestion API accepts at most 1 MiB compressed and uncompressed; staying
// under it uncompressed keeps both under, with room for the array syntax.
const MaxBatchBytes = 1_000_000

// target is where a stream of records goes: a DCR's immutable ID and the
// stream name in the ingestion URL.
type target struct {
	ImmutableID string
	Stream      string
}

// batchHeader describes a queued batch. A queue payload is the header as one
// JSON line, a newline, then the gzip-compressed JSON array.
type batchHeader struct {
	DCR     string    `json:"dcr"`
	Stream  string    `json:"stream"`
	Records int       `json:"records"`
	Created time.Time `json:"created"`
}

// gzipWriters reuses compressors: a new gzip.Writer allocates and clears
// about 1 MB of state, which at one batch per flush interval per stream was
// most of the agent's garbage. BestSpeed costs a few percent of ratio on log
// text and a third of the CPU of the default level.
var gzipWriters = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
	return zw
}}

// encodePayload builds one queue payload from records already encoded as JSON objects.
func encodePayload(t target, records [][]byte, now time.Time) ([]byte, error) {
	h, err := json.Marshal(batchHeader{DCR: t.ImmutableID, Stream: t.Stream, Records: len(records), Created: now.UTC()})
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.Grow(len(h) + 1 + 64<<10)
	buf.Write(h)
	buf.WriteByte('\n')
	zw := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(zw)
	zw.Reset(&buf)
	zw.Write([]byte{'['})
	for i, r := range records {
		if i > 0 {
			zw.Write([]byte{','})
		}
		zw.Write(r)
	}
	zw.Write([]byte{']'})
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compress batch: %w", err)
	}
	return buf.Bytes(), nil
}

// decodePayload splits a queue payload into its header and gzip body.
func decodePayload(p []byte) (batchHeader, []byte, error) {
	var h batchHeader
	i := bytes.IndexByte(p, '\n')
	if i < 0 {
		return h, nil, errors.New("queued batch has no header")
	}
	if err := json.Unmarshal(p[:i], &h); err != nil {
		return h, nil, fmt.Errorf("queued batch header: %w", err)
	}
	if h.DCR == "" || h.Stream == "" {
		return h, nil, errors.New("queued batch header lacks dcr or stream")
	}
	return h, p[i+1:], nil
}

// split cuts records into groups whose JSON array stays within MaxBatchBytes.
// Records too large for any batch are returned separately.
func split(records [][]byte) (groups [][][]byte, tooLarge int) {
	size := 2
	var cur [][]byte
	for _, r := range records {
		if len(r)+2 > MaxBatchBytes {
			tooLarge++
			continue
		}
		if len(cur) > 0 && size+len(r)+1 > MaxBatchBytes {
			groups = append(groups, cur)
			cur, size = nil, 2
		}
		cur = append(cur, r)
		size += len(r) + 1
	}
	if len(cur) > 0 {
		groups = append(groups, cur)
	}
	return groups, tooLarge
}

// accumulator collects records per target and flushes a target's records
// when they would pass MaxBatchBytes or when they are older than the flush
// interval. Safe for concurrent use.
type accumulator struct {
	flush func(t target, records [][]byte) error

	mu      sync.Mutex // guards pending
	pending map[target]*pendingBatch
}

type pendingBatch struct {
	records [][]byte
	size    int
	first   time.Time
}

func newAccumulator(flush func(target, [][]byte) error) *accumulator {
	return &accumulator{flush: flush, pending: map[target]*pendingBatch{}}
}

// add queues one record; it flushes synchronously when the batch is full.
func (a *accumulator) add(t target, rec []byte, now time.Time) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.pending[t]
	if p == nil {
		p = &pendingBatch{size: 2, first: now}
		a.pending[t] = p
	}
	if len(p.records) > 0 && p.size+len(rec)+1 > MaxBatchBytes {
		if err := a.flushLocked(t, p); err != nil {
			return err
		}
		p.first = now
	}
	p.records = append(p.records, rec)
	p.size += len(rec) + 1
	return nil
}

// flushDue flushes batches older than age (all of them when age is 0).
func (a *accumulator) flushDue(now time.Time, age time.Duration) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	for t, p := range a.pending {
		if len(p.records) > 0 && (age == 0 || now.Sub(p.first) >= age) {
			if err := a.flushLocked(t, p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (a *accumulator) flushLocked(t target, p *pendingBatch) error {
	recs := p.records
	p.records, p.size = nil, 2
	return a.flush(t, recs)
}
