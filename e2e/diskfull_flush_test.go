package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDiskFullPartWriteAfterRotation: the binary's background flush rotates
// its WAL to a new segment (a few bytes: that fits) and then cannot write
// the part file (hundreds of KB: that does not). The store has a 32 MB tmpfs
// of its own (MountStoreVolume; and a 32 MB ext4 image on a loop device,
// MountStoreVolumeExt4); rows wait at most 5 s in memory
// (--store-memtable-max-age 5s); four batches of incompressible rows are
// acknowledged and the volume is at once filled to 32 KiB short of full, so
// the flush that comes due fails at its part write, deterministically
// (TestDiskFullBackgroundFlush, on a volume filled to the last byte, fails
// at the rotation instead).
//
// It checks that the failed flush is logged with the part write's ENOSPC
// and retried (a second failure), that no part or temporary file is left,
// that queries return every acknowledged row exactly once meanwhile (from
// the frozen memtable), after a SIGKILL during the fault and a restart on
// the still-full volume (the WAL replays: the rotation kept the old segment
// until a part holds its rows), and, once the space returns, that the
// retried flush writes the part without a restart and nothing is lost or
// doubled — also after SIGKILL and a graceful restart.
func TestDiskFullPartWriteAfterRotation(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: starts the custos binary")
	}
	for _, v := range storeVolumes {
		t.Run(v.Name, func(t *testing.T) { testDiskFullPartWriteAfterRotation(t, v.Mount) })
	}
}

func testDiskFullPartWriteAfterRotation(t *testing.T, mount func(t testing.TB, dataDir string, sizeMB int) (store, pool string)) {
	dataDir := filepath.Join(t.TempDir(), "data")
	vol, pool := mount(t, dataDir, 32)
	r := newDiskFullRig(t, dataDir, 170*time.Second, "--store-memtable-max-age", "5s")
	s := r.s
	ballast := filepath.Join(pool, "ballast")
	from := LogLen(t, s)
	start := time.Now()
	for range 4 {
		if st, code := r.sendRandom("before"); st/100 != 2 {
			t.Fatalf("before filling the volume: HTTP %d %s", st, code)
		}
	}
	free := LeaveFree(t, ballast, 32<<10)
	filledAfter := time.Since(start)
	if parts, _ := StoreFiles(t, dataDir, "Crash_CL"); len(parts) > 0 || filledAfter > 4*time.Second {
		t.Fatalf("the volume was filled %v after the first upload, parts %v: the flush (due 5 s after it) may have run before; the test needs a faster machine", filledAfter, parts)
	}
	t.Logf("4 batches acknowledged; the volume filled %v after the first, %d KB left free", filledAfter.Round(time.Millisecond), free>>10)

	line := WaitLog(t, s, from, 30*time.Second, "store flush failed", "no space left on device")
	t.Logf("flush on the full volume: %.400s", line)
	if !strings.Contains(line, "write part") {
		t.Fatalf("the flush failed elsewhere than at its part write (the WAL rotation, say): %s", line)
	}
	segs := walSegments(t, vol)
	t.Logf("WAL segments while the flush fails: %v", segs)
	if len(segs) < 2 {
		t.Fatalf("WAL segments %v: want the rotated-out segment holding the rows and the new one", segs)
	}
	off := LogLen(t, s)
	line = WaitLog(t, s, off, 15*time.Second, "store flush failed", "write part", "no space left on device")
	t.Logf("the flush is retried and fails again: %.200s", line)
	r.expectNoPart("while the volume is full")
	r.verify("while the volume is full (rows in the frozen memtable)")
	refused := 0
	for range 3 {
		if st, _ := r.sendRandom("full"); st/100 != 2 {
			refused++
		}
	}
	t.Logf("3 uploads while the volume is full: %d refused", refused)
	r.verify("after uploads on the full volume")

	// SIGKILL in the middle of the fault; a start on the still-full volume
	// replays the WAL, and the flush of the replayed rows fails the same way.
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	off = LogLen(t, s)
	if err := s.Start(r.ctx); err != nil {
		t.Fatalf("restart after SIGKILL with the store's volume full: %v", err)
	}
	r.verify("after SIGKILL and a restart with the volume full (WAL replayed)")
	line = WaitLog(t, s, off, 30*time.Second, "store flush failed", "write part", "no space left on device")
	t.Logf("after the restart the flush fails again: %.200s", line)
	r.expectNoPart("after the restart with the volume full")

	// Space returns: the failed flush is retried and writes its part.
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	returned := time.Now()
	var parts, tmp []string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		parts, tmp = StoreFiles(t, dataDir, "Crash_CL")
		if len(parts) > 0 && len(tmp) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s after the space returned no part was written (parts %v, temporary files %v): the failed flush was not retried", parts, tmp)
		}
	}
	t.Logf("the retried flush wrote %v %v after the space returned", parts, time.Since(returned).Round(100*time.Millisecond))
	r.verify("after the retried flush")
	for deadline := time.Now().Add(10 * time.Second); len(walSegments(t, vol)) > 1 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	if segs := walSegments(t, vol); len(segs) > 1 {
		t.Errorf("WAL segments %v after the retried flush; want the old ones deleted", segs)
	}
	r.recover()
	r.restarts(nil)
	log, _ := s.Log()
	t.Logf("server log: %d failed flushes in all", len(linesWith(string(log), "store flush failed")))
}

// expectNoPart checks that the failed flushes left neither a part nor a
// temporary file (a flush attempt in progress may hold one for a moment:
// it samples for up to 5 s for a moment without one).
func (r *diskFullRig) expectNoPart(when string) {
	t := r.t
	t.Helper()
	var parts, tmp []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		parts, tmp = StoreFiles(t, r.s.DataDir(), "Crash_CL")
		if len(parts)+len(tmp) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(parts)+len(tmp) != 0 {
		t.Fatalf("%s: parts %v and temporary files %v; want none while every flush fails", when, parts, tmp)
	}
}

// walSegments lists the WAL segment files of every workspace on the store's
// volume.
func walSegments(t *testing.T, vol string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(vol, "workspaces", "*", "wal", "*.wal"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	return m
}

// sendRandom is diskFullRig.send with 500 rows whose payloads are 256 random
// hex digits (about 150 KB of JSON that compresses only to half), so that a
// few batches make parts of a predictable, non-trivial size. A refusal must
// be a retryable 503 or 507 in the Azure envelope.
func (r *diskFullRig) sendRandom(phase string) (status int, code string) {
	r.t.Helper()
	raw := make([]byte, 128)
	return r.sendRows(phase, func(string, int) string {
		_, _ = rand.Read(raw)
		return hex.EncodeToString(raw)
	})
}
