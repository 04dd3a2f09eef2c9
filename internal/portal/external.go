package portal

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"custos/internal/crypt"
)

// ExternalProvider is an OpenID Connect provider users may sign in to the
// portal with (Entra ID, Keycloak, Dex, ...). The server trusts the same
// issuer for API calls (identity.ExternalIssuer, with the client ID as its
// audience), so the provider's access token is what the portal presents to
// the APIs: RBAC applies to the user exactly as to an SDK caller holding
// that token.
type ExternalProvider struct {
	// Name labels the sign-in button ("Sign in with Name").
	Name string
	// Issuer is the provider's issuer URL (https), as its tokens carry it.
	Issuer string
	// ClientID is the portal's client at the provider; its access tokens
	// must be JWTs with this audience.
	ClientID string
	// ClientSecret authenticates the portal at the token endpoint (HTTP
	// Basic); empty for a public client (PKCE only).
	ClientSecret crypt.Secret
	// Scopes requested; default openid profile email offline_access.
	Scopes []string
	// HTTPClient fetches discovery, keys and tokens (its TLS roots decide
	// which certificate the provider may present); nil uses a default one.
	HTTPClient *http.Client
}

// errExternal wraps failures talking to an external provider.
var errExternal = errors.New("portal: external provider")

// maxProviderResponse bounds what the portal reads from a provider.
const maxProviderResponse = 1 << 20

// idTokenAlgs are the signature algorithms accepted in ID tokens.
var idTokenAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA}

// provider is an ExternalProvider with its discovered endpoints.
type provider struct {
	cfg    ExternalProvider
	client *http.Client

	mu        sync.Mutex
	disc      *discovery
	discAt    time.Time
	keys      *jose.JSONWebKeySet
	keysAt    time.Time
	keysTried time.Time
}

type discovery struct {
	Issuer   string `json:"issuer"`
	AuthURL  string `json:"authorization_endpoint"`
	TokenURL string `json:"token_endpoint"`
	JWKSURL  string `json:"jwks_uri"`
	UserInfo string `json:"userinfo_endpoint"`
}

func newProvider(cfg ExternalProvider) *provider {
	c := cfg.HTTPClient
	if c == nil {
		c = &http.Client{Timeout: 15 * time.Second}
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{"openid", "profile", "email", "offline_access"}
	}
	return &provider{cfg: cfg, client: c}
}

func (pr *provider) getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	res, err := pr.client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, res.Status)
	}
	return json.NewDecoder(io.LimitReader(res.Body, maxProviderResponse)).Decode(v)
}

// discover returns the provider's endpoints (cached for an hour).
func (pr *provider) discover(ctx context.Context) (*discovery, error) {
	pr.mu.Lock()
	if pr.disc != nil && time.Since(pr.discAt) < time.Hour {
		d := pr.disc
		pr.mu.Unlock()
		return d, nil
	}
	pr.mu.Unlock()
	var d discovery
	if err := pr.getJSON(ctx, strings.TrimSuffix(pr.cfg.Issuer, "/")+"/.well-known/openid-configuration", &d); err != nil {
		return nil, fmt.Errorf("%w: discovery: %v", errExternal, err)
	}
	if d.Issuer != pr.cfg.Issuer {
		return nil, fmt.Errorf("%w: discovery names issuer %q, not %q", errExternal, d.Issuer, pr.cfg.Issuer)
	}
	for _, u := range []string{d.AuthURL, d.TokenURL, d.JWKSURL} {
		if pu, err := url.Parse(u); err != nil || pu.Scheme != "https" || pu.Host == "" {
			return nil, fmt.Errorf("%w: discovery endpoint %q is not an https URL", errExternal, u)
		}
	}
	pr.mu.Lock()
	pr.disc, pr.discAt = &d, time.Now()
	pr.mu.Unlock()
	return &d, nil
}

// keysFor returns the provider's keys with kid, refetching the JWKS when
// the kid is unknown (at most every 30 s).
func (pr *provider) keysFor(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	pr.mu.Lock()
	set := pr.keys
	stale := set == nil || time.Since(pr.keysAt) > time.Hour
	if !stale && len(set.Key(kid)) == 0 && time.Since(pr.keysTried) > 30*time.Second {
		stale = true
	}
	pr.mu.Unlock()
	if stale {
		d, err := pr.discover(ctx)
		if err != nil {
			return nil, err
		}
		var fresh jose.JSONWebKeySet
		err = pr.getJSON(ctx, d.JWKSURL, &fresh)
		pr.mu.Lock()
		pr.keysTried = time.Now()
		if err == nil {
			pr.keys, pr.keysAt, set = &fresh, time.Now(), &fresh
		}
		pr.mu.Unlock()
		if err != nil && set == nil {
			return nil, fmt.Errorf("%w: keys: %v", errExternal, err)
		}
	}
	if kid == "" {
		return set.Keys, nil
	}
	return set.Key(kid), nil
}

// idClaims are the ID token claims the portal checks and shows.
type idClaims struct {
	Iss   string          `json:"iss"`
	Sub   string          `json:"sub"`
	Aud   json.RawMessage `json:"aud"`
	Exp   int64           `json:"exp"`
	Nonce string          `json:"nonce"`
	Name  string          `json:"name"`
	PUN   string          `json:"preferred_username"`
	Email string          `json:"email"`
}

