package procstat

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestSelf(t *testing.T) {
	pid := os.Getpid()
	c0, err := CPUSeconds(pid)
	if err != nil {
		t.Fatal(err)
	}
	// Burn some CPU so the counter moves by at least one tick.
	for start := time.Now(); time.Since(start) < 150*time.Millisecond; {
	}
	c1, err := CPUSeconds(pid)
	if err != nil {
		t.Fatal(err)
	}
	if c1 <= c0 {
		t.Errorf("CPU seconds did not grow after a busy loop: %v then %v", c0, c1)
	}
	if rss := PeakRSSMB(pid); rss <= 0 || rss > 1<<20 {
		t.Errorf("PeakRSSMB = %v; want a positive size", rss)
	}
	if StatusKB(pid, "NoSuchKey") != 0 {
		t.Error("StatusKB of a missing key is not 0")
	}
	if _, err := CPUSeconds(1 << 30); err == nil {
		t.Error("CPUSeconds of a process that does not exist: no error")
	}
	if f := strings.Fields(LoadAvg()); len(f) != 3 {
		t.Errorf("LoadAvg() = %q; want three numbers", LoadAvg())
	}
}
