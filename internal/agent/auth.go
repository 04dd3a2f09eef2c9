package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// IngestionScope is the scope the Azure SDKs request for the Logs Ingestion
// API (audience "https://monitor.azure.com/" + "/.default").
const IngestionScope = "https://monitor.azure.com//.default"

// Secret is a credential in memory; it never prints or logs its value.
type Secret string

// String implements fmt.Stringer without revealing the secret.
func (Secret) String() string { return "REDACTED" }

// LogValue implements slog.LogValuer.
func (Secret) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// TokenSource gives the agent bearer tokens for the Logs Ingestion API.
// Implementations cache and renew tokens and are safe for concurrent use.
//
// Today's implementation is ClientCredentials (a service principal's client
// secret), the interim credential. TODO(enrollment): once Custos can enroll
// machines, a second implementation will sign a client assertion with the
// machine's private key (created at `custos-agent enroll`, never sent) and
// exchange it for tokens of the machine's managed identity; the agent only
// sees this interface, so nothing else changes.
type TokenSource interface {
	// Token returns a valid access token.
	Token(ctx context.Context) (Secret, error)
	// Invalidate drops the cached token (after a 401) so the next Token
	// call fetches a new one.
	Invalidate()
}

// Credentials is the interim credentials file: a service principal's
// tenantId, clientId and clientSecret. The other keys of Custos's admin.json
// are accepted and ignored, so that file can be used as it is.
type Credentials struct {
	TenantID     string `json:"tenantId"`
	ClientID     string `json:"clientId"`
	ClientSecret Secret `json:"clientSecret"`

	// admin.json keys the agent does not use.
	Endpoint       string `json:"endpoint,omitempty"`
	SubscriptionID string `json:"subscriptionId,omitempty"`
	ResourceGroup  string `json:"resourceGroup,omitempty"`
	WorkspaceName  string `json:"workspaceName,omitempty"`
	WorkspaceID    string `json:"workspaceId,omitempty"`
	CAFile         string `json:"caFile,omitempty"`
}

// LoadCredentials reads a credentials file strictly. It refuses a file that
// other users can read.
func LoadCredentials(path string) (Credentials, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Credentials{}, fmt.Errorf("credentials file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return Credentials{}, fmt.Errorf("credentials file %s is readable by group or others (mode %v); chmod 600 it", path, fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Credentials{}, fmt.Errorf("credentials file: %w", err)
	}
	var c Credentials
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Credentials{}, fmt.Errorf("credentials file %s: %w", path, err)
	}
	if c.TenantID == "" || c.ClientID == "" || c.ClientSecret == "" {
		return Credentials{}, fmt.Errorf("credentials file %s needs tenantId, clientId and clientSecret", path)
	}
	if strings.ContainsAny(c.TenantID, "/?#% ") {
		return Credentials{}, fmt.Errorf("credentials file %s: invalid tenantId", path)
	}
	return c, nil
}

// ClientCredentials is a TokenSource using the OAuth 2.0 client credentials
// grant against Custos's Entra-compatible token endpoint
// ({endpoint}/{tenant}/oauth2/v2.0/token). Safe for concurrent use.
type ClientCredentials struct {
	endpoint string
	creds    Credentials
	client   *http.Client
	now      func() time.Time
	log      *slog.Logger

	mu      sync.Mutex // guards token, expires, renewAt
	token   Secret
	expires time.Time
	renewAt time.Time
}

// NewClientCredentials returns a token source for creds at endpoint. client
// must be the agent's TLS-verifying client.
func NewClientCredentials(endpoint string, creds Credentials, client *http.Client, log *slog.Logger, now func() time.Time) *ClientCredentials {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &ClientCredentials{endpoint: strings.TrimRight(endpoint, "/"), creds: creds, client: client, now: now, log: log}
}

// ErrAuth wraps token endpoint answers that retrying will not fix (wrong
// secret, unknown client): the agent reports them and keeps its queue.
var ErrAuth = errors.New("authentication failed")

// Token implements TokenSource. A cached token is renewed once 80% of its
// lifetime has passed (at the latest 1 minute before it expires).
func (c *ClientCredentials) Token(ctx context.Context) (Secret, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.token != "" && now.Before(c.renewAt) {
		return c.token, nil
	}
	tok, life, err := c.fetch(ctx)
	if err != nil {
		if c.token != "" && now.Before(c.expires.Add(-5*time.Second)) {
			c.log.Warn("token renewal failed; using the current token", slog.Any("error", err))
			return c.token, nil
		}
		return "", err
	}
	c.token = tok
	c.expires = now.Add(life)
	c.renewAt = now.Add(min(life*8/10, max(life-time.Minute, life/2)))
	return tok, nil
}

// Invalidate implements TokenSource.
func (c *ClientCredentials) Invalidate() {
	c.mu.Lock()
	c.token = ""
	c.mu.Unlock()
}

func (c *ClientCredentials) fetch(ctx context.Context) (Secret, time.Duration, error) {
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {c.creds.ClientID},
		"client_secret": {string(c.creds.ClientSecret)},
		"scope":         {IngestionScope},
	}
	u := c.endpoint + "/" + url.PathEscape(c.creds.TenantID) + "/oauth2/v2.0/token"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, fmt.Errorf("token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.client.Do(req)
	if err != nil {
		return "", 0, fmt.Errorf("token request: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", 0, fmt.Errorf("token response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		_ = json.Unmarshal(body, &e)
		msg := fmt.Sprintf("token endpoint answered %d %s: %s", resp.StatusCode, e.Error, firstLine(e.Description))
		if resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusUnauthorized {
			return "", 0, fmt.Errorf("%w: %s", ErrAuth, msg)
		}
		return "", 0, errors.New(msg)
	}
	var t struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &t); err != nil || t.AccessToken == "" {
		return "", 0, errors.New("token endpoint returned no access_token")
	}
	life := time.Duration(t.ExpiresIn) * time.Second
	if life <= 0 || life > 24*time.Hour {
		life = 5 * time.Minute
	}
	return Secret(t.AccessToken), life, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
