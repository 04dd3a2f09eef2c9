package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is custos-agent's local configuration (one YAML file). Zero values
// mean the documented safe defaults; see DefaultConfig and docs/agent.md.
type Config struct {
	// Endpoint is the Custos server's base URL (https only). Tokens and
	// ingestion both go there.
	Endpoint string `yaml:"endpoint"`
	// CAFile is a PEM bundle trusted instead of the system roots ("" → system roots).
	CAFile string `yaml:"caFile"`
	// IdentityDir holds the enrolled machine identity (machine.key and
	// identity.json, written by `custos-agent enroll`); "" → <stateDir>/identity.
	// When it holds an identity, the agent authenticates as the machine's
	// managed identity and fetches the rules associated with the machine.
	IdentityDir string `yaml:"identityDir"`
	// CredentialsFile holds client credentials (JSON with tenantId, clientId,
	// clientSecret; Custos's admin.json also fits), used only when the
	// machine is not enrolled.
	CredentialsFile string `yaml:"credentialsFile"`
	// ResourceID is the machine's ARM resource ID, sent as _ResourceId with
	// every record; "" → the enrolled machine's resource ID.
	ResourceID string `yaml:"resourceId"`
	// Computer overrides the host name reported in Computer columns.
	Computer string `yaml:"computer"`
	// StateDir holds the queue, checkpoints, status file and agent ID.
	StateDir string `yaml:"stateDir"`
	Buffer   struct {
		Dir      string `yaml:"dir"`      // "" → <stateDir>/queue
		MaxBytes int64  `yaml:"maxBytes"` // 0 → 256 MiB
	} `yaml:"buffer"`
	// Proxy is an HTTP(S) proxy URL for all requests; "environment" uses
	// HTTPS_PROXY/NO_PROXY; "" connects directly.
	Proxy string `yaml:"proxy"`
	DCR   struct {
		// Dir holds data collection rule JSON files (as the ARM API returns
		// them), re-read every PollInterval; applied in addition to the rules
		// an enrolled machine fetches from Custos.
		Dir          string        `yaml:"dir"`
		PollInterval time.Duration `yaml:"pollInterval"` // 0 → 30s
	} `yaml:"dcr"`
	Syslog struct {
		UDP       string `yaml:"udp"`       // "" → 127.0.0.1:28330; "off" disables
		TCP       string `yaml:"tcp"`       // "" → 127.0.0.1:28330; "off" disables
		Unix      string `yaml:"unix"`      // datagram socket path; "" → none
		QueueSize int    `yaml:"queueSize"` // messages between socket and batcher; 0 → 20000
	} `yaml:"syslog"`
	Files struct {
		PollInterval  time.Duration `yaml:"pollInterval"`  // 0 → 1s
		ReadFromStart bool          `yaml:"readFromStart"` // first start reads existing files whole
	} `yaml:"files"`
	Delivery struct {
		MinBackoff    time.Duration `yaml:"minBackoff"`    // 0 → 1s
		MaxBackoff    time.Duration `yaml:"maxBackoff"`    // 0 → 60s
		Timeout       time.Duration `yaml:"timeout"`       // per request; 0 → 60s
		FlushInterval time.Duration `yaml:"flushInterval"` // syslog batches; 0 → 2s
	} `yaml:"delivery"`
	HeartbeatInterval time.Duration `yaml:"heartbeatInterval"` // 0 → 60s
	Metrics           struct {
		Listen string `yaml:"listen"` // loopback host:port; "" → no endpoint
	} `yaml:"metrics"`
	LogLevel string `yaml:"logLevel"` // debug, info (default), warn, error
	// Kubernetes turns on the container log and kubelet metrics collectors
	// of a DaemonSet pod (docs/containers.md). What is collected and where it
	// goes comes from a data collection rule's ContainerInsights extension.
	Kubernetes KubeConfig `yaml:"kubernetes"`
}

