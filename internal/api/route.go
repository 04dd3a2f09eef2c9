package api

import (
	"context"
	"net/http"

	"custos/internal/identity"
	"custos/internal/rbac"
)

// HandlerFunc serves one authenticated, authorized request. d is the
// authorization decision for the route's action and scope.
type HandlerFunc func(w http.ResponseWriter, r *http.Request, d rbac.Decision)

// Route describes one endpoint. The server registers it behind TLS, request
// logging, bearer-token authentication for Audience, and one call to
// rbac.Authorize(principal, Action, Scope(r)); a route cannot be registered
// without an action.
type Route struct {
	Method   string // "GET", "PUT", ...
	Pattern  string // net/http ServeMux path pattern, e.g. "/subscriptions/{sub}/resourcegroups/{rg}"
	Audience string // identity.Audience*: the token audience the endpoint accepts
	Action   rbac.Action
	// Scope returns the RBAC scope of the request, usually the resource ID in
	// the path. Batch endpoints authorize each item themselves as well.
	Scope   func(r *http.Request) rbac.Scope
	Handler HandlerFunc
}

type ctxKey int

const (
	principalKey ctxKey = iota
	correlationKey
)

// WithPrincipal returns a context carrying the authenticated caller.
func WithPrincipal(ctx context.Context, p identity.Principal) context.Context {
	return context.WithValue(ctx, principalKey, p)
}

// PrincipalFrom returns the authenticated caller of the request, if any.
func PrincipalFrom(ctx context.Context) (identity.Principal, bool) {
	p, ok := ctx.Value(principalKey).(identity.Principal)
	return p, ok
}

// WithCorrelationID returns a context carrying the request's correlation ID.
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationKey, id)
}

// CorrelationIDFrom returns the request's correlation ID, or "".
func CorrelationIDFrom(ctx context.Context) string {
	s, _ := ctx.Value(correlationKey).(string)
	return s
}
