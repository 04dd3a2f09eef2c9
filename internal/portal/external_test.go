package portal

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// testIdP is a small OpenID provider over real TLS with a real RSA key:
// discovery, JWKS, and a token endpoint that checks the client secret and
// the PKCE verifier and issues a signed ID token. Fields let a test spoil
// the ID token.
type testIdP struct {
	srv      *httptest.Server
	key      *rsa.PrivateKey
	signWith *rsa.PrivateKey // nil: key
	mu       sync.Mutex
	forms    []url.Values
	aud      string // ID token audience (default the client ID)
	nonce    string // "" copies the authorize request's nonce
	lastNonc string
}

func newTestIdP(t *testing.T) *testIdP {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	idp := &testIdP{key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": idp.issuer(), "authorization_endpoint": idp.srv.URL + "/authorize",
			"token_endpoint": idp.srv.URL + "/token", "jwks_uri": idp.srv.URL + "/keys"})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &idp.key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		idp.mu.Lock()
		idp.forms = append(idp.forms, r.PostForm)
		aud, nonce := idp.aud, idp.nonce
		idp.mu.Unlock()
		if id, secret, ok := r.BasicAuth(); !ok || id != "portal" || secret != "s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
			return
		}
		if aud == "" {
			aud = "portal"
		}
		if nonce == "" {
			nonce = idp.lastNonc
		}
		claims, _ := json.Marshal(map[string]any{"iss": idp.issuer(), "sub": "user-7", "aud": aud, "exp": 4102444800, "nonce": nonce, "name": "Grace"})
		signer := idp.key
		if idp.signWith != nil {
			signer = idp.signWith
		}
		sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: signer}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
		if err != nil {
			t.Error(err)
			return
		}
		jws, _ := sig.Sign(claims)
		idTok, _ := jws.CompactSerialize()
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "ext.access." + r.PostForm.Get("grant_type"), "id_token": idTok,
			"refresh_token": "ext-rt", "expires_in": 600, "token_type": "Bearer"})
	})
	idp.srv = httptest.NewTLSServer(mux)
	t.Cleanup(idp.srv.Close)
	return idp
}

func (idp *testIdP) issuer() string { return idp.srv.URL + "/" }

func newExternalPortal(t *testing.T, idp *testIdP) (*Portal, *backend) {
	t.Helper()
	be := &backend{}
	p := New(Options{Tenant: "tenant-1", Backend: func() http.Handler { return be }, Now: newClock().now,
		External: []ExternalProvider{{Name: "Test IdP", Issuer: idp.issuer(), ClientID: "portal", ClientSecret: []byte("s3cret"), HTTPClient: idp.srv.Client()}}})
	return p, be
}

// startExternal begins a sign-in with provider 0 and returns the login
// cookie and the authorize request's parameters.
func startExternal(t *testing.T, h http.Handler, idp *testIdP) (*http.Cookie, url.Values) {
	t.Helper()
	w := do(t, h, "GET", "/portal/login?provider=0", nil)
	if w.Code != http.StatusFound {
		t.Fatalf("login = %d %s", w.Code, w.Body.String())
	}
	loc, _ := url.Parse(w.Header().Get("Location"))
	if !strings.HasPrefix(loc.String(), idp.srv.URL+"/authorize?") {
		t.Fatalf("redirected to %s, not the provider", loc)
	}
	q := loc.Query()
	idp.mu.Lock()
	idp.lastNonc = q.Get("nonce")
	idp.mu.Unlock()
	return cookieOf(t, w, loginCookie), q
}

