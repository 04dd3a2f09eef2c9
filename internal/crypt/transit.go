package crypt

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// TransitOptions configure a Transit key provider. A zero field means the
// documented default.
type TransitOptions struct {
	// Address is the Vault or OpenBao base URL, for example
	// https://vault.example:8200 (required). Plain http is refused unless
	// InsecureHTTP is set.
	Address string
	// Mount is the Transit secrets engine's mount path. Default "transit".
	Mount string
	// Key is the name of the Transit key (required). Create it with
	// type aes256-gcm96 (the default type).
	Key string
	// Namespace is sent as X-Vault-Namespace when set (Vault Enterprise, OpenBao namespaces).
	Namespace string
	// Token authenticates with a fixed token. Either Token or RoleID and
	// SecretID are required.
	Token Secret
	// RoleID and SecretID log in with AppRole at AppRoleMount (default
	// "approle"); the token is renewed by logging in again before it expires
	// and after a 403.
	RoleID       string
	SecretID     Secret
	AppRoleMount string
	// CAFile is a PEM file of CA certificates trusted for the server's TLS
	// certificate, instead of the system pool.
	CAFile string
	// Timeout bounds each HTTP request. Default 10 s.
	Timeout time.Duration
	// HTTPClient replaces the client built from CAFile and Timeout (tests).
	HTTPClient *http.Client
	// InsecureHTTP allows a plain-http Address (a local dev server only).
	InsecureHTTP bool
	// Now is the clock for token expiry; nil means time.Now.
	Now func() time.Time
}

// Transit wraps keys with a HashiCorp Vault or OpenBao Transit key over its
// HTTP API: POST /v1/<mount>/encrypt/<key>, /decrypt/<key> and
// /rewrap/<key>. The wrapped form is Transit's own ciphertext string
// ("vault:v3:..."), so it names the key version; rotating the Transit key
// keeps old wrapped keys readable and RewrapKey moves them to the newest
// version. The AAD is bound inside the ciphertext (see bindAAD), so no
// derived or convergent key is needed. HTTP 401/403, a disabled or deleted
// key, 5xx answers and network errors wrap ErrKeyUnavailable. Safe for
// concurrent use.
type Transit struct {
	opts   TransitOptions
	base   *url.URL
	client *http.Client

	mu       sync.Mutex // guards token and expiry
	token    Secret
	expiry   time.Time // zero: does not expire (a fixed token)
	approle  bool
	keyIDStr string
}

var (
	_ KeyProvider = (*Transit)(nil)
	_ Rewrapper   = (*Transit)(nil)
)

// NewTransit validates opts and returns a provider. It makes no request: the
// first WrapKey or UnwrapKey logs in (AppRole) and reaches the server.
func NewTransit(opts TransitOptions) (*Transit, error) {
	if opts.Address == "" || opts.Key == "" {
		return nil, errors.New("transit: Address and Key are required")
	}
	u, err := url.Parse(strings.TrimRight(opts.Address, "/"))
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("transit: bad address %q", opts.Address)
	}
	if u.Scheme == "http" && !opts.InsecureHTTP {
		return nil, fmt.Errorf("transit: address %q is not https (set InsecureHTTP for a local dev server)", opts.Address)
	}
	if strings.ContainsAny(opts.Key, "/?#") || strings.Contains(opts.Mount, "..") {
		return nil, fmt.Errorf("transit: bad key name %q or mount %q", opts.Key, opts.Mount)
	}
	if opts.Mount == "" {
		opts.Mount = "transit"
	}
	opts.Mount = strings.Trim(opts.Mount, "/")
	if opts.AppRoleMount == "" {
		opts.AppRoleMount = "approle"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	t := &Transit{opts: opts, base: u}
	switch {
	case len(opts.Token) > 0:
		t.token = append(Secret(nil), opts.Token...)
	case opts.RoleID != "" && len(opts.SecretID) > 0:
		t.approle = true
	default:
		return nil, errors.New("transit: either Token or RoleID and SecretID are required")
	}
	t.client = opts.HTTPClient
	if t.client == nil {
		tr := &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12},
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     90 * time.Second,
		}
		if opts.CAFile != "" {
			pem, err := os.ReadFile(opts.CAFile)
			if err != nil {
				return nil, fmt.Errorf("transit: CA file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("transit: CA file %s holds no PEM certificate", opts.CAFile)
			}
			tr.TLSClientConfig.RootCAs = pool
		}
		t.client = &http.Client{Transport: tr, Timeout: opts.Timeout}
	}
	t.keyIDStr = "transit:" + opts.Mount + "/" + opts.Key
	if len(t.keyIDStr) > MaxKeyIDLen {
		return nil, errors.New("transit: mount and key name too long")
	}
	return t, nil
}

