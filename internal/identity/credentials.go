package identity

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// DefaultPrincipalCacheTTL bounds how long Authenticate trusts a cached
// answer about whether a token's principal still exists and is enabled: a
// disabled or deleted identity's tokens stop working within this time.
const DefaultPrincipalCacheTTL = 5 * time.Second

// AddCertificate adds an X.509 certificate (DER) as a key credential of an
// application, as Entra's certificate credentials: the application may then
// authenticate with client assertions signed by the certificate's private
// key. The certificate's key must be RSA (2048–4096 bits) or EC P-256; its
// validity period bounds the credential's.
func (s *TokenService) AddCertificate(ctx context.Context, tenantID, appID, displayName string, certDER []byte) (KeyCredential, error) {
	tenantID, appID = strings.ToLower(tenantID), strings.ToLower(appID)
	if !isGUID(tenantID) || !isGUID(appID) {
		return KeyCredential{}, fmt.Errorf("%w: tenant and application IDs must be GUIDs", ErrInvalidArgument)
	}
	if len(certDER) == 0 || len(certDER) > 16<<10 {
		return KeyCredential{}, fmt.Errorf("%w: a certificate of 1 to 16384 bytes is required", ErrInvalidArgument)
	}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return KeyCredential{}, fmt.Errorf("%w: certificate: %v", ErrInvalidArgument, err)
	}
	if _, err := ParsePublicKey(cert.RawSubjectPublicKeyInfo); err != nil {
		return KeyCredential{}, err
	}
	if !s.now().Before(cert.NotAfter) {
		return KeyCredential{}, fmt.Errorf("%w: the certificate expired on %s", ErrInvalidArgument, cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if len(displayName) > 256 {
		return KeyCredential{}, fmt.Errorf("%w: display name longer than 256 characters", ErrInvalidArgument)
	}
	if displayName == "" {
		displayName = "CN=" + cert.Subject.CommonName
	}
	keyID, err := newGUID(s.rand)
	if err != nil {
		return KeyCredential{}, err
	}
	k := KeyCredential{KeyID: keyID, DisplayName: displayName, PublicKey: cert.RawSubjectPublicKeyInfo,
		Certificate: cert.Raw, NotBefore: cert.NotBefore.UTC(), Expires: cert.NotAfter.UTC()}
	if err := s.store.AddKeyCredential(ctx, tenantID, appID, k); err != nil {
		return KeyCredential{}, fmt.Errorf("add certificate: %w", err)
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "certificate credential added", slog.String("tenant_id", tenantID),
		slog.String("app_id", appID), slog.String("key_id", keyID))
	return k, nil
}

// checkAssertion authenticates sp by the client assertion tok. It returns
// nil when a key credential of sp signed a fresh, unreplayed assertion for
// this token endpoint.
func (s *TokenService) checkAssertion(ctx context.Context, r *http.Request, tenant string, sp ServicePrincipal, tok string, now time.Time) (*oauthError, string) {
	invalid := func(code int, desc string, args ...any) *oauthError {
		return &oauthError{status: http.StatusUnauthorized, code: "invalid_client", aadsts: code, desc: fmt.Sprintf(desc, args...)}
	}
	a, err := parseAssertion(tok)
	if err != nil {
		return invalid(50027, "JWT token is invalid or malformed: %s.", sanitize(err.Error())), "malformed assertion"
	}
	if !strings.EqualFold(a.iss, sp.AppID) || !strings.EqualFold(a.sub, sp.AppID) {
		return invalid(700021, "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://docs.microsoft.com/en-us/azure/active-directory/develop/active-directory-certificate-credentials ."), "assertion iss/sub mismatch"
	}
	creds, err := s.store.KeyCredentials(ctx, tenant, sp.AppID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		s.log.LogAttrs(ctx, slog.LevelError, "key credential lookup failed", slog.Any("error", err))
		return &oauthError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable", aadsts: 90033,
			desc: "A transient error has occurred. Please try again."}, ""
	}
	var cred *KeyCredential
	for i := range creds {
		pub, err := ParsePublicKey(creds[i].PublicKey)
		if err != nil {
			continue
		}
		if a.hdr.matches(&creds[i], pub) {
			if !a.verifySignature(pub) {
				return invalid(7000274, "The client assertion's signature is invalid."), "bad assertion signature"
			}
			cred = &creds[i]
			break
		}
	}
	if cred == nil {
		return invalid(700027, "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found.]"), "unknown assertion key"
	}
	if !cred.NotBefore.IsZero() && now.Add(s.skew).Before(cred.NotBefore) {
		return invalid(700027, "The certificate used to sign the client assertion is not yet valid."), "credential not yet valid"
	}
	if !cred.Expires.IsZero() && !now.Before(cred.Expires) {
		return invalid(700027, "The certificate used to sign the client assertion has expired."), "credential expired"
	}
	if !s.assertionAudienceOK(a.aud, tenant) {
		return invalid(700016, "The client assertion's audience claim does not match the token endpoint %s.", s.baseFor(r)+"/"+tenant+"/oauth2/v2.0/token"), "assertion audience"
	}
	exp := time.Unix(a.exp, 0)
	if !now.Before(exp.Add(s.skew)) {
		return invalid(700024, "Client assertion is not within its valid time range. Current time: %s, expiry time of assertion %s.",
			now.UTC().Format(time.RFC3339), exp.UTC().Format(time.RFC3339)), "assertion expired"
	}
	if a.nbf != 0 && now.Add(s.skew).Before(time.Unix(a.nbf, 0)) {
		return invalid(700024, "Client assertion is not within its valid time range: it is not valid before %s.",
			time.Unix(a.nbf, 0).UTC().Format(time.RFC3339)), "assertion not yet valid"
	}
	if exp.Sub(now) > maxAssertionLifetime+s.skew {
		return invalid(700024, "Client assertion's lifetime is too long: it must expire within %s.", maxAssertionLifetime), "assertion lifetime"
	}
	fresh, err := s.replay.claim(tenant+"/"+sp.AppID+"/"+a.jti, exp.Add(s.skew), now)
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelError, "assertion replay cache full; refusing assertions", slog.Any("error", err))
		return &oauthError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable", aadsts: 90033,
			desc: "A transient error has occurred. Please try again."}, ""
	}
	if !fresh {
		return invalid(700025, "The client assertion was already used (its jti was seen before). Sign a new assertion for each request."), "assertion replayed"
	}
	return nil, ""
}

