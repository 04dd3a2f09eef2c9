package rbac_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"custos/internal/catalog"
	"custos/internal/identity"
	"custos/internal/rbac"
)

// TestAuthorizeOnCatalog runs Authorize against role assignments stored in
// the real SQLite catalog, concurrently with assignment changes.
func TestAuthorizeOnCatalog(t *testing.T) {
	ctx := context.Background()
	cat, err := catalog.Open(ctx, catalog.Options{Path: filepath.Join(t.TempDir(), "catalog.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	const (
		sub   = "/subscriptions/00000000-0000-0000-0000-0000000000aa"
		ws    = sub + "/resourceGroups/RG/providers/Microsoft.OperationalInsights/workspaces/ws"
		dcr   = sub + "/resourceGroups/rg/providers/Microsoft.Insights/dataCollectionRules/d"
		user  = "11111111-0000-4000-8000-000000000001"
		group = "22222222-0000-4000-8000-000000000002"
	)
	add := func(n int, scope, role, principal string) rbac.RoleAssignment {
		name := fmt.Sprintf("aaaaaaaa-0000-4000-8000-%012d", n)
		ra := rbac.RoleAssignment{ID: scope + "/providers/Microsoft.Authorization/roleAssignments/" + name, Name: name,
			Scope: rbac.Scope(scope), RoleDefinitionID: "/providers/Microsoft.Authorization/roleDefinitions/" + role,
			PrincipalID: principal, PrincipalType: "User"}
		if err := cat.CreateRoleAssignment(ctx, ra); err != nil {
			t.Fatal(err)
		}
		return ra
	}
	add(1, sub, rbac.RoleReader, user)
	add(2, dcr, rbac.RoleMonitoringMetricsPublisher, group)
	a := rbac.New(rbac.Options{Store: cat})
	p := identity.Principal{ObjectID: user, GroupIDs: []string{group}}
	for _, tc := range []struct {
		act   rbac.Action
		scope string
		want  bool
	}{
		{rbac.ActionWorkspaceRead, ws, true},
		{rbac.ActionWorkspaceWrite, ws, false},
		{rbac.ActionTelemetryWrite, dcr, true},
		{rbac.ActionTelemetryWrite, ws, false},
		{rbac.ActionWorkspaceRead, "/subscriptions/00000000-0000-0000-0000-0000000000ab", false},
	} {
		d, err := a.Authorize(ctx, p, tc.act, rbac.Scope(tc.scope))
		if err != nil || d.Allowed != tc.want {
			t.Errorf("%s at %s: got (%v, %v); want %v", tc.act, tc.scope, d.Allowed, err, tc.want)
		}
	}

	// Concurrent decisions while assignments are added and removed; the
	// Reader decision never flips because that assignment stays.
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				d, err := a.Authorize(ctx, p, rbac.ActionWorkspaceRead, ws)
				if err != nil || !d.Allowed {
					errs <- fmt.Errorf("iteration %d: (%v, %v)", i, d.Allowed, err)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 20; i++ {
			ra := add(100+i, ws, rbac.RoleContributor, user)
			a.Invalidate()
			if err := cat.DeleteRoleAssignment(ctx, ra.ID); err != nil {
				errs <- err
				return
			}
			a.Invalidate()
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// After the churn, Contributor is gone again.
	if d, err := a.Authorize(ctx, p, rbac.ActionWorkspaceWrite, ws); err != nil || d.Allowed {
		t.Fatalf("after churn: (%v, %v); want deny", d.Allowed, err)
	}
}
