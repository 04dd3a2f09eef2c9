package catalog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"custos/internal/api"
	"custos/internal/identity"
	"custos/internal/rbac"
	"custos/internal/store"
)

const testSub = "11111111-2222-3333-4444-555555555555"

func openTest(t *testing.T) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "catalog", "catalog.db")
	c, err := Open(context.Background(), Options{Path: path})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, path
}

// seeded returns a catalog with a tenant, testSub and resource group "rg1".
func seeded(t *testing.T) *DB {
	t.Helper()
	c, _ := openTest(t)
	ctx := context.Background()
	if _, err := c.Bootstrap(ctx, BootstrapOptions{}); err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	if _, _, err := c.PutSubscription(ctx, Subscription{ID: testSub, DisplayName: "test"}); err != nil {
		t.Fatalf("PutSubscription: %v", err)
	}
	if _, _, err := c.PutResourceGroup(ctx, ResourceGroup{SubscriptionID: testSub, Name: "rg1", Location: "westeurope"}); err != nil {
		t.Fatalf("PutResourceGroup: %v", err)
	}
	return c
}

func wantCode(t *testing.T, err error, sentinel error, code string, fragment string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil error; want %s", code)
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("got %v; want errors.Is %v", err, sentinel)
	}
	var c api.Coded
	if !errors.As(err, &c) {
		t.Fatalf("error %v does not implement api.Coded", err)
	}
	got, _ := c.AzureError()
	if got != code {
		t.Fatalf("got code %q (%v); want %q", got, err, code)
	}
	if !strings.Contains(c.Error(), fragment) {
		t.Fatalf("got message %q; want it to contain %q", c.Error(), fragment)
	}
}

func TestOpenMigratesAndReopens(t *testing.T) {
	ctx := context.Background()
	c, path := openTest(t)
	ms, err := loadMigrations(c.d.migrations())
	if err != nil {
		t.Fatal(err)
	}
	want := ms[len(ms)-1].version
	v, err := c.SchemaVersion(ctx)
	if err != nil || v != want {
		t.Fatalf("SchemaVersion = %d, %v; want %d (the newest embedded migration)", v, err, want)
	}
	b, err := c.Bootstrap(ctx, BootstrapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("catalog file mode = %v; want 0600", st.Mode().Perm())
	}
	dst, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if dst.Mode().Perm() != 0o700 {
		t.Errorf("catalog dir mode = %v; want 0700", dst.Mode().Perm())
	}
	var mode string
	if err := c.sql.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	var fk int
	if err := c.sql.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
		t.Errorf("foreign_keys = %d, %v; want 1", fk, err)
	}
	c.Close()

	c2, err := Open(ctx, Options{Path: path})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer c2.Close()
	if v, _ := c2.SchemaVersion(ctx); v != want {
		t.Fatalf("SchemaVersion after reopen = %d; want %d", v, want)
	}
	b2, err := c2.Bootstrap(ctx, BootstrapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(b2.Created) != 0 {
		t.Errorf("second Bootstrap created %v; want nothing", b2.Created)
	}
	if b2.Workspace.CustomerID != b.Workspace.CustomerID || b2.Subscription.ID != b.Subscription.ID || b2.Tenant.ID != b.Tenant.ID {
		t.Errorf("Bootstrap not idempotent: %+v vs %+v", b2, b)
	}
	var n int
	if err := c2.sql.QueryRowContext(ctx, "SELECT COUNT(*) FROM schema_migrations").Scan(&n); err != nil || n != len(ms) {
		t.Errorf("schema_migrations rows = %d, %v; want %d (each migration once)", n, err, len(ms))
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	c, path := openTest(t)
	if _, err := c.sql.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', '')`); err != nil {
		t.Fatal(err)
	}
	c.Close()
	_, err := Open(ctx, Options{Path: path})
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open of a newer schema: got %v; want an error about a newer version", err)
	}
}

func TestOpenNoPath(t *testing.T) {
	if _, err := Open(context.Background(), Options{}); err == nil {
		t.Fatal("Open without a path succeeded")
	}
}

func TestBootstrap(t *testing.T) {
	ctx := context.Background()
	c, _ := openTest(t)
	b, err := c.Bootstrap(ctx, BootstrapOptions{TenantID: "AAAAAAAA-0000-4000-8000-000000000001", SubscriptionID: testSub})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(b.Created, ","); got != "tenant,subscription,resourceGroup,workspace" {
		t.Errorf("Created = %q", got)
	}
	if b.Tenant.ID != "aaaaaaaa-0000-4000-8000-000000000001" || b.Subscription.ID != testSub || b.Subscription.DisplayName != "default" {
		t.Errorf("bootstrap ids: tenant %q subscription %q (%q)", b.Tenant.ID, b.Subscription.ID, b.Subscription.DisplayName)
	}
	if b.ResourceGroup.Name != "default" || b.Workspace.Name != "default" || !IsGUID(b.Workspace.CustomerID) {
		t.Errorf("bootstrap resources: %+v %+v", b.ResourceGroup, b.Workspace)
	}
	tables, err := c.WorkspaceTables(ctx, b.Workspace.CustomerID)
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) != len(StandardTableNames()) {
		t.Errorf("default workspace has %d tables; want %d", len(tables), len(StandardTableNames()))
	}
	// A deleted default workspace comes back.
	if _, ok, err := c.DeleteWorkspace(ctx, testSub, "default", "default", Precondition{}); err != nil || !ok {
		t.Fatalf("DeleteWorkspace = %v, %v", ok, err)
	}
	b2, err := c.Bootstrap(ctx, BootstrapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(b2.Created, ",") != "workspace" || b2.Workspace.CustomerID == b.Workspace.CustomerID {
		t.Errorf("re-bootstrap: created %v, customer id %s (old %s)", b2.Created, b2.Workspace.CustomerID, b.Workspace.CustomerID)
	}
	if id, _ := c.DefaultSubscriptionID(ctx); id != testSub {
		t.Errorf("DefaultSubscriptionID = %q", id)
	}
}

