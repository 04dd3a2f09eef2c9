package kql

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"custos/internal/store"
)

// extFuncNames are the KQL spellings of the functions bound by resolveExt.
var extFuncNames = map[FuncID]string{
	FnReplaceRegex: "replace_regex", FnExtractAll: "extract_all", FnTrimStart: "trim_start", FnTrimEnd: "trim_end",
	FnReverse: "reverse", FnBase64Encode: "base64_encode_tostring", FnBase64Decode: "base64_decode_tostring",
	FnBase64FromGUID: "base64_encode_fromguid", FnBase64ToGUID: "base64_decode_toguid",
	FnBase64ToArray: "base64_decode_toarray", FnBase64FromArray: "base64_encode_fromarray",
	FnURLEncode: "url_encode", FnURLDecode: "url_decode", FnParseURL: "parse_url", FnParsePath: "parse_path",
	FnStrrep: "strrep", FnFormatBytes: "format_bytes", FnHash: "hash", FnHashMD5: "hash_md5", FnHashSHA1: "hash_sha1",
	FnToGUID: "toguid", FnGetType: "gettype", FnStrcmp: "strcmp", FnToHex: "tohex", FnBinAt: "bin_at",
	FnStartOf: "startof", FnEndOf: "endof", FnDayOfMonth: "dayofmonth", FnDayOfYear: "dayofyear",
	FnWeekOfYear: "weekofyear", FnDatetimePart: "datetime_part", FnFormatTimespan: "format_timespan",
	FnMakeDatetime: "make_datetime", FnMakeTimespan: "make_timespan", FnUnixToDatetime: "unixtime_todatetime",
	FnDatetimeToUnix: "datetime_to_unixtime", FnMath: "math", FnSign: "sign", FnIsInf: "isinf", FnIsFinite: "isfinite",
	FnBinaryAnd: "binary_and", FnBinaryOr: "binary_or", FnBinaryXor: "binary_xor", FnBinaryNot: "binary_not",
	FnBinaryShiftLeft: "binary_shift_left", FnBinaryShiftRight: "binary_shift_right", FnAtan2: "atan2",
	FnBagPack: "bag_pack", FnPackArray: "pack_array", FnArrayConcat: "array_concat", FnArraySlice: "array_slice",
	FnArrayIndexOf: "array_index_of", FnArraySortAsc: "array_sort_asc", FnArraySortDesc: "array_sort_desc",
	FnArrayReverse: "array_reverse", FnArraySum: "array_sum", FnSetUnion: "set_union", FnSetIntersect: "set_intersect",
	FnSetDifference: "set_difference", FnSetHasElement: "set_has_element", FnBagKeys: "bag_keys",
	FnBagMerge: "bag_merge", FnBagRemoveKeys: "bag_remove_keys", FnBagHasKey: "bag_has_key", FnZip: "zip",
	FnTreePath: "treepath", FnIPv4IsInRange: "ipv4_is_in_range", FnIPv4IsPrivate: "ipv4_is_private",
	FnParseIPv4: "parse_ipv4", FnIPv4Compare: "ipv4_compare", FnIPv4IsMatch: "ipv4_is_match",
	FnFormatIPv4: "format_ipv4", FnSeriesStats: "series_stats_dynamic", FnSeriesFillForward: "series_fill_forward",
	FnSeriesFillBackward: "series_fill_backward", FnSeriesFillConst: "series_fill_const",
	FnSeriesFillLinear: "series_fill_linear", FnRowNumber: "row_number", FnPrev: "prev", FnNext: "next",
	FnRowCumsum: "row_cumsum", FnRowRankDense: "row_rank_dense", FnRowRankMin: "row_rank_min",
	FnRowWindowSession: "row_window_session", FnNewGUID: "new_guid", FnIndexOfRegex: "indexof_regex", FnIsASCII: "isascii", FnIsUTF8: "isutf8",
	FnCountOfRegex: "countof_regex", FnDynamicToString: "dynamic_value", FnDcountHLL: "dcount_hll",
	FnPercentileTDigest: "percentile_tdigest", FnHLLMerge: "hll_merge", FnTDigestMerge: "tdigest_merge",
	FnBagPackNonEmpty: "pack_all", FnMisc: "misc", FnRand: "rand",
}

// IsWindowFunction reports whether fn reads neighbouring rows (row_number,
// prev, next, row_cumsum, row_rank_*): such expressions are only correct
// when evaluated over the whole serialized input in order.
func IsWindowFunction(fn FuncID) bool {
	switch fn {
	case FnRowNumber, FnPrev, FnNext, FnRowCumsum, FnRowRankDense, FnRowRankMin, FnRowWindowSession:
		return true
	}
	return false
}

// IsVolatileFunction reports whether fn gives a different value per call
// (new_guid), so it must not be constant-folded.
func IsVolatileFunction(fn FuncID) bool { return fn == FnNewGUID || fn == FnRand }

// HasWindowFunction reports whether e calls a window function.
func HasWindowFunction(e Scalar) bool {
	c, ok := e.(*FnCall)
	if !ok {
		return false
	}
	if IsWindowFunction(c.Fn) {
		return true
	}
	for _, a := range c.Args {
		if HasWindowFunction(a) {
			return true
		}
	}
	return false
}

