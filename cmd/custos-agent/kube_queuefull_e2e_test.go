package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKubeQueueFullSIGKILL: the node agent's disk queue is on a tmpfs that
// is full, so queueing container log rows fails (ENOSPC). The agent keeps
// the rows in memory and does not advance its checkpoint; it is killed
// with SIGKILL in that window, the space is freed, and after the restart
// every line written during the failure arrives. Before, the
// checkpoint moved past the refused rows and they were lost.
func TestKubeQueueFullSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server and the agent")
	}
	root := t.TempDir()
	e, adminJSON := startEnv(t, root)
	rule := e.createKubeRule("kube-qfull", []string{"Microsoft-ContainerLogV2"}, map[string]any{"interval": "1s"},
		"6e1f3c0b-4d2a-4f7b-8c8e-9b2d3f4a5c6d")

	qdir := filepath.Join(root, "queue")
	os.MkdirAll(qdir, 0o700)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", qdir).CombinedOutput(); err != nil {
		t.Fatalf("this test needs a small tmpfs for the agent's queue: mount -t tmpfs failed (run as root or with CAP_SYS_ADMIN): %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", qdir).Run() })
	filler := filepath.Join(qdir, "filler")
	fill := func() {
		f, err := os.OpenFile(filler, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		buf := make([]byte, 4096)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatal(err)
				}
				return
			}
		}
	}

	agentDir := filepath.Join(root, "agent")
	logRoot := filepath.Join(root, "node", "var", "log", "pods")
	logPath := filepath.Join(logRoot, "shop_web_33333333-aaaa-bbbb-cccc-000000000003", "app", "0.log")
	os.MkdirAll(filepath.Dir(logPath), 0o755)
	write := func(from, to int) {
		f, err := os.OpenFile(logPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var b strings.Builder
		for i := from; i < to; i++ {
			// 64 hex digits per line, so that the gzip batches take real space.
			h := sha256.Sum256([]byte(strconv.Itoa(i)))
			fmt.Fprintf(&b, "%s stdout F qfull-%04d %s\n", time.Now().UTC().Format(time.RFC3339Nano), i, hex.EncodeToString(h[:]))
		}
		f.WriteString(b.String())
	}
	dcrDir := filepath.Join(agentDir, "dcr.d")
	os.MkdirAll(dcrDir, 0o700)
	os.WriteFile(filepath.Join(dcrDir, "kube-qfull.json"), rule.json, 0o600)
	credFile := filepath.Join(agentDir, "credentials.json")
	os.WriteFile(credFile, adminJSON, 0o600)
	stateDir := filepath.Join(agentDir, "state")
	cfg := kubeAgentConfig(e, credFile, stateDir, dcrDir, fmt.Sprintf(`  logRoot: %s
  disablePodMetadata: true
  clusterResourceId: /subscriptions/%s/resourceGroups/%s/providers/Microsoft.Kubernetes/connectedClusters/qfull
  nodeName: aks-node-qfull
`, logRoot, e.adm.SubscriptionID, e.adm.ResourceGroup))
	cfg = strings.Replace(cfg, "\nkubernetes:\n", fmt.Sprintf("\nbuffer:\n  dir: %s\nkubernetes:\n", qdir), 1)
	cfgPath := filepath.Join(agentDir, "config.yaml")
	os.WriteFile(cfgPath, []byte(cfg), 0o600)
	agentLog := logFile(t, root, "agent.log")
	ag := &agentProc{t: t, bin: e.bins.agent, config: cfgPath, log: agentLog}
	ag.start()
	t.Cleanup(func() { ag.signal(syscall.SIGTERM) })

	const n1, n2 = 100, 400
	write(0, n1)
	waitFor(t, "the first lines", 60*time.Second, func() bool {
		return e.count(`ContainerLogV2 | where tostring(LogMessage) startswith "qfull-"`) >= n1
	})
	fill()
	write(n1, n2)
	waitFor(t, "the agent keeping rows the full queue refused", 30*time.Second, func() bool {
		b, _ := os.ReadFile(agentLog.Name())
		return strings.Contains(string(b), "kept in memory, checkpoint not advanced")
	})
	ag.signal(syscall.SIGKILL)
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	ag.start()
	waitFor(t, "every line after the restart", 60*time.Second, func() bool {
		return e.count(`ContainerLogV2 | where tostring(LogMessage) startswith "qfull-" | distinct tostring(LogMessage)`) >= n2
	})
	time.Sleep(1500 * time.Millisecond) // anything sent twice arrives
	got := map[string]int{}
	for _, r := range e.query(`ContainerLogV2 | where tostring(LogMessage) startswith "qfull-" | project m = tostring(LogMessage)`) {
		got[strings.Fields(r[0].(string))[0]]++
	}
	for i := range n2 {
		k := fmt.Sprintf("qfull-%04d", i)
		// At least once; a batch queued and sent whose acknowledgement
		// could not be saved on the full disk is sent again after the kill.
		if n := got[k]; n < 1 || n > 2 {
			t.Errorf("%s arrived %d times; want once (twice at most after the kill)", k, n)
		}
	}
}
