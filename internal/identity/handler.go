package identity

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"custos/internal/enroll"
)

// maxFormBytes bounds a token request body.
const maxFormBytes = 64 << 10

// Paths of the Entra-compatible endpoints, as net/http ServeMux patterns
// without a method. The server mounts Handler() at each of them.
const (
	PathDiscovery = "/{tenant}/v2.0/.well-known/openid-configuration"
	PathJWKS      = "/{tenant}/discovery/v2.0/keys"
	PathToken     = "/{tenant}/oauth2/v2.0/token"
	PathAuthorize = "/{tenant}/oauth2/v2.0/authorize"
	// PathEnroll is the machine enrollment endpoint (enroll.Path),
	// authenticated by the one-time enrollment token in the body.
	PathEnroll = enroll.Path
)

// Patterns returns the ServeMux patterns Handler serves, for the server to
// mount it: mux.Handle(p, ts.Handler()) for each p.
func (s *TokenService) Patterns() []string {
	return []string{PathDiscovery, PathJWKS, PathToken, PathAuthorize, PathDeviceCode, PathDeviceLogin, PathEnroll, PathUserInfo, PathLogout}
}

// Handler serves the Entra ID v2 compatible endpoints under /{tenant}/...:
// OpenID discovery, JWKS and the token endpoint (client credentials with a
// client secret in the form body or HTTP Basic auth). Errors use Entra's
// body {error, error_description, error_codes, timestamp, trace_id,
// correlation_id}.
func (s *TokenService) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(PathDiscovery, s.method(http.MethodGet, s.serveDiscovery))
	mux.HandleFunc(PathJWKS, s.method(http.MethodGet, s.serveJWKS))
	mux.HandleFunc(PathToken, s.method(http.MethodPost, s.serveToken))
	mux.HandleFunc(PathAuthorize, s.serveAuthorize)
	mux.HandleFunc(PathDeviceCode, s.method(http.MethodPost, s.serveDeviceCode))
	mux.HandleFunc(PathDeviceLogin, s.serveDeviceLogin)
	mux.HandleFunc(PathEnroll, s.serveEnroll)
	mux.HandleFunc(PathUserInfo, s.serveUserInfo)
	mux.HandleFunc(PathLogout, s.serveLogout)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeOAuthError(w, r, &oauthError{status: http.StatusNotFound, code: "invalid_request", aadsts: 900561,
			desc: "The endpoint only accepts the token service's paths."})
	})
	return mux
}

// method restricts h to one method (GET also allows HEAD), answering 405
// with Allow otherwise.
func (s *TokenService) method(m string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != m && !(m == http.MethodGet && r.Method == http.MethodHead) {
			w.Header().Set("Allow", m)
			s.writeOAuthError(w, r, &oauthError{status: http.StatusMethodNotAllowed, code: "invalid_request", aadsts: 900561,
				desc: fmt.Sprintf("The endpoint only accepts %s requests. Received a %s request.", m, sanitize(r.Method))})
			return
		}
		h(w, r)
	}
}

// baseFor returns the issuer base URL for a request: the base URL the client
// used when it is one of the configured ones, else the canonical one.
func (s *TokenService) baseFor(r *http.Request) string {
	if r != nil && r.Host != "" {
		b := "https://" + strings.ToLower(r.Host)
		for _, known := range s.issuers {
			if b == known {
				return b
			}
		}
	}
	return s.issuers[0]
}

// requestTenant validates the {tenant} path segment: a GUID naming an
// existing tenant. It returns the lower-cased ID.
func (s *TokenService) requestTenant(r *http.Request) (string, *oauthError) {
	t := strings.ToLower(r.PathValue("tenant"))
	notFound := &oauthError{status: http.StatusBadRequest, code: "invalid_tenant", aadsts: 90002,
		desc: fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", sanitize(t))}
	if !isGUID(t) {
		return "", notFound
	}
	ok, err := s.tenantExists(r.Context(), t)
	if err != nil {
		s.log.LogAttrs(r.Context(), slog.LevelError, "tenant lookup failed", slog.Any("error", err))
		return "", &oauthError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable", aadsts: 90033,
			desc: "A transient error has occurred. Please try again."}
	}
	if !ok {
		return "", notFound
	}
	return t, nil
}

