package portal

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"custos/internal/crypt"
	"custos/internal/identity"
)

// loginCookie carries the PKCE verifier, state and return path of a sign-in
// in progress. SameSite=Lax, not Strict: an external identity provider
// redirects back from another site, and the browser must send it then.
const loginCookie = "__Host-custos-login"

// loginTTL bounds how long a sign-in may take.
const loginTTL = 10 * time.Minute

// audiences maps the proxy's path prefix to the API audience it needs.
var audiences = map[string]string{
	"management": identity.AudienceManagement,
	"query":      identity.AudienceQuery,
}

// loginState is what the login cookie holds.
type loginState struct {
	Verifier string `json:"v"`
	State    string `json:"s"`
	Expires  int64  `json:"e"`
	Provider int    `json:"p,omitempty"` // 1 + external provider index
	Nonce    string `json:"n,omitempty"`
}

func (p *Portal) redirectURI(r *http.Request) string {
	return "https://" + r.Host + pathCallback
}

func (p *Portal) tenantPath(suffix string) string {
	return "/" + url.PathEscape(p.opts.Tenant) + "/oauth2/v2.0/" + suffix
}

// serveLogin starts the authorization code flow with PKCE (S256).
func (p *Portal) serveLogin(w http.ResponseWriter, r *http.Request) {
	ls := loginState{Verifier: randomToken(48), State: randomToken(24), Expires: p.now().Add(loginTTL).Unix()}
	var ext *provider
	if v := r.URL.Query().Get("provider"); v != "" {
		i, err := strconv.Atoi(v)
		if err != nil || i < 0 || i >= len(p.external) {
			pageHeaders(w.Header())
			p.signInFailed(w, "Unknown identity provider.")
			return
		}
		ext = p.external[i]
		ls.Provider, ls.Nonce = i+1, randomToken(24)
	}
	b, _ := json.Marshal(ls)
	http.SetCookie(w, &http.Cookie{
		Name: loginCookie, Value: base64.RawURLEncoding.EncodeToString(b), Path: "/",
		MaxAge: int(loginTTL / time.Second), Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
	challenge := sha256.Sum256([]byte(ls.Verifier))
	q := url.Values{
		"client_id":             {ClientID},
		"response_type":         {"code"},
		"redirect_uri":          {p.redirectURI(r)},
		"response_mode":         {"query"},
		"scope":                 {identity.AudienceManagement + "/.default openid profile offline_access"},
		"state":                 {ls.State},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(challenge[:])},
		"code_challenge_method": {"S256"},
	}
	pageHeaders(w.Header())
	if ext != nil {
		d, err := ext.discover(r.Context())
		if err != nil {
			p.log.Warn("portal sign-in: external provider unavailable", slog.String("issuer", ext.cfg.Issuer), slog.Any("error", err))
			p.signInFailed(w, "The identity provider cannot be reached: "+err.Error())
			return
		}
		q.Set("client_id", ext.cfg.ClientID)
		q.Set("scope", strings.Join(ext.cfg.Scopes, " "))
		q.Set("nonce", ls.Nonce)
		q.Del("response_mode")
		sep := "?"
		if strings.Contains(d.AuthURL, "?") {
			sep = "&"
		}
		http.Redirect(w, r, d.AuthURL+sep+q.Encode(), http.StatusFound)
		return
	}
	http.Redirect(w, r, p.tenantPath("authorize")+"?"+q.Encode(), http.StatusFound)
}

// redeemExternal finishes an external provider's sign-in: the code is
// redeemed with the PKCE verifier and the ID token verified.
func (p *Portal) redeemExternal(r *http.Request, ls loginState, code string) (*session, tokenResult, error) {
	if ls.Provider < 1 || ls.Provider > len(p.external) {
		return nil, tokenResult{}, fmt.Errorf("%w: the provider of this sign-in is no longer configured", errExternal)
	}
	ext := p.external[ls.Provider-1]
	t, err := ext.token(r.Context(), url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {p.redirectURI(r)},
		"code_verifier": {ls.Verifier},
	})
	if err != nil {
		return nil, tokenResult{}, err
	}
	c, err := ext.verifyIDToken(r.Context(), t.ID, ls.Nonce, p.now())
	if err != nil {
		return nil, tokenResult{}, err
	}
	c = ext.userInfo(r.Context(), t.Access, c)
	u := user{Name: c.Name, ObjectID: c.Sub}
	for _, n := range []string{c.PUN, c.Email, c.Sub} {
		if u.Name == "" {
			u.Name = n
		}
	}
	return &session{user: u, provider: ls.Provider}, externalResult(t, p.now()), nil
}

func externalResult(t providerTokens, now time.Time) tokenResult {
	exp := t.Expires
	if exp <= 0 {
		exp = 300
	}
	return tokenResult{access: crypt.Secret(t.Access), refresh: crypt.Secret(t.Refresh), expires: now.Add(time.Duration(exp) * time.Second)}
}

