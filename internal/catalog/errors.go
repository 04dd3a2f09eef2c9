package catalog

import (
	"errors"
	"fmt"

	"custos/internal/api"
)

// Sentinel errors. Every *Error wraps exactly one of them, so callers classify
// catalog failures with errors.Is.
var (
	// ErrNotFound is returned when the requested resource does not exist.
	ErrNotFound = errors.New("catalog: not found")
	// ErrConflict is returned when a write collides with existing state: a
	// duplicate, a resource that still has children, an immutable property.
	ErrConflict = errors.New("catalog: conflict")
	// ErrPreconditionFailed is returned when an If-Match or If-None-Match
	// precondition does not hold.
	ErrPreconditionFailed = errors.New("catalog: precondition failed")
	// ErrInvalid is returned when a resource breaks a validation rule.
	ErrInvalid = errors.New("catalog: invalid")
)

// Error is a catalog failure that carries its Azure error code. Error()
// returns the client-facing message, which never contains secrets. It
// implements api.Coded.
type Error struct {
	Code    string   // Azure error code, e.g. "ResourceNotFound"
	Kind    api.Kind // failure class, mapped to an HTTP status by package api
	Message string   // client-facing text
	Target  string   // the offending property, when there is one
	base    error    // one of the package sentinels
	also    error    // identity.ErrNotFound or rbac.ErrNotFound, when relevant
}

func (e *Error) Error() string { return e.Message }

// AzureError implements api.Coded.
func (e *Error) AzureError() (string, api.Kind) { return e.Code, e.Kind }

// Unwrap lets errors.Is match the sentinel (and the identity or rbac sentinel).
func (e *Error) Unwrap() []error {
	if e.also != nil {
		return []error{e.base, e.also}
	}
	return []error{e.base}
}

var _ api.Coded = (*Error)(nil)

// ErrorTarget implements api.Targeted: the property a validation error is about.
func (e *Error) ErrorTarget() string { return e.Target }

func notFound(code, format string, args ...any) *Error {
	return &Error{Code: code, Kind: api.KindNotFound, Message: fmt.Sprintf(format, args...), base: ErrNotFound}
}

func conflict(code, format string, args ...any) *Error {
	return &Error{Code: code, Kind: api.KindConflict, Message: fmt.Sprintf(format, args...), base: ErrConflict}
}

// Invalid returns a validation error with the given Azure code, target
// property and message. arm uses it for rules it checks itself so that every
// 400 has the same shape.
func Invalid(code, target, format string, args ...any) *Error {
	return &Error{Code: code, Kind: api.KindInvalid, Message: fmt.Sprintf(format, args...), Target: target, base: ErrInvalid}
}

func preconditionFailed() *Error {
	return &Error{Code: "PreconditionFailed", Kind: api.KindPrecondition,
		Message: "The condition specified using HTTP conditional header(s) is not met.", base: ErrPreconditionFailed}
}

func errSubscriptionNotFound(sub string) *Error {
	return notFound("SubscriptionNotFound", "The subscription '%s' could not be found.", sub)
}

func errResourceGroupNotFound(rg string) *Error {
	return notFound("ResourceGroupNotFound", "Resource group '%s' could not be found.", rg)
}

// errResourceNotFound is ARM's message for a missing tracked resource, e.g.
// resourceType "Microsoft.OperationalInsights/workspaces/ws1".
func errResourceNotFound(typeAndName, rg string) *Error {
	return notFound("ResourceNotFound",
		"The Resource '%s' under resource group '%s' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
		typeAndName, rg)
}
