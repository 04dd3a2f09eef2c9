package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"custos/internal/store"
)

// Config is the whole server configuration. The zero value of every field
// means "use the safe default" (DefaultConfig); nothing is ever unlimited.
type Config struct {
	// DataDir holds every file the server owns: TLS material, keys, the
	// catalog, the store and admin.json. Created 0700 on first start.
	DataDir string `yaml:"dataDir"`
	// Listen is the TCP address of the HTTPS listener.
	Listen string `yaml:"listen"`
	// Endpoint is the base URL clients use to reach the server; it is the
	// token issuer and the endpoint written to admin.json. Empty means
	// https://localhost:<listen port>.
	Endpoint string `yaml:"endpoint"`

	TLS      TLSConfig      `yaml:"tls"`
	Log      LogConfig      `yaml:"log"`
	Limits   LimitsConfig   `yaml:"limits"`
	Timeouts TimeoutsConfig `yaml:"timeouts"`
	Query    QueryConfig    `yaml:"query"`
	Store    StoreConfig    `yaml:"store"`
	Identity IdentityConfig `yaml:"identity"`
	Alerts   AlertsConfig   `yaml:"alerts"`
	Activity ActivityConfig `yaml:"activity"`
	Keys     KeysConfig     `yaml:"keys"`
	Export   ExportConfig   `yaml:"export"`

	// Listeners are extra HTTPS listeners besides Listen, each optionally
	// private and/or requiring client certificates (network.go).
	Listeners []ListenerConfig `yaml:"listeners"`
	// PrivateNetworks are CIDRs whose clients count as private on any
	// listener (by the connection's source address only).
	PrivateNetworks []string `yaml:"privateNetworks"`

	// InsecureMetricsWithoutAuth serves GET /metrics without a bearer token.
	// Off by default; warned about at every start.
	InsecureMetricsWithoutAuth bool `yaml:"insecureMetricsWithoutAuth"`
}

// TLSConfig configures the server certificate.
type TLSConfig struct {
	// CertFile and KeyFile name a user-supplied PEM certificate chain and
	// private key. Both empty means the server certificate issued by the
	// local CA under <dataDir>/tls. Reloaded on SIGHUP.
	CertFile string `yaml:"certFile"`
	KeyFile  string `yaml:"keyFile"`
	// Hostnames are extra DNS names or IP addresses for the generated
	// server certificate, besides localhost, 127.0.0.1, ::1 and the host name.
	Hostnames []string `yaml:"hostnames"`
}

// LogConfig configures the server's structured log on stderr.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // json or text
}

// LimitsConfig bounds what one request may consume.
type LimitsConfig struct {
	MaxRequestBodyBytes int64 `yaml:"maxRequestBodyBytes"`
	MaxHeaderBytes      int   `yaml:"maxHeaderBytes"`
}

// TimeoutsConfig bounds how long connections and requests may take.
type TimeoutsConfig struct {
	ReadHeader time.Duration `yaml:"readHeader"`
	Read       time.Duration `yaml:"read"`
	Write      time.Duration `yaml:"write"`
	Idle       time.Duration `yaml:"idle"`
	// Shutdown bounds how long in-flight requests may run after SIGTERM.
	Shutdown time.Duration `yaml:"shutdown"`
}

// QueryConfig bounds what one KQL query may use (Azure's limits by default).
type QueryConfig struct {
	Timeout        time.Duration `yaml:"timeout"`        // default server-side timeout
	MaxTimeout     time.Duration `yaml:"maxTimeout"`     // longest timeout a request may ask for
	MaxResultRows  int           `yaml:"maxResultRows"`  // rows a query may return
	MaxResultBytes int64         `yaml:"maxResultBytes"` // result size a query may return
	MaxMemoryBytes int64         `yaml:"maxMemoryBytes"` // working memory of one query
	ReadCacheBytes int64         `yaml:"readCacheBytes"` // the store's decoded-chunk cache, shared by queries; 0: off
	// BloomCacheBytes is the store's cache of part bloom filters read by term-hint queries; 0: off.
	BloomCacheBytes int64 `yaml:"bloomCacheBytes"`
	// MaxWorkers is the number of query worker slots shared by every query
	// of the process (API queries, alert rules): at most this many
	// goroutines decode blocks or process batches for queries at once
	// (internal/workload). 0 means GOMAXPROCS.
	MaxWorkers int `yaml:"maxWorkers"`
	// IngestReserve is how many of those slots queries leave to ingestion
	// while ingestion requests are being served (never the last one); 0:
	// none (the default).
	IngestReserve int `yaml:"ingestReserve"`
}

// StoreConfig tunes the column store.
type StoreConfig struct {
	// MemtableBytes is the size of a workspace's in-memory rows (also kept
	// in the WAL) at which they are written out as parts. Smaller means less
	// memory and more, smaller parts (more merging).
	MemtableBytes int64 `yaml:"memtableBytes"`
	// MemtableMaxAge is how long rows may stay in memory (and the WAL)
	// before they are written out as a part however few they are.
	MemtableMaxAge time.Duration `yaml:"memtableMaxAge"`
}

