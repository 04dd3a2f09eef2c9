package kql

import "fmt"

// operatorWords lists every tabular operator keyword parseOp knows.
var operatorWords = map[string]bool{
	"where": true, "filter": true, "project": true, "project-away": true, "project-keep": true,
	"project-rename": true, "project-reorder": true, "extend": true, "summarize": true, "count": true,
	"distinct": true, "take": true, "limit": true, "top": true, "top-nested": true, "top-hitters": true,
	"sort": true, "order": true, "serialize": true, "as": true, "union": true, "join": true, "lookup": true,
	"mv-expand": true, "mvexpand": true, "mv-apply": true, "mvapply": true, "parse": true, "parse-where": true,
	"parse-kv": true, "evaluate": true, "make-series": true, "render": true, "getschema": true, "sample": true,
	"sample-distinct": true, "search": true, "find": true, "invoke": true, "fork": true, "facet": true,
	"partition": true, "reduce": true, "consume": true,
}

// unsupportedOperators are real Kusto operators Custos does not parse.
var unsupportedOperators = map[string]bool{
	"scan": true, "make-graph": true, "graph-match": true, "graph-to-table": true, "graph-merge": true,
	"graph-shortest-paths": true, "graph-mark-components": true, "externaldata": true, "execute-and-cache": true,
	"macro-expand": true, "assert-schema": true,
}

// parseOp parses one tabular operator after '|'.
func (p *parser) parseOp() Op {
	if !p.enter() {
		return &Count{Pos: p.tok().Pos}
	}
	defer p.leave()
	t := p.tok()
	word, n := p.opWord()
	if !operatorWords[word] {
		switch {
		case unsupportedOperators[word]:
			p.failAt(t, fmt.Sprintf("the '%s' operator is not supported", word))
		case t.Kind == TokIllegal:
			p.failAt(t, t.Err)
		default:
			p.failAt(t, fmt.Sprintf("expected a query operator after '|' but found %s", t.describe()))
		}
		return &Count{Pos: t.Pos}
	}
	p.skip(n)
	switch word {
	case "where", "filter":
		return &Where{Pos: t.Pos, Keyword: word, Pred: p.parseExpr()}
	case "project":
		return &Project{Pos: t.Pos, Cols: p.parseNamedExprs()}
	case "project-away":
		return &ProjectAway{Pos: t.Pos, Cols: p.parseNameOrPatternList("a column name")}
	case "project-keep":
		return &ProjectKeep{Pos: t.Pos, Cols: p.parseNameOrPatternList("a column name")}
	case "project-rename":
		return p.parseProjectRename(t)
	case "project-reorder":
		return p.parseProjectReorder(t)
	case "extend":
		return &Extend{Pos: t.Pos, Cols: p.parseNamedExprs()}
	case "summarize":
		return p.parseSummarize(t)
	case "count":
		c := &Count{Pos: t.Pos}
		if p.atWord("as") {
			p.next()
			c.As = p.parseName("a column name")
		}
		return c
	case "distinct":
		d := &Distinct{Pos: t.Pos, Options: p.parseOptions("hint.*")}
		if s := p.tok(); s.is("*") {
			p.next()
			d.Cols = []*NamedExpr{{Pos: s.Pos, X: &Star{Pos: s.Pos}}}
		} else {
			d.Cols = p.parseNamedExprs()
		}
		return d
	case "take", "limit":
		p.parseOptions("hint.*")
		return &Take{Pos: t.Pos, Keyword: word, Count: p.parseExpr()}
	case "top":
		p.parseOptions("hint.*")
		top := &Top{Pos: t.Pos, Count: p.parseExpr()}
		p.expectWord("by")
		top.By = p.parseSortKeys()
		return top
	case "top-nested":
		return p.parseTopNested(t)
	case "top-hitters":
		th := &TopHitters{Pos: t.Pos, Count: p.parseExpr()}
		p.expectWord("of")
		th.Of = p.parseExpr()
		if p.atWord("by") {
			p.next()
			th.By = p.parseExpr()
		}
		return th
	case "sort", "order":
		s := &Sort{Pos: t.Pos, Keyword: word, Options: p.parseOptions("hint.*")}
		p.expectWord("by")
		s.By = p.parseSortKeys()
		return s
	case "serialize":
		s := &Serialize{Pos: t.Pos}
		if !p.opEnd() {
			s.Cols = p.parseNamedExprs()
		}
		return s
	case "as":
		a := &As{Pos: t.Pos, Options: p.parseOptions("hint.*")}
		a.Name = p.parseName("a name")
		return a
	case "union":
		return p.parseUnionAt(t)
	case "join":
		return p.parseJoin(t)
	case "lookup":
		return p.parseLookup(t)
	case "mv-expand", "mvexpand":
		return p.parseMvExpand(t)
	case "mv-apply", "mvapply":
		return p.parseMvApply(t)
	case "parse", "parse-where":
		return p.parseParse(t, word)
	case "parse-kv":
		return p.parseParseKv(t)
	case "evaluate":
		return p.parseEvaluateAt(t)
	case "make-series":
		return p.parseMakeSeries(t)
	case "render":
		return p.parseRender(t)
	case "getschema":
		return &GetSchema{Pos: t.Pos}
	case "sample":
		p.parseOptions("hint.*")
		return &Sample{Pos: t.Pos, Count: p.parseExpr()}
	case "sample-distinct":
		p.parseOptions("hint.*")
		sd := &SampleDistinct{Pos: t.Pos, Count: p.parseExpr()}
		p.expectWord("of")
		sd.Of = p.parseExpr()
		return sd
	case "search":
		return p.parseSearchAt(t)
	case "find":
		return p.parseFindAt(t)
	case "invoke":
		return p.parseInvoke(t)
	case "fork":
		return p.parseFork(t)
	case "facet":
		return p.parseFacet(t)
	case "partition":
		return p.parsePartition(t)
	case "reduce":
		return p.parseReduce(t)
	case "consume":
		return &Consume{Pos: t.Pos, Options: p.parseOptions("decodeblocks", "hint.*")}
	}
	panic("BUG: operator word without a parser: " + word)
}

