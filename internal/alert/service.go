package alert

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"custos/internal/activity"
	"custos/internal/catalog"
	"custos/internal/crypt"
	"custos/internal/engine"
	"custos/internal/identity"
	"custos/internal/rbac"
	"custos/internal/store"
)

// Defaults for Options.
const (
	DefaultConcurrency   = 8
	DefaultMaxSpread     = 15 * time.Second
	DefaultMaxCatchUp    = 60
	DefaultQueryTimeout  = 60 * time.Second
	DefaultSendTimeout   = 10 * time.Second
	DefaultPausePeriod   = 15 * time.Minute
	DefaultPollInterval  = time.Second
	DefaultReplayWindow  = 5 * time.Minute
	defaultDeliveryBatch = 50
)

// DefaultRetryDelays is Azure's webhook retry schedule: after the first
// attempt fails, up to five retries 5, 20, 5, 40 and 5 seconds apart.
var DefaultRetryDelays = []time.Duration{5 * time.Second, 20 * time.Second, 5 * time.Second, 40 * time.Second, 5 * time.Second}

// Querier runs KQL. *engine.Engine implements it.
type Querier interface {
	Query(ctx context.Context, req engine.Request) (*engine.Result, error)
}

// Authorizer is the single authorization decision. *rbac.Authorizer
// implements it.
type Authorizer interface {
	Authorize(ctx context.Context, p identity.Principal, act rbac.Action, scope rbac.Scope) (rbac.Decision, error)
}

// PrincipalStore creates the service principals that stand for rules'
// system-assigned identities and action groups' notifier applications.
// *catalog.DB implements it (identity.Store).
type PrincipalStore interface {
	CreateServicePrincipal(ctx context.Context, sp identity.ServicePrincipal) error
}

// PrincipalDisabler disables a principal. When Options.Principals also
// implements it (*catalog.DB does), a rule's system-assigned identity is
// disabled when the rule is deleted or stops using it, so it cannot keep
// reading data through roles still assigned to it.
type PrincipalDisabler interface {
	SetPrincipalEnabled(ctx context.Context, tenantID, objectID string, enabled bool) error
}

// TokenIssuer signs access tokens for secure webhooks.
// *identity.TokenService implements it.
type TokenIssuer interface {
	IssueToken(ctx context.Context, sp identity.ServicePrincipal, audience string) (string, time.Time, error)
}

// ExternalTokenIssuer is implemented by a token service that can sign
// tokens for audiences other than Custos's own APIs (a secure webhook's
// identifierUri). When Options.Tokens implements it, secure webhooks use it;
// otherwise they call IssueToken, which accepts only Custos's audiences, and
// fail with a recorded error.
type ExternalTokenIssuer interface {
	IssueExternalToken(ctx context.Context, sp identity.ServicePrincipal, audience string) (string, time.Time, error)
}

// ActivityRecorder appends to the tamper-evident activity log.
// *activity.Log implements it.
type ActivityRecorder interface {
	Record(ctx context.Context, r activity.Record) (catalog.ActivityEntry, error)
}

// Sealer seals and opens small secrets. *crypt.PlatformKey implements it.
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(ciphertext, aad []byte) ([]byte, error)
}

// WebhookOptions configure webhook delivery.
type WebhookOptions struct {
	// RootCAs verifies HTTPS targets. nil means the system roots; the server
	// adds its configured CA bundle to them.
	RootCAs *x509.CertPool
	// InsecureAllowHTTP allows plain-HTTP targets that are not on loopback.
	// Loopback targets are always allowed.
	InsecureAllowHTTP bool
	// Timeout bounds one attempt; 0 means DefaultSendTimeout.
	Timeout time.Duration
	// RetryDelays are the waits before each retry; nil means
	// DefaultRetryDelays. An empty non-nil slice means no retries.
	RetryDelays []time.Duration
	// PausePeriod is how long an endpoint is not called after its retries
	// are exhausted; 0 means DefaultPausePeriod.
	PausePeriod time.Duration
}

