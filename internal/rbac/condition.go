package rbac

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ConditionVersion is the only ABAC condition language version Custos
// accepts, as Azure's conditionVersion property spells it.
const ConditionVersion = "2.0"

// Limits on conditions; a condition beyond them is rejected when parsed.
const (
	maxConditionBytes  = 8192
	maxConditionDepth  = 64
	maxConditionValues = 100
	maxValueBytes      = 256
)

// Attribute names of the Log Analytics condition subset (spec §3.3).
const (
	attrTablesPrefix = "microsoft.operationalinsights/workspaces/tables:"
	attrRecordPrefix = "microsoft.operationalinsights/workspaces/tables/record:"
)

// ErrCondition is wrapped by every *ConditionError.
var ErrCondition = errors.New("rbac: invalid condition")

// ConditionError locates a syntax or validation error in an ABAC condition.
// Pos is the byte offset in the condition text.
type ConditionError struct {
	Pos int
	Msg string
}

func (e *ConditionError) Error() string {
	return fmt.Sprintf("invalid condition at offset %d: %s", e.Pos, e.Msg)
}

// Unwrap makes errors.Is(err, ErrCondition) true.
func (e *ConditionError) Unwrap() error { return ErrCondition }

// Condition is a parsed ABAC role assignment condition (version 2.0) over the
// attributes Azure documents for Log Analytics:
//
//	@Resource[Microsoft.OperationalInsights/workspaces/tables:name]
//	@Resource[Microsoft.OperationalInsights/workspaces/tables/record:<column>]
//
// with the string operators StringEquals, StringNotEquals, StringLike,
// StringNotLike, StringStartsWith, StringNotStartsWith (each also with an
// IgnoreCase suffix), their ForAnyOfAnyValues:, ForAllOfAnyValues:,
// ForAnyOfAllValues: and ForAllOfAllValues: set forms, AND / OR / NOT (also
// && || !), parentheses and ActionMatches{'...'} guards. A Condition is
// immutable and safe for concurrent use.
type Condition struct {
	src  string
	root *cnode
}

// String returns the condition text as given.
func (c *Condition) String() string { return c.src }

type ckind uint8

const (
	cConst ckind = iota
	cAnd
	cOr
	cNot
	cAction
	cCmp
)

type quant uint8

const (
	qSingle quant = iota
	qAny          // ...OfAnyValues: the attribute matches at least one value
	qAll          // ...OfAllValues: the attribute matches every value
)

// strOp is a string comparison; ignoreCase and negate come from the
// operator's name.
type strOp struct {
	base       string // "equals", "like", "startswith"
	ignoreCase bool
	negate     bool
	q          quant
	name       string // as written, for messages
}

type cnode struct {
	kind    ckind
	val     bool     // cConst
	kids    []*cnode // cAnd, cOr, cNot (one kid)
	actions []pattern
	table   bool   // cCmp: the attribute is the table name
	column  string // cCmp: record column
	op      strOp
	values  []string
}

var (
	columnNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
	tableValueRE = regexp.MustCompile(`^[A-Za-z0-9_.\-]{1,256}$`)
	// recordValueRE: Azure limits column values in conditions to
	// alphanumerics and "@ . -"; Custos also accepts "_" and ":".
	recordValueRE = regexp.MustCompile(`^[A-Za-z0-9@.\-_:]{1,256}$`)
)

// ParseCondition parses and validates an ABAC condition. Errors are
// *ConditionError.
func ParseCondition(src string) (*Condition, error) {
	if len(src) > maxConditionBytes {
		return nil, &ConditionError{Pos: maxConditionBytes, Msg: fmt.Sprintf("the condition is longer than %d bytes", maxConditionBytes)}
	}
	p := &condParser{src: src}
	if err := p.lex(); err != nil {
		return nil, err
	}
	if len(p.toks) == 0 {
		return nil, &ConditionError{Pos: 0, Msg: "the condition is empty"}
	}
	n, err := p.parseOr(0)
	if err != nil {
		return nil, err
	}
	if p.i < len(p.toks) {
		return nil, p.errAt(p.toks[p.i], "unexpected %s", p.toks[p.i].describe())
	}
	return &Condition{src: src, root: n}, nil
}

// ----- lexer -----

type tkind uint8

const (
	tLParen tkind = iota
	tRParen
	tLBrace
	tRBrace
	tComma
	tNot
	tAnd
	tOr
	tString
	tAttr
	tWord
)

type ctoken struct {
	kind tkind
	pos  int
	text string // tString: the value; tAttr: the text inside [...]; tWord: the word
}

