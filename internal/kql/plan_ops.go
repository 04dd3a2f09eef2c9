package kql

import (
	"fmt"
	"strings"

	"custos/internal/store"
)

// This file holds the plan nodes of the operators that are not plain
// row-wise or grouping steps: materialize, sample, top-nested, parse-kv,
// mv-apply, the evaluate plugins, find's pack_ column and render.

// Composite is implemented by plan nodes with inputs and expressions beyond
// the core nodes of plan.go; the optimizer and the executor walk them
// through it. Children are optimized on their own (no projection, filter or
// limit is pushed through the node).
type Composite interface {
	PlanNode
	Children() []PlanNode
	Exprs() []Scalar
}

// Materialize is a subplan executed at most once per query, its result
// cached and shared by every parent (materialize(), a tabular argument that
// cannot be rebound, and operators whose output schema depends on the data).
// Its Input is optimized when the node is built; the optimizer does not
// descend into it, so the same *Materialize may have several parents. Out,
// when set, is the schema discovered by running the subplan at bind time.
type Materialize struct {
	Input PlanNode
	Out   store.Schema
}

// Schema implements PlanNode.
func (m *Materialize) Schema() store.Schema {
	if m.Out != nil {
		return m.Out
	}
	return m.Input.Schema()
}

// RandomSample passes N rows of its input chosen uniformly at random (sample,
// sample-distinct).
type RandomSample struct {
	Input PlanNode
	N     int64
}

// Schema implements PlanNode.
func (s *RandomSample) Schema() store.Schema { return s.Input.Schema() }

// Children implements Composite.
func (s *RandomSample) Children() []PlanNode { return []PlanNode{s.Input} }

// Exprs implements Composite.
func (s *RandomSample) Exprs() []Scalar { return nil }

// NestedLevel is one clause of top-nested.
type NestedLevel struct {
	N      int64 // values kept at this level; -1 keeps all
	Of     NamedScalar
	Agg    *AggCall
	Others *Value // the "with others" value, nil when absent
	Asc    bool
}

// NestedTop is hierarchical aggregation and selection: at each level, the
// rows of each partition of the previous level are grouped by Of, the
// groups ranked by Agg and the top N kept (plus one "others" row when
// asked). The output has two columns per level.
type NestedTop struct {
	Input  PlanNode
	Levels []NestedLevel
}

// Schema implements PlanNode.
func (t *NestedTop) Schema() store.Schema {
	var out store.Schema
	for _, l := range t.Levels {
		out = append(out, store.Column{Name: l.Of.Name, Type: l.Of.X.Type()},
			store.Column{Name: l.Agg.Name, Type: l.Agg.T})
	}
	return out
}

// Children implements Composite.
func (t *NestedTop) Children() []PlanNode { return []PlanNode{t.Input} }

// Exprs implements Composite.
func (t *NestedTop) Exprs() []Scalar {
	var out []Scalar
	for _, l := range t.Levels {
		out = append(out, l.Of.X)
		out = append(out, l.Agg.Args...)
	}
	return out
}

// KVMode is how parse-kv finds pairs.
type KVMode int

// The parse-kv modes.
const (
	KVDelimited KVMode = iota // pair_delimiter and kv_delimiter given
	KVAnyDelim                // any non-alphanumeric character delimits
	KVRegex                   // a regex with two groups (key, value)
)

// ParseKV is parse-kv: the input's columns plus one column per listed key,
// extracted from X (row-wise).
type ParseKV struct {
	Input     PlanNode
	X         Scalar
	Keys      []store.Column
	Mode      KVMode
	PairDelim string
	KVDelim   string
	Quotes    []string // each one or two characters: open and close
	Escapes   []string
	Greedy    bool
	Regex     string
}

// Schema implements PlanNode.
func (p *ParseKV) Schema() store.Schema {
	out := append(store.Schema{}, p.Input.Schema()...)
	for _, k := range p.Keys {
		if i := out.Index(k.Name); i >= 0 {
			out[i] = k
		} else {
			out = append(out, k)
		}
	}
	return out
}

// Children implements Composite.
func (p *ParseKV) Children() []PlanNode { return []PlanNode{p.Input} }

// Exprs implements Composite.
func (p *ParseKV) Exprs() []Scalar { return []Scalar{p.X} }

// RowSource is the implicit input of a subquery applied per record
// (mv-apply): the enclosing operator supplies its rows.
type RowSource struct {
	Out store.Schema
}

// Schema implements PlanNode.
func (r *RowSource) Schema() store.Schema { return r.Out }

