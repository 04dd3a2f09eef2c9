// Package api holds the Azure wire conventions that every Custos HTTP API
// shares: the route description that the server wraps with authentication and
// authorization, the Azure error envelope, strict size-limited JSON decoding,
// and the request-scoped values (principal, correlation ID) handlers read.
//
// It is the only package that maps domain errors to HTTP status codes
// (errors.go). It imports the domain packages' error types, and none of them
// may import it.
package api
