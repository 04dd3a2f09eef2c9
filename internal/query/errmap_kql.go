package query

import (
	"errors"
	"fmt"

	"custos/internal/api"
	"custos/internal/kql"
)

// kqlError maps KQL syntax and semantic errors to Log Analytics'
// BadArgumentError envelope; it returns nil for other errors.
//
// Azure's shape: {"code":"BadArgumentError","message":"The request had some
// invalid properties","innererror":{"code":"SyntaxError","message":"A
// recognition error occurred in the query.","innererror":{"code":"SYN0002",
// "message":"...","line":1,"pos":10}}}. Custos also puts line and pos on the
// first innererror so clients need not walk the chain.
func kqlError(err error) *Error {
	var se *kql.SyntaxError
	if errors.As(err, &se) {
		return &Error{Code: "BadArgumentError", Kind: api.KindInvalid, Message: invalidProperties,
			Inner: &api.InnerError{
				Code: "SyntaxError", Message: "A recognition error occurred in the query.", Line: se.Line, Pos: se.Col,
				InnerError: &api.InnerError{Code: "SYN0002",
					Message: fmt.Sprintf("Query could not be parsed on line [%d,%d]: %s", se.Line, se.Col, se.Msg),
					Line:    se.Line, Pos: se.Col},
			}}
	}
	var sem *kql.SemanticError
	if errors.As(err, &sem) {
		return &Error{Code: "BadArgumentError", Kind: api.KindInvalid, Message: invalidProperties,
			Inner: &api.InnerError{
				Code: "SemanticError", Message: "A semantic error occurred.", Line: sem.Line, Pos: sem.Col,
				InnerError: &api.InnerError{Code: "SEM0100", Message: sem.Msg, Line: sem.Line, Pos: sem.Col},
			}}
	}
	return nil
}
