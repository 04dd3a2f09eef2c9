package kql

import (
	"fmt"
	"slices"
	"strings"

	"custos/internal/store"
)

// Plan is a bound, optimized query: one plan tree per result table, the
// first being PrimaryResult. Plans are immutable once built and safe to
// execute concurrently.
type Plan struct {
	Results []PlanNode
	// Render holds, per result, the render operator's visualization (nil
	// when the result has none).
	Render []*Visualization
}

// PlanNode is a node of a query plan. Nodes are concrete types; the executor
// switches on them. Schema is the schema of the rows the node produces.
type PlanNode interface {
	Schema() store.Schema
	planNode()
}

// Scan reads a table from storage. The planner fills Columns, Time and Terms
// from the operators above it; the executor re-checks every predicate, so
// they are only hints to the store (except Time, which also restricts rows).
type Scan struct {
	Table       string
	TableSchema store.Schema // the table's full schema
	Columns     []string     // columns to read; nil means all
	Time        []TimeBound  // constant bounds on TimeGenerated (AND)
	Terms       []store.TermHint
	Limit       int // rows the query can use at most (0: no limit); a hint
	// Workspace is the workspace (customerId) the table belongs to; ""
	// means the request's workspace (workspace("x").T sets it).
	Workspace string
	out       store.Schema
}

// TimeBound is "TimeGenerated Op Value" where Value is a constant datetime
// expression (it may call now() or ago()). Op is OpGe, OpGt, OpLe, OpLt or OpEq.
type TimeBound struct {
	Op    FuncID
	Value Scalar
}

// Filter keeps the rows for which Pred is true (null counts as false).
type Filter struct {
	Input PlanNode
	Pred  Scalar
}

// NamedScalar is an output column computed by an expression.
type NamedScalar struct {
	Name string
	X    Scalar
}

// Compute produces exactly Cols for each input row: project, extend,
// project-away, project-rename, project-reorder all become a Compute.
type Compute struct {
	Input PlanNode
	Cols  []NamedScalar
}

// Aggregate groups rows by Keys and computes Aggs per group (summarize,
// distinct, count). Without keys it yields exactly one row.
type Aggregate struct {
	Input PlanNode
	Keys  []NamedScalar
	Aggs  []*AggCall
}

// OrderKey is one sort key.
type OrderKey struct {
	X          Scalar
	Desc       bool
	NullsFirst bool
}

// OrderBy sorts its input (stable).
type OrderBy struct {
	Input PlanNode
	Keys  []OrderKey
}

// TopN is OrderBy followed by Limit, executed with a bounded heap.
type TopN struct {
	Input PlanNode
	N     int64
	Keys  []OrderKey
}

// Limit passes at most N rows (take, limit).
type Limit struct {
	Input PlanNode
	N     int64
}

// Values is a constant table (datatable; print's single empty row).
type Values struct {
	Out  store.Schema
	Rows [][]Value
}

// HashJoin joins Left and Right on equal keys (join, lookup). Kind is one of
// innerunique (Kusto's default: the left side deduplicated on the keys),
// inner, leftouter, rightouter, fullouter, leftsemi, leftanti, rightsemi,
// rightanti. The output is Left's columns then Right's (RightNames gives
// their output names, renamed on collision); leftsemi and leftanti output
// Left's columns only, rightsemi and rightanti Right's only (not renamed).
type HashJoin struct {
	Left, Right         PlanNode
	Kind                string
	LeftKeys, RightKeys []string
	RightNames          []string
}

// Expand expands dynamic arrays and property bags into rows (mv-expand):
// each input row yields one row per element, the items expanded in
// parallel (nulls where one is shorter); a null value yields one row, an
// empty array none.
type Expand struct {
	Input    PlanNode
	Items    []NamedScalar // dynamic expressions
	Types    []Type        // the output type of each item (to typeof())
	Bag      bool          // property bags expand to {"key": value} (else [key, value])
	IndexCol string        // with_itemindex column, "" when absent
	Limit    int64         // rows per input row; 0 = no limit
}

