package inventory

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
)

// clientsetSource lists and watches through a clientset (client-go's fake
// one here, an object tracker with real watch semantics).
type clientsetSource struct{ cs kubernetes.Interface }

func (s clientsetSource) ListerWatcher(resource string, tweak func(*metav1.ListOptions)) cache.ListerWatcher {
	if tweak == nil {
		tweak = func(*metav1.ListOptions) {}
	}
	core := s.cs.CoreV1()
	// The fake clientset reports that it lacks watch-list semantics (no
	// initial-events bookmark); the wrapper passes that on to the reflector.
	return cache.ToListWatcherWithWatchListSemantics(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			tweak(&o)
			switch resource {
			case "pods":
				return core.Pods("").List(ctx, o)
			case "nodes":
				return core.Nodes().List(ctx, o)
			case "services":
				return core.Services("").List(ctx, o)
			}
			return core.Events("").List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			tweak(&o)
			switch resource {
			case "pods":
				return core.Pods("").Watch(ctx, o)
			case "nodes":
				return core.Nodes().Watch(ctx, o)
			case "services":
				return core.Services("").Watch(ctx, o)
			}
			return core.Events("").Watch(ctx, o)
		},
	}, s.cs)
}

type sink struct {
	mu   sync.Mutex
	rows map[string][]map[string]any
}

func (s *sink) emit(table string, recs [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range recs {
		var m map[string]any
		if err := json.Unmarshal(r, &m); err != nil {
			return err
		}
		s.rows[table] = append(s.rows[table], m)
	}
	return nil
}

func (s *sink) find(table string, match func(map[string]any) bool) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, r := range s.rows[table] {
		if match(r) {
			out = append(out, r)
		}
	}
	return out
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func pod(ns, name, uid, node string, labels map[string]string, containers ...corev1.Container) *corev1.Pod {
	ctrl := true
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + uid), Labels: labels,
			Annotations:       map[string]string{"fluentbit.io/exclude": "false"},
			CreationTimestamp: metav1.NewTime(time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC)),
			OwnerReferences:   []metav1.OwnerReference{{Kind: "ReplicaSet", Name: name + "-rs", Controller: &ctrl}}},
		Spec:   corev1.PodSpec{NodeName: node, Containers: containers},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.244.0.7"},
	}
	for _, c := range containers {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: c.Name, RestartCount: 2,
			ContainerID: "containerd://abc" + c.Name, ImageID: "sha256:feed",
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(time.Date(2026, 11, 27, 1, 1, 0, 0, time.UTC))}}})
	}
	return p
}

// TestInventoryFromWatches drives the collector against client-go's fake
// clientset (an object tracker with real list and watch semantics): the
// first snapshot covers what exists, later snapshots what was created
// since, events arrive as they are created and again when they recur, and
// environment variables are collected only when enabled, never for a
// container that opts out and never from Secrets.
func TestInventoryFromWatches(t *testing.T) {
	for _, envOn := range []bool{false, true} {
		name := "env-off"
		if envOn {
			name = "env-on"
		}
		t.Run(name, func(t *testing.T) { testInventory(t, envOn) })
	}
}