type discoveryDoc struct {
	TokenEndpoint                     string   `json:"token_endpoint"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	JWKSURI                           string   `json:"jwks_uri"`
	ResponseModesSupported            []string `json:"response_modes_supported"`
	SubjectTypesSupported             []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	ScopesSupported                   []string `json:"scopes_supported"`
	Issuer                            string   `json:"issuer"`
	RequestURIParameterSupported      bool     `json:"request_uri_parameter_supported"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	ClaimsSupported                   []string `json:"claims_supported"`
	TenantRegionScope                 *string  `json:"tenant_region_scope"`
	CloudInstanceName                 string   `json:"cloud_instance_name"`
	DeviceAuthorizationEndpoint       string   `json:"device_authorization_endpoint"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported"`
	UserInfoEndpoint                  string   `json:"userinfo_endpoint"`
	EndSessionEndpoint                string   `json:"end_session_endpoint"`
}

func (s *TokenService) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	tenant, oerr := s.requestTenant(r)
	if oerr != nil {
		s.writeOAuthError(w, r, oerr)
		return
	}
	base := s.baseFor(r)
	host := strings.TrimPrefix(base, "https://")
	doc := discoveryDoc{
		TokenEndpoint:                     base + "/" + tenant + "/oauth2/v2.0/token",
		TokenEndpointAuthMethodsSupported: []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		JWKSURI:                           base + "/" + tenant + "/discovery/v2.0/keys",
		ResponseModesSupported:            []string{"query", "fragment", "form_post"},
		SubjectTypesSupported:             []string{"pairwise"},
		IDTokenSigningAlgValuesSupported:  []string{algES256},
		ResponseTypesSupported:            []string{"code", "id_token", "code id_token", "id_token token"},
		ScopesSupported:                   []string{"openid", "profile", "email", "offline_access"},
		Issuer:                            issuerFor(base, tenant),
		AuthorizationEndpoint:             base + "/" + tenant + "/oauth2/v2.0/authorize",
		GrantTypesSupported:               []string{"client_credentials", "authorization_code", "refresh_token", "password", GrantDeviceCode},
		ClaimsSupported: []string{"sub", "iss", "aud", "exp", "iat", "nbf", "oid", "tid", "appid", "azp",
			"azpacr", "idtyp", "jti", "ver", "app_displayname", "upn", "name", "scp", "amr",
			"auth_time", "nonce", "preferred_username", "email"},
		DeviceAuthorizationEndpoint:   base + "/" + tenant + "/oauth2/v2.0/devicecode",
		CodeChallengeMethodsSupported: []string{"S256"},
		CloudInstanceName:             host,
		UserInfoEndpoint:              base + "/" + tenant + "/openid/userinfo",
		EndSessionEndpoint:            base + "/" + tenant + "/oauth2/v2.0/logout",
	}
	w.Header().Set("Cache-Control", "max-age=86400, private")
	writeJSON(w, http.StatusOK, doc)
}

func (s *TokenService) serveJWKS(w http.ResponseWriter, r *http.Request) {
	if _, oerr := s.requestTenant(r); oerr != nil {
		s.writeOAuthError(w, r, oerr)
		return
	}
	w.Header().Set("Cache-Control", "max-age=3600, private")
	writeJSON(w, http.StatusOK, struct {
		Keys []json.RawMessage `json:"keys"`
	}{s.jwks()})
}

type tokenResponse struct {
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	ExtExpiresIn int64  `json:"ext_expires_in"`
	AccessToken  string `json:"access_token"`
}

