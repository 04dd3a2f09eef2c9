package identity

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"
)

func FuzzParseTokenRequest(f *testing.F) {
	f.Add("application/x-www-form-urlencoded", "grant_type=client_credentials&client_id=aaaaaaaa-0000-4000-8000-000000000001&client_secret=abc&scope=https%3A%2F%2Fmonitor.azure.com%2F%2F.default+openid", "")
	f.Add("application/x-www-form-urlencoded; charset=utf-8", "grant_type=client_credentials&scope=x%2F.default", "Basic YWFhYWFhYWEtMDAwMC00MDAwLTgwMDAtMDAwMDAwMDAwMDAxOnNlY3JldA==")
	f.Add("application/x-www-form-urlencoded", "grant_type=client_credentials&grant_type=password", "")
	f.Add("application/x-www-form-urlencoded", "%zz=1&a=%", "Basic !!!")
	f.Add("text/plain", "", "")
	f.Add("application/x-www-form-urlencoded", "client_assertion=x&client_id=aaaaaaaa-0000-4000-8000-000000000001&grant_type=client_credentials", "bearer x")
	f.Fuzz(func(t *testing.T, ct, body, authz string) {
		var hdr []string
		if authz != "" {
			hdr = []string{authz}
		}
		req, oerr := parseTokenRequest(ct, []byte(body), hdr)
		if oerr != nil {
			if oerr.status < 400 || oerr.status > 499 || oerr.code == "" || oerr.aadsts == 0 {
				t.Fatalf("bad error %+v", oerr)
			}
			return
		}
		if req.GrantType != "client_credentials" || !isGUID(req.ClientID) || (req.ClientSecret == "") == (req.ClientAssertion == "") ||
			strings.TrimSpace(req.Scope) == "" {
			t.Fatalf("accepted incomplete request %+v", req)
		}
		if aud, oerr := resolveScope(req.Scope); oerr == nil {
			if _, ok := canonicalAudience(aud); !ok {
				t.Fatalf("resolveScope returned unknown audience %q", aud)
			}
		}
	})
}

func FuzzValidateToken(f *testing.F) {
	store := newMemStore(tenantA)
	clock := &testClock{t: time.Unix(1_800_000_000, 0)}
	ts, err := NewTokenService(TokenServiceOptions{Store: store, Keys: newTestSealer(f), Issuer: "https://localhost:8443",
		Now: clock.Now})
	if err != nil {
		f.Fatal(err)
	}
	sp := ServicePrincipal{TenantID: tenantA, ObjectID: "o", AppID: "a", DisplayName: "fuzz"}
	good, _, err := ts.IssueToken(context.Background(), sp, AudienceQuery)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	parts := strings.Split(good, ".")
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add(parts[0] + ".." + parts[2])
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("eyJhbGciOiJIUzI1NiIsImtpZCI6IngifQ.e30." + parts[2])
	f.Add("a.b.c.d")
	f.Add(url.QueryEscape(good))
	f.Fuzz(func(t *testing.T, tok string) {
		p, err := ts.ValidateToken(context.Background(), tok, AudienceQuery)
		if err == nil {
			// Only our own, unmodified token can pass (a signature over any
			// other bytes would be a forgery).
			if tok != good || p.ObjectID != "o" || p.TenantID != tenantA {
				t.Fatalf("accepted token %q as %+v", tok, p)
			}
			return
		}
		ae, ok := err.(*AuthError)
		if !ok || ae.Code == "" || ae.kind != kindUnauthenticated {
			t.Fatalf("error %T %v", err, err)
		}
		if tok != "" && len(tok) > 8 && strings.Contains(ae.Message, tok) {
			t.Fatalf("error message echoes the token")
		}
	})
}
