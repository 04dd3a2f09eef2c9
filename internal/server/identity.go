package server

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"custos/internal/activity"
	"custos/internal/identity"
)

// ExternalIssuerConfig trusts an external OpenID Connect issuer (Entra ID,
// Keycloak, Dex, Okta, ...): tokens it signs for Audience are accepted on
// every API.
type ExternalIssuerConfig struct {
	// Issuer is the https issuer URL exactly as the tokens' iss claim has it.
	Issuer string `yaml:"issuer"`
	// Audience is the aud the tokens carry (Custos's client ID or API
	// identifier at that provider).
	Audience string `yaml:"audience"`
	// Tenant is the Custos tenant its principals belong to; empty means
	// the default tenant.
	Tenant string `yaml:"tenant"`
	// CAFile is a PEM bundle to verify the issuer's TLS certificate with
	// (instead of the system roots).
	CAFile string `yaml:"caFile"`
	// ObjectIDClaim, UPNClaim and GroupsClaim name the claims mapped to the
	// principal's object ID (default oid, then sub), sign-in name (upn,
	// email, preferred_username) and groups (groups: names or object IDs of
	// Custos groups).
	ObjectIDClaim string `yaml:"objectIdClaim"`
	UPNClaim      string `yaml:"upnClaim"`
	GroupsClaim   string `yaml:"groupsClaim"`
	// PortalClientID, when set, offers sign-in to the web portal with this
	// provider: the portal's client ID there (its access tokens must be
	// JWTs whose audience is Audience). PortalClientSecretFile holds its
	// client secret (empty: a public client, PKCE only); PortalName labels
	// the sign-in button (default: the issuer's host).
	PortalClientID         string `yaml:"portalClientId"`
	PortalClientSecretFile string `yaml:"portalClientSecretFile"`
	PortalName             string `yaml:"portalName"`
}

// setExternalIssuers parses the flag/env form of identity.externalIssuers:
// comma-separated entries issuer;audience=A[;tenant=T][;caFile=F]
// [;objectIdClaim=C][;upnClaim=C][;groupsClaim=C].
func setExternalIssuers(c *Config, v string) error {
	c.Identity.ExternalIssuers = nil
	for _, entry := range strings.Split(v, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		parts := strings.Split(entry, ";")
		e := ExternalIssuerConfig{Issuer: strings.TrimSpace(parts[0])}
		for _, opt := range parts[1:] {
			name, val, ok := strings.Cut(strings.TrimSpace(opt), "=")
			if !ok || val == "" {
				return fmt.Errorf("external issuer %q: option %q is not name=value", e.Issuer, opt)
			}
			switch strings.ToLower(name) {
			case "audience":
				e.Audience = val
			case "tenant":
				e.Tenant = val
			case "cafile":
				e.CAFile = val
			case "objectidclaim":
				e.ObjectIDClaim = val
			case "upnclaim":
				e.UPNClaim = val
			case "groupsclaim":
				e.GroupsClaim = val
			case "portalclientid":
				e.PortalClientID = val
			case "portalclientsecretfile":
				e.PortalClientSecretFile = val
			case "portalname":
				e.PortalName = val
			default:
				return fmt.Errorf("external issuer %q: unknown option %q (want audience, tenant, caFile, objectIdClaim, upnClaim, groupsClaim, portalClientId, portalClientSecretFile or portalName)", e.Issuer, name)
			}
		}
		c.Identity.ExternalIssuers = append(c.Identity.ExternalIssuers, e)
	}
	return nil
}

// validateIdentity checks the identity settings that need no I/O.
func (c Config) validateIdentity() error {
	for i, e := range c.Identity.ExternalIssuers {
		key := fmt.Sprintf("identity.externalIssuers[%d]", i)
		u, err := url.Parse(e.Issuer)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("%w: %s: issuer %q must be an https URL", ErrInvalidConfig, key, e.Issuer)
		}
		if strings.TrimSpace(e.Audience) == "" {
			return fmt.Errorf("%w: %s: audience is required", ErrInvalidConfig, key)
		}
	}
	return nil
}

// externalIssuers builds the token service's trusted issuers, reading CA
// files.
func (s *Server) externalIssuers() ([]identity.ExternalIssuer, error) {
	var out []identity.ExternalIssuer
	for _, e := range s.cfg.Identity.ExternalIssuers {
		x := identity.ExternalIssuer{Issuer: e.Issuer, Audience: e.Audience, TenantID: e.Tenant,
			ObjectIDClaim: e.ObjectIDClaim, UPNClaim: e.UPNClaim, GroupsClaim: e.GroupsClaim}
		if x.TenantID == "" {
			x.TenantID = s.boot.Tenant.ID
		}
		if e.CAFile != "" {
			pemBytes, err := os.ReadFile(e.CAFile)
			if err != nil {
				return nil, fmt.Errorf("identity.externalIssuers %s: caFile: %w", e.Issuer, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pemBytes) {
				return nil, fmt.Errorf("identity.externalIssuers %s: caFile %s holds no PEM certificate", e.Issuer, e.CAFile)
			}
			x.RootCAs = pool
		}
		out = append(out, x)
	}
	return out, nil
}

// signInFailed records a failed user sign-in in the activity log (the
// token endpoint's own failures are recorded by the activity middleware;
// this covers the sign-in pages, which answer with a page).
func (s *Server) signInFailed(ctx context.Context, f identity.SignInFailure) {
	if s.activity == nil {
		return
	}
	rec := activity.Record{
		OperationName: activity.OperationSignInFailure, Category: activity.CategorySecurity, Level: activity.LevelWarning,
		Status: activity.StatusFailed, SubStatus: "Unauthorized", HTTPStatus: 401, Caller: f.ObjectID, CallerType: "User",
		CallerName: f.UserPrincipalName, CallerIPAddress: f.RemoteAddr, ResourceID: "/" + f.TenantID,
		Properties: map[string]string{"reason": f.Reason, "clientId": f.ClientID, "userPrincipalName": f.UserPrincipalName},
	}
	if i := strings.LastIndexByte(rec.CallerIPAddress, ':'); i > 0 && !strings.HasSuffix(rec.CallerIPAddress, "]") {
		rec.CallerIPAddress = rec.CallerIPAddress[:i]
	}
	if _, err := s.activity.Record(ctx, rec); err != nil {
		s.log.LogAttrs(ctx, slog.LevelError, "activity record failed", slog.Any("error", err))
	}
}
