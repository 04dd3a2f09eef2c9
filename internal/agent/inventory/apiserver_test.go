package inventory

import (
	"context"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"custos/internal/agent/kube/kubetest"
)

// apiServer starts the API server substitute with one token allowed what
// rules allow, and returns a real clientset for it.
func apiServer(t *testing.T, rules kubetest.Rules) (*kubetest.Server, ClientOptions) {
	t.Helper()
	srv, err := kubetest.New(kubetest.Options{Tokens: map[string]kubetest.Rules{"sa-token": rules}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	o := ClientOptions{URL: srv.URL, TokenFile: filepath.Join(dir, "token"), CAFile: filepath.Join(dir, "ca.crt")}
	os.WriteFile(o.TokenFile, []byte("sa-token\n"), 0o600)
	os.WriteFile(o.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate()}), 0o600)
	return srv, o
}

// TestCollectorOverHTTPS runs the collector with a real clientset against
// the API server substitute (list, watch-list, watch over HTTPS, the
// cluster role's rules from deploy/kubernetes enforced): the namespace
// filter applies to pods, containers, services and events but not nodes,
// scrape targets come from annotations, and opted-out pods are neither
// scraped nor have their environment collected.
func TestCollectorOverHTTPS(t *testing.T) {
	rules, err := kubetest.RulesFromManifest("../../../deploy/kubernetes/rbac.yaml", "custos-agent-cluster")
	if err != nil {
		t.Fatal(err)
	}
	srv, co := apiServer(t, rules)
	env := []corev1.EnvVar{{Name: "MODE", Value: "prod"}}
	web := pod("shop", "web-1", "1", "node-1", map[string]string{"app": "web"}, corev1.Container{Name: "web", Image: "web:1", Env: env,
		Ports: []corev1.ContainerPort{{ContainerPort: 9100}}})
	web.Annotations = map[string]string{"prometheus.io/scrape": "true", "prometheus.io/path": "/m"}
	hidden := pod("shop", "hidden-1", "2", "node-1", nil, corev1.Container{Name: "h", Image: "h:1", Env: env})
	hidden.Annotations = map[string]string{"fluentbit.io/exclude": "true", "prometheus.io/scrape": "true", "prometheus.io/port": "9200"}
	sys := pod("kube-system", "coredns-1", "3", "node-1", nil, corev1.Container{Name: "coredns", Image: "coredns:1"})
	sys.Annotations = map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "9153"}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-svc", Annotations: map[string]string{"prometheus.io/scrape": "true", "prometheus.io/scheme": "https"}},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10", Ports: []corev1.ServicePort{{Port: 8443}}}}
	bad := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "bad", Annotations: map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "http"}},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.11"}}
	for _, o := range []any{&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}}, web, hidden, sys, svc, bad,
		&corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "e1"}, InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "kube-system", Name: "coredns-1"}, Reason: "SysReason"},
		&corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "e2"}, InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "shop", Name: "web-1"}, Reason: "ShopReason"},
	} {
		if err := srv.Apply(o); err != nil {
			t.Fatal(err)
		}
	}
	client, err := NewClient(co)
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{rows: map[string][]map[string]any{}}
	c, err := New(Options{Source: client, ClusterID: "c", ClusterName: "c", Snapshot: 200 * time.Millisecond, CollectEnvVars: true,
		Namespaces: func(ns string) bool { return ns != "kube-system" }, Emit: s.emit})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if !c.WaitSynced(ctx) {
		t.Fatal("not synced")
	}
	waitUntil(t, "the shop event", func() bool {
		return len(s.find(TableEvents, func(r map[string]any) bool { return r["Reason"] == "ShopReason" })) > 0
	})
	waitUntil(t, "inventory", func() bool {
		return len(s.find(TablePods, func(r map[string]any) bool { return r["Name"] == "web-1" })) > 0
	})
	all := func(table string) []map[string]any { return s.find(table, func(map[string]any) bool { return true }) }
	for _, tbl := range []string{TablePods, TableContainers, TableServices, TableEvents} {
		for _, r := range all(tbl) {
			if r["Namespace"] == "kube-system" || r["ContainerHostname"] == "coredns-1" {
				t.Errorf("%s: a row of the excluded namespace: %v", tbl, r)
			}
		}
	}
	if len(all(TableNodes)) == 0 {
		t.Error("no node rows: nodes are not namespaced and never filtered")
	}
	for _, r := range all(TableContainers) {
		if env := r["EnvironmentVar"]; r["ContainerHostname"] == "hidden-1" && env != "" || r["ContainerHostname"] == "web-1" && env != `["MODE=prod"]` {
			t.Errorf("EnvironmentVar of %v: %q", r["ContainerHostname"], env)
		}
	}
	targets, skipped := c.ScrapeTargets()
	got := map[string]string{}
	for _, tg := range targets {
		got[tg.Kind+" "+tg.Namespace+"/"+tg.Name] = tg.URL
	}
	want := map[string]string{"pod shop/web-1": "http://10.244.0.7:9100/m", "service shop/web-svc": "https://10.96.0.10:8443/metrics"}
	if len(got) != len(want) || got["pod shop/web-1"] != want["pod shop/web-1"] || got["service shop/web-svc"] != want["service shop/web-svc"] {
		t.Errorf("scrape targets %v; want %v", got, want)
	}
	if skipped["service shop/bad"] == "" {
		t.Errorf("skipped %v", skipped)
	}
	// A new pod arrives through the watch.
	web2 := pod("shop", "web-2", "4", "node-1", nil, corev1.Container{Name: "web", Image: "web:2"})
	if err := srv.Apply(web2); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the new pod", func() bool {
		return len(s.find(TablePods, func(r map[string]any) bool { return r["Name"] == "web-2" })) > 0
	})
	req := srv.Requests()
	if req["watch pods"] == 0 || req["watch events"] == 0 {
		t.Errorf("requests %v", req)
	}
	for k, n := range req {
		if len(k) > 9 && k[:9] == "forbidden" {
			t.Errorf("%d requests outside the ClusterRole: %s", n, k)
		}
	}
}