// SeriesPack is the last step of make-series: its Input is an Aggregate by
// Keys plus the bin column Bin; it outputs one row per key tuple with every
// aggregation as a dynamic array over the bins (Default where a bin has no
// row) and the Axis column as the array of bin starts. With From set, Bin
// holds offsets from From (bin(axis - From, Step)); otherwise bin starts,
// the first bin being the smallest one with data. To is exclusive; without
// it the last bin is the largest one with data.
type SeriesPack struct {
	Input          PlanNode
	Keys           []string
	Bin            string
	Aggs           []SeriesAgg
	Axis           string
	AxisT          Type
	From, To, Step Scalar // From and To may be nil
	// NonEmpty (kind=nonempty) yields one row of defaults when there is no
	// by clause and no input row (From and To given).
	NonEmpty bool
}

// SeriesAgg is one aggregation column of make-series.
type SeriesAgg struct {
	Name    string
	Default Value
}

// UnionAll concatenates its inputs, which all produce the same schema (the
// binder aligns them by name, with nulls for missing columns).
type UnionAll struct {
	Inputs []PlanNode
}

// Sequence is range Name from From to To step Step.
type Sequence struct {
	Name           string
	T              Type
	From, To, Step Scalar
}

// Schema implements PlanNode.
func (s *Scan) Schema() store.Schema {
	if s.out == nil {
		s.out = s.projected()
	}
	return s.out
}

func (s *Scan) projected() store.Schema {
	if s.Columns == nil {
		return s.TableSchema
	}
	out := make(store.Schema, 0, len(s.Columns))
	for _, c := range s.TableSchema {
		if slices.Contains(s.Columns, c.Name) {
			out = append(out, c)
		}
	}
	return out
}

// Schema implements PlanNode.
func (f *Filter) Schema() store.Schema { return f.Input.Schema() }

// Schema implements PlanNode.
func (c *Compute) Schema() store.Schema {
	out := make(store.Schema, len(c.Cols))
	for i, col := range c.Cols {
		out[i] = store.Column{Name: col.Name, Type: col.X.Type()}
	}
	return out
}

// Schema implements PlanNode.
func (a *Aggregate) Schema() store.Schema {
	out := make(store.Schema, 0, len(a.Keys)+len(a.Aggs))
	for _, k := range a.Keys {
		out = append(out, store.Column{Name: k.Name, Type: k.X.Type()})
	}
	for _, ag := range a.Aggs {
		out = append(out, store.Column{Name: ag.Name, Type: ag.T})
	}
	return out
}

// Schema implements PlanNode.
func (o *OrderBy) Schema() store.Schema { return o.Input.Schema() }

// Schema implements PlanNode.
func (t *TopN) Schema() store.Schema { return t.Input.Schema() }

// Schema implements PlanNode.
func (l *Limit) Schema() store.Schema { return l.Input.Schema() }

// Schema implements PlanNode.
func (v *Values) Schema() store.Schema { return v.Out }

// HasLeft reports whether the join outputs the left side's columns (all
// kinds but rightsemi and rightanti).
func (j *HashJoin) HasLeft() bool { return j.Kind != "rightsemi" && j.Kind != "rightanti" }

// HasRight reports whether the join outputs the right side's columns (all
// kinds but leftsemi and leftanti).
func (j *HashJoin) HasRight() bool { return j.Kind != "leftsemi" && j.Kind != "leftanti" }

// Schema implements PlanNode.
func (j *HashJoin) Schema() store.Schema {
	if !j.HasLeft() {
		return append(store.Schema{}, j.Right.Schema()...)
	}
	out := append(store.Schema{}, j.Left.Schema()...)
	if !j.HasRight() {
		return out
	}
	for i, c := range j.Right.Schema() {
		out = append(out, store.Column{Name: j.RightNames[i], Type: c.Type})
	}
	return out
}

// Schema implements PlanNode.
func (m *Expand) Schema() store.Schema {
	out := append(store.Schema{}, m.Input.Schema()...)
	for i, it := range m.Items {
		c := store.Column{Name: it.Name, Type: m.Types[i]}
		if j := out.Index(it.Name); j >= 0 {
			out[j] = c
		} else {
			out = append(out, c)
		}
	}
	if m.IndexCol != "" {
		out = append(out, store.Column{Name: m.IndexCol, Type: store.TypeLong})
	}
	return out
}

// Schema implements PlanNode.
func (u *UnionAll) Schema() store.Schema { return u.Inputs[0].Schema() }