// assertionAudienceOK accepts the token endpoint or the issuer of tenant
// under any of the service's base URLs (compared case-insensitively).
func (s *TokenService) assertionAudienceOK(auds []string, tenant string) bool {
	for _, aud := range auds {
		aud = strings.ToLower(strings.TrimRight(aud, "/"))
		for _, base := range s.issuers {
			if aud == base+"/"+tenant+"/oauth2/v2.0/token" || aud == issuerFor(base, tenant) {
				return true
			}
		}
	}
	return false
}

// principalCache remembers PrincipalState answers briefly. Safe for
// concurrent use.
type principalCache struct {
	mu sync.Mutex // guards m
	m  map[string]principalEntry
}

type principalEntry struct {
	state   PrincipalState
	found   bool
	expires time.Time
}

const maxCachedPrincipals = 65536

func (c *principalCache) init() { c.m = map[string]principalEntry{} }

// principalState returns the state of tenant/objectID through the cache;
// found is false for a principal that does not exist.
func (s *TokenService) principalState(ctx context.Context, tenant, objectID string, now time.Time) (PrincipalState, bool, error) {
	k := tenant + "/" + strings.ToLower(objectID)
	s.pstate.mu.Lock()
	e, ok := s.pstate.m[k]
	s.pstate.mu.Unlock()
	// An entry expiring more than a TTL from now was cached before the
	// clock was stepped back: stale, or it would last the step longer.
	if ok && now.Before(e.expires) && !e.expires.After(now.Add(s.pstateTTL)) {
		return e.state, e.found, nil
	}
	st, err := s.store.PrincipalState(ctx, tenant, objectID)
	if errors.Is(err, ErrNotFound) && s.users.dir != nil {
		// Users live in the directory, not among service principals.
		var u User
		if u, _, err = s.users.dir.DirectoryUser(ctx, tenant, objectID); err == nil {
			st = PrincipalState{Kind: KindUser, Enabled: u.Enabled}
		}
	}
	found := err == nil
	if err != nil && !errors.Is(err, ErrNotFound) {
		return PrincipalState{}, false, fmt.Errorf("look up principal: %w", err)
	}
	if s.pstateTTL > 0 {
		s.pstate.mu.Lock()
		if len(s.pstate.m) >= maxCachedPrincipals {
			s.pstate.m = map[string]principalEntry{}
		}
		s.pstate.m[k] = principalEntry{state: st, found: found, expires: now.Add(s.pstateTTL)}
		s.pstate.mu.Unlock()
	}
	return st, found, nil
}

// ForgetPrincipals drops cached principal states, so that a disabled or
// deleted principal's tokens stop working at once rather than within
// PrincipalCacheTTL.
func (s *TokenService) ForgetPrincipals() {
	s.pstate.mu.Lock()
	s.pstate.m = map[string]principalEntry{}
	s.pstate.mu.Unlock()
	s.ext.cache.mu.Lock()
	s.ext.cache.m = nil
	s.ext.cache.mu.Unlock()
}
