package kql

import (
	"fmt"
	"strings"

	"custos/internal/store"
)

// Binary operator precedence, lowest first, as in Kusto's grammar: string
// operators bind tighter than arithmetic; ==, in and between are at the
// equality level, below <, <=, >, >=.
const (
	precOr = iota + 1
	precAnd
	precEquality
	precRelational
	precAdditive
	precMultiplicative
	precString
)

// wordBinaryOps maps the spelling of every word operator at string precedence
// to its canonical form (legacy spellings are accepted).
var wordBinaryOps = map[string]string{
	"contains": "contains", "!contains": "!contains", "contains_cs": "contains_cs", "!contains_cs": "!contains_cs",
	"containscs": "contains_cs", "!containscs": "!contains_cs", "notcontains": "!contains", "notcontainscs": "!contains_cs",
	"has": "has", "!has": "!has", "has_cs": "has_cs", "!has_cs": "!has_cs",
	"hasprefix": "hasprefix", "!hasprefix": "!hasprefix", "hasprefix_cs": "hasprefix_cs", "!hasprefix_cs": "!hasprefix_cs",
	"hassuffix": "hassuffix", "!hassuffix": "!hassuffix", "hassuffix_cs": "hassuffix_cs", "!hassuffix_cs": "!hassuffix_cs",
	"startswith": "startswith", "!startswith": "!startswith", "startswith_cs": "startswith_cs", "!startswith_cs": "!startswith_cs",
	"endswith": "endswith", "!endswith": "!endswith", "endswith_cs": "endswith_cs", "!endswith_cs": "!endswith_cs",
	"like": "like", "!like": "!like", "like_cs": "like_cs", "!like_cs": "!like_cs",
}

// listOps are the operators followed by a parenthesized list.
var listOps = map[string]bool{"in": true, "!in": true, "in~": true, "!in~": true, "has_any": true, "has_all": true}

// binaryOpAhead returns the binary operator at the current token: its
// canonical spelling, precedence and token count; prec is 0 if there is none.
func (p *parser) binaryOpAhead() (op string, prec, n int) {
	t := p.tok()
	switch t.Kind {
	case TokOp:
		switch t.Text {
		case "==", "!=":
			return t.Text, precEquality, 1
		case "<>":
			return "!=", precEquality, 1
		case "<", "<=", ">", ">=":
			return t.Text, precRelational, 1
		case "+", "-":
			return t.Text, precAdditive, 1
		case "*", "/", "%":
			return t.Text, precMultiplicative, 1
		case "=~", "!~":
			return t.Text, precString, 1
		case ":":
			if p.searchMode {
				return ":", precString, 1
			}
		}
	case TokIdent, TokBangWord:
		switch w := t.Text; {
		case w == "or" && t.Kind == TokIdent:
			return "or", precOr, 1
		case w == "and" && t.Kind == TokIdent:
			return "and", precAnd, 1
		case listOps[w]:
			if p.peek(1).is("(") {
				return w, precEquality, 1
			}
		case w == "between" || w == "!between":
			if p.peek(1).is("(") {
				return w, precEquality, 1
			}
		case w == "matches" && t.Kind == TokIdent:
			if r := p.peek(1); r.Kind == TokIdent && r.Text == "regex" {
				return "matches regex", precString, 2
			}
		default:
			if c, ok := wordBinaryOps[w]; ok {
				return c, precString, 1
			}
		}
	}
	return "", 0, 0
}

// parseExpr parses a scalar expression (no pipes).
func (p *parser) parseExpr() Expr {
	if !p.enter() {
		return &Ident{Pos: p.tok().Pos}
	}
	defer p.leave()
	return p.parseBinary(precOr)
}

func (p *parser) parseBinary(minPrec int) Expr {
	left := p.parseUnary()
	for {
		op, prec, n := p.binaryOpAhead()
		if prec == 0 || prec < minPrec {
			return left
		}
		opTok := p.tok()
		p.skip(n)
		switch {
		case listOps[op]:
			in := &In{Pos: left.Position(), Op: op, OpPos: opTok.Pos, X: left}
			p.expect("(")
			for {
				in.List = append(in.List, p.parseArg())
				if !p.accept(",") {
					break
				}
			}
			p.expect(")")
			left = in
		case op == "between" || op == "!between":
			b := &Between{Pos: left.Position(), Not: op == "!between", X: left}
			p.expect("(")
			b.Lo = p.parseExpr()
			p.expect("..")
			b.Hi = p.parseExpr()
			p.expect(")")
			left = b
		default:
			if !p.enter() {
				return left
			}
			right := p.parseBinary(prec + 1)
			p.leave()
			left = &Binary{Pos: left.Position(), Op: op, OpPos: opTok.Pos, X: left, Y: right}
		}
	}
}