func (s *TokenService) serveToken(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFormBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.writeOAuthError(w, r, &oauthError{status: http.StatusRequestEntityTooLarge, code: "invalid_request",
				aadsts: 90015, desc: fmt.Sprintf("The request body exceeds %d bytes.", maxFormBytes)})
			return
		}
		s.writeOAuthError(w, r, &oauthError{status: http.StatusBadRequest, code: "invalid_request", aadsts: 90014,
			desc: "The request body could not be read."})
		return
	}
	if gt, form, ok := userGrantForm(r.Header.Get("Content-Type"), body); ok {
		clear(body)
		if len(r.Header.Values("Authorization")) > 0 {
			s.writeOAuthError(w, r, &oauthError{status: http.StatusBadRequest, code: "invalid_request", aadsts: 90014,
				desc: "Public clients do not authenticate; send no Authorization header with grant type " + sanitize(gt) + "."})
			return
		}
		tenant, oerr := s.requestTenant(r)
		if oerr != nil {
			s.writeOAuthError(w, r, oerr)
			return
		}
		s.serveUserToken(w, r, tenant, form)
		return
	}
	req, oerr := parseTokenRequest(r.Header.Get("Content-Type"), body, r.Header.Values("Authorization"))
	clear(body)
	if oerr != nil {
		s.writeOAuthError(w, r, oerr)
		return
	}
	now := s.now()
	addrKey := addressKey(r.RemoteAddr)
	clientKey := strings.ToLower(r.PathValue("tenant")) + "/" + strings.ToLower(req.ClientID)
	if ok, wait := s.addrLimit.allow(addrKey, now); !ok {
		s.throttled(w, r, req, wait, "address")
		return
	}
	if ok, wait := s.clientLimit.allow(clientKey, now); !ok {
		s.throttled(w, r, req, wait, "client")
		return
	}
	fail := func(oerr *oauthError, reason string) {
		s.addrLimit.fail(addrKey, now)
		s.clientLimit.fail(clientKey, now)
		s.log.LogAttrs(ctx, slog.LevelWarn, "token request rejected",
			slog.String("reason", reason), slog.String("tenant_id", sanitize(r.PathValue("tenant"))),
			slog.String("client_id", sanitize(req.ClientID)), slog.String("remote_addr", r.RemoteAddr),
			slog.Int("aadsts", oerr.aadsts))
		s.writeOAuthError(w, r, oerr)
	}
	tenant, oerr := s.requestTenant(r)
	if oerr != nil {
		if oerr.status == http.StatusBadRequest {
			fail(oerr, "unknown tenant")
		} else {
			s.writeOAuthError(w, r, oerr)
		}
		return
	}
	sp, err := s.store.ServicePrincipalByAppID(ctx, tenant, strings.ToLower(req.ClientID))
	if errors.Is(err, ErrNotFound) {
		fail(&oauthError{status: http.StatusBadRequest, code: "unauthorized_client", aadsts: 700016,
			desc: fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
				sanitize(req.ClientID), tenant)}, "unknown application")
		return
	}
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelError, "service principal lookup failed", slog.Any("error", err))
		s.writeOAuthError(w, r, &oauthError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable",
			aadsts: 90033, desc: "A transient error has occurred. Please try again."})
		return
	}
	acr := acrSecret
	if req.ClientAssertion != "" {
		acr = acrCertificate
		if oerr, reason := s.checkAssertion(ctx, r, tenant, sp, req.ClientAssertion, now); oerr != nil {
			if reason == "" {
				s.writeOAuthError(w, r, oerr)
			} else {
				fail(oerr, reason)
			}
			return
		}
	} else {
		if oerr := s.checkClientSecret(sp, req.ClientSecret, now); oerr != nil {
			fail(oerr.err, oerr.reason)
			return
		}
	}
	state, err := s.store.PrincipalState(ctx, tenant, sp.ObjectID)
	if errors.Is(err, ErrNotFound) {
		state = PrincipalState{Kind: KindServicePrincipal, Enabled: true}
		err = nil
	}
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelError, "principal state lookup failed", slog.Any("error", err))
		s.writeOAuthError(w, r, &oauthError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable",
			aadsts: 90033, desc: "A transient error has occurred. Please try again."})
		return
	}
	if !state.Enabled {
		fail(&oauthError{status: http.StatusBadRequest, code: "unauthorized_client", aadsts: 7000112,
			desc: fmt.Sprintf("Application '%s'(%s) is disabled.", sp.AppID, sanitize(sp.DisplayName))}, "disabled principal")
		return
	}
	if state.Kind == KindManagedIdentity {
		sp.Kind, sp.ResourceID = KindManagedIdentity, state.ResourceID
	}
	aud, oerr := resolveScope(req.Scope)
	if oerr != nil {
		s.writeOAuthError(w, r, oerr)
		return
	}
	tok, exp, err := s.issue(ctx, s.baseFor(r), sp, aud, acr, s.lifetime)
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelError, "token issuance failed", slog.Any("error", err))
		s.writeOAuthError(w, r, &oauthError{status: http.StatusInternalServerError, code: "server_error",
			aadsts: 90033, desc: "The token could not be issued."})
		return
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "token issued", slog.String("tenant_id", tenant),
		slog.String("app_id", sp.AppID), slog.String("object_id", sp.ObjectID), slog.String("audience", aud))
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.Header().Set("Pragma", "no-cache")
	secs := int64(math.Round(exp.Sub(now).Seconds())) - 1
	writeJSON(w, http.StatusOK, tokenResponse{TokenType: "Bearer", ExpiresIn: secs, ExtExpiresIn: secs, AccessToken: tok})
}

