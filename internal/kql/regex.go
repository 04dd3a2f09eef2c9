package kql

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
)

// RegexError is a user's regular expression that does not compile. Its
// message names the pattern and the problem in words (Kusto reports an
// invalid pattern as a semantic error), never the RE2 internals of the
// expression the engine builds around it.
type RegexError struct {
	Pattern string // the user's pattern, as written
	Problem string // "unexpected ')'", "missing closing ']'", ...
}

func (e *RegexError) Error() string {
	p := e.Pattern
	if len(p) > 200 {
		p = p[:200] + "…"
	}
	return fmt.Sprintf("invalid regular expression '%s': %s", p, e.Problem)
}

// CompileRegex compiles a user's RE2 pattern; a pattern that does not
// compile is a *RegexError.
func CompileRegex(pattern string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, &RegexError{Pattern: pattern, Problem: regexProblem(err, pattern)}
	}
	return re, nil
}

// regexProblem describes a regexp compile error in words: the RE2 error
// code with its bracket quoted, and the offending fragment when it is not
// the whole pattern.
func regexProblem(err error, pattern string) string {
	var se *syntax.Error
	if !errors.As(err, &se) {
		return "the pattern does not compile"
	}
	code := string(se.Code)
	// "unexpected )" → "unexpected ')'", "missing closing ]" → "missing closing ']'".
	if i := strings.LastIndexByte(code, ' '); i >= 0 && len(code)-i == 2 && strings.ContainsAny(code[i+1:], "()[]{}") {
		code = code[:i+1] + "'" + code[i+1:] + "'"
	}
	if se.Expr != "" && se.Expr != pattern && len(se.Expr) <= 60 {
		return fmt.Sprintf("%s in '%s'", code, se.Expr)
	}
	return code
}
