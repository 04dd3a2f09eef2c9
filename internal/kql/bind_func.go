package kql

import (
	"fmt"
	"maps"
	"strings"

	"custos/internal/store"
)

// This file binds user-defined functions (let f = (a:long, T:(x:string)) {...}),
// stored workspace functions (saved searches with a function alias), invoke,
// materialize() and declare query_parameters.
//
// Functions are bound by substitution: every call binds the function's body
// afresh in the environment the function was defined in (lexical scoping),
// extended with its parameters. A scalar parameter is the bound argument
// expression (so a column passed as an argument is read from the caller's
// rows); a tabular parameter is the argument's tabular expression, rebound at
// each use in the caller's environment. A function cannot see itself, so
// recursion is impossible, as in Kusto.

// StoredFunction is a workspace function: a saved search with a function
// alias. Params is the saved search's functionParameters text
// ("a:long, T:(x:string), b:string = 'x'"), Body its query.
type StoredFunction struct {
	Name   string
	Params string
	Body   string
}

// FunctionCatalog is implemented by catalogs that hold workspace functions;
// the binder calls Function for a name that is neither a let nor a table.
type FunctionCatalog interface {
	Function(name string) (StoredFunction, bool)
}

// maxCallDepth bounds nested function calls (including calls from the
// default values and arguments of other calls).
const maxCallDepth = 32

// env is a binder environment: the let-bound names visible at one point.
type env map[string]letValue

func (b *binder) snapshot() env { return maps.Clone(b.lets) }

// withEnv runs f with e as the binder's environment, then restores it.
func (b *binder) withEnv(e env, f func() error) error {
	saved := b.lets
	b.lets = e
	defer func() { b.lets = saved }()
	return f()
}

// lookupFunction returns the function named name: a let-bound lambda, or a
// stored workspace function.
func (b *binder) lookupFunction(name string) (*letValue, error) {
	if l, ok := b.lets[name]; ok {
		if l.lambda == nil {
			return nil, nil
		}
		return &l, nil
	}
	fc, ok := b.cat.(FunctionCatalog)
	if !ok {
		return nil, nil
	}
	if lv, ok := b.stored[name]; ok {
		return lv, nil
	}
	sf, ok := fc.Function(name)
	if !ok {
		return nil, nil
	}
	lam, err := parseStoredFunction(sf)
	if err != nil {
		return nil, err
	}
	lv := &letValue{lambda: lam, env: env{}, stored: name}
	if b.stored == nil {
		b.stored = map[string]*letValue{}
	}
	b.stored[name] = lv
	return lv, nil
}

// parseStoredFunction parses a stored function's parameters and body into a
// lambda.
func parseStoredFunction(sf StoredFunction) (*Lambda, error) {
	body := strings.TrimSpace(sf.Body)
	src := "let __f = (" + sf.Params + ") {\n" + body + "\n};\n__f"
	q, err := Parse(src)
	if err != nil {
		return nil, &SemanticError{Line: 1, Col: 1, Msg: fmt.Sprintf("workspace function '%s' does not compile: %v", sf.Name, err)}
	}
	let, ok := q.Stmts[0].(*LetStmt)
	if !ok {
		return nil, &SemanticError{Line: 1, Col: 1, Msg: fmt.Sprintf("workspace function '%s' does not compile", sf.Name)}
	}
	lam, ok := let.Value.(*Lambda)
	if !ok || len(q.Stmts) != 2 {
		return nil, &SemanticError{Line: 1, Col: 1, Msg: fmt.Sprintf("workspace function '%s' does not compile", sf.Name)}
	}
	return lam, nil
}