// KeyID implements KeyProvider: "transit:<mount>/<key>". The key version is in
// each wrapped key.
func (t *Transit) KeyID() string { return t.keyIDStr }

// String never reveals the token.
func (t *Transit) String() string { return "crypt.Transit(" + t.keyIDStr + ")" }

// TransitError is an error answer from the server.
type TransitError struct {
	Status int
	Errors []string
}

func (e *TransitError) Error() string {
	return fmt.Sprintf("transit: HTTP %d: %s", e.Status, strings.Join(e.Errors, "; "))
}

// Unwrap classifies the answer: authentication and authorization failures,
// a disabled, missing or non-decrypting key and server errors are
// ErrKeyUnavailable; a ciphertext the key rejects is ErrAuth.
func (e *TransitError) Unwrap() error {
	msg := strings.ToLower(strings.Join(e.Errors, " "))
	switch {
	case e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden || e.Status >= 500 || e.Status == http.StatusTooManyRequests:
		return ErrKeyUnavailable
	case strings.Contains(msg, "message authentication failed") || strings.Contains(msg, "invalid ciphertext"):
		return ErrAuth
	case e.Status == http.StatusNotFound || strings.Contains(msg, "disabled") || strings.Contains(msg, "not found") ||
		strings.Contains(msg, "min_decryption_version") || strings.Contains(msg, "not allowed"):
		return ErrKeyUnavailable
	}
	return nil
}

type transitLoginResp struct {
	Auth *struct {
		ClientToken   string `json:"client_token"`
		LeaseDuration int64  `json:"lease_duration"`
	} `json:"auth"`
}

// currentToken returns a valid token, logging in with AppRole when needed.
func (t *Transit) currentToken(ctx context.Context, force bool) (Secret, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.approle {
		return t.token, nil
	}
	now := t.opts.Now()
	if !force && len(t.token) > 0 && (t.expiry.IsZero() || now.Before(t.expiry)) {
		return t.token, nil
	}
	body := map[string]string{"role_id": t.opts.RoleID, "secret_id": string(t.opts.SecretID)}
	var resp transitLoginResp
	if err := t.do(ctx, "auth/"+t.opts.AppRoleMount+"/login", nil, body, &resp); err != nil {
		return nil, fmt.Errorf("transit: approle login: %w", err)
	}
	if resp.Auth == nil || resp.Auth.ClientToken == "" {
		return nil, fmt.Errorf("transit: approle login: %w: no client token in the answer", ErrKeyUnavailable)
	}
	t.token = Secret(resp.Auth.ClientToken) // the old one may still be in use by a request: not wiped
	t.expiry = time.Time{}
	if d := resp.Auth.LeaseDuration; d > 0 {
		// Log in again at 80% of the lease, so a request never races expiry.
		t.expiry = now.Add(time.Duration(d) * time.Second * 8 / 10)
	}
	return t.token, nil
}

// do POSTs body as JSON to /v1/<path> and decodes the answer into out.
func (t *Transit) do(ctx context.Context, path string, token Secret, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	u := *t.base
	u.Path = strings.TrimRight(u.Path, "/") + "/v1/" + path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if len(token) > 0 {
		req.Header.Set("X-Vault-Token", string(token))
	}
	if t.opts.Namespace != "" {
		req.Header.Set("X-Vault-Namespace", t.opts.Namespace)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: %w", ErrKeyUnavailable, err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%w: read answer: %w", ErrKeyUnavailable, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Errors []string `json:"errors"`
		}
		_ = json.Unmarshal(rb, &e)
		return &TransitError{Status: resp.StatusCode, Errors: e.Errors}
	}
	if err := json.Unmarshal(rb, out); err != nil {
		return fmt.Errorf("transit: decode answer: %w", err)
	}
	return nil
}

