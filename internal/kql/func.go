package kql

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"custos/internal/store"
)

// FuncID identifies a built-in scalar function or operator of a bound FnCall.
type FuncID uint16

// Scalar functions and operators. Operators that have several overloads
// (arithmetic, comparisons) are resolved by the storage class of their
// arguments: the binder inserts OpCast so both sides of an arithmetic or
// comparison operator are held the same way (Vector.Int, Real, Str or Bool).
const (
	FnInvalid FuncID = iota

	OpCast // Args[0] converted exactly to T (int→long→real, real→timespan ticks, ...)

	OpAdd
	OpSub
	OpMul
	OpDiv
	OpDivSpans // timespan / timespan → real
	OpMod
	OpNeg

	OpEq
	OpNe
	OpLt
	OpLe
	OpGt
	OpGe
	OpEqCI // =~
	OpNeCI // !~

	OpAnd
	OpOr
	OpNot

	OpContains
	OpContainsCS
	OpHas
	OpHasCS
	OpHasPrefix
	OpHasPrefixCS
	OpHasSuffix
	OpHasSuffixCS
	OpStartsWith
	OpStartsWithCS
	OpEndsWith
	OpEndsWithCS
	OpMatchesRegex // Args[1] is a constant pattern
	OpIn           // Args[1:] are constants
	OpInCI         // Args[1:] are constant strings

	FnNow
	FnAgo
	FnBin
	FnToString
	FnToInt
	FnToLong
	FnToReal
	FnToBool
	FnToDatetime
	FnToTimespan
	FnStrcat
	FnStrlen
	FnToLower
	FnToUpper
	FnSubstring
	FnIff
	FnIsEmpty
	FnIsNotEmpty
	FnIsNull
	FnIsNotNull
	FnAbs
	FnRound
	FnCoalesce
	FnCase
	FnStartOfDay
	FnStartOfHour
	FnStrcatDelim
	FnReplaceString
	FnTrim
	FnIndexOf
	FnSqrt
	FnLog
	FnLog10
	FnExp
	FnPow
	FnFloor
	FnCeiling
	FnDayOfWeek
	FnGetYear
	FnGetMonth
	FnHourOfDay
	FnExtract
	FnCountOf
	FnIsNaN
	// FnParse extracts capture group Args[2] of the constant regular
	// expression Args[1] from Args[0] and converts it to T; null when the
	// expression does not match (the parse operator).
	FnParse
	// FnDynGet reads a property path of a dynamic value: Args[1:] are
	// constant keys (string) or array indexes (long, negative from the end).
	FnDynGet
	FnParseJSON
	FnArrayLength
	// OpInSubquery is "Args[0] in (tabular)"; Args[1] is a *Subquery with Set.
	OpInSubquery
	FnHashSHA256
	FnSplit
	FnDatetimeAdd  // Args[0] constant part name
	FnDatetimeDiff // Args[0] constant part name
	FnMinOf
	FnMaxOf
	FnFormatDatetime // Args[1] constant format

	// Functions added with the registry (func_ext.go); evaluated in
	// engine/fn_*.go.
	FnReplaceRegex // Args[1] constant regex
	FnExtractAll   // Args[0] constant regex; optional Args[1] constant groups (dynamic)
	FnTrimStart    // Args[0] constant regex
	FnTrimEnd      // Args[0] constant regex
	FnReverse
	FnBase64Encode
	FnBase64Decode
	FnBase64FromGUID
	FnBase64ToGUID
	FnBase64ToArray
	FnBase64FromArray
	FnURLEncode
	FnURLDecode
	FnParseURL
	FnParsePath
	FnStrrep
	FnFormatBytes
	FnHash
	FnHashMD5
	FnHashSHA1
	FnToGUID
	FnGetType // Args[0] constant type name (bound statically)
	FnStrcmp
	FnToHex
	FnBinAt
	FnStartOf // Args[0] constant unit; Args[1] datetime; Args[2] offset
	FnEndOf   // Args[0] constant unit; Args[1] datetime; Args[2] offset
	FnDayOfMonth
	FnDayOfYear
	FnWeekOfYear
	FnDatetimePart // Args[0] constant part
	FnFormatTimespan
	FnMakeDatetime
	FnMakeTimespan
	FnUnixToDatetime // Args[0] constant ticks per unit (long); Args[1] real
	FnDatetimeToUnix // Args[0] constant ticks per unit; Args[1] datetime
	FnMath           // Args[0] constant name; Args[1] real
	FnSign
	FnIsInf
	FnIsFinite
	FnBinaryAnd
	FnBinaryOr
	FnBinaryXor
	FnBinaryNot
	FnBinaryShiftLeft
	FnBinaryShiftRight
	FnAtan2
	FnBagPack
	FnPackArray
	FnArrayConcat
	FnArraySlice
	FnArrayIndexOf
	FnArraySortAsc
	FnArraySortDesc
	FnArrayReverse
	FnArraySum
	FnSetUnion
	FnSetIntersect
	FnSetDifference
	FnSetHasElement
	FnBagKeys
	FnBagMerge
	FnBagRemoveKeys
	FnBagHasKey
	FnZip
	FnTreePath
	FnIPv4IsInRange
	FnIPv4IsPrivate
	FnParseIPv4
	FnIPv4Compare
	FnIPv4IsMatch
	FnFormatIPv4
	FnSeriesStats
	FnSeriesFillForward
	FnSeriesFillBackward
	FnSeriesFillConst
	FnSeriesFillLinear
	FnRowNumber    // Args: optional start (long)
	FnPrev         // Args[0] column, Args[1] offset, optional Args[2] default
	FnNext         // like FnPrev, forwards
	FnRowCumsum    // Args[0] number, optional Args[1] restart predicate
	FnRowRankDense // Args[0] value
	FnRowRankMin   // Args[0] value
	// FnRowWindowSession: Args[0] datetime, Args[1] max
	// distance from the session's first row, Args[2] max distance between
	// neighbours, optional Args[3] restart predicate.
	FnRowWindowSession
	FnNewGUID
	FnIndexOfRegex // Args[1] constant regex
	FnIsASCII
	FnIsUTF8
	FnCountOfRegex      // Args[1] constant regex
	FnDynamicToString   // a scalar as a dynamic value (bag_pack, pack_array)
	FnDcountHLL         // Args[0] hll sketch
	FnPercentileTDigest // Args[0] tdigest sketch; Args[1:] constant percents; T real or dynamic (array)
	FnHLLMerge          // Args: hll sketches
	FnTDigestMerge      // Args: tdigest sketches
	FnBagPackNonEmpty   // bag_pack skipping null and empty values (pack_all(true))
	FnMisc              // Args[0] constant function name; the rest its arguments (func_misc.go)
	FnRand              // rand([n]): volatile

	numFuncs
)