func TestForeignKeysEnforced(t *testing.T) {
	ctx := context.Background()
	c := seeded(t)
	// Directly, below the repositories: an orphan resource group is refused.
	_, err := c.sql.ExecContext(ctx, `INSERT INTO resource_groups (rg_key, sub_key, name, location, managed_by, tags, created_at, modified_at)
		VALUES ('x', 'no-such-sub', 'x', 'l', '', '{}', '', '')`)
	if err == nil || !c.d.isForeignKeyViolation(err) {
		t.Fatalf("orphan insert: got %v; want a foreign key violation", err)
	}
	// Through the repositories: parents are checked with ARM's codes.
	_, _, err = c.PutResourceGroup(ctx, ResourceGroup{SubscriptionID: "99999999-2222-3333-4444-555555555555", Name: "rg", Location: "l"})
	wantCode(t, err, ErrNotFound, "SubscriptionNotFound", "99999999-2222-3333-4444-555555555555")
	_, _, err = c.PutWorkspace(ctx, Workspace{SubscriptionID: testSub, ResourceGroup: "nope", Name: "ws-1", Location: "l"}, Precondition{}, Actor{})
	wantCode(t, err, ErrNotFound, "ResourceGroupNotFound", "'nope'")
	// Deleting a table's workspace cascades.
	w, _, err := c.PutWorkspace(ctx, Workspace{SubscriptionID: testSub, ResourceGroup: "rg1", Name: "ws-1", Location: "l"}, Precondition{}, Actor{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.DeleteWorkspace(ctx, testSub, "rg1", "ws-1", Precondition{}); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := c.sql.QueryRowContext(ctx, `SELECT COUNT(*) FROM workspace_tables WHERE ws_key = ?`, key(w.ID())).Scan(&n); err != nil || n != 0 {
		t.Fatalf("tables left after workspace delete: %d, %v", n, err)
	}
	// A subscription with resource groups cannot be deleted.
	_, err = c.DeleteSubscription(ctx, testSub)
	wantCode(t, err, ErrConflict, "SubscriptionNotEmpty", "resource group")
}

func TestWorkspaceLifecycle(t *testing.T) {
	ctx := context.Background()
	c := seeded(t)
	by := Actor{ID: "obj-1", Type: "Application"}
	w, created, err := c.PutWorkspace(ctx, Workspace{SubscriptionID: testSub, ResourceGroup: "RG1", Name: "My-Workspace", Location: "westeurope",
		Tags: map[string]string{"env": "test"}}, Precondition{}, by)
	if err != nil || !created {
		t.Fatalf("PutWorkspace = %v, %v", created, err)
	}
	if w.ResourceGroup != "rg1" || w.RetentionInDays != 30 || w.SKU != "PerGB2018" || w.PublicNetworkAccessForQuery != "Enabled" ||
		w.ProvisioningState != "Succeeded" || !IsGUID(w.CustomerID) || w.DailyQuotaGB != -1 || w.Audit.CreatedBy != "obj-1" {
		t.Errorf("defaults not applied: %+v", w)
	}
	if !regexp.MustCompile(`^"[0-9a-f-]{36}"$`).MatchString(w.ETag) {
		t.Errorf("etag %q is not a quoted GUID", w.ETag)
	}
	got, err := c.Workspace(ctx, strings.ToUpper(testSub), "rg1", "MY-WORKSPACE")
	if err != nil || got.Name != "My-Workspace" || got.CustomerID != w.CustomerID || got.Tags["env"] != "test" {
		t.Fatalf("case-insensitive Workspace = %+v, %v", got, err)
	}
	if got, err := c.WorkspaceByCustomerID(ctx, strings.ToUpper(w.CustomerID)); err != nil || got.Name != w.Name {
		t.Fatalf("WorkspaceByCustomerID = %+v, %v", got, err)
	}
	if got, err := c.WorkspaceByResourceID(ctx, strings.ToLower(w.ID())); err != nil || got.CustomerID != w.CustomerID {
		t.Fatalf("WorkspaceByResourceID = %+v, %v", got, err)
	}

	// If-None-Match: * on an existing workspace.
	_, _, err = c.PutWorkspace(ctx, Workspace{SubscriptionID: testSub, ResourceGroup: "rg1", Name: "my-workspace", Location: "westeurope"},
		Precondition{IfNoneMatch: "*"}, by)
	wantCode(t, err, ErrPreconditionFailed, "PreconditionFailed", "condition")
	// If-Match with a stale ETag.
	_, _, err = c.PutWorkspace(ctx, Workspace{SubscriptionID: testSub, ResourceGroup: "rg1", Name: "my-workspace", Location: "westeurope"},
		Precondition{IfMatch: `"stale"`}, by)
	wantCode(t, err, ErrPreconditionFailed, "PreconditionFailed", "condition")
	// Update with the right ETag: customerId and name casing kept, new ETag.
	w2, created, err := c.PutWorkspace(ctx, Workspace{SubscriptionID: testSub, ResourceGroup: "rg1", Name: "my-workspace", Location: "westeurope",
		RetentionInDays: 90, PublicNetworkAccessForQuery: "disabled"}, Precondition{IfMatch: w.ETag}, Actor{ID: "obj-2"})
	if err != nil || created {
		t.Fatalf("update = %v, %v", created, err)
	}
	if w2.CustomerID != w.CustomerID || w2.Name != "My-Workspace" || w2.ETag == w.ETag || w2.RetentionInDays != 90 ||
		w2.PublicNetworkAccessForQuery != "Disabled" || w2.Audit.CreatedBy != "obj-1" || w2.Audit.ModifiedBy != "obj-2" {
		t.Errorf("update result: %+v", w2)
	}
	// customerId is immutable.
	_, _, err = c.PutWorkspace(ctx, Workspace{SubscriptionID: testSub, ResourceGroup: "rg1", Name: "my-workspace", Location: "westeurope",
		CustomerID: "00000000-0000-0000-0000-000000000000"}, Precondition{}, by)
	wantCode(t, err, ErrInvalid, "InvalidParameter", "cannot be changed")

	list, err := c.Workspaces(ctx, testSub, "")
	if err != nil || len(list) != 1 {
		t.Fatalf("Workspaces(sub) = %d, %v", len(list), err)
	}
	list, err = c.Workspaces(ctx, testSub, "RG1")
	if err != nil || len(list) != 1 {
		t.Fatalf("Workspaces(rg) = %d, %v", len(list), err)
	}
	_, err = c.Workspaces(ctx, testSub, "nope")
	wantCode(t, err, ErrNotFound, "ResourceGroupNotFound", "nope")

	_, _, err = c.DeleteWorkspace(ctx, testSub, "rg1", "my-workspace", Precondition{IfMatch: w.ETag})
	wantCode(t, err, ErrPreconditionFailed, "PreconditionFailed", "condition")
	if _, ok, err := c.DeleteWorkspace(ctx, testSub, "rg1", "my-workspace", Precondition{IfMatch: w2.ETag}); err != nil || !ok {
		t.Fatalf("DeleteWorkspace = %v, %v", ok, err)
	}
	if _, ok, err := c.DeleteWorkspace(ctx, testSub, "rg1", "my-workspace", Precondition{}); err != nil || ok {
		t.Fatalf("second DeleteWorkspace = %v, %v; want false, nil", ok, err)
	}
	_, err = c.Workspace(ctx, testSub, "rg1", "my-workspace")
	wantCode(t, err, ErrNotFound, "ResourceNotFound", "The Resource 'Microsoft.OperationalInsights/workspaces/my-workspace' under resource group 'rg1' was not found")
	_, err = c.WorkspaceByCustomerID(ctx, w.CustomerID)
	wantCode(t, err, ErrNotFound, "WorkspaceNotFound", w.CustomerID)
}

func TestWorkspaceValidation(t *testing.T) {
	ctx := context.Background()
	c := seeded(t)
	base := Workspace{SubscriptionID: testSub, ResourceGroup: "rg1", Name: "ws-ok", Location: "westeurope"}
	cases := []struct {
		name   string
		mod    func(*Workspace)
		code   string
		substr string
	}{
		{"short name", func(w *Workspace) { w.Name = "ab" }, "InvalidWorkspaceName", "4 to 63"},
		{"bad char", func(w *Workspace) { w.Name = "ws_1" }, "InvalidWorkspaceName", "ws_1"},
		{"no location", func(w *Workspace) { w.Location = " " }, "LocationRequired", "location"},
		{"retention low", func(w *Workspace) { w.RetentionInDays = 29 }, "InvalidParameter", "between 30 and 730"},
		{"retention high", func(w *Workspace) { w.RetentionInDays = 731 }, "InvalidParameter", "between 30 and 730"},
		{"sku", func(w *Workspace) { w.SKU = "Gold" }, "InvalidParameter", "SKU 'Gold'"},
		{"network", func(w *Workspace) { w.PublicNetworkAccessForIngestion = "Maybe" }, "InvalidParameter", "publicNetworkAccessForIngestion"},
		{"quota", func(w *Workspace) { w.DailyQuotaGB = -2 }, "InvalidParameter", "dailyQuotaGb"},
		{"tags", func(w *Workspace) { w.Tags = map[string]string{"a/b": "x"} }, "InvalidTagNameCharacters", "a/b"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := base
			tc.mod(&w)
			_, _, err := c.PutWorkspace(ctx, w, Precondition{}, Actor{})
			wantCode(t, err, ErrInvalid, tc.code, tc.substr)
		})
	}
}

func newWorkspace(t *testing.T, c *DB, name string) Workspace {
	t.Helper()
	w, _, err := c.PutWorkspace(context.Background(), Workspace{SubscriptionID: testSub, ResourceGroup: "rg1", Name: name, Location: "westeurope"}, Precondition{}, Actor{})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestStandardTables(t *testing.T) {
	ctx := context.Background()
	c := seeded(t)
	w := newWorkspace(t, c, "ws-std")
	tables, err := c.Tables(ctx, testSub, "rg1", "ws-std")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]Table{}
	for _, tb := range tables {
		names[tb.Name] = tb
	}
	for _, n := range []string{"Heartbeat", "Syslog", "Perf", "InsightsMetrics", "ContainerLogV2", "LAQueryLogs"} {
		tb, ok := names[n]
		if !ok {
			t.Errorf("standard table %s missing", n)
			continue
		}
		if tb.Type != TableTypeMicrosoft || tb.EffectiveRetentionInDays() != 30 || tb.EffectiveTotalRetentionInDays() != 30 || tb.Plan != PlanAnalytics {
			t.Errorf("%s: %+v", n, tb)
		}
		qs := tb.QuerySchema()
		for _, sys := range []string{"TimeGenerated", "TenantId", "Type", "_ResourceId", "_ItemId", "_TimeReceived", "SourceSystem"} {
			if qs.Index(sys) < 0 {
				t.Errorf("%s query schema lacks %s", n, sys)
			}
		}
		ss := tb.StoreSchema()
		for _, owned := range []string{"TimeGenerated", "TenantId", "Type", "_ResourceId", "_ItemId", "_TimeReceived"} {
			if ss.Index(owned) >= 0 {
				t.Errorf("%s store schema includes store-owned %s", n, owned)
			}
		}
		if tb.Ref() != (store.TableRef{WorkspaceID: w.CustomerID, Table: n}) {
			t.Errorf("%s Ref = %+v", n, tb.Ref())
		}
	}
	sl := names["Syslog"]
	syslog := sl.QuerySchema()
	for col, typ := range map[string]store.ColumnType{"ProcessID": store.TypeInt, "EventTime": store.TypeDatetime, "SyslogMessage": store.TypeString} {
		if i := syslog.Index(col); i < 0 || syslog[i].Type != typ {
			t.Errorf("Syslog.%s: index %d", col, i)
		}
	}
	cl2 := names["ContainerLogV2"]
	if cl := cl2.QuerySchema(); cl[cl.Index("LogMessage")].Type != store.TypeDynamic {
		t.Errorf("ContainerLogV2.LogMessage is not dynamic")
	}
	// Built-in tables cannot be deleted.
	_, _, err = c.DeleteTable(ctx, testSub, "rg1", "ws-std", "syslog", Precondition{})
	wantCode(t, err, ErrInvalid, "InvalidParameter", "cannot be deleted")
	// Workspace retention flows into tables that use the default.
	if _, _, err := c.PutWorkspace(ctx, Workspace{SubscriptionID: testSub, ResourceGroup: "rg1", Name: "ws-std", Location: "westeurope", RetentionInDays: 120}, Precondition{}, Actor{}); err != nil {
		t.Fatal(err)
	}
	tb, err := c.Table(ctx, testSub, "rg1", "ws-std", "heartbeat")
	if err != nil || tb.Name != "Heartbeat" || tb.EffectiveTotalRetentionInDays() != 120 {
		t.Fatalf("Heartbeat after workspace retention change = %+v, %v", tb, err)
	}
	// _CF columns can be added to built-in tables.
	tb, created, err := c.PutTable(ctx, testSub, "rg1", "ws-std", TableSpec{Name: "Syslog", Columns: []Column{{Name: "Extra_CF", Type: store.TypeString}},
		RetentionInDays: 60, TotalRetentionInDays: 365}, Precondition{}, Actor{})
	if err != nil || created {
		t.Fatalf("PutTable(Syslog) = %v, %v", created, err)
	}
	if tb.StoreSchema().Index("Extra_CF") < 0 || tb.StoreSchema().Index("SyslogMessage") < 0 || tb.EffectiveTotalRetentionInDays() != 365 {
		t.Errorf("Syslog after update: %+v", tb)
	}
}

func TestCustomTableRules(t *testing.T) {
	ctx := context.Background()
	c := seeded(t)
	newWorkspace(t, c, "ws-tab")
	tg := Column{Name: "TimeGenerated", Type: store.TypeDatetime}
	cases := []struct {
		name   string
		spec   TableSpec
		substr string
	}{
		{"no _CL", TableSpec{Name: "MyTable", Columns: []Column{tg}}, "must end with '_CL'"},
		{"bad table chars", TableSpec{Name: "1My_CL", Columns: []Column{tg}}, "must start with a letter"},
		{"no TimeGenerated", TableSpec{Name: "My_CL", Columns: []Column{{Name: "A", Type: store.TypeString}}}, "'TimeGenerated'"},
		{"TimeGenerated type", TableSpec{Name: "My_CL", Columns: []Column{{Name: "TimeGenerated", Type: store.TypeString}}}, "must be of type dateTime"},
		{"column starts with digit", TableSpec{Name: "My_CL", Columns: []Column{tg, {Name: "1a", Type: store.TypeString}}}, "must start with a letter"},
		{"column underscore", TableSpec{Name: "My_CL", Columns: []Column{tg, {Name: "_x", Type: store.TypeString}}}, "must start with a letter"},
		{"column too long", TableSpec{Name: "My_CL", Columns: []Column{tg, {Name: strings.Repeat("a", 46), Type: store.TypeString}}}, "at most 45"},
		{"column dash", TableSpec{Name: "My_CL", Columns: []Column{tg, {Name: "a-b", Type: store.TypeString}}}, "invalid"},
		{"reserved id", TableSpec{Name: "My_CL", Columns: []Column{tg, {Name: "id", Type: store.TypeString}}}, "reserved"},
		{"reserved TenantId", TableSpec{Name: "My_CL", Columns: []Column{tg, {Name: "tenantid", Type: store.TypeString}}}, "reserved"},
		{"reserved Type", TableSpec{Name: "My_CL", Columns: []Column{tg, {Name: "Type", Type: store.TypeString}}}, "reserved"},
		{"reserved UniqueId", TableSpec{Name: "My_CL", Columns: []Column{tg, {Name: "UniqueId", Type: store.TypeString}}}, "reserved"},
		{"reserved Title", TableSpec{Name: "My_CL", Columns: []Column{tg, {Name: "Title", Type: store.TypeString}}}, "reserved"},
		{"bad type", TableSpec{Name: "My_CL", Columns: []Column{tg, {Name: "A", Type: store.TypeTimespan}}}, "unsupported type"},
		{"duplicate", TableSpec{Name: "My_CL", Columns: []Column{tg, {Name: "A", Type: store.TypeString}, {Name: "a", Type: store.TypeLong}}}, "more than once"},
		{"retention", TableSpec{Name: "My_CL", Columns: []Column{tg}, RetentionInDays: 3}, "between 4 and 730"},
		{"total retention", TableSpec{Name: "My_CL", Columns: []Column{tg}, TotalRetentionInDays: 5000}, "between 4 and 4383"},
		{"total below retention", TableSpec{Name: "My_CL", Columns: []Column{tg}, RetentionInDays: 90, TotalRetentionInDays: 60}, "must not be less"},
		{"plan", TableSpec{Name: "My_CL", Columns: []Column{tg}, Plan: "Auxiliary"}, "plan 'Auxiliary'"},
		{"standard without _CF", TableSpec{Name: "Heartbeat", Columns: []Column{{Name: "Mine", Type: store.TypeString}}}, "must end with '_CF'"},
		{"standard duplicate", TableSpec{Name: "Heartbeat", Columns: []Column{{Name: "Computer", Type: store.TypeString}}}, "_CF"},
		{"hint", TableSpec{Name: "My_CL", Columns: []Column{tg, {Name: "A", Type: store.TypeString, DataTypeHint: "email"}}}, "dataTypeHint"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := c.PutTable(ctx, testSub, "rg1", "ws-tab", tc.spec, Precondition{}, Actor{})
			wantCode(t, err, ErrInvalid, "InvalidParameter", tc.substr)
		})
	}
	if _, err := c.Table(ctx, testSub, "rg1", "ws-tab", "My_CL"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a failed PutTable left a table behind: %v", err)
	}
	_, _, err := c.PutTable(ctx, testSub, "rg1", "no-such-ws", TableSpec{Name: "My_CL", Columns: []Column{tg}}, Precondition{}, Actor{})
	wantCode(t, err, ErrNotFound, "ResourceNotFound", "no-such-ws")
}

