package engine

import (
	"fmt"
	"regexp"

	"custos/internal/kql"
	"custos/internal/store"
)

// prepareExt precompiles what the registry's functions need (their
// constant regular expressions) and refuses window functions outside a
// serialized evaluation.
func (ev *evaluator) prepareExt(c *kql.FnCall) error {
	if kql.IsWindowFunction(c.Fn) && !ev.serial {
		return errWindowNeedsSerial(c.Fn)
	}
	at := -1
	switch c.Fn {
	case kql.FnReplaceRegex, kql.FnIndexOfRegex, kql.FnCountOfRegex:
		at = 1
	case kql.FnExtractAll, kql.FnTrimStart, kql.FnTrimEnd:
		at = 0
	}
	if at < 0 {
		return nil
	}
	k, ok := c.Args[at].(*kql.Const)
	if !ok {
		return fmt.Errorf("BUG: %s without a constant pattern", c.Fn)
	}
	pattern := k.V.Str
	switch c.Fn {
	case kql.FnTrimStart:
		pattern = "^(?:" + pattern + ")"
	case kql.FnTrimEnd:
		pattern = "(?:" + pattern + ")$"
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return &ExecError{Msg: (&kql.RegexError{Pattern: k.V.Str, Problem: "the pattern does not compile"}).Error()}
	}
	ev.regexps[c] = re
	return nil
}

// extFunctions evaluates the functions of the registry that the older
// kernels in eval.go and datetime.go do not.
func (ev *evaluator) extFunctions(c *kql.FnCall, args []*store.Vector, n int) (*store.Vector, bool, error) {
	if kql.IsWindowFunction(c.Fn) {
		out, err := ev.windowFunction(c, args, n)
		return out, true, err
	}
	if out, ok, err := ev.stringFunctions(c, args, n); ok {
		return out, true, err
	}
	if c.Fn == kql.FnBinAt && c.T == store.TypeDecimal && args[0].Type == store.TypeDecimal {
		out, err := decBinAt(args[0], args[1], args[2], n) // decimal.go: exact
		return out, true, err
	}
	if out, ok := ev.datetimeFunctions(c, args, n); ok {
		return out, true, nil
	}
	if out, ok := ev.mathFunctions(c, args, n); ok {
		return out, true, nil
	}
	if out, ok := ev.dynamicFunctions(c, args, n); ok {
		return out, true, nil
	}
	if out, ok, err := ev.sketchFunctions(c, args, n); ok {
		return out, true, err
	}
	if out, ok := ev.miscFunctions(c, args, n); ok {
		return out, true, nil
	}
	return nil, false, nil
}
