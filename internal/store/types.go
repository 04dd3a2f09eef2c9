package store

import (
	"context"
	"math"
	"time"
)

// ColumnType is the KQL type of a stored or computed column. The names are
// the KQL type names that the query API returns on the wire.
type ColumnType uint8

// Column types. Decimal is carried as a float64 (a documented limitation).
const (
	TypeInvalid ColumnType = iota
	TypeBool
	TypeInt      // 32-bit, held in Vector.Int
	TypeLong     // 64-bit, held in Vector.Int
	TypeReal     // float64, held in Vector.Real
	TypeDecimal  // held in Vector.Real
	TypeDatetime // Ticks since the Unix epoch, held in Vector.Int
	TypeTimespan // Ticks, held in Vector.Int
	TypeString   // held in Vector.Str; never null (Kusto strings are empty, not null)
	TypeGUID     // canonical lower-case text, held in Vector.Str
	TypeDynamic  // compact JSON text, held in Vector.Str
)

var typeNames = [...]string{
	TypeInvalid: "invalid", TypeBool: "bool", TypeInt: "int", TypeLong: "long", TypeReal: "real",
	TypeDecimal: "decimal", TypeDatetime: "datetime", TypeTimespan: "timespan", TypeString: "string",
	TypeGUID: "guid", TypeDynamic: "dynamic",
}

// String returns the KQL name of the type ("long", "datetime", ...).
func (t ColumnType) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "invalid"
}

// ParseColumnType accepts the type names of KQL, table schemas and DCR stream
// declarations ("boolean" is the DCR spelling of bool, "double" Kusto's alias of real).
func ParseColumnType(s string) (ColumnType, bool) {
	switch s {
	case "bool", "boolean":
		return TypeBool, true
	case "int":
		return TypeInt, true
	case "long":
		return TypeLong, true
	case "real", "double":
		return TypeReal, true
	case "decimal":
		return TypeDecimal, true
	case "datetime", "date":
		return TypeDatetime, true
	case "timespan", "time":
		return TypeTimespan, true
	case "string":
		return TypeString, true
	case "guid", "uniqueid":
		return TypeGUID, true
	case "dynamic":
		return TypeDynamic, true
	}
	return TypeInvalid, false
}

// Ticks are 100-nanosecond units, Kusto's datetime and timespan resolution.
// Datetimes count ticks since 1970-01-01T00:00:00Z, so they cover years 1 to 9999.
const (
	TicksPerMicrosecond = 10
	TicksPerMillisecond = 10_000
	TicksPerSecond      = 10_000_000
	TicksPerMinute      = 60 * TicksPerSecond
	TicksPerHour        = 60 * TicksPerMinute
	TicksPerDay         = 24 * TicksPerHour
)

// TicksFromTime converts t to ticks since the Unix epoch, truncating below 100 ns.
func TicksFromTime(t time.Time) int64 {
	return t.Unix()*TicksPerSecond + int64(t.Nanosecond())/100
}

// TimeFromTicks converts ticks since the Unix epoch to a UTC time.
func TimeFromTicks(ticks int64) time.Time {
	sec, rem := ticks/TicksPerSecond, ticks%TicksPerSecond
	if rem < 0 {
		sec--
		rem += TicksPerSecond
	}
	return time.Unix(sec, rem*100).UTC()
}

// Column is a named, typed column of a table or result.
type Column struct {
	Name string
	Type ColumnType
}

// Schema is an ordered list of columns.
type Schema []Column

// Index returns the position of the column with the given name (case-sensitive, as in KQL), or -1.
func (s Schema) Index(name string) int {
	for i, c := range s {
		if c.Name == name {
			return i
		}
	}
	return -1
}

// Vector is one column of a Batch. Exactly one of Bool, Int, Real or Str holds
// the values, chosen by Type (see the ColumnType constants). Nulls is nil when no
// value is null; otherwise it has the same length as the values and true marks a
// null, whose slot in the value slice holds the zero value.
//
// Dict and Codes optionally describe a string-class vector as dictionary
// codes: when Codes is not nil it has one entry per value and
// Str[i] == Dict[Codes[i]] for every i (null slots included), and the Dict
// entries are distinct. The store sets them on dictionary-encoded part blocks
// (low-cardinality columns such as Level or User), so a consumer can group or
// compare by code and hash each distinct string once instead of once per row.
// Str is filled as well, except in a codes-only vector: one that a Select
// with SelectHints.CodesOnly naming its column returns for a dictionary
// block, where Str is nil and row i is Dict[Codes[i]] (see CodesOnly).
// Code that changes Str in place must set Dict and Codes to nil; code that
// ignores them needs no change, as long as it never asks for codes-only
// vectors.
type Vector struct {
	Type  ColumnType
	Nulls []bool
	Bool  []bool
	Int   []int64
	Real  []float64
	Str   []string
	Dict  []string
	Codes []uint32
}

// Len returns the number of values in v.
func (v *Vector) Len() int {
	switch v.Type {
	case TypeBool:
		return len(v.Bool)
	case TypeInt, TypeLong, TypeDatetime, TypeTimespan:
		return len(v.Int)
	case TypeReal, TypeDecimal:
		return len(v.Real)
	default:
		if v.Str == nil && v.Codes != nil {
			return len(v.Codes) // codes-only
		}
		return len(v.Str)
	}
}

// CodesOnly reports whether v is a codes-only string vector: Codes and Dict
// set, Str nil (see SelectHints.CodesOnly).
func (v *Vector) CodesOnly() bool { return v.Str == nil && v.Codes != nil }

// IsNull reports whether row i of v is null.
func (v *Vector) IsNull(i int) bool { return v.Nulls != nil && v.Nulls[i] }

