package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strings"

	"custos/internal/catalog"
	"custos/internal/identity"
	"custos/internal/rbac"
)

// adminDisplayName names the bootstrap admin service principal.
const adminDisplayName = "custos-admin"

// catalogTenants answers the token service's tenant lookups from the
// catalog.
type catalogTenants struct{ cat *catalog.DB }

func (t catalogTenants) TenantExists(ctx context.Context, tenantID string) (bool, error) {
	_, err := t.cat.Tenant(ctx, tenantID)
	if errors.Is(err, catalog.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, nil
}

// openControlPlane opens the catalog, makes sure the default tenant,
// subscription, resource group and workspace exist, and builds the token
// service and the authorizer on it.
func (s *Server) openControlPlane(ctx context.Context) error {
	cat, err := catalog.Open(ctx, catalog.Options{
		Path:   filepath.Join(s.cfg.DataDir, "catalog.db"),
		Logger: s.log.With(slog.String("component", "catalog")),
		Now:    s.now,
		Rand:   s.rand,
	})
	if err != nil {
		return err
	}
	s.catalog = cat
	s.closers = append(s.closers, cat.Close)

	if s.boot, err = cat.Bootstrap(ctx, catalog.BootstrapOptions{}); err != nil {
		return err
	}

	var tenants identity.TenantDirectory = catalogTenants{cat}
	if td, ok := any(cat).(identity.TenantDirectory); ok {
		tenants = td
	}
	ext, err := s.externalIssuers()
	if err != nil {
		return err
	}
	s.tokens, err = identity.NewTokenService(identity.TokenServiceOptions{
		ExternalIssuers: ext,
		SignInFailed:    s.signInFailed,
		Store:           cat,
		Keys:            s.keys,
		Issuer:          s.endpoint,
		IssuerAliases:   s.endpointAliases(),
		Tenants:         tenants,
		TokenLifetime:   s.cfg.Identity.TokenLifetime,
		Logger:          s.log.With(slog.String("component", "identity")),
		Now:             s.now,
		Rand:            s.rand,
	})
	if err != nil {
		return err
	}
	s.authn = s.tokens
	s.rbac = rbac.New(rbac.Options{Store: cat, Logger: s.log.With(slog.String("component", "rbac")), Now: s.now,
		JustInTime: s.cfg.Identity.JustInTimeAccess})
	s.authz = s.rbac
	return nil
}

// endpointAliases lists the other base URLs that reach this server
// directly: every name of the generated certificate on the listen port.
func (s *Server) endpointAliases() []string {
	tcp, ok := s.ln.Addr().(*net.TCPAddr)
	if !ok {
		return nil
	}
	port := fmt.Sprint(tcp.Port)
	var out []string
	seen := map[string]bool{strings.ToLower(s.endpoint): true}
	for _, h := range serverHostnames(s.cfg.TLS.Hostnames) {
		u := "https://" + net.JoinHostPort(h, port)
		if _, err := url.Parse(u); err != nil || seen[strings.ToLower(u)] {
			continue
		}
		seen[strings.ToLower(u)] = true
		out = append(out, u)
	}
	return out
}

// isRootOwner reports whether a is an Owner assignment at "/".
func isRootOwner(a rbac.RoleAssignment) bool {
	return strings.TrimSuffix(string(a.Scope), "/") == "" &&
		strings.EqualFold(roleGUIDOf(a.RoleDefinitionID), rbac.RoleOwner)
}

// roleGUIDOf returns the GUID at the end of a role definition ID.
func roleGUIDOf(id string) string {
	if i := strings.LastIndexByte(id, '/'); i >= 0 {
		return id[i+1:]
	}
	return id
}

// ensureAdmin makes sure a bootstrap admin exists: a service principal with
// Owner at "/", whose credentials are in <dataDir>/admin.json. It runs on
// every start:
//   - no Owner at "/" and no admin.json: create the service principal, write
//     admin.json, then grant Owner (in that order, so a crash never leaves an
//     Owner whose secret is lost);
//   - no Owner at "/" but an admin.json for this tenant whose principal
//     exists: grant it Owner (the previous start stopped half-way);
//   - admin.json present: refresh its endpoint, CA file and workspace fields,
//     keeping the credentials.
//
// The secret is written only to admin.json; logs name the file.
func (s *Server) ensureAdmin(ctx context.Context) error {
	path := filepath.Join(s.cfg.DataDir, adminFile)
	adm, haveFile, err := readAdminIfPresent(path)
	if err != nil {
		return err
	}
	all, err := s.catalog.ListRoleAssignments(ctx, "/")
	if err != nil {
		return fmt.Errorf("list role assignments: %w", err)
	}
	hasOwner := false
	for _, a := range all {
		if isRootOwner(a) {
			hasOwner = true
			break
		}
	}

	tenant := s.boot.Tenant.ID
	var grantTo string
	switch {
	case hasOwner:
	case haveFile && strings.EqualFold(adm.TenantID, tenant):
		sp, err := s.catalog.ServicePrincipalByAppID(ctx, tenant, adm.ClientID)
		if err != nil && !errors.Is(err, identity.ErrNotFound) {
			return fmt.Errorf("look up bootstrap admin: %w", err)
		}
		if err == nil {
			grantTo = sp.ObjectID
			break
		}
		fallthrough
	default:
		sp, secret, err := s.tokens.CreateServicePrincipal(ctx, tenant, adminDisplayName)
		if err != nil {
			return fmt.Errorf("create bootstrap admin: %w", err)
		}
		adm = AdminCredentials{TenantID: sp.TenantID, ClientID: sp.AppID, ClientSecret: secret}
		haveFile = true
		grantTo = sp.ObjectID
		s.log.Info("created bootstrap admin service principal",
			slog.String("client_id", sp.AppID), slog.String("object_id", sp.ObjectID))
	}

	if haveFile {
		want := adm
		want.Endpoint = s.endpoint
		want.CAFile = s.clientCAFile()
		if strings.EqualFold(adm.TenantID, tenant) {
			want.SubscriptionID = s.boot.Subscription.ID
			want.ResourceGroup = s.boot.ResourceGroup.Name
			want.WorkspaceName = s.boot.Workspace.Name
			want.WorkspaceID = s.boot.Workspace.CustomerID
		}
		if want != adm || grantTo != "" {
			if err := writeAdminCredentials(path, want); err != nil {
				return err
			}
		}
	}

	if grantTo != "" {
		name, err := newGUIDFrom(s.rand)
		if err != nil {
			return err
		}
		if err := s.catalog.CreateRoleAssignment(ctx, rbac.RoleAssignment{
			ID:               "/providers/Microsoft.Authorization/roleAssignments/" + name,
			Name:             name,
			Scope:            "/",
			RoleDefinitionID: rbac.RoleOwner,
			PrincipalID:      grantTo,
			PrincipalType:    string(identity.KindServicePrincipal),
			Created:          s.now().UTC(),
		}); err != nil {
			return fmt.Errorf("grant Owner to the bootstrap admin: %w", err)
		}
		s.rbac.Invalidate()
		s.log.Info("granted Owner at / to the bootstrap admin", slog.String("object_id", grantTo))
		if s.cfg.Identity.JustInTimeAccess {
			s.log.Info("just-in-time access is on: the bootstrap admin administers but reads no log data and cannot grant itself a data role; " +
				"assign Log Analytics Reader to the principals that query (custos role assignment create), or use custos access request")
		}
	}
	if haveFile {
		s.log.Info("bootstrap admin credentials", slog.String("file", path))
	}
	return nil
}

// clientCAFile is the CA certificate clients should trust: the local CA,
// unless a user-supplied certificate is served (then clients use their
// system roots and caFile is empty).
func (s *Server) clientCAFile() string {
	if s.cfg.TLS.CertFile != "" {
		return ""
	}
	return s.CAFile()
}
