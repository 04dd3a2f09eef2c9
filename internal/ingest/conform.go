package ingest

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"custos/internal/store"
)

// storeOwned are the system columns the store sets itself; a transform's
// values for them are dropped, as Azure ignores them.
var storeOwned = map[string]bool{"_TimeReceived": true, "_ItemId": true, "TenantId": true, "Type": true}

// conform projects b onto the destination table's schema: columns the table
// lacks and store-owned system columns are dropped (Azure drops them too), and
// values whose type differs from the table column's are converted where Kusto
// would convert them (int↔long, numbers→real, anything→string, string→typed).
// A value that cannot convert is an error naming the record and column.
func conform(b *store.Batch, table store.Schema, maxField int) (*store.Batch, error) {
	out := &store.Batch{Len: b.Len}
	for i, c := range b.Schema {
		if storeOwned[c.Name] {
			continue
		}
		ti := table.Index(c.Name)
		if ti < 0 {
			continue
		}
		want := table[ti].Type
		v := b.Cols[i]
		if c.Type != want {
			cv, err := convertVector(v, b.Len, want, maxField)
			if err != nil {
				return nil, fmt.Errorf("column '%s' (%s) cannot be stored as %s: %w", c.Name, c.Type, want, err)
			}
			v = cv
		}
		out.Schema = append(out.Schema, store.Column{Name: c.Name, Type: want})
		out.Cols = append(out.Cols, v)
	}
	return out, nil
}

// convertVector converts n values of v to type to. String conversions go
// through the same rules as ingestion bodies.
func convertVector(v *store.Vector, n int, to store.ColumnType, maxField int) (*store.Vector, error) {
	out := &store.Vector{Type: to}
	for i := 0; i < n; i++ {
		if v.IsNull(i) && v.Type != store.TypeString {
			appendNull(out)
			continue
		}
		raw, err := rawValue(v, i)
		if err != nil {
			return nil, err
		}
		if err := appendRaw(out, raw, maxField); err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
	}
	return out, nil
}

// rawValue renders value i of v as the JSON an ingestion body would carry for it.
func rawValue(v *store.Vector, i int) ([]byte, error) {
	switch v.Type {
	case store.TypeBool:
		return strconv.AppendBool(nil, v.Bool[i]), nil
	case store.TypeInt, store.TypeLong:
		return strconv.AppendInt(nil, v.Int[i], 10), nil
	case store.TypeReal, store.TypeDecimal:
		f := v.Real[i]
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return json.Marshal(strconv.FormatFloat(f, 'g', -1, 64))
		}
		return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
	case store.TypeDatetime:
		return json.Marshal(store.TimeFromTicks(v.Int[i]).Format(time.RFC3339Nano))
	case store.TypeTimespan:
		return json.Marshal(formatTimespan(v.Int[i]))
	case store.TypeDynamic:
		return []byte(v.Str[i]), nil
	case store.TypeString, store.TypeGUID:
		return json.Marshal(v.Str[i])
	}
	return nil, fmt.Errorf("unsupported type %s", v.Type)
}

// formatTimespan renders ticks as Kusto's [-][d.]hh:mm:ss[.fffffff].
func formatTimespan(t int64) string {
	neg := t < 0
	u := uint64(t)
	if neg {
		u = uint64(-t)
	}
	frac := u % store.TicksPerSecond
	secs := u / store.TicksPerSecond
	d, h, m, s := secs/86400, secs/3600%24, secs/60%60, secs%60
	out := ""
	if neg {
		out = "-"
	}
	if d > 0 {
		out += strconv.FormatUint(d, 10) + "."
	}
	out += fmt.Sprintf("%02d:%02d:%02d", h, m, s)
	if frac != 0 {
		out += fmt.Sprintf(".%07d", frac)
	}
	return out
}
