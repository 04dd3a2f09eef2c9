package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Local users sign in with a password (argon2id) and, when enrolled, a TOTP
// code, through public clients: the password grant and the device code flow
// (custos-cli) and the authorization code flow with PKCE (custos-portal).
// Access tokens of users carry idtyp "user"; refresh tokens rotate on every
// use, and presenting a used one revokes its whole family.

// Built-in public clients.
const (
	// ClientCLI is the client ID of the custos command line (device code,
	// password and refresh token grants).
	ClientCLI = "custos-cli"
	// ClientPortal is the client ID of the web portal (authorization code
	// with PKCE; redirect https://{host}/portal/callback).
	ClientPortal = "custos-portal"
	// PortalCallbackPath is the portal's registered redirect path.
	PortalCallbackPath = "/portal/callback"
)

// Defaults of the user sign-in settings.
const (
	DefaultRefreshTokenLifetime = 14 * 24 * time.Hour
	DefaultLockoutThreshold     = 5
	DefaultLockoutDuration      = 15 * time.Minute
	authCodeLifetime            = 5 * time.Minute
	deviceCodeLifetime          = 15 * time.Minute
	devicePollInterval          = 5 * time.Second
	maxPendingGrants            = 10000
	maxConcurrentHashes         = 4
)

// GrantDeviceCode is the device code grant type (RFC 8628).
const GrantDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"

// PublicClient is a client without a secret that users sign in through.
type PublicClient struct {
	ClientID          string
	DisplayName       string
	RedirectURIs      []string // exact match; for AuthorizationCode
	AuthorizationCode bool     // authorization code + PKCE (S256)
	DeviceCode        bool
	Password          bool // resource owner password grant (with totp when enrolled)
}

// Lockout configures the lockout of local users after failed sign-ins: from
// Threshold consecutive failures on, each failure locks the user for
// Duration, doubled per further failure up to 24 h. Zero fields take the
// defaults (5, 15 min).
type Lockout struct {
	Threshold int
	Duration  time.Duration
}

// SignInFailure describes a failed user sign-in for the activity log.
type SignInFailure struct {
	TenantID          string
	UserPrincipalName string // as entered (bounded, sanitized)
	ObjectID          string // "" when the user does not exist
	ClientID          string
	RemoteAddr        string
	Reason            string // "wrong password", "locked", ...
}

// users is the token service's state for user sign-in. Safe for concurrent
// use.
type users struct {
	dir       Directory // nil: the store has no directory; user flows are refused
	clients   map[string]PublicClient
	refreshLT time.Duration
	lockout   Lockout
	failed    func(context.Context, SignInFailure)
	hashSem   chan struct{} // bounds concurrent argon2id computations (64 MiB each)

	dummyOnce sync.Once
	dummy     string // a hash verified for unknown users, so timing does not tell

	signins SignInStore // nil: pending sign-ins are held in memory only

	mu      sync.Mutex // guards codes, devices, byUser
	codes   map[string]*authCode
	devices map[string]*deviceGrant
	byUser  map[string]string // user code → device key
}

type authCode struct {
	tenant, clientID, redirectURI, challenge, scope, nonce string
	user                                                   User
	amr                                                    []string
	authTime, expires                                      time.Time
}

type deviceGrant struct {
	tenant, clientID, scope, userCode string
	expires, lastPoll, authTime       time.Time
	user                              *User
	amr                               []string
}

