package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportBoundary keeps the agent a separate, small client: it must not
// link the server's storage, query engine, KQL or any server-side package.
func TestImportBoundary(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	allowed := map[string]bool{
		"custos/cmd/custos-agent":         true,
		"custos/internal/agent":           true,
		"custos/internal/agent/kube":      true, // stdlib + prometheus/common's expfmt
		"custos/internal/agent/inventory": true, // client-go informers (cluster role, pod metadata)
		"custos/internal/agent/perf":      true,
		"custos/internal/agent/queue":     true,
		"custos/internal/agent/syslog":    true,
		"custos/internal/agent/tail":      true,
		"custos/internal/enroll":          true, // the machine side of enrollment; stdlib + azcore only
	}
	forbidden := []string{"custos/internal/store", "custos/internal/engine", "custos/internal/kql"}
	for _, pkg := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if pkg == f || strings.HasPrefix(pkg, f+"/") {
				t.Errorf("custos-agent imports %s", pkg)
			}
		}
		if strings.HasPrefix(pkg, "custos/") && !allowed[pkg] {
			t.Errorf("custos-agent imports %s, which is not an agent package", pkg)
		}
		if strings.HasPrefix(pkg, "modernc.org/") || strings.HasPrefix(pkg, "github.com/Azure/azure-sdk-for-go/sdk/monitor") ||
			strings.HasPrefix(pkg, "github.com/klauspost/") || strings.HasPrefix(pkg, "github.com/go-jose/") {
			t.Errorf("custos-agent links %s; the agent must stay small", pkg)
		}
	}
}
