package identity

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestIssueExternalToken: a token for a secure webhook's identifierUri is
// signed by a key in the JWKS served over HTTPS, carries the issuer and the
// exact audience, lives at most ExternalTokenLifetime, and is refused by
// Custos's own APIs for every one of their audiences.
func TestIssueExternalToken(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	const aud = "api://alerts-receiver"
	tok, exp, err := e.ts.IssueExternalToken(ctx, e.sp, "  "+aud+" ")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := exp.Sub(e.clock.Now().Truncate(time.Second)), ExternalTokenLifetime; got != want {
		t.Fatalf("lifetime %v; want %v", got, want)
	}

	// Verify as a receiver would: the JWKS over HTTPS, then the claims.
	resp, err := e.client.Get(e.srv.URL + "/" + tenantA + "/discovery/v2.0/keys")
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	err = json.NewDecoder(resp.Body).Decode(&set)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	j, err := parseJWT(tok)
	if err != nil {
		t.Fatal(err)
	}
	verified := false
	for _, raw := range set.Keys {
		k, pub, err := parseJWK(raw)
		if err != nil {
			t.Fatal(err)
		}
		if k.Kid == j.header.Kid && j.verify(pub) {
			verified = true
		}
	}
	if !verified {
		t.Fatalf("token signed by kid %q is not verifiable with the JWKS", j.header.Kid)
	}
	c, err := j.claims()
	if err != nil {
		t.Fatal(err)
	}
	if c.Audience != aud || c.Issuer != e.srv.URL+"/"+tenantA+"/v2.0" || c.AppID != e.sp.AppID ||
		c.AuthorizedApp != e.sp.AppID || c.ObjectID != e.sp.ObjectID || c.TenantID != tenantA || c.Expires != exp.Unix() {
		t.Fatalf("claims %+v", c)
	}

	// Custos's own APIs refuse it, whatever audience they expect.
	for _, own := range []string{AudienceManagement, AudienceIngestion, AudienceQuery} {
		resp, body := e.whoami("Bearer "+tok, own)
		if resp.StatusCode != 401 || errCode(body) != "InvalidAuthenticationTokenAudience" {
			t.Fatalf("Custos API for %s accepted an external token: %d %v", own, resp.StatusCode, body)
		}
		if _, err := e.ts.ValidateToken(ctx, tok, own); !errors.Is(err, ErrWrongAudience) {
			t.Fatalf("ValidateToken(%s) = %v; want ErrWrongAudience", own, err)
		}
	}
	// Nor can the external audience be named as an expected one.
	if _, err := e.ts.ValidateToken(ctx, tok, aud); !errors.Is(err, ErrWrongAudience) {
		t.Fatalf("ValidateToken(%s) = %v; want ErrWrongAudience", aud, err)
	}

	// A shorter TokenLifetime also bounds external tokens.
	short := newTestEnv(t, func(o *TokenServiceOptions) { o.TokenLifetime = time.Minute })
	_, exp, err = short.ts.IssueExternalToken(ctx, short.sp, "https://hooks.example.com/alerts")
	if err != nil {
		t.Fatal(err)
	}
	if got := exp.Sub(short.clock.Now().Truncate(time.Second)); got != time.Minute {
		t.Fatalf("lifetime %v; want 1m", got)
	}
	// An application ID GUID is an audience too.
	if _, _, err := e.ts.IssueExternalToken(ctx, e.sp, "0d3c6a4e-5b1f-4c1d-9a7e-2f6b8c9d0e1f"); err != nil {
		t.Fatal(err)
	}
	// After the token expires, it stops verifying for the receiver too (exp
	// is in the claims), and Custos refuses it anyway.
	e.clock.Advance(ExternalTokenLifetime + DefaultClockSkew + time.Second)
	if resp, _ := e.whoami("Bearer "+tok, AudienceManagement); resp.StatusCode != 401 {
		t.Fatalf("expired external token: %d", resp.StatusCode)
	}
}

func TestIssueExternalTokenRefuses(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	for _, aud := range []string{
		"", "   ",
		AudienceManagement, AudienceManagement + "/", strings.ToUpper(AudienceIngestion) + "//",
		" " + AudienceQuery + "/ ",
		"not a uri", "relative/path", "alerts-receiver", "https://user:pw@hooks.example.com",
		"https://hooks.example.com/\x00", "api://x\ny", "https://" + strings.Repeat("a", 600) + ".com",
	} {
		if tok, _, err := e.ts.IssueExternalToken(ctx, e.sp, aud); !errors.Is(err, ErrInvalidArgument) || tok != "" {
			t.Errorf("IssueExternalToken(%q) = %q, %v; want ErrInvalidArgument", aud, tok, err)
		}
	}
	bad := e.sp
	bad.TenantID = "not-a-guid"
	if _, _, err := e.ts.IssueExternalToken(ctx, bad, "api://x"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("bad tenant: %v", err)
	}
	bad = e.sp
	bad.AppID = ""
	if _, _, err := e.ts.IssueExternalToken(ctx, bad, "api://x"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("no app ID: %v", err)
	}
}
