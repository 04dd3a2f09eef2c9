package server

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"custos/internal/cmk"
	"custos/internal/store"
)

// KeysConfig configures customer-managed keys (clusters) and the store's
// trust in unwrapped workspace keys.
type KeysConfig struct {
	// CacheTTL is how long an unwrapped workspace key is trusted before its
	// key-encryption key is asked again: a revoked customer key stops
	// ingestion and queries within it. 0 means 1h.
	CacheTTL time.Duration `yaml:"cacheTTL"`
	// RetryInterval is how often a refusing key is asked again while
	// requests arrive. 0 means min(10s, CacheTTL).
	RetryInterval time.Duration `yaml:"retryInterval"`
	// FileKeyDir is the only directory clusters may take file keys
	// (custosProvider "file") from; "" disables file keys.
	FileKeyDir string `yaml:"fileKeyDir"`
	// PKCS11Modules are the PKCS#11 libraries clusters may name (builds
	// with the pkcs11 tag); empty disables PKCS#11 keys.
	PKCS11Modules []string `yaml:"pkcs11Modules"`
	// InsecureTransitHTTP allows plain-http Vault/OpenBao Transit addresses
	// (a local dev server only). Warned about at every start.
	InsecureTransitHTTP bool `yaml:"insecureTransitHTTP"`
}

// validate checks the keys settings.
func (k KeysConfig) validate() error {
	if k.CacheTTL < 0 || k.CacheTTL > 24*time.Hour {
		return fmt.Errorf("%w: keys.cacheTTL: %v is outside 0..24h", ErrInvalidConfig, k.CacheTTL)
	}
	if k.RetryInterval < 0 || (k.CacheTTL > 0 && k.RetryInterval > k.CacheTTL) {
		return fmt.Errorf("%w: keys.retryInterval: %v must be between 0 and keys.cacheTTL", ErrInvalidConfig, k.RetryInterval)
	}
	if k.FileKeyDir != "" && !filepath.IsAbs(k.FileKeyDir) {
		return fmt.Errorf("%w: keys.fileKeyDir: %q is not an absolute path", ErrInvalidConfig, k.FileKeyDir)
	}
	for _, m := range k.PKCS11Modules {
		if !filepath.IsAbs(m) {
			return fmt.Errorf("%w: keys.pkcs11Modules: %q is not an absolute path", ErrInvalidConfig, m)
		}
	}
	return nil
}

// openKeys builds the customer-managed key manager on the store and gives
// the store the key provider of every workspace linked to a cluster: the
// store does not persist provider credentials, so until this runs such a
// workspace is locked. A key that refuses now leaves its workspace locked
// (503 CustomerManagedKeyUnavailable) and the store retries it on later
// requests; the server still starts, so other workspaces are served.
func (s *Server) openKeys(ctx context.Context, st *store.DB) error {
	k := s.cfg.Keys
	if err := k.validate(); err != nil {
		return err
	}
	if k.InsecureTransitHTTP {
		s.log.Warn("insecure setting enabled", slog.String("setting", "keys.insecureTransitHTTP"))
	}
	m, err := cmk.New(cmk.Options{
		Store: st, Platform: s.keys, FileKeyDir: k.FileKeyDir, PKCS11Modules: k.PKCS11Modules,
		InsecureTransitHTTP: k.InsecureTransitHTTP, Logger: s.log.With(slog.String("component", "cmk")),
	})
	if err != nil {
		return fmt.Errorf("customer-managed keys: %w", err)
	}
	s.cmk = m
	s.closers = append(s.closers, m.Close) // before the store closes
	links, clusters, err := s.catalog.AllClusterLinks(ctx)
	if err != nil {
		return fmt.Errorf("list cluster links: %w", err)
	}
	if err := m.Attach(ctx, links, clusters); err != nil {
		s.log.Error("customer-managed keys not attached: the affected workspaces stay locked", slog.String("error", err.Error()))
	}
	return nil
}
