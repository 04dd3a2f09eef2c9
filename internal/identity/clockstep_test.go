package identity

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeMono is a monotonic clock the test advances by hand; unlike the
// testClock (the wall clock) it is never stepped backwards.
type fakeMono struct {
	mu sync.Mutex
	d  time.Duration
}

func (m *fakeMono) now() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.d
}

func (m *fakeMono) advance(d time.Duration) {
	m.mu.Lock()
	m.d += d
	m.mu.Unlock()
}

// TestTokenAcrossBackwardClockStep: the service's wall clock is stepped 2 h
// back (more than the 2-minute skew) after it issued a token. The token
// stays valid for the rest of its lifetime — judged against the time the
// service would read without the step (its latest issue plus the monotonic
// time since) — and expires when its hour is up in real time, not 2 h
// later on the stepped clock. A token signed with the same keys by a
// service whose clock runs ahead of that time, and the old token at a
// service that has not seen the step (a restart), stay refused.
func TestTokenAcrossBackwardClockStep(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	mono := &fakeMono{}
	e.ts.mono = mono.now
	step := func(wall, real time.Duration) { e.clock.Advance(wall); mono.advance(real) }
	validate := func(tok string) error { _, err := e.ts.ValidateToken(ctx, tok, AudienceQuery); return err }

	t0 := e.clock.Now()
	old, exp, err := e.ts.IssueToken(ctx, e.sp, AudienceQuery)
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(t0.Add(DefaultTokenLifetime)) {
		t.Fatalf("exp %v; want %v", exp, t0.Add(DefaultTokenLifetime))
	}
	step(10*time.Minute, 10*time.Minute)
	if err := validate(old); err != nil {
		t.Fatalf("before the step: %v", err)
	}

	// Within the skew nothing changes; beyond it the old token would be
	// "not yet valid" on the wall clock alone.
	step(-90*time.Second, 0)
	if err := validate(old); err != nil {
		t.Fatalf("90 s back (within the skew): %v", err)
	}
	step(90*time.Second-2*time.Hour, 0) // now 2 h behind, real time t0+10m
	if err := validate(old); err != nil {
		t.Fatalf("2 h back: the token issued before the step is refused: %v", err)
	}
	fresh, _, err := e.ts.IssueToken(ctx, e.sp, AudienceQuery)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate(fresh); err != nil {
		t.Fatalf("a token issued after the step: %v", err)
	}

	// A token from a service sharing the keys whose clock is 10 min ahead
	// of the real time: never issued here, still refused.
	ahead := &testClock{t: t0.Add(20 * time.Minute)}
	tsAhead, err := NewTokenService(TokenServiceOptions{Store: e.store, Keys: e.keys, Issuer: e.srv.URL, Now: ahead.Now})
	if err != nil {
		t.Fatal(err)
	}
	future, _, err := tsAhead.IssueToken(ctx, e.sp, AudienceQuery)
	if err != nil {
		t.Fatal(err)
	}
	_ = e.ts.ReloadKeys(ctx)
	if err := validate(future); !errors.Is(err, ErrTokenNotYetValid) {
		t.Fatalf("a token from a clock ahead of the real time, after the step: err = %v; want ErrTokenNotYetValid", err)
	}

	// A restarted service has not seen the step: the old token is refused
	// (the client must fetch a new one), a new token works.
	restarted, err := NewTokenService(TokenServiceOptions{Store: e.store, Keys: e.keys, Issuer: e.srv.URL, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := restarted.ValidateToken(ctx, old, AudienceQuery); !errors.Is(err, ErrTokenNotYetValid) {
		t.Fatalf("old token at a service restarted after the step: err = %v; want ErrTokenNotYetValid", err)
	}

	// The old token expires an hour (plus the skew) after its issue in real
	// time — not when the stepped wall clock reaches its exp, 2 h later.
	step(49*time.Minute, 49*time.Minute) // real t0+59m
	if err := validate(old); err != nil {
		t.Fatalf("real time t0+59m: %v", err)
	}
	step(3*time.Minute, 3*time.Minute) // real t0+62m: exp + skew
	if err := validate(old); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("real time t0+62m (exp + skew passed): err = %v; want ErrTokenExpired", err)
	}
	if err := validate(fresh); err != nil {
		t.Fatalf("the token issued after the step, 52 min later: %v", err)
	}

	// Issuing after the step does not move the mark back: the real-time
	// estimate still holds the time before the step.
	if est, back := e.ts.steppedBackNow(e.clock.Now()); !back || !est.Equal(t0.Add(62*time.Minute)) {
		t.Fatalf("steppedBackNow = %v, %v; want %v, true", est, back, t0.Add(62*time.Minute))
	}
}

// TestIssueMarkFollowsForwardClock: without a backward step the estimate
// never differs from the wall clock by more than the skew, so tokens are
// judged on the wall clock as before; a forward step moves the mark along.
func TestIssueMarkFollowsForwardClock(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	mono := &fakeMono{}
	e.ts.mono = mono.now
	for i := range 3 {
		if _, _, err := e.ts.IssueToken(ctx, e.sp, AudienceQuery); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Hour) // a forward step: the monotonic clock moves less
		mono.advance(time.Minute)
		if _, back := e.ts.steppedBackNow(e.clock.Now()); back {
			t.Fatalf("round %d: a forward step taken for a backward one", i)
		}
	}
	if _, back := e.ts.steppedBackNow(e.clock.Now().Add(-time.Minute)); back {
		t.Fatal("a step back of 1 minute (within the skew) taken for a backward step")
	}
}

// TestCachesAcrossBackwardClockStep: the principal-state and tenant caches
// expire on the wall clock; an entry cached before a backward step would
// otherwise last the step longer than its TTL, and a principal disabled (or
// a tenant deleted) just after the step would keep its tokens working.
func TestCachesAcrossBackwardClockStep(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	tok, _, err := e.ts.IssueToken(ctx, e.sp, AudienceQuery)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.ts.ValidateToken(ctx, tok, AudienceQuery); err != nil { // caches both answers
		t.Fatal(err)
	}
	e.clock.Advance(-2 * time.Hour)
	e.store.setDisabled(e.sp.ObjectID, true)
	if _, err := e.ts.ValidateToken(ctx, tok, AudienceQuery); !errors.Is(err, ErrPrincipalDisabled) {
		t.Fatalf("principal disabled after a 2 h backward step: err = %v; want ErrPrincipalDisabled (the cached state is stale)", err)
	}
	e.store.setDisabled(e.sp.ObjectID, false)
	e.clock.Advance(DefaultPrincipalCacheTTL + time.Second) // the "disabled" answer expires
	if _, err := e.ts.ValidateToken(ctx, tok, AudienceQuery); err != nil {
		t.Fatalf("enabled again: %v", err)
	}
	e.clock.Advance(-2 * time.Hour)
	e.store.setTenant(tenantA, false)
	if _, err := e.ts.ValidateToken(ctx, tok, AudienceQuery); !errors.Is(err, ErrWrongTenant) {
		t.Fatalf("tenant deleted after a second backward step: err = %v; want ErrWrongTenant (the cached existence is stale)", err)
	}
}
