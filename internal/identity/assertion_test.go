package identity

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"net/url"
	"testing"
	"time"

	"custos/internal/enroll"
)

// assertionFor signs claims with key (alg RS256/PS256/ES256) under header hdr.
func assertionFor(t *testing.T, key crypto.Signer, alg string, hdr, claims map[string]any) string {
	t.Helper()
	hdr["alg"] = alg
	input := b64json(hdr) + "." + b64json(claims)
	sum := sha256.Sum256([]byte(input))
	var sig []byte
	var err error
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if alg == algRS256 {
			sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
		} else {
			sig, err = rsa.SignPSS(rand.Reader, k, crypto.SHA256, sum[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		}
	case *ecdsa.PrivateKey:
		var r, s *big.Int
		r, s, err = ecdsa.Sign(rand.Reader, k, sum[:])
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	}
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64.EncodeToString(sig)
}

func TestClientAssertionRules(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "app"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.ts.AddCertificate(ctx, tenantA, e.sp.AppID, "", der); err != nil {
		t.Fatal(err)
	}
	s1 := sha1.Sum(der)
	s256 := sha256.Sum256(der)
	x5tStd := base64.StdEncoding.EncodeToString(s1[:]) // MSAL's ADFS form
	x5tS256 := base64.RawURLEncoding.EncodeToString(s256[:])
	aud := e.srv.URL + "/" + tenantA + "/oauth2/v2.0/token"
	claims := func(jti string, exp time.Time) map[string]any {
		return map[string]any{"aud": aud, "iss": e.sp.AppID, "sub": e.sp.AppID, "jti": jti, "nbf": now.Unix(), "exp": exp.Unix()}
	}
	post := func(assertion string) (int, string) {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {e.sp.AppID}, "scope": {AudienceManagement + "/.default"},
			"client_assertion_type": {ClientAssertionType}, "client_assertion": {assertion}}
		resp, body := e.postToken(tenantA, form, "")
		codes, _ := body["error_codes"].([]any)
		code := ""
		if len(codes) > 0 {
			code = fmtNum(codes[0])
		}
		return resp.StatusCode, code
	}
	ok := assertionFor(t, key, algPS256, map[string]any{"typ": "JWT", "x5t#S256": x5tS256}, claims("j1", now.Add(10*time.Minute)))
	if st, code := post(ok); st != 200 {
		t.Fatalf("PS256 x5t#S256: %d %s", st, code)
	}
	if st, code := post(ok); st != 401 || code != "700025" {
		t.Fatalf("replayed assertion: %d %s; want 401 700025", st, code)
	}
	rs := assertionFor(t, key, algRS256, map[string]any{"x5t": x5tStd}, claims("j2", now.Add(10*time.Minute)))
	if st, code := post(rs); st != 200 {
		t.Fatalf("RS256 x5t (standard base64): %d %s", st, code)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	for name, tc := range map[string]struct {
		tok  string
		code string
	}{
		"wrong key":        {assertionFor(t, other, algPS256, map[string]any{"x5t#S256": x5tS256}, claims("j3", now.Add(time.Minute))), "7000274"},
		"unknown cert":     {assertionFor(t, key, algPS256, map[string]any{"x5t#S256": "AAAA"}, claims("j4", now.Add(time.Minute))), "700027"},
		"expired":          {assertionFor(t, key, algPS256, map[string]any{"x5t#S256": x5tS256}, claims("j5", now.Add(-10*time.Minute))), "700024"},
		"too long":         {assertionFor(t, key, algPS256, map[string]any{"x5t#S256": x5tS256}, claims("j6", now.Add(3*time.Hour))), "700024"},
		"wrong audience":   {assertionFor(t, key, algPS256, map[string]any{"x5t#S256": x5tS256}, map[string]any{"aud": "https://elsewhere/token", "iss": e.sp.AppID, "sub": e.sp.AppID, "jti": "j7", "exp": now.Add(time.Minute).Unix()}), "700016"},
		"iss mismatch":     {assertionFor(t, key, algPS256, map[string]any{"x5t#S256": x5tS256}, map[string]any{"aud": aud, "iss": tenantA, "sub": e.sp.AppID, "jti": "j8", "exp": now.Add(time.Minute).Unix()}), "700021"},
		"no jti":           {assertionFor(t, key, algPS256, map[string]any{"x5t#S256": x5tS256}, map[string]any{"aud": aud, "iss": e.sp.AppID, "sub": e.sp.AppID, "exp": now.Add(time.Minute).Unix()}), "50027"},
		"alg confusion":    {assertionFor(t, key, algPS256, map[string]any{"x5t#S256": x5tS256, "alg": "HS256"}, claims("j9", now.Add(time.Minute))), "50027"},
		"ES256 on RSA key": {b64json(map[string]any{"alg": "ES256", "x5t#S256": x5tS256}) + "." + b64json(claims("j10", now.Add(time.Minute))) + "." + b64.EncodeToString(make([]byte, 64)), "7000274"},
	} {
		if name == "alg confusion" {
			tc.tok = b64json(map[string]any{"alg": "HS256", "x5t#S256": x5tS256}) + "." + b64json(claims("j9", now.Add(time.Minute))) + ".c2ln"
		}
		if st, code := post(tc.tok); st < 400 || code != tc.code {
			t.Errorf("%s: %d %s; want %s", name, st, code, tc.code)
		}
	}
}

func fmtNum(v any) string {
	f, _ := v.(float64)
	return big.NewInt(int64(f)).String()
}

// TestEnrollAndDisable: enroll over HTTPS against the token service, get a
// token by ES256 assertion, then disable the identity: Authenticate refuses
// its token once the principal cache entry expires, and no new token is
// issued.
func TestEnrollAndDisable(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	tok, hash, err := NewEnrollmentToken(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	e.store.addEnrollToken(tenantA, "/subscriptions/s/resourceGroups/rg", hash, time.Now().Add(time.Hour))
	id, err := enroll.Enroll(ctx, enroll.Options{Endpoint: e.srv.URL, Token: tok, Dir: t.TempDir(), Hostname: "db-1.local", HTTPClient: e.client})
	if err != nil {
		t.Fatalf("enroll: %v", err)
	}
	if id.ID != "/subscriptions/s/resourceGroups/rg/providers/Microsoft.HybridCompute/machines/db-1" {
		t.Fatalf("machine %q", id.ID)
	}
	src := enroll.NewTokenSource(id, e.client, e.clock.Now)
	at, err := src.Token(ctx, enroll.ScopeManagement)
	if err != nil {
		t.Fatalf("token by assertion: %v", err)
	}
	p, err := e.ts.ValidateToken(ctx, at.AccessToken, AudienceManagement)
	if err != nil || p.Kind != KindManagedIdentity || p.ObjectID != id.PrincipalID {
		t.Fatalf("validate: %+v %v", p, err)
	}
	e.store.setDisabled(id.PrincipalID, true)
	e.clock.Advance(DefaultPrincipalCacheTTL + time.Second)
	if _, err := e.ts.ValidateToken(ctx, at.AccessToken, AudienceManagement); err == nil {
		t.Fatal("token of a disabled identity still valid")
	}
	src.Forget()
	if _, err := src.Token(ctx, enroll.ScopeManagement); err == nil {
		t.Fatal("disabled identity got a new token")
	}
	// The enrollment token was consumed; keys other than P-256 and RSA are refused.
	if _, err := enroll.Enroll(ctx, enroll.Options{Endpoint: e.srv.URL, Token: tok, Dir: t.TempDir(), Hostname: "db-2", HTTPClient: e.client}); err == nil {
		t.Fatal("replayed enrollment token accepted")
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, err := enroll.PublicJWK(&ec.PublicKey); err == nil {
		t.Fatal("P-384 key accepted")
	}
}
