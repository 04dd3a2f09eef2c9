package query

import "time"

var noTimeout time.Time

// timeoutFrom turns the request deadline into the engine's per-query timeout
// (zero: the engine's default).
func timeoutFrom(deadline time.Time) time.Duration {
	if deadline.IsZero() {
		return 0
	}
	d := time.Until(deadline)
	if d <= 0 {
		return time.Nanosecond
	}
	return d
}