type secretFailure struct {
	err    *oauthError
	reason string
}

// checkClientSecret checks a client secret against sp's secrets.
func (s *TokenService) checkClientSecret(sp ServicePrincipal, secret string, now time.Time) *secretFailure {
	switch checkSecret(sp.Secrets, secret, now) {
	case secretValid:
		return nil
	case secretExpired:
		return &secretFailure{&oauthError{status: http.StatusUnauthorized, code: "invalid_client", aadsts: 7000222,
			desc: fmt.Sprintf("The provided client secret keys for app '%s' are expired. Create new keys for your app, or consider using certificate credentials for added security.", sp.AppID)},
			"expired secret"}
	default:
		return &secretFailure{&oauthError{status: http.StatusUnauthorized, code: "invalid_client", aadsts: 7000215,
			desc: fmt.Sprintf("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", sp.AppID)},
			"wrong secret"}
	}
}

func (s *TokenService) throttled(w http.ResponseWriter, r *http.Request, req tokenRequest, wait time.Duration, by string) {
	s.log.LogAttrs(r.Context(), slog.LevelWarn, "token request throttled after repeated failures",
		slog.String("limit", by), slog.String("client_id", sanitize(req.ClientID)),
		slog.String("remote_addr", r.RemoteAddr))
	s.writeOAuthError(w, r, &oauthError{status: http.StatusTooManyRequests, code: "temporarily_unavailable",
		aadsts: 50053, retryAfter: wait,
		desc: "Too many failed authentication attempts from this client or address; the client is temporarily blocked. Retry after the time in the Retry-After header."})
}

// tokenRequest is a parsed client credentials token request.
type tokenRequest struct {
	GrantType    string
	ClientID     string
	ClientSecret string // never logged
	// ClientAssertion is a signed JWT (client_assertion_type jwt-bearer);
	// exactly one of ClientSecret and ClientAssertion is set.
	ClientAssertion string // never logged
	Scope           string
}

