package store

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"

	"custos/internal/crypt"
)

// Part file format. A part holds the rows of one table and one UTC day in
// blocks whose rows are sorted by TimeGenerated (a flushed part is sorted as a
// whole; a merged part concatenates the blocks of the parts it replaces); it
// is immutable once renamed into place. All integers are little-endian.
//
//	header:  magic "CSTPART\x01" | uvarint n | n bytes: the part data key wrapped by the
//	         workspace key (AAD "custos/part-key/v1" | workspace | table | part ID) |
//	         CRC-32C (u32) of the preceding header bytes
//	chunks:  one per block and column: crypt envelope (part key) of zstd(column encoding),
//	         AAD "custos/block/v1" | workspace | table | part ID | block index (u32) | column name
//	blooms:  one per string-class column (meta version 2): crypt envelope (part key) of the
//	         column's bloom section (see bloom.go), AAD "custos/bloom/v1" | workspace | table |
//	         part ID | column name
//	footer:  crypt envelope (part key) of zstd(part meta), AAD "custos/part-meta/v1" | workspace | table | part ID
//	trailer: footer offset (u64) | footer length (u32) | CRC-32C (u32) of the footer | magic "CSTPEND\x01"
//
// Part meta: version (uvarint, 2; 1 is still read) | table incarnation (16 bytes) | day (varint, days since
// 1970-01-01) | WAL seq (uvarint: every WAL record of this table and day with a seq at or
// below it is in this part or an older one) | rows (uvarint) | min, max TimeGenerated
// (varints) | uvarint r, r replaced part IDs (strings): parts this part supersedes (a merge) |
// uvarint c, c columns: name (string), type (byte) | uvarint b, b blocks: rows (uvarint), min,
// max TimeGenerated (varints), then per column: offset (uvarint), sealed length (uvarint),
// raw length (uvarint), flags (byte: bit0 int min/max follow as varints, bit1 real min/max
// follow as 2×u64, bit2 the chunk has a token bloom filter: in version 2 in its column's
// bloom section, in version 1 following here as uvarint w and w u64 words, bit3 split) |
// version 2 only: uvarint s, s bloom sections: column index (uvarint), offset (uvarint),
// sealed length (uvarint). Version-1 blooms are not kept in memory: they are read from the
// footer again when a query needs them (see part.loadBlooms).
//
// With double encryption the header is version 2: magic "CSTPART\x02" | layer count
// (byte, 2) | per layer: uvarint n, n bytes wrapped data key (layer 1 by the workspace's
// infrastructure key, AAD + "\x00infrastructure") | CRC-32C; every chunk and the footer
// are then a layer-1 envelope of a layer-0 envelope.
//
// The part ID is the file name without ".part"; it is in every AAD, so a part
// file renamed, or a block copied from another part or position, fails to open.
const (
	partMagic      = "CSTPART\x01"
	partMagicV2    = "CSTPART\x02"
	partEndMagic   = "CSTPEND\x01"
	partTrailerLen = 24
	partMetaVer    = 2
	partMetaVer1   = 1 // blooms in the footer
	maxFooterBytes = 256 << 20
	maxChunkBytes  = 256 << 20
	maxPartColumns = 10000
	maxPartBlocks  = 1 << 20

	chunkFlagIntMinMax  = 1 << 0
	chunkFlagRealMinMax = 1 << 1
	chunkFlagBloom      = 1 << 2
	// chunkFlagSplit: the sealed chunk holds uvarint len(A) | A | B, two zstd
	// frames whose contents concatenate to the column encoding: A up to the
	// end of the token table of a token-encoded string column, B the per-row
	// counts and indexes. A term search decompresses A alone to learn whether
	// the block holds the term at all (see part.matchTerms).
	chunkFlagSplit = 1 << 3
	// chunkFlagRaw: the sealed chunk holds the column encoding itself, not
	// a zstd frame of it, because zstd gained less than a tenth of the
	// bytes (bit-packed TimeGenerated deltas, small dictionaries' codes: see
	// storedChunk). Never with chunkFlagSplit.
	chunkFlagRaw = 1 << 4
)

type chunkMeta struct {
	off        int64
	size       int
	rawSize    int
	flags      byte
	minI, maxI int64
	minF, maxF float64
}

type blockMeta struct {
	rows       int
	minT, maxT int64
	cols       []chunkMeta // aligned with partMeta.cols
}

type partMeta struct {
	incarnation [16]byte
	day         int64
	walSeq      uint64
	rows        int
	minT, maxT  int64
	replaces    []string
	cols        Schema
	blocks      []blockMeta
	// ver is the meta version read (partMetaVer for parts written now).
	ver int
	// blooms locates each column's bloom section (version 2; aligned with
	// cols, size 0 for columns without one; nil for version 1).
	blooms []bloomSection
}

