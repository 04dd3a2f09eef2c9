package identity

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Sealer seals small secrets for storage and opens them again, binding each
// ciphertext to aad. *crypt.PlatformKey implements it.
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(ciphertext, aad []byte) ([]byte, error)
}

// TenantDirectory says which tenants exist. The catalog implements it;
// StaticTenants is a fixed list. Implementations are safe for concurrent use.
type TenantDirectory interface {
	TenantExists(ctx context.Context, tenantID string) (bool, error)
}

// StaticTenants is a TenantDirectory holding a fixed list of tenant IDs
// (compared case-insensitively).
type StaticTenants []string

// TenantExists reports whether tenantID is in the list.
func (t StaticTenants) TenantExists(_ context.Context, tenantID string) (bool, error) {
	for _, id := range t {
		if strings.EqualFold(id, tenantID) {
			return true, nil
		}
	}
	return false, nil
}

// Defaults of TokenServiceOptions.
const (
	DefaultTokenLifetime    = time.Hour
	DefaultRotationInterval = 24 * time.Hour
	DefaultSecretLifetime   = 2 * 365 * 24 * time.Hour
	DefaultClockSkew        = 2 * time.Minute
)

// TokenServiceOptions configures a TokenService. Zero fields take the
// documented defaults.
type TokenServiceOptions struct {
	// Store persists service principals and signing keys. Required.
	Store Store
	// Keys seals the private signing keys at rest. Required;
	// *crypt.PlatformKey implements it.
	Keys Sealer
	// Issuer is the base URL of this server as clients reach it, e.g.
	// "https://localhost:8443" (https, no path). Required. Tokens carry
	// iss = Issuer + "/{tenant}/v2.0".
	Issuer string
	// IssuerAliases are further base URLs clients may use to reach the
	// token service (other host names of the same server). Discovery answers
	// with the base URL the client used when it is one of them, because MSAL
	// requires the issuer's host to be the authority's host.
	IssuerAliases []string
	// Tenants says which tenants exist. Nil means Store, if it implements
	// TenantDirectory; otherwise NewTokenService fails.
	Tenants TenantDirectory
	// TokenLifetime is the lifetime of access tokens (default 1 h).
	TokenLifetime time.Duration
	// RotationInterval is how long one signing key signs new tokens (default
	// 24 h). A key stays published for TokenLifetime+ClockSkew after that.
	RotationInterval time.Duration
	// SecretLifetime is the validity of new client secrets (default 2 years).
	SecretLifetime time.Duration
	// ClockSkew is the tolerance for exp and nbf (default 2 min).
	ClockSkew time.Duration
	// PrincipalCacheTTL bounds how long Authenticate reuses an answer about
	// whether a token's principal still exists and is enabled (default
	// DefaultPrincipalCacheTTL; negative disables the cache).
	PrincipalCacheTTL time.Duration
	// RateLimit bounds failed client authentications.
	RateLimit RateLimit
	// Logger receives security events (never tokens or secrets). Nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand is the randomness source; nil means crypto/rand.Reader.
	Rand io.Reader

	// PublicClients are public clients (no secret) that users sign in
	// through, in addition to the built-in ones: "custos-cli" (device code,
	// password and refresh grants) and "custos-portal" (authorization code
	// with PKCE, redirect https://{each issuer host}/portal/callback).
	PublicClients []PublicClient
	// RefreshTokenLifetime is the lifetime of a refresh token (default
	// DefaultRefreshTokenLifetime); each use rotates it.
	RefreshTokenLifetime time.Duration
	// Lockout bounds failed local sign-ins per user.
	Lockout Lockout
	// SignInFailed, when set, is called for every failed user sign-in
	// (wrong password or code, locked or disabled user) with what the
	// activity log records. It never receives a password or code.
	SignInFailed func(ctx context.Context, f SignInFailure)
	// ExternalIssuers are trusted external OIDC issuers whose tokens
	// every API accepts (see ExternalIssuer).
	ExternalIssuers []ExternalIssuer
	// HTTPClient fetches external issuers' discovery documents and JWKS.
	// Nil means a client with TLS 1.2+ and the system roots, 10 s timeout.
	HTTPClient *http.Client
}

