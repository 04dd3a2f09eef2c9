package alert

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"custos/internal/arm"
	"custos/internal/catalog"
	"custos/internal/identity"
)

// Webhook headers Custos adds to every notification POST.
const (
	// HeaderSignature carries "v1=" + hex(HMAC-SHA256(secret, timestamp + "." + body)).
	HeaderSignature = "X-Custos-Signature"
	// HeaderTimestamp is the Unix time (seconds) the signature was made at.
	HeaderTimestamp = "X-Custos-Timestamp"
	// HeaderIdempotencyKey is the notification's ID: the same for every
	// retry and redelivery of one notification.
	HeaderIdempotencyKey = "Idempotency-Key"
)

// Errors of VerifySignature.
var (
	ErrBadSignature   = errors.New("alert: webhook signature does not match")
	ErrStaleSignature = errors.New("alert: webhook signature timestamp outside the replay window")
)

// Sign returns the HeaderSignature value for body signed at ts.
func Sign(secret []byte, ts time.Time, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strconv.FormatInt(ts.Unix(), 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature checks a webhook's HeaderSignature and HeaderTimestamp
// values for body: the HMAC must match (compared in constant time) and the
// timestamp must be within window of now (DefaultReplayWindow when 0).
// Receivers should also remember Idempotency-Key values for the window to
// refuse exact replays.
func VerifySignature(secret []byte, signature, timestamp string, body []byte, now time.Time, window time.Duration) error {
	if window <= 0 {
		window = DefaultReplayWindow
	}
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return ErrStaleSignature
	}
	ts := time.Unix(sec, 0)
	if d := now.Sub(ts); d > window || d < -window {
		return ErrStaleSignature
	}
	want := Sign(secret, ts, body)
	if subtle.ConstantTimeCompare([]byte(want), []byte(strings.TrimSpace(signature))) != 1 {
		return ErrBadSignature
	}
	return nil
}

func newWebhookTransport(roots *x509.CertPool) *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots},
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: DefaultSendTimeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       60 * time.Second,
		ForceAttemptHTTP2:     true,
	}
}

func (s *Service) deliverLoop(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		if err := s.DeliverDue(ctx); err != nil && ctx.Err() == nil {
			s.log.LogAttrs(ctx, slog.LevelWarn, "deliver alert notifications", slog.Any("error", err))
		}
		wait := s.opts.PollInterval
		if t, ok, err := s.cat.NextNotificationDue(ctx); err == nil && ok {
			if d := t.Sub(s.now()); d < wait {
				wait = max(d, 10*time.Millisecond)
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-s.wakeDeliver:
		}
	}
}

// DeliverDue makes one attempt at every notification that is due at the
// service's clock and records each attempt. It returns after all attempts
// finished.
func (s *Service) DeliverDue(ctx context.Context) error {
	// Bounded, so that notifications whose attempts cannot be recorded
	// (a catalog failure) do not keep one call busy forever.
	for round := 0; round < 20; round++ {
		due, err := s.cat.DueNotifications(ctx, s.now(), defaultDeliveryBatch)
		if err != nil {
			return err
		}
		if len(due) == 0 {
			return nil
		}
		var wg sync.WaitGroup
		for _, n := range due {
			if err := s.acquire(ctx); err != nil {
				wg.Wait()
				return err
			}
			wg.Add(1)
			go func(n catalog.Notification) {
				defer wg.Done()
				defer s.release()
				s.deliverOne(ctx, n)
			}(n)
		}
		wg.Wait()
		if len(due) < defaultDeliveryBatch {
			return nil
		}
	}
	return nil
}

// attemptResult is the outcome of one delivery attempt.
type attemptResult struct {
	target    string
	status    int
	err       error
	retryable bool
	paused    bool
	endpoint  string // webhook endpoint key, for pausing
}

