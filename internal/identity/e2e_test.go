package identity

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// credential returns an azidentity client secret credential pointed at the
// test server, configured as the brief tells SDK users to.
func (e *testEnv) credential(tenant, clientID, secret, authority string) *azidentity.ClientSecretCredential {
	e.t.Helper()
	cred, err := azidentity.NewClientSecretCredential(tenant, clientID, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{
			Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: authority + "/"},
			Transport: e.client,
			Retry:     policy.RetryOptions{MaxRetries: -1},
		},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return cred
}

func TestAzidentityClientSecretCredential(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	for _, tc := range []struct{ scope, aud string }{
		{"https://management.azure.com/.default", AudienceManagement},
		{"https://management.azure.com//.default", AudienceManagement},
		{"https://monitor.azure.com//.default", AudienceIngestion},
		{"https://api.loganalytics.io/.default", AudienceQuery},
	} {
		t.Run(tc.scope, func(t *testing.T) {
			cred := e.credential(tenantA, e.sp.AppID, e.secret, e.srv.URL)
			tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{tc.scope}})
			if err != nil {
				t.Fatalf("GetToken: %v", err)
			}
			if d := time.Until(tok.ExpiresOn); d < 50*time.Minute || d > 61*time.Minute {
				t.Fatalf("ExpiresOn in %v; want about 1h", d)
			}
			resp, body := e.whoami("Bearer "+tok.Token, url.QueryEscape(tc.aud))
			if resp.StatusCode != 200 {
				t.Fatalf("whoami status %d body %v", resp.StatusCode, body)
			}
			if body["ObjectID"] != e.sp.ObjectID || body["AppID"] != e.sp.AppID || body["TenantID"] != tenantA ||
				body["Audience"] != tc.aud || body["Kind"] != string(KindServicePrincipal) || body["Name"] != "test app" {
				t.Fatalf("principal = %v", body)
			}
			// Trailing slash on the expected audience is tolerated.
			if resp, body := e.whoami("Bearer "+tok.Token, url.QueryEscape(tc.aud+"/")); resp.StatusCode != 200 {
				t.Fatalf("trailing-slash audience: status %d %v", resp.StatusCode, body)
			}
		})
	}
	// The other host name of the server works as authority too (issuer alias).
	alias := strings.Replace(e.srv.URL, "127.0.0.1", "localhost", 1)
	cred := e.credential(tenantA, e.sp.AppID, e.secret, alias)
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://api.loganalytics.io/.default"}})
	if err != nil {
		t.Fatalf("GetToken via alias: %v", err)
	}
	if resp, body := e.whoami("Bearer "+tok.Token, AudienceQuery); resp.StatusCode != 200 {
		t.Fatalf("alias token: status %d %v", resp.StatusCode, body)
	}
}