// minMemtableBytes is the smallest store.memtableBytes accepted.
const minMemtableBytes = 64 << 10

// ActivityConfig configures where the activity log is copied besides its
// hash chain in the catalog.
type ActivityConfig struct {
	// File, when set, also appends every record as one JSON line to this
	// file (created 0600). Keep it on other storage than the data directory
	// to guard against someone who can rewrite the catalog.
	File string `yaml:"file"`
	// Workspace receives every record in its AzureActivity table: a
	// workspace resource ID. Empty means the default workspace; "none"
	// turns forwarding off.
	Workspace string `yaml:"workspace"`
}

// ActivityWorkspaceNone turns forwarding to AzureActivity off.
const ActivityWorkspaceNone = "none"

// IdentityConfig configures the built-in token service.
type IdentityConfig struct {
	// TokenLifetime is the lifetime of issued access tokens.
	TokenLifetime time.Duration `yaml:"tokenLifetime"`
	// ExternalIssuers are trusted external OIDC issuers.
	ExternalIssuers []ExternalIssuerConfig `yaml:"externalIssuers"`
	// JustInTimeAccess (on by default) makes role assignments at the root
	// scope grant no access to log data: administrators request time-bound
	// access to a workspace, which an owner of the workspace approves, and
	// nobody may assign themselves a role that reads data they cannot read
	// yet. false restores Azure's plain inheritance (a root Owner reads
	// everything).
	JustInTimeAccess bool `yaml:"justInTimeAccess"`
}

// DefaultConfig returns the safe defaults.
func DefaultConfig() Config {
	return Config{
		DataDir: "./custos-data",
		Listen:  "127.0.0.1:8443",
		Log:     LogConfig{Level: "info", Format: "json"},
		Limits: LimitsConfig{
			MaxRequestBodyBytes: 64 << 20,
			MaxHeaderBytes:      1 << 20,
		},
		Timeouts: TimeoutsConfig{
			ReadHeader: 10 * time.Second,
			Read:       5 * time.Minute,
			Write:      11 * time.Minute,
			Idle:       2 * time.Minute,
			Shutdown:   30 * time.Second,
		},
		Query: QueryConfig{
			Timeout:         3 * time.Minute,
			MaxTimeout:      10 * time.Minute,
			MaxResultRows:   500_000,
			MaxResultBytes:  64 << 20,
			MaxMemoryBytes:  2 << 30,
			ReadCacheBytes:  store.DefaultReadCacheBytes(), // an eighth of the memory, 64 MiB to 4 GiB
			BloomCacheBytes: 64 << 20,
			// No slot is withheld from queries while ingestion is busy: in
			// 30-minute idle soaks on 2 cores ingestion kept the offered rate
			// with and without the reserve, and without it queries finished
			// more often and sooner (windowed p99 14-24 s against 9-48 s in
			// the second half; bench/results/soak-2026-11-27.md). One
			// shared-machine 4-minute run without it kept only 72 % of the
			// rate (bench/results/admission-2026-11-27.md): set 1 where
			// ingestion must win under a saturating query load.
			IngestReserve: 0,
		},
		Store:    StoreConfig{MemtableBytes: 64 << 20, MemtableMaxAge: 5 * time.Minute},
		Identity: IdentityConfig{TokenLifetime: time.Hour, JustInTimeAccess: true},
	}
}

// withDefaults fills zero fields with their defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.DataDir == "" {
		c.DataDir = d.DataDir
	}
	if c.Listen == "" {
		c.Listen = d.Listen
	}
	if c.Log.Level == "" {
		c.Log.Level = d.Log.Level
	}
	if c.Log.Format == "" {
		c.Log.Format = d.Log.Format
	}
	if c.Limits.MaxRequestBodyBytes == 0 {
		c.Limits.MaxRequestBodyBytes = d.Limits.MaxRequestBodyBytes
	}
	if c.Limits.MaxHeaderBytes == 0 {
		c.Limits.MaxHeaderBytes = d.Limits.MaxHeaderBytes
	}
	t := &c.Timeouts
	for _, p := range []struct{ v, d *time.Duration }{
		{&t.ReadHeader, &d.Timeouts.ReadHeader}, {&t.Read, &d.Timeouts.Read}, {&t.Write, &d.Timeouts.Write},
		{&t.Idle, &d.Timeouts.Idle}, {&t.Shutdown, &d.Timeouts.Shutdown},
		{&c.Query.Timeout, &d.Query.Timeout}, {&c.Query.MaxTimeout, &d.Query.MaxTimeout},
		{&c.Identity.TokenLifetime, &d.Identity.TokenLifetime}, {&c.Store.MemtableMaxAge, &d.Store.MemtableMaxAge},
	} {
		if *p.v == 0 {
			*p.v = *p.d
		}
	}
	if c.Query.MaxResultRows == 0 {
		c.Query.MaxResultRows = d.Query.MaxResultRows
	}
	if c.Query.MaxResultBytes == 0 {
		c.Query.MaxResultBytes = d.Query.MaxResultBytes
	}
	if c.Query.MaxMemoryBytes == 0 {
		c.Query.MaxMemoryBytes = d.Query.MaxMemoryBytes
	}
	if c.Store.MemtableBytes == 0 {
		c.Store.MemtableBytes = d.Store.MemtableBytes
	}
	return c
}