// KubeConfig is the kubernetes section of the configuration. The filter and
// interval settings are defaults: a rule's ContainerInsights extension
// (dataCollectionSettings) takes precedence for what it sets.
type KubeConfig struct {
	Enabled bool `yaml:"enabled"`
	// LogRoot is the kubelet's log directory: /var/log/pods (files
	// <ns>_<pod>_<uid>/<container>/<n>.log) or /var/log/containers
	// (<pod>_<ns>_<container>-<id>.log). "" → /var/log/pods.
	LogRoot string `yaml:"logRoot"`
	// KubeletURL is the kubelet's https base URL; "" → https://$NODE_IP:10250.
	KubeletURL string `yaml:"kubeletURL"`
	// TokenFile and CAFile authenticate to and verify the kubelet; "" → the
	// pod's ServiceAccount token and CA.
	TokenFile             string `yaml:"tokenFile"`
	CAFile                string `yaml:"caFile"`
	InsecureSkipTLSVerify bool   `yaml:"insecureSkipTLSVerify"`
	// ClusterResourceID is the cluster's ARM resource ID: _ResourceId of
	// every record and the InstanceName prefix of Perf rows. Required.
	ClusterResourceID string `yaml:"clusterResourceId"`
	ClusterName       string `yaml:"clusterName"` // "" → last segment of ClusterResourceID
	// NodeName is the Computer of the records; "" → $NODE_NAME, then computer.
	NodeName string `yaml:"nodeName"`
	// Interval between kubelet scrapes; 0 → 60s.
	Interval time.Duration `yaml:"interval"`
	// NamespaceFilteringMode (Off, Include, Exclude) and Namespaces filter
	// container logs.
	NamespaceFilteringMode string   `yaml:"namespaceFilteringMode"`
	Namespaces             []string `yaml:"namespaces"`
	// CollectEnvVars must stay false: container environment variables are
	// collected only when a rule's ContainerInsights extension sets
	// dataCollectionSettings.collectEnvironmentVariables, and true here is
	// refused rather than silently ignored.
	CollectEnvVars bool `yaml:"collectEnvVars"`
	// Role is "node" (the DaemonSet: container logs, kubelet metrics, audit
	// files; default) or "cluster" (the single-replica Deployment:
	// inventory, events and Prometheus scraping through the API server).
	Role string `yaml:"role"`
	// APIServerURL is the API server's https URL; "" → in-cluster
	// ($KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT). It is
	// authenticated with TokenFile and verified with CAFile.
	APIServerURL string `yaml:"apiServerURL"`
	// DisablePodMetadata stops a node agent from watching its node's pods
	// on the API server. Without that watch, container logs carry no
	// KubernetesMetadata and the fluentbit.io/exclude opt-out annotation
	// cannot be honoured (a warning says so at every start).
	DisablePodMetadata bool `yaml:"disablePodMetadata"`
	// AuditLogPaths are globs of the API server's audit log files (JSON
	// lines, --audit-log-format=json) read into KubeAudit when a rule's
	// ContainerInsights extension lists Microsoft-KubeAudit; rotation by
	// rename is followed, with checkpoints.
	AuditLogPaths []string `yaml:"auditLogPaths"`
	// AuditPodName fills KubeAudit.PodName (the API server pod); "" → the node name.
	AuditPodName string `yaml:"auditPodName"`
	// LogCollection holds Container insights' per-stream settings
	// (ConfigMap [log_collection_settings.stdout] and .stderr: enabled,
	// exclude_namespaces), applied to container logs after the namespace
	// filter.
	LogCollection struct {
		Stdout KubeStreamConfig `yaml:"stdout"`
		Stderr KubeStreamConfig `yaml:"stderr"`
	} `yaml:"logCollection"`
}

// KubeStreamConfig is the collection setting of one container log stream.
type KubeStreamConfig struct {
	// Enabled turns the stream's collection on or off; unset → on.
	Enabled *bool `yaml:"enabled"`
	// ExcludeNamespaces are namespaces whose lines of this stream are not
	// collected (only meaningful while the stream is enabled).
	ExcludeNamespaces []string `yaml:"excludeNamespaces"`
}

// On reports whether the stream is collected.
func (s KubeStreamConfig) On() bool { return s.Enabled == nil || *s.Enabled }

// namespaceName is a Kubernetes namespace name (an RFC 1123 label).
var namespaceName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// validateStream reports the problems of one stream's settings.
func validateStream(name string, s KubeStreamConfig, bad func(string, ...any)) {
	seen := map[string]bool{}
	for _, ns := range s.ExcludeNamespaces {
		switch {
		case len(ns) > 63 || !namespaceName.MatchString(ns):
			bad("kubernetes.logCollection.%s.excludeNamespaces: %q is not a namespace name (lowercase letters, digits and '-', at most 63, starting and ending with a letter or digit)", name, ns)
		case seen[ns]:
			bad("kubernetes.logCollection.%s.excludeNamespaces lists %q twice", name, ns)
		}
		seen[ns] = true
	}
	if !s.On() && len(s.ExcludeNamespaces) > 0 {
		bad("kubernetes.logCollection.%s: excludeNamespaces has no effect while enabled is false; remove one of them", name)
	}
}