// bloomSection is where a column's sealed bloom section is in the part file.
type bloomSection struct {
	off  int64
	size int
}

func (m *partMeta) appendTo(dst []byte) []byte {
	dst = binary.AppendUvarint(dst, partMetaVer)
	dst = append(dst, m.incarnation[:]...)
	dst = binary.AppendVarint(dst, m.day)
	dst = binary.AppendUvarint(dst, m.walSeq)
	dst = binary.AppendUvarint(dst, uint64(m.rows))
	dst = binary.AppendVarint(dst, m.minT)
	dst = binary.AppendVarint(dst, m.maxT)
	dst = binary.AppendUvarint(dst, uint64(len(m.replaces)))
	for _, r := range m.replaces {
		dst = appendStr(dst, r)
	}
	dst = binary.AppendUvarint(dst, uint64(len(m.cols)))
	for _, c := range m.cols {
		dst = appendStr(dst, c.Name)
		dst = append(dst, byte(c.Type))
	}
	dst = binary.AppendUvarint(dst, uint64(len(m.blocks)))
	for _, b := range m.blocks {
		dst = binary.AppendUvarint(dst, uint64(b.rows))
		dst = binary.AppendVarint(dst, b.minT)
		dst = binary.AppendVarint(dst, b.maxT)
		for _, c := range b.cols {
			dst = binary.AppendUvarint(dst, uint64(c.off))
			dst = binary.AppendUvarint(dst, uint64(c.size))
			dst = binary.AppendUvarint(dst, uint64(c.rawSize))
			dst = append(dst, c.flags)
			if c.flags&chunkFlagIntMinMax != 0 {
				dst = binary.AppendVarint(dst, c.minI)
				dst = binary.AppendVarint(dst, c.maxI)
			}
			if c.flags&chunkFlagRealMinMax != 0 {
				dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(c.minF))
				dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(c.maxF))
			}
		}
	}
	ns := 0
	for _, bs := range m.blooms {
		if bs.size > 0 {
			ns++
		}
	}
	dst = binary.AppendUvarint(dst, uint64(ns))
	for j, bs := range m.blooms {
		if bs.size > 0 {
			dst = binary.AppendUvarint(dst, uint64(j))
			dst = binary.AppendUvarint(dst, uint64(bs.off))
			dst = binary.AppendUvarint(dst, uint64(bs.size))
		}
	}
	return dst
}

