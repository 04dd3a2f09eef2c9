// Command kube benchmarks custos-agent's Kubernetes mode as a child process
// (issue 9): `go run ./bench/kube`.
//
// It builds ./cmd/custos-agent and points it at a counting HTTPS ingestion
// sink in this process (token endpoint + POST …/streams/… that decompresses
// each batch, counts its records and answers 204) and at the in-process API
// server substitute (internal/agent/kube/kubetest: real list/watch over
// HTTPS), so that the CPU measured is the agent's. Two scenarios:
//
//   - logs: a node agent (kubernetes.role: node, pod metadata from the API
//     server, as deployed) tails 100 containers' CRI log files under a
//     temporary /var/log/pods, written by this process at 10,000 lines/s in
//     total (mixed JSON and text lines, ~1 % split into partial P pieces,
//     files rotated by rename at -rotate-bytes as the kubelet does), for
//     -secs seconds; then waits until every line reached the sink.
//   - inventory: a cluster agent (kubernetes.role: cluster) against 5,000
//     pods on 50 nodes, 500 services and 5,000 events, with a full snapshot
//     every -snapshot, while 1 % of the pods change every second.
//
// Reported: the agent's CPU seconds (utime+stime from /proc/<pid>/stat) for
// the measured work (logs: until every line is delivered) over the window, the share of one core, peak RSS (VmHWM), rows
// delivered. Targets: logs ≤ 1 core and ≤ 100 MB RSS at 10,000 lines/s;
// inventory ≤ 200 MB RSS. -out appends a Markdown table to a results file,
// with the load average (the machine is shared).
package main

import (
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"custos/bench/internal/procstat"
	"custos/bench/internal/sink"
	"custos/internal/agent/kube/kubetest"
)

