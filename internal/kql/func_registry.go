package kql

import (
	"slices"
	"strings"
)

// FuncInfo describes one built-in function for documentation and tooling.
// The registry below is the single list of scalar functions the binder
// accepts: ResolveFunction refuses any name that is not in it, and a test
// checks that every name in it resolves, so docs/kql.md (generated from it)
// cannot drift from the code.
type FuncInfo struct {
	Name    string   // canonical KQL name
	Aliases []string // other accepted spellings
	Family  string   // documentation group: "string", "datetime", ...
	// Notes lists known differences from Kusto; empty when there are none.
	Notes string
	// Transform reports whether Azure allows the function in DCR
	// transformations (the spec's "Supported KQL in transformations").
	Transform bool
}

// Function families, in documentation order.
var funcFamilies = []string{"conversion", "string", "datetime", "math", "conditional", "dynamic", "ip", "series", "sketch", "window", "hash"}

// scalarFunctions is the registry of scalar functions. It is an immutable
// lookup table.
var scalarFunctions = []FuncInfo{
	// conversion
	{Name: "tostring", Family: "conversion"},
	{Name: "toint", Family: "conversion"},
	{Name: "tolong", Family: "conversion"},
	{Name: "todouble", Aliases: []string{"toreal"}, Family: "conversion"},
	{Name: "todecimal", Family: "conversion", Notes: "exact .NET decimal (96-bit, 0–28 places), kept exactly through operators, storage and the query API"},
	{Name: "tobool", Aliases: []string{"toboolean"}, Family: "conversion"},
	{Name: "todatetime", Family: "conversion"},
	{Name: "totimespan", Aliases: []string{"totime"}, Family: "conversion"},
	{Name: "toguid", Family: "conversion"},
	{Name: "todynamic", Aliases: []string{"parse_json", "toobject"}, Family: "conversion"},
	{Name: "gettype", Family: "conversion"},
	{Name: "tohex", Family: "conversion"},
	// string
	{Name: "strcat", Family: "string"},
	{Name: "strcat_delim", Family: "string"},
	{Name: "strlen", Family: "string"},
	{Name: "substring", Family: "string"},
	{Name: "indexof", Family: "string"},
	{Name: "indexof_regex", Family: "string"},
	{Name: "split", Family: "string"},
	{Name: "replace_string", Family: "string"},
	{Name: "replace_regex", Aliases: []string{"replace"}, Family: "string", Notes: "RE2 syntax: no backreferences or lookaround in the pattern"},
	{Name: "extract", Family: "string", Notes: "the optional typeLiteral argument is not supported"},
	{Name: "extract_all", Family: "string"},
	{Name: "trim", Family: "string"},
	{Name: "trim_start", Family: "string"},
	{Name: "trim_end", Family: "string"},
	{Name: "tolower", Family: "string"},
	{Name: "toupper", Family: "string"},
	{Name: "reverse", Family: "string"},
	{Name: "countof", Family: "string"},
	{Name: "strrep", Family: "string"},
	{Name: "strcmp", Family: "string"},
	{Name: "isascii", Family: "string"},
	{Name: "isutf8", Family: "string"},
	{Name: "base64_encode_tostring", Aliases: []string{"base64_encodestring"}, Family: "string"},
	{Name: "base64_decode_tostring", Aliases: []string{"base64_decodestring"}, Family: "string"},
	{Name: "base64_encode_fromguid", Family: "string"},
	{Name: "base64_decode_toguid", Family: "string"},
	{Name: "base64_encode_fromarray", Family: "string"},
	{Name: "base64_decode_toarray", Family: "string"},
	{Name: "url_encode", Aliases: []string{"url_encode_component"}, Family: "string"},
	{Name: "url_decode", Family: "string"},
	{Name: "parse_url", Aliases: []string{"parseurl"}, Family: "string", Notes: "Path keeps its leading '/' as Kusto returns it (the documentation example omits it)"},
	{Name: "parse_path", Family: "string"},
	{Name: "format_bytes", Family: "string"},
	{Name: "isempty", Aliases: []string{"notempty", "isnotempty"}, Family: "string"},
	{Name: "isnull", Aliases: []string{"isnotnull", "notnull"}, Family: "conditional"},
	{Name: "new_guid", Family: "string", Notes: "random per row (crypto/rand), as in Kusto; excluded from constant folding"},
	// hash
	{Name: "hash", Aliases: []string{"hash_xxhash64"}, Family: "hash", Notes: "xxhash64 as in Kusto; string and datetime values match the documentation's examples, other types hash their little-endian binary form"},
	{Name: "hash_sha256", Family: "hash"},
	{Name: "hash_sha1", Family: "hash"},
	{Name: "hash_md5", Family: "hash"},
	// datetime
	{Name: "now", Family: "datetime"},
	{Name: "ago", Family: "datetime"},
	{Name: "bin", Family: "datetime"},
	{Name: "bin_at", Family: "datetime"},
	{Name: "floor", Family: "math"},
	{Name: "datetime_add", Family: "datetime"},
	{Name: "datetime_diff", Family: "datetime"},
	{Name: "datetime_part", Family: "datetime"},
	{Name: "startofday", Family: "datetime"},
	{Name: "startofhour", Family: "datetime"},
	{Name: "startofweek", Family: "datetime"},
	{Name: "startofmonth", Family: "datetime"},
	{Name: "startofyear", Family: "datetime"},
	{Name: "endofday", Family: "datetime"},
	{Name: "endofweek", Family: "datetime"},
	{Name: "endofmonth", Family: "datetime"},
	{Name: "endofyear", Family: "datetime"},
	{Name: "dayofweek", Family: "datetime"},
	{Name: "dayofmonth", Family: "datetime"},
	{Name: "dayofyear", Family: "datetime"},
	{Name: "hourofday", Family: "datetime"},
	{Name: "getmonth", Aliases: []string{"monthofyear"}, Family: "datetime"},
	{Name: "getyear", Family: "datetime"},
	{Name: "weekofyear", Aliases: []string{"week_of_year"}, Family: "datetime"},
	{Name: "format_datetime", Family: "datetime"},
	{Name: "format_timespan", Family: "datetime"},
	{Name: "make_datetime", Family: "datetime"},
	{Name: "make_timespan", Family: "datetime"},
	{Name: "unixtime_seconds_todatetime", Family: "datetime"},
	{Name: "unixtime_milliseconds_todatetime", Family: "datetime"},
	{Name: "unixtime_microseconds_todatetime", Family: "datetime"},
	{Name: "unixtime_nanoseconds_todatetime", Family: "datetime"},
	{Name: "datetime_utc_to_unixtime_seconds", Aliases: []string{"tounixtime"}, Family: "datetime", Notes: "Custos extension (Kusto has no direct equivalent besides arithmetic)"},
	// math
	{Name: "abs", Family: "math"},
	{Name: "ceiling", Family: "math"},
	{Name: "round", Family: "math"},
	{Name: "sqrt", Family: "math"},
	{Name: "pow", Family: "math"},
	{Name: "exp", Family: "math"},
	{Name: "exp2", Family: "math"},
	{Name: "exp10", Family: "math"},
	{Name: "log", Family: "math"},
	{Name: "log2", Family: "math"},
	{Name: "log10", Family: "math"},
	{Name: "sign", Family: "math"},
	{Name: "isnan", Family: "math"},
	{Name: "isinf", Family: "math"},
	{Name: "isfinite", Family: "math"},
	{Name: "pi", Family: "math"},
	{Name: "sin", Family: "math"},
	{Name: "cos", Family: "math"},
	{Name: "tan", Family: "math"},
	{Name: "asin", Family: "math"},
	{Name: "acos", Family: "math"},
	{Name: "atan", Family: "math"},
	{Name: "atan2", Family: "math"},
	{Name: "cot", Family: "math"},
	{Name: "degrees", Family: "math"},
	{Name: "radians", Family: "math"},
	{Name: "gamma", Family: "math"},
	{Name: "loggamma", Family: "math"},
	{Name: "binary_and", Family: "math"},
	{Name: "binary_or", Family: "math"},
	{Name: "binary_xor", Family: "math"},
	{Name: "binary_not", Family: "math"},
	{Name: "binary_shift_left", Family: "math"},
	{Name: "binary_shift_right", Family: "math"},
	// conditional
	{Name: "iff", Aliases: []string{"iif"}, Family: "conditional"},
	{Name: "case", Family: "conditional"},
	{Name: "coalesce", Family: "conditional"},
	{Name: "max_of", Family: "conditional"},
	{Name: "min_of", Family: "conditional"},
	{Name: "not", Family: "conditional"},
	// dynamic
	{Name: "bag_pack", Aliases: []string{"pack", "pack_dictionary"}, Family: "dynamic"},
	{Name: "pack_array", Family: "dynamic"},
	{Name: "array_length", Family: "dynamic"},
	{Name: "array_concat", Family: "dynamic"},
	{Name: "array_slice", Family: "dynamic"},
	{Name: "array_index_of", Family: "dynamic", Notes: "the optional length and occurrence arguments are not supported"},
	{Name: "array_sort_asc", Family: "dynamic", Notes: "sorts one array; the form that reorders further arrays alongside is not supported"},
	{Name: "array_sort_desc", Family: "dynamic", Notes: "sorts one array; the form that reorders further arrays alongside is not supported"},
	{Name: "array_reverse", Family: "dynamic"},
	{Name: "array_sum", Family: "dynamic"},
	{Name: "set_union", Family: "dynamic"},
	{Name: "set_intersect", Family: "dynamic"},
	{Name: "set_difference", Family: "dynamic"},
	{Name: "set_has_element", Family: "dynamic"},
	{Name: "bag_keys", Family: "dynamic"},
	{Name: "bag_merge", Family: "dynamic"},
	{Name: "bag_remove_keys", Family: "dynamic", Notes: "top-level keys only ('a' or '$.a'); nested JSONPath keys are not supported"},
	{Name: "bag_has_key", Family: "dynamic", Notes: "top-level keys only"},
	{Name: "zip", Family: "dynamic"},
	{Name: "treepath", Family: "dynamic"},
	{Name: "pack_all", Family: "dynamic", Notes: "packs the columns of the operator's input; the binder expands it (kql.PackAll)"},
	// ip
	{Name: "ipv4_is_in_range", Family: "ip"},
	{Name: "ipv4_is_private", Family: "ip"},
	{Name: "ipv4_compare", Family: "ip"},
	{Name: "ipv4_is_match", Family: "ip"},
	{Name: "parse_ipv4", Family: "ip"},
	{Name: "format_ipv4", Family: "ip"},
	// series
	{Name: "series_stats_dynamic", Family: "series"},
	{Name: "series_stats", Family: "series", Notes: "multi-column: only directly in extend or project, where it expands into series_stats_<x>_min ... _variance"},
	{Name: "series_fill_forward", Family: "series"},
	{Name: "series_fill_backward", Family: "series"},
	{Name: "series_fill_const", Family: "series"},
	{Name: "series_fill_linear", Family: "series"},
	// sketches
	{Name: "dcount_hll", Family: "sketch"},
	{Name: "hll_merge", Family: "sketch"},
	{Name: "tdigest_merge", Family: "sketch"},
	{Name: "percentile_tdigest", Family: "sketch", Notes: "returns real; the typeLiteral argument is not supported (datetime and timespan digests answer in ticks)"},
	{Name: "percentiles_array_tdigest", Family: "sketch"},
	// window
	{Name: "row_number", Family: "window"},
	{Name: "prev", Family: "window"},
	{Name: "next", Family: "window"},
	{Name: "row_cumsum", Family: "window"},
	{Name: "row_rank_dense", Family: "window"},
	{Name: "row_rank_min", Family: "window"},
	{Name: "row_window_session", Family: "window"},
}