// call runs one Transit operation, logging in again once after a 403 when
// AppRole is used (the token may have been revoked or expired early).
func (t *Transit) call(ctx context.Context, op string, body, out any) error {
	for attempt := 0; ; attempt++ {
		tok, err := t.currentToken(ctx, attempt > 0)
		if err != nil {
			return err
		}
		err = t.do(ctx, t.opts.Mount+"/"+op+"/"+url.PathEscape(t.opts.Key), tok, body, out)
		var te *TransitError
		if t.approle && attempt == 0 && errors.As(err, &te) && te.Status == http.StatusForbidden {
			continue
		}
		if err != nil {
			return fmt.Errorf("transit %s %s: %w", op, t.keyIDStr, err)
		}
		return nil
	}
}

type transitData struct {
	Data struct {
		Ciphertext string `json:"ciphertext"`
		Plaintext  string `json:"plaintext"`
		KeyVersion int    `json:"key_version"`
	} `json:"data"`
}

// WrapKey implements KeyProvider.
func (t *Transit) WrapKey(ctx context.Context, key, aad []byte) ([]byte, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("transit: wrap key: key is %d bytes, want %d", len(key), KeySize)
	}
	pt := bindAAD(key, aad)
	defer Wipe(pt)
	var out transitData
	if err := t.call(ctx, "encrypt", map[string]string{"plaintext": base64.StdEncoding.EncodeToString(pt)}, &out); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(out.Data.Ciphertext, "vault:v") {
		return nil, fmt.Errorf("transit encrypt %s: unexpected ciphertext format", t.keyIDStr)
	}
	return []byte(out.Data.Ciphertext), nil
}

// UnwrapKey implements KeyProvider.
func (t *Transit) UnwrapKey(ctx context.Context, wrapped, aad []byte) ([]byte, error) {
	if !bytes.HasPrefix(wrapped, []byte("vault:v")) || len(wrapped) > 4096 {
		return nil, fmt.Errorf("transit: unwrap key: %w: not a Transit ciphertext", ErrMalformed)
	}
	var out transitData
	if err := t.call(ctx, "decrypt", map[string]string{"ciphertext": string(wrapped)}, &out); err != nil {
		return nil, err
	}
	pt, err := base64.StdEncoding.DecodeString(out.Data.Plaintext)
	if err != nil {
		return nil, fmt.Errorf("transit decrypt %s: %w: plaintext is not base64", t.keyIDStr, ErrMalformed)
	}
	return unbindAAD(pt, aad)
}

// RewrapKey implements Rewrapper with Transit's rewrap endpoint: the key
// never leaves the server.
func (t *Transit) RewrapKey(ctx context.Context, wrapped, _ []byte) ([]byte, error) {
	if !bytes.HasPrefix(wrapped, []byte("vault:v")) || len(wrapped) > 4096 {
		return nil, fmt.Errorf("transit: rewrap key: %w: not a Transit ciphertext", ErrMalformed)
	}
	var out transitData
	if err := t.call(ctx, "rewrap", map[string]string{"ciphertext": string(wrapped)}, &out); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(out.Data.Ciphertext, "vault:v") {
		return nil, fmt.Errorf("transit rewrap %s: unexpected ciphertext format", t.keyIDStr)
	}
	return []byte(out.Data.Ciphertext), nil
}

// TransitKeyVersion returns the key version a Transit ciphertext names
// ("vault:v3:..." → 3), or 0 if it names none.
func TransitKeyVersion(wrapped []byte) int {
	s, ok := strings.CutPrefix(string(wrapped), "vault:v")
	if !ok {
		return 0
	}
	n := 0
	for _, c := range s {
		if c == ':' {
			return n
		}
		if c < '0' || c > '9' || n > 1<<24 {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return 0
}
