package crypt

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

func TestFileKeyRevokeRestore(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cmk.key")
	fk, err := CreateFileKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CreateFileKey(path); err == nil {
		t.Fatal("CreateFileKey overwrote an existing key")
	}
	raw := bytes.Repeat([]byte{9}, KeySize)
	aad := []byte("workspace-key/ws")
	w, err := fk.WrapKey(ctx, raw, aad)
	if err != nil {
		t.Fatal(err)
	}
	check := func(wantErr error) {
		t.Helper()
		got, err := fk.UnwrapKey(ctx, w, aad)
		if wantErr == nil {
			if err != nil || !bytes.Equal(got, raw) {
				t.Fatalf("unwrap: %v", err)
			}
			return
		}
		if !errors.Is(err, wantErr) {
			t.Fatalf("unwrap: got %v; want %v", err, wantErr)
		}
	}
	check(nil)
	// Disabled: the owner may no longer read the file (root included, by rule).
	if err := os.Chmod(path, 0o000); err != nil {
		t.Fatal(err)
	}
	check(ErrKeyUnavailable)
	if _, err := fk.WrapKey(ctx, raw, aad); !errors.Is(err, ErrKeyUnavailable) {
		t.Fatalf("wrap with disabled key: %v", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	check(nil)
	// Lost access: the file is gone, then comes back.
	if err := os.Rename(path, path+".away"); err != nil {
		t.Fatal(err)
	}
	check(ErrKeyUnavailable)
	if err := os.Rename(path+".away", path); err != nil {
		t.Fatal(err)
	}
	check(nil)
	// Another key under the same name is not the customer's key.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := CreateFileKey(path); err != nil {
		t.Fatal(err)
	}
	check(ErrKeyUnavailable)
	fk2, err := OpenFileKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if fk2.KeyID() == fk.KeyID() {
		t.Fatal("two file keys share an ID")
	}
	if _, err := fk2.UnwrapKey(ctx, w, aad); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("unwrap with another key: %v", err)
	}
	if _, err := OpenFileKey(filepath.Join(t.TempDir(), "none")); !errors.Is(err, ErrKeyUnavailable) {
		t.Fatalf("missing key file: %v", err)
	}
}

func TestBindAAD(t *testing.T) {
	key := bytes.Repeat([]byte{1}, KeySize)
	b := bindAAD(key, []byte("a"))
	if _, err := unbindAAD(append([]byte(nil), b...), []byte("b")); !errors.Is(err, ErrAuth) {
		t.Fatalf("other aad: %v", err)
	}
	got, err := unbindAAD(append([]byte(nil), b...), []byte("a"))
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("unbind: %v", err)
	}
	if _, err := unbindAAD(b[:40], []byte("a")); !errors.Is(err, ErrMalformed) {
		t.Fatalf("short: %v", err)
	}
}

