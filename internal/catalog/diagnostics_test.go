package catalog

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

func TestDiagnosticSettings(t *testing.T) {
	ctx := context.Background()
	c, err := Open(ctx, Options{Path: filepath.Join(t.TempDir(), "catalog.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, err := c.Bootstrap(ctx, BootstrapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ws := b.Workspace.ID()
	by := Actor{ID: "tester", Type: "User"}

	// Validation: a destination must be a workspace; categories are checked.
	for _, bad := range []DiagnosticSetting{
		{ResourceID: ws, Name: "a", WorkspaceID: "/subscriptions/x", Logs: []DiagnosticLog{{Category: "Audit", Enabled: true}}},
		{ResourceID: ws, Name: "a", WorkspaceID: ws, Logs: []DiagnosticLog{{Category: "Metrics", Enabled: true}}},
		{ResourceID: ws, Name: "a", WorkspaceID: ws},
		{ResourceID: ws, Name: "-bad", WorkspaceID: ws, Logs: []DiagnosticLog{{Category: "Audit", Enabled: true}}},
		{ResourceID: ws, Name: "a", WorkspaceID: ws + "x", Logs: []DiagnosticLog{{Category: "Audit", Enabled: true}}},
	} {
		if _, _, err := c.PutDiagnosticSetting(ctx, bad, by); !errors.Is(err, ErrInvalid) {
			t.Errorf("put %+v: %v; want ErrInvalid", bad, err)
		}
	}

	dests, err := c.QueryAuditDestinations(ctx, ws)
	if err != nil || len(dests) != 0 {
		t.Fatalf("destinations before any setting: %v %v", dests, err)
	}
	d, created, err := c.PutDiagnosticSetting(ctx, DiagnosticSetting{ResourceID: ws, Name: "audit", WorkspaceID: ws,
		Logs: []DiagnosticLog{{Category: "Audit", Enabled: true}}}, by)
	if err != nil || !created || d.ID() != ws+"/providers/Microsoft.Insights/diagnosticSettings/audit" {
		t.Fatalf("put: %+v %v %v", d, created, err)
	}
	// The same destination twice is one destination.
	if _, _, err := c.PutDiagnosticSetting(ctx, DiagnosticSetting{ResourceID: ws, Name: "all", WorkspaceID: ws,
		Logs: []DiagnosticLog{{CategoryGroup: "allLogs", Enabled: true}}}, by); err != nil {
		t.Fatal(err)
	}
	dests, err = c.QueryAuditDestinations(ctx, ws)
	if err != nil || len(dests) != 1 || dests[0] != b.Workspace.CustomerID {
		t.Fatalf("destinations: %v %v", dests, err)
	}
	// Disabled entries route nothing.
	if _, created, err := c.PutDiagnosticSetting(ctx, DiagnosticSetting{ResourceID: ws, Name: "AUDIT", WorkspaceID: ws,
		Logs: []DiagnosticLog{{Category: "Audit", Enabled: false}}}, by); err != nil || created {
		t.Fatalf("replace: %v %v", created, err)
	}
	got, err := c.DiagnosticSetting(ctx, ws, "Audit")
	if err != nil || got.Name != "audit" || got.RoutesAudit() || got.ResourceID != ws {
		t.Fatalf("get after replace: %+v %v", got, err)
	}
	list, err := c.DiagnosticSettings(ctx, ws)
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %+v %v", list, err)
	}
	if ok, err := c.DeleteDiagnosticSetting(ctx, ws, "all"); !ok || err != nil {
		t.Fatalf("delete: %v %v", ok, err)
	}
	if ok, err := c.DeleteDiagnosticSetting(ctx, ws, "all"); ok || err != nil {
		t.Fatalf("delete again: %v %v", ok, err)
	}
	dests, err = c.QueryAuditDestinations(ctx, ws)
	if err != nil || len(dests) != 0 {
		t.Fatalf("destinations after delete and disable: %v %v", dests, err)
	}
	if _, err := c.DiagnosticSetting(ctx, ws, "all"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get deleted: %v", err)
	}
}
