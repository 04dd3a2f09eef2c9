package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// thinXFS is an XFS filesystem on a loop device whose backing image is a
// sparse file on a small tmpfs — a thin-provisioned volume: the filesystem
// reports plenty of free space and accepts writes into the page cache, but
// when the pool (the tmpfs) is full the writeback fails, so fsync returns
// ENOSPC although every write succeeded. Mounted with discard, files the
// server deletes give their blocks back to the pool.
type thinXFS struct {
	pool, dir, img string
}

// mountThinXFS builds it: a poolMB tmpfs, a sizeMB sparse image on it,
// mkfs.xfs, mount -o loop,discard. It needs root, loop devices and mkfs.xfs
// (xfsprogs); without them the test fails saying what is missing — it never
// skips. XFS rather than ext4: ext4 aborts its journal when writeback fails
// and remounts read-only (seen on this kernel), so it would not recover when
// the space returns; XFS reports a data writeback failure at fsync and
// retries failed metadata writeback on ENOSPC until space returns (its
// default error configuration, error/metadata/ENOSPC/max_retries = -1).
func mountThinXFS(t *testing.T, poolMB, sizeMB int) *thinXFS {
	t.Helper()
	mkfs, err := exec.LookPath("mkfs.xfs")
	if err != nil {
		t.Fatalf("mkfs.xfs is not installed (%v): install xfsprogs (apt-get install xfsprogs, or test/install-fstools.sh) so that the fsync-ENOSPC test can build a thin-provisioned XFS volume", err)
	}
	x := &thinXFS{pool: mountTmpfs(t, poolMB)}
	x.img = filepath.Join(x.pool, "xfs.img")
	f, err := os.Create(x.img)
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
	if out, err := exec.Command(mkfs, "-q", "-f", x.img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.xfs %s: %v: %s", x.img, err, strings.TrimSpace(string(out)))
	}
	x.dir = filepath.Join(t.TempDir(), "thin-xfs")
	if err := os.Mkdir(x.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	x.mount(t)
	// Registered after mountTmpfs, so it runs before the pool goes.
	t.Cleanup(func() { x.unmount(t) })
	return x
}

func (x *thinXFS) mount(t *testing.T) {
	t.Helper()
	if out, err := exec.Command("mount", "-t", "xfs", "-o", "loop,discard", x.img, x.dir).CombinedOutput(); err != nil {
		t.Fatalf("mount the XFS image on a loop device at %s: %v: %s (run the e2e tests as root, with loop devices available — /dev/loop-control — and XFS in the kernel)",
			x.dir, err, strings.TrimSpace(string(out)))
	}
}

func (x *thinXFS) unmount(t *testing.T) {
	t.Helper()
	out, err := exec.Command("umount", x.dir).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "not mounted") {
		t.Errorf("umount %s: %v: %s", x.dir, err, out)
		_ = exec.Command("umount", "-l", x.dir).Run()
	}
}

// TestDiskFullAtFsync: the data directory is on a thin-provisioned XFS
// volume (mountThinXFS). The pool is filled while clients upload: the
// server's writes still succeed (the filesystem has hundreds of MB free) and
// its WAL fsyncs fail with ENOSPC — the case the ext4 and tmpfs disk-full
// tests never reach, since those refuse at write. Each upload whose records
// the fsync could not make durable must be refused with a retryable 503/507
// in the Azure envelope (the server log shows the WAL's rollback after the
// failed fsync), the server must keep running and answering queries,
// ingestion must recover once the pool has space again, and every
// acknowledged batch must be present exactly once — also after SIGKILL and
// a remount of the volume (which drops its page cache, so the restart reads
// what really reached the device) and after a graceful restart.
func TestDiskFullAtFsync(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: starts the custos binary")
	}
	x := mountThinXFS(t, 192, 512)
	r := newDiskFullRig(t, filepath.Join(x.dir, "data"), 200*time.Second)
	for range 5 {
		if st, code := r.send("before"); st/100 != 2 {
			t.Fatalf("before filling the pool: HTTP %d %s", st, code)
		}
	}
	r.verify("before filling the pool")

	ballast := filepath.Join(x.pool, "ballast")
	filled := fillFS(t, ballast)
	var st syscall.Statfs_t
	if err := syscall.Statfs(x.dir, &st); err != nil {
		t.Fatal(err)
	}
	free := st.Bavail * uint64(st.Bsize)
	t.Logf("ballast of %d MB fills the pool; the XFS volume still reports %d MB free", filled>>20, free>>20)
	if free < 100<<20 {
		t.Fatalf("the XFS volume reports only %d MB free: the test needs writes to succeed and fsync to fail", free>>20)
	}
	logBefore, _ := r.s.Log()
	refused := 0
	var lastCode string
	var lastStatus int
	for i := 0; i < 40 && refused < 5; i++ {
		st, code := r.send("full")
		if st/100 != 2 {
			refused++
			lastStatus, lastCode = st, code
		}
		fillFS(t, ballast) // take back what a deleted file gave the pool
	}
	if refused == 0 {
		t.Fatalf("40 uploads of ~100 KB each were all acknowledged with the pool full")
	}
	t.Logf("pool full: %d uploads refused, the last with HTTP %d %s; %d acknowledged in all", refused, lastStatus, lastCode, r.led.acks())
	if !r.s.Running() {
		t.Fatal("the server exited when fsync failed with ENOSPC")
	}
	logFull, _ := r.s.Log()
	during := string(logFull[len(logBefore):])
	rollbacks := strings.Count(during, "WAL fsync failed for lack of space")
	t.Logf("the server log shows %d WAL rollbacks after a failed fsync and names ENOSPC %d times", rollbacks, strings.Count(during, "no space left on device"))
	for i, line := range head(linesWith(during, "no space left on device")) {
		t.Logf("ENOSPC %d: %.400s", i+1, line)
	}
	if rollbacks == 0 {
		t.Errorf("the server never logged a WAL fsync failing for lack of space: the refusals did not come from fsync")
	}
	r.verify("with the pool full")

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	r.recover()
	// The remount drops the volume's page cache: the restart reads what the
	// device holds, not pages whose writeback failed.
	r.restarts(func() {
		x.unmount(t)
		x.mount(t)
	})
}

// linesWith returns the lines of log that contain s.
func linesWith(log, s string) []string {
	var out []string
	for line := range strings.Lines(log) {
		if strings.Contains(line, s) {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}
