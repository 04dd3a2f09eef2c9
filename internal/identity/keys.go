package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// jwk is the public JSON Web Key of one signing key, as served in JWKS.
type jwk struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

func publicJWK(kid string, pub *ecdsa.PublicKey) ([]byte, error) {
	pt, err := pub.Bytes() // 0x04 || X || Y
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	if len(pt) != 65 {
		return nil, fmt.Errorf("encode public key: unexpected point length %d", len(pt))
	}
	return json.Marshal(jwk{Kty: "EC", Use: "sig", Kid: kid, Alg: algES256, Crv: "P-256",
		X: b64.EncodeToString(pt[1:33]), Y: b64.EncodeToString(pt[33:])})
}

func parseJWK(data []byte) (jwk, *ecdsa.PublicKey, error) {
	var k jwk
	if err := strictJSON(data, &k); err != nil {
		return k, nil, fmt.Errorf("decode JWK: %w", err)
	}
	if k.Kty != "EC" || k.Crv != "P-256" {
		return k, nil, fmt.Errorf("decode JWK: unsupported key type %s/%s", k.Kty, k.Crv)
	}
	x, errX := b64.DecodeString(k.X)
	y, errY := b64.DecodeString(k.Y)
	if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
		return k, nil, fmt.Errorf("decode JWK: bad coordinates")
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	if err != nil {
		return k, nil, fmt.Errorf("decode JWK: %w", err)
	}
	return k, pub, nil
}

// verifyKey is a public key tokens may be verified with.
type verifyKey struct {
	kid          string
	pub          *ecdsa.PublicKey
	jwk          json.RawMessage
	publishUntil time.Time
}

// signer is the key new tokens are signed with.
type signer struct {
	kid       string
	priv      *ecdsa.PrivateKey
	signUntil time.Time
}

// keySet is an immutable snapshot of the signing keys.
type keySet struct {
	signer *signer // nil when no key may sign
	byKID  map[string]*verifyKey
	loaded time.Time
}

// signingKeyAAD binds a sealed private key to its key ID and format version.
func signingKeyAAD(kid string) []byte {
	return []byte("custos/identity/signing-key/v1/" + kid)
}

// loadKeys reads the signing keys from the store, opening the private key of
// those that may still sign, and deletes keys whose last token has expired.
func (s *TokenService) loadKeys(ctx context.Context) (*keySet, error) {
	recs, err := s.store.SigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("read signing keys: %w", err)
	}
	now := s.now()
	ks := &keySet{byKID: map[string]*verifyKey{}, loaded: now}
	var newest time.Time
	for _, rec := range recs {
		if !now.Before(rec.PublishUntil) {
			if err := s.store.DeleteSigningKey(ctx, rec.KID); err != nil {
				s.log.LogAttrs(ctx, slog.LevelWarn, "delete expired signing key", slog.String("kid", rec.KID), slog.Any("error", err))
			}
			continue
		}
		if rec.Algorithm != algES256 {
			s.log.LogAttrs(ctx, slog.LevelWarn, "signing key with unsupported algorithm ignored",
				slog.String("kid", rec.KID), slog.String("alg", rec.Algorithm))
			continue
		}
		_, pub, err := parseJWK(rec.PublicJWK)
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w", rec.KID, err)
		}
		ks.byKID[rec.KID] = &verifyKey{kid: rec.KID, pub: pub, jwk: json.RawMessage(rec.PublicJWK), publishUntil: rec.PublishUntil}
		if !now.Before(rec.SignUntil) || !rec.Created.After(newest) && ks.signer != nil {
			continue
		}
		priv, err := s.openPrivateKey(rec)
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w", rec.KID, err)
		}
		if !priv.PublicKey.Equal(pub) {
			return nil, fmt.Errorf("signing key %s: private key does not match its public key", rec.KID)
		}
		ks.signer = &signer{kid: rec.KID, priv: priv, signUntil: rec.SignUntil}
		newest = rec.Created
	}
	return ks, nil
}

func (s *TokenService) openPrivateKey(rec SigningKey) (*ecdsa.PrivateKey, error) {
	der, err := s.keys.Open(rec.PrivateSealed, signingKeyAAD(rec.KID))
	if err != nil {
		return nil, fmt.Errorf("unseal private key: %w", err)
	}
	defer clear(der)
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok || ek.Curve != elliptic.P256() {
		return nil, fmt.Errorf("private key is not ECDSA P-256")
	}
	return ek, nil
}