// serveCallback finishes the sign-in: it checks state, redeems the code with
// the PKCE verifier and starts a session.
func (p *Portal) serveCallback(w http.ResponseWriter, r *http.Request) {
	pageHeaders(w.Header())
	c, err := r.Cookie(loginCookie)
	if err != nil {
		p.signInFailed(w, "The sign-in was not started here, or took too long. Start again.")
		return
	}
	clearCookie(w, loginCookie, http.SameSiteLaxMode)
	var ls loginState
	raw, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || json.Unmarshal(raw, &ls) != nil || p.now().Unix() > ls.Expires {
		p.signInFailed(w, "The sign-in was not started here, or took too long. Start again.")
		return
	}
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		p.signInFailed(w, "The sign-in was refused: "+e+": "+q.Get("error_description"))
		return
	}
	if !hmac.Equal([]byte(q.Get("state")), []byte(ls.State)) {
		p.signInFailed(w, "The sign-in response does not belong to this browser's sign-in (state mismatch).")
		return
	}
	code := q.Get("code")
	if code == "" {
		p.signInFailed(w, "The sign-in response carries no authorization code.")
		return
	}
	if ls.Provider != 0 {
		s, tr, err := p.redeemExternal(r, ls, code)
		if err != nil {
			p.log.Warn("portal sign-in: external sign-in failed", slog.Any("error", err))
			p.signInFailed(w, "The identity provider's answer was not accepted: "+err.Error())
			return
		}
		id := p.sessions.create(s)
		p.sessions.update(s, externalAudience, tr)
		http.SetCookie(w, &http.Cookie{
			Name: sessionCookie, Value: id, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode,
		})
		http.Redirect(w, r, pathIndex, http.StatusFound)
		return
	}
	tr, err := p.tokenRequest(r.Context(), r, url.Values{
		"grant_type":    {"authorization_code"},
		"client_id":     {ClientID},
		"code":          {code},
		"redirect_uri":  {p.redirectURI(r)},
		"code_verifier": {ls.Verifier},
		"scope":         {identity.AudienceManagement + "/.default openid profile offline_access"},
	})
	if err != nil {
		p.log.Warn("portal sign-in: code redemption failed", slog.Any("error", err))
		p.signInFailed(w, "The authorization code could not be redeemed: "+err.Error())
		return
	}
	s := &session{user: tr.user}
	id := p.sessions.create(s)
	p.sessions.update(s, identity.AudienceManagement, tr)
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: id, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
	http.Redirect(w, r, pathIndex, http.StatusFound)
}

func (p *Portal) signInFailed(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusBadRequest)
	fmt.Fprintf(w, "Sign-in failed. %s\n\nGo back to %s to try again.\n", msg, pathIndex)
}

func clearCookie(w http.ResponseWriter, name string, same http.SameSite) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: same})
}

// sessionOf returns the request's session, if signed in.
func (p *Portal) sessionOf(r *http.Request) (*session, string, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, "", false
	}
	s, ok := p.sessions.get(c.Value)
	return s, c.Value, ok
}

// serveSession tells the page who is signed in and the CSRF token for its
// state-changing calls. Nobody signed in is a normal answer (200 with
// signedIn false), not an error the browser would log.
func (p *Portal) serveSession(w http.ResponseWriter, r *http.Request) {
	pageHeaders(w.Header())
	s, _, ok := p.sessionOf(r)
	if !ok {
		providers := []map[string]string{}
		for i, e := range p.external {
			providers = append(providers, map[string]string{"name": e.cfg.Name, "login": pathLogin + "?provider=" + strconv.Itoa(i)})
		}
		writeJSON(w, http.StatusOK, map[string]any{"signedIn": false, "login": pathLogin, "providers": providers})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"signedIn":  true,
		"user":      s.user,
		"csrfToken": s.csrf,
		"tenant":    p.opts.Tenant,
	})
}

// serveLogout ends the session (CSRF-checked: a cross-site form cannot sign
// a user out).
func (p *Portal) serveLogout(w http.ResponseWriter, r *http.Request) {
	pageHeaders(w.Header())
	s, id, ok := p.sessionOf(r)
	if ok && !checkCSRF(s, r.Header.Get(csrfHeader)) {
		writeError(w, http.StatusForbidden, "CsrfTokenInvalid", "The request lacks the session's CSRF token.")
		return
	}
	if ok {
		p.sessions.remove(id)
	}
	clearCookie(w, sessionCookie, http.SameSiteStrictMode)
	w.WriteHeader(http.StatusNoContent)
}

// tokenResult is a parsed token endpoint response.
type tokenResult struct {
	access  crypt.Secret
	refresh crypt.Secret
	expires time.Time
	user    user
}

