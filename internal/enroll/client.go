package enroll

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Files Enroll writes in its directory.
const (
	KeyFile      = "machine.key"   // PKCS#8 PEM private key, 0600
	IdentityFile = "identity.json" // Response, 0600
)

// Configuration endpoint: the machine's resource ID followed by this suffix,
// under the server's endpoint, with api-version ConfigurationAPIVersion. It
// accepts tokens for the ingestion audience (https://monitor.azure.com).
const (
	ConfigurationSuffix     = "/agentConfiguration"
	ConfigurationAPIVersion = "2024-07-10"
)

// Errors of the client side.
var (
	// ErrAlreadyEnrolled is returned by Enroll when the directory already
	// holds an identity; re-enrolling is an explicit decision (Force).
	ErrAlreadyEnrolled = errors.New("enroll: this directory already holds an enrolled identity")
	// ErrNotEnrolled is returned by Load when the directory holds no identity.
	ErrNotEnrolled = errors.New("enroll: not enrolled")
)

// Options configures Enroll.
type Options struct {
	// Endpoint is the Custos server's base URL, https://host:port. Required.
	Endpoint string
	// Token is the one-time enrollment token. Required.
	Token string
	// CAFile is a PEM file of CA certificates to trust instead of the
	// system pool; "" uses the system pool.
	CAFile string
	// Dir receives the private key and the identity (created 0700). Required.
	Dir string
	// Name is the machine resource name; "" means the short host name.
	Name string
	// Hostname overrides os.Hostname.
	Hostname string
	// OSType, OSName, OSVersion and AgentVersion are reported to the server.
	OSType, OSName, OSVersion, AgentVersion string
	// Force replaces an identity already in Dir.
	Force bool
	// Cluster enrolls a Kubernetes cluster (ClusterPath; Name is required)
	// instead of a machine.
	Cluster bool
	// Distribution and KubernetesVersion describe the cluster (Cluster only).
	Distribution, KubernetesVersion string
	// HTTPClient overrides the client built from CAFile.
	HTTPClient *http.Client
}

// Identity is an enrolled machine: its managed identity and private key.
// It is immutable and safe for concurrent use.
type Identity struct {
	Response
	key crypto.Signer
}

// Key returns the machine's private key.
func (id *Identity) Key() crypto.Signer { return id.key }

// NewHTTPClient returns an HTTPS client (TLS 1.2+, verification always on)
// that trusts the CAs in caFile, or the system pool when caFile is "".
func NewHTTPClient(caFile string) (*http.Client, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pemData, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemData) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", caFile)
		}
		cfg.RootCAs = pool
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	return &http.Client{Transport: tr, Timeout: time.Minute}, nil
}

// Enroll creates the machine key in opts.Dir, enrolls it with the server and
// stores the identity. The private key never leaves the machine. On failure
// nothing is left in Dir except a key that a retry reuses.
func Enroll(ctx context.Context, opts Options) (*Identity, error) {
	if opts.Endpoint == "" || opts.Token == "" || opts.Dir == "" {
		return nil, errors.New("enroll: endpoint, token and directory are required")
	}
	base, err := baseURL(opts.Endpoint)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(opts.Dir, IdentityFile)); err == nil && !opts.Force {
		return nil, ErrAlreadyEnrolled
	}
	client := opts.HTTPClient
	if client == nil {
		if client, err = NewHTTPClient(opts.CAFile); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create identity directory: %w", err)
	}
	// Re-enrolling (Force) over a working identity prepares the new key
	// beside the old one and swaps it in only after the server accepted it,
	// so that a refused re-enrollment leaves the working identity intact.
	keyPath := filepath.Join(opts.Dir, KeyFile)
	pendingKey := ""
	if _, err := os.Stat(filepath.Join(opts.Dir, IdentityFile)); err == nil && opts.Force {
		pendingKey = keyPath + ".pending"
		keyPath = pendingKey
	}
	key, err := newKey(keyPath, opts.Force)
	if err != nil {
		return nil, err
	}
	jwk, err := PublicJWK(key.Public())
	if err != nil {
		return nil, err
	}
	host := opts.Hostname
	if host == "" {
		if host, err = os.Hostname(); err != nil {
			return nil, fmt.Errorf("host name: %w", err)
		}
	}
	name := opts.Name
	path := Path
	if opts.Cluster {
		if name == "" {
			return nil, errors.New("enroll: a cluster enrollment needs the cluster's name")
		}
		path = ClusterPath
	}
	if name == "" {
		name = ShortHostname(host)
	}
	body, err := json.Marshal(Request{EnrollmentToken: opts.Token, Name: name, Hostname: host, OSType: opts.OSType,
		OSName: opts.OSName, OSVersion: opts.OSVersion, AgentVersion: opts.AgentVersion, PublicKey: jwk,
		Distribution: opts.Distribution, KubernetesVersion: opts.KubernetesVersion})
	if err != nil {
		return nil, fmt.Errorf("encode enrollment request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("enroll: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return nil, apiError("enroll", resp.StatusCode, data)
	}
	var out Response
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("enroll: decode answer: %w", err)
	}
	kid, err := Thumbprint(key.Public())
	if err != nil {
		return nil, err
	}
	if out.ID == "" || out.ClientID == "" || out.TenantID == "" || out.TokenEndpoint == "" || out.KeyID != kid {
		return nil, errors.New("enroll: the server's answer is incomplete or names another key")
	}
	idData, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, err
	}
	if pendingKey != "" {
		if err := os.Rename(pendingKey, filepath.Join(opts.Dir, KeyFile)); err != nil {
			return nil, fmt.Errorf("enroll: install the new key: %w", err)
		}
	}
	if err := writeFileAtomic(filepath.Join(opts.Dir, IdentityFile), append(idData, '\n')); err != nil {
		return nil, err
	}
	return &Identity{Response: out, key: key}, nil
}

