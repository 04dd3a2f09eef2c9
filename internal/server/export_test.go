package server

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"custos/internal/crypt"
	"custos/internal/export"
)

// TestDataExportThroughARM creates a data export rule through ARM on a
// running server, ingests through the Logs Ingestion API, and finds the
// rows in the directory destination under a verifying signed chain, with
// the rule's metrics on /metrics.
func TestDataExportThroughARM(t *testing.T) {
	cfg := testConfig(newDataDir(t))
	out := filepath.Join(t.TempDir(), "exports")
	cfg.Export.AllowedDirectories = []string{out}
	cfg.Export.FlushInterval = 200 * time.Millisecond
	f := newNetworkFixture(t, cfg)
	c := netClient(t, f.ts)
	const v = "?api-version=2020-08-01"
	rule := f.ws + "/dataExports/to-dir"

	// Refused: outside the allowed directories, an Azure storage account,
	// an unknown table.
	for _, body := range []string{
		`{"properties":{"tableNames":["Net_CL"],"destination":{"resourceId":"file:///etc/custos"}}}`,
		`{"properties":{"tableNames":["Net_CL"],"destination":{"resourceId":"/subscriptions/s/resourceGroups/r/providers/Microsoft.Storage/storageAccounts/a"}}}`,
		`{"properties":{"tableNames":["Nope_CL"],"destination":{"resourceId":"file://` + out + `"}}}`,
	} {
		code, got, raw := f.ts.armCall(t, f.mgmt, "PUT", rule+v, body)
		if e, _ := got["error"].(map[string]any); code != 400 || e["code"] == nil {
			t.Errorf("PUT %s: %d %s; want 400", body, code, raw)
		}
	}
	code, got, raw := f.ts.armCall(t, f.mgmt, "PUT", rule+v,
		`{"properties":{"tableNames":["net_cl"],"destination":{"resourceId":"file://`+out+`"},"enable":true}}`)
	props, _ := got["properties"].(map[string]any)
	if code != 201 || props["dataExportId"] == "" || props["enable"] != true || got["type"] != "Microsoft.OperationalInsights/workspaces/dataExports" {
		t.Fatalf("PUT rule: %d %s", code, raw)
	}
	if tables, _ := props["tableNames"].([]any); len(tables) != 1 || tables[0] != "Net_CL" {
		t.Fatalf("tableNames %v", props["tableNames"])
	}
	id, _ := props["dataExportId"].(string)
	// The exporter picks up new rules within its refresh interval (10 s);
	// rows ingested meanwhile are read back from the store.
	for i := range 3 {
		if code, _, raw := f.upload(t, c, f.public, "export-"+string(rune('a'+i))); code != 204 {
			t.Fatalf("upload: %d %s", code, raw)
		}
	}
	pk, err := crypt.OpenPlatformKey(filepath.Join(cfg.DataDir, "keys", "platform.key"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := export.OpenSigningKey(filepath.Join(cfg.DataDir, "keys", exportSigningKeyFile), pk)
	if err != nil {
		t.Fatal(err)
	}
	dest := &export.DirDestination{Root: out}
	deadline := time.Now().Add(60 * time.Second)
	var rep export.Report
	for {
		rep, err = export.Verify(context.Background(), dest, signer.Public())
		if err == nil && rep.Rows >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rows not exported within 60 s: %+v %v", rep, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(rep.ExportIDs) != 1 || rep.ExportIDs[0] != id {
		t.Fatalf("report %+v; want export %s", rep, id)
	}
	resp, body := f.ts.get(t, "/metrics", f.mgmt)
	if resp.StatusCode != 200 || !strings.Contains(body, `custos_export_rows_total{export_id="`+id+`"}`) ||
		!strings.Contains(body, `custos_export_lag_seconds{export_id="`+id+`"}`) {
		t.Fatalf("/metrics: %d, no export metrics in %.300s", resp.StatusCode, body)
	}
	if code, got, raw := f.ts.armCall(t, f.mgmt, "GET", f.ws+"/dataExports"+v, ""); code != 200 || len(got["value"].([]any)) != 1 {
		t.Fatalf("list rules: %d %s", code, raw)
	}
	if code, _, raw := f.ts.armCall(t, f.mgmt, "DELETE", rule+v, ""); code != 200 {
		t.Fatalf("DELETE rule: %d %s", code, raw)
	}
}
