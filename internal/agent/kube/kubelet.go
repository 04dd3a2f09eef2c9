package kube

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Summary is the kubelet's GET /stats/summary response. The field names and
// JSON tags follow k8s.io/kubelet/pkg/apis/stats/v1alpha1 (types.go:
// Summary, NodeStats, PodStats, ContainerStats, CPUStats, MemoryStats,
// NetworkStats, FsStats, VolumeStats); only the fields we map are declared,
// and unknown fields are ignored because the kubelet adds fields over time.
type Summary struct {
	Node NodeStats  `json:"node"`
	Pods []PodStats `json:"pods"`
}

// NodeStats is v1alpha1.NodeStats (subset).
type NodeStats struct {
	NodeName  string        `json:"nodeName"`
	StartTime time.Time     `json:"startTime"`
	CPU       *CPUStats     `json:"cpu,omitempty"`
	Memory    *MemoryStats  `json:"memory,omitempty"`
	Network   *NetworkStats `json:"network,omitempty"`
	Fs        *FsStats      `json:"fs,omitempty"`
}

// PodReference is v1alpha1.PodReference.
type PodReference struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	UID       string `json:"uid"`
}

// PodStats is v1alpha1.PodStats (subset).
type PodStats struct {
	PodRef     PodReference     `json:"podRef"`
	StartTime  time.Time        `json:"startTime"`
	Containers []ContainerStats `json:"containers"`
	Volumes    []VolumeStats    `json:"volume,omitempty"`
}

// ContainerStats is v1alpha1.ContainerStats (subset).
type ContainerStats struct {
	Name      string       `json:"name"`
	StartTime time.Time    `json:"startTime"`
	CPU       *CPUStats    `json:"cpu,omitempty"`
	Memory    *MemoryStats `json:"memory,omitempty"`
}

// CPUStats is v1alpha1.CPUStats.
type CPUStats struct {
	Time                 time.Time `json:"time"`
	UsageNanoCores       *uint64   `json:"usageNanoCores,omitempty"`
	UsageCoreNanoSeconds *uint64   `json:"usageCoreNanoSeconds,omitempty"`
}

// MemoryStats is v1alpha1.MemoryStats (subset).
type MemoryStats struct {
	Time            time.Time `json:"time"`
	AvailableBytes  *uint64   `json:"availableBytes,omitempty"`
	UsageBytes      *uint64   `json:"usageBytes,omitempty"`
	WorkingSetBytes *uint64   `json:"workingSetBytes,omitempty"`
	RSSBytes        *uint64   `json:"rssBytes,omitempty"`
}

// NetworkStats is v1alpha1.NetworkStats: the default interface's counters inline.
type NetworkStats struct {
	Time    time.Time `json:"time"`
	Name    string    `json:"name"`
	RxBytes *uint64   `json:"rxBytes,omitempty"`
	TxBytes *uint64   `json:"txBytes,omitempty"`
}

// FsStats is v1alpha1.FsStats (subset).
type FsStats struct {
	Time           time.Time `json:"time"`
	AvailableBytes *uint64   `json:"availableBytes,omitempty"`
	CapacityBytes  *uint64   `json:"capacityBytes,omitempty"`
	UsedBytes      *uint64   `json:"usedBytes,omitempty"`
}

// PVCReference is v1alpha1.PVCReference.
type PVCReference struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
}

// VolumeStats is v1alpha1.VolumeStats: FsStats inline plus the volume name
// and, for persistent volumes, the claim.
type VolumeStats struct {
	FsStats
	Name   string        `json:"name"`
	PVCRef *PVCReference `json:"pvcRef,omitempty"`
}

// Kubelet client defaults.
const (
	DefaultKubeletTimeout  = 10 * time.Second
	DefaultTokenFile       = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	DefaultCAFile          = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
	maxSummaryBytes        = 64 << 20
	maxTokenBytes          = 64 << 10
	kubeletSummaryEndpoint = "/stats/summary"
)