// TestPodCacheNodeScoped: a node agent's cache holds only its node's pods
// (the field selector), sees new ones through the watch, and remembers a
// deleted pod for its last log lines; the DaemonSet's role suffices.
func TestPodCacheNodeScoped(t *testing.T) {
	rules, err := kubetest.RulesFromManifest("../../../deploy/kubernetes/rbac.yaml", "custos-agent")
	if err != nil {
		t.Fatal(err)
	}
	srv, co := apiServer(t, rules)
	mine := pod("shop", "a", "1", "node-1", map[string]string{"app": "a"}, corev1.Container{Name: "c", Image: "img:1"})
	other := pod("shop", "b", "2", "node-2", nil, corev1.Container{Name: "c", Image: "img:1"})
	srv.Apply(mine)
	srv.Apply(other)
	client, err := NewClient(co)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := NewPodCache(client, "node-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer pc.Start(ctx)()
	defer cancel()
	if !pc.WaitSynced(ctx) {
		t.Fatal("not synced")
	}
	if md, ok := pc.Pod("shop", "a"); !ok || md.ControllerKind != "ReplicaSet" || md.ControllerName != "a-rs" || md.Images["c"] != "img:1" || md.Labels["app"] != "a" {
		t.Errorf("pod a: %+v %v", md, ok)
	}
	if _, ok := pc.Pod("shop", "b"); ok {
		t.Error("a pod of another node is in the cache")
	}
	late := pod("shop", "late", "3", "node-1", nil, corev1.Container{Name: "c", Image: "img:2"})
	srv.Apply(late)
	waitUntil(t, "the new pod", func() bool { _, ok := pc.Pod("shop", "late"); return ok })
	srv.Delete(mine)
	time.Sleep(300 * time.Millisecond)
	if md, ok := pc.Pod("shop", "a"); !ok || md.Images["c"] != "img:1" {
		t.Errorf("deleted pod forgotten at once: %+v %v", md, ok)
	}
	for k, n := range srv.Requests() {
		if len(k) > 9 && k[:9] == "forbidden" {
			t.Errorf("%d requests outside the DaemonSet's ClusterRole: %s", n, k)
		}
	}
}
