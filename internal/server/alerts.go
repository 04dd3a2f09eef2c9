package server

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"

	"custos/internal/alert"
	"custos/internal/catalog"
	"custos/internal/crypt"
)

// AlertsConfig configures log search alerts and their notifications (the
// YAML key "alerts"). Zero values are the safe defaults: HTTPS webhooks
// verified against the system roots, plain HTTP only to loopback, no email.
type AlertsConfig struct {
	// WebhookCAFile is a PEM bundle trusted for HTTPS webhooks in addition
	// to the system roots.
	WebhookCAFile string `yaml:"webhookCAFile"`
	// InsecureAllowHTTPWebhooks allows plain-HTTP webhooks to non-loopback
	// hosts. Off by default; warned about at every start.
	InsecureAllowHTTPWebhooks bool `yaml:"insecureAllowHTTPWebhooks"`
	// Concurrency bounds rule evaluations and deliveries at once (default 8).
	Concurrency int `yaml:"concurrency"`
	// SMTP is the mail server for email receivers; no host disables email.
	SMTP AlertsSMTPConfig `yaml:"smtp"`
}

// AlertsSMTPConfig is the SMTP server email notifications are sent through.
type AlertsSMTPConfig struct {
	Host string `yaml:"host"`
	Port int    `yaml:"port"`
	// Security is starttls (default), tls, or insecure-none (loopback only).
	Security string `yaml:"security"`
	Username string `yaml:"username"`
	// PasswordFile holds the password (never put it in the YAML file).
	PasswordFile string `yaml:"passwordFile"`
	From         string `yaml:"from"`
	// CAFile is a PEM bundle trusted for the SMTP server in addition to the
	// system roots.
	CAFile string `yaml:"caFile"`
}

// openAlerts builds the alert service on the catalog, store, engine, token
// service and authorizer. Its scheduler starts with Run and stops at Close,
// before the store and catalog close.
func (s *Server) openAlerts(ctx context.Context) error {
	c := s.cfg.Alerts
	webRoots, err := rootsWith(c.WebhookCAFile)
	if err != nil {
		return fmt.Errorf("alerts.webhookCAFile: %w", err)
	}
	smtpRoots, err := rootsWith(c.SMTP.CAFile)
	if err != nil {
		return fmt.Errorf("alerts.smtp.caFile: %w", err)
	}
	var password crypt.Secret
	if c.SMTP.PasswordFile != "" {
		b, err := os.ReadFile(c.SMTP.PasswordFile)
		if err != nil {
			return fmt.Errorf("alerts.smtp.passwordFile: %w", err)
		}
		password = crypt.Secret(trimNewline(b))
	}
	if c.InsecureAllowHTTPWebhooks {
		s.log.Warn("insecure setting enabled", slog.String("setting", "alerts.insecureAllowHTTPWebhooks"))
	}
	s.alerts, err = alert.New(alert.Options{
		Catalog: s.catalog, Engine: s.engine, Source: s.store, Authorizer: s.rbac, Principals: s.catalog,
		Sealer: s.keys, Tokens: s.tokens, Endpoint: s.endpoint,
		Webhook:      alert.WebhookOptions{RootCAs: webRoots, InsecureAllowHTTP: c.InsecureAllowHTTPWebhooks},
		SMTP:         alert.SMTPOptions{Host: c.SMTP.Host, Port: c.SMTP.Port, Security: c.SMTP.Security, Username: c.SMTP.Username, Password: password, From: c.SMTP.From, RootCAs: smtpRoots},
		Activity:     s.activity,
		Concurrency:  c.Concurrency,
		QueryTimeout: s.cfg.Query.Timeout,
		Logger:       s.log.With(slog.String("component", "alert")),
		Now:          s.now,
		Rand:         s.rand,
	})
	if err != nil {
		return err
	}
	s.closers = append(s.closers, s.alerts.Close)
	if s.activity != nil {
		// Activity log alerts are evaluated as records are appended.
		svc := s.alerts
		s.activity.Subscribe(func(catalog.ActivityEntry) { svc.ActivityAppended() })
	}
	return nil
}

// startAlerts runs the alert scheduler and notifier until Close.
func (s *Server) startAlerts(ctx context.Context) error {
	if s.alerts == nil {
		return nil
	}
	return s.alerts.Start(ctx)
}

// rootsWith returns the system roots plus the certificates of a PEM file
// ("" means the system roots alone, as nil).
func rootsWith(file string) (*x509.CertPool, error) {
	if file == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