// opEnd reports whether the current token ends an operator ('|', ';', ')',
// '}' or the end of the query).
func (p *parser) opEnd() bool {
	t := p.tok()
	return t.Kind == TokEOF || t.is("|") || t.is(";") || t.is(")") || t.is("}")
}

func (p *parser) parseSortKeys() []*SortKey {
	var keys []*SortKey
	for {
		keys = append(keys, p.parseSortKey())
		if !p.accept(",") {
			return keys
		}
	}
}

func (p *parser) parseProjectRename(t Token) Op {
	pr := &ProjectRename{Pos: t.Pos}
	for {
		r := &Rename{Pos: p.tok().Pos}
		r.New = p.parseName("a new column name")
		p.expect("=")
		r.Old = p.parseName("a column name")
		pr.Renames = append(pr.Renames, r)
		if !p.accept(",") {
			return pr
		}
	}
}

func (p *parser) parseProjectReorder(t Token) Op {
	pr := &ProjectReorder{Pos: t.Pos}
	for {
		k := &SortKey{Pos: p.tok().Pos, X: p.parseNameOrPattern("a column name")}
		if w, n := p.opWord(); w == "asc" || w == "desc" || w == "granny-asc" || w == "granny-desc" {
			p.skip(n)
			k.Order = w
		}
		pr.Cols = append(pr.Cols, k)
		if !p.accept(",") {
			return pr
		}
	}
}

func (p *parser) parseSummarize(t Token) Op {
	s := &Summarize{Pos: t.Pos, Options: p.parseOptions("hint.*", "bin_legacy")}
	if !p.atWord("by") || p.peek(1).is("=") || p.peek(1).is(",") {
		if !p.opEnd() {
			s.Aggs = p.parseNamedExprs()
		}
	}
	if p.atWord("by") {
		p.next()
		s.By = p.parseNamedExprs()
	}
	if s.Aggs == nil && s.By == nil && p.err == nil {
		p.expected("an aggregation or 'by'")
	}
	return s
}

func (p *parser) parseTopNested(t Token) Op {
	tn := &TopNested{Pos: t.Pos}
	for {
		lv := &TopNestedLevel{Pos: p.tok().Pos}
		if !p.atWord("of") {
			lv.Count = p.parseExpr()
		}
		p.expectWord("of")
		lv.Of = p.parseNamedExpr()
		if p.atWord("with") {
			p.next()
			p.expectWord("others")
			p.expect("=")
			lv.Others = p.parseExpr()
		}
		p.expectWord("by")
		lv.By = p.parseNamedExpr()
		if p.atWord("asc") || p.atWord("desc") {
			lv.Order = p.next().Text
		}
		tn.Levels = append(tn.Levels, lv)
		if !(p.at(",") && p.compoundAt(1, "top-nested")) {
			return tn
		}
		p.next() // ,
		_, n := p.compoundAhead()
		p.skip(n)
	}
}

// compoundAt reports whether the hyphenated word w starts k tokens ahead.
func (p *parser) compoundAt(k int, w string) bool {
	a, d, b := p.peek(k), p.peek(k+1), p.peek(k+2)
	return a.Kind == TokIdent && d.is("-") && b.Kind == TokIdent && adjacent(a, d) && adjacent(d, b) && a.Text+"-"+b.Text == w
}

