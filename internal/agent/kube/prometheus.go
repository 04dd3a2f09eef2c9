package kube

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"sort"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// PrometheusNamespace is InsightsMetrics.Namespace of scraped metrics.
const PrometheusNamespace = "prometheus"

// Scrape limits: a target's response body and its number of samples. A
// larger body is an error (nothing of it is kept), more samples are cut.
const (
	DefaultMaxScrapeBytes   = 10 << 20
	DefaultMaxScrapeSamples = 50000
)

// ScrapeOptions configure a Scraper.
type ScrapeOptions struct {
	// Timeout of one scrape; 0 → 10s.
	Timeout time.Duration
	// MaxBytes and MaxSamples bound one target; 0 → the defaults.
	MaxBytes   int64
	MaxSamples int
	// InsecureSkipTLSVerify skips verification of https targets (pods
	// usually serve self-signed certificates, and are addressed by IP).
	// Off by default: https targets must then present a certificate valid
	// for the IP from a CA in RootCAs.
	InsecureSkipTLSVerify bool
	// RootCAs verify https targets; nil → the system pool. LoadCAPool
	// adds a CA bundle (the cluster's CA) to the system pool.
	RootCAs *x509.CertPool
}

// LoadCAPool returns the system CA pool plus the PEM certificates of file
// (for example the ServiceAccount's ca.crt, the cluster CA that signs
// in-cluster serving certificates). A file without a certificate is an
// error.
func LoadCAPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("prometheus CA bundle: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("prometheus CA bundle %s: no PEM certificate", file)
	}
	return pool, nil
}

// Scraper reads Prometheus exposition-format endpoints. Safe for
// concurrent use.
type Scraper struct {
	o      ScrapeOptions
	client *http.Client
}

// NewScraper returns a Scraper.
func NewScraper(o ScrapeOptions) *Scraper {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxScrapeBytes
	}
	if o.MaxSamples <= 0 {
		o.MaxSamples = DefaultMaxScrapeSamples
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: o.RootCAs, InsecureSkipVerify: o.InsecureSkipTLSVerify}, //nolint:gosec // opt-in, logged by the caller
		MaxIdleConnsPerHost: 1, IdleConnTimeout: 90 * time.Second, ResponseHeaderTimeout: o.Timeout}
	return &Scraper{o: o, client: &http.Client{Transport: tr, Timeout: o.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// Close releases idle connections.
func (s *Scraper) Close() { s.client.CloseIdleConnections() }

// ErrScrapeTooLarge is returned for a response larger than MaxBytes.
var ErrScrapeTooLarge = errors.New("scrape response too large")

// Scrape reads url and returns its samples: counters, gauges and untyped
// metrics under their names, summaries and histograms flattened the
// Prometheus way (name{quantile=…}, name_sum, name_count, name_bucket{le=…}).
// truncated reports that MaxSamples cut the list.
func (s *Scraper) Scrape(ctx context.Context, url string) (samples model.Vector, truncated bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, false, fmt.Errorf("scrape %s: %w", url, err)
	}
	req.Header.Set("Accept", string(expfmt.FmtProtoDelim)+";q=0.5,"+string(expfmt.FmtText)+";q=0.4")
	req.Header.Set("User-Agent", "custos-agent")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, false, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, false, fmt.Errorf("scrape %s: HTTP %d", url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, s.o.MaxBytes+1))
	if err != nil {
		return nil, false, fmt.Errorf("scrape %s: %w", url, err)
	}
	if int64(len(body)) > s.o.MaxBytes {
		return nil, false, fmt.Errorf("scrape %s: %w (over %d bytes)", url, ErrScrapeTooLarge, s.o.MaxBytes)
	}
	return ParseExposition(body, resp.Header, time.Now(), s.o.MaxSamples)
}

// ParseExposition decodes a scrape body (Prometheus text format, or
// delimited protobuf when the header says so) into samples stamped now
// unless the sample carries its own timestamp; at most maxSamples.
func ParseExposition(body []byte, h http.Header, now time.Time, maxSamples int) (model.Vector, bool, error) {
	format := expfmt.ResponseFormat(h)
	if format == expfmt.FmtUnknown {
		format = expfmt.FmtText
	}
	dec := expfmt.NewDecoder(bytes.NewReader(body), format)
	opts := &expfmt.DecodeOptions{Timestamp: model.TimeFromUnixNano(now.UnixNano())}
	var out model.Vector
	for {
		var mf dto.MetricFamily
		if err := dec.Decode(&mf); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, false, fmt.Errorf("exposition format: %w", err)
		}
		v, err := expfmt.ExtractSamples(opts, &mf)
		if err != nil {
			return nil, false, fmt.Errorf("exposition format: %w", err)
		}
		out = append(out, v...)
		if maxSamples > 0 && len(out) > maxSamples {
			sortSamples(out)
			return out[:maxSamples], true, nil
		}
	}
	sortSamples(out)
	return out, false, nil
}

func sortSamples(v model.Vector) {
	sort.SliceStable(v, func(i, j int) bool { return v[i].Metric.Before(v[j].Metric) })
}

// PrometheusRows maps samples to InsightsMetrics rows: Namespace
// "prometheus", Name the metric name, Val the value (NaN and ±Inf are
// skipped: the column is a real and JSON cannot carry them), Tags the
// sample's labels plus the target's tags as a JSON object, Computer and
// _ResourceId as given.
func PrometheusRows(samples model.Vector, targetTags map[string]string, computer, resourceID string) []InsightsMetrics {
	out := make([]InsightsMetrics, 0, len(samples))
	for _, s := range samples {
		v := float64(s.Value)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		tags := make(map[string]string, len(s.Metric)+len(targetTags))
		for k, v := range targetTags {
			tags[k] = v
		}
		for k, v := range s.Metric {
			if k != model.MetricNameLabel {
				tags[string(k)] = string(v)
			}
		}
		b, _ := json.Marshal(tags) // map[string]string always marshals
		out = append(out, InsightsMetrics{TimeGenerated: s.Timestamp.Time().UTC(), Computer: computer, Origin: "container.azm.ms/telegraf",
			Namespace: PrometheusNamespace, Name: string(s.Metric[model.MetricNameLabel]), Val: v, Tags: string(b),
			SourceSystem: "Insights", ResourceID: resourceID})
	}
	return out
}
