package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"custos/internal/identity"
	"custos/internal/store"
)

// TestQueryWaitsForSlotTimesOut: with query.maxWorkers 1 and the one slot
// held, a Log Analytics query waits for it and answers Azure's timeout (504
// GatewayTimeout in the envelope) at its Prefer: wait= timeout instead of
// hanging; once the slot is free the same query answers.
func TestQueryWaitsForSlotTimesOut(t *testing.T) {
	dir := newDataDir(t)
	cfg := testConfig(dir)
	cfg.Query.MaxWorkers = 1
	ts := startServer(t, cfg)
	adm := adminCredentials(t, dir)
	ctx := context.Background()
	app, err := ts.store.Appender(ctx, store.TableRef{WorkspaceID: adm.WorkspaceID, Table: "Heartbeat"})
	if err != nil {
		t.Fatal(err)
	}
	b := &store.Batch{Schema: store.Schema{{Name: "TimeGenerated", Type: store.TypeDatetime}, {Name: "Computer", Type: store.TypeString}},
		Cols: []*store.Vector{{Type: store.TypeDatetime, Int: []int64{store.TicksFromTime(time.Now().Add(-time.Minute))}},
			{Type: store.TypeString, Str: []string{"a"}}}, Len: 1}
	if err := app.Append(b); err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ts.querySlots.Slots(); got != 1 {
		t.Fatalf("query.maxWorkers 1 gave %d slots", got)
	}
	tok := tokenFor(t, ts, adm, adm.ClientID, adm.ClientSecret, identity.AudienceQuery)
	path := "/v1/workspaces/" + adm.WorkspaceID + "/query"
	body := map[string]string{"query": "Heartbeat | summarize count() by Computer"}
	if code, m, raw := ts.queryCall(t, tok, path, body); code != 200 || strings.Join(rowsOf(m), ",") != "a|1" {
		t.Fatalf("query: %d %s", code, raw)
	}

	hold, held := make(chan struct{}), make(chan struct{})
	released := make(chan struct{})
	go func() {
		_ = ts.querySlots.Do(ctx, func() { close(held); <-hold })
		close(released)
	}()
	<-held
	start := time.Now()
	code, m, raw := ts.queryCall(t, tok, path, body, "Prefer", "wait=1")
	if code != 504 {
		t.Fatalf("query waiting for the held slot: %d %s; want 504", code, raw)
	}
	if e, _ := m["error"].(map[string]any); e == nil || e["code"] != "GatewayTimeout" {
		t.Fatalf("timeout envelope: %s", raw)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("the timeout took %v for wait=1", d)
	}
	if s := ts.querySlots.Stats(); s.Canceled == 0 {
		t.Fatalf("no slot wait was given up: %+v", s)
	}
	close(hold)
	<-released
	if code, m, raw := ts.queryCall(t, tok, path, body); code != 200 || strings.Join(rowsOf(m), ",") != "a|1" {
		t.Fatalf("query after the slot was freed: %d %s", code, raw)
	}
}