func testInventory(t *testing.T, envOn bool) {
	web := corev1.Container{Name: "web", Image: "registry.example.io/shop/web:1.4.2", Command: []string{"/web"}, Args: []string{"--port=8080"},
		Ports: []corev1.ContainerPort{{ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
		Env: []corev1.EnvVar{{Name: "MODE", Value: "prod"},
			{Name: "DB_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{Key: "pw"}}}}}
	quiet := corev1.Container{Name: "quiet", Image: "nginx", Env: []corev1.EnvVar{{Name: "TOKEN", Value: "s3cr3t-value"}, {Name: EnvOptOut, Value: "False"}}}
	client := fake.NewClientset(
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1", Labels: map[string]string{"kubernetes.io/os": "linux"}},
			Spec: corev1.NodeSpec{ProviderID: "kind://docker/kind/node-1"},
			Status: corev1.NodeStatus{NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v1.33.1", ContainerRuntimeVersion: "containerd://2.0.0", OSImage: "Debian GNU/Linux 13"},
				Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC))}}}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-svc"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.96.0.10", Selector: map[string]string{"app": "web"}}},
		pod("shop", "web-1", "1", "node-1", map[string]string{"app": "web"}, web, quiet),
		&corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1.1", UID: "ev-1", ResourceVersion: "1"},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "shop", Name: "web-1"}, Reason: "Pulled", Message: "image pulled",
			Type: "Normal", Count: 1, Source: corev1.EventSource{Component: "kubelet", Host: "node-1"},
			FirstTimestamp: metav1.NewTime(time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC)), LastTimestamp: metav1.NewTime(time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC))},
	)
	s := &sink{rows: map[string][]map[string]any{}}
	c, err := New(Options{Source: clientsetSource{client}, ClusterID: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Kubernetes/connectedClusters/k1",
		ClusterName: "k1", ResourceID: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Kubernetes/connectedClusters/k1",
		Snapshot: 150 * time.Millisecond, CollectEnvVars: envOn, Emit: s.emit})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()

	waitUntil(t, "the first snapshot", func() bool { return len(s.find(TableNodes, func(map[string]any) bool { return true })) > 0 })
	pods := s.find(TablePods, func(r map[string]any) bool { return r["Name"] == "web-1" })
	if len(pods) < 2 {
		t.Fatalf("KubePodInventory rows for web-1: %v", pods)
	}
	p := pods[0]
	for k, want := range map[string]any{"Namespace": "shop", "Computer": "node-1", "ControllerKind": "ReplicaSet", "ControllerName": "web-1-rs",
		"PodStatus": "Running", "PodIp": "10.244.0.7", "ServiceName": "web-svc", "PodRestartCount": float64(4), "ContainerStatus": "Running",
		"ClusterName": "k1", "SourceSystem": "Containers", "PodLabel": `[{"app":"web"}]`} {
		if p[k] != want {
			t.Errorf("KubePodInventory %s = %v; want %v", k, p[k], want)
		}
	}
	if !strings.HasPrefix(p["ContainerName"].(string), "uid-1/") || !strings.HasPrefix(p["ContainerID"].(string), "abc") {
		t.Errorf("container name/id: %v %v", p["ContainerName"], p["ContainerID"])
	}
	n := s.find(TableNodes, func(map[string]any) bool { return true })[0]
	if n["Computer"] != "node-1" || n["KubeletVersion"] != "v1.33.1" || n["Status"] != "Ready" || n["OperatingSystem"] != "Debian GNU/Linux 13" {
		t.Errorf("KubeNodeInventory: %v", n)
	}
	sv := s.find(TableServices, func(map[string]any) bool { return true })[0]
	if sv["ServiceName"] != "web-svc" || sv["ClusterIp"] != "10.96.0.10" || sv["SelectorLabels"] != `[{"app":"web"}]` || sv["ServiceType"] != "ClusterIP" {
		t.Errorf("KubeServices: %v", sv)
	}
	cts := s.find(TableContainers, func(r map[string]any) bool { return r["ContainerHostname"] == "web-1" })
	byName := map[string]map[string]any{}
	for _, r := range cts {
		byName[r["Name"].(string)] = r
	}
	w, q := byName["uid-1/web"], byName["uid-1/quiet"]
	if w == nil || q == nil {
		t.Fatalf("ContainerInventory rows: %v", cts)
	}
	if w["Repository"] != "registry.example.io" || w["Image"] != "shop/web" || w["ImageTag"] != "1.4.2" || w["Command"] != `["/web","--port=8080"]` ||
		w["ContainerState"] != "Running" || !strings.Contains(w["Ports"].(string), "8080") {
		t.Errorf("ContainerInventory web: %v", w)
	}
	if q["Image"] != "nginx" || q["ImageTag"] != "latest" {
		t.Errorf("ContainerInventory quiet: %v", q)
	}
	s.mu.Lock() // the collector goes on emitting while the test reads
	all, _ := json.Marshal(s.rows)
	s.mu.Unlock()
	if strings.Contains(string(all), "s3cr3t-value") {
		t.Errorf("the opted-out container's environment was collected")
	}
	if strings.Contains(string(all), "DB_PASSWORD") {
		t.Errorf("a Secret-sourced variable was collected")
	}
	if envOn != (w["EnvironmentVar"] == `["MODE=prod"]`) {
		t.Errorf("EnvironmentVar with collection %v: %q", envOn, w["EnvironmentVar"])
	}

	// Events: the existing one, then a new one through the watch, then a recurrence.
	waitUntil(t, "the existing event", func() bool {
		return len(s.find(TableEvents, func(r map[string]any) bool { return r["Reason"] == "Pulled" })) == 1
	})
	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1.2", UID: "ev-2", ResourceVersion: "5"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "shop", Name: "web-1"}, Reason: "BackOff", Message: "Back-off restarting failed container",
		Type: "Warning", Count: 1, Source: corev1.EventSource{Component: "kubelet"}}
	if _, err := client.CoreV1().Events("shop").Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the new event", func() bool {
		return len(s.find(TableEvents, func(r map[string]any) bool { return r["Reason"] == "BackOff" && r["KubeEventType"] == "Warning" })) == 1
	})
	ev.Count, ev.ResourceVersion = 3, "6"
	if _, err := client.CoreV1().Events("shop").Update(ctx, ev, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the recurrence", func() bool {
		return len(s.find(TableEvents, func(r map[string]any) bool { return r["Reason"] == "BackOff" && r["Count"] == float64(3) })) == 1
	})
	time.Sleep(1200 * time.Millisecond)
	if n := len(s.find(TableEvents, func(r map[string]any) bool { return r["Reason"] == "Pulled" })); n != 1 {
		t.Errorf("the unchanged event was emitted %d times", n)
	}

	// A pod created later is in a later snapshot, and in the metadata lookup.
	if _, err := client.CoreV1().Pods("shop").Create(ctx, pod("shop", "web-2", "2", "node-1", map[string]string{"app": "web", "tier": "front"}, web), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the new pod's inventory", func() bool {
		return len(s.find(TablePods, func(r map[string]any) bool { return r["Name"] == "web-2" })) > 0
	})
	md, ok := c.Pod("shop", "web-2")
	if !ok || md.UID != "uid-2" || md.Labels["tier"] != "front" || md.Images["web"] != web.Image || md.ContainerIDs["web"] != "abcweb" {
		t.Errorf("Pod metadata: %+v %v", md, ok)
	}
	if _, ok := c.Pod("shop", "nope"); ok {
		t.Error("metadata for a pod that does not exist")
	}
}

func TestSplitImage(t *testing.T) {
	for ref, want := range map[string][3]string{
		"nginx":                                 {"", "nginx", "latest"},
		"nginx:1.27":                            {"", "nginx", "1.27"},
		"library/nginx:1.27":                    {"", "library/nginx", "1.27"},
		"registry.io:5000/team/app:2@sha256:ab": {"registry.io:5000", "team/app", "2"},
		"localhost/app":                         {"localhost", "app", "latest"},
	} {
		r, i, tg := splitImage(ref)
		if [3]string{r, i, tg} != want {
			t.Errorf("splitImage(%q) = %q %q %q; want %v", ref, r, i, tg, want)
		}
	}
}
