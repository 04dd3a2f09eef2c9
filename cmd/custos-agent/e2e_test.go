package main

import (
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"custos/internal/agent/syslog"
)

// The end-to-end test drives the real binaries: `custos serve` as a child
// process (its own data directory), the `custos` CLI for tables and rules,
// ARM role assignment and query requests over HTTPS, and `custos-agent run`
// as a child process collecting from a rotating log file, syslog (a Go
// RFC 5424 client and, when installed, util-linux logger), /proc and
// Heartbeat.

type binaries struct{ custos, agent string }

var (
	buildOnce sync.Once
	built     binaries
	buildErr  error
)

func buildBinaries(t *testing.T) binaries {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "custos-agent-e2e-bin")
		if err != nil {
			buildErr = err
			return
		}
		built = binaries{custos: filepath.Join(dir, "custos"), agent: filepath.Join(dir, "custos-agent")}
		for pkg, out := range map[string]string{"custos/cmd/custos": built.custos, "custos/cmd/custos-agent": built.agent} {
			cmd := exec.Command("go", "build", "-o", out, pkg)
			if b, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}

func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		return pc.LocalAddr().(*net.UDPAddr).Port
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// server is a `custos serve` child process.
type server struct {
	t       *testing.T
	bin     string
	dataDir string
	addr    string
	cmd     *exec.Cmd
	log     *os.File
}

func (s *server) start() {
	s.t.Helper()
	// These tests are about the agent: the installation's administrator
	// reads the results directly, so just-in-time access (on by default,
	// tested in e2e/) is turned off.
	s.cmd = exec.Command(s.bin, "serve", "--data-dir", s.dataDir, "--listen", s.addr, "--just-in-time-access=false")
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(filepath.Join(s.dataDir, "admin.json")); err == nil {
			if c, err := net.DialTimeout("tcp", s.addr, time.Second); err == nil {
				c.Close()
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("custos serve did not come up; log: %s", s.log.Name())
}

func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
	s.cmd = nil
}

type admin struct {
	Endpoint       string `json:"endpoint"`
	TenantID       string `json:"tenantId"`
	ClientID       string `json:"clientId"`
	ClientSecret   string `json:"clientSecret"`
	SubscriptionID string `json:"subscriptionId"`
	ResourceGroup  string `json:"resourceGroup"`
	WorkspaceName  string `json:"workspaceName"`
	WorkspaceID    string `json:"workspaceId"`
	CAFile         string `json:"caFile"`
}

type env struct {
	t      *testing.T
	bins   binaries
	srv    *server
	adm    admin
	client *http.Client
}

func (e *env) token(scope string) string {
	e.t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {e.adm.ClientID}, "client_secret": {e.adm.ClientSecret}, "scope": {scope}}
	resp, err := e.client.PostForm(e.adm.Endpoint+"/"+e.adm.TenantID+"/oauth2/v2.0/token", form)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		e.t.Fatalf("token for %s: status %d, %v", scope, resp.StatusCode, err)
	}
	return tok.AccessToken
}

func (e *env) do(method, url, scope string, body any, headers map[string]string) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Authorization", "Bearer "+e.token(scope))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func (e *env) cli(args ...string) []byte {
	e.t.Helper()
	cmd := exec.Command(e.bins.custos, append(args, "--data-dir", e.srv.dataDir)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		e.t.Fatalf("custos %v: %v\n%s", args, err, out)
	}
	return out
}

// query runs KQL and returns the rows of the first table.
func (e *env) query(kql string) [][]any {
	e.t.Helper()
	status, body := e.do("POST", e.adm.Endpoint+"/v1/workspaces/"+e.adm.WorkspaceID+"/query", "https://api.loganalytics.io/.default",
		map[string]string{"query": kql}, nil)
	if status != 200 {
		e.t.Fatalf("query %q: %d %s", kql, status, body)
	}
	var res struct {
		Tables []struct {
			Rows [][]any `json:"rows"`
		} `json:"tables"`
	}
	if err := json.Unmarshal(body, &res); err != nil || len(res.Tables) == 0 {
		e.t.Fatalf("query %q: %v %s", kql, err, body)
	}
	return res.Tables[0].Rows
}