// Validate reports the first invalid setting. It expects defaults applied.
func (c Config) Validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidConfig, key, fmt.Sprintf(format, args...))
	}
	if strings.TrimSpace(c.DataDir) == "" {
		return bad("dataDir", "must not be empty")
	}
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return bad("listen", "%q is not host:port: %v", c.Listen, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return bad("listen", "port %q is not a number from 0 to 65535", port)
	}
	if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
		return bad("listen", "host %q is neither an IP address nor a host name", host)
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil {
			return bad("endpoint", "%v", err)
		}
		if u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return bad("endpoint", "%q must be an https URL with a host and no path, query or user info", c.Endpoint)
		}
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return bad("tls", "certFile and keyFile must be set together")
	}
	for _, h := range c.TLS.Hostnames {
		if net.ParseIP(h) == nil && !validHostname(h) {
			return bad("tls.hostnames", "%q is neither an IP address nor a host name", h)
		}
	}
	if _, err := parseLevel(c.Log.Level); err != nil {
		return bad("log.level", "%v", err)
	}
	if c.Log.Format != "json" && c.Log.Format != "text" {
		return bad("log.format", "%q is not json or text", c.Log.Format)
	}
	if c.Limits.MaxRequestBodyBytes < 1024 {
		return bad("limits.maxRequestBodyBytes", "%d is below the minimum of 1024", c.Limits.MaxRequestBodyBytes)
	}
	if c.Limits.MaxHeaderBytes < 4096 || c.Limits.MaxHeaderBytes > 16<<20 {
		return bad("limits.maxHeaderBytes", "%d is outside 4096..16777216", c.Limits.MaxHeaderBytes)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"timeouts.readHeader", c.Timeouts.ReadHeader}, {"timeouts.read", c.Timeouts.Read},
		{"timeouts.write", c.Timeouts.Write}, {"timeouts.idle", c.Timeouts.Idle},
		{"timeouts.shutdown", c.Timeouts.Shutdown}, {"query.timeout", c.Query.Timeout},
		{"query.maxTimeout", c.Query.MaxTimeout},
	} {
		if d.v < 0 {
			return bad(d.key, "%v is negative", d.v)
		}
	}
	if c.Query.Timeout > c.Query.MaxTimeout {
		return bad("query.timeout", "%v exceeds query.maxTimeout %v", c.Query.Timeout, c.Query.MaxTimeout)
	}
	if c.Timeouts.Write <= c.Query.MaxTimeout {
		return bad("timeouts.write", "%v must exceed query.maxTimeout %v, or long queries lose their answers", c.Timeouts.Write, c.Query.MaxTimeout)
	}
	if c.Query.MaxResultRows < 0 || c.Query.MaxResultBytes < 0 || c.Query.MaxMemoryBytes < 0 || c.Query.ReadCacheBytes < 0 || c.Query.BloomCacheBytes < 0 ||
		c.Query.MaxWorkers < 0 || c.Query.IngestReserve < 0 {
		return bad("query", "limits must not be negative")
	}
	if c.Store.MemtableBytes < minMemtableBytes {
		return bad("store.memtableBytes", "%d is below the minimum of %d bytes", c.Store.MemtableBytes, minMemtableBytes)
	}
	if c.Store.MemtableMaxAge < time.Second || c.Store.MemtableMaxAge > 24*time.Hour {
		return bad("store.memtableMaxAge", "%v is outside 1s..24h", c.Store.MemtableMaxAge)
	}
	if c.Identity.TokenLifetime < 5*time.Minute || c.Identity.TokenLifetime > 24*time.Hour {
		return bad("identity.tokenLifetime", "%v is outside 5m..24h", c.Identity.TokenLifetime)
	}
	if err := c.validateNetwork(); err != nil {
		return err
	}
	if err := c.validateIdentity(); err != nil {
		return err
	}
	if ws := c.Activity.Workspace; ws != "" && !strings.EqualFold(ws, ActivityWorkspaceNone) && !isWorkspaceResourceID(ws) {
		return bad("activity.workspace", "%q is neither a workspace resource ID (/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.OperationalInsights/workspaces/{name}) nor %q", ws, ActivityWorkspaceNone)
	}
	return nil
}

// isWorkspaceResourceID reports whether id has the shape of a workspace
// resource ID.
func isWorkspaceResourceID(id string) bool {
	p := strings.Split(strings.TrimSuffix(id, "/"), "/")
	return len(p) == 9 && p[0] == "" && strings.EqualFold(p[1], "subscriptions") && p[2] != "" &&
		strings.EqualFold(p[3], "resourceGroups") && p[4] != "" && strings.EqualFold(p[5], "providers") &&
		strings.EqualFold(p[6], "Microsoft.OperationalInsights") && strings.EqualFold(p[7], "workspaces") && p[8] != ""
}

