package identity

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Authenticate validates the bearer token of r for audience (one of the
// Audience* constants; a trailing slash is tolerated) and returns the caller.
// It checks the signature by key ID against the service's keys (ES256 only),
// iss, tid (the tenant must exist), aud, exp and nbf (with ClockSkew). Every
// error is an *AuthError: AuthenticationFailed when the header is missing or
// malformed, InvalidAuthenticationToken for an invalid, expired or forged
// token, InvalidAuthenticationTokenAudience and
// InvalidAuthenticationTokenTenant for the wrong audience or tenant. Send
// Challenge(r, err) in WWW-Authenticate with the 401.
//
// Validated tokens are cached (keyed by their SHA-256) until they expire, so
// a token already seen costs a hash and a map lookup. The principal must
// still exist and be enabled; that answer is cached for PrincipalCacheTTL,
// which bounds how long a disabled or deleted identity's tokens still work.
func (s *TokenService) Authenticate(r *http.Request, audience string) (Principal, error) {
	vals := r.Header.Values("Authorization")
	if len(vals) == 0 || (len(vals) == 1 && strings.TrimSpace(vals[0]) == "") {
		return Principal{}, errMissing()
	}
	if len(vals) > 1 {
		return Principal{}, errMalformed()
	}
	tok, ok := bearerToken(vals[0])
	if !ok {
		return Principal{}, errMalformed()
	}
	return s.ValidateToken(r.Context(), tok, audience)
}

// bearerToken extracts the token of a "Bearer <token>" header value.
func bearerToken(h string) (string, bool) {
	const prefix = "bearer "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	tok := strings.TrimSpace(h[len(prefix):])
	if tok == "" || strings.ContainsAny(tok, " \t,") {
		return "", false
	}
	return tok, true
}

// ValidateToken is Authenticate for a token taken from elsewhere than the
// Authorization header (for example a secure webhook payload).
func (s *TokenService) ValidateToken(ctx context.Context, tok, audience string) (Principal, error) {
	want, ok := canonicalAudience(audience)
	if !ok {
		// A programming error in the caller; still fail closed.
		return Principal{}, errInvalid(ErrWrongAudience, "unknown expected audience %q", audience)
	}
	if len(tok) > maxTokenBytes {
		return Principal{}, errInvalid(ErrInvalidToken, "token of %d bytes", len(tok))
	}
	now := s.now()
	key := sha256.Sum256([]byte(tok))
	ent, hit := s.tokens.get(key)
	if hit && !ent.external {
		// The key that signed it must still be known (a deleted key revokes).
		if _, ok := s.keyset.Load().byKID[ent.kid]; !ok {
			s.tokens.drop(key)
			hit = false
		}
	}
	if !hit {
		var aerr *AuthError
		if ext := s.externalFor(tok); ext != nil {
			ent, aerr = s.verifyExternal(ctx, ext, tok, now)
		} else {
			ent, aerr = s.verify(ctx, tok, now)
		}
		if aerr != nil {
			return Principal{}, aerr
		}
		s.tokens.put(key, ent, now)
	}
	if aerr := s.checkTimes(ent, now); aerr != nil {
		return Principal{}, aerr
	}
	if ent.external {
		// An external issuer's token (its own audience checked) is accepted
		// on every API.
	} else if ent.p.Audience != want {
		return Principal{}, authFailed(ErrWrongAudience, "InvalidAuthenticationTokenAudience",
			fmt.Sprintf("The access token has been obtained for wrong audience or resource '%s'. It should exactly match with one of the allowed audiences '%s','%s/'.",
				ent.p.Audience, want, want),
			"The access token has been obtained for wrong audience or resource.", nil)
	}
	exists, err := s.tenantExists(ctx, ent.p.TenantID)
	if err != nil {
		return Principal{}, errUnavailable(err)
	}
	if !exists {
		return Principal{}, authFailed(ErrWrongTenant, "InvalidAuthenticationTokenTenant",
			fmt.Sprintf("The access token is from the wrong issuer '%s'. The tenant '%s' does not exist on this server.", ent.iss, ent.p.TenantID),
			"The access token is from the wrong issuer.", nil)
	}
	p := ent.p
	bound := false
	if ent.external {
		if p, bound, err = s.resolveExternal(ctx, ent, now); err != nil {
			return Principal{}, errUnavailable(err)
		}
	}
	st, found := PrincipalState{Enabled: true}, true
	if !ent.external || bound {
		st, found, err = s.principalState(ctx, p.TenantID, p.ObjectID, now)
		if err != nil {
			return Principal{}, errUnavailable(err)
		}
	}
	if !found || !st.Enabled {
		return Principal{}, authFailed(ErrPrincipalDisabled, "InvalidAuthenticationToken",
			"The access token's principal has been deleted or disabled.",
			"The access token's principal has been deleted or disabled.", nil)
	}
	if ent.external {
		p.Audience = want
	}
	p.GroupIDs = append([]string(nil), p.GroupIDs...) // callers may not alias cached state
	return p, nil
}

// checkTimes checks ent's exp, nbf and iat against now, allowing the clock
// skew. A token the service issued itself before its wall clock was stepped
// backwards (its nbf or iat more than the skew in the service's new future)
// is judged instead against the time the service would read had its clock
// not been stepped (steppedBackNow: its latest issue plus the monotonic time
// since), so it stays valid for the rest of its lifetime and no longer.
// Only tokens signed with the service's own keys get this: their iat is the
// service's clock at their issue, never in its real future; a token from a
// service whose clock runs ahead, or from an external issuer, gets none.
// See docs/security.md.
func (s *TokenService) checkTimes(ent *tokenEntry, now time.Time) *AuthError {
	if !ent.external && (now.Add(s.skew).Before(ent.nbf) || now.Add(s.skew).Before(ent.iat)) {
		if est, back := s.steppedBackNow(now); back {
			now = est
		}
	}
	if !now.Before(ent.exp.Add(s.skew)) {
		return authFailed(ErrTokenExpired, "InvalidAuthenticationToken",
			fmt.Sprintf("The access token expiry UTC time '%s' is earlier than current UTC time '%s'.",
				ent.exp.UTC().Format("1/2/2006 3:04:05 PM"), now.UTC().Format("1/2/2006 3:04:05 PM")),
			"The access token expiry UTC time is earlier than current UTC time.", nil)
	}
	if now.Add(s.skew).Before(ent.nbf) {
		return authFailed(ErrTokenNotYetValid, "InvalidAuthenticationToken",
			fmt.Sprintf("The access token is not yet valid: its 'not before' UTC time is '%s'.", ent.nbf.UTC().Format(time.RFC3339)),
			"The access token is not yet valid.", nil)
	}
	if now.Add(s.skew).Before(ent.iat) {
		return errInvalid(ErrTokenNotYetValid, "token issued in the future")
	}
	return nil
}

// verify does the full, uncached validation of a token: structure,
// algorithm, key, signature, and claims that do not depend on the request.
func (s *TokenService) verify(ctx context.Context, tok string, now time.Time) (*tokenEntry, *AuthError) {
	j, err := parseJWT(tok)
	if err != nil {
		return nil, errInvalid(ErrInvalidToken, "%v", err)
	}
	vk, err := s.lookupKey(ctx, j.header.Kid)
	if err != nil {
		return nil, errUnavailable(err)
	}
	if vk == nil || !now.Before(vk.publishUntil) {
		return nil, authFailed(ErrBadSignature, "InvalidAuthenticationToken",
			"The access token has an invalid signature.", "The access token has an invalid signature.",
			fmt.Errorf("unknown signing key %q", j.header.Kid))
	}
	if !j.verify(vk.pub) {
		return nil, authFailed(ErrBadSignature, "InvalidAuthenticationToken",
			"The access token has an invalid signature.", "The access token has an invalid signature.", nil)
	}
	c, err := j.claims()
	if err != nil {
		return nil, errInvalid(ErrInvalidToken, "%v", err)
	}
	if c.Version != "2.0" {
		return nil, errInvalid(ErrInvalidToken, "token version %q", c.Version)
	}
	if !isGUID(c.TenantID) || c.TenantID != strings.ToLower(c.TenantID) {
		return nil, errInvalid(ErrInvalidToken, "token tid is not a lower-case GUID")
	}
	if c.ObjectID == "" || c.Subject == "" || c.Expires == 0 || c.IssuedAt == 0 {
		return nil, errInvalid(ErrInvalidToken, "token lacks oid, sub, exp or iat")
	}
	if !s.knownIssuer(c.Issuer, c.TenantID) {
		if s.knownIssuerAnyTenant(c.Issuer) {
			return nil, authFailed(ErrWrongTenant, "InvalidAuthenticationTokenTenant",
				fmt.Sprintf("The access token is from the wrong issuer '%s'. It must match the tenant of the token.", c.Issuer),
				"The access token is from the wrong issuer.", nil)
		}
		return nil, errInvalid(ErrInvalidToken, "unknown issuer %q", c.Issuer)
	}
	aud, ok := canonicalAudience(c.Audience)
	if !ok {
		return nil, authFailed(ErrWrongAudience, "InvalidAuthenticationTokenAudience",
			fmt.Sprintf("The access token has been obtained for wrong audience or resource '%s'.", c.Audience),
			"The access token has been obtained for wrong audience or resource.", nil)
	}
	kind := KindServicePrincipal
	switch {
	case c.ManagedIDRes != "":
		kind = KindManagedIdentity
	case c.IDType == "user":
		kind = KindUser
	}
	appID := c.AppID
	if appID == "" {
		appID = c.AuthorizedApp
	}
	nbf := c.NotBefore
	if nbf == 0 {
		nbf = c.IssuedAt
	}
	return &tokenEntry{
		kid: vk.kid, iss: c.Issuer,
		exp: time.Unix(c.Expires, 0), nbf: time.Unix(nbf, 0), iat: time.Unix(c.IssuedAt, 0),
		p: Principal{TenantID: c.TenantID, ObjectID: c.ObjectID, AppID: appID, Kind: kind,
			Name: c.AppDisplayName, Audience: aud, TokenID: c.TokenID, GroupIDs: c.Groups},
	}, nil
}

// knownIssuer reports whether iss is one of the service's issuers for tenant.
func (s *TokenService) knownIssuer(iss, tenant string) bool {
	for _, base := range s.issuers {
		if iss == issuerFor(base, tenant) {
			return true
		}
	}
	return false
}

// knownIssuerAnyTenant reports whether iss has the form of one of the
// service's issuers for some tenant.
func (s *TokenService) knownIssuerAnyTenant(iss string) bool {
	for _, base := range s.issuers {
		if rest, ok := strings.CutPrefix(iss, base+"/"); ok && strings.HasSuffix(rest, "/v2.0") {
			return true
		}
	}
	return false
}

// Challenge returns the WWW-Authenticate value to send with a 401 for err
// (an error from Authenticate), in ARM's form, e.g.
//
//	Bearer authorization_uri="https://localhost:8443", error="invalid_token", error_description="..."
//
// authorization_uri is the token service's base URL as the client reached it
// (ARM sends its authority host, https://login.windows.net/).
func (s *TokenService) Challenge(r *http.Request, err error) string {
	desc := "The access token is invalid."
	if ae, ok := err.(*AuthError); ok && ae.Description != "" {
		desc = ae.Description
	}
	uri := s.baseFor(r)
	return fmt.Sprintf(`Bearer authorization_uri="%s", error="invalid_token", error_description="%s"`,
		uri, strings.ReplaceAll(desc, `"`, "'"))
}

// tokenEntry is a validated token's request-independent facts.
type tokenEntry struct {
	kid        string
	iss        string
	exp, nbf   time.Time
	iat        time.Time // zero for external issuers' tokens
	p          Principal
	external   bool     // signed by a trusted external issuer
	extSubject string   // external: the subject claim
	extGroups  []string // external: the groups claim as sent
}

// maxCachedTokens bounds the validated-token cache.
const maxCachedTokens = 65536

// tokenCache maps SHA-256(token) to its validated facts until expiry. Safe
// for concurrent use.
type tokenCache struct {
	mu sync.RWMutex // guards m
	m  map[[32]byte]*tokenEntry
}

func (c *tokenCache) init() { c.m = make(map[[32]byte]*tokenEntry) }

func (c *tokenCache) get(k [32]byte) (*tokenEntry, bool) {
	c.mu.RLock()
	e, ok := c.m[k]
	c.mu.RUnlock()
	return e, ok
}

func (c *tokenCache) drop(k [32]byte) {
	c.mu.Lock()
	delete(c.m, k)
	c.mu.Unlock()
}

func (c *tokenCache) put(k [32]byte, e *tokenEntry, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCachedTokens {
		for key, old := range c.m {
			if now.After(old.exp) {
				delete(c.m, key)
			}
		}
		// Still more than half full of live tokens: drop arbitrary ones (map
		// order) down to half; they are re-verified when seen again.
		for key := range c.m {
			if len(c.m) <= maxCachedTokens/2 {
				break
			}
			delete(c.m, key)
		}
	}
	c.m[k] = e
}

// tenantCache remembers tenant existence briefly, so Authenticate does not
// query the catalog per request.
type tenantCache struct {
	mu sync.Mutex // guards m
	m  map[string]tenantEntry
}

type tenantEntry struct {
	exists  bool
	expires time.Time
}

const (
	tenantPositiveTTL = 30 * time.Second
	tenantNegativeTTL = 5 * time.Second
	maxCachedTenants  = 1024
)

func (c *tenantCache) init() { c.m = map[string]tenantEntry{} }

func (c *tenantCache) get(id string, now time.Time) (exists, hit bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	// An entry expiring more than its TTL from now was cached before the
	// clock was stepped back: stale.
	if !ok || !now.Before(e.expires) || e.expires.After(now.Add(tenantPositiveTTL)) {
		return false, false
	}
	return e.exists, true
}

func (c *tenantCache) put(id string, exists bool, now time.Time) {
	ttl := tenantNegativeTTL
	if exists {
		ttl = tenantPositiveTTL
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCachedTenants {
		c.m = map[string]tenantEntry{}
	}
	c.m[id] = tenantEntry{exists: exists, expires: now.Add(ttl)}
}

// ForgetTenants drops cached tenant lookups, so a deleted tenant's tokens
// stop working at once. Call it after deleting a tenant.
func (s *TokenService) ForgetTenants() {
	s.tenantC.mu.Lock()
	s.tenantC.m = map[string]tenantEntry{}
	s.tenantC.mu.Unlock()
}
