package purge

import (
	"testing"
	"time"
)

// TestNoSpaceDelay: the pause between rounds that failed for lack of space
// doubles from RetryDelay up to a minute; other rounds use RetryDelay.
func TestNoSpaceDelay(t *testing.T) {
	s := &Service{retryDelay: 5 * time.Second}
	want := []time.Duration{5, 5, 10, 20, 40, 60, 60}
	for n, w := range want {
		if got := s.delayAfter(n); got != w*time.Second {
			t.Errorf("delayAfter(%d) = %v, want %v", n, got, w*time.Second)
		}
	}
	long := &Service{retryDelay: 2 * time.Minute}
	if got := long.delayAfter(3); got != 2*time.Minute {
		t.Errorf("a RetryDelay above the cap: delayAfter(3) = %v, want 2m", got)
	}
}