var funcNames = [numFuncs]string{
	OpCast: "cast", OpAdd: "add", OpSub: "sub", OpMul: "mul", OpDiv: "div", OpDivSpans: "divspans",
	OpMod: "mod", OpNeg: "neg", OpEq: "==", OpNe: "!=", OpLt: "<", OpLe: "<=", OpGt: ">", OpGe: ">=",
	OpEqCI: "=~", OpNeCI: "!~", OpAnd: "and", OpOr: "or", OpNot: "not",
	OpContains: "contains", OpContainsCS: "contains_cs", OpHas: "has", OpHasCS: "has_cs",
	OpHasPrefix: "hasprefix", OpHasPrefixCS: "hasprefix_cs", OpHasSuffix: "hassuffix", OpHasSuffixCS: "hassuffix_cs",
	OpStartsWith: "startswith", OpStartsWithCS: "startswith_cs", OpEndsWith: "endswith", OpEndsWithCS: "endswith_cs",
	OpMatchesRegex: "matches_regex", OpIn: "in", OpInCI: "in~",
	FnNow: "now", FnAgo: "ago", FnBin: "bin", FnToString: "tostring", FnToInt: "toint", FnToLong: "tolong",
	FnToReal: "todouble", FnToBool: "tobool", FnToDatetime: "todatetime", FnToTimespan: "totimespan",
	FnStrcat: "strcat", FnStrlen: "strlen", FnToLower: "tolower", FnToUpper: "toupper", FnSubstring: "substring",
	FnIff: "iff", FnIsEmpty: "isempty", FnIsNotEmpty: "isnotempty", FnIsNull: "isnull", FnIsNotNull: "isnotnull",
	FnAbs: "abs", FnRound: "round", FnCoalesce: "coalesce", FnCase: "case", FnStartOfDay: "startofday",
	FnStartOfHour: "startofhour", FnStrcatDelim: "strcat_delim", FnReplaceString: "replace_string",
	FnTrim: "trim", FnIndexOf: "indexof", FnSqrt: "sqrt", FnLog: "log", FnLog10: "log10", FnExp: "exp",
	FnPow: "pow", FnFloor: "floor", FnCeiling: "ceiling", FnDayOfWeek: "dayofweek", FnGetYear: "getyear",
	FnGetMonth: "getmonth", FnHourOfDay: "hourofday", FnExtract: "extract", FnCountOf: "countof", FnIsNaN: "isnan",
	FnParse: "parse", FnDynGet: "dynget", FnParseJSON: "parse_json", FnArrayLength: "array_length", OpInSubquery: "in_subquery",
	FnHashSHA256: "hash_sha256", FnSplit: "split", FnDatetimeAdd: "datetime_add", FnDatetimeDiff: "datetime_diff",
	FnMinOf: "min_of", FnMaxOf: "max_of", FnFormatDatetime: "format_datetime",
}

// String returns the KQL spelling of the function or operator.
func (f FuncID) String() string {
	if f < numFuncs && funcNames[f] != "" {
		return funcNames[f]
	}
	if n, ok := extFuncNames[f]; ok {
		return n
	}
	return fmt.Sprintf("func#%d", int(f))
}

// AggID identifies an aggregation function of summarize.
type AggID uint8

// Aggregation functions.
const (
	AggInvalid AggID = iota
	AggCount
	AggCountIf
	AggSum
	AggSumIf
	AggAvg
	AggAvgIf
	AggMin
	AggMax
	AggDcount
	AggDcountIf
	AggTakeAny
	AggStdev
	AggVariance
	AggMakeList
	AggMakeSet
	AggMinIf
	AggMaxIf
	AggArgMax
	AggArgMin
	AggStdevp
	AggVariancep
	AggMakeListIf
	AggMakeSetIf
	AggPercentile
	AggPercentiles
	AggPercentilesArray
	AggMakeBag
	AggMakeBagIf
	AggHLL
	AggHLLIf
	AggHLLMerge
	AggTDigest
	AggTDigestMerge
	AggBuildSchema
	AggCountDistinct
	AggCountDistinctIf
	numAggs
)

var aggNames = [numAggs]string{
	AggCount: "count", AggCountIf: "countif", AggSum: "sum", AggSumIf: "sumif", AggAvg: "avg",
	AggAvgIf: "avgif", AggMin: "min", AggMax: "max", AggDcount: "dcount", AggDcountIf: "dcountif",
	AggTakeAny: "take_any", AggStdev: "stdev", AggVariance: "variance", AggMakeList: "make_list",
	AggMakeSet: "make_set", AggMinIf: "minif", AggMaxIf: "maxif", AggArgMax: "arg_max",
	AggArgMin: "arg_min", AggStdevp: "stdevp", AggVariancep: "variancep", AggMakeListIf: "make_list_if",
	AggMakeSetIf: "make_set_if", AggPercentile: "percentile", AggPercentiles: "percentiles",
	AggPercentilesArray: "percentiles_array", AggMakeBag: "make_bag", AggMakeBagIf: "make_bag_if",
	AggHLL: "hll", AggHLLIf: "hll_if", AggHLLMerge: "hll_merge", AggTDigest: "tdigest", AggTDigestMerge: "tdigest_merge",
	AggBuildSchema: "buildschema", AggCountDistinct: "count_distinct", AggCountDistinctIf: "count_distinctif",
}

// String returns the KQL name of the aggregation.
func (a AggID) String() string {
	if a < numAggs && aggNames[a] != "" {
		return aggNames[a]
	}
	return fmt.Sprintf("agg#%d", int(a))
}

// aggByName maps KQL aggregation names (aliases included) to AggIDs.
var aggByName = map[string]AggID{
	"count": AggCount, "countif": AggCountIf, "sum": AggSum, "sumif": AggSumIf, "avg": AggAvg,
	"avgif": AggAvgIf, "min": AggMin, "max": AggMax, "dcount": AggDcount, "dcountif": AggDcountIf,
	"take_any": AggTakeAny, "any": AggTakeAny, "stdev": AggStdev, "variance": AggVariance,
	"make_list": AggMakeList, "make_set": AggMakeSet, "minif": AggMinIf, "maxif": AggMaxIf,
	"arg_max": AggArgMax, "arg_min": AggArgMin, "stdevp": AggStdevp, "variancep": AggVariancep,
	"make_list_if": AggMakeListIf, "make_set_if": AggMakeSetIf, "percentile": AggPercentile,
	"percentiles": AggPercentiles, "percentiles_array": AggPercentilesArray,
	"make_bag": AggMakeBag, "make_bag_if": AggMakeBagIf, "hll": AggHLL, "hll_if": AggHLLIf, "hll_merge": AggHLLMerge,
	"tdigest": AggTDigest, "tdigest_merge": AggTDigestMerge, "buildschema": AggBuildSchema,
	"count_distinct": AggCountDistinct, "count_distinctif": AggCountDistinctIf,
}

// LookupAggregate returns the aggregation named name.
func LookupAggregate(name string) (AggID, bool) {
	a, ok := aggByName[name]
	return a, ok
}

// Dcount accuracy levels as Kusto's: level → HyperLogLog precision (log2 of
// the register count) and the cardinality below which the count is exact.
var dcountLevels = [5]struct{ Precision, Exact int }{
	{12, 1000}, {14, 1000}, {16, 8000}, {17, 8000}, {18, 8000},
}

// DcountPrecision returns the HyperLogLog precision and exact-count threshold
// of a dcount accuracy level (0–4, default 1).
func DcountPrecision(level int) (precision, exact int) {
	if level < 0 || level >= len(dcountLevels) {
		level = 1
	}
	return dcountLevels[level].Precision, dcountLevels[level].Exact
}