// ApplyEach is mv-apply: for each input row, Expand (whose input is a
// one-row table of the row) yields a subtable, Sub runs on it (reading it
// through Row), and the output is the row's Keep columns followed by Sub's
// columns, for each row of Sub's result.
type ApplyEach struct {
	Input  PlanNode
	Expand *Expand
	Row    *RowSource
	Sub    PlanNode
	Keep   []string
}

// Schema implements PlanNode.
func (m *ApplyEach) Schema() store.Schema {
	in := m.Input.Schema()
	sub := m.Sub.Schema()
	var out store.Schema
	for _, k := range m.Keep {
		if sub.Index(k) >= 0 {
			continue
		}
		out = append(out, in[in.Index(k)])
	}
	return append(out, sub...)
}

// Children implements Composite.
func (m *ApplyEach) Children() []PlanNode { return []PlanNode{m.Input, m.Sub} }

// Exprs implements Composite.
func (m *ApplyEach) Exprs() []Scalar {
	var out []Scalar
	for _, it := range m.Expand.Items {
		out = append(out, it.X)
	}
	return out
}

// BagUnpack is evaluate bag_unpack(Col, Prefix, Conflict, Ignored): the
// input's columns without Col, plus one column per top-level property of
// Col's bags (sorted by name, typed by their values). Declared, when set, is
// the output schema given after ':' and the output is conformed to it.
type BagUnpack struct {
	Input    PlanNode
	Col      string
	Prefix   string
	Conflict string // error, replace_source or keep_source
	Ignored  []string
	Declared store.Schema
}

// Schema implements PlanNode: the declared schema, or the part known
// without the data.
func (b *BagUnpack) Schema() store.Schema {
	if b.Declared != nil {
		return b.Declared
	}
	var out store.Schema
	for _, c := range b.Input.Schema() {
		if c.Name != b.Col {
			out = append(out, c)
		}
	}
	return out
}

// Children implements Composite.
func (b *BagUnpack) Children() []PlanNode { return []PlanNode{b.Input} }

// Exprs implements Composite.
func (b *BagUnpack) Exprs() []Scalar { return nil }

// Pivot is evaluate pivot(Col, Agg, Keys...): one row per distinct Keys
// tuple (all columns but Col and Agg's argument when Keys is empty), one
// column per distinct value of Col (sorted) holding Agg (count() by
// default) over the rows with that value. Declared as in BagUnpack.
type Pivot struct {
	Input    PlanNode
	Col      string
	Agg      *AggCall
	Keys     []string
	Declared store.Schema
}

// Schema implements PlanNode.
func (p *Pivot) Schema() store.Schema {
	if p.Declared != nil {
		return p.Declared
	}
	in := p.Input.Schema()
	out := make(store.Schema, 0, len(p.Keys))
	for _, k := range p.Keys {
		out = append(out, in[in.Index(k)])
	}
	return out
}

// Children implements Composite.
func (p *Pivot) Children() []PlanNode { return []PlanNode{p.Input} }

// Exprs implements Composite.
func (p *Pivot) Exprs() []Scalar {
	if p.Agg == nil {
		return nil
	}
	return p.Agg.Args
}

// Narrow is evaluate narrow(): every cell as a row (Row, Column, Value).
type Narrow struct {
	Input PlanNode
}

// Schema implements PlanNode.
func (n *Narrow) Schema() store.Schema {
	return store.Schema{{Name: "Row", Type: store.TypeLong}, {Name: "Column", Type: store.TypeString}, {Name: "Value", Type: store.TypeString}}
}

// Children implements Composite.
func (n *Narrow) Children() []PlanNode { return []PlanNode{n.Input} }

// Exprs implements Composite.
func (n *Narrow) Exprs() []Scalar { return nil }

// Pack adds (or replaces) column Name: a dynamic property bag of the
// columns Cols of each row, nulls and empty strings left out (find's
// pack_ column).
type Pack struct {
	Input PlanNode
	Name  string
	Cols  []string
}

// Schema implements PlanNode.
func (p *Pack) Schema() store.Schema {
	out := append(store.Schema{}, p.Input.Schema()...)
	c := store.Column{Name: p.Name, Type: store.TypeDynamic}
	if i := out.Index(p.Name); i >= 0 {
		out[i] = c
	} else {
		out = append(out, c)
	}
	return out
}

// Children implements Composite.
func (p *Pack) Children() []PlanNode { return []PlanNode{p.Input} }

// Exprs implements Composite.
func (p *Pack) Exprs() []Scalar { return nil }

