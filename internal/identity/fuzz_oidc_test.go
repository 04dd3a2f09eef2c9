package identity

import (
	"context"
	"strings"
	"testing"
	"time"
)

// FuzzIDTokenHint: the end-session endpoint's id_token_hint comes from any
// browser. Only an ID token this service signed may pass, and nothing may
// panic.
func FuzzIDTokenHint(f *testing.F) {
	store := newMemStore(tenantA)
	clock := &testClock{t: time.Unix(1_800_000_000, 0)}
	ts, err := NewTokenService(TokenServiceOptions{Store: store, Keys: newTestSealer(f), Issuer: "https://localhost:8443", Now: clock.Now})
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	u := User{TenantID: tenantA, ObjectID: "a11ce000-0000-4000-8000-000000000001", UserPrincipalName: "alice@example.test"}
	good, err := ts.issueIDToken(ctx, "https://localhost:8443", u, "client-1", []string{"pwd"}, clock.Now(), "n")
	if err != nil {
		f.Fatal(err)
	}
	access, _, err := ts.IssueToken(ctx, ServicePrincipal{TenantID: tenantA, ObjectID: "o", AppID: "a"}, AudienceQuery)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(access)
	parts := strings.Split(good, ".")
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, hint string) {
		c, err := ts.verifyIDTokenHint(ctx, hint, tenantA)
		if err != nil {
			return
		}
		if hint != good || c.Subject != u.ObjectID || c.Audience != "client-1" {
			t.Fatalf("accepted hint %q as %+v", hint, c)
		}
	})
}
