package ingest_test

import (
	"context"
	"path/filepath"
	"testing"

	"custos/internal/catalog"
	"custos/internal/ingest"
	"custos/internal/store"
)

// BenchmarkCatalogLookups measures the per-request catalog reads of the
// ingestion path against a real catalog (SQLite): the rule by immutable ID
// (done for the RBAC scope and again by the handler) and the table schema.
func BenchmarkCatalogLookups(b *testing.B) {
	ctx := context.Background()
	cat, err := catalog.Open(ctx, catalog.Options{Path: filepath.Join(b.TempDir(), "catalog.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer cat.Close()
	boot, err := cat.Bootstrap(ctx, catalog.BootstrapOptions{})
	if err != nil {
		b.Fatal(err)
	}
	sub, rg, ws := boot.Subscription.ID, boot.ResourceGroup.Name, boot.Workspace.Name
	if _, _, err := cat.PutTable(ctx, sub, rg, ws, catalog.TableSpec{Name: "App_CL", Columns: []catalog.Column{
		{Name: "TimeGenerated", Type: store.TypeDatetime}, {Name: "Computer", Type: store.TypeString},
	}}, catalog.Precondition{}, catalog.Actor{ID: "bench"}); err != nil {
		b.Fatal(err)
	}
	rule, _, err := cat.PutDataCollectionRule(ctx, catalog.DataCollectionRule{
		SubscriptionID: sub, ResourceGroup: rg, Name: "r", Location: "local", Kind: "Direct",
		Properties: catalog.DCRProperties{
			StreamDeclarations: map[string]catalog.StreamDeclaration{"Custom-App": {Columns: []catalog.StreamColumn{
				{Name: "TimeGenerated", Type: "datetime"}, {Name: "Computer", Type: "string"},
			}}},
			Destinations: &catalog.DCRDestinations{LogAnalytics: []catalog.LogAnalyticsDestination{
				{Name: "la", WorkspaceResourceID: boot.Workspace.ID(), WorkspaceID: boot.Workspace.CustomerID},
			}},
			DataFlows: []catalog.DataFlow{{Streams: []string{"Custom-App"}, Destinations: []string{"la"}, TransformKql: "source", OutputStream: "Custom-App_CL"}},
		},
	}, catalog.Precondition{}, catalog.Actor{ID: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	src := ingest.CatalogSource{C: cat}
	b.Run("rule", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := src.RuleByImmutableID(ctx, rule.ImmutableID); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("table", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := src.TableSchema(ctx, boot.Workspace.CustomerID, "App_CL"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