// SMTPOptions configure email delivery. Host empty disables email: email
// notifications then fail visibly.
type SMTPOptions struct {
	Host string
	Port int // 0: 465 for TLS, 587 otherwise
	// Security is "starttls" (default), "tls" (implicit TLS) or
	// "insecure-none" (plain text; allowed only to a loopback host).
	Security string
	Username string
	Password crypt.Secret
	From     string
	// RootCAs verifies the server's certificate; nil means the system roots.
	RootCAs *x509.CertPool
	// Timeout bounds one delivery; 0 means DefaultSendTimeout.
	Timeout time.Duration
}

// Options configures New. Zero fields take the documented defaults.
type Options struct {
	Catalog    *catalog.DB     // required
	Engine     Querier         // required
	Source     store.Queryable // required
	Authorizer Authorizer      // required
	Principals PrincipalStore  // required to create system-assigned identities
	Sealer     Sealer          // required for webhook signing secrets
	// Content seals rule queries and alert payloads under their
	// workspace's key. nil means Source's, when it implements
	// ContentSealer (*store.DB does); otherwise content is stored in the
	// clear.
	Content ContentSealer
	// Tokens issues secure-webhook tokens; nil makes secure webhooks fail.
	Tokens TokenIssuer
	// Activity receives a record when a rule starts failing (for example
	// its identity lost access) and when it recovers; nil records nothing.
	Activity ActivityRecorder
	// Endpoint is the server's base URL, for the search-result links of
	// notifications (e.g. https://custos.example:8443).
	Endpoint string
	Webhook  WebhookOptions
	SMTP     SMTPOptions
	// Concurrency bounds evaluations and deliveries running at once; 0
	// means DefaultConcurrency.
	Concurrency int
	// MaxSpread is the largest delay after a window's end at which a rule
	// is evaluated; each rule gets a fixed offset below it (a hash of its
	// ID), which spreads the load of rules with the same frequency. 0 means
	// DefaultMaxSpread; negative means no spread.
	MaxSpread time.Duration
	// MaxCatchUp bounds how many overdue windows of one rule are evaluated
	// after downtime; older ones are counted as missed. 0 means
	// DefaultMaxCatchUp.
	MaxCatchUp int
	// QueryTimeout bounds one rule query; 0 means DefaultQueryTimeout.
	QueryTimeout time.Duration
	// PollInterval is how often the background loops look for work they
	// were not woken for; 0 means DefaultPollInterval.
	PollInterval time.Duration
	// MaxBodyBytes bounds request bodies; 0 means api.DefaultMaxBodyBytes.
	MaxBodyBytes int64
	Logger       *slog.Logger
	Now          func() time.Time
	Rand         io.Reader
	// HTTPTransport overrides the webhook transport (tests of proxies); nil
	// builds one from Webhook.RootCAs.
	HTTPTransport http.RoundTripper
}

// Service is the alerting service: ARM handlers, scheduler and notifier.
// It is safe for concurrent use.
type Service struct {
	opts  Options
	cat   *catalog.DB
	log   *slog.Logger
	now   func() time.Time
	rand  io.Reader
	http  *http.Client
	stats stats
	skips skipLog // evaluations skipped while they could not run

	content ContentSealer // nil: content stored in the clear

	committer groupCommitter

	schemaMu sync.Mutex             // guards schemas
	schemas  map[string]schemaEntry // lower-case scope → workspace and table schemas

	schedMu sync.Mutex             // guards entries and running
	entries map[string]*schedEntry // lower-case rule ID → entry
	running map[string]bool        // lower-case rule IDs being evaluated

	wakeSched    chan struct{}
	wakeDeliver  chan struct{}
	wakeActivity chan struct{}
	activityMu   sync.Mutex    // serializes ProcessActivity
	sem          chan struct{} // bounds evaluations and deliveries

	lifeMu  sync.Mutex // guards cancel, started, closed
	cancel  context.CancelFunc
	started bool
	closed  bool
	wg      sync.WaitGroup
}