func TestAzidentityErrors(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	scope := []string{"https://management.azure.com/.default"}
	for _, tc := range []struct {
		name, tenant, client, secret, scope, want string
	}{
		{"wrong secret", tenantA, e.sp.AppID, "nope8Q~wrong", scope[0], "AADSTS7000215"},
		{"unknown app", tenantA, "cccccccc-0000-4000-8000-000000000003", e.secret, scope[0], "AADSTS700016"},
		{"unknown tenant", tenantB, e.sp.AppID, e.secret, scope[0], "AADSTS90002"},
		{"unknown scope", tenantA, e.sp.AppID, e.secret, "https://graph.microsoft.com/.default", "AADSTS70011"},
		{"scope without .default", tenantA, e.sp.AppID, e.secret, "https://management.azure.com/user_impersonation", "AADSTS1002012"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cred := e.credential(tc.tenant, tc.client, tc.secret, e.srv.URL)
			_, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{tc.scope}})
			var afe *azidentity.AuthenticationFailedError
			if !errors.As(err, &afe) && !strings.Contains(errString(err), tc.want) {
				t.Fatalf("err = %v; want AuthenticationFailedError with %s", err, tc.want)
			}
			if !strings.Contains(errString(err), tc.want) {
				t.Fatalf("err = %v; want %s", err, tc.want)
			}
			if strings.Contains(errString(err), e.secret) {
				t.Fatalf("error text contains the secret")
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// postToken sends a raw token request and decodes the JSON answer.
func (e *testEnv) postToken(tenant string, form url.Values, basic string) (*http.Response, map[string]any) {
	e.t.Helper()
	req, err := http.NewRequest("POST", e.srv.URL+"/"+tenant+"/oauth2/v2.0/token", strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic != "" {
		req.Header.Set("Authorization", basic)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	data, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(data, &body); err != nil {
		e.t.Fatalf("token response not JSON: %q", data)
	}
	return resp, body
}

func (e *testEnv) form(secret, scope string) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {e.sp.AppID},
		"client_secret": {secret}, "scope": {scope + " openid offline_access profile"}}
}

func TestTokenEndpointWire(t *testing.T) {
	e := newTestEnv(t)
	resp, body := e.postToken(tenantA, e.form(e.secret, "https://monitor.azure.com//.default"), "")
	if resp.StatusCode != 200 || body["token_type"] != "Bearer" || body["access_token"] == "" ||
		body["expires_in"].(float64) != 3599 || body["ext_expires_in"].(float64) != 3599 {
		t.Fatalf("token response %d %v", resp.StatusCode, body)
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Fatalf("Cache-Control = %q", cc)
	}
	// Claims of the issued token.
	j, err := parseJWT(body["access_token"].(string))
	if err != nil {
		t.Fatal(err)
	}
	c, err := j.claims()
	if err != nil {
		t.Fatal(err)
	}
	if c.Audience != AudienceIngestion || c.Issuer != e.srv.URL+"/"+tenantA+"/v2.0" || c.TenantID != tenantA ||
		c.ObjectID != e.sp.ObjectID || c.Subject != e.sp.ObjectID || c.AppID != e.sp.AppID || c.AuthorizedApp != e.sp.AppID ||
		c.Version != "2.0" || c.TokenID == "" || c.Expires-c.IssuedAt != 3600 || c.NotBefore != c.IssuedAt {
		t.Fatalf("claims = %+v", c)
	}
	if j.header.Alg != "ES256" || j.header.Kid == "" || j.header.Typ != "JWT" {
		t.Fatalf("header = %+v", j.header)
	}

	// HTTP Basic client authentication.
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"https://api.loganalytics.io/.default"}}
	basic := "Basic " + basicValue(e.sp.AppID, e.secret)
	if resp, body := e.postToken(tenantA, form, basic); resp.StatusCode != 200 {
		t.Fatalf("basic auth: %d %v", resp.StatusCode, body)
	}
	// Both Basic and body secret: rejected.
	form.Set("client_secret", e.secret)
	if resp, body := e.postToken(tenantA, form, basic); resp.StatusCode != 400 || body["error"] != "invalid_request" {
		t.Fatalf("basic+body: %d %v", resp.StatusCode, body)
	}

	// Entra error body shape for a wrong secret.
	resp, body = e.postToken(tenantA, e.form("wrong", "https://management.azure.com/.default"), "")
	if resp.StatusCode != 401 || body["error"] != "invalid_client" {
		t.Fatalf("wrong secret: %d %v", resp.StatusCode, body)
	}
	codes, _ := body["error_codes"].([]any)
	if len(codes) != 1 || codes[0].(float64) != 7000215 {
		t.Fatalf("error_codes = %v", body["error_codes"])
	}
	for _, k := range []string{"error_description", "timestamp", "trace_id", "correlation_id"} {
		if s, _ := body[k].(string); s == "" {
			t.Fatalf("error body lacks %s: %v", k, body)
		}
	}
	if d := body["error_description"].(string); !strings.HasPrefix(d, "AADSTS7000215: ") {
		t.Fatalf("error_description = %q", d)
	}

	for _, tc := range []struct {
		name   string
		form   url.Values
		status int
		err    string
		code   float64
	}{
		{"grant type", url.Values{"grant_type": {"implicit"}, "client_id": {e.sp.AppID}}, 400, "unsupported_grant_type", 70003},
		{"password grant for a confidential client", url.Values{"grant_type": {"password"}, "client_id": {e.sp.AppID}}, 400, "unauthorized_client", 700016},
		{"no client id", url.Values{"grant_type": {"client_credentials"}}, 400, "invalid_request", 900144},
		{"no secret", url.Values{"grant_type": {"client_credentials"}, "client_id": {e.sp.AppID}, "scope": {"x/.default"}}, 401, "invalid_client", 7000218},
		{"no scope", url.Values{"grant_type": {"client_credentials"}, "client_id": {e.sp.AppID}, "client_secret": {e.secret}}, 400, "invalid_request", 900144},
		{"two resources", e.form(e.secret, "https://management.azure.com/.default https://api.loganalytics.io/.default"), 400, "invalid_scope", 70011},
		{"duplicate param", url.Values{"grant_type": {"client_credentials", "client_credentials"}}, 400, "invalid_request", 9000411},
	} {
		resp, body := e.postToken(tenantA, tc.form, "")
		codes, _ := body["error_codes"].([]any)
		if resp.StatusCode != tc.status || body["error"] != tc.err || len(codes) != 1 || codes[0].(float64) != tc.code {
			t.Errorf("%s: got %d %v; want %d %s %v", tc.name, resp.StatusCode, body, tc.status, tc.err, tc.code)
		}
	}
	// Wrong content type.
	req, _ := http.NewRequest("POST", e.srv.URL+"/"+tenantA+"/oauth2/v2.0/token", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	r2, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != 400 {
		t.Fatalf("json body: status %d", r2.StatusCode)
	}
	// GET on the token endpoint is not allowed.
	r3, err := e.client.Get(e.srv.URL + "/" + tenantA + "/oauth2/v2.0/token")
	if err != nil {
		t.Fatal(err)
	}
	r3.Body.Close()
	if r3.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET token: status %d", r3.StatusCode)
	}
}