func (t ctoken) describe() string {
	switch t.kind {
	case tLParen:
		return "'('"
	case tRParen:
		return "')'"
	case tLBrace:
		return "'{'"
	case tRBrace:
		return "'}'"
	case tComma:
		return "','"
	case tNot:
		return "'!'"
	case tAnd:
		return "AND"
	case tOr:
		return "OR"
	case tString:
		return "a string"
	case tAttr:
		return "an attribute"
	}
	return fmt.Sprintf("%q", clipText(t.text, 40))
}

func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

type condParser struct {
	src  string
	toks []ctoken
	i    int
}

func (p *condParser) errAt(t ctoken, format string, args ...any) error {
	return &ConditionError{Pos: t.pos, Msg: fmt.Sprintf(format, args...)}
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == ':' || c == '.'
}

func (p *condParser) lex() error {
	s := p.src
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == '(':
			p.toks = append(p.toks, ctoken{kind: tLParen, pos: i})
			i++
		case c == ')':
			p.toks = append(p.toks, ctoken{kind: tRParen, pos: i})
			i++
		case c == '{':
			p.toks = append(p.toks, ctoken{kind: tLBrace, pos: i})
			i++
		case c == '}':
			p.toks = append(p.toks, ctoken{kind: tRBrace, pos: i})
			i++
		case c == ',':
			p.toks = append(p.toks, ctoken{kind: tComma, pos: i})
			i++
		case c == '!':
			p.toks = append(p.toks, ctoken{kind: tNot, pos: i})
			i++
		case c == '&' && i+1 < len(s) && s[i+1] == '&':
			p.toks = append(p.toks, ctoken{kind: tAnd, pos: i})
			i += 2
		case c == '|' && i+1 < len(s) && s[i+1] == '|':
			p.toks = append(p.toks, ctoken{kind: tOr, pos: i})
			i += 2
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return &ConditionError{Pos: i, Msg: "unterminated string"}
			}
			p.toks = append(p.toks, ctoken{kind: tString, pos: i, text: s[i+1 : i+1+end]})
			i += end + 2
		case c == '@':
			open := strings.IndexByte(s[i:], '[')
			if open < 0 {
				return &ConditionError{Pos: i, Msg: "an attribute must look like @Resource[...]"}
			}
			source := s[i+1 : i+open]
			if !strings.EqualFold(source, "Resource") {
				return &ConditionError{Pos: i, Msg: fmt.Sprintf("attribute source @%s is not supported; only @Resource attributes are", clipText(source, 40))}
			}
			end := strings.IndexByte(s[i+open:], ']')
			if end < 0 {
				return &ConditionError{Pos: i, Msg: "unterminated attribute: missing ']'"}
			}
			p.toks = append(p.toks, ctoken{kind: tAttr, pos: i, text: s[i+open+1 : i+open+end]})
			i += open + end + 1
		case isWordByte(c):
			j := i
			for j < len(s) && isWordByte(s[j]) {
				j++
			}
			w := s[i:j]
			switch strings.ToUpper(w) {
			case "AND":
				p.toks = append(p.toks, ctoken{kind: tAnd, pos: i})
			case "OR":
				p.toks = append(p.toks, ctoken{kind: tOr, pos: i})
			case "NOT":
				p.toks = append(p.toks, ctoken{kind: tNot, pos: i})
			default:
				p.toks = append(p.toks, ctoken{kind: tWord, pos: i, text: w})
			}
			i = j
		default:
			return &ConditionError{Pos: i, Msg: fmt.Sprintf("unexpected character %q", rune(c))}
		}
	}
	return nil
}

// ----- parser -----

func (p *condParser) peek() (ctoken, bool) {
	if p.i < len(p.toks) {
		return p.toks[p.i], true
	}
	return ctoken{}, false
}

func (p *condParser) eofErr() error {
	return &ConditionError{Pos: len(p.src), Msg: "unexpected end of condition"}
}

func (p *condParser) expect(k tkind, what string) (ctoken, error) {
	t, ok := p.peek()
	if !ok {
		return t, p.eofErr()
	}
	if t.kind != k {
		return t, p.errAt(t, "expected %s, found %s", what, t.describe())
	}
	p.i++
	return t, nil
}

func (p *condParser) parseOr(depth int) (*cnode, error) {
	if depth > maxConditionDepth {
		return nil, &ConditionError{Pos: p.pos(), Msg: "the condition is nested too deeply"}
	}
	l, err := p.parseAnd(depth)
	if err != nil {
		return nil, err
	}
	kids := []*cnode{l}
	for {
		t, ok := p.peek()
		if !ok || t.kind != tOr {
			break
		}
		p.i++
		r, err := p.parseAnd(depth)
		if err != nil {
			return nil, err
		}
		kids = append(kids, r)
	}
	if len(kids) == 1 {
		return l, nil
	}
	return &cnode{kind: cOr, kids: kids}, nil
}