func (s *Service) deliverOne(ctx context.Context, n catalog.Notification) {
	started := s.now()
	res := s.attempt(ctx, n)
	if ctx.Err() != nil && res.err != nil {
		return // shutting down: the notification stays pending
	}
	a := catalog.DeliveryAttempt{NotificationID: n.ID, Attempt: n.Attempts + 1, At: started, Target: res.target,
		StatusCode: res.status, Duration: s.now().Sub(started)}
	status, next := catalog.NotificationSucceeded, started
	switch {
	case res.err == nil:
		a.Outcome = "Succeeded"
		s.stats.deliveries.Add(1)
	case res.paused:
		a.Outcome, a.Error, status = "Paused", res.err.Error(), catalog.NotificationFailed
		s.stats.deliveryFailures.Add(1)
	case res.retryable && n.Attempts < len(s.opts.Webhook.RetryDelays):
		a.Outcome, a.Error, status = "Retry", res.err.Error(), catalog.NotificationPending
		next = s.now().Add(s.opts.Webhook.RetryDelays[n.Attempts])
	default:
		a.Outcome, a.Error, status = "Failed", res.err.Error(), catalog.NotificationFailed
		s.stats.deliveryFailures.Add(1)
		if res.retryable && res.endpoint != "" {
			until := s.now().Add(s.opts.Webhook.PausePeriod)
			if err := s.cat.PauseEndpoint(ctx, res.endpoint, until); err != nil {
				s.log.LogAttrs(ctx, slog.LevelError, "pause webhook endpoint", slog.Any("error", err))
			}
			s.log.LogAttrs(ctx, slog.LevelWarn, "webhook endpoint paused after exhausted retries",
				slog.String("endpoint", res.endpoint), slog.Time("until", until))
		}
	}
	if err := s.cat.RecordDeliveryAttempt(ctx, a, status, next); err != nil {
		s.log.LogAttrs(ctx, slog.LevelError, "record delivery attempt", slog.String("notification_id", n.ID), slog.Any("error", err))
		return
	}
	lvl := slog.LevelDebug
	if status == catalog.NotificationFailed {
		lvl = slog.LevelWarn
	}
	s.log.LogAttrs(ctx, lvl, "alert notification attempt", slog.String("notification_id", n.ID),
		slog.String("alert_id", n.AlertID), slog.String("receiver", n.Receiver), slog.String("target", res.target),
		slog.String("outcome", a.Outcome), slog.Int("status_code", res.status), slog.String("error", a.Error))
}

// attempt delivers n once.
func (s *Service) attempt(ctx context.Context, n catalog.Notification) attemptResult {
	res, err := s.cat.AlertResourceByID(ctx, n.ActionGroupID)
	if err != nil {
		return attemptResult{err: fmt.Errorf("action group %s: %w", n.ActionGroupID, err)}
	}
	g, err := parseActionGroup(&res)
	if err != nil {
		return attemptResult{err: err}
	}
	switch n.ReceiverType {
	case receiverWebhook:
		for _, w := range g.Props.WebhookReceivers {
			if w.Name == n.Receiver {
				return s.sendWebhook(ctx, &res, g, &w, n)
			}
		}
	case receiverEmail:
		for _, e := range g.Props.EmailReceivers {
			if e.Name == n.Receiver {
				return s.sendEmail(ctx, g, &e, n)
			}
		}
	}
	return attemptResult{err: fmt.Errorf("receiver %q is no longer in action group %s", n.Receiver, g.Name)}
}

