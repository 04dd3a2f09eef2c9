package cmk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"custos/internal/catalog"
	"custos/internal/crypt"
)

const fuzzClusterID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.OperationalInsights/clusters/c1"

// FuzzPrepare feeds a client's key description (what a cluster PUT's
// keyVaultProperties carry: provider, keyVaultUri, keyName, keyVersion, the
// provider configuration and the write-only credential) to Prepare. It must
// never panic; a refusal is an *Error of kind "invalid" with a target and a
// message that never holds the credential; an accepted description is one
// Custos can use: a known provider, a configuration that decodes, a sealed
// credential that opens to the one given (and is not stored in the clear),
// a file key confined to the key directory, and a cluster from which
// Provider builds a key provider.
func FuzzPrepare(f *testing.F) {
	const tenant = `{"azure":{"tenantId":"72f988bf-86f1-41af-91ab-2d7cd011db47","clientId":"app"}}`
	f.Add("", "https://contoso.vault.azure.net", "custos", "abc123", []byte(tenant), []byte("client-secret-value"))
	f.Add("", "https://contoso.vault.azure.net/", "custos", "", []byte(tenant), []byte("client-secret-value"))
	f.Add("", "https://localhost", "k", "", []byte(tenant), []byte("client-secret-value"))
	f.Add("", "https://[::1]:443", "k", "", []byte(tenant), []byte("client-secret-value"))
	f.Add("transit", "https://vault.example:8200", "custos-ws", "", []byte(`{"transit":{"mount":"transit"}}`), []byte("hvs.token-value-123"))
	f.Add("transit", "https://vault.example:8200/sub", "k", "2", []byte(`{"transit":{"mount":"a/b","roleId":"r","appRoleMount":"approle"}}`), []byte("secret-id-value-1"))
	f.Add("transit", "http://vault:8200", "k", "", []byte(`{}`), []byte("t"))
	f.Add("", "file://KEYDIR", "k1", "", []byte(`{}`), []byte(nil))
	f.Add("file", "file://KEYDIR/", "k1", "", []byte(`{}`), []byte(nil))
	f.Add("", "file://KEYDIR", "..", "", []byte(`{}`), []byte(nil))
	f.Add("", "file://KEYDIR/../KEYDIR", "k1", "", []byte(`{}`), []byte(nil))
	f.Add("", "file:///etc", "passwd", "", []byte(`{}`), []byte(nil))
	f.Add("pkcs11", "pkcs11:token", "k", "", []byte(`{"pkcs11":{"module":"/tmp/evil.so","tokenLabel":"t"}}`), []byte("1234"))
	f.Add("hsm9000", "https://x", "k", "", []byte(`{}`), []byte(nil))
	f.Add("", "%zz", "k", "", []byte(`{}`), []byte(nil))
	// One manager for every input (opening a store per input made the
	// target run a few executions a second): Prepare keeps no state.
	m, keyDir := newManager(f)
	if _, err := crypt.CreateFileKey(filepath.Join(keyDir, "k1")); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, provider, uri, name, version string, cfgJSON, secret []byte) {
		uri = strings.ReplaceAll(uri, "KEYDIR", keyDir)
		var cfg Config
		_ = json.Unmarshal(cfgJSON, &cfg)
		spec := KeySpec{Provider: provider, KeyVaultURI: uri, KeyName: name, KeyVersion: version, Config: cfg, Secret: crypt.Secret(secret)}
		prov, config, sealed, err := m.Prepare(fuzzClusterID, spec, nil)
		// The credential is secret when it is long enough not to occur by
		// chance and not also one of the non-secret inputs.
		secretish := len(secret) >= 8 && !strings.Contains(provider+uri+name+version+string(cfgJSON)+keyDir, string(secret))
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Prepare refused with %T %v; want a *cmk.Error (the client needs an Azure code)", err, err)
			}
			if ce.Kind != "invalid" || ce.Code == "" || ce.Target == "" || ce.Message == "" {
				t.Fatalf("refusal %+v lacks a kind, code, target or message", ce)
			}
			if secretish && strings.Contains(ce.Message, string(secret)) {
				t.Fatalf("refusal message holds the credential: %q", ce.Message)
			}
			return
		}
		switch prov {
		case ProviderAzureKeyVault, ProviderTransit, ProviderFile, ProviderPKCS11:
		default:
			t.Fatalf("accepted unknown provider %q", prov)
		}
		var got Config
		if err := json.Unmarshal([]byte(config), &got); err != nil {
			t.Fatalf("stored key config %q does not decode: %v", config, err)
		}
		if secretish && (strings.Contains(config, string(secret)) || bytes.Contains(sealed, secret)) {
			t.Fatal("the credential is stored in the clear")
		}
		if len(sealed) > 0 {
			raw, err := m.opts.Platform.Open(sealed, secretAAD(fuzzClusterID))
			if err != nil || !bytes.Equal(raw, secret) {
				t.Fatalf("sealed credential opens to %q, %v; want the one given", raw, err)
			}
		}
		if prov == ProviderFile {
			p := m.filePath(name, version)
			if filepath.Dir(p) != keyDir {
				t.Fatalf("file key %q/%q resolves to %s, outside the key directory %s", name, version, p, keyDir)
			}
		}
		if prov == ProviderPKCS11 {
			return // not built without the pkcs11 tag; Prepare refuses it there
		}
		cl := catalog.Cluster{SubscriptionID: "s", ResourceGroup: "rg", Name: "c1", KeyVaultURI: uri, KeyName: name, KeyVersion: version,
			KeyProvider: prov, KeyConfig: config, KeySecretSealed: sealed}
		p, err := m.Provider(&cl)
		if err != nil {
			t.Fatalf("Prepare accepted %+v but Provider cannot build it: %v", spec, err)
		}
		if p.KeyID() == "" || len(p.KeyID()) > crypt.MaxKeyIDLen {
			t.Fatalf("provider key ID %q", p.KeyID())
		}
	})
}

