package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"custos/internal/activity"
	"custos/internal/alert"
	"custos/internal/arm"
	"custos/internal/catalog"
	"custos/internal/cmk"
	"custos/internal/crypt"
	"custos/internal/engine"
	"custos/internal/enroll"
	"custos/internal/export"
	"custos/internal/identity"
	"custos/internal/ingest"
	"custos/internal/portal"
	"custos/internal/purge"
	"custos/internal/query"
	"custos/internal/rbac"
	"custos/internal/store"
	"custos/internal/workload"
)

// Options configures New. Zero fields take the documented defaults.
type Options struct {
	// Config is the server configuration; zero fields take DefaultConfig's
	// values. It is validated again by New.
	Config Config
	// Logger receives the server's structured log. nil discards it.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand is the randomness for keys and certificates; nil means crypto/rand.
	Rand io.Reader
}

// Server is one running Custos server: the data directory it holds locked,
// the components it wired, and the HTTPS listener. Create it with New, run it
// with Run; Close releases everything if Run is never called. Its methods are
// safe for concurrent use.
type Server struct {
	cfg      Config
	log      *slog.Logger
	now      func() time.Time
	rand     io.Reader
	endpoint string // base URL clients use, without trailing slash

	lock    *dirLock
	certs   *certSource
	ca      *localCA
	keys    *crypt.PlatformKey
	metrics *metrics
	router  *router
	handler http.Handler

	catalog *catalog.DB
	boot    catalog.Bootstrap // the default tenant, subscription, resource group and workspace
	tokens  *identity.TokenService
	rbac    *rbac.Authorizer
	authn   authenticator // s.tokens
	authz   authorizer    // s.rbac
	store   *store.DB
	engine  *engine.Engine
	arm     *arm.API
	ingest  *ingest.API
	query   *query.API
	alerts  *alert.Service
	purge   *purge.Service // purge and deleteData operations; started in Run
	cmk     *cmk.Manager   // customer-managed keys of clusters (keys.go)

	export     *export.Exporter // data export rules (export.go)
	exportHook exportHook       // the store's commit hook, forwarding to export

	activity *activity.Log // the activity log; its auditing authorizer is authz

	// querySlots bounds the CPU work of all queries (query.maxWorkers),
	// shared by the store and the engine (dataplane.go).
	querySlots *workload.Pool

	routes guardedRoutes // every route registerRoute put behind the guard, in order (routes.go)

	ln       net.Listener
	net      *network // extra listeners and private networks (network.go)
	srv      *http.Server
	baseCtx  context.Context // parent of every request context
	cancel   context.CancelFunc
	stopping atomic.Bool

	// closers release components in reverse order of opening.
	closers []func() error

	closeOnce sync.Once
	closeErr  error
}

