package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"custos/internal/crypt"
)

// WAL segment file format (one file per segment, wal/<first seq, 16 hex digits>.wal):
//
//	header:  magic "CSTWAL\x00\x01" | first seq (u64 LE) | uvarint n | n bytes: the segment
//	         data key wrapped by the workspace key | CRC-32C (u32 LE) of all preceding header bytes
//	records: length of sealed (u32 LE) | seq (u64 LE) | CRC-32C (u32 LE) of seq and sealed | sealed
//
// sealed is a crypt envelope of the record payload under the segment key, with
// AAD "custos/wal/v1" | workspace | first seq | seq, so records cannot be moved
// between segments, workspaces or positions. Sequence numbers increase by one
// per record across segments. A record with a bad length or CRC in the last
// segment is a torn write from a crash: it and everything after it is dropped
// (it was never acknowledged, because Commit returns only after fsync). The same
// in an older segment, or a record whose CRC is good but whose GCM tag is not,
// is corruption.
//
// With double encryption the header is version 2: magic "CSTWAL\x00\x02" | first seq |
// layer count (byte, 2) | per layer uvarint n and the wrapped data key | CRC-32C, and
// sealed is a layer-1 envelope of a layer-0 envelope.
const (
	walMagic       = "CSTWAL\x00\x01"
	walMagicV2     = "CSTWAL\x00\x02"
	walFrameHeader = 16
	maxRecordBytes = 512 << 20
	maxWrappedKey  = 4096
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type walSegment struct {
	firstSeq uint64
	lastSeq  uint64 // highest record seq in the segment; firstSeq-1 when empty
	path     string
	key      layers
	f        *os.File // open while the segment is active
	// Offsets in the active segment: after its last written record and
	// after the last record a good fsync covered (walnospace.go).
	writtenOff, syncedOff int64
	// dirSync: the header and directory entry are not yet known durable
	// (rotate creates segments without fsyncs under the exclusive gate); the
	// first group-commit fsync of the segment syncs the directory too. Set
	// before the segment is published, then owned by the sync leader.
	dirSync bool
}

// wal is one workspace's write-ahead log. Safe for concurrent use; callers
// serialise rotation against appends through the workspace gate.
type wal struct {
	wsID string
	dir  string
	keys *atomic.Pointer[wsKeys] // the workspace's current keys
	log  *slog.Logger
	m    *metrics

	mu      sync.Mutex // guards the fields below
	cur     *walSegment
	old     []*walSegment // closed segments not yet deleted
	next    uint64        // next sequence number
	written uint64        // highest seq written to cur
	err     error         // sticky: after a failed write or fsync the WAL refuses appends
	buf     []byte

	// After an fsync failed for lack of space (walnospace.go): the sequence
	// ranges cut off, and whether appends must start a new segment first.
	failed    [][2]uint64 // [lo, hi) ranges of records that were cut off
	failedAny atomic.Bool
	needSeg   bool
	// fsync syncs cur's file; nil means (*os.File).Sync. Tests inject faults.
	fsync func(*os.File) error
	// writeFault, when set by a test, fails the write of record seq as a
	// rolled-back ENOSPC write does.
	writeFault func(seq uint64) error

	// Group commit (sync): one fsync runs at a time, the leader's. A
	// committer whose record is not yet durable waits for the running fsync
	// to end on syncDone — not on a mutex held across the fsync, which let a
	// committer arriving later take the mutex first and start the next fsync
	// while committers the finished one had covered still queued behind it.
	// pos is what the last change of the active segment left (an append,
	// a new segment, a rollback), under its own mutex so the group-commit
	// leader reads its fsync target without queueing for w.mu behind
	// committers that seal and write their ~500 KB records under it. The
	// leader alone updates a segment's syncedOff.
	posMu sync.Mutex
	pos   walPos

	syncState sync.Mutex    // guards syncing and syncDone
	syncing   bool          // a leader's fsync is running
	syncDone  chan struct{} // closed when that fsync ends
	synced    atomic.Uint64 // highest seq known durable
}

// walPos is a snapshot of the WAL's write position.
type walPos struct {
	seg     *walSegment
	written uint64 // highest seq written to seg
	off     int64  // seg's offset after that record
	err     error  // w.err
}

// publish records the write position for the group-commit leader. Callers
// hold w.mu.
func (w *wal) publish() {
	p := walPos{seg: w.cur, written: w.written, err: w.err}
	if w.cur != nil {
		p.off = w.cur.writtenOff
	}
	w.posMu.Lock()
	w.pos = p
	w.posMu.Unlock()
}

func segmentKeyAAD(wsID string, firstSeq uint64) []byte {
	b := []byte("custos/wal-key/v1\x00" + wsID + "\x00")
	return binary.LittleEndian.AppendUint64(b, firstSeq)
}

func recordAAD(dst []byte, wsID string, firstSeq, seq uint64) []byte {
	dst = append(dst, "custos/wal/v1\x00"...)
	dst = append(dst, wsID...)
	dst = append(dst, 0)
	dst = binary.LittleEndian.AppendUint64(dst, firstSeq)
	return binary.LittleEndian.AppendUint64(dst, seq)
}

func segmentPath(dir string, firstSeq uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%016x.wal", firstSeq))
}

// createSegment writes and fsyncs a new segment's header.
func (w *wal) createSegment(ctx context.Context, firstSeq uint64) (*walSegment, error) {
	return w.newSegment(ctx, firstSeq, true)
}

// newSegment writes a new segment's header; with durable, it fsyncs the file
// and the directory before returning. Without, the first fsync of a record
// in it does (walSegment.dirSync): until then a crash may leave no file or a
// torn header, which replay removes — it held no acknowledged record.
func (w *wal) newSegment(ctx context.Context, firstSeq uint64, durable bool) (*walSegment, error) {
	id := fmt.Sprintf("wal-%016x", firstSeq)
	key, wrapped, err := newDataKeys(ctx, w.keys.Load(), id, segmentKeyAAD(w.wsID, firstSeq))
	if err != nil {
		return nil, fmt.Errorf("create WAL segment: %w", err)
	}
	path := segmentPath(w.dir, firstSeq)
	var hdr []byte
	if len(wrapped) == 1 {
		hdr = []byte(walMagic)
		hdr = binary.LittleEndian.AppendUint64(hdr, firstSeq)
		hdr = binary.AppendUvarint(hdr, uint64(len(wrapped[0])))
		hdr = append(hdr, wrapped[0]...)
	} else {
		hdr = []byte(walMagicV2)
		hdr = binary.LittleEndian.AppendUint64(hdr, firstSeq)
		hdr = appendWrappedKeys(hdr, wrapped)
	}
	hdr = binary.LittleEndian.AppendUint32(hdr, crc32.Checksum(hdr, castagnoli))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create WAL segment: %w", err)
	}
	if _, err = f.Write(hdr); err == nil && durable {
		err = f.Sync()
	}
	if err == nil && durable {
		err = syncDir(w.dir)
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		key.Destroy()
		return nil, fmt.Errorf("create WAL segment %s: %w", path, err)
	}
	n := int64(len(hdr))
	return &walSegment{firstSeq: firstSeq, lastSeq: firstSeq - 1, path: path, key: key, f: f, writtenOff: n, syncedOff: n, dirSync: !durable}, nil
}