func (c idClaims) audiences() []string {
	var one string
	if json.Unmarshal(c.Aud, &one) == nil {
		return []string{one}
	}
	var many []string
	_ = json.Unmarshal(c.Aud, &many)
	return many
}

// verifyIDToken checks the ID token's signature (the provider's JWKS),
// issuer, audience (the portal's client ID), expiry and nonce.
func (pr *provider) verifyIDToken(ctx context.Context, raw, nonce string, now time.Time) (idClaims, error) {
	jws, err := jose.ParseSignedCompact(raw, idTokenAlgs)
	if err != nil {
		return idClaims{}, fmt.Errorf("%w: the ID token is not a signed JWT: %v", errExternal, err)
	}
	if len(jws.Signatures) != 1 {
		return idClaims{}, fmt.Errorf("%w: the ID token must have one signature", errExternal)
	}
	keys, err := pr.keysFor(ctx, jws.Signatures[0].Header.KeyID)
	if err != nil {
		return idClaims{}, err
	}
	var payload []byte
	for _, k := range keys {
		if p, err := jws.Verify(k); err == nil {
			payload = p
			break
		}
	}
	if payload == nil {
		return idClaims{}, fmt.Errorf("%w: the ID token's signature does not verify with the provider's keys", errExternal)
	}
	var c idClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return idClaims{}, fmt.Errorf("%w: the ID token's claims: %v", errExternal, err)
	}
	switch {
	case c.Iss != pr.cfg.Issuer:
		return idClaims{}, fmt.Errorf("%w: the ID token's issuer %q is not %q", errExternal, c.Iss, pr.cfg.Issuer)
	case !slices.Contains(c.audiences(), pr.cfg.ClientID):
		return idClaims{}, fmt.Errorf("%w: the ID token is not for client %q", errExternal, pr.cfg.ClientID)
	case now.Unix() > c.Exp+60:
		return idClaims{}, fmt.Errorf("%w: the ID token has expired", errExternal)
	case nonce == "" || subtle.ConstantTimeCompare([]byte(c.Nonce), []byte(nonce)) != 1:
		return idClaims{}, fmt.Errorf("%w: the ID token's nonce does not match this sign-in", errExternal)
	case c.Sub == "":
		return idClaims{}, fmt.Errorf("%w: the ID token has no subject", errExternal)
	}
	return c, nil
}

// providerTokens is a provider's token response.
type providerTokens struct {
	Access  string `json:"access_token"`
	ID      string `json:"id_token"`
	Refresh string `json:"refresh_token"`
	Expires int64  `json:"expires_in"`
	Error   string `json:"error"`
	Desc    string `json:"error_description"`
}

// token posts form to the provider's token endpoint.
func (pr *provider) token(ctx context.Context, form url.Values) (providerTokens, error) {
	d, err := pr.discover(ctx)
	if err != nil {
		return providerTokens{}, err
	}
	if len(pr.cfg.ClientSecret) == 0 {
		form.Set("client_id", pr.cfg.ClientID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return providerTokens{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if len(pr.cfg.ClientSecret) > 0 {
		req.SetBasicAuth(url.QueryEscape(pr.cfg.ClientID), url.QueryEscape(string(pr.cfg.ClientSecret)))
	}
	res, err := pr.client.Do(req)
	if err != nil {
		return providerTokens{}, fmt.Errorf("%w: token endpoint: %v", errExternal, err)
	}
	defer res.Body.Close()
	var t providerTokens
	if err := json.NewDecoder(io.LimitReader(res.Body, maxProviderResponse)).Decode(&t); err != nil {
		return providerTokens{}, fmt.Errorf("%w: token endpoint answered %s with a body that is not JSON", errExternal, res.Status)
	}
	if res.StatusCode != http.StatusOK || t.Access == "" {
		if t.Error == "" {
			t.Error = res.Status
		}
		return providerTokens{}, &tokenError{Code: t.Error, Description: firstLine(t.Desc)}
	}
	if strings.Count(t.Access, ".") != 2 {
		return providerTokens{}, fmt.Errorf("%w: the provider's access token is not a JWT; configure the client at the provider to issue JWT access tokens", errExternal)
	}
	return t, nil
}

// externalAudience is the session token key for an external provider's
// access token: Custos accepts it on every API (its own audience checked).
const externalAudience = "external"

// userInfo completes the display claims from the provider's userinfo
// endpoint when the ID token carries none (as some providers do unless
// asked); the answer must be about the ID token's subject.
func (pr *provider) userInfo(ctx context.Context, access string, c idClaims) idClaims {
	if c.Name != "" || c.PUN != "" || c.Email != "" {
		return c
	}
	d, err := pr.discover(ctx)
	if err != nil || d.UserInfo == "" {
		return c
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.UserInfo, nil)
	if err != nil {
		return c
	}
	req.Header.Set("Authorization", "Bearer "+access)
	req.Header.Set("Accept", "application/json")
	res, err := pr.client.Do(req)
	if err != nil {
		return c
	}
	defer res.Body.Close()
	var u idClaims
	if res.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(res.Body, maxProviderResponse)).Decode(&u) != nil || u.Sub != c.Sub {
		return c
	}
	c.Name, c.PUN, c.Email = u.Name, u.PUN, u.Email
	return c
}
