package kql

import "custos/internal/store"

// This file defines the syntax tree that Parse returns. The tree is purely
// syntactic: names are not resolved and no types are checked (that is the
// binder's job). Scalar and tabular expressions share the Expr interface,
// because KQL mixes them freely (let values, function arguments such as
// toscalar(T | count), the right side of in, lambda bodies).
//
// Every node embeds a Pos, the position of its first character, so every node
// has Position(), Line, Col and Offset. Nodes are plain data: safe for
// concurrent reads, and the parser never shares a node between two parents.

// Pos is a position in the query text: Offset is the 0-based byte offset,
// Line and Col are 1-based and Col counts characters (runes), as Kusto does.
type Pos struct {
	Offset int
	Line   int
	Col    int
}

// Position returns p. Embedding Pos in a node makes the node satisfy Node.
func (p Pos) Position() Pos { return p }

// Node is any syntax tree node.
type Node interface {
	Position() Pos
}

// Expr is a scalar or tabular expression.
type Expr interface {
	Node
	exprNode()
}

// Op is a tabular operator that follows a pipe ("| where ...").
type Op interface {
	Node
	opNode()
}

// Stmt is a query statement; statements are separated by ';'.
type Stmt interface {
	Node
	stmtNode()
}

// ---------------------------------------------------------------------------
// Query and statements

// Query is a parsed query: zero or more let/set/declare statements and
// usually one tabular expression statement. Kusto allows several expression
// statements (each yields one result table), so more than one may appear.
type Query struct {
	Pos
	Stmts []Stmt
}

// LetStmt binds Name to Value: a scalar or tabular expression, or a *Lambda
// (user-defined function or view).
//
//	let x = 5;  let T = Heartbeat | take 1;  let f = (a:long) { a * 2 };
type LetStmt struct {
	Pos
	Name  *Ident
	Value Expr
}

// SetStmt sets a client request property: "set notruncation;",
// "set truncationmaxrecords = 1000;". Value is nil when absent.
type SetStmt struct {
	Pos
	Name  *Ident
	Value Expr
}

// DeclareStmt is "declare query_parameters(name:type [= default], ...);".
type DeclareStmt struct {
	Pos
	Params []*Param
}

// ExprStmt is a query expression statement (normally the final tabular
// expression).
type ExprStmt struct {
	Pos
	X Expr
}

// ---------------------------------------------------------------------------
// Names, types and small shared pieces

// Ident is a name: a column, table, function, let-bound name or option value.
// Quoted is true for ['name'] / ["name"] forms; Name holds the unquoted text.
// Names such as $left, $right and $this keep their '$'.
type Ident struct {
	Pos
	Name   string
	Quoted bool
}

// Star is '*' used as an expression: count(*)-style arguments, arg_max(x, *),
// "distinct *", "where * has 'x'".
type Star struct {
	Pos
}

// ColumnPattern is a name with '*' wildcards, such as Perf* in union or Col*
// in project-away / project-keep / project-reorder and search/find "in".
type ColumnPattern struct {
	Pos
	Pattern string
}

// TypeRef is a type as written: a scalar type (Name "long", Type
// store.TypeLong; aliases are normalized in Type only) or, when Tabular is
// true, a table schema "(a:long, b:string)" or "(*)" (Wildcard).
type TypeRef struct {
	Pos
	Name     string
	Type     store.ColumnType
	Tabular  bool
	Columns  []*ColumnDecl
	Wildcard bool
}

// ColumnDecl is "name:type" in datatable, parse patterns, parse-kv, tabular
// parameter schemas.
type ColumnDecl struct {
	Pos
	Name *Ident
	Type *TypeRef
}

// Param is a function or query parameter "name:type [= default]".
type Param struct {
	Pos
	Name    *Ident
	Type    *TypeRef
	Default Expr // nil when absent
}

// OptionArg is an operator option such as kind=inner, withsource=T,
// isfuzzy=true, bagexpansion=array, hint.strategy=shuffle, flags="i".
// Name is the full (possibly dotted) option name; Value is usually an *Ident
// or a *Literal.
type OptionArg struct {
	Pos
	Name  string
	Value Expr
}

// NamedExpr is an expression with an optional result name (or tuple of
// names): "x", "n = count()", "(a, b) = f()". Names is empty when the column
// name is to be inferred.
type NamedExpr struct {
	Pos
	Names []*Ident
	X     Expr
}

