package e2e

import (
	"strings"
	"testing"

	"custos/test/fsfault"
)

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
	fs := fsfault.MountLoopExt4(t, 96)
	s := runDiskFull(t, diskFullCase{Data: fs, Pool: fs, StopWhileFull: true})
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
