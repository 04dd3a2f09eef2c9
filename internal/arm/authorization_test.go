package arm_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"custos/internal/api"
	"custos/internal/arm"
	"custos/internal/catalog"
	"custos/internal/crypt"
	"custos/internal/identity"
	"custos/internal/rbac"
	"custos/internal/store"
)

// newAuthzEnv is newEnv for the Microsoft.Authorization tests: every route
// of arm.Routes() over real HTTPS with a real catalog and store, called by
// one principal that is allowed everything (authorization is the server's).
func newAuthzEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	cat, err := catalog.Open(ctx, catalog.Options{Path: filepath.Join(dir, "catalog.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	boot, err := cat.Bootstrap(ctx, catalog.BootstrapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Role assignments must name a principal of the directory.
	if _, err := cat.CreateUser(ctx, identity.User{TenantID: boot.Tenant.ID, ObjectID: principalA, UserPrincipalName: "a@example.test"}, "", catalog.Actor{ID: callerID}); err != nil {
		t.Fatal(err)
	}
	key, err := crypt.OpenPlatformKey(filepath.Join(dir, "platform.key"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(store.Options{Dir: filepath.Join(dir, "data"), Keys: key, DisableBackground: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a := arm.New(arm.Options{Catalog: cat, Tables: st})
	mux := http.NewServeMux()
	p := identity.Principal{ObjectID: callerID, Kind: identity.KindServicePrincipal, Audience: identity.AudienceManagement}
	for _, rt := range a.Routes() {
		mux.HandleFunc(rt.Method+" "+rt.Pattern, func(w http.ResponseWriter, r *http.Request) {
			r = r.WithContext(api.WithPrincipal(r.Context(), p))
			rt.Handler(w, r, rbac.Decision{Allowed: true})
		})
	}
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	e := &env{t: t, cat: cat, st: st, srv: srv, api: a}
	e.must("PUT", "/subscriptions/"+sub+ver, `{"displayName":"test"}`, 201)
	e.must("PUT", rgPath+ver, `{"location":"westeurope"}`, 201)
	return e
}

const (
	customRoleID = "0b5d1c3e-7a2f-4f3e-9d1c-1a2b3c4d5e6f"
	principalA   = "aaaaaaaa-1111-4111-8111-111111111111"
	raName       = "bbbbbbbb-2222-4222-8222-222222222222"
)

var subPath = "/subscriptions/" + sub

const granularRole = `{"properties":{"roleName":"Heartbeat rows","description":"granular","type":"CustomRole",
 "assignableScopes":["/subscriptions/` + sub + `"],
 "permissions":[{"actions":["Microsoft.OperationalInsights/workspaces/read","Microsoft.OperationalInsights/workspaces/query/read"],
  "notActions":[],"dataActions":["Microsoft.OperationalInsights/workspaces/tables/data/read"],"notDataActions":[]}]}}`

const rowCondition = `((!(ActionMatches{'Microsoft.OperationalInsights/workspaces/tables/data/read'})) OR (@Resource[Microsoft.OperationalInsights/workspaces/tables:name] StringEquals 'Heartbeat' AND @Resource[Microsoft.OperationalInsights/workspaces/tables/record:Computer] StringEquals 'a'))`

func TestRoleDefinitionsAPI(t *testing.T) {
	e := newAuthzEnv(t)
	defs := subPath + "/providers/Microsoft.Authorization/roleDefinitions"
	r := e.must("GET", defs+ver, "", 200)
	if !strings.Contains(r.raw, `"id":"/subscriptions/`+sub+`/providers/Microsoft.Authorization/roleDefinitions/8e3af657-a8ff-443c-a75c-2fe8c4bcd635"`) ||
		!strings.Contains(r.raw, `"roleName":"Owner"`) || !strings.Contains(r.raw, `"type":"BuiltInRole"`) {
		t.Fatalf("built-in roles missing: %.400s", r.raw)
	}
	r = e.must("GET", "/providers/Microsoft.Authorization/roleDefinitions/"+rbac.RoleReader+ver, "", 200)
	e.want(r, "id", "/providers/Microsoft.Authorization/roleDefinitions/"+rbac.RoleReader)
	e.want(r, "properties.permissions", []map[string]any{{"actions": []string{"*/read"}, "notActions": []string{}, "dataActions": []string{}, "notDataActions": []string{}}})
	r = e.must("GET", defs+ver+"&$filter=roleName%20eq%20'Reader'", "", 200)
	if n := len(r.body["value"].([]any)); n != 1 {
		t.Fatalf("roleName filter returned %d roles", n)
	}
	e.fail("GET", defs+ver+"&$filter=nonsense", "", 400, "UnsupportedQuery", "not supported")
	e.fail("GET", defs+"/"+customRoleID+ver, "", 404, "RoleDefinitionDoesNotExist", customRoleID)

	r = e.must("PUT", defs+"/"+customRoleID+ver, granularRole, 201)
	e.want(r, "name", customRoleID)
	e.want(r, "properties.type", "CustomRole")
	e.want(r, "properties.createdBy", callerID)
	e.must("PUT", defs+"/"+customRoleID+ver, strings.Replace(granularRole, `"granular"`, `"changed"`, 1), 200)
	r = e.must("GET", defs+ver+"&$filter=type%20eq%20'CustomRole'", "", 200)
	if !strings.Contains(r.raw, `"description":"changed"`) || len(r.body["value"].([]any)) != 1 {
		t.Fatalf("custom role list: %s", r.raw)
	}
	e.fail("PUT", defs+"/"+rbac.RoleOwner+ver, granularRole, 403, "BuiltInRoleCannotBeModified", "cannot be modified")
	e.fail("PUT", defs+"/not-a-guid"+ver, granularRole, 400, "InvalidRoleDefinitionId", "GUID")
	e.fail("PUT", defs+"/11111111-0000-4000-8000-000000000000"+ver, strings.Replace(granularRole, "Heartbeat rows", "Owner", 1), 409, "RoleDefinitionWithSameNameExists", "Owner")
	e.fail("PUT", defs+"/11111111-0000-4000-8000-000000000000"+ver, granularRole, 409, "RoleDefinitionWithSameNameExists", "same name")
	e.fail("PUT", defs+"/11111111-0000-4000-8000-000000000000"+ver, strings.Replace(granularRole, `"Microsoft.OperationalInsights/workspaces/read"`, `"bad action"`, 1), 400, "InvalidRoleDefinition", "bad action")
	e.fail("PUT", defs+"/11111111-0000-4000-8000-000000000000"+ver, strings.Replace(granularRole, `"Heartbeat rows"`, `"Wide"`, 1)[:0]+`{"properties":{"roleName":"Wide","assignableScopes":["/subscriptions/`+sub+`"],"permissions":[{"dataActions":["*"]}]}}`, 400, "InvalidRoleDefinition", "dataActions")
	e.fail("PUT", rgPath+"/providers/Microsoft.Authorization/roleDefinitions/11111111-0000-4000-8000-000000000000"+ver,
		strings.Replace(granularRole, "Heartbeat rows", "Other", 1), 403, "LinkedAuthorizationFailed", "not at or below")
	e.fail("PUT", defs+"/11111111-0000-4000-8000-000000000000"+ver, `{"properties":{"roleName":"x"},"extra":1}`, 400, "InvalidRequestContent", "extra")
	e.fail("DELETE", defs+"/"+rbac.RoleOwner+ver, "", 403, "BuiltInRoleCannotBeModified", "cannot be deleted")

	// The authorizer loads the custom role from the catalog.
	a := rbac.New(rbac.Options{Store: e.cat})
	if d, ok, err := a.LookupRole(context.Background(), customRoleID); err != nil || !ok || d.Name != "Heartbeat rows" {
		t.Fatalf("LookupRole = %v %v %v", d, ok, err)
	}
	r = e.must("DELETE", defs+"/"+customRoleID+ver, "", 200)
	e.want(r, "name", customRoleID)
	e.must("DELETE", defs+"/"+customRoleID+ver, "", 204)
}

func TestRoleAssignmentsAPI(t *testing.T) {
	e := newAuthzEnv(t)
	e.must("PUT", wsPath+ver, `{"location":"westeurope"}`, 201)
	e.must("PUT", subPath+"/providers/Microsoft.Authorization/roleDefinitions/"+customRoleID+ver, granularRole, 201)
	ras := wsPath + "/providers/Microsoft.Authorization/roleAssignments"
	body := `{"properties":{"roleDefinitionId":"/subscriptions/` + sub + `/providers/Microsoft.Authorization/roleDefinitions/` + customRoleID + `",
	 "principalId":"` + principalA + `","principalType":"User","description":"rows of a","condition":` + mustJSON(rowCondition) + `,"conditionVersion":"2.0"}}`
	r := e.must("PUT", ras+"/"+raName+ver, body, 201)
	wsID := strings.Replace(wsPath, "resourcegroups", "resourceGroups", 1)
	e.want(r, "id", wsID+"/providers/Microsoft.Authorization/roleAssignments/"+raName)
	e.want(r, "type", "Microsoft.Authorization/roleAssignments")
	e.want(r, "properties.scope", wsID)
	e.want(r, "properties.roleDefinitionId", "/subscriptions/"+sub+"/providers/Microsoft.Authorization/roleDefinitions/"+customRoleID)
	e.want(r, "properties.principalId", principalA)
	e.want(r, "properties.conditionVersion", "2.0")
	e.want(r, "properties.createdBy", callerID)
	r = e.must("GET", ras+"/"+raName+ver, "", 200)
	e.want(r, "properties.condition", rowCondition)

	// The authorizer on the same catalog applies the condition.
	a := rbac.New(rbac.Options{Store: e.cat})
	ta, err := a.TableAccess(context.Background(), identity.Principal{ObjectID: principalA}, rbac.Scope(wsPath))
	if err != nil {
		t.Fatal(err)
	}
	if d := ta.Table("Heartbeat", nil); !d.Allowed || strings.Join(d.RowConditions, "") != `Computer == "a"` {
		t.Fatalf("Heartbeat: %+v", d)
	}
	if d := ta.Table("Syslog", nil); d.Allowed {
		t.Fatalf("Syslog: %+v; want denied", d)
	}

	// Same role, principal and scope under another name: conflict.
	e.fail("PUT", ras+"/cccccccc-3333-4333-8333-333333333333"+ver, body, 409, "RoleAssignmentExists", "already exists")
	// Changing the principal of an assignment is not allowed.
	e.fail("PUT", ras+"/"+raName+ver, strings.Replace(body, principalA, "dddddddd-4444-4444-8444-444444444444", 1), 400, "RoleAssignmentUpdateNotPermitted", "not allowed")
	e.fail("PUT", ras+"/cccccccc-3333-4333-8333-333333333333"+ver, strings.Replace(body, principalA, "dddddddd-4444-4444-8444-444444444444", 1), 400, "PrincipalNotFound", "does not exist in the directory")
	// The description and condition may change.
	e.must("PUT", ras+"/"+raName+ver, strings.Replace(body, "rows of a", "rows of a only", 1), 200)
	e.fail("PUT", ras+"/x"+ver, body, 400, "InvalidRoleAssignmentId", "GUID")
	e.fail("PUT", ras+"/cccccccc-3333-4333-8333-333333333333"+ver, strings.Replace(body, `"conditionVersion":"2.0"`, `"conditionVersion":"1.0"`, 1), 400, "InvalidCondition", "conditionVersion")
	e.fail("PUT", ras+"/cccccccc-3333-4333-8333-333333333333"+ver, strings.Replace(body, "StringEquals 'a'", "StringEquals 'a b'", 1), 400, "InvalidCondition", "not allowed")
	e.fail("PUT", ras+"/cccccccc-3333-4333-8333-333333333333"+ver, strings.Replace(body, customRoleID, "eeeeeeee-5555-4555-8555-555555555555", 1), 400, "RoleDefinitionDoesNotExist", "does not exist")
	e.fail("PUT", ras+"/cccccccc-3333-4333-8333-333333333333"+ver, strings.Replace(body, `"User"`, `"Robot"`, 1), 400, "InvalidPrincipalType", "Robot")
	e.fail("PUT", ras+"/cccccccc-3333-4333-8333-333333333333"+ver, strings.Replace(body, `"conditionVersion":"2.0"`, `"conditionVersion":"2.0","expiresOn":"2001-01-01T00:00:00Z"`, 1), 400, "InvalidExpiresOn", "past")
	// A role assigned outside its assignable scopes.
	other := "/subscriptions/00000000-0000-4000-8000-00000000000f/providers/Microsoft.Authorization/roleAssignments/cccccccc-3333-4333-8333-333333333333"
	e.fail("PUT", other+ver, body, 400, "InvalidRoleAssignmentRequest", "not assignable")

	// A Reader assignment at the subscription with an expiry, via the root-less form.
	subRA := subPath + "/providers/Microsoft.Authorization/roleAssignments/ffffffff-6666-4666-8666-666666666666"
	r = e.must("PUT", subRA+ver, `{"properties":{"roleDefinitionId":"/providers/Microsoft.Authorization/roleDefinitions/`+rbac.RoleReader+`","principalId":"`+principalA+`","expiresOn":"2099-01-01T00:00:00Z"}}`, 201)
	e.want(r, "properties.expiresOn", "2099-01-01T00:00:00Z")

	// Listing: at the workspace (above, at and below) both; atScope() at the
	// subscription only the subscription one; by principal.
	r = e.must("GET", ras+ver, "", 200)
	if n := len(r.body["value"].([]any)); n != 2 {
		t.Fatalf("list at workspace: %d assignments; want 2: %s", n, r.raw)
	}
	r = e.must("GET", subPath+"/providers/Microsoft.Authorization/roleAssignments"+ver+"&$filter=atScope()", "", 200)
	if n := len(r.body["value"].([]any)); n != 1 {
		t.Fatalf("atScope at subscription: %d; want 1", n)
	}
	r = e.must("GET", subPath+"/providers/Microsoft.Authorization/roleAssignments"+ver+"&$filter=principalId%20eq%20'"+principalA+"'", "", 200)
	if n := len(r.body["value"].([]any)); n != 2 {
		t.Fatalf("by principal: %d; want 2", n)
	}
	e.fail("GET", ras+ver+"&$filter=roleName%20eq%20'x'", "", 400, "UnsupportedQuery", "not supported")

	// A custom role in use cannot be deleted.
	e.fail("DELETE", subPath+"/providers/Microsoft.Authorization/roleDefinitions/"+customRoleID+ver, "", 409, "RoleDefinitionHasAssignments", "existing role assignments")
	r = e.must("DELETE", ras+"/"+raName+ver, "", 200)
	e.want(r, "name", raName)
	e.must("DELETE", ras+"/"+raName+ver, "", 204)
	e.fail("GET", ras+"/"+raName+ver, "", 404, "RoleAssignmentNotFound", raName)
	e.must("DELETE", subPath+"/providers/Microsoft.Authorization/roleDefinitions/"+customRoleID+ver, "", 200)
}

func TestLocksAPI(t *testing.T) {
	e := newAuthzEnv(t)
	e.must("PUT", wsPath+ver, `{"location":"westeurope"}`, 201)
	tp := wsPath + "/tables/App_CL" + ver
	e.must("PUT", tp, customTable, 201)
	lock := wsPath + "/providers/Microsoft.Authorization/locks/keep"
	r := e.must("PUT", lock+ver, `{"properties":{"level":"CanNotDelete","notes":"audit evidence","owners":[{"applicationId":"app1"}]}}`, 201)
	e.want(r, "id", strings.Replace(wsPath, "resourcegroups", "resourceGroups", 1)+"/providers/Microsoft.Authorization/locks/keep")
	e.want(r, "type", "Microsoft.Authorization/locks")
	e.want(r, "properties.level", "CanNotDelete")
	e.want(r, "properties.owners", []map[string]string{{"applicationId": "app1"}})
	e.must("GET", lock+ver, "", 200)
	e.fail("PUT", wsPath+"/providers/Microsoft.Authorization/locks/bad"+ver, `{"properties":{"level":"Sometimes"}}`, 400, "LockLevelInvalid", "Sometimes")
	e.fail("PUT", wsPath+"/providers/Microsoft.Authorization/locks/bad"+ver, `{}`, 400, "InvalidRequestContent", "level")

	// CanNotDelete: no deletes at, below or above; no retention changes; other updates pass.
	e.fail("DELETE", wsPath+ver, "", 409, "ScopeLocked", "cannot perform delete operation because following scope(s) are locked")
	e.fail("DELETE", tp, "", 409, "ScopeLocked", "locked")
	e.fail("DELETE", rgPath+ver+"&forceDeletionTypes=*", "", 409, "ScopeLocked", "locked")
	e.fail("PUT", tp, strings.Replace(customTable, `"retentionInDays":45`, `"retentionInDays":60`, 1), 409, "ScopeLocked", "retention change")
	e.fail("PUT", wsPath+ver, `{"location":"westeurope","properties":{"retentionInDays":90}}`, 409, "ScopeLocked", "retention change")
	e.must("PUT", wsPath+ver, `{"location":"westeurope","tags":{"still":"writable"}}`, 200)
	e.must("PUT", tp, customTable, 200)
	r = e.must("GET", rgPath+"/providers/Microsoft.Authorization/locks"+ver, "", 200)
	if n := len(r.body["value"].([]any)); n != 1 {
		t.Fatalf("locks below the resource group: %d; want 1", n)
	}
	r = e.must("GET", rgPath+"/providers/Microsoft.Authorization/locks"+ver+"&$filter=atScope()", "", 200)
	if n := len(r.body["value"].([]any)); n != 0 {
		t.Fatalf("locks at/above the resource group: %d; want 0", n)
	}

	// ReadOnly on the resource group: no writes below it either.
	rol := rgPath + "/providers/Microsoft.Authorization/locks/frozen"
	e.must("PUT", rol+ver, `{"properties":{"level":"ReadOnly"}}`, 201)
	e.fail("PUT", dcrPath+ver, `{"location":"westeurope"}`, 409, "ScopeLocked", "cannot perform write operation")
	e.fail("PUT", wsPath+ver, `{"location":"westeurope"}`, 409, "ScopeLocked", "write")
	e.must("GET", wsPath+ver, "", 200)
	e.must("DELETE", rol+ver, "", 200)
	e.must("DELETE", rol+ver, "", 204)

	// Removing the lock allows the delete again.
	e.must("DELETE", lock+ver, "", 200)
	e.must("DELETE", tp, "", 200)
	e.must("DELETE", wsPath+ver, "", 200)
}