// append seals payload as the next record of the active segment and writes it
// (without fsync). It returns the record's sequence number.
func (w *wal) append(payload []byte) (uint64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	if w.needSeg {
		if err := w.startSegmentLocked(); err != nil {
			return 0, fmt.Errorf("append WAL record: %w", err)
		}
	}
	seg := w.cur
	seq := w.next
	var aadBuf [96]byte
	aad := recordAAD(aadBuf[:0], w.wsID, seg.firstSeq, seq)
	frame := append(w.buf[:0], make([]byte, walFrameHeader)...)
	frame, err := seg.key.Seal(frame, payload, aad)
	if err != nil {
		return 0, fmt.Errorf("append WAL record: %w", err)
	}
	if len(frame)-walFrameHeader > maxRecordBytes {
		return 0, fmt.Errorf("append WAL record: %d bytes exceeds the %d-byte limit", len(frame), maxRecordBytes)
	}
	binary.LittleEndian.PutUint32(frame[0:], uint32(len(frame)-walFrameHeader))
	binary.LittleEndian.PutUint64(frame[4:], seq)
	binary.LittleEndian.PutUint32(frame[12:], crc32.Update(crc32.Checksum(frame[4:12], castagnoli), castagnoli, frame[walFrameHeader:]))
	if cap(frame) <= maxPooledFrame {
		w.buf = frame
	}
	if w.writeFault != nil {
		if err := w.writeFault(seq); err != nil {
			return 0, fmt.Errorf("write WAL segment %s (rolled back): %w", seg.path, err)
		}
	}
	// The offset before the write, to roll a failed write back (below).
	off, offErr := seg.f.Seek(0, io.SeekCurrent)
	if _, err := seg.f.Write(frame); err != nil {
		// A full or over-quota filesystem (added by the e2e disk-full fault
		// test): cut the partial record off so the segment ends on a whole
		// record, and refuse only this append — nothing of it was
		// acknowledged — instead of poisoning the WAL until a restart.
		// Truncating frees space, so it works on a full disk; if it fails,
		// the error stays sticky as for any other write failure.
		if offErr == nil && (errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)) {
			if terr := seg.f.Truncate(off); terr == nil {
				if _, serr := seg.f.Seek(off, io.SeekStart); serr == nil {
					return 0, fmt.Errorf("write WAL segment %s (rolled back): %w", seg.path, err)
				}
			}
		}
		w.err = fmt.Errorf("write WAL segment %s: %w", seg.path, err)
		w.publish()
		return 0, w.err
	}
	w.next++
	w.written = seq
	if offErr == nil {
		seg.writtenOff = off + int64(len(frame))
	}
	seg.lastSeq = seq
	w.publish()
	return seq, nil
}

