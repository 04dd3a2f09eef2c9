// Package tail follows log files for custos-agent's logFiles data source:
// glob patterns, one record per line or multiline records that start with a
// timestamp, rotation by rename and by copy-truncate, and a checkpoint file
// (file identity dev+inode and offset) so that a restart resumes exactly where
// the last committed record ended — or where the first record the caller
// still keeps in memory begins (Commit's holds). The package imports only the
// standard library.
package tail

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"syscall"
	"time"
)

// Defaults.
const (
	DefaultMaxRecordBytes = 256 << 10
	DefaultFlushAfter     = 2 * time.Second
	DefaultGrace          = 5 * time.Second
	maxReadPerPoll        = 4 << 20
	maxTrackedFiles       = 1024
)

// Options configure a Tailer.
type Options struct {
	Patterns  []string // glob patterns (filepath.Match syntax); required
	StatePath string   // checkpoint file; required
	// RecordStart, if set, makes records multiline: a line matching it starts
	// a record, other lines continue the current one.
	RecordStart *regexp.Regexp
	// ReadFromStart reads files found at the very first scan (no checkpoint
	// file yet) from the beginning; by default they are read from their end.
	// Files that appear later are always read from the beginning.
	ReadFromStart bool
	// MaxRecordBytes cuts longer records; 0 → DefaultMaxRecordBytes.
	MaxRecordBytes int
	// FlushAfter emits a pending multiline record once its file has been
	// quiet this long; 0 → DefaultFlushAfter.
	FlushAfter time.Duration
	// Grace keeps reading a file that no pattern matches any more (renamed
	// by rotation) for this long before closing it; 0 → DefaultGrace.
	Grace time.Duration
	// MaxPollBytes bounds what one Poll reads across all files, shared
	// evenly between them (each file gets at least MaxRecordBytes+1, at most
	// 4 MB), so that catching up on a backlog does not hold it all in
	// memory at once; the rest is read by the next polls. 0 → each file up
	// to 4 MB per poll.
	MaxPollBytes int64
	Now          func() time.Time
	Logger       *slog.Logger
}

// Record is one log record read from a file.
type Record struct {
	Path string
	Text string // without the final newline
	// Start is where the record begins in its file. A caller that keeps a
	// record in memory past Commit (waiting for something before it can be
	// stored) passes Start to Commit as a hold, so that a restart reads the
	// record again instead of losing it.
	Start Pos
}

type fileID struct{ Dev, Ino uint64 }

// Pos is a position in one followed file: the file's identity (device and
// inode, not its path, which rotation gives to another file) and a byte
// offset. The zero Pos holds nothing.
type Pos struct {
	id     fileID
	Offset int64
}

// SameFile reports whether p and q are positions in the same file.
func (p Pos) SameFile(q Pos) bool { return p.id == q.id }

// IsZero reports whether p is the zero Pos.
func (p Pos) IsZero() bool { return p == Pos{} }

type checkpoint struct {
	Path   string `json:"path"`
	Dev    uint64 `json:"dev"`
	Ino    uint64 `json:"ino"`
	Offset int64  `json:"offset"`
	// HeadCRC is the CRC-32 of the first HeadLen (≤ 1 KiB, ≤ Offset) bytes:
	// a file copy-truncated and refilled past Offset while the agent was down
	// has the same identity but another head, and is read from the start.
	HeadLen int64  `json:"headLen"`
	HeadCRC uint32 `json:"headCrc"`
}

type state struct {
	Files []checkpoint `json:"files"`
}

type file struct {
	path     string
	id       fileID
	f        *os.File
	readPos  int64 // next byte to read
	emitted  int64 // end of the last emitted record (the checkpoint)
	pending  []byte
	pendOff  int64 // offset where the pending record starts
	skipping bool  // discarding the rest of an over-long line
	lastData time.Time
	goneAt   time.Time // when no pattern matched the file any more
	headLen  int64
	headCRC  uint32
	// held is the lowest offset a caller still holds (Commit's holds), or
	// -1: the checkpoint stays there, and the file stays open even when it
	// is gone, until the hold is released.
	held int64
}