// transformFunctions are the functions Azure documents for DCR
// transformations (spec §2.3), by registry name, plus replace_regex, which
// the masking use case needs (issue 4).
var transformFunctions = map[string]bool{
	"tobool": true, "todatetime": true, "todouble": true, "toguid": true, "toint": true, "tolong": true,
	"tostring": true, "totimespan": true, "ago": true, "datetime_add": true, "datetime_diff": true,
	"datetime_part": true, "dayofmonth": true, "dayofweek": true, "dayofyear": true, "endofday": true,
	"endofmonth": true, "endofweek": true, "endofyear": true, "getmonth": true, "getyear": true,
	"hourofday": true, "make_datetime": true, "make_timespan": true, "now": true, "startofday": true,
	"startofmonth": true, "startofweek": true, "startofyear": true, "weekofyear": true, "array_concat": true,
	"array_length": true, "pack_array": true, "bag_pack": true, "todynamic": true, "zip": true, "abs": true,
	"bin": true, "floor": true, "ceiling": true, "exp": true, "exp10": true, "exp2": true, "isfinite": true,
	"isinf": true, "isnan": true, "log": true, "log10": true, "log2": true, "pow": true, "round": true,
	"sign": true, "case": true, "iff": true, "max_of": true, "min_of": true, "base64_encode_tostring": true,
	"base64_decode_tostring": true, "countof": true, "extract": true, "extract_all": true, "indexof": true,
	"isempty": true, "split": true, "strcat": true, "strcat_delim": true, "strlen": true, "substring": true,
	"tolower": true, "toupper": true, "hash_sha256": true, "gettype": true, "isnull": true,
	"binary_and": true, "binary_or": true, "binary_xor": true, "binary_not": true, "binary_shift_left": true,
	"binary_shift_right": true, "replace_regex": true, "not": true, "coalesce": true, "trim": true,
}

