package engine

import (
	"fmt"

	"custos/internal/kql"
)

// fold returns e with every subexpression that reads no column evaluated
// once and replaced by its value: constant folding. Volatile functions
// (new_guid), window functions and subqueries are left alone. The result
// must be prepared again before it is evaluated; fold itself prepares what
// it evaluates, so, like prepare, it must run before any concurrent eval.
//
// The executor can fold each plan expression before preparing it; the
// differential test FuzzFoldVsExecute checks that folding never changes a
// result.
func (ev *evaluator) fold(e kql.Scalar) (kql.Scalar, error) {
	c, ok := e.(*kql.FnCall)
	if !ok {
		return e, nil
	}
	args := make([]kql.Scalar, len(c.Args))
	allConst, changed := true, false
	for i, a := range c.Args {
		f, err := ev.fold(a)
		if err != nil {
			return nil, err
		}
		args[i] = f
		if _, isConst := f.(*kql.Const); !isConst {
			allConst = false
		}
		changed = changed || f != a
	}
	out := c
	if changed {
		out = &kql.FnCall{Fn: c.Fn, Args: args, T: c.T}
	}
	if !allConst || kql.IsVolatileFunction(c.Fn) || kql.IsWindowFunction(c.Fn) || c.Fn == kql.OpInSubquery {
		return out, nil
	}
	if err := ev.prepare(out); err != nil {
		return nil, err
	}
	v, err := ev.evalConst(out)
	if err != nil {
		return nil, err
	}
	if kql.IsIntHeld(v.Type) != kql.IsIntHeld(c.T) || kql.IsRealHeld(v.Type) != kql.IsRealHeld(c.T) {
		return nil, fmt.Errorf("BUG: %s evaluated to %s, bound as %s", c.Fn, v.Type, c.T)
	}
	v.Type = c.T
	return &kql.Const{V: v}, nil
}
