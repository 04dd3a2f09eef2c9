package queue

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Defaults.
const (
	DefaultMaxBytes = 256 << 20
	// MaxEntryBytes bounds one entry; larger appends fail with ErrTooLarge,
	// and a larger length read from disk is corruption.
	MaxEntryBytes = 8 << 20
	headerBytes   = 8
	segSuffix     = ".seg"
	cursorFile    = "cursor"
)

var (
	// ErrClosed is returned by operations on a closed queue.
	ErrClosed = errors.New("queue: closed")
	// ErrTooLarge is returned by Append for a payload over MaxEntryBytes or
	// over the queue's MaxBytes.
	ErrTooLarge = errors.New("queue: entry too large")
	// ErrNotHead is returned by Ack for an entry that is not the current head.
	ErrNotHead = errors.New("queue: acknowledged entry is not the head")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Options configure a queue. Zero values mean the documented defaults.
type Options struct {
	Dir string // required; created 0700 if missing
	// MaxBytes caps the total size of the segment files; 0 → DefaultMaxBytes.
	MaxBytes int64
	// SegmentBytes is the size at which a new segment starts; 0 → MaxBytes/8,
	// at most 16 MiB and at least 64 KiB.
	SegmentBytes int64
	Logger       *slog.Logger // nil discards
}

// Entry is one queued payload and its position.
type Entry struct {
	Payload []byte
	seg     uint64
	off     int64
	next    int64
}

// Stats describe the queue.
type Stats struct {
	Entries      int    // unacknowledged entries
	Bytes        int64  // bytes of segment files on disk
	Dropped      uint64 // entries dropped because the queue was full or their segment was damaged (ever, persisted)
	DroppedBytes uint64
}

type segment struct {
	id      uint64
	size    int64
	entries int
}

type cursor struct {
	Segment      uint64 `json:"segment"`
	Offset       int64  `json:"offset"`
	Dropped      uint64 `json:"dropped"`
	DroppedBytes uint64 `json:"droppedBytes"`
}

// Queue is a durable FIFO of byte payloads with one consumer. Append is safe
// for concurrent use; Next and Ack must be called by a single consumer.
type Queue struct {
	opts Options
	log  *slog.Logger

	notify chan struct{} // signalled (non-blocking) on every Append

	mu      sync.Mutex // guards everything below
	closed  bool
	segs    []*segment // ascending id; the last one is written to
	w       *os.File   // write handle of the last segment
	cur     cursor     // head position (first unacknowledged entry)
	curIdx  int        // entries before cur.Offset in the cursor segment
	total   int64      // sum of segment sizes
	readers map[uint64]*os.File
}

// Open opens or creates the queue in opts.Dir, cutting off a torn last entry.
func Open(opts Options) (*Queue, error) {
	if opts.Dir == "" {
		return nil, errors.New("queue: Dir is required")
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = min(opts.MaxBytes/8, 16<<20)
	}
	opts.SegmentBytes = max(opts.SegmentBytes, 64<<10)
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create queue directory: %w", err)
	}
	q := &Queue{opts: opts, log: log, notify: make(chan struct{}, 1), readers: map[uint64]*os.File{}}
	if err := q.load(); err != nil {
		q.closeFiles()
		return nil, err
	}
	return q, nil
}

func segName(id uint64) string { return fmt.Sprintf("%020d%s", id, segSuffix) }

func (q *Queue) path(id uint64) string { return filepath.Join(q.opts.Dir, segName(id)) }

func (q *Queue) load() error {
	des, err := os.ReadDir(q.opts.Dir)
	if err != nil {
		return fmt.Errorf("read queue directory: %w", err)
	}
	var ids []uint64
	for _, de := range des {
		name := de.Name()
		if !strings.HasSuffix(name, segSuffix) {
			continue
		}
		id, err := strconv.ParseUint(strings.TrimSuffix(name, segSuffix), 10, 64)
		if err != nil {
			continue
		}
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })

	if b, err := os.ReadFile(filepath.Join(q.opts.Dir, cursorFile)); err == nil {
		if err := json.Unmarshal(b, &q.cur); err != nil {
			q.log.Warn("queue cursor unreadable; starting at the oldest entry", slog.Any("error", err))
			q.cur = cursor{}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read queue cursor: %w", err)
	}

	for i, id := range ids {
		last := i == len(ids)-1
		s, err := q.scan(id, last)
		if err != nil {
			return err
		}
		q.segs = append(q.segs, s)
		q.total += s.size
	}
	if len(q.segs) == 0 {
		if err := q.newSegment(max(1, q.cur.Segment)); err != nil {
			return err
		}
	} else {
		last := q.segs[len(q.segs)-1]
		f, err := os.OpenFile(q.path(last.id), os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("open queue segment: %w", err)
		}
		q.w = f
	}
	// Place the cursor: on a segment that exists, at an entry boundary.
	first := q.segs[0]
	switch {
	case q.cur.Segment < first.id:
		q.cur.Segment, q.cur.Offset = first.id, 0
	case q.cur.Segment > q.segs[len(q.segs)-1].id:
		q.log.Warn("queue cursor is past the last segment; starting at the oldest entry")
		q.cur.Segment, q.cur.Offset = first.id, 0
	}
	if q.seg(q.cur.Segment) == nil { // a gap: move to the next existing segment
		for _, s := range q.segs {
			if s.id > q.cur.Segment {
				q.cur.Segment, q.cur.Offset = s.id, 0
				break
			}
		}
	}
	idx, off, err := q.countTo(q.cur.Segment, q.cur.Offset)
	if err != nil {
		return err
	}
	if off != q.cur.Offset {
		q.log.Warn("queue cursor not at an entry boundary; moved back", slog.Int64("offset", q.cur.Offset), slog.Int64("boundary", off))
		q.cur.Offset = off
	}
	q.curIdx = idx
	return nil
}