// ErrKubeletStatus is returned (wrapped) when the kubelet answers with a
// non-200 status, for example 401/403 when the ServiceAccount lacks
// nodes/stats.
var ErrKubeletStatus = errors.New("kubelet returned an error status")

// KubeletOptions configure a KubeletClient.
type KubeletOptions struct {
	// URL is the kubelet's base URL, https://<node IP>:10250; required, https only.
	URL string
	// TokenFile holds the ServiceAccount bearer token; it is re-read on every
	// request because projected tokens rotate. "" → DefaultTokenFile.
	TokenFile string
	// CAFile verifies the kubelet's serving certificate. "" → DefaultCAFile.
	CAFile string
	// InsecureSkipTLSVerify accepts any kubelet certificate (kubelets with
	// self-signed serving certificates). Off by default; logs a warning.
	InsecureSkipTLSVerify bool
	Timeout               time.Duration // 0 → DefaultKubeletTimeout
	Logger                *slog.Logger
}

// KubeletClient reads /stats/summary from one kubelet. Safe for concurrent use.
type KubeletClient struct {
	url       string
	tokenFile string
	hc        *http.Client
}

// NewKubeletClient checks opts, loads the CA file and returns a client that
// speaks TLS 1.2 or later.
func NewKubeletClient(opts KubeletOptions) (*KubeletClient, error) {
	u, err := url.Parse(opts.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("kubelet URL %q: want https://host:port", opts.URL)
	}
	if opts.TokenFile == "" {
		opts.TokenFile = DefaultTokenFile
	}
	if opts.CAFile == "" {
		opts.CAFile = DefaultCAFile
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultKubeletTimeout
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if opts.InsecureSkipTLSVerify {
		lg.Warn("kubelet TLS certificate verification is disabled", slog.String("kubelet_url", opts.URL))
		tc.InsecureSkipVerify = true // explicitly requested: the kubelet is not authenticated
	} else {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kubelet CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kubelet CA %s: no PEM certificates", opts.CAFile)
		}
		tc.RootCAs = pool
	}
	tr := &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true, MaxIdleConns: 2, IdleConnTimeout: time.Minute,
		TLSHandshakeTimeout: opts.Timeout, ResponseHeaderTimeout: opts.Timeout}
	return &KubeletClient{url: strings.TrimSuffix(u.String(), "/"), tokenFile: opts.TokenFile,
		hc: &http.Client{Transport: tr, Timeout: opts.Timeout}}, nil
}

func (c *KubeletClient) token() (string, error) {
	f, err := os.Open(c.tokenFile)
	if err != nil {
		return "", fmt.Errorf("kubelet token: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTokenBytes+1))
	if err != nil {
		return "", fmt.Errorf("kubelet token: %w", err)
	}
	if len(b) > maxTokenBytes {
		return "", fmt.Errorf("kubelet token %s: longer than %d bytes", c.tokenFile, maxTokenBytes)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("kubelet token %s: empty", c.tokenFile)
	}
	return tok, nil
}

// Summary fetches and decodes /stats/summary.
func (c *KubeletClient) Summary(ctx context.Context) (*Summary, error) {
	tok, err := c.token()
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url+kubeletSummaryEndpoint, nil)
	if err != nil {
		return nil, fmt.Errorf("kubelet summary: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("kubelet summary: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("kubelet summary: %s: %w", resp.Status, ErrKubeletStatus)
	}
	return DecodeSummary(io.LimitReader(resp.Body, maxSummaryBytes))
}

// DecodeSummary decodes a /stats/summary JSON document.
func DecodeSummary(r io.Reader) (*Summary, error) {
	var s Summary
	if err := json.NewDecoder(r).Decode(&s); err != nil {
		return nil, fmt.Errorf("decode kubelet summary: %w", err)
	}
	if s.Node.NodeName == "" {
		return nil, errors.New("decode kubelet summary: no node.nodeName")
	}
	return &s, nil
}

// Close releases idle connections.
func (c *KubeletClient) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}