// newSigningKey generates, seals and stores a key that signs from now until
// now+RotationInterval.
func (s *TokenService) newSigningKey(ctx context.Context) error {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), s.rand)
	if err != nil {
		return fmt.Errorf("generate signing key: %w", err)
	}
	var id [16]byte
	if _, err := fullRead(s.rand, id[:]); err != nil {
		return fmt.Errorf("generate key ID: %w", err)
	}
	kid := hex.EncodeToString(id[:])
	pubJWK, err := publicJWK(kid, &priv.PublicKey)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("encode signing key: %w", err)
	}
	sealed, err := s.keys.Seal(der, signingKeyAAD(kid))
	clear(der)
	if err != nil {
		return fmt.Errorf("seal signing key: %w", err)
	}
	// Created orders keys: the newest signs. Keep it strictly after every
	// existing key's, at a precision any store keeps (seconds), even when
	// the clock has not moved since the last rotation.
	now := s.now().UTC().Truncate(time.Second)
	if recs, err := s.store.SigningKeys(ctx); err == nil {
		for _, r := range recs {
			if !now.After(r.Created) {
				now = r.Created.UTC().Truncate(time.Second).Add(time.Second)
			}
		}
	}
	signUntil := now.Add(s.rotation)
	rec := SigningKey{
		KID: kid, Algorithm: algES256, PrivateSealed: sealed, PublicJWK: pubJWK, Created: now,
		SignUntil: signUntil, PublishUntil: signUntil.Add(s.lifetime + s.skew),
	}
	if err := s.store.PutSigningKey(ctx, rec); err != nil {
		return fmt.Errorf("store signing key: %w", err)
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "token signing key created", slog.String("kid", kid),
		slog.Time("sign_until", signUntil))
	return nil
}

// currentSigner returns a key that may sign now, creating one when the
// current key's signing period is over.
func (s *TokenService) currentSigner(ctx context.Context) (*signer, error) {
	ks := s.keyset.Load()
	if ks.signer != nil && s.now().Before(ks.signer.signUntil) {
		return ks.signer, nil
	}
	s.rotMu.Lock()
	defer s.rotMu.Unlock()
	ks = s.keyset.Load()
	if ks.signer != nil && s.now().Before(ks.signer.signUntil) {
		return ks.signer, nil
	}
	if err := s.refreshKeysLocked(ctx, true); err != nil {
		return nil, err
	}
	ks = s.keyset.Load()
	if ks.signer == nil {
		return nil, fmt.Errorf("no signing key available")
	}
	return ks.signer, nil
}

// refreshKeysLocked reloads the key set from the store, first creating a new
// signing key when ensureSigner is set and no stored key may sign. s.rotMu
// must be held.
func (s *TokenService) refreshKeysLocked(ctx context.Context, ensureSigner bool) error {
	ks, err := s.loadKeys(ctx)
	if err != nil {
		return err
	}
	if ensureSigner && ks.signer == nil {
		if err := s.newSigningKey(ctx); err != nil {
			return err
		}
		if ks, err = s.loadKeys(ctx); err != nil {
			return err
		}
	}
	s.keyset.Store(ks)
	return nil
}

// Rotate creates a new signing key and signs every later token with it. Old
// keys stay in JWKS and keep validating the tokens they signed until those
// expire. Use it when a key may be compromised only together with deleting
// the old key from the store.
func (s *TokenService) Rotate(ctx context.Context) error {
	s.rotMu.Lock()
	defer s.rotMu.Unlock()
	if err := s.newSigningKey(ctx); err != nil {
		return err
	}
	return s.refreshKeysLocked(ctx, true)
}

// ReloadKeys re-reads the signing keys from the store, so that a key deleted
// there stops validating tokens at once.
func (s *TokenService) ReloadKeys(ctx context.Context) error {
	s.rotMu.Lock()
	defer s.rotMu.Unlock()
	return s.refreshKeysLocked(ctx, false)
}

// lookupKey returns the verification key for kid, reloading the key set from
// the store at most once per keyReloadInterval when kid is unknown (another
// instance may have rotated).
func (s *TokenService) lookupKey(ctx context.Context, kid string) (*verifyKey, error) {
	ks := s.keyset.Load()
	if k, ok := ks.byKID[kid]; ok {
		return k, nil
	}
	if s.now().Sub(ks.loaded) < keyReloadInterval {
		return nil, nil
	}
	s.rotMu.Lock()
	defer s.rotMu.Unlock()
	ks = s.keyset.Load()
	if s.now().Sub(ks.loaded) >= keyReloadInterval {
		if err := s.refreshKeysLocked(ctx, false); err != nil {
			return nil, err
		}
		ks = s.keyset.Load()
	}
	return ks.byKID[kid], nil
}

// keyReloadInterval rate-limits reloads triggered by unknown key IDs.
const keyReloadInterval = 10 * time.Second

// jwks returns the JSON Web Key Set of the keys still published.
func (s *TokenService) jwks() []json.RawMessage {
	ks := s.keyset.Load()
	now := s.now()
	keys := make([]*verifyKey, 0, len(ks.byKID))
	for _, k := range ks.byKID {
		if now.Before(k.publishUntil) {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b *verifyKey) int { return b.publishUntil.Compare(a.publishUntil) })
	out := make([]json.RawMessage, len(keys))
	for i, k := range keys {
		out[i] = k.jwk
	}
	return out
}
