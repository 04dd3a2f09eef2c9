package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"custos/internal/api"
	"custos/internal/identity"
	"custos/internal/rbac"
)

// authenticator validates the bearer token of a request for one audience,
// and words the WWW-Authenticate challenge for a failure.
// *identity.TokenService implements it.
type authenticator interface {
	Authenticate(r *http.Request, audience string) (identity.Principal, error)
	Challenge(r *http.Request, err error) string
}

// authorizer is the single authorization decision. *rbac.Authorizer
// implements it.
type authorizer interface {
	Authorize(ctx context.Context, p identity.Principal, act rbac.Action, scope rbac.Scope) (rbac.Decision, error)
}

// guardedRoutes lists the routes registerRoute registered, in order.
type guardedRoutes []api.Route

// registerRoute puts rt behind bearer authentication for rt.Audience and one
// Authorize call for rt.Action at rt.Scope(r). A route without an audience,
// action, scope or handler is refused: nothing is reachable unauthorized by
// omission.
func (s *Server) registerRoute(rt api.Route) error {
	switch {
	case rt.Method == "" || strings.ContainsAny(rt.Method, " /{}"):
		return fmt.Errorf("route %q: bad method %q", rt.Pattern, rt.Method)
	case rt.Audience == "":
		return fmt.Errorf("route %s %s: no audience", rt.Method, rt.Pattern)
	case rt.Action == "":
		return fmt.Errorf("route %s %s: no action", rt.Method, rt.Pattern)
	case rt.Scope == nil:
		return fmt.Errorf("route %s %s: no scope function", rt.Method, rt.Pattern)
	case rt.Handler == nil:
		return fmt.Errorf("route %s %s: no handler", rt.Method, rt.Pattern)
	case s.authn == nil || s.authz == nil:
		return fmt.Errorf("route %s %s: authentication and authorization are not wired", rt.Method, rt.Pattern)
	}
	if err := s.router.handle(rt.Method+" "+rt.Pattern, s.guard(rt)); err != nil {
		return err
	}
	s.routes = append(s.routes, rt) // TestAuthorizationMatrixEveryRoute calls each
	return nil
}

func (s *Server) registerRoutes(routes []api.Route) error {
	for _, rt := range routes {
		if err := s.registerRoute(rt); err != nil {
			return err
		}
	}
	return nil
}

// guard is the per-route authentication and authorization step.
func (s *Server) guard(rt api.Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authn.Authenticate(r, rt.Audience)
		if err != nil {
			s.unauthorized(w, r, err)
			return
		}
		if info := requestInfoFrom(r.Context()); info != nil {
			info.principalID = p.ObjectID
		}
		r = r.WithContext(api.WithPrincipal(r.Context(), p))
		scope := rt.Scope(r)
		dec, err := s.authz.Authorize(r.Context(), p, rt.Action, scope)
		if err != nil {
			// Fail closed. A classified client error (a malformed scope)
			// is shown; anything else is logged and answered as a denial.
			var c api.Coded
			if errors.As(err, &c) {
				if _, kind := c.AzureError(); kind != api.KindInternal && kind != api.KindUnavailable {
					api.WriteError(w, r, s.log, err)
					return
				}
			}
			s.log.LogAttrs(r.Context(), slog.LevelError, "authorization error; denying",
				slog.String("correlation_id", api.CorrelationIDFrom(r.Context())),
				slog.String("action", string(rt.Action)), slog.Any("error", err))
			s.forbidden(w, r, p, rt.Action, scope)
			return
		}
		if !dec.Allowed {
			if rt.Audience == identity.AudienceQuery && s.query != nil {
				s.query.AuditDenied(r, http.StatusForbidden) // the query audit records refused queries too
			}
			s.forbidden(w, r, p, rt.Action, scope)
			return
		}
		if !s.admitNetwork(w, r, rt.Audience) {
			return
		}
		rt.Handler(w, r, dec)
	})
}

// unauthorized answers an authentication failure: 401 with a Bearer
// challenge, as ARM does, or 503 when the token could not be validated
// because a store failed. identity cannot import api (api imports identity),
// so its *AuthError is mapped here.
func (s *Server) unauthorized(w http.ResponseWriter, r *http.Request, err error) {
	var ae *identity.AuthError
	if errors.As(err, &ae) {
		if code, kind := ae.AzureError(); api.Kind(kind) != api.KindUnauthenticated {
			s.log.LogAttrs(r.Context(), slog.LevelError, "token validation unavailable",
				slog.String("correlation_id", api.CorrelationIDFrom(r.Context())), slog.String("detail", ae.Detail()))
			api.WriteError(w, r, nil, api.Errorf(http.StatusServiceUnavailable, "ServiceUnavailable",
				"The access token could not be validated now. Retry later. (%s)", code))
			return
		}
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "authentication failed",
			slog.String("correlation_id", api.CorrelationIDFrom(r.Context())),
			slog.String("code", ae.Code), slog.String("detail", ae.Detail()))
		w.Header().Set("WWW-Authenticate", s.authn.Challenge(r, err))
		api.WriteError(w, r, nil, api.Errorf(http.StatusUnauthorized, ae.Code, "%s", ae.Message))
		return
	}
	s.log.LogAttrs(r.Context(), slog.LevelError, "authentication error",
		slog.String("correlation_id", api.CorrelationIDFrom(r.Context())), slog.Any("error", err))
	w.Header().Set("WWW-Authenticate", s.authn.Challenge(r, err))
	api.WriteError(w, r, nil, api.Errorf(http.StatusUnauthorized, "AuthenticationFailed", "Authentication failed."))
}

// forbidden answers 403 AuthorizationFailed with ARM's message. The reason
// from the decision stays in the logs.
func (s *Server) forbidden(w http.ResponseWriter, r *http.Request, p identity.Principal, act rbac.Action, scope rbac.Scope) {
	api.WriteError(w, r, s.log, api.Errorf(http.StatusForbidden, "AuthorizationFailed",
		"The client '%s' with object id '%s' does not have authorization to perform action '%s' over scope '%s' or the scope is invalid. If access was recently granted, please refresh your credentials.",
		clientName(p), p.ObjectID, act, scope))
}

func clientName(p identity.Principal) string {
	if p.AppID != "" {
		return p.AppID
	}
	return p.ObjectID
}

// metricsRoute is GET /metrics: a management-audience token with the
// metrics read action at "/".
func (s *Server) metricsRoute() api.Route {
	return api.Route{
		Method:   http.MethodGet,
		Pattern:  "/metrics",
		Audience: identity.AudienceManagement,
		Action:   rbac.ActionMetricsRead,
		Scope:    func(*http.Request) rbac.Scope { return "/" },
		Handler: func(w http.ResponseWriter, r *http.Request, _ rbac.Decision) {
			s.serveMetrics(w, r)
		},
	}
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if err := s.metrics.writeTo(w); err != nil {
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "write metrics", slog.Any("error", err))
	}
	if s.alerts != nil {
		_ = s.alerts.WriteMetrics(w) // the client may have gone
	}
	if s.export != nil {
		_ = s.export.WriteMetrics(w)
	}
	if s.store != nil {
		_ = s.store.WriteMetrics(w)
		_ = s.store.WriteReadCacheMetrics(w)
	}
	_ = s.querySlots.WriteMetrics(w) // nil before the data plane opens: nothing
}
