package alert

import (
	"errors"
	"fmt"

	"custos/internal/api"
)

// Sentinel errors. Every *Error wraps one of them.
var (
	// ErrInvalid is returned for a resource or request that breaks a rule.
	ErrInvalid = errors.New("alert: invalid")
	// ErrNotFound is returned when a referenced resource does not exist.
	ErrNotFound = errors.New("alert: not found")
	// ErrForbidden is returned when the rule's identity, or the caller, lacks
	// access to a scope.
	ErrForbidden = errors.New("alert: forbidden")
	// ErrNoIdentity is returned when a rule has no usable identity to run
	// its query as.
	ErrNoIdentity = errors.New("alert: rule has no identity")
	// ErrDelivery is returned when a notification could not be delivered.
	ErrDelivery = errors.New("alert: delivery failed")
	// ErrClosed is returned by a Service after Close.
	ErrClosed = errors.New("alert: service closed")
)

// Error is an alert failure with its Azure error code. It implements
// api.Coded; Error() is the client-facing message.
type Error struct {
	Code    string
	Kind    api.Kind
	Message string
	Target  string
	base    error
}

func (e *Error) Error() string { return e.Message }

// AzureError implements api.Coded.
func (e *Error) AzureError() (string, api.Kind) { return e.Code, e.Kind }

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.base }

// ErrorTarget implements api.Targeted: the field the error is about.
func (e *Error) ErrorTarget() string { return e.Target }

var _ api.Coded = (*Error)(nil)

func invalid(target, format string, args ...any) *Error {
	return &Error{Code: "BadRequest", Kind: api.KindInvalid, Target: target, Message: fmt.Sprintf(format, args...), base: ErrInvalid}
}

func invalidCode(code, target, format string, args ...any) *Error {
	return &Error{Code: code, Kind: api.KindInvalid, Target: target, Message: fmt.Sprintf(format, args...), base: ErrInvalid}
}

func notFound(code, format string, args ...any) *Error {
	return &Error{Code: code, Kind: api.KindNotFound, Message: fmt.Sprintf(format, args...), base: ErrNotFound}
}

func forbidden(code, format string, args ...any) *Error {
	return &Error{Code: code, Kind: api.KindForbidden, Message: fmt.Sprintf(format, args...), base: ErrForbidden}
}
