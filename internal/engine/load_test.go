package engine

import (
	"context"
	"encoding/csv"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"custos/internal/crypt"
	"custos/internal/kql"
	"custos/internal/store"
)

// openStoreAt opens (or reopens) a real store kept under dir, with a
// platform key.
func openStoreAt(t testing.TB, dir string) *store.DB {
	t.Helper()
	key, err := crypt.OpenPlatformKey(filepath.Join(dir, "platform.key"))
	if err != nil {
		t.Fatalf("open platform key: %v", err)
	}
	db, err := store.Open(store.Options{Dir: filepath.Join(dir, "data"), Keys: key})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// storeCmd runs a lifecycle step on the store of the loaded tables:
//
//	store flush    (memtable → encrypted parts)
//	store merge    (parts → merged parts)
//	store reopen   (close and open again: the WAL is replayed)
func (env *testEnv) storeCmd(t *testing.T, d *datadriven.TestData) string {
	if env.db == nil {
		d.Fatalf(t, "store before load")
	}
	ctx := context.Background()
	var err error
	switch op := d.CmdArgs[0].Key; op {
	case "flush":
		err = env.db.Flush(ctx)
	case "merge":
		err = env.db.Merge(ctx)
	case "reopen":
		if err = env.db.Close(); err == nil {
			env.db = openStoreAt(t, env.dbDir)
			env.src = env.db
		}
	default:
		d.Fatalf(t, "unknown store step %q", op)
	}
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	return "ok\n"
}

// load appends rows to a table of the real store:
//
//	load table=T [batches=N]
//	Col:type, Col:type
//	v, v
//
// Values are CSV; an unquoted null (or an empty field for non-strings) is null.
func (env *testEnv) load(t *testing.T, d *datadriven.TestData) string {
	ctx := context.Background()
	if env.db == nil {
		env.dbDir = t.TempDir()
		env.db = openStoreAt(t, env.dbDir)
		env.src = env.db
	}
	var table string
	batches := 1
	for _, a := range d.CmdArgs {
		switch a.Key {
		case "table":
			table = a.Vals[0]
		case "batches":
			batches, _ = strconv.Atoi(a.Vals[0])
		}
	}
	header, body, _ := strings.Cut(d.Input, "\n")
	var schema store.Schema
	for _, f := range strings.Split(header, ",") {
		name, typ, ok := strings.Cut(strings.TrimSpace(f), ":")
		ct, tok := store.ParseColumnType(typ)
		if !ok || !tok {
			d.Fatalf(t, "bad column %q", f)
		}
		schema = append(schema, store.Column{Name: name, Type: ct})
	}
	r := csv.NewReader(strings.NewReader(body))
	r.TrimLeadingSpace = true
	r.LazyQuotes = true
	recs, err := r.ReadAll()
	if err != nil {
		d.Fatalf(t, "bad rows: %v", err)
	}
	ref := store.TableRef{WorkspaceID: env.ws, Table: table}
	if err := env.db.EnsureTable(ctx, ref, schema, 0); err != nil {
		return "error: " + err.Error() + "\n"
	}
	per := (len(recs) + batches - 1) / max(batches, 1)
	for start := 0; start < len(recs); start += max(per, 1) {
		end := min(start+max(per, 1), len(recs))
		b := &store.Batch{Schema: schema, Len: end - start}
		for i, c := range schema {
			v := emptyVector(c.Type, end-start)
			for _, rec := range recs[start:end] {
				if len(rec) != len(schema) {
					d.Fatalf(t, "row %v has %d fields, want %d", rec, len(rec), len(schema))
				}
				val, err := parseCell(rec[i], c.Type)
				if err != nil {
					d.Fatalf(t, "%v", err)
				}
				appendValue(v, val)
			}
			b.Cols = append(b.Cols, v)
		}
		app, err := env.db.Appender(ctx, ref)
		if err != nil {
			return "error: " + err.Error() + "\n"
		}
		if err := app.Append(b); err != nil {
			app.Rollback()
			return "error: " + err.Error() + "\n"
		}
		if err := app.Commit(ctx); err != nil {
			return "error: " + err.Error() + "\n"
		}
	}
	q, err := env.db.Querier(ctx, ref, store.AllTime)
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	env.tables[table] = q.Schema()
	q.Close()
	return fmt.Sprintf("ok: %d rows\n", len(recs))
}

func parseCell(s string, t store.ColumnType) (kql.Value, error) {
	if s == "null" || (s == "" && t != store.TypeString) {
		return kql.NullValue(t), nil
	}
	v := kql.Value{Type: t}
	var err error
	switch t {
	case store.TypeBool:
		v.Bool, err = strconv.ParseBool(s)
	case store.TypeInt, store.TypeLong:
		v.Int, err = strconv.ParseInt(s, 10, 64)
	case store.TypeReal:
		v.Real, err = strconv.ParseFloat(s, 64)
	case store.TypeDecimal:
		var dec Decimal
		if dec, err = ParseDecimal(s); err == nil {
			v.Real, v.Str = dec.Float64(), dec.String() // exact, as the engine keeps it
		}
	case store.TypeDatetime:
		var ok bool
		if v.Int, ok = kql.ParseDatetime(s); !ok {
			err = fmt.Errorf("bad datetime %q", s)
		}
	case store.TypeTimespan:
		var ok bool
		if v.Int, ok = kql.ParseTimespan(s); !ok {
			err = fmt.Errorf("bad timespan %q", s)
		}
	default:
		v.Str = s
	}
	return v, err
}

// appendCommit appends b to the table ref of db in one committed batch.
func appendCommit(t testing.TB, db *store.DB, ref store.TableRef, b *store.Batch) {
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
