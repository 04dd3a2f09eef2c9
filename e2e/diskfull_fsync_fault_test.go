package e2e

import (
	"strings"
	"testing"

	"custos/test/fsfault"
)

// TestDiskFullAtFsync: the data directory is on a thin-provisioned XFS
// volume (fsfault.MountThinXFS). The pool is filled while clients upload: the
// server's writes still succeed (the filesystem has hundreds of MB free) and
// its fsyncs fail with ENOSPC — the case the ext4 and tmpfs disk-full tests
// never reach, since those refuse at write. Each upload whose records the
// fsync could not make durable must be refused with a retryable 503/507 in
// the Azure envelope (the server log shows the WAL's rollback after the
// failed fsync), the server must keep running and answering queries. A
// graceful stop with the pool full meets the fsync failure in its shutdown
// flush (the parts); the next start, with space, loses nothing. Ingestion
// recovers once the pool has space again, and every acknowledged batch is
// present exactly once — also after SIGKILL and a remount of the volume
// (which drops its page cache, so the restart reads what really reached the
// device) and after a graceful restart.
func TestDiskFullAtFsync(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: starts the custos binary")
	}
	x := fsfault.MountThinXFS(t, 192, 512)
	runDiskFull(t, diskFullCase{Data: x.Dir, Pool: x.Pool, StopWhileFull: true,
		WhileFull: func(t *testing.T, log string) {
			if free := fsfault.Free(t, x.Dir); free < 100<<20 {
				t.Fatalf("the XFS volume reports only %d MB free: the test needs writes to succeed and fsync to fail", free>>20)
			}
			rollbacks := strings.Count(log, "WAL fsync failed for lack of space")
			t.Logf("the server log shows %d WAL rollbacks after a failed fsync and names ENOSPC %d times", rollbacks, strings.Count(log, "no space left on device"))
			for i, line := range head(linesWith(log, "no space left on device")) {
				t.Logf("ENOSPC %d: %.300s", i+1, line)
			}
			if rollbacks == 0 {
				t.Errorf("the server never logged a WAL fsync failing for lack of space: the refusals did not come from fsync")
			}
		},
		// The remount drops the volume's page cache: the restart reads what
		// the device holds, not pages whose writeback failed.
		AfterKill: func() {
			x.Unmount(t)
			x.Mount(t)
		},
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
