package identity

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// OpenID Connect for the user flows: an ID token next to the access token
// when the scope has "openid", the UserInfo endpoint and the end-session
// (logout) endpoint, all listed in the discovery document.

// Paths of the OpenID Connect endpoints (ServeMux patterns without a
// method), as Entra ID serves them under the tenant.
const (
	PathUserInfo = "/{tenant}/openid/userinfo"
	PathLogout   = "/{tenant}/oauth2/v2.0/logout"
)

// idClaims are the claims of an ID token (OpenID Connect Core §2), with
// Entra's oid, tid and preferred_username. aud is the client ID, so an ID
// token is never accepted as an access token (its audience is not a Custos
// API).
type idClaims struct {
	Issuer            string   `json:"iss"`
	Subject           string   `json:"sub"`
	Audience          string   `json:"aud"`
	Expires           int64    `json:"exp"`
	IssuedAt          int64    `json:"iat"`
	NotBefore         int64    `json:"nbf"`
	AuthTime          int64    `json:"auth_time,omitempty"`
	Nonce             string   `json:"nonce,omitempty"`
	ObjectID          string   `json:"oid"`
	TenantID          string   `json:"tid"`
	Name              string   `json:"name,omitempty"`
	PreferredUsername string   `json:"preferred_username,omitempty"`
	Email             string   `json:"email,omitempty"`
	AuthMethods       []string `json:"amr,omitempty"`
	Version           string   `json:"ver"`
}

// issueIDToken signs an ID token for u, audience clientID. authTime is zero
// when unknown (refresh grant); nonce is the authorization request's.
func (s *TokenService) issueIDToken(ctx context.Context, base string, u User, clientID string, amr []string, authTime time.Time, nonce string) (string, error) {
	sg, err := s.currentSigner(ctx)
	if err != nil {
		return "", err
	}
	now := s.now().Truncate(time.Second)
	tenant := strings.ToLower(u.TenantID)
	c := &idClaims{
		Issuer: issuerFor(base, tenant), Subject: u.ObjectID, Audience: clientID,
		Expires: now.Add(s.lifetime).Unix(), IssuedAt: now.Unix(), NotBefore: now.Unix(), Nonce: nonce,
		ObjectID: u.ObjectID, TenantID: tenant, Name: u.DisplayName, PreferredUsername: u.UserPrincipalName,
		Email: u.Mail, AuthMethods: amr, Version: "2.0",
	}
	if !authTime.IsZero() {
		c.AuthTime = authTime.Unix()
	}
	return signJWT(s.rand, sg.priv, sg.kid, c)
}

// userInfo is the UserInfo response (OpenID Connect Core §5.3).
type userInfo struct {
	Subject           string `json:"sub"`
	ObjectID          string `json:"oid"`
	TenantID          string `json:"tid"`
	Name              string `json:"name,omitempty"`
	PreferredUsername string `json:"preferred_username,omitempty"`
	Email             string `json:"email,omitempty"`
}

