package activity

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"custos/internal/api"
	"custos/internal/identity"
	"custos/internal/rbac"
)

// maxBodyCapture bounds how much of a request body is kept to extract the
// changed properties.
const maxBodyCapture = 64 << 10

type reqMetaKey struct{}

// reqMeta is what Middleware learns about a request for later records.
type reqMeta struct {
	remoteIP string
	method   string
	path     string
	handled  bool // a wrapped route or the auditing authorizer recorded it
}

func metaFrom(ctx context.Context) *reqMeta {
	m, _ := ctx.Value(reqMetaKey{}).(*reqMeta)
	return m
}

func remoteIP(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// statusWriter records the response status.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// isTokenPath reports whether path is the token endpoint
// (/{tenant}/oauth2/v2.0/token or /{tenant}/oauth2/token).
func isTokenPath(path string) bool {
	p := strings.ToLower(path)
	return strings.HasSuffix(p, "/oauth2/v2.0/token") || strings.HasSuffix(p, "/oauth2/token")
}

// Middleware must wrap the server's whole handler, inside the layer that
// sets the correlation ID. It remembers the caller's address for records
// made further in, and records sign-in failures: any 401 answer, and any
// failed token request (4xx from the token endpoint).
func (l *Log) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := &reqMeta{remoteIP: remoteIP(r.RemoteAddr), method: r.Method, path: r.URL.Path}
		r = r.WithContext(context.WithValue(r.Context(), reqMetaKey{}, m))
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if m.handled {
			return
		}
		tokenFail := isTokenPath(r.URL.Path) && sw.status >= 400 && sw.status < 500 && sw.status != http.StatusTooManyRequests
		if sw.status != http.StatusUnauthorized && !tokenFail {
			return
		}
		rec := Record{
			OperationName: OperationSignInFailure, Category: CategorySecurity, Level: LevelWarning,
			Status: StatusFailed, SubStatus: http.StatusText(sw.status), HTTPStatus: sw.status,
			CallerIPAddress: m.remoteIP, CorrelationID: api.CorrelationIDFrom(r.Context()),
			ResourceID: r.URL.Path, Method: r.Method,
		}
		if tokenFail {
			// client_id is not a secret; the form was parsed by the token
			// handler (or is absent).
			if r.PostForm != nil {
				if id := r.PostForm.Get("client_id"); id != "" && len(id) <= 128 {
					rec.Caller = id
					rec.CallerType = "ServicePrincipal"
				}
			}
		}
		if _, err := l.Record(r.Context(), rec); err != nil {
			l.log.LogAttrs(r.Context(), slog.LevelError, "activity record failed", slog.Any("error", err))
		}
	})
}

// captureBody tees up to maxBodyCapture bytes of what the handler reads.
type captureBody struct {
	io.ReadCloser
	buf bytes.Buffer
}

func (c *captureBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	if room := maxBodyCapture - c.buf.Len(); room > 0 && n > 0 {
		c.buf.Write(p[:min(n, room)])
	}
	return n, err
}

func callerOf(p identity.Principal) (id, typ, name string) {
	id = p.ObjectID
	if id == "" {
		id = p.AppID
	}
	return id, string(p.Kind), p.Name
}

