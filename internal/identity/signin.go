package identity

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Interactive sign-in: the authorization endpoint (authorization code with
// PKCE for public clients such as the portal) and the device code flow
// (RFC 8628) for the CLI. Pages are rendered by the server, with a strict
// Content-Security-Policy (no script at all, no inline style), and every
// form carries a CSRF token bound to a __Host- cookie.

// Paths of the device code flow.
const (
	PathDeviceCode  = "/{tenant}/oauth2/v2.0/devicecode"
	PathDeviceLogin = "/{tenant}/oauth2/v2.0/devicelogin"
)

const (
	csrfCookie    = "__Host-custos-csrf"
	maxSignInForm = 16 << 10
	// pageCSP allows nothing but the form posting back to this origin.
	pageCSP = "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

// userCodeAlphabet has no vowels and no look-alike characters (RFC 8628 §6.1).
const userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"

var pageTmpl = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} – Custos</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main>
<h1>{{.Title}}</h1>
{{if .Message}}<p role="alert">{{.Message}}</p>{{end}}
{{if .Info}}<p>{{.Info}}</p>{{end}}
{{if .Form}}<form method="post" action="{{.Action}}" autocomplete="off">
<input type="hidden" name="csrf_token" value="{{.CSRF}}">
{{range .Hidden}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}{{if .AskUserCode}}<p><label>Code shown on your device<br><input name="user_code" required autofocus value="{{.UserCode}}"></label></p>
{{end}}<p><label>User name<br><input name="username" type="email" required autocomplete="username" value="{{.Username}}"></label></p>
<p><label>Password<br><input name="password" type="password" required autocomplete="current-password"></label></p>
<p><label>One-time code (if enrolled)<br><input name="totp" inputmode="numeric" pattern="[0-9]{6}" autocomplete="one-time-code"></label></p>
<p><button type="submit">Sign in</button></p>
</form>{{end}}
</main></body></html>
`))

type hiddenField struct{ Name, Value string }

type pageData struct {
	Title, Message, Info string
	Form                 bool
	Action, CSRF         string
	Hidden               []hiddenField
	AskUserCode          bool
	UserCode, Username   string
}

// writePage renders a sign-in page with the security headers.
func (s *TokenService) writePage(w http.ResponseWriter, status int, d pageData) {
	var buf bytes.Buffer
	if err := pageTmpl.Execute(&buf, d); err != nil {
		panic("BUG: sign-in page template: " + err.Error())
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// csrfToken returns the request's CSRF cookie value, setting a new cookie
// when there is none.
func (s *TokenService) csrfToken(w http.ResponseWriter, r *http.Request) (string, error) {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) >= 32 && len(c.Value) <= 64 {
		return c.Value, nil
	}
	tok, err := s.randomToken(32)
	if err != nil {
		return "", err
	}
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: tok, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	return tok, nil
}

// checkCSRF compares the form's token with the cookie, in constant time.
func checkCSRF(r *http.Request, form url.Values) bool {
	c, err := r.Cookie(csrfCookie)
	if err != nil || len(c.Value) < 32 {
		return false
	}
	got := form.Get("csrf_token")
	return len(got) == len(c.Value) && subtle.ConstantTimeCompare([]byte(got), []byte(c.Value)) == 1
}

// readForm reads a bounded urlencoded form body; every field single-valued.
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, fmt.Errorf("the form must be application/x-www-form-urlencoded")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSignInForm))
	if err != nil {
		return nil, fmt.Errorf("the form is too large or unreadable")
	}
	form, err := url.ParseQuery(string(body))
	clear(body)
	if err != nil {
		return nil, fmt.Errorf("the form does not parse")
	}
	for k, v := range form {
		if len(v) > 1 {
			return nil, fmt.Errorf("the parameter %s is duplicated", sanitize(k))
		}
	}
	return form, nil
}

// ----- authorization endpoint -----

// authRequest is a validated authorization request.
type authRequest struct {
	client                                              PublicClient
	redirectURI, state, challenge, scope, tenant, nonce string
}

// parseAuthRequest validates the authorization request parameters. Errors
// before the redirect URI is known to be registered are shown on a page
// (pageErr); later ones are redirected to the client (redirectErr).
func (s *TokenService) parseAuthRequest(tenant string, q url.Values) (authRequest, string, string) {
	ar := authRequest{tenant: tenant, state: q.Get("state"), scope: q.Get("scope")}
	c, ok := s.publicClient(q.Get("client_id"))
	if !ok || !c.AuthorizationCode {
		return ar, "The application is not registered for sign-in on this server.", ""
	}
	ar.client = c
	ru := q.Get("redirect_uri")
	registered := false
	for _, want := range c.RedirectURIs {
		if ru == want {
			registered = true
		}
	}
	if !registered {
		return ar, "The redirect URI of the request is not registered for the application.", ""
	}
	ar.redirectURI = ru
	switch {
	case q.Get("response_type") != "code":
		return ar, "", "unsupported_response_type"
	case q.Get("response_mode") != "" && q.Get("response_mode") != "query":
		return ar, "", "invalid_request"
	case q.Get("code_challenge_method") != "S256":
		return ar, "", "invalid_request" // PKCE with S256 is required; plain is refused
	case len(q.Get("code_challenge")) != 43:
		return ar, "", "invalid_request"
	case len(ar.state) > 512, len(q.Get("nonce")) > 512:
		return ar, "", "invalid_request"
	}
	ar.nonce = q.Get("nonce")
	if _, oerr := parseUserScope(ar.scope); oerr != nil {
		return ar, "", "invalid_scope"
	}
	ar.challenge = q.Get("code_challenge")
	return ar, "", ""
}

func redirectError(w http.ResponseWriter, r *http.Request, ar authRequest, code string) {
	u, _ := url.Parse(ar.redirectURI)
	q := u.Query()
	q.Set("error", code)
	q.Set("error_description", "The authorization request is not valid: "+code+". PKCE with code_challenge_method=S256 and response_type=code are required.")
	if ar.state != "" {
		q.Set("state", ar.state)
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

var authParams = []string{"client_id", "response_type", "redirect_uri", "scope", "state", "nonce", "code_challenge", "code_challenge_method", "response_mode"}

// pageRequest reads the tenant and the parameters of a browser-facing
// request (the query of a GET, the form of a POST). On failure it has
// written an error page titled title, naming the address ("sign-in") or the
// form ("sign-in form"), and ok is false.
func (s *TokenService) pageRequest(w http.ResponseWriter, r *http.Request, title, address, form string) (tenant string, params url.Values, ok bool) {
	tenant, oerr := s.requestTenant(r)
	if oerr != nil {
		s.writePage(w, oerr.status, pageData{Title: title, Message: "The tenant of this " + address + " address does not exist."})
		return "", nil, false
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return tenant, r.URL.Query(), true
	case http.MethodPost:
		f, err := readForm(w, r)
		if err != nil {
			s.writePage(w, http.StatusBadRequest, pageData{Title: title, Message: "The " + form + " is not valid: " + err.Error()})
			return "", nil, false
		}
		return tenant, f, true
	default:
		w.Header().Set("Allow", "GET, POST")
		s.writePage(w, http.StatusMethodNotAllowed, pageData{Title: title, Message: "Use GET or POST."})
		return "", nil, false
	}
}

// serveAuthorize shows the sign-in form (GET) and signs the user in (POST),
// redirecting to the client with a one-time authorization code.
func (s *TokenService) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	tenant, params, ok := s.pageRequest(w, r, "Sign-in error", "sign-in", "sign-in form")
	if !ok {
		return
	}
	ar, pageErr, redirErr := s.parseAuthRequest(tenant, params)
	if pageErr != "" {
		s.writePage(w, http.StatusBadRequest, pageData{Title: "Sign-in error", Message: pageErr})
		return
	}
	if redirErr != "" {
		redirectError(w, r, ar, redirErr)
		return
	}
	csrf, err := s.csrfToken(w, r)
	if err != nil {
		s.writePage(w, http.StatusInternalServerError, pageData{Title: "Sign-in error", Message: "Try again."})
		return
	}
	page := pageData{Title: "Sign in to Custos", Form: true, Action: r.URL.Path, CSRF: csrf,
		Info: "Application: " + ar.client.DisplayName}
	for _, k := range authParams {
		if v := params.Get(k); v != "" {
			page.Hidden = append(page.Hidden, hiddenField{k, v})
		}
	}
	if r.Method != http.MethodPost {
		s.writePage(w, http.StatusOK, page)
		return
	}
	if !checkCSRF(r, params) {
		page.Message = "The sign-in form expired or was not sent by this page. Sign in again."
		s.writePage(w, http.StatusForbidden, page)
		return
	}
	page.Username = params.Get("username")
	u, amr, oerr := s.signIn(r.Context(), credentials{tenant: tenant, upn: params.Get("username"), password: params.Get("password"),
		totp: params.Get("totp"), clientID: ar.client.ClientID, remote: r.RemoteAddr})
	if oerr != nil {
		page.Message = signInMessage(oerr)
		status := http.StatusUnauthorized
		if oerr.status == http.StatusTooManyRequests || oerr.status == http.StatusServiceUnavailable {
			status = oerr.status
		}
		s.writePage(w, status, page)
		return
	}
	code, err := s.randomToken(32)
	if err != nil {
		s.writePage(w, http.StatusInternalServerError, pageData{Title: "Sign-in error", Message: "Try again."})
		return
	}
	now := s.now()
	s.users.mu.Lock()
	s.purgeLocked(now)
	if len(s.users.codes) >= maxPendingGrants {
		s.users.mu.Unlock()
		s.writePage(w, http.StatusServiceUnavailable, pageData{Title: "Sign-in error", Message: "Too many sign-ins in progress; try again shortly."})
		return
	}
	ck := codeKey(code)
	ac := &authCode{tenant: tenant, clientID: ar.client.ClientID, redirectURI: ar.redirectURI, challenge: ar.challenge,
		scope: ar.scope, nonce: ar.nonce, user: u, amr: amr, authTime: now, expires: now.Add(authCodeLifetime)}
	s.users.codes[ck] = ac
	s.users.mu.Unlock()
	if err := s.persistSignIn(r.Context(), SignInAuthCode, ck, "", authCodeRecord(ac), ac.expires); err != nil {
		s.users.mu.Lock()
		delete(s.users.codes, ck)
		s.users.mu.Unlock()
		s.log.LogAttrs(r.Context(), slog.LevelError, "authorization code not stored", slog.Any("error", err))
		s.writePage(w, http.StatusServiceUnavailable, pageData{Title: "Sign-in error", Message: "A transient error occurred. Try again."})
		return
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "user signed in (authorization code)", slog.String("object_id", u.ObjectID),
		slog.String("client_id", ar.client.ClientID))
	dest, _ := url.Parse(ar.redirectURI)
	q := dest.Query()
	q.Set("code", code)
	if ar.state != "" {
		q.Set("state", ar.state)
	}
	dest.RawQuery = q.Encode()
	http.Redirect(w, r, dest.String(), http.StatusFound)
}

// signInMessage is the page text for a failed sign-in. Unknown users and
// wrong passwords read the same.
func signInMessage(e *oauthError) string {
	switch e.aadsts {
	case 50053:
		return "Too many failed attempts. Wait and try again later."
	case 50076:
		return "Enter the one-time code from your authenticator app."
	case 90033:
		return "A transient error occurred. Try again."
	default:
		return "The user name, password or one-time code is not correct."
	}
}

// redeemAuthCode exchanges a code (once) after checking client, redirect
// URI and the PKCE verifier: BASE64URL(SHA-256(code_verifier)) must equal
// the challenge.
//
// It also returns when the user signed in and the request's nonce, for the
// ID token.
func (s *TokenService) redeemAuthCode(ctx context.Context, tenant string, client PublicClient, form url.Values) (User, []string, userScope, time.Time, string, *oauthError) {
	fail := func(e *oauthError) (User, []string, userScope, time.Time, string, *oauthError) {
		return User{}, nil, userScope{}, time.Time{}, "", e
	}
	code := form.Get("code")
	verifier := form.Get("code_verifier")
	s.users.mu.Lock()
	k := codeKey(code)
	ac, ok := s.users.codes[k]
	delete(s.users.codes, k) // one use, whatever the outcome
	s.users.mu.Unlock()
	if ok {
		// Gone from the store too before anything is issued, so that a
		// restart cannot bring the code back.
		if err := s.forgetSignIn(ctx, SignInAuthCode, k); err != nil {
			s.log.LogAttrs(ctx, slog.LevelError, "authorization code not deleted", slog.Any("error", err))
			return fail(errTransient())
		}
	}
	bad := invalidGrant(70008, "The provided authorization code is invalid, expired or was already redeemed.")
	if !ok || !s.now().Before(ac.expires) || ac.tenant != tenant || !strings.EqualFold(ac.clientID, client.ClientID) {
		return fail(bad)
	}
	if form.Get("redirect_uri") != ac.redirectURI {
		return fail(invalidGrant(50148, "The redirect_uri does not match the one of the authorization request."))
	}
	if len(verifier) < 43 || len(verifier) > 128 {
		return fail(invalidGrant(501481, "The code_verifier is missing or malformed."))
	}
	sum := sha256.Sum256([]byte(verifier))
	if subtle.ConstantTimeCompare([]byte(b64.EncodeToString(sum[:])), []byte(ac.challenge)) != 1 {
		return fail(invalidGrant(501481, "The code_verifier does not match the code_challenge supplied in the authorization request."))
	}
	sc, oerr := parseUserScope(ac.scope)
	if oerr != nil {
		return fail(oerr)
	}
	return ac.user, ac.amr, sc, ac.authTime, ac.nonce, nil
}

// ----- device code flow -----

type deviceCodeResponse struct {
	DeviceCode      string `json:"device_code"`
	UserCode        string `json:"user_code"`
	VerificationURI string `json:"verification_uri"`
	ExpiresIn       int64  `json:"expires_in"`
	Interval        int64  `json:"interval"`
	Message         string `json:"message"`
}

// serveDeviceCode starts a device code flow (POST client_id, scope).
func (s *TokenService) serveDeviceCode(w http.ResponseWriter, r *http.Request) {
	tenant, oerr := s.requestTenant(r)
	if oerr != nil {
		s.writeOAuthError(w, r, oerr)
		return
	}
	form, err := readForm(w, r)
	if err != nil {
		s.writeOAuthError(w, r, &oauthError{status: http.StatusBadRequest, code: "invalid_request", aadsts: 90014, desc: err.Error()})
		return
	}
	c, ok := s.publicClient(form.Get("client_id"))
	if !ok || !c.DeviceCode {
		s.writeOAuthError(w, r, &oauthError{status: http.StatusBadRequest, code: "unauthorized_client", aadsts: 700016,
			desc: fmt.Sprintf("The client '%s' may not use the device code flow.", sanitize(form.Get("client_id")))})
		return
	}
	if s.users.dir == nil {
		s.writeOAuthError(w, r, errNoDirectory)
		return
	}
	if _, oerr := parseUserScope(form.Get("scope")); oerr != nil {
		s.writeOAuthError(w, r, oerr)
		return
	}
	dev, err := s.randomToken(32)
	if err != nil {
		s.writeOAuthError(w, r, errTransient())
		return
	}
	raw := make([]byte, 8)
	if _, err := fullRead(s.rand, raw); err != nil {
		s.writeOAuthError(w, r, errTransient())
		return
	}
	uc := make([]byte, 0, 9)
	for i, b := range raw {
		if i == 4 {
			uc = append(uc, '-')
		}
		uc = append(uc, userCodeAlphabet[int(b)%len(userCodeAlphabet)])
	}
	userCode := string(uc)
	now := s.now()
	s.users.mu.Lock()
	s.purgeLocked(now)
	if len(s.users.devices) >= maxPendingGrants {
		s.users.mu.Unlock()
		s.writeOAuthError(w, r, errTransient())
		return
	}
	if _, dup := s.users.byUser[userCode]; dup {
		s.users.mu.Unlock()
		s.writeOAuthError(w, r, errTransient())
		return
	}
	k := codeKey(dev)
	dg := &deviceGrant{tenant: tenant, clientID: c.ClientID, scope: form.Get("scope"), userCode: userCode,
		expires: now.Add(deviceCodeLifetime)}
	s.users.devices[k] = dg
	s.users.byUser[userCode] = k
	s.users.mu.Unlock()
	if err := s.persistSignIn(r.Context(), SignInDeviceCode, k, userCode, deviceRecord(dg), dg.expires); err != nil {
		s.users.mu.Lock()
		delete(s.users.devices, k)
		delete(s.users.byUser, userCode)
		s.users.mu.Unlock()
		s.log.LogAttrs(r.Context(), slog.LevelError, "device code not stored", slog.Any("error", err))
		s.writeOAuthError(w, r, errTransient())
		return
	}
	verify := s.baseFor(r) + "/" + tenant + "/oauth2/v2.0/devicelogin"
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, deviceCodeResponse{DeviceCode: dev, UserCode: userCode, VerificationURI: verify,
		ExpiresIn: int64(deviceCodeLifetime / time.Second), Interval: int64(devicePollInterval / time.Second),
		Message: fmt.Sprintf("To sign in, open %s in a browser and enter the code %s to authenticate.", verify, userCode)})
}

// serveDeviceLogin is the page where a user enters the device's code and
// signs in.
func (s *TokenService) serveDeviceLogin(w http.ResponseWriter, r *http.Request) {
	tenant, oerr := s.requestTenant(r)
	if oerr != nil {
		s.writePage(w, oerr.status, pageData{Title: "Sign-in error", Message: "The tenant of this sign-in address does not exist."})
		return
	}
	csrf, err := s.csrfToken(w, r)
	if err != nil {
		s.writePage(w, http.StatusInternalServerError, pageData{Title: "Sign-in error", Message: "Try again."})
		return
	}
	page := pageData{Title: "Sign in a device to Custos", Form: true, Action: r.URL.Path, CSRF: csrf, AskUserCode: true,
		Info: "Enter the code your device shows, then sign in.", UserCode: sanitize(r.URL.Query().Get("user_code"))}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.writePage(w, http.StatusOK, page)
		return
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "GET, POST")
		s.writePage(w, http.StatusMethodNotAllowed, pageData{Title: "Sign-in error", Message: "Use GET or POST."})
		return
	}
	form, err := readForm(w, r)
	if err != nil {
		page.Message = "The sign-in form is not valid: " + err.Error()
		s.writePage(w, http.StatusBadRequest, page)
		return
	}
	if !checkCSRF(r, form) {
		page.Message = "The sign-in form expired or was not sent by this page. Sign in again."
		s.writePage(w, http.StatusForbidden, page)
		return
	}
	userCode := strings.ToUpper(strings.TrimSpace(form.Get("user_code")))
	if len(userCode) == 8 {
		userCode = userCode[:4] + "-" + userCode[4:]
	}
	page.UserCode, page.Username = sanitize(userCode), form.Get("username")
	now := s.now()
	s.users.mu.Lock()
	k, ok := s.users.byUser[userCode]
	d := s.users.devices[k]
	s.users.mu.Unlock()
	if !ok || d == nil || !now.Before(d.expires) || d.tenant != tenant || d.user != nil {
		s.addrLimit.fail(addressKey(r.RemoteAddr), now)
		if s.users.failed != nil {
			s.users.failed(r.Context(), SignInFailure{TenantID: tenant, UserPrincipalName: sanitize(form.Get("username")),
				RemoteAddr: r.RemoteAddr, Reason: "unknown or expired device code"})
		}
		page.Message = "The code is not valid or has expired. Check the code on your device."
		s.writePage(w, http.StatusBadRequest, page)
		return
	}
	u, amr, oerr := s.signIn(r.Context(), credentials{tenant: tenant, upn: form.Get("username"), password: form.Get("password"),
		totp: form.Get("totp"), clientID: d.clientID, remote: r.RemoteAddr})
	if oerr != nil {
		page.Message = signInMessage(oerr)
		s.writePage(w, http.StatusUnauthorized, page)
		return
	}
	s.users.mu.Lock()
	var rec signInRecord
	signedIn := false
	if cur := s.users.devices[k]; cur == d && cur.user == nil {
		d.user, d.amr, d.authTime = &u, amr, s.now()
		rec, signedIn = deviceRecord(d), true
	}
	expires := d.expires
	s.users.mu.Unlock()
	if signedIn {
		if err := s.persistSignIn(r.Context(), SignInDeviceCode, k, userCode, rec, expires); err != nil {
			// The sign-in stays in memory: the device still gets its token
			// unless the server restarts first.
			s.log.LogAttrs(r.Context(), slog.LevelError, "device sign-in not stored", slog.Any("error", err))
		}
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "user signed in a device", slog.String("object_id", u.ObjectID),
		slog.String("client_id", d.clientID))
	s.writePage(w, http.StatusOK, pageData{Title: "You are signed in", Info: "You have signed in to the Custos CLI on your device. You can close this window."})
}

// pollDeviceCode answers the device's token poll.
// It also returns when the user signed in, for the ID token.
func (s *TokenService) pollDeviceCode(ctx context.Context, tenant string, client PublicClient, dev string) (User, []string, userScope, time.Time, *oauthError) {
	fail := func(e *oauthError) (User, []string, userScope, time.Time, *oauthError) {
		return User{}, nil, userScope{}, time.Time{}, e
	}
	now := s.now()
	k := codeKey(dev)
	s.users.mu.Lock()
	defer s.users.mu.Unlock()
	d, ok := s.users.devices[k]
	if !ok || d.tenant != tenant || !strings.EqualFold(d.clientID, client.ClientID) {
		return fail(invalidGrant(70019, "The device code is not valid."))
	}
	if !now.Before(d.expires) {
		delete(s.users.devices, k)
		delete(s.users.byUser, d.userCode)
		_ = s.forgetSignIn(ctx, SignInDeviceCode, k) // expired anyway; the next start drops it
		return fail(&oauthError{status: http.StatusBadRequest, code: "expired_token", aadsts: 70020,
			desc: "The provided value for the input parameter 'device_code' is not valid. This device code has expired."})
	}
	if d.user == nil {
		fast := !d.lastPoll.IsZero() && now.Sub(d.lastPoll) < devicePollInterval-time.Second
		d.lastPoll = now
		if fast {
			return fail(&oauthError{status: http.StatusBadRequest, code: "slow_down", aadsts: 70016,
				desc: "The client polls too often; wait the interval between polls."})
		}
		return fail(&oauthError{status: http.StatusBadRequest, code: "authorization_pending", aadsts: 70016,
			desc: "OAuth 2.0 device flow error. Authorization is pending. Continue polling."})
	}
	// Single use: gone from the store before the token is issued.
	if err := s.forgetSignIn(ctx, SignInDeviceCode, k); err != nil {
		s.log.LogAttrs(ctx, slog.LevelError, "device code not deleted", slog.Any("error", err))
		return fail(errTransient())
	}
	delete(s.users.devices, k)
	delete(s.users.byUser, d.userCode)
	sc, oerr := parseUserScope(d.scope)
	if oerr != nil {
		return fail(oerr)
	}
	return *d.user, d.amr, sc, d.authTime, nil
}