// Schema implements PlanNode.
func (s *Sequence) Schema() store.Schema { return store.Schema{{Name: s.Name, Type: s.T}} }

func (*Scan) planNode()       {}
func (*Filter) planNode()     {}
func (*Compute) planNode()    {}
func (*Aggregate) planNode()  {}
func (*OrderBy) planNode()    {}
func (*TopN) planNode()       {}
func (*Limit) planNode()      {}
func (*Values) planNode()     {}
func (*Sequence) planNode()   {}
func (*UnionAll) planNode()   {}
func (*HashJoin) planNode()   {}
func (*Expand) planNode()     {}
func (*SeriesPack) planNode() {}

// Schema implements PlanNode.
func (s *SeriesPack) Schema() store.Schema {
	in := s.Input.Schema()
	var out store.Schema
	for _, k := range s.Keys {
		out = append(out, in[in.Index(k)])
	}
	for _, a := range s.Aggs {
		out = append(out, store.Column{Name: a.Name, Type: store.TypeDynamic})
	}
	return append(out, store.Column{Name: s.Axis, Type: store.TypeDynamic})
}

// TimeColumn is the column the store partitions and prunes by.
const TimeColumn = "TimeGenerated"

// optimize pushes projections, time bounds, term hints and limits down to the
// scans of root. It mutates the tree, which the binder built fresh for this
// query (no node is shared between two parents).
func optimize(root PlanNode) {
	pushFilters(root)
	pushLimits(root, 0)
	prune(root, nil)
}

// pushFilters walks the tree and, for every Filter, hands the conjuncts it
// can prove about a scan's own columns down to that scan.
func pushFilters(n PlanNode) {
	switch n := n.(type) {
	case *Filter:
		for _, c := range conjuncts(n.Pred, nil) {
			pushConjunct(n.Input, c)
		}
		pushFilters(n.Input)
	case *Compute:
		pushFilters(n.Input)
	case *Aggregate:
		pushFilters(n.Input)
	case *SeriesPack:
		pushFilters(n.Input)
	case *OrderBy:
		pushFilters(n.Input)
	case *TopN:
		pushFilters(n.Input)
	case *Limit:
		pushFilters(n.Input)
	case *UnionAll:
		for _, in := range n.Inputs {
			pushFilters(in)
		}
	case *HashJoin:
		pushFilters(n.Left)
		pushFilters(n.Right)
	case *Expand:
		pushFilters(n.Input)
	case Composite:
		for _, c := range n.Children() {
			pushFilters(c)
		}
	}
}

func conjuncts(e Scalar, dst []Scalar) []Scalar {
	if c, ok := e.(*FnCall); ok && c.Fn == OpAnd {
		for _, a := range c.Args {
			dst = conjuncts(a, dst)
		}
		return dst
	}
	return append(dst, e)
}

// scanOf follows column name down through row-preserving operators that pass
// it through unchanged (possibly renamed), and returns the scan that produces
// it with the column's name in the table.
func scanOf(n PlanNode, name string) (*Scan, string) {
	for {
		switch m := n.(type) {
		case *Scan:
			if m.TableSchema.Index(name) >= 0 {
				return m, name
			}
			return nil, ""
		case *Filter:
			n = m.Input
		case *OrderBy:
			n = m.Input
		case *Compute:
			found := false
			for _, c := range m.Cols {
				if c.Name == name {
					ref, ok := c.X.(*ColRef)
					if !ok {
						return nil, ""
					}
					name, found = ref.Name, true
					break
				}
			}
			if !found {
				return nil, ""
			}
			n = m.Input
		default:
			return nil, ""
		}
	}
}

