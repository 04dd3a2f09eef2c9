package queue

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// entryBytes encodes one well-formed segment entry.
func entryBytes(payload []byte) []byte {
	b := make([]byte, headerBytes, headerBytes+len(payload))
	binary.LittleEndian.PutUint32(b[:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(payload, castagnoli))
	return append(b, payload...)
}

// validPrefix is the model of what a segment yields: its entries up to the
// first one whose header overruns the file, exceeds MaxEntryBytes or whose
// checksum does not match. Everything from there on is unreadable.
func validPrefix(seg []byte) [][]byte {
	var out [][]byte
	for off := 0; off+headerBytes <= len(seg); {
		ln := int(binary.LittleEndian.Uint32(seg[off : off+4]))
		if ln > MaxEntryBytes || off+headerBytes+ln > len(seg) {
			break
		}
		p := seg[off+headerBytes : off+headerBytes+ln]
		if crc32.Checksum(p, castagnoli) != binary.LittleEndian.Uint32(seg[off+4:off+8]) {
			break
		}
		out = append(out, p)
		off += headerBytes + ln
	}
	return out
}

// drain reads and acknowledges every entry the queue yields (head, not
// Next, so that an empty queue returns instead of waiting), at most limit.
func drain(t *testing.T, q *Queue, limit int) [][]byte {
	t.Helper()
	var got [][]byte
	for range limit {
		e, ok, err := q.head()
		if err != nil {
			t.Fatalf("reading the queue after Open: %v (a damaged entry must be skipped, not stop delivery)", err)
		}
		if !ok {
			return got
		}
		if len(e.Payload) > MaxEntryBytes {
			t.Fatalf("entry of %d bytes > MaxEntryBytes", len(e.Payload))
		}
		got = append(got, e.Payload)
		if err := q.Ack(e); err != nil {
			t.Fatalf("Ack: %v", err)
		}
	}
	t.Fatalf("the queue yielded more than %d entries", limit)
	return nil
}

// FuzzSegments opens a queue directory holding two segment files (the older
// one only header-checked at Open, the newer one verified and cut at its
// first bad entry) and, unless it is empty, a cursor file, all three from
// the fuzzer. Open either fails with an error or succeeds; then the queue
// must yield entries without an error (damage is skipped, never a reason to
// stop delivery), never more than the files could hold, and each a
// well-formed entry of one of the segments. Without a cursor it must yield
// exactly the model's entries: the valid prefix of each segment, in order.
// Finally an append after the damage is delivered, also after a reopen.
func FuzzSegments(f *testing.F) {
	e := func(s string) []byte { return entryBytes([]byte(s)) }
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	flip := func(b []byte, i int) []byte { c := bytes.Clone(b); c[i] ^= 0x40; return c }
	two := cat(e("alpha"), e("beta"))
	f.Add(two, cat(e("gamma"), e("delta")), []byte(nil))
	f.Add(two, e("gamma"), []byte(`{"segment":1,"offset":13}`))
	f.Add(flip(two, 10), e("gamma"), []byte(nil))                               // older segment: bad checksum in its first entry
	f.Add(cat(e("alpha"), flip(e("beta"), 9), e("c")), e("gamma"), []byte(nil)) // older: bad second entry, a good one behind it
	f.Add(two, cat(e("gamma"), []byte{100, 0, 0, 0, 1, 2}), []byte(nil))        // newer: torn tail
	f.Add(cat([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, e("x")), e("y"), []byte(nil))
	f.Add([]byte(nil), []byte(nil), []byte(`{"segment":18446744073709551615,"offset":-5}`))
	f.Add(two, []byte(nil), []byte(`{"segment":1,"offset":9999999}`))
	f.Add(two, e("g"), []byte(`not json`))
	f.Fuzz(func(t *testing.T, older, newer, cur []byte) {
		if len(older)+len(newer) > 1<<20 {
			return
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segName(1)), older, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, segName(2)), newer, 0o600); err != nil {
			t.Fatal(err)
		}
		if len(cur) > 0 {
			if err := os.WriteFile(filepath.Join(dir, cursorFile), cur, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		q, err := Open(Options{Dir: dir})
		if err != nil {
			if err.Error() == "" {
				t.Fatal("Open failed with an empty error")
			}
			return
		}
		defer q.Close()
		limit := (len(older)+len(newer))/headerBytes + 1
		got := drain(t, q, limit)
		want := append(validPrefix(older), validPrefix(newer)...)
		if len(cur) == 0 {
			if len(got) != len(want) {
				t.Fatalf("yielded %d entries; want %d (the valid prefix of each segment)", len(got), len(want))
			}
			for i := range got {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("entry %d = %q; want %q", i, got[i], want[i])
				}
			}
		} else {
			// With a cursor the queue may start anywhere, but only at whole
			// entries of the model, in order.
			j := 0
			for i, g := range got {
				for j < len(want) && !bytes.Equal(want[j], g) {
					j++
				}
				if j == len(want) {
					t.Fatalf("entry %d (%q) is not a valid entry of the segments in order", i, g)
				}
				j++
			}
		}
		if st := q.Stats(); st.Entries != 0 {
			t.Fatalf("drained queue reports %d entries", st.Entries)
		}
		// The queue still works after the damage, across a reopen.
		if err := q.Append([]byte("after")); err != nil {
			t.Fatalf("Append after opening a damaged queue: %v", err)
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		q2, err := Open(Options{Dir: dir})
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer q2.Close()
		if got := drain(t, q2, 2); len(got) != 1 || string(got[0]) != "after" {
			t.Fatalf("after reopen: %q; want [after]", got)
		}
	})
}

// TestCorruptEntryInOlderSegmentIsSkipped: a checksum mismatch in a segment
// other than the last (Open checks only their headers) used to make every
// read fail, so the agent stopped delivering for good — also after a
// restart. The rest of that segment is now skipped and counted as dropped.
func TestCorruptEntryInOlderSegmentIsSkipped(t *testing.T) {
	dir := t.TempDir()
	older := bytes.Join([][]byte{entryBytes([]byte("a")), entryBytes([]byte("bad")), entryBytes([]byte("c"))}, nil)
	older[9+8+1] ^= 0xff // a byte of "bad"'s payload
	if err := os.WriteFile(filepath.Join(dir, segName(1)), older, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, segName(2)), entryBytes([]byte("d")), 0o600); err != nil {
		t.Fatal(err)
	}
	q := openT(t, dir, 0, 0)
	var got []string
	for {
		e, ok, err := q.head()
		if err != nil {
			t.Fatalf("head: %v", err)
		}
		if !ok {
			break
		}
		got = append(got, string(e.Payload))
		if err := q.Ack(e); err != nil {
			t.Fatal(err)
		}
	}
	if want := "a,d"; strings.Join(got, ",") != want {
		t.Fatalf("got %q; want %s", got, want)
	}
	if st := q.Stats(); st.Dropped != 2 {
		t.Fatalf("dropped = %d; want 2 (the corrupt entry and the one behind it)", st.Dropped)
	}
	if _, err := os.Stat(filepath.Join(dir, segName(1))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the damaged segment is still there: %v", err)
	}
	// The same damage in the last segment, appearing after Open (Open
	// would have cut it): skipped as well, and appends go on.
	if err := q.Append([]byte("e")); err != nil {
		t.Fatal(err)
	}
	if err := q.Append([]byte("f")); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, segName(2))
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1-9] ^= 0xff // the payload of "e"
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, ok, err := q.head(); err != nil || ok {
		t.Fatalf("head on a damaged last segment: ok=%v err=%v; want nothing (skipped)", ok, err)
	}
	if err := q.Append([]byte("g")); err != nil {
		t.Fatal(err)
	}
	e, err := q.Next(ctx)
	if err != nil || string(e.Payload) != "g" {
		t.Fatalf("after the damage: %q %v; want g", e.Payload, err)
	}
}
