package export

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"custos/internal/catalog"
	"custos/internal/crypt"
	"custos/internal/store"
)

// env is a real catalog, platform key and store in a temp directory, with
// the store's commit hook feeding the exporter under test.
type env struct {
	t       *testing.T
	dir     string
	cat     *catalog.DB
	pk      *crypt.PlatformKey
	db      *store.DB
	signer  *SigningKey
	ws      catalog.Workspace
	exp     *Exporter
	hookMu  sync.Mutex
	hook    func(store.TableRef, *store.Batch)
	outDir  string
	rowSeq  int
	tableNm string
}

func newTestEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, dir: t.TempDir(), tableNm: "App_CL"}
	var err error
	if e.cat, err = catalog.Open(ctx, catalog.Options{Path: filepath.Join(e.dir, "catalog.db")}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.cat.Close() })
	b, err := e.cat.Bootstrap(ctx, catalog.BootstrapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.ws = b.Workspace
	if e.pk, err = crypt.OpenPlatformKey(filepath.Join(e.dir, "keys", "platform.key")); err != nil {
		t.Fatal(err)
	}
	if e.signer, err = OpenSigningKey(filepath.Join(e.dir, "keys", "export-signing.key"), e.pk); err != nil {
		t.Fatal(err)
	}
	e.openStore()
	tg := catalog.Column{Name: "TimeGenerated", Type: store.TypeDatetime}
	tb, _, err := e.cat.PutTable(ctx, e.ws.SubscriptionID, e.ws.ResourceGroup, e.ws.Name, catalog.TableSpec{Name: e.tableNm,
		Columns: []catalog.Column{tg, {Name: "Msg", Type: store.TypeString}, {Name: "N", Type: store.TypeLong},
			{Name: "Props", Type: store.TypeDynamic}, {Name: "Ok", Type: store.TypeBool}}}, catalog.Precondition{}, catalog.Actor{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.db.EnsureTable(ctx, tb.Ref(), tb.StoreSchema(), 0); err != nil {
		t.Fatal(err)
	}
	e.outDir = filepath.Join(e.dir, "exports")
	return e
}

func (e *env) openStore() {
	db, err := store.Open(store.Options{Dir: filepath.Join(e.dir, "data"), Keys: e.pk, DisableBackground: true,
		OnCommit: func(ref store.TableRef, b *store.Batch) {
			e.hookMu.Lock()
			h := e.hook
			e.hookMu.Unlock()
			if h != nil {
				h(ref, b)
			}
		}})
	if err != nil {
		e.t.Fatal(err)
	}
	e.db = db
	e.t.Cleanup(func() { db.Close() })
}

func (e *env) newExporter(opts Options) *Exporter {
	opts.Rules, opts.Source, opts.Signer = e.cat, e.db, e.signer
	if opts.AllowedDirs == nil {
		opts.AllowedDirs = []string{e.outDir}
	}
	x, err := New(opts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.hookMu.Lock()
	e.hook = x.OnCommit
	e.hookMu.Unlock()
	e.exp = x
	return x
}

func (e *env) detach() {
	e.hookMu.Lock()
	e.hook = nil
	e.hookMu.Unlock()
}

func (e *env) putRule(name, dest, format string, s3 *S3Config, secret *string) catalog.DataExport {
	e.t.Helper()
	d, _, err := e.cat.PutDataExport(context.Background(), e.ws.ID(), catalog.DataExport{Name: name, TableNames: []string{e.tableNm},
		Destination: dest, Format: format, Enabled: true}, catalog.Actor{ID: "tester"},
		func(ctx context.Context, old, next *catalog.DataExport) error {
			return e.exp.Prepare(ctx, old, next, s3, secret)
		})
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// ingest commits n rows with messages msg-<k>.
func (e *env) ingest(n int) {
	e.t.Helper()
	ctx := context.Background()
	b := &store.Batch{Len: n, Schema: store.Schema{{Name: "TimeGenerated", Type: store.TypeDatetime}, {Name: "Msg", Type: store.TypeString},
		{Name: "N", Type: store.TypeLong}, {Name: "Props", Type: store.TypeDynamic}, {Name: "Ok", Type: store.TypeBool}}}
	tg, msg, num, props, ok := &store.Vector{Type: store.TypeDatetime}, &store.Vector{Type: store.TypeString},
		&store.Vector{Type: store.TypeLong}, &store.Vector{Type: store.TypeDynamic}, &store.Vector{Type: store.TypeBool}
	for range n {
		e.rowSeq++
		tg.Int = append(tg.Int, store.TicksFromTime(time.Date(2026, 11, 27, 1, 2, 3, 0, time.UTC)))
		msg.Str = append(msg.Str, fmt.Sprintf("msg-%d", e.rowSeq))
		num.Int = append(num.Int, int64(e.rowSeq))
		props.Str = append(props.Str, fmt.Sprintf(`{"k":%d}`, e.rowSeq))
		ok.Bool = append(ok.Bool, e.rowSeq%2 == 0)
	}
	b.Cols = []*store.Vector{tg, msg, num, props, ok}
	a, err := e.db.Appender(ctx, store.TableRef{WorkspaceID: e.ws.CustomerID, Table: e.tableNm})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := a.Append(b); err != nil {
		e.t.Fatal(err)
	}
	if err := a.Commit(ctx); err != nil {
		e.t.Fatal(err)
	}
}

// exportedMsgs reads every JSON-lines file of a directory destination and
// returns the Msg values (with duplicates).
func exportedMsgs(t *testing.T, d Destination) []string {
	t.Helper()
	objs, err := d.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range objs {
		if !strings.HasSuffix(o.Name, ".json") || strings.HasPrefix(o.Name, manifestDir) {
			continue
		}
		b, err := d.Get(context.Background(), o.Name)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			var rec map[string]any
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				t.Fatalf("%s: %v: %s", o.Name, err, sc.Text())
			}
			out = append(out, rec["Msg"].(string))
		}
	}
	sort.Strings(out)
	return out
}

func wantMsgs(t *testing.T, got []string, lo, hi int, exact bool) {
	t.Helper()
	seen := map[string]int{}
	for _, m := range got {
		seen[m]++
	}
	for k := lo; k <= hi; k++ {
		if seen[fmt.Sprintf("msg-%d", k)] == 0 {
			t.Fatalf("msg-%d was not exported (%d rows exported)", k, len(got))
		}
	}
	if exact && len(got) != hi-lo+1 {
		t.Fatalf("%d rows exported; want %d exactly", len(got), hi-lo+1)
	}
}

func TestExportToDirectory(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	x := e.newExporter(Options{})
	rule := e.putRule("to-dir", "file://"+e.outDir, "", nil, nil)
	x.Refresh(ctx)
	e.ingest(5)
	e.ingest(3)
	x.FlushNow(ctx)
	dest := &DirDestination{Root: e.outDir}
	wantMsgs(t, exportedMsgs(t, dest), 1, 8, true)

	// Azure's layout and record shape.
	objs, _ := dest.List(ctx, "")
	var dataFile string
	for _, o := range objs {
		if !strings.HasPrefix(o.Name, manifestDir) {
			dataFile = o.Name
		}
	}
	wantPrefix := "am-app_cl/WorkspaceResourceId=" + strings.TrimPrefix(e.ws.ID(), "/") + "/y="
	if !strings.HasPrefix(dataFile, wantPrefix) || !strings.Contains(dataFile, "/PT05M-") {
		t.Fatalf("file %s; want prefix %s", dataFile, wantPrefix)
	}
	b, _ := dest.Get(ctx, dataFile)
	var rec map[string]any
	if err := json.Unmarshal(bytes.SplitN(b, []byte("\n"), 2)[0], &rec); err != nil {
		t.Fatal(err)
	}
	if rec["TimeGenerated"] != "2026-11-27T01:02:03.0000000Z" || rec["TenantId"] != e.ws.CustomerID || rec["Type"] != e.tableNm ||
		rec["_ItemId"] == "" || rec["Props"].(map[string]any)["k"] == nil || rec["_TimeReceived"] == nil {
		t.Fatalf("record %v", rec)
	}
	info, _ := os.Stat(filepath.Join(e.outDir, filepath.FromSlash(dataFile)))
	if info.Mode().Perm()&0o222 != 0 {
		t.Fatalf("exported file mode %v; want read-only", info.Mode())
	}

	rep, err := Verify(ctx, dest, e.signer.Public())
	if err != nil || rep.Manifests != 1 || rep.Rows != 8 || rep.ExportIDs[0] != rule.ExportID {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	st, _ := e.cat.ExportState(ctx, rule.ExportID)
	if st.Seq != 1 || st.HeadHash != rep.HeadHash || st.LowWater == 0 {
		t.Fatalf("state %+v; report %+v", st, rep)
	}
	// Nothing new: no new manifest.
	x.FlushNow(ctx)
	if rep, _ := Verify(ctx, dest, e.signer.Public()); rep.Manifests != 1 {
		t.Fatalf("empty flush wrote a manifest: %+v", rep)
	}
	var m bytes.Buffer
	if err := x.WriteMetrics(&m); err != nil || !strings.Contains(m.String(), `custos_export_rows_total{export_id="`+rule.ExportID+`"} 8`) ||
		!strings.Contains(m.String(), `custos_export_lag_seconds{export_id="`+rule.ExportID+`"} 0`) {
		t.Fatalf("metrics: %v\n%s", err, m.String())
	}
	e.ingest(2)
	if lag := x.Lag()[rule.ExportID]; lag < 0 {
		t.Fatalf("lag %v", lag)
	}
	x.FlushNow(ctx)
	wantMsgs(t, exportedMsgs(t, dest), 1, 10, true)

	// Restart with rows committed while no exporter ran: they are exported
	// after the restart (at least once).
	e.detach()
	e.ingest(4) // msg-11..14, committed while "down"
	x2 := e.newExporter(Options{CatchUpMargin: time.Nanosecond})
	x2.Refresh(ctx)
	e.ingest(1) // msg-15, through the hook
	x2.FlushNow(ctx)
	wantMsgs(t, exportedMsgs(t, dest), 1, 15, false)
	rep, err = Verify(ctx, dest, e.signer.Public())
	if err != nil || rep.Manifests != 3 {
		t.Fatalf("verify after restart: %+v %v", rep, err)
	}

	// Tampering is detected: a modified, a missing and an extra file, and a
	// manifest edited.
	tamper := func(what string, do func(), undo func(), kind string) {
		t.Helper()
		do()
		_, err := Verify(ctx, dest, e.signer.Public())
		var ve *VerifyError
		if !errors.As(err, &ve) || !errors.Is(err, ErrTampered) || ve.Kind != kind {
			t.Fatalf("%s: got %v; want a %q finding", what, err, kind)
		}
		undo()
		if _, err := Verify(ctx, dest, e.signer.Public()); err != nil {
			t.Fatalf("after undoing %s: %v", what, err)
		}
	}
	p := filepath.Join(e.outDir, filepath.FromSlash(dataFile))
	orig, _ := os.ReadFile(p)
	write := func(path string, b []byte) {
		os.Chmod(path, 0o640)
		if err := os.WriteFile(path, b, 0o440); err != nil {
			t.Fatal(err)
		}
		os.Chmod(path, 0o440)
	}
	tamper("modified file", func() { write(p, bytes.Replace(orig, []byte("msg-1"), []byte("msg-X"), 1)) }, func() { write(p, orig) }, "modified")
	tamper("truncated file", func() { write(p, orig[:len(orig)-2]) }, func() { write(p, orig) }, "modified")
	moved := filepath.Join(e.dir, "moved")
	tamper("missing file", func() { os.Rename(p, moved) }, func() { os.Rename(moved, p) }, "missing")
	extra := filepath.Join(filepath.Dir(p), "PT05M-999.json")
	tamper("extra file", func() { os.WriteFile(extra, []byte("{}\n"), 0o440) }, func() { os.Remove(extra) }, "extra")
	mp := filepath.Join(e.outDir, manifestDir, "000000000002.json")
	morig, _ := os.ReadFile(mp)
	tamper("edited manifest", func() { write(mp, bytes.Replace(morig, []byte(`"rows":2`), []byte(`"rows":3`), 1)) }, func() { write(mp, morig) }, "chain")
	tamper("missing manifest", func() { os.Rename(mp, moved) }, func() { os.Rename(moved, mp) }, "missing")
	// A chain re-signed with another key fails.
	other := newSigningKey(bytes.Repeat([]byte{7}, 32))
	if _, err := Verify(ctx, dest, other.Public()); !errors.Is(err, ErrTampered) {
		t.Fatalf("verify with another key: %v", err)
	}
	// The exporter refuses to extend a destination whose chain is broken or
	// whose files are missing or changed in size (verify-export checks the
	// hashes).
	for _, c := range []struct {
		what     string
		do, undo func()
	}{
		{"edited manifest", func() { write(mp, bytes.Replace(morig, []byte(`"rows":2`), []byte(`"rows":3`), 1)) }, func() { write(mp, morig) }},
		{"truncated file", func() { write(p, orig[:len(orig)-2]) }, func() { write(p, orig) }},
	} {
		c.do()
		x3 := e.newExporter(Options{})
		x3.Refresh(ctx)
		if lag := x3.Lag(); len(lag) != 0 {
			t.Fatalf("rule started on a destination with a %s: %v", c.what, lag)
		}
		c.undo()
	}
	e.newExporter(Options{}).Refresh(ctx)
	if lag := e.exp.Lag(); len(lag) != 1 {
		t.Fatalf("rule did not start on the intact destination: %v", lag)
	}
}

// TestExportOrphansRecovered: files of a flush whose manifest was never
// written (a crash) are listed as recovered in the next manifest, so the
// destination still verifies, and their rows are exported again.
func TestExportOrphansRecovered(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	x := e.newExporter(Options{})
	e.putRule("orphans", "file://"+e.outDir, "", nil, nil)
	x.Refresh(ctx)
	e.ingest(2)
	x.FlushNow(ctx)
	dest := &DirDestination{Root: e.outDir}
	// A crashed flush: a data file without its manifest.
	if err := dest.Put(ctx, "am-app_cl/WorkspaceResourceId=x/y=2026/m=11/d=27/h=01/m=00/PT05M-000000000002-1.json", []byte(`{"Msg":"orphan"}`+"\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(ctx, dest, e.signer.Public()); !errors.Is(err, ErrTampered) {
		t.Fatalf("orphan not reported: %v", err)
	}
	e.detach()
	x2 := e.newExporter(Options{})
	x2.Refresh(ctx)
	e.ingest(1)
	x2.FlushNow(ctx)
	rep, err := Verify(ctx, dest, e.signer.Public())
	if err != nil || rep.Manifests != 2 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	wantMsgs(t, exportedMsgs(t, dest), 1, 3, false)
}

func TestExportParquet(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	x := e.newExporter(Options{})
	e.putRule("to-parquet", "file://"+e.outDir, catalog.ExportFormatParquet, nil, nil)
	x.Refresh(ctx)
	e.ingest(3)
	e.ingest(4)
	x.FlushNow(ctx)
	dest := &DirDestination{Root: e.outDir}
	objs, _ := dest.List(ctx, "")
	var files []string
	for _, o := range objs {
		if strings.HasSuffix(o.Name, ".parquet") {
			files = append(files, o.Name)
		}
	}
	if len(files) != 1 {
		t.Fatalf("parquet files %v", files)
	}
	b, _ := dest.Get(ctx, files[0])
	f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if f.NumRows() != 7 {
		t.Fatalf("%d rows; want 7", f.NumRows())
	}
	r := parquet.NewReader(bytes.NewReader(b))
	rows := make([]parquet.Row, 7)
	n, _ := r.ReadRows(rows)
	if n != 7 {
		t.Fatalf("read %d rows", n)
	}
	msg, _ := f.Schema().Lookup("Msg")
	tenant, _ := f.Schema().Lookup("TenantId")
	tg, _ := f.Schema().Lookup("TimeGenerated")
	var msgs []string
	for _, row := range rows[:n] {
		msgs = append(msgs, row[msg.ColumnIndex].String())
		if row[tenant.ColumnIndex].String() != e.ws.CustomerID {
			t.Fatalf("TenantId %s", row[tenant.ColumnIndex])
		}
		if us := row[tg.ColumnIndex].Int64(); us != time.Date(2026, 11, 27, 1, 2, 3, 0, time.UTC).UnixMicro() {
			t.Fatalf("TimeGenerated %d", us)
		}
	}
	sort.Strings(msgs)
	if strings.Join(msgs, ",") != "msg-1,msg-2,msg-3,msg-4,msg-5,msg-6,msg-7" {
		t.Fatalf("msgs %v", msgs)
	}
	if _, err := Verify(ctx, dest, e.signer.Public()); err != nil {
		t.Fatal(err)
	}
}

func TestPrepareDestinations(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	x := e.newExporter(Options{})
	secret := "s3cret"
	for _, c := range []struct {
		dest   string
		s3     *S3Config
		secret *string
	}{
		{"file:///etc", nil, nil},                  // not under an allowed directory
		{"file://" + e.outDir + "/../x", nil, nil}, // escapes it
		{"file://relative/dir", nil, nil},          // not absolute
		{"s3://bucket/p", nil, nil},                // no S3 settings
		{"s3://bucket/p", &S3Config{Endpoint: "http://127.0.0.1:9", AccessKeyID: "a"}, &secret}, // http without the insecure setting
		{"s3://Bad_Bucket/p", &S3Config{Endpoint: "https://s3.example", AccessKeyID: "a"}, &secret},
		{"s3://bucket/p", &S3Config{Endpoint: "https://s3.example", AccessKeyID: "a"}, nil}, // no secret
		{"https://example.com/container", nil, nil},
	} {
		d := catalog.DataExport{Workspace: e.ws, ExportID: "11111111-1111-4111-8111-111111111111", Destination: c.dest}
		if err := x.Prepare(ctx, nil, &d, c.s3, c.secret); !errors.Is(err, catalog.ErrInvalid) {
			t.Errorf("prepare %s: %v; want ErrInvalid", c.dest, err)
		}
	}
	d := catalog.DataExport{Workspace: e.ws, ExportID: "11111111-1111-4111-8111-111111111111", Destination: "s3://bucket/p"}
	if err := x.Prepare(ctx, nil, &d, &S3Config{Endpoint: "https://s3.example", AccessKeyID: "AK"}, &secret); err != nil {
		t.Fatal(err)
	}
	if len(d.DestSecretSealed) == 0 || bytes.Contains(d.DestSecretSealed, []byte(secret)) || strings.Contains(d.DestConfig, secret) {
		t.Fatalf("secret not sealed: %q %q", d.DestSecretSealed, d.DestConfig)
	}
	dst, err := x.destination(ctx, &d)
	if err != nil || dst.(*S3Destination).SecretKey != secret {
		t.Fatalf("destination: %v", err)
	}
	// An update without a secret keeps the sealed one.
	next := d
	next.DestSecretSealed = nil
	if err := x.Prepare(ctx, &d, &next, &S3Config{Endpoint: "https://s3.example", AccessKeyID: "AK"}, nil); err != nil || !bytes.Equal(next.DestSecretSealed, d.DestSecretSealed) {
		t.Fatalf("keep secret: %v", err)
	}
}
