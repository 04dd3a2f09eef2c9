package main

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"custos/internal/agent/kube/kubetest"
)

// TestKubeHeldLinesSurviveSIGKILL: a node agent reads the log lines of a
// pod the API server does not know yet and holds them (fail closed: the
// opt-out annotation cannot be checked), together with the first piece of
// a partial CRI message; it is killed with SIGKILL while they are held.
// The pod then appears, the agent starts again, and every held line
// arrives, exactly once, as does the message whose pieces straddle the
// restart. Before the hold, the tail checkpoint already covered such lines
// and they were lost.
func TestKubeHeldLinesSurviveSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server and the agent")
	}
	root := t.TempDir()
	e, adminJSON := startEnv(t, root)
	rule := e.createKubeRule("kube-held", []string{"Microsoft-ContainerLogV2"}, map[string]any{"interval": "1s"},
		"5d0e2b9a-3c1f-4e6a-9b7d-8a1c2e3f4b5c")

	const saToken = "held-e2e-serviceaccount-token"
	const node = "aks-node-held"
	nodeRules, err := kubetest.RulesFromManifest("../../deploy/kubernetes/rbac.yaml", "custos-agent")
	if err != nil {
		t.Fatal(err)
	}
	api, err := kubetest.New(kubetest.Options{Tokens: map[string]kubetest.Rules{saToken: nodeRules}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(api.Close)
	pod := func(name, uid string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, UID: types.UID(uid)},
			Spec:   corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "app", Image: "registry.example.io/app:1"}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	}
	if err := api.Apply(pod("web", "11111111-aaaa-bbbb-cccc-000000000001")); err != nil {
		t.Fatal(err)
	}

	agentDir := filepath.Join(root, "agent")
	saDir := filepath.Join(agentDir, "serviceaccount")
	os.MkdirAll(saDir, 0o700)
	os.WriteFile(filepath.Join(saDir, "token"), []byte(saToken+"\n"), 0o600)
	os.WriteFile(filepath.Join(saDir, "ca.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: api.Certificate()}), 0o600)
	logRoot := filepath.Join(root, "node", "var", "log", "pods")
	write := func(rel string, lines ...string) {
		p := filepath.Join(logRoot, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, l := range lines {
			f.WriteString(time.Now().UTC().Format(time.RFC3339Nano) + " " + l + "\n")
		}
	}
	webLog := "shop_web_11111111-aaaa-bbbb-cccc-000000000001/app/0.log"
	lateLog := "shop_late_22222222-aaaa-bbbb-cccc-000000000002/app/0.log"
	write(webLog, "stdout F held-e2e-web-1", "stdout P held-e2e-split-a ")
	var late []string
	for i := range 5 {
		late = append(late, fmt.Sprintf("stdout F held-e2e-late-%d", i))
	}
	write(lateLog, late...)

	dcrDir := filepath.Join(agentDir, "dcr.d")
	os.MkdirAll(dcrDir, 0o700)
	os.WriteFile(filepath.Join(dcrDir, "kube-held.json"), rule.json, 0o600)
	credFile := filepath.Join(agentDir, "credentials.json")
	os.WriteFile(credFile, adminJSON, 0o600)
	stateDir := filepath.Join(agentDir, "state")
	cfgPath := filepath.Join(agentDir, "config.yaml")
	os.WriteFile(cfgPath, []byte(kubeAgentConfig(e, credFile, stateDir, dcrDir, fmt.Sprintf(`  logRoot: %s
  tokenFile: %s
  caFile: %s
  clusterResourceId: /subscriptions/%s/resourceGroups/%s/providers/Microsoft.Kubernetes/connectedClusters/held
  nodeName: %s
  apiServerURL: %s
`, logRoot, filepath.Join(saDir, "token"), filepath.Join(saDir, "ca.crt"), e.adm.SubscriptionID, e.adm.ResourceGroup, node, api.URL))), 0o600)
	ag := &agentProc{t: t, bin: e.bins.agent, config: cfgPath, log: logFile(t, root, "agent.log")}
	ag.start()
	t.Cleanup(func() { ag.signal(syscall.SIGTERM) })

	waitFor(t, "the known pod's line", 60*time.Second, func() bool {
		return e.count(`ContainerLogV2 | where tostring(LogMessage) == "held-e2e-web-1"`) == 1
	})
	// The agent has read the unknown pod's file (its checkpoint is written
	// after each poll) and holds its lines: the checkpoint stays at 0.
	var lateOffset int64 = -1
	waitFor(t, "a checkpoint of the unknown pod's file", 30*time.Second, func() bool {
		matches, _ := filepath.Glob(filepath.Join(stateDir, "files", "kube-*.json"))
		for _, m := range matches {
			b, _ := os.ReadFile(m)
			var st struct {
				Files []struct {
					Path   string `json:"path"`
					Offset int64  `json:"offset"`
				} `json:"files"`
			}
			json.Unmarshal(b, &st)
			for _, f := range st.Files {
				if strings.HasSuffix(f.Path, lateLog) {
					lateOffset = f.Offset
					return true
				}
			}
		}
		return false
	})
	if lateOffset != 0 {
		t.Fatalf("the held file's checkpoint is at %d; want 0 (its lines are held)", lateOffset)
	}
	ag.signal(syscall.SIGKILL)

	if err := api.Apply(pod("late", "22222222-aaaa-bbbb-cccc-000000000002")); err != nil {
		t.Fatal(err)
	}
	write(webLog, "stdout F held-e2e-split-b", "stdout F held-e2e-web-2")
	ag.start()
	waitFor(t, "the held lines after the restart", 60*time.Second, func() bool {
		return e.count(`ContainerLogV2 | where PodName == "late"`) >= 5 && e.count(`ContainerLogV2 | where tostring(LogMessage) == "held-e2e-web-2"`) > 0
	})
	time.Sleep(1500 * time.Millisecond) // anything sent twice arrives
	got := map[string]int{}
	for _, r := range e.query(`ContainerLogV2 | where tostring(LogMessage) startswith "held-e2e-" | project m = tostring(LogMessage), PodName, tostring(KubernetesMetadata.podUid)`) {
		got[r[0].(string)]++
		if strings.Contains(r[0].(string), "late") && (r[1] != "late" || r[2] != "22222222-aaaa-bbbb-cccc-000000000002") {
			t.Errorf("held line without its pod's metadata: %v", r)
		}
	}
	want := []string{"held-e2e-split-a held-e2e-split-b", "held-e2e-web-2"}
	for i := range 5 {
		want = append(want, fmt.Sprintf("held-e2e-late-%d", i))
	}
	for _, m := range want {
		if got[m] != 1 {
			t.Errorf("%q arrived %d times; want exactly once (all: %v)", m, got[m], got)
		}
	}
	// Sent before the kill; the disk queue delivers at least once.
	if n := got["held-e2e-web-1"]; n < 1 || n > 2 {
		t.Errorf("held-e2e-web-1 arrived %d times", n)
	}
}