// AggCall is one bound aggregation of a summarize.
type AggCall struct {
	Name string // output column
	Fn   AggID
	Args []Scalar // the value first, then the predicate for the *if forms
	T    Type     // result type
	// Accuracy is dcount's accuracy level (0–4).
	Accuracy int
	// Percents are the requested percentiles (0–100) of percentile (one)
	// and percentiles_array (one or more).
	Percents []float64
}

// resolveAggregate type-checks an aggregation call and returns its result type.
func resolveAggregate(fn AggID, args []Scalar) (*AggCall, error) {
	want := func(n int) error {
		if len(args) != n {
			return fmt.Errorf("function '%s' expects %d argument(s), got %d", fn, n, len(args))
		}
		return nil
	}
	pred := func(i int) error {
		if args[i].Type() != store.TypeBool {
			return fmt.Errorf("function '%s': the predicate must be bool, got %s", fn, args[i].Type())
		}
		return nil
	}
	ac := &AggCall{Fn: fn, Args: args, Accuracy: 1}
	switch fn {
	case AggCount:
		if len(args) > 1 {
			return nil, fmt.Errorf("function 'count' expects at most 1 argument, got %d", len(args))
		}
		ac.T = store.TypeLong
	case AggCountIf:
		if err := want(1); err != nil {
			return nil, err
		}
		if err := pred(0); err != nil {
			return nil, err
		}
		ac.T = store.TypeLong
	case AggSum, AggSumIf, AggAvg, AggAvgIf:
		n := 1
		if fn == AggSumIf || fn == AggAvgIf {
			n = 2
		}
		if err := want(n); err != nil {
			return nil, err
		}
		if n == 2 {
			if err := pred(1); err != nil {
				return nil, err
			}
		}
		t := args[0].Type()
		switch {
		case t == store.TypeTimespan:
			ac.T = t
		case IsInteger(t) && (fn == AggSum || fn == AggSumIf):
			ac.T = store.TypeLong
		case t == store.TypeDecimal:
			ac.T = store.TypeDecimal // exact (engine/agg_decimal.go)
		case IsNumeric(t) || t == store.TypeBool:
			ac.T = store.TypeReal
			if (fn == AggSum || fn == AggSumIf) && t == store.TypeBool {
				ac.T = store.TypeLong
			}
		default:
			return nil, fmt.Errorf("function '%s' expects a numeric argument, got %s", fn, t)
		}
	case AggMin, AggMax, AggMinIf, AggMaxIf:
		n := 1
		if fn == AggMinIf || fn == AggMaxIf {
			n = 2
		}
		if err := want(n); err != nil {
			return nil, err
		}
		if n == 2 {
			if err := pred(1); err != nil {
				return nil, err
			}
		}
		if args[0].Type() == store.TypeDynamic {
			return nil, fmt.Errorf("function '%s' does not accept a dynamic argument", fn)
		}
		ac.T = args[0].Type()
	case AggDcount, AggDcountIf:
		min := 1
		if fn == AggDcountIf {
			min = 2
		}
		if len(args) < min || len(args) > min+1 {
			return nil, fmt.Errorf("function '%s' expects %d or %d arguments, got %d", fn, min, min+1, len(args))
		}
		if fn == AggDcountIf {
			if err := pred(1); err != nil {
				return nil, err
			}
		}
		if len(args) == min+1 {
			c, ok := args[min].(*Const)
			if !ok || !IsInteger(c.V.Type) || c.V.Null || c.V.Int < 0 || c.V.Int > 4 {
				return nil, fmt.Errorf("function '%s': accuracy must be an integer constant between 0 and 4", fn)
			}
			ac.Accuracy = int(c.V.Int)
			ac.Args = args[:min]
		}
		ac.T = store.TypeLong
	case AggTakeAny:
		if err := want(1); err != nil {
			return nil, err
		}
		ac.T = args[0].Type()
	case AggArgMax, AggArgMin:
		// Bound per returned column: (ExprToMaximize, ExprToReturn).
		if err := want(2); err != nil {
			return nil, err
		}
		if args[0].Type() == store.TypeDynamic {
			return nil, fmt.Errorf("function '%s' cannot maximize a dynamic value", fn)
		}
		ac.T = args[1].Type()
	case AggPercentile, AggPercentiles, AggPercentilesArray:
		if len(args) < 2 || (fn == AggPercentile && len(args) != 2) {
			return nil, fmt.Errorf("function '%s' expects an expression and percentile constants", fn)
		}
		t := args[0].Type()
		if !IsNumeric(t) && t != store.TypeDatetime && t != store.TypeTimespan {
			return nil, fmt.Errorf("function '%s' expects a numeric, datetime or timespan argument, got %s", fn, t)
		}
		for _, a := range args[1:] {
			ps, err := percentConsts(fn, a, fn == AggPercentilesArray && len(args) == 2)
			if err != nil {
				return nil, err
			}
			ac.Percents = append(ac.Percents, ps...)
		}
		ac.Args = args[:1]
		ac.T = t
		if t == store.TypeDecimal {
			ac.T = store.TypeReal
		}
		if fn == AggPercentilesArray {
			ac.T = store.TypeDynamic
		}
	case AggStdev, AggVariance, AggStdevp, AggVariancep:
		if err := want(1); err != nil {
			return nil, err
		}
		if !IsNumeric(args[0].Type()) {
			return nil, fmt.Errorf("function '%s' expects a numeric argument, got %s", fn, args[0].Type())
		}
		ac.T = store.TypeReal
	case AggMakeList, AggMakeSet, AggMakeListIf, AggMakeSetIf:
		n := 1
		if fn == AggMakeListIf || fn == AggMakeSetIf {
			n = 2
		}
		if len(args) < n || len(args) > n+1 {
			return nil, fmt.Errorf("function '%s' expects %d or %d arguments, got %d", fn, n, n+1, len(args))
		}
		if n == 2 {
			if err := pred(1); err != nil {
				return nil, err
			}
		}
		if len(args) == n+1 {
			c, ok := args[n].(*Const)
			if !ok || !IsInteger(c.V.Type) || c.V.Null || c.V.Int <= 0 {
				return nil, fmt.Errorf("function '%s': max size must be a positive integer constant", fn)
			}
			ac.Accuracy = int(min(c.V.Int, 1<<20))
			ac.Args = args[:n]
		} else {
			ac.Accuracy = 1 << 20
		}
		ac.T = store.TypeDynamic
	default:
		return resolveAggregateExt(ac, fn, args)
	}
	return ac, nil
}

// percentConsts reads a percentile argument: a numeric constant in [0, 100],
// or (when array is true) a constant dynamic array of them.
func percentConsts(fn AggID, a Scalar, array bool) ([]float64, error) {
	c, ok := a.(*Const)
	bad := fmt.Errorf("function '%s': percentiles must be numeric constants between 0 and 100", fn)
	if !ok || c.V.Null {
		return nil, bad
	}
	var ps []float64
	switch {
	case IsInteger(c.V.Type):
		ps = []float64{float64(c.V.Int)}
	case IsRealHeld(c.V.Type):
		ps = []float64{c.V.Real}
	case array && c.V.Type == store.TypeDynamic:
		if err := json.Unmarshal([]byte(c.V.Str), &ps); err != nil || len(ps) == 0 {
			return nil, bad
		}
	default:
		return nil, bad
	}
	for _, p := range ps {
		if !(p >= 0 && p <= 100) {
			return nil, bad
		}
	}
	return ps, nil
}

