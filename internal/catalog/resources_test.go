package catalog

import (
	"context"
	"testing"
)

// A resource group that still holds a cluster, which forceDeletionTypes does
// not remove, is refused with 409 ResourceGroupNotEmpty, not a foreign-key
// failure, and nothing in it is deleted.
func TestResourceGroupWithClusterIsNotEmpty(t *testing.T) {
	ctx := context.Background()
	c := seeded(t)
	cl, _, err := c.PutCluster(ctx, Cluster{SubscriptionID: testSub, ResourceGroup: "rg1", Name: "cluster1",
		Location: "westeurope", IdentityType: "SystemAssigned", SKUName: "CapacityReservation",
		SKUCapacity: 100, BillingType: "Cluster"}, Precondition{}, Actor{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Listed by subscription as well as by resource group.
	if list, err := c.Clusters(ctx, testSub, ""); err != nil || len(list) != 1 || list[0].Name != "cluster1" {
		t.Fatalf("clusters of the subscription = %v, %v", list, err)
	}
	_, _, err = c.DeleteResourceGroup(ctx, testSub, "rg1", []string{"*"})
	wantCode(t, err, ErrConflict, "ResourceGroupNotEmpty", "clusters")
	if _, err := c.Cluster(ctx, testSub, "rg1", cl.Name); err != nil {
		t.Fatalf("cluster after refused delete: %v", err)
	}
	if _, err := c.DeleteCluster(ctx, testSub, "rg1", cl.Name, Precondition{}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := c.DeleteResourceGroup(ctx, testSub, "rg1", []string{"*"}); err != nil || !ok {
		t.Fatalf("delete after the cluster is gone = %v, %v", ok, err)
	}
}