// parseUnary parses an optional sign and a postfix expression. A sign
// directly before a number or timespan literal is folded into the literal.
func (p *parser) parseUnary() Expr {
	t := p.tok()
	if t.is("-") || t.is("+") {
		n := p.peek(1)
		if (n.Kind == TokLong || n.Kind == TokReal || n.Kind == TokTimespan) && adjacent(t, n) {
			p.skip(2)
			lit := p.numberLiteral(n, t.Text == "-")
			lit.Pos = t.Pos
			lit.Raw = t.Text + lit.Raw
			return p.parsePostfix(lit)
		}
		p.next()
		if !p.enter() {
			return &Ident{Pos: t.Pos}
		}
		x := p.parseUnary()
		p.leave()
		return &Unary{Pos: t.Pos, Op: t.Text, X: x}
	}
	return p.parsePostfix(p.parsePrimary())
}

// parsePostfix parses member access, element access and method-style calls.
func (p *parser) parsePostfix(x Expr) Expr {
	for {
		switch {
		case p.at("."):
			p.next()
			if p.at("[") && !(p.peek(1).Kind == TokString && p.peek(2).is("]")) {
				// legacy x.[expr]
				start := p.next().Pos
				idx := p.parseExpr()
				p.expect("]")
				x = &Index{Pos: start, X: x, Index: idx}
				continue
			}
			if p.at("[") {
				lb := p.tok()
				name := p.parseName("a name")
				x = &Index{Pos: lb.Pos, X: x, Index: &Literal{Pos: lb.Pos, Type: store.TypeString, Str: name.Name, Raw: "'" + name.Name + "'"}}
				continue
			}
			name := p.parseName("a name after '.'")
			if p.at("(") {
				x = p.parseCallArgs(x, name)
				continue
			}
			x = &Member{Pos: x.Position(), X: x, Name: name}
		case p.at("["):
			p.next()
			idx := p.parseExpr()
			p.expect("]")
			x = &Index{Pos: x.Position(), X: x, Index: idx}
		default:
			return x
		}
		if p.err != nil {
			return x
		}
	}
}

// parseCallArgs parses "(args)" of a call to name (with an optional target).
func (p *parser) parseCallArgs(target Expr, name *Ident) *Call {
	start := name.Pos
	if target != nil {
		start = target.Position()
	}
	c := &Call{Pos: start, Target: target, Name: name}
	if !p.enter() {
		return c
	}
	defer p.leave()
	p.expect("(")
	if !p.at(")") {
		for {
			c.Args = append(c.Args, p.parseArg())
			if !p.accept(",") {
				break
			}
		}
	}
	p.expect(")")
	return c
}

// parseArg parses one call or list argument: '*', "name = value" or an
// expression, which may be tabular (toscalar(T | count), x in (T | project y)).
func (p *parser) parseArg() Expr {
	t := p.tok()
	if t.is("*") {
		n := p.peek(1)
		if n.is(",") || n.is(")") {
			p.next()
			return &Star{Pos: t.Pos}
		}
	}
	if t.Kind == TokIdent && p.peek(1).is("=") {
		p.next()
		p.next()
		return &NamedArg{Pos: t.Pos, Name: &Ident{Pos: t.Pos, Name: t.Text}, Value: p.parsePipeExpr()}
	}
	return p.parsePipeExpr()
}

func isBoolWord(w string) bool {
	switch w {
	case "true", "false", "True", "False", "TRUE", "FALSE":
		return true
	}
	return false
}