func (s *TokenService) initUsers(opts TokenServiceOptions) error {
	u := &s.users
	if d, ok := opts.Store.(Directory); ok {
		u.dir = d
	}
	if ss, ok := opts.Store.(SignInStore); ok {
		u.signins = ss
	}
	u.refreshLT = opts.RefreshTokenLifetime
	if u.refreshLT <= 0 {
		u.refreshLT = DefaultRefreshTokenLifetime
	}
	u.lockout = opts.Lockout
	if u.lockout.Threshold <= 0 {
		u.lockout.Threshold = DefaultLockoutThreshold
	}
	if u.lockout.Duration <= 0 {
		u.lockout.Duration = DefaultLockoutDuration
	}
	u.failed = opts.SignInFailed
	u.hashSem = make(chan struct{}, maxConcurrentHashes)
	u.codes, u.devices, u.byUser = map[string]*authCode{}, map[string]*deviceGrant{}, map[string]string{}
	u.clients = map[string]PublicClient{}
	var portal []string
	for _, base := range s.issuers {
		portal = append(portal, base+PortalCallbackPath)
	}
	builtin := []PublicClient{
		{ClientID: ClientCLI, DisplayName: "Custos CLI", DeviceCode: true, Password: true},
		{ClientID: ClientPortal, DisplayName: "Custos portal", AuthorizationCode: true, RedirectURIs: portal},
	}
	for _, c := range append(builtin, opts.PublicClients...) {
		id := strings.ToLower(strings.TrimSpace(c.ClientID))
		if id == "" || len(id) > 128 || strings.ContainsAny(id, " \t\r\n\"<>") {
			return fmt.Errorf("%w: public client ID %q", ErrInvalidArgument, c.ClientID)
		}
		for _, ru := range c.RedirectURIs {
			pu, err := url.Parse(ru)
			if err != nil || pu.Scheme != "https" || pu.Host == "" || pu.Fragment != "" {
				return fmt.Errorf("%w: redirect URI %q of client %s must be an absolute https URL", ErrInvalidArgument, ru, c.ClientID)
			}
		}
		if old, ok := u.clients[id]; ok {
			c.RedirectURIs = append(old.RedirectURIs, c.RedirectURIs...)
		}
		u.clients[id] = c
	}
	return nil
}

// PublicClients returns the registered public clients.
func (s *TokenService) PublicClients() []PublicClient {
	out := make([]PublicClient, 0, len(s.users.clients))
	for _, c := range s.users.clients {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b PublicClient) int { return strings.Compare(a.ClientID, b.ClientID) })
	return out
}

func (s *TokenService) publicClient(id string) (PublicClient, bool) {
	c, ok := s.users.clients[strings.ToLower(id)]
	return c, ok
}

// dummyHash returns a password hash of a random password, computed once.
func (s *TokenService) dummyHash() string {
	s.users.dummyOnce.Do(func() {
		b := make([]byte, 24)
		if _, err := rand.Read(b); err != nil {
			panic("BUG: crypto/rand failed: " + err.Error())
		}
		h, err := HashPassword(rand.Reader, hex.EncodeToString(b), DefaultArgon2)
		if err != nil {
			panic("BUG: hash dummy password: " + err.Error())
		}
		s.users.dummy = h
	})
	return s.users.dummy
}

// verifyPassword runs VerifyPassword with bounded concurrency.
func (s *TokenService) verifyPassword(ctx context.Context, phc, pw string) (bool, error) {
	select {
	case s.users.hashSem <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-s.users.hashSem }()
	if phc == "" {
		phc = s.dummyHash()
		VerifyPassword(phc, pw)
		return false, nil
	}
	return VerifyPassword(phc, pw), nil
}

// credentials is what a user presents at sign-in.
type credentials struct {
	tenant, upn, password, totp, clientID, remote string
}

var (
	errBadCredentials = &oauthError{status: http.StatusBadRequest, code: "invalid_grant", aadsts: 50126,
		desc: "Error validating credentials due to invalid username or password."}
	errLocked = &oauthError{status: http.StatusBadRequest, code: "invalid_grant", aadsts: 50053,
		desc: "The account is locked because of too many failed sign-in attempts. Try again later."}
	errUserDisabled = &oauthError{status: http.StatusBadRequest, code: "invalid_grant", aadsts: 50057,
		desc: "The user account is disabled."}
	errMFARequired = &oauthError{status: http.StatusBadRequest, code: "invalid_grant", aadsts: 50076,
		desc: "The user must present a one-time code (parameter 'totp') from the authenticator app enrolled for this account."}
	errBadCode = &oauthError{status: http.StatusBadRequest, code: "invalid_grant", aadsts: 50126,
		desc: "The one-time code is not valid or was already used."}
	errNoDirectory = &oauthError{status: http.StatusBadRequest, code: "unsupported_grant_type", aadsts: 70003,
		desc: "This server has no user directory; only the client credentials grant is supported."}
)

