package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// IngestionAPIVersion is the Logs Ingestion API version the agent speaks.
const IngestionAPIVersion = "2023-01-01"

// NewHTTPClient returns the agent's HTTP client: TLS 1.2 or later with
// certificate verification always on, trusting caFile (PEM) when given or the
// system roots otherwise, and the configured proxy.
func NewHTTPClient(caFile, proxy string, timeout time.Duration) (*http.Client, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", caFile)
		}
		tlsCfg.RootCAs = pool
	}
	tr := &http.Transport{
		TLSClientConfig:       tlsCfg,
		ForceAttemptHTTP2:     true,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
	}
	switch proxy {
	case "":
	case "environment":
		tr.Proxy = http.ProxyFromEnvironment
	default:
		u, err := url.Parse(proxy)
		if err != nil {
			return nil, fmt.Errorf("proxy: %w", err)
		}
		tr.Proxy = http.ProxyURL(u)
	}
	return &http.Client{Transport: tr, Timeout: timeout}, nil
}

// outcome classifies one delivery attempt.
type outcome int

const (
	sent       outcome = iota // 204: acknowledge
	retry                     // 429, 5xx, network: keep and retry later
	retryAuth                 // 401/403: keep; the token or the grant may change
	deadLetter                // 400, 404, 413: will never succeed
)

// sendResult is what one POST produced.
type sendResult struct {
	outcome    outcome
	status     int
	retryAfter time.Duration
	code       string // Azure error code (x-ms-error-code or envelope)
	message    string
}

// sender posts gzip batches to the Logs Ingestion API.
type sender struct {
	endpoint string
	client   *http.Client
	tokens   TokenSource
}

// send posts one gzip-compressed JSON array to a DCR stream.
func (s *sender) send(ctx context.Context, immutableID, stream string, gz []byte) (sendResult, error) {
	tok, err := s.tokens.Token(ctx)
	if err != nil {
		if errors.Is(err, ErrAuth) {
			return sendResult{outcome: retryAuth, message: err.Error()}, err
		}
		return sendResult{outcome: retry, message: err.Error()}, err
	}
	u := s.endpoint + "/dataCollectionRules/" + url.PathEscape(immutableID) + "/streams/" + url.PathEscape(stream) + "?api-version=" + IngestionAPIVersion
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(gz))
	if err != nil {
		return sendResult{outcome: deadLetter, message: err.Error()}, err
	}
	req.Header.Set("Authorization", "Bearer "+string(tok))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("x-ms-client-request-id", newRequestID())
	req.Header.Set("User-Agent", "custos-agent/"+Version)
	resp, err := s.client.Do(req)
	if err != nil {
		return sendResult{outcome: retry, message: err.Error()}, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	r := sendResult{status: resp.StatusCode, code: resp.Header.Get("x-ms-error-code")}
	var env struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &env) == nil {
		if r.code == "" {
			r.code = env.Error.Code
		}
		r.message = firstLine(env.Error.Message)
	}
	switch {
	case resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusOK:
		r.outcome = sent
		return r, nil
	case resp.StatusCode == http.StatusUnauthorized:
		s.tokens.Invalidate()
		r.outcome = retryAuth
	case resp.StatusCode == http.StatusForbidden:
		r.outcome = retryAuth
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout:
		r.outcome = retry
		r.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	default:
		r.outcome = deadLetter
	}
	return r, fmt.Errorf("ingestion answered %d %s: %s", r.status, r.code, r.message)
}

// parseRetryAfter reads delta-seconds or an HTTP date; bounded to 10 minutes.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		d = time.Duration(max(n, 0)) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), 10*time.Minute)
}

func newRequestID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return ""
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
