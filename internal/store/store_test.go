package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"custos/internal/crypt"
)

const testWS = "0b7a9f6e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"

var baseTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

func testKeys(t testing.TB, dir string) crypt.KeyProvider {
	t.Helper()
	pk, err := crypt.OpenPlatformKey(filepath.Join(dir, "platform.key"))
	if err != nil {
		t.Fatal(err)
	}
	return pk
}

type testEnv struct {
	dir  string
	keys crypt.KeyProvider
	now  time.Time
}

func newEnv(t testing.TB) *testEnv {
	dir := t.TempDir()
	return &testEnv{dir: dir, keys: testKeys(t, dir), now: baseTime.Add(time.Hour)}
}

func (e *testEnv) open(t testing.TB, mod func(*Options)) *DB {
	t.Helper()
	o := Options{Dir: filepath.Join(e.dir, "data"), Keys: e.keys, DisableBackground: true, Now: func() time.Time { return e.now }}
	if mod != nil {
		mod(&o)
	}
	db, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

var allTypesSchema = Schema{
	{"TimeGenerated", TypeDatetime},
	{"B", TypeBool}, {"I", TypeInt}, {"L", TypeLong}, {"R", TypeReal}, {"D", TypeDecimal},
	{"TS", TypeTimespan}, {"S", TypeString}, {"G", TypeGUID}, {"Dyn", TypeDynamic}, {"DT", TypeDatetime},
}

// row i of the all-types batch; nulls where i%5 == 3 (strings: empty).
func allTypesBatch(lo, n int) *Batch {
	b := &Batch{Schema: allTypesSchema, Len: n}
	for _, c := range allTypesSchema {
		b.Cols = append(b.Cols, &Vector{Type: c.Type})
	}
	for k := range n {
		i := lo + k
		null := i%5 == 3
		for j, c := range allTypesSchema {
			v := b.Cols[j]
			if c.Type != TypeString && c.Name != "TimeGenerated" {
				if v.Nulls == nil {
					v.Nulls = make([]bool, n)
				}
				v.Nulls[k] = null
			}
			switch c.Name {
			case "TimeGenerated":
				v.Int = append(v.Int, TicksFromTime(baseTime)+int64(i)*TicksPerSecond)
			case "B":
				v.Bool = append(v.Bool, !null && i%2 == 0)
			case "I", "L", "TS", "DT":
				x := int64(i) * -7
				if null {
					x = 0
				}
				v.Int = append(v.Int, x)
			case "R", "D":
				x := float64(i) * 1.5
				if null {
					x = 0
				}
				v.Real = append(v.Real, x)
			case "S":
				s := fmt.Sprintf("row %d alpha-Beta", i)
				if null {
					s = ""
				}
				v.Str = append(v.Str, s)
			case "G":
				s := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
				if null {
					s = ""
				}
				v.Str = append(v.Str, s)
			case "Dyn":
				s := fmt.Sprintf(`{"n":%d,"tags":["x","y"],"s":"a\u003cb"}`, i)
				if null {
					s = ""
				}
				v.Str = append(v.Str, s)
			}
		}
	}
	return b
}

func commit(t testing.TB, db *DB, ref TableRef, b *Batch) {
	t.Helper()
	ctx := context.Background()
	a, err := db.Appender(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Append(b); err != nil {
		t.Fatal(err)
	}
	if err := a.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// rowsOf renders every selected row as text, sorted.
func selectRows(t testing.TB, db *DB, ref TableRef, tr TimeRange, h SelectHints) ([]string, SelectStats) {
	t.Helper()
	ctx := context.Background()
	q, err := db.Querier(ctx, ref, tr)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	it := q.Select(ctx, h)
	defer it.Close()
	var rows []string
	for it.Next() {
		b := it.Batch()
		if len(b.Cols) != len(b.Schema) {
			t.Fatalf("batch has %d cols, schema %d", len(b.Cols), len(b.Schema))
		}
		for i := range b.Len {
			var sb strings.Builder
			for j, c := range b.Schema {
				if c.Name == ColItemID || c.Name == ColTimeReceived {
					continue
				}
				v := b.Cols[j]
				if v.Len() != b.Len {
					t.Fatalf("column %s has %d values, batch %d", c.Name, v.Len(), b.Len)
				}
				fmt.Fprintf(&sb, "%s=", c.Name)
				if v.IsNull(i) {
					sb.WriteString("null ")
					continue
				}
				switch classOf(v.Type) {
				case classBool:
					fmt.Fprintf(&sb, "%v ", v.Bool[i])
				case classInt:
					fmt.Fprintf(&sb, "%d ", v.Int[i])
				case classReal:
					fmt.Fprintf(&sb, "%g ", v.Real[i])
				default:
					fmt.Fprintf(&sb, "%q ", v.Str[i])
				}
			}
			rows = append(rows, sb.String())
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(rows)
	return rows, it.(StatsIterator).Stats()
}

func TestRoundTripAllTypes(t *testing.T) {
	env := newEnv(t)
	db := env.open(t, nil)
	ctx := context.Background()
	ref := TableRef{WorkspaceID: testWS, Table: "AllTypes_CL"}
	if err := db.EnsureTable(ctx, ref, allTypesSchema, 0); err != nil {
		t.Fatal(err)
	}
	if err := db.EnsureTable(ctx, ref, allTypesSchema, 0); err != nil {
		t.Fatalf("EnsureTable is not idempotent: %v", err)
	}
	commit(t, db, ref, allTypesBatch(0, 50))
	commit(t, db, ref, allTypesBatch(50, 50))
	want, _ := selectRows(t, db, ref, AllTime, SelectHints{})
	if len(want) != 100 {
		t.Fatalf("got %d rows from the memtable; want 100", len(want))
	}
	if !strings.Contains(want[0], `Type="AllTypes_CL"`) || !strings.Contains(want[0], `TenantId="`+testWS+`"`) {
		t.Fatalf("virtual columns wrong: %s", want[0])
	}
	// Nulls, empty strings and dynamic JSON survive; check one null row and one full row.
	wantRow3 := `TimeGenerated=` + fmt.Sprint(TicksFromTime(baseTime)+3*TicksPerSecond) + ` B=null I=null L=null R=null D=null TS=null S="" G=null Dyn=null DT=null TenantId="` + testWS + `" Type="AllTypes_CL" _ResourceId="" `
	if !slices.Contains(want, wantRow3) {
		t.Fatalf("null row missing; want %s\nhave e.g. %s", wantRow3, want[3])
	}
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got, st := selectRows(t, db, ref, AllTime, SelectHints{})
	if !slices.Equal(got, want) {
		t.Fatalf("after flush:\n got %v\nwant %v", got[:3], want[:3])
	}
	if st.BlocksRead == 0 || st.MemRowsScanned != 0 {
		t.Fatalf("after flush rows should come from parts: %+v", st)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = env.open(t, nil)
	defer db.Close()
	got, _ = selectRows(t, db, ref, AllTime, SelectHints{})
	if !slices.Equal(got, want) {
		t.Fatalf("after reopen: got %d rows", len(got))
	}
	// Projection and time range.
	from := TicksFromTime(baseTime) + 10*TicksPerSecond
	got, _ = selectRows(t, db, ref, TimeRange{From: from, To: from + 5*TicksPerSecond}, SelectHints{Columns: []string{"L", "Type", "Nope"}})
	wantP := []string{"L=-70 Type=\"AllTypes_CL\" ", "L=-77 Type=\"AllTypes_CL\" ", "L=-84 Type=\"AllTypes_CL\" ", "L=-98 Type=\"AllTypes_CL\" ", "L=null Type=\"AllTypes_CL\" "}
	if !slices.Equal(got, wantP) {
		t.Fatalf("projection:\n got %q\nwant %q", got, wantP)
	}
}

func TestSystemColumns(t *testing.T) {
	env := newEnv(t)
	db := env.open(t, nil)
	defer db.Close()
	ctx := context.Background()
	ref := TableRef{WorkspaceID: strings.ToUpper(testWS), Table: "Sys_CL"}
	if err := db.EnsureTable(ctx, ref, Schema{{"Msg", TypeString}}, 0); err != nil {
		t.Fatal(err)
	}
	t5 := TicksFromTime(env.now) - 5
	b := &Batch{Schema: Schema{{"Msg", TypeString}, {"TimeGenerated", TypeDatetime}, {"_ResourceId", TypeString}}, Len: 2,
		Cols: []*Vector{{Type: TypeString, Str: []string{"a", "b"}}, {Type: TypeDatetime, Int: []int64{t5, 0}, Nulls: []bool{false, true}}, {Type: TypeString, Str: []string{"/subscriptions/x", ""}}}}
	commit(t, db, ref, b)
	q, err := db.Querier(ctx, TableRef{WorkspaceID: testWS, Table: "Sys_CL"}, AllTime)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	wantSchema := Schema{{"TimeGenerated", TypeDatetime}, {"Msg", TypeString}, {"TenantId", TypeString}, {"Type", TypeString}, {"_ResourceId", TypeString}, {"_ItemId", TypeString}, {"_TimeReceived", TypeDatetime}}
	if !slices.Equal(q.Schema(), wantSchema) {
		t.Fatalf("schema %v; want %v", q.Schema(), wantSchema)
	}
	it := q.Select(ctx, SelectHints{})
	defer it.Close()
	if !it.Next() {
		t.Fatal(it.Err())
	}
	bt := it.Batch()
	now := TicksFromTime(env.now)
	if tg := bt.Col("TimeGenerated"); tg.Int[0] != t5 || tg.Int[1] != now || tg.Nulls != nil {
		t.Fatalf("TimeGenerated %v %v; want [%d %d] (null set to _TimeReceived)", tg.Int, tg.Nulls, t5, now)
	}
	if tr := bt.Col("_TimeReceived"); tr.Int[0] != now || tr.Int[1] != now {
		t.Fatalf("_TimeReceived %v; want %d", tr.Int, now)
	}
	ids := bt.Col("_ItemId").Str
	if len(ids[0]) != 36 || ids[0] == ids[1] || ids[0][14] != '4' {
		t.Fatalf("_ItemId %q", ids)
	}
	if r := bt.Col("_ResourceId").Str; r[0] != "/subscriptions/x" {
		t.Fatalf("_ResourceId %q", r)
	}
}

func TestSchemaErrors(t *testing.T) {
	env := newEnv(t)
	db := env.open(t, nil)
	defer db.Close()
	ctx := context.Background()
	ref := TableRef{WorkspaceID: testWS, Table: "T1"}
	if err := db.EnsureTable(ctx, ref, Schema{{"A", TypeLong}}, 0); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		err  error
		run  func() error
	}{
		{"bad table name", ErrInvalidName, func() error { return db.EnsureTable(ctx, TableRef{testWS, "../x"}, nil, 0) }},
		{"bad workspace", ErrInvalidName, func() error { return db.EnsureTable(ctx, TableRef{"../ws", "T"}, nil, 0) }},
		{"type change", ErrSchema, func() error { return db.EnsureTable(ctx, ref, Schema{{"A", TypeString}}, 0) }},
		{"system type", ErrSchema, func() error { return db.EnsureTable(ctx, ref, Schema{{"TimeGenerated", TypeString}}, 0) }},
		{"duplicate", ErrSchema, func() error { return db.EnsureTable(ctx, ref, Schema{{"X", TypeLong}, {"X", TypeLong}}, 0) }},
		{"unknown table", ErrTableNotFound, func() error { _, err := db.Appender(ctx, TableRef{testWS, "Nope"}); return err }},
		{"unknown table query", ErrTableNotFound, func() error { _, err := db.Querier(ctx, TableRef{testWS, "Nope"}, AllTime); return err }},
		{"unknown column", ErrSchema, func() error {
			a, _ := db.Appender(ctx, ref)
			return a.Append(&Batch{Schema: Schema{{"Z", TypeLong}}, Cols: []*Vector{{Type: TypeLong, Int: []int64{1}}}, Len: 1})
		}},
		{"type mismatch", ErrSchema, func() error {
			a, _ := db.Appender(ctx, ref)
			return a.Append(&Batch{Schema: Schema{{"A", TypeString}}, Cols: []*Vector{{Type: TypeString, Str: []string{"x"}}}, Len: 1})
		}},
		{"short vector", ErrSchema, func() error {
			a, _ := db.Appender(ctx, ref)
			return a.Append(&Batch{Schema: Schema{{"A", TypeLong}}, Cols: []*Vector{{Type: TypeLong, Int: []int64{1}}}, Len: 2})
		}},
		{"reuse", ErrAppenderDone, func() error {
			a, _ := db.Appender(ctx, ref)
			if err := a.Commit(ctx); err != nil {
				return err
			}
			return a.Commit(ctx)
		}},
	}
	for _, c := range cases {
		if err := c.run(); !errors.Is(err, c.err) {
			t.Errorf("%s: got %v; want %v", c.name, err, c.err)
		}
	}
	// Int widens to long; new columns are added; old rows read them as null.
	a, _ := db.Appender(ctx, ref)
	if err := a.Append(&Batch{Schema: Schema{{"A", TypeInt}, {"TimeGenerated", TypeDatetime}}, Cols: []*Vector{{Type: TypeInt, Int: []int64{7}}, {Type: TypeDatetime, Int: []int64{1}}}, Len: 1}); err != nil {
		t.Fatal(err)
	}
	if err := a.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.EnsureTable(ctx, ref, Schema{{"A", TypeLong}, {"B", TypeString}, {"C", TypeLong}}, 0); err != nil {
		t.Fatal(err)
	}
	rows, _ := selectRows(t, db, ref, AllTime, SelectHints{Columns: []string{"A", "B", "C"}})
	if want := []string{`A=7 B="" C=null `}; !slices.Equal(rows, want) {
		t.Fatalf("got %q; want %q", rows, want)
	}
	if _, err := Open(Options{Dir: t.TempDir()}); !errors.Is(err, crypt.ErrSealed) {
		t.Fatalf("Open without keys: got %v; want crypt.ErrSealed", err)
	}
}