// lambdaIsTabular reports whether calling the function yields a table: its
// body's final expression is tabular in the function's environment.
func (b *binder) lambdaIsTabular(l *letValue) bool {
	// Stored functions may call each other (or themselves): bound the depth.
	b.calls++
	defer func() { b.calls-- }()
	if b.calls > maxCallDepth {
		return false
	}
	e := maps.Clone(l.env)
	for _, p := range l.lambda.Params {
		if p.Type != nil && p.Type.Tabular {
			e[p.Name.Name] = letValue{tabular: &DataTable{}, env: env{}}
		} else {
			e[p.Name.Name] = letValue{scalar: &Const{V: NullValue(p.Type.Type)}}
		}
	}
	tab := false
	_ = b.withEnv(e, func() error {
		for _, st := range l.lambda.Body {
			switch st := st.(type) {
			case *LetStmt:
				switch v := st.Value.(type) {
				case *Lambda:
					b.lets[st.Name.Name] = letValue{lambda: v, env: b.snapshot()}
				default:
					if b.isTabular(v) {
						b.lets[st.Name.Name] = letValue{tabular: v, env: b.snapshot()}
					} else {
						b.lets[st.Name.Name] = letValue{scalar: &Const{V: NullValue(store.TypeDynamic)}}
					}
				}
			case *ExprStmt:
				tab = b.isTabular(st.X)
			}
		}
		return nil
	})
	return tab
}

// callArgs matches a call's arguments to the function's parameters
// (positional, then name = value), filling in defaults.
func callArgs(call *Call, name string, lam *Lambda, extra Expr) ([]Expr, error) {
	args := make([]Expr, len(lam.Params))
	pos := 0
	if extra != nil {
		if len(lam.Params) == 0 {
			return nil, semErr(call, "function '%s' takes no arguments; invoke needs a tabular first parameter", name)
		}
		args[0] = extra
		pos = 1
	}
	named := false
	for _, a := range call.Args {
		if na, ok := a.(*NamedArg); ok {
			named = true
			found := false
			for i, p := range lam.Params {
				if p.Name.Name == na.Name.Name {
					if args[i] != nil {
						return nil, semErr(na, "parameter '%s' of function '%s' is given twice", na.Name.Name, name)
					}
					args[i], found = na.Value, true
				}
			}
			if !found {
				return nil, semErr(na, "function '%s' has no parameter named '%s'", name, na.Name.Name)
			}
			continue
		}
		if named {
			return nil, semErr(a, "positional arguments must come before named ones")
		}
		if pos >= len(lam.Params) {
			return nil, semErr(call, "function '%s' expects %d arguments, got %d", name, len(lam.Params), len(call.Args)+boolToInt(extra != nil))
		}
		args[pos] = a
		pos++
	}
	for i, p := range lam.Params {
		if args[i] == nil {
			if p.Default == nil {
				return nil, semErr(call, "function '%s': no value for parameter '%s'", name, p.Name.Name)
			}
			args[i] = p.Default
		}
	}
	return args, nil
}

func boolToInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// callFunction binds a call of a user or stored function. tabular says the
// caller wants a table (else a scalar); in is the piped input of invoke,
// bound already (nil otherwise) and inExpr its rebindable expression when
// known; sc is the caller's scope for scalar arguments.
func (b *binder) callFunction(call *Call, fn *letValue, sc *scope, inExpr Expr, in PlanNode) (PlanNode, Scalar, error) {
	name := call.Name.Name
	b.calls++
	defer func() { b.calls-- }()
	if b.calls > maxCallDepth {
		return nil, nil, semErr(call, "function calls are nested too deeply")
	}
	if fn.stored != "" {
		if b.active[fn.stored] {
			return nil, nil, semErr(call, "workspace function '%s' calls itself (directly or through other functions); recursion is not allowed", fn.stored)
		}
		if b.active == nil {
			b.active = map[string]bool{}
		}
		b.active[fn.stored] = true
		defer delete(b.active, fn.stored)
	}
	lam := fn.lambda
	var extra Expr
	if in != nil || inExpr != nil {
		extra = &Star{Pos: call.Pos} // placeholder for the piped input
	}
	args, err := callArgs(call, name, lam, extra)
	if err != nil {
		return nil, nil, err
	}
	callerEnv := b.snapshot()
	if sc == nil {
		sc = &scope{}
	}
	fenv := maps.Clone(fn.env)
	for i, p := range lam.Params {
		a := args[i]
		if p.Type == nil {
			return nil, nil, semErr(p, "parameter '%s' has no type", p.Name.Name)
		}
		if p.Type.Tabular {
			var lv letValue
			switch {
			case i == 0 && extra != nil && inExpr != nil:
				lv = letValue{tabular: inExpr, env: callerEnv}
			case i == 0 && extra != nil:
				lv = letValue{shared: sharedNode(in)}
			default:
				if !b.isTabular(a) {
					return nil, nil, semErr(a, "argument '%s' of function '%s' must be a table", p.Name.Name, name)
				}
				lv = letValue{tabular: a, env: callerEnv}
			}
			// Check the declared columns against the argument.
			var node PlanNode
			if err := b.withEnv(env{p.Name.Name: lv}, func() error {
				var err error
				node, err = b.bindTabular(&Ident{Pos: a.Position(), Name: p.Name.Name})
				return err
			}); err != nil {
				return nil, nil, err
			}
			schema := node.Schema()
			for _, c := range p.Type.Columns {
				j := schema.Index(c.Name.Name)
				if j < 0 {
					return nil, nil, semErr(a, "argument '%s' of function '%s' has no column '%s'", p.Name.Name, name, c.Name.Name)
				}
				if c.Type != nil && schema[j].Type != c.Type.Type {
					return nil, nil, semErr(a, "column '%s' of argument '%s' of function '%s' is %s, not %s", c.Name.Name, p.Name.Name, name, schema[j].Type, c.Type.Type)
				}
			}
			fenv[p.Name.Name] = lv
			continue
		}
		if p.Type.Type == store.TypeInvalid {
			return nil, nil, semErr(p, "parameter '%s' needs a scalar type", p.Name.Name)
		}
		if b.isTabular(a) {
			return nil, nil, semErr(a, "argument '%s' of function '%s' must be a scalar of type %s", p.Name.Name, name, p.Type.Type)
		}
		x, err := b.bindScalar(a, sc)
		if err != nil {
			return nil, nil, err
		}
		x, err = castParam(x, p.Type.Type)
		if err != nil {
			return nil, nil, semErr(a, "argument '%s' of function '%s': %v", p.Name.Name, name, err)
		}
		fenv[p.Name.Name] = letValue{scalar: x}
	}
	var node PlanNode
	var scalar Scalar
	err = b.withEnv(fenv, func() error {
		for _, st := range lam.Body {
			switch st := st.(type) {
			case *LetStmt:
				if err := b.bindLet(st); err != nil {
					return err
				}
			case *DeclareStmt:
				return semErr(st, "declare query_parameters is not allowed in a function body")
			case *ExprStmt:
				if b.isTabular(st.X) {
					n, err := b.bindTabular(st.X)
					if err != nil {
						return err
					}
					node = n
					return nil
				}
				x, err := b.bindScalar(st.X, &scope{})
				if err != nil {
					return err
				}
				scalar = x
				return nil
			}
		}
		return semErr(call, "function '%s' has no result expression", name)
	})
	if err != nil {
		if fn.stored != "" {
			var se *SemanticError
			if asSemantic(err, &se) && !strings.HasPrefix(se.Msg, "in workspace function ") && !strings.HasPrefix(se.Msg, "workspace function ") {
				return nil, nil, semErr(call, "in workspace function '%s': %s", name, se.Msg)
			}
			if se != nil {
				return nil, nil, semErr(call, "%s", se.Msg)
			}
		}
		return nil, nil, err
	}
	return node, scalar, nil
}

func asSemantic(err error, se **SemanticError) bool {
	s, ok := err.(*SemanticError)
	if ok {
		*se = s
	}
	return ok
}