// decodePartMeta parses part meta; fileSize bounds chunk offsets. The bloom
// words of a version-1 meta are handed to v1Bloom, when set, and not kept.
func decodePartMeta(b []byte, fileSize int64, v1Bloom func(block, col int, words []byte)) (*partMeta, error) {
	d := decoder{b: b}
	m := &partMeta{}
	switch v := d.uvarint(); {
	case d.err != nil:
	case v == partMetaVer || v == partMetaVer1:
		m.ver = int(v)
	default:
		return nil, fmt.Errorf("part meta version %d", v)
	}
	copy(m.incarnation[:], d.bytes(16))
	m.day = d.varint()
	m.walSeq = d.uvarint()
	m.rows = d.count("part rows", math.MaxInt32)
	m.minT = d.varint()
	m.maxT = d.varint()
	nr := d.count("replaced parts", 1<<16)
	for range nr {
		m.replaces = append(m.replaces, d.str(256))
	}
	nc := d.count("column count", maxPartColumns)
	for range nc {
		name := d.str(1024)
		t := ColumnType(d.byte1())
		if d.err == nil && (t == TypeInvalid || int(t) >= len(typeNames)) {
			return nil, fmt.Errorf("column %q: bad type %d", name, t)
		}
		m.cols = append(m.cols, Column{name, t})
	}
	nb := d.count("block count", maxPartBlocks)
	if d.err != nil {
		return nil, d.err
	}
	if nb*(3+nc*4) > len(d.b) { // each block and chunk takes at least that many bytes
		return nil, fmt.Errorf("block count %d: %w", nb, errShort)
	}
	m.blocks = make([]blockMeta, nb)
	total := 0
	for i := range m.blocks {
		bm := &m.blocks[i]
		bm.rows = d.count("block rows", maxBlockRows)
		bm.minT = d.varint()
		bm.maxT = d.varint()
		total += bm.rows
		bm.cols = make([]chunkMeta, nc)
		for j := range bm.cols {
			c := &bm.cols[j]
			off := d.uvarint()
			c.size = d.count("chunk size", maxChunkBytes)
			c.rawSize = d.count("chunk raw size", maxChunkBytes)
			c.flags = d.byte1()
			if d.err != nil {
				return nil, d.err
			}
			if off > uint64(fileSize) || int64(off)+int64(c.size) > fileSize {
				return nil, fmt.Errorf("block %d column %d: chunk [%d+%d] outside the file", i, j, off, c.size)
			}
			c.off = int64(off)
			if c.flags&^(chunkFlagIntMinMax|chunkFlagRealMinMax|chunkFlagBloom|chunkFlagSplit|chunkFlagRaw) != 0 {
				return nil, fmt.Errorf("block %d column %d: unknown flags %#x", i, j, c.flags)
			}
			if c.flags&chunkFlagRaw != 0 && c.flags&chunkFlagSplit != 0 {
				return nil, fmt.Errorf("block %d column %d: raw and split flags", i, j)
			}
			if c.flags&chunkFlagIntMinMax != 0 {
				c.minI, c.maxI = d.varint(), d.varint()
			}
			if c.flags&chunkFlagRealMinMax != 0 {
				c.minF, c.maxF = math.Float64frombits(d.u64()), math.Float64frombits(d.u64())
			}
			if c.flags&chunkFlagBloom != 0 && m.ver == partMetaVer1 {
				w := d.count("bloom words", maxBloomWords)
				if p := d.bytes(8 * w); p != nil && v1Bloom != nil {
					v1Bloom(i, j, p)
				}
			}
		}
	}
	if m.ver == partMetaVer {
		ns := d.count("bloom sections", nc)
		if d.err == nil {
			m.blooms = make([]bloomSection, nc)
		}
		for range ns {
			j := d.count("bloom section column", nc-1)
			off := d.uvarint()
			size := d.count("bloom section size", maxBloomSectionBytes)
			if d.err != nil {
				return nil, d.err
			}
			if m.blooms[j].size != 0 || size == 0 {
				return nil, fmt.Errorf("column %d: bad or repeated bloom section", j)
			}
			if off > uint64(fileSize) || int64(off)+int64(size) > fileSize {
				return nil, fmt.Errorf("column %d: bloom section [%d+%d] outside the file", j, off, size)
			}
			m.blooms[j] = bloomSection{off: int64(off), size: size}
		}
		if d.err == nil {
			for i := range m.blocks {
				for j := range m.blocks[i].cols {
					if m.blocks[i].cols[j].flags&chunkFlagBloom != 0 && m.blooms[j].size == 0 {
						return nil, fmt.Errorf("block %d column %d: bloom flag without a bloom section", i, j)
					}
				}
			}
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("part meta: %d trailing bytes", len(d.b))
	}
	if total != m.rows {
		return nil, fmt.Errorf("part meta: blocks hold %d rows, header says %d", total, m.rows)
	}
	return m, nil
}

// part is one immutable part file, open for reading. Safe for concurrent use.
// The table holds one reference; each Querier snapshot holds one more. The
// file is closed, and deleted if the part was superseded, when the last
// reference goes.
type part struct {
	id       string
	path     string
	wsID     string
	table    string
	meta     *partMeta
	key      layers
	f        *os.File
	size     int64
	refs     atomic.Int32
	obsolete atomic.Bool
}

func (p *part) acquire() { p.refs.Add(1) }

func (p *part) release() {
	if n := p.refs.Add(-1); n == 0 {
		p.f.Close()
		p.key.Destroy()
		if p.obsolete.Load() {
			os.Remove(p.path)
		}
	} else if n < 0 {
		panic("BUG: part released more often than acquired")
	}
}

func partKeyAAD(wsID, table, partID string) []byte {
	return []byte("custos/part-key/v1\x00" + wsID + "\x00" + table + "\x00" + partID)
}

func partMetaAAD(wsID, table, partID string) []byte {
	return []byte("custos/part-meta/v1\x00" + wsID + "\x00" + table + "\x00" + partID)
}

// partAADPrefix appends kind and the part's identity, NUL-separated and
// NUL-terminated: the start of the associated data of a part's blocks and
// bloom sections.
func partAADPrefix(dst []byte, kind, wsID, table, partID string) []byte {
	dst = append(dst, kind...)
	dst = append(dst, wsID...)
	dst = append(dst, 0)
	dst = append(dst, table...)
	dst = append(dst, 0)
	dst = append(dst, partID...)
	return append(dst, 0)
}

func blockAAD(dst []byte, wsID, table, partID string, block int, column string) []byte {
	dst = partAADPrefix(dst, "custos/block/v1\x00", wsID, table, partID)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(block))
	return append(dst, column...)
}

func newPartID(day int64) (string, error) {
	var r [12]byte
	if _, err := io.ReadFull(rand.Reader, r[:]); err != nil {
		return "", fmt.Errorf("new part ID: %w", err)
	}
	return TimeFromTicks(day*TicksPerDay).Format("20060102") + "-" + hex.EncodeToString(r[:]), nil
}