func pushConjunct(input PlanNode, c Scalar) {
	if term, s := anyColumnTerm(input, c); s != nil {
		for _, t := range Terms(term) {
			if len(t) >= MinHintTermLen {
				s.Terms = append(s.Terms, store.TermHint{Term: t})
			}
		}
		return
	}
	call, ok := c.(*FnCall)
	if !ok || len(call.Args) != 2 {
		return
	}
	l, r := call.Args[0], call.Args[1]
	op := call.Fn
	switch op {
	case OpGe, OpGt, OpLe, OpLt, OpEq:
		ref, ok := l.(*ColRef)
		val := r
		if !ok {
			if ref, ok = r.(*ColRef); !ok {
				break
			}
			val = l
			op = flipCompare(op)
		}
		if ref.T != store.TypeDatetime || val.Type() != store.TypeDatetime || !IsConstant(val) {
			break
		}
		if s, col := scanOf(input, ref.Name); s != nil && col == TimeColumn {
			s.Time = append(s.Time, TimeBound{Op: op, Value: val})
		}
	}
	switch op {
	case OpHas, OpHasCS, OpEq, OpEqCI:
		ref, ok := l.(*ColRef)
		k, kok := r.(*Const)
		if !ok || !kok || ref.T != store.TypeString || k.V.Type != store.TypeString {
			return
		}
		s, col := scanOf(input, ref.Name)
		if s == nil {
			return
		}
		for _, t := range Terms(k.V.Str) {
			if len(t) >= MinHintTermLen {
				s.Terms = append(s.Terms, store.TermHint{Column: col, Term: t})
			}
		}
	}
}

// anyColumnTerm recognizes "* has term" (an or of has over columns of one
// scan, the same constant term each) and returns the term and the scan.
func anyColumnTerm(input PlanNode, c Scalar) (string, *Scan) {
	call, ok := c.(*FnCall)
	if !ok || call.Fn != OpOr {
		return "", nil
	}
	var leaves []Scalar
	var walk func(Scalar) bool
	walk = func(e Scalar) bool {
		if f, ok := e.(*FnCall); ok && f.Fn == OpOr {
			return walk(f.Args[0]) && walk(f.Args[1])
		}
		leaves = append(leaves, e)
		return true
	}
	walk(c)
	term := ""
	var scan *Scan
	for i, l := range leaves {
		f, ok := l.(*FnCall)
		if !ok || (f.Fn != OpHas && f.Fn != OpHasCS) {
			return "", nil
		}
		ref, ok := f.Args[0].(*ColRef)
		k, kok := f.Args[1].(*Const)
		if !ok || !kok || ref.T != store.TypeString {
			return "", nil
		}
		s, _ := scanOf(input, ref.Name)
		if s == nil || (scan != nil && s != scan) || (i > 0 && k.V.Str != term) {
			return "", nil
		}
		scan, term = s, k.V.Str
	}
	return term, scan
}

// MinHintTermLen is the shortest term handed to the store as a TermHint;
// shorter terms match too much to be worth a bloom lookup.
const MinHintTermLen = 3

func flipCompare(op FuncID) FuncID {
	switch op {
	case OpGe:
		return OpLe
	case OpGt:
		return OpLt
	case OpLe:
		return OpGe
	case OpLt:
		return OpGt
	}
	return op
}

// pushLimits gives a scan the number of rows a take directly above it (through
// row-wise operators that keep every row) can use.
func pushLimits(n PlanNode, limit int64) {
	switch n := n.(type) {
	case *Scan:
		if limit > 0 && limit < 1<<31 {
			n.Limit = int(limit)
		}
	case *Limit:
		l := n.N
		if limit > 0 && limit < l {
			l = limit
		}
		pushLimits(n.Input, l)
	case *Compute:
		pushLimits(n.Input, limit)
	case *Filter:
		pushLimits(n.Input, 0)
	case *Aggregate:
		pushLimits(n.Input, 0)
	case *SeriesPack:
		pushLimits(n.Input, 0)
	case *OrderBy:
		pushLimits(n.Input, 0)
	case *TopN:
		pushLimits(n.Input, 0)
	case *UnionAll:
		for _, in := range n.Inputs {
			pushLimits(in, limit)
		}
	case *HashJoin:
		pushLimits(n.Left, 0)
		pushLimits(n.Right, 0)
	case *Expand:
		pushLimits(n.Input, 0)
	case Composite:
		for _, c := range n.Children() {
			pushLimits(c, 0)
		}
	}
}