const maxHead = 1024

// head returns the CRC of the first n bytes of f (cached).
func (tf *file) head(n int64) (int64, uint32) {
	n = min(n, maxHead)
	if n != tf.headLen {
		buf := make([]byte, n)
		got, _ := tf.f.ReadAt(buf, 0)
		tf.headLen, tf.headCRC = int64(got), crc32.ChecksumIEEE(buf[:got])
	}
	return tf.headLen, tf.headCRC
}

// Tailer reads new records from the files matching its patterns. Not safe
// for concurrent use: one goroutine calls Poll, Commit and Close.
type Tailer struct {
	opts       Options
	log        *slog.Logger
	files      map[fileID]*file
	saved      map[fileID]checkpoint // checkpoints from the state file, used once per file
	firstScan  bool
	committed  []checkpoint
	dirtyState bool
	closed     []string // paths of files closed by Poll, for Closed
	perFile    int64    // bytes one file may read in the current Poll
}

// Open loads the checkpoints. Files rotated away while the agent was down
// (the checkpointed inode now lives under another name in the same
// directory) are found and drained first.
func Open(opts Options) (*Tailer, error) {
	if len(opts.Patterns) == 0 || opts.StatePath == "" {
		return nil, errors.New("tail: Patterns and StatePath are required")
	}
	for _, p := range opts.Patterns {
		if _, err := filepath.Match(p, ""); err != nil {
			return nil, fmt.Errorf("tail: bad pattern %q: %w", p, err)
		}
	}
	if opts.MaxRecordBytes <= 0 {
		opts.MaxRecordBytes = DefaultMaxRecordBytes
	}
	if opts.FlushAfter <= 0 {
		opts.FlushAfter = DefaultFlushAfter
	}
	if opts.Grace <= 0 {
		opts.Grace = DefaultGrace
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Tailer{opts: opts, log: log, files: map[fileID]*file{}, saved: map[fileID]checkpoint{}, perFile: maxReadPerPoll}
	b, err := os.ReadFile(opts.StatePath)
	switch {
	case errors.Is(err, os.ErrNotExist):
		t.firstScan = true
	case err != nil:
		return nil, fmt.Errorf("read tail checkpoints: %w", err)
	default:
		var st state
		if err := json.Unmarshal(b, &st); err != nil {
			log.Warn("tail checkpoints unreadable; starting over", slog.String("path", opts.StatePath), slog.Any("error", err))
		}
		for _, c := range st.Files {
			t.saved[fileID{c.Dev, c.Ino}] = c
		}
	}
	now := opts.Now()
	for id, c := range t.saved {
		if cur, err := statID(c.Path); err == nil && cur == id {
			continue // still under its name; the first scan picks it up
		}
		if p := findInode(filepath.Dir(c.Path), id); p != "" {
			if f := t.trackAt(p, id, c, now); f != nil {
				f.goneAt = now
				log.Info("resuming rotated file", slog.String("path", p), slog.String("was", c.Path), slog.Int64("offset", c.Offset))
			}
		}
	}
	return t, nil
}

func statID(path string) (fileID, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileID{}, err
	}
	return idOf(fi), nil
}

func idOf(fi os.FileInfo) fileID {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fileID{uint64(st.Dev), uint64(st.Ino)}
	}
	return fileID{}
}

func findInode(dir string, id fileID) string {
	des, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	for _, de := range des {
		if !de.Type().IsRegular() {
			continue
		}
		fi, err := de.Info()
		if err == nil && idOf(fi) == id {
			return filepath.Join(dir, de.Name())
		}
	}
	return ""
}