// scan walks a segment's entry headers. For the last segment every payload is
// verified and a torn or corrupt tail is truncated; for the others a bad
// entry ends the segment (its remainder is unreadable) with a warning.
func (q *Queue) scan(id uint64, verify bool) (*segment, error) {
	p := q.path(id)
	f, err := os.OpenFile(p, os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open queue segment: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat queue segment: %w", err)
	}
	s := &segment{id: id}
	var hdr [headerBytes]byte
	var buf []byte
	for {
		n, err := f.ReadAt(hdr[:], s.size)
		if n < headerBytes {
			if err != nil && !errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("read queue segment: %w", err)
			}
			break
		}
		ln := int64(binary.LittleEndian.Uint32(hdr[:4]))
		if ln > MaxEntryBytes || s.size+headerBytes+ln > st.Size() {
			break
		}
		if verify {
			if int64(cap(buf)) < ln {
				buf = make([]byte, ln)
			}
			buf = buf[:ln]
			if _, err := f.ReadAt(buf, s.size+headerBytes); err != nil {
				return nil, fmt.Errorf("read queue segment: %w", err)
			}
			if crc32.Checksum(buf, castagnoli) != binary.LittleEndian.Uint32(hdr[4:]) {
				break
			}
		}
		s.size += headerBytes + ln
		s.entries++
	}
	if s.size != st.Size() {
		if verify {
			q.log.Warn("queue segment has a torn tail; truncating", slog.String("segment", p),
				slog.Int64("size", st.Size()), slog.Int64("valid", s.size))
			if err := f.Truncate(s.size); err != nil {
				return nil, fmt.Errorf("truncate queue segment: %w", err)
			}
			if err := f.Sync(); err != nil {
				return nil, fmt.Errorf("sync queue segment: %w", err)
			}
		} else {
			q.log.Warn("queue segment has an unreadable tail", slog.String("segment", p),
				slog.Int64("size", st.Size()), slog.Int64("valid", s.size))
			s.size = st.Size() // count its bytes toward the cap; reading stops at the bad entry
		}
	}
	return s, nil
}

// countTo counts the entries of segment id before offset and returns the
// largest entry boundary not after offset.
func (q *Queue) countTo(id uint64, offset int64) (int, int64, error) {
	if offset == 0 {
		return 0, 0, nil
	}
	f, err := q.reader(id)
	if err != nil {
		return 0, 0, err
	}
	var pos int64
	n := 0
	var hdr [headerBytes]byte
	for pos < offset {
		if _, err := f.ReadAt(hdr[:], pos); err != nil {
			break
		}
		next := pos + headerBytes + int64(binary.LittleEndian.Uint32(hdr[:4]))
		if next > offset {
			break
		}
		pos = next
		n++
	}
	return n, pos, nil
}

func (q *Queue) seg(id uint64) *segment {
	for _, s := range q.segs {
		if s.id == id {
			return s
		}
	}
	return nil
}

func (q *Queue) newSegment(id uint64) error {
	f, err := os.OpenFile(q.path(id), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("create queue segment: %w", err)
	}
	if err := syncDir(q.opts.Dir); err != nil {
		f.Close()
		return err
	}
	if q.w != nil {
		if err := q.w.Close(); err != nil {
			q.log.Warn("close queue segment", slog.Any("error", err))
		}
	}
	q.w = f
	q.segs = append(q.segs, &segment{id: id})
	return nil
}

func (q *Queue) reader(id uint64) (*os.File, error) {
	if f := q.readers[id]; f != nil {
		return f, nil
	}
	f, err := os.Open(q.path(id))
	if err != nil {
		return nil, fmt.Errorf("open queue segment: %w", err)
	}
	q.readers[id] = f
	return f, nil
}

