package engine

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"custos/internal/kql"
	"custos/internal/store"
)

// diffTemplates are scalar expressions over the placeholders {s} (string),
// {l} (long), {r} (real), {d} (datetime) and {j} (a string holding JSON).
// FuzzConstVsColumn evaluates each with the placeholders as literals (the
// constant path: print, constant kernels and matchers) and as columns of a
// two-row datatable (the vector path), and requires the same answer.
var diffTemplates = []string{
	`strlen({s})`, `toupper({s})`, `reverse({s})`, `substring({s}, {l} % 10, 3)`, `substring({s}, -2)`,
	`indexof({s}, "a")`, `countof({s}, "a")`, `split({s}, ",")`, `split({s}, ",", {l} % 4)`,
	`replace_string({s}, "a", "b")`, `replace_regex({s}, "[0-9]+", "#")`, `extract("([a-z]+)", 1, {s})`,
	`extract_all("([a-z])", {s})`, `trim_start(" +", {s})`, `trim_end("[ .]+", {s})`, `strrep({s}, {l} % 3)`,
	`base64_decode_tostring(base64_encode_tostring({s}))`, `url_decode(url_encode({s}))`, `parse_url({s})`,
	`parse_path({s})`, `hash_md5({s})`, `hash({s}, 7)`, `toguid({s})`, `isascii({s})`, `strcmp({s}, "m")`,
	`{s} has "ab"`, `{s} contains "b"`, `{s} startswith "a"`, `{s} =~ "ABC"`, `{s} in ("a", "b")`,
	`{s} matches regex "^[a-z]"`, `{s} has_any ("x", "y")`, `tolong({s})`, `todouble({s})`, `todatetime({s})`,
	`totimespan({s})`, `ipv4_is_private({s})`, `parse_ipv4({s})`, `ipv4_is_in_range({s}, "10.0.0.0/8")`,
	`{l} + 1`, `{l} * 3`, `{l} / 7`, `{l} % 5`, `-{l}`, `abs({l})`, `binary_and({l}, 255)`, `binary_shift_left({l}, 3)`,
	`binary_not({l})`, `bin({l}, 10)`, `bin_at({l}, 7, 2)`, `{l} > 10`, `{l} == 0`, `{l} between (0 .. 100)`,
	`tostring({l})`, `format_bytes({l})`, `tohex({l})`, `max_of({l}, 3)`, `iff({l} > 0, "p", "n")`,
	`case({l} < 0, 1, {l} == 0, 2, 3)`, `coalesce({l}, 9)`, `{l} in (1, 2, 3)`,
	`{r} + 0.5`, `{r} / 3`, `round({r}, 2)`, `floor({r})`, `ceiling({r})`, `sqrt({r})`, `log({r})`, `exp2({r})`,
	`sign({r})`, `isnan({r})`, `isinf({r})`, `isfinite({r})`, `tolong({r})`, `toint({r})`, `tostring({r})`,
	`{r} < {l}`, `pow({r}, 2)`, `bin({r}, 0.5)`, `max_of({r}, {l})`,
	`tostring(todecimal({s}))`, `tostring(todecimal({l}) / 7)`, `tostring(todecimal({r}) / 3)`,
	`todecimal({l}) > todecimal({r})`, `tostring(round(todecimal({r}), 2))`, `tostring(-todecimal({l}) % 9)`,
	`hash({s})`, `hash({l}, 1000)`, `hash({r})`, `hash({d})`,
	`{d} + 1h`, `startofday({d})`, `startofweek({d})`, `startofmonth({d}, -1)`, `endofyear({d})`, `dayofyear({d})`,
	`weekofyear({d})`, `datetime_part("quarter", {d})`, `format_datetime({d}, "yyyy-MM-dd HH:mm:ss.fff")`,
	`bin({d}, 1d)`, `datetime_add("month", {l} % 24, {d})`, `datetime_diff("day", {d}, datetime(2000-01-01))`,
	`tostring({d})`, `{d} > datetime(2020-01-01)`, `format_timespan({d} - datetime(2000-01-01), "d.hh:mm")`,
	`unixtime_seconds_todatetime({l})`, `make_datetime(2000 + {l} % 50, 1 + {l} % 12, 1 + {l} % 28)`,
	`parse_json({j})`, `array_length(parse_json({j}))`, `bag_keys(parse_json({j}))`, `treepath(parse_json({j}))`,
	`array_sort_asc(parse_json({j}))`, `set_union(parse_json({j}), dynamic([1]))`, `array_slice(parse_json({j}), 0, 1)`,
	`bag_merge(parse_json({j}), dynamic({"k":1}))`, `zip(parse_json({j}), dynamic([2]))`, `gettype(parse_json({j}))`,
	`tostring(parse_json({j}))`, `series_fill_forward(parse_json({j}))`, `series_stats_dynamic(parse_json({j}))`,
	`bag_pack("a", {l}, "b", {s})`, `pack_array({l}, {r}, {s})`, `array_index_of(parse_json({j}), 1)`,
	`strcat_array(parse_json({j}), "-")`, `regex_quote({s})`, `to_utf8({s})`, `string_size({s})`, `parse_csv({s})`,
	`bitset_count_ones({l})`, `has_ipv4({s}, "10.1.2.3")`, `array_rotate_left(parse_json({j}), {l} % 5)`,
	`series_add(parse_json({j}), {r})`, `jaccard_index(parse_json({j}), dynamic([1, "x"]))`, `make_string({l} % 1000)`,
	// Exact decimal kernels (decimal.go): bin, bin_at, floor, abs, tolong.
	`tostring(bin(todecimal({r}), todecimal({l}) % 7))`, `tostring(bin_at(todecimal({r}), 0.25, todecimal({l})))`,
	`tostring(floor(todecimal({r}) / 3))`, `tostring(abs(todecimal({s})))`, `tolong(todecimal({s}))`,
	`toint(todecimal({r}))`,
}

