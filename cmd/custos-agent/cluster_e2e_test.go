package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestClusterEnrollment: a cluster enrolls as
// Microsoft.Kubernetes/connectedClusters with a one-time token read from a
// file (a mounted Secret), the token cannot be used twice and a machine
// token cannot enroll a cluster; a rule associated with the cluster reaches
// the agent (Kubernetes mode, no client secret, no local rules) through the
// cluster identity's agentConfiguration, and its ContainerLogV2 rows carry
// the cluster's _ResourceId.
func TestClusterEnrollment(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server and the agent")
	}
	root := t.TempDir()
	e, _ := startEnv(t, root)
	adm := e.adm
	wsID := e.workspaceID()
	rule := map[string]any{"kind": "Linux", "properties": map[string]any{
		"dataSources": map[string]any{"extensions": []map[string]any{{
			"name": "ContainerInsightsExtension", "streams": []string{"Microsoft-ContainerLogV2"}, "extensionName": "ContainerInsights",
			"extensionSettings": map[string]any{"dataCollectionSettings": map[string]any{"interval": "1m"}}}}},
		"destinations": map[string]any{"logAnalytics": []map[string]string{{"name": "la", "workspaceResourceId": wsID}}},
		"dataFlows":    []map[string]any{{"streams": []string{"Microsoft-ContainerLogV2"}, "destinations": []string{"la"}}},
	}}
	ruleID := e.putRule("cluster-rule", rule).id

	// The token, as an administrator would put it in a Secret.
	out, err := exec.Command(e.bins.custos, "cluster", "enroll-token", "--expires", "10m", "--data-dir", e.srv.dataDir).Output()
	if err != nil {
		t.Fatalf("custos cluster enroll-token: %v", err)
	}
	secretDir := filepath.Join(root, "secret")
	os.MkdirAll(secretDir, 0o700)
	tokenFile := filepath.Join(secretDir, "token")
	os.WriteFile(tokenFile, out, 0o600)
	machineTok, err := exec.Command(e.bins.custos, "machine", "enroll-token", "--expires", "10m", "--data-dir", e.srv.dataDir).Output()
	if err != nil {
		t.Fatalf("custos machine enroll-token: %v", err)
	}

	identityDir := filepath.Join(root, "identity")
	enroll := func(tokenArgs ...string) ([]byte, error) {
		args := append([]string{"enroll", "--cluster", "e2e-k8s", "--endpoint", adm.Endpoint, "--ca-file", adm.CAFile, "--dir", identityDir,
			"--distribution", "kubeadm", "--kubernetes-version", "1.33.1"}, tokenArgs...)
		return exec.Command(e.bins.agent, args...).CombinedOutput()
	}
	if out, err := enroll("--token", strings.TrimSpace(string(machineTok))); err == nil || !strings.Contains(string(out), "InvalidEnrollmentToken") {
		t.Fatalf("a machine token enrolled a cluster: %v %s", err, out)
	}
	if out, err := enroll("--token-file", tokenFile, "--force"); err != nil {
		t.Fatalf("cluster enroll: %v %s", err, out)
	}
	if out, err := enroll("--token-file", tokenFile, "--force"); err == nil || !strings.Contains(string(out), "InvalidEnrollmentToken") {
		t.Fatalf("the cluster token was accepted twice: %v %s", err, out)
	}
	var ident struct{ ID, PrincipalID string }
	ib, err := os.ReadFile(filepath.Join(identityDir, "identity.json"))
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(ib, &ident)
	clusterID := fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Kubernetes/connectedClusters/e2e-k8s", adm.SubscriptionID, adm.ResourceGroup)
	if !strings.EqualFold(ident.ID, clusterID) || ident.PrincipalID == "" {
		t.Fatalf("identity = %s", ib)
	}
	status, body := e.do("GET", adm.Endpoint+clusterID+"?api-version=2024-01-01", "https://management.azure.com/.default", nil, nil)
	var cl struct {
		Type       string
		Identity   struct{ Type, PrincipalID string }
		Properties struct {
			Distribution, KubernetesVersion, ConnectivityStatus string
		}
	}
	json.Unmarshal(body, &cl)
	if status != 200 || cl.Type != "Microsoft.Kubernetes/connectedClusters" || cl.Identity.Type != "SystemAssigned" ||
		cl.Identity.PrincipalID != ident.PrincipalID || cl.Properties.Distribution != "kubeadm" || cl.Properties.ConnectivityStatus != "Connected" {
		t.Fatalf("GET connected cluster: %d %s", status, body)
	}
	e.grantPublisher(ruleID, ident.PrincipalID, "3c1d2e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f")
	e.cli("cluster", "associate", "e2e-k8s", "--dcr", "cluster-rule")
	// Another principal may not read the cluster's agent configuration.
	status, body = e.do("GET", adm.Endpoint+clusterID+"/agentConfiguration?api-version=2024-07-10", "https://monitor.azure.com//.default", nil, nil)
	if status != 403 {
		t.Errorf("admin reading the cluster's agent configuration: %d %s; want 403", status, body)
	}

	logRoot := filepath.Join(root, "node", "var", "log", "pods")
	podLog := filepath.Join(logRoot, "default_web-1_1a2b3c4d-0000-1111-2222-333344445555", "app", "0.log")
	os.MkdirAll(filepath.Dir(podLog), 0o755)
	var lines strings.Builder
	for i := range 20 {
		fmt.Fprintf(&lines, "%s stdout F cluster-identity-line-%02d\n", time.Now().UTC().Format(time.RFC3339Nano), i)
	}
	os.WriteFile(podLog, []byte(lines.String()), 0o644)

	agentDir := filepath.Join(root, "agent")
	os.MkdirAll(agentDir, 0o700)
	cfgPath := filepath.Join(agentDir, "config.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`endpoint: %s
caFile: %s
stateDir: %s
identityDir: %s
dcr:
  pollInterval: 300ms
syslog:
  udp: "off"
  tcp: "off"
files:
  pollInterval: 100ms
  readFromStart: true
delivery:
  minBackoff: 200ms
  maxBackoff: 1s
  flushInterval: 200ms
kubernetes:
  enabled: true
  logRoot: %s
  kubeletURL: https://127.0.0.1:1
  nodeName: node-e2e
  disablePodMetadata: true   # no API server here; TestKubernetesEndToEnd covers the pod watch
`, adm.Endpoint, adm.CAFile, filepath.Join(agentDir, "state"), identityDir, logRoot)), 0o600)
	ag := &agentProc{t: t, bin: e.bins.agent, config: cfgPath, log: logFile(t, root, "agent.log")}
	ag.start()
	t.Cleanup(func() { ag.signal(syscall.SIGTERM) })
	waitFor(t, "rows sent with the cluster identity", 60*time.Second, func() bool {
		return e.count(`ContainerLogV2 | where tostring(LogMessage) startswith "cluster-identity-line-"`) >= 20
	})
	if n := e.count(`ContainerLogV2 | where tostring(LogMessage) startswith "cluster-identity-line-" and _ResourceId =~ "` + clusterID + `" and Computer == "node-e2e"`); n != 20 {
		t.Errorf("%d rows with the cluster's _ResourceId; want 20", n)
	}
	st, _ := exec.Command(e.bins.agent, "status", "--config", cfgPath).CombinedOutput()
	if !strings.Contains(string(st), "cluster "+ident.ID) && !strings.Contains(strings.ToLower(string(st)), strings.ToLower("cluster "+clusterID)) {
		t.Errorf("status does not name the cluster identity:\n%s", st)
	}
}