// serveUserInfo answers GET or POST with a user's access token (any Custos
// audience) with the user's current claims from the directory. Other
// callers get 401 with a Bearer challenge (RFC 6750).
func (s *TokenService) serveUserInfo(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, POST")
		s.writeOAuthError(w, r, &oauthError{status: http.StatusMethodNotAllowed, code: "invalid_request", aadsts: 900561,
			desc: "The endpoint only accepts GET and POST requests."})
		return
	}
	tenant, oerr := s.requestTenant(r)
	if oerr != nil {
		s.writeOAuthError(w, r, oerr)
		return
	}
	deny := func(desc string) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="`+desc+`"`)
		s.writeOAuthError(w, r, &oauthError{status: http.StatusUnauthorized, code: "invalid_token", aadsts: 50000, desc: desc})
	}
	var p Principal
	var err error
	for _, aud := range []string{AudienceManagement, AudienceQuery, AudienceIngestion} {
		if p, err = s.Authenticate(r, aud); err == nil || !errors.Is(err, ErrWrongAudience) {
			break
		}
	}
	if err != nil {
		if errors.Is(err, ErrUnavailable) {
			s.writeOAuthError(w, r, errTransient())
			return
		}
		deny("The access token is missing, invalid or expired.")
		return
	}
	if p.Kind != KindUser || p.TenantID != tenant {
		deny("The access token does not belong to a user of this tenant.")
		return
	}
	info := userInfo{Subject: p.ObjectID, ObjectID: p.ObjectID, TenantID: p.TenantID}
	if s.users.dir != nil {
		u, _, err := s.users.dir.DirectoryUser(r.Context(), p.TenantID, p.ObjectID)
		switch {
		case err == nil:
			info.Name, info.PreferredUsername, info.Email = u.DisplayName, u.UserPrincipalName, u.Mail
		case errors.Is(err, ErrNotFound):
			deny("The user no longer exists.")
			return
		default:
			s.log.LogAttrs(r.Context(), slog.LevelError, "userinfo: directory lookup failed", slog.Any("error", err))
			s.writeOAuthError(w, r, errTransient())
			return
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, info)
}

// serveLogout is the end-session endpoint (OpenID Connect RP-Initiated
// Logout). The token service keeps no browser session (every sign-in asks
// for the password), so signing out means ending the user's refresh tokens:
// with a valid id_token_hint (an ID token this service issued; it may have
// expired) every refresh token of that user is revoked, and the browser is
// sent to post_logout_redirect_uri (with state) when that URI is registered
// for the hint's client. Without a usable hint nothing is revoked and a
// page says so; an unregistered redirect URI is never followed.
func (s *TokenService) serveLogout(w http.ResponseWriter, r *http.Request) {
	tenant, params, ok := s.pageRequest(w, r, "Sign-out error", "sign-out", "sign-out request")
	if !ok {
		return
	}
	hint := params.Get("id_token_hint")
	if hint == "" {
		s.writePage(w, http.StatusOK, pageData{Title: "Sign out", Info: "No id_token_hint was given, so no session was ended. Close the browser to forget this page."})
		return
	}
	c, err := s.verifyIDTokenHint(r.Context(), hint, tenant)
	if err != nil {
		s.writePage(w, http.StatusBadRequest, pageData{Title: "Sign-out error", Message: "The id_token_hint is not an ID token of this server."})
		return
	}
	n, err := s.RevokeUserSessions(r.Context(), c.TenantID, c.Subject)
	if err != nil {
		s.log.LogAttrs(r.Context(), slog.LevelError, "logout: revoking sessions failed", slog.Any("error", err))
		s.writePage(w, http.StatusServiceUnavailable, pageData{Title: "Sign-out error", Message: "A transient error occurred. Try again."})
		return
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "user signed out", slog.String("object_id", c.Subject),
		slog.String("client_id", c.Audience), slog.Int("refresh_tokens_revoked", n))
	if ru := params.Get("post_logout_redirect_uri"); ru != "" {
		if cl, ok := s.publicClient(c.Audience); ok {
			for _, want := range cl.RedirectURIs {
				if ru != want {
					continue
				}
				dest, err := url.Parse(ru)
				if err != nil {
					break
				}
				if st := params.Get("state"); st != "" && len(st) <= 512 {
					q := dest.Query()
					q.Set("state", st)
					dest.RawQuery = q.Encode()
				}
				http.Redirect(w, r, dest.String(), http.StatusFound)
				return
			}
		}
	}
	s.writePage(w, http.StatusOK, pageData{Title: "You are signed out", Info: "Your sessions have ended. You can close this window."})
}

// verifyIDTokenHint checks that hint is an ID token this service signed for
// a user of tenant; expiry is not checked (OpenID Connect allows expired
// hints).
func (s *TokenService) verifyIDTokenHint(ctx context.Context, hint, tenant string) (*idClaims, error) {
	j, err := parseJWT(hint)
	if err != nil {
		return nil, err
	}
	vk, err := s.lookupKey(ctx, j.header.Kid)
	if err != nil {
		return nil, err
	}
	if vk == nil || !j.verify(vk.pub) {
		return nil, ErrBadSignature
	}
	var c idClaims
	if err := strictJSON(j.payload, &c); err != nil {
		return nil, err
	}
	if c.TenantID != tenant || !s.knownIssuer(c.Issuer, c.TenantID) || !isGUID(c.Subject) || c.Audience == "" {
		return nil, ErrInvalidToken
	}
	if _, ok := canonicalAudience(c.Audience); ok {
		return nil, ErrInvalidToken // an access token, not an ID token
	}
	return &c, nil
}
