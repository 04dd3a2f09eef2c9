package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"time"

	"custos/internal/export"
	"custos/internal/store"
)

// ExportConfig configures data export rules (the YAML key "export"). Zero
// values are the safe defaults: no directory destination is allowed, S3
// endpoints must be HTTPS verified against the system roots.
type ExportConfig struct {
	// AllowedDirectories are the directories under which file:// export
	// destinations may be created; empty refuses directory destinations.
	AllowedDirectories []string `yaml:"allowedDirectories"`
	// FlushInterval is how often exported rows are written (default 1m).
	FlushInterval time.Duration `yaml:"flushInterval"`
	// S3CAFile is a PEM bundle trusted for S3 endpoints in addition to the
	// system roots.
	S3CAFile string `yaml:"s3CAFile"`
	// InsecureS3HTTP allows plain-HTTP S3 endpoints. Off by default;
	// warned about at every start.
	InsecureS3HTTP bool `yaml:"insecureS3HTTP"`
}

// exportSigningKeyFile is the sealed manifest signing key under keys/.
const exportSigningKeyFile = "export-signing.key"

// exportHook is the store's commit hook; it forwards to the exporter once
// it exists (the exporter needs the open store).
type exportHook struct {
	x atomic.Pointer[export.Exporter]
}

func (h *exportHook) onCommit(ref store.TableRef, b *store.Batch) {
	if x := h.x.Load(); x != nil {
		x.OnCommit(ref, b)
	}
}

// openExport builds the data exporter on the catalog and store. It runs
// from startExport until Close, which flushes it before the store closes.
func (s *Server) openExport(_ context.Context) error {
	c := s.cfg.Export
	roots, err := rootsWith(c.S3CAFile)
	if err != nil {
		return fmt.Errorf("export.s3CAFile: %w", err)
	}
	if c.InsecureS3HTTP {
		s.log.Warn("insecure setting enabled", slog.String("setting", "export.insecureS3HTTP"))
	}
	signer, err := export.OpenSigningKey(filepath.Join(s.cfg.DataDir, "keys", exportSigningKeyFile), s.keys)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		Proxy:           http.ProxyFromEnvironment,
		TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots},
	}}
	x, err := export.New(export.Options{
		Rules: s.catalog, Source: s.store, Signer: signer,
		Logger:         s.log.With(slog.String("component", "export")),
		Now:            s.now,
		FlushInterval:  c.FlushInterval,
		AllowedDirs:    c.AllowedDirectories,
		InsecureS3HTTP: c.InsecureS3HTTP,
		HTTPClient:     client,
	})
	if err != nil {
		return err
	}
	s.export = x
	s.exportHook.x.Store(x)
	s.closers = append(s.closers, x.Close) // closed before the store
	return nil
}

// startExport runs the exporter until Close.
func (s *Server) startExport(ctx context.Context) {
	if s.export != nil {
		s.export.Start(ctx)
	}
}