// WrapRoutes returns routes whose mutating handlers (PUT, PATCH, POST,
// DELETE) record an activity entry after they answer: operation name = the
// route's RBAC action, the scope, status and HTTP status, the caller, its
// address, the correlation ID and the changed properties of the request body
// (secrets removed). After a successful Microsoft.Authorization write,
// Options.OnAuthorizationChange is called. Reads are not recorded.
func (l *Log) WrapRoutes(routes []api.Route) []api.Route {
	out := make([]api.Route, len(routes))
	copy(out, routes)
	for i := range out {
		rt := &out[i]
		switch rt.Method {
		case http.MethodPut, http.MethodPatch, http.MethodPost, http.MethodDelete:
		default:
			continue
		}
		next, act, scopeOf := rt.Handler, rt.Action, rt.Scope
		authz := strings.HasPrefix(strings.ToLower(string(act)), "microsoft.authorization/")
		rt.Handler = func(w http.ResponseWriter, r *http.Request, d rbac.Decision) {
			var body *captureBody
			if r.Body != nil && r.Body != http.NoBody {
				body = &captureBody{ReadCloser: r.Body}
				r.Body = body
			}
			sw := &statusWriter{ResponseWriter: w}
			next(sw, r, d)
			if sw.status == 0 {
				sw.status = http.StatusOK
			}
			rec := Record{
				OperationName: string(act), Category: CategoryAdministrative, HTTPStatus: sw.status, Method: r.Method,
				CorrelationID: api.CorrelationIDFrom(r.Context()), ResourceID: r.URL.Path, Action: string(act),
				Status: StatusSucceeded,
			}
			if scopeOf != nil {
				rec.ResourceID = string(scopeOf(r))
			}
			if sw.status >= 400 {
				rec.Status, rec.SubStatus = StatusFailed, http.StatusText(sw.status)
			}
			if p, ok := api.PrincipalFrom(r.Context()); ok {
				rec.Caller, rec.CallerType, rec.CallerName = callerOf(p)
			}
			if m := metaFrom(r.Context()); m != nil {
				rec.CallerIPAddress = m.remoteIP
				m.handled = true
			} else {
				rec.CallerIPAddress = remoteIP(r.RemoteAddr)
			}
			if body != nil {
				rec.Properties = ChangedProperties(body.buf.Bytes())
			}
			if _, err := l.Record(r.Context(), rec); err != nil {
				l.log.LogAttrs(r.Context(), slog.LevelError, "activity record failed", slog.Any("error", err))
			}
			if authz && sw.status < 300 && l.onAuthz != nil {
				l.onAuthz()
			}
		}
	}
	return out
}

// Authorizer is what AuditAuthorizer wraps. *rbac.Authorizer implements it.
type Authorizer interface {
	Authorize(ctx context.Context, p identity.Principal, act rbac.Action, scope rbac.Scope) (rbac.Decision, error)
}

// AuditingAuthorizer records every denied authorization, then answers as
// the authorizer it wraps. It is safe for concurrent use.
type AuditingAuthorizer struct {
	inner Authorizer
	log   *Log
}

// AuditAuthorizer wraps inner so that denials are recorded (category
// Security, status Failed, HTTP status 403, the action and scope, and the
// decision's reason).
func (l *Log) AuditAuthorizer(inner Authorizer) *AuditingAuthorizer {
	return &AuditingAuthorizer{inner: inner, log: l}
}

// Authorize implements the server's authorizer.
func (a *AuditingAuthorizer) Authorize(ctx context.Context, p identity.Principal, act rbac.Action, scope rbac.Scope) (rbac.Decision, error) {
	d, err := a.inner.Authorize(ctx, p, act, scope)
	if err == nil && d.Allowed {
		return d, nil
	}
	rec := Record{
		OperationName: string(act), Category: CategorySecurity, Level: LevelWarning, Status: StatusFailed,
		SubStatus: "Forbidden", HTTPStatus: http.StatusForbidden, CorrelationID: api.CorrelationIDFrom(ctx),
		ResourceID: string(scope), Action: string(act),
		Properties: map[string]string{"reason": d.Reason},
	}
	if err != nil {
		rec.Properties["error"] = err.Error()
	}
	rec.Caller, rec.CallerType, rec.CallerName = callerOf(p)
	if m := metaFrom(ctx); m != nil {
		rec.CallerIPAddress, rec.Method = m.remoteIP, m.method
		m.handled = true
	}
	if _, rerr := a.log.Record(ctx, rec); rerr != nil {
		a.log.log.LogAttrs(ctx, slog.LevelError, "activity record failed", slog.Any("error", rerr))
	}
	return d, err
}