// parseUnionItem parses one union table: (subquery), a name or wildcard
// pattern, or a call/path such as database("d").T or workspace("w").Perf.
func (p *parser) parseUnionItem() Expr {
	t := p.tok()
	switch {
	case t.is("("):
		p.next()
		x := p.parsePipeExpr()
		p.expect(")")
		return &Paren{Pos: t.Pos, X: x}
	case t.is("*"):
		return p.parseNameOrPattern("a table name")
	case t.Kind == TokIdent && !p.peek(1).is("(") && !p.peek(1).is("."):
		return p.parseNameOrPattern("a table name")
	}
	return p.parsePostfix(p.parsePrimary())
}

func (p *parser) parseUnion() Expr { return p.parseUnionAt(p.next()) }

func (p *parser) parseUnionAt(t Token) *Union {
	u := &Union{Pos: t.Pos, Options: p.parseOptions("kind", "withsource", "with_source", "isfuzzy", "hint.*")}
	for {
		u.Tables = append(u.Tables, p.parseUnionItem())
		if !p.accept(",") {
			return u
		}
	}
}

func (p *parser) parseJoinOn() []Expr {
	var on []Expr
	for {
		on = append(on, p.parseExpr())
		if !p.accept(",") {
			return on
		}
	}
}

func (p *parser) parseJoin(t Token) Op {
	j := &Join{Pos: t.Pos, Options: p.parseOptions("kind", "hint.*")}
	j.Right = p.parseUnionItem()
	switch {
	case p.atWord("on"):
		p.next()
		j.On = p.parseJoinOn()
	case p.atWord("where"):
		p.next()
		j.Where = p.parseExpr()
	default:
		p.expected("'on' or 'where'")
	}
	return j
}

func (p *parser) parseLookup(t Token) Op {
	l := &Lookup{Pos: t.Pos, Options: p.parseOptions("kind", "hint.*")}
	l.Right = p.parseUnionItem()
	p.expectWord("on")
	l.On = p.parseJoinOn()
	return l
}

func (p *parser) parseMvItems() []*MvExpandItem {
	var items []*MvExpandItem
	for {
		it := &MvExpandItem{Pos: p.tok().Pos}
		it.Names = p.parseNames()
		it.X = p.parseExpr()
		if p.atWord("to") && p.peek(1).Kind == TokIdent && p.peek(1).Text == "typeof" {
			p.skip(2)
			p.expect("(")
			it.To = p.parseTypeRef(false)
			p.expect(")")
		}
		items = append(items, it)
		if !p.accept(",") {
			return items
		}
	}
}

func (p *parser) parseMvExpand(t Token) Op {
	m := &MvExpand{Pos: t.Pos, Options: p.parseOptions("bagexpansion", "with_itemindex", "kind", "hint.*")}
	m.Items = p.parseMvItems()
	if p.atWord("limit") {
		p.next()
		m.Limit = p.parseExpr()
	}
	return m
}

func (p *parser) parseMvApply(t Token) Op {
	m := &MvApply{Pos: t.Pos, Options: p.parseOptions("with_itemindex", "hint.*")}
	m.Items = p.parseMvItems()
	if p.atWord("limit") {
		p.next()
		m.Limit = p.parseExpr()
	}
	p.expectWord("on")
	m.On = p.parseParenSub()
	return m
}

func (p *parser) parseParse(t Token, word string) Op {
	ps := &ParseOp{Pos: t.Pos, Keyword: word, Options: p.parseOptions("kind", "flags")}
	ps.X = p.parseExpr()
	p.expectWord("with")
	for !p.opEnd() && p.err == nil {
		s := p.tok()
		part := &ParsePart{Pos: s.Pos}
		switch {
		case s.is("*"):
			p.next()
			part.Star = true
		case s.Kind == TokString:
			part.Lit = p.parseStringLiteral()
		case p.nameLen(0) > 0:
			part.Col = p.parseName("a column name")
			if p.accept(":") {
				part.Type = p.parseTypeRef(false)
			}
		default:
			p.expected("a string, a column name or '*' in the parse pattern")
		}
		ps.Pattern = append(ps.Pattern, part)
	}
	if len(ps.Pattern) == 0 && p.err == nil {
		p.expected("a parse pattern")
	}
	return ps
}

