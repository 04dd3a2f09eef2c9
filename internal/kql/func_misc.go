package kql

import "custos/internal/store"

// miscFunctions are the less common functions bound as FnMisc with their
// name as a constant first argument, evaluated row by row in
// engine/fn_misc.go.
var miscFunctions = []FuncInfo{
	{Name: "strcat_array", Family: "string"},
	{Name: "regex_quote", Family: "string"},
	{Name: "to_utf8", Family: "string"},
	{Name: "unicode_codepoints_from_string", Family: "string"},
	{Name: "make_string", Family: "string"},
	{Name: "string_size", Family: "string"},
	{Name: "parse_csv", Family: "string"},
	{Name: "bitset_count_ones", Family: "math"},
	{Name: "ipv4_netmask_suffix", Family: "ip"},
	{Name: "has_ipv4", Family: "ip"},
	{Name: "has_ipv4_prefix", Family: "ip"},
	{Name: "array_iff", Aliases: []string{"array_iif"}, Family: "dynamic"},
	{Name: "array_rotate_left", Family: "dynamic"},
	{Name: "array_rotate_right", Family: "dynamic"},
	{Name: "array_shift_left", Family: "dynamic"},
	{Name: "array_shift_right", Family: "dynamic"},
	{Name: "jaccard_index", Family: "dynamic"},
	{Name: "series_add", Family: "series"},
	{Name: "series_subtract", Family: "series"},
	{Name: "series_multiply", Family: "series"},
	{Name: "series_divide", Family: "series"},
	{Name: "datetime_utc_to_local", Family: "datetime"},
	{Name: "datetime_local_to_utc", Family: "datetime"},
	{Name: "rand", Family: "math", Notes: "volatile: a new value per row (math/rand/v2), never constant-folded"},
}

// resolveMisc binds the functions of miscFunctions; ok is false for other
// names.
func resolveMisc(name string, args []Scalar) (Scalar, bool, error) {
	a := argChecker{name: name, args: args}
	n := len(args)
	S, L, Y, B := store.TypeString, store.TypeLong, store.TypeDynamic, store.TypeBool
	misc := func(t Type, xs ...Scalar) (Scalar, bool, error) {
		return &FnCall{Fn: FnMisc, Args: append([]Scalar{&Const{V: StringValue(name)}}, xs...), T: t}, true, nil
	}
	fail := func(err error) (Scalar, bool, error) { return nil, true, err }
	switch name {
	case "strcat_array":
		if err := a.arity(2, 2); err != nil {
			return fail(err)
		}
		arr, err := a.dynamic(0)
		if err != nil {
			return fail(err)
		}
		return misc(S, arr, toStr(args[1]))
	case "regex_quote", "to_utf8", "unicode_codepoints_from_string", "string_size", "parse_csv":
		if err := a.arity(1, 1); err != nil {
			return fail(err)
		}
		t := map[string]Type{"regex_quote": S, "to_utf8": Y, "unicode_codepoints_from_string": Y, "string_size": L, "parse_csv": Y}[name]
		return misc(t, toStr(args[0]))
	case "make_string":
		if err := a.arity(1, 64); err != nil {
			return fail(err)
		}
		xs := make([]Scalar, n)
		for i, x := range args {
			switch {
			case x.Type() == Y:
				xs[i] = x
			case IsInteger(x.Type()):
				xs[i] = castTo(x, L)
			default:
				return fail(a.want(i, false, "an integer or a dynamic array of integers"))
			}
		}
		return misc(S, xs...)
	case "bitset_count_ones":
		if err := a.arity(1, 1); err != nil {
			return fail(err)
		}
		x, err := a.long(0)
		if err != nil {
			return fail(err)
		}
		return misc(L, x)
	case "ipv4_netmask_suffix":
		if err := a.arity(1, 1); err != nil {
			return fail(err)
		}
		return misc(L, toStr(args[0]))
	case "has_ipv4", "has_ipv4_prefix":
		if err := a.arity(2, 2); err != nil {
			return fail(err)
		}
		return misc(B, toStr(args[0]), toStr(args[1]))
	case "array_iff", "array_iif":
		if err := a.arity(3, 3); err != nil {
			return fail(err)
		}
		xs := make([]Scalar, 3)
		for i, x := range args {
			xs[i] = asDynamic(x)
		}
		return misc(Y, xs...)
	case "array_rotate_left", "array_rotate_right", "array_shift_left", "array_shift_right":
		hi := 2
		if name == "array_shift_left" || name == "array_shift_right" {
			hi = 3
		}
		if err := a.arity(2, hi); err != nil {
			return fail(err)
		}
		arr, err := a.dynamic(0)
		if err != nil {
			return fail(err)
		}
		k, err := a.integral(1)
		if err != nil {
			return fail(err)
		}
		xs := []Scalar{arr, k}
		if n == 3 {
			xs = append(xs, asDynamic(args[2]))
		}
		return misc(Y, xs...)
	case "jaccard_index":
		xs, err := func() ([]Scalar, error) {
			if err := a.arity(2, 2); err != nil {
				return nil, err
			}
			for i := range args {
				if _, err := a.dynamic(i); err != nil {
					return nil, err
				}
			}
			return args, nil
		}()
		if err != nil {
			return fail(err)
		}
		return misc(store.TypeReal, xs...)
	case "series_add", "series_subtract", "series_multiply", "series_divide":
		if err := a.arity(2, 2); err != nil {
			return fail(err)
		}
		xs := make([]Scalar, 2)
		for i, x := range args {
			switch {
			case x.Type() == Y:
				xs[i] = x
			case IsNumeric(x.Type()):
				xs[i] = asDynamic(x)
			default:
				return fail(a.want(i, false, "a dynamic array or a number"))
			}
		}
		return misc(Y, xs...)
	case "datetime_utc_to_local", "datetime_local_to_utc":
		if err := a.arity(2, 2); err != nil {
			return fail(err)
		}
		d, err := a.datetime(0)
		if err != nil {
			return fail(err)
		}
		return misc(store.TypeDatetime, d, toStr(args[1]))
	case "rand":
		if err := a.arity(0, 1); err != nil {
			return fail(err)
		}
		if n == 1 {
			k, err := a.long(0)
			if err != nil {
				return fail(err)
			}
			return &FnCall{Fn: FnRand, Args: []Scalar{k}, T: L}, true, nil
		}
		return &FnCall{Fn: FnRand, T: store.TypeReal}, true, nil
	}
	return nil, false, nil
}
