package ingest

import (
	"sync"
	"time"
)

// Azure's per-DCR limits for the Logs Ingestion API.
const (
	DefaultRequestsPerMinute = 12_000
	DefaultBytesPerMinute    = 2 << 30
)

// rateLimiter enforces per-rule request and byte budgets over fixed one-minute
// windows. Safe for concurrent use.
type rateLimiter struct {
	requests int64
	bytes    int64
	now      func() time.Time

	mu      sync.Mutex // guards windows
	windows map[string]*window
}

type window struct {
	start    time.Time
	requests int64
	bytes    int64
}

func newRateLimiter(requests, bytes int64, now func() time.Time) *rateLimiter {
	return &rateLimiter{requests: requests, bytes: bytes, now: now, windows: make(map[string]*window)}
}

// current returns the rule's window, starting a new one when the old expired.
// l.mu must be held.
func (l *rateLimiter) current(rule string, now time.Time) *window {
	w := l.windows[rule]
	if w == nil || now.Sub(w.start) >= time.Minute {
		if len(l.windows) > 10_000 {
			for k, old := range l.windows {
				if now.Sub(old.start) >= time.Minute {
					delete(l.windows, k)
				}
			}
		}
		w = &window{start: now}
		l.windows[rule] = w
	}
	return w
}

// admit counts one request for rule. It returns how long to wait when the
// request budget, or the byte budget already used, is exhausted.
func (l *rateLimiter) admit(rule string) (retryAfter time.Duration, ok bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.current(rule, now)
	if w.requests >= l.requests || w.bytes >= l.bytes {
		return w.start.Add(time.Minute).Sub(now), false
	}
	w.requests++
	return 0, true
}

// charge records n body bytes for rule.
func (l *rateLimiter) charge(rule string, n int64) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.current(rule, now).bytes += n
}
