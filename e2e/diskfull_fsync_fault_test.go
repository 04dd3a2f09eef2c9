package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"custos/test/fsfault"
)

// TestDiskFullAtFsync: the data directory is on a thin-provisioned XFS
// volume (fsfault.MountThinXFS). The pool is filled while clients upload: the
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
	x := fsfault.MountThinXFS(t, 192, 512)
	r := newDiskFullRig(t, filepath.Join(x.Dir, "data"), 200*time.Second)
	for range 5 {
		if st, code := r.send("before"); st/100 != 2 {
			t.Fatalf("before filling the pool: HTTP %d %s", st, code)
		}
	}
	r.verify("before filling the pool")

	ballast := filepath.Join(x.Pool, "ballast")
	filled := fsfault.Fill(t, ballast)
	free := fsfault.Free(t, x.Dir)
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
		fsfault.Fill(t, ballast) // take back what a deleted file gave the pool
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
		x.Unmount(t)
		x.Mount(t)
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
