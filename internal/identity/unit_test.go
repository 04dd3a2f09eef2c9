package identity

import (
	"fmt"
	"testing"
	"time"
)

func TestResolveScope(t *testing.T) {
	for _, tc := range []struct {
		scope, aud string
		aadsts     int
	}{
		{"https://management.azure.com/.default", AudienceManagement, 0},
		{"https://management.azure.com//.default openid offline_access profile", AudienceManagement, 0},
		{"HTTPS://MONITOR.AZURE.COM//.DEFAULT", AudienceIngestion, 0},
		{"https://api.loganalytics.io/.default", AudienceQuery, 0},
		{"openid profile", "", 900144},
		{"https://api.loganalytics.io/Data.Read", "", 1002012},
		{"https://graph.microsoft.com/.default", "", 70011},
		{"https://management.azure.com/.default https://management.azure.com/.default", "", 70011},
		{"/.default", "", 70011},
	} {
		aud, oerr := resolveScope(tc.scope)
		switch {
		case tc.aadsts == 0 && (oerr != nil || aud != tc.aud):
			t.Errorf("resolveScope(%q) = %q, %+v; want %q", tc.scope, aud, oerr, tc.aud)
		case tc.aadsts != 0 && (oerr == nil || oerr.aadsts != tc.aadsts):
			t.Errorf("resolveScope(%q) = %q, %+v; want AADSTS%d", tc.scope, aud, oerr, tc.aadsts)
		}
	}
}

func TestFailureLimiterBoundedAndRefills(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := newFailureLimiter(2, time.Second, 100)
	for i := 0; i < 1000; i++ {
		l.fail(fmt.Sprintf("k%d", i), now)
		if len(l.buckets) > 100 {
			t.Fatalf("limiter holds %d buckets; want <= 100", len(l.buckets))
		}
	}
	l.fail("x", now)
	if ok, _ := l.allow("x", now); !ok {
		t.Fatalf("one failure of a burst of 2 should still allow")
	}
	l.fail("x", now)
	ok, wait := l.allow("x", now)
	if ok || wait != time.Second {
		t.Fatalf("after burst: allow = %v, wait %v; want false, 1s", ok, wait)
	}
	if ok, _ := l.allow("x", now.Add(time.Second)); !ok {
		t.Fatalf("after refill: not allowed")
	}
	// Refilled buckets are evicted first when full.
	l2 := newFailureLimiter(1, time.Second, 2)
	l2.fail("old", now)
	l2.fail("hot", now.Add(5*time.Second))
	l2.fail("new", now.Add(5*time.Second))
	if _, ok := l2.buckets["old"]; ok {
		t.Fatalf("refilled bucket not evicted")
	}
	if ok, _ := l2.allow("hot", now.Add(5*time.Second)); ok {
		t.Fatalf("hot bucket lost its state")
	}
}

func TestAddressKey(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:5000":            "127.0.0.1",
		"[::ffff:10.0.0.1]:1":       "10.0.0.1",
		"[2001:db8:1:2:3:4:5:6]:80": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:80": "2001:db8:1:2::/64",
		"garbage":                   "invalid:garbage",
	} {
		if got := addressKey(in); got != want {
			t.Errorf("addressKey(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestSecretGeneration(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		s, err := generateSecret(newTestRand())
		if err != nil {
			t.Fatal(err)
		}
		if len(s) != 46 || s[3:6] != "8Q~" || seen[s] {
			t.Fatalf("bad or repeated secret form")
		}
		seen[s] = true
		h := hashSecret(s)
		if checkSecret([]ClientSecret{{Hash: h}}, s, time.Now()) != secretValid ||
			checkSecret([]ClientSecret{{Hash: h}}, s+"x", time.Now()) != secretNoMatch ||
			checkSecret([]ClientSecret{{Hash: h, Expires: time.Unix(1, 0)}}, s, time.Now()) != secretExpired {
			t.Fatalf("checkSecret mismatch")
		}
	}
	if g, err := newGUID(newTestRand()); err != nil || !isGUID(g) || g[14] != '4' {
		t.Fatalf("newGUID = %q, %v", g, err)
	}
}
