package purge

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"custos/internal/api"
	"custos/internal/store"
)

// Limits on a request body, so that a filter list cannot make the worker
// slow or large.
const (
	MaxFilters     = 32
	MaxValues      = 1000 // values of one in/in~ filter
	MaxValueBytes  = 4096 // one string value
	maxColumnBytes = 256
)

// Filter is one condition of a purge or delete-data body:
// {"column","operator","value","key"}. Value is a number, a string or an
// array (in, in~, between); Key names a property of a dynamic column
// (Application Insights' custom dimensions).
type Filter struct {
	Column   string          `json:"column"`
	Operator string          `json:"operator"`
	Value    json.RawMessage `json:"value"`
	Key      string          `json:"key,omitempty"`
}

// PurgeBody is the body of POST .../workspaces/{ws}/purge.
type PurgeBody struct {
	Table   string   `json:"table"`
	Filters []Filter `json:"filters"`
}

// DeleteDataBody is the body of POST .../tables/{t}/deleteData.
type DeleteDataBody struct {
	Filters []Filter `json:"filters"`
}

// InvalidError is a request that breaks a rule of the purge API. It
// implements api.Coded (400).
type InvalidError struct {
	Code    string
	Target  string
	Message string
}

func (e *InvalidError) Error() string { return e.Message }

// AzureError implements api.Coded.
func (e *InvalidError) AzureError() (string, api.Kind) { return e.Code, api.KindInvalid }

func invalid(target, format string, args ...any) *InvalidError {
	return &InvalidError{Code: "InvalidParameter", Target: target, Message: fmt.Sprintf(format, args...)}
}

// DecodePurgeBody strictly decodes and checks the shape of a purge body
// (unknown members, a missing table, no filters and malformed filters are
// errors). Columns and values are checked against the table by Compile.
func DecodePurgeBody(data []byte) (PurgeBody, error) {
	var b PurgeBody
	if err := api.UnmarshalStrict(data, &b); err != nil {
		return PurgeBody{}, err
	}
	if strings.TrimSpace(b.Table) == "" {
		return PurgeBody{}, invalid("table", "The purge body must name a 'table'.")
	}
	if len(b.Table) > maxColumnBytes || !utf8.ValidString(b.Table) {
		return PurgeBody{}, invalid("table", "The table name is invalid.")
	}
	if err := checkFilters(b.Filters); err != nil {
		return PurgeBody{}, err
	}
	return b, nil
}

// DecodeDeleteDataBody strictly decodes and checks the shape of a
// delete-data body.
func DecodeDeleteDataBody(data []byte) (DeleteDataBody, error) {
	var b DeleteDataBody
	if err := api.UnmarshalStrict(data, &b); err != nil {
		return DeleteDataBody{}, err
	}
	if err := checkFilters(b.Filters); err != nil {
		return DeleteDataBody{}, err
	}
	return b, nil
}

func checkFilters(fs []Filter) error {
	if len(fs) == 0 {
		return invalid("filters", "At least one filter is required; to remove all data of a table, filter on TimeGenerated.")
	}
	if len(fs) > MaxFilters {
		return invalid("filters", "At most %d filters are allowed; got %d.", MaxFilters, len(fs))
	}
	for i, f := range fs {
		target := fmt.Sprintf("filters[%d]", i)
		if f.Column == "" || len(f.Column) > maxColumnBytes || !utf8.ValidString(f.Column) {
			return invalid(target+".column", "Filter %d must name a 'column'.", i)
		}
		if len(f.Key) > maxColumnBytes || !utf8.ValidString(f.Key) {
			return invalid(target+".key", "Filter %d has an invalid 'key'.", i)
		}
		if _, ok := operators[f.Operator]; !ok {
			return invalid(target+".operator", "Filter %d: the operator '%s' is not supported. Supported operators are ==, =~, in, in~, >, >=, <, <=, between.",
				i, clip(f.Operator))
		}
		if len(bytes.TrimSpace(f.Value)) == 0 || bytes.Equal(bytes.TrimSpace(f.Value), []byte("null")) {
			return invalid(target+".value", "Filter %d must have a 'value'.", i)
		}
	}
	return nil
}

func clip(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}

type opKind int

const (
	opEq opKind = iota + 1
	opEqCI
	opIn
	opInCI
	opGT
	opGE
	opLT
	opLE
	opBetween
)

