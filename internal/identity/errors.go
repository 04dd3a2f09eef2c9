package identity

import (
	"errors"
	"fmt"
)

// Sentinel causes of authentication failures. Authenticate returns an
// *AuthError that wraps one of them, so callers classify with errors.Is.
var (
	// ErrMissingToken: the request has no Authorization header.
	ErrMissingToken = errors.New("identity: authorization header missing")
	// ErrMalformedHeader: the Authorization header is not "Bearer <token>".
	ErrMalformedHeader = errors.New("identity: authorization header malformed")
	// ErrInvalidToken: the token is not a well-formed JWT of ours, uses a
	// disallowed algorithm, names an unknown key, or has bad claims.
	ErrInvalidToken = errors.New("identity: invalid token")
	// ErrBadSignature: the signature does not verify.
	ErrBadSignature = errors.New("identity: token signature invalid")
	// ErrTokenExpired: exp is in the past (beyond the allowed clock skew).
	ErrTokenExpired = errors.New("identity: token expired")
	// ErrTokenNotYetValid: nbf is in the future (beyond the allowed clock skew).
	ErrTokenNotYetValid = errors.New("identity: token not yet valid")
	// ErrWrongAudience: the token was issued for another audience.
	ErrWrongAudience = errors.New("identity: token audience mismatch")
	// ErrWrongTenant: the token's tenant does not exist (any more) or does not
	// match its issuer.
	ErrWrongTenant = errors.New("identity: token tenant invalid")
	// ErrPrincipalDisabled: the token's principal was deleted or disabled.
	ErrPrincipalDisabled = errors.New("identity: principal deleted or disabled")
	// ErrUnavailable: a store needed to validate the token failed.
	ErrUnavailable = errors.New("identity: validation unavailable")
	// ErrUnknownTenant is returned by CreateServicePrincipal and the token
	// endpoint for a tenant that does not exist.
	ErrUnknownTenant = errors.New("identity: unknown tenant")
	// ErrInvalidArgument is returned for malformed arguments to the service's methods.
	ErrInvalidArgument = errors.New("identity: invalid argument")
)

// Failure kinds, spelled as the api package's Kind values.
const (
	kindUnauthenticated = "unauthenticated"
	kindInternal        = "internal"
)

// AuthError is the error Authenticate returns. Code is the Azure wire code
// (AuthenticationFailed, InvalidAuthenticationToken,
// InvalidAuthenticationTokenAudience, InvalidAuthenticationTokenTenant) and
// Message the client-facing text, which never contains the token.
// Description is the error_description for the WWW-Authenticate challenge.
type AuthError struct {
	Code        string
	Message     string
	Description string
	kind        string
	cause       error // one of the sentinels
	detail      error // internal detail for logs; may be nil
}

func (e *AuthError) Error() string { return e.Message }

// Unwrap returns the sentinel cause and, for store failures, the underlying error.
func (e *AuthError) Unwrap() []error {
	if e.detail != nil {
		return []error{e.cause, e.detail}
	}
	return []error{e.cause}
}

// AzureError returns the Azure error code and the failure kind
// ("unauthenticated", or "internal" when validation could not be completed).
// The kind strings equal the api package's Kind constants.
func (e *AuthError) AzureError() (code string, kind string) { return e.Code, e.kind }

// Detail returns internal detail about the failure, for logs only. It never
// contains the token.
func (e *AuthError) Detail() string {
	if e.detail == nil {
		return e.cause.Error()
	}
	return e.detail.Error()
}

func authFailed(cause error, code, msg, desc string, detail error) *AuthError {
	return &AuthError{Code: code, Message: msg, Description: desc, kind: kindUnauthenticated, cause: cause, detail: detail}
}

func errMissing() *AuthError {
	return authFailed(ErrMissingToken, "AuthenticationFailed",
		"Authentication failed. The 'Authorization' header is missing.",
		"The authentication failed because of missing 'Authorization' header.", nil)
}

func errMalformed() *AuthError {
	return authFailed(ErrMalformedHeader, "AuthenticationFailed",
		"Authentication failed. The 'Authorization' header is provided in an invalid format.",
		"The 'Authorization' header is provided in an invalid format.", nil)
}

func errInvalid(cause error, detail string, args ...any) *AuthError {
	return authFailed(cause, "InvalidAuthenticationToken", "The access token is invalid.",
		"The access token is invalid.", fmt.Errorf(detail, args...))
}

func errUnavailable(err error) *AuthError {
	return &AuthError{Code: "InternalServerError", Message: "The access token could not be validated.",
		Description: "The access token could not be validated.", kind: kindInternal,
		cause: ErrUnavailable, detail: err}
}