// argChecker checks the arguments of one function call.
type argChecker struct {
	name string
	args []Scalar
}

func (a argChecker) arity(lo, hi int) error {
	n := len(a.args)
	if n >= lo && n <= hi {
		return nil
	}
	if lo == hi {
		return fmt.Errorf("function '%s' expects %d argument(s), got %d", a.name, lo, n)
	}
	return fmt.Errorf("function '%s' expects between %d and %d arguments, got %d", a.name, lo, hi, n)
}

func (a argChecker) want(i int, ok bool, what string) error {
	if !ok {
		return fmt.Errorf("function '%s' expects %s as argument %d, got %s", a.name, what, i+1, a.args[i].Type())
	}
	return nil
}

// num requires argument i to be numeric and converts it to real.
func (a argChecker) real(i int) (Scalar, error) {
	if err := a.want(i, IsNumeric(a.args[i].Type()), "a number"); err != nil {
		return nil, err
	}
	return castTo(a.args[i], store.TypeReal), nil
}

// long requires argument i to be an integer and converts it to long.
func (a argChecker) long(i int) (Scalar, error) {
	if err := a.want(i, IsInteger(a.args[i].Type()), "an integer"); err != nil {
		return nil, err
	}
	return castTo(a.args[i], store.TypeLong), nil
}

// integral accepts integers and reals (reals are truncated, as Kusto's
// implicit conversion to long does).
func (a argChecker) integral(i int) (Scalar, error) {
	t := a.args[i].Type()
	if IsRealHeld(t) {
		return &FnCall{Fn: FnToLong, Args: []Scalar{a.args[i]}, T: store.TypeLong}, nil
	}
	return a.long(i)
}

func (a argChecker) datetime(i int) (Scalar, error) {
	if a.args[i].Type() == store.TypeDynamic {
		return FromDynamic(a.args[i], store.TypeDatetime), nil
	}
	if err := a.want(i, a.args[i].Type() == store.TypeDatetime, "a datetime"); err != nil {
		return nil, err
	}
	return a.args[i], nil
}

func (a argChecker) dynamic(i int) (Scalar, error) {
	if err := a.want(i, a.args[i].Type() == store.TypeDynamic, "a dynamic value"); err != nil {
		return nil, err
	}
	return a.args[i], nil
}

func (a argChecker) boolean(i int) (Scalar, error) {
	if err := a.want(i, a.args[i].Type() == store.TypeBool, "a bool"); err != nil {
		return nil, err
	}
	return a.args[i], nil
}

// constRegex requires argument i to be a constant valid RE2 pattern.
func (a argChecker) constRegex(i int) (Scalar, error) {
	c, ok := a.args[i].(*Const)
	if !ok || !IsStringLike(c.V.Type) {
		return nil, fmt.Errorf("function '%s' expects a constant regular expression as argument %d", a.name, i+1)
	}
	if _, err := CompileRegex(c.V.Str); err != nil {
		return nil, fmt.Errorf("function '%s': %v", a.name, err)
	}
	return &Const{V: StringValue(c.V.Str)}, nil
}

// asDynamic converts a scalar argument to a dynamic value the way Kusto
// packs it (a string becomes a JSON string, a number a JSON number).
func asDynamic(e Scalar) Scalar {
	if e.Type() == store.TypeDynamic {
		return e
	}
	return &FnCall{Fn: FnDynamicToString, Args: []Scalar{e}, T: store.TypeDynamic}
}

func constS(s string) Scalar { return &Const{V: StringValue(s)} }