// SortKey is one ordering key: "e [asc|desc] [nulls first|nulls last]".
// Order is "", "asc" or "desc"; Nulls is "", "first" or "last".
type SortKey struct {
	Pos
	X     Expr
	Order string
	Nulls string
}

// ---------------------------------------------------------------------------
// Scalar (and shared) expressions

// Literal is a constant. Type says which field holds the value:
//
//	TypeBool                 Bool
//	TypeInt, TypeLong        Int
//	TypeReal                 Real (NaN and ±Inf allowed)
//	TypeDecimal              Str (the digits as written) and Real (approximation)
//	TypeDatetime             Int: ticks since the Unix epoch (store.TicksFromTime)
//	TypeTimespan             Int: ticks
//	TypeString               Str (escapes resolved; adjacent literals concatenated)
//	TypeGUID                 Str, canonical lower-case
//	TypeDynamic              Str: compact JSON text ("null" for dynamic(null))
//
// Null marks a typed null such as long(null). Obfuscated marks h"..." strings
// (and dynamic literals containing one) whose value must not be logged. Raw is
// the source text of the literal, except that an obfuscated literal's Raw is
// redacted ("***").
type Literal struct {
	Pos
	Type       store.ColumnType
	Null       bool
	Bool       bool
	Int        int64
	Real       float64
	Str        string
	Obfuscated bool
	Raw        string
}

// Unary is a prefix operator: Op is "-" or "+".
type Unary struct {
	Pos
	Op string
	X  Expr
}

// Binary is an infix operator. Op is the canonical spelling:
//
//	or and
//	== != =~ !~ < <= > >=       ("<>" is normalized to "!=")
//	contains !contains contains_cs !contains_cs has !has has_cs !has_cs
//	hasprefix !hasprefix hasprefix_cs !hasprefix_cs hassuffix !hassuffix
//	hassuffix_cs !hassuffix_cs startswith !startswith startswith_cs
//	!startswith_cs endswith !endswith endswith_cs !endswith_cs
//	"matches regex"
//	+ - * / %
//	":" (only in search predicates: Col:"term")
//
// OpPos is the position of the operator token.
type Binary struct {
	Pos
	Op    string
	OpPos Pos
	X, Y  Expr
}

// In is "x in (a, b)", and also !in, in~, !in~, has_any, has_all. List holds
// the parenthesized items; a single item may be a tabular expression or a
// dynamic array, which the binder distinguishes.
type In struct {
	Pos
	Op    string
	OpPos Pos
	X     Expr
	List  []Expr
}

// Between is "x between (lo .. hi)" or "x !between (lo .. hi)".
type Between struct {
	Pos
	Not    bool
	X      Expr
	Lo, Hi Expr
}

// Call is a function call "name(args)" (aggregates, scalar functions,
// plugins, user functions, toscalar, materialize, not, iff, ...). Target is
// non-nil for a call on an expression ("database('d').f()"). Args may contain
// *NamedArg, *Star and tabular expressions.
type Call struct {
	Pos
	Target Expr
	Name   *Ident
	Args   []Expr
}

// NamedArg is "name = value" inside a call's argument list.
type NamedArg struct {
	Pos
	Name  *Ident
	Value Expr
}

// Member is "x.name" (including $left.x / $right.y and dynamic property paths).
type Member struct {
	Pos
	X    Expr
	Name *Ident
}

// Index is "x[i]" / "x['key']".
type Index struct {
	Pos
	X     Expr
	Index Expr
}

// Paren is a parenthesized expression; kept so tabular subqueries and the
// formatter keep their grouping.
type Paren struct {
	Pos
	X Expr
}

// Typeof is "typeof(type)", a type used as a value (mv-expand "to typeof()",
// buildschema comparisons, parameter types).
type Typeof struct {
	Pos
	Type *TypeRef
}

// Lambda is a user-defined function body bound by let:
// "(a:long, T:(x:string)) { let y = 1; T | where ... }" or, when View is set,
// "view () { ... }". Body holds the body's let statements followed by exactly
// one ExprStmt.
type Lambda struct {
	Pos
	View   bool
	Params []*Param
	Body   []Stmt
}

