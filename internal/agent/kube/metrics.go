package kube

import (
	"encoding/json"
	"strconv"
	"time"
)

// Perf object names Container insights uses.
const (
	ObjectNode      = "K8SNode"
	ObjectContainer = "K8SContainer"
)

// Perf is one row of the Perf table as Container insights writes it:
// ObjectName K8SNode (InstanceName "<cluster>/<node>") or K8SContainer
// (InstanceName "<cluster>/<pod UID>/<container>").
type Perf struct {
	TimeGenerated time.Time `json:"TimeGenerated"`
	Computer      string    `json:"Computer"`
	ObjectName    string    `json:"ObjectName"`
	CounterName   string    `json:"CounterName"`
	InstanceName  string    `json:"InstanceName"`
	CounterValue  float64   `json:"CounterValue"`
	CounterPath   string    `json:"CounterPath"`
	SourceSystem  string    `json:"SourceSystem"`
	ResourceID    string    `json:"_ResourceId,omitempty"`
}

// InsightsMetrics is one row of the InsightsMetrics table. Tags is a JSON
// object in a string, as Azure stores it.
type InsightsMetrics struct {
	TimeGenerated time.Time `json:"TimeGenerated"`
	Computer      string    `json:"Computer"`
	Origin        string    `json:"Origin"`
	Namespace     string    `json:"Namespace"`
	Name          string    `json:"Name"`
	Val           float64   `json:"Val"`
	Tags          string    `json:"Tags"`
	SourceSystem  string    `json:"SourceSystem"`
	ResourceID    string    `json:"_ResourceId,omitempty"`
}

// MetricsOptions name the cluster in the rows.
type MetricsOptions struct {
	ClusterID   string // the cluster's resource ID: InstanceName prefix, clusterId tag, _ResourceId
	ClusterName string // clusterName tag
	// Exclude, if set, leaves out the pods (containers and volumes) for
	// which it returns true: pods opted out with fluentbit.io/exclude, and
	// pods whose annotations are not known yet (fail closed).
	Exclude func(namespace, pod string) bool
}

func (o MetricsOptions) excluded(p PodStats) bool {
	return o.Exclude != nil && o.Exclude(p.PodRef.Namespace, p.PodRef.Name)
}

// PerfRows maps a kubelet summary to Perf rows with Azure's counter names:
// K8SNode cpuUsageNanoCores, memoryWorkingSetBytes, memoryRssBytes,
// networkRxBytes, networkTxBytes, restartTimeEpoch (and networkRxBytesPerSec /
// networkTxBytesPerSec when prev, the previous summary, is given);
// K8SContainer cpuUsageNanoCores, memoryWorkingSetBytes, memoryRssBytes,
// restartTimeEpoch. Counters the kubelet did not report are left out. The
// request/limit/capacity counters come from the API server, not the
// kubelet, and are not produced here.
func PerfRows(s, prev *Summary, o MetricsOptions) []Perf {
	node := s.Node.NodeName
	var out []Perf
	add := func(t time.Time, obj, inst, counter string, v float64) {
		out = append(out, Perf{TimeGenerated: t.UTC(), Computer: node, ObjectName: obj, CounterName: counter, InstanceName: inst,
			CounterValue: v, CounterPath: "\\\\" + node + "\\" + obj + "(" + inst + ")\\" + counter, SourceSystem: "K8s", ResourceID: o.ClusterID})
	}
	inst := o.ClusterID + "/" + node
	n := s.Node
	if c := n.CPU; c != nil && c.UsageNanoCores != nil {
		add(c.Time, ObjectNode, inst, "cpuUsageNanoCores", float64(*c.UsageNanoCores))
	}
	if m := n.Memory; m != nil {
		if m.WorkingSetBytes != nil {
			add(m.Time, ObjectNode, inst, "memoryWorkingSetBytes", float64(*m.WorkingSetBytes))
		}
		if m.RSSBytes != nil {
			add(m.Time, ObjectNode, inst, "memoryRssBytes", float64(*m.RSSBytes))
		}
	}
	if nw := n.Network; nw != nil {
		if nw.RxBytes != nil {
			add(nw.Time, ObjectNode, inst, "networkRxBytes", float64(*nw.RxBytes))
		}
		if nw.TxBytes != nil {
			add(nw.Time, ObjectNode, inst, "networkTxBytes", float64(*nw.TxBytes))
		}
		if prev != nil && prev.Node.Network != nil && prev.Node.NodeName == node {
			p := prev.Node.Network
			if dt := nw.Time.Sub(p.Time).Seconds(); dt > 0 {
				if nw.RxBytes != nil && p.RxBytes != nil && *nw.RxBytes >= *p.RxBytes {
					add(nw.Time, ObjectNode, inst, "networkRxBytesPerSec", float64(*nw.RxBytes-*p.RxBytes)/dt)
				}
				if nw.TxBytes != nil && p.TxBytes != nil && *nw.TxBytes >= *p.TxBytes {
					add(nw.Time, ObjectNode, inst, "networkTxBytesPerSec", float64(*nw.TxBytes-*p.TxBytes)/dt)
				}
			}
		}
	}
	if !n.StartTime.IsZero() {
		add(sampleTime(n.CPU, n.Memory, n.StartTime), ObjectNode, inst, "restartTimeEpoch", float64(n.StartTime.Unix()))
	}
	for _, p := range s.Pods {
		if p.PodRef.UID == "" || o.excluded(p) {
			continue
		}
		for _, c := range p.Containers {
			ci := o.ClusterID + "/" + p.PodRef.UID + "/" + c.Name
			if c.CPU != nil && c.CPU.UsageNanoCores != nil {
				add(c.CPU.Time, ObjectContainer, ci, "cpuUsageNanoCores", float64(*c.CPU.UsageNanoCores))
			}
			if m := c.Memory; m != nil {
				if m.WorkingSetBytes != nil {
					add(m.Time, ObjectContainer, ci, "memoryWorkingSetBytes", float64(*m.WorkingSetBytes))
				}
				if m.RSSBytes != nil {
					add(m.Time, ObjectContainer, ci, "memoryRssBytes", float64(*m.RSSBytes))
				}
			}
			if !c.StartTime.IsZero() {
				add(sampleTime(c.CPU, c.Memory, c.StartTime), ObjectContainer, ci, "restartTimeEpoch", float64(c.StartTime.Unix()))
			}
		}
	}
	return out
}