// partWriteSpec is what writePart needs.
type partWriteSpec struct {
	wsID        string
	keys        *wsKeys
	table       string
	dir         string
	incarnation [16]byte
	day         int64
	walSeq      uint64
	replaces    []string
	schema      Schema    // storage columns; must include TimeGenerated
	vecs        []*Vector // aligned with schema
	n           int
	blockRows   int
	enc         *zstd.Encoder
	encFast     *zstd.Encoder // for the token-index frames of split chunks; nil means enc
	workers     int           // goroutines encoding blocks; 0 means GOMAXPROCS
	// from, when set, makes a merged part of the blocks of these parts,
	// copied in order (see copyBlocks); vecs is then unused and n must be
	// their row count.
	from []*part
	// cacheCols, when set, names the columns (by index) whose blocks are
	// packed for the decoded-chunk cache as they are encoded (not copied);
	// writePart appends them to *fresh (chunkcache.go: admitFresh).
	cacheCols []bool
	cacheMax  int64
	fresh     *[]freshChunk
}

// partHeader is the start of a part file: the magic, the part key wrapped by
// each encryption layer (one layer: the v1 form; more: v2), and a CRC.
func partHeader(wrapped [][]byte) []byte {
	var hdr []byte
	if len(wrapped) == 1 {
		hdr = []byte(partMagic)
		hdr = binary.AppendUvarint(hdr, uint64(len(wrapped[0])))
		hdr = append(hdr, wrapped[0]...)
	} else {
		hdr = appendWrappedKeys([]byte(partMagicV2), wrapped)
	}
	return binary.LittleEndian.AppendUint32(hdr, crc32.Checksum(hdr, castagnoli))
}

// writePart writes the rows as a new part: to a temporary file, fsynced, then
// renamed into place and the directory fsynced. It returns the open part.
func writePart(ctx context.Context, s partWriteSpec) (*part, error) {
	tcol := s.schema.Index(ColTimeGenerated)
	if tcol < 0 {
		panic("BUG: part schema without TimeGenerated")
	}
	id, err := newPartID(s.day)
	if err != nil {
		return nil, err
	}
	key, wrapped, err := newDataKeys(ctx, s.keys, "part-"+id, partKeyAAD(s.wsID, s.table, id))
	if err != nil {
		return nil, fmt.Errorf("write part: %w", err)
	}
	// Sort rows by TimeGenerated (stable, so equal times keep commit order).
	var perm []int32
	if s.from == nil && !slices.IsSorted(s.vecs[tcol].Int[:s.n]) {
		times := s.vecs[tcol].Int
		perm = make([]int32, s.n)
		for i := range perm {
			perm[i] = int32(i)
		}
		slices.SortStableFunc(perm, func(a, b int32) int {
			ta, tb := times[a], times[b]
			switch {
			case ta < tb:
				return -1
			case ta > tb:
				return 1
			}
			return 0
		})
	}

	pf, err := createPartFile("write part", s.dir, id, key, wrapped)
	if err != nil {
		return nil, err
	}
	defer pf.abort() // a no-op once finish has put the part in place

	meta := &partMeta{
		incarnation: s.incarnation, day: s.day, walSeq: s.walSeq, rows: s.n,
		replaces: s.replaces, cols: s.schema, minT: math.MaxInt64, maxT: math.MinInt64,
	}
	// Blocks are encoded, compressed and sealed in parallel and written in
	// order, or copied from the parts a merge combines.
	blocks := encodeBlocks
	if s.from != nil {
		blocks = func(ctx context.Context, s partWriteSpec, _ []int32, id string, key layers, write func(*encodedBlock) error) error {
			return copyBlocks(ctx, s, id, key, write)
		}
	}
	err = blocks(ctx, s, perm, id, key, func(eb *encodedBlock) error {
		for j, pc := range eb.packs {
			if pc != nil && s.fresh != nil {
				*s.fresh = append(*s.fresh, freshChunk{block: len(meta.blocks), col: j, v: pc})
			}
		}
		return pf.addBlock(meta, eb)
	})
	if err != nil {
		return nil, pf.errorf("%w", err)
	}
	if total := rowsOf(meta.blocks); total != s.n {
		return nil, pf.errorf("BUG: blocks hold %d rows, want %d", total, s.n)
	}
	return pf.finish(meta, s.enc, s.wsID, s.table)
}

// encodedBlock is one block of a part being written: its meta (offsets not
// yet set) and its sealed chunks, one per column.
type encodedBlock struct {
	meta   blockMeta
	chunks [][]byte
	blooms []bloom        // per column: the chunk's bloom (chunkFlagBloom), written to the column's bloom section
	packs  []*packedChunk // per column: packed for the chunk cache (partWriteSpec.cacheCols); nil: none
	err    error
}

// setBloom records the bloom of string-class column j (see fillChunkStats).
func (eb *encodedBlock) setBloom(j int, bl bloom) {
	if eb.blooms == nil {
		eb.blooms = make([]bloom, len(eb.chunks))
	}
	eb.blooms[j] = bl
}

