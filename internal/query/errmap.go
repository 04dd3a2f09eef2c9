package query

import (
	"context"
	"errors"
	"net/http"

	"custos/internal/api"
)

// toAPIError maps an error of the query path to the Log Analytics envelope:
// query errors keep their innererror; KQL syntax and semantic errors become
// 400 BadArgumentError with innererror SyntaxError / SemanticError; timeouts
// 504; anything unknown 500 (api.ToError hides its text).
func toAPIError(err error) *api.Error {
	if errors.Is(err, context.DeadlineExceeded) {
		return gatewayTimeout().apiError(http.StatusGatewayTimeout)
	}
	if e := kqlError(err); e != nil {
		return e.apiError(http.StatusBadRequest)
	}
	var qe *Error
	if errors.As(err, &qe) {
		e := api.ToError(err)
		return qe.apiError(e.Status)
	}
	var c api.Coded
	if errors.As(err, &c) {
		code, kind := c.AzureError()
		e := api.ToError(err)
		if kind == api.KindInvalid && code != "BadArgumentError" {
			// A domain rule violated by the query (e.g. a limit): keep its code as the innererror.
			return &api.Error{Status: e.Status, Code: "BadArgumentError", Message: invalidProperties,
				InnerError: &api.InnerError{Code: code, Message: c.Error()}}
		}
		return e
	}
	return api.ToError(err)
}