func golden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTransitWire checks the HTTP requests the Transit client sends and how
// it reads Vault's answers (golden bodies in testdata/transit). It is a wire
// test, not an emulation: the handler checks requests and replays answers.
// No Vault or OpenBao server is installable here (see docs/encryption.md).
func TestTransitWire(t *testing.T) {
	ctx := context.Background()
	var sentPlain []byte
	var logins, decrypts atomic.Int32
	denyNext := atomic.Bool{}
	disabled := atomic.Bool{}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req map[string]string
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || json.Unmarshal(body, &req) != nil {
			t.Errorf("bad request %s %s %q", r.Method, r.URL, body)
		}
		if r.URL.Path != "/v1/auth/approle/login" {
			if got := r.Header.Get("X-Vault-Token"); got != "hvs.CAESIKm8l0M1xexampletokenexample" {
				t.Errorf("%s: token %q", r.URL.Path, got)
			}
			if r.Header.Get("X-Vault-Namespace") != "team-a" {
				t.Errorf("%s: no namespace header", r.URL.Path)
			}
			if denyNext.CompareAndSwap(true, false) {
				w.WriteHeader(http.StatusForbidden)
				w.Write(golden(t, "transit/error_permission_denied.json"))
				return
			}
		}
		switch r.URL.Path {
		case "/v1/auth/approle/login":
			logins.Add(1)
			if req["role_id"] != "role-1" || req["secret_id"] != "s3cret" || len(req) != 2 {
				t.Errorf("login body %q", body)
			}
			w.Write(golden(t, "transit/approle_login_response.json"))
		case "/v1/custos-transit/encrypt/ws-kek":
			if len(req) != 1 {
				t.Errorf("encrypt body has %d fields", len(req))
			}
			p, err := base64.StdEncoding.DecodeString(req["plaintext"])
			if err != nil || len(p) != KeySize+aadDigestSize {
				t.Errorf("encrypt plaintext %q", req["plaintext"])
			}
			sentPlain = p
			w.Write(golden(t, "transit/encrypt_response.json"))
		case "/v1/custos-transit/decrypt/ws-kek":
			decrypts.Add(1)
			if disabled.Load() {
				w.WriteHeader(http.StatusBadRequest)
				w.Write(golden(t, "transit/error_key_disabled.json"))
				return
			}
			if req["ciphertext"] != "vault:v2:8SDd3WHDOjf7mq69CyCqYjBXAiQQAVZRkFM13ok481zoCmHnSeDX9vyf7w==" {
				t.Errorf("decrypt ciphertext %q", req["ciphertext"])
			}
			fmt.Fprintf(w, `{"request_id":"x","data":{"plaintext":%q}}`, base64.StdEncoding.EncodeToString(sentPlain))
		case "/v1/custos-transit/rewrap/ws-kek":
			fmt.Fprint(w, `{"data":{"ciphertext":"vault:v3:bmV3ZXI=","key_version":3}}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"errors":[]}`)
		}
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	writeCertPEM(t, ca, srv.Certificate().Raw)

	if _, err := NewTransit(TransitOptions{Address: "http://127.0.0.1:1", Key: "k", Token: Secret("t")}); err == nil {
		t.Fatal("plain http accepted without InsecureHTTP")
	}
	if _, err := NewTransit(TransitOptions{Address: srv.URL, Key: "k"}); err == nil {
		t.Fatal("no credentials accepted")
	}
	tr, err := NewTransit(TransitOptions{
		Address: srv.URL, Mount: "custos-transit", Key: "ws-kek", Namespace: "team-a",
		RoleID: "role-1", SecretID: Secret("s3cret"), CAFile: ca,
	})
	if err != nil {
		t.Fatal(err)
	}
	if tr.KeyID() != "transit:custos-transit/ws-kek" || strings.Contains(fmt.Sprint(tr), "s3cret") {
		t.Fatalf("KeyID %q / String %s", tr.KeyID(), tr)
	}
	key := bytes.Repeat([]byte{5}, KeySize)
	w, err := tr.WrapKey(ctx, key, []byte("aad-1"))
	if err != nil {
		t.Fatal(err)
	}
	if TransitKeyVersion(w) != 2 {
		t.Fatalf("wrapped %q: version %d; want 2", w, TransitKeyVersion(w))
	}
	got, err := tr.UnwrapKey(ctx, w, []byte("aad-1"))
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("unwrap: %v", err)
	}
	if _, err := tr.UnwrapKey(ctx, w, []byte("aad-2")); !errors.Is(err, ErrAuth) {
		t.Fatalf("unwrap with other aad: %v", err)
	}
	// A 403 (token revoked) triggers one new AppRole login.
	denyNext.Store(true)
	if _, err := tr.UnwrapKey(ctx, w, []byte("aad-1")); err != nil {
		t.Fatalf("unwrap after 403: %v", err)
	}
	if logins.Load() != 2 {
		t.Fatalf("%d logins; want 2", logins.Load())
	}
	disabled.Store(true)
	_, err = tr.UnwrapKey(ctx, w, []byte("aad-1"))
	var te *TransitError
	if !errors.Is(err, ErrKeyUnavailable) || !errors.As(err, &te) || te.Status != 400 {
		t.Fatalf("disabled key: %v", err)
	}
	rw, err := Rewrap(ctx, tr, w, []byte("aad-1"))
	if err != nil || TransitKeyVersion(rw) != 3 {
		t.Fatalf("rewrap: %q, %v", rw, err)
	}
	if _, err := tr.UnwrapKey(ctx, []byte("nonsense"), nil); !errors.Is(err, ErrMalformed) {
		t.Fatalf("malformed: %v", err)
	}
	// Unreachable server: unavailable, not corrupt.
	srv.Close()
	if _, err := tr.UnwrapKey(ctx, w, []byte("aad-1")); !errors.Is(err, ErrKeyUnavailable) {
		t.Fatalf("server down: %v", err)
	}
}