// blockEncoder holds one worker's scratch buffers.
type blockEncoder struct {
	raw, comp, aad []byte
	half           []byte
	vecs           []*Vector
	rawLeft        []uint8 // per column: chunks to store raw without a zstd trial (skipZstdTrial)
}

func (e *blockEncoder) encode(s *partWriteSpec, perm []int32, id string, key layers, bi int) *encodedBlock {
	lo := bi * s.blockRows
	hi := min(lo+s.blockRows, s.n)
	if e.vecs == nil {
		e.vecs = make([]*Vector, len(s.vecs))
	}
	for j, v := range s.vecs {
		if perm != nil {
			e.vecs[j] = gatherVec(v, perm[lo:hi])
		} else {
			e.vecs[j] = viewVec(v, lo, hi)
		}
	}
	tcol := s.schema.Index(ColTimeGenerated)
	bt := e.vecs[tcol].Int
	eb := &encodedBlock{
		meta:   blockMeta{rows: hi - lo, minT: bt[0], maxT: bt[len(bt)-1], cols: make([]chunkMeta, len(s.schema))},
		chunks: make([][]byte, len(s.schema)),
	}
	for j, c := range s.schema {
		v := e.vecs[j]
		var bl bloom
		var split int
		var skip bool
		e.raw, bl, split = encodeChunk(e.raw[:0], v, 0, hi-lo, true, true)
		eb.addFresh(s, j, v, e.raw) // chunkcache.go: the encoder's dictionary, not a second one
		if split > 0 {
			e.half = s.enc.EncodeAll(e.raw[:split], e.half[:0])
			e.comp = binary.AppendUvarint(e.comp[:0], uint64(len(e.half)))
			e.comp = append(e.comp, e.half...)
			fast := s.encFast
			if fast == nil {
				fast = s.enc
			}
			e.comp = fast.EncodeAll(e.raw[split:], e.comp)
		} else if skip = e.skipZstdTrial(j, len(s.schema)); !skip {
			e.comp = s.enc.EncodeAll(e.raw, e.comp[:0])
		}
		stored, rawFlag := e.storedChunk(j, split, skip)
		e.aad = blockAAD(e.aad[:0], s.wsID, s.table, id, bi, c.Name)
		sealed, err := sealExact(key, stored, e.aad)
		if err != nil {
			eb.err = err
			return eb
		}
		cm := chunkMeta{size: len(sealed), rawSize: len(e.raw), flags: rawFlag}
		if split > 0 {
			cm.flags |= chunkFlagSplit
		}
		fillChunkStats(&cm, v, c.Type)
		if cm.flags&chunkFlagBloom != 0 {
			eb.setBloom(j, bl)
		}
		eb.meta.cols[j] = cm
		eb.chunks[j] = sealed
	}
	clear(e.vecs)
	return eb
}

// encodeBlocks encodes the blocks of a part on up to GOMAXPROCS goroutines
// and hands them to write in block order. At most two blocks per worker are
// in flight, which bounds the memory of sealed chunks waiting to be written.
func encodeBlocks(ctx context.Context, s partWriteSpec, perm []int32, id string, key layers, write func(*encodedBlock) error) error {
	nb := (s.n + s.blockRows - 1) / s.blockRows
	workers := s.workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, nb)
	if workers <= 1 {
		var e blockEncoder
		for bi := range nb {
			if err := ctx.Err(); err != nil {
				return err
			}
			eb := e.encode(&s, perm, id, key, bi)
			if eb.err != nil {
				return eb.err
			}
			if err := write(eb); err != nil {
				return err
			}
		}
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	results := make([]chan *encodedBlock, nb)
	for i := range results {
		results[i] = make(chan *encodedBlock, 1)
	}
	slots := make(chan struct{}, 2*workers)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var e blockEncoder
			for {
				select {
				case slots <- struct{}{}:
				case <-ctx.Done():
					return
				}
				bi := int(next.Add(1) - 1)
				if bi >= nb || ctx.Err() != nil {
					return
				}
				results[bi] <- e.encode(&s, perm, id, key, bi)
			}
		}()
	}
	defer func() {
		cancel() // frees workers waiting for a slot after an early return
		wg.Wait()
	}()
	for bi := range nb {
		var eb *encodedBlock
		select {
		case eb = <-results[bi]:
		case <-ctx.Done():
			return ctx.Err()
		}
		if eb.err != nil {
			return eb.err
		}
		if err := write(eb); err != nil {
			return err
		}
		<-slots
	}
	return nil
}

func rowsOf(blocks []blockMeta) int {
	n := 0
	for _, b := range blocks {
		n += b.rows
	}
	return n
}