func sampleTime(c *CPUStats, m *MemoryStats, fallback time.Time) time.Time {
	if c != nil && !c.Time.IsZero() {
		return c.Time
	}
	if m != nil && !m.Time.IsZero() {
		return m.Time
	}
	return fallback
}

// InsightsMetricsRows maps persistent-volume usage in the summary to
// InsightsMetrics: Namespace "container.azm.ms/pv", Name "pvUsedBytes",
// with Tags podUid, podName, podNamespace, pvcName, pvcNamespace,
// volumeName, capacityBytes, clusterId, clusterName (Container insights' PV
// metric), and the node filesystem as Namespace "container.azm.ms/disk"
// (used_bytes, free, used_percent; tags hostName, device "nodefs").
func InsightsMetricsRows(s *Summary, o MetricsOptions) []InsightsMetrics {
	node := s.Node.NodeName
	var out []InsightsMetrics
	add := func(t time.Time, ns, name string, v float64, tags map[string]string) {
		b, _ := json.Marshal(tags) // map[string]string always marshals
		out = append(out, InsightsMetrics{TimeGenerated: t.UTC(), Computer: node, Origin: "container.azm.ms/telegraf", Namespace: ns,
			Name: name, Val: v, Tags: string(b), SourceSystem: "Insights", ResourceID: o.ClusterID})
	}
	for _, p := range s.Pods {
		if o.excluded(p) {
			continue
		}
		for _, v := range p.Volumes {
			if v.PVCRef == nil || v.UsedBytes == nil {
				continue
			}
			tags := map[string]string{"podUid": p.PodRef.UID, "podName": p.PodRef.Name, "podNamespace": p.PodRef.Namespace,
				"pvcName": v.PVCRef.Name, "pvcNamespace": v.PVCRef.Namespace, "volumeName": v.Name,
				"clusterId": o.ClusterID, "clusterName": o.ClusterName}
			if v.CapacityBytes != nil {
				tags["capacityBytes"] = strconv.FormatUint(*v.CapacityBytes, 10)
			}
			add(v.Time, "container.azm.ms/pv", "pvUsedBytes", float64(*v.UsedBytes), tags)
		}
	}
	if fs := s.Node.Fs; fs != nil && fs.UsedBytes != nil && fs.CapacityBytes != nil && *fs.CapacityBytes > 0 {
		tags := map[string]string{"hostName": node, "device": "nodefs", "clusterId": o.ClusterID, "clusterName": o.ClusterName}
		add(fs.Time, "container.azm.ms/disk", "used_bytes", float64(*fs.UsedBytes), tags)
		if fs.AvailableBytes != nil {
			add(fs.Time, "container.azm.ms/disk", "free", float64(*fs.AvailableBytes), tags)
		}
		add(fs.Time, "container.azm.ms/disk", "used_percent", 100*float64(*fs.UsedBytes)/float64(*fs.CapacityBytes), tags)
	}
	return out
}