// Batch is a set of rows in columnar form: Cols[i] holds the values of Schema[i]
// and every vector has Len values. A Batch handed out by an iterator is valid
// until the iterator's next call to Next.
//
// TimeBounded, TimeMin and TimeMax optionally bound the rows' TimeGenerated:
// when TimeBounded is set, the batch has a TimeGenerated column of type
// datetime, none of its values is null and every one lies in [TimeMin,
// TimeMax] (inclusive; the bounds need not be attained). Stores set them
// where they know them without reading the column (a part block's time
// range, after the query's time cut); zero means unknown. Code that builds a
// batch from another may carry them over only if the new batch's
// TimeGenerated values are a subset of the old one's rows, unchanged.
type Batch struct {
	Schema Schema
	Cols   []*Vector
	Len    int

	TimeBounded      bool
	TimeMin, TimeMax int64
}

// Col returns the vector of the named column, or nil.
func (b *Batch) Col(name string) *Vector {
	if i := b.Schema.Index(name); i >= 0 {
		return b.Cols[i]
	}
	return nil
}

// TableRef names one table of one workspace. WorkspaceID is the workspace's
// customerId GUID; Table is the table name as declared (case-sensitive).
type TableRef struct {
	WorkspaceID string
	Table       string
}

// TimeRange is the half-open interval [From, To) of TimeGenerated, in ticks.
// AllTime selects everything.
type TimeRange struct {
	From, To int64
}

// AllTime is the unbounded time range.
var AllTime = TimeRange{From: math.MinInt64, To: math.MaxInt64}

// Contains reports whether tick t lies in r.
func (r TimeRange) Contains(t int64) bool { return t >= r.From && t < r.To }

// TermHint says that every row the query keeps contains Term as a whole KQL
// term (case-insensitive, see kql's has rules) in Column, or in any string
// column when Column is empty. Stores use it to skip blocks through their bloom
// filters; the engine re-checks the predicate, so a store may ignore it.
type TermHint struct {
	Column string
	Term   string
}

// SelectHints narrow what a Querier reads. Any hint may be ignored; the engine
// re-checks predicates.
type SelectHints struct {
	Columns []string   // projection; nil means all columns
	Terms   []TermHint // all must hold (AND)
	Limit   int        // 0 means no limit; a store may return more
	// CodesOnly names string columns the caller can take as codes-only
	// vectors (Vector.CodesOnly: Codes and Dict set, Str nil) where the
	// store holds them dictionary-encoded, so that no per-row string header
	// is built for rows the caller drops or only compares by code. Other
	// vectors of these columns (not dictionary-encoded, memtable rows) come
	// back with Str as usual; nil asks for Str everywhere.
	CodesOnly []string
	// TimeBin, when its Size is positive, says the caller reads
	// TimeGenerated only as the bin TimeBin.Index gives each value
	// (KQL's bin_at(TimeGenerated, Size, At)). For a part block whose rows
	// lie in one such bin by the block's time bounds (Batch.TimeBounded),
	// the store may skip reading and decoding the column and return it
	// filled with the batch's TimeMin, which it may lower to a tick of
	// the same bin (within the query's time range) so that blocks share
	// one read-only vector: every row keeps its bin and the batch's bounds
	// still hold, but the values are not the rows' own, so the caller must
	// use them for nothing else.
	TimeBin TimeBinHint
}

// TimeBinHint is the bin size and origin of SelectHints.TimeBin, in ticks.
type TimeBinHint struct {
	Size, At int64
}

// Index returns the bin index of tick t, floor((t-At)/Size), in int64
// arithmetic that wraps as the engine's bin kernels do. Size must be
// positive.
func (h TimeBinHint) Index(t int64) int64 {
	a := t - h.At
	q := a / h.Size
	if a%h.Size != 0 && a < 0 {
		q--
	}
	return q
}

// OneBin reports whether every tick in [lo, hi] has the same bin: the
// index is monotonic in t unless t-At wraps between the bounds, and then
// the two bounds' indexes differ in sign, so equal indexes mean every tick
// in between has that index too. Size must be positive.
func (h TimeBinHint) OneBin(lo, hi int64) bool {
	return lo <= hi && h.Index(lo) == h.Index(hi)
}

// Appendable starts write batches. Safe for concurrent use.
type Appendable interface {
	Appender(ctx context.Context, t TableRef) (Appender, error)
}

// Appender is one write batch for one table. Not safe for concurrent use;
// finish with Commit or Rollback, and do not reuse it afterwards.
type Appender interface {
	// Append buffers rows. Columns are matched to the table schema by name;
	// a missing column is null (empty for strings); an unknown column or a type
	// mismatch is an error and nothing of this Append is buffered.
	Append(b *Batch) error
	// Commit seals the buffered rows, appends them to the WAL and fsyncs; the
	// rows are durable and visible to queries when it returns nil.
	Commit(ctx context.Context) error
	Rollback() error
}

// Queryable opens snapshot readers. Safe for concurrent use.
type Queryable interface {
	Querier(ctx context.Context, t TableRef, tr TimeRange) (Querier, error)
}

// Querier reads one consistent snapshot of a table. Not safe for concurrent use
// except that the BatchIterators from separate Select calls may run in parallel.
type Querier interface {
	// Schema is the table's schema, system columns included.
	Schema() Schema
	Select(ctx context.Context, h SelectHints) BatchIterator
	Close() error
}

// BatchIterator walks the batches of a Select. The Batch returned by Batch is
// valid until the next call to Next.
type BatchIterator interface {
	Next() bool
	Batch() *Batch
	Err() error
	Close() error
}
