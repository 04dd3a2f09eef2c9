package engine

import (
	"encoding/binary"
	"encoding/hex"
	"math"
	"strings"

	"github.com/cespare/xxhash/v2"

	"custos/internal/kql"
	"custos/internal/store"
)

// dotnetEpochTicks is 1970-01-01 in .NET ticks (since 0001-01-01), the
// origin Kusto hashes datetimes from.
const dotnetEpochTicks = 621_355_968_000_000_000

// kustoHash is Kusto's hash()/hash_xxhash64(): xxhash64 of the value's
// binary form — UTF-8 for strings (and the JSON text of dynamic values),
// the 8-byte little-endian .NET ticks for datetimes (from 0001-01-01) and
// timespans, 8-byte little-endian integers and IEEE doubles, one byte for a
// bool, and .NET's 16-byte layout for a guid. The string and datetime forms
// reproduce the Kusto documentation's examples; the others follow the same
// rule (the documentation gives no example for them).
func kustoHash(v kql.Value, buf []byte) uint64 {
	buf = buf[:0]
	switch v.Type {
	case store.TypeString, store.TypeDynamic:
		return xxhash.Sum64String(v.Str)
	case store.TypeBool:
		b := byte(0)
		if v.Bool {
			b = 1
		}
		buf = append(buf, b)
	case store.TypeInt:
		buf = binary.LittleEndian.AppendUint32(buf, uint32(int32(v.Int)))
	case store.TypeLong, store.TypeTimespan:
		buf = binary.LittleEndian.AppendUint64(buf, uint64(v.Int))
	case store.TypeDatetime:
		buf = binary.LittleEndian.AppendUint64(buf, uint64(v.Int+dotnetEpochTicks))
	case store.TypeReal:
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(v.Real))
	case store.TypeDecimal:
		// Equal decimals hash alike whatever their scale (1.1 and 1.10):
		// the canonical digits without trailing fractional zeros.
		if d, ok := decimalValue(v); ok {
			return xxhash.Sum64String(d.trimZeros(0).String())
		}
		return xxhash.Sum64String(v.String())
	case store.TypeGUID:
		raw, err := hex.DecodeString(strings.ReplaceAll(v.Str, "-", ""))
		if err != nil || len(raw) != 16 {
			return xxhash.Sum64String(v.Str)
		}
		// .NET Guid.ToByteArray: the first three groups little-endian.
		buf = append(buf, raw[3], raw[2], raw[1], raw[0], raw[5], raw[4], raw[7], raw[6])
		buf = append(buf, raw[8:]...)
	default:
		return xxhash.Sum64String(v.String())
	}
	return xxhash.Sum64(buf)
}

// evalHash evaluates hash(x [, mod]): null for a null x or a mod that is
// null or not positive; otherwise the hash as a long, or its remainder
// (0 .. mod-1) when mod is given.
func evalHash(t store.ColumnType, args []*store.Vector, n int) *store.Vector {
	var buf [16]byte
	return rowFunc(t, args, n, func(v []kql.Value) kql.Value {
		if v[0].Null {
			return kql.NullValue(t)
		}
		h := kustoHash(v[0], buf[:])
		if len(v) == 2 {
			if v[1].Null || v[1].Int <= 0 {
				return kql.NullValue(t)
			}
			return kql.Value{Int: int64(h % uint64(v[1].Int))}
		}
		return kql.Value{Int: int64(h)}
	})
}