// trackAt starts following a file at a checkpoint; a checkpoint whose head
// no longer matches the file starts over at 0.
func (t *Tailer) trackAt(path string, id fileID, c checkpoint, now time.Time) *file {
	off := c.Offset
	if len(t.files) >= maxTrackedFiles {
		t.log.Warn("too many tailed files; ignoring", slog.String("path", path))
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		t.log.Warn("cannot open log file", slog.String("path", path), slog.Any("error", err))
		return nil
	}
	fi, err := f.Stat()
	if err != nil || idOf(fi) != id {
		f.Close()
		return nil // replaced between stat and open; the next poll retries
	}
	if off > fi.Size() {
		off = 0 // truncated while we were away
	}
	tf := &file{path: path, id: id, f: f, lastData: now, held: -1}
	if c.HeadLen > 0 {
		if n, crc := tf.head(c.HeadLen); n != c.HeadLen || crc != c.HeadCRC {
			t.log.Info("log file was rewritten since its checkpoint; reading from the start", slog.String("path", path))
			off = 0
		}
	}
	tf.readPos, tf.emitted = off, off
	t.files[id] = tf
	t.dirtyState = true
	return tf
}

// Poll scans the patterns, reads what was appended, and returns the
// complete records. Their positions become durable only with Commit, which
// the caller calls once the records are stored.
func (t *Tailer) Poll() ([]Record, error) {
	now := t.opts.Now()
	seen := map[fileID]bool{}
	var paths []string
	for _, p := range t.opts.Patterns {
		m, _ := filepath.Glob(p)
		paths = append(paths, m...)
	}
	sort.Strings(paths)
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		id := idOf(fi)
		if seen[id] {
			continue
		}
		seen[id] = true
		tf := t.files[id]
		if tf == nil {
			var c checkpoint
			if sc, ok := t.saved[id]; ok {
				c = sc
				delete(t.saved, id)
			} else if t.firstScan && !t.opts.ReadFromStart {
				c.Offset = fi.Size()
			}
			if tf = t.trackAt(p, id, c, now); tf == nil {
				continue
			}
		}
		tf.path, tf.goneAt = p, time.Time{}
	}
	t.firstScan = false

	var out []Record
	ids := make([]fileID, 0, len(t.files))
	for id := range t.files {
		ids = append(ids, id)
	}
	// Rotated-away files first, so that older lines go out before newer ones.
	sort.Slice(ids, func(i, j int) bool {
		a, b := t.files[ids[i]], t.files[ids[j]]
		if ga, gb := !seen[ids[i]], !seen[ids[j]]; ga != gb {
			return ga
		}
		return a.path < b.path
	})
	t.perFile = maxReadPerPoll
	if t.opts.MaxPollBytes > 0 && len(ids) > 0 {
		t.perFile = min(max(t.opts.MaxPollBytes/int64(len(ids)), int64(t.opts.MaxRecordBytes)+1), maxReadPerPoll)
	}
	var errs []error
	for _, id := range ids {
		tf := t.files[id]
		if !seen[id] && tf.goneAt.IsZero() {
			tf.goneAt = now
		}
		var err error
		out, err = t.read(tf, out, now)
		if err != nil {
			errs = append(errs, err)
		}
		if !tf.goneAt.IsZero() && now.Sub(tf.goneAt) >= t.opts.Grace && tf.readPos >= t.size(tf) && tf.held < 0 {
			out = t.flushPending(tf, out)
			tf.f.Close()
			delete(t.files, id)
			t.dirtyState = true
			if len(t.closed) < maxTrackedFiles { // bounded for callers that never ask
				t.closed = append(t.closed, tf.path)
			}
		}
	}
	return out, errors.Join(errs...)
}

func (t *Tailer) size(tf *file) int64 {
	fi, err := tf.f.Stat()
	if err != nil {
		return 0
	}
	return fi.Size()
}

