package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// TestAlertRepositories covers the alert resources, sealed-secret
// bookkeeping and the batched evaluation commit with its per-rule
// compare-and-swap.
func TestAlertRepositories(t *testing.T) {
	ctx := context.Background()
	c, err := Open(ctx, Options{Path: filepath.Join(t.TempDir(), "c.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, err := c.Bootstrap(ctx, BootstrapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sub, rg := b.Subscription.ID, b.ResourceGroup.Name
	put := func(typ, name string, secrets *AlertSecretsUpdate) (AlertResource, []string) {
		t.Helper()
		a, _, ins, err := c.PutAlertResource(ctx, AlertResource{Type: typ, SubscriptionID: sub, ResourceGroup: rg, Name: name,
			Location: "Global", Properties: json.RawMessage(`{"x":1}`)}, secrets, Precondition{}, Actor{ID: "me", Type: "User"})
		if err != nil {
			t.Fatal(err)
		}
		return a, ins
	}
	g, ins := put(TypeActionGroup, "g", &AlertSecretsUpdate{Create: map[string][]byte{"a": []byte("s1"), "b": []byte("s2")}})
	if len(ins) != 2 {
		t.Fatalf("inserted %v", ins)
	}
	// Keeps "a" (old value), drops "b", adds "c".
	if _, ins = put(TypeActionGroup, "g", &AlertSecretsUpdate{Create: map[string][]byte{"a": []byte("new"), "c": []byte("s3")}}); len(ins) != 1 || ins[0] != "c" {
		t.Fatalf("inserted on update %v", ins)
	}
	if s, err := c.AlertSecret(ctx, g.ID(), "a"); err != nil || string(s) != "s1" {
		t.Fatalf("secret a: %q %v", s, err)
	}
	if _, err := c.AlertSecret(ctx, g.ID(), "b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("secret b: %v", err)
	}
	if _, err := c.AlertResource(ctx, TypeScheduledQueryRule, sub, rg, "g"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("types are separate: %v", err)
	}
	if _, _, _, err := c.PutAlertResource(ctx, AlertResource{Type: TypeActionGroup, SubscriptionID: sub, ResourceGroup: rg, Name: "a/b",
		Location: "Global"}, nil, Precondition{}, Actor{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad name: %v", err)
	}

	r1, _ := put(TypeScheduledQueryRule, "r1", nil)
	r2, _ := put(TypeScheduledQueryRule, "r2", nil)
	now := time.Now().UTC()
	n := Notification{ID: "n1", AlertID: "a1", SubscriptionID: sub, ReceiverType: "webhook", ActionGroupID: g.ID(), Receiver: "a",
		NextAttemptAt: now, CreatedAt: now, Payload: json.RawMessage(`{}`)}
	errs, err := c.CommitEvaluations(ctx, []EvaluationCommit{
		{RuleID: r1.ID(), State: json.RawMessage(`{"v":1}`), Notifications: []Notification{n}},
		{RuleID: r2.ID(), PrevState: json.RawMessage(`{"v":0}`), State: json.RawMessage(`{"v":1}`)}, // no state yet: conflict
		{RuleID: AlertResourceID(TypeScheduledQueryRule, sub, rg, "gone"), State: json.RawMessage(`{}`)},
	})
	if err != nil || errs[0] != nil || !errors.Is(errs[1], ErrConflict) || !errors.Is(errs[2], ErrNotFound) {
		t.Fatalf("batch: %v %v", errs, err)
	}
	if s, _ := c.RuleState(ctx, r1.ID()); string(s) != `{"v":1}` {
		t.Fatalf("r1 state %s", s)
	}
	if s, _ := c.RuleState(ctx, r2.ID()); s != nil {
		t.Fatalf("conflicting commit wrote state %s", s)
	}
	// The same notification ID again is ignored; a replayed state is a conflict.
	if err := c.CommitEvaluation(ctx, EvaluationCommit{RuleID: r1.ID(), PrevState: json.RawMessage(`{"v":1}`), State: json.RawMessage(`{"v":2}`),
		Notifications: []Notification{n}}); err != nil {
		t.Fatal(err)
	}
	if err := c.CommitEvaluation(ctx, EvaluationCommit{RuleID: r1.ID(), PrevState: json.RawMessage(`{"v":1}`), State: json.RawMessage(`{"v":3}`)}); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale commit: %v", err)
	}
	due, err := c.DueNotifications(ctx, now.Add(time.Second), 10)
	if err != nil || len(due) != 1 {
		t.Fatalf("due: %v %v", due, err)
	}
	if err := c.RecordDeliveryAttempt(ctx, DeliveryAttempt{NotificationID: "n1", Attempt: 1, At: now, Outcome: "Retry"}, NotificationPending, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if due, _ := c.DueNotifications(ctx, now.Add(30*time.Second), 10); len(due) != 0 {
		t.Fatalf("not yet due: %v", due)
	}
	if next, ok, _ := c.NextNotificationDue(ctx); !ok || !next.Equal(now.Add(time.Minute)) {
		t.Fatalf("next due %v %v", next, ok)
	}
	// Deleting the resource group removes its alert resources and their state.
	if _, _, err := c.DeleteResourceGroup(ctx, sub, rg, []string{"*"}); err != nil {
		t.Fatal(err)
	}
	if s, _ := c.RuleState(ctx, r1.ID()); s != nil {
		t.Fatalf("state survived its rule: %s", s)
	}
}
