// Package kube turns what a Kubernetes node exposes into Container insights
// records for custos-agent: container log files under /var/log/pods and
// /var/log/containers (CRI and Docker json-file formats, partial lines
// reassembled) become ContainerLogV2 rows, and the kubelet's /stats/summary
// becomes Perf (objects K8SNode, K8SContainer) and InsightsMetrics rows.
//
// It owns the parsers (which take untrusted input and never panic), the
// namespace and annotation filters and the kubelet client. It does not read
// files itself: the agent's tail package follows the files and hands lines to
// a LogCollector. Like the rest of the agent it must not import
// internal/store, internal/engine or internal/kql.
package kube
