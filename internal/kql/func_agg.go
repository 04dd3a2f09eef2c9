package kql

import (
	"fmt"

	"custos/internal/store"
)

// resolveAggregateExt type-checks the aggregations added with the registry:
// make_bag, hll, hll_merge, tdigest, tdigest_merge, buildschema and
// count_distinct (with their _if forms).
func resolveAggregateExt(ac *AggCall, fn AggID, args []Scalar) (*AggCall, error) {
	n := 1
	switch fn {
	case AggMakeBagIf, AggHLLIf, AggCountDistinctIf:
		n = 2
	}
	// The optional last argument: make_bag's maxSize, hll's accuracy.
	optional := fn == AggMakeBag || fn == AggMakeBagIf || fn == AggHLL || fn == AggHLLIf
	if len(args) < n || len(args) > n+boolInt(optional) {
		return nil, fmt.Errorf("function '%s' expects %d argument(s), got %d", fn, n, len(args))
	}
	if n == 2 && args[1].Type() != store.TypeBool {
		return nil, fmt.Errorf("function '%s': the predicate must be bool, got %s", fn, args[1].Type())
	}
	extra := func() (int64, bool, error) {
		if len(args) != n+1 {
			return 0, false, nil
		}
		c, ok := args[n].(*Const)
		if !ok || !IsInteger(c.V.Type) || c.V.Null {
			return 0, false, fmt.Errorf("function '%s': argument %d must be an integer constant", fn, n+1)
		}
		return c.V.Int, true, nil
	}
	switch fn {
	case AggMakeBag, AggMakeBagIf:
		if args[0].Type() != store.TypeDynamic {
			return nil, fmt.Errorf("function '%s' expects a dynamic property bag, got %s", fn, args[0].Type())
		}
		v, ok, err := extra()
		if err != nil {
			return nil, err
		}
		ac.Accuracy = 1 << 20
		if ok {
			if v <= 0 {
				return nil, fmt.Errorf("function '%s': max size must be a positive integer constant", fn)
			}
			ac.Accuracy = int(min(v, 1<<20))
		}
		ac.T = store.TypeDynamic
	case AggHLL, AggHLLIf:
		v, ok, err := extra()
		if err != nil {
			return nil, err
		}
		if ok {
			if v < 0 || v > 4 {
				return nil, fmt.Errorf("function '%s': accuracy must be an integer constant between 0 and 4", fn)
			}
			ac.Accuracy = int(v)
		}
		if args[0].Type() == store.TypeDynamic {
			args = append([]Scalar{FromDynamic(args[0], store.TypeString)}, args[1:]...)
		}
		ac.T = store.TypeDynamic
	case AggHLLMerge, AggTDigestMerge:
		if args[0].Type() != store.TypeDynamic {
			return nil, fmt.Errorf("function '%s' expects a sketch (dynamic), got %s", fn, args[0].Type())
		}
		ac.T = store.TypeDynamic
	case AggTDigest:
		t := args[0].Type()
		if !IsNumeric(t) && t != store.TypeDatetime && t != store.TypeTimespan {
			return nil, fmt.Errorf("function 'tdigest' expects a numeric, datetime or timespan argument, got %s", t)
		}
		ac.T = store.TypeDynamic
	case AggBuildSchema:
		if args[0].Type() != store.TypeDynamic {
			return nil, fmt.Errorf("function 'buildschema' expects a dynamic argument, got %s", args[0].Type())
		}
		ac.T = store.TypeDynamic
	case AggCountDistinct, AggCountDistinctIf:
		if args[0].Type() == store.TypeDynamic {
			return nil, fmt.Errorf("function '%s' does not accept a dynamic argument", fn)
		}
		ac.T = store.TypeLong
	default:
		return nil, fmt.Errorf("unknown aggregation %s", fn)
	}
	ac.Args = args[:n]
	return ac, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
