package agent

import (
	"strings"
	"testing"
)

func TestKubeLogCollectionConfig(t *testing.T) {
	const base = minimalConfig + "kubernetes:\n  enabled: true\n  clusterResourceId: /subscriptions/s/resourceGroups/rg/providers/Microsoft.Kubernetes/connectedClusters/prod-1\n"
	c, err := ParseConfig([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if lc := c.Kubernetes.LogCollection; !lc.Stdout.On() || !lc.Stderr.On() || lc.Stdout.ExcludeNamespaces != nil || lc.Stderr.ExcludeNamespaces != nil {
		t.Fatalf("defaults: both streams on, nothing excluded; got %+v", lc)
	}
	c, err = ParseConfig([]byte(base + "  logCollection:\n    stdout:\n      excludeNamespaces: [kube-system, gatekeeper-system]\n    stderr:\n      enabled: false\n"))
	if err != nil {
		t.Fatal(err)
	}
	if lc := c.Kubernetes.LogCollection; !lc.Stdout.On() || lc.Stderr.On() || strings.Join(lc.Stdout.ExcludeNamespaces, ",") != "kube-system,gatekeeper-system" {
		t.Fatalf("parsed %+v", lc)
	}
	for _, tt := range []struct{ yaml, want string }{
		{"  logCollection:\n    stdout:\n      excludeNamespaces: [Kube_System]\n", `kubernetes.logCollection.stdout.excludeNamespaces: "Kube_System" is not a namespace name`},
		{"  logCollection:\n    stderr:\n      excludeNamespaces: [\"\"]\n", `kubernetes.logCollection.stderr.excludeNamespaces: "" is not a namespace name`},
		{"  logCollection:\n    stderr:\n      excludeNamespaces: [" + strings.Repeat("a", 64) + "]\n", "is not a namespace name"},
		{"  logCollection:\n    stdout:\n      excludeNamespaces: [a, b, a]\n", `stdout.excludeNamespaces lists "a" twice`},
		{"  logCollection:\n    stdout:\n      enabled: false\n      excludeNamespaces: [a]\n", "excludeNamespaces has no effect while enabled is false"},
		{"  logCollection:\n    stdout:\n      enabled: maybe\n", "line 10: cannot unmarshal"},
		{"  logCollection:\n    stdout:\n      exclude_namespaces: [a]\n", "exclude_namespaces"},
		{"  logCollection:\n    stdin:\n      enabled: true\n", "stdin"},
	} {
		_, err := ParseConfig([]byte(base + tt.yaml))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want it to mention %q", tt.yaml, err, tt.want)
		}
	}
}
