package e2e

import (
	"custos/internal/oidctest"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// startTestOIDC runs custos-test-oidc (test/install-oidc.sh), the
// zitadel/oidc example OpenID Provider, with the portal's client registered
// for redirect, and returns its issuer and CA file.
func startTestOIDC(t *testing.T, redirect string) (issuer, caFile string) {
	t.Helper()
	p := oidctest.Start(t, "-portal-redirect", redirect, "-portal-secret", "portal-secret-for-tests")
	return p.Issuer, p.CAFile
}

// TestPortalExternalOIDCSignIn signs in to the portal in Chromium with a
// user of an external OpenID Connect provider (the zitadel/oidc example
// provider, a real OIDC server): the portal redirects there with PKCE, the
// user types the provider's password, and back in the portal the user —
// bound to a Custos directory user and granted one table — queries that
// table's rows through the provider's access token and is refused another.
func TestPortalExternalOIDCSignIn(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: starts the custos binary")
	}
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	issuer, caFile := startTestOIDC(t, "https://"+addr+"/portal/callback")
	root := t.TempDir()
	secretFile := filepath.Join(root, "portal-secret")
	if err := os.WriteFile(secretFile, []byte("portal-secret-for-tests\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, 8*time.Minute)
	s, c := StartServer(t, ctx, Options{Binary: custosBin, DataDir: filepath.Join(root, "data"), LogPath: filepath.Join(root, "server.log"), Listen: addr,
		Args: []string{"--external-issuers", issuer + ";audience=custos-portal;caFile=" + caFile +
			";portalClientId=custos-portal;portalClientSecretFile=" + secretFile + ";portalName=Test OIDC"}})
	if err := c.GrantDataRoles(ctx); err != nil {
		t.Fatal(err)
	}
	sub := "/subscriptions/" + c.Admin.SubscriptionID
	ws := c.Admin.WorkspaceResourceID()

	cols := []Column{{"TimeGenerated", "datetime"}, {"Computer", "string"}, {"Level", "string"}, {"Latency", "real"}}
	for _, tbl := range []string{"Granted_CL", "Hidden_CL"} {
		if err := c.CreateTable(ctx, tbl, cols); err != nil {
			t.Fatal(err)
		}
		rule, err := c.CreateDCR(ctx, "dcr-"+strings.ToLower(tbl), "Custom-"+tbl, cols, tbl, "")
		if err != nil {
			t.Fatal(err)
		}
		var recs []map[string]any
		for i := range 25 {
			recs = append(recs, map[string]any{"TimeGenerated": time.Now().UTC().Add(-time.Duration(i) * time.Minute).Format(time.RFC3339Nano),
				"Computer": fmt.Sprintf("%s-host-%d", strings.ToLower(tbl), i%2), "Level": "Info", "Latency": float64(i)})
		}
		body, _ := json.Marshal(recs)
		if err := c.Upload(ctx, rule, "Custom-"+tbl, body); err != nil {
			t.Fatal(err)
		}
	}

	// The provider's user "id1" is bound to a Custos directory user, which
	// may browse the subscription and read Granted_CL only.
	uid := NewGUID()
	if _, err := c.ARM(ctx, http.MethodPut, "/providers/Custos.Directory/users/"+uid+"?api-version=2026-11-01", map[string]any{"properties": map[string]any{
		"userPrincipalName": "oidc-user@custos.test", "displayName": "OIDC user", "externalIssuer": issuer, "externalSubject": "id1"}}); err != nil {
		t.Fatalf("bind the external user: %v", err)
	}
	browse := NewGUID()
	if _, err := c.ARM(ctx, http.MethodPut, sub+"/providers/Microsoft.Authorization/roleDefinitions/"+browse+"?api-version=2022-04-01",
		map[string]any{"properties": map[string]any{"roleName": "Workspace browser (OIDC test)", "type": "CustomRole",
			"permissions": []any{map[string]any{"actions": []string{"Microsoft.Resources/subscriptions/read",
				"Microsoft.Resources/subscriptions/resourceGroups/read", "Microsoft.OperationalInsights/workspaces/read",
				"Microsoft.OperationalInsights/workspaces/tables/read", "Microsoft.OperationalInsights/workspaces/query/read"}}},
			"assignableScopes": []string{sub}}}); err != nil {
		t.Fatalf("custom role: %v", err)
	}
	assign(t, ctx, c, sub, browse, uid)
	assign(t, ctx, c, ws+"/tables/Granted_CL", roleLogAnalyticsReader, uid)
	time.Sleep(RoleCacheTTL)

	providerAddr := strings.TrimSuffix(strings.TrimPrefix(issuer, "https://"), "/")
	b, err := NewBrowser(testCtx(t, 5*time.Minute), s.Addr(), providerAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, p := range b.Problems() {
			t.Errorf("browser: %s", p)
		}
		b.Close()
	})
	base := "https://" + s.Addr()
	if err := do(b, chromedp.Navigate(base+"/"), chromedp.WaitVisible("#signin-0")); err != nil {
		failShot(t, b, err)
	}
	label, err := chromedp.Run(b.Ctx, chromedp.Text("#signin-0"))
	if err != nil || label != "Sign in with Test OIDC" {
		t.Fatalf("external sign-in button: %q, %v", label, err)
	}
	shot(t, b, "30-signin-external-choice")
	if err := do(b, chromedp.Click("#signin-0"), chromedp.WaitVisible("#username")); err != nil {
		failShot(t, b, err)
	}
	loc := mustLocation(t, b)
	if !strings.HasPrefix(loc, issuer) {
		t.Fatalf("the portal sent the browser to %s, not to the provider %s", loc, issuer)
	}
	shot(t, b, "31-provider-login")
	if err := do(b, chromedp.SendKeys("#username", "test-user@127.0.0.1"), chromedp.SendKeys("#password", "verysecure"),
		chromedp.Click(`button[type="submit"]`), chromedp.WaitVisible("#signout")); err != nil {
		failShot(t, b, err)
	}
	// The ID token of this provider carries no name; the portal asks its
	// userinfo endpoint.
	if who, err := chromedp.Run(b.Ctx, chromedp.Text("#user")); err != nil || who != "Test User" {
		t.Fatalf("signed-in user shown as %q (%v), want the provider's name Test User", who, err)
	}
	shot(t, b, "32-signed-in-external")

	status := runQuery(t, b, "Granted_CL | summarize count() by Computer")
	if !strings.Contains(status, "rows") {
		t.Fatalf("query as the external user: %q", status)
	}
	if got := gridText(t, b); !strings.Contains(got, "granted_cl-host-0") || !strings.Contains(got, "granted_cl-host-1") {
		t.Fatalf("the external user's rows: %q", got)
	}
	shot(t, b, "33-external-user-query")
	status = runQuery(t, b, "Hidden_CL | count")
	if strings.Contains(status, "rows") {
		t.Fatalf("the external user read Hidden_CL: %q", status)
	}
	runQuery(t, b, "union withsource=SourceTable * | distinct SourceTable")
	if got := gridText(t, b); strings.Contains(got, "Hidden_CL") {
		t.Fatalf("the external user sees Hidden_CL: %q", got)
	}
}