// signIn checks a user's password and TOTP code, with rate limits and
// lockout. It returns the user and the authentication methods ("pwd",
// "otp"); a failure is reported through SignInFailed.
func (s *TokenService) signIn(ctx context.Context, c credentials) (User, []string, *oauthError) {
	if s.users.dir == nil {
		return User{}, nil, errNoDirectory
	}
	now := s.now()
	addrKey := addressKey(c.remote)
	userKey := "user/" + c.tenant + "/" + strings.ToLower(c.upn)
	if ok, wait := s.addrLimit.allow(addrKey, now); !ok {
		return User{}, nil, tooMany(wait)
	}
	if ok, wait := s.clientLimit.allow(userKey, now); !ok {
		return User{}, nil, tooMany(wait)
	}
	fail := func(u *User, reason string, e *oauthError) (User, []string, *oauthError) {
		s.addrLimit.fail(addrKey, now)
		s.clientLimit.fail(userKey, now)
		f := SignInFailure{TenantID: c.tenant, UserPrincipalName: sanitize(c.upn), ClientID: sanitize(c.clientID),
			RemoteAddr: c.remote, Reason: reason}
		if u != nil {
			f.ObjectID = u.ObjectID
		}
		s.log.LogAttrs(ctx, slog.LevelWarn, "user sign-in failed", slog.String("tenant_id", c.tenant),
			slog.String("upn", f.UserPrincipalName), slog.String("object_id", f.ObjectID), slog.String("reason", reason),
			slog.String("remote_addr", c.remote))
		if s.users.failed != nil {
			s.users.failed(ctx, f)
		}
		return User{}, nil, e
	}
	if c.upn == "" || len(c.upn) > 320 || c.password == "" {
		return fail(nil, "missing username or password", errBadCredentials)
	}
	u, st, err := s.users.dir.UserByUPN(ctx, c.tenant, c.upn)
	if errors.Is(err, ErrNotFound) {
		if _, err := s.verifyPassword(ctx, "", c.password); err != nil {
			return User{}, nil, errTransient()
		}
		return fail(nil, "unknown user", errBadCredentials)
	}
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelError, "user lookup failed", slog.Any("error", err))
		return User{}, nil, errTransient()
	}
	if now.Before(st.LockedUntil) {
		_, _ = s.verifyPassword(ctx, "", c.password)
		return fail(&u, "locked", errLocked)
	}
	ok, err := s.verifyPassword(ctx, st.PasswordHash, c.password)
	if err != nil {
		return User{}, nil, errTransient()
	}
	if !ok {
		return s.countFailure(ctx, u, st, now, "wrong password", errBadCredentials, fail)
	}
	amr := []string{"pwd"}
	if st.TOTPEnabled {
		if strings.TrimSpace(c.totp) == "" {
			return fail(&u, "one-time code missing", errMFARequired)
		}
		secret, err := s.keys.Open(st.TOTPSealed, totpAAD(u.TenantID, u.ObjectID))
		if err != nil {
			s.log.LogAttrs(ctx, slog.LevelError, "TOTP secret does not unseal", slog.String("object_id", u.ObjectID), slog.Any("error", err))
			return User{}, nil, errTransient()
		}
		step := matchTOTP(secret, c.totp, now)
		clear(secret)
		if step == 0 {
			return s.countFailure(ctx, u, st, now, "wrong one-time code", errBadCode, fail)
		}
		fresh, err := s.users.dir.AcceptTOTPStep(ctx, u.TenantID, u.ObjectID, step)
		if err != nil {
			return User{}, nil, errTransient()
		}
		if !fresh {
			return s.countFailure(ctx, u, st, now, "one-time code replayed", errBadCode, fail)
		}
		amr = append(amr, "otp")
	}
	if !u.Enabled {
		return fail(&u, "user disabled", errUserDisabled)
	}
	if st.FailedSignIns > 0 || !st.LockedUntil.IsZero() {
		if err := s.users.dir.ResetSignInFailures(ctx, u.TenantID, u.ObjectID); err != nil {
			return User{}, nil, errTransient()
		}
	}
	return u, amr, nil
}