// operators is the purge API's operator list; an immutable lookup table.
var operators = map[string]opKind{
	"==": opEq, "=~": opEqCI, "in": opIn, "in~": opInCI,
	">": opGT, ">=": opGE, "<": opLT, "<=": opLE, "between": opBetween,
}

// Predicate is a compiled filter list: a store.RowPredicate that matches
// rows for which every filter holds (KQL semantics: a null never matches).
// It is immutable and safe for concurrent use.
type Predicate struct {
	conds []cond
	cols  []string
}

var _ store.RowPredicate = (*Predicate)(nil)

// cond is one compiled filter: test reports whether row i of v matches.
type cond struct {
	col  string
	test func(v *store.Vector, i int) bool
}

// Columns implements store.RowPredicate.
func (p *Predicate) Columns() []string { return p.cols }

// Match implements store.RowPredicate.
func (p *Predicate) Match(b *store.Batch) ([]bool, error) {
	out := make([]bool, b.Len)
	for i := range out {
		out[i] = true
	}
	for _, c := range p.conds {
		v := b.Col(c.col)
		if v == nil {
			return nil, fmt.Errorf("purge filter: column %s missing from batch", c.col)
		}
		if v.Len() != b.Len {
			return nil, fmt.Errorf("purge filter: column %s has %d values for %d rows", c.col, v.Len(), b.Len)
		}
		for i := range out {
			if out[i] && (v.IsNull(i) || !c.test(v, i)) {
				out[i] = false
			}
		}
	}
	return out, nil
}

// Compile checks filters against schema (column names are case-sensitive,
// as in KQL) and returns their conjunction. Errors are *InvalidError.
func Compile(filters []Filter, schema store.Schema) (*Predicate, error) {
	if err := checkFilters(filters); err != nil {
		return nil, err
	}
	p := &Predicate{}
	for i, f := range filters {
		target := fmt.Sprintf("filters[%d]", i)
		ci := schema.Index(f.Column)
		if ci < 0 {
			return nil, invalid(target+".column", "Filter %d: the table has no column '%s' (column names are case-sensitive).", i, clip(f.Column))
		}
		typ := schema[ci].Type
		if f.Key != "" && typ != store.TypeDynamic {
			return nil, invalid(target+".key", "Filter %d: 'key' applies only to dynamic columns; '%s' is %s.", i, f.Column, typ)
		}
		test, err := compileCond(operators[f.Operator], f, typ)
		if err != nil {
			err.Target = target + ".value"
			err.Message = fmt.Sprintf("Filter %d (%s %s): %s", i, f.Column, f.Operator, err.Message)
			return nil, err
		}
		p.conds = append(p.conds, cond{col: f.Column, test: test})
		if !contains(p.cols, f.Column) {
			p.cols = append(p.cols, f.Column)
		}
	}
	return p, nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// values decodes the filter value for op: one scalar, a list (in, in~; a
// scalar counts as a one-element list) or exactly two (between).
func values(op opKind, raw json.RawMessage) ([]json.RawMessage, *InvalidError) {
	raw = bytes.TrimSpace(raw)
	isArray := len(raw) > 0 && raw[0] == '['
	var list []json.RawMessage
	if isArray {
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, invalid("", "the value is not a valid JSON array.")
		}
	}
	switch op {
	case opIn, opInCI:
		if !isArray {
			return []json.RawMessage{raw}, nil
		}
		if len(list) == 0 {
			return nil, invalid("", "the value list is empty.")
		}
		if len(list) > MaxValues {
			return nil, invalid("", "at most %d values are allowed; got %d.", MaxValues, len(list))
		}
		return list, nil
	case opBetween:
		if !isArray || len(list) != 2 {
			return nil, invalid("", "between takes an array of exactly two values [from, to].")
		}
		return list, nil
	default:
		if isArray {
			return nil, invalid("", "the operator takes a single value, not an array.")
		}
		return []json.RawMessage{raw}, nil
	}
}

