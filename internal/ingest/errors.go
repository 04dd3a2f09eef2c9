package ingest

import (
	"errors"
	"fmt"
	"time"

	"custos/internal/api"
)

// Sentinel errors. Handlers turn them, and *Error, into the Azure envelope.
var (
	// ErrRuleNotFound is returned by a Rules implementation (or wrapped) when no
	// data collection rule has the requested immutable ID.
	ErrRuleNotFound = errors.New("ingest: data collection rule not found")
)

// Error is a client-facing ingestion failure with its Azure error code. It
// implements api.Coded.
type Error struct {
	Code       string
	Kind       api.Kind
	Message    string
	RetryAfter time.Duration // for KindThrottled: how long the client should wait
}

func (e *Error) Error() string { return e.Message }

// AzureError implements api.Coded.
func (e *Error) AzureError() (string, api.Kind) { return e.Code, e.Kind }

func errorf(kind api.Kind, code, format string, args ...any) *Error {
	return &Error{Code: code, Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// Azure error codes used by the ingestion API.
const (
	codeInvalidContent  = "InvalidRequestContent"
	codeTooLarge        = "ContentLengthLimitExceeded"
	codeNotFound        = "NotFound"
	codeInvalidStream   = "InvalidStream"
	codeThrottled       = "TooManyRequests"
	codeInvalidAPIVer   = "InvalidApiVersion"
	codeMissingAPIVer   = "MissingApiVersionParameter"
	codeUnsupportedEnc  = "UnsupportedContentEncoding"
	codeInvalidRule     = "InvalidDataCollectionRule"
	codeInvalidTransfom = "InvalidTransformOutput"
)
