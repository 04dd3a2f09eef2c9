package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"custos/internal/crypt"
	"custos/internal/offheap"
)

// Bloom sections. The token bloom filters of a part's string-class column
// chunks are not in the footer (part meta version 1 had them there, and the
// store kept every part's blooms in memory: about 7 bytes per stored row,
// unbounded for a long-running server) but in one sealed section per column
// and part, written after the blocks, which a query reads when a term hint
// needs it, through the DB's bounded bloomCache (bloomcache.go).
//
// Section plaintext, all u64 little-endian, so a loaded section is used where
// it lies (8-byte aligned) without decoding:
//
//	n (the part's block count) | n+1 word offsets (ascending; offset[0] = 0,
//	offset[n] = w) | w bloom words: block b's bloom is words[offset[b]:offset[b+1]]
//	(empty for a block whose chunk has no bloom flag)
//
// It is sealed with the part key, AAD "custos/bloom/v1\0<ws>\0<table>\0<part
// id>\0<column>", not compressed (a bloom's bits are about half set). Blooms
// are as sensitive as the data (they tell which tokens exist), so they are
// never on disk in the clear; loaded sections live outside the Go heap
// (offheap), counted in the cache's bytes.

// maxBloomSectionBytes bounds a sealed bloom section (what a footer may claim).
const maxBloomSectionBytes = 1 << 30

func bloomAAD(dst []byte, wsID, table, partID, column string) []byte {
	return append(partAADPrefix(dst, "custos/bloom/v1\x00", wsID, table, partID), column...)
}

// encodeBloomSection returns the plaintext of a bloom section over the
// blooms of n blocks (blooms[b] nil or missing: none).
func encodeBloomSection(blooms []bloom, n int) []byte {
	words := 0
	for _, b := range blooms {
		words += len(b)
	}
	out := make([]byte, 0, 8*(n+2+words))
	out = binary.LittleEndian.AppendUint64(out, uint64(n))
	at := 0
	out = binary.LittleEndian.AppendUint64(out, 0)
	for b := range n {
		if b < len(blooms) {
			at += len(blooms[b])
		}
		out = binary.LittleEndian.AppendUint64(out, uint64(at))
	}
	for _, b := range blooms {
		for _, w := range b {
			out = binary.LittleEndian.AppendUint64(out, w)
		}
	}
	return out
}

// checkBloomSection validates a section plaintext for a part of n blocks.
func checkBloomSection(plain []byte, n int) error {
	if len(plain) < 16 || len(plain)%8 != 0 {
		return fmt.Errorf("bloom section of %d bytes", len(plain))
	}
	if got := binary.LittleEndian.Uint64(plain); got != uint64(n) {
		return fmt.Errorf("bloom section of %d blocks, the part has %d", got, n)
	}
	if len(plain) < 8*(n+2) {
		return fmt.Errorf("bloom section of %d bytes holds no %d offsets", len(plain), n+1)
	}
	words := uint64(len(plain)/8 - (n + 2))
	prev := uint64(0)
	for b := range n + 1 {
		o := binary.LittleEndian.Uint64(plain[8*(b+1):])
		if b == 0 && o != 0 || o < prev || o-prev > maxBloomWords || o > words {
			return fmt.Errorf("bloom section: bad offset %d of block %d", o, b)
		}
		prev = o
	}
	if prev != words {
		return fmt.Errorf("bloom section: %d words, offsets end at %d", words, prev)
	}
	return nil
}

var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// bloomBlock is one loaded bloom section, in memory outside the Go heap.
// Views of it (bloomsOf) are valid while the bloomBlock is reachable; its
// memory is unmapped by a cleanup once it is not (or by free).
type bloomBlock struct {
	mem   []byte   // the region (offheap.Alloc)
	offs  []uint64 // n+1 word offsets (a view of mem)
	words []uint64 // the words (a view of mem)
	clean runtime.Cleanup
}

// newBloomBlock copies a checked section plaintext into a new region.
func newBloomBlock(plain []byte) (*bloomBlock, error) {
	mem, err := offheap.Alloc(len(plain))
	if err != nil {
		return nil, err
	}
	copy(mem, plain)
	return regionBloomBlock(mem, mem[:len(plain)]), nil
}