func writeCertPEM(t *testing.T, path string, der []byte) {
	t.Helper()
	b64 := base64.StdEncoding.EncodeToString(der)
	var sb strings.Builder
	sb.WriteString("-----BEGIN CERTIFICATE-----\n")
	for len(b64) > 64 {
		sb.WriteString(b64[:64] + "\n")
		b64 = b64[64:]
	}
	sb.WriteString(b64 + "\n-----END CERTIFICATE-----\n")
	if err := os.WriteFile(path, []byte(sb.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestAzureKeyVaultWire checks the keys API requests (path, api-version,
// bearer token, alg, base64url value) and the parsing of Key Vault's
// answers, with golden bodies from testdata/akv.
func TestAzureKeyVaultWire(t *testing.T) {
	ctx := context.Background()
	const kid = "https://custos-kv.vault.azure.net/keys/custos-cmk/78deebed173b48e48f55abf87ed4cf71"
	var wrapResp akvResponse
	if err := json.Unmarshal(golden(t, "akv/wrapkey_response.json"), &wrapResp); err != nil {
		t.Fatal(err)
	}
	var sent []byte
	disabled := atomic.Bool{}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok-1" || r.URL.Query().Get("api-version") != "7.4" {
			t.Errorf("%s: auth %q query %q", r.URL.Path, r.Header.Get("Authorization"), r.URL.RawQuery)
		}
		var req akvRequest
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil || req.Alg != "RSA-OAEP-256" {
			t.Errorf("body: %+v %v", req, err)
		}
		switch r.URL.Path {
		case "/keys/custos-cmk/wrapkey":
			p, err := base64.RawURLEncoding.DecodeString(req.Value)
			if err != nil || len(p) != KeySize+aadDigestSize {
				t.Errorf("wrapkey value %q", req.Value)
			}
			sent = p
			w.Write(golden(t, "akv/wrapkey_response.json"))
		case "/keys/custos-cmk/78deebed173b48e48f55abf87ed4cf71/unwrapkey":
			if disabled.Load() {
				w.WriteHeader(http.StatusForbidden)
				w.Write(golden(t, "akv/error_key_disabled.json"))
				return
			}
			var want akvRequest
			json.Unmarshal(golden(t, "akv/unwrapkey_request.json"), &want)
			if req != want {
				t.Errorf("unwrapkey body %+v; want %+v", req, want)
			}
			json.NewEncoder(w).Encode(akvResponse{Kid: kid, Value: base64.RawURLEncoding.EncodeToString(sent)})
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	// The golden kid names the real vault host; serve it from the test server.
	client := srv.Client()
	base := client.Transport
	client.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.URL.Host == "custos-kv.vault.azure.net" {
			r = r.Clone(r.Context())
			r.URL.Host = strings.TrimPrefix(srv.URL, "https://")
		}
		return base.RoundTrip(r)
	})
	for _, bad := range []string{"http://x/keys/k", "https://x/secrets/k", "https://x/keys/", "https://x/keys/a/b/c"} {
		if _, err := NewAzureKeyVault(AzureKeyVaultOptions{KeyURL: bad, Token: func(context.Context) (Secret, error) { return nil, nil }}); err == nil {
			t.Fatalf("bad key URL %q accepted", bad)
		}
	}
	akv, err := NewAzureKeyVault(AzureKeyVaultOptions{
		KeyURL: "https://custos-kv.vault.azure.net/keys/custos-cmk", HTTPClient: client,
		Token: func(context.Context) (Secret, error) { return Secret("tok-1"), nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if akv.KeyID() != "akv:custos-kv.vault.azure.net/keys/custos-cmk" {
		t.Fatalf("KeyID %q", akv.KeyID())
	}
	key := bytes.Repeat([]byte{3}, KeySize)
	w, err := akv.WrapKey(ctx, key, []byte("ws-aad"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(w, []byte(kid)) {
		t.Fatalf("wrapped key does not record the key version: %q", w)
	}
	got, err := akv.UnwrapKey(ctx, w, []byte("ws-aad"))
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("unwrap: %v", err)
	}
	disabled.Store(true)
	_, err = akv.UnwrapKey(ctx, w, []byte("ws-aad"))
	var ae *AzureKeyVaultError
	if !errors.Is(err, ErrKeyUnavailable) || !errors.As(err, &ae) || ae.InnerCode != "KeyDisabled" {
		t.Fatalf("disabled key: %v", err)
	}
	for i := range len(w) {
		if _, err := akv.UnwrapKey(ctx, w[:i], []byte("ws-aad")); err == nil {
			t.Fatalf("truncated wrapped key (%d bytes) accepted", i)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
