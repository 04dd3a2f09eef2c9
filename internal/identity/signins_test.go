package identity_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"custos/internal/catalog"
	"custos/internal/crypt"
	"custos/internal/identity"
)

// restartEnv is a token service on a real catalog file behind real HTTPS
// whose process can be "restarted": the catalog is closed and reopened and
// a new TokenService built on it, as a server restart does.
type restartEnv struct {
	t      *testing.T
	dir    string
	tenant string
	srv    *httptest.Server
	mu     sync.Mutex
	now    time.Time
	cat    *catalog.DB
	ts     *identity.TokenService
}

func newRestartEnv(t *testing.T) *restartEnv {
	t.Helper()
	e := &restartEnv{t: t, dir: t.TempDir(), now: time.Now()}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		ts := e.ts
		e.mu.Unlock()
		ts.Handler().ServeHTTP(w, r)
	})
	e.srv = httptest.NewTLSServer(mux)
	t.Cleanup(e.srv.Close)
	e.start()
	ctx := context.Background()
	boot, err := e.cat.Bootstrap(ctx, catalog.BootstrapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.tenant = boot.Tenant.ID
	hash, err := identity.HashPassword(rand.Reader, alicePassword, identity.Argon2Params{MemoryKiB: 8 * 1024, Time: 1, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.cat.CreateUser(ctx, identity.User{TenantID: e.tenant, ObjectID: "a11ce000-0000-4000-8000-000000000001",
		UserPrincipalName: "alice@example.test", DisplayName: "Alice", Mail: "alice@mail.example.test"}, hash, catalog.Actor{ID: "test"}); err != nil {
		t.Fatal(err)
	}
	e.restart() // the tenant now exists for the token service's tenant directory
	return e
}

func (e *restartEnv) clock() time.Time { e.mu.Lock(); defer e.mu.Unlock(); return e.now }

func (e *restartEnv) advance(d time.Duration) { e.mu.Lock(); e.now = e.now.Add(d); e.mu.Unlock() }

// start opens the catalog and builds the token service.
func (e *restartEnv) start() {
	e.t.Helper()
	ctx := context.Background()
	cat, err := catalog.Open(ctx, catalog.Options{Path: filepath.Join(e.dir, "catalog.db"), Now: e.clock})
	if err != nil {
		e.t.Fatal(err)
	}
	pk, err := crypt.OpenPlatformKey(filepath.Join(e.dir, "platform.key"))
	if err != nil {
		e.t.Fatal(err)
	}
	tenants := identity.StaticTenants{}
	if e.tenant != "" {
		tenants = identity.StaticTenants{e.tenant}
	}
	ts, err := identity.NewTokenService(identity.TokenServiceOptions{
		Store: cat, Keys: pk, Issuer: e.srv.URL, Tenants: tenants, Now: e.clock,
		RateLimit: identity.RateLimit{PerClientBurst: 100, PerAddressBurst: 100},
		PublicClients: []identity.PublicClient{{ClientID: "test-spa", DisplayName: "Test SPA", AuthorizationCode: true,
			RedirectURIs: []string{"https://app.example.test/callback"}}},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.mu.Lock()
	e.cat, e.ts = cat, ts
	e.mu.Unlock()
}

// restart closes the catalog and starts again on the same files.
func (e *restartEnv) restart() {
	e.t.Helper()
	e.mu.Lock()
	cat := e.cat
	e.mu.Unlock()
	if err := cat.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.start()
	e.t.Cleanup(func() { e.mu.Lock(); c := e.cat; e.mu.Unlock(); c.Close() })
}

func (e *restartEnv) token(form url.Values) (int, map[string]any) {
	e.t.Helper()
	res, err := e.srv.Client().PostForm(e.srv.URL+"/"+e.tenant+"/oauth2/v2.0/token", form)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		e.t.Fatalf("token answer: %v", err)
	}
	return res.StatusCode, body
}

func (e *restartEnv) browser() *http.Client {
	u := &userEnv{srv: e.srv}
	return u.browser()
}

// signInCode runs the authorization endpoint's form for alice and returns
// the code from the redirect.
func signInCode(t *testing.T, b *http.Client, authz string, q url.Values) string {
	t.Helper()
	_, page := getPage(t, b, authz+"?"+q.Encode())
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token: %s", page)
	}
	form := url.Values{"csrf_token": {m[1]}, "username": {"alice@example.test"}, "password": {alicePassword}}
	for _, h := range hiddenRE.FindAllStringSubmatch(page, -1) {
		if h[1] != "csrf_token" {
			form.Set(h[1], strings.ReplaceAll(h[2], "&amp;", "&"))
		}
	}
	res, _ := postForm(t, b, authz, form)
	if res.StatusCode != http.StatusFound {
		t.Fatalf("sign-in: %d", res.StatusCode)
	}
	loc, _ := url.Parse(res.Header.Get("Location"))
	if loc.Query().Get("code") == "" {
		t.Fatalf("redirect without code: %s", loc)
	}
	return loc.Query().Get("code")
}

// TestSignInsSurviveRestart: an authorization code issued before a restart
// is redeemed after it, once; a device code flow started before a restart,
// signed in after it and polled after another one completes, once; what the
// catalog holds is sealed; an expired code stays refused after a restart.
func TestSignInsSurviveRestart(t *testing.T) {
	e := newRestartEnv(t)
	authz := e.srv.URL + "/" + e.tenant + "/oauth2/v2.0/authorize"
	verifier := "restart-verifier-0123456789-0123456789-0123456789"
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"client_id": {"test-spa"}, "response_type": {"code"}, "redirect_uri": {"https://app.example.test/callback"},
		"scope": {"openid https://api.loganalytics.io/.default"}, "state": {"s"}, "nonce": {"nonce-1"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	code := signInCode(t, e.browser(), authz, q)

	// What the catalog holds: sealed, under the code's hash.
	ps, err := e.cat.PendingSignIns(context.Background(), e.clock())
	if err != nil || len(ps) != 1 || ps[0].Kind != identity.SignInAuthCode {
		t.Fatalf("pending sign-ins: %v %+v", err, ps)
	}
	if strings.Contains(string(ps[0].Sealed), "alice") || strings.Contains(ps[0].Key, code) || strings.Contains(string(ps[0].Sealed), "nonce-1") {
		t.Fatal("the stored sign-in is not sealed")
	}

	e.restart()
	redeem := url.Values{"grant_type": {"authorization_code"}, "client_id": {"test-spa"}, "code": {code},
		"redirect_uri": {"https://app.example.test/callback"}, "code_verifier": {verifier}}
	st, body := e.token(redeem)
	if st != 200 || body["access_token"] == nil || body["id_token"] == nil {
		t.Fatalf("redeem after restart: %d %v", st, body)
	}
	idc := idTokenClaims(t, e.srv.Client(), e.srv.URL+"/"+e.tenant, body["id_token"].(string), "test-spa", e.clock())
	if idc["nonce"] != "nonce-1" || idc["auth_time"] == nil {
		t.Fatalf("ID token after restart: %v", idc)
	}
	e.restart()
	if st, _ := e.token(redeem); st != 400 {
		t.Fatalf("code redeemed again after a restart: %d", st)
	}

	// Device code: start, restart, sign in, restart, poll.
	res, err := e.srv.Client().PostForm(e.srv.URL+"/"+e.tenant+"/oauth2/v2.0/devicecode",
		url.Values{"client_id": {identity.ClientCLI}, "scope": {"openid https://management.azure.com/.default offline_access"}})
	if err != nil {
		t.Fatal(err)
	}
	var dc map[string]any
	_ = json.NewDecoder(res.Body).Decode(&dc)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("devicecode: %d %v", res.StatusCode, dc)
	}
	e.restart()
	poll := url.Values{"grant_type": {identity.GrantDeviceCode}, "client_id": {identity.ClientCLI}, "device_code": {dc["device_code"].(string)}}
	if st, body := e.token(poll); st != 400 || body["error"] != "authorization_pending" {
		t.Fatalf("poll after restart: %d %v", st, body)
	}
	b := e.browser()
	login := dc["verification_uri"].(string)
	_, page := getPage(t, b, login)
	res, page = postForm(t, b, login, url.Values{"csrf_token": {csrfRE.FindStringSubmatch(page)[1]}, "user_code": {dc["user_code"].(string)},
		"username": {"alice@example.test"}, "password": {alicePassword}})
	if res.StatusCode != 200 || !strings.Contains(page, "signed in") {
		t.Fatalf("device login after restart: %d %s", res.StatusCode, page)
	}
	e.restart()
	e.advance(6 * time.Second)
	st, body = e.token(poll)
	if st != 200 || body["refresh_token"] == nil || body["id_token"] == nil {
		t.Fatalf("poll after sign-in and restart: %d %v", st, body)
	}
	idc = idTokenClaims(t, e.srv.Client(), e.srv.URL+"/"+e.tenant, body["id_token"].(string), identity.ClientCLI, e.clock())
	if idc["preferred_username"] != "alice@example.test" || idc["email"] != "alice@mail.example.test" || idc["auth_time"] == nil {
		t.Fatalf("device ID token: %v", idc)
	}
	e.restart()
	if st, _ := e.token(poll); st != 400 {
		t.Fatalf("device code used again after a restart: %d", st)
	}

	// An expired code stays refused after a restart.
	code = signInCode(t, e.browser(), authz, q)
	e.advance(11 * time.Minute)
	e.restart()
	redeem.Set("code", code)
	if st, body := e.token(redeem); st != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("expired code after restart: %d %v", st, body)
	}
	if ps, err := e.cat.PendingSignIns(context.Background(), e.clock()); err != nil || len(ps) != 0 {
		t.Fatalf("pending sign-ins left: %v %d", err, len(ps))
	}
}

// idTokenClaims verifies an ID token with go-jose against the service's
// discovery document and JWKS (signature, issuer, audience, lifetime) and
// returns its claims.
func idTokenClaims(t *testing.T, c *http.Client, tenantBase, raw, clientID string, now time.Time) map[string]any {
	t.Helper()
	var disc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	getJSON(t, c, tenantBase+"/v2.0/.well-known/openid-configuration", &disc)
	var jwks jose.JSONWebKeySet
	getJSON(t, c, disc.JWKSURI, &jwks)
	tok, err := josejwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("parse ID token: %v", err)
	}
	var std josejwt.Claims
	var all map[string]any
	if err := tok.Claims(jwks, &std, &all); err != nil {
		t.Fatalf("verify ID token signature: %v", err)
	}
	if err := std.ValidateWithLeeway(josejwt.Expected{Issuer: disc.Issuer, AnyAudience: josejwt.Audience{clientID}, Time: now}, time.Minute); err != nil {
		t.Fatalf("ID token claims: %v (%v)", err, all)
	}
	if std.Subject == "" || all["oid"] != std.Subject || all["tid"] == nil {
		t.Fatalf("ID token subject: %v", all)
	}
	return all
}

func getJSON(t *testing.T, c *http.Client, u string, v any) {
	t.Helper()
	res, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("GET %s: %d", u, res.StatusCode)
	}
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}