// isLoopbackHost reports whether host names the local machine.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (s *Service) sendWebhook(ctx context.Context, res *catalog.AlertResource, g *actionGroup, w *webhookReceiver, n catalog.Notification) attemptResult {
	u, err := url.Parse(w.ServiceURI)
	if err != nil {
		return attemptResult{err: fmt.Errorf("webhook url: %w", err)}
	}
	out := attemptResult{target: redactURL(u), endpoint: endpointKey(u)}
	if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) && !s.opts.Webhook.InsecureAllowHTTP {
		out.err = fmt.Errorf("%w: plain-HTTP webhook %s refused; use HTTPS (or allow insecure HTTP webhooks in the configuration)", ErrDelivery, out.target)
		return out
	}
	if until, err := s.cat.EndpointPausedUntil(ctx, out.endpoint); err != nil {
		out.err = err
		return out
	} else if s.now().Before(until) {
		out.err, out.paused = fmt.Errorf("%w: endpoint %s is paused until %s after failed retries", ErrDelivery, out.endpoint, arm.WireTime(until)), true
		return out
	}
	sealed, err := s.cat.AlertSecret(ctx, res.ID(), w.Name)
	if err != nil {
		out.err = fmt.Errorf("%w: signing secret of receiver %s: %v", ErrDelivery, w.Name, err)
		return out
	}
	secret, err := s.opts.Sealer.Open(sealed, secretAAD(res.ID(), w.Name))
	if err != nil {
		out.err = fmt.Errorf("%w: open signing secret of receiver %s: %v", ErrDelivery, w.Name, err)
		return out
	}
	defer clear(secret)
	body, err := s.openPayload(ctx, n.Payload, n.AlertID)
	if err != nil {
		out.err = fmt.Errorf("%w: %v", ErrDelivery, err)
		return out
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		out.err = err
		return out
	}
	now := s.now()
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "Custos-Alerts/1.0")
	req.Header.Set(HeaderIdempotencyKey, n.ID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(HeaderSignature, Sign(secret, now, body))
	if w.UseAadAuth {
		tok, err := s.webhookToken(ctx, res, w)
		if err != nil {
			out.err = fmt.Errorf("%w: secure webhook token: %v", ErrDelivery, err)
			return out
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		out.err, out.retryable = fmt.Errorf("%w: %v", ErrDelivery, scrubURLError(err)), true
		return out
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	out.status = resp.StatusCode
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests,
		resp.StatusCode == http.StatusServiceUnavailable, resp.StatusCode == http.StatusGatewayTimeout:
		out.err, out.retryable = fmt.Errorf("%w: webhook answered %d", ErrDelivery, resp.StatusCode), true
	default:
		out.err = fmt.Errorf("%w: webhook answered %d", ErrDelivery, resp.StatusCode)
	}
	return out
}

// scrubURLError drops the URL (which may hold credentials or tokens in its
// query) from an HTTP client error.
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// webhookToken issues the bearer token of a secure webhook: a token of the
// action group's notifier application for the receiver's identifierUri.
func (s *Service) webhookToken(ctx context.Context, res *catalog.AlertResource, w *webhookReceiver) (string, error) {
	if s.opts.Tokens == nil {
		return "", errors.New("no token service is configured")
	}
	aud := strings.TrimRight(strings.TrimSpace(w.IdentifierURI), "/")
	for _, own := range []string{identity.AudienceManagement, identity.AudienceIngestion, identity.AudienceQuery} {
		if strings.EqualFold(aud, own) {
			// Such a token would let the receiver call Custos as the notifier.
			return "", fmt.Errorf("identifierUri %q is an audience of Custos's own APIs; refusing to send a token for it to a webhook", w.IdentifierURI)
		}
	}
	var id ruleIdentity
	if len(res.Identity) == 0 || json.Unmarshal(res.Identity, &id) != nil || id.PrincipalID == "" {
		return "", errors.New("the action group has no notifier application; update the action group to create one")
	}
	sp := identity.ServicePrincipal{TenantID: id.TenantID, ObjectID: id.PrincipalID, AppID: id.AppID,
		DisplayName: "Custos alert notifications (" + res.Name + ")"}
	if ext, ok := s.opts.Tokens.(ExternalTokenIssuer); ok {
		tok, _, err := ext.IssueExternalToken(ctx, sp, w.IdentifierURI)
		return tok, err
	}
	tok, _, err := s.opts.Tokens.IssueToken(ctx, sp, w.IdentifierURI)
	return tok, err
}
