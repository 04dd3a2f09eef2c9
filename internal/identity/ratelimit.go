package identity

import (
	"math"
	"net"
	"net/netip"
	"sync"
	"time"
)

// RateLimit configures the limits on failed client authentications. A
// failure takes one token from a bucket; a request whose bucket is empty is
// refused before its credentials are checked, with a Retry-After of the time
// until one token is back. Zero fields take the defaults.
type RateLimit struct {
	// PerClientBurst failures are allowed per tenant+client ID before
	// throttling (default 10), refilled at PerClientRefill (default one per 6 s).
	PerClientBurst  int
	PerClientRefill time.Duration
	// PerAddressBurst failures are allowed per source address (IPv4, or IPv6
	// /64) before throttling (default 20), refilled at PerAddressRefill
	// (default one per 3 s).
	PerAddressBurst  int
	PerAddressRefill time.Duration
	// MaxEntries bounds the buckets kept per kind (default 10000). When full,
	// refilled buckets are dropped first, then the least recently updated.
	MaxEntries int
}

func (o RateLimit) withDefaults() RateLimit {
	if o.PerClientBurst <= 0 {
		o.PerClientBurst = 10
	}
	if o.PerClientRefill <= 0 {
		o.PerClientRefill = 6 * time.Second
	}
	if o.PerAddressBurst <= 0 {
		o.PerAddressBurst = 20
	}
	if o.PerAddressRefill <= 0 {
		o.PerAddressRefill = 3 * time.Second
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = 10000
	}
	return o
}

// failureLimiter is a set of token buckets keyed by string, with bounded
// memory. Safe for concurrent use.
type failureLimiter struct {
	burst  float64
	refill time.Duration // time to regain one token
	max    int

	mu      sync.Mutex // guards buckets
	buckets map[string]*bucket
}

type bucket struct {
	tokens  float64
	updated time.Time
}

func newFailureLimiter(burst int, refill time.Duration, max int) *failureLimiter {
	return &failureLimiter{burst: float64(burst), refill: refill, max: max, buckets: map[string]*bucket{}}
}

// level returns the bucket's tokens at now. l.mu must be held.
func (l *failureLimiter) level(b *bucket, now time.Time) float64 {
	el := now.Sub(b.updated)
	if el < 0 {
		el = 0
	}
	return math.Min(l.burst, b.tokens+float64(el)/float64(l.refill))
}

// allow reports whether key may attempt now and, if not, how long to wait.
func (l *failureLimiter) allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		return true, 0
	}
	t := l.level(b, now)
	if t >= 1 {
		return true, 0
	}
	wait := time.Duration((1 - t) * float64(l.refill))
	return false, wait
}

// fail records one failed attempt of key.
func (l *failureLimiter) fail(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= l.max {
			l.evict(now)
		}
		b = &bucket{tokens: l.burst, updated: now}
		l.buckets[key] = b
	}
	b.tokens = math.Max(0, l.level(b, now)-1)
	b.updated = now
}

// evict makes room: it drops every bucket that has refilled (it holds no
// state a fresh bucket would not), and if none has, the least recently
// updated one. l.mu must be held.
func (l *failureLimiter) evict(now time.Time) {
	var oldestKey string
	var oldest time.Time
	for k, b := range l.buckets {
		if l.level(b, now) >= l.burst {
			delete(l.buckets, k)
			continue
		}
		if oldestKey == "" || b.updated.Before(oldest) {
			oldestKey, oldest = k, b.updated
		}
	}
	if len(l.buckets) >= l.max && oldestKey != "" {
		delete(l.buckets, oldestKey)
	}
}

// addressKey returns the rate-limit key of a remote address: the IPv4
// address, or the /64 prefix of an IPv6 address (one host's share).
func addressKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return "invalid:" + host
	}
	ip = ip.Unmap()
	if ip.Is4() {
		return ip.String()
	}
	p, err := ip.Prefix(64)
	if err != nil {
		return ip.String()
	}
	return p.String()
}
