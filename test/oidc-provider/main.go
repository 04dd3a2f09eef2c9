// Command custos-test-oidc is the external OpenID Connect provider that
// Custos's external-issuer tests run against: the example OpenID Provider
// of github.com/zitadel/oidc/v3 (a certified OIDC library), served over
// HTTPS on a loopback port with a self-signed certificate. Its service
// user "sid1" (secret "verysecret") gets JWT access tokens by the client
// credentials grant; they carry a "groups" claim (-groups, comma
// separated) so that group mapping can be tested.
//
// With -portal-redirect URI it also registers the web client
// "custos-portal" (secret -portal-secret, default "portal-secret") for
// that redirect URI, issuing JWT access tokens, so that a browser can sign
// in to the Custos portal as the example's user "test-user@127.0.0.1"
// (password "verysecure") through the login form at /login/username.
//
// Usage: custos-test-oidc -dir DIR [-addr 127.0.0.1:0] [-groups a,b] [-portal-redirect URI]
// It writes DIR/ca.pem (the certificate to trust) and prints one line
// "ISSUER https://127.0.0.1:PORT/" once it accepts connections.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// jwtClient makes the service user's access tokens JWTs (the example
// issues opaque ones), which a relying party such as Custos validates
// with the provider's JWKS.
type jwtClient struct{ op.Client }

func (jwtClient) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }

type provider struct {
	*storage.Storage
	groups []string
}

func (p provider) ClientCredentials(ctx context.Context, id, secret string) (op.Client, error) {
	c, err := p.Storage.ClientCredentials(ctx, id, secret)
	if err != nil {
		return nil, err
	}
	return jwtClient{c}, nil
}

// portalClientID is the web client registered with -portal-redirect: the
// Custos portal signing users in (authorization code with PKCE and a client
// secret), with JWT access tokens whose audience is its client ID.
const portalClientID = "custos-portal"

func (p provider) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := p.Storage.GetClientByClientID(ctx, id)
	if err != nil {
		return nil, err
	}
	if id == portalClientID {
		return jwtClient{c}, nil
	}
	return c, nil
}

func (p provider) GetPrivateClaimsFromScopes(ctx context.Context, userID, clientID string, scopes []string) (map[string]any, error) {
	claims, err := p.Storage.GetPrivateClaimsFromScopes(ctx, userID, clientID, scopes)
	if err != nil {
		return nil, err
	}
	if claims == nil {
		claims = map[string]any{}
	}
	if len(p.groups) > 0 {
		claims["groups"] = p.groups
	}
	claims["email"] = userID + "@oidc.test"
	return claims, nil
}

func main() {
	dir := flag.String("dir", "", "directory for ca.pem (required)")
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	groups := flag.String("groups", "", "comma-separated groups claim of service user tokens")
	portalRedirect := flag.String("portal-redirect", "", "register the web client custos-portal (secret -portal-secret) with this redirect URI")
	portalSecret := flag.String("portal-secret", "portal-secret", "client secret of custos-portal")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "custos-test-oidc: -dir is required")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(1)
	}
	cert, err := selfSigned(filepath.Join(*dir, "ca.pem"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "certificate:", err)
		os.Exit(1)
	}
	issuer := fmt.Sprintf("https://%s/", ln.Addr().String())
	var gs []string
	for _, g := range strings.Split(*groups, ",") {
		if g = strings.TrimSpace(g); g != "" {
			gs = append(gs, g)
		}
	}
	if *portalRedirect != "" {
		storage.RegisterClients(storage.WebClient(portalClientID, *portalSecret, *portalRedirect))
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	st := provider{Storage: storage.NewStorage(storage.NewUserStore(issuer)), groups: gs}
	router := exampleop.SetupServer(issuer, st, logger, false)
	srv := &http.Server{Handler: router, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}}
	fmt.Printf("ISSUER %s\n", issuer)
	if err := srv.ServeTLS(ln, "", ""); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
}

// selfSigned makes an ECDSA certificate for 127.0.0.1 and localhost and
// writes it (PEM) to caPath.
func selfSigned(caPath string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "custos-test-oidc"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(caPath, pemBytes, 0o644); err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
