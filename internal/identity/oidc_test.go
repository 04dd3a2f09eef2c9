package identity_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// TestOIDCWithOAuth2Client drives the embedded token service as an OpenID
// Connect relying party does, with golang.org/x/oauth2 (authorization code
// with PKCE S256 and a nonce) and go-jose (ID token verification against
// the discovery document's JWKS): discovery lists the UserInfo and
// end-session endpoints; the code grant returns an ID token for the client
// carrying the nonce; UserInfo answers the user's access token; an ID token
// is no access token; logout with the ID token as hint ends the refresh
// tokens and returns to a registered URI only.
func TestOIDCWithOAuth2Client(t *testing.T) {
	e := newRestartEnv(t)
	base := e.srv.URL + "/" + e.tenant
	var disc map[string]any
	getJSON(t, e.srv.Client(), base+"/v2.0/.well-known/openid-configuration", &disc)
	for k, want := range map[string]string{
		"authorization_endpoint": base + "/oauth2/v2.0/authorize", "token_endpoint": base + "/oauth2/v2.0/token",
		"userinfo_endpoint": base + "/openid/userinfo", "end_session_endpoint": base + "/oauth2/v2.0/logout",
		"issuer": base + "/v2.0",
	} {
		if disc[k] != want {
			t.Errorf("discovery %s = %v; want %s", k, disc[k], want)
		}
	}
	cfg := oauth2.Config{
		ClientID:    "test-spa",
		Endpoint:    oauth2.Endpoint{AuthURL: disc["authorization_endpoint"].(string), TokenURL: disc["token_endpoint"].(string), AuthStyle: oauth2.AuthStyleInParams},
		RedirectURL: "https://app.example.test/callback",
		Scopes:      []string{"openid", "profile", "email", "https://api.loganalytics.io/.default", "offline_access"},
	}
	verifier := oauth2.GenerateVerifier()
	authURL := cfg.AuthCodeURL("state-1", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", "n-0S6_WzA2Mj"))
	u, _ := url.Parse(authURL)
	code := signInCode(t, e.browser(), u.Scheme+"://"+u.Host+u.Path, u.Query())
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, e.srv.Client())
	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" || tok.RefreshToken == "" {
		t.Fatalf("token response lacks id_token or refresh_token: %+v", tok)
	}
	idc := idTokenClaims(t, e.srv.Client(), base, raw, "test-spa", e.clock())
	if idc["nonce"] != "n-0S6_WzA2Mj" || idc["preferred_username"] != "alice@example.test" || idc["name"] != "Alice" || idc["auth_time"] == nil {
		t.Fatalf("ID token claims: %v", idc)
	}

	userinfo := func(bearer string) (int, map[string]any, string) {
		req, _ := http.NewRequest(http.MethodGet, disc["userinfo_endpoint"].(string), nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		res, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]any
		_ = jsonDecode(res, &m)
		return res.StatusCode, m, res.Header.Get("WWW-Authenticate")
	}
	st, info, _ := userinfo(tok.AccessToken)
	if st != 200 || info["sub"] != idc["sub"] || info["email"] != "alice@mail.example.test" || info["preferred_username"] != "alice@example.test" {
		t.Fatalf("userinfo: %d %v", st, info)
	}
	if st, _, ch := userinfo(""); st != 401 || !strings.Contains(ch, "Bearer") {
		t.Fatalf("userinfo without a token: %d %q", st, ch)
	}
	if st, _, _ := userinfo(raw); st != 401 {
		t.Fatalf("an ID token was accepted as an access token: %d", st)
	}

	// The refresh grant works (and keeps answering an ID token) until logout.
	st, rb := e.token(url.Values{"grant_type": {"refresh_token"}, "client_id": {"test-spa"}, "refresh_token": {tok.RefreshToken}})
	if st != 200 || rb["refresh_token"] == nil || rb["id_token"] == nil {
		t.Fatalf("refresh before logout: %d %v", st, rb)
	}
	refresh := rb["refresh_token"].(string)

	// Logout: an unregistered return address is not followed; a registered
	// one is, with state; the refresh token is dead afterwards.
	b := e.browser()
	logout := disc["end_session_endpoint"].(string)
	res, page := getPage(t, b, logout+"?"+url.Values{"id_token_hint": {raw[:len(raw)-4] + "AAAA"}}.Encode())
	if res.StatusCode != 400 {
		t.Fatalf("logout with a forged hint: %d %s", res.StatusCode, page)
	}
	res, _ = getPage(t, b, logout+"?"+url.Values{"id_token_hint": {raw}, "post_logout_redirect_uri": {"https://evil.example/"}}.Encode())
	if res.StatusCode != 200 || res.Header.Get("Location") != "" {
		t.Fatalf("logout to an unregistered URI: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	res, _ = getPage(t, b, logout+"?"+url.Values{"id_token_hint": {raw}, "post_logout_redirect_uri": {cfg.RedirectURL}, "state": {"bye"}}.Encode())
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != cfg.RedirectURL+"?state=bye" {
		t.Fatalf("logout: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if st, body := e.token(url.Values{"grant_type": {"refresh_token"}, "client_id": {"test-spa"}, "refresh_token": {refresh}}); st != 400 {
		t.Fatalf("refresh after logout: %d %v", st, body)
	}
}

func jsonDecode(res *http.Response, v any) error { return json.NewDecoder(res.Body).Decode(v) }