func (p *condParser) pos() int {
	if t, ok := p.peek(); ok {
		return t.pos
	}
	return len(p.src)
}

func (p *condParser) parseAnd(depth int) (*cnode, error) {
	l, err := p.parseUnary(depth)
	if err != nil {
		return nil, err
	}
	kids := []*cnode{l}
	for {
		t, ok := p.peek()
		if !ok || t.kind != tAnd {
			break
		}
		p.i++
		r, err := p.parseUnary(depth)
		if err != nil {
			return nil, err
		}
		kids = append(kids, r)
	}
	if len(kids) == 1 {
		return l, nil
	}
	return &cnode{kind: cAnd, kids: kids}, nil
}

func (p *condParser) parseUnary(depth int) (*cnode, error) {
	if depth > maxConditionDepth {
		return nil, &ConditionError{Pos: p.pos(), Msg: "the condition is nested too deeply"}
	}
	t, ok := p.peek()
	if !ok {
		return nil, p.eofErr()
	}
	switch t.kind {
	case tNot:
		p.i++
		k, err := p.parseUnary(depth + 1)
		if err != nil {
			return nil, err
		}
		return &cnode{kind: cNot, kids: []*cnode{k}}, nil
	case tLParen:
		p.i++
		n, err := p.parseOr(depth + 1)
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tRParen, "')'"); err != nil {
			return nil, err
		}
		return n, nil
	case tWord:
		return p.parseActionMatches(t)
	case tAttr:
		return p.parseComparison(t)
	}
	return nil, p.errAt(t, "expected an expression, found %s", t.describe())
}

func (p *condParser) parseActionMatches(t ctoken) (*cnode, error) {
	switch {
	case strings.EqualFold(t.text, "ActionMatches"):
	case strings.EqualFold(t.text, "SubOperationMatches"):
		return nil, p.errAt(t, "SubOperationMatches is not supported")
	default:
		return nil, p.errAt(t, "unknown function or keyword %q", clipText(t.text, 40))
	}
	p.i++
	vals, err := p.parseSet()
	if err != nil {
		return nil, err
	}
	n := &cnode{kind: cAction}
	for _, v := range vals {
		if !Action(strings.ReplaceAll(v, "*", "x")).valid() {
			return nil, p.errAt(t, "ActionMatches names %q, which is not an action", clipText(v, 80))
		}
		n.actions = append(n.actions, compilePattern(v))
	}
	return n, nil
}

// parseSet reads {'a', 'b', ...}.
func (p *condParser) parseSet() ([]string, error) {
	open, err := p.expect(tLBrace, "'{'")
	if err != nil {
		return nil, err
	}
	var vals []string
	for {
		s, err := p.expect(tString, "a quoted value")
		if err != nil {
			return nil, err
		}
		vals = append(vals, s.text)
		if len(vals) > maxConditionValues {
			return nil, p.errAt(open, "more than %d values in a set", maxConditionValues)
		}
		t, ok := p.peek()
		if !ok {
			return nil, p.eofErr()
		}
		p.i++
		if t.kind == tRBrace {
			return vals, nil
		}
		if t.kind != tComma {
			return nil, p.errAt(t, "expected ',' or '}', found %s", t.describe())
		}
	}
}

var baseOps = map[string]strOp{
	"stringequals":                  {base: "equals"},
	"stringequalsignorecase":        {base: "equals", ignoreCase: true},
	"stringnotequals":               {base: "equals", negate: true},
	"stringnotequalsignorecase":     {base: "equals", negate: true, ignoreCase: true},
	"stringlike":                    {base: "like"},
	"stringlikeignorecase":          {base: "like", ignoreCase: true},
	"stringnotlike":                 {base: "like", negate: true},
	"stringnotlikeignorecase":       {base: "like", negate: true, ignoreCase: true},
	"stringstartswith":              {base: "startswith"},
	"stringstartswithignorecase":    {base: "startswith", ignoreCase: true},
	"stringnotstartswith":           {base: "startswith", negate: true},
	"stringnotstartswithignorecase": {base: "startswith", negate: true, ignoreCase: true},
}

