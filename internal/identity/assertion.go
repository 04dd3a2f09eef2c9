package identity

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"time"

	"custos/internal/enroll"
)

// Client assertions (RFC 7523 §2.2, as Microsoft Entra ID accepts them).
//
// A confidential client may authenticate to the token endpoint with
// client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer
// and a client_assertion: a compact JWS signed by the private key of one of
// its key credentials, with
//
//   - header alg RS256 or PS256 (RSA keys, as Entra accepts certificate
//     credentials) or ES256 (EC P-256 keys of enrolled machines);
//   - header x5t (base64 SHA-1 of the certificate; MSAL uses the standard
//     alphabet with padding, others base64url), x5t#S256 (SHA-256 of the
//     certificate) or kid (the RFC 7638 thumbprint of the public key)
//     naming the credential;
//   - claims iss = sub = client_id, aud = the token endpoint (or the
//     issuer), exp, nbf (optional), and jti, which is accepted once: a
//     replay within the assertion's lifetime is refused.

// ClientAssertionType is the only client_assertion_type accepted.
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// Limits of client assertions.
const (
	maxAssertionBytes    = 32 << 10 // an x5c chain makes them large
	maxAssertionLifetime = time.Hour
	maxJTILength         = 256
	maxReplayEntries     = 1 << 17
)

// Assertion signature algorithms.
const (
	algRS256 = "RS256"
	algPS256 = "PS256"
)

type assertionHeader struct {
	Alg     string          `json:"alg"`
	Typ     string          `json:"typ"`
	Kid     string          `json:"kid"`
	X5t     string          `json:"x5t"`
	X5tS256 string          `json:"x5t#S256"`
	X5c     []string        `json:"x5c"`
	Crit    json.RawMessage `json:"crit"`
}

type assertionClaims struct {
	Aud json.RawMessage `json:"aud"`
	Iss string          `json:"iss"`
	Sub string          `json:"sub"`
	Jti string          `json:"jti"`
	Exp json.RawMessage `json:"exp"`
	Nbf json.RawMessage `json:"nbf"`
	Iat json.RawMessage `json:"iat"`
}

// parsedAssertion is a syntactically valid client assertion whose signature
// and claims have not been checked yet.
type parsedAssertion struct {
	hdr          assertionHeader
	signingInput string
	sig          []byte
	aud          []string
	iss, sub     string
	jti          string
	exp, nbf     int64 // Unix seconds; nbf 0 when absent
}

// parseAssertion splits and decodes a client assertion, bounding every size
// and enforcing the algorithm allow-list. It never panics on any input.
func parseAssertion(tok string) (*parsedAssertion, error) {
	if len(tok) == 0 || len(tok) > maxAssertionBytes {
		return nil, fmt.Errorf("assertion length %d out of range", len(tok))
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return nil, errors.New("assertion is not a compact JWS")
	}
	hdrRaw, err := b64.DecodeString(parts[0])
	if err != nil {
		return nil, fmt.Errorf("decode assertion header: %w", err)
	}
	var a parsedAssertion
	if err := strictJSON(hdrRaw, &a.hdr); err != nil {
		return nil, fmt.Errorf("decode assertion header: %w", err)
	}
	switch a.hdr.Alg {
	case algRS256, algPS256, algES256:
	default:
		return nil, fmt.Errorf("assertion algorithm %q not allowed", sanitize(a.hdr.Alg))
	}
	if a.hdr.Typ != "" && !strings.EqualFold(a.hdr.Typ, "JWT") {
		return nil, fmt.Errorf("assertion type %q not allowed", sanitize(a.hdr.Typ))
	}
	if len(a.hdr.Crit) != 0 {
		return nil, errors.New("assertion header has critical extensions")
	}
	if a.hdr.Kid == "" && a.hdr.X5t == "" && a.hdr.X5tS256 == "" {
		return nil, errors.New("assertion header names no key (x5t, x5t#S256 or kid)")
	}
	if len(a.hdr.Kid) > 128 || len(a.hdr.X5t) > 64 || len(a.hdr.X5tS256) > 64 {
		return nil, errors.New("assertion key identifier too long")
	}
	payload, err := b64.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("decode assertion payload: %w", err)
	}
	if a.sig, err = b64.DecodeString(parts[2]); err != nil {
		return nil, fmt.Errorf("decode assertion signature: %w", err)
	}
	if len(a.sig) == 0 || len(a.sig) > enroll.MaxRSABits/8 {
		return nil, fmt.Errorf("assertion signature has %d bytes", len(a.sig))
	}
	var c assertionClaims
	dec := json.NewDecoder(bytes.NewReader(payload))
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("decode assertion claims: %w", err)
	}
	if dec.More() {
		return nil, errors.New("decode assertion claims: trailing data")
	}
	if a.aud, err = audienceList(c.Aud); err != nil {
		return nil, err
	}
	if a.exp, err = numericDate(c.Exp, "exp"); err != nil {
		return nil, err
	}
	if a.exp == 0 {
		return nil, errors.New("assertion has no exp claim")
	}
	if len(c.Nbf) > 0 && string(c.Nbf) != "null" {
		if a.nbf, err = numericDate(c.Nbf, "nbf"); err != nil {
			return nil, err
		}
	}
	if c.Jti == "" || len(c.Jti) > maxJTILength {
		return nil, errors.New("assertion needs a jti claim of 1 to 256 characters")
	}
	if c.Iss == "" || c.Sub == "" {
		return nil, errors.New("assertion needs iss and sub claims")
	}
	a.iss, a.sub, a.jti = c.Iss, c.Sub, c.Jti
	a.signingInput = parts[0] + "." + parts[1]
	return &a, nil
}