// TokenService issues and validates Custos access tokens. It is safe for
// concurrent use.
type TokenService struct {
	store    Store
	keys     Sealer
	tenants  TenantDirectory
	issuers  []string // lower-cased base URLs; issuers[0] is the canonical one
	lifetime time.Duration
	rotation time.Duration
	secretLT time.Duration
	skew     time.Duration
	log      *slog.Logger
	now      func() time.Time
	mono     func() time.Duration // the monotonic clock (monoClock)
	rand     io.Reader

	issued atomic.Pointer[issueMark] // the latest issue (clockstep.go)

	clientLimit *failureLimiter
	addrLimit   *failureLimiter

	rotMu  sync.Mutex // serializes key loading and rotation
	keyset atomic.Pointer[keySet]

	tokens  tokenCache
	tenantC tenantCache

	replay    replayCache    // jti of accepted client assertions
	pstate    principalCache // principal existence and state
	pstateTTL time.Duration

	users users     // local users, public clients and interactive flows
	ext   externals // trusted external issuers
}

// NewTokenService validates opts, loads the signing keys (creating the first
// one when there is none) and returns the service.
func NewTokenService(opts TokenServiceOptions) (*TokenService, error) {
	if opts.Store == nil {
		return nil, fmt.Errorf("%w: token service needs a Store", ErrInvalidArgument)
	}
	if opts.Keys == nil {
		return nil, fmt.Errorf("%w: token service needs Keys to seal signing keys", ErrInvalidArgument)
	}
	s := &TokenService{
		store: opts.Store, keys: opts.Keys, tenants: opts.Tenants,
		lifetime: opts.TokenLifetime, rotation: opts.RotationInterval, secretLT: opts.SecretLifetime,
		skew: opts.ClockSkew, log: opts.Logger, now: opts.Now, rand: opts.Rand,
		pstateTTL: opts.PrincipalCacheTTL,
	}
	switch {
	case s.pstateTTL == 0:
		s.pstateTTL = DefaultPrincipalCacheTTL
	case s.pstateTTL < 0:
		s.pstateTTL = 0
	}
	if s.tenants == nil {
		td, ok := opts.Store.(TenantDirectory)
		if !ok {
			return nil, fmt.Errorf("%w: token service needs Tenants (the Store does not implement TenantDirectory)", ErrInvalidArgument)
		}
		s.tenants = td
	}
	for i, base := range append([]string{opts.Issuer}, opts.IssuerAliases...) {
		b, err := normalizeBaseURL(base)
		if err != nil {
			if i == 0 {
				return nil, fmt.Errorf("%w: Issuer: %v", ErrInvalidArgument, err)
			}
			return nil, fmt.Errorf("%w: IssuerAliases: %v", ErrInvalidArgument, err)
		}
		s.issuers = append(s.issuers, b)
	}
	if s.lifetime <= 0 {
		s.lifetime = DefaultTokenLifetime
	}
	if s.rotation <= 0 {
		s.rotation = DefaultRotationInterval
	}
	if s.secretLT <= 0 {
		s.secretLT = DefaultSecretLifetime
	}
	if s.skew <= 0 {
		s.skew = DefaultClockSkew
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.mono = monoClock()
	if s.rand == nil {
		s.rand = rand.Reader
	}
	rl := opts.RateLimit.withDefaults()
	s.clientLimit = newFailureLimiter(rl.PerClientBurst, rl.PerClientRefill, rl.MaxEntries)
	s.addrLimit = newFailureLimiter(rl.PerAddressBurst, rl.PerAddressRefill, rl.MaxEntries)
	s.tokens.init()
	s.tenantC.init()
	s.replay.init()
	s.pstate.init()

	if err := s.initUsers(opts); err != nil {
		return nil, err
	}
	if err := s.loadSignIns(context.Background()); err != nil {
		return nil, err
	}
	if err := s.initExternal(opts); err != nil {
		return nil, err
	}

	ctx := context.Background()
	s.rotMu.Lock()
	err := s.refreshKeysLocked(ctx, true)
	s.rotMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("token service: %w", err)
	}
	return s, nil
}

