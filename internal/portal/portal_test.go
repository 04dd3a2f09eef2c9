package portal

import (
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"custos/internal/identity"
)

// fakeClock is a settable clock for session expiry.
type fakeClock struct{ t atomic.Int64 }

func (c *fakeClock) now() time.Time      { return time.Unix(0, c.t.Load()) }
func (c *fakeClock) add(d time.Duration) { c.t.Add(int64(d)) }

func newClock() *fakeClock {
	c := &fakeClock{}
	c.t.Store(time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

// backend records what the portal forwards and answers like the token
// service and the APIs would: it is the server's handler chain in these
// tests, with the token endpoint's wire format.
type backend struct {
	mu        sync.Mutex
	forwarded []*http.Request
	tokenForm []url.Values
	refreshN  int
}

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token") {
		_ = r.ParseForm()
		b.tokenForm = append(b.tokenForm, r.PostForm)
		switch r.PostForm.Get("grant_type") {
		case "authorization_code":
			if r.PostForm.Get("code") != "good-code" {
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, `{"error":"invalid_grant","error_description":"AADSTS70008: The code has expired.\r\nTrace ID: x"}`)
				return
			}
		case "refresh_token":
			b.refreshN++
		}
		claims, _ := json.Marshal(map[string]string{"name": "Ada", "oid": "0000-oid", "tid": "tenant-1"})
		tok := "h." + base64.RawURLEncoding.EncodeToString(claims) + "."
		// The signature part names the requested scope, so tests can see
		// which audience a forwarded token was for.
		tok += base64.RawURLEncoding.EncodeToString([]byte(r.PostForm.Get("scope")))
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok,
			"refresh_token": "rt-" + r.PostForm.Get("grant_type"), "expires_in": 3600, "token_type": "Bearer"})
		return
	}
	b.forwarded = append(b.forwarded, r)
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"value":[]}`)
}

func newTestPortal(t *testing.T) (*Portal, *backend, *fakeClock) {
	t.Helper()
	be := &backend{}
	clk := newClock()
	p := New(Options{Tenant: "tenant-1", Backend: func() http.Handler { return be }, Now: clk.now, MaxSessions: 3})
	return p, be, clk
}

func do(t *testing.T, h http.Handler, method, target string, hdr map[string]string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, "https://custos.test"+target, nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	for _, c := range cookies {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func cookieOf(t *testing.T, w *httptest.ResponseRecorder, name string) *http.Cookie {
	t.Helper()
	for _, c := range w.Result().Cookies() {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no %s cookie in %v", name, w.Result().Header["Set-Cookie"])
	return nil
}

// signIn runs the whole code flow and returns the session cookie.
func signIn(t *testing.T, p *Portal) *http.Cookie {
	t.Helper()
	h := p.Handler()
	w := do(t, h, "GET", "/portal/login", nil)
	login := cookieOf(t, w, loginCookie)
	loc, _ := url.Parse(w.Header().Get("Location"))
	state := loc.Query().Get("state")
	w = do(t, h, "GET", "/portal/callback?code=good-code&state="+url.QueryEscape(state), nil, login)
	if w.Code != http.StatusFound || w.Header().Get("Location") != "/portal/" {
		t.Fatalf("callback = %d %q", w.Code, w.Body.String())
	}
	return cookieOf(t, w, sessionCookie)
}

func TestLoginRedirectUsesPKCEAndSetsAHostOnlyCookie(t *testing.T) {
	p, be, _ := newTestPortal(t)
	w := do(t, p.Handler(), "GET", "/portal/login", nil)
	if w.Code != http.StatusFound {
		t.Fatalf("login = %d", w.Code)
	}
	loc, err := url.Parse(w.Header().Get("Location"))
	if err != nil || loc.Path != "/tenant-1/oauth2/v2.0/authorize" {
		t.Fatalf("redirect to %q", w.Header().Get("Location"))
	}
	q := loc.Query()
	if q.Get("client_id") != ClientID || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" ||
		q.Get("redirect_uri") != "https://custos.test/portal/callback" || len(q.Get("state")) < 20 {
		t.Fatalf("authorize query = %v", q)
	}
	c := cookieOf(t, w, loginCookie)
	if !c.Secure || !c.HttpOnly || c.Path != "/" || c.Domain != "" {
		t.Fatalf("login cookie attributes: %+v", c)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(c.Value)
	var ls loginState
	if err := json.Unmarshal(raw, &ls); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(ls.Verifier))
	if q.Get("code_challenge") != base64.RawURLEncoding.EncodeToString(sum[:]) || ls.State != q.Get("state") {
		t.Fatal("the code challenge is not the S256 of the stored verifier")
	}
	// The verifier reaches the token endpoint only with the code.
	w = do(t, p.Handler(), "GET", "/portal/callback?code=good-code&state="+url.QueryEscape(ls.State), nil, c)
	if w.Code != http.StatusFound {
		t.Fatalf("callback = %d %s", w.Code, w.Body.String())
	}
	f := be.tokenForm[0]
	if f.Get("code_verifier") != ls.Verifier || f.Get("grant_type") != "authorization_code" || f.Get("client_id") != ClientID {
		t.Fatalf("token request = %v", f)
	}
	sc := cookieOf(t, w, sessionCookie)
	if !sc.Secure || !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode || !strings.HasPrefix(sc.Name, "__Host-") {
		t.Fatalf("session cookie attributes: %+v", sc)
	}
}

func TestCallbackRefusesForeignStateAndBadCodes(t *testing.T) {
	p, _, _ := newTestPortal(t)
	h := p.Handler()
	w := do(t, h, "GET", "/portal/login", nil)
	login := cookieOf(t, w, loginCookie)
	for _, tc := range []struct {
		query   string
		cookies []*http.Cookie
		want    string
	}{
		{"code=good-code&state=forged", []*http.Cookie{login}, "state mismatch"},
		{"code=good-code&state=x", nil, "not started here"},
		{"error=access_denied&error_description=no", []*http.Cookie{login}, "access_denied"},
	} {
		w := do(t, h, "GET", "/portal/callback?"+tc.query, nil, tc.cookies...)
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), tc.want) {
			t.Errorf("%s: %d %q; want 400 with %q", tc.query, w.Code, w.Body.String(), tc.want)
		}
		if len(w.Result().Cookies()) > 0 && cookieOfOK(w, sessionCookie) {
			t.Errorf("%s: a session was created", tc.query)
		}
	}
	// A redeemed-but-refused code shows the token service's reason.
	w = do(t, h, "GET", "/portal/login", nil)
	login = cookieOf(t, w, loginCookie)
	l, _ := url.Parse(w.Header().Get("Location"))
	w = do(t, h, "GET", "/portal/callback?code=stale&state="+url.QueryEscape(l.Query().Get("state")), nil, login)
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "invalid_grant: AADSTS70008") || strings.Contains(w.Body.String(), "Trace ID") {
		t.Fatalf("stale code = %d %q", w.Code, w.Body.String())
	}
}

// signedOut reports whether the session cookie c no longer signs in.
func signedOut(t *testing.T, h http.Handler, c *http.Cookie) bool {
	t.Helper()
	w := do(t, h, "GET", "/portal/session", nil, c)
	var s struct {
		SignedIn bool `json:"signedIn"`
	}
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &s) != nil {
		t.Fatalf("session = %d %s", w.Code, w.Body.String())
	}
	return !s.SignedIn
}

// scopeOf returns the scope the test token service minted r's token for.
func scopeOf(r *http.Request) string {
	parts := strings.Split(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), ".")
	b, _ := base64.RawURLEncoding.DecodeString(parts[len(parts)-1])
	return string(b)
}

func cookieOfOK(w *httptest.ResponseRecorder, name string) bool {
	for _, c := range w.Result().Cookies() {
		if c.Name == name && c.Value != "" {
			return true
		}
	}
	return false
}

func TestProxyForwardsWithTheSessionTokenAndChecksCSRF(t *testing.T) {
	p, be, _ := newTestPortal(t)
	sc := signIn(t, p)
	h := p.Handler()

	// Session info carries the CSRF token, never a bearer token.
	w := do(t, h, "GET", "/portal/session", nil, sc)
	var sess struct {
		SignedIn  bool   `json:"signedIn"`
		CSRFToken string `json:"csrfToken"`
		User      user   `json:"user"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &sess); err != nil || !sess.SignedIn || sess.CSRFToken == "" || sess.User.Name != "Ada" {
		t.Fatalf("session = %d %s", w.Code, w.Body.String())
	}
	if strings.Contains(w.Body.String(), "h.") || strings.Contains(w.Body.String(), "rt-") {
		t.Fatalf("session response leaks a token: %s", w.Body.String())
	}

	// GET needs no CSRF token; the forwarded request carries the bearer
	// token for the API's audience and no cookie.
	w = do(t, h, "GET", "/portal/api/management/subscriptions?api-version=2022-12-01", map[string]string{"Sec-Fetch-Site": "same-origin"}, sc)
	if w.Code != 200 || len(be.forwarded) != 1 {
		t.Fatalf("GET = %d %s", w.Code, w.Body.String())
	}
	f := be.forwarded[0]
	if f.URL.Path != "/subscriptions" || f.URL.Query().Get("api-version") != "2022-12-01" || f.Header.Get("Cookie") != "" ||
		!strings.HasPrefix(f.Header.Get("Authorization"), "Bearer h.") || !strings.HasPrefix(scopeOf(f), identity.AudienceManagement) {
		t.Fatalf("forwarded %s %v", f.URL, f.Header)
	}
	// A query call needs the query audience: one refresh-token redemption.
	w = do(t, h, "POST", "/portal/api/query/v1/workspaces/abc/query", map[string]string{csrfHeader: sess.CSRFToken}, sc)
	if w.Code != 200 || be.refreshN != 1 || !strings.HasPrefix(scopeOf(be.forwarded[1]), identity.AudienceQuery) {
		t.Fatalf("query = %d, refreshes %d, scope %q", w.Code, be.refreshN, scopeOf(be.forwarded[1]))
	}
	// The cached token is reused.
	_ = do(t, h, "POST", "/portal/api/query/v1/workspaces/abc/query", map[string]string{csrfHeader: sess.CSRFToken}, sc)
	if be.refreshN != 1 {
		t.Fatalf("refreshes = %d, want 1 (cached)", be.refreshN)
	}

	for _, tc := range []struct {
		method, path string
		hdr          map[string]string
		cookie       bool
		want         int
	}{
		{"POST", "/portal/api/query/v1/workspaces/abc/query", nil, true, http.StatusForbidden},                                         // no CSRF token
		{"DELETE", "/portal/api/management/subscriptions/s", map[string]string{csrfHeader: "wrong"}, true, http.StatusForbidden},       // wrong token
		{"GET", "/portal/api/management/subscriptions", map[string]string{"Sec-Fetch-Site": "cross-site"}, true, http.StatusForbidden}, // cross-site
		{"GET", "/portal/api/management/subscriptions", nil, false, http.StatusUnauthorized},                                           // no session
		{"GET", "/portal/api/management/common/oauth2/v2.0/token", nil, true, http.StatusNotFound},                                     // not an API
		{"GET", "/portal/api/query/subscriptions", nil, true, http.StatusNotFound},                                                     // wrong audience prefix
		{"GET", "/portal/api/other/v1/x", nil, true, http.StatusNotFound},
		{"GET", "/portal/api/management/subscriptions/%2e%2e/x", nil, true, http.StatusNotFound},
	} {
		var cs []*http.Cookie
		if tc.cookie {
			cs = append(cs, sc)
		}
		n := len(be.forwarded)
		w := do(t, h, tc.method, tc.path, tc.hdr, cs...)
		if w.Code != tc.want || len(be.forwarded) != n {
			t.Errorf("%s %s: %d (forwarded %d); want %d, nothing forwarded", tc.method, tc.path, w.Code, len(be.forwarded)-n, tc.want)
		}
		if w.Code >= 400 && w.Header().Get("x-ms-error-code") == "" {
			t.Errorf("%s %s: no x-ms-error-code", tc.method, tc.path)
		}
	}
}

