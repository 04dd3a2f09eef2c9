package engine

import (
	"context"
	"fmt"
	"math"
	"strings"

	"custos/internal/kql"
	"custos/internal/store"
)

// maxSeriesBins caps the bins of one make-series (Kusto's own limit is of
// the same order); the cells of all series are also charged to the query's
// working memory.
const maxSeriesBins = 1_000_000

// series runs a SeriesPack over its aggregated input: one output row per key
// tuple, in order of first appearance.
func (x *executor) series(ctx context.Context, n *kql.SeriesPack) ([]*store.Batch, error) {
	in, err := x.run(ctx, n.Input)
	if err != nil {
		return nil, err
	}
	ins := n.Input.Schema()
	b := concatBatches(ins, in)
	if b == nil {
		b = emptyBatch(ins)
	}
	step, err := x.ev.evalConst(n.Step)
	if err != nil {
		return nil, err
	}
	var from, to kql.Value
	if n.From != nil {
		if from, err = x.ev.evalConst(n.From); err != nil {
			return nil, err
		}
	}
	if n.To != nil {
		if to, err = x.ev.evalConst(n.To); err != nil {
			return nil, err
		}
	}
	if step.Null || (n.From != nil && from.Null) || (n.To != nil && to.Null) {
		return nil, &ExecError{Msg: "make-series: from, to and step must not be null"}
	}
	bins := b.Col(n.Bin)
	real := kql.IsRealHeld(bins.Type)
	num := func(v kql.Value) float64 {
		if kql.IsRealHeld(v.Type) {
			return v.Real
		}
		return float64(v.Int)
	}
	stepF := num(step)
	if !(stepF > 0) || math.IsInf(stepF, 0) {
		return nil, &ExecError{Msg: "make-series: step must be positive"}
	}
	binAt := func(i int) float64 {
		if real {
			return bins.Real[i]
		}
		return float64(bins.Int[i])
	}
	// start is the first bin in the units of the bin column: 0 (an offset)
	// with from, else the smallest bin with data.
	start, hasData := 0.0, false
	last := 0.0
	for i := 0; i < b.Len; i++ {
		if bins.IsNull(i) {
			continue
		}
		v := binAt(i)
		if !hasData || v > last {
			last = v
		}
		if n.From == nil && (!hasData || v < start) {
			start = v
		}
		hasData = true
	}
	// kind=nonempty without by: one row of defaults even with no data.
	fill := n.NonEmpty && len(n.Keys) == 0 && !hasData && n.From != nil && n.To != nil
	var nBins float64
	switch {
	case n.To != nil && n.From != nil:
		nBins = math.Ceil((num(to) - num(from)) / stepF)
	case n.To != nil:
		if !hasData {
			return nil, nil
		}
		nBins = math.Ceil((num(to) - start) / stepF)
	case hasData:
		nBins = math.Floor((last-start)/stepF) + 1
	default:
		return nil, nil
	}
	// A decimal axis lays its bins out exactly (decimal.go).
	dec, decOK := decSeries{}, false
	if bins.Type == store.TypeDecimal && n.AxisT == store.TypeDecimal {
		dec, decOK = newDecSeries(bins, b.Len, step, from, to, n.From != nil, n.To != nil)
		if decOK {
			nBins = dec.nBins(n.From != nil, n.To != nil)
		}
	}
	if nBins < 0 || math.IsNaN(nBins) {
		nBins = 0
	}
	if nBins > maxSeriesBins {
		return nil, &LimitError{Limit: "range", Max: maxSeriesBins, Msg: fmt.Sprintf("make-series would produce more than %d bins", maxSeriesBins)}
	}
	nb := int(nBins)

	keys := make([]*store.Vector, len(n.Keys))
	for i, k := range n.Keys {
		keys[i] = b.Col(k)
	}
	aggs := make([]*store.Vector, len(n.Aggs))
	for i, a := range n.Aggs {
		aggs[i] = b.Col(a.Name)
	}
	groups := map[string]int{}
	var firstRow []int32
	var cells [][][]kql.Value // group → agg → bin
	var kb []byte
	for i := 0; i < b.Len; i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		kb = kb[:0]
		for _, k := range keys {
			kb = appendKey(kb, k, i)
		}
		g, ok := groups[string(kb)]
		if !ok {
			sz := int64(nb) * int64(len(n.Aggs)) * 48
			if err := x.reserve(sz); err != nil {
				return nil, err
			}
			defer x.release(sz)
			g = len(firstRow)
			groups[string(kb)] = g
			firstRow = append(firstRow, int32(i))
			row := make([][]kql.Value, len(n.Aggs))
			for a := range row {
				row[a] = make([]kql.Value, nb)
				for j := range row[a] {
					row[a][j] = n.Aggs[a].Default
				}
			}
			cells = append(cells, row)
		}
		if bins.IsNull(i) {
			continue
		}
		var j int
		if decOK {
			j = dec.index(bins, i)
		} else {
			j = int(math.Round((binAt(i) - start) / stepF))
		}
		if j < 0 || j >= nb {
			continue
		}
		for a, v := range aggs {
			cells[g][a][j] = valueAt(v, i)
		}
	}
	if fill {
		row := make([][]kql.Value, len(n.Aggs))
		for a := range row {
			row[a] = make([]kql.Value, nb)
			for j := range row[a] {
				row[a][j] = n.Aggs[a].Default
			}
		}
		cells = append(cells, row)
		firstRow = append(firstRow, -1)
	}
	if len(firstRow) == 0 {
		return nil, nil
	}
	schema := n.Schema()
	out := &store.Batch{Schema: schema, Len: len(firstRow)}
	for _, k := range keys {
		out.Cols = append(out.Cols, gather(k, firstRow))
	}
	var sb strings.Builder
	array := func(vals []kql.Value) string {
		sb.Reset()
		sb.WriteByte('[')
		for i, v := range vals {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(jsonValue(v))
		}
		sb.WriteByte(']')
		return sb.String()
	}
	for a := range n.Aggs {
		col := newVector(store.TypeDynamic, len(firstRow))
		for g := range cells {
			col.Str[g] = array(cells[g][a])
		}
		out.Cols = append(out.Cols, col)
	}
	// The axis: bin starts in the axis type.
	axis := make([]kql.Value, nb)
	for j := range axis {
		off := start + float64(j)*stepF
		v := kql.Value{Type: n.AxisT}
		switch {
		case kql.IsRealHeld(n.AxisT):
			v.Real = off
			if n.From != nil {
				v.Real += num(from)
			}
		default:
			v.Int = int64(math.Round(off))
			if n.From != nil {
				v.Int += from.Int
				if kql.IsRealHeld(from.Type) {
					v.Int = int64(math.Round(off + from.Real))
				}
			}
		}
		if decOK {
			v = dec.axis(j)
		}
		axis[j] = v
	}
	ax := newVector(store.TypeDynamic, len(firstRow))
	s := array(axis)
	for g := range ax.Str {
		ax.Str[g] = s
	}
	out.Cols = append(out.Cols, ax)
	return []*store.Batch{out}, nil
}
