package inventory

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"custos/internal/agent/kube"
)

// TablePerf is the table of the request, limit, allocatable and capacity
// counters (Options.ResourceCounters).
const TablePerf = "Perf"

// resourceRows returns Container insights' Perf counters that come from
// the API server's objects rather than the kubelet: per container
// (ObjectName K8SContainer, InstanceName <clusterId>/<podUid>/<container>)
// cpuRequestNanoCores, memoryRequestBytes, cpuLimitNanoCores and
// memoryLimitBytes — a container without a limit gets its node's
// allocatable, as Azure's agent reports it; a request that is not set is
// left out — and per node (K8SNode, <clusterId>/<node>)
// cpuAllocatableNanoCores, memoryAllocatableBytes, cpuCapacityNanoCores and
// memoryCapacityBytes. Pods of namespaces the filter leaves out, pods not
// scheduled yet and pods opted out (fluentbit.io/exclude) have none.
func (c *Collector) resourceRows(pods []*corev1.Pod, nodes []*corev1.Node, now time.Time) [][]byte {
	var out [][]byte
	add := func(computer, obj, inst, counter string, v float64) {
		out = append(out, mustJSON(kube.Perf{TimeGenerated: now, Computer: computer, ObjectName: obj, CounterName: counter, InstanceName: inst,
			CounterValue: v, CounterPath: "\\\\" + computer + "\\" + obj + "(" + inst + ")\\" + counter, SourceSystem: "K8s", ResourceID: c.o.ResourceID}))
	}
	type alloc struct{ cpu, mem *resource.Quantity }
	allocatable := make(map[string]alloc, len(nodes))
	for _, n := range nodes {
		inst := c.o.ClusterID + "/" + n.Name
		a := alloc{}
		if q, ok := n.Status.Allocatable[corev1.ResourceCPU]; ok {
			a.cpu = &q
			add(n.Name, kube.ObjectNode, inst, "cpuAllocatableNanoCores", nanoCores(q))
		}
		if q, ok := n.Status.Allocatable[corev1.ResourceMemory]; ok {
			a.mem = &q
			add(n.Name, kube.ObjectNode, inst, "memoryAllocatableBytes", float64(q.Value()))
		}
		if q, ok := n.Status.Capacity[corev1.ResourceCPU]; ok {
			add(n.Name, kube.ObjectNode, inst, "cpuCapacityNanoCores", nanoCores(q))
		}
		if q, ok := n.Status.Capacity[corev1.ResourceMemory]; ok {
			add(n.Name, kube.ObjectNode, inst, "memoryCapacityBytes", float64(q.Value()))
		}
		allocatable[n.Name] = a
	}
	for _, p := range pods {
		if p.Spec.NodeName == "" || p.UID == "" || !c.allows(p.Namespace) || OptedOut(p) {
			continue
		}
		node := allocatable[p.Spec.NodeName]
		for _, ct := range p.Spec.Containers {
			inst := c.o.ClusterID + "/" + string(p.UID) + "/" + ct.Name
			if q, ok := ct.Resources.Requests[corev1.ResourceCPU]; ok {
				add(p.Spec.NodeName, kube.ObjectContainer, inst, "cpuRequestNanoCores", nanoCores(q))
			}
			if q, ok := ct.Resources.Requests[corev1.ResourceMemory]; ok {
				add(p.Spec.NodeName, kube.ObjectContainer, inst, "memoryRequestBytes", float64(q.Value()))
			}
			if q, ok := ct.Resources.Limits[corev1.ResourceCPU]; ok {
				add(p.Spec.NodeName, kube.ObjectContainer, inst, "cpuLimitNanoCores", nanoCores(q))
			} else if node.cpu != nil {
				add(p.Spec.NodeName, kube.ObjectContainer, inst, "cpuLimitNanoCores", nanoCores(*node.cpu))
			}
			if q, ok := ct.Resources.Limits[corev1.ResourceMemory]; ok {
				add(p.Spec.NodeName, kube.ObjectContainer, inst, "memoryLimitBytes", float64(q.Value()))
			} else if node.mem != nil {
				add(p.Spec.NodeName, kube.ObjectContainer, inst, "memoryLimitBytes", float64(node.mem.Value()))
			}
		}
	}
	return out
}

// nanoCores converts a CPU quantity ("250m", "2") to nanocores.
func nanoCores(q resource.Quantity) float64 {
	return float64(q.ScaledValue(resource.Nano))
}