// Append adds payload at the tail and returns once it is on stable storage.
// If the queue would exceed MaxBytes, the oldest segments are dropped first.
func (q *Queue) Append(payload []byte) error {
	need := int64(headerBytes + len(payload))
	if len(payload) > MaxEntryBytes || need > q.opts.MaxBytes/2 {
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, len(payload))
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrClosed
	}
	last := q.segs[len(q.segs)-1]
	if last.size > 0 && last.size+need > q.opts.SegmentBytes {
		if err := q.newSegment(last.id + 1); err != nil {
			return err
		}
		last = q.segs[len(q.segs)-1]
	}
	for q.total+need > q.opts.MaxBytes && len(q.segs) > 1 {
		if err := q.dropOldest(); err != nil {
			return err
		}
	}
	buf := make([]byte, headerBytes, need)
	binary.LittleEndian.PutUint32(buf[:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(buf[4:], crc32.Checksum(payload, castagnoli))
	buf = append(buf, payload...)
	if _, err := q.w.Write(buf); err != nil {
		// Cut off whatever part was written so the segment stays well formed.
		if terr := q.w.Truncate(last.size); terr != nil {
			q.log.Error("cannot truncate queue segment after a failed write", slog.Any("error", terr))
		}
		return fmt.Errorf("append to queue: %w", err)
	}
	if err := q.w.Sync(); err != nil {
		return fmt.Errorf("sync queue: %w", err)
	}
	last.size += need
	last.entries++
	q.total += need
	select {
	case q.notify <- struct{}{}:
	default:
	}
	return nil
}

// dropOldest removes the first segment, counting its unacknowledged entries
// as dropped. Called with q.mu held and len(q.segs) > 1.
func (q *Queue) dropOldest() error {
	s := q.segs[0]
	lost, lostBytes := 0, int64(0)
	switch {
	case q.cur.Segment == s.id:
		lost, lostBytes = s.entries-q.curIdx, s.size-q.cur.Offset
	case q.cur.Segment < s.id:
		lost, lostBytes = s.entries, s.size
	}
	if q.cur.Segment <= s.id {
		q.cur.Segment, q.cur.Offset, q.curIdx = q.segs[1].id, 0, 0
	}
	q.cur.Dropped += uint64(lost)
	q.cur.DroppedBytes += uint64(lostBytes)
	if err := q.saveCursor(); err != nil {
		return err
	}
	q.removeSegment(s)
	if lost > 0 {
		q.log.Warn("queue full; dropped the oldest entries", slog.Int("entries", lost), slog.Int64("bytes", lostBytes),
			slog.Uint64("dropped_total", q.cur.Dropped))
	}
	return nil
}

func (q *Queue) removeSegment(s *segment) {
	if f := q.readers[s.id]; f != nil {
		f.Close()
		delete(q.readers, s.id)
	}
	if err := os.Remove(q.path(s.id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		q.log.Warn("remove queue segment", slog.Any("error", err))
	}
	q.total -= s.size
	q.segs = q.segs[1:]
}

// Next returns the head entry, waiting until there is one or ctx ends. It
// returns the same entry until that entry is acknowledged.
func (q *Queue) Next(ctx context.Context) (Entry, error) {
	for {
		e, ok, err := q.head()
		if err != nil || ok {
			return e, err
		}
		select {
		case <-ctx.Done():
			return Entry{}, ctx.Err()
		case <-q.notify:
		}
	}
}

// head reads the entry at the cursor, skipping past the ends of segments.
func (q *Queue) head() (Entry, bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return Entry{}, false, ErrClosed
	}
	for {
		s := q.seg(q.cur.Segment)
		if s == nil {
			return Entry{}, false, nil
		}
		if q.cur.Offset+headerBytes > s.size || q.curIdx >= s.entries {
			if s == q.segs[len(q.segs)-1] {
				return Entry{}, false, nil
			}
			// Finished (or unreadable remainder of) a non-last segment.
			q.cur.Segment, q.cur.Offset, q.curIdx = s.id+1, 0, 0
			for _, n := range q.segs {
				if n.id > s.id {
					q.cur.Segment = n.id
					break
				}
			}
			continue
		}
		f, err := q.reader(s.id)
		if err != nil {
			return Entry{}, false, err
		}
		var hdr [headerBytes]byte
		if _, err := f.ReadAt(hdr[:], q.cur.Offset); err != nil {
			return Entry{}, false, fmt.Errorf("read queue entry: %w", err)
		}
		ln := int64(binary.LittleEndian.Uint32(hdr[:4]))
		if ln > MaxEntryBytes || q.cur.Offset+headerBytes+ln > s.size {
			if err := q.skipDamaged(s, "entry length out of range"); err != nil {
				return Entry{}, false, err
			}
			continue
		}
		p := make([]byte, ln)
		if _, err := f.ReadAt(p, q.cur.Offset+headerBytes); err != nil {
			return Entry{}, false, fmt.Errorf("read queue entry: %w", err)
		}
		if crc32.Checksum(p, castagnoli) != binary.LittleEndian.Uint32(hdr[4:]) {
			if err := q.skipDamaged(s, "checksum mismatch"); err != nil {
				return Entry{}, false, err
			}
			continue
		}
		return Entry{Payload: p, seg: s.id, off: q.cur.Offset, next: q.cur.Offset + headerBytes + ln}, true, nil
	}
}

// skipDamaged gives up the rest of segment s, whose entry at the cursor is
// damaged (Open checks only the headers of segments other than the last,
// and a file can be damaged after Open): its remaining entries are counted
// as dropped, logged, and the cursor moves to the next segment — a new one
// when s is the last, so that appends go on behind the damage. Without
// this every read would fail on the damaged entry, and delivery would stop
// for good (also after a restart). Called with q.mu held.
func (q *Queue) skipDamaged(s *segment, why string) error {
	lost := max(s.entries-q.curIdx, 1)
	lostBytes := max(s.size-q.cur.Offset, 0)
	q.log.Error("queue segment damaged; skipping the rest of it", slog.String("segment", q.path(s.id)),
		slog.String("damage", why), slog.Int64("offset", q.cur.Offset), slog.Int("entries_lost", lost), slog.Int64("bytes_lost", lostBytes))
	if s == q.segs[len(q.segs)-1] {
		if err := q.newSegment(s.id + 1); err != nil {
			return err
		}
	}
	q.cur.Dropped += uint64(lost)
	q.cur.DroppedBytes += uint64(lostBytes)
	for _, n := range q.segs {
		if n.id > s.id {
			q.cur.Segment, q.cur.Offset, q.curIdx = n.id, 0, 0
			break
		}
	}
	if err := q.saveCursor(); err != nil {
		return err
	}
	for len(q.segs) > 1 && q.segs[0].id < q.cur.Segment {
		q.removeSegment(q.segs[0])
	}
	return nil
}

// Ack removes the head entry e for good: the new cursor is on stable storage
// when Ack returns, and fully consumed segments are deleted.
func (q *Queue) Ack(e Entry) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrClosed
	}
	if e.seg != q.cur.Segment || e.off != q.cur.Offset {
		return ErrNotHead
	}
	q.cur.Offset = e.next
	q.curIdx++
	if err := q.saveCursor(); err != nil {
		return err
	}
	for len(q.segs) > 1 && q.segs[0].id < q.cur.Segment {
		q.removeSegment(q.segs[0])
	}
	if len(q.segs) > 1 && q.segs[0].id == q.cur.Segment && q.curIdx >= q.segs[0].entries {
		q.cur.Segment, q.cur.Offset, q.curIdx = q.segs[1].id, 0, 0
		if err := q.saveCursor(); err != nil {
			return err
		}
		q.removeSegment(q.segs[0])
	}
	return nil
}

