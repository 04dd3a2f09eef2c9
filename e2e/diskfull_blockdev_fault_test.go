package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// mountLoopExt4 makes an ext4 filesystem of sizeMB megabytes in an image
// file, mounts it through a loop device at a new directory under the test's
// temporary directory, and unmounts it (which frees the loop device) at
// cleanup. Unlike tmpfs, ext4 allocates blocks on a block device, journals
// and writes back, so ENOSPC comes from the filesystem's real allocator. It
// needs root (mount, a free /dev/loopN) and mkfs.ext4 (e2fsprogs); without
// them the test fails saying so — it never skips.
func mountLoopExt4(t *testing.T, sizeMB int) string {
	t.Helper()
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		t.Fatalf("mkfs.ext4 is not installed (%v): install e2fsprogs (apt-get install e2fsprogs) so that the disk-full test can build a small ext4 filesystem", err)
	}
	base := t.TempDir()
	img := filepath.Join(base, "fs.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(int64(sizeMB) << 20); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// No reserved blocks (root, which the server runs as here, could use
	// them), and no lazy initialisation writing behind the test's back.
	if out, err := exec.Command(mkfs, "-q", "-F", "-m", "0", "-E", "lazy_itable_init=0,lazy_journal_init=0", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4 %s: %v: %s", img, err, strings.TrimSpace(string(out)))
	}
	dir := filepath.Join(base, "small-ext4")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "ext4", "-o", "loop", img, dir).CombinedOutput()
	if err != nil {
		t.Fatalf("mount a %d MB ext4 image on a loop device at %s for the disk-full test: %v: %s (run the e2e tests as root, with loop devices available — /dev/loop-control — so that the test can give the server a small real filesystem)",
			sizeMB, dir, err, strings.TrimSpace(string(out)))
	}
	// Registered after t.TempDir, so it runs before the image is removed.
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
			_ = exec.Command("umount", "-l", dir).Run()
		}
	})
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestDiskFullBlockDevice runs the disk-full scenario of TestDiskFull on a
// 96 MB ext4 filesystem on a loop device instead of tmpfs, so that write and
// fsync meet the out-of-space condition of a real block filesystem (block
// allocation, the journal, delayed allocation and writeback): uploads on the
// full disk are refused with 503/507 in the Azure envelope, nothing
// acknowledged is lost, ingestion recovers when space is freed, and all of
// it survives SIGKILL and a graceful restart. It also stops the server
// gracefully while the disk is full, so that the shutdown flush meets
// ENOSPC: the server exits in time and the next start loses nothing.
func TestDiskFullBlockDevice(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: starts the custos binary")
	}
	s := runDiskFull(t, mountLoopExt4(t, 96), true)
	// The refusals came from the filesystem itself: the server logged them.
	b, err := s.Log()
	if err != nil {
		t.Fatal(err)
	}
	n := strings.Count(string(b), "no space left on device")
	t.Logf("the server log names ENOSPC %d times", n)
	if n == 0 {
		t.Errorf("the server log never mentions \"no space left on device\": the refusals did not come from the full ext4 filesystem")
	}
}