func (p *parser) parsePrimary() Expr {
	t := p.tok()
	switch t.Kind {
	case TokLong, TokReal, TokTimespan:
		p.next()
		return p.numberLiteral(t, false)
	case TokString:
		return p.parseStringLiteral()
	case TokTyped:
		p.next()
		lit, msg := typedLiteral(t)
		if msg != "" {
			p.failAt(t, msg)
		}
		return lit
	case TokIllegal:
		p.failAt(t, t.Err)
		return &Ident{Pos: t.Pos}
	case TokIdent:
		return p.parseWordPrimary(t)
	case TokOp:
		switch t.Text {
		case "(":
			p.next()
			x := p.parsePipeExpr()
			p.expect(")")
			return &Paren{Pos: t.Pos, X: x}
		case "[":
			if p.peek(1).Kind == TokString && p.peek(2).is("]") {
				name := p.parseName("a name")
				if p.at("(") {
					return p.parseCallArgs(nil, name)
				}
				return name
			}
		case "*":
			p.next()
			return &Star{Pos: t.Pos}
		}
	}
	p.expected("an expression")
	return &Ident{Pos: t.Pos}
}

func (p *parser) parseWordPrimary(t Token) Expr {
	next := p.peek(1)
	switch {
	case isBoolWord(t.Text):
		p.next()
		return &Literal{Pos: t.Pos, Type: store.TypeBool, Bool: strings.EqualFold(t.Text, "true"), Raw: t.Text}
	case t.Text == "dynamic" && next.is("("):
		return p.parseDynamic()
	case t.Text == "typeof" && next.is("("):
		p.skip(2)
		tr := p.parseTypeRef(true)
		p.expect(")")
		return &Typeof{Pos: t.Pos, Type: tr}
	case t.Text == "datatable" && (next.is("(") || next.Kind == TokIdent):
		return p.parseDataTable()
	case (t.Text == "externaldata" || t.Text == "external_data") && (next.is("(") || next.Kind == TokIdent):
		p.failAt(t, "externaldata is not supported: Custos queries only data stored in its workspaces")
		return &Ident{Pos: t.Pos}
	case next.is("("):
		p.next()
		return p.parseCallArgs(nil, &Ident{Pos: t.Pos, Name: t.Text})
	}
	p.next()
	return &Ident{Pos: t.Pos, Name: t.Text}
}

// parseStringLiteral parses one or more adjacent string literals, which
// Kusto concatenates ("a" "b" is "ab").
func (p *parser) parseStringLiteral() *Literal {
	first := p.next()
	lit := &Literal{Pos: first.Pos, Type: store.TypeString, Str: first.Value, Obfuscated: first.Obfuscated}
	end := first.End
	var b *strings.Builder
	for p.tok().Kind == TokString {
		t := p.next()
		if b == nil {
			b = &strings.Builder{}
			b.WriteString(lit.Str)
		}
		b.WriteString(t.Value)
		lit.Obfuscated = lit.Obfuscated || t.Obfuscated
		end = t.End
	}
	if b != nil {
		lit.Str = b.String()
	}
	lit.Raw = p.lx.src[first.Pos.Offset:end]
	if lit.Obfuscated {
		lit.Raw = redactedString // never keep the secret in the source text
		p.sawObfuscated = true
	}
	return lit
}

func (p *parser) numberLiteral(t Token, neg bool) *Literal {
	lit, msg := numberLiteral(t, neg)
	if msg != "" {
		p.failAt(t, msg)
	}
	return lit
}

// parseDataTable parses "datatable [options] (col:type, ...) [v, ...]".
func (p *parser) parseDataTable() Expr {
	dt := &DataTable{Pos: p.next().Pos}
	p.parseOptions("hint.*")
	p.expect("(")
	dt.Columns = p.parseColumnDecls()
	p.expect(")")
	if len(dt.Columns) == 0 && p.err == nil {
		p.failAt(p.prev, "datatable needs at least one column")
	}
	p.expect("[")
	for !p.at("]") && p.tok().Kind != TokEOF {
		dt.Values = append(dt.Values, p.parseExpr())
		if !p.accept(",") {
			break
		}
	}
	p.expect("]")
	if p.err == nil && len(dt.Columns) > 0 && len(dt.Values)%len(dt.Columns) != 0 {
		p.failAt(p.prev, fmt.Sprintf("datatable has %d values, which is not a multiple of its %d columns", len(dt.Values), len(dt.Columns)))
	}
	return dt
}