func basicValue(id, secret string) string {
	return b64std(url.QueryEscape(id) + ":" + url.QueryEscape(secret))
}

func TestDiscoveryAndJWKS(t *testing.T) {
	e := newTestEnv(t)
	get := func(path string) (int, map[string]any) {
		resp, err := e.client.Get(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, m
	}
	st, doc := get("/" + tenantA + "/v2.0/.well-known/openid-configuration")
	if st != 200 || doc["issuer"] != e.srv.URL+"/"+tenantA+"/v2.0" ||
		doc["token_endpoint"] != e.srv.URL+"/"+tenantA+"/oauth2/v2.0/token" ||
		doc["authorization_endpoint"] != e.srv.URL+"/"+tenantA+"/oauth2/v2.0/authorize" ||
		doc["jwks_uri"] != e.srv.URL+"/"+tenantA+"/discovery/v2.0/keys" {
		t.Fatalf("discovery %d %v", st, doc)
	}
	st, body := get("/" + tenantB + "/v2.0/.well-known/openid-configuration")
	if st != 400 || body["error"] != "invalid_tenant" || body["error_codes"].([]any)[0].(float64) != 90002 {
		t.Fatalf("unknown tenant discovery %d %v", st, body)
	}
	st, body = get("/not-a-guid/v2.0/.well-known/openid-configuration")
	if st != 400 || body["error"] != "invalid_tenant" {
		t.Fatalf("bad tenant discovery %d %v", st, body)
	}
	st, jwks := get("/" + tenantA + "/discovery/v2.0/keys")
	keys, _ := jwks["keys"].([]any)
	if st != 200 || len(keys) != 1 {
		t.Fatalf("jwks %d %v", st, jwks)
	}
	k := keys[0].(map[string]any)
	if k["kty"] != "EC" || k["crv"] != "P-256" || k["alg"] != "ES256" || k["use"] != "sig" || k["kid"] == "" || k["d"] != nil {
		t.Fatalf("jwk = %v", k)
	}
}

func TestAuthenticateNegative(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	good, _, err := e.ts.IssueToken(ctx, e.sp, AudienceManagement)
	if err != nil {
		t.Fatal(err)
	}
	if resp, body := e.whoami("Bearer "+good, AudienceManagement); resp.StatusCode != 200 {
		t.Fatalf("good token: %d %v", resp.StatusCode, body)
	}

	// A second token service (other keys, same issuer and tenant).
	other := newTestEnv(t)
	otherStore := newMemStore(tenantA)
	otherTS, err := NewTokenService(TokenServiceOptions{Store: otherStore, Keys: other.keys, Issuer: e.srv.URL, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	foreign, _, err := otherTS.IssueToken(ctx, e.sp, AudienceManagement)
	if err != nil {
		t.Fatal(err)
	}
	// Same kid as ours, signed by the other key.
	parts := strings.Split(good, ".")
	fparts := strings.Split(foreign, ".")
	sameKid := parts[0] + "." + parts[1] + "." + fparts[2]

	// Tampered payload: change the oid and keep the signature.
	var claims map[string]any
	raw, _ := b64.DecodeString(parts[1])
	_ = json.Unmarshal(raw, &claims)
	claims["oid"] = "99999999-9999-4999-8999-999999999999"
	tampered := parts[0] + "." + b64json(claims) + "." + parts[2]

	var hdr map[string]any
	raw, _ = b64.DecodeString(parts[0])
	_ = json.Unmarshal(raw, &hdr)
	hdr["alg"] = "none"
	algNone := b64json(hdr) + "." + parts[1] + "."
	algNoneSig := b64json(hdr) + "." + parts[1] + "." + parts[2]
	hdr["alg"] = "HS256"
	algHS := b64json(hdr) + "." + parts[1] + "." + parts[2]

	mgmtForQuery, _, err := e.ts.IssueToken(ctx, e.sp, AudienceQuery)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, authz, code string
		cause             error
	}{
		{"no header", "", "AuthenticationFailed", ErrMissingToken},
		{"basic scheme", "Basic " + basicValue("a", "b"), "AuthenticationFailed", ErrMalformedHeader},
		{"bearer without token", "Bearer ", "AuthenticationFailed", ErrMalformedHeader},
		{"garbage", "Bearer abc", "InvalidAuthenticationToken", ErrInvalidToken},
		{"four parts", "Bearer " + good + ".x", "InvalidAuthenticationToken", ErrInvalidToken},
		{"other key", "Bearer " + foreign, "InvalidAuthenticationToken", ErrBadSignature},
		{"other key same kid", "Bearer " + sameKid, "InvalidAuthenticationToken", ErrBadSignature},
		{"tampered payload", "Bearer " + tampered, "InvalidAuthenticationToken", ErrBadSignature},
		{"alg none", "Bearer " + algNone, "InvalidAuthenticationToken", ErrInvalidToken},
		{"alg none with sig", "Bearer " + algNoneSig, "InvalidAuthenticationToken", ErrInvalidToken},
		{"alg HS256", "Bearer " + algHS, "InvalidAuthenticationToken", ErrInvalidToken},
		{"wrong audience", "Bearer " + mgmtForQuery, "InvalidAuthenticationTokenAudience", ErrWrongAudience},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.whoami(tc.authz, AudienceManagement)
			if resp.StatusCode != 401 || errCode(body) != tc.code || resp.Header.Get("x-ms-error-code") != tc.code {
				t.Fatalf("got %d %v; want 401 %s", resp.StatusCode, body, tc.code)
			}
			ch := resp.Header.Get("WWW-Authenticate")
			if !strings.HasPrefix(ch, `Bearer authorization_uri="`+e.srv.URL) || !strings.Contains(ch, `error="invalid_token"`) {
				t.Fatalf("WWW-Authenticate = %q", ch)
			}
			// The same through the Go API, classified by errors.Is.
			r, _ := http.NewRequest("GET", "/", nil)
			if tc.authz != "" {
				r.Header.Set("Authorization", tc.authz)
			}
			_, err := e.ts.Authenticate(r, AudienceManagement)
			if !errors.Is(err, tc.cause) {
				t.Fatalf("err = %v; want errors.Is %v", err, tc.cause)
			}
			code, kind := err.(*AuthError).AzureError()
			if code != tc.code || kind != "unauthenticated" {
				t.Fatalf("AzureError = %s, %s", code, kind)
			}
		})
	}
}