// castTo wraps e in a conversion to t unless it already has that type.
func castTo(e Scalar, t Type) Scalar {
	if e.Type() == t {
		return e
	}
	if c, ok := e.(*Const); ok {
		if v, ok := convertValue(c.V, t); ok {
			return &Const{V: v}
		}
	}
	return &FnCall{Fn: OpCast, Args: []Scalar{e}, T: t}
}

// convertValue converts a constant exactly (int→long, integer→real,
// long→int by truncation); ok is false for other conversions.
func convertValue(v Value, t Type) (Value, bool) {
	if v.Null {
		return NullValue(t), true
	}
	switch {
	case IsInteger(v.Type) && IsInteger(t):
		out := Value{Type: t, Int: v.Int}
		if t == store.TypeInt {
			out.Int = int64(int32(v.Int))
		}
		return out, true
	case IsInteger(v.Type) && IsRealHeld(t):
		out := Value{Type: t, Real: float64(v.Int)}
		if t == store.TypeDecimal {
			out.Str = strconv.FormatInt(v.Int, 10) // exact, beyond 2^53 too
		}
		return out, true
	case IsRealHeld(v.Type) && IsRealHeld(t):
		return Value{Type: t, Real: v.Real}, true
	case IsStringLike(v.Type) && IsStringLike(t):
		return Value{Type: t, Str: v.Str}, true
	}
	return Value{}, false
}

// numericResult is the type of an arithmetic operation on two numbers: real
// if either is real, else decimal if either is decimal, otherwise long.
func numericResult(a, b Type) Type {
	switch {
	case a == store.TypeReal || b == store.TypeReal:
		return store.TypeReal
	case a == store.TypeDecimal || b == store.TypeDecimal:
		return store.TypeDecimal
	}
	return store.TypeLong
}

// resolveBinary type-checks an arithmetic operator and returns the bound call.
func resolveArith(op FuncID, l, r Scalar) (Scalar, error) {
	l, r = undynamic(l, r)
	lt, rt := l.Type(), r.Type()
	bad := func() error {
		return fmt.Errorf("operator '%s' cannot be applied to %s and %s", opSymbol(op), lt, rt)
	}
	if IsNumeric(lt) && IsNumeric(rt) {
		t := numericResult(lt, rt)
		return &FnCall{Fn: op, Args: []Scalar{castTo(l, t), castTo(r, t)}, T: t}, nil
	}
	D, S := store.TypeDatetime, store.TypeTimespan
	switch op {
	case OpAdd:
		switch {
		case lt == D && rt == S, lt == S && rt == D:
			return &FnCall{Fn: op, Args: []Scalar{l, r}, T: D}, nil
		case lt == S && rt == S:
			return &FnCall{Fn: op, Args: []Scalar{l, r}, T: S}, nil
		}
	case OpSub:
		switch {
		case lt == D && rt == D:
			return &FnCall{Fn: op, Args: []Scalar{l, r}, T: S}, nil
		case lt == D && rt == S:
			return &FnCall{Fn: op, Args: []Scalar{l, r}, T: D}, nil
		case lt == S && rt == S:
			return &FnCall{Fn: op, Args: []Scalar{l, r}, T: S}, nil
		}
	case OpMul:
		switch {
		case lt == S && IsInteger(rt), IsInteger(lt) && rt == S:
			return &FnCall{Fn: op, Args: []Scalar{castTo(l, store.TypeLong), castTo(r, store.TypeLong)}, T: S}, nil
		case lt == S && IsRealHeld(rt):
			m := &FnCall{Fn: op, Args: []Scalar{castTo(l, store.TypeReal), r}, T: store.TypeReal}
			return castTo(m, S), nil
		case IsRealHeld(lt) && rt == S:
			m := &FnCall{Fn: op, Args: []Scalar{l, castTo(r, store.TypeReal)}, T: store.TypeReal}
			return castTo(m, S), nil
		}
	case OpDiv:
		switch {
		case lt == S && rt == S:
			return &FnCall{Fn: OpDivSpans, Args: []Scalar{l, r}, T: store.TypeReal}, nil
		case lt == S && IsInteger(rt):
			return &FnCall{Fn: op, Args: []Scalar{l, castTo(r, store.TypeLong)}, T: S}, nil
		case lt == S && IsRealHeld(rt):
			m := &FnCall{Fn: op, Args: []Scalar{castTo(l, store.TypeReal), r}, T: store.TypeReal}
			return castTo(m, S), nil
		}
	case OpMod:
		if lt == S && rt == S {
			return &FnCall{Fn: op, Args: []Scalar{l, r}, T: S}, nil
		}
	}
	return nil, bad()
}

// FromDynamic converts a dynamic expression to scalar type t (tostring,
// tolong, todouble, ... semantics), as Kusto does when a dynamic value meets
// a typed one.
func FromDynamic(e Scalar, t Type) Scalar {
	fn := FnToString
	switch {
	case t == store.TypeInt:
		fn = FnToInt
	case IsInteger(t):
		fn = FnToLong
	case IsRealHeld(t):
		fn = FnToReal
	case t == store.TypeBool:
		fn = FnToBool
	case t == store.TypeDatetime:
		fn = FnToDatetime
	case t == store.TypeTimespan:
		fn = FnToTimespan
	default:
		t = store.TypeString
	}
	return &FnCall{Fn: fn, Args: []Scalar{e}, T: t}
}

// undynamic converts whichever of l and r is dynamic to the other's type.
func undynamic(l, r Scalar) (Scalar, Scalar) {
	lt, rt := l.Type(), r.Type()
	switch {
	case lt == store.TypeDynamic && rt != store.TypeDynamic:
		l = FromDynamic(l, rt)
	case rt == store.TypeDynamic && lt != store.TypeDynamic:
		r = FromDynamic(r, lt)
	}
	return l, r
}

// resolveCompare type-checks a comparison operator (==, !=, <, <=, >, >=, =~, !~).
func resolveCompare(op FuncID, l, r Scalar) (Scalar, error) {
	l, r = undynamic(l, r)
	lt, rt := l.Type(), r.Type()
	if op == OpEqCI || op == OpNeCI {
		if !IsStringLike(lt) || !IsStringLike(rt) {
			return nil, fmt.Errorf("operator '%s' expects string operands, got %s and %s", opSymbol(op), lt, rt)
		}
		return &FnCall{Fn: op, Args: []Scalar{l, r}, T: store.TypeBool}, nil
	}
	switch {
	case IsNumeric(lt) && IsNumeric(rt):
		t := numericResult(lt, rt)
		return &FnCall{Fn: op, Args: []Scalar{castTo(l, t), castTo(r, t)}, T: store.TypeBool}, nil
	case lt == rt && lt != store.TypeDynamic:
		if lt == store.TypeBool && op != OpEq && op != OpNe {
			break
		}
		return &FnCall{Fn: op, Args: []Scalar{l, r}, T: store.TypeBool}, nil
	case IsStringLike(lt) && IsStringLike(rt):
		return &FnCall{Fn: op, Args: []Scalar{l, r}, T: store.TypeBool}, nil
	}
	return nil, fmt.Errorf("cannot compare %s and %s with '%s'", lt, rt, opSymbol(op))
}