// copyBlocks makes the blocks of a merged part from those of s.from, in
// order, without decoding them: each chunk is opened (authenticated) under
// its part's key and block identity and sealed again under the new part's
// key and the block's new position, and its statistics (min/max, bloom) are
// kept. A column of s.schema that a part lacks, or holds in another storage
// class, becomes a chunk of nulls. Rows stay sorted by TimeGenerated within
// each block, which is what queries rely on (per-block min/max); the part as
// a whole is the concatenation of the merged parts. The blooms of each input
// part are read from its bloom sections (once per part and column, not kept)
// and go to the new part's sections.
//
// A merge so costs an AES-GCM open and seal of the compressed bytes, where
// decoding and re-encoding cost about 50 times more CPU; writePart's
// encoding path stays for merges of small blocks (see mergeDay).
func copyBlocks(ctx context.Context, s partWriteSpec, id string, key layers, write func(*encodedBlock) error) error {
	var sc copyScratch
	bi := 0
	for _, p := range s.from {
		src := make([]int, len(s.schema))
		var bcols []int
		for j, c := range s.schema {
			k := p.meta.cols.Index(c.Name)
			if k >= 0 && classOf(p.meta.cols[k].Type) != classOf(c.Type) {
				k = -1
			}
			src[j] = k
			if k >= 0 && classOf(c.Type) == classStr {
				bcols = append(bcols, k)
			}
		}
		blooms, err := p.loadBlooms(bcols)
		if err != nil {
			return err
		}
		err = copyPartBlocks(ctx, s, p, src, blooms, id, key, &bi, &sc, write)
		freeBlooms(blooms)
		if err != nil {
			return err
		}
	}
	return nil
}

// copyScratch is copyBlocks' reusable buffers.
type copyScratch struct{ aad, buf, raw, comp []byte }

// copyPartBlocks copies the blocks of one input part p for copyBlocks; src
// maps the new schema's columns to p's (-1: none), blooms holds p's bloom
// sections by p's column index.
func copyPartBlocks(ctx context.Context, s partWriteSpec, p *part, src []int, blooms []*bloomBlock, id string, key layers, bi *int, sc *copyScratch, write func(*encodedBlock) error) error {
	aad, buf, raw, comp := sc.aad, sc.buf, sc.raw, sc.comp
	defer func() { sc.aad, sc.buf, sc.raw, sc.comp = aad, buf, raw, comp }()
	for pb := range p.meta.blocks {
		if err := ctx.Err(); err != nil {
			return err
		}
		bm := &p.meta.blocks[pb]
		eb := &encodedBlock{
			meta:   blockMeta{rows: bm.rows, minT: bm.minT, maxT: bm.maxT, cols: make([]chunkMeta, len(s.schema))},
			chunks: make([][]byte, len(s.schema)),
		}
		for j, c := range s.schema {
			aad = blockAAD(aad[:0], s.wsID, s.table, id, *bi, c.Name)
			k := src[j]
			if k < 0 {
				v := nullVec(c.Type, bm.rows)
				var bl bloom
				raw, bl, _ = encodeChunk(raw[:0], v, 0, bm.rows, true, true)
				comp = s.enc.EncodeAll(raw, comp[:0])
				sealed, err := sealExact(key, comp, aad)
				if err != nil {
					return err
				}
				cm := chunkMeta{size: len(sealed), rawSize: len(raw)}
				fillChunkStats(&cm, v, c.Type)
				if cm.flags&chunkFlagBloom != 0 {
					eb.setBloom(j, bl)
				}
				eb.meta.cols[j], eb.chunks[j] = cm, sealed
				continue
			}
			var plain []byte
			var err error
			if plain, buf, err = p.openChunk(pb, k, buf); err != nil {
				return err
			}
			sealed, err := sealExact(key, plain, aad)
			if err != nil {
				return err
			}
			cm := bm.cols[k]
			cm.off, cm.size = 0, len(sealed)
			if cm.flags&chunkFlagBloom != 0 {
				bb := blooms[k]
				if bb == nil {
					return p.corrupt(pb, k, errors.New("bloom flag on a column without blooms"))
				}
				eb.setBloom(j, bb.copyOf(pb))
			}
			eb.meta.cols[j], eb.chunks[j] = cm, sealed
		}
		if err := write(eb); err != nil {
			return err
		}
		*bi++
	}
	return nil
}

// fillChunkStats sets the statistics of a chunk of v: int or real min/max,
// or, for string-class columns, the bloom flag (the caller keeps the bloom
// with the block: encodedBlock.setBloom).
func fillChunkStats(cm *chunkMeta, v *Vector, t ColumnType) {
	switch classOf(t) {
	case classInt:
		first := true
		for i, x := range v.Int {
			if v.IsNull(i) {
				continue
			}
			if first {
				cm.minI, cm.maxI, first = x, x, false
				continue
			}
			cm.minI, cm.maxI = min(cm.minI, x), max(cm.maxI, x)
		}
		if !first {
			cm.flags |= chunkFlagIntMinMax
		}
	case classReal:
		first := true
		for i, x := range v.Real {
			if v.IsNull(i) || math.IsNaN(x) {
				continue
			}
			if first {
				cm.minF, cm.maxF, first = x, x, false
				continue
			}
			cm.minF, cm.maxF = min(cm.minF, x), max(cm.maxF, x)
		}
		if !first {
			cm.flags |= chunkFlagRealMinMax
		}
	case classStr:
		cm.flags |= chunkFlagBloom
	}
}