// kmsAnswers is a key service (Azure Key Vault with its Entra ID token
// endpoint, or a Vault Transit server) that gives fixed, valid answers for
// the token exchange and the fuzzer's answers for the key operations. It is
// the http.Client transport of the Manager, so every byte of the answers
// goes through the real providers' parsing.
type kmsAnswers struct {
	wrap, unwrap, login answer
}

type answer struct {
	status int
	body   []byte
}

const fuzzTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"

func (k *kmsAnswers) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	reply := func(a answer) (*http.Response, error) {
		return &http.Response{StatusCode: a.status, Status: http.StatusText(a.status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(bytes.NewReader(a.body)),
			ContentLength: int64(len(a.body)), Request: r}, nil
	}
	ok := func(v any) (*http.Response, error) {
		b, _ := json.Marshal(v)
		return reply(answer{200, b})
	}
	base := "https://login.microsoftonline.com/" + fuzzTenant
	p := r.URL.Path
	switch {
	case r.URL.Host == "login.microsoftonline.com" && strings.HasSuffix(p, "/openid-configuration"):
		return ok(map[string]any{"token_endpoint": base + "/oauth2/v2.0/token", "authorization_endpoint": base + "/oauth2/v2.0/authorize",
			"issuer": base + "/v2.0", "jwks_uri": base + "/discovery/v2.0/keys", "response_types_supported": []string{"code"},
			"subject_types_supported": []string{"pairwise"}, "id_token_signing_alg_values_supported": []string{"RS256"}})
	case r.URL.Host == "login.microsoftonline.com" && strings.Contains(p, "/discovery/instance"):
		return ok(map[string]any{"tenant_discovery_endpoint": base + "/v2.0/.well-known/openid-configuration",
			"metadata": []map[string]any{{"preferred_network": "login.microsoftonline.com", "preferred_cache": "login.windows.net",
				"aliases": []string{"login.microsoftonline.com", "login.windows.net"}}}})
	case r.URL.Host == "login.microsoftonline.com" && strings.HasSuffix(p, "/token"):
		return ok(map[string]any{"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600, "access_token": "fuzz-access-token-b7e1"})
	case strings.HasSuffix(p, "/wrapkey"), strings.HasSuffix(p, "/encrypt/custos"):
		return reply(k.wrap)
	case strings.HasSuffix(p, "/unwrapkey"), strings.HasSuffix(p, "/decrypt/custos"):
		return reply(k.unwrap)
	case strings.HasSuffix(p, "/login"):
		return reply(k.login)
	}
	return reply(answer{404, []byte(`{"error":{"code":"NotFound","message":"` + r.Method + " " + p + `"}}`)})
}

var fuzzStatuses = []int{200, 200, 200, 204, 400, 401, 403, 404, 429, 500, 503}

// FuzzKeyServiceAnswers builds a cluster's key provider through the
// Manager (an Azure Key Vault key, or a Transit key logging in with
// AppRole) whose key service answers the wrap, unwrap and login requests
// with the fuzzer's statuses and bodies, and unwraps a wrapped key blob from
// the fuzzer (or the one just wrapped). Nothing may panic; a wrapped key
// must name the configured key; an unwrapped key must be KeySize bytes;
// every failure must be classified (ErrKeyUnavailable, ErrAuth, ErrMalformed
// or ErrKeyMismatch), the service's refusal (TransitError,
// AzureKeyVaultError) or a decode error of the answer, and never
// reveal the client secret or the access token unless the answer itself
// echoed them.
func FuzzKeyServiceAnswers(f *testing.F) {
	key := bytes.Repeat([]byte{7}, crypt.KeySize)
	aad := []byte("custos/fuzz-aad/v1")
	h := sha256.New()
	h.Write([]byte("custos-kek-aad\x00"))
	h.Write(aad)
	bound := h.Sum(bytes.Clone(key))
	kid := "https://contoso.vault.azure.net/keys/custos/v1"
	akvWrap := fmt.Appendf(nil, `{"kid":%q,"value":%q}`, kid, base64.RawURLEncoding.EncodeToString([]byte("rsa-ciphertext")))
	akvUnwrap := fmt.Appendf(nil, `{"kid":%q,"value":%q}`, kid, base64.RawURLEncoding.EncodeToString(bound))
	blob := append([]byte{byte(len(kid))}, kid...)
	blob = append(blob, "rsa-ciphertext"...)
	trWrap := []byte(`{"data":{"ciphertext":"vault:v1:abcd","key_version":1}}`)
	trUnwrap := fmt.Appendf(nil, `{"data":{"plaintext":%q}}`, base64.StdEncoding.EncodeToString(bound))
	login := []byte(`{"auth":{"client_token":"hvs.fuzz-client-token","lease_duration":3600}}`)
	f.Add(false, uint8(0), akvWrap, uint8(0), akvUnwrap, uint8(0), []byte(nil), []byte(nil))
	f.Add(false, uint8(0), akvWrap, uint8(0), akvUnwrap, uint8(0), []byte(nil), blob)
	f.Add(false, uint8(4), []byte(`{"error":{"code":"BadParameter","message":"m","innererror":{"code":"KeyDisabled"}}}`), uint8(5), []byte(`{"error":{"code":"Unauthorized"}}`), uint8(0), []byte(nil), []byte(nil))
	f.Add(false, uint8(0), []byte(`{"kid":"https://evil.vault.azure.net/keys/custos/v1","value":"AA"}`), uint8(0), []byte(`{"value":"!!"}`), uint8(0), []byte(nil), []byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add(false, uint8(0), []byte(`{"kid":"`+kid+`","value":""}`), uint8(9), []byte(`<html>`), uint8(0), []byte(nil), []byte{3, 'a', 'b'})
	f.Add(true, uint8(0), trWrap, uint8(0), trUnwrap, uint8(0), login, []byte(nil))
	f.Add(true, uint8(0), trWrap, uint8(0), trUnwrap, uint8(0), login, []byte("vault:v2:xyz"))
	f.Add(true, uint8(0), []byte(`{"data":{"ciphertext":"plain"}}`), uint8(6), []byte(`{"errors":["permission denied"]}`), uint8(0), login, []byte(nil))
	f.Add(true, uint8(0), trWrap, uint8(0), []byte(`{"data":{"plaintext":"%%%"}}`), uint8(4), []byte(`{"errors":["invalid role or secret ID"]}`), []byte(nil))
	f.Add(true, uint8(0), trWrap, uint8(0), trUnwrap, uint8(0), []byte(`{"auth":null}`), []byte(nil))
	// One manager for every input; each input sets the answers of the
	// shared key service (inputs run one after another in a worker).
	kms := &kmsAnswers{}
	m, _ := newManager(f)
	m.opts.HTTPClient = &http.Client{Transport: kms}
	f.Fuzz(func(t *testing.T, transit bool, ws uint8, wrapBody []byte, us uint8, unwrapBody []byte, ls uint8, loginBody []byte, wrapped []byte) {
		*kms = kmsAnswers{
			wrap:   answer{fuzzStatuses[int(ws)%len(fuzzStatuses)], wrapBody},
			unwrap: answer{fuzzStatuses[int(us)%len(fuzzStatuses)], unwrapBody},
			login:  answer{fuzzStatuses[int(ls)%len(fuzzStatuses)], loginBody},
		}
		const secret = "cmk-fuzz-client-secret-8d1f"
		p := remoteProvider(t, m, transit, secret)
		answers := string(wrapBody) + string(unwrapBody) + string(loginBody)
		check := func(op string, err error) {
			t.Helper()
			if err == nil {
				return
			}
			msg := err.Error()
			for _, s := range []string{secret, "fuzz-access-token-b7e1"} {
				if strings.Contains(msg, s) && !strings.Contains(answers, s) {
					t.Fatalf("%s error reveals a credential: %q", op, msg)
				}
			}
			var syn *json.SyntaxError
			var te *crypt.TransitError
			var ae *crypt.AzureKeyVaultError
			var typ *json.UnmarshalTypeError
			switch {
			case errors.Is(err, crypt.ErrKeyUnavailable), errors.Is(err, crypt.ErrAuth), errors.Is(err, crypt.ErrMalformed),
				errors.Is(err, crypt.ErrKeyMismatch), errors.As(err, &syn), errors.As(err, &typ),
				errors.As(err, &te), errors.As(err, &ae), // the service's own refusal, kept as such
				strings.Contains(msg, "decode answer"), strings.Contains(msg, "bad value in the answer"),
				strings.Contains(msg, "unexpected ciphertext format"), strings.Contains(msg, "answer names key"):
			default:
				t.Fatalf("%s error is not classified for the store: %T %v", op, err, err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		w, err := p.WrapKey(ctx, key, aad)
		check("wrap", err)
		if err == nil {
			if transit && !bytes.HasPrefix(w, []byte("vault:v")) {
				t.Fatalf("wrapped key %q is not a Transit ciphertext", w)
			}
			if !transit && !bytes.Contains(w, []byte("https://contoso.vault.azure.net/keys/custos/")) {
				t.Fatalf("wrapped key %q does not name the configured key", w)
			}
		}
		if len(wrapped) > 0 {
			w = wrapped
		}
		got, err := p.UnwrapKey(ctx, w, aad)
		check("unwrap", err)
		if err == nil && len(got) != crypt.KeySize {
			t.Fatalf("unwrapped a %d-byte key; want %d", len(got), crypt.KeySize)
		}
	})
}

// TestKeyServiceAnswersReachTheProviders makes sure FuzzKeyServiceAnswers
// exercises the answers' parsing: with valid answers both providers built
// by the Manager wrap and unwrap through the fixed token exchange.
func TestKeyServiceAnswersReachTheProviders(t *testing.T) {
	key := bytes.Repeat([]byte{7}, crypt.KeySize)
	aad := []byte("custos/fuzz-aad/v1")
	h := sha256.New()
	h.Write([]byte("custos-kek-aad\x00"))
	h.Write(aad)
	bound := h.Sum(bytes.Clone(key))
	kid := "https://contoso.vault.azure.net/keys/custos/v1"
	for _, transit := range []bool{false, true} {
		kms := &kmsAnswers{
			wrap:   answer{200, fmt.Appendf(nil, `{"kid":%q,"value":"cnNh"}`, kid)},
			unwrap: answer{200, fmt.Appendf(nil, `{"kid":%q,"value":%q}`, kid, base64.RawURLEncoding.EncodeToString(bound))},
		}
		if transit {
			kms.wrap.body = []byte(`{"data":{"ciphertext":"vault:v1:abcd"}}`)
			kms.unwrap.body = fmt.Appendf(nil, `{"data":{"plaintext":%q}}`, base64.StdEncoding.EncodeToString(bound))
			kms.login = answer{200, []byte(`{"auth":{"client_token":"hvs.x","lease_duration":60}}`)}
		}
		m, _ := newManager(t)
		m.opts.HTTPClient = &http.Client{Transport: kms}
		p := remoteProvider(t, m, transit, "s3cret-value")
		w, err := p.WrapKey(context.Background(), key, aad)
		if err != nil {
			t.Fatalf("transit=%v: wrap: %v", transit, err)
		}
		got, err := p.UnwrapKey(context.Background(), w, aad)
		if err != nil || !bytes.Equal(got, key) {
			t.Fatalf("transit=%v: unwrap: %x %v", transit, got, err)
		}
	}
}

// TestPrepareRefusesKeyVaultHostWithoutDomain is FuzzPrepare's finding:
// an Azure Key Vault keyVaultUri whose host has no domain (https://localhost,
// https://[::1]) was accepted, and every later Provider call for the
// cluster failed ("keyVaultUri host has no domain"), so the cluster was
// stored with a key Custos could never build.
func TestPrepareRefusesKeyVaultHostWithoutDomain(t *testing.T) {
	m, _ := newManager(t)
	for _, uri := range []string{"https://localhost", "https://[::1]:443", "https://vault/"} {
		_, _, _, err := m.Prepare(fuzzClusterID, KeySpec{KeyVaultURI: uri, KeyName: "k",
			Config: Config{Azure: &AzureConfig{TenantID: fuzzTenant, ClientID: "app"}}, Secret: crypt.Secret("s")}, nil)
		var ce *Error
		if !errors.As(err, &ce) || ce.Target != "properties.keyVaultProperties.keyVaultUri" {
			t.Errorf("%s: %v; want InvalidParameter on keyVaultUri", uri, err)
		}
	}
}

// TestProbeNamesAnUnclassifiedRefusal: FuzzKeyServiceAnswers showed that a
// Transit AppRole login refused with 400 (what Vault answers for a wrong
// secret ID) is not classified by the provider; the cluster validation
// said only "provider error". It now names the HTTP status (never the
// answer's text).
func TestProbeNamesAnUnclassifiedRefusal(t *testing.T) {
	kms := &kmsAnswers{login: answer{400, []byte(`{"errors":["invalid role or secret ID"]}`)}}
	m, _ := newManager(t)
	m.opts.HTTPClient = &http.Client{Transport: kms}
	p := remoteProvider(t, m, true, "wrong-secret-id")
	err := m.Probe(context.Background(), p)
	var ce *Error
	if !errors.As(err, &ce) || !strings.Contains(ce.Message, "HTTP 400") || strings.Contains(ce.Message, "invalid role") {
		t.Fatalf("Probe: %v; want KeyVaultKeyNotAccessible naming HTTP 400 and not the answer's text", err)
	}
}

// remoteProvider prepares a cluster whose key is remote — an Azure Key
// Vault key (a service principal's client secret), or with transit a Vault
// Transit key (an AppRole secret ID) — and builds its provider through m.
func remoteProvider(t testing.TB, m *Manager, transit bool, secret string) crypt.KeyProvider {
	t.Helper()
	spec := KeySpec{KeyVaultURI: "https://contoso.vault.azure.net", KeyName: "custos",
		Config: Config{Azure: &AzureConfig{TenantID: fuzzTenant, ClientID: "app"}}, Secret: crypt.Secret(secret)}
	if transit {
		spec = KeySpec{Provider: ProviderTransit, KeyVaultURI: "https://vault.example:8200", KeyName: "custos",
			Config: Config{Transit: &TransitConfig{RoleID: "role"}}, Secret: crypt.Secret(secret)}
	}
	prov, cfg, sealed, err := m.Prepare(fuzzClusterID, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := m.Provider(&catalog.Cluster{SubscriptionID: "s", ResourceGroup: "rg", Name: "c1", KeyVaultURI: spec.KeyVaultURI,
		KeyName: "custos", KeyProvider: prov, KeyConfig: cfg, KeySecretSealed: sealed})
	if err != nil {
		t.Fatal(err)
	}
	return p
}