func TestCustomTableEvolution(t *testing.T) {
	ctx := context.Background()
	c := seeded(t)
	w := newWorkspace(t, c, "ws-evo")
	tg := Column{Name: "TimeGenerated", Type: store.TypeDatetime, Description: "time"}
	spec := TableSpec{Name: "App_CL", Columns: []Column{tg, {Name: "Msg", Type: store.TypeString}, {Name: "Ok", Type: store.TypeBool}}}
	tb, created, err := c.PutTable(ctx, testSub, "rg1", "ws-evo", spec, Precondition{IfNoneMatch: "*"}, Actor{})
	if err != nil || !created {
		t.Fatalf("create = %v, %v", created, err)
	}
	if tb.Type != TableTypeCustomLog || tb.WorkspaceCustomerID != w.CustomerID || tb.RetentionInDays != -1 || tb.TotalRetentionInDays != -1 {
		t.Errorf("created table: %+v", tb)
	}
	want := store.Schema{{Name: "Msg", Type: store.TypeString}, {Name: "Ok", Type: store.TypeBool}}
	if fmt.Sprint(tb.StoreSchema()) != fmt.Sprint(want) {
		t.Errorf("StoreSchema = %v; want %v", tb.StoreSchema(), want)
	}
	_, _, err = c.PutTable(ctx, testSub, "rg1", "ws-evo", spec, Precondition{IfNoneMatch: "*"}, Actor{})
	wantCode(t, err, ErrPreconditionFailed, "PreconditionFailed", "condition")

	// Adding a column is allowed.
	spec.Columns = append(spec.Columns, Column{Name: "Count", Type: store.TypeLong})
	tb2, created, err := c.PutTable(ctx, testSub, "rg1", "ws-evo", spec, Precondition{IfMatch: tb.ETag}, Actor{})
	if err != nil || created || tb2.ETag == tb.ETag || len(tb2.Columns) != 4 {
		t.Fatalf("add column = %+v, %v, %v", tb2, created, err)
	}
	// Changing a type is rejected.
	bad := TableSpec{Name: "App_CL", Columns: []Column{tg, {Name: "Msg", Type: store.TypeLong}, {Name: "Ok", Type: store.TypeBool}, {Name: "Count", Type: store.TypeLong}}}
	_, _, err = c.PutTable(ctx, testSub, "rg1", "ws-evo", bad, Precondition{}, Actor{})
	wantCode(t, err, ErrInvalid, "InvalidParameter", "cannot be changed from string to long")
	// Removing a column is rejected.
	_, _, err = c.PutTable(ctx, testSub, "rg1", "ws-evo", TableSpec{Name: "App_CL", Columns: []Column{tg}}, Precondition{}, Actor{})
	wantCode(t, err, ErrInvalid, "InvalidParameter", "cannot be removed")

	got, err := c.TableByCustomerID(ctx, w.CustomerID, "app_cl")
	if err != nil || got.Name != "App_CL" || len(got.Columns) != 4 {
		t.Fatalf("TableByCustomerID = %+v, %v", got, err)
	}
	all, err := c.AllTables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range all {
		found = found || (a.Name == "App_CL" && a.WorkspaceCustomerID == w.CustomerID)
	}
	if !found {
		t.Errorf("AllTables lacks App_CL")
	}
	if _, ok, err := c.DeleteTable(ctx, testSub, "rg1", "ws-evo", "APP_CL", Precondition{IfMatch: tb2.ETag}); err != nil || !ok {
		t.Fatalf("DeleteTable = %v, %v", ok, err)
	}
	if _, ok, err := c.DeleteTable(ctx, testSub, "rg1", "ws-evo", "APP_CL", Precondition{}); err != nil || ok {
		t.Fatalf("second DeleteTable = %v, %v", ok, err)
	}
}

