package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"custos/internal/kql"
	"custos/internal/store"
)

// maxPluginColumns bounds the columns bag_unpack and pivot may create.
const maxPluginColumns = 10_000

// conformTo lays the columns of b out as schema: a column of b with the
// same name is converted to the declared type; a missing column is null.
func conformTo(schema store.Schema, b *store.Batch) *store.Batch {
	out := &store.Batch{Schema: schema, Cols: make([]*store.Vector, len(schema)), Len: b.Len}
	for i, c := range schema {
		v := b.Col(c.Name)
		switch {
		case v == nil:
			out.Cols[i] = nullVector(c.Type, b.Len)
		case v.Type == c.Type:
			out.Cols[i] = v
		default:
			out.Cols[i] = convertVector(v, c.Type, b.Len)
		}
	}
	return out
}

// jsonKind is the KQL type of a decoded JSON value.
func jsonKind(v any) store.ColumnType {
	switch v := v.(type) {
	case json.Number:
		if _, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return store.TypeLong
		}
		return store.TypeReal
	case string:
		return store.TypeString
	case bool:
		return store.TypeBool
	}
	return store.TypeDynamic
}

// bagUnpack runs evaluate bag_unpack.
func (x *executor) bagUnpack(ctx context.Context, n *kql.BagUnpack) ([]*store.Batch, error) {
	b, sz, err := x.input(ctx, n.Input)
	defer x.release(sz)
	if err != nil || b == nil {
		return nil, err
	}
	src := b.Col(n.Col)
	bags := make([]map[string]any, b.Len)
	types := map[string]store.ColumnType{}
	var keys []string
	for r := 0; r < b.Len; r++ {
		if src.IsNull(r) {
			continue
		}
		v, ok := decodeJSON(src.Str[r])
		if !ok {
			continue
		}
		m, ok := v.(map[string]any)
		if !ok {
			continue
		}
		bags[r] = m
		for k, val := range m {
			if val == nil || slices.Contains(n.Ignored, k) {
				continue
			}
			t := jsonKind(val)
			old, seen := types[k]
			switch {
			case !seen:
				types[k] = t
				keys = append(keys, k)
				if len(keys) > maxPluginColumns {
					return nil, &LimitError{Limit: "columns", Max: maxPluginColumns, Msg: fmt.Sprintf("bag_unpack would create more than %d columns", maxPluginColumns)}
				}
			case old != t:
				types[k] = store.TypeDynamic
			}
		}
	}
	slices.Sort(keys)
	var schema store.Schema
	for _, c := range b.Schema {
		if c.Name != n.Col {
			schema = append(schema, c)
		}
	}
	var slots []string
	for _, k := range keys {
		name := n.Prefix + k
		if i := schema.Index(name); i >= 0 {
			switch n.Conflict {
			case "keep_source":
				continue
			case "replace_source":
				schema = slices.Delete(schema, i, i+1)
			default:
				return nil, &ExecError{Msg: fmt.Sprintf("bag_unpack: the property '%s' collides with the existing column '%s'; use columnsConflict 'replace_source' or 'keep_source', or a prefix", k, name)}
			}
		}
		schema = append(schema, store.Column{Name: name, Type: types[k]})
		slots = append(slots, k)
	}
	out := &store.Batch{Schema: schema, Cols: make([]*store.Vector, len(schema)), Len: b.Len}
	base := len(schema) - len(slots)
	for i, c := range schema[:base] {
		out.Cols[i] = b.Col(c.Name)
	}
	for j, k := range slots {
		t := types[k]
		v := newVector(t, b.Len)
		if t != store.TypeString {
			v.Nulls = make([]bool, b.Len)
		}
		for r, m := range bags {
			val, ok := m[k]
			if !ok || val == nil {
				if t != store.TypeString {
					v.Nulls[r] = true
				}
				continue
			}
			switch t {
			case store.TypeLong:
				v.Int[r], _ = strconv.ParseInt(string(val.(json.Number)), 10, 64)
			case store.TypeReal:
				v.Real[r], _ = strconv.ParseFloat(string(val.(json.Number)), 64)
			case store.TypeString:
				v.Str[r] = val.(string)
			case store.TypeBool:
				v.Bool[r] = val.(bool)
			default:
				v.Str[r] = encodeJSON(val)
			}
		}
		out.Cols[base+j] = v
	}
	if n.Declared != nil {
		if out.Schema.Index(n.Col) < 0 {
			out.Schema = append(out.Schema, b.Schema[b.Schema.Index(n.Col)])
			out.Cols = append(out.Cols, src)
		}
		out = conformTo(n.Declared, out)
	}
	return []*store.Batch{out}, nil
}