// Load reads an enrolled identity from dir.
func Load(dir string) (*Identity, error) {
	data, err := os.ReadFile(filepath.Join(dir, IdentityFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotEnrolled
	}
	if err != nil {
		return nil, fmt.Errorf("read identity: %w", err)
	}
	var out Response
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("decode %s: %w", IdentityFile, err)
	}
	key, err := readKey(filepath.Join(dir, KeyFile))
	if err != nil {
		return nil, err
	}
	if kid, err := Thumbprint(key.Public()); err != nil || kid != out.KeyID {
		return nil, fmt.Errorf("%s does not belong to the identity in %s", KeyFile, IdentityFile)
	}
	return &Identity{Response: out, key: key}, nil
}

// newKey reuses the key at path (a retried enrollment) unless force, or
// creates a new ECDSA P-256 key there with mode 0600.
func newKey(path string, force bool) (crypto.Signer, error) {
	if !force {
		if k, err := readKey(path); err == nil {
			return k, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate machine key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("encode machine key: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	clear(der)
	if err := writeFileAtomic(path, data); err != nil {
		return nil, err
	}
	return k, nil
}

func readKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is accessible to other users; it must be mode 0600", path)
	}
	blk, _ := pem.Decode(data)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s is not a PKCS#8 PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	switch s := k.(type) {
	case *ecdsa.PrivateKey:
		return s, nil
	case *rsa.PrivateKey:
		return s, nil
	}
	return nil, fmt.Errorf("%s: unsupported key type %T", path, k)
}

// writeFileAtomic writes data to path (0600) through a synced temporary file.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func baseURL(endpoint string) (string, error) {
	u, err := url.Parse(strings.TrimRight(endpoint, "/"))
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return "", fmt.Errorf("enroll: endpoint %q must be an https base URL such as https://custos.example:8443", endpoint)
	}
	return u.Scheme + "://" + u.Host, nil
}

// Assertion returns a client assertion (RFC 7523 JWT) for audience (the
// token endpoint), signed by the machine key: ES256 for EC keys, PS256 for
// RSA keys, with kid = KeyID. It is valid for five minutes.
func (id *Identity) Assertion(audience string, now time.Time) (string, error) {
	var jtiRaw [16]byte
	if _, err := rand.Read(jtiRaw[:]); err != nil {
		return "", fmt.Errorf("assertion: %w", err)
	}
	alg := "ES256"
	if _, ok := id.key.(*rsa.PrivateKey); ok {
		alg = "PS256"
	}
	hdr, _ := json.Marshal(map[string]string{"alg": alg, "typ": "JWT", "kid": id.KeyID})
	claims, _ := json.Marshal(map[string]any{
		"aud": audience, "iss": id.ClientID, "sub": id.ClientID, "jti": hex.EncodeToString(jtiRaw[:]),
		"nbf": now.Unix(), "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	})
	input := b64.EncodeToString(hdr) + "." + b64.EncodeToString(claims)
	sum := sha256.Sum256([]byte(input))
	var sig []byte
	var err error
	switch k := id.key.(type) {
	case *ecdsa.PrivateKey:
		var r, s *big.Int
		if r, s, err = ecdsa.Sign(rand.Reader, k, sum[:]); err == nil {
			sig = make([]byte, 64)
			r.FillBytes(sig[:32])
			s.FillBytes(sig[32:])
		}
	case *rsa.PrivateKey:
		sig, err = rsa.SignPSS(rand.Reader, k, crypto.SHA256, sum[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	default:
		err = fmt.Errorf("unsupported key type %T", id.key)
	}
	if err != nil {
		return "", fmt.Errorf("sign assertion: %w", err)
	}
	return input + "." + b64.EncodeToString(sig), nil
}

// apiError turns an error answer (Azure envelope or OAuth error) into an
// *APIError.
func apiError(op string, status int, body []byte) error {
	e := &APIError{Op: op, Status: status}
	var env struct {
		Error json.RawMessage `json:"error"`
		Desc  string          `json:"error_description"`
	}
	if json.Unmarshal(body, &env) == nil {
		var inner struct{ Code, Message string }
		if json.Unmarshal(env.Error, &inner) == nil && inner.Code != "" {
			e.Code, e.Message = inner.Code, inner.Message
		} else {
			var code string
			if json.Unmarshal(env.Error, &code) == nil {
				e.Code, e.Message = code, env.Desc
			}
		}
	}
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	return e
}

// APIError is an error answer from the server. Code is the Azure error code
// or the OAuth error ("invalid_client", "unauthorized_client", ...).
type APIError struct {
	Op      string
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s: %d %s: %s", e.Op, e.Status, e.Code, e.Message)
}

// Rejected reports whether the server refused the credentials or the request
// itself (a 4xx other than 408 and 429), so that retrying unchanged cannot
// help: for example a disabled or deleted identity.
func (e *APIError) Rejected() bool {
	return e.Status >= 400 && e.Status < 500 && e.Status != http.StatusRequestTimeout && e.Status != http.StatusTooManyRequests
}