func main() {
	var (
		agentBin    = flag.String("agent", "", "custos-agent binary (default: go build ./cmd/custos-agent)")
		only        = flag.String("only", "", "run only this scenario: logs or inventory")
		rate        = flag.Int("rate", 10000, "log lines/s in total (logs)")
		containers  = flag.Int("containers", 100, "containers writing logs (logs)")
		secs        = flag.Int("secs", 60, "seconds of writing (logs) or of churn (inventory)")
		rotateBytes = flag.Int64("rotate-bytes", 512<<10, "rotate a log file by rename at this size (logs)")
		pods        = flag.Int("pods", 5000, "pods (inventory)")
		snapshot    = flag.Duration("snapshot", 15*time.Second, "inventory snapshot interval (the rule's interval; Azure's is 1m)")
		out         = flag.String("out", "", "append a Markdown results table to this file")
		keep        = flag.Bool("keep", false, "keep the temporary directory")
		profileDir  = flag.String("profile", "", "write the agent's CPU and heap profiles of each scenario to this directory (<scenario>.cpu.pprof, <scenario>.heap.pprof)")
	)
	flag.Parse()
	log.SetFlags(0)
	dir, err := os.MkdirTemp("", "bench-kube")
	if err != nil {
		log.Fatal(err)
	}
	if !*keep {
		defer os.RemoveAll(dir)
	}
	bin := *agentBin
	if bin == "" {
		bin = filepath.Join(dir, "custos-agent")
		if b, err := exec.Command("go", "build", "-o", bin, "./cmd/custos-agent").CombinedOutput(); err != nil {
			log.Fatalf("go build ./cmd/custos-agent: %v\n%s", err, b)
		}
	}
	if *profileDir != "" {
		if profileDir, err := filepath.Abs(*profileDir); err == nil {
			agentProfile = profileDir
		}
	}
	s, err := sink.Start(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	var results []result
	if *only == "" || *only == "logs" {
		log.Printf("logs: %d lines/s across %d containers for %d s …", *rate, *containers, *secs)
		r, err := runLogs(bin, filepath.Join(dir, "logs"), s, *rate, *containers, *secs, *rotateBytes)
		if err != nil {
			log.Fatalf("logs: %v", err)
		}
		log.Print(r.line())
		results = append(results, r)
	}
	if *only == "" || *only == "inventory" {
		log.Printf("inventory: %d pods, snapshot every %v, churn for %d s …", *pods, *snapshot, *secs)
		r, err := runInventory(bin, filepath.Join(dir, "inventory"), s, *pods, *snapshot, *secs)
		if err != nil {
			log.Fatalf("inventory: %v", err)
		}
		log.Print(r.line())
		results = append(results, r)
	}
	if *out != "" {
		var b strings.Builder
		fmt.Fprintf(&b, "\n### Run of %s (%s, %d CPUs, load average at the end: %s)\n\n", time.Now().UTC().Format(time.RFC3339),
			runtime.Version(), runtime.NumCPU(), procstat.LoadAvg())
		b.WriteString("| scenario | workload | rows delivered | window s | agent CPU s | % of one core | CPU µs/row | peak RSS MB | drain s |\n")
		b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
		for _, r := range results {
			fmt.Fprintf(&b, "| %s | %s | %d | %.1f | %.2f | %.1f | %.1f | %.1f | %.1f |\n", r.name, r.workload, r.delivered, r.wall, r.cpu,
				100*r.cpu/r.wall, 1e6*r.cpu/float64(max(r.delivered, 1)), r.rssMB, r.drain)
		}
		f, err := os.OpenFile(*out, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			log.Fatal(err)
		}
		f.WriteString(b.String())
		f.Close()
	}
}

type result struct {
	name, workload string
	delivered      int64
	wall, cpu      float64
	rssMB, drain   float64
}

func (r result) line() string {
	return fmt.Sprintf("%s (%s): %d rows delivered; agent CPU %.2f s over %.1f s = %.1f%% of one core (%.1f µs/row); peak RSS %.1f MB; drained in %.1f s",
		r.name, r.workload, r.delivered, r.cpu, r.wall, 100*r.cpu/r.wall, 1e6*r.cpu/float64(max(r.delivered, 1)), r.rssMB, r.drain)
}

const clusterID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Kubernetes/connectedClusters/bench"

func rule(interval string, streams ...string) string {
	b, _ := json.Marshal(streams)
	return fmt.Sprintf(`{"name":"bench","properties":{"immutableId":"dcr-0000000000000000000000000000kube",
 "dataSources":{"extensions":[{"name":"ci","extensionName":"ContainerInsights","streams":%s,
   "extensionSettings":{"dataCollectionSettings":{"interval":%q,"namespaceFilteringMode":"Exclude","namespaces":["kube-system"]}}}]},
 "destinations":{"logAnalytics":[{"name":"la","workspaceResourceId":"/subscriptions/s/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/w"}]},
 "dataFlows":[{"streams":%s,"destinations":["la"]}]}}`, b, interval, b)
}

// setup writes the agent's files (rule, credentials, ServiceAccount token
// and a CA bundle of the sink and the API server) and starts it.
func setup(bin, dir string, s *sink.Sink, api *kubetest.Server, ruleJSON, kubeYAML string) (*agent, error) {
	dcrDir := filepath.Join(dir, "dcr.d")
	if err := os.MkdirAll(dcrDir, 0o700); err != nil {
		return nil, err
	}
	os.WriteFile(filepath.Join(dcrDir, "bench.json"), []byte(ruleJSON), 0o600)
	creds := filepath.Join(dir, "credentials.json")
	os.WriteFile(creds, []byte(`{"tenantId":"bench","clientId":"bench","clientSecret":"bench"}`), 0o600)
	os.WriteFile(filepath.Join(dir, "token"), []byte("bench-sa-token\n"), 0o600)
	ca := append(s.CertificatePEM(), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: api.Certificate()})...)
	os.WriteFile(filepath.Join(dir, "ca.pem"), ca, 0o600)
	cfg := fmt.Sprintf(`endpoint: %s
caFile: %[2]s
credentialsFile: %[3]s
stateDir: %[4]s
dcr:
  dir: %[5]s
syslog:
  udp: "off"
  tcp: "off"
heartbeatInterval: 60s
kubernetes:
  enabled: true
  apiServerURL: %[6]s
  tokenFile: %[7]s
  caFile: %[2]s
  clusterResourceId: %[8]s
  nodeName: node-0
%[9]s`, s.URL, filepath.Join(dir, "ca.pem"), creds, filepath.Join(dir, "state"), dcrDir, api.URL, filepath.Join(dir, "token"), clusterID, kubeYAML)
	cfgPath := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfgPath, []byte(cfg), 0o600)
	logf, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		return nil, err
	}
	args := []string{"run", "--config", cfgPath}
	if agentProfile != "" {
		name := filepath.Base(dir)
		args = append(args, "--cpuprofile", filepath.Join(agentProfile, name+".cpu.pprof"), "--memprofile", filepath.Join(agentProfile, name+".heap.pprof"))
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	a := &agent{cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{}), log: logf.Name()}
	go func() { cmd.Wait(); close(a.done) }()
	return a, nil
}

