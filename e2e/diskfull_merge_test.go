package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestDiskFullDuringMerge: the store's volume (32 MB of its own: a tmpfs,
// MountStoreVolume, and an ext4 image on a loop device,
// MountStoreVolumeExt4) fills while the binary's background merge writes its
// output part. Five graceful stops leave five parts of one day, one more
// than the store keeps, so the next start merges them (at its first
// maintenance tick); before that start the volume is filled to 64 KiB short
// of full, enough for the WAL and far less than the merged part (~1.3 MB).
// So the merge — and only the merge — meets ENOSPC, deterministically.
//
// It checks that the merge fails cleanly (logged with "no space left on
// device", the five source parts still there, no temporary file kept), that
// queries return every acknowledged row exactly once during the fault, after
// a SIGKILL in the middle of the merge's write (the test sees its temporary
// file and kills at once; the restart on the still-full volume reclaims the
// file, and the merge fails again, then pauses 5 s rather than retrying at
// every tick) and after the space returns, when the retried merge completes
// (one part replaces the five, no temporary file). Uploads during the fault
// are acknowledged or refused with 503/507 in the Azure envelope.
func TestDiskFullDuringMerge(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: starts the custos binary")
	}
	for _, v := range storeVolumes {
		t.Run(v.Name, func(t *testing.T) { testDiskFullDuringMerge(t, v.Mount) })
	}
}

