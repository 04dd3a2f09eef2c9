package ingest_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"custos/internal/api"
	"custos/internal/catalog"
	"custos/internal/ingest"
	"custos/internal/store"
)

// countingCatalog counts the catalog reads that reach SQLite.
type countingCatalog struct {
	ingest.Catalog
	rules, tables atomic.Int64
}

func (c *countingCatalog) DataCollectionRuleByImmutableID(ctx context.Context, id string) (catalog.DataCollectionRule, error) {
	c.rules.Add(1)
	return c.Catalog.DataCollectionRuleByImmutableID(ctx, id)
}

func (c *countingCatalog) TableByCustomerID(ctx context.Context, customerID, name string) (catalog.Table, error) {
	c.tables.Add(1)
	return c.Catalog.TableByCustomerID(ctx, customerID, name)
}

// TestCachedSourceInvalidation: rules and table schemas are read from the
// catalog once, and read again after any catalog write — a table that gains
// a column, a rule that changes or is deleted.
func TestCachedSourceInvalidation(t *testing.T) {
	e := newEnv(t, ingest.Options{})
	ctx := context.Background()
	cc := &countingCatalog{Catalog: e.cat}
	cs := ingest.NewCachedSource(cc, e.cat)

	schema := func() store.Schema {
		t.Helper()
		s, err := cs.TableSchema(ctx, e.ws, "App_CL")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for range 3 {
		if s := schema(); s.Index("Extra") >= 0 {
			t.Fatalf("schema already has Extra: %v", s)
		}
	}
	if n := cc.tables.Load(); n != 1 {
		t.Fatalf("%d table reads for 3 lookups, want 1", n)
	}
	sub, rg, ws := e.boot.Subscription.ID, e.boot.ResourceGroup.Name, e.boot.Workspace.Name
	tbl, err := e.cat.TableByCustomerID(ctx, e.ws, "App_CL")
	if err != nil {
		t.Fatal(err)
	}
	cols := append(tbl.Columns, catalog.Column{Name: "Extra", Type: store.TypeString})
	if _, _, err := e.cat.PutTable(ctx, sub, rg, ws, catalog.TableSpec{Name: "App_CL", Columns: cols}, catalog.Precondition{}, catalog.Actor{ID: "test"}); err != nil {
		t.Fatal(err)
	}
	if s := schema(); s.Index("Extra") < 0 {
		t.Fatalf("after the table gained a column the cached schema still lacks it: %v", s)
	}
	if n := cc.tables.Load(); n != 2 {
		t.Fatalf("%d table reads, want 2 (one more after the change)", n)
	}

	rule := func() (*ingest.Rule, error) { return cs.RuleByImmutableID(ctx, e.rule.ImmutableID) }
	r1, err := rule()
	if err != nil {
		t.Fatal(err)
	}
	if r2, err := rule(); err != nil || r2 != r1 || cc.rules.Load() != 1 {
		t.Fatalf("second rule lookup: %v, same %v, %d reads; want the cached rule and 1 read", err, r2 == r1, cc.rules.Load())
	}
	changed := e.rule
	changed.Properties.DataFlows[0].TransformKql = "source | extend Computer = 'x'"
	if _, _, err := e.cat.PutDataCollectionRule(ctx, changed, catalog.Precondition{}, catalog.Actor{ID: "test"}); err != nil {
		t.Fatal(err)
	}
	r3, err := rule()
	if err != nil {
		t.Fatal(err)
	}
	if r3.ETag == r1.ETag || r3.DataFlows[0].TransformKQL != changed.Properties.DataFlows[0].TransformKql {
		t.Fatalf("after the rule changed: etag %q (was %q), transform %q", r3.ETag, r1.ETag, r3.DataFlows[0].TransformKQL)
	}
	if _, ok, err := e.cat.DeleteDataCollectionRule(ctx, sub, rg, "app-rule", catalog.Precondition{}); err != nil || !ok {
		t.Fatalf("delete rule: %v %v", ok, err)
	}
	for range 2 { // not found is not cached
		_, err := rule()
		var c api.Coded
		if !errors.As(err, &c) {
			t.Fatalf("deleted rule: %v, want a not-found error", err)
		}
		if _, kind := c.AzureError(); kind != api.KindNotFound {
			t.Fatalf("deleted rule: kind %v, want not found", kind)
		}
	}
	if n := cc.rules.Load(); n != 4 {
		t.Fatalf("%d rule reads, want 4", n)
	}
}
