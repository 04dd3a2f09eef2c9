package crypt

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// AzureKeyVaultOptions configure an AzureKeyVault key provider.
type AzureKeyVaultOptions struct {
	// KeyURL is the key identifier: https://<vault>.vault.azure.net/keys/<name>
	// with an optional /<version>. Without a version, wrapping uses the key's
	// current version (as Azure Monitor does with auto-rotation), and each
	// wrapped key records the version it was wrapped with.
	KeyURL string
	// Token returns a bearer token for https://vault.azure.net (required);
	// the server adapts an azcore TokenCredential or a managed identity.
	Token func(ctx context.Context) (Secret, error)
	// APIVersion of the keys API. Default "7.4".
	APIVersion string
	// Timeout bounds each request. Default 10 s.
	Timeout time.Duration
	// HTTPClient replaces the default client (tests, proxies).
	HTTPClient *http.Client
}

// AzureKeyVault wraps keys with an Azure Key Vault RSA key through the keys
// API (POST {vault}/keys/{name}/{version}/wrapkey and unwrapkey, RSA-OAEP-256).
// The wrapped form is uvarint len(kid) | kid | RSA ciphertext, so it names
// the key version. The AAD is bound inside the ciphertext (see bindAAD).
// 401/403 (including a disabled key), 404, 429, 5xx and network errors wrap
// ErrKeyUnavailable. Safe for concurrent use.
type AzureKeyVault struct {
	opts   AzureKeyVaultOptions
	vault  string // scheme://host
	name   string
	ver    string
	id     string
	client *http.Client
}

var _ KeyProvider = (*AzureKeyVault)(nil)

// NewAzureKeyVault validates opts. It makes no request.
func NewAzureKeyVault(opts AzureKeyVaultOptions) (*AzureKeyVault, error) {
	u, err := url.Parse(opts.KeyURL)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" {
		return nil, fmt.Errorf("azure key vault: bad key URL %q (want https://<vault>/keys/<name>[/<version>])", opts.KeyURL)
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] != "keys" || parts[1] == "" {
		return nil, fmt.Errorf("azure key vault: bad key URL %q (want https://<vault>/keys/<name>[/<version>])", opts.KeyURL)
	}
	if opts.Token == nil {
		return nil, errors.New("azure key vault: Token is required")
	}
	if opts.APIVersion == "" {
		opts.APIVersion = "7.4"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	a := &AzureKeyVault{opts: opts, vault: u.Scheme + "://" + u.Host, name: parts[1], client: opts.HTTPClient}
	if len(parts) == 3 {
		a.ver = parts[2]
	}
	if a.client == nil {
		a.client = &http.Client{Timeout: opts.Timeout, Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment, TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12},
		}}
	}
	a.id = "akv:" + u.Host + "/keys/" + a.name
	if len(a.id) > MaxKeyIDLen {
		return nil, errors.New("azure key vault: key URL too long")
	}
	return a, nil
}

// KeyID implements KeyProvider: "akv:<vault host>/keys/<name>".
func (a *AzureKeyVault) KeyID() string { return a.id }

// String never reveals tokens.
func (a *AzureKeyVault) String() string { return "crypt.AzureKeyVault(" + a.id + ")" }

// AzureKeyVaultError is an error answer of the keys API.
type AzureKeyVaultError struct {
	Status    int
	Code      string
	InnerCode string
	Message   string
}

func (e *AzureKeyVaultError) Error() string {
	s := fmt.Sprintf("azure key vault: HTTP %d %s", e.Status, e.Code)
	if e.InnerCode != "" {
		s += " (" + e.InnerCode + ")"
	}
	return s + ": " + e.Message
}

// Unwrap classifies the answer: anything but a 400 for bad input means the
// key cannot be used now (ErrKeyUnavailable); a 400 BadParameter on unwrap
// means the ciphertext does not belong to the key (ErrAuth).
func (e *AzureKeyVaultError) Unwrap() error {
	if e.Status == http.StatusBadRequest && !strings.Contains(strings.ToLower(e.InnerCode+e.Code), "disabled") {
		return ErrAuth
	}
	return ErrKeyUnavailable
}

type akvRequest struct {
	Alg   string `json:"alg"`
	Value string `json:"value"`
}

type akvResponse struct {
	Kid   string `json:"kid"`
	Value string `json:"value"`
}