// countFailure records a failed credential check and locks the user from
// the threshold on.
func (s *TokenService) countFailure(ctx context.Context, u User, st SignInState, now time.Time, reason string, e *oauthError,
	fail func(*User, string, *oauthError) (User, []string, *oauthError)) (User, []string, *oauthError) {
	var lock time.Time
	n := st.FailedSignIns + 1
	if n >= s.users.lockout.Threshold {
		d := s.users.lockout.Duration * time.Duration(math.Pow(2, float64(min(n-s.users.lockout.Threshold, 7))))
		lock = now.Add(min(d, 24*time.Hour))
	}
	if _, err := s.users.dir.RecordSignInFailure(ctx, u.TenantID, u.ObjectID, lock); err != nil {
		s.log.LogAttrs(ctx, slog.LevelError, "record sign-in failure", slog.Any("error", err))
	}
	if !lock.IsZero() {
		reason += "; account locked until " + lock.UTC().Format(time.RFC3339)
	}
	return fail(&u, reason, e)
}

func tooMany(wait time.Duration) *oauthError {
	return &oauthError{status: http.StatusTooManyRequests, code: "temporarily_unavailable", aadsts: 50053, retryAfter: wait,
		desc: "Too many failed sign-in attempts from this address or for this account; retry after the time in the Retry-After header."}
}

func errTransient() *oauthError {
	return &oauthError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable", aadsts: 90033,
		desc: "A transient error has occurred. Please try again."}
}

// userScope is a parsed user-flow scope: one Custos audience and whether a
// refresh token is wanted.
type userScope struct {
	aud     string
	offline bool
	openid  bool   // an ID token is wanted
	text    string // the scope as granted, e.g. "https://api.loganalytics.io/.default offline_access"
}

// parseUserScope maps a user flow's scope ("{resource}/.default" or
// "{resource}/user_impersonation", plus OpenID scopes) to an audience;
// without a resource the management audience is used.
func parseUserScope(scope string) (userScope, *oauthError) {
	var us userScope
	var res []string
	for _, f := range strings.Fields(scope) {
		switch strings.ToLower(f) {
		case "offline_access":
			us.offline = true
			continue
		case "openid":
			us.openid = true
			continue
		case "profile", "email":
			continue
		}
		res = append(res, f)
	}
	if len(res) > 1 {
		return us, &oauthError{status: http.StatusBadRequest, code: "invalid_scope", aadsts: 70011,
			desc: "The provided value for the input parameter 'scope' is not valid. Name exactly one resource."}
	}
	r := AudienceManagement
	if len(res) == 1 {
		r = res[0]
		for _, suf := range []string{"/.default", "/user_impersonation"} {
			if len(r) > len(suf) && strings.EqualFold(r[len(r)-len(suf):], suf) {
				r = r[:len(r)-len(suf)]
				break
			}
		}
	}
	aud, ok := canonicalAudience(r)
	if !ok {
		return us, &oauthError{status: http.StatusBadRequest, code: "invalid_scope", aadsts: 70011,
			desc: fmt.Sprintf("The scope %s is not valid: this server issues tokens for %s, %s and %s.", sanitize(r), AudienceManagement, AudienceIngestion, AudienceQuery)}
	}
	us.aud = aud
	us.text = aud + "/.default"
	if us.offline {
		us.text += " offline_access"
	}
	if us.openid {
		us.text += " openid"
	}
	return us, nil
}

// userTokenResponse is the token endpoint's answer to a user flow.
type userTokenResponse struct {
	TokenType    string `json:"token_type"`
	Scope        string `json:"scope"`
	ExpiresIn    int64  `json:"expires_in"`
	ExtExpiresIn int64  `json:"ext_expires_in"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"` // when the scope has openid
}

