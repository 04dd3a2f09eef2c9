package identity

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// External OIDC issuers (Entra ID, Keycloak, Dex, Okta, ...): tokens they
// sign are accepted on every Custos API when iss is a configured issuer,
// aud is its configured audience and the signature verifies with a key of
// the issuer's JWKS (found through OpenID discovery and fetched over TLS).
// The token's subject becomes a Custos principal: the directory user bound
// to (issuer, subject) when there is one, else a principal whose object ID
// is derived from issuer and subject; its groups claim maps to Custos
// groups by display name or object ID, so group role assignments apply.

// ExternalIssuer configures one trusted external issuer.
type ExternalIssuer struct {
	// Issuer is the issuer URL exactly as the tokens' iss claim carries it
	// (https). Required.
	Issuer string
	// Audience is the aud the tokens must carry (the client ID or API
	// identifier registered at the provider for Custos). Required.
	Audience string
	// TenantID is the Custos tenant the principals belong to. Required.
	TenantID string
	// ObjectIDClaim names the claim that identifies the subject (default
	// "oid", falling back to "sub").
	ObjectIDClaim string
	// UPNClaim names the claim with the user's sign-in name (default: the
	// first of "upn", "email", "preferred_username").
	UPNClaim string
	// GroupsClaim names the claim with group names or IDs (default "groups").
	GroupsClaim string
	// RootCAs verifies the issuer's TLS certificate; nil uses the system roots.
	RootCAs *x509.CertPool
}

const (
	jwksRefresh     = time.Hour
	jwksMissBackoff = 30 * time.Second
	maxDiscovery    = 1 << 20
)

// externalAlgs are the signature algorithms accepted from external issuers.
var externalAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA}

type externals struct {
	byIss map[string]*extIssuer
	cache externalCache
}

type extIssuer struct {
	cfg    ExternalIssuer
	client *http.Client

	mu       sync.Mutex // guards keys, fetched, lastMiss
	keys     *jose.JSONWebKeySet
	fetched  time.Time
	lastMiss time.Time
}

func (s *TokenService) initExternal(opts TokenServiceOptions) error {
	s.ext.byIss = map[string]*extIssuer{}
	for _, e := range opts.ExternalIssuers {
		u, err := url.Parse(e.Issuer)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("%w: external issuer %q must be an https URL", ErrInvalidArgument, e.Issuer)
		}
		if strings.TrimSpace(e.Audience) == "" {
			return fmt.Errorf("%w: external issuer %s needs an audience", ErrInvalidArgument, e.Issuer)
		}
		if !isGUID(strings.ToLower(e.TenantID)) {
			return fmt.Errorf("%w: external issuer %s needs the Custos tenant ID it maps to", ErrInvalidArgument, e.Issuer)
		}
		e.TenantID = strings.ToLower(e.TenantID)
		if _, own := canonicalAudience(e.Audience); own {
			return fmt.Errorf("%w: external issuer %s: the audience must be the one registered at that issuer, not a Custos API", ErrInvalidArgument, e.Issuer)
		}
		for _, base := range s.issuers {
			if strings.HasPrefix(strings.ToLower(e.Issuer), base+"/") || strings.EqualFold(e.Issuer, base) {
				return fmt.Errorf("%w: external issuer %s is this server", ErrInvalidArgument, e.Issuer)
			}
		}
		client := opts.HTTPClient
		if client == nil || e.RootCAs != nil {
			client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
				TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: e.RootCAs},
				Proxy:           http.ProxyFromEnvironment, ForceAttemptHTTP2: true, TLSHandshakeTimeout: 10 * time.Second,
			}}
		}
		if _, dup := s.ext.byIss[e.Issuer]; dup {
			return fmt.Errorf("%w: external issuer %s configured twice", ErrInvalidArgument, e.Issuer)
		}
		s.ext.byIss[e.Issuer] = &extIssuer{cfg: e, client: client}
	}
	return nil
}

// peekIssuer returns the iss claim of a compact JWS without verifying it.
func peekIssuer(tok string) string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || len(parts[1]) > maxTokenBytes {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if json.Unmarshal(raw, &c) != nil {
		return ""
	}
	return c.Iss
}

// externalFor returns the configured issuer of tok, or nil.
func (s *TokenService) externalFor(tok string) *extIssuer {
	if len(s.ext.byIss) == 0 {
		return nil
	}
	return s.ext.byIss[peekIssuer(tok)]
}