func (e *env) count(kql string) int {
	rows := e.query(kql + " | count")
	if len(rows) != 1 || len(rows[0]) != 1 {
		e.t.Fatalf("count %q: %v", kql, rows)
	}
	n, _ := rows[0][0].(float64)
	return int(n)
}

// waitFor polls until cond holds or the timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	start := time.Now()
	defer func() { t.Logf("waited %v for %s", time.Since(start).Round(100*time.Millisecond), what) }()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func jwtClaim(tok, claim string) string {
	parts := strings.Split(tok, ".")
	if len(parts) < 2 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	s, _ := m[claim].(string)
	return s
}

// agentProc is a `custos-agent run` child process.
type agentProc struct {
	t      *testing.T
	bin    string
	config string
	log    *os.File
	cmd    *exec.Cmd
}

func (a *agentProc) start() {
	a.t.Helper()
	a.cmd = exec.Command(a.bin, "run", "--config", a.config)
	a.cmd.Stdout, a.cmd.Stderr = a.log, a.log
	if err := a.cmd.Start(); err != nil {
		a.t.Fatal(err)
	}
}

func (a *agentProc) signal(sig syscall.Signal) {
	if a.cmd == nil {
		return
	}
	a.cmd.Process.Signal(sig)
	a.cmd.Wait()
	a.cmd = nil
}

// logFile creates a log file for a child process whose tail is printed if
// the test fails.
func logFile(t *testing.T, root, name string) *os.File {
	f, err := os.Create(filepath.Join(root, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Close()
		if t.Failed() {
			b, err := os.ReadFile(f.Name())
			if err != nil {
				t.Logf("read %s: %v", name, err)
			}
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Logf("---- tail of %s ----\n%s", name, b)
		}
	})
	return f
}