// resolveStringOp type-checks a string operator (contains, has, startswith,
// ...). A non-string left operand is compared by its string form, as Kusto does.
func resolveStringOp(op FuncID, l, r Scalar) (Scalar, error) {
	if !IsStringLike(r.Type()) {
		return nil, fmt.Errorf("operator '%s' expects a string on its right, got %s", opSymbol(op), r.Type())
	}
	if op == OpMatchesRegex {
		c, ok := r.(*Const)
		if !ok {
			return nil, fmt.Errorf("operator 'matches regex' expects a constant pattern")
		}
		if _, err := CompileRegex(c.V.Str); err != nil {
			return nil, fmt.Errorf("operator 'matches regex': %v", err)
		}
	}
	if !IsStringLike(l.Type()) || l.Type() == store.TypeDynamic {
		l = &FnCall{Fn: FnToString, Args: []Scalar{l}, T: store.TypeString}
	}
	return &FnCall{Fn: op, Args: []Scalar{l, r}, T: store.TypeBool}, nil
}

// resolveIn type-checks `x in (list)`; every list element must be a constant
// of a type comparable with x.
func resolveIn(ci bool, x Scalar, list []Scalar) (Scalar, error) {
	if x.Type() == store.TypeDynamic && len(list) > 0 {
		x = FromDynamic(x, list[0].Type())
	}
	xt := x.Type()
	args := make([]Scalar, 0, len(list)+1)
	if ci {
		if !IsStringLike(xt) {
			x = &FnCall{Fn: FnToString, Args: []Scalar{x}, T: store.TypeString}
			xt = store.TypeString
		}
	}
	target := xt
	if IsNumeric(xt) {
		target = xt
		for _, e := range list {
			if IsNumeric(e.Type()) {
				target = numericResult(target, e.Type())
			}
		}
		x = castTo(x, target)
	}
	args = append(args, x)
	for i, e := range list {
		c, ok := e.(*Const)
		if !ok {
			return nil, fmt.Errorf("operator 'in': element %d of the list must be a constant", i+1)
		}
		v := c.V
		switch {
		case IsNumeric(target) && IsNumeric(v.Type) && v.Type != target: // (a decimal keeps its exact Str)
			v, _ = convertValue(v, target)
		case IsStringLike(target) && IsStringLike(v.Type):
			v.Type = target
		case v.Type == target:
		default:
			return nil, fmt.Errorf("operator 'in': element %d has type %s, expected %s", i+1, v.Type, target)
		}
		if ci {
			v.Str = strings.ToLower(v.Str)
		}
		args = append(args, &Const{V: v})
	}
	fn := OpIn
	if ci {
		fn = OpInCI
	}
	return &FnCall{Fn: fn, Args: args, T: store.TypeBool}, nil
}

// resolveLogical type-checks and/or/not.
func resolveLogical(op FuncID, args ...Scalar) (Scalar, error) {
	for _, a := range args {
		if a.Type() != store.TypeBool {
			return nil, fmt.Errorf("operator '%s' expects bool operands, got %s", opSymbol(op), a.Type())
		}
	}
	return &FnCall{Fn: op, Args: args, T: store.TypeBool}, nil
}

func opSymbol(op FuncID) string {
	switch op {
	case OpAdd:
		return "+"
	case OpSub:
		return "-"
	case OpMul:
		return "*"
	case OpDiv, OpDivSpans:
		return "/"
	case OpMod:
		return "%"
	case OpNeg:
		return "-"
	case OpMatchesRegex:
		return "matches regex"
	}
	return op.String()
}

// stringOps maps KQL string operator spellings to (operator, negated).
var stringOps = map[string]struct {
	Fn  FuncID
	Neg bool
}{
	"contains": {OpContains, false}, "!contains": {OpContains, true},
	"contains_cs": {OpContainsCS, false}, "!contains_cs": {OpContainsCS, true},
	"has": {OpHas, false}, "!has": {OpHas, true}, "has_cs": {OpHasCS, false}, "!has_cs": {OpHasCS, true},
	"hasprefix": {OpHasPrefix, false}, "!hasprefix": {OpHasPrefix, true},
	"hasprefix_cs": {OpHasPrefixCS, false}, "!hasprefix_cs": {OpHasPrefixCS, true},
	"hassuffix": {OpHasSuffix, false}, "!hassuffix": {OpHasSuffix, true},
	"hassuffix_cs": {OpHasSuffixCS, false}, "!hassuffix_cs": {OpHasSuffixCS, true},
	"startswith": {OpStartsWith, false}, "!startswith": {OpStartsWith, true},
	"startswith_cs": {OpStartsWithCS, false}, "!startswith_cs": {OpStartsWithCS, true},
	"endswith": {OpEndsWith, false}, "!endswith": {OpEndsWith, true},
	"endswith_cs": {OpEndsWithCS, false}, "!endswith_cs": {OpEndsWithCS, true},
	"matches regex": {OpMatchesRegex, false}, "matches_regex": {OpMatchesRegex, false},
}

// ResolveBinaryOperator binds a binary operator given its KQL spelling
// ("+", "==", "has", "!contains", "and", ...).
func ResolveBinaryOperator(op string, l, r Scalar) (Scalar, error) {
	switch op {
	case "+":
		return resolveArith(OpAdd, l, r)
	case "-":
		return resolveArith(OpSub, l, r)
	case "*":
		return resolveArith(OpMul, l, r)
	case "/":
		return resolveArith(OpDiv, l, r)
	case "%":
		return resolveArith(OpMod, l, r)
	case "==":
		return resolveCompare(OpEq, l, r)
	case "!=", "<>":
		return resolveCompare(OpNe, l, r)
	case "<":
		return resolveCompare(OpLt, l, r)
	case "<=":
		return resolveCompare(OpLe, l, r)
	case ">":
		return resolveCompare(OpGt, l, r)
	case ">=":
		return resolveCompare(OpGe, l, r)
	case "=~":
		return resolveCompare(OpEqCI, l, r)
	case "!~":
		return resolveCompare(OpNeCI, l, r)
	case "and":
		return resolveLogical(OpAnd, l, r)
	case "or":
		return resolveLogical(OpOr, l, r)
	}
	if so, ok := stringOps[strings.ToLower(op)]; ok {
		e, err := resolveStringOp(so.Fn, l, r)
		if err != nil || !so.Neg {
			return e, err
		}
		return &FnCall{Fn: OpNot, Args: []Scalar{e}, T: store.TypeBool}, nil
	}
	return nil, fmt.Errorf("operator '%s' is not supported", op)
}

