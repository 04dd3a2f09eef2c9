package export

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"custos/internal/store"
)

// exportSchema is the schema of the exported records of a table: the
// batch's columns plus TenantId and Type when the store keeps them virtual.
func exportSchema(s store.Schema) store.Schema {
	out := append(store.Schema(nil), s...)
	if out.Index("TenantId") < 0 {
		out = append(out, store.Column{Name: "TenantId", Type: store.TypeString})
	}
	if out.Index("Type") < 0 {
		out = append(out, store.Column{Name: "Type", Type: store.TypeString})
	}
	return out
}

// virtualValue returns the constant value of TenantId and Type, which the
// store may keep virtual.
func virtualValue(name, workspaceID, table string) (string, bool) {
	switch name {
	case "TenantId":
		return workspaceID, true
	case "Type":
		return table, true
	}
	return "", false
}

// appendDatetime formats ticks as Kusto does on the wire:
// 2006-01-02T15:04:05.0000000Z.
func appendDatetime(dst []byte, ticks int64) []byte {
	t := store.TimeFromTicks(ticks)
	dst = t.AppendFormat(dst, "2006-01-02T15:04:05")
	frac := ticks % store.TicksPerSecond
	if frac < 0 {
		frac += store.TicksPerSecond
	}
	dst = append(dst, '.')
	s := strconv.FormatInt(frac, 10)
	for i := len(s); i < 7; i++ {
		dst = append(dst, '0')
	}
	dst = append(dst, s...)
	return append(dst, 'Z')
}

// appendTimespan formats ticks as Kusto's [-][d.]hh:mm:ss[.fffffff].
func appendTimespan(dst []byte, ticks int64) []byte {
	if ticks < 0 {
		dst = append(dst, '-')
		if ticks == math.MinInt64 {
			ticks++ // cannot negate; off by 100 ns at the extreme
		}
		ticks = -ticks
	}
	days := ticks / store.TicksPerDay
	rem := ticks % store.TicksPerDay
	if days > 0 {
		dst = strconv.AppendInt(dst, days, 10)
		dst = append(dst, '.')
	}
	d := time.Duration(rem * 100)
	dst = fmt.Appendf(dst, "%02d:%02d:%02d", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60)
	if frac := rem % store.TicksPerSecond; frac != 0 {
		dst = fmt.Appendf(dst, ".%07d", frac)
	}
	return dst
}

// encodeJSONLines writes the rows of b as JSON lines, one object per row
// with the columns in schema order, as Azure's export writes them.
func encodeJSONLines(dst *bytes.Buffer, b *store.Batch, workspaceID, table string) {
	schema := exportSchema(b.Schema)
	var line []byte
	for i := 0; i < b.Len; i++ {
		line = appendRecord(line[:0], schema, b, i, workspaceID, table)
		line = append(line, '\n')
		dst.Write(line)
	}
}

// appendRecord appends row i as a JSON object.
func appendRecord(dst []byte, schema store.Schema, b *store.Batch, i int, workspaceID, table string) []byte {
	dst = append(dst, '{')
	for j, c := range schema {
		if j > 0 {
			dst = append(dst, ',')
		}
		name, _ := json.Marshal(c.Name)
		dst = append(dst, name...)
		dst = append(dst, ':')
		if v, ok := virtualValue(c.Name, workspaceID, table); ok && b.Schema.Index(c.Name) < 0 {
			q, _ := json.Marshal(v)
			dst = append(dst, q...)
			continue
		}
		dst = appendValue(dst, b.Cols[j], i)
	}
	return append(dst, '}')
}

