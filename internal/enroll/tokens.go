package enroll

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// Token is an access token and its expiry.
type Token struct {
	AccessToken string
	ExpiresOn   time.Time
}

// refreshBefore is how long before expiry a cached token is renewed.
const refreshBefore = 5 * time.Minute

// TokenSource obtains access tokens for an enrolled identity by signed
// client assertion and caches them per scope until shortly before expiry.
// It implements azcore.TokenCredential, so Azure SDK clients (azlogs) take
// it directly. It is safe for concurrent use.
type TokenSource struct {
	id     *Identity
	client *http.Client
	now    func() time.Time

	mu    sync.Mutex // guards cache
	cache map[string]Token
}

var _ azcore.TokenCredential = (*TokenSource)(nil)

// NewTokenSource returns a token source for id over client (see
// NewHTTPClient). now may be nil (time.Now).
func NewTokenSource(id *Identity, client *http.Client, now func() time.Time) *TokenSource {
	if now == nil {
		now = time.Now
	}
	return &TokenSource{id: id, client: client, now: now, cache: map[string]Token{}}
}

// Scopes of the Custos APIs.
const (
	ScopeIngestion  = "https://monitor.azure.com//.default"
	ScopeManagement = "https://management.azure.com/.default"
	ScopeQuery      = "https://api.loganalytics.io/.default"
)

// Token returns a valid access token for scope, from the cache or from the
// token endpoint. A refused identity (disabled, deleted) is an *APIError
// whose Rejected() is true.
func (ts *TokenSource) Token(ctx context.Context, scope string) (Token, error) {
	now := ts.now()
	ts.mu.Lock()
	t, ok := ts.cache[scope]
	ts.mu.Unlock()
	if ok && now.Add(refreshBefore).Before(t.ExpiresOn) {
		return t, nil
	}
	t, err := ts.fetch(ctx, scope, now)
	if err != nil {
		return Token{}, err
	}
	ts.mu.Lock()
	ts.cache[scope] = t
	ts.mu.Unlock()
	return t, nil
}

// Forget drops cached tokens, e.g. after the server refused one.
func (ts *TokenSource) Forget() {
	ts.mu.Lock()
	ts.cache = map[string]Token{}
	ts.mu.Unlock()
}

// GetToken implements azcore.TokenCredential (one scope per request).
func (ts *TokenSource) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if len(opts.Scopes) != 1 {
		return azcore.AccessToken{}, fmt.Errorf("enroll: token request needs exactly one scope, got %d", len(opts.Scopes))
	}
	t, err := ts.Token(ctx, opts.Scopes[0])
	if err != nil {
		return azcore.AccessToken{}, err
	}
	return azcore.AccessToken{Token: t.AccessToken, ExpiresOn: t.ExpiresOn}, nil
}

func (ts *TokenSource) fetch(ctx context.Context, scope string, now time.Time) (Token, error) {
	assertion, err := ts.id.Assertion(ts.id.TokenEndpoint, now)
	if err != nil {
		return Token{}, err
	}
	form := url.Values{
		"grant_type":            {"client_credentials"},
		"client_id":             {ts.id.ClientID},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion},
		"scope":                 {scope},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ts.id.TokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return Token{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := ts.client.Do(req)
	if err != nil {
		return Token{}, fmt.Errorf("get token: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Token{}, fmt.Errorf("get token: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return Token{}, apiError("get token", resp.StatusCode, data)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(data, &tr); err != nil || tr.AccessToken == "" || tr.ExpiresIn <= 0 {
		return Token{}, fmt.Errorf("get token: malformed answer")
	}
	return Token{AccessToken: tr.AccessToken, ExpiresOn: now.Add(time.Duration(tr.ExpiresIn) * time.Second)}, nil
}

// Configuration is what the configuration endpoint returns: the data
// collection rules associated with the machine, each in the ARM shape of
// GET dataCollectionRules/{name} (properties.dataSources, streamDeclarations,
// dataFlows, immutableId, endpoints.logsIngestion, ...).
type Configuration struct {
	ResourceID          string            `json:"resourceId"`
	DataCollectionRules []json.RawMessage `json:"dataCollectionRules"`
	// ETag identifies this configuration; pass it to the next
	// FetchConfiguration to poll cheaply.
	ETag string `json:"-"`
}

// FetchConfiguration gets the machine's configuration. With etag (from the
// previous answer) the server answers 304 when nothing changed: then
// notModified is true and cfg is zero.
func FetchConfiguration(ctx context.Context, client *http.Client, ts *TokenSource, id *Identity, etag string) (cfg Configuration, notModified bool, err error) {
	tok, err := ts.Token(ctx, ScopeIngestion)
	if err != nil {
		return Configuration{}, false, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, id.ConfigurationEndpoint, nil)
	if err != nil {
		return Configuration{}, false, err
	}
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := client.Do(req)
	if err != nil {
		return Configuration{}, false, fmt.Errorf("get configuration: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return Configuration{}, false, fmt.Errorf("get configuration: %w", err)
	}
	switch resp.StatusCode {
	case http.StatusNotModified:
		return Configuration{}, true, nil
	case http.StatusOK:
	default:
		if resp.StatusCode == http.StatusUnauthorized {
			ts.Forget()
		}
		return Configuration{}, false, apiError("get configuration", resp.StatusCode, data)
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return Configuration{}, false, fmt.Errorf("get configuration: decode: %w", err)
	}
	cfg.ETag = resp.Header.Get("ETag")
	return cfg, false, nil
}