// ResolveUnaryMinus binds -x.
func ResolveUnaryMinus(x Scalar) (Scalar, error) {
	t := x.Type()
	if c, ok := x.(*Const); ok && !c.V.Null {
		v := c.V
		switch {
		case IsIntHeld(t) && t != store.TypeDatetime:
			v.Int = -v.Int
			return &Const{V: v}, nil
		case IsRealHeld(t):
			v.Real = -v.Real
			if t == store.TypeDecimal && v.Str != "" {
				// the exact digits of a decimal literal change sign too
				if rest, ok := strings.CutPrefix(v.Str, "-"); ok {
					v.Str = rest
				} else {
					v.Str = "-" + strings.TrimPrefix(v.Str, "+")
				}
			}
			return &Const{V: v}, nil
		}
	}
	if t == store.TypeInt {
		x, t = castTo(x, store.TypeLong), store.TypeLong
	}
	if !IsNumeric(t) && t != store.TypeTimespan {
		return nil, fmt.Errorf("operator '-' cannot be applied to %s", t)
	}
	return &FnCall{Fn: OpNeg, Args: []Scalar{x}, T: t}, nil
}

// ResolveBetween binds `x between (lo .. hi)` as lo <= x and x <= hi; for a
// datetime x, hi may be a timespan meaning lo + hi, as in Kusto.
func ResolveBetween(x, lo, hi Scalar, negate bool) (Scalar, error) {
	if x.Type() == store.TypeDatetime && hi.Type() == store.TypeTimespan {
		var err error
		if hi, err = resolveArith(OpAdd, lo, hi); err != nil {
			return nil, err
		}
	}
	ge, err := resolveCompare(OpGe, x, lo)
	if err != nil {
		return nil, fmt.Errorf("between: %w", err)
	}
	le, err := resolveCompare(OpLe, x, hi)
	if err != nil {
		return nil, fmt.Errorf("between: %w", err)
	}
	e := Scalar(&FnCall{Fn: OpAnd, Args: []Scalar{ge, le}, T: store.TypeBool})
	if negate {
		e = &FnCall{Fn: OpNot, Args: []Scalar{e}, T: store.TypeBool}
	}
	return e, nil
}

// ResolveIn binds `x in (...)`, `x !in (...)`, `x in~ (...)`, `x !in~ (...)`.
func ResolveIn(op string, x Scalar, list []Scalar) (Scalar, error) {
	ci := strings.HasSuffix(op, "~")
	e, err := resolveIn(ci, x, list)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(op, "!") {
		e = &FnCall{Fn: OpNot, Args: []Scalar{e}, T: store.TypeBool}
	}
	return e, nil
}

// commonType is the type two branches (iff, case, coalesce) unify to.
func commonType(a, b Type) (Type, bool) {
	switch {
	case a == b:
		return a, true
	case IsNumeric(a) && IsNumeric(b):
		if IsRealHeld(a) || IsRealHeld(b) {
			return store.TypeReal, true
		}
		return store.TypeLong, true
	case IsStringLike(a) && IsStringLike(b):
		return store.TypeString, true
	}
	return store.TypeInvalid, false
}