func TestAuthenticateExpiryAndTenant(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	tok, exp, err := e.ts.IssueToken(ctx, e.sp, AudienceQuery)
	if err != nil {
		t.Fatal(err)
	}
	check := func(wantCode string, wantCause error) {
		t.Helper()
		resp, body := e.whoami("Bearer "+tok, AudienceQuery)
		if wantCode == "" {
			if resp.StatusCode != 200 {
				t.Fatalf("got %d %v; want 200", resp.StatusCode, body)
			}
			return
		}
		if resp.StatusCode != 401 || errCode(body) != wantCode {
			t.Fatalf("got %d %v; want 401 %s", resp.StatusCode, body, wantCode)
		}
		_, err := e.ts.ValidateToken(ctx, tok, AudienceQuery)
		if !errors.Is(err, wantCause) {
			t.Fatalf("err = %v; want %v", err, wantCause)
		}
	}
	check("", nil)
	// Within the clock skew after exp: still valid.
	e.clock.Advance(exp.Sub(e.clock.Now()) + time.Minute)
	check("", nil)
	e.clock.Advance(2 * time.Minute)
	check("InvalidAuthenticationToken", ErrTokenExpired)

	// A token from a tenant that no longer exists.
	e.store.setTenant(tenantB, true)
	spB, _, err := e.ts.CreateServicePrincipal(ctx, tenantB, "tenant B app")
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err = e.ts.IssueToken(ctx, spB, AudienceQuery)
	if err != nil {
		t.Fatal(err)
	}
	check("", nil)
	e.store.setTenant(tenantB, false)
	e.ts.ForgetTenants()
	check("InvalidAuthenticationTokenTenant", ErrWrongTenant)

	// Not yet valid: a token issued by a service whose clock runs ahead.
	ahead := &testClock{t: e.clock.Now().Add(10 * time.Minute)}
	tsAhead, err := NewTokenService(TokenServiceOptions{Store: e.store, Keys: e.keys, Issuer: e.srv.URL, Now: ahead.Now})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err = tsAhead.IssueToken(ctx, e.sp, AudienceQuery)
	if err != nil {
		t.Fatal(err)
	}
	_ = e.ts.ReloadKeys(ctx)
	if _, err := e.ts.ValidateToken(ctx, tok, AudienceQuery); !errors.Is(err, ErrTokenNotYetValid) {
		t.Fatalf("future token: err = %v", err)
	}
}

