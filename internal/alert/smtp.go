package alert

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/smtp"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"custos/internal/catalog"
)

// sendEmail delivers one notification to an email receiver through the
// configured SMTP server.
func (s *Service) sendEmail(ctx context.Context, g *actionGroup, e *emailReceiver, n catalog.Notification) attemptResult {
	out := attemptResult{target: e.EmailAddress}
	o := &s.opts.SMTP
	if o.Host == "" {
		out.err = fmt.Errorf("%w: no SMTP server is configured for email notifications", ErrDelivery)
		return out
	}
	plain, err := s.openPayload(ctx, n.Payload, n.AlertID)
	if err != nil {
		out.err = fmt.Errorf("%w: %v", ErrDelivery, err)
		return out
	}
	n.Payload = plain
	msg, err := s.emailMessage(g, e, n)
	if err != nil {
		out.err = err
		return out
	}
	if err := s.smtpSend(ctx, e.EmailAddress, msg); err != nil {
		out.err = fmt.Errorf("%w: %v", ErrDelivery, err)
		var tp *textproto.Error
		switch {
		case errors.As(err, &tp):
			out.status = tp.Code
			out.retryable = tp.Code >= 400 && tp.Code < 500 // transient SMTP failures
		default:
			var ne net.Error
			out.retryable = errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded)
		}
		return out
	}
	out.status = 250
	return out
}

// emailMessage renders the notification as a plain-text email. With
// useCommonAlertSchema the common alert schema JSON is attached inline.
func (s *Service) emailMessage(g *actionGroup, e *emailReceiver, n catalog.Notification) ([]byte, error) {
	var p CommonAlertSchema
	if err := json.Unmarshal(n.Payload, &p); err != nil {
		return nil, fmt.Errorf("decode notification payload: %w", err)
	}
	es := &p.Data.Essentials
	subject := fmt.Sprintf("%s:%s Azure Monitor Alert %s on %s", es.MonitorCondition, es.Severity, es.AlertRule, strings.Join(es.ConfigurationItems, ", "))
	var b strings.Builder
	hdr := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	hdr("From", s.opts.SMTP.From)
	hdr("To", e.EmailAddress)
	hdr("Subject", mime.QEncoding.Encode("utf-8", subject))
	hdr("Date", s.now().UTC().Format(time.RFC1123Z))
	hdr("Message-ID", "<"+n.ID+"@custos.alerts>")
	hdr(HeaderIdempotencyKey, n.ID)
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=utf-8")
	hdr("Content-Transfer-Encoding", "8bit")
	b.WriteString("\r\n")
	fmt.Fprintf(&b, "Alert rule: %s\r\nSeverity: %s\r\nMonitor condition: %s\r\nFired: %s\r\n", es.AlertRule, es.Severity, es.MonitorCondition, es.FiredDateTime)
	if es.ResolvedDateTime != "" {
		fmt.Fprintf(&b, "Resolved: %s\r\n", es.ResolvedDateTime)
	}
	fmt.Fprintf(&b, "Targets: %s\r\nAction group: %s\r\n", strings.Join(es.AlertTargetIDs, ", "), g.Name)
	if c := p.Data.AlertContext.Condition; len(c.AllOf) > 0 {
		it := c.AllOf[0]
		fmt.Fprintf(&b, "Window: %s to %s\r\nQuery: %s\r\nCondition: %s(%s) %s %s; value %v\r\n",
			c.WindowStartTime, c.WindowEndTime, it.SearchQuery, it.TimeAggregation, it.MetricMeasureColumn, it.Operator, it.Threshold, it.MetricValue)
		for _, d := range it.Dimensions {
			fmt.Fprintf(&b, "Dimension %s = %s\r\n", d.Name, d.Value)
		}
		if it.LinkToSearchResultsAPI != "" {
			fmt.Fprintf(&b, "Search results: %s\r\n", it.LinkToSearchResultsAPI)
		}
	}
	if m := p.Data.AlertContext.Metric; m != nil {
		fmt.Fprintf(&b, "Window: %s to %s\r\n", m.Condition.WindowStartTime, m.Condition.WindowEndTime)
		for _, it := range m.Condition.AllOf {
			v := "no data"
			if it.MetricValue != nil {
				v = strconv.FormatFloat(*it.MetricValue, 'g', -1, 64)
			}
			fmt.Fprintf(&b, "Condition: %s(%s/%s) %s %s; value %s\r\n", it.TimeAggregation, it.MetricNamespace, it.MetricName, it.Operator, it.Threshold, v)
			for _, d := range it.Dimensions {
				fmt.Fprintf(&b, "Dimension %s = %s\r\n", d.Name, d.Value)
			}
		}
	}
	if a := p.Data.AlertContext.Activity; a != nil {
		fmt.Fprintf(&b, "Operation: %s\r\nStatus: %s\r\nCaller: %s\r\nResource: %s\r\nEvent time: %s\r\n",
			a.OperationName, a.Status, a.Caller, a.Authorization.Scope, a.EventTimestamp)
	}
	if e.UseCommonAlertSchema {
		b.WriteString("\r\nCommon alert schema:\r\n")
		pretty, err := json.MarshalIndent(p, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("encode payload: %w", err)
		}
		b.WriteString(strings.ReplaceAll(string(pretty), "\n", "\r\n"))
		b.WriteString("\r\n")
	}
	// Dot-stuffing is done by net/smtp's data writer.
	return []byte(b.String()), nil
}

// smtpSend sends msg to one recipient with STARTTLS, implicit TLS or (to
// loopback only) plain text, authenticating when a username is set.
func (s *Service) smtpSend(ctx context.Context, to string, msg []byte) error {
	o := &s.opts.SMTP
	port := o.Port
	if port == 0 {
		port = 587
		if o.Security == "tls" {
			port = 465
		}
	}
	addr := net.JoinHostPort(o.Host, strconv.Itoa(port))
	if o.Security == "insecure-none" && !isLoopbackHost(o.Host) {
		return fmt.Errorf("plain-text SMTP to %s refused: only a loopback server may be used without TLS", addr)
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	tcfg := &tls.Config{ServerName: o.Host, RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12}
	d := &net.Dialer{}
	var conn net.Conn
	var err error
	if o.Security == "tls" {
		conn, err = (&tls.Dialer{NetDialer: d, Config: tcfg}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	c, err := smtp.NewClient(conn, o.Host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp greeting from %s: %w", addr, err)
	}
	defer c.Close()
	if err := c.Hello("custos"); err != nil {
		return fmt.Errorf("smtp hello: %w", err)
	}
	if o.Security == "starttls" {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return fmt.Errorf("smtp server %s does not offer STARTTLS", addr)
		}
		if err := c.StartTLS(tcfg); err != nil {
			return fmt.Errorf("smtp starttls: %w", err)
		}
	}
	if o.Username != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return fmt.Errorf("smtp server %s does not offer AUTH", addr)
		}
		if err := c.Auth(smtp.PlainAuth("", o.Username, string(o.Password), o.Host)); err != nil {
			return fmt.Errorf("smtp auth: %w", err)
		}
	}
	if err := c.Mail(o.From); err != nil {
		return fmt.Errorf("smtp mail from: %w", err)
	}
	if err := c.Rcpt(to); err != nil {
		return fmt.Errorf("smtp rcpt to: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp data: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("smtp data: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp data: %w", err)
	}
	return c.Quit()
}