// ResolveFunction binds a call of the named scalar function. now is used by
// nothing here; now() and ago() are evaluated by the executor with the
// query's clock.
func ResolveFunction(name string, args []Scalar) (Scalar, error) {
	n := len(args)
	arity := func(lo, hi int) error {
		if n < lo || n > hi {
			if lo == hi {
				return fmt.Errorf("function '%s' expects %d argument(s), got %d", name, lo, n)
			}
			return fmt.Errorf("function '%s' expects between %d and %d arguments, got %d", name, lo, hi, n)
		}
		return nil
	}
	argType := func(i int, ok bool, want string) error {
		if !ok {
			return fmt.Errorf("function '%s' expects %s as argument %d, got %s", name, want, i+1, args[i].Type())
		}
		return nil
	}
	call := func(fn FuncID, t Type, a ...Scalar) Scalar { return &FnCall{Fn: fn, Args: a, T: t} }
	S, D := store.TypeTimespan, store.TypeDatetime
	lname := strings.ToLower(name)
	if _, ok := funcIndex[lname]; !ok {
		return nil, unknownFunction(name)
	}
	if r, ok, err := resolveExt(lname, args); ok {
		return r, err
	}
	switch lname {
	case "now":
		if err := arity(0, 1); err != nil {
			return nil, err
		}
		if n == 1 {
			if err := argType(0, args[0].Type() == S, "a timespan"); err != nil {
				return nil, err
			}
			return resolveArith(OpAdd, call(FnNow, D), args[0])
		}
		return call(FnNow, D), nil
	case "ago":
		if err := arity(1, 1); err != nil {
			return nil, err
		}
		if err := argType(0, args[0].Type() == S, "a timespan"); err != nil {
			return nil, err
		}
		return call(FnAgo, D, args[0]), nil
	case "bin", "floor":
		if strings.ToLower(name) == "floor" && n == 1 {
			if !IsNumeric(args[0].Type()) {
				return nil, argType(0, false, "a number")
			}
			return call(FnFloor, numericResult(args[0].Type(), args[0].Type()), args[0]), nil
		}
		if err := arity(2, 2); err != nil {
			return nil, err
		}
		v, r := args[0], args[1]
		vt, rt := v.Type(), r.Type()
		switch {
		case IsNumeric(vt) && IsNumeric(rt):
			t := numericResult(vt, rt)
			if IsInteger(vt) && IsRealHeld(rt) {
				t = store.TypeReal
			}
			return call(FnBin, t, castTo(v, t), castTo(r, t)), nil
		case (vt == D || vt == S) && rt == S:
			return call(FnBin, vt, v, r), nil
		case vt == D && IsNumeric(rt), vt == S && IsNumeric(rt):
			// bin(datetime, 1) is not meaningful in Kusto either; reject clearly.
			return nil, fmt.Errorf("function '%s' expects a timespan bin size for a %s value", name, vt)
		}
		return nil, fmt.Errorf("function '%s' cannot bin %s by %s", name, vt, rt)
	case "tostring":
		if err := arity(1, 1); err != nil {
			return nil, err
		}
		return call(FnToString, store.TypeString, args[0]), nil
	case "toint":
		if err := arity(1, 1); err != nil {
			return nil, err
		}
		return call(FnToInt, store.TypeInt, args[0]), nil
	case "tolong":
		if err := arity(1, 1); err != nil {
			return nil, err
		}
		return call(FnToLong, store.TypeLong, args[0]), nil
	case "todouble", "toreal":
		if err := arity(1, 1); err != nil {
			return nil, err
		}
		return call(FnToReal, store.TypeReal, args[0]), nil
	case "todecimal":
		if err := arity(1, 1); err != nil {
			return nil, err
		}
		return call(FnToReal, store.TypeDecimal, args[0]), nil
	case "tobool", "toboolean":
		if err := arity(1, 1); err != nil {
			return nil, err
		}
		return call(FnToBool, store.TypeBool, args[0]), nil
	case "todatetime":
		if err := arity(1, 1); err != nil {
			return nil, err
		}
		return call(FnToDatetime, D, args[0]), nil
	case "totimespan", "totime":
		if err := arity(1, 1); err != nil {
			return nil, err
		}
		return call(FnToTimespan, S, args[0]), nil
	case "strcat":
		if err := arity(1, 64); err != nil {
			return nil, err
		}
		return call(FnStrcat, store.TypeString, args...), nil
	case "strcat_delim":
		if err := arity(3, 64); err != nil {
			return nil, err
		}
		return call(FnStrcatDelim, store.TypeString, args...), nil
	case "strlen":
		if err := arity(1, 1); err != nil {
			return nil, err
		}
		return call(FnStrlen, store.TypeLong, toStr(args[0])), nil
	case "tolower", "toupper":
		if err := arity(1, 1); err != nil {
			return nil, err
		}
		fn := FnToLower
		if strings.ToLower(name) == "toupper" {
			fn = FnToUpper
		}
		return call(fn, store.TypeString, toStr(args[0])), nil
	case "substring":
		if err := arity(2, 3); err != nil {
			return nil, err
		}
		a := []Scalar{toStr(args[0])}
		for i := 1; i < n; i++ {
			if err := argType(i, IsInteger(args[i].Type()), "an integer"); err != nil {
				return nil, err
			}
			a = append(a, castTo(args[i], store.TypeLong))
		}
		return call(FnSubstring, store.TypeString, a...), nil
	case "indexof":
		// indexof(string, match [, start [, length [, occurrence]]])
		if err := arity(2, 5); err != nil {
			return nil, err
		}
		xs := []Scalar{toStr(args[0]), toStr(args[1])}
		for k := 2; k < len(args); k++ {
			if !IsInteger(args[k].Type()) {
				return nil, fmt.Errorf("function 'indexof' expects argument %d to be an integer, got %s", k+1, args[k].Type())
			}
			xs = append(xs, castTo(args[k], store.TypeLong))
		}
		return call(FnIndexOf, store.TypeLong, xs...), nil
	case "countof":
		if err := arity(2, 2); err != nil {
			return nil, err
		}
		return call(FnCountOf, store.TypeLong, toStr(args[0]), toStr(args[1])), nil
	case "replace_string":
		if err := arity(3, 3); err != nil {
			return nil, err
		}
		return call(FnReplaceString, store.TypeString, toStr(args[0]), toStr(args[1]), toStr(args[2])), nil
	case "trim":
		if err := arity(2, 2); err != nil {
			return nil, err
		}
		c, ok := args[0].(*Const)
		if !ok {
			return nil, fmt.Errorf("function 'trim' expects a constant regular expression")
		}
		if _, err := CompileRegex(c.V.String()); err != nil {
			return nil, fmt.Errorf("function 'trim': %v", err)
		}
		return call(FnTrim, store.TypeString, toStr(args[0]), toStr(args[1])), nil
	case "extract":
		if err := arity(3, 3); err != nil {
			return nil, err
		}
		c, ok := args[0].(*Const)
		if !ok {
			return nil, fmt.Errorf("function 'extract' expects a constant regular expression")
		}
		if _, err := CompileRegex(c.V.String()); err != nil {
			return nil, fmt.Errorf("function 'extract': %v", err)
		}
		if err := argType(1, IsInteger(args[1].Type()), "an integer"); err != nil {
			return nil, err
		}
		return call(FnExtract, store.TypeString, toStr(args[0]), castTo(args[1], store.TypeLong), toStr(args[2])), nil
	case "iff", "iif":
		if err := arity(3, 3); err != nil {
			return nil, err
		}
		if err := argType(0, args[0].Type() == store.TypeBool, "a bool"); err != nil {
			return nil, err
		}
		t, ok := commonType(args[1].Type(), args[2].Type())
		if !ok {
			return nil, fmt.Errorf("function '%s': branches have incompatible types %s and %s", name, args[1].Type(), args[2].Type())
		}
		return call(FnIff, t, args[0], castTo(args[1], t), castTo(args[2], t)), nil
	case "case":
		if n < 3 || n%2 == 0 {
			return nil, fmt.Errorf("function 'case' expects predicate/value pairs and an else value")
		}
		t := args[1].Type()
		for i := 0; i+1 < n; i += 2 {
			if err := argType(i, args[i].Type() == store.TypeBool, "a bool"); err != nil {
				return nil, err
			}
		}
		for i := 1; i < n; i += 2 {
			var ok bool
			if t, ok = commonType(t, args[i].Type()); !ok {
				return nil, fmt.Errorf("function 'case': values have incompatible types")
			}
		}
		var ok bool
		if t, ok = commonType(t, args[n-1].Type()); !ok {
			return nil, fmt.Errorf("function 'case': values have incompatible types")
		}
		a := make([]Scalar, n)
		for i := range args {
			if i%2 == 1 || i == n-1 {
				a[i] = castTo(args[i], t)
			} else {
				a[i] = args[i]
			}
		}
		return call(FnCase, t, a...), nil
	case "coalesce":
		if err := arity(1, 64); err != nil {
			return nil, err
		}
		t := args[0].Type()
		for _, a := range args[1:] {
			var ok bool
			if t, ok = commonType(t, a.Type()); !ok {
				return nil, fmt.Errorf("function 'coalesce': arguments have incompatible types")
			}
		}
		a := make([]Scalar, n)
		for i := range args {
			a[i] = castTo(args[i], t)
		}
		return call(FnCoalesce, t, a...), nil
	case "isempty", "isnotempty", "isnull", "isnotnull", "notnull", "notempty":
		if err := arity(1, 1); err != nil {
			return nil, err
		}
		fn := map[string]FuncID{"isempty": FnIsEmpty, "isnotempty": FnIsNotEmpty, "notempty": FnIsNotEmpty,
			"isnull": FnIsNull, "isnotnull": FnIsNotNull, "notnull": FnIsNotNull}[strings.ToLower(name)]
		return call(fn, store.TypeBool, args[0]), nil
	case "parse_json", "todynamic", "toobject":
		if err := arity(1, 1); err != nil {
			return nil, err
		}
		if args[0].Type() == store.TypeDynamic {
			return args[0], nil
		}
		return call(FnParseJSON, store.TypeDynamic, toStr(args[0])), nil
	case "array_length":
		if err := arity(1, 1); err != nil {
			return nil, err
		}
		if err := argType(0, args[0].Type() == store.TypeDynamic, "a dynamic value"); err != nil {
			return nil, err
		}
		return call(FnArrayLength, store.TypeLong, args[0]), nil
	case "hash_sha256":
		if err := arity(1, 1); err != nil {
			return nil, err
		}
		return call(FnHashSHA256, store.TypeString, toStr(args[0])), nil
	case "split":
		if err := arity(2, 3); err != nil {
			return nil, err
		}
		a := []Scalar{toStr(args[0]), toStr(args[1])}
		if n == 3 {
			if err := argType(2, IsInteger(args[2].Type()), "an integer"); err != nil {
				return nil, err
			}
			a = append(a, castTo(args[2], store.TypeLong))
		}
		return call(FnSplit, store.TypeDynamic, a...), nil
	case "datetime_add", "datetime_diff":
		if err := arity(3, 3); err != nil {
			return nil, err
		}
		k, ok := args[0].(*Const)
		if !ok || !IsStringLike(k.V.Type) || datetimePart(k.V.Str) == "" {
			return nil, fmt.Errorf("function '%s' expects a constant part name (year, quarter, month, week, day, hour, minute, second, millisecond, microsecond, nanosecond)", name)
		}
		part := &Const{V: StringValue(datetimePart(k.V.Str))}
		if strings.ToLower(name) == "datetime_add" {
			if err := argType(1, IsInteger(args[1].Type()), "an integer"); err != nil {
				return nil, err
			}
			if err := argType(2, args[2].Type() == D, "a datetime"); err != nil {
				return nil, err
			}
			return call(FnDatetimeAdd, D, part, castTo(args[1], store.TypeLong), args[2]), nil
		}
		if err := argType(1, args[1].Type() == D, "a datetime"); err != nil {
			return nil, err
		}
		if err := argType(2, args[2].Type() == D, "a datetime"); err != nil {
			return nil, err
		}
		return call(FnDatetimeDiff, store.TypeLong, part, args[1], args[2]), nil
	case "min_of", "max_of":
		if err := arity(2, 64); err != nil {
			return nil, err
		}
		t := args[0].Type()
		for _, a := range args[1:] {
			var ok bool
			if t, ok = commonType(t, a.Type()); !ok {
				return nil, fmt.Errorf("function '%s': arguments have incompatible types", name)
			}
		}
		if t == store.TypeDynamic || t == store.TypeBool {
			return nil, fmt.Errorf("function '%s' cannot compare %s values", name, t)
		}
		a := make([]Scalar, n)
		for i := range args {
			a[i] = castTo(args[i], t)
		}
		fn := FnMinOf
		if strings.ToLower(name) == "max_of" {
			fn = FnMaxOf
		}
		return call(fn, t, a...), nil
	case "format_datetime":
		if err := arity(2, 2); err != nil {
			return nil, err
		}
		if err := argType(0, args[0].Type() == D, "a datetime"); err != nil {
			return nil, err
		}
		if k, ok := args[1].(*Const); !ok || !IsStringLike(k.V.Type) {
			return nil, fmt.Errorf("function 'format_datetime' expects a constant format")
		}
		return call(FnFormatDatetime, store.TypeString, args[0], args[1]), nil
	case "isnan":
		if err := arity(1, 1); err != nil {
			return nil, err
		}
		if err := argType(0, IsNumeric(args[0].Type()), "a number"); err != nil {
			return nil, err
		}
		return call(FnIsNaN, store.TypeBool, castTo(args[0], store.TypeReal)), nil
	case "not":
		if err := arity(1, 1); err != nil {
			return nil, err
		}
		return resolveLogical(OpNot, args[0])
	case "abs":
		if err := arity(1, 1); err != nil {
			return nil, err
		}
		t := args[0].Type()
		if t == store.TypeInt {
			t = store.TypeLong
		}
		if err := argType(0, IsNumeric(t) || t == S, "a number"); err != nil {
			return nil, err
		}
		return call(FnAbs, t, castTo(args[0], t)), nil
	case "round":
		if err := arity(1, 2); err != nil {
			return nil, err
		}
		if err := argType(0, IsNumeric(args[0].Type()), "a number"); err != nil {
			return nil, err
		}
		rt := store.TypeReal
		if args[0].Type() == store.TypeDecimal {
			rt = store.TypeDecimal // round(decimal) stays decimal, exactly
		}
		a := []Scalar{castTo(args[0], rt)}
		if n == 2 {
			if err := argType(1, IsInteger(args[1].Type()), "an integer"); err != nil {
				return nil, err
			}
			a = append(a, castTo(args[1], store.TypeLong))
		}
		return call(FnRound, rt, a...), nil
	case "sqrt", "log", "log10", "exp", "ceiling":
		if err := arity(1, 1); err != nil {
			return nil, err
		}
		if err := argType(0, IsNumeric(args[0].Type()), "a number"); err != nil {
			return nil, err
		}
		fn := map[string]FuncID{"sqrt": FnSqrt, "log": FnLog, "log10": FnLog10, "exp": FnExp, "ceiling": FnCeiling}[strings.ToLower(name)]
		return call(fn, store.TypeReal, castTo(args[0], store.TypeReal)), nil
	case "pow":
		if err := arity(2, 2); err != nil {
			return nil, err
		}
		for i := range 2 {
			if err := argType(i, IsNumeric(args[i].Type()), "a number"); err != nil {
				return nil, err
			}
		}
		return call(FnPow, store.TypeReal, castTo(args[0], store.TypeReal), castTo(args[1], store.TypeReal)), nil
	case "startofday", "startofhour":
		if err := arity(1, 1); err != nil {
			return nil, err
		}
		if err := argType(0, args[0].Type() == D, "a datetime"); err != nil {
			return nil, err
		}
		fn := FnStartOfDay
		if strings.ToLower(name) == "startofhour" {
			fn = FnStartOfHour
		}
		return call(fn, D, args[0]), nil
	case "dayofweek":
		if err := arity(1, 1); err != nil {
			return nil, err
		}
		if err := argType(0, args[0].Type() == D, "a datetime"); err != nil {
			return nil, err
		}
		return call(FnDayOfWeek, S, args[0]), nil
	case "getyear", "getmonth", "hourofday", "datetime_part_year":
		if err := arity(1, 1); err != nil {
			return nil, err
		}
		if err := argType(0, args[0].Type() == D, "a datetime"); err != nil {
			return nil, err
		}
		fn := map[string]FuncID{"getyear": FnGetYear, "getmonth": FnGetMonth, "hourofday": FnHourOfDay}[strings.ToLower(name)]
		return call(fn, store.TypeInt, args[0]), nil
	}
	return nil, unknownFunction(name)
}