func (p *parser) parseParseKv(t Token) Op {
	pk := &ParseKv{Pos: t.Pos, X: p.parseExpr()}
	p.expectWord("as")
	p.expect("(")
	pk.Columns = p.parseColumnDecls()
	p.expect(")")
	if p.atWord("with") {
		p.next()
		p.expect("(")
		for !p.at(")") && p.tok().Kind != TokEOF {
			o := &OptionArg{Pos: p.tok().Pos}
			o.Name = p.parseName("an option name").Name
			p.expect("=")
			o.Value = p.parseOptionValue()
			pk.With = append(pk.With, o)
			if !p.accept(",") {
				break
			}
		}
		p.expect(")")
	}
	return pk
}

func (p *parser) parseEvaluate() Expr { return p.parseEvaluateAt(p.next()) }

func (p *parser) parseEvaluateAt(t Token) *Evaluate {
	e := &Evaluate{Pos: t.Pos, Options: p.parseOptions("hint.*", "kind")}
	name := p.parseName("a plugin name")
	if !p.at("(") {
		p.expected("'('")
		e.Plugin = &Call{Pos: name.Pos, Name: name}
		return e
	}
	e.Plugin = p.parseCallArgs(nil, name)
	if p.at(":") && p.peek(1).is("(") {
		p.next()
		e.Schema = p.parseTypeRef(true)
	}
	return e
}

func (p *parser) parseMakeSeries(t Token) Op {
	ms := &MakeSeries{Pos: t.Pos, Options: p.parseOptions("kind", "hint.*")}
	for {
		a := &MakeSeriesAgg{Pos: p.tok().Pos}
		a.Names = p.parseNames()
		a.X = p.parseExpr()
		if p.atWord("default") {
			p.next()
			p.expect("=")
			a.Default = p.parseExpr()
		}
		ms.Aggs = append(ms.Aggs, a)
		if !p.accept(",") {
			break
		}
	}
	p.expectWord("on")
	ms.On = p.parseExpr()
	if p.atWord("in") && p.peek(1).Kind == TokIdent && p.peek(1).Text == "range" {
		p.skip(2)
		p.expect("(")
		ms.From = p.parseExpr()
		p.expect(",")
		ms.To = p.parseExpr()
		p.expect(",")
		ms.Step = p.parseExpr()
		p.expect(")")
	} else {
		if p.atWord("from") {
			p.next()
			ms.From = p.parseExpr()
		}
		if p.atWord("to") {
			p.next()
			ms.To = p.parseExpr()
		}
		p.expectWord("step")
		ms.Step = p.parseExpr()
	}
	if p.atWord("by") {
		p.next()
		ms.By = p.parseNamedExprs()
	}
	return ms
}

func (p *parser) parseRender(t Token) Op {
	r := &Render{Pos: t.Pos}
	r.Chart = p.parseName("a visualization name")
	parseProps := func(closing string) {
		for !p.opEnd() && !(closing != "" && p.at(closing)) && p.err == nil {
			prop := &RenderProp{Pos: p.tok().Pos}
			prop.Name = p.parseName("a property name")
			p.expect("=")
			for {
				v := p.tok()
				if v.Kind == TokIdent && !isBoolWord(v.Text) {
					p.next()
					prop.Values = append(prop.Values, &Ident{Pos: v.Pos, Name: v.Text})
				} else {
					prop.Values = append(prop.Values, p.parseUnary())
				}
				// another value of this property, unless "name =" starts the next one
				if !p.at(",") || (p.nameLen(1) > 0 && p.peek(1+p.nameLen(1)).is("=")) {
					break
				}
				p.next()
			}
			r.With = append(r.With, prop)
			if !p.accept(",") && closing == "" {
				if p.nameLen(0) == 0 || !p.peek(p.nameLen(0)).is("=") {
					return
				}
			}
		}
	}
	switch {
	case p.atWord("with") && p.peek(1).is("("):
		p.skip(2)
		parseProps(")")
		p.expect(")")
	case p.nameLen(0) > 0 && p.peek(p.nameLen(0)).is("="):
		parseProps("")
	}
	return r
}

// parseSources parses "in (T, Perf*, database('d').T, ...)" of search/find.
func (p *parser) parseSources() []Expr {
	p.expect("(")
	var list []Expr
	for {
		list = append(list, p.parseUnionItem())
		if !p.accept(",") {
			break
		}
	}
	p.expect(")")
	return list
}

func (p *parser) parseSearch() Expr { return p.parseSearchAt(p.next()) }

func (p *parser) parseSearchAt(t Token) *Search {
	s := &Search{Pos: t.Pos, Options: p.parseOptions("kind", "hint.*")}
	if p.atWord("in") && p.peek(1).is("(") {
		p.next()
		s.In = p.parseSources()
	}
	saved := p.searchMode
	p.searchMode = true
	s.Pred = p.parseExpr()
	p.searchMode = saved
	return s
}