func TestRateLimit(t *testing.T) {
	e := newTestEnv(t, func(o *TokenServiceOptions) {
		o.RateLimit = RateLimit{PerClientBurst: 3, PerClientRefill: 10 * time.Second, PerAddressBurst: 100}
	})
	scope := "https://management.azure.com/.default"
	for i := 0; i < 3; i++ {
		if resp, body := e.postToken(tenantA, e.form("wrong"+strconv.Itoa(i), scope), ""); resp.StatusCode != 401 {
			t.Fatalf("attempt %d: %d %v", i, resp.StatusCode, body)
		}
	}
	resp, body := e.postToken(tenantA, e.form("wrong", scope), "")
	if resp.StatusCode != 429 || body["error"] != "temporarily_unavailable" || resp.Header.Get("Retry-After") != "10" {
		t.Fatalf("throttled: %d %v Retry-After=%q", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	// The correct secret is refused too while the client is blocked.
	if resp, _ := e.postToken(tenantA, e.form(e.secret, scope), ""); resp.StatusCode != 429 {
		t.Fatalf("good secret while throttled: %d", resp.StatusCode)
	}
	// azidentity surfaces the throttling as an authentication failure.
	cred := e.credential(tenantA, e.sp.AppID, e.secret, e.srv.URL)
	if _, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{scope}}); err == nil || !strings.Contains(err.Error(), "AADSTS50053") {
		t.Fatalf("azidentity while throttled: %v", err)
	}
	e.clock.Advance(10 * time.Second)
	if resp, body := e.postToken(tenantA, e.form(e.secret, scope), ""); resp.StatusCode != 200 {
		t.Fatalf("after refill: %d %v", resp.StatusCode, body)
	}

	// Per address: unknown client IDs from one address.
	e2 := newTestEnv(t, func(o *TokenServiceOptions) {
		o.RateLimit = RateLimit{PerAddressBurst: 2, PerAddressRefill: time.Minute}
	})
	for i := 0; i < 2; i++ {
		f := e2.form("x", scope)
		f.Set("client_id", "dddddddd-0000-4000-8000-00000000000"+strconv.Itoa(i))
		if resp, body := e2.postToken(tenantA, f, ""); resp.StatusCode != 400 || body["error"] != "unauthorized_client" {
			t.Fatalf("unknown app %d: %d %v", i, resp.StatusCode, body)
		}
	}
	if resp, _ := e2.postToken(tenantA, e2.form(e2.secret, scope), ""); resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "60" {
		t.Fatalf("address throttled: %d %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

func TestKeyRotation(t *testing.T) {
	e := newTestEnv(t, func(o *TokenServiceOptions) { o.RotationInterval = 6 * time.Hour })
	ctx := context.Background()
	cred := func() string {
		resp, body := e.postToken(tenantA, e.form(e.secret, "https://management.azure.com/.default"), "")
		if resp.StatusCode != 200 {
			t.Fatalf("token: %d %v", resp.StatusCode, body)
		}
		return body["access_token"].(string)
	}
	kidOf := func(tok string) string {
		j, err := parseJWT(tok)
		if err != nil {
			t.Fatal(err)
		}
		return j.header.Kid
	}
	valid := func(tok string) error {
		_, err := e.ts.ValidateToken(ctx, tok, AudienceManagement)
		return err
	}
	t1 := cred()
	if err := e.ts.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	t2 := cred()
	if kidOf(t1) == kidOf(t2) {
		t.Fatalf("rotation kept the kid")
	}
	if err := valid(t1); err != nil {
		t.Fatalf("old token after rotation: %v", err)
	}
	if n := len(e.ts.jwks()); n != 2 {
		t.Fatalf("JWKS has %d keys; want 2", n)
	}
	// Scheduled rotation: after the interval a new key signs.
	e.clock.Advance(6*time.Hour + time.Second)
	t3 := cred()
	if kidOf(t3) == kidOf(t2) || kidOf(t3) == kidOf(t1) {
		t.Fatalf("interval rotation kept the kid")
	}
	if n := len(e.ts.jwks()); n != 3 {
		t.Fatalf("JWKS has %d keys; want 3", n)
	}
	// A restarted service on the same store and platform key keeps the keys.
	ts2, err := NewTokenService(TokenServiceOptions{Store: e.store, Keys: e.keys, Issuer: e.srv.URL, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts2.ValidateToken(ctx, t3, AudienceManagement); err != nil {
		t.Fatalf("restart: %v", err)
	}
	t4, _, err := ts2.IssueToken(ctx, e.sp, AudienceManagement)
	if err != nil || kidOf(t4) != kidOf(t3) {
		t.Fatalf("restart signs with kid %s; want %s (%v)", kidOf(t4), kidOf(t3), err)
	}
	// Past the old keys' publication, they are gone from JWKS and the store.
	e.clock.Advance(time.Hour + 3*time.Minute)
	if err := e.ts.ReloadKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(e.ts.jwks()); n != 1 {
		t.Fatalf("JWKS has %d keys after expiry; want 1", n)
	}
	if n := len(e.store.keys); n != 1 {
		t.Fatalf("store has %d keys after expiry; want 1", n)
	}
	// Deleting a key from the store revokes its tokens, even cached ones.
	t5 := cred()
	if err := valid(t5); err != nil {
		t.Fatalf("t5 before revocation: %v", err)
	}
	if err := e.store.DeleteSigningKey(ctx, kidOf(t5)); err != nil {
		t.Fatal(err)
	}
	if err := e.ts.ReloadKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if err := valid(t5); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("revoked key: err = %v", err)
	}
}

func TestSecretsAndKeysAtRest(t *testing.T) {
	e := newTestEnv(t)
	if len(e.secret) != 46 || e.secret[3:6] != "8Q~" {
		t.Fatalf("secret form %q", e.secret[:6]+"...")
	}
	sp, err := e.store.ServicePrincipalByAppID(context.Background(), tenantA, e.sp.AppID)
	if err != nil {
		t.Fatal(err)
	}
	cs := sp.Secrets[0]
	if cs.Hint != e.secret[:3] || len(cs.Hash) != 33 || strings.Contains(string(cs.Hash), e.secret) || cs.KeyID == "" ||
		cs.Expires.Before(time.Now().Add(700*24*time.Hour)) {
		t.Fatalf("stored secret = %+v", cs)
	}
	for _, k := range e.store.keys {
		if strings.Contains(string(k.PrivateSealed), "PRIVATE") || len(k.PrivateSealed) < 100 {
			t.Fatalf("private key not sealed")
		}
		// Bound to its kid: another kid's AAD does not open it.
		if _, err := e.keys.Open(k.PrivateSealed, signingKeyAAD("other")); err == nil {
			t.Fatalf("sealed key opened with the wrong AAD")
		}
	}
	// A second secret works alongside the first; expired secrets do not.
	_, s2, err := e.ts.AddClientSecret(context.Background(), tenantA, e.sp.AppID)
	if err != nil {
		t.Fatal(err)
	}
	scope := "https://management.azure.com/.default"
	for _, s := range []string{e.secret, s2} {
		if resp, body := e.postToken(tenantA, e.form(s, scope), ""); resp.StatusCode != 200 {
			t.Fatalf("secret: %d %v", resp.StatusCode, body)
		}
	}
	e.clock.Advance(3 * 365 * 24 * time.Hour)
	if err := e.ts.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	resp, body := e.postToken(tenantA, e.form(e.secret, scope), "")
	if resp.StatusCode != 401 || body["error_codes"].([]any)[0].(float64) != 7000222 {
		t.Fatalf("expired secret: %d %v", resp.StatusCode, body)
	}
}

func TestNewTokenServiceValidation(t *testing.T) {
	e := newTestEnv(t)
	for _, o := range []TokenServiceOptions{
		{Keys: e.keys, Issuer: "https://x"},
		{Store: e.store, Issuer: "https://x"},
		{Store: e.store, Keys: e.keys, Issuer: "http://x"},
		{Store: e.store, Keys: e.keys, Issuer: "https://x/path"},
		{Store: e.store, Keys: e.keys, Issuer: "https://x", IssuerAliases: []string{"ftp://y"}},
		{Store: noTenants{e.store}, Keys: e.keys, Issuer: "https://x"},
	} {
		if _, err := NewTokenService(o); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("NewTokenService(%+v) err = %v; want ErrInvalidArgument", o.Issuer, err)
		}
	}
	if _, err := NewTokenService(TokenServiceOptions{Store: noTenants{e.store}, Keys: e.keys, Issuer: "https://x",
		Tenants: StaticTenants{tenantA}}); err != nil {
		t.Fatalf("StaticTenants: %v", err)
	}
	if _, _, err := e.ts.CreateServicePrincipal(context.Background(), tenantB, "x"); !errors.Is(err, ErrUnknownTenant) {
		t.Fatalf("CreateServicePrincipal in unknown tenant: %v", err)
	}
}

// noTenants hides memStore's TenantExists.
type noTenants struct{ *memStore }

func (noTenants) TenantExists() {}