// unknownFunction is the error for a name that is no scalar function.
func unknownFunction(name string) error {
	if _, ok := aggByName[strings.ToLower(name)]; ok {
		return fmt.Errorf("aggregation function '%s' is only allowed in summarize", name)
	}
	switch strings.ToLower(name) {
	case "pack_all", "series_stats":
		return fmt.Errorf("function '%s' depends on the operator it is used in and is bound there, not as a plain scalar", name)
	}
	return unknownFunctionError(name)
}

// unknownFunctionError is Kusto's error for a name that no function has.
type unknownFunctionError string

func (e unknownFunctionError) Error() string {
	return "The name '" + string(e) + "' does not refer to any known function."
}

// datetimePart normalizes a datetime_add/datetime_diff part name.
func datetimePart(s string) string {
	switch strings.ToLower(s) {
	case "year":
		return "year"
	case "quarter":
		return "quarter"
	case "month":
		return "month"
	case "week", "week_of_year":
		return "week"
	case "day":
		return "day"
	case "hour":
		return "hour"
	case "minute":
		return "minute"
	case "second":
		return "second"
	case "millisecond":
		return "millisecond"
	case "microsecond":
		return "microsecond"
	case "nanosecond":
		return "nanosecond"
	}
	return ""
}

// toStr converts a non-string argument by tostring(), as Kusto's string
// functions do.
func toStr(e Scalar) Scalar {
	if IsStringLike(e.Type()) {
		return e
	}
	return &FnCall{Fn: FnToString, Args: []Scalar{e}, T: store.TypeString}
}