// sealOverhead is the number of bytes sealing adds to a plaintext.
func sealOverhead(key layers) int {
	n := 0
	for _, k := range key {
		n += k.Overhead()
	}
	return n
}

// sealExact seals plain under key into a new buffer of exactly the sealed
// size: a guessed margin too small makes AES-GCM allocate and copy again.
func sealExact(key layers, plain, aad []byte) ([]byte, error) {
	return key.Seal(make([]byte, 0, len(plain)+sealOverhead(key)), plain, aad)
}

// maxPooledFrame bounds the record buffers kept for reuse (w.buf, Commit's
// payload pool).
const maxPooledFrame = 4 << 20

// sync returns once record seq is durable. Concurrent callers share fsyncs
// (group commit): the first caller whose record is not durable becomes the
// leader and fsyncs everything written so far; callers arriving meanwhile
// wait for that fsync to end, return at once if it covered them, and
// otherwise one of them leads the next.
func (w *wal) sync(seq uint64) error {
	for {
		if err := w.cutOff(seq); err != nil {
			return err
		}
		if w.synced.Load() >= seq {
			return nil
		}
		w.syncState.Lock()
		if w.syncing {
			done := w.syncDone
			w.syncState.Unlock()
			<-done
			continue
		}
		if w.synced.Load() >= seq {
			w.syncState.Unlock()
			return nil
		}
		w.syncing = true
		w.syncDone = make(chan struct{})
		w.syncState.Unlock()
		err := w.syncLeader(seq)
		w.syncState.Lock()
		w.syncing = false
		close(w.syncDone)
		w.syncState.Unlock()
		if err != nil {
			return err
		}
	}
}

