package identity

import "time"

// issueMark remembers the service's wall clock at its latest token issue,
// paired with a reading of the process's monotonic clock taken at the same
// moment, so that the service can tell how late it really is after its wall
// clock has been stepped backwards (an NTP step, an operator's correction).
//
// Why: the service stamps iat and nbf with its wall clock. After a backward
// step of J, a token it issued just before the step carries nbf J in the
// service's new future and would be refused as "not yet valid" until the
// wall clock catches up — locking clients out for up to J, since the Azure
// SDKs keep a cached token until shortly before its expiry. The monotonic
// clock is not stepped, so mark.wall + (monotonic now − mark.mono) is the
// wall-clock time the service would read had it not been stepped back.
type issueMark struct {
	wall time.Time     // the wall clock at the issue
	mono time.Duration // the monotonic clock at the same moment
}

// markIssue records wall (the iat of a token being issued) unless the wall
// clock is behind the estimate of the previous mark by more than the skew
// (it was stepped back: the earlier mark still holds the later time).
func (s *TokenService) markIssue(wall time.Time) {
	mono := s.mono()
	if m := s.issued.Load(); m != nil && wall.Before(m.wall.Add(mono-m.mono).Add(-s.skew)) {
		return
	}
	s.issued.Store(&issueMark{wall: wall, mono: mono})
}

// steppedBackNow returns the wall-clock time the service would read now had
// its clock not been stepped backwards since its latest issue, and true,
// when its wall clock now is behind that by more than the clock skew; else
// the zero time and false.
func (s *TokenService) steppedBackNow(now time.Time) (time.Time, bool) {
	m := s.issued.Load()
	if m == nil {
		return time.Time{}, false
	}
	est := m.wall.Add(s.mono() - m.mono)
	if !est.After(now.Add(s.skew)) {
		return time.Time{}, false
	}
	return est, true
}

// monoClock returns the process's monotonic clock as the time since the
// call. It does not follow steps of the wall clock (time.Since uses the
// monotonic reading).
func monoClock() func() time.Duration {
	start := time.Now()
	return func() time.Duration { return time.Since(start) }
}