// Concurrent API calls that all need a new access token redeem the
// session's (rotating) refresh token once: a second redemption of the same
// refresh token would look like theft to the token service.
func TestConcurrentCallsRedeemTheRefreshTokenOnce(t *testing.T) {
	p, be, _ := newTestPortal(t)
	sc := signIn(t, p)
	h := p.Handler()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if w := do(t, h, "GET", "/portal/api/query/v1/workspaces/abc/metadata", nil, sc); w.Code != 200 {
				t.Errorf("metadata = %d", w.Code)
			}
		}()
	}
	wg.Wait()
	if be.refreshN != 1 {
		t.Fatalf("refresh token redeemed %d times, want 1", be.refreshN)
	}
}

func TestSessionsExpireAndAreBounded(t *testing.T) {
	p, _, clk := newTestPortal(t)
	h := p.Handler()
	first := signIn(t, p)
	clk.add(59 * time.Minute)
	if w := do(t, h, "GET", "/portal/session", nil, first); w.Code != 200 {
		t.Fatalf("session within idle time = %d", w.Code)
	}
	clk.add(61 * time.Minute) // idle for over an hour
	if !signedOut(t, h, first) {
		t.Fatal("idle session still signed in")
	}
	// MaxSessions is 3: a fourth sign-in drops the least recently used.
	a, b, c := signIn(t, p), signIn(t, p), signIn(t, p)
	clk.add(time.Second)
	_ = do(t, h, "GET", "/portal/session", nil, a)
	_ = do(t, h, "GET", "/portal/session", nil, c)
	_ = signIn(t, p)
	if !signedOut(t, h, b) {
		t.Fatal("least recently used session survived")
	}
	if w := do(t, h, "GET", "/portal/session", nil, a); w.Code != 200 {
		t.Fatalf("recently used session dropped: %d", w.Code)
	}
	// Logout needs the CSRF token, then ends the session.
	var s struct {
		CSRFToken string `json:"csrfToken"`
	}
	_ = json.Unmarshal(do(t, h, "GET", "/portal/session", nil, a).Body.Bytes(), &s)
	if w := do(t, h, "POST", "/portal/logout", nil, a); w.Code != http.StatusForbidden {
		t.Fatalf("logout without CSRF = %d", w.Code)
	}
	if w := do(t, h, "POST", "/portal/logout", map[string]string{csrfHeader: s.CSRFToken}, a); w.Code != http.StatusNoContent {
		t.Fatalf("logout = %d", w.Code)
	}
	if !signedOut(t, h, a) {
		t.Fatal("session survived logout")
	}
}