// resolveExt binds the functions added with the registry; ok is false for
// names it does not handle (the older switch in ResolveFunction does).
func resolveExt(name string, args []Scalar) (Scalar, bool, error) {
	a := argChecker{name: name, args: args}
	n := len(args)
	call := func(fn FuncID, t Type, xs ...Scalar) Scalar { return &FnCall{Fn: fn, Args: xs, T: t} }
	ret := func(s Scalar, err error) (Scalar, bool, error) { return s, true, err }
	S, D, L, R, B := store.TypeString, store.TypeDatetime, store.TypeLong, store.TypeReal, store.TypeBool
	Y := store.TypeDynamic
	strArgs := func(lo, hi int) ([]Scalar, error) {
		if err := a.arity(lo, hi); err != nil {
			return nil, err
		}
		out := make([]Scalar, n)
		for i := range args {
			out[i] = toStr(args[i])
		}
		return out, nil
	}
	// unary string → T
	strFn := func(fn FuncID, t Type) (Scalar, bool, error) {
		xs, err := strArgs(1, 1)
		if err != nil {
			return ret(nil, err)
		}
		return ret(call(fn, t, xs...), nil)
	}
	dynArgs := func(lo, hi int) ([]Scalar, error) {
		if err := a.arity(lo, hi); err != nil {
			return nil, err
		}
		for i := range args {
			if _, err := a.dynamic(i); err != nil {
				return nil, err
			}
		}
		return args, nil
	}
	if r, ok, err := resolveMisc(name, args); ok {
		return r, true, err
	}
	switch name {
	case "replace_regex", "replace":
		if err := a.arity(3, 3); err != nil {
			return ret(nil, err)
		}
		src, rw := toStr(args[0]), toStr(args[2])
		if name == "replace" { // the deprecated replace(regex, rewrite, source)
			src, rw = toStr(args[2]), toStr(args[1])
			a.args = []Scalar{args[2], args[0], args[1]}
		}
		rc, err := a.constRegex(1)
		if err != nil {
			return ret(nil, err)
		}
		return ret(call(FnReplaceRegex, S, src, rc, rw), nil)
	case "extract_all":
		if err := a.arity(2, 3); err != nil {
			return ret(nil, err)
		}
		rc, err := a.constRegex(0)
		if err != nil {
			return ret(nil, err)
		}
		re := regexp.MustCompile(rc.(*Const).V.Str)
		if re.NumSubexp() > 16 {
			return ret(nil, fmt.Errorf("function 'extract_all' supports at most 16 capture groups"))
		}
		if n == 2 {
			return ret(call(FnExtractAll, Y, rc, toStr(args[1])), nil)
		}
		g, ok := args[1].(*Const)
		var groups []int
		if !ok || g.V.Type != Y || json.Unmarshal([]byte(g.V.Str), &groups) != nil || len(groups) == 0 {
			return ret(nil, fmt.Errorf("function 'extract_all' expects a constant dynamic array of capture group numbers as argument 2"))
		}
		for _, x := range groups {
			if x < 0 || x > re.NumSubexp() {
				return ret(nil, fmt.Errorf("function 'extract_all': capture group %d does not exist", x))
			}
		}
		return ret(call(FnExtractAll, Y, rc, toStr(args[2]), g), nil)
	case "trim_start", "trim_end":
		if err := a.arity(2, 2); err != nil {
			return ret(nil, err)
		}
		rc, err := a.constRegex(0)
		if err != nil {
			return ret(nil, err)
		}
		fn := FnTrimStart
		if name == "trim_end" {
			fn = FnTrimEnd
		}
		return ret(call(fn, S, rc, toStr(args[1])), nil)
	case "reverse":
		return strFn(FnReverse, S)
	case "base64_encode_tostring", "base64_encodestring":
		return strFn(FnBase64Encode, S)
	case "base64_decode_tostring", "base64_decodestring":
		return strFn(FnBase64Decode, S)
	case "base64_encode_fromguid":
		if err := a.arity(1, 1); err != nil {
			return ret(nil, err)
		}
		if err := a.want(0, args[0].Type() == store.TypeGUID, "a guid"); err != nil {
			return ret(nil, err)
		}
		return ret(call(FnBase64FromGUID, S, args[0]), nil)
	case "base64_decode_toguid":
		return strFn(FnBase64ToGUID, store.TypeGUID)
	case "base64_decode_toarray":
		return strFn(FnBase64ToArray, Y)
	case "base64_encode_fromarray":
		xs, err := dynArgs(1, 1)
		if err != nil {
			return ret(nil, err)
		}
		return ret(call(FnBase64FromArray, S, xs...), nil)
	case "url_encode", "url_encode_component":
		return strFn(FnURLEncode, S)
	case "url_decode":
		return strFn(FnURLDecode, S)
	case "parse_url", "parseurl":
		return strFn(FnParseURL, Y)
	case "parse_path":
		return strFn(FnParsePath, Y)
	case "isascii":
		return strFn(FnIsASCII, B)
	case "isutf8":
		return strFn(FnIsUTF8, B)
	case "strrep":
		if err := a.arity(2, 3); err != nil {
			return ret(nil, err)
		}
		mult, err := a.integral(1)
		if err != nil {
			return ret(nil, err)
		}
		xs := []Scalar{toStr(args[0]), mult}
		if n == 3 {
			xs = append(xs, toStr(args[2]))
		}
		return ret(call(FnStrrep, S, xs...), nil)
	case "strcmp":
		xs, err := strArgs(2, 2)
		if err != nil {
			return ret(nil, err)
		}
		return ret(call(FnStrcmp, store.TypeInt, xs...), nil)
	case "indexof_regex":
		if err := a.arity(2, 2); err != nil {
			return ret(nil, err)
		}
		rc, err := a.constRegex(1)
		if err != nil {
			return ret(nil, err)
		}
		return ret(call(FnIndexOfRegex, L, toStr(args[0]), rc), nil)
	case "countof":
		if n != 3 {
			return nil, false, nil
		}
		k, ok := args[2].(*Const)
		if !ok || !IsStringLike(k.V.Type) || (k.V.Str != "normal" && k.V.Str != "regex") {
			return ret(nil, fmt.Errorf("function 'countof' expects \"normal\" or \"regex\" as argument 3"))
		}
		if k.V.Str == "normal" {
			return ret(call(FnCountOf, L, toStr(args[0]), toStr(args[1])), nil)
		}
		rc, err := a.constRegex(1)
		if err != nil {
			return ret(nil, err)
		}
		return ret(call(FnCountOfRegex, L, toStr(args[0]), rc), nil)
	case "format_bytes":
		if err := a.arity(1, 3); err != nil {
			return ret(nil, err)
		}
		x, err := a.real(0)
		if err != nil {
			return ret(nil, err)
		}
		xs := []Scalar{x, &Const{V: LongValue(0)}, constS("")}
		if n >= 2 {
			if xs[1], err = a.integral(1); err != nil {
				return ret(nil, err)
			}
		}
		if n == 3 {
			xs[2] = toStr(args[2])
		}
		return ret(call(FnFormatBytes, S, xs...), nil)
	case "hash", "hash_xxhash64":
		if err := a.arity(1, 2); err != nil {
			return ret(nil, err)
		}
		xs := []Scalar{args[0]}
		if n == 2 {
			m, err := a.integral(1)
			if err != nil {
				return ret(nil, err)
			}
			xs = append(xs, m)
		}
		return ret(call(FnHash, L, xs...), nil)
	case "hash_md5":
		return strFn(FnHashMD5, S)
	case "hash_sha1":
		return strFn(FnHashSHA1, S)
	case "toguid":
		if err := a.arity(1, 1); err != nil {
			return ret(nil, err)
		}
		if args[0].Type() == store.TypeGUID {
			return ret(args[0], nil)
		}
		return ret(call(FnToGUID, store.TypeGUID, toStr(args[0])), nil)
	case "gettype":
		if err := a.arity(1, 1); err != nil {
			return ret(nil, err)
		}
		if args[0].Type() != Y {
			return ret(&Const{V: StringValue(gettypeName(args[0].Type()))}, nil)
		}
		return ret(call(FnGetType, S, args[0]), nil)
	case "tohex":
		if err := a.arity(1, 2); err != nil {
			return ret(nil, err)
		}
		x, err := a.integral(0)
		if err != nil {
			return ret(nil, err)
		}
		xs := []Scalar{x}
		if n == 2 {
			w, err := a.integral(1)
			if err != nil {
				return ret(nil, err)
			}
			xs = append(xs, w)
		}
		return ret(call(FnToHex, S, xs...), nil)
	case "new_guid":
		if err := a.arity(0, 0); err != nil {
			return ret(nil, err)
		}
		return ret(call(FnNewGUID, store.TypeGUID), nil)

	// datetime
	case "bin_at":
		if err := a.arity(3, 3); err != nil {
			return ret(nil, err)
		}
		v, size, at := args[0], args[1], args[2]
		vt := v.Type()
		switch {
		case (vt == D || vt == store.TypeTimespan) && size.Type() == store.TypeTimespan && at.Type() == vt:
			return ret(call(FnBinAt, vt, v, size, at), nil)
		case IsNumeric(vt) && IsNumeric(size.Type()) && IsNumeric(at.Type()):
			t := numericResult(numericResult(vt, size.Type()), at.Type())
			return ret(call(FnBinAt, t, castTo(v, t), castTo(size, t), castTo(at, t)), nil)
		}
		return ret(nil, fmt.Errorf("function 'bin_at' expects a value, a bin size and a fixed point of matching types, got %s, %s and %s", vt, size.Type(), at.Type()))
	case "startofday", "startofhour", "startofweek", "startofmonth", "startofyear",
		"endofday", "endofweek", "endofmonth", "endofyear":
		if (name == "startofday" || name == "startofhour") && n == 1 {
			return nil, false, nil
		}
		if err := a.arity(1, 2); err != nil {
			return ret(nil, err)
		}
		d, err := a.datetime(0)
		if err != nil {
			return ret(nil, err)
		}
		off := Scalar(&Const{V: LongValue(0)})
		if n == 2 {
			if off, err = a.integral(1); err != nil {
				return ret(nil, err)
			}
		}
		fn, unit := FnStartOf, strings.TrimPrefix(name, "startof")
		if strings.HasPrefix(name, "endof") {
			fn, unit = FnEndOf, strings.TrimPrefix(name, "endof")
		}
		return ret(call(fn, D, constS(unit), d, off), nil)
	case "dayofmonth", "dayofyear", "weekofyear", "week_of_year":
		if err := a.arity(1, 1); err != nil {
			return ret(nil, err)
		}
		d, err := a.datetime(0)
		if err != nil {
			return ret(nil, err)
		}
		fn := map[string]FuncID{"dayofmonth": FnDayOfMonth, "dayofyear": FnDayOfYear, "weekofyear": FnWeekOfYear, "week_of_year": FnWeekOfYear}[name]
		return ret(call(fn, store.TypeInt, d), nil)
	case "monthofyear":
		if err := a.arity(1, 1); err != nil {
			return ret(nil, err)
		}
		d, err := a.datetime(0)
		if err != nil {
			return ret(nil, err)
		}
		return ret(call(FnGetMonth, store.TypeInt, d), nil)
	case "datetime_part":
		if err := a.arity(2, 2); err != nil {
			return ret(nil, err)
		}
		k, ok := args[0].(*Const)
		part := ""
		if ok && IsStringLike(k.V.Type) {
			part = datetimePartName(k.V.Str)
		}
		if part == "" {
			return ret(nil, fmt.Errorf("function 'datetime_part' expects a constant part name (year, quarter, month, week_of_year, day, dayofyear, hour, minute, second, millisecond, microsecond, nanosecond)"))
		}
		d, err := a.datetime(1)
		if err != nil {
			return ret(nil, err)
		}
		return ret(call(FnDatetimePart, store.TypeInt, constS(part), d), nil)
	case "format_timespan":
		if err := a.arity(2, 2); err != nil {
			return ret(nil, err)
		}
		if err := a.want(0, args[0].Type() == store.TypeTimespan, "a timespan"); err != nil {
			return ret(nil, err)
		}
		if k, ok := args[1].(*Const); !ok || !IsStringLike(k.V.Type) {
			return ret(nil, fmt.Errorf("function 'format_timespan' expects a constant format"))
		}
		return ret(call(FnFormatTimespan, S, args[0], args[1]), nil)
	case "make_datetime":
		if err := a.arity(3, 6); err != nil {
			return ret(nil, err)
		}
		xs := make([]Scalar, 6)
		for i := range 6 {
			if i >= n {
				xs[i] = &Const{V: RealValue(0)}
				continue
			}
			x, err := a.real(i)
			if err != nil {
				return ret(nil, err)
			}
			xs[i] = x
		}
		return ret(call(FnMakeDatetime, D, xs...), nil)
	case "make_timespan":
		if err := a.arity(2, 4); err != nil {
			return ret(nil, err)
		}
		// (hour, minute), (hour, minute, second), (day, hour, minute, second)
		xs := make([]Scalar, 0, 5)
		for i := range n {
			x, err := a.real(i)
			if err != nil {
				return ret(nil, err)
			}
			xs = append(xs, x)
		}
		return ret(call(FnMakeTimespan, store.TypeTimespan, xs...), nil)
	case "unixtime_seconds_todatetime", "unixtime_milliseconds_todatetime",
		"unixtime_microseconds_todatetime", "unixtime_nanoseconds_todatetime":
		if err := a.arity(1, 1); err != nil {
			return ret(nil, err)
		}
		x := args[0]
		if x.Type() == Y {
			x = FromDynamic(x, R)
		}
		if !IsNumeric(x.Type()) {
			return ret(nil, a.want(0, false, "a number"))
		}
		xr := x
		if IsInteger(x.Type()) {
			xr = castTo(x, L) // exact: 19-digit nanosecond counts do not fit a real
		} else {
			xr = castTo(x, R)
		}
		per := map[string]float64{"unixtime_seconds_todatetime": store.TicksPerSecond,
			"unixtime_milliseconds_todatetime": store.TicksPerMillisecond,
			"unixtime_microseconds_todatetime": store.TicksPerMicrosecond,
			"unixtime_nanoseconds_todatetime":  0.01}[name]
		return ret(call(FnUnixToDatetime, D, &Const{V: RealValue(per)}, xr), nil)
	case "datetime_utc_to_unixtime_seconds", "tounixtime":
		if err := a.arity(1, 1); err != nil {
			return ret(nil, err)
		}
		d, err := a.datetime(0)
		if err != nil {
			return ret(nil, err)
		}
		return ret(call(FnDatetimeToUnix, R, &Const{V: RealValue(store.TicksPerSecond)}, d), nil)

	// math
	case "exp2", "exp10", "log2", "sin", "cos", "tan", "asin", "acos", "atan", "cot", "degrees", "radians", "gamma", "loggamma":
		if err := a.arity(1, 1); err != nil {
			return ret(nil, err)
		}
		x, err := a.real(0)
		if err != nil {
			return ret(nil, err)
		}
		return ret(call(FnMath, R, constS(name), x), nil)
	case "pi":
		if err := a.arity(0, 0); err != nil {
			return ret(nil, err)
		}
		return ret(&Const{V: RealValue(3.141592653589793)}, nil)
	case "atan2":
		if err := a.arity(2, 2); err != nil {
			return ret(nil, err)
		}
		y, err := a.real(0)
		if err != nil {
			return ret(nil, err)
		}
		x, err := a.real(1)
		if err != nil {
			return ret(nil, err)
		}
		return ret(call(FnAtan2, R, y, x), nil)
	case "sign":
		if err := a.arity(1, 1); err != nil {
			return ret(nil, err)
		}
		x, err := a.real(0)
		if err != nil {
			return ret(nil, err)
		}
		return ret(call(FnSign, R, x), nil)
	case "isinf", "isfinite":
		if err := a.arity(1, 1); err != nil {
			return ret(nil, err)
		}
		x, err := a.real(0)
		if err != nil {
			return ret(nil, err)
		}
		fn := FnIsInf
		if name == "isfinite" {
			fn = FnIsFinite
		}
		return ret(call(fn, B, x), nil)
	case "binary_and", "binary_or", "binary_xor", "binary_shift_left", "binary_shift_right":
		if err := a.arity(2, 2); err != nil {
			return ret(nil, err)
		}
		x, err := a.long(0)
		if err != nil {
			return ret(nil, err)
		}
		y, err := a.long(1)
		if err != nil {
			return ret(nil, err)
		}
		fn := map[string]FuncID{"binary_and": FnBinaryAnd, "binary_or": FnBinaryOr, "binary_xor": FnBinaryXor,
			"binary_shift_left": FnBinaryShiftLeft, "binary_shift_right": FnBinaryShiftRight}[name]
		return ret(call(fn, L, x, y), nil)
	case "binary_not":
		if err := a.arity(1, 1); err != nil {
			return ret(nil, err)
		}
		x, err := a.long(0)
		if err != nil {
			return ret(nil, err)
		}
		return ret(call(FnBinaryNot, L, x), nil)

	// dynamic
	case "bag_pack", "pack", "pack_dictionary":
		if n%2 != 0 {
			return ret(nil, fmt.Errorf("function '%s' expects key/value pairs, got %d arguments", name, n))
		}
		if n > 128 {
			return ret(nil, fmt.Errorf("function '%s' accepts at most 64 key/value pairs", name))
		}
		xs := make([]Scalar, n)
		for i := 0; i < n; i += 2 {
			if err := a.want(i, IsStringLike(args[i].Type()) && args[i].Type() != Y, "a string key"); err != nil {
				return ret(nil, err)
			}
			xs[i], xs[i+1] = args[i], asDynamic(args[i+1])
		}
		return ret(call(FnBagPack, Y, xs...), nil)
	case "pack_array":
		if err := a.arity(1, 128); err != nil {
			return ret(nil, err)
		}
		xs := make([]Scalar, n)
		for i := range args {
			xs[i] = asDynamic(args[i])
		}
		return ret(call(FnPackArray, Y, xs...), nil)
	case "array_concat", "set_union", "set_intersect", "set_difference", "bag_merge":
		lo := 1
		if name != "array_concat" {
			lo = 2
		}
		xs, err := dynArgs(lo, 64)
		if err != nil {
			return ret(nil, err)
		}
		fn := map[string]FuncID{"array_concat": FnArrayConcat, "set_union": FnSetUnion, "set_intersect": FnSetIntersect,
			"set_difference": FnSetDifference, "bag_merge": FnBagMerge}[name]
		return ret(call(fn, Y, xs...), nil)
	case "zip":
		xs, err := dynArgs(2, 16)
		if err != nil {
			return ret(nil, err)
		}
		return ret(call(FnZip, Y, xs...), nil)
	case "array_slice":
		if err := a.arity(3, 3); err != nil {
			return ret(nil, err)
		}
		arr, err := a.dynamic(0)
		if err != nil {
			return ret(nil, err)
		}
		s, err := a.integral(1)
		if err != nil {
			return ret(nil, err)
		}
		e, err := a.integral(2)
		if err != nil {
			return ret(nil, err)
		}
		return ret(call(FnArraySlice, Y, arr, s, e), nil)
	case "array_index_of", "set_has_element":
		lo, hi := 2, 3
		if name == "set_has_element" {
			hi = 2
		}
		if err := a.arity(lo, hi); err != nil {
			return ret(nil, err)
		}
		arr, err := a.dynamic(0)
		if err != nil {
			return ret(nil, err)
		}
		xs := []Scalar{arr, asDynamic(args[1])}
		if name == "set_has_element" {
			return ret(call(FnSetHasElement, B, xs...), nil)
		}
		if n == 3 {
			s, err := a.integral(2)
			if err != nil {
				return ret(nil, err)
			}
			xs = append(xs, s)
		}
		return ret(call(FnArrayIndexOf, L, xs...), nil)
	case "array_sort_asc", "array_sort_desc":
		if err := a.arity(1, 2); err != nil {
			return ret(nil, err)
		}
		arr, err := a.dynamic(0)
		if err != nil {
			return ret(nil, err)
		}
		nullsLast := Scalar(&Const{V: BoolValue(true)})
		if n == 2 {
			if nullsLast, err = a.boolean(1); err != nil {
				return ret(nil, fmt.Errorf("function '%s': only the (array[, nulls_last]) form is supported: %w", name, err))
			}
		}
		fn := FnArraySortAsc
		if name == "array_sort_desc" {
			fn = FnArraySortDesc
		}
		return ret(call(fn, Y, arr, nullsLast), nil)
	case "array_reverse", "bag_keys", "treepath":
		xs, err := dynArgs(1, 1)
		if err != nil {
			return ret(nil, err)
		}
		fn := map[string]FuncID{"array_reverse": FnArrayReverse, "bag_keys": FnBagKeys, "treepath": FnTreePath}[name]
		return ret(call(fn, Y, xs...), nil)
	case "array_sum":
		xs, err := dynArgs(1, 1)
		if err != nil {
			return ret(nil, err)
		}
		return ret(call(FnArraySum, R, xs...), nil)
	case "bag_remove_keys":
		xs, err := dynArgs(2, 2)
		if err != nil {
			return ret(nil, err)
		}
		return ret(call(FnBagRemoveKeys, Y, xs...), nil)
	case "bag_has_key":
		if err := a.arity(2, 2); err != nil {
			return ret(nil, err)
		}
		bag, err := a.dynamic(0)
		if err != nil {
			return ret(nil, err)
		}
		return ret(call(FnBagHasKey, B, bag, toStr(args[1])), nil)

	// ip
	case "ipv4_is_in_range", "ipv4_is_match", "ipv4_compare":
		lo, hi := 2, 3
		if name == "ipv4_is_in_range" {
			hi = 2
		}
		xs, err := strArgs(lo, hi)
		if err != nil {
			return ret(nil, err)
		}
		if n == 3 {
			if xs[2], err = a.integral(2); err != nil {
				return ret(nil, err)
			}
		}
		fn, t := FnIPv4IsInRange, B
		switch name {
		case "ipv4_is_match":
			fn = FnIPv4IsMatch
		case "ipv4_compare":
			fn, t = FnIPv4Compare, L
		}
		return ret(call(fn, t, xs...), nil)
	case "ipv4_is_private":
		return strFn(FnIPv4IsPrivate, B)
	case "parse_ipv4":
		return strFn(FnParseIPv4, L)
	case "format_ipv4":
		if err := a.arity(1, 2); err != nil {
			return ret(nil, err)
		}
		x := args[0]
		if IsInteger(x.Type()) {
			x = toStr(x)
		}
		xs := []Scalar{toStr(x), &Const{V: LongValue(32)}}
		if n == 2 {
			m, err := a.integral(1)
			if err != nil {
				return ret(nil, err)
			}
			xs[1] = m
		}
		return ret(call(FnFormatIPv4, S, xs...), nil)

	// series
	case "series_stats_dynamic":
		if err := a.arity(1, 2); err != nil {
			return ret(nil, err)
		}
		arr, err := a.dynamic(0)
		if err != nil {
			return ret(nil, err)
		}
		xs := []Scalar{arr, &Const{V: BoolValue(false)}}
		if n == 2 {
			if xs[1], err = a.boolean(1); err != nil {
				return ret(nil, err)
			}
		}
		return ret(call(FnSeriesStats, Y, xs...), nil)
	case "series_fill_forward", "series_fill_backward", "series_fill_linear", "series_fill_const":
		hi := 2
		switch name {
		case "series_fill_linear", "series_fill_const":
			hi = 3
		}
		if err := a.arity(1, hi); err != nil {
			return ret(nil, err)
		}
		arr, err := a.dynamic(0)
		if err != nil {
			return ret(nil, err)
		}
		xs := []Scalar{arr}
		for i := 1; i < n; i++ {
			// missing_value_placeholder, const value, fill_edges
			switch {
			case name == "series_fill_linear" && i == 2:
				x, err := a.boolean(i)
				if err != nil {
					return ret(nil, err)
				}
				xs = append(xs, x)
			default:
				xs = append(xs, asDynamic(args[i]))
			}
		}
		fn := map[string]FuncID{"series_fill_forward": FnSeriesFillForward, "series_fill_backward": FnSeriesFillBackward,
			"series_fill_linear": FnSeriesFillLinear, "series_fill_const": FnSeriesFillConst}[name]
		return ret(call(fn, Y, xs...), nil)

	// sketches
	case "dcount_hll":
		xs, err := dynArgs(1, 1)
		if err != nil {
			return ret(nil, err)
		}
		return ret(call(FnDcountHLL, L, xs...), nil)
	case "hll_merge", "tdigest_merge":
		xs, err := dynArgs(1, 64)
		if err != nil {
			return ret(nil, err)
		}
		fn := FnHLLMerge
		if name == "tdigest_merge" {
			fn = FnTDigestMerge
		}
		return ret(call(fn, Y, xs...), nil)
	case "percentile_tdigest", "percentiles_array_tdigest":
		if n < 2 || (name == "percentile_tdigest" && n != 2) {
			return ret(nil, fmt.Errorf("function '%s' expects a tdigest sketch and percentile constants", name))
		}
		if _, err := a.dynamic(0); err != nil {
			return ret(nil, err)
		}
		xs := []Scalar{args[0]}
		for i := 1; i < n; i++ {
			k, ok := args[i].(*Const)
			if !ok || k.V.Null || !IsNumeric(k.V.Type) {
				return ret(nil, fmt.Errorf("function '%s': percentiles must be numeric constants between 0 and 100", name))
			}
			p := k.V.Real
			if IsInteger(k.V.Type) {
				p = float64(k.V.Int)
			}
			if !(p >= 0 && p <= 100) {
				return ret(nil, fmt.Errorf("function '%s': percentiles must be numeric constants between 0 and 100", name))
			}
			xs = append(xs, &Const{V: RealValue(p)})
		}
		t := R
		if name == "percentiles_array_tdigest" {
			t = Y
		}
		return ret(call(FnPercentileTDigest, t, xs...), nil)

	// window
	case "row_number":
		if err := a.arity(0, 2); err != nil {
			return ret(nil, err)
		}
		xs := []Scalar{&Const{V: LongValue(1)}}
		if n >= 1 {
			s, err := a.integral(0)
			if err != nil {
				return ret(nil, err)
			}
			xs[0] = s
		}
		if n == 2 {
			r, err := a.boolean(1)
			if err != nil {
				return ret(nil, err)
			}
			xs = append(xs, r)
		}
		return ret(call(FnRowNumber, L, xs...), nil)
	case "prev", "next":
		if err := a.arity(1, 3); err != nil {
			return ret(nil, err)
		}
		t := args[0].Type()
		xs := []Scalar{args[0], &Const{V: LongValue(1)}}
		if n >= 2 {
			if _, ok := args[1].(*Const); !ok {
				return ret(nil, fmt.Errorf("function '%s' expects a constant offset", name))
			}
			off, err := a.integral(1)
			if err != nil {
				return ret(nil, err)
			}
			xs[1] = off
		}
		if n == 3 {
			ct, ok := commonType(t, args[2].Type())
			if !ok {
				return ret(nil, fmt.Errorf("function '%s': the default value's type %s does not match %s", name, args[2].Type(), t))
			}
			t = ct
			xs[0] = castTo(args[0], t)
			xs = append(xs, castTo(args[2], t))
		}
		fn := FnPrev
		if name == "next" {
			fn = FnNext
		}
		return ret(call(fn, t, xs...), nil)
	case "row_cumsum":
		if err := a.arity(1, 2); err != nil {
			return ret(nil, err)
		}
		t := args[0].Type()
		if !IsNumeric(t) && t != store.TypeTimespan {
			return ret(nil, a.want(0, false, "a number"))
		}
		if t == store.TypeInt {
			t = L
		}
		xs := []Scalar{castTo(args[0], t)}
		if n == 2 {
			r, err := a.boolean(1)
			if err != nil {
				return ret(nil, err)
			}
			xs = append(xs, r)
		}
		return ret(call(FnRowCumsum, t, xs...), nil)
	case "row_window_session":
		// row_window_session(Expr, MaxDistanceFromFirst, MaxDistanceBetweenNeighbors [, Restart])
		if err := a.arity(3, 4); err != nil {
			return ret(nil, err)
		}
		t := args[0].Type()
		if t != store.TypeDatetime {
			return ret(nil, a.want(0, false, "a datetime"))
		}
		xs := []Scalar{args[0]}
		for k := 1; k <= 2; k++ {
			if at := args[k].Type(); at != store.TypeTimespan {
				return ret(nil, fmt.Errorf("function 'row_window_session' expects argument %d to be a timespan, got %s", k+1, at))
			}
			xs = append(xs, args[k])
		}
		if n == 4 {
			r, err := a.boolean(3)
			if err != nil {
				return ret(nil, err)
			}
			xs = append(xs, r)
		}
		return ret(call(FnRowWindowSession, t, xs...), nil)
	case "row_rank_dense", "row_rank_min":
		if err := a.arity(1, 2); err != nil {
			return ret(nil, err)
		}
		xs := []Scalar{args[0]}
		if n == 2 {
			r, err := a.boolean(1)
			if err != nil {
				return ret(nil, err)
			}
			xs = append(xs, r)
		}
		fn := FnRowRankDense
		if name == "row_rank_min" {
			fn = FnRowRankMin
		}
		return ret(call(fn, L, xs...), nil)
	}
	return nil, false, nil
}