// openPart opens and verifies a part file's header and footer.
func openPart(ctx context.Context, path, wsID, table string, keys *wsKeys) (*part, error) {
	id := filepath.Base(path)
	id = id[:len(id)-len(".part")]
	corrupt := func(err error) error {
		return &CorruptionError{Path: path, Part: id, Block: -1, Err: err}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open part %s: %w", id, err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("open part %s: %w", id, err)
	}
	size := st.Size()
	if size < int64(len(partMagic))+partTrailerLen {
		return nil, corrupt(fmt.Errorf("file is %d bytes", size))
	}
	hdrBuf := make([]byte, min(size, 32+2*maxWrappedKey))
	if _, err := f.ReadAt(hdrBuf, 0); err != nil {
		return nil, fmt.Errorf("open part %s: %w", id, err)
	}
	wrapped, err := parsePartHeader(hdrBuf)
	if err != nil {
		return nil, corrupt(err)
	}
	key, err := unwrapDataKeys(ctx, keys, "part-"+id, wrapped, partKeyAAD(wsID, table, id))
	if err != nil {
		return nil, corrupt(err)
	}
	meta, err := readPartFooter(f, size, key, partMetaAAD(wsID, table, id), nil)
	if err != nil {
		key.Destroy()
		return nil, corrupt(err)
	}
	ok = true
	p := &part{id: id, path: path, wsID: wsID, table: table, meta: meta, key: key, f: f, size: size}
	p.refs.Store(1)
	return p, nil
}

func parsePartHeader(b []byte) ([][]byte, error) {
	d := decoder{b: b}
	var wrapped [][]byte
	switch string(d.bytes(len(partMagic))) {
	case partMagic:
		if w := d.bytes(d.count("wrapped key length", maxWrappedKey)); d.err == nil {
			wrapped = [][]byte{w}
		}
	case partMagicV2:
		wrapped = decodeWrappedKeys(&d)
	default:
		return nil, errors.New("bad part magic")
	}
	n := len(b) - len(d.b)
	crc := d.bytes(4)
	if d.err != nil {
		return nil, fmt.Errorf("part header: %w", d.err)
	}
	if binary.LittleEndian.Uint32(crc) != crc32.Checksum(b[:n], castagnoli) {
		return nil, errors.New("part header checksum mismatch")
	}
	return wrapped, nil
}

// readPartFooter reads, authenticates and decodes a part's meta; v1Bloom
// receives the bloom words of a version-1 meta (see decodePartMeta).
func readPartFooter(f io.ReaderAt, size int64, key layers, aad []byte, v1Bloom func(block, col int, words []byte)) (*partMeta, error) {
	var tr [partTrailerLen]byte
	if _, err := f.ReadAt(tr[:], size-partTrailerLen); err != nil {
		return nil, fmt.Errorf("read trailer: %w", err)
	}
	if string(tr[16:]) != partEndMagic {
		return nil, errors.New("bad part trailer magic")
	}
	off := binary.LittleEndian.Uint64(tr[0:])
	n := int64(binary.LittleEndian.Uint32(tr[8:]))
	if n > maxFooterBytes || off > uint64(size) || int64(off)+n > size-partTrailerLen {
		return nil, fmt.Errorf("footer [%d+%d] outside the file", off, n)
	}
	sealed := make([]byte, n)
	if _, err := f.ReadAt(sealed, int64(off)); err != nil {
		return nil, fmt.Errorf("read footer: %w", err)
	}
	if crc32.Checksum(sealed, castagnoli) != binary.LittleEndian.Uint32(tr[12:]) {
		return nil, errors.New("footer checksum mismatch")
	}
	comp, err := key.Open(nil, sealed, aad)
	if err != nil {
		return nil, fmt.Errorf("footer: %w", err)
	}
	raw, err := zstdDecodeBounded(comp, maxFooterBytes)
	if err != nil {
		return nil, fmt.Errorf("footer: %w", err)
	}
	return decodePartMeta(raw, int64(off), v1Bloom)
}

// zstdDecodeBounded decodes a zstd frame whose content may not exceed limit.
// A fresh single-use decoder would be slow on hot paths; those use readChunk.
func zstdDecodeBounded(src []byte, limit int) ([]byte, error) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(limit)), zstd.WithDecoderMaxWindow(uint64(max(limit, zstd.MinWindowSize))))
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	return dec.DecodeAll(src, nil)
}