// regionBloomBlock makes the bloomBlock of a checked section plaintext that
// lies, 8-byte aligned, in region mem, which it then owns.
func regionBloomBlock(mem, plain []byte) *bloomBlock {
	all := unsafe.Slice((*uint64)(unsafe.Pointer(&plain[0])), len(plain)/8)
	if !littleEndian {
		for i := range all {
			all[i] = binary.LittleEndian.Uint64(plain[8*i:])
		}
	}
	n := int(all[0])
	bb := &bloomBlock{mem: mem, offs: all[1 : n+2], words: all[n+2:]}
	bb.clean = runtime.AddCleanup(bb, offheap.Free, mem)
	return bb
}

// bytes is the memory the section takes (pages of the region, and the header).
func (bb *bloomBlock) bytes() int64 { return int64(cap(bb.mem)) + 96 }

// mayHaveAll reports whether block b's bloom may hold every hash (true for a
// block without one).
func (bb *bloomBlock) mayHaveAll(b int, hs []uint64) bool {
	ok := bloomHasAll(bloom(bb.words[bb.offs[b]:bb.offs[b+1]]), hs)
	runtime.KeepAlive(bb)
	return ok
}

// copyOf returns block b's bloom, copied into the Go heap (for a new part).
func (bb *bloomBlock) copyOf(b int) bloom {
	out := make(bloom, bb.offs[b+1]-bb.offs[b])
	copy(out, bb.words[bb.offs[b]:bb.offs[b+1]])
	runtime.KeepAlive(bb)
	return out
}

// free unmaps the region now. Only for a bloomBlock nobody else holds (one
// loaded by loadBlooms for a merge or purge, never one of the cache).
func (bb *bloomBlock) free() {
	if bb == nil || bb.mem == nil {
		return
	}
	bb.clean.Stop()
	offheap.Free(bb.mem)
	bb.mem, bb.offs, bb.words = nil, nil, nil
}

func freeBlooms(bbs []*bloomBlock) {
	for _, bb := range bbs {
		bb.free()
	}
}

// bloomCorrupt is the error for a bloom section that fails its check: the
// part is quarantined like one with a corrupt block (Block -1: the section
// covers every block).
func (p *part) bloomCorrupt(col int, err error) error {
	return &CorruptionError{Path: p.path, Part: p.id, Block: -1, Column: p.meta.cols[col].Name, Err: fmt.Errorf("bloom section: %w", err)}
}

// loadBloom reads, authenticates and checks the bloom section of column col
// into a new bloomBlock; nil (and no error) when the column has no blooms.
func (p *part) loadBloom(col int) (*bloomBlock, error) {
	bbs, err := p.loadBlooms([]int{col})
	if err != nil {
		return nil, err
	}
	return bbs[col], nil
}

// loadBlooms loads the bloom sections of the columns cols, returned by
// column index (nil for a column without blooms). A version-1 part's blooms
// are read from its footer, in one pass for all cols.
func (p *part) loadBlooms(cols []int) ([]*bloomBlock, error) {
	out := make([]*bloomBlock, len(p.meta.cols))
	if p.meta.ver == partMetaVer1 {
		return out, p.loadBloomsV1(cols, out)
	}
	var sealed []byte
	var aad []byte
	for _, j := range cols {
		bs := p.meta.blooms[j]
		if bs.size == 0 {
			continue
		}
		if len(p.key) == 1 {
			bb, err := p.loadBloomInPlace(j, bs)
			if err != nil {
				freeBlooms(out)
				return nil, err
			}
			out[j] = bb
			continue
		}
		if cap(sealed) < bs.size {
			sealed = make([]byte, bs.size)
		}
		sealed = sealed[:bs.size]
		if _, err := p.f.ReadAt(sealed, bs.off); err != nil {
			freeBlooms(out)
			return nil, p.bloomCorrupt(j, fmt.Errorf("read: %w", err))
		}
		aad = bloomAAD(aad[:0], p.wsID, p.table, p.id, p.meta.cols[j].Name)
		plain, err := p.openSealed(sealed, aad)
		if err == nil {
			err = checkBloomSection(plain, len(p.meta.blocks))
		}
		if err != nil {
			freeBlooms(out)
			return nil, p.bloomCorrupt(j, err)
		}
		bb, err := newBloomBlock(plain)
		if err != nil {
			freeBlooms(out)
			return nil, fmt.Errorf("part %s: bloom section of column %s: %w", p.id, p.meta.cols[j].Name, err)
		}
		out[j] = bb
	}
	return out, nil
}