// prune drops columns nobody reads: needed is the set of output columns the
// parent reads, nil meaning all of them.
func prune(n PlanNode, needed map[string]bool) {
	addCols := func(dst map[string]bool, e Scalar) {
		for _, c := range Columns(nil, e) {
			dst[c] = true
		}
	}
	switch n := n.(type) {
	case *Scan:
		if needed == nil {
			n.Columns = nil
		} else {
			cols := make([]string, 0, len(needed))
			for _, c := range n.TableSchema {
				if needed[c.Name] {
					cols = append(cols, c.Name)
				}
			}
			n.Columns = cols
		}
		n.out = nil
	case *Filter:
		if needed != nil {
			needed = cloneSet(needed)
			addCols(needed, n.Pred)
		}
		prune(n.Input, needed)
	case *Compute:
		if needed != nil {
			kept := n.Cols[:0:0]
			for _, c := range n.Cols {
				if needed[c.Name] {
					kept = append(kept, c)
				}
			}
			n.Cols = kept
		}
		in := map[string]bool{}
		for _, c := range n.Cols {
			addCols(in, c.X)
		}
		prune(n.Input, in)
	case *SeriesPack:
		prune(n.Input, nil)
	case *Aggregate:
		in := map[string]bool{}
		for _, k := range n.Keys {
			addCols(in, k.X)
		}
		for _, a := range n.Aggs {
			for _, x := range a.Args {
				addCols(in, x)
			}
		}
		prune(n.Input, in)
	case *OrderBy:
		if needed != nil {
			needed = cloneSet(needed)
			for _, k := range n.Keys {
				addCols(needed, k.X)
			}
		}
		prune(n.Input, needed)
	case *TopN:
		if needed != nil {
			needed = cloneSet(needed)
			for _, k := range n.Keys {
				addCols(needed, k.X)
			}
		}
		prune(n.Input, needed)
	case *Limit:
		prune(n.Input, needed)
	case *UnionAll:
		for _, in := range n.Inputs {
			prune(in, needed)
		}
	case *Expand:
		var in map[string]bool
		if needed != nil {
			in = cloneSet(needed)
			for _, it := range n.Items {
				addCols(in, it.X)
			}
		}
		prune(n.Input, in)
	case *HashJoin:
		var left, right map[string]bool
		if needed != nil {
			left, right = map[string]bool{}, map[string]bool{}
			for _, c := range n.Left.Schema() {
				if needed[c.Name] {
					left[c.Name] = true
				}
			}
			for i, c := range n.Right.Schema() {
				out := n.RightNames[i]
				if !n.HasLeft() {
					out = c.Name // rightsemi/rightanti keep the right's names
				}
				if needed[out] {
					right[c.Name] = true
				}
			}
			for _, k := range n.LeftKeys {
				left[k] = true
			}
			for _, k := range n.RightKeys {
				right[k] = true
			}
		}
		// The right side's columns keep their output names, so it is
		// pruned only when the parent's needs are known.
		prune(n.Left, left)
		if right != nil {
			prune(n.Right, right)
			n.RightNames = joinNames(n.Left.Schema(), n.Right.Schema())
		} else {
			prune(n.Right, nil)
		}
	case Composite:
		for _, c := range n.Children() {
			prune(c, nil)
		}
	}
}

// joinNames names the right side's columns of a join: a name the left side
// already has gets the first free numeric suffix (Computer1), as in Kusto.
func joinNames(left, right store.Schema) []string {
	taken := map[string]bool{}
	for _, c := range left {
		taken[c.Name] = true
	}
	out := make([]string, len(right))
	for i, c := range right {
		name := c.Name
		for k := 1; taken[name]; k++ {
			name = fmt.Sprintf("%s%d", c.Name, k)
		}
		taken[name] = true
		out[i] = name
	}
	return out
}

