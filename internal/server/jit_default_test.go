package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"custos/internal/identity"
)

// TestJustInTimeByDefault: a server with the default configuration runs in
// just-in-time mode. The bootstrap admin keeps its control-plane rights but
// reads no log data, cannot grant itself a role that would (403
// SelfAssignmentNotAllowed), and can give such a role to another principal,
// which then queries. identity.justInTimeAccess: false (file, environment or
// flag) turns the mode off.
func TestJustInTimeByDefault(t *testing.T) {
	for _, c := range []struct {
		name string
		o    LoadOptions
		want bool
	}{
		{"default", LoadOptions{Env: noEnv}, true},
		{"flag", LoadOptions{Env: noEnv, Flags: map[string]string{"just-in-time-access": "false"}}, false},
		{"env", LoadOptions{Env: func(k string) (string, bool) {
			if k == "CUSTOS_JUST_IN_TIME_ACCESS" {
				return "false", true
			}
			return "", false
		}}, false},
	} {
		cfg, err := LoadConfig(c.o)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if cfg.Identity.JustInTimeAccess != c.want {
			t.Errorf("%s: justInTimeAccess = %v; want %v", c.name, cfg.Identity.JustInTimeAccess, c.want)
		}
	}
	yml := filepath.Join(t.TempDir(), "custos.yaml")
	if err := os.WriteFile(yml, []byte("identity:\n  justInTimeAccess: false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg, err := LoadConfig(LoadOptions{File: yml, Env: noEnv}); err != nil || cfg.Identity.JustInTimeAccess {
		t.Fatalf("YAML justInTimeAccess: false: %v %v", cfg.Identity.JustInTimeAccess, err)
	}

	dir := newDataDir(t)
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.Timeouts.Shutdown = dir, "127.0.0.1:0", 5*time.Second
	ts := startServer(t, cfg)
	adm := adminCredentials(t, dir)
	cred := credential(t, adm.Endpoint, adm.CAFile, adm.TenantID, adm.ClientID, adm.ClientSecret)
	mgmt := managementToken(t, cred)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tok, err := cred.GetToken(ctx, policyScopes(identity.AudienceQuery))
	if err != nil {
		t.Fatal(err)
	}
	qpath := "/v1/workspaces/" + adm.WorkspaceID + "/query"
	if st, _, raw := ts.queryCall(t, tok.Token, qpath, map[string]string{"query": "print 1"}); st != 403 {
		t.Fatalf("bootstrap admin queried in just-in-time mode: %d %s", st, raw)
	}
	ws := fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.OperationalInsights/workspaces/%s",
		adm.SubscriptionID, adm.ResourceGroup, adm.WorkspaceName)
	if st, _, raw := ts.armCall(t, mgmt, "PUT", ws+"/tables/Jit_CL?api-version=2022-10-01",
		`{"properties":{"schema":{"name":"Jit_CL","columns":[{"name":"TimeGenerated","type":"datetime"}]}}}`); st/100 != 2 {
		t.Fatalf("bootstrap admin lost control-plane rights: %d %s", st, raw)
	}
	sp, err := ts.catalog.ServicePrincipalByAppID(ctx, adm.TenantID, adm.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	roleDef := "/subscriptions/" + adm.SubscriptionID + "/providers/Microsoft.Authorization/roleDefinitions/73c42c96-874c-492b-b04d-ab87d138a893"
	assign := func(principal, name string) (int, map[string]any, string) {
		return ts.armCall(t, mgmt, "PUT", ws+"/providers/Microsoft.Authorization/roleAssignments/"+name+"?api-version=2022-04-01",
			`{"properties":{"roleDefinitionId":"`+roleDef+`","principalId":"`+principal+`"}}`)
	}
	st, m, raw := assign(sp.ObjectID, "33333333-3333-4333-8333-333333333333")
	if e, _ := m["error"].(map[string]any); st != 403 || e["code"] != "SelfAssignmentNotAllowed" {
		t.Fatalf("bootstrap admin granted itself Log Analytics Reader: %d %s", st, raw)
	}
	st, m, raw = ts.armCall(t, mgmt, "POST", "/providers/Custos.Directory/servicePrincipals?api-version=2024-01-01", `{"displayName":"analyst"}`)
	if st != 201 {
		t.Fatalf("create principal: %d %s", st, raw)
	}
	props := m["properties"].(map[string]any)
	secret := props["passwordCredentials"].([]any)[0].(map[string]any)["secretText"].(string)
	if st, _, raw := assign(m["name"].(string), "44444444-4444-4444-8444-444444444444"); st != 201 {
		t.Fatalf("assign Log Analytics Reader to another principal: %d %s", st, raw)
	}
	analyst := credential(t, adm.Endpoint, adm.CAFile, adm.TenantID, props["appId"].(string), secret)
	atok, err := analyst.GetToken(ctx, policyScopes(identity.AudienceQuery))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, _, raw := ts.queryCall(t, atok.Token, qpath, map[string]string{"query": "print 1"})
		if st == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the analyst's query: %d %s", st, raw)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// policyScopes asks for a token for audience.
func policyScopes(audience string) policy.TokenRequestOptions {
	return policy.TokenRequestOptions{Scopes: []string{audience + "/.default"}}
}