// readChunk reads, authenticates, decompresses and decodes one column block.
// buf is scratch space; it returns the grown scratch.
func (p *part) readChunk(block, col int, dec *zstd.Decoder, buf []byte) (*Vector, []byte, error) {
	return p.readChunkCodes(block, col, dec, buf, false)
}

// readChunkCodes is readChunk; with codesOnly a dictionary-encoded string
// block comes back codes-only (decodeColumnCodes).
func (p *part) readChunkCodes(block, col int, dec *zstd.Decoder, buf []byte, codesOnly bool) (*Vector, []byte, error) {
	bm := &p.meta.blocks[block]
	c := p.meta.cols[col]
	comp, buf, err := p.openChunk(block, col, buf)
	if err != nil {
		return nil, buf, err
	}
	raw, err := p.decompressChunk(block, col, dec, comp, false)
	if err != nil {
		return nil, buf, err
	}
	d := decoder{b: raw}
	v, err := decodeColumnCodes(&d, c.Type, bm.rows, codesOnly)
	if err == nil && len(d.b) != 0 {
		err = fmt.Errorf("%d trailing bytes", len(d.b))
	}
	if err != nil {
		return nil, buf, p.corrupt(block, col, err)
	}
	return v, buf, nil
}

func (p *part) corrupt(block, col int, err error) error {
	return &CorruptionError{Path: p.path, Part: p.id, Block: block, Column: p.meta.cols[col].Name, Err: err}
}

// openChunk reads and authenticates one chunk and returns its compressed
// bytes (in buf, which it may grow and returns).
func (p *part) openChunk(block, col int, buf []byte) (comp, grown []byte, err error) {
	cm := &p.meta.blocks[block].cols[col]
	if cap(buf) < cm.size {
		buf = make([]byte, cm.size)
	}
	sealed := buf[:cm.size]
	if _, err := p.f.ReadAt(sealed, cm.off); err != nil {
		return nil, buf, p.corrupt(block, col, fmt.Errorf("read: %w", err))
	}
	var aadBuf [256]byte
	aad := blockAAD(aadBuf[:0], p.wsID, p.table, p.id, block, p.meta.cols[col].Name)
	// Decrypt in place: the plaintext is shorter than the ciphertext.
	env, err := crypt.ParseEnvelope(sealed)
	if err != nil {
		return nil, buf, p.corrupt(block, col, err)
	}
	if len(p.key) == 1 {
		comp, err = p.key[0].Open(sealed[env.HeaderLen+crypt.NonceSize:env.HeaderLen+crypt.NonceSize], sealed, aad)
	} else {
		comp, err = p.key.Open(nil, sealed, aad)
	}
	if err != nil {
		return nil, buf, p.corrupt(block, col, err)
	}
	return comp, buf, nil
}

// decompressChunk returns the column encoding of an opened chunk. With
// tableOnly, a split chunk (chunkFlagSplit) yields only its first half: the
// encoding up to the end of the token table.
func (p *part) decompressChunk(block, col int, dec *zstd.Decoder, comp []byte, tableOnly bool) ([]byte, error) {
	cm := &p.meta.blocks[block].cols[col]
	var raw []byte
	var err error
	if cm.flags&chunkFlagRaw != 0 {
		// Stored without zstd: the opened bytes are the encoding (they
		// alias the caller's buffer; decoders copy what they keep).
		if len(comp) != cm.rawSize {
			return nil, p.corrupt(block, col, fmt.Errorf("raw chunk of %d bytes, want %d", len(comp), cm.rawSize))
		}
		return comp, nil
	}
	if cm.flags&chunkFlagSplit != 0 {
		n, w := binary.Uvarint(comp)
		if w <= 0 || n > uint64(len(comp)-w) {
			return nil, p.corrupt(block, col, errors.New("bad split chunk frame length"))
		}
		a, b := comp[w:w+int(n)], comp[w+int(n):]
		if raw, err = dec.DecodeAll(a, make([]byte, 0, cm.rawSize)); err != nil {
			return nil, p.corrupt(block, col, fmt.Errorf("decompress: %w", err))
		}
		if len(raw) > cm.rawSize {
			return nil, p.corrupt(block, col, fmt.Errorf("decompressed more than %d bytes", cm.rawSize))
		}
		if tableOnly {
			return raw, nil
		}
		if raw, err = dec.DecodeAll(b, raw); err != nil {
			return nil, p.corrupt(block, col, fmt.Errorf("decompress: %w", err))
		}
	} else if raw, err = dec.DecodeAll(comp, make([]byte, 0, cm.rawSize)); err != nil {
		return nil, p.corrupt(block, col, fmt.Errorf("decompress: %w", err))
	}
	if len(raw) != cm.rawSize {
		return nil, p.corrupt(block, col, fmt.Errorf("decompressed %d bytes, want %d", len(raw), cm.rawSize))
	}
	return raw, nil
}
