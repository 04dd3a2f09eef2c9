package agent

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"custos/internal/agent/perf"
	"custos/internal/agent/syslog"
)

const minimalConfig = "endpoint: https://custos.example:8443\ncredentialsFile: /etc/custos-agent/credentials.json\ndcr:\n  dir: /etc/custos-agent/dcr.d\n"

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte(minimalConfig + "delivery:\n  maxBackoff: 90s\nbuffer:\n  maxBytes: 8388608\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.StateDir != DefaultStateDir || c.Syslog.TCP != DefaultSyslogAddr || c.HeartbeatInterval != time.Minute ||
		c.Delivery.MaxBackoff != 90*time.Second || c.Buffer.MaxBytes != 8<<20 || c.QueueDir() != DefaultStateDir+"/queue" {
		t.Fatalf("defaults/overrides wrong: %+v", c)
	}
	for _, tt := range []struct{ yaml, want string }{
		{minimalConfig + "unknownKey: 1\n", "unknownKey"},
		{"endpoint: http://custos:80\n", "must use https"},
		{"endpoint: https://h\nmetrics:\n  listen: 0.0.0.0:9465\n", "loopback"},
		{"endpoint: https://h\nbuffer:\n  maxBytes: 1000\n", "at least 4 MiB"},
		{"endpoint: https://h\nproxy: ftp://x\n", "proxy"},
		{"endpoint: https://h\nresourceId: web-1\n", "ARM resource ID"},
		{"endpoint: https://h\nsyslog:\n  udp: nonsense\n", "host:port"},
		{"endpoint: https://h\nlogLevel: loud\n", "logLevel"},
		{"endpoint: https://h\n---\nendpoint: https://g\n", "more than one"},
		{"", "endpoint is required"},
	} {
		_, err := ParseConfig([]byte(tt.yaml))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseConfig(%q) = %v; want an error containing %q", tt.yaml, err, tt.want)
		}
	}

	dir := t.TempDir()
	p := filepath.Join(dir, "config.yaml")
	os.WriteFile(p, []byte("endpoint: https://h\ncaFile: ca.pem\nstateDir: state\n"), 0o600)
	c, err = LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.CAFile != filepath.Join(dir, "ca.pem") || c.StateDir != filepath.Join(dir, "state") || c.IdentityPath() != filepath.Join(dir, "state", "identity") {
		t.Fatalf("relative paths not resolved: %+v", c)
	}
}

const ruleJSON = `{
  "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Insights/dataCollectionRules/r1",
  "name": "r1", "etag": "\"e1\"", "location": "eastus", "kind": "Linux",
  "properties": {
    "immutableId": "dcr-0123456789abcdef0123456789abcdef",
    "streamDeclarations": {"Custom-App": {"columns": [{"name": "TimeGenerated", "type": "datetime"}, {"name": "RawData", "type": "string"}]}},
    "dataSources": {
      "syslog": [{"name": "s", "streams": ["Microsoft-Syslog"], "facilityNames": ["auth", "cron"], "logLevels": ["Warning", "Error"]}],
      "performanceCounters": [{"name": "p", "streams": ["Microsoft-Perf", "Microsoft-InsightsMetrics"], "samplingFrequencyInSeconds": 10,
        "counterSpecifiers": ["\\Processor(*)\\% Processor Time"]}],
      "logFiles": [{"name": "f", "streams": ["Custom-App"], "filePatterns": ["/var/log/app/*.log"], "format": "text",
        "settings": {"text": {"recordStartTimestampFormat": "ISO 8601"}}}],
      "windowsEventLogs": [{"name": "w", "streams": ["Microsoft-Event"], "xPathQueries": ["System!*"]}]
    },
    "destinations": {"logAnalytics": [{"name": "la", "workspaceResourceId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/w"}]},
    "dataFlows": [{"streams": ["Custom-App"], "destinations": ["la"], "outputStream": "Custom-App_CL"},
                  {"streams": ["Microsoft-Syslog", "Microsoft-Perf"], "destinations": ["la"]}]
  }
}`