func cloneSet(m map[string]bool) map[string]bool {
	out := make(map[string]bool, len(m)+4)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Explain renders a plan tree, one node per line, for tests and debugging.
func Explain(n PlanNode) string {
	var b strings.Builder
	explain(&b, n, 0)
	return b.String()
}

func explain(b *strings.Builder, n PlanNode, depth int) {
	ind := strings.Repeat("  ", depth)
	if explainComposite(b, n, ind) {
		if c, ok := n.(Composite); ok {
			for _, in := range c.Children() {
				explain(b, in, depth+1)
			}
		}
		if m, ok := n.(*Materialize); ok {
			explain(b, m.Input, depth+1)
		}
		return
	}
	switch n := n.(type) {
	case *Scan:
		fmt.Fprintf(b, "%sscan %s", ind, n.Table)
		if n.Columns != nil {
			fmt.Fprintf(b, " columns=[%s]", strings.Join(n.Columns, ","))
		}
		for _, t := range n.Time {
			fmt.Fprintf(b, " time%s%s", t.Op, t.Value)
		}
		for _, t := range n.Terms {
			fmt.Fprintf(b, " term=%s:%s", t.Column, t.Term)
		}
		if n.Limit > 0 {
			fmt.Fprintf(b, " limit=%d", n.Limit)
		}
		b.WriteByte('\n')
	case *Filter:
		fmt.Fprintf(b, "%sfilter %s\n", ind, n.Pred)
		explain(b, n.Input, depth+1)
	case *Compute:
		fmt.Fprintf(b, "%scompute", ind)
		for i, c := range n.Cols {
			sep := " "
			if i > 0 {
				sep = ", "
			}
			if r, ok := c.X.(*ColRef); ok && r.Name == c.Name {
				fmt.Fprintf(b, "%s%s", sep, QuoteName(c.Name))
			} else {
				fmt.Fprintf(b, "%s%s=%s", sep, QuoteName(c.Name), c.X)
			}
		}
		b.WriteByte('\n')
		explain(b, n.Input, depth+1)
	case *Aggregate:
		fmt.Fprintf(b, "%saggregate", ind)
		for _, a := range n.Aggs {
			fmt.Fprintf(b, " %s=%s(", QuoteName(a.Name), a.Fn)
			for i, x := range a.Args {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString(x.String())
			}
			b.WriteString(")")
		}
		if len(n.Keys) > 0 {
			b.WriteString(" by")
			for _, k := range n.Keys {
				fmt.Fprintf(b, " %s=%s", QuoteName(k.Name), k.X)
			}
		}
		b.WriteByte('\n')
		explain(b, n.Input, depth+1)
	case *OrderBy:
		fmt.Fprintf(b, "%sorder%s\n", ind, keysString(n.Keys))
		explain(b, n.Input, depth+1)
	case *TopN:
		fmt.Fprintf(b, "%stop %d%s\n", ind, n.N, keysString(n.Keys))
		explain(b, n.Input, depth+1)
	case *Limit:
		fmt.Fprintf(b, "%slimit %d\n", ind, n.N)
		explain(b, n.Input, depth+1)
	case *Values:
		fmt.Fprintf(b, "%svalues rows=%d\n", ind, len(n.Rows))
	case *Sequence:
		fmt.Fprintf(b, "%srange %s from %s to %s step %s\n", ind, n.Name, n.From, n.To, n.Step)
	case *SeriesPack:
		fmt.Fprintf(b, "%smake-series on %s", ind, n.Axis)
		if n.From != nil {
			fmt.Fprintf(b, " from %s", n.From)
		}
		if n.To != nil {
			fmt.Fprintf(b, " to %s", n.To)
		}
		fmt.Fprintf(b, " step %s", n.Step)
		if len(n.Keys) > 0 {
			fmt.Fprintf(b, " by %s", strings.Join(n.Keys, ","))
		}
		b.WriteByte('\n')
		explain(b, n.Input, depth+1)
	case *Expand:
		fmt.Fprintf(b, "%smv-expand", ind)
		for i, it := range n.Items {
			fmt.Fprintf(b, " %s=%s:%s", QuoteName(it.Name), it.X, n.Types[i])
		}
		b.WriteByte('\n')
		explain(b, n.Input, depth+1)
	case *HashJoin:
		fmt.Fprintf(b, "%sjoin kind=%s on %s == %s\n", ind, n.Kind, strings.Join(n.LeftKeys, ","), strings.Join(n.RightKeys, ","))
		explain(b, n.Left, depth+1)
		explain(b, n.Right, depth+1)
	case *UnionAll:
		fmt.Fprintf(b, "%sunion\n", ind)
		for _, in := range n.Inputs {
			explain(b, in, depth+1)
		}
	}
}

func keysString(keys []OrderKey) string {
	var b strings.Builder
	for _, k := range keys {
		dir := "asc"
		if k.Desc {
			dir = "desc"
		}
		nulls := "last"
		if k.NullsFirst {
			nulls = "first"
		}
		fmt.Fprintf(&b, " %s %s nulls %s", k.X, dir, nulls)
	}
	return b.String()
}