func TestDataCollectionRules(t *testing.T) {
	ctx := context.Background()
	c := seeded(t)
	props := DCRProperties{
		StreamDeclarations: map[string]StreamDeclaration{"Custom-App": {Columns: []StreamColumn{{Name: "TimeGenerated", Type: "datetime"}}}},
		Destinations:       &DCRDestinations{LogAnalytics: []LogAnalyticsDestination{{WorkspaceResourceID: "/x", Name: "la"}}},
		DataFlows:          []DataFlow{{Streams: []string{"Custom-App"}, Destinations: []string{"la"}, OutputStream: "Custom-App_CL"}},
	}
	d, created, err := c.PutDataCollectionRule(ctx, DataCollectionRule{SubscriptionID: testSub, ResourceGroup: "rg1", Name: "dcr1", Location: "westeurope", Kind: "Direct", Properties: props}, Precondition{}, Actor{})
	if err != nil || !created {
		t.Fatalf("PutDataCollectionRule = %v, %v", created, err)
	}
	if !regexp.MustCompile(`^dcr-[0-9a-f]{32}$`).MatchString(d.ImmutableID) || d.Properties.ImmutableID != d.ImmutableID {
		t.Errorf("immutable id %q / %q", d.ImmutableID, d.Properties.ImmutableID)
	}
	got, err := c.DataCollectionRuleByImmutableID(ctx, d.ImmutableID)
	if err != nil || got.Name != "dcr1" || got.Properties.DataFlows[0].OutputStream != "Custom-App_CL" || got.Kind != "Direct" {
		t.Fatalf("by immutable id = %+v, %v", got, err)
	}
	if tbl, ok := got.Properties.DataFlows[0].OutputTable("Custom-App"); !ok || tbl != "App_CL" {
		t.Errorf("OutputTable = %q, %v", tbl, ok)
	}
	d2, created, err := c.PutDataCollectionRule(ctx, DataCollectionRule{SubscriptionID: testSub, ResourceGroup: "rg1", Name: "DCR1", Location: "westeurope", Properties: props}, Precondition{IfMatch: d.ETag}, Actor{})
	if err != nil || created || d2.ImmutableID != d.ImmutableID || d2.ETag == d.ETag || d2.Name != "dcr1" {
		t.Fatalf("update = %+v, %v, %v", d2, created, err)
	}
	_, _, err = c.PutDataCollectionRule(ctx, DataCollectionRule{SubscriptionID: testSub, ResourceGroup: "rg1", Name: "dcr1", Location: "westeurope", ImmutableID: "dcr-00000000000000000000000000000000", Properties: props}, Precondition{}, Actor{})
	wantCode(t, err, ErrInvalid, "InvalidPayload", "cannot be changed")
	list, err := c.DataCollectionRules(ctx, testSub, "")
	if err != nil || len(list) != 1 {
		t.Fatalf("list = %d, %v", len(list), err)
	}
	_, err = c.DataCollectionRuleByImmutableID(ctx, "dcr-ffffffffffffffffffffffffffffffff")
	wantCode(t, err, ErrNotFound, "NotFound", "dcr-ffff")
	if _, ok, err := c.DeleteDataCollectionRule(ctx, testSub, "rg1", "dcr1", Precondition{}); err != nil || !ok {
		t.Fatalf("delete = %v, %v", ok, err)
	}
	_, err = c.DataCollectionRule(ctx, testSub, "rg1", "dcr1")
	wantCode(t, err, ErrNotFound, "ResourceNotFound", "Microsoft.Insights/dataCollectionRules/dcr1")
}