// ---------------------------------------------------------------------------
// Tabular expressions

// Pipeline is "Source | Op | Op ...". Source is nil for operator-only
// subqueries whose input comes from context (fork/facet branches, mv-apply
// "on (...)", partition subqueries).
type Pipeline struct {
	Pos
	Source Expr
	Ops    []Op
}

// DataTable is "datatable(col:type, ...) [v1, v2, ...]"; Values is row-major.
type DataTable struct {
	Pos
	Columns []*ColumnDecl
	Values  []Expr
}

// Print is "print [name =] expr, ...", a one-row source.
type Print struct {
	Pos
	Cols []*NamedExpr
}

// Range is "range Col from Start to Stop step Step", a source.
type Range struct {
	Pos
	Col            *Ident
	From, To, Step Expr
}

// ---------------------------------------------------------------------------
// Tabular operators (after '|'). Operators that can also start a pipeline
// (union, search, find, evaluate) implement both Op and Expr.

// Where is "where pred" (Keyword "where" or "filter").
type Where struct {
	Pos
	Keyword string
	Pred    Expr
}

// Project is "project [name =] expr, ...".
type Project struct {
	Pos
	Cols []*NamedExpr
}

// ProjectAway is "project-away col-or-pattern, ..." (items are *Ident or
// *ColumnPattern).
type ProjectAway struct {
	Pos
	Cols []Expr
}

// ProjectKeep is "project-keep col-or-pattern, ...".
type ProjectKeep struct {
	Pos
	Cols []Expr
}

// ProjectRename is "project-rename new = old, ...".
type ProjectRename struct {
	Pos
	Renames []*Rename
}

// Rename is one "New = Old" pair of project-rename.
type Rename struct {
	Pos
	New, Old *Ident
}

// ProjectReorder is "project-reorder col-or-pattern [asc|desc|granny-asc|
// granny-desc], ...". Each SortKey's X is an *Ident or *ColumnPattern.
type ProjectReorder struct {
	Pos
	Cols []*SortKey
}

// Extend is "extend [name =] expr, ...".
type Extend struct {
	Pos
	Cols []*NamedExpr
}

// Summarize is "summarize [hints] [name =] agg, ... [by [name =] expr, ...]".
type Summarize struct {
	Pos
	Options []*OptionArg
	Aggs    []*NamedExpr
	By      []*NamedExpr
}

// Count is the "count" operator, optionally "count as Name".
type Count struct {
	Pos
	As *Ident // nil when absent
}

// Distinct is "distinct [hints] col, ..." or "distinct *" (a *Star item).
type Distinct struct {
	Pos
	Options []*OptionArg
	Cols    []*NamedExpr
}

// Take is "take N" (Keyword "take" or "limit").
type Take struct {
	Pos
	Keyword string
	Count   Expr
}

// Top is "top N by e [asc|desc] [nulls first|last]".
type Top struct {
	Pos
	Count Expr
	By    []*SortKey
}

// TopNested is "top-nested [N] of expr [with others = v] by agg [asc|desc], ...".
type TopNested struct {
	Pos
	Levels []*TopNestedLevel
}

// TopNestedLevel is one clause of top-nested. Count is nil for "top-nested of";
// Others is nil without "with others ="; Order is "", "asc" or "desc".
type TopNestedLevel struct {
	Pos
	Count  Expr
	Of     *NamedExpr
	Others Expr
	By     *NamedExpr
	Order  string
}

// TopHitters is "top-hitters N of expr [by expr]".
type TopHitters struct {
	Pos
	Count Expr
	Of    Expr
	By    Expr // nil when absent
}

// Sort is "sort by key, ..." (Keyword "sort" or "order").
type Sort struct {
	Pos
	Keyword string
	Options []*OptionArg
	By      []*SortKey
}

// Serialize is "serialize [name = expr, ...]".
type Serialize struct {
	Pos
	Cols []*NamedExpr
}

// As is "as [hint.materialized=true] Name".
type As struct {
	Pos
	Options []*OptionArg
	Name    *Ident
}

// Union is "union [kind=inner|outer] [withsource=Col] [isfuzzy=bool] T, ...".
// Tables are *Ident, *ColumnPattern, *Paren subqueries, *Call (functions,
// table("x")) or *Member (database("d").T). As an Op, the piped input is the
// first table.
type Union struct {
	Pos
	Options []*OptionArg
	Tables  []Expr
}