func TestParseDCR(t *testing.T) {
	d, err := ParseDCR([]byte(ruleJSON))
	if err != nil {
		t.Fatal(err)
	}
	if d.ImmutableID != "dcr-0123456789abcdef0123456789abcdef" || d.Name != "r1" || d.ETag != `"e1"` {
		t.Fatalf("identity fields: %+v", d)
	}
	ds := d.DataSources
	if len(ds.Syslog) != 1 || ds.Syslog[0].FacilityNames[1] != "cron" || len(ds.PerformanceCounters) != 1 ||
		ds.PerformanceCounters[0].SamplingFrequencyInSeconds != 10 || ds.LogFiles[0].Settings.Text.RecordStartTimestampFormat != "ISO 8601" {
		t.Fatalf("data sources: %+v", ds)
	}
	if len(d.Unsupported) != 1 || d.Unsupported[0] != "windowsEventLogs" {
		t.Fatalf("unsupported = %v", d.Unsupported)
	}
	if !d.flows("Microsoft-Syslog") || !d.flows("custom-app") || d.flows("Microsoft-InsightsMetrics") {
		t.Fatal("flows")
	}
	for _, bad := range []string{`{}`, `{"properties":{"immutableId":"x"}}`, `{"properties":{"immutableId":"dcr-a/../b"}}`,
		`{"properties":{"immutableId":"dcr-1","dataSources":{"syslog":{"not":"a list"}}}}`, `[`} {
		if _, err := ParseDCR([]byte(bad)); err == nil {
			t.Errorf("ParseDCR(%s) accepted", bad)
		}
	}
}