func TestResourceGroupDeletion(t *testing.T) {
	ctx := context.Background()
	c := seeded(t)
	w := newWorkspace(t, c, "ws-rg")
	_, _, err := c.PutResourceGroup(ctx, ResourceGroup{SubscriptionID: testSub, Name: "rg1", Location: "eastus"})
	wantCode(t, err, ErrConflict, "InvalidResourceGroupLocation", "already exists in location 'westeurope'")
	_, _, err = c.DeleteResourceGroup(ctx, testSub, "rg1", nil)
	wantCode(t, err, ErrConflict, "ResourceGroupNotEmpty", "Microsoft.OperationalInsights/workspaces")
	_, _, err = c.DeleteResourceGroup(ctx, testSub, "rg1", []string{"Microsoft.Insights/dataCollectionRules"})
	wantCode(t, err, ErrConflict, "ResourceGroupNotEmpty", "forceDeletionTypes")
	del, ok, err := c.DeleteResourceGroup(ctx, testSub, "RG1", []string{"microsoft.operationalinsights/workspaces"})
	if err != nil || !ok || len(del.Workspaces) != 1 || del.Workspaces[0].CustomerID != w.CustomerID {
		t.Fatalf("forced delete = %+v, %v, %v", del, ok, err)
	}
	if _, ok, err := c.DeleteResourceGroup(ctx, testSub, "rg1", nil); err != nil || ok {
		t.Fatalf("second delete = %v, %v", ok, err)
	}
	if _, err := c.WorkspaceByCustomerID(ctx, w.CustomerID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("workspace survived its resource group: %v", err)
	}
}