// syncLeader is sync's fsync, run by one caller at a time: it makes every
// record written before it started durable, or records why not.
func (w *wal) syncLeader(seq uint64) error {
	if err := w.cutOff(seq); err != nil {
		return err
	}
	w.posMu.Lock()
	p := w.pos
	w.posMu.Unlock()
	if p.seg == nil { // nothing published (tests that set up w.cur by hand)
		w.mu.Lock()
		p = walPos{seg: w.cur, written: w.written, off: w.cur.writtenOff, err: w.err}
		w.mu.Unlock()
	}
	seg, target, err := p.seg, p.written, p.err
	f, targetOff := seg.f, p.off
	if w.synced.Load() >= seq {
		return nil
	}
	if err != nil {
		return err
	}
	err = w.syncFile(f)
	if err == nil && seg.dirSync {
		if err = syncDir(w.dir); err == nil {
			seg.dirSync = false
		}
	}
	if err != nil {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.err == nil && w.cur.f == f && isNoSpace(err) {
			if rerr := w.rollbackUnsynced(err); rerr == nil {
				return fmt.Errorf("fsync WAL (unsynced records rolled back): %w", err)
			}
		}
		if w.err == nil {
			w.err = fmt.Errorf("fsync WAL: %w", err)
			w.publish()
		}
		return w.err
	}
	if w.m != nil {
		w.m.walSyncs.Add(1)
	}
	seg.syncedOff = max(seg.syncedOff, targetOff)
	w.synced.Store(target)
	return nil
}

// rotate closes the active segment (if it holds records) and starts a new
// one. It returns the highest sequence number assigned so far. The caller
// holds the workspace gate exclusively, so no append or sync is in flight.
func (w *wal) rotate(ctx context.Context) (uint64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	last := w.next - 1
	if w.cur.lastSeq < w.cur.firstSeq {
		return last, nil // empty: keep using it
	}
	// Every commit syncs its record before it releases the gate, so the
	// segment is normally durable already; the fsync is for the rest.
	if w.synced.Load() < w.written {
		if err := w.cur.f.Sync(); err != nil {
			w.err = fmt.Errorf("fsync WAL: %w", err)
			w.publish()
			return 0, w.err
		}
	}
	// No fsync under the exclusive gate, which holds every commit up: the
	// first commit in the new segment makes its header and name durable.
	seg, err := w.newSegment(ctx, w.next, false)
	if err != nil {
		return 0, err // the old segment stays active; nothing is lost
	}
	w.cur.f.Close()
	w.cur.f = nil
	w.old = append(w.old, w.cur)
	w.cur = seg
	w.publish()
	w.synced.Store(last)
	return last, nil
}

// deleteOld removes closed segments whose records are all at or below seq.
func (w *wal) deleteOld(seq uint64) error {
	// Only the list changes under w.mu: unlinking a segment and fsyncing the
	// directory take milliseconds, and commits wait for w.mu (a mutex
	// profile of bench/ingest showed 3 s of commit waits behind this).
	w.mu.Lock()
	var keep, drop []*walSegment
	for _, s := range w.old {
		if s.lastSeq > seq {
			keep = append(keep, s)
		} else {
			drop = append(drop, s)
		}
	}
	w.old = keep
	w.mu.Unlock()
	var firstErr error
	var failed []*walSegment
	removed := false
	for _, s := range drop {
		if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			if firstErr == nil {
				firstErr = fmt.Errorf("delete WAL segment: %w", err)
			}
			failed = append(failed, s) // kept, to be deleted by a later call
			continue
		}
		s.key.Destroy()
		removed = true
	}
	if len(failed) > 0 {
		w.mu.Lock()
		w.old = append(w.old, failed...)
		w.mu.Unlock()
	}
	if removed {
		if err := syncDir(w.dir); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("delete WAL segment: %w", err)
		}
	}
	return firstErr
}

func (w *wal) close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cur == nil || w.cur.f == nil {
		return nil
	}
	err := w.cur.f.Sync()
	if cerr := w.cur.f.Close(); err == nil {
		err = cerr
	}
	w.cur.f = nil
	if w.err == nil {
		w.err = ErrClosed
	}
	w.publish()
	return err
}

// listSegments returns the segment first-seqs in dir, ascending.
func listSegments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var seqs []uint64
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".wal") || len(name) != 20 {
			continue
		}
		v, err := strconv.ParseUint(name[:16], 16, 64)
		if err != nil {
			continue
		}
		seqs = append(seqs, v)
	}
	slices.Sort(seqs)
	return seqs, nil
}