func TestDirSource(t *testing.T) {
	dir := t.TempDir()
	src := DirSource{Dir: dir}
	ctx := context.Background()
	rules, v0, err := src.Rules(ctx)
	if err != nil || len(rules) != 0 {
		t.Fatalf("empty dir: %v %v", rules, err)
	}
	os.WriteFile(filepath.Join(dir, "a.json"), []byte(ruleJSON), 0o600)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("ignored"), 0o600)
	rules, v1, err := src.Rules(ctx)
	if err != nil || len(rules) != 1 || v1 == v0 {
		t.Fatalf("one rule: %v %v %q", rules, err, v1)
	}
	if _, v, _ := src.Rules(ctx); v != v1 {
		t.Fatal("version changed without a change")
	}
	os.WriteFile(filepath.Join(dir, "a.json"), []byte(strings.Replace(ruleJSON, `"cron"`, `"daemon"`, 1)), 0o600)
	if _, v2, _ := src.Rules(ctx); v2 == v1 {
		t.Fatal("content change not seen")
	}
	os.WriteFile(filepath.Join(dir, "b.json"), []byte(ruleJSON), 0o600)
	if _, _, err := src.Rules(ctx); err == nil || !strings.Contains(err.Error(), "also in") {
		t.Fatalf("duplicate immutableId: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "b.json"), []byte(`{"half`), 0o600)
	if _, _, err := src.Rules(ctx); err == nil {
		t.Fatal("broken file accepted")
	}
	if _, _, err := (DirSource{Dir: filepath.Join(dir, "missing")}).Rules(ctx); err == nil {
		t.Fatal("missing directory accepted")
	}
}

func TestBatchesStayUnderTheLimit(t *testing.T) {
	rec := []byte(`{"RawData":"` + strings.Repeat("a", 10_000) + `"}`)
	var recs [][]byte
	for range 250 {
		recs = append(recs, rec)
	}
	recs = append(recs, make([]byte, MaxBatchBytes)) // too large for any batch
	groups, tooLarge := split(recs)
	if tooLarge != 1 {
		t.Fatalf("tooLarge = %d", tooLarge)
	}
	n := 0
	for _, g := range groups {
		p, err := encodePayload(target{"dcr-1", "Custom-App"}, g, time.Unix(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		h, body, err := decodePayload(p)
		if err != nil || h.DCR != "dcr-1" || h.Stream != "Custom-App" || h.Records != len(g) {
			t.Fatalf("header %+v %v", h, err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		plain, _ := io.ReadAll(zr)
		if len(plain) > MaxBatchBytes || len(body) > MaxBatchBytes {
			t.Fatalf("batch of %d bytes (%d compressed)", len(plain), len(body))
		}
		var arr []map[string]string
		if err := json.Unmarshal(plain, &arr); err != nil || len(arr) != len(g) {
			t.Fatalf("body is not the JSON array: %v", err)
		}
		n += len(arr)
	}
	if n != 250 || len(groups) < 3 {
		t.Fatalf("%d records in %d groups", n, len(groups))
	}
	if _, _, err := decodePayload([]byte("no header")); err == nil {
		t.Fatal("payload without header accepted")
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{"": 0, "7": 7 * time.Second, "-3": 0, "99999": 10 * time.Minute,
		"Wed, 01 Jan 2025 00:00:30 GMT": 30 * time.Second, "junk": 0} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v; want %v", in, got, want)
		}
	}
}

// staticTokens is a TokenSource for tests that never reach a server.
type staticTokens struct{}

func (staticTokens) Token(context.Context) (Secret, error) { return "t", nil }
func (staticTokens) Invalidate()                           {}

func newTestAgent(t *testing.T, mod func(*Config)) *Agent {
	t.Helper()
	cfg, err := ParseConfig([]byte("endpoint: https://127.0.0.1:1\ncomputer: web-1\nresourceId: /subscriptions/s/resourceGroups/rg/providers/Microsoft.HybridCompute/machines/web-1\nsyslog:\n  udp: 127.0.0.1:0\n  tcp: 127.0.0.1:0\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.StateDir = t.TempDir()
	if mod != nil {
		mod(&cfg)
	}
	a, err := New(Options{Config: cfg, Tokens: staticTokens{}, Rules: DirSource{Dir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.close)
	return a
}

func TestStateDirIsExclusive(t *testing.T) {
	a := newTestAgent(t, nil)
	cfg := a.cfg
	if _, err := New(Options{Config: cfg, Tokens: staticTokens{}, Rules: DirSource{Dir: t.TempDir()}}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second agent on the same state directory: %v", err)
	}
}

func TestSyslogShedsInsteadOfBlocking(t *testing.T) {
	a := newTestAgent(t, func(c *Config) { c.Syslog.QueueSize = 3 })
	done := make(chan struct{})
	go func() {
		for i := range 100 {
			a.receive([]byte("<13>Mar 10 11:00:00 h app: message "+string(rune('a'+i%26))), "127.0.0.1")
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("receive blocked on a full queue")
	}
	if got := a.c.SyslogShed.Load(); got != 97 || a.c.SyslogReceived.Load() != 100 {
		t.Fatalf("shed %d of %d; want 97 of 100", got, a.c.SyslogReceived.Load())
	}
}

func TestRecords(t *testing.T) {
	a := newTestAgent(t, nil)
	now := time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)
	m, _ := syslog.Parse([]byte("<86>Mar 10 11:59:00 db-2 sshd[77]: Accepted publickey"), now, time.UTC)
	b, err := a.syslogRecord(m, now, "10.0.0.9")
	if err != nil {
		t.Fatal(err)
	}
	var row map[string]any
	json.Unmarshal(b, &row)
	want := map[string]any{"Computer": "db-2", "HostName": "db-2", "HostIP": "10.0.0.9", "Facility": "authpriv", "SeverityLevel": "info",
		"ProcessName": "sshd", "ProcessID": float64(77), "SyslogMessage": "Accepted publickey", "CollectorHostName": "web-1",
		"EventTime": "2025-03-10T11:59:00Z", "TimeGenerated": "2025-03-10T12:00:00Z", "_ResourceId": a.cfg.ResourceID}
	for k, v := range want {
		if row[k] != v {
			t.Errorf("syslog %s = %v; want %v", k, row[k], v)
		}
	}

	specs := []perf.Specifier{{Object: "Memory", Instance: "*", Counter: "Available MBytes Memory"}}
	recs := a.perfRecords([]perf.Sample{{Object: "Memory", Counter: "Available MBytes Memory", Instance: "Memory", Value: 512},
		{Object: "Processor", Counter: "% Idle Time", Instance: "_Total", Value: 9}}, specs, now)
	if len(recs) != 1 || !bytes.Contains(recs[0], []byte(`"CounterPath":"\\\\web-1\\Memory(Memory)\\Available MBytes Memory"`)) {
		t.Fatalf("perf records: %s", recs)
	}

	fb, _ := a.fileRecord("json", "/var/log/app.json", `{"level":"warn","TimeGenerated":"2025-01-01T00:00:00Z"}`, now)
	var obj map[string]any
	json.Unmarshal(fb, &obj)
	if obj["level"] != "warn" || obj["TimeGenerated"] != "2025-01-01T00:00:00Z" || obj["FilePath"] != "/var/log/app.json" || obj["Computer"] != "web-1" {
		t.Fatalf("json file record: %s", fb)
	}
	fb, _ = a.fileRecord("json", "/x", `not json`, now)
	if !bytes.Contains(fb, []byte(`"RawData":"not json"`)) {
		t.Fatalf("non-JSON line: %s", fb)
	}

	hb, _ := a.heartbeatRecord(now)
	json.Unmarshal(hb, &obj)
	if obj["Category"] != "Azure Monitor Agent" || obj["OSType"] != "Linux" || obj["ResourceGroup"] != "rg" || obj["Resource"] != "web-1" ||
		obj["ResourceProvider"] != "Microsoft.HybridCompute" || obj["Version"] != Version {
		t.Fatalf("heartbeat: %s", hb)
	}
	if _, err := recordStart("nonsense"); err == nil {
		t.Fatal("unknown timestamp format accepted")
	}
	for f := range recordStartPatterns {
		if _, err := recordStart(f); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCredentialsFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.json")
	os.WriteFile(p, []byte(`{"tenantId":"t","clientId":"c","clientSecret":"s3cr3t","endpoint":"https://x","caFile":"ca"}`), 0o644)
	if _, err := LoadCredentials(p); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable credentials: %v", err)
	}
	os.Chmod(p, 0o600)
	c, err := LoadCredentials(p)
	if err != nil || c.ClientID != "c" {
		t.Fatal(err)
	}
	if s := c.ClientSecret.String(); s != "REDACTED" {
		t.Fatalf("secret prints as %q", s)
	}
	os.WriteFile(p, []byte(`{"tenantId":"t","clientId":"c","clientSecret":"s","extra":1}`), 0o600)
	if _, err := LoadCredentials(p); err == nil {
		t.Fatal("unknown key accepted")
	}
}

func TestSyslogSockets(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "syslog.sock")
	a := newTestAgent(t, func(c *Config) { c.Syslog.Unix = sock })
	a.syslog.start()
	udp, tcp := a.SyslogAddrs()
	send := func(network, addr string, msgs ...string) {
		c, err := net.Dial(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for _, m := range msgs {
			if _, err := c.Write([]byte(m)); err != nil {
				t.Fatal(err)
			}
		}
	}
	send("udp", udp, "<13>1 - h a - - - over udp")
	send("unixgram", sock, "<13>Mar 10 11:00:00 h a: over the unix socket")
	send("tcp", tcp, "27 <13>1 - h a - - - over tcp\n", "<13>Mar 10 11:00:00 h a: lf framed\n")
	deadline := time.Now().Add(5 * time.Second)
	for a.c.SyslogReceived.Load() < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("received %d of 4 messages", a.c.SyslogReceived.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	var texts []string
	for range 4 {
		texts = append(texts, (<-a.syslogCh).msg.Text)
	}
	sort.Strings(texts)
	if strings.Join(texts, "|") != "lf framed|over tcp|over the unix socket|over udp" {
		t.Fatalf("got %q", texts)
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o660 {
		t.Fatalf("unix socket mode: %v %v", fi, err)
	}
}

func TestParseKubernetesConfig(t *testing.T) {
	const cluster = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Kubernetes/connectedClusters/prod-1"
	c, err := ParseConfig([]byte(minimalConfig + "kubernetes:\n  enabled: true\n  clusterResourceId: " + cluster + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	k := c.Kubernetes
	if k.LogRoot != DefaultKubeLogRoot || k.Interval != time.Minute || k.NamespaceFilteringMode != "Off" || k.ClusterName != "prod-1" {
		t.Fatalf("kubernetes defaults wrong: %+v", k)
	}
	if kubeLogPattern("/var/log/pods") != "/var/log/pods/*/*/*.log" || kubeLogPattern("/var/log/containers") != "/var/log/containers/*.log" {
		t.Fatal("log patterns wrong")
	}
	for _, tt := range []struct{ yaml, want string }{
		{"kubernetes:\n  enabled: true\n  clusterResourceId: /subscriptions/x\n", "clusterResourceId"},
		{"kubernetes:\n  enabled: true\n  clusterResourceId: " + cluster + "\n  logRoot: /tmp/logs\n", "logRoot"},
		{"kubernetes:\n  enabled: true\n  clusterResourceId: " + cluster + "\n  kubeletURL: http://10.0.0.1:10255\n", "https"},
		{"kubernetes:\n  enabled: true\n  clusterResourceId: " + cluster + "\n  namespaceFilteringMode: Some\n", "Off, Include or Exclude"},
		{"kubernetes:\n  enabled: true\n  clusterResourceId: " + cluster + "\n  collectEnvVars: true\n", "environment variables"},
		{"kubernetes:\n  collectEnvVars: true\n", "environment variables"},
		{"kubernetes:\n  enabled: true\n  clusterResourceId: " + cluster + "\n  envVars: {enabled: true}\n", "envVars"},
	} {
		_, err := ParseConfig([]byte(minimalConfig + tt.yaml))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want it to mention %q", tt.yaml, err, tt.want)
		}
	}
}

func TestParseDCRContainerInsights(t *testing.T) {
	rule := `{"name":"ci","properties":{"immutableId":"dcr-0123456789abcdef0123456789abcdef",
	 "dataSources":{"extensions":[
	  {"name":"ContainerInsightsExtension","streams":["Microsoft-ContainerLogV2","Microsoft-Perf"],"extensionName":"ContainerInsights",
	   "extensionSettings":{"dataCollectionSettings":{"interval":"5m","namespaceFilteringMode":"include","namespaces":["shop"],"enableContainerLogV2":true}}},
	  {"name":"other","streams":["Microsoft-Event"],"extensionName":"Other"}]},
	 "dataFlows":[{"streams":["Microsoft-ContainerLogV2","Microsoft-Perf"],"destinations":["la"]}]}}`
	d, err := ParseDCR([]byte(rule))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.DataSources.Extensions) != 1 || len(d.Unsupported) != 1 || d.Unsupported[0] != "extensions:Other" {
		t.Fatalf("extensions %+v, unsupported %v", d.DataSources.Extensions, d.Unsupported)
	}
	s, err := d.DataSources.Extensions[0].ContainerInsights()
	if err != nil {
		t.Fatal(err)
	}
	if s.Interval != 5*time.Minute || s.NamespaceFilteringMode != "Include" || !s.NamespacesSet || len(s.Namespaces) != 1 ||
		s.EnableContainerLogV2 == nil || !*s.EnableContainerLogV2 {
		t.Fatalf("settings = %+v", s)
	}
	// The extension's settings take precedence over the agent's configuration.
	a := &Agent{cfg: Config{Kubernetes: KubeConfig{Interval: time.Minute, NamespaceFilteringMode: "Exclude", Namespaces: []string{"kube-system"}}}}
	a.log = slog.New(slog.DiscardHandler)
	ks, err := a.kubeSettingsFor(d, d.DataSources.Extensions[0])
	if err != nil {
		t.Fatal(err)
	}
	if ks.interval != 5*time.Minute || ks.filter.Allows("kube-system") || !ks.filter.Allows("shop") {
		t.Fatalf("effective settings = %+v", ks)
	}
	for _, bad := range []string{`{"interval":"soon"}`, `{"interval":"10ms"}`, `{"namespaceFilteringMode":"Most"}`} {
		r := strings.Replace(rule, `{"interval":"5m","namespaceFilteringMode":"include","namespaces":["shop"],"enableContainerLogV2":true}`, bad, 1)
		if _, err := ParseDCR([]byte(r)); err == nil {
			t.Errorf("settings %s accepted", bad)
		}
	}
}

// TestKubernetesNeedsClusterIdentity: Kubernetes mode without an enrolled
// cluster identity and without kubernetes.clusterResourceId refuses to
// start and says how to fix it.
func TestKubernetesNeedsClusterIdentity(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "credentials.json")
	os.WriteFile(creds, []byte(`{"tenantId":"t","clientId":"c","clientSecret":"s"}`), 0o600)
	cfg, err := ParseConfig([]byte("endpoint: https://custos.example:8443\ncredentialsFile: " + creds + "\nstateDir: " + dir +
		"\ndcr:\n  dir: " + dir + "\nsyslog:\n  udp: \"off\"\n  tcp: \"off\"\nkubernetes:\n  enabled: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(Options{Config: cfg})
	if err == nil || !strings.Contains(err.Error(), "enroll the cluster") {
		t.Fatalf("New: %v; want a hint to enroll the cluster", err)
	}
}