// The portal signs in with an external provider: PKCE S256, state and
// nonce at the provider, the code redeemed with the client secret and the
// verifier, the ID token verified, and the provider's access token is what
// every API call carries.
func TestExternalSignInUsesPKCEAndTheProvidersToken(t *testing.T) {
	idp := newTestIdP(t)
	p, be := newExternalPortal(t, idp)
	h := p.Handler()

	w := do(t, h, "GET", "/portal/session", nil)
	if !strings.Contains(w.Body.String(), `"login":"/portal/login?provider=0"`) || !strings.Contains(w.Body.String(), `"name":"Test IdP"`) {
		t.Fatalf("signed-out session lists no provider: %s", w.Body.String())
	}
	login, q := startExternal(t, h, idp)
	if q.Get("client_id") != "portal" || q.Get("code_challenge_method") != "S256" || q.Get("nonce") == "" || q.Get("state") == "" ||
		q.Get("redirect_uri") != "https://custos.test/portal/callback" || !strings.Contains(q.Get("scope"), "openid") {
		t.Fatalf("authorize request: %v", q)
	}
	w = do(t, h, "GET", "/portal/callback?code=c1&state="+url.QueryEscape(q.Get("state")), nil, login)
	if w.Code != http.StatusFound {
		t.Fatalf("callback = %d %s", w.Code, w.Body.String())
	}
	sess := cookieOf(t, w, sessionCookie)
	form := idp.forms[0]
	sum := sha256.Sum256([]byte(form.Get("code_verifier")))
	if form.Get("grant_type") != "authorization_code" || form.Get("code") != "c1" || base64.RawURLEncoding.EncodeToString(sum[:]) != q.Get("code_challenge") {
		t.Fatalf("token request: %v (challenge %s)", form, q.Get("code_challenge"))
	}
	w = do(t, h, "GET", "/portal/session", nil, sess)
	if !strings.Contains(w.Body.String(), `"name":"Grace"`) || !strings.Contains(w.Body.String(), `"objectId":"user-7"`) {
		t.Fatalf("session: %s", w.Body.String())
	}
	for _, path := range []string{"/portal/api/management/subscriptions?api-version=2022-12-01", "/portal/api/query/v1/workspaces/w/metadata"} {
		if w := do(t, h, "GET", path, map[string]string{"Sec-Fetch-Site": "same-origin"}, sess); w.Code != http.StatusOK {
			t.Fatalf("%s = %d %s", path, w.Code, w.Body.String())
		}
	}
	for _, r := range be.forwarded {
		if got := r.Header.Get("Authorization"); got != "Bearer ext.access.authorization_code" {
			t.Fatalf("forwarded %s with %q", r.URL.Path, got)
		}
	}
	if len(be.tokenForm) != 0 {
		t.Fatalf("the embedded token service was asked for tokens: %v", be.tokenForm)
	}
}

// An ID token that is not for this sign-in — another nonce, another
// audience, a key the provider does not publish — starts no session.
func TestExternalSignInRefusesForeignIDTokens(t *testing.T) {
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for name, spoil := range map[string]func(*testIdP){
		"nonce":     func(i *testIdP) { i.nonce = "someone-elses" },
		"audience":  func(i *testIdP) { i.aud = "another-client" },
		"signature": func(i *testIdP) { i.signWith = other },
	} {
		t.Run(name, func(t *testing.T) {
			idp := newTestIdP(t)
			spoil(idp)
			p, _ := newExternalPortal(t, idp)
			h := p.Handler()
			login, q := startExternal(t, h, idp)
			w := do(t, h, "GET", "/portal/callback?code=c1&state="+url.QueryEscape(q.Get("state")), nil, login)
			if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "not accepted") {
				t.Fatalf("callback = %d %s", w.Code, w.Body.String())
			}
			for _, c := range w.Result().Cookies() {
				if c.Name == sessionCookie && c.Value != "" {
					t.Fatal("a session was started")
				}
			}
		})
	}
	p, _ := newExternalPortal(t, newTestIdP(t))
	if w := do(t, p.Handler(), "GET", "/portal/login?provider=7", nil); w.Code != http.StatusBadRequest {
		t.Fatalf("unknown provider = %d", w.Code)
	}
}