// AllowedInTransform reports whether the named function (any accepted
// spelling) may be used in a DCR transformation. The binder checks it when
// BindOptions.PerRecordOnly is set.
func AllowedInTransform(name string) bool {
	i, ok := funcIndex[strings.ToLower(name)]
	return ok && transformFunctions[scalarFunctions[i].Name]
}

// funcIndex maps every accepted spelling (lower case) to its registry entry.
var funcIndex = func() map[string]int {
	scalarFunctions = append(scalarFunctions, miscFunctions...)
	m := make(map[string]int, len(scalarFunctions)*2)
	for i, f := range scalarFunctions {
		m[f.Name] = i
		for _, a := range f.Aliases {
			m[a] = i
		}
	}
	return m
}()

// Functions returns the registry of scalar functions, grouped by family in
// documentation order and sorted by name within a family. The caller owns
// the returned slice.
func Functions() []FuncInfo {
	out := slices.Clone(scalarFunctions)
	for i := range out {
		out[i].Transform = transformFunctions[out[i].Name]
	}
	slices.SortStableFunc(out, func(a, b FuncInfo) int {
		if c := slices.Index(funcFamilies, a.Family) - slices.Index(funcFamilies, b.Family); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// FunctionFamilies returns the function families in documentation order.
func FunctionFamilies() []string { return slices.Clone(funcFamilies) }

// aggNotes are known differences from Kusto per aggregation.
var aggNotes = map[AggID]string{
	AggPercentile:       "exact up to 65,536 values per group, T-Digest beyond (Kusto always uses T-Digest)",
	AggPercentiles:      "exact up to 65,536 values per group, T-Digest beyond (Kusto always uses T-Digest)",
	AggPercentilesArray: "exact up to 65,536 values per group, T-Digest beyond (Kusto always uses T-Digest)",
	AggHLL:              "the sketch is Custos's own encoding (a dynamic value), not Kusto's binary; it merges only with Custos sketches",
	AggTDigest:          "the sketch is Custos's own encoding (a dynamic value), not Kusto's binary; it merges only with Custos sketches",
	AggBuildSchema:      "reports every type seen for a property as a list only when there are several",
}

// Aggregations returns the aggregation functions of summarize, sorted by
// name, with their aliases.
func Aggregations() []FuncInfo {
	byID := map[AggID]*FuncInfo{}
	var ids []AggID
	for name, id := range aggByName {
		f, ok := byID[id]
		if !ok {
			f = &FuncInfo{Name: id.String(), Family: "aggregation", Notes: aggNotes[id]}
			byID[id] = f
			ids = append(ids, id)
		}
		if name != f.Name {
			f.Aliases = append(f.Aliases, name)
		}
	}
	out := make([]FuncInfo, 0, len(ids))
	for _, id := range ids {
		f := byID[id]
		slices.Sort(f.Aliases)
		out = append(out, *f)
	}
	slices.SortFunc(out, func(a, b FuncInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// OperatorInfo describes one tabular operator keyword of the parser.
type OperatorInfo struct {
	Name string
	// Parsed is false for real Kusto operators the parser refuses outright.
	Parsed bool
}

// Operators returns the tabular operator keywords, derived from the
// parser's keyword tables, sorted by name.
func Operators() []OperatorInfo {
	var out []OperatorInfo
	for w := range operatorWords {
		out = append(out, OperatorInfo{Name: w, Parsed: true})
	}
	for w := range unsupportedOperators {
		if !operatorWords[w] {
			out = append(out, OperatorInfo{Name: w})
		}
	}
	slices.SortFunc(out, func(a, b OperatorInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}