func kqlString(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == 0 {
			return ' '
		}
		return r
	}, s)
	return `@"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

func kqlReal(f float64) string {
	switch {
	case math.IsNaN(f):
		return "real(nan)"
	case math.IsInf(f, 1):
		return "real(+inf)"
	case math.IsInf(f, -1):
		return "real(-inf)"
	}
	return "real(" + strconv.FormatFloat(f, 'g', -1, 64) + ")"
}

var diffSeeds = []struct {
	s    string
	l    int64
	r    float64
	unix int64
}{
	{"abc,def 123", 42, 1.5, 1700000000},
	{"Abc-ab", -7, -0.25, 0},
	{"10.1.2.3", math.MaxInt64, math.Inf(1), -1000000000},
	{`{"a":[1,2],"b":{"c":null}}`, 3, math.NaN(), 253402300799},
	{`[3,1,null,"x"]`, 0, 1e300, 86400},
	{"https://u:p@h:1/p/q.txt?x=1#f", math.MinInt64, 2.5, 951782400},
	{"", 1, 0, 1},
}

// FuzzConstVsColumn is the differential test of scalar evaluation: for
// every template, the constant evaluation and the column evaluation of the
// same values must agree.
func FuzzConstVsColumn(f *testing.F) {
	// Every template with every seed row.
	for i := range diffTemplates {
		for _, v := range diffSeeds {
			f.Add(i, v.s, v.l, v.r, v.unix)
		}
	}
	e := New(Options{Limits: Limits{MaxResultRows: 1000, MaxMemoryBytes: 64 << 20, Timeout: 5 * time.Second}})
	f.Fuzz(func(t *testing.T, which int, s string, l int64, r float64, unix int64) {
		if which < 0 || len(s) > 200 {
			return
		}
		tmpl := diffTemplates[which%len(diffTemplates)]
		unix = unix % 253402300800 // keep the datetime within years 1970–9999
		if unix < 0 {
			unix = -unix
		}
		d := "datetime(" + kql.FormatDatetime(unix*store.TicksPerSecond) + ")"
		lit := map[string]string{"{s}": kqlString(s), "{l}": "long(" + strconv.FormatInt(l, 10) + ")", "{r}": kqlReal(r), "{d}": d, "{j}": kqlString(s)}
		cols := map[string]string{"{s}": "s", "{l}": "l", "{r}": "r", "{d}": "d", "{j}": "s"}
		subst := func(m map[string]string) string {
			var pairs []string
			for k, v := range m {
				pairs = append(pairs, k, v)
			}
			return strings.NewReplacer(pairs...).Replace(tmpl) // one pass: literals are not rescanned
		}
		ctx := context.Background()
		constQ := "print x = " + subst(lit)
		// The second row makes the columns real vectors (not one-row batches).
		colQ := fmt.Sprintf("datatable(s:string, l:long, r:real, d:datetime)[%s, %s, %s, %s, \"zz\", 1, 2.0, datetime(2001-02-03)] | project x = %s | take 1",
			lit["{s}"], lit["{l}"], lit["{r}"], d, subst(cols))
		// take 1 of an unordered datatable keeps input order in Custos.
		want, err1 := e.Query(ctx, Request{Query: constQ, Now: testNow})
		got, err2 := e.Query(ctx, Request{Query: colQ, Now: testNow})
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("%s\nconstant: %v\ncolumn: %v", tmpl, err1, err2)
		}
		if err1 != nil {
			return
		}
		w, g := formatResult(want), formatResult(got)
		if w != g {
			t.Fatalf("%s with s=%q l=%d r=%v d=%s\nconstant:\n%s\ncolumn:\n%s", tmpl, s, l, r, d, w, g)
		}
	})
}