func compileCond(op opKind, f Filter, typ store.ColumnType) (func(*store.Vector, int) bool, *InvalidError) {
	vals, err := values(op, f.Value)
	if err != nil {
		return nil, err
	}
	switch typ {
	case store.TypeString, store.TypeGUID:
		return compileString(op, vals, typ == store.TypeGUID, func(v *store.Vector, i int) (string, bool) { return v.Str[i], true })
	case store.TypeDynamic:
		return compileDynamic(op, vals, f.Key)
	case store.TypeBool:
		return compileBool(op, vals)
	case store.TypeInt, store.TypeLong:
		return compileNumber(op, vals, func(v *store.Vector, i int) (num, bool) { return num{isInt: true, i: v.Int[i]}, true })
	case store.TypeReal, store.TypeDecimal:
		return compileNumber(op, vals, func(v *store.Vector, i int) (num, bool) { return num{f: v.Real[i]}, true })
	case store.TypeDatetime:
		return compileTicks(op, vals, parseDatetime, "datetime", func(v *store.Vector, i int) (int64, bool) { return v.Int[i], true })
	case store.TypeTimespan:
		return compileTicks(op, vals, parseTimespan, "timespan", func(v *store.Vector, i int) (int64, bool) { return v.Int[i], true })
	}
	return nil, invalid("", "columns of type %s cannot be filtered.", typ)
}

// jsonString decodes a JSON string value, bounded in size.
func jsonString(raw json.RawMessage) (string, bool) {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil || len(s) > MaxValueBytes {
		return "", false
	}
	return s, true
}

func compileString(op opKind, vals []json.RawMessage, guid bool, get func(*store.Vector, int) (string, bool)) (func(*store.Vector, int) bool, *InvalidError) {
	switch op {
	case opEq, opEqCI, opIn, opInCI:
	default:
		return nil, invalid("", "string columns support ==, =~, in and in~ only.")
	}
	ci := op == opEqCI || op == opInCI
	set := make(map[string]bool, len(vals))
	var folded []string
	for _, raw := range vals {
		s, ok := jsonString(raw)
		if !ok {
			return nil, invalid("", "the value must be a string (at most %d bytes).", MaxValueBytes)
		}
		if guid {
			s = strings.ToLower(s) // stored GUIDs are canonical lower case
		}
		if ci {
			folded = append(folded, s)
		} else {
			set[s] = true
		}
	}
	if ci {
		return func(v *store.Vector, i int) bool {
			s, ok := get(v, i)
			if !ok {
				return false
			}
			for _, x := range folded {
				if strings.EqualFold(s, x) {
					return true
				}
			}
			return false
		}, nil
	}
	return func(v *store.Vector, i int) bool {
		s, ok := get(v, i)
		return ok && set[s]
	}, nil
}

func compileBool(op opKind, vals []json.RawMessage) (func(*store.Vector, int) bool, *InvalidError) {
	if op != opEq && op != opIn {
		return nil, invalid("", "bool columns support == and in only.")
	}
	var want [2]bool // want[0]: false matches, want[1]: true matches
	for _, raw := range vals {
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			s, ok := jsonString(raw)
			switch {
			case ok && strings.EqualFold(s, "true"):
				b = true
			case ok && strings.EqualFold(s, "false"):
				b = false
			default:
				return nil, invalid("", "the value must be true or false.")
			}
		}
		if b {
			want[1] = true
		} else {
			want[0] = true
		}
	}
	return func(v *store.Vector, i int) bool {
		if v.Bool[i] {
			return want[1]
		}
		return want[0]
	}, nil
}

// num is an integer or a real; comparisons between an integer column and an
// integer value are exact, anything else compares as float64.
type num struct {
	isInt bool
	i     int64
	f     float64
}

func (n num) float() float64 {
	if n.isInt {
		return float64(n.i)
	}
	return n.f
}

func cmpNum(a, b num) int {
	if a.isInt && b.isInt {
		switch {
		case a.i < b.i:
			return -1
		case a.i > b.i:
			return 1
		}
		return 0
	}
	x, y := a.float(), b.float()
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	case x == y:
		return 0
	}
	return 2 // NaN: unordered, matches nothing
}

func parseNum(raw json.RawMessage) (num, bool) {
	text := string(raw)
	if s, ok := jsonString(raw); ok {
		text = strings.TrimSpace(s)
	} else if len(raw) == 0 || !(raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9')) {
		return num{}, false
	}
	if i, err := strconv.ParseInt(text, 10, 64); err == nil {
		return num{isInt: true, i: i}, true
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return num{}, false
	}
	return num{f: f}, true
}