// parseTokenRequest parses and checks a token request body
// (application/x-www-form-urlencoded) and Authorization header values.
// Client credentials may come in the body (client_secret_post), in HTTP
// Basic auth (client_secret_basic) or as a signed client assertion
// (private_key_jwt), exactly one of them.
func parseTokenRequest(contentType string, body []byte, authz []string) (tokenRequest, *oauthError) {
	var req tokenRequest
	bad := func(code int, desc string, args ...any) *oauthError {
		return &oauthError{status: http.StatusBadRequest, code: "invalid_request", aadsts: code, desc: fmt.Sprintf(desc, args...)}
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return req, bad(900144, "The request body must be application/x-www-form-urlencoded.")
	}
	if len(body) > maxFormBytes {
		return req, bad(90015, "The request body exceeds %d bytes.", maxFormBytes)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return req, bad(90014, "The request body is not a valid form: %s", sanitize(err.Error()))
	}
	for k, v := range form {
		if len(v) > 1 {
			return req, bad(9000411, "The request is not properly formatted. The parameter '%s' is duplicated.", sanitize(k))
		}
	}
	req.GrantType = form.Get("grant_type")
	req.ClientID = form.Get("client_id")
	req.ClientSecret = form.Get("client_secret")
	req.ClientAssertion = form.Get("client_assertion")
	req.Scope = form.Get("scope")
	assertionType := form.Get("client_assertion_type")

	if len(authz) > 1 {
		return req, bad(90014, "The request has more than one Authorization header.")
	}
	if len(authz) == 1 && authz[0] != "" {
		id, secret, ok := parseBasic(authz[0])
		if !ok {
			return req, &oauthError{status: http.StatusUnauthorized, code: "invalid_client", aadsts: 7000216,
				desc: "The Authorization header is not valid HTTP Basic authentication of the client."}
		}
		if req.ClientSecret != "" || form.Has("client_assertion") {
			return req, bad(90014, "The client must authenticate with only one method: HTTP Basic or the request body.")
		}
		if req.ClientID != "" && req.ClientID != id {
			return req, bad(90014, "The client_id in the body does not match the one in the Authorization header.")
		}
		req.ClientID, req.ClientSecret = id, secret
	}
	if req.ClientID == "" && req.ClientAssertion != "" {
		// RFC 7523 §3: client_id may be omitted; the assertion's subject names
		// the client (its signature is checked later against that client).
		if a, err := parseAssertion(req.ClientAssertion); err == nil {
			req.ClientID = a.sub
		}
	}
	switch {
	case req.GrantType == "":
		return req, bad(900144, "The request body must contain the following parameter: 'grant_type'.")
	case req.GrantType != "client_credentials":
		return req, &oauthError{status: http.StatusBadRequest, code: "unsupported_grant_type", aadsts: 70003,
			desc: fmt.Sprintf("The app requested an unsupported grant type '%s'. This server supports client_credentials.", sanitize(req.GrantType))}
	case req.ClientID == "":
		return req, bad(900144, "The request body must contain the following parameter: 'client_id'.")
	case !isGUID(req.ClientID):
		return req, &oauthError{status: http.StatusBadRequest, code: "unauthorized_client", aadsts: 700016,
			desc: fmt.Sprintf("Application with identifier '%s' was not found in the directory.", sanitize(req.ClientID))}
	case form.Has("client_assertion") && req.ClientSecret != "":
		return req, bad(90014, "The client must authenticate with only one method: client_secret or client_assertion.")
	case form.Has("client_assertion") && assertionType != ClientAssertionType:
		return req, &oauthError{status: http.StatusBadRequest, code: "invalid_request", aadsts: 50027,
			desc: fmt.Sprintf("The client_assertion_type must be '%s'.", ClientAssertionType)}
	case form.Has("client_assertion") && (req.ClientAssertion == "" || len(req.ClientAssertion) > maxAssertionBytes):
		return req, &oauthError{status: http.StatusUnauthorized, code: "invalid_client", aadsts: 50027,
			desc: "JWT token is invalid or malformed."}
	case !form.Has("client_assertion") && req.ClientSecret == "":
		return req, &oauthError{status: http.StatusUnauthorized, code: "invalid_client", aadsts: 7000218,
			desc: "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."}
	case len(req.ClientSecret) > 512:
		return req, &oauthError{status: http.StatusUnauthorized, code: "invalid_client", aadsts: 7000215,
			desc: "Invalid client secret provided."}
	case strings.TrimSpace(req.Scope) == "":
		return req, bad(900144, "The request body must contain the following parameter: 'scope'.")
	}
	return req, nil
}

// parseBasic decodes "Basic base64(urlencode(id):urlencode(secret))" (RFC 6749 §2.3.1).
func parseBasic(h string) (id, secret string, ok bool) {
	const prefix = "basic "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(h[len(prefix):]))
	if err != nil {
		return "", "", false
	}
	a, b, found := strings.Cut(string(raw), ":")
	if !found {
		return "", "", false
	}
	id, err1 := url.QueryUnescape(a)
	secret, err2 := url.QueryUnescape(b)
	if err1 != nil || err2 != nil || id == "" {
		return "", "", false
	}
	return id, secret, true
}