func TestAssetsAreServedUnderAStrictCSP(t *testing.T) {
	p, _, _ := newTestPortal(t)
	h := p.Handler()
	w := do(t, h, "GET", "/", nil)
	if w.Code != http.StatusFound || w.Header().Get("Location") != "/portal/" {
		t.Fatalf("/ = %d %q", w.Code, w.Header().Get("Location"))
	}
	w = do(t, h, "GET", "/portal/", nil)
	csp := w.Header().Get("Content-Security-Policy")
	if w.Code != 200 || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") ||
		!strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(w.Body.String(), `src="/portal/assets/app.js"`) {
		t.Fatalf("index = %d CSP %q", w.Code, csp)
	}
	// No inline script or style anywhere in the page.
	body := w.Body.String()
	if strings.Contains(body, "<script>") || strings.Contains(body, "style=") || strings.Contains(body, "onclick=") {
		t.Fatal("index.html has inline script or style")
	}
	w = do(t, h, "GET", "/portal/assets/app.js", map[string]string{"Accept-Encoding": "gzip"})
	if w.Code != 200 || w.Header().Get("Content-Encoding") != "gzip" || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/javascript") {
		t.Fatalf("app.js = %d %v", w.Code, w.Header())
	}
	zr, err := gzip.NewReader(w.Body)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := io.ReadAll(zr)
	if !strings.Contains(string(js), "import") {
		t.Fatal("gzip body is not app.js")
	}
	// Nothing outside the embedded web directory is served (the server's
	// router answers unclean paths 404 before they get here).
	for _, bad := range []string{"/portal/assets/../portal.go", "/portal/assets/.hidden", "/portal/assets/nope.js", "/portal/assets/%2e%2e/portal.go"} {
		if w := do(t, h, "GET", bad, nil); w.Code == http.StatusOK || strings.Contains(w.Body.String(), "package portal") {
			t.Errorf("%s = %d, served", bad, w.Code)
		}
	}
}

// The first page load stays within the budget of 300 KB of
// compressed assets: everything the shell and the Logs blade import.
func TestFirstLoadBudget(t *testing.T) {
	p, _, _ := newTestPortal(t)
	h := p.Handler()
	total := 0
	for _, f := range []string{"/portal/", "/portal/assets/portal.css", "/portal/assets/app.js", "/portal/assets/api.js",
		"/portal/assets/dom.js", "/portal/assets/logs.js", "/portal/assets/kql.js", "/portal/assets/grid.js",
		"/portal/assets/chart.js", "/portal/assets/favicon.svg"} {
		w := do(t, h, "GET", f, map[string]string{"Accept-Encoding": "gzip"})
		if w.Code != 200 {
			t.Fatalf("%s = %d", f, w.Code)
		}
		total += w.Body.Len()
	}
	if total > 300<<10 {
		t.Fatalf("first load is %d bytes compressed, over 300 KB", total)
	}
	t.Logf("first load: %d bytes compressed", total)
}