func parseOperator(w string) (strOp, bool) {
	q := qSingle
	name := strings.ToLower(w)
	if prefix, rest, ok := strings.Cut(name, ":"); ok {
		switch prefix {
		case "foranyofanyvalues", "forallofanyvalues":
			q = qAny
		case "foranyofallvalues", "forallofallvalues":
			q = qAll
		default:
			return strOp{}, false
		}
		name = rest
	}
	op, ok := baseOps[name]
	if !ok {
		return strOp{}, false
	}
	op.q = q
	op.name = w
	return op, true
}

func (p *condParser) parseComparison(attr ctoken) (*cnode, error) {
	p.i++
	n := &cnode{kind: cCmp}
	a := strings.ToLower(attr.text)
	switch {
	case a == attrTablesPrefix+"name":
		n.table = true
	case strings.HasPrefix(a, attrRecordPrefix):
		col := attr.text[len(attrRecordPrefix):]
		if !columnNameRE.MatchString(col) {
			return nil, p.errAt(attr, "the record attribute names %q, which is not a column name", clipText(col, 80))
		}
		n.column = col
	default:
		return nil, p.errAt(attr, "attribute @Resource[%s] is not supported; use %s or %s<column>",
			clipText(attr.text, 120), "Microsoft.OperationalInsights/workspaces/tables:name",
			"Microsoft.OperationalInsights/workspaces/tables/record:")
	}
	opTok, err := p.expect(tWord, "an operator such as StringEquals")
	if err != nil {
		return nil, err
	}
	op, ok := parseOperator(opTok.text)
	if !ok {
		return nil, p.errAt(opTok, "operator %q is not supported", clipText(opTok.text, 80))
	}
	n.op = op
	t, ok := p.peek()
	if !ok {
		return nil, p.eofErr()
	}
	switch {
	case op.q == qSingle && t.kind == tString:
		p.i++
		n.values = []string{t.text}
	case op.q == qSingle:
		return nil, p.errAt(t, "operator %s takes one quoted value; use a ForAnyOfAnyValues: form for a set", op.name)
	case t.kind == tLBrace || t.kind == tString:
		if t.kind == tString {
			p.i++
			n.values = []string{t.text}
		} else if n.values, err = p.parseSet(); err != nil {
			return nil, err
		}
	default:
		return nil, p.errAt(t, "expected a value or a set of values, found %s", t.describe())
	}
	re := recordValueRE
	if n.table {
		re = tableValueRE
	}
	for _, v := range n.values {
		if len(v) > maxValueBytes || !re.MatchString(v) {
			return nil, p.errAt(t, "value %q is not allowed: values may contain only letters, digits and @ . - _ :", clipText(v, 80))
		}
	}
	return n, nil
}

// ----- evaluation -----

var (
	constTrue  = &cnode{kind: cConst, val: true}
	constFalse = &cnode{kind: cConst, val: false}
)

// residual evaluates what is known when operation op (lower-case) is
// requested on table (its name as stored; "" when unknown) and returns the
// simplified condition: a constant, or an expression over the attributes
// still unknown (record columns, and the table name when table is "").
func (n *cnode) residual(op, table string) *cnode {
	switch n.kind {
	case cConst:
		return n
	case cAction:
		for _, p := range n.actions {
			if p.match(op) {
				return constTrue
			}
		}
		return constFalse
	case cCmp:
		if n.table && table != "" {
			if n.op.eval(table, n.values) {
				return constTrue
			}
			return constFalse
		}
		return n
	case cNot:
		k := n.kids[0].residual(op, table)
		if k.kind == cConst {
			if k.val {
				return constFalse
			}
			return constTrue
		}
		return &cnode{kind: cNot, kids: []*cnode{k}}
	case cAnd, cOr:
		short := n.kind == cOr // the value that decides: true for OR, false for AND
		var kids []*cnode
		for _, k := range n.kids {
			r := k.residual(op, table)
			if r.kind == cConst {
				if r.val == short {
					return r
				}
				continue
			}
			kids = append(kids, r)
		}
		switch len(kids) {
		case 0:
			if short {
				return constFalse
			}
			return constTrue
		case 1:
			return kids[0]
		}
		return &cnode{kind: n.kind, kids: kids}
	}
	panic("BUG: unknown condition node")
}