// pivot runs evaluate pivot: one row per distinct key tuple (in order of
// first appearance), one column per distinct value of the pivot column
// (sorted by its text) with the aggregation over the rows having it.
func (x *executor) pivot(ctx context.Context, n *kql.Pivot) ([]*store.Batch, error) {
	b, sz, err := x.input(ctx, n.Input)
	defer x.release(sz)
	if err != nil || b == nil {
		return nil, err
	}
	col := b.Col(n.Col)
	keyVecs := make([]*store.Vector, len(n.Keys))
	for i, k := range n.Keys {
		keyVecs[i] = b.Col(k)
	}
	args := make([]*store.Vector, len(n.Agg.Args))
	for i, a := range n.Agg.Args {
		if args[i], err = x.ev.eval(a, b); err != nil {
			return nil, err
		}
	}
	groupOf := map[string]int32{}
	var firsts []int32
	gids := make([]int32, b.Len)
	valueIdx := map[string]int{}
	var values []string
	rowsOf := map[int][]int32{}
	for r := 0; r < b.Len; r++ {
		key := ""
		for _, v := range keyVecs {
			k := valueKey(valueAt(v, r))
			key += strconv.Itoa(len(k)) + ":" + k
		}
		g, ok := groupOf[key]
		if !ok {
			g = int32(len(firsts))
			groupOf[key] = g
			firsts = append(firsts, int32(r))
		}
		gids[r] = g
		name := valueAt(col, r).String()
		if col.Type == store.TypeDynamic {
			name, _ = dynScalarText(col.Str[r])
		}
		vi, ok := valueIdx[name]
		if !ok {
			vi = len(values)
			valueIdx[name] = vi
			values = append(values, name)
			if len(values) > maxPluginColumns {
				return nil, &LimitError{Limit: "columns", Max: maxPluginColumns, Msg: fmt.Sprintf("pivot would create more than %d columns", maxPluginColumns)}
			}
		}
		rowsOf[vi] = append(rowsOf[vi], int32(r))
	}
	order := make([]int, len(values))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, c int) int {
		if values[a] < values[c] {
			return -1
		}
		if values[a] > values[c] {
			return 1
		}
		return 0
	})
	groups := len(firsts)
	var schema store.Schema
	var cols []*store.Vector
	for i, k := range n.Keys {
		schema = append(schema, b.Schema[b.Schema.Index(k)])
		cols = append(cols, gather(keyVecs[i], firsts))
	}
	for _, vi := range order {
		name := values[vi]
		if name == "" {
			name = "Column1"
		}
		if schema.Index(name) >= 0 {
			return nil, &ExecError{Msg: fmt.Sprintf("pivot: the value '%s' collides with an existing column", name)}
		}
		rows := rowsOf[vi]
		st := newAggState(n.Agg)
		g := make([]int32, len(rows))
		gathered := make([]*store.Vector, len(args))
		for j, a := range args {
			gathered[j] = gather(a, rows)
		}
		for j, r := range rows {
			g[j] = gids[r]
		}
		st.update(g, gathered, groups)
		v, err := aggResult(st, groups)
		if err != nil {
			return nil, err
		}
		schema = append(schema, store.Column{Name: name, Type: n.Agg.T})
		cols = append(cols, retype(v, n.Agg.T))
	}
	out := &store.Batch{Schema: schema, Cols: cols, Len: groups}
	if n.Declared != nil {
		out = conformTo(n.Declared, out)
	}
	return []*store.Batch{out}, nil
}

// narrow runs evaluate narrow(): one (Row, Column, Value) row per cell.
func (x *executor) narrow(ctx context.Context, n *kql.Narrow) ([]*store.Batch, error) {
	b, sz, err := x.input(ctx, n.Input)
	defer x.release(sz)
	if err != nil || b == nil {
		return nil, err
	}
	cells := b.Len * len(b.Cols)
	grow := int64(cells) * 48
	if err := x.reserve(grow); err != nil {
		x.release(grow)
		return nil, err
	}
	defer x.release(grow)
	rowV := emptyVector(store.TypeLong, cells)
	colV := emptyVector(store.TypeString, cells)
	valV := emptyVector(store.TypeString, cells)
	for r := 0; r < b.Len; r++ {
		for i, c := range b.Schema {
			rowV.Int = append(rowV.Int, int64(r))
			colV.Str = append(colV.Str, c.Name)
			v := b.Cols[i]
			s := ""
			if !v.IsNull(r) {
				if v.Type == store.TypeDynamic {
					s = v.Str[r]
				} else {
					s = valueAt(v, r).String()
				}
			}
			valV.Str = append(valV.Str, s)
		}
	}
	if cells == 0 {
		return nil, nil
	}
	return []*store.Batch{{Schema: n.Schema(), Cols: []*store.Vector{rowV, colV, valV}, Len: cells}}, nil
}