// errTorn marks the end of the valid prefix of a segment.
var errTorn = errors.New("torn WAL record")

// parseSegmentHeader parses a segment header and returns the wrapped key and
// the header length.
func parseSegmentHeader(b []byte) (firstSeq uint64, wrapped [][]byte, n int, err error) {
	d := decoder{b: b}
	magic := string(d.bytes(len(walMagic)))
	if magic != walMagic && magic != walMagicV2 {
		return 0, nil, 0, fmt.Errorf("%w: bad WAL segment magic", errTorn)
	}
	firstSeq = d.u64()
	if magic == walMagic {
		if w := d.bytes(d.count("wrapped key length", maxWrappedKey)); d.err == nil {
			wrapped = [][]byte{w}
		}
	} else {
		wrapped = decodeWrappedKeys(&d)
	}
	n = len(b) - len(d.b)
	crc := d.bytes(4)
	if d.err != nil {
		return 0, nil, 0, fmt.Errorf("%w: WAL segment header: %v", errTorn, d.err)
	}
	if binary.LittleEndian.Uint32(crc) != crc32.Checksum(b[:n], castagnoli) {
		return 0, nil, 0, fmt.Errorf("%w: WAL segment header checksum", errTorn)
	}
	return firstSeq, wrapped, n + 4, nil
}

// readSegment parses a whole segment. For every valid record it calls fn. It
// returns the offset where the valid prefix ends and the error that ended it
// (errTorn-wrapped for a bad frame, a *CorruptionError for a bad GCM tag).
func readSegment(ctx context.Context, path, wsID string, wsKey *wsKeys, fn func(seq uint64, payload []byte) error) (seg *walSegment, validLen int64, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, fmt.Errorf("read WAL segment: %w", err)
	}
	return parseSegment(ctx, b, path, wsID, wsKey, fn)
}

// parseSegment is readSegment on the segment's bytes.
func parseSegment(ctx context.Context, b []byte, path, wsID string, wsKey *wsKeys, fn func(seq uint64, payload []byte) error) (seg *walSegment, validLen int64, err error) {
	firstSeq, wrapped, off, err := parseSegmentHeader(b)
	if err != nil {
		return nil, 0, err
	}
	id := fmt.Sprintf("wal-%016x", firstSeq)
	key, err := unwrapDataKeys(ctx, wsKey, id, wrapped, segmentKeyAAD(wsID, firstSeq))
	if err != nil {
		return nil, 0, &CorruptionError{Path: path, Block: -1, Err: err}
	}
	seg = &walSegment{firstSeq: firstSeq, lastSeq: firstSeq - 1, path: path, key: key}
	var aadBuf [96]byte
	var plain []byte
	for off < len(b) {
		if len(b)-off < walFrameHeader {
			return seg, int64(off), fmt.Errorf("%w: %d trailing bytes", errTorn, len(b)-off)
		}
		n := int(binary.LittleEndian.Uint32(b[off:]))
		seq := binary.LittleEndian.Uint64(b[off+4:])
		crc := binary.LittleEndian.Uint32(b[off+12:])
		if n > maxRecordBytes || n > len(b)-off-walFrameHeader {
			if laterFrame(b, off+1, seg.lastSeq) {
				return seg, int64(off), &CorruptionError{Path: path, Block: -1, Err: fmt.Errorf("record length %d at offset %d is damaged, and valid records follow", n, off)}
			}
			return seg, int64(off), fmt.Errorf("%w: record length %d at offset %d", errTorn, n, off)
		}
		sealed := b[off+walFrameHeader : off+walFrameHeader+n]
		if crc32.Update(crc32.Checksum(b[off+4:off+12], castagnoli), castagnoli, sealed) != crc {
			// A torn write damages only the tail. A bad record followed by a
			// valid one is damage (bit rot, tampering) in the middle: dropping
			// everything after it would lose acknowledged commits.
			if laterFrame(b, off+1, seg.lastSeq) {
				return seg, int64(off), &CorruptionError{Path: path, Block: -1, Err: fmt.Errorf("record %d at offset %d fails its checksum, and valid records follow", seq, off)}
			}
			return seg, int64(off), fmt.Errorf("%w: record checksum at offset %d", errTorn, off)
		}
		if seq != seg.lastSeq+1 {
			return seg, int64(off), &CorruptionError{Path: path, Block: -1, Err: fmt.Errorf("record seq %d, want %d", seq, seg.lastSeq+1)}
		}
		plain, err = key.Open(plain[:0], sealed, recordAAD(aadBuf[:0], wsID, firstSeq, seq))
		if err != nil {
			return seg, int64(off), &CorruptionError{Path: path, Block: -1, Err: fmt.Errorf("record %d: %w", seq, err)}
		}
		if err := fn(seq, plain); err != nil {
			return seg, int64(off), err
		}
		seg.lastSeq = seq
		off += walFrameHeader + n
	}
	return seg, int64(off), nil
}