// tokenRequest posts form to the token endpoint through the server's own
// handler chain (in-process, with the browser request's connection context,
// so network rules see the real client).
func (p *Portal) tokenRequest(ctx context.Context, orig *http.Request, form url.Values) (tokenResult, error) {
	body := form.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+orig.Host+p.tenantPath("token"), strings.NewReader(body))
	if err != nil {
		return tokenResult{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = orig.RemoteAddr
	req.TLS = orig.TLS
	req.Host = orig.Host
	req.RequestURI = req.URL.RequestURI()
	rec := newBufferWriter()
	p.opts.Backend().ServeHTTP(rec, req)
	var out struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		ExpiresIn    int64  `json:"expires_in"`
		Error        string `json:"error"`
		Description  string `json:"error_description"`
	}
	if err := json.Unmarshal(rec.body.Bytes(), &out); err != nil {
		return tokenResult{}, fmt.Errorf("token endpoint answered %d with a body that is not JSON", rec.status)
	}
	if rec.status != http.StatusOK || out.AccessToken == "" {
		if out.Error == "" {
			out.Error = http.StatusText(rec.status)
		}
		return tokenResult{}, &tokenError{Code: out.Error, Description: firstLine(out.Description)}
	}
	tr := tokenResult{
		access:  crypt.Secret(out.AccessToken),
		refresh: crypt.Secret(out.RefreshToken),
		expires: p.now().Add(time.Duration(out.ExpiresIn) * time.Second),
	}
	tr.user = claimsUser(out.AccessToken)
	return tr, nil
}

// tokenError is an OAuth error from the token endpoint.
type tokenError struct{ Code, Description string }

func (e *tokenError) Error() string { return e.Code + ": " + e.Description }

// errSignInRequired means the session's refresh token no longer works.
var errSignInRequired = errors.New("the session has expired; sign in again")

// accessTokenFor returns a valid access token for audience, redeeming the
// session's refresh token when the cached one is missing or near expiry.
func (p *Portal) accessTokenFor(r *http.Request, s *session, audience string) (crypt.Secret, error) {
	if s.provider != 0 {
		return p.externalToken(r, s)
	}
	if t, ok := p.sessions.token(s, audience); ok {
		return t, nil
	}
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	// Another request may have refreshed while this one waited.
	if t, ok := p.sessions.token(s, audience); ok {
		return t, nil
	}
	rt := p.sessions.refreshToken(s)
	if len(rt) == 0 {
		return nil, errSignInRequired
	}
	tr, err := p.tokenRequest(r.Context(), r, url.Values{
		"grant_type":    {"refresh_token"},
		"client_id":     {ClientID},
		"refresh_token": {string(rt)},
		"scope":         {audience + "/.default offline_access"},
	})
	if err != nil {
		var te *tokenError
		if errors.As(err, &te) && te.Code == "invalid_grant" {
			return nil, errSignInRequired
		}
		return nil, err
	}
	p.sessions.update(s, audience, tr)
	return tr.access, nil
}

// claimsUser reads the display claims of a token the portal just received
// from its own token service over an in-process call (so its signature needs
// no check here; every API call verifies it).
func claimsUser(tok string) user {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return user{}
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return user{}
	}
	var c struct {
		Name string `json:"name"`
		UPN  string `json:"upn"`
		PUN  string `json:"preferred_username"`
		OID  string `json:"oid"`
		TID  string `json:"tid"`
	}
	if json.Unmarshal(raw, &c) != nil {
		return user{}
	}
	u := user{Name: c.Name, ObjectID: c.OID, TenantID: c.TID}
	for _, n := range []string{c.PUN, c.UPN} {
		if u.Name == "" {
			u.Name = n
		}
	}
	return u
}

func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		return s[:i]
	}
	return s
}

// bufferWriter is an in-memory http.ResponseWriter for in-process calls.
type bufferWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newBufferWriter() *bufferWriter { return &bufferWriter{header: http.Header{}} }

func (b *bufferWriter) Header() http.Header { return b.header }
func (b *bufferWriter) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}
func (b *bufferWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	// Token responses are small; bound what an in-process call may buffer.
	if b.body.Len()+len(p) > 1<<20 {
		return 0, errors.New("portal: in-process response over 1 MiB")
	}
	return b.body.Write(p)
}

// externalToken returns the session's access token from its external
// provider (one token serves every API), refreshing it there when needed.
func (p *Portal) externalToken(r *http.Request, s *session) (crypt.Secret, error) {
	if t, ok := p.sessions.token(s, externalAudience); ok {
		return t, nil
	}
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	if t, ok := p.sessions.token(s, externalAudience); ok {
		return t, nil
	}
	rt := p.sessions.refreshToken(s)
	if len(rt) == 0 || s.provider > len(p.external) {
		return nil, errSignInRequired
	}
	t, err := p.external[s.provider-1].token(r.Context(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {string(rt)}})
	if err != nil {
		var te *tokenError
		if errors.As(err, &te) && te.Code == "invalid_grant" {
			return nil, errSignInRequired
		}
		return nil, err
	}
	tr := externalResult(t, p.now())
	p.sessions.update(s, externalAudience, tr)
	return tr.access, nil
}