func validHostname(h string) bool {
	if len(h) == 0 || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("%q is not debug, info, warn or error", s)
}

// EndpointURL returns the base URL clients use: Endpoint, or
// https://localhost:<port> derived from Listen.
func (c Config) EndpointURL() string {
	if c.Endpoint != "" {
		return strings.TrimSuffix(c.Endpoint, "/")
	}
	_, port, err := net.SplitHostPort(c.Listen)
	if err != nil || port == "" {
		port = "8443"
	}
	return "https://" + net.JoinHostPort("localhost", port)
}

// insecureSettings lists the Insecure* settings that are on, for the start
// warning.
func (c Config) insecureSettings() []string {
	var on []string
	if c.InsecureMetricsWithoutAuth {
		on = append(on, "insecureMetricsWithoutAuth")
	}
	return on
}

// Setting describes one configuration setting: its YAML key, command-line
// flag, environment variable and default. Settings() is the single source of
// truth for the flags of `custos serve` and for docs/configuration.md.
type Setting struct {
	Key     string // YAML key path, e.g. "tls.certFile"; empty for --config itself
	Flag    string // flag name without dashes
	Env     string // environment variable
	Default string // default, as text
	Usage   string
	// Bool marks a true/false setting; its flag may be given without a value.
	Bool bool
	set  func(c *Config, v string) error
}

// ConfigFileSetting is the setting that names the YAML file itself.
var ConfigFileSetting = Setting{
	Flag: "config", Env: "CUSTOS_CONFIG",
	Usage: "path of a YAML configuration file (unknown keys are rejected)",
}

