package identity_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"custos/internal/catalog"
	"custos/internal/crypt"
	"custos/internal/identity"
	"custos/internal/rbac"
)

// userEnv is a token service on the real catalog behind real HTTPS, with
// one local user (alice) and a route that authenticates and authorizes.
type userEnv struct {
	t      *testing.T
	cat    *catalog.DB
	ts     *identity.TokenService
	srv    *httptest.Server
	tenant string
	alice  identity.User
	now    time.Time
	mu     sync.Mutex
	fails  []identity.SignInFailure
}

const alicePassword = "correct horse battery staple"

func newUserEnv(t *testing.T) *userEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	cat, err := catalog.Open(ctx, catalog.Options{Path: filepath.Join(dir, "catalog.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	boot, err := cat.Bootstrap(ctx, catalog.BootstrapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pk, err := crypt.OpenPlatformKey(filepath.Join(dir, "platform.key"))
	if err != nil {
		t.Fatal(err)
	}
	e := &userEnv{t: t, cat: cat, tenant: boot.Tenant.ID, now: time.Now()}
	mux := http.NewServeMux()
	authz := rbac.New(rbac.Options{Store: cat, CacheTTL: -1})
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		p, err := e.ts.Authenticate(r, identity.AudienceQuery)
		if err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, err.Error())
			return
		}
		d, err := authz.Authorize(r.Context(), p, rbac.ActionQueryRead, rbac.Scope(boot.Workspace.ID()))
		if err != nil || !d.Allowed {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		_ = json.NewEncoder(w).Encode(p)
	})
	e.srv = httptest.NewTLSServer(mux)
	t.Cleanup(e.srv.Close)
	e.ts, err = identity.NewTokenService(identity.TokenServiceOptions{
		Store: cat, Keys: pk, Issuer: e.srv.URL, Tenants: identity.StaticTenants{boot.Tenant.ID},
		Now:       func() time.Time { e.mu.Lock(); defer e.mu.Unlock(); return e.now },
		Lockout:   identity.Lockout{Threshold: 3, Duration: time.Minute},
		RateLimit: identity.RateLimit{PerClientBurst: 100, PerAddressBurst: 100},
		SignInFailed: func(_ context.Context, f identity.SignInFailure) {
			e.mu.Lock()
			e.fails = append(e.fails, f)
			e.mu.Unlock()
		},
		PublicClients: []identity.PublicClient{{ClientID: "test-spa", DisplayName: "Test SPA", AuthorizationCode: true,
			RedirectURIs: []string{"https://app.example.test/callback"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range e.ts.Patterns() {
		mux.Handle(p, e.ts.Handler())
	}
	hash, err := identity.HashPassword(rand.Reader, alicePassword, identity.Argon2Params{MemoryKiB: 8 * 1024, Time: 1, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	e.alice, err = cat.CreateUser(ctx, identity.User{TenantID: e.tenant, ObjectID: "a11ce000-0000-4000-8000-000000000001",
		UserPrincipalName: "alice@example.test", DisplayName: "Alice"}, hash, catalog.Actor{ID: "test"})
	if err != nil {
		t.Fatal(err)
	}
	// Alice reads the default workspace.
	ra := rbac.RoleAssignment{ID: boot.Workspace.ID() + "/providers/Microsoft.Authorization/roleAssignments/0a0a0a0a-0000-4000-8000-000000000001",
		Name: "0a0a0a0a-0000-4000-8000-000000000001", Scope: rbac.Scope(boot.Workspace.ID()), RoleDefinitionID: rbac.RoleReader,
		PrincipalID: e.alice.ObjectID, PrincipalType: "User"}
	if err := cat.CreateRoleAssignment(ctx, ra); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *userEnv) advance(d time.Duration) { e.mu.Lock(); e.now = e.now.Add(d); e.mu.Unlock() }

func (e *userEnv) clock() time.Time { e.mu.Lock(); defer e.mu.Unlock(); return e.now }

func (e *userEnv) token(form url.Values) (int, map[string]any) {
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

func (e *userEnv) whoami(tok string) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.srv.URL+"/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var p map[string]any
	_ = json.NewDecoder(res.Body).Decode(&p)
	return res.StatusCode, p
}

func passwordForm(user, pw, totp string) url.Values {
	f := url.Values{"grant_type": {"password"}, "client_id": {identity.ClientCLI}, "username": {user}, "password": {pw},
		"scope": {"https://api.loganalytics.io/.default offline_access"}}
	if totp != "" {
		f.Set("totp", totp)
	}
	return f
}

func TestPasswordHashing(t *testing.T) {
	p := identity.Argon2Params{MemoryKiB: 8 * 1024, Time: 1, Threads: 1}
	h, err := identity.HashPassword(rand.Reader, "a long enough password", p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=8192,t=1,p=1$") {
		t.Fatalf("hash %q is not an argon2id PHC string", h)
	}
	if !identity.VerifyPassword(h, "a long enough password") || identity.VerifyPassword(h, "a long enough passworD") {
		t.Fatal("verification is wrong")
	}
	h2, _ := identity.HashPassword(rand.Reader, "a long enough password", p)
	if h == h2 {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
	for _, bad := range []string{"", "short", strings.Repeat("x", 300), "twelve chars\x00here"} {
		if _, err := identity.HashPassword(rand.Reader, bad, p); !errors.Is(err, identity.ErrWeakPassword) {
			t.Errorf("HashPassword(%q) = %v; want ErrWeakPassword", bad, err)
		}
	}
	for _, bad := range []string{"", "$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2i$v=19$m=8192,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "$argon2id$v=19$m=8192,t=1,p=1$!!$aGFzaA"} {
		if identity.VerifyPassword(bad, "anything at all") {
			t.Errorf("VerifyPassword accepted malformed hash %q", bad)
		}
	}
}

func TestTOTPVectors(t *testing.T) {
	// RFC 6238 appendix B (SHA-1), truncated to 6 digits.
	secret := []byte("12345678901234567890")
	for _, c := range []struct {
		unix int64
		code string
	}{{59, "287082"}, {1111111109, "081804"}, {1234567890, "005924"}, {2000000000, "279037"}} {
		if got := identity.TOTPCode(secret, identity.TOTPStep(time.Unix(c.unix, 0))); got != c.code {
			t.Errorf("TOTP at %d = %s; want %s", c.unix, got, c.code)
		}
	}
	uri := identity.TOTPURI(secret, "Custos", "alice@example.test")
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "otpauth" || u.Host != "totp" || u.Query().Get("secret") != "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" || u.Query().Get("issuer") != "Custos" {
		t.Fatalf("otpauth URI %q", uri)
	}
}

// TestPasswordGrantRefreshAndLockout signs alice in with the password
// grant, uses the token, rotates the refresh token, detects its reuse
// (the family is revoked), and locks the account after failures.
func TestPasswordGrantRefreshAndLockout(t *testing.T) {
	e := newUserEnv(t)
	st, body := e.token(passwordForm("Alice@Example.test", alicePassword, ""))
	if st != 200 || body["access_token"] == nil || body["refresh_token"] == nil {
		t.Fatalf("password grant: %d %v", st, body)
	}
	st, p := e.whoami(body["access_token"].(string))
	if st != 200 || p["ObjectID"] != e.alice.ObjectID || p["Kind"] != "User" {
		t.Fatalf("whoami: %d %v", st, p)
	}
	rt1 := body["refresh_token"].(string)
	st, body = e.token(url.Values{"grant_type": {"refresh_token"}, "client_id": {identity.ClientCLI}, "refresh_token": {rt1},
		"scope": {"https://management.azure.com/.default"}})
	if st != 200 || body["refresh_token"] == nil || body["refresh_token"] == rt1 {
		t.Fatalf("refresh: %d %v", st, body)
	}
	rt2 := body["refresh_token"].(string)
	// Replaying rt1 is refused and revokes rt2 too.
	if st, body = e.token(url.Values{"grant_type": {"refresh_token"}, "client_id": {identity.ClientCLI}, "refresh_token": {rt1}}); st != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("replayed refresh token: %d %v", st, body)
	}
	if st, body = e.token(url.Values{"grant_type": {"refresh_token"}, "client_id": {identity.ClientCLI}, "refresh_token": {rt2}}); st != 400 {
		t.Fatalf("refresh token of a revoked family: %d %v", st, body)
	}
	// Another client may not redeem the CLI's refresh token.
	_, body = e.token(passwordForm("alice@example.test", alicePassword, ""))
	if st, _ := e.token(url.Values{"grant_type": {"refresh_token"}, "client_id": {identity.ClientPortal}, "refresh_token": {body["refresh_token"].(string)}}); st != 400 {
		t.Fatalf("refresh token redeemed by another client: %d", st)
	}

	// Wrong passwords: the same answer as an unknown user; the third locks.
	_, unknown := e.token(passwordForm("nobody@example.test", alicePassword, ""))
	for i := 0; i < 3; i++ {
		st, body = e.token(passwordForm("alice@example.test", "wrong password here", ""))
		if st != 400 || body["error"] != "invalid_grant" {
			t.Fatalf("wrong password %d: %d %v", i, st, body)
		}
		if i == 0 && !strings.HasPrefix(body["error_description"].(string), strings.SplitN(unknown["error_description"].(string), " Trace ID", 2)[0]) {
			t.Fatalf("wrong password and unknown user are told apart: %q vs %q", body["error_description"], unknown["error_description"])
		}
	}
	st, body = e.token(passwordForm("alice@example.test", alicePassword, ""))
	if st != 400 || !strings.Contains(body["error_description"].(string), "locked") {
		t.Fatalf("locked account signed in: %d %v", st, body)
	}
	e.advance(2 * time.Minute)
	if st, body = e.token(passwordForm("alice@example.test", alicePassword, "")); st != 200 {
		t.Fatalf("after the lockout: %d %v", st, body)
	}
	e.mu.Lock()
	n := len(e.fails)
	var reasons []string
	for _, f := range e.fails {
		reasons = append(reasons, f.Reason)
	}
	e.mu.Unlock()
	if n < 5 || !strings.Contains(strings.Join(reasons, "|"), "locked") {
		t.Fatalf("sign-in failures reported: %v", reasons)
	}
	// Disabling the user ends its tokens and refresh tokens.
	tok := body["access_token"].(string)
	off := false
	if _, err := e.cat.UpdateUser(context.Background(), e.tenant, e.alice.ObjectID, nil, nil, &off, catalog.Actor{ID: "test"}); err != nil {
		t.Fatal(err)
	}
	e.ts.ForgetPrincipals()
	if st, _ := e.whoami(tok); st != 401 {
		t.Fatalf("disabled user's token: %d", st)
	}
	if st, _ := e.token(url.Values{"grant_type": {"refresh_token"}, "client_id": {identity.ClientCLI}, "refresh_token": {body["refresh_token"].(string)}}); st != 400 {
		t.Fatalf("disabled user's refresh token: %d", st)
	}
}

// TestTOTP enrolls TOTP, requires it at sign-in, and refuses a replayed code.
func TestTOTP(t *testing.T) {
	e := newUserEnv(t)
	ctx := context.Background()
	uri, err := e.ts.EnrollTOTP(ctx, e.tenant, e.alice.ObjectID)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(uri)
	secret, err := base32Decode(u.Query().Get("secret"))
	if err != nil {
		t.Fatal(err)
	}
	// Not yet confirmed: a password alone still works.
	if st, body := e.token(passwordForm("alice@example.test", alicePassword, "")); st != 200 {
		t.Fatalf("before confirmation: %d %v", st, body)
	}
	if err := e.ts.ConfirmTOTP(ctx, e.tenant, e.alice.ObjectID, "000000"); !errors.Is(err, identity.ErrInvalidCode) && identity.TOTPCode(secret, identity.TOTPStep(e.clock())) != "000000" {
		t.Fatalf("wrong confirmation code: %v", err)
	}
	if err := e.ts.ConfirmTOTP(ctx, e.tenant, e.alice.ObjectID, identity.TOTPCode(secret, identity.TOTPStep(e.clock()))); err != nil {
		t.Fatal(err)
	}
	st, body := e.token(passwordForm("alice@example.test", alicePassword, ""))
	if st != 400 || !strings.Contains(body["error_description"].(string), "one-time code") {
		t.Fatalf("password without code: %d %v", st, body)
	}
	// The code used to confirm is spent; the next step's code works once.
	e.advance(30 * time.Second)
	code := identity.TOTPCode(secret, identity.TOTPStep(e.clock()))
	if st, body = e.token(passwordForm("alice@example.test", alicePassword, code)); st != 200 {
		t.Fatalf("password and code: %d %v", st, body)
	}
	if st, body = e.token(passwordForm("alice@example.test", alicePassword, code)); st != 400 {
		t.Fatalf("replayed code accepted: %d %v", st, body)
	}
}

func base32Decode(s string) ([]byte, error) {
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	var out []byte
	var buf, bits uint
	for _, c := range s {
		i := strings.IndexRune(alpha, c)
		if i < 0 {
			return nil, errors.New("bad base32")
		}
		buf = buf<<5 | uint(i)
		bits += 5
		if bits >= 8 {
			out = append(out, byte(buf>>(bits-8)))
			bits -= 8
		}
	}
	return out, nil
}

var (
	csrfRE   = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

// browser is an HTTPS client with a cookie jar that does not follow
// redirects (so the test sees them).
func (e *userEnv) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	c := *e.srv.Client()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

func getPage(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	res, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res, string(b)
}

func postForm(t *testing.T, c *http.Client, u string, f url.Values) (*http.Response, string) {
	t.Helper()
	res, err := c.PostForm(u, f)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res, string(b)
}

// TestAuthorizationCodePKCE signs in through the authorization endpoint's
// form and redeems the code with the PKCE verifier.
func TestAuthorizationCodePKCE(t *testing.T) {
	e := newUserEnv(t)
	b := e.browser()
	verifier := "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-pkce-verifier"
	sum := sha256.Sum256([]byte(verifier))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])
	q := url.Values{"client_id": {identity.ClientPortal}, "response_type": {"code"}, "redirect_uri": {e.srv.URL + "/portal/callback"},
		"scope": {"https://api.loganalytics.io/.default offline_access"}, "state": {"xyz"}, "code_challenge": {challenge},
		"code_challenge_method": {"S256"}}
	authz := e.srv.URL + "/" + e.tenant + "/oauth2/v2.0/authorize"
	res, page := getPage(t, b, authz+"?"+q.Encode())
	if res.StatusCode != 200 || !strings.Contains(page, `<form method="post"`) || strings.Contains(page, "<script") {
		t.Fatalf("sign-in page: %d %s", res.StatusCode, page)
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("CSP %q", csp)
	}
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
	// Without the cookie (another browser) the form is refused.
	if res, _ := postForm(t, e.browser(), authz, form); res.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site post: %d", res.StatusCode)
	}
	bad := url.Values{}
	for k, v := range form {
		bad[k] = v
	}
	bad.Set("password", "not the password!")
	if res, page := postForm(t, b, authz, bad); res.StatusCode != 401 || !strings.Contains(page, "not correct") {
		t.Fatalf("wrong password page: %d", res.StatusCode)
	}
	res, _ = postForm(t, b, authz, form)
	if res.StatusCode != http.StatusFound {
		t.Fatalf("sign-in: %d", res.StatusCode)
	}
	loc, _ := url.Parse(res.Header.Get("Location"))
	code := loc.Query().Get("code")
	if loc.Path != "/portal/callback" || loc.Query().Get("state") != "xyz" || code == "" {
		t.Fatalf("redirect %s", loc)
	}
	redeem := url.Values{"grant_type": {"authorization_code"}, "client_id": {identity.ClientPortal}, "code": {code},
		"redirect_uri": {e.srv.URL + "/portal/callback"}, "code_verifier": {verifier + "x"}}
	if st, body := e.token(redeem); st != 400 || !strings.Contains(body["error_description"].(string), "code_verifier") {
		t.Fatalf("wrong verifier: %d %v", st, body)
	}
	// A code is single-use: the failed attempt consumed it.
	redeem.Set("code_verifier", verifier)
	if st, _ := e.token(redeem); st != 400 {
		t.Fatalf("code redeemed twice: %d", st)
	}
	// Again, with the right verifier at once.
	_, page = getPage(t, b, authz+"?"+q.Encode())
	form.Set("csrf_token", csrfRE.FindStringSubmatch(page)[1])
	res, _ = postForm(t, b, authz, form)
	loc, _ = url.Parse(res.Header.Get("Location"))
	redeem.Set("code", loc.Query().Get("code"))
	st, body := e.token(redeem)
	if st != 200 || body["refresh_token"] == nil {
		t.Fatalf("redeem: %d %v", st, body)
	}
	if st, p := e.whoami(body["access_token"].(string)); st != 200 || p["AppID"] != identity.ClientPortal {
		t.Fatalf("portal token: %d %v", st, p)
	}
	// plain PKCE and unregistered redirect URIs are refused.
	q2 := url.Values{}
	for k, v := range q {
		q2[k] = v
	}
	q2.Set("code_challenge_method", "plain")
	res, _ = getPage(t, b, authz+"?"+q2.Encode())
	if res.StatusCode != http.StatusFound || !strings.Contains(res.Header.Get("Location"), "error=invalid_request") {
		t.Fatalf("plain PKCE: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	q2.Set("code_challenge_method", "S256")
	q2.Set("redirect_uri", "https://evil.example/callback")
	if res, _ = getPage(t, b, authz+"?"+q2.Encode()); res.StatusCode != 400 {
		t.Fatalf("unregistered redirect: %d", res.StatusCode)
	}
}

// TestDeviceCodeFlow runs the device code flow: the device polls while the
// user signs in on the device login page.
func TestDeviceCodeFlow(t *testing.T) {
	e := newUserEnv(t)
	res, err := e.srv.Client().PostForm(e.srv.URL+"/"+e.tenant+"/oauth2/v2.0/devicecode",
		url.Values{"client_id": {identity.ClientCLI}, "scope": {"https://management.azure.com/.default offline_access"}})
	if err != nil {
		t.Fatal(err)
	}
	var dc map[string]any
	_ = json.NewDecoder(res.Body).Decode(&dc)
	res.Body.Close()
	if res.StatusCode != 200 || dc["device_code"] == nil || !regexp.MustCompile(`^[B-Z]{4}-[B-Z]{4}$`).MatchString(dc["user_code"].(string)) {
		t.Fatalf("devicecode: %d %v", res.StatusCode, dc)
	}
	poll := url.Values{"grant_type": {identity.GrantDeviceCode}, "client_id": {identity.ClientCLI}, "device_code": {dc["device_code"].(string)}}
	if st, body := e.token(poll); st != 400 || body["error"] != "authorization_pending" {
		t.Fatalf("first poll: %d %v", st, body)
	}
	if st, body := e.token(poll); st != 400 || body["error"] != "slow_down" {
		t.Fatalf("fast poll: %d %v", st, body)
	}
	b := e.browser()
	login := dc["verification_uri"].(string)
	_, page := getPage(t, b, login)
	csrf := csrfRE.FindStringSubmatch(page)[1]
	if res, _ := postForm(t, b, login, url.Values{"csrf_token": {csrf}, "user_code": {"BBBB-BBBB"}, "username": {"alice@example.test"}, "password": {alicePassword}}); res.StatusCode != 400 {
		t.Fatalf("unknown user code: %d", res.StatusCode)
	}
	res, page = postForm(t, b, login, url.Values{"csrf_token": {csrf}, "user_code": {strings.ReplaceAll(dc["user_code"].(string), "-", "")},
		"username": {"alice@example.test"}, "password": {alicePassword}})
	if res.StatusCode != 200 || !strings.Contains(page, "signed in") {
		t.Fatalf("device login: %d %s", res.StatusCode, page)
	}
	e.advance(6 * time.Second)
	st, body := e.token(poll)
	if st != 200 || body["refresh_token"] == nil {
		t.Fatalf("poll after sign-in: %d %v", st, body)
	}
	if st, _ := e.token(poll); st != 400 {
		t.Fatalf("device code used twice: %d", st)
	}
}