func appendValue(dst []byte, v *store.Vector, i int) []byte {
	if v.IsNull(i) {
		if v.Type == store.TypeString {
			return append(dst, `""`...)
		}
		return append(dst, "null"...)
	}
	switch v.Type {
	case store.TypeBool:
		return strconv.AppendBool(dst, v.Bool[i])
	case store.TypeInt, store.TypeLong:
		return strconv.AppendInt(dst, v.Int[i], 10)
	case store.TypeReal, store.TypeDecimal:
		f := v.Real[i]
		if math.IsNaN(f) || math.IsInf(f, 0) {
			q, _ := json.Marshal(strconv.FormatFloat(f, 'g', -1, 64))
			return append(dst, q...)
		}
		return strconv.AppendFloat(dst, f, 'g', -1, 64)
	case store.TypeDatetime:
		dst = append(dst, '"')
		dst = appendDatetime(dst, v.Int[i])
		return append(dst, '"')
	case store.TypeTimespan:
		dst = append(dst, '"')
		dst = appendTimespan(dst, v.Int[i])
		return append(dst, '"')
	case store.TypeDynamic:
		s := v.Str[i]
		if s == "" || !json.Valid([]byte(s)) {
			return append(dst, "null"...)
		}
		return append(dst, s...)
	default: // string, guid
		q, _ := json.Marshal(v.Str[i])
		return append(dst, q...)
	}
}

// parquetNode maps a column type to a Parquet leaf.
func parquetNode(t store.ColumnType) parquet.Node {
	switch t {
	case store.TypeBool:
		return parquet.Leaf(parquet.BooleanType)
	case store.TypeInt, store.TypeLong, store.TypeTimespan:
		return parquet.Int(64)
	case store.TypeReal, store.TypeDecimal:
		return parquet.Leaf(parquet.DoubleType)
	case store.TypeDatetime:
		return parquet.Timestamp(parquet.Microsecond)
	case store.TypeDynamic:
		return parquet.JSON()
	default:
		return parquet.String()
	}
}

// encodeParquet writes b as one Parquet file (zstd-compressed, every column
// optional). Datetimes are microsecond UTC timestamps, timespans int64
// ticks, dynamic values JSON.
func encodeParquet(dst *bytes.Buffer, b *store.Batch, workspaceID, table string) error {
	schema := exportSchema(b.Schema)
	group := parquet.Group{}
	for _, c := range schema {
		group[c.Name] = parquet.Optional(parquetNode(c.Type))
	}
	ps := parquet.NewSchema(table, group)
	leaf := make([]int, len(schema))
	for j, c := range schema {
		lc, ok := ps.Lookup(c.Name)
		if !ok {
			return fmt.Errorf("export: parquet schema lost column %s", c.Name)
		}
		leaf[j] = lc.ColumnIndex
	}
	w := parquet.NewWriter(dst, ps, parquet.Compression(&zstd.Codec{}))
	rows := make([]parquet.Row, 0, 256)
	flush := func() error {
		if _, err := w.WriteRows(rows); err != nil {
			return fmt.Errorf("export: parquet: %w", err)
		}
		rows = rows[:0]
		return nil
	}
	for i := 0; i < b.Len; i++ {
		row := make(parquet.Row, len(schema))
		for j, c := range schema {
			var val parquet.Value
			if s, ok := virtualValue(c.Name, workspaceID, table); ok && b.Schema.Index(c.Name) < 0 {
				val = parquet.ByteArrayValue([]byte(s)).Level(0, 1, leaf[j])
			} else {
				val = parquetValue(b.Cols[j], i).Level(0, 1, leaf[j])
				if b.Cols[j].IsNull(i) {
					val = parquet.NullValue().Level(0, 0, leaf[j])
				}
			}
			row[leaf[j]] = val
		}
		rows = append(rows, row)
		if len(rows) == cap(rows) {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("export: parquet: %w", err)
	}
	return nil
}

func parquetValue(v *store.Vector, i int) parquet.Value {
	switch v.Type {
	case store.TypeBool:
		return parquet.BooleanValue(v.Bool[i])
	case store.TypeInt, store.TypeLong, store.TypeTimespan:
		return parquet.Int64Value(v.Int[i])
	case store.TypeDatetime:
		return parquet.Int64Value(v.Int[i] / store.TicksPerMicrosecond)
	case store.TypeReal, store.TypeDecimal:
		return parquet.DoubleValue(v.Real[i])
	case store.TypeDynamic:
		s := v.Str[i]
		if s == "" || !json.Valid([]byte(s)) {
			s = "null"
		}
		return parquet.ByteArrayValue([]byte(s))
	default:
		return parquet.ByteArrayValue([]byte(v.Str[i]))
	}
}