// Join is "join [kind=..] [hint.*=..] Right on cond, ..." or "... where
// pred". On items are *Ident (same-named column) or Binary "==" of $left.x and
// $right.y (possibly combined with "and"). Where is nil unless the where form
// is used.
type Join struct {
	Pos
	Options []*OptionArg
	Right   Expr
	On      []Expr
	Where   Expr
}

// Lookup is "lookup [kind=leftouter|inner] Right on cond, ...".
type Lookup struct {
	Pos
	Options []*OptionArg
	Right   Expr
	On      []Expr
}

// MvExpandItem is "[name =] expr [to typeof(type)]" in mv-expand / mv-apply.
type MvExpandItem struct {
	Pos
	Names []*Ident
	X     Expr
	To    *TypeRef // nil when absent
}

// MvExpand is "mv-expand [bagexpansion=bag|array] [with_itemindex=Col] item,
// ... [limit N]".
type MvExpand struct {
	Pos
	Options []*OptionArg
	Items   []*MvExpandItem
	Limit   Expr // nil when absent
}

// MvApply is "mv-apply [with_itemindex=Col] item, ... [limit N] on (subquery)";
// On is a Pipeline with a nil Source (or a Paren of one).
type MvApply struct {
	Pos
	Options []*OptionArg
	Items   []*MvExpandItem
	Limit   Expr
	On      Expr
}

// ParsePart is one element of a parse pattern: a string literal (Lit), a
// column with an optional type (Col, Type), or '*' (Star).
type ParsePart struct {
	Pos
	Lit  *Literal
	Col  *Ident
	Type *TypeRef
	Star bool
}

// ParseOp is "parse [kind=simple|regex|relaxed [flags=..]] expr with pattern"
// (Keyword "parse" or "parse-where").
type ParseOp struct {
	Pos
	Keyword string
	Options []*OptionArg
	X       Expr
	Pattern []*ParsePart
}

// ParseKv is "parse-kv expr as (col:type, ...) [with (option = value, ...)]".
type ParseKv struct {
	Pos
	X       Expr
	Columns []*ColumnDecl
	With    []*OptionArg
}

// Evaluate is "evaluate [hints] plugin(args)".
type Evaluate struct {
	Pos
	Options []*OptionArg
	Plugin  *Call
	Schema  *TypeRef // output schema after ':' (tabular TypeRef); nil when absent
}

// MakeSeriesAgg is "[name =] agg [default = v]" of make-series.
type MakeSeriesAgg struct {
	Pos
	Names   []*Ident
	X       Expr
	Default Expr // nil when absent
}

// MakeSeries is "make-series [kind=nonempty] aggs on Axis [from a] [to b]
// step s [by ...]" or the older "... on Axis in range(a, b, s) ...", which is
// normalized into From, To and Step.
type MakeSeries struct {
	Pos
	Options []*OptionArg
	Aggs    []*MakeSeriesAgg
	On      Expr
	From    Expr // nil when absent
	To      Expr // nil when absent
	Step    Expr
	By      []*NamedExpr
}

// RenderProp is one "name = value[, value...]" in render's with (...).
type RenderProp struct {
	Pos
	Name   *Ident
	Values []Expr
}

// Render is "render chart [with (prop = v, ...)]".
type Render struct {
	Pos
	Chart *Ident
	With  []*RenderProp
}

// GetSchema is the "getschema" operator.
type GetSchema struct {
	Pos
}

// Sample is "sample N".
type Sample struct {
	Pos
	Count Expr
}

// SampleDistinct is "sample-distinct N of expr".
type SampleDistinct struct {
	Pos
	Count Expr
	Of    Expr
}

// Search is "search [kind=case_sensitive|case_insensitive] [in (T, ...)] pred".
// A bare string predicate means "* has 'term'"; Col:"term" is a Binary ":".
type Search struct {
	Pos
	Options []*OptionArg
	In      []Expr
	Pred    Expr
}

// Find is "find [withsource=Col] [in (T, ...)] where pred [project-smart |
// project col, ...]".
type Find struct {
	Pos
	Options      []*OptionArg
	In           []Expr
	Pred         Expr
	Project      []Expr
	ProjectSmart bool
	ProjectAway  []Expr // "project-away col, ..." or a single *Star
}