// issueUserTokens signs an access token for u and, when the scope asks for
// offline_access, a refresh token of family (a new family when ""), and for
// openid an ID token (with auth_time when known and the request's nonce).
func (s *TokenService) issueUserTokens(ctx context.Context, base string, u User, clientID string, sc userScope, amr []string, family string, authTime time.Time, nonce string) (userTokenResponse, error) {
	sg, err := s.currentSigner(ctx)
	if err != nil {
		return userTokenResponse{}, fmt.Errorf("issue token: %w", err)
	}
	jti, err := newGUID(s.rand)
	if err != nil {
		return userTokenResponse{}, err
	}
	now := s.now().Truncate(time.Second)
	s.markIssue(now)
	exp := now.Add(s.lifetime)
	tenant := strings.ToLower(u.TenantID)
	c := &Claims{
		Audience: sc.aud, Issuer: issuerFor(base, tenant), IssuedAt: now.Unix(), NotBefore: now.Unix(), Expires: exp.Unix(),
		AppID: clientID, AuthorizedApp: clientID, AzpACR: "0", IDType: "user", ObjectID: u.ObjectID, Subject: u.ObjectID,
		TenantID: tenant, TokenID: jti, Version: "2.0", UPN: u.UserPrincipalName, Name: u.DisplayName,
		Scope: "user_impersonation", AuthMethods: amr,
	}
	tok, err := signJWT(s.rand, sg.priv, sg.kid, c)
	if err != nil {
		return userTokenResponse{}, fmt.Errorf("issue token: %w", err)
	}
	secs := int64(s.lifetime/time.Second) - 1
	out := userTokenResponse{TokenType: "Bearer", Scope: sc.text, ExpiresIn: secs, ExtExpiresIn: secs, AccessToken: tok}
	if sc.offline {
		rt, err := s.newRefreshToken(ctx, u, clientID, sc.text, family)
		if err != nil {
			return userTokenResponse{}, err
		}
		out.RefreshToken = rt
	}
	if sc.openid {
		if out.IDToken, err = s.issueIDToken(ctx, base, u, clientID, amr, authTime, nonce); err != nil {
			return userTokenResponse{}, fmt.Errorf("issue ID token: %w", err)
		}
	}
	return out, nil
}

// refreshPrefix marks Custos refresh tokens.
const refreshPrefix = "crt1."

func hashRefreshToken(tok string) []byte {
	h := sha256.Sum256([]byte("custos refresh token v1\x00" + tok))
	return h[:]
}

func (s *TokenService) newRefreshToken(ctx context.Context, u User, clientID, scope, family string) (string, error) {
	raw := make([]byte, 32)
	if _, err := fullRead(s.rand, raw); err != nil {
		return "", fmt.Errorf("refresh token: %w", err)
	}
	tok := refreshPrefix + b64.EncodeToString(raw)
	if family == "" {
		var err error
		if family, err = newGUID(s.rand); err != nil {
			return "", err
		}
	}
	now := s.now().UTC()
	err := s.users.dir.PutRefreshToken(ctx, RefreshToken{Hash: hashRefreshToken(tok), FamilyID: family, TenantID: u.TenantID,
		ObjectID: u.ObjectID, ClientID: clientID, Scope: scope, Created: now, Expires: now.Add(s.users.refreshLT)})
	if err != nil {
		return "", fmt.Errorf("store refresh token: %w", err)
	}
	return tok, nil
}

// RevokeUserSessions revokes every refresh token of a user (sign-out
// everywhere); access tokens end at expiry, or at once when the user is
// disabled.
func (s *TokenService) RevokeUserSessions(ctx context.Context, tenantID, objectID string) (int, error) {
	if s.users.dir == nil {
		return 0, fmt.Errorf("%w: no user directory", ErrInvalidArgument)
	}
	return s.users.dir.RevokeRefreshTokens(ctx, tenantID, objectID)
}

// EnrollTOTP creates a new TOTP secret for a user, stores it sealed and not
// yet required, and returns the otpauth:// URI to show once (as a QR code
// or text). ConfirmTOTP with a valid code turns it on.
func (s *TokenService) EnrollTOTP(ctx context.Context, tenantID, objectID string) (string, error) {
	if s.users.dir == nil {
		return "", fmt.Errorf("%w: no user directory", ErrInvalidArgument)
	}
	u, _, err := s.users.dir.DirectoryUser(ctx, tenantID, objectID)
	if err != nil {
		return "", err
	}
	secret, err := NewTOTPSecret(s.rand)
	if err != nil {
		return "", err
	}
	defer clear(secret)
	sealed, err := s.keys.Seal(secret, totpAAD(u.TenantID, u.ObjectID))
	if err != nil {
		return "", fmt.Errorf("seal TOTP secret: %w", err)
	}
	if err := s.users.dir.SetUserTOTP(ctx, u.TenantID, u.ObjectID, sealed, false); err != nil {
		return "", err
	}
	return TOTPURI(secret, "Custos", u.UserPrincipalName), nil
}