// resolveScope maps a client credentials scope ("<resource>/.default", plus
// the OpenID scopes MSAL adds) to the canonical audience.
func resolveScope(scope string) (string, *oauthError) {
	var resources []string
	for _, f := range strings.Fields(scope) {
		switch strings.ToLower(f) {
		case "openid", "offline_access", "profile", "email":
			continue
		}
		resources = append(resources, f)
	}
	invalid := func(code int, desc string, args ...any) *oauthError {
		return &oauthError{status: http.StatusBadRequest, code: "invalid_scope", aadsts: code, desc: fmt.Sprintf(desc, args...)}
	}
	switch len(resources) {
	case 0:
		return "", &oauthError{status: http.StatusBadRequest, code: "invalid_request", aadsts: 900144,
			desc: "The request body must contain the following parameter: 'scope'."}
	case 1:
	default:
		return "", invalid(70011, "The provided value for the input parameter 'scope' is not valid. A client credentials request must name exactly one resource.")
	}
	res := resources[0]
	const suffix = "/.default"
	if len(res) < len(suffix) || !strings.EqualFold(res[len(res)-len(suffix):], suffix) {
		return "", invalid(1002012, "The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", sanitize(res))
	}
	aud, ok := canonicalAudience(res[:len(res)-len(suffix)])
	if !ok {
		return "", invalid(70011, "The provided value for the input parameter 'scope' is not valid. The scope %s is not valid: this server issues tokens for %s, %s and %s.",
			sanitize(res), AudienceManagement, AudienceIngestion, AudienceQuery)
	}
	return aud, nil
}

// oauthError is an Entra token endpoint error.
type oauthError struct {
	status     int
	code       string // OAuth 2.0 error code
	aadsts     int    // Entra error code
	desc       string // without the AADSTS prefix and trailer
	retryAfter time.Duration
}

type oauthErrorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
	Timestamp        string `json:"timestamp"`
	TraceID          string `json:"trace_id"`
	CorrelationID    string `json:"correlation_id"`
}

func (s *TokenService) writeOAuthError(w http.ResponseWriter, r *http.Request, e *oauthError) {
	trace, err := newGUID(s.rand)
	if err != nil {
		trace = "00000000-0000-0000-0000-000000000000"
	}
	corr := r.Header.Get("client-request-id")
	if !isGUID(corr) {
		corr = trace
	}
	ts := s.now().UTC().Format("2006-01-02 15:04:05Z")
	body := oauthErrorBody{
		Error:            e.code,
		ErrorDescription: fmt.Sprintf("AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s", e.aadsts, e.desc, trace, corr, ts),
		ErrorCodes:       []int{e.aadsts},
		Timestamp:        ts,
		TraceID:          trace,
		CorrelationID:    corr,
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store, no-cache")
	h.Set("Pragma", "no-cache")
	h.Set("x-ms-request-id", trace)
	h.Set("client-request-id", corr)
	if e.retryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(int64(math.Ceil(e.retryAfter.Seconds())), 10))
	}
	writeJSON(w, e.status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client may have gone; nothing useful to do
}

// sanitize bounds and cleans client-supplied text echoed in errors and logs.
func sanitize(s string) string {
	if len(s) > 128 {
		s = s[:128]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '"' || r == '\\' || r == '<' || r == '>' {
			return '?'
		}
		return r
	}, s)
}

// userGrantForm parses a token request body whose grant_type is one of the
// user flows; ok is false for anything else (client credentials and
// malformed bodies are left to parseTokenRequest).
func userGrantForm(contentType string, body []byte) (string, url.Values, bool) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return "", nil, false
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return "", nil, false
	}
	for _, v := range form {
		if len(v) > 1 {
			return "", nil, false
		}
	}
	gt := form.Get("grant_type")
	return gt, form, isUserGrant(gt)
}
