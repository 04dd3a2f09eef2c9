package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"custos/internal/catalog"
	"custos/internal/crypt"
	"custos/internal/export"
	"custos/internal/store"
)

// TestVerifyExportCommand exports rows with the real exporter (catalog,
// store and keys in a data directory), then runs custos admin
// verify-export: intact, a modified file, and a removed newest manifest
// (found only through the catalog's recorded head).
func TestVerifyExportCommand(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	out := filepath.Join(t.TempDir(), "exports")
	pk, err := crypt.OpenPlatformKey(filepath.Join(dir, "keys", "platform.key"))
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Open(ctx, catalog.Options{Path: filepath.Join(dir, "catalog.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	boot, err := cat.Bootstrap(ctx, catalog.BootstrapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ws := boot.Workspace
	var x *export.Exporter
	db, err := store.Open(store.Options{Dir: filepath.Join(dir, "store"), Keys: pk, DisableBackground: true,
		OnCommit: func(ref store.TableRef, b *store.Batch) {
			if x != nil {
				x.OnCommit(ref, b)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	signer, err := export.OpenSigningKey(filepath.Join(dir, "keys", "export-signing.key"), pk)
	if err != nil {
		t.Fatal(err)
	}
	if x, err = export.New(export.Options{Rules: cat, Source: db, Signer: signer, AllowedDirs: []string{out}}); err != nil {
		t.Fatal(err)
	}
	tb, _, err := cat.PutTable(ctx, ws.SubscriptionID, ws.ResourceGroup, ws.Name, catalog.TableSpec{Name: "Cli_CL",
		Columns: []catalog.Column{{Name: "TimeGenerated", Type: store.TypeDatetime}, {Name: "Msg", Type: store.TypeString}}},
		catalog.Precondition{}, catalog.Actor{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.EnsureTable(ctx, tb.Ref(), tb.StoreSchema(), 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cat.PutDataExport(ctx, ws.ID(), catalog.DataExport{Name: "cli-rule", TableNames: []string{"Cli_CL"},
		Destination: "file://" + out, Enabled: true}, catalog.Actor{},
		func(ctx context.Context, old, next *catalog.DataExport) error {
			return x.Prepare(ctx, old, next, nil, nil)
		}); err != nil {
		t.Fatal(err)
	}
	x.Refresh(ctx)
	for range 2 {
		a, err := db.Appender(ctx, tb.Ref())
		if err != nil {
			t.Fatal(err)
		}
		b := &store.Batch{Len: 1, Schema: store.Schema{{Name: "TimeGenerated", Type: store.TypeDatetime}, {Name: "Msg", Type: store.TypeString}},
			Cols: []*store.Vector{{Type: store.TypeDatetime, Int: []int64{store.TicksFromTime(time.Now())}}, {Type: store.TypeString, Str: []string{"row"}}}}
		if err := a.Append(b); err != nil {
			t.Fatal(err)
		}
		if err := a.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		x.FlushNow(ctx)
	}
	run := func(args ...string) (string, error) {
		cmd := newVerifyExportCmd()
		var buf bytes.Buffer
		cmd.SetOut(&buf)
		cmd.SetErr(&buf)
		cmd.SetArgs(args)
		err := cmd.ExecuteContext(ctx)
		return buf.String(), err
	}
	got, err := run(out, "--data-dir", dir)
	if err != nil || !strings.Contains(got, "export intact: 2 manifests, 2 files, 2 rows") {
		t.Fatalf("intact: %v\n%s", err, got)
	}
	key, err := run("--data-dir", dir, "--print-public-key")
	if err != nil || len(strings.TrimSpace(key)) != 44 {
		t.Fatalf("print key: %v %q", err, key)
	}
	if got, err := run(out, "--public-key", strings.TrimSpace(key)); err != nil || !strings.Contains(got, "export intact") {
		t.Fatalf("with --public-key: %v\n%s", err, got)
	}
	// Remove the newest manifest: the chain alone still verifies, the
	// catalog's recorded head does not.
	mp := filepath.Join(out, "_manifests", "000000000002.json")
	moved := filepath.Join(t.TempDir(), "m2")
	if err := os.Rename(mp, moved); err != nil {
		t.Fatal(err)
	}
	got, err = run(out, "--data-dir", dir)
	if err == nil || !strings.Contains(got, "TAMPERED") {
		t.Fatalf("removed newest manifest: %v\n%s", err, got)
	}
	if err := os.Rename(moved, mp); err != nil {
		t.Fatal(err)
	}
	// Modify a data file.
	var data string
	filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".json") && !strings.Contains(p, "_manifests") {
			data = p
		}
		return nil
	})
	os.Chmod(data, 0o600)
	if err := os.WriteFile(data, []byte(`{"Msg":"forged"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err = run(out, "--data-dir", dir)
	if err == nil || !strings.Contains(got, "TAMPERED: modified") {
		t.Fatalf("modified file: %v\n%s", err, got)
	}
}
