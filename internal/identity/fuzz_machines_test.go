package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"

	"custos/internal/enroll"
)

// FuzzParseEnrollRequest: the enrollment decoder never panics, and what it
// accepts is well-formed.
func FuzzParseEnrollRequest(f *testing.F) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwk, _ := enroll.PublicJWK(&k.PublicKey)
	good, _ := json.Marshal(enroll.Request{EnrollmentToken: enroll.TokenPrefix + strings.Repeat("A", 43), Hostname: "web-1.example",
		OSType: "Linux", PublicKey: jwk})
	f.Add("application/json", string(good))
	f.Add("application/json; charset=utf-8", `{"enrollmentToken":"cet1.x","publicKey":{"kty":"RSA","n":"AQAB","e":"AQAB"}}`)
	f.Add("application/json", `{"enrollmentToken":"`+enroll.TokenPrefix+strings.Repeat("_", 43)+`","name":"a..","publicKey":{"kty":"EC","crv":"P-256","x":"","y":""}}`)
	f.Add("text/plain", "{}")
	f.Add("application/json", `{"unknown":1}`)
	f.Fuzz(func(t *testing.T, ct, body string) {
		req, pub, eerr := parseEnrollRequest(ct, []byte(body))
		if eerr != nil {
			if eerr.status < 400 || eerr.status > 499 || eerr.code == "" {
				t.Fatalf("bad error %+v", eerr)
			}
			return
		}
		if pub == nil || !ValidMachineName(req.Name) || !strings.HasPrefix(req.EnrollmentToken, enroll.TokenPrefix) {
			t.Fatalf("accepted a bad request %+v", req)
		}
		if _, err := enroll.Thumbprint(pub); err != nil {
			t.Fatalf("accepted key has no thumbprint: %v", err)
		}
	})
}

// FuzzParseAssertion: the client assertion parser never panics, bounds what
// it accepts, and a parsed assertion never verifies against an unrelated key.
func FuzzParseAssertion(f *testing.F) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f.Add(b64json(map[string]any{"alg": "PS256", "typ": "JWT", "x5t#S256": "abc="}) + "." +
		b64json(map[string]any{"aud": "https://h/t/oauth2/v2.0/token", "iss": "c", "sub": "c", "jti": "j", "exp": 1e9, "nbf": 1}) + ".c2ln")
	f.Add(b64json(map[string]any{"alg": "ES256", "kid": "k"}) + "." + b64json(map[string]any{"aud": []string{"a"}, "exp": "12", "jti": "x", "iss": "i", "sub": "s"}) + ".AA")
	f.Add(b64json(map[string]any{"alg": "none"}) + ".e30.")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		a, err := parseAssertion(tok)
		if err != nil {
			return
		}
		if a.jti == "" || len(a.jti) > maxJTILength || a.exp == 0 || len(a.aud) == 0 || a.iss == "" || a.sub == "" {
			t.Fatalf("accepted incomplete assertion %+v", a)
		}
		switch a.hdr.Alg {
		case algRS256, algPS256, algES256:
		default:
			t.Fatalf("accepted algorithm %q", a.hdr.Alg)
		}
		if a.verifySignature(&k.PublicKey) {
			t.Fatalf("fuzzed assertion verified against a fresh key")
		}
	})
}