// PackAll binds pack_all([ignoreNullEmpty]) over the columns of the
// operator's input: a property bag of every column, in schema order; with
// ignoreNullEmpty, null and empty values are left out. The binder calls it
// because ResolveFunction does not see the input schema.
func PackAll(schema store.Schema, ignoreNullEmpty bool) Scalar {
	args := make([]Scalar, 0, 2*len(schema))
	for _, c := range schema {
		args = append(args, &Const{V: StringValue(c.Name)}, asDynamic(&ColRef{Name: c.Name, T: c.Type}))
	}
	fn := FnBagPack
	if ignoreNullEmpty {
		fn = FnBagPackNonEmpty
	}
	return &FnCall{Fn: fn, Args: args, T: store.TypeDynamic}
}

// SeriesStatsColumns binds the multi-column form of series_stats(x): seven
// columns named <prefix>_min, _min_idx, _max, _max_idx, _avg, _stdev and
// _variance (Kusto's prefix is series_stats_<column>). The binder calls it
// where an extend or project item expands into several columns.
func SeriesStatsColumns(prefix string, x Scalar, ignoreNonFinite bool) ([]NamedScalar, error) {
	if x.Type() != store.TypeDynamic {
		return nil, fmt.Errorf("function 'series_stats' expects a dynamic array, got %s", x.Type())
	}
	stats := &FnCall{Fn: FnSeriesStats, Args: []Scalar{x, &Const{V: BoolValue(ignoreNonFinite)}}, T: store.TypeDynamic}
	var out []NamedScalar
	for _, f := range []struct {
		key string
		t   Type
	}{{"min", store.TypeReal}, {"min_idx", store.TypeLong}, {"max", store.TypeReal}, {"max_idx", store.TypeLong},
		{"avg", store.TypeReal}, {"stdev", store.TypeReal}, {"variance", store.TypeReal}} {
		get := &FnCall{Fn: FnDynGet, Args: []Scalar{stats, &Const{V: StringValue(f.key)}}, T: store.TypeDynamic}
		out = append(out, NamedScalar{Name: prefix + "_" + f.key, X: FromDynamic(get, f.t)})
	}
	return out, nil
}

// gettypeName is gettype()'s answer for a statically typed value.
func gettypeName(t Type) string {
	switch t {
	case store.TypeBool:
		return "bool"
	case store.TypeInt:
		return "int"
	case store.TypeLong:
		return "long"
	case store.TypeReal:
		return "real"
	case store.TypeDecimal:
		return "decimal"
	case store.TypeDatetime:
		return "datetime"
	case store.TypeTimespan:
		return "timespan"
	case store.TypeGUID:
		return "guid"
	case store.TypeString:
		return "string"
	}
	return "dynamic"
}

// datetimePartName normalizes a datetime_part part name.
func datetimePartName(s string) string {
	switch p := strings.ToLower(s); p {
	case "year", "quarter", "month", "day", "hour", "minute", "second", "millisecond", "microsecond", "nanosecond", "dayofyear":
		return p
	case "week_of_year", "weekofyear", "week":
		return "week_of_year"
	}
	return ""
}