// ErrInvalidCode is returned by ConfirmTOTP for a wrong or used code.
var ErrInvalidCode = errors.New("identity: the one-time code is not valid or was already used")

// ConfirmTOTP checks a code of the enrolled (not yet enabled) secret and
// enables TOTP for the user: from then on sign-in requires a code.
func (s *TokenService) ConfirmTOTP(ctx context.Context, tenantID, objectID, code string) error {
	if s.users.dir == nil {
		return fmt.Errorf("%w: no user directory", ErrInvalidArgument)
	}
	u, st, err := s.users.dir.DirectoryUser(ctx, tenantID, objectID)
	if err != nil {
		return err
	}
	if len(st.TOTPSealed) == 0 {
		return fmt.Errorf("%w: the user has no TOTP enrolment; enroll first", ErrInvalidArgument)
	}
	secret, err := s.keys.Open(st.TOTPSealed, totpAAD(u.TenantID, u.ObjectID))
	if err != nil {
		return fmt.Errorf("open TOTP secret: %w", err)
	}
	step := matchTOTP(secret, code, s.now())
	clear(secret)
	if step == 0 {
		return ErrInvalidCode
	}
	if err := s.users.dir.SetUserTOTP(ctx, u.TenantID, u.ObjectID, st.TOTPSealed, true); err != nil {
		return err
	}
	ok, err := s.users.dir.AcceptTOTPStep(ctx, u.TenantID, u.ObjectID, step)
	if err != nil {
		return err
	}
	if !ok {
		return ErrInvalidCode
	}
	return nil
}

// ----- token endpoint: user grants -----

// isUserGrant reports whether grant_type is one of the user flows.
func isUserGrant(gt string) bool {
	switch gt {
	case "password", "refresh_token", "authorization_code", GrantDeviceCode:
		return true
	}
	return false
}

// serveUserToken answers the token endpoint for the user grants. form is
// the parsed body (single-valued).
func (s *TokenService) serveUserToken(w http.ResponseWriter, r *http.Request, tenant string, form url.Values) {
	ctx := r.Context()
	gt := form.Get("grant_type")
	clientID := form.Get("client_id")
	client, ok := s.publicClient(clientID)
	if !ok {
		s.writeOAuthError(w, r, &oauthError{status: http.StatusBadRequest, code: "unauthorized_client", aadsts: 700016,
			desc: fmt.Sprintf("Application with identifier '%s' is not a public client of this server.", sanitize(clientID))})
		return
	}
	if s.users.dir == nil {
		s.writeOAuthError(w, r, errNoDirectory)
		return
	}
	base := s.baseFor(r)
	var (
		u        User
		amr      []string
		sc       userScope
		family   string
		authTime time.Time // interactive grants: when the user signed in
		nonce    string    // authorization code grant: the request's nonce
		oerr     *oauthError
	)
	switch gt {
	case "password":
		if !client.Password {
			oerr = unauthorizedGrant(clientID, gt)
			break
		}
		if sc, oerr = parseUserScope(form.Get("scope")); oerr != nil {
			break
		}
		u, amr, oerr = s.signIn(ctx, credentials{tenant: tenant, upn: form.Get("username"), password: form.Get("password"),
			totp: form.Get("totp"), clientID: client.ClientID, remote: r.RemoteAddr})
	case "refresh_token":
		u, sc, family, oerr = s.redeemRefreshToken(ctx, tenant, client, form)
		amr = []string{"pwd"}
	case "authorization_code":
		if !client.AuthorizationCode {
			oerr = unauthorizedGrant(clientID, gt)
			break
		}
		u, amr, sc, authTime, nonce, oerr = s.redeemAuthCode(ctx, tenant, client, form)
	case GrantDeviceCode:
		if !client.DeviceCode {
			oerr = unauthorizedGrant(clientID, gt)
			break
		}
		u, amr, sc, authTime, oerr = s.pollDeviceCode(ctx, tenant, client, form.Get("device_code"))
	}
	if oerr != nil {
		s.writeOAuthError(w, r, oerr)
		return
	}
	resp, err := s.issueUserTokens(ctx, base, u, client.ClientID, sc, amr, family, authTime, nonce)
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelError, "user token issuance failed", slog.Any("error", err))
		s.writeOAuthError(w, r, &oauthError{status: http.StatusInternalServerError, code: "server_error", aadsts: 90033,
			desc: "The token could not be issued."})
		return
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "user token issued", slog.String("tenant_id", tenant), slog.String("object_id", u.ObjectID),
		slog.String("client_id", client.ClientID), slog.String("grant_type", gt), slog.String("audience", sc.aud))
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, resp)
}

