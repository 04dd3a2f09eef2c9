package server

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"custos/internal/crypt"
	"custos/internal/portal"
)

// portalProviders are the external issuers the web portal offers sign-in
// with (those with a portalClientId).
func (s *Server) portalProviders() ([]portal.ExternalProvider, error) {
	var out []portal.ExternalProvider
	for _, e := range s.cfg.Identity.ExternalIssuers {
		if e.PortalClientID == "" {
			continue
		}
		p := portal.ExternalProvider{Name: e.PortalName, Issuer: e.Issuer, ClientID: e.PortalClientID}
		if p.Name == "" {
			if u, err := url.Parse(e.Issuer); err == nil {
				p.Name = u.Host
			}
		}
		if e.PortalClientSecretFile != "" {
			b, err := os.ReadFile(e.PortalClientSecretFile)
			if err != nil {
				return nil, fmt.Errorf("identity.externalIssuers %s: portalClientSecretFile: %w", e.Issuer, err)
			}
			p.ClientSecret = crypt.Secret(strings.TrimSpace(string(b)))
		}
		tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if e.CAFile != "" {
			pemBytes, err := os.ReadFile(e.CAFile)
			if err != nil {
				return nil, fmt.Errorf("identity.externalIssuers %s: caFile: %w", e.Issuer, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pemBytes) {
				return nil, fmt.Errorf("identity.externalIssuers %s: caFile %s holds no PEM certificate", e.Issuer, e.CAFile)
			}
			tlsCfg.RootCAs = pool
		}
		p.HTTPClient = &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
			TLSClientConfig: tlsCfg, Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true, TLSHandshakeTimeout: 10 * time.Second,
		}}
		out = append(out, p)
	}
	return out, nil
}