// read consumes what was appended to tf since the last poll.
func (t *Tailer) read(tf *file, out []Record, now time.Time) ([]Record, error) {
	size := t.size(tf)
	if size < tf.readPos { // copy-truncate: the file starts over
		t.log.Info("log file truncated; reading from the start", slog.String("path", tf.path))
		out = t.recoverCopy(tf, out, now)
		out = t.flushPending(tf, out)
		tf.readPos, tf.emitted, tf.skipping, tf.headLen = 0, 0, false, -1
	}
	if size == tf.readPos {
		if len(tf.pending) > 0 && now.Sub(tf.lastData) >= t.opts.FlushAfter {
			out = t.flushPending(tf, out)
		}
		return out, nil
	}
	n := min(size-tf.readPos, max(t.perFile, int64(t.opts.MaxRecordBytes)+1))
	buf := make([]byte, n)
	got, err := tf.f.ReadAt(buf, tf.readPos)
	if err != nil && !errors.Is(err, io.EOF) {
		return out, fmt.Errorf("read %s: %w", tf.path, err)
	}
	buf = buf[:got]
	tf.lastData = now
	pos := tf.readPos
	for len(buf) > 0 {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			if len(buf) >= t.opts.MaxRecordBytes && !tf.skipping {
				// An over-long line without an end: emit its head, skip the rest.
				out = t.line(tf, out, buf[:t.opts.MaxRecordBytes], pos, pos+int64(len(buf)))
				tf.skipping = true
				pos += int64(len(buf))
			} else if tf.skipping {
				pos += int64(len(buf))
			}
			break // wait for the rest of the line
		}
		line := buf[:i]
		end := pos + int64(i) + 1
		if tf.skipping {
			tf.skipping = false
		} else {
			out = t.line(tf, out, bytes.TrimSuffix(line, []byte("\r")), pos, end)
		}
		buf = buf[i+1:]
		pos = end
	}
	tf.readPos = pos
	if len(tf.pending) == 0 {
		tf.emitted = pos
	}
	return out, nil
}

// recoverCopy reads what was appended to tf after the last poll and before
// it was truncated, from the copy that copytruncate rotation made: a regular
// file in the same directory, not followed, at least as long as what was
// read, whose head matches tf's recorded head. Without such a copy those
// lines are lost, as with any tailer.
func (t *Tailer) recoverCopy(tf *file, out []Record, now time.Time) []Record {
	if tf.headLen <= 0 {
		return out
	}
	des, err := os.ReadDir(filepath.Dir(tf.path))
	if err != nil {
		return out
	}
	var best string
	var bestMod time.Time
	for _, de := range des {
		if !de.Type().IsRegular() {
			continue
		}
		fi, err := de.Info()
		if err != nil || fi.Size() < tf.readPos || t.files[idOf(fi)] != nil || !fi.ModTime().After(bestMod) {
			continue
		}
		p := filepath.Join(filepath.Dir(tf.path), de.Name())
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		buf := make([]byte, tf.headLen)
		n, _ := f.ReadAt(buf, 0)
		f.Close()
		if int64(n) == tf.headLen && crc32.ChecksumIEEE(buf) == tf.headCRC {
			best, bestMod = p, fi.ModTime()
		}
	}
	if best == "" {
		return out
	}
	f, err := os.Open(best)
	if err != nil {
		return out
	}
	defer f.Close()
	saved := tf.f
	tf.f = f
	t.log.Info("reading the tail of a copy-truncated file from its copy", slog.String("path", tf.path), slog.String("copy", best))
	out, err = t.read(tf, out, now)
	tf.f = saved
	if err != nil {
		t.log.Warn("read copy of truncated file", slog.String("copy", best), slog.Any("error", err))
	}
	return out
}

// line handles one complete line that starts at off and ends before next.
func (t *Tailer) line(tf *file, out []Record, line []byte, off, next int64) []Record {
	if len(line) > t.opts.MaxRecordBytes {
		line = line[:t.opts.MaxRecordBytes]
	}
	if t.opts.RecordStart == nil {
		tf.emitted = next
		return append(out, Record{Path: tf.path, Text: string(line), Start: Pos{tf.id, off}})
	}
	if t.opts.RecordStart.Match(line) || len(tf.pending) == 0 {
		out = t.flushPending(tf, out)
		tf.pending = append(tf.pending[:0], line...)
		tf.pendOff = off
		tf.emitted = off
		return out
	}
	if room := t.opts.MaxRecordBytes - len(tf.pending) - 1; room > 0 {
		tf.pending = append(tf.pending, '\n')
		tf.pending = append(tf.pending, line[:min(len(line), room)]...)
	}
	return out
}

