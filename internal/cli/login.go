package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// Interactive sign-in for the CLI: `custos login` runs the device code
// flow of the token service as the public client "custos-cli" and stores
// the refresh token in the user's config directory (0600); other verbs then
// authenticate with it (LoginCredential), rotating it on every use.

// LoginClientID is the public client the CLI signs users in through.
const LoginClientID = "custos-cli"

// ErrNotLoggedIn is returned by LoadLogin when there is no stored login.
var ErrNotLoggedIn = errors.New("not logged in: run `custos login`")

// Login is what `custos login` stores.
type Login struct {
	Endpoint          string `json:"endpoint"`
	TenantID          string `json:"tenantId"`
	CAFile            string `json:"caFile,omitempty"`
	UserPrincipalName string `json:"userPrincipalName,omitempty"`
	RefreshToken      Secret `json:"refreshToken"`
	Saved             string `json:"saved"`
}

// DefaultLoginPath is $XDG_CONFIG_HOME/custos/login.json (or the platform's
// user config directory).
func DefaultLoginPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("user config directory: %w", err)
	}
	return filepath.Join(dir, "custos", "login.json"), nil
}

// LoadLogin reads a stored login (ErrNotLoggedIn when absent).
func LoadLogin(path string) (Login, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Login{}, ErrNotLoggedIn
	}
	if err != nil {
		return Login{}, fmt.Errorf("read login: %w", err)
	}
	var l Login
	if err := json.Unmarshal(data, &l); err != nil {
		return Login{}, fmt.Errorf("login file %s: %w", path, err)
	}
	if l.Endpoint == "" || l.TenantID == "" || l.RefreshToken == "" {
		return Login{}, fmt.Errorf("login file %s is incomplete; run `custos login` again", path)
	}
	return l, nil
}

// SaveLogin writes l to path with mode 0600 (the directory 0700), replacing
// the file atomically.
func SaveLogin(path string, l Login) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	l.Saved = time.Now().UTC().Format(time.RFC3339)
	raw := struct {
		Login
		RefreshToken string `json:"refreshToken"`
	}{l, l.RefreshToken.Reveal()}
	data, err := json.MarshalIndent(raw, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".login-*.json")
	if err != nil {
		return fmt.Errorf("write login: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write login: %w", err)
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write login: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write login: %w", err)
	}
	return os.Rename(tmp.Name(), path)
}

// tokenAnswer is the token endpoint's JSON (success or error).
type tokenAnswer struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int64  `json:"expires_in"`
	Error        string `json:"error"`
	Description  string `json:"error_description"`
}

func postForm(ctx context.Context, hc *http.Client, u string, form url.Values) (tokenAnswer, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return tokenAnswer{}, 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := hc.Do(req)
	if err != nil {
		return tokenAnswer{}, 0, Explain(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return tokenAnswer{}, res.StatusCode, err
	}
	var a tokenAnswer
	if err := json.Unmarshal(data, &a); err != nil {
		return tokenAnswer{}, res.StatusCode, fmt.Errorf("token endpoint answered %d with no JSON", res.StatusCode)
	}
	return a, res.StatusCode, nil
}

// DeviceLogin runs the device code flow against endpoint for tenant: it
// prints the sign-in instructions to out and polls until the user has
// signed in (or ctx ends). It returns the login to store.
func DeviceLogin(ctx context.Context, hc *http.Client, endpoint, tenant string, out io.Writer) (Login, error) {
	base := strings.TrimRight(endpoint, "/") + "/" + url.PathEscape(tenant) + "/oauth2/v2.0/"
	scope := AudienceManagement + "/.default offline_access"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"devicecode",
		strings.NewReader(url.Values{"client_id": {LoginClientID}, "scope": {scope}}.Encode()))
	if err != nil {
		return Login{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := hc.Do(req)
	if err != nil {
		return Login{}, Explain(err)
	}
	var dc struct {
		DeviceCode string `json:"device_code"`
		Message    string `json:"message"`
		Interval   int    `json:"interval"`
		ExpiresIn  int    `json:"expires_in"`
		Error      string `json:"error_description"`
	}
	err = json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&dc)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK || dc.DeviceCode == "" {
		return Login{}, fmt.Errorf("device code request failed (%d): %s", res.StatusCode, dc.Error)
	}
	fmt.Fprintln(out, dc.Message)
	interval := time.Duration(max(dc.Interval, 1)) * time.Second
	deadline := time.Now().Add(time.Duration(dc.ExpiresIn) * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return Login{}, ctx.Err()
		case <-time.After(interval):
		}
		a, _, err := postForm(ctx, hc, base+"token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"},
			"client_id": {LoginClientID}, "device_code": {dc.DeviceCode}})
		if err != nil {
			return Login{}, err
		}
		switch a.Error {
		case "":
			if a.RefreshToken == "" {
				return Login{}, errors.New("the server issued no refresh token")
			}
			return Login{Endpoint: endpoint, TenantID: tenant, RefreshToken: Secret(a.RefreshToken)}, nil
		case "authorization_pending":
		case "slow_down":
			interval += 5 * time.Second
		default:
			return Login{}, fmt.Errorf("sign-in failed: %s", a.Description)
		}
	}
	return Login{}, errors.New("the device code expired before sign-in completed; run `custos login` again")
}