// agentProfile is the directory for the agent's profiles ("" → none).
var agentProfile string

// agent is a running custos-agent.
type agent struct {
	cmd  *exec.Cmd
	pid  int
	done chan struct{}
	log  string
}

// alive fails when the agent has exited.
func (a *agent) alive() error {
	select {
	case <-a.done:
		b, _ := os.ReadFile(a.log)
		return fmt.Errorf("the agent exited: %s", b[max(0, len(b)-2000):])
	default:
		return nil
	}
}

func (a *agent) stop() {
	a.cmd.Process.Signal(syscall.SIGTERM)
	<-a.done
}

func newAPI() (*kubetest.Server, error) {
	return kubetest.New(kubetest.Options{Tokens: map[string]kubetest.Rules{"bench-sa-token": nil}})
}

func mkPod(ns, name, node string, i int, containers int) *corev1.Pod {
	ctrl := true
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)),
			Labels:          map[string]string{"app": "app-" + strconv.Itoa(i%50), "tier": "backend", "pod-template-hash": "7d9f8c6b5"},
			Annotations:     map[string]string{"prometheus.io/scrape": "false", "checksum/config": strings.Repeat("a", 64)},
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "app-" + strconv.Itoa(i%50) + "-7d9f8c6b5", Controller: &ctrl}}},
		Spec:   corev1.PodSpec{NodeName: node},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: fmt.Sprintf("10.244.%d.%d", i/250%256, i%250+1), StartTime: &metav1.Time{Time: time.Now()}},
	}
	for c := 0; c < containers; c++ {
		cn := "c" + strconv.Itoa(c)
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: cn, Image: "registry.example.io/team/app-" + strconv.Itoa(i%50) + ":1.2.3",
			Args: []string{"--port=8080", "--log-level=info"}, Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
			Env:       []corev1.EnvVar{{Name: "MODE", Value: "prod"}, {Name: "REGION", Value: "eu"}},
			Resources: corev1.ResourceRequirements{}})
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: cn, Ready: true, RestartCount: int32(i % 3),
			ContainerID: fmt.Sprintf("containerd://%064x", i*8+c), ImageID: "sha256:" + strings.Repeat("b", 64),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}})
	}
	return p
}