func compileNumber(op opKind, vals []json.RawMessage, get func(*store.Vector, int) (num, bool)) (func(*store.Vector, int) bool, *InvalidError) {
	if op == opEqCI || op == opInCI {
		return nil, invalid("", "=~ and in~ apply to strings only.")
	}
	ns := make([]num, len(vals))
	for k, raw := range vals {
		n, ok := parseNum(raw)
		if !ok {
			return nil, invalid("", "the value must be a number.")
		}
		ns[k] = n
	}
	if op == opBetween && cmpNum(ns[0], ns[1]) > 0 {
		return nil, invalid("", "the range [%s, %s] is empty.", vals[0], vals[1])
	}
	return func(v *store.Vector, i int) bool {
		x, ok := get(v, i)
		return ok && ordered(op, func(k int) int { return cmpNum(x, ns[k]) }, len(ns))
	}, nil
}

// ordered applies op given cmp(k) = compare(row, value k).
func ordered(op opKind, cmp func(k int) int, n int) bool {
	switch op {
	case opEq, opIn:
		for k := 0; k < n; k++ {
			if cmp(k) == 0 {
				return true
			}
		}
		return false
	case opGT:
		return cmp(0) == 1
	case opGE:
		c := cmp(0)
		return c == 0 || c == 1
	case opLT:
		return cmp(0) == -1
	case opLE:
		c := cmp(0)
		return c == 0 || c == -1
	case opBetween:
		lo, hi := cmp(0), cmp(1)
		return (lo == 0 || lo == 1) && (hi == 0 || hi == -1)
	}
	return false
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func compileTicks(op opKind, vals []json.RawMessage, parse func(string) (int64, bool), what string,
	get func(*store.Vector, int) (int64, bool)) (func(*store.Vector, int) bool, *InvalidError) {
	if op == opEqCI || op == opInCI {
		return nil, invalid("", "=~ and in~ apply to strings only.")
	}
	ts := make([]int64, len(vals))
	for k, raw := range vals {
		s, ok := jsonString(raw)
		if !ok {
			return nil, invalid("", "the value must be a %s string.", what)
		}
		t, ok := parse(strings.TrimSpace(s))
		if !ok {
			return nil, invalid("", "'%s' is not a valid %s.", clip(s), what)
		}
		ts[k] = t
	}
	if op == opBetween && ts[0] > ts[1] {
		return nil, invalid("", "the range is empty (from is after to).")
	}
	return func(v *store.Vector, i int) bool {
		x, ok := get(v, i)
		return ok && ordered(op, func(k int) int { return cmpInt(x, ts[k]) }, len(ts))
	}, nil
}

// datetimeLayouts are the forms a datetime value may take; a value without
// a zone is UTC, as in KQL.
var datetimeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.9999999",
	"2006-01-02T15:04:05",
	"2006-01-02T15:04",
	"2006-01-02 15:04:05.9999999",
	"2006-01-02 15:04:05",
	"2006-01-02 15:04",
	"2006-01-02",
}

func parseDatetime(s string) (int64, bool) {
	if inner, ok := strings.CutPrefix(s, "datetime("); ok && strings.HasSuffix(inner, ")") {
		s = strings.TrimSpace(strings.TrimSuffix(inner, ")"))
	}
	for _, l := range datetimeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return store.TicksFromTime(t), true
		}
	}
	return 0, false
}