// Invoke is "invoke f(args)": calls a tabular function with the piped input
// as its first argument.
type Invoke struct {
	Pos
	Call *Call
}

// ForkBranch is "[name =] (subquery)" of fork.
type ForkBranch struct {
	Pos
	Name  *Ident // nil when absent
	Query Expr
}

// Fork is "fork (subquery) (subquery) ...".
type Fork struct {
	Pos
	Branches []*ForkBranch
}

// Facet is "facet by col, ... [with (subquery)]".
type Facet struct {
	Pos
	By   []Expr
	With Expr // nil when absent
}

// Partition is "partition [hint.*=..] by Col (subquery)" (or "{ subquery }").
type Partition struct {
	Pos
	Options []*OptionArg
	By      *Ident
	In      Expr // "in (dynamic list)" or a function call; nil when absent
	Query   Expr
}

// Reduce is "reduce [kind=source] by expr [with threshold=.., characters=..]".
type Reduce struct {
	Pos
	Options []*OptionArg
	By      Expr
	With    []*OptionArg
}

// Consume is "consume" (reads and discards its input).
type Consume struct {
	Pos
	Options []*OptionArg
}

// ---------------------------------------------------------------------------
// Interface guards

func (*LetStmt) stmtNode()     {}
func (*SetStmt) stmtNode()     {}
func (*DeclareStmt) stmtNode() {}
func (*ExprStmt) stmtNode()    {}

func (*Ident) exprNode()         {}
func (*Star) exprNode()          {}
func (*ColumnPattern) exprNode() {}
func (*Literal) exprNode()       {}
func (*Unary) exprNode()         {}
func (*Binary) exprNode()        {}
func (*In) exprNode()            {}
func (*Between) exprNode()       {}
func (*Call) exprNode()          {}
func (*NamedArg) exprNode()      {}
func (*Member) exprNode()        {}
func (*Index) exprNode()         {}
func (*Paren) exprNode()         {}
func (*Typeof) exprNode()        {}
func (*Lambda) exprNode()        {}
func (*Pipeline) exprNode()      {}
func (*DataTable) exprNode()     {}
func (*Print) exprNode()         {}
func (*Range) exprNode()         {}
func (*Union) exprNode()         {}
func (*Search) exprNode()        {}
func (*Find) exprNode()          {}
func (*Evaluate) exprNode()      {}

func (*Where) opNode()          {}
func (*Project) opNode()        {}
func (*ProjectAway) opNode()    {}
func (*ProjectKeep) opNode()    {}
func (*ProjectRename) opNode()  {}
func (*ProjectReorder) opNode() {}
func (*Extend) opNode()         {}
func (*Summarize) opNode()      {}
func (*Count) opNode()          {}
func (*Distinct) opNode()       {}
func (*Take) opNode()           {}
func (*Top) opNode()            {}
func (*TopNested) opNode()      {}
func (*TopHitters) opNode()     {}
func (*Sort) opNode()           {}
func (*Serialize) opNode()      {}
func (*As) opNode()             {}
func (*Union) opNode()          {}
func (*Join) opNode()           {}
func (*Lookup) opNode()         {}
func (*MvExpand) opNode()       {}
func (*MvApply) opNode()        {}
func (*ParseOp) opNode()        {}
func (*ParseKv) opNode()        {}
func (*Evaluate) opNode()       {}
func (*MakeSeries) opNode()     {}
func (*Render) opNode()         {}
func (*GetSchema) opNode()      {}
func (*Sample) opNode()         {}
func (*SampleDistinct) opNode() {}
func (*Search) opNode()         {}
func (*Find) opNode()           {}
func (*Invoke) opNode()         {}
func (*Fork) opNode()           {}
func (*Facet) opNode()          {}
func (*Partition) opNode()      {}
func (*Reduce) opNode()         {}
func (*Consume) opNode()        {}

var (
	_ Expr = (*Union)(nil)
	_ Op   = (*Union)(nil)
	_ Expr = (*Search)(nil)
	_ Op   = (*Search)(nil)
	_ Expr = (*Find)(nil)
	_ Op   = (*Find)(nil)
	_ Expr = (*Evaluate)(nil)
	_ Op   = (*Evaluate)(nil)
)
