package alert

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"custos/internal/catalog"
)

// jwksReceiver is a secure-webhook receiver on loopback HTTPS that checks
// each call as a third party would, with only public information: it fetches
// Custos's JWKS over HTTPS, verifies the ES256 signature of the bearer token
// and its iss, aud and exp, then the HMAC signature header. It answers 401 on
// any failure and records why.
type jwksReceiver struct {
	srv      *httptest.Server
	jwksURL  string
	issuer   string
	audience string
	secret   func() []byte
	now      func() time.Time // the alert clock, for the HMAC timestamp
	client   *http.Client     // trusts Custos's certificate

	mu     sync.Mutex
	ok     int
	errs   []error
	tokens []string
}

func (rc *jwksReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	tok, err := rc.check(r, body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if err != nil {
		rc.errs = append(rc.errs, err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	rc.ok++
	rc.tokens = append(rc.tokens, tok)
}

func (rc *jwksReceiver) check(r *http.Request, body []byte) (string, error) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return "", errors.New("no bearer token")
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "", errors.New("token is not a compact JWS")
	}
	var hdr struct{ Alg, Kid string }
	if err := decodeSegment(parts[0], &hdr); err != nil {
		return "", fmt.Errorf("header: %w", err)
	}
	if hdr.Alg != "ES256" {
		return "", fmt.Errorf("alg %q", hdr.Alg)
	}
	pub, err := rc.key(hdr.Kid)
	if err != nil {
		return "", err
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return "", errors.New("malformed signature")
	}
	h := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(pub, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return "", errors.New("bad token signature")
	}
	var c struct {
		Iss, Aud, Appid, Azp string
		Exp, Nbf             int64
	}
	if err := decodeSegment(parts[1], &c); err != nil {
		return "", fmt.Errorf("claims: %w", err)
	}
	now := time.Now().Unix()
	switch {
	case c.Iss != rc.issuer:
		return "", fmt.Errorf("iss %q; want %q", c.Iss, rc.issuer)
	case c.Aud != rc.audience:
		return "", fmt.Errorf("aud %q; want %q", c.Aud, rc.audience)
	case c.Exp <= now || c.Exp > now+int64(6*time.Minute/time.Second):
		return "", fmt.Errorf("exp %d is not within the next few minutes of %d", c.Exp, now)
	case c.Nbf > now+60:
		return "", errors.New("token not yet valid")
	case c.Appid == "" || c.Azp != c.Appid:
		return "", fmt.Errorf("appid %q, azp %q", c.Appid, c.Azp)
	}
	if err := VerifySignature(rc.secret(), r.Header.Get(HeaderSignature), r.Header.Get(HeaderTimestamp), body, rc.now(), 0); err != nil {
		return "", fmt.Errorf("HMAC: %w", err)
	}
	return tok, nil
}

// key fetches the JWKS and returns the P-256 key with the given kid.
func (rc *jwksReceiver) key(kid string) (*ecdsa.PublicKey, error) {
	resp, err := rc.client.Get(rc.jwksURL)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct{ Kty, Crv, Kid, X, Y string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil || resp.StatusCode != 200 {
		return nil, fmt.Errorf("JWKS: %d %v", resp.StatusCode, err)
	}
	for _, k := range set.Keys {
		if k.Kid != kid || k.Kty != "EC" || k.Crv != "P-256" {
			continue
		}
		x, err1 := base64.RawURLEncoding.DecodeString(k.X)
		y, err2 := base64.RawURLEncoding.DecodeString(k.Y)
		if err1 != nil || err2 != nil || len(x) != 32 || len(y) != 32 {
			return nil, errors.New("malformed JWK")
		}
		return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	}
	return nil, fmt.Errorf("kid %q not in the JWKS", kid)
}

func decodeSegment(seg string, v any) error {
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

// TestSecureWebhookVerifiedWithJWKS: an action group's secure webhook gets
// a bearer token for its identifierUri that the receiver verifies with
// Custos's JWKS (signature, iss, aud, exp) along with the HMAC signature;
// the delivery succeeds; the same token is refused by Custos's own APIs.
func TestSecureWebhookVerifiedWithJWKS(t *testing.T) {
	rc := &jwksReceiver{audience: "api://custos-alert-receiver"}
	rc.srv = httptest.NewTLSServer(rc)
	t.Cleanup(rc.srv.Close)
	e := newEnv(t, envConfig{webhookRoots: tlsRoots(rc.srv)})
	tenant := strings.ToLower(e.boot.Tenant.ID)
	rc.issuer = e.srv.URL + "/" + tenant + "/v2.0"
	rc.jwksURL = e.srv.URL + "/" + tenant + "/discovery/v2.0/keys"
	rc.client = e.srv.Client()
	rc.now = e.clock.Now
	var secret []byte
	rc.secret = func() []byte { return secret }

	secrets := e.putGroup("secure", `{"groupShortName":"sec","webhookReceivers":[
		{"name":"hook","serviceUri":"`+rc.srv.URL+`/alerts","useCommonAlertSchema":true,"useAadAuth":true,"identifierUri":"`+rc.audience+`","objectId":"x","tenantId":"`+e.boot.Tenant.ID+`"}]}`)
	secret = []byte(secrets["hook"])
	if len(secret) == 0 {
		t.Fatal("no signing secret shown on creation")
	}
	t0 := e.clock.Now().Truncate(time.Minute)
	e.clock.Set(t0.Add(10 * time.Second))
	e.putRule("count", e.ruleBody("Perf", "Count", "", "GreaterThan", 0, "", "", e.groupID("secure")), true)
	e.ingest(perfRow{t0.Add(20 * time.Second), "a", 1})
	e.tick(t0.Add(time.Minute))

	rc.mu.Lock()
	ok, errs, tokens := rc.ok, rc.errs, rc.tokens
	rc.mu.Unlock()
	if ok != 1 || len(errs) != 0 {
		t.Fatalf("receiver: %d verified calls, errors %v; want 1 and none", ok, errs)
	}
	as, _ := e.cat.Alerts(context.Background(), alertFilter(e))
	if len(as) != 1 {
		t.Fatalf("alerts: %d", len(as))
	}
	ns, _ := e.cat.AlertNotifications(context.Background(), as[0].ID)
	if len(ns) != 1 || ns[0].Status != catalog.NotificationSucceeded {
		t.Fatalf("notification: %+v", ns)
	}

	// The receiver cannot use the token against Custos.
	code, _, raw := e.callAs(tokens[0], "GET", e.groupID("secure")+"?api-version=2023-01-01", "")
	if code != http.StatusUnauthorized || !strings.Contains(raw, "wrong audience") {
		t.Fatalf("Custos accepted a webhook's token: %d %s", code, raw)
	}

	// A receiver checking a different audience, or a tampered token, fails.
	rc.audience = "api://someone-else"
	req := httptest.NewRequest("POST", "/alerts", nil)
	req.Header.Set("Authorization", "Bearer "+tokens[0])
	if _, err := rc.check(req, nil); err == nil || !strings.Contains(err.Error(), "aud") {
		t.Fatalf("wrong audience: %v", err)
	}
	parts := strings.Split(tokens[0], ".")
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"aud":"api://someone-else"}`)) + "." + parts[2]
	req.Header.Set("Authorization", "Bearer "+forged)
	if _, err := rc.check(req, nil); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("forged token: %v", err)
	}
}