// Settings returns every setting except the config file itself, in
// documentation order.
func Settings() []Setting {
	d := DefaultConfig()
	str := func(p func(c *Config) *string) func(*Config, string) error {
		return func(c *Config, v string) error { *p(c) = v; return nil }
	}
	bytes := func(p func(c *Config) *int64) func(*Config, string) error {
		return func(c *Config, v string) error {
			x, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return err
			}
			*p(c) = x
			return nil
		}
	}
	dur := func(p func(c *Config) *time.Duration) func(*Config, string) error {
		return func(c *Config, v string) error {
			x, err := time.ParseDuration(v)
			if err != nil {
				return err
			}
			*p(c) = x
			return nil
		}
	}
	boolean := func(p func(c *Config) *bool) func(*Config, string) error {
		return func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return err
			}
			*p(c) = b
			return nil
		}
	}
	integer := func(p func(c *Config) *int) func(*Config, string) error {
		return func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return err
			}
			*p(c) = n
			return nil
		}
	}
	list := func(p func(c *Config) *[]string) func(*Config, string) error {
		return func(c *Config, v string) error {
			*p(c) = nil
			for _, x := range strings.Split(v, ",") {
				if x = strings.TrimSpace(x); x != "" {
					*p(c) = append(*p(c), x)
				}
			}
			return nil
		}
	}
	return []Setting{
		{Key: "dataDir", Flag: "data-dir", Env: "CUSTOS_DATA_DIR", Default: d.DataDir,
			Usage: "directory for all server state (TLS material, keys, catalog, data, admin.json)",
			set:   str(func(c *Config) *string { return &c.DataDir })},
		{Key: "listen", Flag: "listen", Env: "CUSTOS_LISTEN", Default: d.Listen,
			Usage: "host:port of the HTTPS listener",
			set:   str(func(c *Config) *string { return &c.Listen })},
		{Key: "endpoint", Flag: "endpoint", Env: "CUSTOS_ENDPOINT", Default: "https://localhost:<listen port>",
			Usage: "public base URL of the server (token issuer, admin.json endpoint)",
			set:   str(func(c *Config) *string { return &c.Endpoint })},
		{Key: "tls.certFile", Flag: "tls-cert", Env: "CUSTOS_TLS_CERT", Default: "(generated under <dataDir>/tls)",
			Usage: "PEM certificate chain to serve instead of the generated one (reloaded on SIGHUP)",
			set:   str(func(c *Config) *string { return &c.TLS.CertFile })},
		{Key: "tls.keyFile", Flag: "tls-key", Env: "CUSTOS_TLS_KEY", Default: "(generated under <dataDir>/tls)",
			Usage: "PEM private key for --tls-cert (reloaded on SIGHUP)",
			set:   str(func(c *Config) *string { return &c.TLS.KeyFile })},
		{Key: "tls.hostnames", Flag: "tls-hostnames", Env: "CUSTOS_TLS_HOSTNAMES", Default: "(none)",
			Usage: "comma-separated extra DNS names / IPs for the generated server certificate",
			set: func(c *Config, v string) error {
				c.TLS.Hostnames = nil
				for _, h := range strings.Split(v, ",") {
					if h = strings.TrimSpace(h); h != "" {
						c.TLS.Hostnames = append(c.TLS.Hostnames, h)
					}
				}
				return nil
			}},
		{Key: "log.level", Flag: "log-level", Env: "CUSTOS_LOG_LEVEL", Default: d.Log.Level,
			Usage: "log level: debug, info, warn or error",
			set:   str(func(c *Config) *string { return &c.Log.Level })},
		{Key: "log.format", Flag: "log-format", Env: "CUSTOS_LOG_FORMAT", Default: d.Log.Format,
			Usage: "log format: json or text",
			set:   str(func(c *Config) *string { return &c.Log.Format })},
		{Key: "limits.maxRequestBodyBytes", Flag: "max-request-body-bytes", Env: "CUSTOS_MAX_REQUEST_BODY_BYTES",
			Default: strconv.FormatInt(d.Limits.MaxRequestBodyBytes, 10),
			Usage:   "largest request body accepted on any endpoint, in bytes (APIs may set lower limits)",
			set:     bytes(func(c *Config) *int64 { return &c.Limits.MaxRequestBodyBytes })},
		{Key: "limits.maxHeaderBytes", Flag: "max-header-bytes", Env: "CUSTOS_MAX_HEADER_BYTES",
			Default: strconv.Itoa(d.Limits.MaxHeaderBytes),
			Usage:   "largest request header block accepted, in bytes",
			set: func(c *Config, v string) error {
				n, err := strconv.Atoi(v)
				if err != nil {
					return err
				}
				c.Limits.MaxHeaderBytes = n
				return nil
			}},
		{Key: "timeouts.readHeader", Flag: "read-header-timeout", Env: "CUSTOS_READ_HEADER_TIMEOUT", Default: d.Timeouts.ReadHeader.String(),
			Usage: "time allowed to read request headers",
			set:   dur(func(c *Config) *time.Duration { return &c.Timeouts.ReadHeader })},
		{Key: "timeouts.read", Flag: "read-timeout", Env: "CUSTOS_READ_TIMEOUT", Default: d.Timeouts.Read.String(),
			Usage: "time allowed to read a whole request",
			set:   dur(func(c *Config) *time.Duration { return &c.Timeouts.Read })},
		{Key: "timeouts.write", Flag: "write-timeout", Env: "CUSTOS_WRITE_TIMEOUT", Default: d.Timeouts.Write.String(),
			Usage: "time allowed from the end of the request headers to the end of the response",
			set:   dur(func(c *Config) *time.Duration { return &c.Timeouts.Write })},
		{Key: "timeouts.idle", Flag: "idle-timeout", Env: "CUSTOS_IDLE_TIMEOUT", Default: d.Timeouts.Idle.String(),
			Usage: "how long an idle keep-alive connection stays open",
			set:   dur(func(c *Config) *time.Duration { return &c.Timeouts.Idle })},
		{Key: "timeouts.shutdown", Flag: "shutdown-timeout", Env: "CUSTOS_SHUTDOWN_TIMEOUT", Default: d.Timeouts.Shutdown.String(),
			Usage: "how long in-flight requests may finish after SIGTERM/SIGINT",
			set:   dur(func(c *Config) *time.Duration { return &c.Timeouts.Shutdown })},
		{Key: "query.timeout", Flag: "query-timeout", Env: "CUSTOS_QUERY_TIMEOUT", Default: d.Query.Timeout.String(),
			Usage: "default server-side timeout of a KQL query",
			set:   dur(func(c *Config) *time.Duration { return &c.Query.Timeout })},
		{Key: "query.maxTimeout", Flag: "query-max-timeout", Env: "CUSTOS_QUERY_MAX_TIMEOUT", Default: d.Query.MaxTimeout.String(),
			Usage: "longest query timeout a request may ask for (Prefer: wait=)",
			set:   dur(func(c *Config) *time.Duration { return &c.Query.MaxTimeout })},
		{Key: "query.maxResultRows", Flag: "query-max-result-rows", Env: "CUSTOS_QUERY_MAX_RESULT_ROWS", Default: strconv.Itoa(d.Query.MaxResultRows),
			Usage: "most rows a query may return",
			set: func(c *Config, v string) error {
				n, err := strconv.Atoi(v)
				c.Query.MaxResultRows = n
				return err
			}},
		{Key: "query.maxResultBytes", Flag: "query-max-result-bytes", Env: "CUSTOS_QUERY_MAX_RESULT_BYTES", Default: strconv.FormatInt(d.Query.MaxResultBytes, 10),
			Usage: "largest result a query may return, in bytes",
			set:   bytes(func(c *Config) *int64 { return &c.Query.MaxResultBytes })},
		{Key: "query.maxMemoryBytes", Flag: "query-max-memory-bytes", Env: "CUSTOS_QUERY_MAX_MEMORY_BYTES", Default: strconv.FormatInt(d.Query.MaxMemoryBytes, 10),
			Usage: "working memory one query may hold in sorts, aggregations and intermediate results, in bytes",
			set:   bytes(func(c *Config) *int64 { return &c.Query.MaxMemoryBytes })},
		{Key: "query.readCacheBytes", Flag: "query-read-cache-bytes", Env: "CUSTOS_QUERY_READ_CACHE_BYTES", Default: "an eighth of the memory (cgroup limit), 64 MiB to 4 GiB: " + strconv.FormatInt(d.Query.ReadCacheBytes, 10) + " here",
			Usage: "memory for decoded chunks of narrow columns that queries re-read, outside the Go heap, in bytes; 0 turns the cache off",
			set:   bytes(func(c *Config) *int64 { return &c.Query.ReadCacheBytes })},
		{Key: "query.bloomCacheBytes", Flag: "query-bloom-cache-bytes", Env: "CUSTOS_QUERY_BLOOM_CACHE_BYTES", Default: strconv.FormatInt(d.Query.BloomCacheBytes, 10),
			Usage: "memory for the parts' token bloom filters that term searches read, outside the Go heap, in bytes; 0 keeps none (every search reads them from the files)",
			set:   bytes(func(c *Config) *int64 { return &c.Query.BloomCacheBytes })},
		{Key: "query.maxWorkers", Flag: "query-max-workers", Env: "CUSTOS_QUERY_MAX_WORKERS", Default: "0 (GOMAXPROCS)",
			Usage: "query worker slots shared by all queries: goroutines decoding blocks or processing batches for queries at once; 0 means GOMAXPROCS",
			set:   integer(func(c *Config) *int { return &c.Query.MaxWorkers })},
		{Key: "query.ingestReserve", Flag: "query-ingest-reserve", Env: "CUSTOS_QUERY_INGEST_RESERVE", Default: strconv.Itoa(d.Query.IngestReserve),
			Usage: "query worker slots left to ingestion while ingestion requests are served (never the last slot); 0: none",
			set:   integer(func(c *Config) *int { return &c.Query.IngestReserve })},
		{Key: "store.memtableBytes", Flag: "store-memtable-bytes", Env: "CUSTOS_STORE_MEMTABLE_BYTES", Default: strconv.FormatInt(d.Store.MemtableBytes, 10),
			Usage: "bytes of a workspace's newest rows held in memory (and in the WAL) before they are written out as parts; at least 65536",
			set:   bytes(func(c *Config) *int64 { return &c.Store.MemtableBytes })},
		{Key: "store.memtableMaxAge", Flag: "store-memtable-max-age", Env: "CUSTOS_STORE_MEMTABLE_MAX_AGE", Default: d.Store.MemtableMaxAge.String(),
			Usage: "how long a workspace's newest rows may stay in memory (and in the WAL) before they are written out as a part however few they are (1s to 24h)",
			set:   dur(func(c *Config) *time.Duration { return &c.Store.MemtableMaxAge })},
		{Key: "identity.tokenLifetime", Flag: "token-lifetime", Env: "CUSTOS_TOKEN_LIFETIME", Default: d.Identity.TokenLifetime.String(),
			Usage: "lifetime of access tokens issued by the built-in token service (5m to 24h)",
			set:   dur(func(c *Config) *time.Duration { return &c.Identity.TokenLifetime })},
		{Key: "identity.externalIssuers", Flag: "external-issuers", Env: "CUSTOS_EXTERNAL_ISSUERS", Default: "(none)",
			Usage: "comma-separated trusted OIDC issuers, each https://issuer;audience=A[;tenant=T][;caFile=F][;objectIdClaim=C][;upnClaim=C][;groupsClaim=C][;portalClientId=ID[;portalClientSecretFile=F][;portalName=N]]",
			set:   setExternalIssuers},
		{Key: "identity.justInTimeAccess", Flag: "just-in-time-access", Env: "CUSTOS_JUST_IN_TIME_ACCESS", Default: "true",
			Usage: "root-scope role assignments grant no log data access and nobody grants themselves data access; administrators request time-bound access per workspace (false: a root Owner reads everything)", Bool: true,
			set: boolean(func(c *Config) *bool { return &c.Identity.JustInTimeAccess })},
		{Key: "activity.file", Flag: "activity-file", Env: "CUSTOS_ACTIVITY_FILE", Default: "(none)",
			Usage: "also append every activity log record as a JSON line to this file (0600)",
			set:   str(func(c *Config) *string { return &c.Activity.File })},
		{Key: "activity.workspace", Flag: "activity-workspace", Env: "CUSTOS_ACTIVITY_WORKSPACE", Default: "(the default workspace)",
			Usage: "workspace resource ID whose AzureActivity table receives the activity log, or none",
			set:   str(func(c *Config) *string { return &c.Activity.Workspace })},
		{Key: "listeners", Flag: "listeners", Env: "CUSTOS_LISTENERS", Default: "(none)",
			Usage: "comma-separated extra HTTPS listeners, each host:port[;private][;clientCAFile=path]",
			set:   setListeners},
		{Key: "privateNetworks", Flag: "private-networks", Env: "CUSTOS_PRIVATE_NETWORKS", Default: "(none)",
			Usage: "comma-separated CIDRs whose clients are private on every listener (source address only)",
			set:   setPrivateNetworks},
		{Key: "alerts.webhookCAFile", Flag: "alerts-webhook-ca-file", Env: "CUSTOS_ALERTS_WEBHOOK_CA_FILE", Default: "(system roots only)",
			Usage: "PEM bundle trusted for HTTPS alert webhooks in addition to the system roots",
			set:   str(func(c *Config) *string { return &c.Alerts.WebhookCAFile })},
		{Key: "alerts.insecureAllowHTTPWebhooks", Flag: "alerts-insecure-allow-http-webhooks", Env: "CUSTOS_ALERTS_INSECURE_ALLOW_HTTP_WEBHOOKS", Default: "false",
			Usage: "INSECURE: allow plain-HTTP alert webhooks to hosts other than loopback", Bool: true,
			set: boolean(func(c *Config) *bool { return &c.Alerts.InsecureAllowHTTPWebhooks })},
		{Key: "alerts.concurrency", Flag: "alerts-concurrency", Env: "CUSTOS_ALERTS_CONCURRENCY", Default: "8",
			Usage: "rule evaluations and notification deliveries run at once",
			set:   integer(func(c *Config) *int { return &c.Alerts.Concurrency })},
		{Key: "alerts.smtp.host", Flag: "alerts-smtp-host", Env: "CUSTOS_ALERTS_SMTP_HOST", Default: "(none: email disabled)",
			Usage: "SMTP server for email receivers",
			set:   str(func(c *Config) *string { return &c.Alerts.SMTP.Host })},
		{Key: "alerts.smtp.port", Flag: "alerts-smtp-port", Env: "CUSTOS_ALERTS_SMTP_PORT", Default: "(587 for starttls, 465 for tls)",
			Usage: "SMTP server port",
			set:   integer(func(c *Config) *int { return &c.Alerts.SMTP.Port })},
		{Key: "alerts.smtp.security", Flag: "alerts-smtp-security", Env: "CUSTOS_ALERTS_SMTP_SECURITY", Default: "starttls",
			Usage: "starttls, tls, or insecure-none (loopback only)",
			set:   str(func(c *Config) *string { return &c.Alerts.SMTP.Security })},
		{Key: "alerts.smtp.username", Flag: "alerts-smtp-username", Env: "CUSTOS_ALERTS_SMTP_USERNAME", Default: "(none)",
			Usage: "SMTP user name",
			set:   str(func(c *Config) *string { return &c.Alerts.SMTP.Username })},
		{Key: "alerts.smtp.passwordFile", Flag: "alerts-smtp-password-file", Env: "CUSTOS_ALERTS_SMTP_PASSWORD_FILE", Default: "(none)",
			Usage: "file holding the SMTP password (never the password itself)",
			set:   str(func(c *Config) *string { return &c.Alerts.SMTP.PasswordFile })},
		{Key: "alerts.smtp.from", Flag: "alerts-smtp-from", Env: "CUSTOS_ALERTS_SMTP_FROM", Default: "(none)",
			Usage: "sender address of alert emails",
			set:   str(func(c *Config) *string { return &c.Alerts.SMTP.From })},
		{Key: "alerts.smtp.caFile", Flag: "alerts-smtp-ca-file", Env: "CUSTOS_ALERTS_SMTP_CA_FILE", Default: "(system roots only)",
			Usage: "PEM bundle trusted for the SMTP server in addition to the system roots",
			set:   str(func(c *Config) *string { return &c.Alerts.SMTP.CAFile })},
		{Key: "keys.cacheTTL", Flag: "keys-cache-ttl", Env: "CUSTOS_KEYS_CACHE_TTL", Default: "1h0m0s",
			Usage: "how long an unwrapped workspace key is trusted before its customer key is asked again",
			set:   dur(func(c *Config) *time.Duration { return &c.Keys.CacheTTL })},
		{Key: "keys.retryInterval", Flag: "keys-retry-interval", Env: "CUSTOS_KEYS_RETRY_INTERVAL", Default: "min(10s, keys.cacheTTL)",
			Usage: "how often a refusing customer key is asked again while requests arrive",
			set:   dur(func(c *Config) *time.Duration { return &c.Keys.RetryInterval })},
		{Key: "keys.fileKeyDir", Flag: "keys-file-key-dir", Env: "CUSTOS_KEYS_FILE_KEY_DIR", Default: "(none: file keys disabled)",
			Usage: "the only directory clusters may take file keys from",
			set:   str(func(c *Config) *string { return &c.Keys.FileKeyDir })},
		{Key: "keys.pkcs11Modules", Flag: "keys-pkcs11-modules", Env: "CUSTOS_KEYS_PKCS11_MODULES", Default: "(none: PKCS#11 disabled)",
			Usage: "comma-separated PKCS#11 libraries clusters may name (pkcs11 builds only)",
			set:   list(func(c *Config) *[]string { return &c.Keys.PKCS11Modules })},
		{Key: "keys.insecureTransitHTTP", Flag: "keys-insecure-transit-http", Env: "CUSTOS_KEYS_INSECURE_TRANSIT_HTTP", Default: "false",
			Usage: "INSECURE: allow plain-HTTP Vault/OpenBao Transit addresses", Bool: true,
			set: boolean(func(c *Config) *bool { return &c.Keys.InsecureTransitHTTP })},
		{Key: "export.allowedDirectories", Flag: "export-allowed-directories", Env: "CUSTOS_EXPORT_ALLOWED_DIRECTORIES", Default: "(none: directory destinations refused)",
			Usage: "comma-separated directories under which data export rules may write (file:// destinations)",
			set:   list(func(c *Config) *[]string { return &c.Export.AllowedDirectories })},
		{Key: "export.flushInterval", Flag: "export-flush-interval", Env: "CUSTOS_EXPORT_FLUSH_INTERVAL", Default: "1m0s",
			Usage: "how often data export rules write the rows ingested since their last file",
			set:   dur(func(c *Config) *time.Duration { return &c.Export.FlushInterval })},
		{Key: "export.s3CAFile", Flag: "export-s3-ca-file", Env: "CUSTOS_EXPORT_S3_CA_FILE", Default: "(system roots only)",
			Usage: "PEM bundle trusted for S3 export endpoints in addition to the system roots",
			set:   str(func(c *Config) *string { return &c.Export.S3CAFile })},
		{Key: "export.insecureS3HTTP", Flag: "export-insecure-s3-http", Env: "CUSTOS_EXPORT_INSECURE_S3_HTTP", Default: "false",
			Usage: "INSECURE: allow plain-HTTP S3 endpoints for data export", Bool: true,
			set: boolean(func(c *Config) *bool { return &c.Export.InsecureS3HTTP })},
		{Key: "insecureMetricsWithoutAuth", Flag: "insecure-metrics-without-auth", Env: "CUSTOS_INSECURE_METRICS_WITHOUT_AUTH", Default: "false",
			Usage: "INSECURE: serve /metrics without authentication", Bool: true,
			set: boolean(func(c *Config) *bool { return &c.InsecureMetricsWithoutAuth })},
	}
}