// audienceList decodes aud: a string or an array of at most 8 strings.
func audienceList(raw json.RawMessage) ([]string, error) {
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		if one == "" {
			return nil, errors.New("assertion has an empty aud claim")
		}
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil || len(many) == 0 || len(many) > 8 {
		return nil, errors.New("assertion needs an aud claim (a string or a short array of strings)")
	}
	return many, nil
}

// numericDate decodes a JWT NumericDate (a JSON number, possibly
// fractional; a numeric string is tolerated) to Unix seconds.
func numericDate(raw json.RawMessage, name string) (int64, error) {
	s := strings.Trim(strings.TrimSpace(string(raw)), `"`)
	if s == "" {
		return 0, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 1<<40 {
		return 0, fmt.Errorf("assertion %s claim is not a valid date", name)
	}
	return int64(f), nil
}

// verifySignature checks the assertion's signature with pub. The algorithm
// must fit the key: RS256 and PS256 for RSA keys, ES256 for P-256 keys.
func (a *parsedAssertion) verifySignature(pub crypto.PublicKey) bool {
	sum := sha256.Sum256([]byte(a.signingInput))
	switch k := pub.(type) {
	case *rsa.PublicKey:
		switch a.hdr.Alg {
		case algRS256:
			return rsa.VerifyPKCS1v15(k, crypto.SHA256, sum[:], a.sig) == nil
		case algPS256:
			return rsa.VerifyPSS(k, crypto.SHA256, sum[:], a.sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) == nil
		}
	case *ecdsa.PublicKey:
		if a.hdr.Alg != algES256 || k.Curve != elliptic.P256() || len(a.sig) != 64 {
			return false
		}
		r := new(big.Int).SetBytes(a.sig[:32])
		s := new(big.Int).SetBytes(a.sig[32:])
		return ecdsa.Verify(k, sum[:], r, s)
	}
	return false
}

// decodeThumbprint decodes an x5t value in either base64 alphabet, with or
// without padding.
func decodeThumbprint(s string) ([]byte, bool) {
	s = strings.TrimRight(s, "=")
	s = strings.NewReplacer("+", "-", "/", "_").Replace(s)
	b, err := base64.RawURLEncoding.DecodeString(s)
	return b, err == nil
}

// matches reports whether the assertion header names credential k.
func (h *assertionHeader) matches(k *KeyCredential, pub crypto.PublicKey) bool {
	if h.X5t != "" && len(k.Certificate) > 0 {
		if b, ok := decodeThumbprint(h.X5t); ok {
			sum := sha1.Sum(k.Certificate)
			if subtle.ConstantTimeCompare(b, sum[:]) == 1 {
				return true
			}
		}
	}
	if h.X5tS256 != "" && len(k.Certificate) > 0 {
		if b, ok := decodeThumbprint(h.X5tS256); ok {
			sum := sha256.Sum256(k.Certificate)
			if subtle.ConstantTimeCompare(b, sum[:]) == 1 {
				return true
			}
		}
	}
	if h.Kid != "" {
		if tp, err := enroll.Thumbprint(pub); err == nil && h.Kid == tp {
			return true
		}
		if len(k.Certificate) > 0 {
			sum := sha1.Sum(k.Certificate)
			if strings.EqualFold(h.Kid, hex.EncodeToString(sum[:])) {
				return true
			}
		}
	}
	return false
}

// ParsePublicKey decodes a PKIX DER public key and checks that it is an RSA
// key of 2048 to 4096 bits or an EC P-256 key.
func ParsePublicKey(der []byte) (crypto.PublicKey, error) {
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: public key: %v", ErrInvalidArgument, err)
	}
	if _, err := enroll.PublicJWK(pub); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidArgument, err)
	}
	return pub, nil
}

// replayCache remembers the jti of accepted assertions until they expire.
// Safe for concurrent use.
type replayCache struct {
	mu sync.Mutex // guards m
	m  map[string]time.Time
}

func (c *replayCache) init() { c.m = map[string]time.Time{} }

// errReplayCacheFull means the cache holds maxReplayEntries live entries;
// the request is refused rather than risk accepting a replay.
var errReplayCacheFull = errors.New("assertion replay cache full")

// claim records key until expires and reports whether it was new. It fails
// closed when the cache is full of live entries.
func (c *replayCache) claim(key string, expires, now time.Time) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if until, ok := c.m[key]; ok && now.Before(until) {
		return false, nil
	}
	if len(c.m) >= maxReplayEntries {
		for k, until := range c.m {
			if !now.Before(until) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxReplayEntries {
			return false, errReplayCacheFull
		}
	}
	c.m[key] = expires
	return true, nil
}
