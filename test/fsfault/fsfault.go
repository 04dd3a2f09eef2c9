package fsfault

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// MountTmpfs mounts a tmpfs of sizeMB megabytes at a new directory under
// the test's temporary directory and unmounts it at cleanup. It needs root
// (or CAP_SYS_ADMIN).
func MountTmpfs(t testing.TB, sizeMB int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "small-fs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm,mode=0700", sizeMB), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("mount a %d MB tmpfs at %s for a disk-full test: %v: %s (run the test as root, or with CAP_SYS_ADMIN, so that it can give the code under test a small filesystem)",
			sizeMB, dir, err, strings.TrimSpace(string(out)))
	}
	// Registered after t.TempDir, so it runs before the directory is removed.
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// Fill appends to path until the filesystem reports ENOSPC and returns the
// bytes written. Any other error fails the test.
func Fill(t testing.TB, path string) int64 {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 256<<10)
	var n int64
	// Large writes first, then single blocks: a filesystem may refuse a
	// large write while a few blocks are still free.
	for _, size := range []int{256 << 10, 4 << 10} {
		for {
			w, err := f.Write(buf[:size])
			n += int64(w)
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			if err != nil {
				t.Fatalf("fill the filesystem: %v", err)
			}
		}
	}
	return n
}

// sparseImage creates path as a sparse file of sizeMB megabytes.
func sparseImage(t testing.TB, path string, sizeMB int) {
	t.Helper()
	f, err := os.Create(path)
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
}

// MountLoopExt4 makes an ext4 filesystem of sizeMB megabytes in an image
// file, mounts it through a loop device at a new directory under the test's
// temporary directory, and unmounts it (which frees the loop device) at
// cleanup. Unlike tmpfs, ext4 allocates blocks on a block device, journals
// and writes back, so ENOSPC comes from the filesystem's real allocator. It
// needs root (mount, a free /dev/loopN) and mkfs.ext4 (e2fsprogs).
func MountLoopExt4(t testing.TB, sizeMB int) string {
	t.Helper()
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		t.Fatalf("mkfs.ext4 is not installed (%v): install e2fsprogs (apt-get install e2fsprogs, or test/install-fstools.sh) so that the disk-full test can build a small ext4 filesystem", err)
	}
	base := t.TempDir()
	img := filepath.Join(base, "fs.img")
	sparseImage(t, img, sizeMB)
	// No reserved blocks (root, which the code under test runs as here,
	// could use them), and no lazy initialisation writing behind the
	// test's back.
	if out, err := exec.Command(mkfs, "-q", "-F", "-m", "0", "-E", "lazy_itable_init=0,lazy_journal_init=0", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4 %s: %v: %s", img, err, strings.TrimSpace(string(out)))
	}
	dir := filepath.Join(base, "small-ext4")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "ext4", "-o", "loop", img, dir).CombinedOutput()
	if err != nil {
		t.Fatalf("mount a %d MB ext4 image on a loop device at %s for the disk-full test: %v: %s (run the test as root, with loop devices available — /dev/loop-control — so that it can build a small real filesystem)",
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

// ThinXFS is an XFS filesystem on a loop device whose backing image is a
// sparse file on a small tmpfs — a thin-provisioned volume: the filesystem
// reports plenty of free space and accepts writes into the page cache, but
// once the pool (the tmpfs, Pool) is full the writeback fails, so fsync
// returns ENOSPC although every write succeeded. It is mounted with discard,
// so files deleted on it give their blocks back to the pool.
//
// XFS rather than ext4: ext4 aborts its journal when writeback to the full
// pool fails and remounts read-only (seen on Linux 6.18), so it cannot
// recover when the space returns; XFS reports a failed data writeback at
// fsync and retries failed metadata writeback on ENOSPC until space returns
// (its default error configuration, error/metadata/ENOSPC/max_retries = -1).
type ThinXFS struct {
	Pool string // the tmpfs holding the image: fill it to exhaust the volume
	Dir  string // the XFS mount point
	img  string
}

// MountThinXFS builds a ThinXFS: a poolMB tmpfs, a sizeMB sparse image on
// it (mkfs.xfs wants 300 MB at least and writes a 64 MB log into the pool),
// mkfs.xfs, mount -o loop,discard. It unmounts both at cleanup. It needs
// root, loop devices, XFS in the kernel and mkfs.xfs (xfsprogs).
func MountThinXFS(t testing.TB, poolMB, sizeMB int) *ThinXFS {
	t.Helper()
	mkfs, err := exec.LookPath("mkfs.xfs")
	if err != nil {
		t.Fatalf("mkfs.xfs is not installed (%v): install xfsprogs (apt-get install xfsprogs, or test/install-fstools.sh) so that the fsync-ENOSPC test can build a thin-provisioned XFS volume", err)
	}
	x := &ThinXFS{Pool: MountTmpfs(t, poolMB)}
	x.img = filepath.Join(x.Pool, "xfs.img")
	sparseImage(t, x.img, sizeMB)
	if out, err := exec.Command(mkfs, "-q", "-f", x.img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.xfs %s: %v: %s", x.img, err, strings.TrimSpace(string(out)))
	}
	x.Dir = filepath.Join(t.TempDir(), "thin-xfs")
	if err := os.Mkdir(x.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	x.Mount(t)
	// Registered after MountTmpfs, so it runs before the pool goes.
	t.Cleanup(func() { x.Unmount(t) })
	return x
}

// Mount mounts the volume at x.Dir (again, after Unmount).
func (x *ThinXFS) Mount(t testing.TB) {
	t.Helper()
	if out, err := exec.Command("mount", "-t", "xfs", "-o", "loop,discard", x.img, x.Dir).CombinedOutput(); err != nil {
		t.Fatalf("mount the XFS image on a loop device at %s: %v: %s (run the test as root, with loop devices available — /dev/loop-control — and XFS in the kernel)",
			x.Dir, err, strings.TrimSpace(string(out)))
	}
}

// Unmount unmounts the volume, which drops its page cache: a later Mount
// reads what really reached the device. Unmounting an unmounted volume is
// not an error.
func (x *ThinXFS) Unmount(t testing.TB) {
	t.Helper()
	out, err := exec.Command("umount", x.Dir).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "not mounted") {
		t.Errorf("umount %s: %v: %s", x.Dir, err, out)
		_ = exec.Command("umount", "-l", x.Dir).Run()
	}
}

// Free returns the bytes the filesystem at dir reports available.
func Free(t testing.TB, dir string) uint64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Bavail * uint64(st.Bsize)
}