func testDiskFullDuringMerge(t *testing.T, mount func(t testing.TB, dataDir string, sizeMB int) (store, pool string)) {
	dataDir := filepath.Join(t.TempDir(), "data")
	vol, pool := mount(t, dataDir, 32)
	r := newDiskFullRig(t, dataDir, 170*time.Second)
	s := r.s
	const flushes, batchesPerPart = 5, 4
	for p := range flushes {
		for range batchesPerPart {
			if st, code := r.sendRandom(fmt.Sprintf("p%d", p)); st/100 != 2 {
				t.Fatalf("part %d: HTTP %d %s with space", p, st, code)
			}
		}
		if err := s.Stop(60 * time.Second); err != nil {
			t.Fatal(err)
		}
		if p < flushes-1 {
			if err := s.Start(r.ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	before, tmp := StoreFiles(t, dataDir, "Crash_CL")
	if len(before) != flushes || len(tmp) != 0 {
		t.Fatalf("after %d graceful stops: parts %v, temporary files %v; want %d parts (more than the 4 a day that start a merge) and none", flushes, before, tmp, flushes)
	}
	var partBytes int64
	for _, n := range before {
		m, _ := filepath.Glob(filepath.Join(vol, "workspaces", "*", "tables", "Crash_CL", n))
		if len(m) != 1 {
			t.Fatalf("part %s: found %v", n, m)
		}
		fi, err := os.Stat(m[0])
		if err != nil {
			t.Fatal(err)
		}
		partBytes += fi.Size()
	}

	// The server is down: fill the store's volume to 64 KiB short of full.
	ballast := filepath.Join(pool, "ballast")
	free := LeaveFree(t, ballast, 64<<10)
	t.Logf("%d parts of %d KB in all; the store's volume is left with %d KB free", len(before), partBytes>>10, free>>10)
	if int64(free) >= partBytes/2 {
		t.Fatalf("%d bytes free for a merge of %d bytes: the merge could succeed, the test would prove nothing", free, partBytes)
	}
	from := LogLen(t, s)
	if err := s.Start(r.ctx); err != nil {
		t.Fatalf("start with the store's volume nearly full: %v", err)
	}
	line := WaitLog(t, s, from, 30*time.Second, "store merge failed", "no space left on device")
	t.Logf("merge on the full volume: %.400s", line)
	r.expectUnmerged("while the volume is full", before)
	r.verify("while the volume is full")

	// Uploads during the fault: the WAL has the few KB left (acknowledged)
	// or not (refused with a retryable error); either way the ledger holds.
	refused := 0
	for range 4 {
		if st, _ := r.sendRandom("full"); st/100 != 2 {
			refused++
		}
	}
	t.Logf("4 uploads while the volume is full: %d refused", refused)
	from = LogLen(t, s)
	WaitLog(t, s, from, 30*time.Second, "store merge failed", "no space left on device")
	r.expectUnmerged("after the uploads on the full volume", before)
	r.verify("after the uploads on the full volume")

	// SIGKILL in the middle of the merge's write: with three quarters of
	// the merge's size free the failing write lasts long enough for the
	// test, polling the table directory every millisecond, to see its
	// temporary file and kill the server at once (up to 3 tries). Then a
	// start on the volume full again (64 KiB free): the temporary file the
	// kill left is reclaimed, the merge is tried again and fails again.
	var leftByKill []string
	for try := 0; try < 3 && len(leftByKill) == 0; try++ {
		if err := s.Kill(); err != nil {
			t.Fatal(err)
		}
		LeaveFree(t, ballast, partBytes*3/4)
		if err := s.Spawn(); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && s.Running(); time.Sleep(time.Millisecond) {
			if _, tmp := StoreFiles(t, dataDir, "Crash_CL"); len(tmp) > 0 {
				break
			}
		}
		if err := s.Kill(); err != nil {
			t.Fatal(err)
		}
		_, leftByKill = StoreFiles(t, dataDir, "Crash_CL")
		t.Logf("try %d: SIGKILL during the merge's write left temporary files %v", try, leftByKill)
		if len(leftByKill) == 0 {
			if err := s.Start(r.ctx); err != nil { // Kill above needs a running server
				t.Fatal(err)
			}
		}
	}
	if len(leftByKill) == 0 {
		t.Errorf("3 SIGKILLs during the merge's write left no temporary file: the reclaiming at start is not exercised")
	}
	LeaveFree(t, ballast, 64<<10)
	from = LogLen(t, s)
	if err := s.Start(r.ctx); err != nil {
		t.Fatalf("restart after SIGKILL with the store's volume full: %v", err)
	}
	r.verify("after SIGKILL and a restart with the volume full")
	line = WaitLog(t, s, from, 30*time.Second, "store merge failed", "no space left on device")
	// A merge failing for lack of space pauses the merge loop (5 s, then
	// doubling), rather than decoding its rows again at every 1 s tick.
	if !strings.Contains(line, `"retry_in"`) {
		t.Errorf("the merge failure does not say when it is retried: %s", line)
	}
	time.Sleep(3 * time.Second)
	if b, _ := s.Log(); len(linesWith(string(b[from:]), "store merge failed")) != 1 {
		t.Errorf("merge failures within 3 s after the first one since the restart: %q; want none (a pause of 5 s)", linesWith(string(b[from:]), "store merge failed"))
	}
	_, tmp = StoreFiles(t, dataDir, "Crash_CL")
	for _, n := range leftByKill {
		if slices.Contains(tmp, n) {
			t.Errorf("temporary file %s, left by the SIGKILL, is still there after the restart", n)
		}
	}
	r.expectUnmerged("after the restart with the volume full", before)

	// Space returns: the merge is retried on its own and completes.
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	var parts []string
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		parts, tmp = StoreFiles(t, dataDir, "Crash_CL")
		if len(parts) <= 4 && len(tmp) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("60 s after the space returned: parts %v, temporary files %v; the merge was not retried to completion", parts, tmp)
		}
	}
	for _, n := range before {
		if slices.Contains(parts, n) {
			t.Errorf("source part %s still on disk after the merge completed: %v", n, parts)
		}
	}
	t.Logf("after the space returned: %d parts (from %d): %v", len(parts), len(before), parts)
	r.verify("after the merge completed")
	if st, code := r.sendRandom("after"); st/100 != 2 {
		t.Fatalf("upload after the space returned: HTTP %d %s", st, code)
	}
	r.restarts(nil)
	if _, tmp = StoreFiles(t, dataDir, "Crash_CL"); len(tmp) != 0 {
		t.Errorf("temporary files after the restarts: %v", tmp)
	}
	log, _ := s.Log()
	t.Logf("server log: %d failed merges in all", len(linesWith(string(log), "store merge failed")))
}

// expectUnmerged checks that a failed merge left the source parts as they
// were and no temporary file behind. The merge is retried every second, so
// a temporary file of the attempt in progress may exist for a moment: it
// samples for up to 5 s for a moment without one.
func (r *diskFullRig) expectUnmerged(when string, sources []string) {
	t := r.t
	t.Helper()
	var parts, tmp []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		parts, tmp = StoreFiles(t, r.s.DataDir(), "Crash_CL")
		if len(tmp) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(tmp) != 0 {
		t.Fatalf("%s: temporary files %v stay behind the failed merges", when, tmp)
	}
	for _, n := range sources {
		if !slices.Contains(parts, n) {
			t.Fatalf("%s: source part %s is gone although no merge succeeded: %v", when, n, parts)
		}
	}
	if extra := slices.DeleteFunc(slices.Clone(parts), func(n string) bool { return slices.Contains(sources, n) }); len(extra) > 0 {
		// Not a merged part: that would have replaced the sources.
		t.Logf("%s: new parts besides the sources: %v", when, extra)
	}
}
