package kql

import (
	"strconv"
	"strings"

	"custos/internal/store"
)

// Scalar is a bound, typed scalar expression: the binder's output and the
// executor's input. Bound expressions are immutable once built and safe to
// share between goroutines.
type Scalar interface {
	// Type is the KQL type of the expression's values.
	Type() Type
	// String renders the expression for plan dumps and error messages.
	String() string
}

// ColRef reads a column of the operator's input by name.
type ColRef struct {
	Name string
	T    Type
}

// Const is a constant value.
type Const struct {
	V Value
}

// FnCall applies a built-in scalar function or operator to its arguments. The
// binder has already checked the argument types and inserted conversions, so
// the executor can pick a typed kernel from Fn and the argument types alone.
type FnCall struct {
	Fn   FuncID
	Args []Scalar
	T    Type
}

// Subquery is a tabular expression used as a scalar: toscalar(T) (the first
// column of the first row, null when there is none) or, with Set, the value
// list of "x in (T)" (the first column of every row). The executor runs it
// once, before the query that uses it.
type Subquery struct {
	Node PlanNode
	T    Type
	Set  bool
}

// Type implements Scalar.
func (s *Subquery) Type() Type { return s.T }

func (s *Subquery) String() string {
	return "toscalar(" + strings.TrimSpace(strings.ReplaceAll(Explain(s.Node), "\n", "; ")) + ")"
}

// Type implements Scalar.
func (c *ColRef) Type() Type { return c.T }

// Type implements Scalar.
func (c *Const) Type() Type { return c.V.Type }

// Type implements Scalar.
func (c *FnCall) Type() Type { return c.T }

func (c *ColRef) String() string { return QuoteName(c.Name) }

func (c *Const) String() string {
	v := c.V
	if v.Null {
		return v.Type.String() + "(null)"
	}
	switch v.Type {
	case store.TypeString:
		return strconv.Quote(v.Str)
	case store.TypeLong, store.TypeBool:
		return v.String()
	case store.TypeReal:
		return "real(" + v.String() + ")"
	default:
		return v.Type.String() + "(" + v.String() + ")"
	}
}

func (c *FnCall) String() string {
	var b strings.Builder
	b.WriteString(c.Fn.String())
	b.WriteByte('(')
	for i, a := range c.Args {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(a.String())
	}
	b.WriteByte(')')
	return b.String()
}

// QuoteName returns name as written in KQL: bare when it is a plain
// identifier, otherwise in ['...'] brackets.
func QuoteName(name string) string {
	plain := name != ""
	for i, r := range name {
		if !(r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (i > 0 && r >= '0' && r <= '9')) {
			plain = false
			break
		}
	}
	if plain {
		return name
	}
	return "['" + strings.ReplaceAll(name, "'", "\\'") + "']"
}

// IsConstant reports whether e depends on no column (it may still call now()).
func IsConstant(e Scalar) bool {
	switch e := e.(type) {
	case *Const, *Subquery:
		return true
	case *ColRef:
		return false
	case *FnCall:
		for _, a := range e.Args {
			if !IsConstant(a) {
				return false
			}
		}
		return true
	}
	return false
}

// Columns appends to dst the names of the columns e reads.
func Columns(dst []string, e Scalar) []string {
	switch e := e.(type) {
	case *ColRef:
		dst = append(dst, e.Name)
	case *FnCall:
		for _, a := range e.Args {
			dst = Columns(dst, a)
		}
	}
	return dst
}