// New opens the data directory (creating and bootstrapping it on first
// start), wires every component and binds the listener. It does not serve
// until Run.
func New(ctx context.Context, o Options) (_ *Server, err error) {
	cfg := o.Config.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("resolve data directory: %w", err)
	}
	cfg.DataDir = dataDir
	s := &Server{cfg: cfg, log: o.Logger, now: o.Now, rand: o.Rand}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = testClockFromEnv(s.log) // nil unless a fault test set it
	}
	startTestPprof(s.log) // only when a test sets CUSTOS_TEST_PPROF_ADDR
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	s.metrics = newMetrics(s.now())
	defer func() {
		if err != nil {
			s.Close()
		}
	}()

	if err := prepareDataDir(dataDir, s.log); err != nil {
		return nil, err
	}
	if s.lock, err = lockDataDir(dataDir); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.lock.release)

	for _, name := range cfg.insecureSettings() {
		s.log.Warn("insecure setting enabled", slog.String("setting", name))
	}

	if err := s.setupTLS(); err != nil {
		return nil, err
	}

	keyPath := filepath.Join(dataDir, "keys", "platform.key")
	if s.keys, err = crypt.OpenPlatformKey(keyPath); err != nil {
		return nil, fmt.Errorf("open platform key: %w", err)
	}
	s.closers = append(s.closers, func() error { s.keys.Destroy(); return nil })

	s.ln, err = net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	s.closers = append(s.closers, func() error {
		if err := s.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
		return nil
	})
	if s.net, err = newNetwork(cfg, newTLSConfig(s.certs.GetCertificate)); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.net.close)
	s.endpoint = cfg.EndpointURL()
	if cfg.Endpoint == "" {
		if tcp, ok := s.ln.Addr().(*net.TCPAddr); ok {
			s.endpoint = "https://" + net.JoinHostPort("localhost", strconv.Itoa(tcp.Port))
		}
	}

	if err := s.openControlPlane(ctx); err != nil {
		return nil, err
	}
	s.net.scopes = s.catalog // private link scopes (network.go)
	if err := s.ensureAdmin(ctx); err != nil {
		return nil, err
	}
	if err := s.openDataPlane(ctx); err != nil {
		return nil, err
	}

	s.router = newRouter(http.HandlerFunc(notFound))
	if err := s.router.handle("GET /healthz", http.HandlerFunc(s.healthz)); err != nil {
		return nil, err
	}
	tokenHandler := s.tokens.Handler()
	for _, p := range s.tokens.Patterns() {
		if err := s.router.handle(p, tokenHandler); err != nil {
			return nil, err
		}
	}
	// Cluster enrollment is authenticated by its one-time token alone.
	if err := s.router.handle("POST "+enroll.ClusterPath, s.arm.ClusterEnrollmentHandler()); err != nil {
		return nil, err
	}
	// The web portal signs in through the token service and calls the
	// APIs through s.handler, the same chain every client meets.
	portalExt, err := s.portalProviders()
	if err != nil {
		return nil, err
	}
	webPortal := portal.New(portal.Options{Tenant: s.boot.Tenant.ID, Backend: func() http.Handler { return s.handler },
		External: portalExt, Logger: s.log.With(slog.String("component", "portal")), Now: s.now})
	portalHandler := webPortal.Handler()
	for _, p := range portal.Patterns() {
		if err := s.router.handle(p, portalHandler); err != nil {
			return nil, err
		}
	}
	if cfg.InsecureMetricsWithoutAuth {
		if err := s.router.handle("GET /metrics", http.HandlerFunc(s.serveMetrics)); err != nil {
			return nil, err
		}
	} else if err := s.registerRoute(s.metricsRoute()); err != nil {
		return nil, err
	}
	if err := s.registerRoutes(s.apiRoutes()); err != nil {
		return nil, err
	}
	// The activity middleware sits inside observe, which sets the
	// correlation ID its records carry.
	s.handler = s.observe(s.recoverPanics(securityHeaders(limitBody(cfg.Limits.MaxRequestBodyBytes, tokenClientID(s.activity.Middleware(s.router))))))

	s.baseCtx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.srv = &http.Server{
		Handler:           s.handler,
		TLSConfig:         newTLSConfig(s.certs.GetCertificate),
		ReadHeaderTimeout: cfg.Timeouts.ReadHeader,
		ReadTimeout:       cfg.Timeouts.Read,
		WriteTimeout:      cfg.Timeouts.Write,
		IdleTimeout:       cfg.Timeouts.Idle,
		MaxHeaderBytes:    cfg.Limits.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelInfo),
		BaseContext:       func(net.Listener) context.Context { return s.baseCtx },
		ConnContext:       s.net.connContext,
	}
	return s, nil
}

// prepareDataDir creates the data directory 0700, and warns when an existing
// one is readable by others.
func prepareDataDir(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("stat data directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("data directory %s is not a directory", dir)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		log.Warn("data directory is accessible to other users; restrict it to mode 0700",
			slog.String("data_dir", dir), slog.String("mode", fi.Mode().Perm().String()))
	}
	return nil
}

