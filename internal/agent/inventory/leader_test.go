package inventory

import (
	"context"
	"encoding/pem"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"custos/internal/agent/kube/kubetest"
)

// TestElectTakeover: two candidates with the cluster agent's rules from
// deploy/kubernetes (its ClusterRole, and the Role on leases in
// custos-system) against the API server substitute; one leads and runs,
// the other stands by; when the leader stops, it releases the lease and
// the other takes over at once. Never do both run at the same time.
func TestElectTakeover(t *testing.T) {
	rules, err := kubetest.RulesFromManifest("../../../deploy/kubernetes/rbac.yaml", "custos-agent-cluster")
	if err != nil {
		t.Fatal(err)
	}
	roles, err := kubetest.RoleRulesFromManifest("../../../deploy/kubernetes/rbac.yaml", "custos-agent-cluster-leader")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := kubetest.New(kubetest.Options{Tokens: map[string]kubetest.Rules{"sa-token": rules},
		Roles: map[string]kubetest.RoleRules{"sa-token": roles}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	co := ClientOptions{URL: srv.URL, TokenFile: filepath.Join(dir, "token"), CAFile: filepath.Join(dir, "ca.crt")}
	os.WriteFile(co.TokenFile, []byte("sa-token\n"), 0o600)
	os.WriteFile(co.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate()}), 0o600)

	var running, overlap atomic.Int32
	started := map[string]chan struct{}{"a": make(chan struct{}), "b": make(chan struct{})}
	elect := func(ctx context.Context, id string, done chan<- error) {
		done <- Elect(ctx, ElectOptions{Client: co, Namespace: "custos-system", Name: "custos-agent-cluster-test", Identity: id,
			LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 200 * time.Millisecond},
			func(rctx context.Context) {
				if running.Add(1) > 1 {
					overlap.Add(1)
				}
				close(started[id])
				<-rctx.Done()
				time.Sleep(100 * time.Millisecond) // stopping takes a moment: the lease must wait for it
				running.Add(-1)
			})
	}
	ctxA, stopA := context.WithCancel(context.Background())
	defer stopA()
	doneA, doneB := make(chan error, 1), make(chan error, 1)
	go elect(ctxA, "a", doneA)
	select {
	case <-started["a"]:
	case <-time.After(10 * time.Second):
		t.Fatal("the first candidate did not lead")
	}
	ctxB, stopB := context.WithCancel(context.Background())
	defer stopB()
	go elect(ctxB, "b", doneB)
	time.Sleep(1500 * time.Millisecond) // several retry periods: b must stand by
	select {
	case <-started["b"]:
		t.Fatal("the standby runs while the leader holds the lease")
	default:
	}
	if l, ok := srv.Lease("custos-system", "custos-agent-cluster-test"); !ok || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != "a" {
		t.Fatalf("lease: %+v", l)
	}

	stopA() // a clean stop: the lease is released after run returned
	if err := <-doneA; err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	select {
	case <-started["b"]:
	case <-time.After(10 * time.Second):
		t.Fatal("the standby did not take over")
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("takeover after a released lease took %v; want about a retry period", d)
	}
	if l, _ := srv.Lease("custos-system", "custos-agent-cluster-test"); *l.Spec.HolderIdentity != "b" {
		t.Errorf("lease holder %q, want b", *l.Spec.HolderIdentity)
	}
	stopB()
	if err := <-doneB; err != nil {
		t.Fatal(err)
	}
	if overlap.Load() != 0 {
		t.Error("both candidates ran at once")
	}
	for k, n := range srv.Requests() {
		if len(k) > 9 && k[:9] == "forbidden" {
			t.Errorf("%d requests outside the Role: %s", n, k)
		}
	}
}

// TestElectOutsideTheRole: the Role allows leases in custos-system only; a
// candidate configured for another namespace never leads (and says why in
// the API server's refusals).
func TestElectOutsideTheRole(t *testing.T) {
	roles, err := kubetest.RoleRulesFromManifest("../../../deploy/kubernetes/rbac.yaml", "custos-agent-cluster-leader")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := kubetest.New(kubetest.Options{Tokens: map[string]kubetest.Rules{"sa-token": func(string, string) bool { return false }},
		Roles: map[string]kubetest.RoleRules{"sa-token": roles}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	co := ClientOptions{URL: srv.URL, TokenFile: filepath.Join(dir, "token"), CAFile: filepath.Join(dir, "ca.crt")}
	os.WriteFile(co.TokenFile, []byte("sa-token\n"), 0o600)
	os.WriteFile(co.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate()}), 0o600)
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	var ran atomic.Bool
	if err := Elect(ctx, ElectOptions{Client: co, Namespace: "default", Name: "x", Identity: "a",
		LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 200 * time.Millisecond},
		func(context.Context) { ran.Store(true) }); err != nil {
		t.Fatal(err)
	}
	if ran.Load() {
		t.Error("led without the right to the lease")
	}
	if srv.Requests()["forbidden get leases default"] == 0 {
		t.Errorf("no refused lease request: %v", srv.Requests())
	}
	if err := Elect(ctx, ElectOptions{Client: co, Name: "x", Identity: "a"}, func(context.Context) {}); err == nil {
		t.Error("no namespace: no error")
	}
}
