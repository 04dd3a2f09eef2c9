package agent

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"custos/internal/agent/inventory"
)

// DefaultKubeNamespace is where deploy/kubernetes installs the agents: the
// leases' namespace when neither $POD_NAMESPACE nor the ServiceAccount's
// namespace file says otherwise.
const DefaultKubeNamespace = "custos-system"

// kubeLeaseNamespace is the namespace of the cluster agent's leases: its
// own ($POD_NAMESPACE, else the namespace file next to the ServiceAccount
// token), where its Role allows them.
func (a *Agent) kubeLeaseNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	if b, err := os.ReadFile(filepath.Join(filepath.Dir(a.apiClientOptions().TokenFile), "namespace")); err == nil {
		if ns := strings.TrimSpace(string(b)); ns != "" {
			return ns
		}
	}
	return DefaultKubeNamespace
}

// kubeLeaderIdentity names this agent among the candidates: the pod
// ($POD_NAME, else the host name) and the process.
func kubeLeaderIdentity() string {
	name := os.Getenv("POD_NAME")
	if name == "" {
		name, _ = os.Hostname()
	}
	return name + "_" + strconv.Itoa(os.Getpid())
}

// whileLeading runs run while this cluster agent leads for the
// ContainerInsights extension of ks (a coordination.k8s.io Lease named
// custos-agent-cluster-<key>), until ctx ends: of the Deployment's
// replicas only the leader collects inventory, events and Prometheus
// metrics. The lease is released when ctx ends, after run returned.
func (a *Agent) whileLeading(ctx context.Context, ks kubeSettings, run func(context.Context)) {
	lg := a.log.With(slog.String("extension", ks.name), slog.String("source", "leader-election"))
	err := inventory.Elect(ctx, inventory.ElectOptions{Client: a.apiClientOptions(), Namespace: a.kubeLeaseNamespace(),
		Name: "custos-agent-cluster-" + ks.key, Identity: kubeLeaderIdentity(), Logger: lg}, run)
	if err != nil {
		a.collectError("kubernetes leader election "+ks.name, err)
	}
}
