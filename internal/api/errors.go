package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"syscall"

	"custos/internal/store"
)

// CodeInsufficientStorage answers (503, with Retry-After) a request that
// failed because the server's data filesystem is full or over quota
// (ENOSPC/EDQUOT anywhere in the error chain). It is a 503, not a 507, so
// that the Azure SDKs' default retry policy retries it. Added by the fault
// tests (e2e/diskfull_fault_test.go): before, a full disk answered a generic
// 500 that clients do not retry.
const CodeInsufficientStorage = "InsufficientStorage"

// insufficientStorageRetryAfter is the Retry-After (seconds) sent with
// CodeInsufficientStorage.
const insufficientStorageRetryAfter = "30"

// CodeCustomerManagedKeyUnavailable answers (503, with Retry-After) any
// request on a workspace whose customer-managed key cannot be used now:
// the key was disabled or deleted, access to it was removed, or its key
// store is unreachable. Nothing was written; the request can be retried
// once the key is restored.
const CodeCustomerManagedKeyUnavailable = "CustomerManagedKeyUnavailable"

// keyUnavailableRetryAfter is the Retry-After (seconds) sent with
// CodeCustomerManagedKeyUnavailable.
const keyUnavailableRetryAfter = "30"

// Error is an Azure API error: {"error":{"code","message","target","details","innererror"}}.
// Domain packages may return one directly when they implement an Azure rule
// and know its wire code; Status is then the HTTP status to answer with.
type Error struct {
	Status     int           `json:"-"`
	Code       string        `json:"code"`
	Message    string        `json:"message"`
	Target     string        `json:"target,omitempty"`
	Details    []ErrorDetail `json:"details,omitempty"`
	InnerError *InnerError   `json:"innererror,omitempty"`
}

// ErrorDetail is one entry of Error.Details.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Target  string `json:"target,omitempty"`
}

// InnerError is the innererror of the Log Analytics envelope; Line and Pos
// locate a query syntax error.
type InnerError struct {
	Code       string      `json:"code"`
	Message    string      `json:"message,omitempty"`
	Line       int         `json:"line,omitempty"`
	Pos        int         `json:"pos,omitempty"`
	InnerError *InnerError `json:"innererror,omitempty"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns an *Error with the given status and code.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Coded is implemented by domain errors that carry an Azure wire code. The
// domain package knows the code (it implements the Azure rule) and the kind of
// failure; only this package knows HTTP status codes (kindStatus). Message()
// is the client-facing text; it must not contain secrets.
type Coded interface {
	error
	AzureError() (code string, kind Kind)
}

// Targeted is implemented by domain errors that know which request field is
// wrong ("properties.severity"); ToError puts it in the envelope's target,
// where clients such as the portal show the message at that field.
type Targeted interface {
	ErrorTarget() string
}

// Kind classifies a domain failure for the status-code table.
type Kind = string

// Kinds of failures, and the status each maps to.
const (
	KindInvalid         Kind = "invalid"         // 400
	KindUnauthenticated Kind = "unauthenticated" // 401
	KindForbidden       Kind = "forbidden"       // 403
	KindNotFound        Kind = "notfound"        // 404
	KindConflict        Kind = "conflict"        // 409
	KindPrecondition    Kind = "precondition"    // 412
	KindTooLarge        Kind = "toolarge"        // 413
	KindThrottled       Kind = "throttled"       // 429
	KindUnavailable     Kind = "unavailable"     // 503
	KindTimeout         Kind = "timeout"         // 504
	KindInternal        Kind = "internal"        // 500; message is replaced by a generic one
)

var kindStatus = map[Kind]int{
	KindInvalid: http.StatusBadRequest, KindUnauthenticated: http.StatusUnauthorized,
	KindForbidden: http.StatusForbidden, KindNotFound: http.StatusNotFound,
	KindConflict: http.StatusConflict, KindPrecondition: http.StatusPreconditionFailed,
	KindTooLarge: http.StatusRequestEntityTooLarge, KindThrottled: http.StatusTooManyRequests,
	KindUnavailable: http.StatusServiceUnavailable, KindTimeout: http.StatusGatewayTimeout,
	KindInternal: http.StatusInternalServerError,
}

// ToError maps err to the API error the client sees. Anything unknown is a 500
// with a generic message; the caller logs the real error.
func ToError(err error) *Error {
	var ae *Error
	if errors.As(err, &ae) {
		if ae.Status == 0 {
			ae.Status = http.StatusBadRequest
		}
		return ae
	}
	var ce *store.CorruptionError
	if errors.As(err, &ce) {
		return corruptionError(ce)
	}
	if errors.Is(err, store.ErrKeyUnavailable) {
		return Errorf(http.StatusServiceUnavailable, CodeCustomerManagedKeyUnavailable,
			"The workspace's customer-managed key is unavailable: it was disabled or deleted, access to it was removed, "+
				"or its key store cannot be reached. Nothing was written. Retry after the key is restored.")
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return Errorf(http.StatusServiceUnavailable, CodeInsufficientStorage,
			"The server's storage is full; the request was not completed and nothing from it was acknowledged. "+
				"Retry later; the operator has been alerted.")
	}
	var c Coded
	if errors.As(err, &c) {
		code, kind := c.AzureError()
		status, ok := kindStatus[kind]
		if ok && status < 500 {
			ae := &Error{Status: status, Code: code, Message: c.Error()}
			var t Targeted
			if errors.As(err, &t) {
				ae.Target = t.ErrorTarget()
			}
			return ae
		}
		if ok {
			return Errorf(status, code, "The service could not complete the request. Quote the correlation ID to the operator.")
		}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return Errorf(http.StatusGatewayTimeout, "GatewayTimeout", "The operation did not complete within the allowed time.")
	case errors.Is(err, context.Canceled):
		return Errorf(499, "RequestCanceled", "The request was canceled.")
	}
	return Errorf(http.StatusInternalServerError, "InternalServerError", "An internal error occurred. Quote the correlation ID to the operator.")
}

// corruptionError tells the client which part failed its integrity check,
// without the file path: the query stopped and returned no rows. The full
// error, path included, is logged by WriteError.
func corruptionError(ce *store.CorruptionError) *Error {
	what := "a write-ahead log segment"
	if ce.Part != "" {
		what = "part " + ce.Part
	}
	if ce.Column != "" {
		what += " (column " + ce.Column + ")"
	}
	return Errorf(http.StatusInternalServerError, "DataIntegrityError",
		"Stored data failed its integrity check in %s; the query was stopped and returned no rows. The operator has been alerted.", what)
}

// WriteError writes err in the Azure envelope with x-ms-error-code. Internal
// errors are logged with the correlation ID; their text never reaches the client.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	e := ToError(err)
	if e.Status >= 500 && log != nil {
		log.LogAttrs(r.Context(), slog.LevelError, "request failed",
			slog.String("correlation_id", CorrelationIDFrom(r.Context())),
			slog.String("path", r.URL.Path), slog.Any("error", err))
	}
	w.Header().Set("x-ms-error-code", e.Code)
	if e.Code == CodeCustomerManagedKeyUnavailable {
		w.Header().Set("Retry-After", keyUnavailableRetryAfter)
	}
	if e.Code == CodeInsufficientStorage {
		w.Header().Set("Retry-After", insufficientStorageRetryAfter)
	}
	WriteJSON(w, e.Status, struct {
		Error *Error `json:"error"`
	}{e})
}

// WriteJSON writes v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client may have gone; nothing useful to do
}