// LoadOptions are the sources of LoadConfig, lowest precedence first.
type LoadOptions struct {
	// File is a YAML configuration file; empty for none.
	File string
	// Env looks up an environment variable (os.LookupEnv when nil).
	Env func(key string) (string, bool)
	// Flags maps flag names (Setting.Flag) to the values given on the
	// command line; only flags the user set belong here.
	Flags map[string]string
}

// LoadConfig builds the configuration: defaults, then the YAML file, then
// CUSTOS_* environment variables, then flags; then validates it and makes
// DataDir absolute.
func LoadConfig(o LoadOptions) (Config, error) {
	cfg := DefaultConfig()
	if o.File != "" {
		data, err := os.ReadFile(o.File)
		if err != nil {
			return Config{}, fmt.Errorf("read config file: %w", err)
		}
		if err := decodeYAMLStrict(data, &cfg); err != nil {
			return Config{}, fmt.Errorf("%w: config file %s: %v", ErrInvalidConfig, o.File, err)
		}
	}
	env := o.Env
	if env == nil {
		env = os.LookupEnv
	}
	settings := Settings()
	for _, s := range settings {
		if v, ok := env(s.Env); ok && v != "" {
			if err := s.set(&cfg, v); err != nil {
				return Config{}, fmt.Errorf("%w: %s=%q: %v", ErrInvalidConfig, s.Env, v, err)
			}
		}
	}
	known := make(map[string]bool, len(settings))
	for _, s := range settings {
		known[s.Flag] = true
		if v, ok := o.Flags[s.Flag]; ok {
			if err := s.set(&cfg, v); err != nil {
				return Config{}, fmt.Errorf("%w: --%s=%q: %v", ErrInvalidConfig, s.Flag, v, err)
			}
		}
	}
	for f := range o.Flags {
		if !known[f] {
			return Config{}, fmt.Errorf("%w: unknown flag --%s", ErrInvalidConfig, f)
		}
	}
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return Config{}, fmt.Errorf("resolve data directory: %w", err)
	}
	cfg.DataDir = abs
	return cfg, nil
}

// decodeYAMLStrict decodes one YAML document, rejecting unknown keys and
// further documents. An empty file leaves cfg unchanged.
func decodeYAMLStrict(data []byte, cfg *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("more than one YAML document")
	}
	return nil
}

// NewLogger returns the server's logger as configured, writing to w.
func (c Config) NewLogger(w io.Writer) (*slog.Logger, error) {
	lvl, err := parseLevel(c.Log.Level)
	if err != nil {
		return nil, fmt.Errorf("%w: log.level: %v", ErrInvalidConfig, err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch c.Log.Format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json", "":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("%w: log.format %q", ErrInvalidConfig, c.Log.Format)
}