// normalizeBaseURL checks that base is an https URL with a host and no path,
// query or fragment, and returns it lower-cased without a trailing slash.
func normalizeBaseURL(base string) (string, error) {
	u, err := url.Parse(strings.TrimSuffix(base, "/"))
	if err != nil {
		return "", fmt.Errorf("parse %q: %v", base, err)
	}
	if u.Scheme != "https" || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%q must be an https base URL such as https://localhost:8443", base)
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

// issuerFor returns the iss value for tenant under base.
func issuerFor(base, tenant string) string { return base + "/" + tenant + "/v2.0" }

// Issuer returns the canonical issuer of tokens for tenantID.
func (s *TokenService) Issuer(tenantID string) string {
	return issuerFor(s.issuers[0], strings.ToLower(tenantID))
}

// tenantExists checks the tenant directory through a short-lived cache.
func (s *TokenService) tenantExists(ctx context.Context, tenantID string) (bool, error) {
	now := s.now()
	if ok, hit := s.tenantC.get(tenantID, now); hit {
		return ok, nil
	}
	ok, err := s.tenants.TenantExists(ctx, tenantID)
	if err != nil {
		return false, fmt.Errorf("look up tenant: %w", err)
	}
	s.tenantC.put(tenantID, ok, now)
	return ok, nil
}

// CreateServicePrincipal creates an application identity in tenantID with
// one client secret, and returns it with the secret's text. The secret is not
// stored and cannot be recovered; show it once.
func (s *TokenService) CreateServicePrincipal(ctx context.Context, tenantID, displayName string) (ServicePrincipal, string, error) {
	tenantID = strings.ToLower(tenantID)
	displayName = strings.TrimSpace(displayName)
	if displayName == "" || len(displayName) > 256 {
		return ServicePrincipal{}, "", fmt.Errorf("%w: display name must have 1 to 256 characters", ErrInvalidArgument)
	}
	if !isGUID(tenantID) {
		return ServicePrincipal{}, "", fmt.Errorf("%w: tenant ID %q is not a GUID", ErrInvalidArgument, tenantID)
	}
	ok, err := s.tenants.TenantExists(ctx, tenantID)
	if err != nil {
		return ServicePrincipal{}, "", fmt.Errorf("create service principal: %w", err)
	}
	if !ok {
		return ServicePrincipal{}, "", fmt.Errorf("create service principal: %w %s", ErrUnknownTenant, tenantID)
	}
	objectID, err := newGUID(s.rand)
	if err != nil {
		return ServicePrincipal{}, "", err
	}
	appID, err := newGUID(s.rand)
	if err != nil {
		return ServicePrincipal{}, "", err
	}
	cs, secret, err := s.newClientSecret()
	if err != nil {
		return ServicePrincipal{}, "", err
	}
	sp := ServicePrincipal{TenantID: tenantID, ObjectID: objectID, AppID: appID, DisplayName: displayName,
		Secrets: []ClientSecret{cs}}
	if err := s.store.CreateServicePrincipal(ctx, sp); err != nil {
		return ServicePrincipal{}, "", fmt.Errorf("create service principal: %w", err)
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "service principal created", slog.String("tenant_id", tenantID),
		slog.String("app_id", appID), slog.String("object_id", objectID))
	return sp, secret, nil
}

// AddClientSecret adds a new client secret to an existing service principal
// and returns it with the secret's text (shown once).
func (s *TokenService) AddClientSecret(ctx context.Context, tenantID, appID string) (ClientSecret, string, error) {
	tenantID, appID = strings.ToLower(tenantID), strings.ToLower(appID)
	if !isGUID(tenantID) || !isGUID(appID) {
		return ClientSecret{}, "", fmt.Errorf("%w: tenant and application IDs must be GUIDs", ErrInvalidArgument)
	}
	cs, secret, err := s.newClientSecret()
	if err != nil {
		return ClientSecret{}, "", err
	}
	if err := s.store.AddClientSecret(ctx, tenantID, appID, cs); err != nil {
		return ClientSecret{}, "", fmt.Errorf("add client secret: %w", err)
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "client secret added", slog.String("tenant_id", tenantID),
		slog.String("app_id", appID), slog.String("key_id", cs.KeyID))
	return cs, secret, nil
}

func (s *TokenService) newClientSecret() (ClientSecret, string, error) {
	secret, err := generateSecret(s.rand)
	if err != nil {
		return ClientSecret{}, "", err
	}
	keyID, err := newGUID(s.rand)
	if err != nil {
		return ClientSecret{}, "", err
	}
	return ClientSecret{KeyID: keyID, Hint: secret[:3], Hash: hashSecret(secret),
		Expires: s.now().Add(s.secretLT).UTC()}, secret, nil
}

// IssueToken signs an access token for sp with the given audience (one of
// the Audience* constants, trailing slash tolerated). It is what the token
// endpoint does after authenticating the client, exported for Custos's own
// callers (alert rules acting as their identity, secure webhooks).
func (s *TokenService) IssueToken(ctx context.Context, sp ServicePrincipal, audience string) (string, time.Time, error) {
	aud, ok := canonicalAudience(audience)
	if !ok {
		return "", time.Time{}, fmt.Errorf("%w: unknown audience %q", ErrInvalidArgument, audience)
	}
	if !isGUID(sp.TenantID) || sp.ObjectID == "" || sp.AppID == "" {
		return "", time.Time{}, fmt.Errorf("%w: service principal needs a tenant GUID, object ID and app ID", ErrInvalidArgument)
	}
	return s.issue(ctx, s.issuers[0], sp, aud, acrSecret, s.lifetime)
}

// ExternalTokenLifetime bounds the lifetime of tokens from
// IssueExternalToken: they are sent to a third party once, right away.
const ExternalTokenLifetime = 5 * time.Minute

// maxExternalAudience bounds an external audience's length.
const maxExternalAudience = 512

// IssueExternalToken signs a token for sp whose aud is an audience outside
// Custos: a secure webhook's identifierUri (an absolute URI such as
// "api://alerts-receiver" or "https://hooks.example.com", or an application
// ID GUID). It is signed by the current rotating key, so receivers verify it
// with the JWKS at {issuer}/{tenant}/discovery/v2.0/keys, and it lives
// ExternalTokenLifetime (or TokenLifetime if shorter). Custos's own APIs
// never accept it: Authenticate and ValidateToken accept only the Audience*
// values, and IssueExternalToken refuses them (in any case, with or without
// a trailing slash) so that a receiver can never call Custos with it.
func (s *TokenService) IssueExternalToken(ctx context.Context, sp ServicePrincipal, audience string) (string, time.Time, error) {
	aud, err := externalAudience(audience)
	if err != nil {
		return "", time.Time{}, err
	}
	if !isGUID(sp.TenantID) || sp.ObjectID == "" || sp.AppID == "" {
		return "", time.Time{}, fmt.Errorf("%w: service principal needs a tenant GUID, object ID and app ID", ErrInvalidArgument)
	}
	lt := min(ExternalTokenLifetime, s.lifetime)
	tok, exp, err := s.issue(ctx, s.issuers[0], sp, aud, acrSecret, lt)
	if err != nil {
		return "", time.Time{}, err
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "issued external token",
		slog.String("tenant", sp.TenantID), slog.String("appId", sp.AppID), slog.String("audience", aud))
	return tok, exp, nil
}

// externalAudience validates an audience for IssueExternalToken and returns
// it without surrounding spaces.
func externalAudience(a string) (string, error) {
	a = strings.TrimSpace(a)
	switch {
	case a == "":
		return "", fmt.Errorf("%w: an external token needs an audience", ErrInvalidArgument)
	case len(a) > maxExternalAudience:
		return "", fmt.Errorf("%w: audience of %d bytes (at most %d)", ErrInvalidArgument, len(a), maxExternalAudience)
	}
	if _, own := canonicalAudience(a); own {
		return "", fmt.Errorf("%w: audience %q is one of Custos's own APIs; an external token cannot be issued for it", ErrInvalidArgument, a)
	}
	for _, r := range a {
		if r <= ' ' || r == 0x7f || r == utf8.RuneError {
			return "", fmt.Errorf("%w: audience contains a space, control or invalid character", ErrInvalidArgument)
		}
	}
	if isGUID(a) {
		return a, nil
	}
	u, err := url.Parse(a)
	if err != nil || u.Scheme == "" || (u.Host == "" && u.Opaque == "") {
		return "", fmt.Errorf("%w: audience %q is neither an absolute URI nor an application ID", ErrInvalidArgument, a)
	}
	if u.User != nil {
		return "", fmt.Errorf("%w: audience must not carry user information", ErrInvalidArgument)
	}
	return a, nil
}

// Client authentication methods, as Entra's azpacr claim names them.
const (
	acrSecret      = "1" // client secret
	acrCertificate = "2" // client assertion signed by a key credential
)

func (s *TokenService) issue(ctx context.Context, base string, sp ServicePrincipal, aud, acr string, lifetime time.Duration) (string, time.Time, error) {
	sg, err := s.currentSigner(ctx)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("issue token: %w", err)
	}
	jti, err := newGUID(s.rand)
	if err != nil {
		return "", time.Time{}, err
	}
	now := s.now().Truncate(time.Second)
	s.markIssue(now)
	exp := now.Add(lifetime)
	tenant := strings.ToLower(sp.TenantID)
	c := &Claims{
		Audience: aud, Issuer: issuerFor(base, tenant),
		IssuedAt: now.Unix(), NotBefore: now.Unix(), Expires: exp.Unix(),
		AppID: sp.AppID, AppDisplayName: sp.DisplayName, AuthorizedApp: sp.AppID, AzpACR: acr,
		IDType: "app", ObjectID: sp.ObjectID, Subject: sp.ObjectID, TenantID: tenant,
		TokenID: jti, Version: "2.0",
	}
	if sp.Kind == KindManagedIdentity {
		c.ManagedIDRes = sp.ResourceID
		if c.ManagedIDRes == "" {
			return "", time.Time{}, fmt.Errorf("%w: a managed identity token needs its resource ID", ErrInvalidArgument)
		}
	}
	tok, err := signJWT(s.rand, sg.priv, sg.kid, c)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("issue token: %w", err)
	}
	return tok, exp, nil
}

// canonicalAudience maps an audience or resource URI, with or without
// trailing slashes and in any letter case, to its canonical Audience* value.
func canonicalAudience(a string) (string, bool) {
	a = strings.TrimRight(strings.TrimSpace(a), "/")
	for _, known := range []string{AudienceManagement, AudienceIngestion, AudienceQuery} {
		if strings.EqualFold(a, known) {
			return known, true
		}
	}
	return "", false
}

// TenantFunc adapts a function to TenantDirectory, e.g. a catalog lookup:
//
//	identity.TenantFunc(func(ctx context.Context, id string) (bool, error) {
//		_, err := cat.Tenant(ctx, id)
//		if errors.Is(err, catalog.ErrNotFound) {
//			return false, nil
//		}
//		return err == nil, err
//	})
type TenantFunc func(ctx context.Context, tenantID string) (bool, error)

// TenantExists calls f.
func (f TenantFunc) TenantExists(ctx context.Context, tenantID string) (bool, error) {
	return f(ctx, tenantID)
}