func (a *AzureKeyVault) post(ctx context.Context, keyURL, op string, body akvRequest) (akvResponse, error) {
	var out akvResponse
	tok, err := a.opts.Token(ctx)
	if err != nil {
		return out, fmt.Errorf("azure key vault: token: %w: %w", ErrKeyUnavailable, err)
	}
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, keyURL+"/"+op+"?api-version="+url.QueryEscape(a.opts.APIVersion), bytes.NewReader(b))
	if err != nil {
		return out, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+string(tok))
	resp, err := a.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		return out, fmt.Errorf("azure key vault %s: %w: %w", op, ErrKeyUnavailable, err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return out, fmt.Errorf("azure key vault %s: %w: %w", op, ErrKeyUnavailable, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct {
				Code       string `json:"code"`
				Message    string `json:"message"`
				InnerError *struct {
					Code string `json:"code"`
				} `json:"innererror"`
			} `json:"error"`
		}
		_ = json.Unmarshal(rb, &e)
		ae := &AzureKeyVaultError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
		if e.Error.InnerError != nil {
			ae.InnerCode = e.Error.InnerError.Code
		}
		return out, fmt.Errorf("azure key vault %s %s: %w", op, a.id, ae)
	}
	if err := json.Unmarshal(rb, &out); err != nil {
		return out, fmt.Errorf("azure key vault %s: decode answer: %w", op, err)
	}
	return out, nil
}

// WrapKey implements KeyProvider.
func (a *AzureKeyVault) WrapKey(ctx context.Context, key, aad []byte) ([]byte, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("azure key vault: wrap key: key is %d bytes, want %d", len(key), KeySize)
	}
	pt := bindAAD(key, aad)
	defer Wipe(pt)
	keyURL := a.vault + "/keys/" + url.PathEscape(a.name)
	if a.ver != "" {
		keyURL += "/" + url.PathEscape(a.ver)
	}
	out, err := a.post(ctx, keyURL, "wrapkey", akvRequest{Alg: "RSA-OAEP-256", Value: base64.RawURLEncoding.EncodeToString(pt)})
	if err != nil {
		return nil, err
	}
	ct, err := decodeB64URL(out.Value)
	if err != nil || len(ct) == 0 {
		return nil, fmt.Errorf("azure key vault wrapkey: bad value in the answer")
	}
	if !a.ownsKid(out.Kid) {
		return nil, fmt.Errorf("azure key vault wrapkey: answer names key %q, not %s", out.Kid, a.id)
	}
	w := binary.AppendUvarint(nil, uint64(len(out.Kid)))
	w = append(w, out.Kid...)
	return append(w, ct...), nil
}

// ownsKid reports whether kid is a version of the configured key.
func (a *AzureKeyVault) ownsKid(kid string) bool {
	rest, ok := strings.CutPrefix(kid, a.vault+"/keys/"+a.name+"/")
	return ok && rest != "" && !strings.ContainsAny(rest, "/?#")
}

// UnwrapKey implements KeyProvider. It calls the key version named in wrapped.
func (a *AzureKeyVault) UnwrapKey(ctx context.Context, wrapped, aad []byte) ([]byte, error) {
	n, k := binary.Uvarint(wrapped)
	if k <= 0 || n == 0 || n > 2048 || uint64(len(wrapped)-k) <= n {
		return nil, fmt.Errorf("azure key vault: unwrap key: %w", ErrMalformed)
	}
	kid := string(wrapped[k : k+int(n)])
	ct := wrapped[k+int(n):]
	if !a.ownsKid(kid) {
		return nil, fmt.Errorf("azure key vault: unwrap key: %w: wrapped by %q, not %s", ErrKeyMismatch, kid, a.id)
	}
	out, err := a.post(ctx, kid, "unwrapkey", akvRequest{Alg: "RSA-OAEP-256", Value: base64.RawURLEncoding.EncodeToString(ct)})
	if err != nil {
		return nil, err
	}
	pt, err := decodeB64URL(out.Value)
	if err != nil {
		return nil, fmt.Errorf("azure key vault unwrapkey: %w: bad value", ErrMalformed)
	}
	return unbindAAD(pt, aad)
}

// decodeB64URL accepts base64url with or without padding, as Key Vault
// documents base64url but some proxies re-pad.
func decodeB64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