func TestIdentityStore(t *testing.T) {
	ctx := context.Background()
	c, _ := openTest(t)
	var s identity.Store = c
	tenant, app, obj := "aaaaaaaa-0000-4000-8000-000000000001", "bbbbbbbb-0000-4000-8000-000000000002", "cccccccc-0000-4000-8000-000000000003"
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	sp := identity.ServicePrincipal{TenantID: tenant, AppID: app, ObjectID: obj, DisplayName: "ci",
		Secrets: []identity.ClientSecret{{KeyID: "k1", Hint: "abc", Hash: []byte{1, 2, 3}, Expires: exp}}}
	if err := s.CreateServicePrincipal(ctx, sp); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateServicePrincipal(ctx, sp); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate CreateServicePrincipal: %v", err)
	}
	if err := s.AddClientSecret(ctx, tenant, strings.ToUpper(app), identity.ClientSecret{KeyID: "k2", Hint: "def", Hash: []byte{4}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.ServicePrincipalByAppID(ctx, tenant, app)
	if err != nil || got.ObjectID != obj || got.DisplayName != "ci" || len(got.Secrets) != 2 || !got.Secrets[0].Expires.Equal(exp) ||
		string(got.Secrets[0].Hash) != "\x01\x02\x03" || !got.Secrets[1].Expires.IsZero() {
		t.Fatalf("ServicePrincipalByAppID = %+v, %v", got, err)
	}
	if _, err := s.ServicePrincipalByAppID(ctx, tenant, "nope"); !errors.Is(err, identity.ErrNotFound) {
		t.Fatalf("missing principal: %v; want identity.ErrNotFound", err)
	}
	if err := s.AddClientSecret(ctx, tenant, "nope", identity.ClientSecret{KeyID: "k3", Hash: []byte{1}}); !errors.Is(err, identity.ErrNotFound) {
		t.Fatalf("secret for missing principal: %v; want identity.ErrNotFound", err)
	}

	k := identity.SigningKey{KID: "kid1", Algorithm: "ES256", PrivateSealed: []byte("sealed"), PublicJWK: []byte(`{"kty":"EC"}`),
		Created: exp, SignUntil: exp.Add(time.Hour), PublishUntil: exp.Add(2 * time.Hour)}
	if err := s.PutSigningKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	k.PublishUntil = exp.Add(3 * time.Hour)
	if err := s.PutSigningKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	keys, err := s.SigningKeys(ctx)
	if err != nil || len(keys) != 1 || !keys[0].PublishUntil.Equal(k.PublishUntil) || string(keys[0].PrivateSealed) != "sealed" {
		t.Fatalf("SigningKeys = %+v, %v", keys, err)
	}
	if err := s.DeleteSigningKey(ctx, "kid1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSigningKey(ctx, "kid1"); !errors.Is(err, identity.ErrNotFound) {
		t.Fatalf("second DeleteSigningKey: %v; want identity.ErrNotFound", err)
	}
}

func TestRoleAssignmentStore(t *testing.T) {
	ctx := context.Background()
	c, _ := openTest(t)
	var s rbac.AssignmentStore = c
	mk := func(name, scope, principal string) rbac.RoleAssignment {
		return rbac.RoleAssignment{ID: scope + "/providers/Microsoft.Authorization/roleAssignments/" + name, Name: name, Scope: rbac.Scope(scope),
			RoleDefinitionID: "8e3af657-a8ff-443c-a75c-2fe8c4bcd635", PrincipalID: principal, PrincipalType: "ServicePrincipal"}
	}
	sub := "/subscriptions/" + testSub
	as := []rbac.RoleAssignment{
		mk("a1", "/", "p1"),
		mk("a2", sub, "P2"),
		mk("a3", sub+"/resourceGroups/rg1", "p1"),
		mk("a4", sub+"/resourceGroups/rg10", "p3"),
		mk("a5", sub+"/resourceGroups/rg_1", "p3"),
	}
	for _, a := range as {
		if err := s.CreateRoleAssignment(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateRoleAssignment(ctx, as[0]); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate: %v", err)
	}
	got, err := s.RoleAssignmentsFor(ctx, []string{"p1", "p2"})
	if err != nil || len(got) != 3 {
		t.Fatalf("RoleAssignmentsFor = %d, %v", len(got), err)
	}
	got, err = s.ListRoleAssignments(ctx, rbac.Scope(strings.ToUpper(sub)+"/resourcegroups/RG1"))
	if err != nil || len(got) != 1 || got[0].Name != "a3" {
		t.Fatalf("ListRoleAssignments(rg1) = %+v, %v", got, err)
	}
	got, err = s.ListRoleAssignments(ctx, rbac.Scope(sub+"/"))
	if err != nil || len(got) != 4 {
		t.Fatalf("ListRoleAssignments(sub) = %d, %v", len(got), err)
	}
	got, err = s.ListRoleAssignments(ctx, "/")
	if err != nil || len(got) != 5 || got[0].Created.IsZero() {
		t.Fatalf("ListRoleAssignments(/) = %d, %v", len(got), err)
	}
	if err := s.DeleteRoleAssignment(ctx, strings.ToUpper(as[1].ID)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRoleAssignment(ctx, as[1].ID); !errors.Is(err, rbac.ErrNotFound) {
		t.Fatalf("second delete: %v; want rbac.ErrNotFound", err)
	}
}

func TestConcurrentWrites(t *testing.T) {
	ctx := context.Background()
	c := seeded(t)
	newWorkspace(t, c, "ws-conc")
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 5 {
				spec := TableSpec{Name: fmt.Sprintf("T%d_%d_CL", i, j), Columns: []Column{{Name: "TimeGenerated", Type: store.TypeDatetime}}}
				if _, _, err := c.PutTable(ctx, testSub, "rg1", "ws-conc", spec, Precondition{}, Actor{}); err != nil {
					errs <- err
				}
				w := Workspace{SubscriptionID: testSub, ResourceGroup: "rg1", Name: "ws-conc", Location: "westeurope", RetentionInDays: 30 + i}
				if _, _, err := c.PutWorkspace(ctx, w, Precondition{}, Actor{}); err != nil {
					errs <- err
				}
				if _, err := c.Tables(ctx, testSub, "rg1", "ws-conc"); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	tables, err := c.Tables(ctx, testSub, "rg1", "ws-conc")
	if err != nil || len(tables) != 40+len(StandardTableNames()) {
		t.Fatalf("tables = %d, %v", len(tables), err)
	}
}

func TestETagMatching(t *testing.T) {
	for _, tc := range []struct {
		header, etag string
		want         bool
	}{
		{`"a"`, `"a"`, true}, {`a`, `"a"`, true}, {`W/"a"`, `"a"`, true}, {`"b", "a"`, `"a"`, true}, {`"b"`, `"a"`, false}, {`*`, `"a"`, true},
	} {
		if got := etagListMatches(tc.header, tc.etag); got != tc.want {
			t.Errorf("etagListMatches(%q, %q) = %v; want %v", tc.header, tc.etag, got, tc.want)
		}
	}
}