// setupTLS creates or loads the local CA and the generated server
// certificate, or loads the user-supplied pair.
func (s *Server) setupTLS() error {
	dir := s.cfg.DataDir
	ca, err := ensureCA(dir, s.now(), s.rand)
	if err != nil {
		return err
	}
	s.ca = ca
	certFile, keyFile := s.cfg.TLS.CertFile, s.cfg.TLS.KeyFile
	if certFile == "" {
		issued, err := ensureServerCert(dir, ca, serverHostnames(s.cfg.TLS.Hostnames), s.now(), s.rand)
		if err != nil {
			return err
		}
		if issued {
			s.log.Info("issued server certificate from the local CA",
				slog.String("cert_file", filepath.Join(dir, serverCertFile)))
		}
		certFile, keyFile = filepath.Join(dir, serverCertFile), filepath.Join(dir, serverKeyFile)
	}
	s.certs, err = newCertSource(certFile, keyFile)
	if err != nil {
		return err
	}
	if leaf := s.certs.Leaf(); leaf != nil && s.now().After(leaf.NotAfter) {
		s.log.Warn("server certificate has expired", slog.String("cert_file", certFile),
			slog.Time("not_after", leaf.NotAfter))
	}
	return nil
}

// Addr returns the listener's address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Endpoint returns the base URL clients use, e.g. https://localhost:8443.
func (s *Server) Endpoint() string { return s.endpoint }

// CAFile returns the path of the local CA certificate clients may trust.
func (s *Server) CAFile() string { return filepath.Join(s.cfg.DataDir, caCertFile) }

// Handler returns the full middleware chain, for in-process use.
func (s *Server) Handler() http.Handler { return s.handler }

// ReloadTLS reads the serving certificate and key again (SIGHUP does this).
// New connections get the new certificate; open ones keep theirs. On error
// the old certificate stays in use.
func (s *Server) ReloadTLS() error {
	if err := s.certs.Reload(); err != nil {
		return err
	}
	leaf := s.certs.Leaf()
	s.log.Info("reloaded server certificate", slog.String("subject", leaf.Subject.CommonName),
		slog.Time("not_after", leaf.NotAfter))
	return nil
}

// Run serves HTTPS until ctx is done, reloading the certificate on SIGHUP.
// Then it stops accepting connections, lets in-flight requests finish for up
// to timeouts.shutdown, cancels what is left, and closes every component.
func (s *Server) Run(ctx context.Context) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	if err := s.startAlerts(ctx); err != nil {
		return errors.Join(fmt.Errorf("start alerts: %w", err), s.Close())
	}
	s.startExport(ctx)
	// Pending purges resume here: a restart never forgets an accepted one.
	if err := s.purge.Start(ctx); err != nil {
		return errors.Join(fmt.Errorf("start purge: %w", err), s.Close())
	}
	s.warmQueries(ctx)
	errc := make(chan error, 1)
	go func() { errc <- s.srv.ServeTLS(s.ln, "", "") }()
	s.net.serve(s.srv, s.log, errc)
	s.log.Info("serving", slog.String("address", s.ln.Addr().String()), slog.String("endpoint", s.endpoint),
		slog.String("ca_file", s.CAFile()))

	for {
		select {
		case <-hup:
			if err := s.ReloadTLS(); err != nil {
				s.log.Error("reload server certificate failed; keeping the current one", slog.Any("error", err))
			}
		case err := <-errc:
			cerr := s.Close()
			return errors.Join(fmt.Errorf("serve: %w", err), cerr)
		case <-ctx.Done():
			return s.shutdown(errc)
		}
	}
}

func (s *Server) shutdown(errc <-chan error) error {
	s.stopping.Store(true)
	s.log.Info("shutting down", slog.Duration("timeout", s.cfg.Timeouts.Shutdown))
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeouts.Shutdown)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	if err != nil {
		s.log.Warn("in-flight requests did not finish in time; cancelling them", slog.Any("error", err))
		s.cancel()
		err = s.srv.Close()
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if cerr := s.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if err == nil {
		s.log.Info("stopped")
	}
	return err
}

// Close releases the components, the listener and the data directory lock,
// in reverse order of opening. It is idempotent; after Run it is a no-op.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		if s.cancel != nil {
			s.cancel()
		}
		var errs []error
		for i := len(s.closers) - 1; i >= 0; i-- {
			if err := s.closers[i](); err != nil {
				errs = append(errs, err)
			}
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}