// parseTimespan accepts KQL timespan forms: "[-][d.]hh:mm[:ss[.fffffff]]"
// and a number with a unit (d, h, m, s, ms, microsecond, tick), e.g. "1.5h".
func parseTimespan(s string) (int64, bool) {
	if inner, ok := strings.CutPrefix(s, "timespan("); ok && strings.HasSuffix(inner, ")") {
		s = strings.TrimSpace(strings.TrimSuffix(inner, ")"))
	}
	if s == "" || len(s) > 64 {
		return 0, false
	}
	neg := false
	if s[0] == '-' {
		neg, s = true, s[1:]
	}
	var ticks float64
	if strings.Contains(s, ":") {
		days := 0.0
		clock := s
		if d, rest, ok := strings.Cut(s, "."); ok && !strings.Contains(d, ":") {
			n, err := strconv.ParseUint(d, 10, 32)
			if err != nil {
				return 0, false
			}
			days, clock = float64(n), rest
		}
		parts := strings.Split(clock, ":")
		if len(parts) < 2 || len(parts) > 3 {
			return 0, false
		}
		h, err1 := strconv.ParseUint(parts[0], 10, 8)
		m, err2 := strconv.ParseUint(parts[1], 10, 8)
		if err1 != nil || err2 != nil || h > 23 || m > 59 {
			return 0, false
		}
		sec := 0.0
		if len(parts) == 3 {
			f, err := strconv.ParseFloat(parts[2], 64)
			if err != nil || f < 0 || f >= 60 || strings.ContainsAny(parts[2], "eE+-") {
				return 0, false
			}
			sec = f
		}
		ticks = days*store.TicksPerDay + float64(h)*store.TicksPerHour + float64(m)*store.TicksPerMinute + sec*store.TicksPerSecond
	} else {
		units := []struct {
			suffix string
			ticks  float64
		}{
			{"microseconds", store.TicksPerMicrosecond}, {"microsecond", store.TicksPerMicrosecond},
			{"milliseconds", store.TicksPerMillisecond}, {"millisecond", store.TicksPerMillisecond},
			{"seconds", store.TicksPerSecond}, {"second", store.TicksPerSecond},
			{"minutes", store.TicksPerMinute}, {"minute", store.TicksPerMinute},
			{"hours", store.TicksPerHour}, {"hour", store.TicksPerHour},
			{"days", store.TicksPerDay}, {"day", store.TicksPerDay},
			{"ticks", 1}, {"tick", 1},
			{"ms", store.TicksPerMillisecond}, {"d", store.TicksPerDay}, {"h", store.TicksPerHour},
			{"m", store.TicksPerMinute}, {"s", store.TicksPerSecond},
		}
		matched := false
		for _, u := range units {
			if numText, ok := strings.CutSuffix(s, u.suffix); ok && numText != "" {
				f, err := strconv.ParseFloat(numText, 64)
				if err != nil || f < 0 || strings.ContainsAny(numText, "eE+-") {
					return 0, false
				}
				ticks, matched = f*u.ticks, true
				break
			}
		}
		if !matched {
			return 0, false
		}
	}
	if ticks > math.MaxInt64/2 || math.IsNaN(ticks) {
		return 0, false
	}
	t := int64(math.Round(ticks))
	if neg {
		t = -t
	}
	return t, true
}

// compileDynamic filters a dynamic column: with key, on that property of an
// object (a custom dimension); without, on the value itself. A JSON string
// compares as its text, any other JSON as its compact text; ordering
// operators compare numbers, or datetimes when the filter value is one.
func compileDynamic(op opKind, vals []json.RawMessage, key string) (func(*store.Vector, int) bool, *InvalidError) {
	scalar := func(v *store.Vector, i int) (json.RawMessage, bool) {
		raw := json.RawMessage(v.Str[i])
		if key != "" {
			var obj map[string]json.RawMessage
			if json.Unmarshal(raw, &obj) != nil {
				return nil, false
			}
			m, ok := obj[key]
			if !ok {
				return nil, false
			}
			raw = m
		}
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 || string(raw) == "null" {
			return nil, false
		}
		return raw, true
	}
	asString := func(v *store.Vector, i int) (string, bool) {
		raw, ok := scalar(v, i)
		if !ok {
			return "", false
		}
		if s, ok := jsonString(raw); ok {
			return s, true
		}
		var c bytes.Buffer
		if json.Compact(&c, raw) != nil {
			return "", false
		}
		return c.String(), true
	}
	allStrings := true
	for _, raw := range vals {
		if _, ok := jsonString(raw); !ok {
			allStrings = false
		}
	}
	switch op {
	case opEq, opEqCI, opIn, opInCI:
		if allStrings {
			return compileString(op, vals, false, asString)
		}
		if op == opEqCI || op == opInCI {
			return nil, invalid("", "=~ and in~ take string values.")
		}
		return compileNumber(op, vals, func(v *store.Vector, i int) (num, bool) {
			raw, ok := scalar(v, i)
			if !ok {
				return num{}, false
			}
			return parseNum(raw)
		})
	}
	// Ordering: datetimes if every value is a datetime string, else numbers.
	dates := allStrings
	for _, raw := range vals {
		if s, ok := jsonString(raw); !ok {
			dates = false
		} else if _, ok := parseDatetime(s); !ok {
			dates = false
		}
	}
	if dates {
		return compileTicks(op, vals, parseDatetime, "datetime", func(v *store.Vector, i int) (int64, bool) {
			s, ok := asString(v, i)
			if !ok {
				return 0, false
			}
			return parseDatetime(s)
		})
	}
	return compileNumber(op, vals, func(v *store.Vector, i int) (num, bool) {
		raw, ok := scalar(v, i)
		if !ok {
			return num{}, false
		}
		return parseNum(raw)
	})
}
