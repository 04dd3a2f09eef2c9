package kql

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"custos/internal/api"
)

// Limits that keep parsing bounded on untrusted input.
const (
	// MaxQueryLength is the longest query text Parse accepts, in bytes.
	MaxQueryLength = 256 << 10
	// MaxNestingDepth bounds the nesting of parentheses, sub-queries,
	// function bodies and operators, so deep input cannot exhaust the stack.
	MaxNestingDepth = 100
)

// SyntaxError reports a query that does not parse. Line and Col (1-based,
// Col in characters) point at the offending token. It implements api.Coded.
type SyntaxError struct {
	Line, Col int
	Msg       string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("Syntax error at %d:%d: %s", e.Line, e.Col, e.Msg)
}

// AzureError classifies the error for the Azure wire envelope: Log Analytics
// answers syntax errors with 400 BadArgumentError.
func (e *SyntaxError) AzureError() (string, api.Kind) { return "BadArgumentError", api.KindInvalid }

var _ api.Coded = (*SyntaxError)(nil)

// Parse parses a KQL query: let/set/declare statements and tabular
// expression statements separated by ';'. It returns a *SyntaxError for bad
// syntax (including queries longer than MaxQueryLength or nested deeper than
// MaxNestingDepth). Parse is safe for concurrent use.
func Parse(src string) (*Query, error) {
	if len(src) > MaxQueryLength {
		return nil, &SyntaxError{Line: 1, Col: 1, Msg: fmt.Sprintf("the query is too long (%d bytes; the limit is %d)", len(src), MaxQueryLength)}
	}
	if !utf8.ValidString(src) {
		return nil, invalidUTF8Error(src)
	}
	p := newParser(src)
	q := p.parseQuery()
	if p.err != nil {
		return nil, p.err
	}
	return q, nil
}

// ParseExpr parses a single scalar or tabular expression (no statements),
// such as an RBAC row condition or a DCR transformation.
func ParseExpr(src string) (Expr, error) {
	if len(src) > MaxQueryLength {
		return nil, &SyntaxError{Line: 1, Col: 1, Msg: fmt.Sprintf("the expression is too long (%d bytes; the limit is %d)", len(src), MaxQueryLength)}
	}
	if !utf8.ValidString(src) {
		return nil, invalidUTF8Error(src)
	}
	p := newParser(src)
	x := p.parsePipeExpr()
	if p.err == nil && p.tok().Kind != TokEOF {
		p.unexpected("end of expression")
	}
	if p.err != nil {
		return nil, p.err
	}
	return x, nil
}