// eval applies the operator to one known attribute value.
func (o strOp) eval(actual string, values []string) bool {
	one := func(v string) bool {
		var r bool
		switch o.base {
		case "equals":
			if o.ignoreCase {
				r = strings.EqualFold(actual, v)
			} else {
				r = actual == v
			}
		case "like":
			r = hasTerm(actual, v, !o.ignoreCase)
		case "startswith":
			if o.ignoreCase {
				r = len(actual) >= len(v) && strings.EqualFold(actual[:len(v)], v)
			} else {
				r = strings.HasPrefix(actual, v)
			}
		}
		return r != o.negate
	}
	if o.q == qAll {
		for _, v := range values {
			if !one(v) {
				return false
			}
		}
		return true
	}
	for _, v := range values {
		if one(v) {
			return true
		}
	}
	return false
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

// hasTerm reports whether term occurs in s on alphanumeric boundaries, as
// KQL's has / has_cs do.
func hasTerm(s, term string, caseSensitive bool) bool {
	if term == "" {
		return true
	}
	hay, needle := s, term
	if !caseSensitive {
		hay, needle = strings.ToLower(s), strings.ToLower(term)
	}
	for from := 0; from <= len(hay)-len(needle); {
		i := strings.Index(hay[from:], needle)
		if i < 0 {
			return false
		}
		i += from
		end := i + len(needle)
		if (i == 0 || !isAlnum(hay[i-1]) || !isAlnum(needle[0])) &&
			(end == len(hay) || !isAlnum(hay[end]) || !isAlnum(needle[len(needle)-1])) {
			return true
		}
		from = i + 1
	}
	return false
}

// columns appends the record columns n refers to.
func (n *cnode) columns(dst []string) []string {
	if n.kind == cCmp && !n.table {
		dst = append(dst, n.column)
	}
	for _, k := range n.kids {
		dst = k.columns(dst)
	}
	return dst
}

// kql renders a residual condition as a KQL predicate. The table name
// attribute becomes the Type column, which holds the table name on every
// table.
func (n *cnode) kql() string {
	var b strings.Builder
	n.writeKQL(&b)
	return b.String()
}

func (n *cnode) writeKQL(b *strings.Builder) {
	switch n.kind {
	case cConst:
		if n.val {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case cNot:
		b.WriteString("not(")
		n.kids[0].writeKQL(b)
		b.WriteString(")")
	case cAnd, cOr:
		sep := " and "
		if n.kind == cOr {
			sep = " or "
		}
		b.WriteString("(")
		for i, k := range n.kids {
			if i > 0 {
				b.WriteString(sep)
			}
			k.writeKQL(b)
		}
		b.WriteString(")")
	case cAction:
		// Resolved by residual before rendering; rendering one is a bug.
		panic("BUG: ActionMatches left in a residual condition")
	case cCmp:
		col := n.column
		if n.table {
			col = "Type"
		}
		n.op.writeKQL(b, col, n.values)
	}
}

// kqlOp returns the KQL operator for one value.
func (o strOp) kqlOp() string {
	var op string
	switch o.base {
	case "equals":
		switch {
		case o.negate && o.ignoreCase:
			op = "!~"
		case o.negate:
			op = "!="
		case o.ignoreCase:
			op = "=~"
		default:
			op = "=="
		}
		return op
	case "like":
		op = "has_cs"
		if o.ignoreCase {
			op = "has"
		}
	case "startswith":
		op = "startswith_cs"
		if o.ignoreCase {
			op = "startswith"
		}
	}
	if o.negate {
		op = "!" + op
	}
	return op
}

func (o strOp) writeKQL(b *strings.Builder, col string, values []string) {
	if len(values) == 1 {
		b.WriteString(col + " " + o.kqlOp() + " " + kqlString(values[0]))
		return
	}
	list := func(op string) {
		b.WriteString(col + " " + op + " (")
		for i, v := range values {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(kqlString(v))
		}
		b.WriteString(")")
	}
	switch {
	case o.q == qAny && o.base == "equals" && !o.negate:
		if o.ignoreCase {
			list("in~")
		} else {
			list("in")
		}
		return
	case o.q == qAll && o.base == "equals" && o.negate:
		if o.ignoreCase {
			list("!in~")
		} else {
			list("!in")
		}
		return
	case o.q == qAny && o.base == "like" && o.ignoreCase && !o.negate:
		list("has_any")
		return
	}
	sep := " or "
	if o.q == qAll {
		sep = " and "
	}
	b.WriteString("(")
	for i, v := range values {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(col + " " + o.kqlOp() + " " + kqlString(v))
	}
	b.WriteString(")")
}

// kqlString quotes s as a KQL string literal.
func kqlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// Predicate returns the KQL row predicate the condition imposes when
// operation act is requested on table (its stored name; "" when unknown,
// in which case the table name attribute becomes a test on the Type column).
// ok is false when the condition denies act outright; a nil-empty predicate
// with ok true means it allows act without restriction.
func (c *Condition) Predicate(act Action, table string) (pred string, ok bool) {
	r := c.root.residual(strings.ToLower(string(act)), table)
	if r.kind == cConst {
		return "", r.val
	}
	return r.kql(), true
}