func unauthorizedGrant(clientID, gt string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: "unauthorized_client", aadsts: 700016,
		desc: fmt.Sprintf("The client '%s' is not allowed to use the grant type '%s'.", sanitize(clientID), sanitize(gt))}
}

func invalidGrant(aadsts int, desc string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: "invalid_grant", aadsts: aadsts, desc: desc}
}

// redeemRefreshToken rotates a refresh token: the presented one is used up
// and a new one of the same family is issued with the access token.
func (s *TokenService) redeemRefreshToken(ctx context.Context, tenant string, client PublicClient, form url.Values) (User, userScope, string, *oauthError) {
	tok := form.Get("refresh_token")
	if !strings.HasPrefix(tok, refreshPrefix) || len(tok) > 256 {
		return User{}, userScope{}, "", invalidGrant(9002313, "Invalid request. The refresh token is malformed.")
	}
	rt, err := s.users.dir.UseRefreshToken(ctx, hashRefreshToken(tok), s.now())
	switch {
	case errors.Is(err, ErrRefreshTokenReused):
		s.log.LogAttrs(ctx, slog.LevelWarn, "refresh token reused; its family is revoked", slog.String("tenant_id", tenant))
		return User{}, userScope{}, "", invalidGrant(70008, "The refresh token has been revoked because it was used before.")
	case errors.Is(err, ErrRefreshTokenInvalid):
		return User{}, userScope{}, "", invalidGrant(70008, "The provided refresh token has expired or was revoked.")
	case err != nil:
		s.log.LogAttrs(ctx, slog.LevelError, "refresh token lookup failed", slog.Any("error", err))
		return User{}, userScope{}, "", errTransient()
	}
	if rt.TenantID != tenant || !strings.EqualFold(rt.ClientID, client.ClientID) {
		return User{}, userScope{}, "", invalidGrant(70000, "The refresh token was issued to another client or tenant.")
	}
	u, _, err := s.users.dir.DirectoryUser(ctx, rt.TenantID, rt.ObjectID)
	if errors.Is(err, ErrNotFound) || (err == nil && !u.Enabled) {
		return User{}, userScope{}, "", errUserDisabled
	}
	if err != nil {
		return User{}, userScope{}, "", errTransient()
	}
	want := form.Get("scope")
	if strings.TrimSpace(want) == "" {
		want = rt.Scope
	}
	sc, oerr := parseUserScope(want)
	if oerr != nil {
		return User{}, userScope{}, "", oerr
	}
	sc.offline = true // the client holds a refresh token; keep it rotating
	if !strings.Contains(sc.text, "offline_access") {
		sc.text += " offline_access"
	}
	return u, sc, rt.FamilyID, nil
}

// ----- interactive flows: shared state -----

func codeKey(code string) string {
	h := sha256.Sum256([]byte(code))
	return hex.EncodeToString(h[:])
}

// purgeLocked drops expired codes and device grants. s.users.mu must be held.
func (s *TokenService) purgeLocked(now time.Time) {
	for k, c := range s.users.codes {
		if !now.Before(c.expires) {
			delete(s.users.codes, k)
		}
	}
	for k, d := range s.users.devices {
		if !now.Before(d.expires) {
			delete(s.users.devices, k)
			delete(s.users.byUser, d.userCode)
		}
	}
}

// randomToken returns n random bytes in base64url.
func (s *TokenService) randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := fullRead(s.rand, b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return b64.EncodeToString(b), nil
}
