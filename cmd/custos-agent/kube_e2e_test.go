package main

import (
	"crypto/subtle"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"custos/internal/agent/kube/kubetest"
)

// TestKubernetesEndToEnd runs `custos-agent run` in Kubernetes mode against
// a real `custos serve`, twice, as deploy/kubernetes does: a node agent
// (the DaemonSet) and a cluster agent (the Deployment, kubernetes.role:
// cluster), each with its own ServiceAccount token. A data collection rule
// with a ContainerInsights extension (Exclude kube-system, 1s interval);
// generated CRI and Docker json-file logs under a temporary /var/log/pods
// with partial lines and a rotation; a kubelet stand-in (httptest TLS
// server requiring the ServiceAccount token) serving the /stats/summary
// fixture of internal/agent/kube; an API server substitute
// (internal/agent/kube/kubetest: real list/watch over HTTPS) that enforces
// deploy/kubernetes' ClusterRoles per token; and a Prometheus endpoint
// served by client_golang's promhttp, behind an annotated pod and service.
// Rows must arrive in ContainerLogV2, Perf, InsightsMetrics, KubeAudit,
// KubePodInventory, KubeNodeInventory, KubeEvents, KubeServices and
// ContainerInventory with the cluster's _ResourceId; logs are enriched from
// the API server; the opted-out pod, the excluded namespace and environment
// variables are absent.
func TestKubernetesEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server and the agent")
	}
	root := t.TempDir()
	e, b := startEnv(t, root)
	adm := e.adm
	clusterID := "/subscriptions/" + adm.SubscriptionID + "/resourceGroups/" + adm.ResourceGroup + "/providers/Microsoft.Kubernetes/connectedClusters/e2e-cluster"

	// The rule: a ContainerInsights extension whose settings override the agent's (Off).
	streams := []string{"Microsoft-ContainerLogV2", "Microsoft-Perf", "Microsoft-InsightsMetrics", "Microsoft-KubeAudit",
		"Microsoft-KubePodInventory", "Microsoft-KubeNodeInventory", "Microsoft-KubeEvents", "Microsoft-KubeServices", "Microsoft-ContainerInventory"}
	dcrJSON := e.createKubeRule("kube-rule", streams, map[string]any{
		"interval": "1s", "namespaceFilteringMode": "Exclude", "namespaces": []string{"kube-system"}, "enableContainerLogV2": true},
		"0c6c1f54-5a0b-4f8e-8f0e-2b7f4c9a1d22").json

	// The kubelet stand-in: the fixture with its timestamps moved to now.
	fixture, err := os.ReadFile("../../internal/agent/kube/testdata/stats_summary.json")
	if err != nil {
		t.Fatal(err)
	}
	base, _ := time.Parse(time.RFC3339, "2024-05-01T10:00:02Z")
	shift := time.Since(base)
	fixture = regexp.MustCompile(`"20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ"`).ReplaceAllFunc(fixture, func(m []byte) []byte {
		tm, _ := time.Parse(time.RFC3339, strings.Trim(string(m), `"`))
		return []byte(`"` + tm.Add(shift).UTC().Format(time.RFC3339) + `"`)
	})
	const saToken = "kubelet-e2e-serviceaccount-token"
	var scrapes, denied atomic.Int64
	kubelet := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte("Bearer "+saToken)) != 1 {
			denied.Add(1)
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		if r.URL.Path != "/stats/summary" || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		scrapes.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write(fixture)
	}))
	t.Cleanup(kubelet.Close)

	// The Prometheus endpoint of an annotated pod and service.
	reg := prometheus.NewRegistry()
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "e2e_http_requests_total", Help: "Requests."}, []string{"code"})
	reqs.WithLabelValues("200").Add(5)
	reg.MustRegister(reqs)
	promSrv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(promSrv.Close)
	promPort, _ := strconv.Atoi(promSrv.URL[strings.LastIndexByte(promSrv.URL, ':')+1:])
	// An https endpoint whose certificate is signed by the cluster CA (the
	// ServiceAccount ca.crt below), not by a system CA.
	promTLS := httptest.NewTLSServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(promTLS.Close)
	promTLSPort := promTLS.URL[strings.LastIndexByte(promTLS.URL, ':')+1:]

	// The API server substitute: the DaemonSet's and the Deployment's
	// tokens, each limited to its ClusterRole in deploy/kubernetes.
	const clusterToken = "cluster-agent-serviceaccount-token"
	nodeRules, err := kubetest.RulesFromManifest("../../deploy/kubernetes/rbac.yaml", "custos-agent")
	if err != nil {
		t.Fatal(err)
	}
	clusterRules, err := kubetest.RulesFromManifest("../../deploy/kubernetes/rbac.yaml", "custos-agent-cluster")
	if err != nil {
		t.Fatal(err)
	}
	leaseRules, err := kubetest.RoleRulesFromManifest("../../deploy/kubernetes/rbac.yaml", "custos-agent-cluster-leader")
	if err != nil {
		t.Fatal(err)
	}
	api, err := kubetest.New(kubetest.Options{Tokens: map[string]kubetest.Rules{saToken: nodeRules, clusterToken: clusterRules},
		Roles: map[string]kubetest.RoleRules{clusterToken: leaseRules}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(api.Close)
	const node = "aks-node-e2e"
	const envSecretValue = "literal-env-secret-4d1f"
	ctrl := true
	mkPod := func(ns, name, uid, container string, labels, annotations map[string]string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid), Labels: labels, Annotations: annotations,
				OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: name + "-rs", Controller: &ctrl}}},
			Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: container, Image: "registry.example.io/" + container + ":1.0",
				Env:   []corev1.EnvVar{{Name: "DB_PASSWORD", Value: envSecretValue}},
				Ports: []corev1.ContainerPort{{ContainerPort: int32(promPort)}}}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "127.0.0.1", ContainerStatuses: []corev1.ContainerStatus{{Name: container,
				ContainerID: "containerd://" + uid[:8], State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}}}},
		}
	}
	for _, o := range []any{
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node, Labels: map[string]string{"kubernetes.io/os": "linux"}},
			Status: corev1.NodeStatus{NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v1.33.1"},
				Capacity:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("16Gi")},
				Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("3800m"), corev1.ResourceMemory: resource.MustParse("15Gi")},
				Conditions:  []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}},
		mkPod("default", "web-1", "1a2b3c4d-0000-1111-2222-333344445555", "app", map[string]string{"app": "web"},
			map[string]string{"prometheus.io/scrape": "true", "prometheus.io/path": "/metrics"}),
		mkPod("default", "tls-1", "3d3d3d3d-0000-1111-2222-333344445555", "tls", nil,
			map[string]string{"prometheus.io/scrape": "true", "prometheus.io/scheme": "https", "prometheus.io/port": promTLSPort}),
		mkPod("kube-system", "coredns-1", "9a9a9a9a-0000-1111-2222-333344445555", "coredns", nil, map[string]string{"prometheus.io/scrape": "true"}),
		mkPod("shop", "api-7", "5e5e5e5e-0000-1111-2222-333344445555", "api", map[string]string{"app": "api"}, nil),
		mkPod("batch", "report-1", "6f6f6f6f-0000-1111-2222-333344445555", "report", nil, nil),
		mkPod("default", "secret-job-1", "7c7c7c7c-0000-1111-2222-333344445555", "job", nil,
			map[string]string{"fluentbit.io/exclude": "true", "prometheus.io/scrape": "true"}),
		// The pods of the kubelet fixture: coredns is opted out, so its
		// kubelet Perf counters must not be sent either.
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-6d4cf56db6-x7k2p", UID: "7f1b8c1e-0a3c-4b5d-9e6f-112233445566"},
			Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "web", Image: "registry.example.io/web:2",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
					Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")}}}}}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "coredns-5d78c9869d-abcde", UID: "0f3e1b2a-1111-2222-3333-444455556666",
			Annotations: map[string]string{"fluentbit.io/exclude": "true"}},
			Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "coredns", Image: "registry.example.io/coredns:1"}}}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "api-svc", Annotations: map[string]string{"prometheus.io/scrape": "true"}},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "127.0.0.1", Selector: map[string]string{"app": "api"},
				Ports: []corev1.ServicePort{{Port: int32(promPort)}}}},
		&corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-1.e1"}, Type: "Warning", Reason: "BackOff",
			Message: "Back-off restarting failed container", InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web-1"},
			Source: corev1.EventSource{Component: "kubelet", Host: node}, Count: 2},
		&corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "coredns-1.e1"}, Type: "Normal", Reason: "Pulled",
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "kube-system", Name: "coredns-1"}},
	} {
		if err := api.Apply(o); err != nil {
			t.Fatal(err)
		}
	}

	// A pod's view: ServiceAccount token and CA, container logs under var/log/pods.
	agentDir := filepath.Join(root, "agent")
	saDir := filepath.Join(agentDir, "serviceaccount")
	os.MkdirAll(saDir, 0o700)
	os.WriteFile(filepath.Join(saDir, "token"), []byte(saToken+"\n"), 0o600)
	// One CA bundle verifies the kubelet and the API server.
	os.WriteFile(filepath.Join(saDir, "ca.crt"), append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: kubelet.Certificate().Raw}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: api.Certificate()})...), 0o600)
	os.WriteFile(filepath.Join(saDir, "cluster-token"), []byte(clusterToken+"\n"), 0o600)
	os.WriteFile(filepath.Join(saDir, "namespace"), []byte("custos-system"), 0o600) // the leases' namespace
	logRoot := filepath.Join(root, "node", "var", "log", "pods")
	write := func(rel, content string, flag int) {
		p := filepath.Join(logRoot, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		f, err := os.OpenFile(p, flag|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(content); err != nil {
			t.Fatal(err)
		}
	}
	now := func() string { return time.Now().UTC().Format(time.RFC3339Nano) }
	webLog := "default_web-1_1a2b3c4d-0000-1111-2222-333344445555/app/0.log"
	write(webLog, fmt.Sprintf("%[1]s stdout F {\"level\":\"error\",\"msg\":\"boom\",\"code\":42}\n"+
		"%[1]s stdout P cri-part-one \n"+
		"%[1]s stderr F WARN disk almost full\n"+
		"%[1]s stdout F cri-part-two\n", now()), os.O_APPEND)
	write("default_secret-job-1_7c7c7c7c-0000-1111-2222-333344445555/job/0.log",
		now()+" stdout F opted-out-pod-line\n", os.O_APPEND)
	write("kube-system_coredns-1_9a9a9a9a-0000-1111-2222-333344445555/coredns/0.log",
		now()+" stdout F excluded-namespace-line\n", os.O_APPEND)
	dockerTime := time.Now().UTC().Format(time.RFC3339Nano)
	write("shop_api-7_5e5e5e5e-0000-1111-2222-333344445555/api/0.log",
		`{"log":"docker-hello INFO ready\n","stream":"stdout","time":"`+dockerTime+`"}`+"\n"+
			`{"log":"docker-split-first ","stream":"stderr","time":"`+dockerTime+`"}`+"\n"+
			`{"log":"docker-split-second\n","stream":"stderr","time":"`+dockerTime+`"}`+"\n", os.O_APPEND)
	// kubernetes.logCollection.stderr.excludeNamespaces: [batch] (per-stream exclusion).
	write("batch_report-1_6f6f6f6f-0000-1111-2222-333344445555/report/0.log",
		now()+" stderr F per-stream-dropped\n"+now()+" stdout F per-stream-kept\n", os.O_APPEND)

	// The API server's audit log (JSON lines), rotated by rename below.
	auditDir := filepath.Join(root, "apiserver")
	os.MkdirAll(auditDir, 0o755)
	auditLine := func(id, verb, user, resource string, code int) string {
		return fmt.Sprintf(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"%s","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/shop/%s","verb":"%s","user":{"username":"%s","groups":["system:authenticated"]},"sourceIPs":["10.0.0.5"],"userAgent":"kubectl/v1.33.1","objectRef":{"resource":"%s","namespace":"shop","name":"db","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":%d},"requestReceivedTimestamp":"%s","stageTimestamp":"%s"}`+"\n",
			id, resource, verb, user, resource, code, now(), now())
	}
	os.WriteFile(filepath.Join(auditDir, "audit.log"), []byte(auditLine("a-1", "create", "alice@example.com", "secrets", 201)+
		auditLine("a-2", "get", "system:serviceaccount:shop:api", "configmaps", 200)+"not an audit event\n"), 0o644)

	dcrDir := filepath.Join(agentDir, "dcr.d")
	os.MkdirAll(dcrDir, 0o700)
	os.WriteFile(filepath.Join(dcrDir, "kube-rule.json"), dcrJSON, 0o600)
	credFile := filepath.Join(agentDir, "credentials.json")
	os.WriteFile(credFile, b, 0o600)
	cfg := kubeAgentConfig(e, credFile, filepath.Join(agentDir, "state"), dcrDir, fmt.Sprintf(`  logRoot: %s
  kubeletURL: %s
  tokenFile: %s
  caFile: %s
  clusterResourceId: %s
  nodeName: aks-node-e2e
  namespaceFilteringMode: "Off"
  collectEnvVars: false
  auditLogPaths: [%s]
  auditPodName: kube-apiserver-cp1
  apiServerURL: %s
  logCollection:
    stderr:
      excludeNamespaces: [batch]
`, logRoot, kubelet.URL, filepath.Join(saDir, "token"), filepath.Join(saDir, "ca.crt"), clusterID, filepath.Join(auditDir, "audit*.log"), api.URL))
	cfgPath := filepath.Join(agentDir, "config.yaml")
	os.WriteFile(cfgPath, []byte(cfg), 0o600)
	ag := &agentProc{t: t, bin: e.bins.agent, config: cfgPath, log: logFile(t, root, "agent.log")}
	// The cluster agent: same rule, its own state, token and role.
	clusterCfg := strings.NewReplacer("stateDir: "+filepath.Join(agentDir, "state"), "stateDir: "+filepath.Join(agentDir, "cluster-state"),
		"tokenFile: "+filepath.Join(saDir, "token"), "tokenFile: "+filepath.Join(saDir, "cluster-token"),
		"  apiServerURL:", "  role: cluster\n  apiServerURL:").Replace(cfg)
	clusterCfgPath := filepath.Join(agentDir, "cluster.yaml")
	os.WriteFile(clusterCfgPath, []byte(clusterCfg), 0o600)
	cag := &agentProc{t: t, bin: e.bins.agent, config: clusterCfgPath, log: logFile(t, root, "cluster-agent.log")}
	// A secret in the agent's own environment (as a container's env would
	// be): nothing may carry it into a table.
	const envSecret = "envsecret-7f3a9c2e51"
	os.Setenv("CUSTOS_E2E_DB_PASSWORD", envSecret)
	defer os.Unsetenv("CUSTOS_E2E_DB_PASSWORD")
	ag.start()
	t.Cleanup(func() { ag.signal(syscall.SIGTERM) })
	cag.start()
	t.Cleanup(func() { cag.signal(syscall.SIGTERM) })

	waitFor(t, "first container log rows", 60*time.Second, func() bool {
		return e.count(`ContainerLogV2 | where PodName == "web-1"`) >= 3
	})

	// Rotation: the runtime renames 0.log away, writes a last line to the
	// old file, and continues in a new 0.log; a partial line spans the poll.
	old := filepath.Join(logRoot, webLog)
	if err := os.Rename(old, old+".20240501-100000"); err != nil {
		t.Fatal(err)
	}
	write(webLog+".20240501-100000", now()+" stdout F after-rename-old-file\n", os.O_APPEND)
	write(webLog, now()+" stdout F rotated-new-file level=info\n"+now()+" stdout P new-part-a \n"+now()+" stdout F new-", os.O_APPEND)
	time.Sleep(300 * time.Millisecond) // the agent polls a half-written line in between
	write(webLog, "part-b\n", os.O_APPEND)

	waitFor(t, "rows after the rotation", 60*time.Second, func() bool {
		return e.count(`ContainerLogV2 | where PodName == "web-1"`) >= 6
	})
	// Audit: the API server rotates audit.log by rename and writes on.
	waitFor(t, "first audit rows", 60*time.Second, func() bool { return e.count(`KubeAudit`) >= 2 })
	os.Rename(filepath.Join(auditDir, "audit.log"), filepath.Join(auditDir, "audit-2026-11-27T01-00-00.000.log"))
	os.WriteFile(filepath.Join(auditDir, "audit.log"), []byte(auditLine("a-3", "delete", "mallory@example.com", "pods", 403)), 0o644)
	waitFor(t, "audit rows after the rotation", 60*time.Second, func() bool { return e.count(`KubeAudit`) >= 3 })
	waitFor(t, "Docker rows", 30*time.Second, func() bool { return e.count(`ContainerLogV2 | where PodNamespace == "shop"`) >= 2 })
	waitFor(t, "Perf rows", 30*time.Second, func() bool { return e.count(`Perf | where ObjectName == "K8SContainer"`) > 0 })
	waitFor(t, "InsightsMetrics rows", 30*time.Second, func() bool { return e.count(`InsightsMetrics | where Namespace == "container.azm.ms/pv"`) > 0 })
	time.Sleep(1500 * time.Millisecond) // let anything late (duplicates, excluded rows) arrive

	msgs := map[string]int{}
	for _, r := range e.query(`ContainerLogV2 | project m = tostring(LogMessage)`) {
		msgs[r[0].(string)]++
	}
	for _, want := range []string{"cri-part-one cri-part-two", "WARN disk almost full", "after-rename-old-file", "rotated-new-file level=info",
		"new-part-a new-part-b", "docker-hello INFO ready", "docker-split-first docker-split-second"} {
		if msgs[want] != 1 {
			t.Errorf("LogMessage %q arrived %d times, want once; all: %v", want, msgs[want], msgs)
		}
	}
	for m := range msgs {
		if strings.Contains(m, "excluded-namespace-line") {
			t.Errorf("a line of the excluded namespace kube-system arrived: %q", m)
		}
	}
	if n := e.count(`ContainerLogV2 | where PodNamespace == "kube-system"`); n != 0 {
		t.Errorf("%d ContainerLogV2 rows of the excluded namespace", n)
	}
	// Per-stream exclusion: batch's stdout arrives, its stderr does not.
	waitFor(t, "the batch namespace's stdout line", 30*time.Second, func() bool {
		return e.count(`ContainerLogV2 | where PodNamespace == "batch" and tostring(LogMessage) == "per-stream-kept" and LogSource == "stdout"`) == 1
	})
	if n := e.count(`ContainerLogV2 | where tostring(LogMessage) has "per-stream-dropped" or (PodNamespace == "batch" and LogSource == "stderr")`); n != 0 {
		t.Errorf("%d stderr rows of namespace batch, excluded by kubernetes.logCollection.stderr.excludeNamespaces", n)
	}

	// The JSON line: LogMessage is an object, LogLevel from its level field.
	rows := e.query(`ContainerLogV2 | where tostring(LogMessage.msg) == "boom" | project LogLevel, toint(LogMessage.code), PodNamespace, ContainerName, LogSource, Computer, _ResourceId, SourceSystem`)
	if len(rows) != 1 {
		t.Fatalf("JSON line rows: %v", rows)
	}
	r := rows[0]
	if r[0] != "ERROR" || r[1] != float64(42) || r[2] != "default" || r[3] != "app" || r[4] != "stdout" || r[5] != "aks-node-e2e" ||
		!strings.EqualFold(r[6].(string), clusterID) || r[7] != "Containers" {
		t.Errorf("JSON line row = %v", r)
	}
	levels := map[string]string{}
	for _, r := range e.query(`ContainerLogV2 | project m = tostring(LogMessage), LogLevel, LogSource`) {
		levels[r[0].(string)] = r[1].(string) + "/" + r[2].(string)
	}
	for m, want := range map[string]string{"WARN disk almost full": "WARNING/stderr", "rotated-new-file level=info": "INFO/stdout",
		"docker-hello INFO ready": "INFO/stdout", "docker-split-first docker-split-second": "UNKNOWN/stderr"} {
		if levels[m] != want {
			t.Errorf("%q: level/source %q, want %q", m, levels[m], want)
		}
	}

	// Kubelet metrics.
	for _, q := range []string{
		`Perf | where ObjectName == "K8SNode" and CounterName == "cpuUsageNanoCores" and CounterValue == 250000000`,
		`Perf | where ObjectName == "K8SNode" and CounterName == "memoryWorkingSetBytes"`,
		`Perf | where ObjectName == "K8SContainer" and CounterName == "memoryWorkingSetBytes" and InstanceName startswith "` + clusterID + `/7f1b8c1e-0a3c-4b5d-9e6f-112233445566/"`,
		`InsightsMetrics | where Namespace == "container.azm.ms/pv" and Name == "pvUsedBytes" and Tags has "web-data"`,
		`InsightsMetrics | where Namespace == "container.azm.ms/disk" and Name == "used_percent"`,
	} {
		if n := e.count(q); n == 0 {
			t.Errorf("no rows: %s", q)
		}
	}
	// Who did what: audit records are queryable by user, verb and object.
	if rows := e.query(`KubeAudit | where Verb == "delete" and tostring(User.username) == "mallory@example.com" and toint(ResponseStatus.code) == 403 | project tostring(ObjectRef.resource), PodName, AuditId`); len(rows) != 1 ||
		rows[0][0] != "pods" || rows[0][1] != "kube-apiserver-cp1" || rows[0][2] != "a-3" {
		t.Errorf("KubeAudit delete by mallory: %v", rows)
	}
	if n := e.count(`KubeAudit`); n != 3 {
		t.Errorf("%d KubeAudit rows; want 3 (the non-event line skipped, nothing twice)", n)
	}
	// Every row carries the cluster's resource ID.
	for _, tbl := range []string{"ContainerLogV2", "Perf", "InsightsMetrics", "KubeAudit"} {
		if n := e.count(tbl + ` | where _ResourceId !~ "` + clusterID + `"`); n != 0 {
			t.Errorf("%s: %d rows without the cluster's _ResourceId", tbl, n)
		}
	}
	// Nothing collects environment variables.
	for tbl, cols := range map[string]string{
		"ContainerLogV2":  "tostring(LogMessage), tostring(KubernetesMetadata), PodName, ContainerName, ContainerId",
		"Perf":            "ObjectName, CounterName, InstanceName, CounterPath",
		"InsightsMetrics": "Namespace, Name, Tags, Origin",
	} {
		rows := e.query(tbl + ` | extend s = strcat(` + cols + `) | where s contains "` + envSecret + `" or s contains "CUSTOS_E2E_DB_PASSWORD" | count`)
		if len(rows) != 1 || rows[0][0] != float64(0) {
			t.Errorf("%s: rows carrying the environment: %v", tbl, rows)
		}
	}
	// Enrichment from the API server.
	if rows := e.query(`ContainerLogV2 | where PodName == "web-1" | summarize count() by k = tostring(KubernetesMetadata.controllerKind), c = tostring(KubernetesMetadata.controllerName), l = tostring(KubernetesMetadata.podLabels.app), i = tostring(KubernetesMetadata.image), id = ContainerId`); len(rows) != 1 ||
		rows[0][0] != "ReplicaSet" || rows[0][1] != "web-1-rs" || rows[0][2] != "web" || rows[0][3] != "registry.example.io/app:1.0" || rows[0][4] != "1a2b3c4d" {
		t.Errorf("KubernetesMetadata of web-1: %v", rows)
	}
	if n := e.count(`Perf | where InstanceName has "0f3e1b2a-1111-2222-3333-444455556666"`); n != 0 {
		t.Errorf("%d kubelet Perf rows of the opted-out pod coredns-5d78c9869d-abcde", n)
	}
	// The opted-out pod: nothing of its logs, its metrics or its environment.
	if n := e.count(`ContainerLogV2 | where PodName == "secret-job-1" or tostring(LogMessage) has "opted-out-pod-line"`); n != 0 {
		t.Errorf("%d ContainerLogV2 rows of the opted-out pod", n)
	}

	// The cluster agent: inventory and events, once, with the rule's namespace filter.
	waitFor(t, "inventory rows", 60*time.Second, func() bool {
		return e.count(`KubePodInventory | where Name == "web-1"`) > 0 && e.count(`KubeNodeInventory`) > 0 && e.count(`KubeServices`) > 0 &&
			e.count(`ContainerInventory`) > 0 && e.count(`KubeEvents | where Reason == "BackOff"`) > 0
	})
	waitFor(t, "Prometheus rows", 60*time.Second, func() bool {
		return e.count(`InsightsMetrics | where Namespace == "prometheus" and Name == "e2e_http_requests_total"`) >= 2
	})
	if rows := e.query(`KubePodInventory | where Name == "web-1" | take 1 | project Namespace, ControllerKind, ControllerName, Computer, PodStatus, ClusterName, PodUid`); len(rows) != 1 ||
		rows[0][0] != "default" || rows[0][1] != "ReplicaSet" || rows[0][2] != "web-1-rs" || rows[0][3] != node || rows[0][4] != "Running" || rows[0][5] != "e2e-cluster" {
		t.Errorf("KubePodInventory web-1: %v", rows)
	}
	if rows := e.query(`KubeServices | where ServiceName == "api-svc" | take 1 | project Namespace, ClusterIp, SelectorLabels`); len(rows) != 1 || rows[0][0] != "shop" {
		t.Errorf("KubeServices: %v", rows)
	}
	if rows := e.query(`KubeEvents | where Reason == "BackOff" | take 1 | project KubeEventType, Name, Namespace, ObjectKind, Count, Computer`); len(rows) != 1 ||
		rows[0][0] != "Warning" || rows[0][1] != "web-1" || rows[0][3] != "Pod" || rows[0][4] != float64(2) || rows[0][5] != node {
		t.Errorf("KubeEvents: %v", rows)
	}
	for q, want := range map[string]int{
		`KubePodInventory | where Namespace == "kube-system"`:                                                                                                           0,
		`KubeEvents | where Namespace == "kube-system"`:                                                                                                                 0,
		`ContainerInventory | where ContainerHostname == "coredns-1"`:                                                                                                   0,
		`KubeNodeInventory | where Computer == "aks-node-e2e"`:                                                                                                          -1, // nodes are not namespaced: present
		`InsightsMetrics | where Namespace == "prometheus" and Tags has "coredns"`:                                                                                      0,
		`InsightsMetrics | where Namespace == "prometheus" and Tags has "secret-job-1"`:                                                                                 0,
		`InsightsMetrics | where Namespace == "prometheus" and tostring(parse_json(Tags).pod_name) == "web-1" and Val == 5`:                                             -1,
		`InsightsMetrics | where Namespace == "prometheus" and tostring(parse_json(Tags).pod_name) == "tls-1" and tostring(parse_json(Tags).url) startswith "https://"`: -1,
		`InsightsMetrics | where Namespace == "prometheus" and tostring(parse_json(Tags).service_name) == "api-svc" and tostring(parse_json(Tags).code) == "200"`:       -1,
	} {
		if n := e.count(q); want >= 0 && n != want || want < 0 && n == 0 {
			t.Errorf("%d rows; want %v: %s", n, map[bool]string{true: "some", false: fmt.Sprint(want)}[want < 0], q)
		}
	}
	// Requests and limits from the pod specs, allocatable and capacity from
	// the node (a missing CPU limit is the node's allocatable), sent by the
	// cluster agent; nothing of the opted-out pod.
	waitFor(t, "request/limit Perf rows", 30*time.Second, func() bool {
		return e.count(`Perf | where CounterName == "cpuRequestNanoCores"`) > 0
	})
	webInst := clusterID + "/7f1b8c1e-0a3c-4b5d-9e6f-112233445566/web"
	for q, want := range map[string]float64{
		`Perf | where ObjectName == "K8SContainer" and InstanceName =~ "` + webInst + `" and CounterName == "cpuRequestNanoCores"`: 1e8,
		`Perf | where ObjectName == "K8SContainer" and InstanceName =~ "` + webInst + `" and CounterName == "memoryRequestBytes"`:  64 << 20,
		`Perf | where ObjectName == "K8SContainer" and InstanceName =~ "` + webInst + `" and CounterName == "memoryLimitBytes"`:    128 << 20,
		`Perf | where ObjectName == "K8SContainer" and InstanceName =~ "` + webInst + `" and CounterName == "cpuLimitNanoCores"`:   3.8e9,
		`Perf | where ObjectName == "K8SNode" and CounterName == "memoryCapacityBytes"`:                                            16 << 30,
		`Perf | where ObjectName == "K8SNode" and CounterName == "cpuAllocatableNanoCores"`:                                        3.8e9,
	} {
		rows := e.query(q + ` | summarize min(CounterValue), max(CounterValue)`)
		if len(rows) != 1 || rows[0][0] != want || rows[0][1] != want {
			t.Errorf("%s: min/max %v; want %v", q, rows, want)
		}
	}
	// Environment variables: not collected unless the rule enables them.
	if n := e.count(`ContainerInventory | where isnotempty(EnvironmentVar)`); n != 0 {
		t.Errorf("%d ContainerInventory rows with EnvironmentVar; the rule does not enable it", n)
	}
	for _, tbl := range []string{"ContainerLogV2", "KubePodInventory", "ContainerInventory", "KubeEvents", "KubeServices", "KubeNodeInventory", "InsightsMetrics", "Perf"} {
		if n := e.count(tbl + ` | extend s = tostring(pack_all()) | where s contains "` + envSecretValue + `"`); n != 0 {
			t.Errorf("%s: %d rows carry a container's environment variable", tbl, n)
		}
		if n := e.count(tbl + ` | where _ResourceId !~ "` + clusterID + `"`); n != 0 {
			t.Errorf("%s: %d rows without the cluster's _ResourceId", tbl, n)
		}
	}
	for k, n := range api.Requests() {
		if strings.HasPrefix(k, "forbidden") {
			t.Errorf("%d API requests outside the agents' ClusterRoles: %s", n, k)
		}
	}
	if scrapes.Load() < 2 || denied.Load() != 0 {
		t.Errorf("kubelet: %d scrapes, %d denied requests", scrapes.Load(), denied.Load())
	}
}
