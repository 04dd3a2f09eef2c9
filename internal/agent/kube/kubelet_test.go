package kube

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const testCluster = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Kubernetes/connectedClusters/c1"

// kubeletServer serves the fixture over HTTPS (TLS 1.2+) and requires the token.
func kubeletServer(t *testing.T, token string) (srv *httptest.Server, caFile string) {
	t.Helper()
	fixture, err := os.ReadFile("testdata/stats_summary.json")
	if err != nil {
		t.Fatal(err)
	}
	srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		if r.URL.Path != "/stats/summary" || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(fixture)
	}))
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile = filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return srv, caFile
}

// selfSigned returns a PEM CA certificate unrelated to httptest's.
func selfSigned(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func writeToken(t *testing.T, tok string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestKubeletSummaryOverHTTPS(t *testing.T) {
	srv, ca := kubeletServer(t, "sa-token-1")
	tokFile := writeToken(t, "sa-token-1")
	c, err := NewKubeletClient(KubeletOptions{URL: srv.URL, TokenFile: tokFile, CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.Summary(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.Node.NodeName != "aks-nodepool1-12345678-vmss000000" || len(s.Pods) != 2 || *s.Node.CPU.UsageNanoCores != 250000000 {
		t.Fatalf("summary = %+v", s.Node)
	}

	// A rotated (wrong) token is re-read and refused by the server.
	if err := os.WriteFile(tokFile, []byte("stale"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Summary(context.Background()); !errors.Is(err, ErrKubeletStatus) || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong token: err = %v; want 401 ErrKubeletStatus", err)
	}

	// Without the CA the server is not trusted.
	other := filepath.Join(t.TempDir(), "other.crt")
	if err := os.WriteFile(other, selfSigned(t), 0o644); err != nil {
		t.Fatal(err)
	}
	c2, err := NewKubeletClient(KubeletOptions{URL: srv.URL, TokenFile: writeToken(t, "sa-token-1"), CAFile: other})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Summary(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted kubelet: err = %v; want a certificate error", err)
	}
	c3, err := NewKubeletClient(KubeletOptions{URL: srv.URL, TokenFile: writeToken(t, "sa-token-1"), InsecureSkipTLSVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c3.Summary(context.Background()); err != nil {
		t.Errorf("insecure client: %v", err)
	}

	for _, o := range []KubeletOptions{{URL: "http://" + srv.Listener.Addr().String(), CAFile: ca}, {URL: "::", CAFile: ca}, {URL: srv.URL, CAFile: tokFile}} {
		if _, err := NewKubeletClient(o); err == nil {
			t.Errorf("NewKubeletClient(%+v) accepted", o)
		}
	}
	c4, _ := NewKubeletClient(KubeletOptions{URL: srv.URL, CAFile: ca, TokenFile: filepath.Join(t.TempDir(), "missing")})
	if _, err := c4.Summary(context.Background()); err == nil {
		t.Error("missing token file accepted")
	}
}

func TestPerfAndInsightsMetricsRows(t *testing.T) {
	f, err := os.Open("testdata/stats_summary.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := DecodeSummary(f)
	if err != nil {
		t.Fatal(err)
	}
	// A previous sample 60 s earlier with fewer bytes gives per-second rates.
	prev := *s
	pn := *s.Node.Network
	rx, tx := uint64(140000), uint64(40000)
	pn.Time, pn.RxBytes, pn.TxBytes = pn.Time.Add(-time.Minute), &rx, &tx
	prev.Node.Network = &pn
	o := MetricsOptions{ClusterID: testCluster, ClusterName: "c1"}
	got := map[string]float64{}
	for _, p := range PerfRows(s, &prev, o) {
		got[p.ObjectName+"|"+strings.TrimPrefix(p.InstanceName, testCluster)+"|"+p.CounterName] = p.CounterValue
		if p.Computer != "aks-nodepool1-12345678-vmss000000" || p.ResourceID != testCluster || p.TimeGenerated.IsZero() {
			t.Errorf("row %+v", p)
		}
	}
	node := "K8SNode|/aks-nodepool1-12345678-vmss000000|"
	web := "K8SContainer|/7f1b8c1e-0a3c-4b5d-9e6f-112233445566/web|"
	dns := "K8SContainer|/0f3e1b2a-1111-2222-3333-444455556666/coredns|"
	want := map[string]float64{
		node + "cpuUsageNanoCores": 250000000, node + "memoryWorkingSetBytes": 2500000000, node + "memoryRssBytes": 1500000000,
		node + "networkRxBytes": 200000, node + "networkTxBytes": 100000, node + "restartTimeEpoch": float64(time.Date(2024, 4, 30, 8, 0, 0, 0, time.UTC).Unix()),
		node + "networkRxBytesPerSec": 1000, node + "networkTxBytesPerSec": 1000,
		web + "cpuUsageNanoCores": 12000000, web + "memoryWorkingSetBytes": 70000000, web + "memoryRssBytes": 40000000,
		web + "restartTimeEpoch":  float64(time.Date(2024, 5, 1, 9, 0, 3, 0, time.UTC).Unix()),
		dns + "cpuUsageNanoCores": 3000000, dns + "memoryWorkingSetBytes": 20000000,
		dns + "restartTimeEpoch": float64(time.Date(2024, 4, 30, 8, 1, 10, 0, time.UTC).Unix()),
	}
	if len(got) != len(want) {
		t.Errorf("got %d counters; want %d: %v", len(got), len(want), got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v; want %v", k, got[k], v)
		}
	}
	if n := len(PerfRows(s, nil, o)); n != len(want)-2 {
		t.Errorf("without prev: %d rows; want %d", n, len(want)-2)
	}

	im := InsightsMetricsRows(s, o)
	if len(im) != 4 {
		t.Fatalf("InsightsMetrics rows = %d; want 4 (pv + 3 disk): %+v", len(im), im)
	}
	pv := im[0]
	var tags map[string]string
	if err := json.Unmarshal([]byte(pv.Tags), &tags); err != nil {
		t.Fatal(err)
	}
	if pv.Namespace != "container.azm.ms/pv" || pv.Name != "pvUsedBytes" || pv.Val != 1e9 || tags["pvcName"] != "web-data" ||
		tags["podName"] != "web-6d4cf56db6-x7k2p" || tags["capacityBytes"] != "10000000000" || tags["clusterId"] != testCluster {
		t.Errorf("pv row = %+v tags %v", pv, tags)
	}
	if im[3].Name != "used_percent" || im[3].Val != 25 {
		t.Errorf("disk used_percent = %+v", im[3])
	}
	if _, err := DecodeSummary(bytes.NewReader([]byte(`{"pods":[]}`))); err == nil {
		t.Error("summary without nodeName accepted")
	}
	if _, err := DecodeSummary(bytes.NewReader([]byte(`{"node":`))); err == nil {
		t.Error("truncated summary accepted")
	}
}

// TestMetricsExcludeOptedOutPods: a pod for which Exclude is true (opted
// out, or not known yet) has no K8SContainer Perf rows and no pv
// InsightsMetrics rows; the node's rows and the other pods' stay.
func TestMetricsExcludeOptedOutPods(t *testing.T) {
	f, err := os.Open("testdata/stats_summary.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := DecodeSummary(f)
	if err != nil {
		t.Fatal(err)
	}
	o := MetricsOptions{ClusterID: testCluster, ClusterName: "c1",
		Exclude: func(ns, pod string) bool { return ns == "shop" && pod == "web-6d4cf56db6-x7k2p" }}
	var node, dns int
	for _, p := range PerfRows(s, nil, o) {
		switch {
		case strings.Contains(p.InstanceName, "7f1b8c1e"):
			t.Errorf("opted-out pod's row: %+v", p)
		case p.ObjectName == ObjectNode:
			node++
		case strings.Contains(p.InstanceName, "/coredns"):
			dns++
		}
	}
	if node == 0 || dns == 0 {
		t.Errorf("%d node rows, %d coredns rows; want some of each", node, dns)
	}
	for _, m := range InsightsMetricsRows(s, o) {
		if m.Namespace == "container.azm.ms/pv" {
			t.Errorf("opted-out pod's volume: %+v", m)
		}
	}
	if n := len(InsightsMetricsRows(s, o)); n != 3 {
		t.Errorf("%d InsightsMetrics rows; want the 3 node disk rows", n)
	}
}