// New validates opts and returns a stopped service; Start runs its loops.
func New(opts Options) (*Service, error) {
	switch {
	case opts.Catalog == nil:
		return nil, errors.New("alert: no catalog")
	case opts.Engine == nil || opts.Source == nil:
		return nil, errors.New("alert: no query engine or source")
	case opts.Authorizer == nil:
		return nil, errors.New("alert: no authorizer")
	case opts.Sealer == nil:
		return nil, errors.New("alert: no sealer")
	case opts.Principals == nil:
		return nil, errors.New("alert: no principal store")
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.MaxSpread == 0 {
		opts.MaxSpread = DefaultMaxSpread
	}
	if opts.MaxCatchUp <= 0 {
		opts.MaxCatchUp = DefaultMaxCatchUp
	}
	if opts.QueryTimeout <= 0 {
		opts.QueryTimeout = DefaultQueryTimeout
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.Webhook.Timeout <= 0 {
		opts.Webhook.Timeout = DefaultSendTimeout
	}
	if opts.Webhook.RetryDelays == nil {
		opts.Webhook.RetryDelays = DefaultRetryDelays
	}
	if opts.Webhook.PausePeriod <= 0 {
		opts.Webhook.PausePeriod = DefaultPausePeriod
	}
	if opts.SMTP.Timeout <= 0 {
		opts.SMTP.Timeout = DefaultSendTimeout
	}
	switch strings.ToLower(opts.SMTP.Security) {
	case "":
		opts.SMTP.Security = "starttls"
	case "starttls", "tls", "insecure-none":
		opts.SMTP.Security = strings.ToLower(opts.SMTP.Security)
	default:
		return nil, fmt.Errorf("alert: smtp security %q is not one of starttls, tls, insecure-none", opts.SMTP.Security)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	opts.Endpoint = strings.TrimRight(opts.Endpoint, "/")
	s := &Service{
		opts: opts, cat: opts.Catalog, log: opts.Logger, now: opts.Now, rand: opts.Rand,
		entries:      map[string]*schedEntry{},
		running:      map[string]bool{},
		schemas:      map[string]schemaEntry{},
		wakeSched:    make(chan struct{}, 1),
		wakeDeliver:  make(chan struct{}, 1),
		wakeActivity: make(chan struct{}, 1),
		sem:          make(chan struct{}, opts.Concurrency),
	}
	s.content = opts.Content
	if s.content == nil {
		s.content, _ = opts.Source.(ContentSealer)
	}
	s.http = &http.Client{Transport: opts.HTTPTransport, Timeout: opts.Webhook.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if s.http.Transport == nil {
		s.http.Transport = newWebhookTransport(opts.Webhook.RootCAs)
	}
	return s, nil
}

// Start loads the rules and runs the scheduler and notifier until Close.
func (s *Service) Start(ctx context.Context) error {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.started {
		return nil
	}
	if err := s.sealLegacyContent(ctx); err != nil {
		return fmt.Errorf("seal alert content stored in the clear: %w", err)
	}
	if err := s.reloadAll(ctx); err != nil {
		return err
	}
	ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.started = true
	s.wg.Add(3)
	go func() { defer s.wg.Done(); s.scheduleLoop(ctx) }()
	go func() { defer s.wg.Done(); s.deliverLoop(ctx) }()
	go func() { defer s.wg.Done(); s.activityLoop(ctx) }()
	s.log.Info("alert service started", slog.Int("rules", s.ruleCount()), slog.Int("concurrency", s.opts.Concurrency))
	return nil
}

// Close stops the loops and waits for running evaluations and deliveries.
// An evaluation interrupted by Close commits nothing; it runs again after
// the next start.
func (s *Service) Close() error {
	s.lifeMu.Lock()
	if s.closed {
		s.lifeMu.Unlock()
		return nil
	}
	s.closed = true
	cancel := s.cancel
	s.lifeMu.Unlock()
	if cancel != nil {
		cancel()
	}
	s.wg.Wait()
	return nil
}

func wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// acquire takes a concurrency slot.
func (s *Service) acquire(ctx context.Context) error {
	select {
	case s.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Service) release() { <-s.sem }
