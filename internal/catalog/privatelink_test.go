package catalog

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

func TestPrivateLinkScopes(t *testing.T) {
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
	sub, rg := b.Workspace.SubscriptionID, b.Workspace.ResourceGroup
	ws := b.Workspace.ID()
	by := Actor{ID: "tester", Type: "User"}

	for _, bad := range []PrivateLinkScope{
		{SubscriptionID: sub, ResourceGroup: rg, Name: "bad/name", IngestionAccessMode: "Open", QueryAccessMode: "Open"},
		{SubscriptionID: sub, ResourceGroup: rg, Name: "a", IngestionAccessMode: "Closed", QueryAccessMode: "Open"},
		{SubscriptionID: sub, ResourceGroup: rg, Name: "a", IngestionAccessMode: "Open"},
		{SubscriptionID: sub, ResourceGroup: rg, Name: "a", IngestionAccessMode: "Open", QueryAccessMode: "Open",
			Exclusions: []AccessModeExclusion{{PrivateEndpointConnectionName: ""}}},
	} {
		if _, _, err := c.PutPrivateLinkScope(ctx, bad, Precondition{}, by); !errors.Is(err, ErrInvalid) {
			t.Errorf("put %+v: %v; want ErrInvalid", bad, err)
		}
	}
	if _, _, err := c.PutPrivateLinkScope(ctx, PrivateLinkScope{SubscriptionID: sub, ResourceGroup: "nope", Name: "a",
		IngestionAccessMode: "Open", QueryAccessMode: "Open"}, Precondition{}, by); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing resource group: %v; want ErrNotFound", err)
	}

	p, created, err := c.PutPrivateLinkScope(ctx, PrivateLinkScope{SubscriptionID: sub, ResourceGroup: rg, Name: "Scope1",
		Location: "global", IngestionAccessMode: "privateonly", QueryAccessMode: "Open"}, Precondition{}, by)
	if err != nil || !created || p.IngestionAccessMode != AccessModePrivateOnly || p.ETag == "" {
		t.Fatalf("put: %+v %v %v", p, created, err)
	}
	ing, q, err := c.PrivateOnlyModes(ctx, ws)
	if err != nil || ing || q {
		t.Fatalf("modes before scoping: %v %v %v", ing, q, err)
	}

	// Scoped resources: an existing workspace or a DCE ID.
	if _, _, err := c.PutScopedResource(ctx, sub, rg, "scope1", ScopedResource{Name: "w", LinkedResourceID: ws + "-missing"}, by); !errors.Is(err, ErrInvalid) {
		t.Fatalf("missing workspace: %v; want ErrInvalid", err)
	}
	if _, _, err := c.PutScopedResource(ctx, sub, rg, "scope1", ScopedResource{Name: "w", LinkedResourceID: "/subscriptions/x/foo"}, by); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad ID: %v; want ErrInvalid", err)
	}
	s, created, err := c.PutScopedResource(ctx, sub, rg, "SCOPE1", ScopedResource{Name: "ws", LinkedResourceID: ws}, by)
	if err != nil || !created || s.ID() != p.ID()+"/scopedResources/ws" {
		t.Fatalf("put scoped: %+v %v %v", s, created, err)
	}
	dce := ResourceGroupResourceID(sub, rg) + "/providers/Microsoft.Insights/dataCollectionEndpoints/dce1"
	if _, _, err := c.PutScopedResource(ctx, sub, rg, "scope1", ScopedResource{Name: "dce", LinkedResourceID: dce}, by); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.PutScopedResource(ctx, sub, rg, "scope1", ScopedResource{Name: "ws2", LinkedResourceID: ws}, by); !errors.Is(err, ErrConflict) {
		t.Fatalf("same workspace twice: %v; want ErrConflict", err)
	}
	all, err := c.ScopedResources(ctx, sub, rg, "scope1")
	if err != nil || len(all) != 2 {
		t.Fatalf("list scoped: %+v %v", all, err)
	}
	ing, q, err = c.PrivateOnlyModes(ctx, ws)
	if err != nil || !ing || q {
		t.Fatalf("modes: ingestion %v query %v %v; want true false", ing, q, err)
	}
	// The resource ID compares case-insensitively.
	if ing, _, _ := c.PrivateOnlyModes(ctx, b.Workspace.ID()+""); !ing {
		t.Fatal("lookup by the same ID failed")
	}

	// A second scope, query PrivateOnly: the modes combine.
	if _, _, err := c.PutPrivateLinkScope(ctx, PrivateLinkScope{SubscriptionID: sub, ResourceGroup: rg, Name: "scope2",
		Location: "global", IngestionAccessMode: "Open", QueryAccessMode: "PrivateOnly"}, Precondition{}, by); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.PutScopedResource(ctx, sub, rg, "scope2", ScopedResource{Name: "ws", LinkedResourceID: ws}, by); err != nil {
		t.Fatal(err)
	}
	if ing, q, _ := c.PrivateOnlyModes(ctx, ws); !ing || !q {
		t.Fatalf("two scopes: %v %v; want true true", ing, q)
	}
	// ETag preconditions, then delete: the scope's resources go with it.
	if _, err := c.DeletePrivateLinkScope(ctx, sub, rg, "scope1", Precondition{IfMatch: `"other"`}); !errors.Is(err, ErrPreconditionFailed) {
		t.Fatalf("delete with a stale ETag: %v", err)
	}
	if ok, err := c.DeletePrivateLinkScope(ctx, sub, rg, "scope1", Precondition{IfMatch: p.ETag}); err != nil || !ok {
		t.Fatalf("delete: %v %v", ok, err)
	}
	if ing, q, _ := c.PrivateOnlyModes(ctx, ws); ing || !q {
		t.Fatalf("after deleting scope1: %v %v; want false true", ing, q)
	}
	if ok, err := c.DeleteScopedResource(ctx, sub, rg, "scope2", "WS"); err != nil || !ok {
		t.Fatalf("delete scoped: %v %v", ok, err)
	}
	if ing, q, _ := c.PrivateOnlyModes(ctx, ws); ing || q {
		t.Fatalf("after unscoping: %v %v; want false false", ing, q)
	}
	if _, err := c.ScopedResource(ctx, sub, rg, "scope2", "ws"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get deleted scoped resource: %v", err)
	}
	list, err := c.PrivateLinkScopes(ctx, sub, "")
	if err != nil || len(list) != 1 || list[0].Name != "scope2" {
		t.Fatalf("list: %+v %v", list, err)
	}
}
