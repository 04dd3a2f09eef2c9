package store

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/zstd"
)

// partFile is a part file being written (by a flush, a merge or a purge's
// rewrite): a temporary file in the table directory holding the header with
// the wrapped data keys, then each block's chunks in order; finish seals the
// footer, fsyncs the file, renames it into place and reopens it, so a crash
// leaves either no part or a whole one. Until finish succeeds, abort removes
// the temporary file and destroys the data key.
type partFile struct {
	id, dir, tmp, final string
	what                string // "write part" or "rewrite part", for errors
	key                 layers
	f                   *os.File
	w                   *bufio.Writer
	off                 int64
	done                bool
	// blooms holds, per column, the blooms of the blocks written so far
	// (indexed by block), for the column's bloom section (see finish).
	blooms [][]bloom
	// openRead opens the finished file for reading; nil means os.Open.
	// Tests inject failures.
	openRead func(name string) (*os.File, error)
}

// createPartFile creates the temporary file of part id and writes its
// header. On error the key is destroyed.
func createPartFile(what, dir, id string, key layers, wrapped [][]byte) (*partFile, error) {
	pf := &partFile{id: id, dir: dir, what: what, key: key,
		final: filepath.Join(dir, id+".part"), tmp: filepath.Join(dir, ".tmp-"+id+".part")}
	f, err := os.OpenFile(pf.tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		key.Destroy()
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	pf.f, pf.w = f, bufio.NewWriterSize(f, 1<<20)
	if err := pf.write(partHeader(wrapped)); err != nil {
		pf.abort()
		return nil, pf.errorf("%w", err)
	}
	return pf, nil
}

func (pf *partFile) errorf(format string, args ...any) error {
	return fmt.Errorf("%s %s: "+format, append([]any{pf.what, pf.id}, args...)...)
}

func (pf *partFile) write(b []byte) error {
	n, err := pf.w.Write(b)
	pf.off += int64(n)
	return err
}

// addBlock writes a block's chunks at the current offset, records their
// offsets in its metadata and appends it to meta (time range included; the
// row count is the caller's).
func (pf *partFile) addBlock(meta *partMeta, eb *encodedBlock) error {
	bm := eb.meta
	bi := len(meta.blocks)
	for j := range bm.cols {
		if bm.cols[j].flags&chunkFlagBloom == 0 {
			continue
		}
		if pf.blooms == nil {
			pf.blooms = make([][]bloom, len(bm.cols))
		}
		for len(pf.blooms[j]) < bi {
			pf.blooms[j] = append(pf.blooms[j], nil)
		}
		var bl bloom
		if j < len(eb.blooms) {
			bl = eb.blooms[j]
		}
		if bl == nil {
			bl = bloom{} // an empty bloom matches every term
		}
		pf.blooms[j] = append(pf.blooms[j], bl)
	}
	for j := range bm.cols {
		bm.cols[j].off = pf.off
		if err := pf.write(eb.chunks[j]); err != nil {
			return err
		}
	}
	meta.minT, meta.maxT = min(meta.minT, bm.minT), max(meta.maxT, bm.maxT)
	meta.blocks = append(meta.blocks, bm)
	return nil
}

// finish writes the bloom section of each column with blooms, the sealed,
// compressed footer (meta) and the trailer, fsyncs, renames the file into
// place, fsyncs the directory and returns the part, open, holding the key.
func (pf *partFile) finish(meta *partMeta, enc *zstd.Encoder, wsID, table string) (*part, error) {
	meta.ver = partMetaVer
	meta.blooms = make([]bloomSection, len(meta.cols))
	var aad []byte
	for j, bls := range pf.blooms {
		if bls == nil {
			continue
		}
		aad = bloomAAD(aad[:0], wsID, table, pf.id, meta.cols[j].Name)
		sealed, err := pf.key.Seal(nil, encodeBloomSection(bls, len(meta.blocks)), aad)
		if err != nil {
			pf.abort()
			return nil, pf.errorf("%w", err)
		}
		meta.blooms[j] = bloomSection{off: pf.off, size: len(sealed)}
		if err := pf.write(sealed); err != nil {
			pf.abort()
			return nil, pf.errorf("%w", err)
		}
		pf.blooms[j] = nil
	}
	pf.blooms = nil
	sealed, err := pf.key.Seal(nil, enc.EncodeAll(meta.appendTo(nil), nil), partMetaAAD(wsID, table, pf.id))
	if err != nil {
		pf.abort()
		return nil, pf.errorf("%w", err)
	}
	footerOff := pf.off
	tr := binary.LittleEndian.AppendUint64(nil, uint64(footerOff))
	tr = binary.LittleEndian.AppendUint32(tr, uint32(len(sealed)))
	tr = binary.LittleEndian.AppendUint32(tr, crc32.Checksum(sealed, castagnoli))
	tr = append(tr, partEndMagic...)
	for _, b := range [][]byte{sealed, tr} {
		if err := pf.write(b); err != nil {
			pf.abort()
			return nil, pf.errorf("%w", err)
		}
	}
	if err := pf.w.Flush(); err != nil {
		pf.abort()
		return nil, pf.errorf("%w", err)
	}
	if err := pf.f.Sync(); err != nil {
		pf.abort()
		return nil, pf.errorf("fsync: %w", err)
	}
	if err := pf.f.Close(); err != nil {
		pf.abort()
		return nil, pf.errorf("%w", err)
	}
	// The read handle is opened before the rename (it follows the file):
	// once the part is in place nothing may fail but the directory's fsync.
	// A part renamed into place and then given up (a failed reopen, EMFILE)
	// would stay on disk unknown to the table: the flush or merge would be
	// retried and write a second part of the same rows, which the next
	// start would load beside the first (a merged part replaces its
	// sources, so both replacements would be kept).
	open := pf.openRead
	if open == nil {
		open = os.Open
	}
	rf, err := open(pf.tmp)
	if err != nil {
		pf.abort()
		return nil, pf.errorf("reopen: %w", err)
	}
	if err := os.Rename(pf.tmp, pf.final); err != nil {
		rf.Close()
		pf.abort()
		return nil, pf.errorf("%w", err)
	}
	pf.done = true
	if err := syncDir(pf.dir); err != nil {
		rf.Close()
		os.Remove(pf.final)
		pf.key.Destroy()
		return nil, pf.errorf("fsync dir: %w", err)
	}
	p := &part{id: pf.id, path: pf.final, wsID: wsID, table: table, meta: meta, key: pf.key, f: rf, size: pf.off}
	p.refs.Store(1)
	return p, nil
}

// abort gives up an unfinished file: closes and removes it and destroys the
// key. It does nothing once finish has renamed the file.
func (pf *partFile) abort() {
	if pf.done {
		return
	}
	pf.done = true
	pf.f.Close() // may already be closed
	os.Remove(pf.tmp)
	pf.key.Destroy()
}
