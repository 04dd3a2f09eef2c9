package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"custos/internal/crypt"
)

// memStore is an in-memory Store and TenantDirectory for this package's
// tests (the catalog provides the real one).
type memStore struct {
	mu      sync.Mutex
	tenants map[string]bool
	sps     map[string]ServicePrincipal // tenant/app → sp
	keys    map[string]SigningKey
	failSPs error

	creds        map[string][]KeyCredential // tenant/app → key credentials
	disabled     map[string]bool            // object ID → disabled
	enrollTokens map[string]memEnrollToken  // hex hash → token
}

type memEnrollToken struct {
	expires time.Time
	used    bool
	rg      string
	tenant  string
}

func newMemStore(tenants ...string) *memStore {
	m := &memStore{tenants: map[string]bool{}, sps: map[string]ServicePrincipal{}, keys: map[string]SigningKey{},
		creds: map[string][]KeyCredential{}, disabled: map[string]bool{}, enrollTokens: map[string]memEnrollToken{}}
	for _, t := range tenants {
		m.tenants[t] = true
	}
	return m
}

func (m *memStore) TenantExists(_ context.Context, id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tenants[id], nil
}

func (m *memStore) setTenant(id string, exists bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tenants[id] = exists
}

func (m *memStore) ServicePrincipalByAppID(_ context.Context, tenantID, appID string) (ServicePrincipal, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failSPs != nil {
		return ServicePrincipal{}, m.failSPs
	}
	sp, ok := m.sps[tenantID+"/"+appID]
	if !ok {
		return ServicePrincipal{}, ErrNotFound
	}
	sp.Secrets = append([]ClientSecret(nil), sp.Secrets...)
	return sp, nil
}

func (m *memStore) CreateServicePrincipal(_ context.Context, sp ServicePrincipal) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sps[sp.TenantID+"/"+sp.AppID] = sp
	return nil
}

func (m *memStore) AddClientSecret(_ context.Context, tenantID, appID string, s ClientSecret) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	sp, ok := m.sps[tenantID+"/"+appID]
	if !ok {
		return ErrNotFound
	}
	sp.Secrets = append(sp.Secrets, s)
	m.sps[tenantID+"/"+appID] = sp
	return nil
}

func (m *memStore) SigningKeys(context.Context) ([]SigningKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]SigningKey, 0, len(m.keys))
	for _, k := range m.keys {
		out = append(out, k)
	}
	return out, nil
}

func (m *memStore) PutSigningKey(_ context.Context, k SigningKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keys[k.KID] = k
	return nil
}

func (m *memStore) DeleteSigningKey(_ context.Context, kid string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.keys[kid]; !ok {
		return ErrNotFound
	}
	delete(m.keys, kid)
	return nil
}

func (m *memStore) PrincipalState(_ context.Context, tenantID, objectID string) (PrincipalState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, sp := range m.sps {
		if sp.TenantID == tenantID && sp.ObjectID == objectID {
			kind := sp.Kind
			if kind == "" {
				kind = KindServicePrincipal
			}
			return PrincipalState{Kind: kind, ResourceID: sp.ResourceID, Enabled: !m.disabled[objectID]}, nil
		}
	}
	return PrincipalState{}, ErrNotFound
}

func (m *memStore) setDisabled(objectID string, disabled bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.disabled[objectID] = disabled
}

func (m *memStore) KeyCredentials(_ context.Context, tenantID, appID string) ([]KeyCredential, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]KeyCredential(nil), m.creds[tenantID+"/"+appID]...), nil
}

func (m *memStore) AddKeyCredential(_ context.Context, tenantID, appID string, k KeyCredential) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.sps[tenantID+"/"+appID]; !ok {
		return ErrNotFound
	}
	m.creds[tenantID+"/"+appID] = append(m.creds[tenantID+"/"+appID], k)
	return nil
}

func (m *memStore) addEnrollToken(tenant, rg string, hash []byte, expires time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.enrollTokens[string(hash)] = memEnrollToken{expires: expires, rg: rg, tenant: tenant}
}

