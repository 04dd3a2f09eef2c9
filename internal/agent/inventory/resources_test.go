package inventory

import (
	"encoding/json"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"

	"custos/internal/agent/kube"
)

// TestResourceCounters: requests and limits per container (a missing limit
// is the node's allocatable, a missing request is left out), allocatable
// and capacity per node; the namespace filter and the opt-out annotation
// apply, unscheduled pods have none.
func TestResourceCounters(t *testing.T) {
	c := &Collector{o: Options{ClusterID: "/subscriptions/s/resourceGroups/g/providers/Microsoft.Kubernetes/connectedClusters/c1", ResourceID: "rid",
		Namespaces: func(ns string) bool { return ns != "kube-system" }}}
	q := resource.MustParse
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Status: corev1.NodeStatus{
		Capacity:    corev1.ResourceList{corev1.ResourceCPU: q("4"), corev1.ResourceMemory: q("16Gi")},
		Allocatable: corev1.ResourceList{corev1.ResourceCPU: q("3800m"), corev1.ResourceMemory: q("15Gi")}}}
	pod := func(ns, name, uid string, ann map[string]string, nodeName string, res corev1.ResourceRequirements) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: k8stypes.UID("u-" + uid), Annotations: ann},
			Spec: corev1.PodSpec{NodeName: nodeName, Containers: []corev1.Container{{Name: "app", Resources: res}}}}
	}
	full := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: q("250m"), corev1.ResourceMemory: q("64Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: q("1"), corev1.ResourceMemory: q("128Mi")}}
	pods := []*corev1.Pod{
		pod("shop", "web", "web", nil, "n1", full),
		pod("shop", "bare", "bare", nil, "n1", corev1.ResourceRequirements{}),
		pod("shop", "pending", "pending", nil, "", full),
		pod("shop", "hidden", "hidden", map[string]string{ExcludeAnnotation: "true"}, "n1", full),
		pod("kube-system", "dns", "dns", nil, "n1", full),
	}
	now := time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)
	got := map[string]float64{}
	for _, b := range c.resourceRows(pods, []*corev1.Node{node}, now) {
		var p kube.Perf
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatal(err)
		}
		if p.Computer != "n1" || p.ResourceID != "rid" || !p.TimeGenerated.Equal(now) || p.SourceSystem != "K8s" {
			t.Errorf("row %+v", p)
		}
		got[p.ObjectName+"|"+p.InstanceName[len(c.o.ClusterID):]+"|"+p.CounterName] = p.CounterValue
	}
	want := map[string]float64{
		"K8SNode|/n1|cpuAllocatableNanoCores": 3.8e9, "K8SNode|/n1|memoryAllocatableBytes": 15 << 30,
		"K8SNode|/n1|cpuCapacityNanoCores": 4e9, "K8SNode|/n1|memoryCapacityBytes": 16 << 30,
		"K8SContainer|/u-web/app|cpuRequestNanoCores": 2.5e8, "K8SContainer|/u-web/app|memoryRequestBytes": 64 << 20,
		"K8SContainer|/u-web/app|cpuLimitNanoCores": 1e9, "K8SContainer|/u-web/app|memoryLimitBytes": 128 << 20,
		"K8SContainer|/u-bare/app|cpuLimitNanoCores": 3.8e9, "K8SContainer|/u-bare/app|memoryLimitBytes": 15 << 30,
	}
	if len(got) != len(want) {
		t.Errorf("got %d counters, want %d: %v", len(got), len(want), got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v; want %v", k, got[k], v)
		}
	}
}