// loadBloomInPlace loads column j's section (one encryption layer) straight
// into a region outside the heap and decrypts it there: the sealed bytes are
// read at an offset that leaves the plaintext 8-byte aligned, so nothing is
// copied and no heap buffer is needed (a 10 M-row part's Message blooms are
// megabytes).
func (p *part) loadBloomInPlace(j int, bs bloomSection) (*bloomBlock, error) {
	var head [2]byte
	if bs.size < len(head) {
		return nil, p.bloomCorrupt(j, fmt.Errorf("%d bytes", bs.size))
	}
	if _, err := p.f.ReadAt(head[:], bs.off); err != nil {
		return nil, p.bloomCorrupt(j, fmt.Errorf("read: %w", err))
	}
	at := 2 + int(head[1]) + crypt.NonceSize // where the plaintext starts in the envelope
	pad := (8 - at%8) % 8
	mem, err := offheap.Alloc(pad + bs.size)
	if err != nil {
		return nil, fmt.Errorf("part %s: bloom section of column %s: %w", p.id, p.meta.cols[j].Name, err)
	}
	ok := false
	defer func() {
		if !ok {
			offheap.Free(mem)
		}
	}()
	sealed := mem[pad : pad+bs.size]
	if _, err := p.f.ReadAt(sealed, bs.off); err != nil {
		return nil, p.bloomCorrupt(j, fmt.Errorf("read: %w", err))
	}
	env, err := crypt.ParseEnvelope(sealed)
	if err != nil {
		return nil, p.bloomCorrupt(j, err)
	}
	if env.HeaderLen+crypt.NonceSize != at {
		return nil, p.bloomCorrupt(j, errors.New("envelope header changed under the read"))
	}
	var aadBuf [256]byte
	aad := bloomAAD(aadBuf[:0], p.wsID, p.table, p.id, p.meta.cols[j].Name)
	plain, err := p.key[0].Open(sealed[at:at], sealed, aad)
	if err == nil {
		err = checkBloomSection(plain, len(p.meta.blocks))
	}
	if err != nil {
		return nil, p.bloomCorrupt(j, err)
	}
	ok = true
	return regionBloomBlock(mem, plain), nil
}

// openSealed decrypts a sealed envelope in place (one layer) or into a new
// buffer (double encryption).
func (p *part) openSealed(sealed, aad []byte) ([]byte, error) {
	if len(p.key) != 1 {
		return p.key.Open(nil, sealed, aad)
	}
	env, err := crypt.ParseEnvelope(sealed)
	if err != nil {
		return nil, err
	}
	at := env.HeaderLen + crypt.NonceSize
	return p.key[0].Open(sealed[at:at], sealed, aad)
}

// loadBloomsV1 reads the blooms of a version-1 part (in its footer) for the
// columns cols into out.
func (p *part) loadBloomsV1(cols []int, out []*bloomBlock) error {
	want := make([][]bloom, len(p.meta.cols))
	for _, j := range cols {
		want[j] = make([]bloom, len(p.meta.blocks))
	}
	_, err := readPartFooter(p.f, p.size, p.key, partMetaAAD(p.wsID, p.table, p.id), func(block, col int, words []byte) {
		if col < len(want) && want[col] != nil && block < len(want[col]) {
			bl := make(bloom, len(words)/8)
			for k := range bl {
				bl[k] = binary.LittleEndian.Uint64(words[8*k:])
			}
			want[col][block] = bl
		}
	})
	if err != nil {
		return &CorruptionError{Path: p.path, Part: p.id, Block: -1, Err: fmt.Errorf("footer (blooms): %w", err)}
	}
	for _, j := range cols {
		has := false
		for b := range p.meta.blocks {
			if p.meta.blocks[b].cols[j].flags&chunkFlagBloom != 0 {
				has = true
				break
			}
		}
		if !has {
			continue
		}
		bb, err := newBloomBlock(encodeBloomSection(want[j], len(p.meta.blocks)))
		if err != nil {
			freeBlooms(out)
			return fmt.Errorf("part %s: blooms of column %s: %w", p.id, p.meta.cols[j].Name, err)
		}
		out[j] = bb
	}
	return nil
}