func invalidUTF8Error(src string) *SyntaxError {
	line, col := 1, 1
	for i := 0; i < len(src); {
		r, size := utf8.DecodeRuneInString(src[i:])
		if r == utf8.RuneError && size <= 1 {
			break
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		i += size
	}
	return &SyntaxError{Line: line, Col: col, Msg: "the query text is not valid UTF-8"}
}

// parser is a recursive-descent parser over a lazily lexed token stream. The
// first error is sticky: after it, every lookahead sees the end of the query,
// so all loops finish and parse functions return placeholder nodes.
type parser struct {
	lx    *lexer
	buf   []Token // lookahead queue; buf[head] is the current token
	head  int
	prev  Token // the last consumed token
	err   *SyntaxError
	depth int

	searchMode    bool // ':' is the "has" operator (search predicates)
	sawObfuscated bool // an obfuscated string literal was parsed (dynamic literals use it)
}

func newParser(src string) *parser {
	return &parser{lx: &lexer{src: src, line: 1, col: 1}}
}

// peek returns the token k positions ahead of the current one.
func (p *parser) peek(k int) Token {
	if p.err != nil {
		return Token{Kind: TokEOF, Pos: Pos{Offset: len(p.lx.src), Line: p.err.Line, Col: p.err.Col}}
	}
	for len(p.buf)-p.head <= k {
		p.buf = append(p.buf, p.lx.next())
	}
	return p.buf[p.head+k]
}

func (p *parser) tok() Token { return p.peek(0) }

func (p *parser) next() Token {
	t := p.tok()
	if p.err == nil && t.Kind != TokEOF {
		p.head++
		// Reuse the queue's array instead of re-slicing it away, which
		// would reallocate on almost every token. Compact only once the
		// consumed part is at least half the queue, so that a long
		// lookahead (a tuple of thousands of names) costs linear time, not
		// a copy of the whole queue every 64 tokens.
		if p.head == len(p.buf) {
			p.buf, p.head = p.buf[:0], 0
		} else if p.head >= 64 && 2*p.head >= len(p.buf) {
			n := copy(p.buf, p.buf[p.head:])
			p.buf, p.head = p.buf[:n], 0
		}
	}
	p.prev = t
	return t
}

// at reports whether the current token is the word or operator s.
func (p *parser) at(s string) bool { return p.tok().is(s) }

// atWord reports whether the current token is the word s (not a quoted name).
func (p *parser) atWord(s string) bool {
	t := p.tok()
	return t.Kind == TokIdent && t.Text == s
}

func (p *parser) accept(s string) bool {
	if p.at(s) {
		p.next()
		return true
	}
	return false
}

func (p *parser) expect(s string) Token {
	if p.at(s) {
		return p.next()
	}
	p.expected("'" + s + "'")
	return p.tok()
}

func (p *parser) failAt(t Token, msg string) {
	if p.err == nil {
		p.err = &SyntaxError{Line: t.Pos.Line, Col: t.Pos.Col, Msg: msg}
	}
}

// expected records "expected X but found Y" at the current token (or the
// lexer's message if the current token is illegal).
func (p *parser) expected(what string) {
	t := p.tok()
	if t.Kind == TokIllegal {
		p.failAt(t, t.Err)
		return
	}
	p.failAt(t, fmt.Sprintf("expected %s but found %s", what, t.describe()))
}

func (p *parser) unexpected(expecting string) {
	t := p.tok()
	if t.Kind == TokIllegal {
		p.failAt(t, t.Err)
		return
	}
	p.failAt(t, fmt.Sprintf("unexpected %s; expected %s", t.describe(), expecting))
}

// enter guards recursion depth; callers must call leave when it returns true.
func (p *parser) enter() bool {
	p.depth++
	if p.depth > MaxNestingDepth {
		p.failAt(p.tok(), fmt.Sprintf("the query is nested too deeply (the limit is %d levels)", MaxNestingDepth))
		return false
	}
	return true
}

func (p *parser) leave() { p.depth-- }

// adjacent reports whether token b starts exactly where token a ends.
func adjacent(a, b Token) bool { return a.End == b.Pos.Offset }

// hyphenated lists the operator and option names written with '-', which
// the lexer returns as word '-' word.
var hyphenated = map[string]bool{
	"project-away": true, "project-keep": true, "project-rename": true, "project-reorder": true,
	"project-smart": true, "mv-expand": true, "mv-apply": true, "top-nested": true, "top-hitters": true,
	"make-series": true, "parse-where": true, "parse-kv": true, "sample-distinct": true,
	"granny-asc": true, "granny-desc": true, "make-graph": true, "graph-match": true,
	"graph-to-table": true, "graph-merge": true, "graph-shortest-paths": true, "graph-mark-components": true,
}

// compoundAhead returns the hyphenated word starting at the current token
// and the number of tokens it spans, or ("", 0).
func (p *parser) compoundAhead() (string, int) {
	t0 := p.peek(0)
	if t0.Kind != TokIdent {
		return "", 0
	}
	word, n := t0.Text, 1
	for {
		dash, w := p.peek(n), p.peek(n+1)
		if !dash.is("-") || w.Kind != TokIdent || !adjacent(p.peek(n-1), dash) || !adjacent(dash, w) {
			break
		}
		cand := word + "-" + w.Text
		if !hyphenated[cand] && !hyphenPrefix(cand) {
			break
		}
		word, n = cand, n+2
	}
	if n == 1 || !hyphenated[word] {
		return "", 0
	}
	return word, n
}

func hyphenPrefix(s string) bool {
	for k := range hyphenated {
		if strings.HasPrefix(k, s+"-") {
			return true
		}
	}
	return false
}

// opWord returns the operator keyword at the current token (joining
// hyphenated words) and how many tokens it spans.
func (p *parser) opWord() (string, int) {
	if w, n := p.compoundAhead(); n > 0 {
		return w, n
	}
	t := p.tok()
	if t.Kind == TokIdent {
		return t.Text, 1
	}
	return "", 0
}

func (p *parser) skip(n int) {
	for range n {
		p.next()
	}
}

// ---------------------------------------------------------------------------
// Statements

func (p *parser) parseQuery() *Query {
	q := &Query{Pos: p.tok().Pos}
	for {
		for p.accept(";") {
		}
		if p.tok().Kind == TokEOF {
			break
		}
		q.Stmts = append(q.Stmts, p.parseStmt())
		if p.accept(";") {
			continue
		}
		if p.tok().Kind != TokEOF {
			p.unexpected("'|', ';' or end of query")
			break
		}
	}
	if p.err == nil && len(q.Stmts) == 0 {
		p.failAt(p.tok(), "the query is empty")
	}
	return q
}

func (p *parser) parseStmt() Stmt {
	t := p.tok()
	switch {
	case t.Kind == TokIdent && t.Text == "let":
		return p.parseLet()
	case t.Kind == TokIdent && t.Text == "set" && p.peek(1).Kind == TokIdent && !p.peek(2).is("|") && !p.peek(2).is("."):
		return p.parseSet()
	case t.Kind == TokIdent && t.Text == "declare" && p.peek(1).Kind == TokIdent && p.peek(1).Text == "query_parameters":
		return p.parseDeclare()
	case t.Kind == TokIdent && (t.Text == "alias" || t.Text == "restrict" || t.Text == "pattern") && p.peek(1).Kind == TokIdent:
		p.failAt(t, fmt.Sprintf("the '%s' statement is not supported", t.Text))
		return &ExprStmt{Pos: t.Pos, X: &Ident{Pos: t.Pos}}
	}
	return &ExprStmt{Pos: t.Pos, X: p.parsePipeExpr()}
}

// nameLen returns how many tokens the name at k spans (0 if none).
func (p *parser) nameLen(k int) int {
	t := p.peek(k)
	if t.Kind == TokIdent {
		return 1
	}
	if t.is("[") && p.peek(k+1).Kind == TokString && p.peek(k+2).is("]") {
		return 3
	}
	return 0
}

// parseName parses a name: any word (keywords are valid names) or a
// quoted ['name'] / ["name"].
func (p *parser) parseName(what string) *Ident {
	t := p.tok()
	switch {
	case t.Kind == TokIdent:
		p.next()
		return &Ident{Pos: t.Pos, Name: t.Text}
	case t.is("[") && p.peek(1).Kind == TokString && p.peek(2).is("]"):
		s := p.peek(1)
		p.skip(3)
		return &Ident{Pos: t.Pos, Name: s.Value, Quoted: true}
	}
	p.expected(what)
	return &Ident{Pos: t.Pos}
}

func (p *parser) parseLet() Stmt {
	start := p.next().Pos // let
	name := p.parseName("a name")
	p.expect("=")
	s := &LetStmt{Pos: start, Name: name}
	switch {
	case p.atWord("view") && p.peek(1).is("("):
		s.Value = p.parseLambda(true)
	case p.at("(") && p.lambdaAhead():
		s.Value = p.parseLambda(false)
	default:
		s.Value = p.parsePipeExpr()
	}
	return s
}

// lambdaAhead reports whether the '(' at the current token opens a function
// parameter list: "()" followed by '{', or "(name:".
func (p *parser) lambdaAhead() bool {
	if p.peek(1).is(")") {
		return p.peek(2).is("{")
	}
	n := p.nameLen(1)
	return n > 0 && p.peek(1+n).is(":")
}

func (p *parser) parseLambda(view bool) *Lambda {
	l := &Lambda{Pos: p.tok().Pos, View: view}
	if view {
		p.next()
	}
	p.expect("(")
	if !p.at(")") {
		for {
			l.Params = append(l.Params, p.parseParam(true))
			if !p.accept(",") {
				break
			}
		}
	}
	p.expect(")")
	l.Body = p.parseBody()
	return l
}

// parseBody parses "{ let ...; ...; expr }".
func (p *parser) parseBody() []Stmt {
	if !p.enter() {
		return nil
	}
	defer p.leave()
	p.expect("{")
	var body []Stmt
	for {
		for p.accept(";") {
		}
		if p.at("}") || p.tok().Kind == TokEOF {
			break
		}
		t := p.tok()
		switch {
		case t.Kind == TokIdent && t.Text == "let":
			body = append(body, p.parseLet())
		case t.Kind == TokIdent && t.Text == "declare" && p.peek(1).Kind == TokIdent && p.peek(1).Text == "query_parameters":
			body = append(body, p.parseDeclare())
		default:
			body = append(body, &ExprStmt{Pos: t.Pos, X: p.parsePipeExpr()})
		}
		if !p.accept(";") && !p.at("}") {
			p.expected("';' or '}'")
		}
	}
	p.expect("}")
	if p.err == nil {
		if n := len(body); n == 0 {
			p.failAt(p.prev, "a function body must end with an expression")
		} else if _, ok := body[n-1].(*ExprStmt); !ok {
			p.failAt(p.prev, "a function body must end with an expression")
		}
	}
	return body
}

// parseParam parses "name:type [= default]"; tabular types are allowed when
// tabular is set.
func (p *parser) parseParam(tabular bool) *Param {
	prm := &Param{Pos: p.tok().Pos}
	prm.Name = p.parseName("a parameter name")
	p.expect(":")
	prm.Type = p.parseTypeRef(tabular)
	if p.accept("=") {
		prm.Default = p.parseExpr()
	}
	return prm
}

// parseTypeRef parses a scalar type name, or with tabular set also
// "(*)" and "(col:type, ...)".
func (p *parser) parseTypeRef(tabular bool) *TypeRef {
	t := p.tok()
	if t.is("(") && tabular {
		p.next()
		tr := &TypeRef{Pos: t.Pos, Tabular: true}
		if p.accept("*") {
			tr.Wildcard = true
			if p.accept(",") && !p.at(")") {
				tr.Columns = p.parseColumnDecls()
			}
		} else if !p.at(")") {
			tr.Columns = p.parseColumnDecls()
		}
		p.expect(")")
		return tr
	}
	if t.Kind != TokIdent {
		p.expected("a type name")
		return &TypeRef{Pos: t.Pos}
	}
	p.next()
	ct, ok := parseTypeName(t.Text)
	if !ok {
		p.failAt(t, fmt.Sprintf("unknown type '%s'", t.Text))
	}
	return &TypeRef{Pos: t.Pos, Name: t.Text, Type: ct}
}

// parseColumnDecls parses "name:type, ..." (a trailing comma is allowed).
func (p *parser) parseColumnDecls() []*ColumnDecl {
	var cols []*ColumnDecl
	for {
		if p.at(")") {
			break
		}
		cd := &ColumnDecl{Pos: p.tok().Pos}
		cd.Name = p.parseName("a column name")
		p.expect(":")
		cd.Type = p.parseTypeRef(false)
		cols = append(cols, cd)
		if !p.accept(",") {
			break
		}
	}
	return cols
}

func (p *parser) parseSet() Stmt {
	start := p.next().Pos // set
	s := &SetStmt{Pos: start, Name: p.parseName("an option name")}
	if p.accept("=") {
		t := p.tok()
		if t.Kind == TokIdent && t.Text != "true" && t.Text != "false" {
			p.next()
			s.Value = &Ident{Pos: t.Pos, Name: t.Text}
		} else {
			s.Value = p.parseUnary()
		}
	}
	return s
}

func (p *parser) parseDeclare() Stmt {
	start := p.next().Pos // declare
	p.next()              // query_parameters
	d := &DeclareStmt{Pos: start}
	p.expect("(")
	if !p.at(")") {
		for {
			d.Params = append(d.Params, p.parseParam(false))
			if !p.accept(",") {
				break
			}
		}
	}
	p.expect(")")
	return d
}

// ---------------------------------------------------------------------------
// Tabular expressions

// parsePipeExpr parses "source | op | op ...", where source may also be a
// scalar expression.
func (p *parser) parsePipeExpr() Expr {
	if !p.enter() {
		return &Ident{Pos: p.tok().Pos}
	}
	defer p.leave()
	start := p.tok().Pos
	src := p.parseSource()
	if !p.at("|") {
		return src
	}
	pl := &Pipeline{Pos: start, Source: src}
	for p.accept("|") {
		pl.Ops = append(pl.Ops, p.parseOp())
	}
	return pl
}

// parseSubPipeline parses "op | op ..." whose input comes from context.
func (p *parser) parseSubPipeline() *Pipeline {
	pl := &Pipeline{Pos: p.tok().Pos}
	if !p.enter() {
		return pl
	}
	defer p.leave()
	pl.Ops = append(pl.Ops, p.parseOp())
	for p.accept("|") {
		pl.Ops = append(pl.Ops, p.parseOp())
	}
	return pl
}

// parseSource parses the start of a pipeline: a source-only operator
// (print, range, datatable, union, search, find, evaluate) or an expression.
func (p *parser) parseSource() Expr {
	t := p.tok()
	if t.Kind == TokIdent {
		next := p.peek(1)
		switch t.Text {
		case "print":
			return p.parsePrint()
		case "range":
			if next.Kind == TokIdent && p.peek(2).is("from") {
				return p.parseRange()
			}
		case "union":
			if !endsOperand(next) || next.is("(") {
				return p.parseUnion()
			}
		case "search":
			if !endsOperand(next) || next.is("(") || next.Kind == TokString {
				return p.parseSearch()
			}
		case "find":
			if !endsOperand(next) || next.is("(") {
				return p.parseFind()
			}
		case "evaluate":
			if next.Kind == TokIdent {
				return p.parseEvaluate()
			}
		}
	}
	return p.parseExpr()
}

// endsOperand reports whether t cannot start an operand (so a preceding
// word is a plain name rather than an operator keyword).
func endsOperand(t Token) bool {
	switch {
	case t.Kind == TokEOF:
		return true
	case t.Kind == TokOp:
		switch t.Text {
		case "(", "[", "*", "-", "+", "@":
			return false
		}
		return true
	}
	return false
}

func (p *parser) parsePrint() Expr {
	pr := &Print{Pos: p.next().Pos}
	pr.Cols = p.parseNamedExprs()
	return pr
}

func (p *parser) parseRange() Expr {
	r := &Range{Pos: p.next().Pos}
	r.Col = p.parseName("a column name")
	p.expectWord("from")
	r.From = p.parseExpr()
	p.expectWord("to")
	r.To = p.parseExpr()
	p.expectWord("step")
	r.Step = p.parseExpr()
	return r
}

func (p *parser) expectWord(w string) {
	if p.atWord(w) {
		p.next()
		return
	}
	p.expected("'" + w + "'")
}

// ---------------------------------------------------------------------------
// Shared pieces of operators

// namedAhead returns the number of tokens of a "name =" or "(a, b) ="
// prefix at the current token, or 0.
func (p *parser) namedAhead() int {
	if n := p.nameLen(0); n > 0 {
		if p.peek(n).is("=") {
			return n + 1
		}
		return 0
	}
	if !p.at("(") {
		return 0
	}
	k := 1
	for {
		n := p.nameLen(k)
		if n == 0 {
			return 0
		}
		k += n
		if p.peek(k).is(",") {
			k++
			continue
		}
		if p.peek(k).is(")") && p.peek(k+1).is("=") {
			return k + 2
		}
		return 0
	}
}

// parseNames parses "name =" or "(a, b) =" when present.
func (p *parser) parseNames() []*Ident {
	if p.namedAhead() == 0 {
		return nil
	}
	var names []*Ident
	if p.accept("(") {
		for {
			names = append(names, p.parseName("a column name"))
			if !p.accept(",") {
				break
			}
		}
		p.expect(")")
	} else {
		names = append(names, p.parseName("a column name"))
	}
	p.expect("=")
	return names
}

func (p *parser) parseNamedExpr() *NamedExpr {
	ne := &NamedExpr{Pos: p.tok().Pos}
	ne.Names = p.parseNames()
	ne.X = p.parseExpr()
	return ne
}

func (p *parser) parseNamedExprs() []*NamedExpr {
	var list []*NamedExpr
	for {
		list = append(list, p.parseNamedExpr())
		if !p.accept(",") {
			return list
		}
	}
}

// parseOptions parses "name=value" operator parameters whose (possibly
// dotted) names are listed in allowed; an entry ending in ".*" allows any
// name with that prefix.
func (p *parser) parseOptions(allowed ...string) []*OptionArg {
	var opts []*OptionArg
	for {
		name, n := p.optionAhead(allowed)
		if n == 0 {
			return opts
		}
		o := &OptionArg{Pos: p.tok().Pos, Name: name}
		p.skip(n)
		o.Value = p.parseOptionValue()
		opts = append(opts, o)
	}
}

func (p *parser) optionAhead(allowed []string) (string, int) {
	t := p.peek(0)
	if t.Kind != TokIdent {
		return "", 0
	}
	name, k := t.Text, 1
	for p.peek(k).is(".") && p.peek(k+1).Kind == TokIdent {
		name += "." + p.peek(k+1).Text
		k += 2
	}
	if !p.peek(k).is("=") {
		return "", 0
	}
	for _, a := range allowed {
		if a == name || (strings.HasSuffix(a, ".*") && strings.HasPrefix(name, strings.TrimSuffix(a, "*"))) {
			return name, k + 1
		}
	}
	return "", 0
}

func (p *parser) parseOptionValue() Expr {
	t := p.tok()
	if t.Kind == TokIdent && !isBoolWord(t.Text) {
		p.next()
		return &Ident{Pos: t.Pos, Name: t.Text}
	}
	return p.parseUnary()
}

// parseSortKey parses "expr [asc|desc] [nulls first|last]".
func (p *parser) parseSortKey() *SortKey {
	k := &SortKey{Pos: p.tok().Pos, X: p.parseExpr()}
	p.parseOrdering(k)
	return k
}

func (p *parser) parseOrdering(k *SortKey) {
	if p.atWord("asc") || p.atWord("desc") {
		k.Order = p.next().Text
	}
	if p.atWord("nulls") {
		p.next()
		if p.atWord("first") || p.atWord("last") {
			k.Nulls = p.next().Text
		} else {
			p.expected("'first' or 'last'")
		}
	}
}

// parseNameOrPattern parses a column or table name that may contain '*'
// wildcards (Col*, *Event, Perf*Counter), returning *Ident or *ColumnPattern.
func (p *parser) parseNameOrPattern(what string) Expr {
	t := p.tok()
	if t.is("[") {
		return p.parseName(what)
	}
	if t.Kind != TokIdent && !t.is("*") {
		p.expected(what)
		return &Ident{Pos: t.Pos}
	}
	var b strings.Builder
	wild := false
	last := p.next()
	b.WriteString(last.Text)
	wild = last.is("*")
	for {
		n := p.tok()
		if !adjacent(last, n) || !(n.Kind == TokIdent || n.is("*")) || (n.Kind == TokIdent && last.Kind == TokIdent) {
			break
		}
		last = p.next()
		b.WriteString(last.Text)
		if last.is("*") {
			wild = true
		}
	}
	if wild {
		return &ColumnPattern{Pos: t.Pos, Pattern: b.String()}
	}
	return &Ident{Pos: t.Pos, Name: b.String()}
}

func (p *parser) parseNameOrPatternList(what string) []Expr {
	var list []Expr
	for {
		list = append(list, p.parseNameOrPattern(what))
		if !p.accept(",") {
			return list
		}
	}
}

// parseParenSub parses "( op | op ... )", a sub-query whose input comes
// from context (mv-apply, fork, facet, partition).
func (p *parser) parseParenSub() *Pipeline {
	p.expect("(")
	pl := p.parseSubPipeline()
	p.expect(")")
	return pl
}
