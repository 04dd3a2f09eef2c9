package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	ingestlogs "github.com/Azure/azure-sdk-for-go/sdk/monitor/ingestion/azlogs"
	querylogs "github.com/Azure/azure-sdk-for-go/sdk/monitor/query/azlogs"
)

// moduleVersion is the telemetry version the azcore pipeline requires.
const moduleVersion = "v0.1.0"

// Token audiences of the three Custos APIs, as Azure spells them. They match
// Audience*; the client keeps its own copy so that it links none of
// the server's packages.
const (
	AudienceManagement = "https://management.azure.com"
	AudienceIngestion  = "https://monitor.azure.com"
	AudienceQuery      = "https://api.loganalytics.io"
)

// DefaultApplicationID is sent in the User-Agent header when Options has none.
const DefaultApplicationID = "custos-cli"

// Options configures a Client.
type Options struct {
	// Config must hold endpoint, tenant, client ID and secret.
	Config Config
	// ApplicationID is sent in User-Agent; DefaultApplicationID when empty.
	ApplicationID string
	// MaxRetries for throttled and failed requests (429, 5xx); 0 means the
	// Azure SDK default (3), a negative value disables retries.
	MaxRetries int32
}

// Client is an authenticated connection to one Custos server. It is safe for
// concurrent use.
type Client struct {
	cfg      Config
	endpoint string // without trailing slash
	http     *http.Client
	cred     azcore.TokenCredential // a client secret, or a stored `custos login`
	arm      *azcore.Client
	opts     azcore.ClientOptions

	mu     sync.Mutex // guards query and ingest
	query  *querylogs.Client
	ingest *ingestlogs.Client
}

// New returns a Client for the server in opts.Config. It makes no request;
// tokens are fetched on first use.
func New(opts Options) (*Client, error) {
	cfg := opts.Config
	useLogin := false
	if cfg.ClientID == "" && cfg.ClientSecret == "" {
		// No service principal configured: use the user's `custos login`.
		if l, lerr := loginFor(cfg); lerr == nil {
			cfg.Endpoint, cfg.TenantID = l.Endpoint, l.TenantID
			if cfg.CAFile == "" {
				cfg.CAFile = l.CAFile
			}
			useLogin = true
		}
	}
	if !useLogin {
		if err := cfg.Validate(NeedCredentials, "pass them as flags or environment variables, run `custos login`, or run `custos serve` to create admin.json"); err != nil {
			return nil, err
		}
	}
	endpoint, err := ParseEndpoint(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	hc, err := NewHTTPClient(cfg.CAFile)
	if err != nil {
		return nil, err
	}
	appID := opts.ApplicationID
	if appID == "" {
		appID = DefaultApplicationID
	}
	co := azcore.ClientOptions{
		Cloud: cloud.Configuration{
			ActiveDirectoryAuthorityHost: endpoint + "/",
			Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
				cloud.ResourceManager:           {Audience: AudienceManagement, Endpoint: endpoint},
				querylogs.ServiceName:           {Audience: AudienceQuery, Endpoint: endpoint + "/v1"},
				ingestlogs.ServiceNameIngestion: {Audience: AudienceIngestion + "/"},
			},
		},
		Transport: hc,
		Telemetry: policy.TelemetryOptions{ApplicationID: appID},
		Retry:     policy.RetryOptions{MaxRetries: opts.MaxRetries, ShouldRetry: shouldRetry},
	}
	var cred azcore.TokenCredential
	if useLogin {
		path, err := DefaultLoginPath()
		if err != nil {
			return nil, err
		}
		if cred, err = NewLoginCredential(path, hc); err != nil {
			return nil, err
		}
	} else {
		cred, err = azidentity.NewClientSecretCredential(cfg.TenantID, cfg.ClientID, cfg.ClientSecret.Reveal(),
			&azidentity.ClientSecretCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: true})
		if err != nil {
			return nil, fmt.Errorf("create credential: %w", err)
		}
	}
	scope := AudienceManagement + "/.default"
	arm, err := azcore.NewClient("custos.cli", moduleVersion, runtime.PipelineOptions{
		PerRetry: []policy.Policy{runtime.NewBearerTokenPolicy(cred, []string{scope}, nil)},
	}, &co)
	if err != nil {
		return nil, fmt.Errorf("create control-plane client: %w", err)
	}
	return &Client{cfg: cfg, endpoint: endpoint, http: hc, cred: cred, arm: arm, opts: co}, nil
}

// Config returns the configuration the client was made with.
func (c *Client) Config() Config { return c.cfg }

// Endpoint returns the server URL without a trailing slash.
func (c *Client) Endpoint() string { return c.endpoint }

// Scope aliases accepted by Token, besides full scopes.
var scopeAliases = map[string]string{
	"management": AudienceManagement + "/.default",
	"arm":        AudienceManagement + "/.default",
	"query":      AudienceQuery + "/.default",
	"ingestion":  AudienceIngestion + "/.default",
	"ingest":     AudienceIngestion + "/.default",
}

// ResolveScope expands the aliases management (arm), query and ingestion
// (ingest) to their ".default" scopes; anything else is returned unchanged.
func ResolveScope(scope string) string {
	if s, ok := scopeAliases[strings.ToLower(strings.TrimSpace(scope))]; ok {
		return s
	}
	return strings.TrimSpace(scope)
}

// Token returns an access token for scope (see ResolveScope).
func (c *Client) Token(ctx context.Context, scope string) (azcore.AccessToken, error) {
	tok, err := c.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{ResolveScope(scope)}})
	if err != nil {
		return azcore.AccessToken{}, Explain(err)
	}
	return tok, nil
}

func (c *Client) queryClient() (*querylogs.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.query == nil {
		q, err := querylogs.NewClient(c.cred, &querylogs.ClientOptions{ClientOptions: c.opts})
		if err != nil {
			return nil, fmt.Errorf("create query client: %w", err)
		}
		c.query = q
	}
	return c.query, nil
}

func (c *Client) ingestClient() (*ingestlogs.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ingest == nil {
		in, err := ingestlogs.NewClient(c.endpoint, c.cred, &ingestlogs.ClientOptions{ClientOptions: c.opts})
		if err != nil {
			return nil, fmt.Errorf("create ingestion client: %w", err)
		}
		c.ingest = in
	}
	return c.ingest, nil
}

// retryStatus are the statuses worth retrying: the Azure SDK's defaults.
var retryStatus = []int{http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
	http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}

// shouldRetry is the Azure SDK's retry rule, except that errors which a retry
// cannot fix (an untrusted certificate, a refused connection) fail at once.
func shouldRetry(resp *http.Response, err error) bool {
	if err != nil {
		return !isPermanent(err)
	}
	return resp != nil && slices.Contains(retryStatus, resp.StatusCode)
}

// isPermanent reports transport errors that retrying cannot fix.
func isPermanent(err error) bool {
	var (
		ua  x509.UnknownAuthorityError
		he  x509.HostnameError
		ci  x509.CertificateInvalidError
		cve *tls.CertificateVerificationError
	)
	return errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci) || errors.As(err, &cve) ||
		errors.Is(err, syscall.ECONNREFUSED)
}

// NewHTTPClient returns an HTTP client that speaks TLS 1.2 or later and, when
// caFile is set, trusts only the CAs in that PEM file (the server's own CA),
// else the system roots.
func NewHTTPClient(caFile string) (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s: no PEM certificates found", caFile)
		}
		tc.RootCAs = pool
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tc,
		TLSHandshakeTimeout:   10 * time.Second,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Transport: tr,
		// Never follow a redirect: a bearer token must go only to the
		// configured endpoint.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}