// castParam converts a scalar argument to its parameter's declared type:
// integers widen, numbers convert to real and decimal, a dynamic value is
// read as the type; anything else must match exactly.
func castParam(x Scalar, t Type) (Scalar, error) {
	xt := x.Type()
	switch {
	case xt == t:
		return x, nil
	case IsNumeric(xt) && IsNumeric(t):
		if k, ok := x.(*Const); ok {
			if v, ok := convertValue(k.V, t); ok {
				return &Const{V: v}, nil
			}
		}
		return castTo(x, t), nil
	case xt == store.TypeDynamic:
		return FromDynamic(x, t), nil
	case t == store.TypeDynamic:
		if k, ok := x.(*Const); ok {
			if v, ok := literalAs(k.V, t); ok {
				return &Const{V: v}, nil
			}
		}
	case IsStringLike(xt) && IsStringLike(t):
		if k, ok := x.(*Const); ok {
			if v, ok := convertValue(k.V, t); ok {
				return &Const{V: v}, nil
			}
		}
	}
	if k, ok := x.(*Const); ok && k.V.Null {
		return &Const{V: NullValue(t)}, nil
	}
	return nil, fmt.Errorf("expected %s, got %s", t, xt)
}

// sharedNode wraps an already bound node so that several parents may read
// it: the node is optimized on its own and executed once per query.
func sharedNode(n PlanNode) *Materialize {
	if m, ok := n.(*Materialize); ok {
		return m
	}
	optimize(n)
	return &Materialize{Input: n}
}

// bindMaterialize binds materialize(T): a node executed once per query and
// shared by every reader.
func (b *binder) bindMaterialize(c *Call) (*Materialize, error) {
	if len(c.Args) != 1 || !b.isTabular(c.Args[0]) {
		return nil, semErr(c, "materialize expects one tabular argument")
	}
	n, err := b.bindTabular(c.Args[0])
	if err != nil {
		return nil, err
	}
	return sharedNode(n), nil
}

// bindDeclare binds declare query_parameters: each parameter's value comes
// from BindOptions.Parameters (its text is a literal of the declared type,
// or the string itself for string parameters), else from its default.
func (b *binder) bindDeclare(st *DeclareStmt) error {
	for _, p := range st.Params {
		name := p.Name.Name
		if p.Type == nil || p.Type.Tabular || p.Type.Type == store.TypeInvalid {
			return semErr(p, "query parameter '%s' needs a scalar type", name)
		}
		t := p.Type.Type
		if text, ok := b.opts.Parameters[name]; ok {
			v, err := ParameterValue(text, t)
			if err != nil {
				return semErr(p, "query parameter '%s': %v", name, err)
			}
			b.lets[name] = letValue{scalar: &Const{V: v}}
			continue
		}
		if p.Default == nil {
			return semErr(p, "query parameter '%s' has no value and no default", name)
		}
		x, err := b.bindScalar(p.Default, &scope{})
		if err != nil {
			return err
		}
		if !IsConstant(x) {
			return semErr(p.Default, "the default of query parameter '%s' must be a constant", name)
		}
		x, err = castParam(x, t)
		if err != nil {
			return semErr(p.Default, "query parameter '%s': %v", name, err)
		}
		b.lets[name] = letValue{scalar: x}
	}
	return nil
}