// Skip acknowledges the head entry e without delivery (a dead letter); it is
// Ack under another name so that call sites say what they mean.
func (q *Queue) Skip(e Entry) error { return q.Ack(e) }

func (q *Queue) saveCursor() error {
	b, err := json.Marshal(q.cur)
	if err != nil {
		return fmt.Errorf("encode queue cursor: %w", err)
	}
	return writeFileAtomic(filepath.Join(q.opts.Dir, cursorFile), b)
}

// Stats returns the current depth, size and drop counters.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, s := range q.segs {
		switch {
		case s.id > q.cur.Segment:
			n += s.entries
		case s.id == q.cur.Segment:
			n += s.entries - q.curIdx
		}
	}
	return Stats{Entries: n, Bytes: q.total, Dropped: q.cur.Dropped, DroppedBytes: q.cur.DroppedBytes}
}

// Close releases the files. Entries stay on disk for the next Open.
func (q *Queue) Close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil
	}
	q.closed = true
	return q.closeFiles()
}

func (q *Queue) closeFiles() error {
	var err error
	if q.w != nil {
		err = q.w.Close()
		q.w = nil
	}
	for id, f := range q.readers {
		f.Close()
		delete(q.readers, id)
	}
	return err
}

// writeFileAtomic replaces path with data: temp file, fsync, rename, fsync dir.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", filepath.Base(path), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", filepath.Base(path), err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replace %s: %w", filepath.Base(path), err)
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory for sync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	return nil
}