func (m *memStore) EnrollMachine(_ context.Context, e MachineEnrollment) (EnrolledMachine, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	tok, ok := m.enrollTokens[string(e.TokenHash)]
	if !ok || tok.used || !time.Now().Before(tok.expires) {
		return EnrolledMachine{}, ErrEnrollmentTokenInvalid
	}
	id := tok.rg + "/providers/Microsoft.HybridCompute/machines/" + e.Name
	for _, sp := range m.sps {
		if strings.EqualFold(sp.ResourceID, id) {
			return EnrolledMachine{}, ErrConflict
		}
	}
	tok.used = true
	m.enrollTokens[string(e.TokenHash)] = tok
	m.sps[tok.tenant+"/"+e.AppID] = ServicePrincipal{TenantID: tok.tenant, ObjectID: e.ObjectID, AppID: e.AppID,
		DisplayName: e.Name, Kind: KindManagedIdentity, ResourceID: id}
	m.creds[tok.tenant+"/"+e.AppID] = []KeyCredential{e.Key}
	return EnrolledMachine{ResourceID: id, Name: e.Name, Location: "local", TenantID: tok.tenant, ObjectID: e.ObjectID, AppID: e.AppID}, nil
}

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const (
	tenantA = "aaaaaaaa-0000-4000-8000-000000000001"
	tenantB = "bbbbbbbb-0000-4000-8000-000000000002"
)

// testCA is a CA and a server certificate for 127.0.0.1 and localhost.
type testCA struct {
	pool   *x509.CertPool
	server tls.Certificate
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "custos test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return &testCA{pool: pool, server: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}}
}

func (ca *testCA) client() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.pool, MinVersion: tls.VersionTLS12}}}
}

// testEnv is a token service behind real HTTPS on 127.0.0.1 with a test CA,
// plus a protected /whoami endpoint that authenticates with it.
type testEnv struct {
	t      testing.TB
	store  *memStore
	clock  *testClock
	keys   *crypt.PlatformKey
	ts     *TokenService
	srv    *httptest.Server
	ca     *testCA
	client *http.Client
	sp     ServicePrincipal
	secret string
}

type envOption func(*TokenServiceOptions)

func newTestEnv(t testing.TB, opts ...envOption) *testEnv {
	t.Helper()
	e := &testEnv{t: t, store: newMemStore(tenantA), clock: &testClock{t: time.Now().Truncate(time.Second)}}
	pk, err := crypt.OpenPlatformKey(filepath.Join(t.TempDir(), "platform.key"))
	if err != nil {
		t.Fatal(err)
	}
	e.keys = pk
	e.ca = newTestCA(t)
	e.client = e.ca.client()

	var ts *TokenService
	mux := http.NewServeMux()
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		p, err := ts.Authenticate(r, r.URL.Query().Get("aud"))
		if err != nil {
			ae := err.(*AuthError)
			w.Header().Set("WWW-Authenticate", ts.Challenge(r, err))
			w.Header().Set("x-ms-error-code", ae.Code)
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": ae.Code, "message": ae.Message}})
			return
		}
		_ = json.NewEncoder(w).Encode(p)
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{e.ca.server}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	e.srv = srv

	o := TokenServiceOptions{Store: e.store, Keys: pk, Issuer: srv.URL,
		IssuerAliases: []string{strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)},
		Now:           e.clock.Now}
	for _, f := range opts {
		f(&o)
	}
	ts, err = NewTokenService(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ts.Patterns() {
		mux.Handle(p, ts.Handler())
	}
	e.ts = ts
	e.sp, e.secret, err = ts.CreateServicePrincipal(context.Background(), tenantA, "test app")
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// whoami calls the protected endpoint with the given Authorization header.
func (e *testEnv) whoami(authz, aud string) (*http.Response, map[string]any) {
	e.t.Helper()
	req, err := http.NewRequest("GET", e.srv.URL+"/whoami?aud="+aud, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		e.t.Fatalf("decode whoami: %v", err)
	}
	return resp, body
}

// errCode returns the Azure error code of a whoami error body.
func errCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func b64json(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b64.EncodeToString(data)
}

func b64std(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// newTestSealer returns a real platform key in a temporary directory.
func newTestSealer(t testing.TB) *crypt.PlatformKey {
	t.Helper()
	pk, err := crypt.OpenPlatformKey(filepath.Join(t.TempDir(), "platform.key"))
	if err != nil {
		t.Fatal(err)
	}
	return pk
}

func newTestRand() io.Reader { return rand.Reader }