func (p *parser) parseFind() Expr { return p.parseFindAt(p.next()) }

func (p *parser) parseFindAt(t Token) *Find {
	f := &Find{Pos: t.Pos, Options: p.parseOptions("withsource", "with_source", "hint.*")}
	if p.atWord("in") && p.peek(1).is("(") {
		p.next()
		f.In = p.parseSources()
	}
	if p.atWord("where") {
		p.next()
	}
	saved := p.searchMode
	p.searchMode = true
	f.Pred = p.parseExpr()
	p.searchMode = saved
	if w, n := p.opWord(); w == "project-smart" {
		p.skip(n)
		f.ProjectSmart = true
	} else if p.atWord("project") {
		p.next()
		f.Project = p.parseFindColumns()
	}
	if w, n := p.opWord(); w == "project-away" {
		p.skip(n)
		if s := p.tok(); s.is("*") {
			p.next()
			f.ProjectAway = []Expr{&Star{Pos: s.Pos}}
		} else {
			f.ProjectAway = p.parseFindColumns()
		}
	}
	return f
}

// parseFindColumns parses "col[:type], pack_all(), ..." of find's project.
func (p *parser) parseFindColumns() []Expr {
	var cols []Expr
	for {
		t := p.tok()
		if t.Kind == TokIdent && (t.Text == "pack" || t.Text == "pack_all") && p.peek(1).is("(") {
			cols = append(cols, p.parseCallArgs(nil, p.parseName("pack")))
		} else {
			name := p.parseName("a column name")
			if p.accept(":") {
				p.parseTypeRef(false) // the type only documents the column
			}
			cols = append(cols, name)
		}
		if !p.accept(",") {
			return cols
		}
	}
}

func (p *parser) parseInvoke(t Token) Op {
	inv := &Invoke{Pos: t.Pos}
	x := p.parsePostfix(p.parsePrimary())
	c, ok := x.(*Call)
	if !ok {
		if p.err == nil {
			p.failAt(t, "invoke expects a function call")
		}
		c = &Call{Pos: t.Pos, Name: &Ident{Pos: t.Pos}}
	}
	inv.Call = c
	return inv
}

func (p *parser) parseFork(t Token) Op {
	f := &Fork{Pos: t.Pos}
	for {
		b := &ForkBranch{Pos: p.tok().Pos}
		if n := p.nameLen(0); n > 0 && p.peek(n).is("=") {
			b.Name = p.parseName("a branch name")
			p.next() // =
		} else if !p.at("(") {
			break
		}
		b.Query = p.parseParenSub()
		f.Branches = append(f.Branches, b)
		if p.err != nil {
			break
		}
	}
	if len(f.Branches) == 0 {
		p.expected("'(' starting a fork branch")
	}
	return f
}

func (p *parser) parseFacet(t Token) Op {
	f := &Facet{Pos: t.Pos}
	p.expectWord("by")
	for {
		f.By = append(f.By, p.parseName("a column name"))
		if !p.accept(",") {
			break
		}
	}
	if p.atWord("with") {
		p.next()
		if p.at("(") {
			f.With = p.parseParenSub()
		} else {
			pl := &Pipeline{Pos: p.tok().Pos}
			pl.Ops = append(pl.Ops, p.parseOp())
			f.With = pl
		}
	}
	return f
}

func (p *parser) parsePartition(t Token) Op {
	pt := &Partition{Pos: t.Pos, Options: p.parseOptions("hint.*")}
	p.expectWord("by")
	pt.By = p.parseName("a column name")
	if p.atWord("in") {
		p.next()
		pt.In = p.parsePostfix(p.parsePrimary())
	}
	switch {
	case p.at("("):
		pt.Query = p.parseParenSub()
	case p.at("{"):
		p.next()
		if !p.enter() {
			return pt
		}
		pt.Query = p.parsePipeExpr()
		p.leave()
		p.expect("}")
	default:
		p.expected("'(' or '{'")
	}
	return pt
}

func (p *parser) parseReduce(t Token) Op {
	r := &Reduce{Pos: t.Pos, Options: p.parseOptions("kind", "hint.*")}
	p.expectWord("by")
	r.By = p.parseExpr()
	if p.atWord("with") {
		p.next()
		for {
			o := &OptionArg{Pos: p.tok().Pos}
			o.Name = p.parseName("an option name").Name
			p.expect("=")
			o.Value = p.parseUnary()
			r.With = append(r.With, o)
			if !p.accept(",") {
				break
			}
		}
	}
	return r
}