// ParameterValue converts a query parameter's text to a value of type t: a
// string parameter takes the text as is; other types accept a KQL literal
// ("datetime(2024-01-01)", "5", "true", "dynamic([1,2])") or the bare
// literal body ("2024-01-01", "1h").
func ParameterValue(text string, t Type) (Value, error) {
	if t == store.TypeString {
		return StringValue(text), nil
	}
	try := func(src string) (Value, bool) {
		x, err := ParseExpr(src)
		if err != nil {
			return Value{}, false
		}
		neg := false
		if u, ok := x.(*Unary); ok && u.Op == "-" {
			neg, x = true, u.X
		}
		l, ok := x.(*Literal)
		if !ok {
			return Value{}, false
		}
		v := literalValue(l)
		if neg {
			switch {
			case IsIntHeld(v.Type):
				v.Int = -v.Int
			case IsRealHeld(v.Type):
				v.Real = -v.Real
			default:
				return Value{}, false
			}
		}
		if v.Null {
			return NullValue(t), true
		}
		return literalAs(v, t)
	}
	text = strings.TrimSpace(text)
	if v, ok := try(text); ok && v.Type == t {
		return v, nil
	}
	if v, ok := try(t.String() + "(" + text + ")"); ok && v.Type == t {
		return v, nil
	}
	return Value{}, fmt.Errorf("'%s' is not a valid %s value", truncateText(text, 64), t)
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// bindTabularCall binds a call of a function in tabular position.
func (b *binder) bindTabularCall(call *Call, fn *letValue) (PlanNode, error) {
	n, _, err := b.callFunction(call, fn, nil, nil, nil)
	if err != nil {
		return nil, err
	}
	if n == nil {
		return nil, semErr(call, "function '%s' returns a scalar, not a table", call.Name.Name)
	}
	return n, nil
}

// bindInvoke binds "T | invoke f(args)": f's first (tabular) parameter is
// the piped input, given as the rebindable expression inExpr when known,
// else as the bound node in.
func (b *binder) bindInvoke(inExpr Expr, in PlanNode, op *Invoke) (PlanNode, error) {
	call := op.Call
	if call == nil || call.Target != nil {
		return nil, semErr(op, "invoke expects a function call")
	}
	fn, err := b.lookupFunction(call.Name.Name)
	if err != nil {
		return nil, semWrap(call, err)
	}
	if fn == nil {
		return nil, semErr(call.Name, "The name '%s' does not refer to any known function.", call.Name.Name)
	}
	if len(fn.lambda.Params) == 0 || fn.lambda.Params[0].Type == nil || !fn.lambda.Params[0].Type.Tabular {
		return nil, semErr(call, "invoke needs a function whose first parameter is a table; '%s' has none", call.Name.Name)
	}
	n, _, err := b.callFunction(call, fn, nil, inExpr, in)
	if err != nil {
		return nil, err
	}
	if n == nil {
		return nil, semErr(call, "function '%s' returns a scalar, not a table", call.Name.Name)
	}
	return n, nil
}

// bindTableCall binds table("name").
func (b *binder) bindTableCall(c *Call) (PlanNode, error) {
	if len(c.Args) != 1 {
		return nil, semErr(c, "table() expects one table name")
	}
	l, ok := unparen(c.Args[0]).(*Literal)
	if !ok || l.Type != store.TypeString {
		return nil, semErr(c, "table() expects a constant table name")
	}
	return b.bindTabular(&Ident{Pos: c.Pos, Name: l.Str})
}

// harmlessSetOptions are the request properties a set statement may name
// without effect: Custos's limits, timeouts and caching do not change.
var harmlessSetOptions = map[string]bool{
	"notruncation": true, "truncationmaxrecords": true, "truncationmaxsize": true,
	"norequesttimeout": true, "servertimeout": true, "query_results_cache_max_age": true,
	"query_datascope": true, "query_fanout_nodes_percent": true, "query_fanout_threads_percent": true,
	"maxmemoryconsumptionperiterator": true, "max_memory_consumption_per_query_per_node": true,
	"query_language": true, "request_app_name": true, "request_user": true, "request_description": true,
	"request_readonly": true, "request_callout_disabled": true, "request_remote_entities_disabled": true,
	"queryconsistency": true, "query_max_entities_in_union": true,
	// Never harmless: request_block_row_level_security and anything that
	// would bypass access control stays refused.
}

// bindSet binds a set statement: query_take_max_records limits the rows
// of the results that follow; harmless options are accepted and ignored;
// anything else is refused.
func (b *binder) bindSet(st *SetStmt) error {
	name := strings.ToLower(st.Name.Name)
	if name == "query_take_max_records" {
		if st.Value == nil {
			return semErr(st, "set query_take_max_records needs a value")
		}
		n, err := b.constCount(st.Value)
		if err != nil {
			return err
		}
		b.takeMax, b.takeMaxSet = n, true
		return nil
	}
	if harmlessSetOptions[name] {
		return nil
	}
	return semErr(st.Name, "set option '%s' is not supported; Custos accepts query_take_max_records and options that do not change results (notruncation, truncationmaxrecords, servertimeout, query_results_cache_max_age, ...)", st.Name.Name)
}