// walRecord is one committed batch: rows of one table.
//
// Payload encoding: version byte (1) | table (uvarint length + bytes) |
// incarnation (16 bytes) | uvarint rows | uvarint columns | per column:
// name (uvarint length + bytes), type byte, column encoding (see encodeColumn).
type walRecord struct {
	table       string
	incarnation [16]byte
	n           int
	schema      Schema
	vecs        []*Vector
}

const walRecordVersion = 1

func (r *walRecord) appendTo(dst []byte) []byte {
	dst = append(dst, walRecordVersion)
	dst = appendStr(dst, r.table)
	dst = append(dst, r.incarnation[:]...)
	dst = binary.AppendUvarint(dst, uint64(r.n))
	dst = binary.AppendUvarint(dst, uint64(len(r.schema)))
	for i, c := range r.schema {
		dst = appendStr(dst, c.Name)
		dst = append(dst, byte(c.Type))
		dst = encodeColumn(dst, r.vecs[i], 0, r.n, false)
	}
	return dst
}

func decodeWALRecord(b []byte) (*walRecord, error) {
	d := decoder{b: b}
	if v := d.byte1(); d.err == nil && v != walRecordVersion {
		return nil, fmt.Errorf("WAL record version %d", v)
	}
	r := &walRecord{}
	r.table = d.str(255)
	copy(r.incarnation[:], d.bytes(16))
	r.n = d.count("row count", maxBlockRows)
	ncol := d.count("column count", 10000)
	if d.err != nil {
		return nil, d.err
	}
	for range ncol {
		name := d.str(1024)
		t := ColumnType(d.byte1())
		if d.err != nil {
			return nil, d.err
		}
		if t == TypeInvalid || int(t) >= len(typeNames) {
			return nil, fmt.Errorf("WAL record column %q: bad type %d", name, t)
		}
		v, err := decodeColumn(&d, t, r.n)
		if err != nil {
			return nil, fmt.Errorf("WAL record column %q: %w", name, err)
		}
		r.schema = append(r.schema, Column{name, t})
		r.vecs = append(r.vecs, v)
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("WAL record: %d trailing bytes", len(d.b))
	}
	return r, nil
}

// minSealedRecord is the smallest sealed record: an envelope with a one-byte
// key ID and an empty payload.
const minSealedRecord = 3 + crypt.NonceSize + crypt.TagSize

// laterFrame reports whether b holds, at or after offset from, a record
// frame with a good checksum and a sequence number above after: proof that
// a bad frame before it is not a torn tail.
func laterFrame(b []byte, from int, after uint64) bool {
	for p := max(from, 0); p+walFrameHeader+minSealedRecord <= len(b); p++ {
		seq := binary.LittleEndian.Uint64(b[p+4:])
		if seq <= after || seq-after > 1<<32 {
			continue
		}
		n := int(binary.LittleEndian.Uint32(b[p:]))
		if n < minSealedRecord || n > maxRecordBytes || n > len(b)-p-walFrameHeader {
			continue
		}
		crc := binary.LittleEndian.Uint32(b[p+12:])
		if crc32.Update(crc32.Checksum(b[p+4:p+12], castagnoli), castagnoli, b[p+walFrameHeader:p+walFrameHeader+n]) == crc {
			return true
		}
	}
	return false
}
