package server

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azingest "github.com/Azure/azure-sdk-for-go/sdk/monitor/ingestion/azlogs"
	azquery "github.com/Azure/azure-sdk-for-go/sdk/monitor/query/azlogs"

	"custos/internal/api"
	"custos/internal/crypt"
	"custos/internal/identity"
	"custos/internal/rbac"
)

// TestCustomerManagedKeyCluster drives customer-managed keys end to end
// over HTTPS: a file-key cluster with double encryption, the default
// workspace linked to it, ingestion and queries through the Azure SDK,
// revocation (chmod 000) answering 503 CustomerManagedKeyUnavailable after
// the cache TTL, restore with nothing lost, restarts (linked, and while
// revoked), rotation to a new keyVersion, unlink and cluster deletion.
func TestCustomerManagedKeyCluster(t *testing.T) {
	dir := newDataDir(t)
	keyDir := t.TempDir()
	keyPath := filepath.Join(keyDir, "custos-ws")
	if _, err := crypt.CreateFileKey(keyPath); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(dir)
	cfg.Keys = KeysConfig{CacheTTL: time.Second, RetryInterval: 100 * time.Millisecond, FileKeyDir: keyDir}
	ts := startServer(t, cfg)
	adm := adminCredentials(t, dir)
	cred := credential(t, adm.Endpoint, adm.CAFile, adm.TenantID, adm.ClientID, adm.ClientSecret)
	mgmt := managementToken(t, cred)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	rg := fmt.Sprintf("/subscriptions/%s/resourceGroups/%s", adm.SubscriptionID, adm.ResourceGroup)
	ws := rg + "/providers/Microsoft.OperationalInsights/workspaces/" + adm.WorkspaceName
	cluster := rg + "/providers/Microsoft.OperationalInsights/clusters/cmk-cluster"
	const ver = "?api-version=2022-10-01"
	mustARM := func(method, path, body string, want ...int) map[string]any {
		t.Helper()
		code, got, raw := ts.armCall(t, mgmt, method, path+ver, body)
		for _, w := range want {
			if code == w {
				return got
			}
		}
		t.Fatalf("%s %s: %d %s; want %v", method, path, code, raw, want)
		return nil
	}

	// Table, DCR and the ingestion role.
	mustARM("PUT", ws+"/tables/Cmk_CL", `{"properties":{"schema":{"name":"Cmk_CL","columns":[
		{"name":"TimeGenerated","type":"dateTime"},{"name":"Message","type":"string"}]}}}`, 200, 201)
	dcrID := rg + "/providers/Microsoft.Insights/dataCollectionRules/cmk-dcr"
	code, got, raw := ts.armCall(t, mgmt, "PUT", dcrID+"?api-version=2023-03-11", `{"location":"local","kind":"Direct","properties":{
		"streamDeclarations":{"Custom-Cmk":{"columns":[{"name":"TimeGenerated","type":"datetime"},{"name":"Message","type":"string"}]}},
		"destinations":{"logAnalytics":[{"workspaceResourceId":"`+ws+`","name":"la"}]},
		"dataFlows":[{"streams":["Custom-Cmk"],"destinations":["la"],"outputStream":"Custom-Cmk_CL"}]}}`)
	if code != 200 && code != 201 {
		t.Fatalf("PUT DCR: %d %s", code, raw)
	}
	immutableID, _ := got["properties"].(map[string]any)["immutableId"].(string)
	sp, err := ts.catalog.ServicePrincipalByAppID(ctx, adm.TenantID, adm.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	name := "33333333-3333-4333-8333-333333333333"
	if err := ts.catalog.CreateRoleAssignment(ctx, rbac.RoleAssignment{
		ID: dcrID + "/providers/Microsoft.Authorization/roleAssignments/" + name, Name: name, Scope: rbac.Scope(dcrID),
		RoleDefinitionID: rbac.RoleMonitoringMetricsPublisher, PrincipalID: sp.ObjectID,
		PrincipalType: string(identity.KindServicePrincipal), Created: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	ts.rbac.Invalidate()

	sdkOpts := dataPlaneOptions(t, adm)
	ing, err := azingest.NewClient(adm.Endpoint, cred, &azingest.ClientOptions{ClientOptions: sdkOpts})
	if err != nil {
		t.Fatal(err)
	}
	qc, err := azquery.NewClient(cred, &azquery.ClientOptions{ClientOptions: sdkOpts})
	if err != nil {
		t.Fatal(err)
	}
	sent := 0
	upload := func(msg string) error {
		body := fmt.Sprintf(`[{"TimeGenerated":%q,"Message":%q}]`, time.Now().UTC().Format(time.RFC3339Nano), msg)
		_, err := ing.Upload(ctx, immutableID, "Custom-Cmk", []byte(body), nil)
		if err == nil {
			sent++
		}
		return err
	}
	q := "Cmk_CL | order by Message asc | project Message"
	query := func() ([]string, error) {
		res, err := qc.QueryWorkspace(ctx, adm.WorkspaceID, azquery.QueryBody{Query: &q}, nil)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, r := range res.Tables[0].Rows {
			out = append(out, fmt.Sprint(r...))
		}
		return out, nil
	}
	wantRows := func(when string) {
		t.Helper()
		rows, err := query()
		if err != nil || len(rows) != sent {
			t.Fatalf("%s: query: %v, %d rows %q; want %d", when, err, len(rows), rows, sent)
		}
	}
	wantUnavailable := func(when string, err error) {
		t.Helper()
		var re *azcore.ResponseError
		if !asResponseError(err, &re) || re.StatusCode != http.StatusServiceUnavailable || re.ErrorCode != api.CodeCustomerManagedKeyUnavailable {
			t.Fatalf("%s: %v; want 503 %s", when, err, api.CodeCustomerManagedKeyUnavailable)
		}
	}
	if err := upload("a-before-link"); err != nil {
		t.Fatal(err)
	}

	// A file key outside keys.fileKeyDir is refused; one inside is accepted
	// and its credential-free description comes back.
	code, _, raw = ts.armCall(t, mgmt, "PUT", cluster+ver, `{"location":"local","identity":{"type":"SystemAssigned"},
		"sku":{"name":"CapacityReservation","capacity":100},"properties":{"isDoubleEncryptionEnabled":true,
		"keyVaultProperties":{"keyVaultUri":"file:///etc","keyName":"passwd","custosProvider":"file"}}}`)
	if code != http.StatusBadRequest {
		t.Fatalf("cluster with a file key outside the key directory: %d %s; want 400", code, raw)
	}
	got = mustARM("PUT", cluster, `{"location":"local","identity":{"type":"SystemAssigned"},
		"sku":{"name":"CapacityReservation","capacity":100},"properties":{"isDoubleEncryptionEnabled":true,
		"keyVaultProperties":{"keyVaultUri":"file://`+keyDir+`","keyName":"custos-ws","custosProvider":"file"}}}`, 201)
	props := got["properties"].(map[string]any)
	if props["isDoubleEncryptionEnabled"] != true || props["clusterId"] == "" || props["provisioningState"] != "Succeeded" {
		t.Fatalf("cluster: %v", got)
	}

	// Link: the workspace key is re-wrapped under the file key, with double encryption.
	got = mustARM("PUT", ws+"/linkedServices/cluster", `{"properties":{"writeAccessResourceId":"`+cluster+`"}}`, 200, 201)
	if p := got["properties"].(map[string]any); !strings.EqualFold(p["writeAccessResourceId"].(string), cluster) {
		t.Fatalf("linked service: %v", got)
	}
	st, err := ts.store.EncryptionStatus(ctx, adm.WorkspaceID)
	fk, _ := crypt.OpenFileKey(keyPath)
	if err != nil || !st.CustomerManaged || !st.DoubleEncryption || !st.Available || st.KeyID != fk.KeyID() {
		t.Fatalf("status after link: %+v %v; want customer-managed %s with double encryption", st, err, fk.KeyID())
	}
	got = mustARM("GET", cluster, "", 200)
	if aw := got["properties"].(map[string]any)["associatedWorkspaces"].([]any); len(aw) != 1 {
		t.Fatalf("associatedWorkspaces: %v", aw)
	}
	if code, _, _ := ts.armCall(t, mgmt, "DELETE", cluster+ver, ""); code != http.StatusConflict {
		t.Fatalf("DELETE cluster with a linked workspace: %d; want 409", code)
	}
	if err := upload("b-after-link"); err != nil {
		t.Fatal(err)
	}
	wantRows("after link")

	// Revoke: after the cache TTL, ingestion is refused (503) and queries fail clearly.
	if err := os.Chmod(keyPath, 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(cfg.Keys.CacheTTL + 200*time.Millisecond)
	wantUnavailable("upload while revoked", upload("x-refused"))
	_, err = query()
	wantUnavailable("query while revoked", err)

	// Restore: everything works again and nothing acknowledged is lost.
	if err := os.Chmod(keyPath, 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * cfg.Keys.RetryInterval)
	if err := upload("c-after-restore"); err != nil {
		t.Fatalf("upload after restore: %v", err)
	}
	wantRows("after restore")

	// Restart: the linked workspace's provider is re-attached.
	restart := func() {
		t.Helper()
		if err := ts.stop(t); err != nil {
			t.Fatal(err)
		}
		c := cfg
		c.Listen = ts.Addr().String()
		ts = startServer(t, c)
	}
	restart()
	wantRows("after restart")
	if err := upload("d-after-restart"); err != nil {
		t.Fatal(err)
	}

	// Restart while revoked: the server starts, the workspace is locked,
	// and restoring the key unlocks it.
	if err := os.Chmod(keyPath, 0); err != nil {
		t.Fatal(err)
	}
	restart()
	_, err = query()
	wantUnavailable("query after a restart while revoked", err)
	if err := os.Chmod(keyPath, 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * cfg.Keys.RetryInterval)
	wantRows("after restore following a restart")

	// Rotation: a new keyVersion (file custos-ws.v2) re-wraps the workspace
	// key; the old key file can then go.
	fk2, err := crypt.CreateFileKey(keyPath + ".v2")
	if err != nil {
		t.Fatal(err)
	}
	mustARM("PATCH", cluster, `{"properties":{"keyVaultProperties":{"keyVaultUri":"file://`+keyDir+`","keyName":"custos-ws","keyVersion":"v2","custosProvider":"file"}}}`, 200)
	if st, err := ts.store.EncryptionStatus(ctx, adm.WorkspaceID); err != nil || st.KeyID != fk2.KeyID() || !st.DoubleEncryption {
		t.Fatalf("status after rotation: %+v %v; want key %s", st, err, fk2.KeyID())
	}
	if err := os.Remove(keyPath); err != nil {
		t.Fatal(err)
	}
	restart()
	if err := upload("e-after-rotation"); err != nil {
		t.Fatal(err)
	}
	wantRows("after rotation and restart")

	// Double encryption cannot be turned off.
	code, _, raw = ts.armCall(t, mgmt, "PATCH", cluster+ver, `{"properties":{"isDoubleEncryptionEnabled":false}}`)
	if code != http.StatusBadRequest {
		t.Fatalf("turning double encryption off: %d %s; want 400", code, raw)
	}

	// Unlink: back on the platform key (double encryption stays); then the
	// cluster can be deleted and the customer key removed.
	mustARM("DELETE", ws+"/linkedServices/cluster", "", 200)
	if st, err := ts.store.EncryptionStatus(ctx, adm.WorkspaceID); err != nil || st.CustomerManaged || !st.DoubleEncryption {
		t.Fatalf("status after unlink: %+v %v", st, err)
	}
	mustARM("DELETE", cluster, "", 200)
	if err := os.Remove(keyPath + ".v2"); err != nil {
		t.Fatal(err)
	}
	restart()
	wantRows("after unlink, key removal and restart")
	if strings.Contains(ts.logs.String(), "custosSecret") {
		t.Fatal("the log mentions custosSecret")
	}
}