// fetchJSON GETs an https URL into v (bounded).
func (e *extIssuer) fetchJSON(ctx context.Context, u string, v any) error {
	pu, err := url.Parse(u)
	if err != nil || pu.Scheme != "https" {
		return fmt.Errorf("%s is not an https URL", u)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	res, err := e.client.Do(req)
	if err != nil {
		return fmt.Errorf("get %s: %w", u, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("get %s: status %d", u, res.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxDiscovery+1))
	if err != nil {
		return fmt.Errorf("read %s: %w", u, err)
	}
	if len(body) > maxDiscovery {
		return fmt.Errorf("%s: document larger than %d bytes", u, maxDiscovery)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("decode %s: %w", u, err)
	}
	return nil
}

// refresh fetches discovery and the JWKS.
func (e *extIssuer) refresh(ctx context.Context) (*jose.JSONWebKeySet, error) {
	var disc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := e.fetchJSON(ctx, strings.TrimSuffix(e.cfg.Issuer, "/")+"/.well-known/openid-configuration", &disc); err != nil {
		return nil, err
	}
	if disc.Issuer != e.cfg.Issuer {
		return nil, fmt.Errorf("discovery of %s names issuer %q", e.cfg.Issuer, disc.Issuer)
	}
	var set jose.JSONWebKeySet
	if err := e.fetchJSON(ctx, disc.JWKSURI, &set); err != nil {
		return nil, err
	}
	return &set, nil
}

// key returns the verification keys for kid, refreshing the JWKS when it is
// old or the kid is unknown (at most every jwksMissBackoff).
func (e *extIssuer) key(ctx context.Context, kid string, now time.Time) ([]jose.JSONWebKey, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	stale := e.keys == nil || now.Sub(e.fetched) > jwksRefresh
	if !stale && len(e.lookup(kid)) == 0 && now.Sub(e.lastMiss) > jwksMissBackoff {
		e.lastMiss = now
		stale = true
	}
	if stale {
		set, err := e.refresh(ctx)
		if err != nil {
			if e.keys == nil {
				return nil, err
			}
		} else {
			e.keys, e.fetched = set, now
		}
	}
	return e.lookup(kid), nil
}

func (e *extIssuer) lookup(kid string) []jose.JSONWebKey {
	if e.keys == nil {
		return nil
	}
	if kid == "" {
		return e.keys.Keys
	}
	return e.keys.Key(kid)
}

// externalObjectID derives a stable object ID (GUID form) for an external
// subject that no directory user is bound to.
func externalObjectID(issuer, subject string) string {
	h := sha256.Sum256([]byte("custos external subject v1\x00" + issuer + "\x00" + subject))
	h[6] = h[6]&0x0f | 0x50
	h[8] = h[8]&0x3f | 0x80
	x := hex.EncodeToString(h[:16])
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// ExternalObjectID is the object ID Custos gives the subject of an
// external issuer when no directory user is bound to it; role assignments
// may name it.
func ExternalObjectID(issuer, subject string) string { return externalObjectID(issuer, subject) }

func claimString(m map[string]json.RawMessage, name string) string {
	var s string
	if raw, ok := m[name]; ok && json.Unmarshal(raw, &s) == nil {
		return s
	}
	return ""
}

// verifyExternal validates a token of an external issuer and maps it to a
// principal. The Custos audience check is left to the caller: external
// tokens are accepted on every API.
func (s *TokenService) verifyExternal(ctx context.Context, e *extIssuer, tok string, now time.Time) (*tokenEntry, *AuthError) {
	jws, err := jose.ParseSignedCompact(tok, externalAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, errInvalid(ErrInvalidToken, "external token does not parse as a JWS with an accepted algorithm")
	}
	keys, err := e.key(ctx, jws.Signatures[0].Header.KeyID, now)
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelError, "external issuer keys unavailable", slog.String("issuer", e.cfg.Issuer), slog.Any("error", err))
		return nil, errUnavailable(fmt.Errorf("external issuer %s: %w", e.cfg.Issuer, err))
	}
	var payload []byte
	for _, k := range keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if p, err := jws.Verify(k); err == nil {
			payload = p
			break
		}
	}
	if payload == nil {
		return nil, authFailed(ErrBadSignature, "InvalidAuthenticationToken",
			"The access token has an invalid signature.", "The access token has an invalid signature.", nil)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(payload, &m); err != nil {
		return nil, errInvalid(ErrInvalidToken, "external token claims do not parse")
	}
	var std struct {
		Iss string          `json:"iss"`
		Aud json.RawMessage `json:"aud"`
		Exp int64           `json:"exp"`
		Nbf int64           `json:"nbf"`
		Iat int64           `json:"iat"`
		Sub string          `json:"sub"`
		Jti string          `json:"jti"`
	}
	if err := json.Unmarshal(payload, &std); err != nil {
		return nil, errInvalid(ErrInvalidToken, "external token claims do not parse: %v", err)
	}
	if std.Iss != e.cfg.Issuer || std.Exp == 0 {
		return nil, errInvalid(ErrInvalidToken, "external token lacks iss or exp")
	}
	auds, err := audienceList(std.Aud)
	if err != nil {
		return nil, errInvalid(ErrInvalidToken, "external token aud: %v", err)
	}
	audOK := false
	for _, a := range auds {
		if a == e.cfg.Audience {
			audOK = true
		}
	}
	if !audOK {
		return nil, authFailed(ErrWrongAudience, "InvalidAuthenticationTokenAudience",
			fmt.Sprintf("The access token has been obtained for wrong audience or resource. It should be '%s' for issuer '%s'.", e.cfg.Audience, e.cfg.Issuer),
			"The access token has been obtained for wrong audience or resource.", nil)
	}
	if std.Iat > now.Add(s.skew).Unix() {
		return nil, errInvalid(ErrTokenNotYetValid, "external token issued in the future")
	}
	subj := claimString(m, e.cfg.ObjectIDClaim)
	if e.cfg.ObjectIDClaim == "" {
		if subj = claimString(m, "oid"); subj == "" {
			subj = std.Sub
		}
	}
	if subj == "" || len(subj) > 256 {
		return nil, errInvalid(ErrInvalidToken, "external token has no subject")
	}
	upn := ""
	if e.cfg.UPNClaim != "" {
		upn = claimString(m, e.cfg.UPNClaim)
	} else {
		for _, c := range []string{"upn", "email", "preferred_username"} {
			if upn = claimString(m, c); upn != "" {
				break
			}
		}
	}
	gc := e.cfg.GroupsClaim
	if gc == "" {
		gc = "groups"
	}
	var groupRefs []string
	if raw, ok := m[gc]; ok && len(raw) <= 64<<10 {
		if err := json.Unmarshal(raw, &groupRefs); err != nil {
			var one string
			if json.Unmarshal(raw, &one) == nil {
				groupRefs = []string{one}
			}
		}
	}
	if len(groupRefs) > 1024 {
		groupRefs = groupRefs[:1024]
	}
	tenant := e.cfg.TenantID
	p := Principal{TenantID: tenant, ObjectID: externalObjectID(e.cfg.Issuer, subj), AppID: claimString(m, "client_id"),
		Kind: KindUser, Name: upn, TokenID: std.Jti}
	if p.AppID == "" {
		p.AppID = claimString(m, "azp")
	}
	if p.AppID != "" && p.AppID == std.Sub && upn == "" {
		p.Kind = KindServicePrincipal // a client credentials token: the subject is the client
	}
	nbf := std.Nbf
	if nbf == 0 {
		nbf = std.Iat
	}
	return &tokenEntry{iss: std.Iss, exp: time.Unix(std.Exp, 0), nbf: time.Unix(nbf, 0), p: p, external: true,
		extSubject: subj, extGroups: groupRefs}, nil
}

// extMapping is an external subject's binding and groups as the directory
// says now.
type extMapping struct {
	objectID string // the bound user's, or "" when unbound
	name     string
	groupIDs []string
	expires  time.Time
}

// externalCache remembers extMappings for PrincipalCacheTTL, so that a
// directory change (a bound user, a group created or renamed) reaches
// external tokens within seconds, not at their expiry. Safe for concurrent
// use.
type externalCache struct {
	mu sync.Mutex // guards m
	m  map[string]extMapping
}

// resolveExternal maps a validated external token to its principal: the
// directory user bound to its subject (bound true) and the Custos groups its
// groups claim names.
func (s *TokenService) resolveExternal(ctx context.Context, ent *tokenEntry, now time.Time) (Principal, bool, error) {
	p := ent.p
	d := s.users.dir
	if d == nil {
		return p, false, nil
	}
	key := p.TenantID + "\x00" + ent.iss + "\x00" + ent.extSubject + "\x00" + strings.Join(ent.extGroups, "\x00")
	s.ext.cache.mu.Lock()
	mp, ok := s.ext.cache.m[key]
	s.ext.cache.mu.Unlock()
	if !ok || !now.Before(mp.expires) {
		mp = extMapping{expires: now.Add(s.pstateTTL)}
		u, err := d.ExternalUser(ctx, p.TenantID, ent.iss, ent.extSubject)
		switch {
		case err == nil:
			mp.objectID, mp.name = u.ObjectID, u.UserPrincipalName
		case !errors.Is(err, ErrNotFound):
			return p, false, err
		}
		if len(ent.extGroups) > 0 {
			if mp.groupIDs, err = d.GroupIDsByNameOrID(ctx, p.TenantID, ent.extGroups); err != nil {
				return p, false, err
			}
		}
		if s.pstateTTL > 0 {
			s.ext.cache.mu.Lock()
			if s.ext.cache.m == nil || len(s.ext.cache.m) >= maxCachedPrincipals {
				s.ext.cache.m = map[string]extMapping{}
			}
			s.ext.cache.m[key] = mp
			s.ext.cache.mu.Unlock()
		}
	}
	p.GroupIDs = append([]string(nil), mp.groupIDs...)
	if mp.objectID != "" {
		p.ObjectID, p.Kind, p.Name = mp.objectID, KindUser, mp.name
		return p, true, nil
	}
	return p, false, nil
}