// runLogs is the log scenario.
func runLogs(bin, dir string, s *sink.Sink, rate, containers, secs int, rotateBytes int64) (result, error) {
	r := result{name: "logs", workload: fmt.Sprintf("%d lines/s across %d containers (CRI), metadata from the API server", rate, containers)}
	api, err := newAPI()
	if err != nil {
		return r, err
	}
	defer api.Close()
	logRoot := filepath.Join(dir, "var", "log", "pods")
	type file struct {
		path string
		f    *os.File
		size int64
		ns   string
	}
	files := make([]*file, containers)
	for i := range files {
		ns := "team-" + strconv.Itoa(i%10)
		p := mkPod(ns, "app-"+strconv.Itoa(i), "node-0", i, 1)
		if err := api.Apply(p); err != nil {
			return r, err
		}
		d := filepath.Join(logRoot, ns+"_"+p.Name+"_"+string(p.UID), "c0")
		if err := os.MkdirAll(d, 0o755); err != nil {
			return r, err
		}
		files[i] = &file{path: filepath.Join(d, "0.log"), ns: ns}
	}
	ag, err := setup(bin, dir, s, api, rule("1m", "Microsoft-ContainerLogV2"), fmt.Sprintf("  logRoot: %s\n", logRoot))
	if err != nil {
		return r, err
	}
	defer ag.stop()
	pid := ag.pid
	time.Sleep(3 * time.Second) // start, token, pod list; not measured
	if err := ag.alive(); err != nil {
		return r, err
	}
	open := func(fl *file) error {
		f, err := os.OpenFile(fl.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		fl.f, fl.size = f, 0
		return err
	}
	for _, fl := range files {
		if err := open(fl); err != nil {
			return r, err
		}
	}
	base := s.Count("Microsoft-ContainerLogV2")
	cpu0, err := procstat.CPUSeconds(pid)
	if err != nil {
		return r, err
	}
	start := time.Now()
	var lines, rotations int64
	var buf []byte
	for tick := 1; ; tick++ {
		due := time.Duration(tick) * 10 * time.Millisecond
		if due > time.Duration(secs)*time.Second {
			break
		}
		want := int64(rate) * int64(due) / int64(time.Second)
		for ; lines < want; lines++ {
			fl := files[lines%int64(containers)]
			buf = buf[:0]
			ts := time.Now().UTC().AppendFormat(nil, time.RFC3339Nano)
			switch lines % 3 {
			case 0:
				buf = fmt.Appendf(buf, "%s stdout F {\"level\":\"info\",\"msg\":\"request served\",\"path\":\"/api/v1/items/%d\",\"status\":200,\"latency_ms\":12.5,\"user\":\"alice\"}\n", ts, lines)
			case 1:
				buf = fmt.Appendf(buf, "%s stderr F 2026-11-27T03:00:00Z WARN cache miss for key item-%d, falling back to the database (attempt 1 of 3)\n", ts, lines)
			default:
				if lines%100 == 2 { // a long line the runtime split into pieces
					buf = fmt.Appendf(buf, "%s stdout P first piece of a long line %d \n%s stdout F and its last piece\n", ts, lines, ts)
				} else {
					buf = fmt.Appendf(buf, "%s stdout F level=info msg=\"processed batch\" batch=%d items=42 duration=3.2ms\n", ts, lines)
				}
			}
			if _, err := fl.f.Write(buf); err != nil {
				return r, err
			}
			if fl.size += int64(len(buf)); fl.size >= rotateBytes {
				fl.f.Close()
				os.Rename(fl.path, fl.path+"."+time.Now().UTC().Format("20060102-150405.000000"))
				if err := open(fl); err != nil {
					return r, err
				}
				rotations++
			}
		}
		if d := time.Until(start.Add(due)); d > 0 {
			time.Sleep(d)
		}
	}
	r.wall = time.Since(start).Seconds()
	for _, fl := range files {
		fl.f.Close()
	}
	drain := time.Now()
	for time.Since(drain) < 180*time.Second && s.Count("Microsoft-ContainerLogV2")-base < lines && ag.alive() == nil {
		time.Sleep(100 * time.Millisecond)
	}
	r.drain = time.Since(drain).Seconds()
	// The CPU of the whole work, drain included (on a busy machine the
	// agent catches up after the writing stops), over the writing window:
	// the share of a core needed to keep up with the rate.
	cpu1, _ := procstat.CPUSeconds(pid)
	r.cpu = cpu1 - cpu0
	r.delivered = s.Count("Microsoft-ContainerLogV2") - base
	r.rssMB = procstat.PeakRSSMB(pid)
	r.workload += fmt.Sprintf(", %d lines written, %d rotations", lines, rotations)
	if r.delivered < lines {
		log.Printf("logs: only %d of %d lines delivered (see %s)", r.delivered, lines, filepath.Join(dir, "agent.log"))
	}
	return r, nil
}

// runInventory is the inventory scenario.
func runInventory(bin, dir string, s *sink.Sink, pods int, snapshot time.Duration, secs int) (result, error) {
	r := result{name: "inventory", workload: fmt.Sprintf("%d pods (2 containers each) on %d nodes, %d services, %d events; snapshot every %v; 1 %% of pods changed per second",
		pods, max(pods/100, 1), pods/10, pods, snapshot)}
	api, err := newAPI()
	if err != nil {
		return r, err
	}
	defer api.Close()
	nodes := max(pods/100, 1)
	for n := 0; n < nodes; n++ {
		api.Apply(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-" + strconv.Itoa(n), Labels: map[string]string{"kubernetes.io/os": "linux", "node.kubernetes.io/instance-type": "Standard_D4s_v5"}},
			Status: corev1.NodeStatus{NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v1.33.1", ContainerRuntimeVersion: "containerd://2.0.0", OSImage: "Ubuntu 24.04"},
				Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}})
	}
	all := make([]*corev1.Pod, pods)
	for i := range all {
		all[i] = mkPod("team-"+strconv.Itoa(i%40), "app-"+strconv.Itoa(i), "node-"+strconv.Itoa(i%nodes), i, 2)
		if err := api.Apply(all[i]); err != nil {
			return r, err
		}
	}
	for i := 0; i < pods/10; i++ {
		api.Apply(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "team-" + strconv.Itoa(i%40), Name: "svc-" + strconv.Itoa(i)},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: fmt.Sprintf("10.96.%d.%d", i/250, i%250+1),
				Selector: map[string]string{"app": "app-" + strconv.Itoa(i%50)}, Ports: []corev1.ServicePort{{Port: 80}}}})
	}
	for i := 0; i < pods; i++ {
		api.Apply(&corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: all[i].Namespace, Name: all[i].Name + ".started"}, Type: "Normal", Reason: "Started",
			Message: "Started container c0", InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: all[i].Namespace, Name: all[i].Name},
			Source: corev1.EventSource{Component: "kubelet", Host: all[i].Spec.NodeName}, Count: 1})
	}
	iv := fmt.Sprintf("%ds", int(snapshot.Seconds()))
	ag, err := setup(bin, dir, s, api, rule(iv, "Microsoft-KubePodInventory", "Microsoft-KubeNodeInventory", "Microsoft-KubeEvents",
		"Microsoft-KubeServices", "Microsoft-ContainerInventory"), "  role: cluster\n")
	if err != nil {
		return r, err
	}
	defer ag.stop()
	pid := ag.pid
	// Wait for the first snapshot (every pod's rows), then measure the churn window.
	deadline := time.Now().Add(120 * time.Second)
	for s.Count("Microsoft-KubePodInventory") < int64(2*pods) {
		if err := ag.alive(); err != nil {
			return r, err
		}
		if time.Now().After(deadline) {
			return r, fmt.Errorf("no first snapshot after 120 s (see %s)", filepath.Join(dir, "agent.log"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	log.Printf("inventory: first snapshot in; peak RSS so far %.1f MB", procstat.PeakRSSMB(pid))
	base := int64(0)
	for _, st := range []string{"Microsoft-KubePodInventory", "Microsoft-KubeNodeInventory", "Microsoft-KubeEvents", "Microsoft-KubeServices", "Microsoft-ContainerInventory"} {
		base += s.Count(st)
	}
	cpu0, err := procstat.CPUSeconds(pid)
	if err != nil {
		return r, err
	}
	start := time.Now()
	for sec := 0; sec < secs; sec++ {
		for j := 0; j < max(pods/100, 1); j++ {
			p := all[(sec*pods/100+j)%pods]
			p.Status.ContainerStatuses[0].RestartCount++
			api.Apply(p)
			api.Apply(&corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name + ".backoff"}, Type: "Warning", Reason: "BackOff",
				Message: "Back-off restarting failed container", InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: p.Namespace, Name: p.Name},
				Source: corev1.EventSource{Component: "kubelet", Host: p.Spec.NodeName}, Count: p.Status.ContainerStatuses[0].RestartCount})
		}
		time.Sleep(time.Until(start.Add(time.Duration(sec+1) * time.Second)))
	}
	r.wall = time.Since(start).Seconds()
	cpu1, _ := procstat.CPUSeconds(pid)
	r.cpu = cpu1 - cpu0
	time.Sleep(2 * time.Second)
	for _, st := range []string{"Microsoft-KubePodInventory", "Microsoft-KubeNodeInventory", "Microsoft-KubeEvents", "Microsoft-KubeServices", "Microsoft-ContainerInventory"} {
		r.delivered += s.Count(st)
	}
	r.delivered -= base
	r.rssMB = procstat.PeakRSSMB(pid)
	return r, nil
}