// startEnv starts a server in root and returns the environment with the
// bootstrap admin's credentials (raw admin.json bytes too).
func startEnv(t *testing.T, root string) (*env, []byte) {
	t.Helper()
	bins := buildBinaries(t)
	srv := &server{t: t, bin: bins.custos, dataDir: filepath.Join(root, "server"), addr: fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp")), log: logFile(t, root, "server.log")}
	srv.start()
	t.Cleanup(srv.stop)
	var adm admin
	b, err := os.ReadFile(filepath.Join(srv.dataDir, "admin.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &adm); err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(adm.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &env{t: t, bins: bins, srv: srv, adm: adm, client: &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}}, b
}

type ruleInfo struct {
	json        []byte // the rule as GET returns it
	id          string
	immutableID string
}

// createRule creates the AgentApp_CL table and a rule named name with syslog,
// perf, log file (patterns) and Heartbeat flows.
func (e *env) createRule(name string, patterns []string) ruleInfo {
	t := e.t
	t.Helper()
	e.cli("table", "create", "AgentApp_CL", "--column", "TimeGenerated:datetime", "--column", "RawData:string",
		"--column", "FilePath:string", "--column", "Computer:string")
	wsID := e.workspaceID()
	rule := map[string]any{
		"kind": "Linux",
		"properties": map[string]any{
			"streamDeclarations": map[string]any{"Custom-AgentApp": map[string]any{"columns": []map[string]string{
				{"name": "TimeGenerated", "type": "datetime"}, {"name": "RawData", "type": "string"},
				{"name": "FilePath", "type": "string"}, {"name": "Computer", "type": "string"}}}},
			"dataSources": map[string]any{
				"syslog": []map[string]any{{"name": "sys", "streams": []string{"Microsoft-Syslog"},
					"facilityNames": []string{"user", "local3", "auth"}, "logLevels": []string{"Info", "Notice", "Warning", "Error", "Critical", "Alert", "Emergency"}}},
				"performanceCounters": []map[string]any{{"name": "perf", "streams": []string{"Microsoft-Perf"}, "samplingFrequencyInSeconds": 1,
					"counterSpecifiers": []string{`\Processor(_Total)\% Processor Time`, `\Memory(*)\Available MBytes Memory`, `\Logical Disk(*)\% Free Space`}}},
				"logFiles": []map[string]any{{"name": "app", "streams": []string{"Custom-AgentApp"}, "filePatterns": patterns, "format": "text"}},
			},
			"destinations": map[string]any{"logAnalytics": []map[string]string{{"name": "la", "workspaceResourceId": wsID}}},
			"dataFlows": []map[string]any{
				{"streams": []string{"Custom-AgentApp"}, "destinations": []string{"la"}, "outputStream": "Custom-AgentApp_CL"},
				{"streams": []string{"Microsoft-Syslog"}, "destinations": []string{"la"}},
				{"streams": []string{"Microsoft-Perf"}, "destinations": []string{"la"}},
				{"streams": []string{"Microsoft-Heartbeat"}, "destinations": []string{"la"}},
			},
		},
	}
	return e.putRule(name, rule)
}

// workspaceID is the ARM ID of the bootstrap workspace.
func (e *env) workspaceID() string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.OperationalInsights/workspaces/%s",
		e.adm.SubscriptionID, e.adm.ResourceGroup, e.adm.WorkspaceName)
}

// putRule creates the data collection rule name from its ARM body through
// `custos dcr create` and reads it back.
func (e *env) putRule(name string, rule map[string]any) ruleInfo {
	t := e.t
	t.Helper()
	adm := e.adm
	ruleFile := filepath.Join(t.TempDir(), name+".json")
	rb, _ := json.Marshal(rule)
	if err := os.WriteFile(ruleFile, rb, 0o600); err != nil {
		t.Fatal(err)
	}
	e.cli("dcr", "create", name, "-f", ruleFile)
	dcrURL := adm.Endpoint + fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Insights/dataCollectionRules/%s", adm.SubscriptionID, adm.ResourceGroup, name)
	status, dcrJSON := e.do("GET", dcrURL+"?api-version=2022-06-01", "https://management.azure.com/.default", nil, nil)
	if status != 200 {
		t.Fatalf("get DCR: %d %s", status, dcrJSON)
	}
	var dcr struct {
		ID         string `json:"id"`
		Properties struct {
			ImmutableID string `json:"immutableId"`
		} `json:"properties"`
	}
	json.Unmarshal(dcrJSON, &dcr)
	return ruleInfo{json: dcrJSON, id: dcr.ID, immutableID: dcr.Properties.ImmutableID}
}

// grantPublisher gives principalID Monitoring Metrics Publisher on scope
// through the ARM role assignment API.
func (e *env) grantPublisher(scope, principalID, assignment string) {
	e.t.Helper()
	status, body := e.do("PUT", e.adm.Endpoint+scope+"/providers/Microsoft.Authorization/roleAssignments/"+assignment+"?api-version=2022-04-01",
		"https://management.azure.com/.default", map[string]any{"properties": map[string]string{
			"roleDefinitionId": "/providers/Microsoft.Authorization/roleDefinitions/3913510d-42f4-4e42-8a64-420c390055eb",
			"principalId":      principalID, "principalType": "ServicePrincipal"}}, nil)
	if status != 201 && status != 200 {
		e.t.Fatalf("role assignment: %d %s", status, body)
	}
}

// lines returns how often each AgentApp_CL RawData starting with prefix+"-" arrived.
func (e *env) lines(prefix string) map[string]int {
	rows := e.query(fmt.Sprintf(`AgentApp_CL | where RawData startswith "%s-" | project RawData`, prefix))
	m := map[string]int{}
	for _, r := range rows {
		m[r[0].(string)]++
	}
	return m
}

func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server and the agent")
	}
	root := t.TempDir()
	e, b := startEnv(t, root)
	adm, bins, srv := e.adm, e.bins, e.srv
	logDir := filepath.Join(root, "logs")
	os.MkdirAll(logDir, 0o755)
	rule := e.createRule("agent-rule", []string{filepath.Join(logDir, "*.log")})
	dcrJSON := rule.json
	dcr := struct{ Properties struct{ ImmutableID string } }{}
	dcr.Properties.ImmutableID = rule.immutableID

	// The bootstrap admin owns everything but, as in Azure, Owner holds no data
	// actions: grant Monitoring Metrics Publisher on the rule through ARM.
	e.grantPublisher(rule.id, jwtClaim(e.token("https://management.azure.com/.default"), "oid"), "6f1d3a70-1a4e-4c1b-9a57-5d3c1e2f0a11")
	var status int
	var body []byte

	// Does this server accept the built-in Microsoft-* streams on the ingestion API?
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`[{"TimeGenerated":"` + time.Now().UTC().Format(time.RFC3339) + `","Computer":"probe","Category":"probe"}]`))
	zw.Close()
	waitFor(t, "the role assignment to take effect", 20*time.Second, func() bool {
		status, body = e.do("POST", adm.Endpoint+"/dataCollectionRules/"+dcr.Properties.ImmutableID+"/streams/Microsoft-Heartbeat?api-version=2023-01-01",
			"https://monitor.azure.com//.default", gz.Bytes(), map[string]string{"Content-Encoding": "gzip"})
		return status != http.StatusForbidden
	})
	if status != http.StatusNoContent {
		t.Fatalf("probe of the built-in stream Microsoft-Heartbeat: %d %s; want 204", status, body)
	}

	// The agent.
	agentDir := filepath.Join(root, "agent")
	dcrDir := filepath.Join(agentDir, "dcr.d")
	os.MkdirAll(dcrDir, 0o700)
	os.WriteFile(filepath.Join(dcrDir, "agent-rule.json"), dcrJSON, 0o600)
	credFile := filepath.Join(agentDir, "credentials.json")
	os.WriteFile(credFile, b, 0o600)
	udpPort, tcpPort, metricsPort := freePort(t, "udp"), freePort(t, "tcp"), freePort(t, "tcp")
	computer := "e2e-host-" + fmt.Sprint(os.Getpid())
	resourceID := "/subscriptions/" + adm.SubscriptionID + "/resourceGroups/" + adm.ResourceGroup + "/providers/Microsoft.HybridCompute/machines/" + computer
	cfg := fmt.Sprintf(`endpoint: %s
caFile: %s
credentialsFile: %s
resourceId: %s
computer: %s
stateDir: %s
buffer:
  maxBytes: 67108864
dcr:
  dir: %s
  pollInterval: 300ms
syslog:
  udp: 127.0.0.1:%d
  tcp: 127.0.0.1:%d
files:
  pollInterval: 100ms
  readFromStart: true
delivery:
  minBackoff: 200ms
  maxBackoff: 1s
  flushInterval: 200ms
heartbeatInterval: 1s
metrics:
  listen: 127.0.0.1:%d
logLevel: debug
`, adm.Endpoint, adm.CAFile, credFile, resourceID, computer, filepath.Join(agentDir, "state"), dcrDir, udpPort, tcpPort, metricsPort)
	cfgPath := filepath.Join(agentDir, "config.yaml")
	os.WriteFile(cfgPath, []byte(cfg), 0o600)
	ag := &agentProc{t: t, bin: bins.agent, config: cfgPath, log: logFile(t, root, "agent.log")}
	ag.start()
	t.Cleanup(func() { ag.signal(syscall.SIGTERM) })
	waitFor(t, "agent syslog listener", 20*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", tcpPort), time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	// A writer that keeps appending numbered lines, rotating by rename and then by copy-truncate.
	appLog := filepath.Join(logDir, "app.log")
	var written atomic.Int64
	writeLines := func(prefix string, from, to int, rotateRename, rotateCopy int) {
		f, err := os.OpenFile(appLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Error(err)
			return
		}
		for i := from; i < to; i++ {
			if i == rotateRename {
				f.Close()
				os.Rename(appLog, appLog+".1")
				f, _ = os.OpenFile(appLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
			}
			if i == rotateCopy {
				data, _ := os.ReadFile(appLog)
				os.WriteFile(appLog+".2", data, 0o644)
				f.Truncate(0)
			}
			fmt.Fprintf(f, "%s-%05d payload %s\n", prefix, i, strings.Repeat("x", i%50))
			written.Add(1)
			time.Sleep(8 * time.Millisecond)
		}
		f.Close()
	}
	const total = 900
	done := make(chan struct{})
	go func() { defer close(done); writeLines("line", 0, total, 150, 450) }()

	// Syslog: a Go RFC 5424 client over TCP (octet counting) and UDP, and logger.
	marker := fmt.Sprintf("e2e-%d", time.Now().UnixNano())
	sendSyslog := func(network string, n int, fac int) {
		c, err := net.Dial(network, fmt.Sprintf("127.0.0.1:%d", map[string]int{"tcp": tcpPort, "udp": udpPort}[network]))
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		for i := range n {
			msg := syslog.Format5424(syslog.Message{Facility: fac, Severity: 6, Time: time.Now(), Hostname: computer, AppName: "e2eapp",
				ProcID: "4242", Text: fmt.Sprintf("%s %s message %d", marker, network, i)})
			if network == "tcp" {
				msg = append([]byte(fmt.Sprintf("%d ", len(msg))), msg...)
			}
			c.Write(msg)
			if network == "udp" {
				time.Sleep(time.Millisecond)
			}
		}
	}
	sendSyslog("tcp", 100, 19) // local3
	sendSyslog("udp", 50, 1)   // user
	sendSyslog("tcp", 20, 0)   // kern: filtered out by the rule
	// util-linux's logger, as an administrator would forward with it.
	loggerPath, err := exec.LookPath("logger")
	if err != nil {
		t.Fatalf("logger not found (apt-get install -y bsdutils): %v", err)
	}
	for i := range 5 {
		out, err := exec.Command(loggerPath, "--server", "127.0.0.1", "--port", fmt.Sprint(tcpPort), "--tcp", "--rfc5424", "--octet-count",
			"-p", "auth.warning", "-t", "e2elogger", fmt.Sprintf("%s logger %d", marker, i)).CombinedOutput()
		if err != nil {
			t.Fatalf("logger: %v %s", err, out)
		}
	}

	// Server outage while lines keep coming: stop it at ~line 250, keep it down ~4 s.
	waitFor(t, "lines before the outage", 30*time.Second, func() bool { return written.Load() >= 250 })
	srv.stop()
	time.Sleep(4 * time.Second)
	srv.start()
	<-done

	// Every line arrives exactly once, with its content.
	lines := e.lines
	deadline := time.Now().Add(60 * time.Second)
	for len(lines("line")) < total {
		if time.Now().After(deadline) {
			st, _ := os.ReadFile(filepath.Join(agentDir, "state", "status.json"))
			t.Fatalf("timed out: %d of %d lines arrived; agent status:\n%s", len(lines("line")), total, st)
		}
		time.Sleep(250 * time.Millisecond)
	}
	got := lines("line")
	for i := range total {
		want := fmt.Sprintf("line-%05d payload %s", i, strings.Repeat("x", i%50))
		if got[want] != 1 {
			t.Errorf("line %d arrived %d times", i, got[want])
		}
	}
	if len(got) != total {
		t.Errorf("got %d distinct lines; want %d", len(got), total)
	}
	if n := e.count(fmt.Sprintf(`AgentApp_CL | where RawData startswith "line-" and Computer == "%s" and FilePath startswith "%s"`, computer, logDir)); n != total {
		t.Errorf("Computer/FilePath columns: %d rows match; want %d", n, total)
	}

	// Built-in tables.
	waitFor(t, "syslog rows", 30*time.Second, func() bool {
		return e.count(fmt.Sprintf(`Syslog | where SyslogMessage startswith "%s" and ProcessName == "e2eapp"`, marker)) >= 150
	})
	if n := e.count(fmt.Sprintf(`Syslog | where SyslogMessage startswith "%s" and ProcessName == "e2eapp"`, marker)); n != 150 {
		t.Errorf("syslog rows: %d; want 150 (100 tcp + 50 udp; kern filtered)", n)
	}
	rows := e.query(fmt.Sprintf(`Syslog | where SyslogMessage == "%s tcp message 7" | project Facility, SeverityLevel, HostName, ProcessID, Computer, _ResourceId`, marker))
	if len(rows) != 1 || rows[0][0] != "local3" || rows[0][1] != "info" || rows[0][2] != computer || rows[0][3] != float64(4242) {
		t.Errorf("syslog columns: %v", rows)
	}
	waitFor(t, "logger rows", 20*time.Second, func() bool {
		return e.count(fmt.Sprintf(`Syslog | where SyslogMessage startswith "%s logger" and Facility == "auth" and SeverityLevel == "warning"`, marker)) == 5
	})
	waitFor(t, "perf rows", 30*time.Second, func() bool {
		return e.count(fmt.Sprintf(`Perf | where Computer == "%s" and ObjectName == "Processor" and CounterName == "%% Processor Time" and InstanceName == "_Total"`, computer)) > 0 &&
			e.count(fmt.Sprintf(`Perf | where Computer == "%s" and CounterName == "Available MBytes Memory" and CounterValue > 0`, computer)) > 0
	})
	waitFor(t, "heartbeat rows", 30*time.Second, func() bool {
		return e.count(fmt.Sprintf(`Heartbeat | where Computer == "%s" and OSType == "Linux" and Category == "Azure Monitor Agent"`, computer)) > 0
	})

	// The agent's own accounting: the outage caused retried errors, the queue
	// drained, and nothing was dead-lettered.
	var st struct {
		Queue    struct{ Entries int }
		Counters map[string]uint64
	}
	waitFor(t, "the queue to drain", 30*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(agentDir, "state", "status.json"))
		json.Unmarshal(b, &st)
		return st.Queue.Entries == 0 && st.Counters["recordsSent"] >= total
	})
	if st.Counters["sendErrors"] == 0 {
		t.Errorf("no send errors counted across the server outage: %v", st.Counters)
	}
	if st.Counters["deadLetters"] != 0 {
		t.Errorf("batches were dead-lettered: %v", st.Counters)
	}
	if st.Counters["syslogFiltered"] != 20 {
		t.Errorf("syslogFiltered = %d; want the 20 kern messages", st.Counters["syslogFiltered"])
	}

	// The agent reports itself.
	out, err := exec.Command(bins.agent, "status", "--config", cfgPath).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "running") || !strings.Contains(string(out), "1 applied") {
		t.Errorf("status: %v\n%s", err, out)
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(mb, []byte("custos_agent_batches_sent_total")) || !bytes.Contains(mb, []byte(`custos_agent_records_collected_total{source="logFiles"}`)) {
		t.Errorf("metrics endpoint lacks agent counters:\n%.2000s", mb)
	}

	// SIGKILL the agent while lines keep coming, restart it: nothing is lost,
	// and duplicates are bounded by what was queued but not yet checkpointed.
	const killTotal = 400
	done2 := make(chan struct{})
	go func() { defer close(done2); writeLines("kill", 0, killTotal, -1, -1) }()
	waitFor(t, "lines before the kill", 30*time.Second, func() bool { return written.Load() >= total+150 })
	ag.signal(syscall.SIGKILL)
	time.Sleep(500 * time.Millisecond)
	ag.start()
	<-done2
	waitFor(t, "all lines after SIGKILL", 60*time.Second, func() bool { return len(lines("kill")) >= killTotal })
	dups := 0
	for line, n := range lines("kill") {
		if n > 1 {
			dups += n - 1
			t.Logf("duplicate after SIGKILL: %q ×%d", line, n)
		}
	}
	if dups > 100 {
		t.Errorf("%d duplicates after SIGKILL; want them bounded by one poll's batch", dups)
	}

	// The rule changes: the agent follows within a poll interval, without restart.
	var live map[string]any
	json.Unmarshal(dcrJSON, &live)
	lf := live["properties"].(map[string]any)["dataSources"].(map[string]any)["logFiles"].([]any)[0].(map[string]any)
	lf["filePatterns"] = []string{filepath.Join(logDir, "*.log"), filepath.Join(logDir, "*.txt")}
	nb, _ := json.Marshal(live)
	os.WriteFile(filepath.Join(dcrDir, "agent-rule.json.tmp"), nb, 0o600)
	os.Rename(filepath.Join(dcrDir, "agent-rule.json.tmp"), filepath.Join(dcrDir, "agent-rule.json"))
	time.Sleep(time.Second)
	os.WriteFile(filepath.Join(logDir, "extra.txt"), []byte("txt-00001 from a pattern added live\n"), 0o644)
	waitFor(t, "line from the pattern added live", 30*time.Second, func() bool { return len(lines("txt")) == 1 })
	if n := len(lines("line")); n != total {
		t.Errorf("after reconfiguration %d distinct original lines; want %d", n, total)
	}

	// Sorted summary for the log.
	var cnt []string
	for k, v := range map[string]int{"line": len(lines("line")), "kill": len(lines("kill"))} {
		cnt = append(cnt, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(cnt)
	t.Logf("delivered distinct lines: %v; duplicates after SIGKILL: %d", cnt, dups)
}

// TestEnrolledMachine: enroll with a one-time token, associate a rule with the
// machine, and the agent (no client secret, no local rule files) fetches the
// rule and delivers with its managed identity; disabling the identity stops
// sending (and the status says so) without losing data, enabling resumes.
func TestEnrolledMachine(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server and the agent")
	}
	root := t.TempDir()
	e, _ := startEnv(t, root)
	logDir := filepath.Join(root, "logs")
	os.MkdirAll(logDir, 0o755)
	rule := e.createRule("machine-rule", []string{filepath.Join(logDir, "*.log")})

	cmd := exec.Command(e.bins.custos, "machine", "enroll-token", "--expires", "10m", "--data-dir", e.srv.dataDir)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("enroll-token: %v", err)
	}
	token := strings.TrimSpace(string(out))

	agentDir := filepath.Join(root, "agent")
	os.MkdirAll(agentDir, 0o700)
	cfgPath := filepath.Join(agentDir, "config.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`endpoint: %s
caFile: %s
stateDir: %s
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
`, e.adm.Endpoint, e.adm.CAFile, filepath.Join(agentDir, "state"))), 0o600)

	// Not enrolled yet: run refuses to start and says what to do.
	if out, err := exec.Command(e.bins.agent, "run", "--config", cfgPath).CombinedOutput(); err == nil || !strings.Contains(string(out), "enroll") {
		t.Fatalf("run before enrollment: %v %s", err, out)
	}
	name := fmt.Sprintf("e2e-machine-%d", os.Getpid())
	enrollCmd := exec.Command(e.bins.agent, "enroll", "--config", cfgPath, "--name", name)
	enrollCmd.Env = append(os.Environ(), "CUSTOS_ENROLLMENT_TOKEN="+token)
	if out, err := enrollCmd.CombinedOutput(); err != nil {
		t.Fatalf("enroll: %v %s", err, out)
	}
	if out, err := exec.Command(e.bins.agent, "enroll", "--config", cfgPath, "--token", token).CombinedOutput(); err == nil {
		t.Fatalf("second enroll without --force succeeded: %s", out)
	}
	var ident struct {
		ID          string `json:"id"`
		PrincipalID string `json:"principalId"`
	}
	ib, err := os.ReadFile(filepath.Join(agentDir, "state", "identity", "identity.json"))
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(ib, &ident)
	if fi, err := os.Stat(filepath.Join(agentDir, "state", "identity", "machine.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("machine key: %v %v", fi, err)
	}
	e.grantPublisher(rule.id, ident.PrincipalID, "0b6c3f5e-2d1a-4e8b-9c7d-112233445566")
	e.cli("machine", "associate", name, "--dcr", "machine-rule")

	ag := &agentProc{t: t, bin: e.bins.agent, config: cfgPath, log: logFile(t, root, "agent.log")}
	ag.start()
	t.Cleanup(func() { ag.signal(syscall.SIGTERM) })

	write := func(prefix string, n int) {
		f, err := os.OpenFile(filepath.Join(logDir, "app.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			fmt.Fprintf(f, "%s-%04d from the enrolled machine\n", prefix, i)
		}
		f.Close()
	}
	write("m", 100)
	waitFor(t, "lines sent with the machine identity", 60*time.Second, func() bool { return len(e.lines("m")) == 100 })
	for l, n := range e.lines("m") {
		if n != 1 {
			t.Errorf("%q arrived %d times", l, n)
		}
	}

	// Disable the identity: the agent stops sending and says so; nothing is lost.
	// (Performance counters keep flowing every second, so the agent meets the
	// refusal within the server's principal cache TTL.)
	e.cli("machine", "disable", name)
	statusPath := filepath.Join(agentDir, "state", "status.json")
	waitFor(t, "the agent to report the refused identity", 60*time.Second, func() bool {
		b, _ := os.ReadFile(statusPath)
		return bytes.Contains(b, []byte(`"identityError"`))
	})
	write("d", 50)
	time.Sleep(3 * time.Second)
	out, _ = exec.Command(e.bins.agent, "status", "--config", cfgPath).CombinedOutput()
	if !strings.Contains(string(out), "NOT SENDING") {
		t.Errorf("status does not say the agent is not sending:\n%s", out)
	}
	if n := len(e.lines("d")); n != 0 {
		t.Errorf("%d lines arrived while the identity was disabled", n)
	}
	e.cli("machine", "enable", name)
	waitFor(t, "lines queued while disabled", 60*time.Second, func() bool { return len(e.lines("d")) == 50 })
}