// Visualization is the render operator's request, returned to clients that
// ask for it (Prefer: include-render=true) in the Log Analytics "render"
// object shape.
type Visualization struct {
	Visualization string   `json:"visualization"`
	Title         string   `json:"title"`
	XColumn       string   `json:"xcolumn,omitempty"`
	Series        []string `json:"series"`
	YColumns      []string `json:"ycolumns"`
	XTitle        string   `json:"xtitle,omitempty"`
	YTitle        string   `json:"ytitle,omitempty"`
	Legend        string   `json:"legend,omitempty"`
	YSplit        string   `json:"ysplit,omitempty"`
	Accumulate    bool     `json:"accumulate"`
	IsQuerySorted bool     `json:"isQuerySorted"`
	Kind          string   `json:"kind"`
	Ymin          string   `json:"ymin,omitempty"`
	Ymax          string   `json:"ymax,omitempty"`
	XAxis         string   `json:"xaxis,omitempty"`
	YAxis         string   `json:"yaxis,omitempty"`
	Annotation    string   `json:"annotation"`
	By            []string `json:"by"`
}

func (*Materialize) planNode()  {}
func (*RandomSample) planNode() {}
func (*NestedTop) planNode()    {}
func (*ParseKV) planNode()      {}
func (*RowSource) planNode()    {}
func (*ApplyEach) planNode()    {}
func (*BagUnpack) planNode()    {}
func (*Pivot) planNode()        {}
func (*Narrow) planNode()       {}
func (*Pack) planNode()         {}

var (
	_ Composite = (*RandomSample)(nil)
	_ Composite = (*NestedTop)(nil)
	_ Composite = (*ParseKV)(nil)
	_ Composite = (*ApplyEach)(nil)
	_ Composite = (*BagUnpack)(nil)
	_ Composite = (*Pivot)(nil)
	_ Composite = (*Narrow)(nil)
	_ Composite = (*Pack)(nil)
)

// explainComposite renders the nodes of this file for Explain.
func explainComposite(b *strings.Builder, n PlanNode, ind string) bool {
	switch n := n.(type) {
	case *Materialize:
		fmt.Fprintf(b, "%smaterialize\n", ind)
	case *RandomSample:
		fmt.Fprintf(b, "%ssample %d\n", ind, n.N)
	case *NestedTop:
		fmt.Fprintf(b, "%stop-nested", ind)
		for _, l := range n.Levels {
			fmt.Fprintf(b, " [%d of %s=%s by %s=%s(", l.N, QuoteName(l.Of.Name), l.Of.X, QuoteName(l.Agg.Name), l.Agg.Fn)
			for i, a := range l.Agg.Args {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString(a.String())
			}
			b.WriteString(")]")
		}
		b.WriteByte('\n')
	case *ParseKV:
		fmt.Fprintf(b, "%sparse-kv %s\n", ind, n.X)
	case *RowSource:
		fmt.Fprintf(b, "%srow\n", ind)
	case *ApplyEach:
		fmt.Fprintf(b, "%smv-apply\n", ind)
	case *BagUnpack:
		fmt.Fprintf(b, "%sbag_unpack %s\n", ind, QuoteName(n.Col))
	case *Pivot:
		fmt.Fprintf(b, "%spivot %s\n", ind, QuoteName(n.Col))
	case *Narrow:
		fmt.Fprintf(b, "%snarrow\n", ind)
	case *Pack:
		fmt.Fprintf(b, "%spack %s\n", ind, QuoteName(n.Name))
	case *PartitionEach:
		fmt.Fprintf(b, "%spartition by %s\n", ind, QuoteName(n.Key))
	default:
		return false
	}
	return true
}

// PartitionEach is partition by Key (subquery): the subquery runs on the
// rows of each distinct Key value (reading them through Row), and the
// results are concatenated (partitions in order of first appearance).
// In the legacy form, partition by Key { subquery with its own source },
// Row is nil and Slot is set: the subquery runs once per distinct key with
// the key in Slot (a PartitionKey in its expressions).
type PartitionEach struct {
	Input PlanNode
	Key   string
	Row   *RowSource
	Sub   PlanNode
	Slot  *KeySlot
}

// Schema implements PlanNode.
func (p *PartitionEach) Schema() store.Schema { return p.Sub.Schema() }

// Children implements Composite.
func (p *PartitionEach) Children() []PlanNode { return []PlanNode{p.Input, p.Sub} }

// Exprs implements Composite.
func (p *PartitionEach) Exprs() []Scalar { return nil }

func (*PartitionEach) planNode() {}

var _ Composite = (*PartitionEach)(nil)