// Kubernetes defaults.
const (
	DefaultKubeLogRoot     = "/var/log/pods"
	DefaultKubeletPort     = "10250"
	DefaultKubeletInterval = time.Minute
	KubeRoleNode           = "node"
	KubeRoleCluster        = "cluster"
)

// DefaultStateDir is where state lives when stateDir is not set.
const DefaultStateDir = "/var/lib/custos-agent"

// Defaults.
const (
	DefaultSyslogAddr     = "127.0.0.1:28330"
	DefaultSyslogQueue    = 20000
	DefaultBufferMaxBytes = 256 << 20
)

// ParseConfig decodes YAML strictly (unknown keys are errors), applies
// defaults and validates.
func ParseConfig(data []byte) (Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("decode configuration: %w", err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return Config{}, errors.New("decode configuration: more than one YAML document")
	}
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// LoadConfig reads and parses a configuration file. Relative paths in it
// are resolved against the file's directory.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read configuration: %w", err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	base := filepath.Dir(path)
	for _, p := range []*string{&c.CAFile, &c.CredentialsFile, &c.IdentityDir, &c.StateDir, &c.Buffer.Dir, &c.DCR.Dir, &c.Syslog.Unix,
		&c.Kubernetes.LogRoot, &c.Kubernetes.TokenFile, &c.Kubernetes.CAFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	return c, nil
}

func (c *Config) applyDefaults() {
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if c.Buffer.MaxBytes == 0 {
		c.Buffer.MaxBytes = DefaultBufferMaxBytes
	}
	if c.DCR.PollInterval == 0 {
		c.DCR.PollInterval = 30 * time.Second
	}
	if c.Syslog.UDP == "" {
		c.Syslog.UDP = DefaultSyslogAddr
	}
	if c.Syslog.TCP == "" {
		c.Syslog.TCP = DefaultSyslogAddr
	}
	if c.Syslog.QueueSize == 0 {
		c.Syslog.QueueSize = DefaultSyslogQueue
	}
	if c.Files.PollInterval == 0 {
		c.Files.PollInterval = time.Second
	}
	if c.Delivery.MinBackoff == 0 {
		c.Delivery.MinBackoff = time.Second
	}
	if c.Delivery.MaxBackoff == 0 {
		c.Delivery.MaxBackoff = time.Minute
	}
	if c.Delivery.Timeout == 0 {
		c.Delivery.Timeout = time.Minute
	}
	if c.Delivery.FlushInterval == 0 {
		c.Delivery.FlushInterval = 2 * time.Second
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = time.Minute
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if k := &c.Kubernetes; k.Enabled {
		if k.LogRoot == "" {
			k.LogRoot = DefaultKubeLogRoot
		}
		if k.Interval == 0 {
			k.Interval = DefaultKubeletInterval
		}
		if k.NamespaceFilteringMode == "" {
			k.NamespaceFilteringMode = "Off"
		}
		if k.Role == "" {
			k.Role = KubeRoleNode
		}
		if k.ClusterName == "" && k.ClusterResourceID != "" {
			k.ClusterName = k.ClusterResourceID[strings.LastIndexByte(k.ClusterResourceID, '/')+1:]
		}
	}
}

// QueueDir returns the buffer directory.
func (c *Config) QueueDir() string {
	if c.Buffer.Dir != "" {
		return c.Buffer.Dir
	}
	return filepath.Join(c.StateDir, "queue")
}

// IdentityPath returns the directory of the enrolled machine identity.
func (c *Config) IdentityPath() string {
	if c.IdentityDir != "" {
		return c.IdentityDir
	}
	return filepath.Join(c.StateDir, "identity")
}

// StatusPath returns the path of the status file that `custos-agent status` reads.
func (c *Config) StatusPath() string { return filepath.Join(c.StateDir, "status.json") }

// Validate checks the configuration after defaults are applied.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	u, err := url.Parse(c.Endpoint)
	switch {
	case c.Endpoint == "":
		bad("endpoint is required (the Custos server's https:// URL)")
	case err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "":
		bad("endpoint %q is not a valid base URL", c.Endpoint)
	case u.Scheme != "https":
		bad("endpoint %q must use https; plain HTTP is never allowed", c.Endpoint)
	}

	if c.ResourceID != "" && !strings.HasPrefix(c.ResourceID, "/subscriptions/") {
		bad("resourceId %q must be an ARM resource ID (/subscriptions/...)", c.ResourceID)
	}
	if c.Buffer.MaxBytes < 4<<20 {
		bad("buffer.maxBytes must be at least 4 MiB")
	}
	if c.DCR.PollInterval < 100*time.Millisecond {
		bad("dcr.pollInterval must be at least 100ms")
	}
	if c.Files.PollInterval < 10*time.Millisecond {
		bad("files.pollInterval must be at least 10ms")
	}
	if c.HeartbeatInterval < 100*time.Millisecond {
		bad("heartbeatInterval must be at least 100ms")
	}
	if c.Delivery.MinBackoff <= 0 || c.Delivery.MaxBackoff < c.Delivery.MinBackoff {
		bad("delivery.minBackoff must be positive and not above delivery.maxBackoff")
	}
	if c.Delivery.Timeout < time.Second || c.Delivery.FlushInterval < 10*time.Millisecond {
		bad("delivery.timeout must be at least 1s and delivery.flushInterval at least 10ms")
	}
	if c.Syslog.QueueSize < 1 || c.Syslog.QueueSize > 10_000_000 {
		bad("syslog.queueSize must be between 1 and 10000000")
	}
	for name, addr := range map[string]string{"syslog.udp": c.Syslog.UDP, "syslog.tcp": c.Syslog.TCP} {
		if addr == "off" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad("%s %q is not host:port", name, addr)
		}
	}
	if c.Metrics.Listen != "" {
		host, _, err := net.SplitHostPort(c.Metrics.Listen)
		ip := net.ParseIP(host)
		if err != nil || !(host == "localhost" || ip != nil && ip.IsLoopback()) {
			bad("metrics.listen %q must be a loopback host:port (the endpoint has no authentication)", c.Metrics.Listen)
		}
	}
	if c.Proxy != "" && c.Proxy != "environment" {
		if pu, err := url.Parse(c.Proxy); err != nil || pu.Host == "" || (pu.Scheme != "http" && pu.Scheme != "https") {
			bad("proxy %q must be an http:// or https:// URL, or \"environment\"", c.Proxy)
		}
	}
	if k := c.Kubernetes; k.Enabled {
		switch {
		case k.ClusterResourceID != "" && (!strings.HasPrefix(k.ClusterResourceID, "/subscriptions/") || strings.Count(k.ClusterResourceID, "/") < 8):
			bad("kubernetes.clusterResourceId %q must be the cluster's ARM resource ID (/subscriptions/.../providers/Microsoft.Kubernetes/connectedClusters/<name>)", k.ClusterResourceID)
		}
		if base := filepath.ToSlash(filepath.Clean(k.LogRoot)); !strings.HasSuffix(base, "/log/pods") && !strings.HasSuffix(base, "/log/containers") {
			bad("kubernetes.logRoot %q must be the kubelet's log directory (…/log/pods or …/log/containers)", k.LogRoot)
		}
		if k.KubeletURL != "" {
			if u, err := url.Parse(k.KubeletURL); err != nil || u.Scheme != "https" || u.Host == "" {
				bad("kubernetes.kubeletURL %q must be an https:// URL", k.KubeletURL)
			}
		}
		if k.Interval < time.Second {
			bad("kubernetes.interval must be at least 1s")
		}
		switch k.NamespaceFilteringMode {
		case "Off", "Include", "Exclude":
		default:
			bad("kubernetes.namespaceFilteringMode %q must be Off, Include or Exclude", k.NamespaceFilteringMode)
		}
		if k.CollectEnvVars {
			bad("kubernetes.collectEnvVars: container environment variables hold secrets and are collected only when the rule's ContainerInsights extension sets dataCollectionSettings.collectEnvironmentVariables; remove the setting")
		}
		if k.Role != KubeRoleNode && k.Role != KubeRoleCluster {
			bad("kubernetes.role %q must be node (DaemonSet) or cluster (Deployment)", k.Role)
		}
		if k.APIServerURL != "" {
			if u, err := url.Parse(k.APIServerURL); err != nil || u.Scheme != "https" || u.Host == "" {
				bad("kubernetes.apiServerURL %q must be an https:// URL", k.APIServerURL)
			}
		}
		validateStream("stdout", k.LogCollection.Stdout, bad)
		validateStream("stderr", k.LogCollection.Stderr, bad)
	} else if k.CollectEnvVars {
		bad("kubernetes.collectEnvVars: custos-agent does not collect container environment variables; remove the setting")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("logLevel %q must be debug, info, warn or error", c.LogLevel)
	}
	return errors.Join(errs...)
}