// LoginCredential is an azcore.TokenCredential that redeems a stored
// login's refresh token for access tokens, saving each rotated refresh
// token. Safe for concurrent use.
type LoginCredential struct {
	path string
	hc   *http.Client

	mu    sync.Mutex // guards login, cache
	login Login
	cache map[string]azcore.AccessToken // audience scope → token
}

// NewLoginCredential returns a credential over the login stored at path.
func NewLoginCredential(path string, hc *http.Client) (*LoginCredential, error) {
	l, err := LoadLogin(path)
	if err != nil {
		return nil, err
	}
	return &LoginCredential{path: path, hc: hc, login: l, cache: map[string]azcore.AccessToken{}}, nil
}

// Login returns the stored login (its refresh token as it is now).
func (c *LoginCredential) Login() Login {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.login
}

// GetToken implements azcore.TokenCredential.
func (c *LoginCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if len(opts.Scopes) != 1 {
		return azcore.AccessToken{}, fmt.Errorf("login credential: want one scope, got %d", len(opts.Scopes))
	}
	scope := opts.Scopes[0]
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.cache[scope]; ok && time.Until(t.ExpiresOn) > 2*time.Minute {
		return t, nil
	}
	u := strings.TrimRight(c.login.Endpoint, "/") + "/" + url.PathEscape(c.login.TenantID) + "/oauth2/v2.0/token"
	a, status, err := postForm(ctx, c.hc, u, url.Values{"grant_type": {"refresh_token"}, "client_id": {LoginClientID},
		"refresh_token": {c.login.RefreshToken.Reveal()}, "scope": {scope + " offline_access"}})
	if err != nil {
		return azcore.AccessToken{}, err
	}
	if a.Error != "" || a.AccessToken == "" {
		return azcore.AccessToken{}, fmt.Errorf("the stored login no longer works (%d %s); run `custos login` again", status, a.Error)
	}
	if a.RefreshToken != "" {
		c.login.RefreshToken = Secret(a.RefreshToken)
		if err := SaveLogin(c.path, c.login); err != nil {
			return azcore.AccessToken{}, fmt.Errorf("save the rotated refresh token: %w", err)
		}
	}
	t := azcore.AccessToken{Token: a.AccessToken, ExpiresOn: time.Now().Add(time.Duration(a.ExpiresIn) * time.Second)}
	c.cache[scope] = t
	return t, nil
}

// loginFor returns the stored login if there is one for cfg's endpoint
// (any login when cfg names no endpoint).
func loginFor(cfg Config) (Login, error) {
	path, err := DefaultLoginPath()
	if err != nil {
		return Login{}, err
	}
	l, err := LoadLogin(path)
	if err != nil {
		return Login{}, err
	}
	if cfg.Endpoint != "" && !strings.EqualFold(strings.TrimRight(cfg.Endpoint, "/"), strings.TrimRight(l.Endpoint, "/")) {
		return Login{}, ErrNotLoggedIn
	}
	return l, nil
}

// StoredLogin returns the login stored for the user, if any.
func StoredLogin() (Login, string, error) {
	path, err := DefaultLoginPath()
	if err != nil {
		return Login{}, "", err
	}
	l, err := LoadLogin(path)
	return l, path, err
}