func (t *Tailer) flushPending(tf *file, out []Record) []Record {
	if len(tf.pending) == 0 {
		return out
	}
	out = append(out, Record{Path: tf.path, Text: string(tf.pending), Start: Pos{tf.id, tf.pendOff}})
	tf.pending = tf.pending[:0]
	tf.emitted = tf.readPos
	return out
}

// Commit makes the positions of every record returned so far durable,
// except that a file's checkpoint does not move past the earliest of holds
// in it: the records from there on are read again after a restart. A caller
// holds the Start of each record it still keeps in memory; a held file that
// is rotated away or deleted is kept open (and its checkpoint kept) until
// a later Commit no longer holds it. Holds of files no longer followed are
// ignored.
func (t *Tailer) Commit(holds ...Pos) error {
	for _, tf := range t.files {
		tf.held = -1
	}
	for _, h := range holds {
		if tf := t.files[h.id]; tf != nil && h.Offset >= 0 && (tf.held < 0 || h.Offset < tf.held) {
			tf.held = h.Offset
		}
	}
	st := state{Files: make([]checkpoint, 0, len(t.files)+len(t.saved))}
	for _, tf := range t.files {
		off := tf.emitted
		if tf.held >= 0 && tf.held < off {
			off = tf.held
		}
		hl, crc := tf.head(off)
		st.Files = append(st.Files, checkpoint{Path: tf.path, Dev: tf.id.Dev, Ino: tf.id.Ino, Offset: off, HeadLen: hl, HeadCRC: crc})
	}
	// Keep checkpoints of files not seen yet this run (a pattern directory
	// that is temporarily unreadable must not lose its position).
	for _, c := range t.saved {
		st.Files = append(st.Files, c)
	}
	sort.Slice(st.Files, func(i, j int) bool { return st.Files[i].Path < st.Files[j].Path })
	if !t.dirtyState && equalCheckpoints(st.Files, t.committed) {
		return nil
	}
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode tail checkpoints: %w", err)
	}
	if err := writeFileAtomic(t.opts.StatePath, b); err != nil {
		return err
	}
	t.committed, t.dirtyState = st.Files, false
	return nil
}

func equalCheckpoints(a, b []checkpoint) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Rewind makes the next Poll read p's file again from p.Offset, for a
// caller that could not keep the records from there on (a full buffer). A
// pending multiline record is dropped (it is read again). It reports false
// when the file is no longer followed or p is not behind the read position.
func (t *Tailer) Rewind(p Pos) bool {
	tf := t.files[p.id]
	if tf == nil || p.Offset < 0 || p.Offset >= tf.readPos {
		return false
	}
	tf.readPos = p.Offset
	tf.emitted = min(tf.emitted, p.Offset)
	tf.pending, tf.skipping = tf.pending[:0], false
	return true
}

// Closed returns the paths of the files that Poll closed since the last
// call (deleted, or rotated away and drained) and that no file now being
// followed still goes by: a per-path consumer can drop its state for them.
// A rotated file whose successor took its name is therefore not reported.
func (t *Tailer) Closed() []string {
	if len(t.closed) == 0 {
		return nil
	}
	active := make(map[string]bool, len(t.files))
	for _, tf := range t.files {
		active[tf.path] = true
	}
	var out []string
	for _, p := range t.closed {
		if !active[p] {
			out = append(out, p)
		}
	}
	t.closed = t.closed[:0]
	return out
}

// Close closes the files; it does not commit.
func (t *Tailer) Close() error {
	for id, tf := range t.files {
		tf.f.Close()
		delete(t.files, id)
	}
	return nil
}

func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create checkpoint directory: %w", err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("write checkpoints: %w", err)
	}
	_, werr := f.Write(data)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("write checkpoints: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replace checkpoints: %w", err)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("sync checkpoint directory: %w", err)
	}
	defer d.Close()
	return d.Sync()
}
