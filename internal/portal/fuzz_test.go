package portal

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// FuzzVerifyIDToken feeds arbitrary ID tokens, as an external provider's
// token endpoint could return them, to the portal's verification: it must
// never panic and must accept only a token signed with the provider's key
// for this client, issuer and nonce.
func FuzzVerifyIDToken(f *testing.F) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	pr := newProvider(ExternalProvider{Issuer: "https://idp.test/", ClientID: "portal"})
	pr.keys = &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256"}}}
	pr.keysAt = time.Now().Add(24 * time.Hour) // never refetched: no network in the fuzzer
	pr.keysTried = pr.keysAt
	sign := func(claims map[string]any) string {
		b, _ := json.Marshal(claims)
		s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
		jws, _ := s.Sign(b)
		out, _ := jws.CompactSerialize()
		return out
	}
	good := sign(map[string]any{"iss": "https://idp.test/", "aud": "portal", "sub": "u", "exp": 4102444800, "nonce": "n1"})
	f.Add(good)
	f.Add(sign(map[string]any{"iss": "https://idp.test/", "aud": []string{"x", "portal"}, "sub": "u", "exp": 4102444800, "nonce": "n1"}))
	f.Add(sign(map[string]any{"iss": "https://other/", "aud": "portal", "sub": "u", "exp": 1, "nonce": "n2"}))
	f.Add("eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.")
	f.Add("a.b.c")
	f.Add("")
	ctx := context.Background()
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := pr.verifyIDToken(ctx, raw, "n1", now)
		if err != nil {
			return
		}
		if c.Iss != "https://idp.test/" || c.Nonce != "n1" || c.Sub == "" || c.Exp+60 < now.Unix() {
			t.Fatalf("accepted a token with claims %+v", c)
		}
	})
}
