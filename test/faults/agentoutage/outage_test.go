package agentoutage

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"custos/e2e"
)

var (
	outage = flag.Duration("outage", 2*time.Minute, "how long the server is unreachable (the issue asks for 10m; CI runs 2m)")
	rate   = flag.Int("rate", 100, "lines per second the tailed file receives")
)

func freePort(t *testing.T) int {
	t.Helper()
	addr, err := e2e.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

func build(t *testing.T, ctx context.Context, dir, pkg string) string {
	t.Helper()
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// TestAgentOutage: custos-agent tails app.log, written at -rate lines/s
// (each line unique and carrying its own content), and sends it to the
// server through a Linux data collection rule with a logFiles source. The
// server is stopped for -outage while the writer keeps writing (and rotates
// the file once by rename), then started again. Every line must arrive
// exactly once with its content, and the agent must not have dropped any
// batch from its on-disk queue.
func TestAgentOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the server and the agent for several minutes")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), *outage+10*time.Minute)
	defer cancel()
	root := t.TempDir()
	bins := filepath.Join(root, "bin")
	custos := build(t, ctx, bins, "custos/cmd/custos")
	agentBin := build(t, ctx, bins, "custos/cmd/custos-agent")

	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(root, "agent.log"))
			t.Logf("agent log tail:\n%s", tail(b, 4000))
		}
	})
	srv, c := e2e.StartServer(t, ctx, e2e.Options{Binary: custos, DataDir: filepath.Join(root, "server"), LogPath: filepath.Join(root, "server.log")})
	adm := c.Admin
	admJSON, err := os.ReadFile(filepath.Join(srv.DataDir(), "admin.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.GrantDataRoles(stepCtx(t, ctx, time.Minute)); err != nil {
		t.Fatalf("grant the data roles (bounded by 1 min): %v", err)
	}
	cols := []e2e.Column{{Name: "TimeGenerated", Type: "datetime"}, {Name: "RawData", Type: "string"}, {Name: "FilePath", Type: "string"}, {Name: "Computer", Type: "string"}}
	if err := c.CreateTable(stepCtx(t, ctx, time.Minute), "AgentApp_CL", cols); err != nil {
		t.Fatalf("create the table (bounded by 1 min): %v", err)
	}
	logDir := filepath.Join(root, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	rulePath := fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Insights/dataCollectionRules/outage-rule?api-version=2022-06-01",
		adm.SubscriptionID, adm.ResourceGroup)
	rule := map[string]any{
		"location": "local",
		"kind":     "Linux",
		"properties": map[string]any{
			"streamDeclarations": map[string]any{"Custom-AgentApp": map[string]any{"columns": cols}},
			"dataSources": map[string]any{
				"logFiles": []map[string]any{{"name": "app", "streams": []string{"Custom-AgentApp"},
					"filePatterns": []string{filepath.Join(logDir, "*.log")}, "format": "text"}},
			},
			"destinations": map[string]any{"logAnalytics": []map[string]string{{"name": "la", "workspaceResourceId": adm.WorkspaceResourceID()}}},
			"dataFlows": []map[string]any{
				{"streams": []string{"Custom-AgentApp"}, "destinations": []string{"la"}, "outputStream": "Custom-AgentApp_CL"},
			},
		},
	}
	if _, err := c.ARM(stepCtx(t, ctx, time.Minute), http.MethodPut, rulePath, rule); err != nil {
		t.Fatalf("create the data collection rule (bounded by 1 min): %v", err)
	}
	ruleJSON, err := c.ARM(stepCtx(t, ctx, time.Minute), http.MethodGet, rulePath, nil)
	if err != nil {
		t.Fatalf("read the data collection rule back (bounded by 1 min): %v", err)
	}

	agentDir := filepath.Join(root, "agent")
	dcrDir := filepath.Join(agentDir, "dcr.d")
	if err := os.MkdirAll(dcrDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dcrDir, "rule.json"), ruleJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	credFile := filepath.Join(agentDir, "credentials.json")
	if err := os.WriteFile(credFile, admJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	computer := fmt.Sprintf("outage-%d", os.Getpid())
	cfg := fmt.Sprintf(`endpoint: %s
caFile: %s
credentialsFile: %s
resourceId: /subscriptions/%s/resourceGroups/%s/providers/Microsoft.HybridCompute/machines/%s
computer: %s
stateDir: %s
dcr:
  dir: %s
  pollInterval: 500ms
syslog:
  udp: 127.0.0.1:%d
  tcp: 127.0.0.1:%d
files:
  pollInterval: 100ms
  readFromStart: true
delivery:
  minBackoff: 200ms
  maxBackoff: 5s
  flushInterval: 200ms
heartbeatInterval: 30s
`, adm.Endpoint, adm.CAFile, credFile, adm.SubscriptionID, adm.ResourceGroup, computer, computer,
		filepath.Join(agentDir, "state"), dcrDir, freePort(t), freePort(t))
	cfgPath := filepath.Join(agentDir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	agentLog, err := os.Create(filepath.Join(root, "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer agentLog.Close()
	agent := exec.Command(agentBin, "run", "--config", cfgPath)
	agent.Stdout, agent.Stderr = agentLog, agentLog
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	agentDone := make(chan error, 1)
	go func() { agentDone <- agent.Wait() }()
	t.Cleanup(func() {
		_ = agent.Process.Signal(syscall.SIGTERM)
		select {
		case <-agentDone:
		case <-time.After(30 * time.Second):
			t.Errorf("custos-agent did not exit within 30 s of SIGTERM; killing it")
			_ = agent.Process.Kill()
			<-agentDone
		}
	})

	// The writer: -rate lines/s, each "outage-%07d <content>", until stopped;
	// the file is rotated by rename once, in the middle of the outage.
	appLog := filepath.Join(logDir, "app.log")
	line := func(i int) string {
		return fmt.Sprintf("outage-%07d level=info user=u%d msg=%s", i, i%97, strings.Repeat(string(rune('a'+i%26)), 20+i%50))
	}
	var written atomic.Int64
	var rotate atomic.Bool
	stop := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		f, err := os.OpenFile(appLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Error(err)
			return
		}
		defer func() { f.Close() }()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		start := time.Now()
		for i := 0; ; {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if rotate.CompareAndSwap(true, false) {
				f.Close()
				if err := os.Rename(appLog, appLog+".1"); err != nil {
					t.Error(err)
					return
				}
				if f, err = os.OpenFile(appLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err != nil {
					t.Error(err)
					return
				}
			}
			// Catch up to the target rate (the ticker may lag on a busy machine).
			target := int(time.Since(start).Seconds() * float64(*rate))
			var buf strings.Builder
			for ; i < target; i++ {
				buf.WriteString(line(i))
				buf.WriteByte('\n')
			}
			if buf.Len() > 0 {
				if _, err := f.WriteString(buf.String()); err != nil {
					t.Error(err)
					return
				}
				written.Store(int64(i))
			}
		}
	}()
	var lastErr atomic.Value
	var lastCount atomic.Int64
	lastCount.Store(-1)
	// Every query gets its own deadline (queryTimeout): a count query that
	// never answers fails the wait that called it instead of hanging the test.
	count := func() int {
		_, rows, err := c.QueryRows(stepCtx(t, ctx, queryTimeout), `AgentApp_CL | where RawData startswith "outage-" | count`)
		if err != nil || len(rows) != 1 {
			lastErr.Store(fmt.Sprintf("count query: %v (%d rows)", err, len(rows)))
			return -1
		}
		n, _ := rows[0][0].(float64)
		lastCount.Store(int64(n))
		return int(n)
	}
	waitFor := func(what string, d time.Duration, cond func() bool) {
		t.Helper()
		start := time.Now()
		end := start.Add(d)
		for !cond() {
			if time.Now().After(end) {
				t.Fatalf("timed out after %v waiting for %s (%d lines written, last count %d); last query error: %v",
					time.Since(start).Round(time.Second), what, written.Load(), lastCount.Load(), lastErr.Load())
			}
			time.Sleep(time.Second)
		}
	}
	waitFor("delivery before the outage", 2*time.Minute, func() bool { return count() > 0 && written.Load() >= int64(20**rate) })

	if err := srv.Stop(60 * time.Second); err != nil {
		t.Fatalf("stop the server for the outage: %v", err)
	}
	down := time.Now()
	before := written.Load()
	time.Sleep(*outage / 2)
	rotate.Store(true)
	time.Sleep(*outage - *outage/2)
	during := written.Load() - before
	if err := srv.Start(ctx); err != nil { // bounded by the harness's StartTimeout (90 s)
		t.Fatalf("restart the server after the outage: %v", err)
	}
	t.Logf("server unreachable for %v; %d lines written meanwhile (%d lines/s)", time.Since(down).Round(time.Second), during, *rate)
	time.Sleep(20 * time.Second)
	close(stop)
	select {
	case <-writerDone:
	case <-time.After(30 * time.Second):
		t.Fatalf("the log writer did not stop within 30 s (%d lines written)", written.Load())
	}
	total := int(written.Load())
	if want := int64(outage.Seconds() * float64(*rate) * 0.9); during < want {
		t.Errorf("only %d lines were written during the outage (want about %d): the writer stalled", during, want)
	}

	caughtUp := time.Now()
	waitFor("every line after the outage", 2*time.Minute+*outage/2, func() bool { return count() >= total })
	t.Logf("%d lines; the agent caught up %v after the writer stopped", total, time.Since(caughtUp).Round(time.Second))
	_, dup, err := c.QueryRows(stepCtx(t, ctx, 2*queryTimeout), `AgentApp_CL | where RawData startswith "outage-" | summarize n = count() by RawData | where n != 1 | take 20`)
	if err != nil {
		t.Fatalf("duplicate check query (bounded by %v): %v", 2*queryTimeout, err)
	}
	if len(dup) != 0 {
		t.Fatalf("lines not delivered exactly once: %v", dup)
	}
	_, rows, err := c.QueryRows(stepCtx(t, ctx, 2*queryTimeout), `AgentApp_CL | where RawData startswith "outage-" | project RawData`)
	if err != nil {
		t.Fatalf("content check query (bounded by %v): %v", 2*queryTimeout, err)
	}
	got := make(map[string]bool, len(rows))
	for _, r := range rows {
		s, _ := r[0].(string)
		got[s] = true
	}
	if len(rows) != total {
		t.Errorf("%d rows; want %d", len(rows), total)
	}
	for i := range total {
		if !got[line(i)] {
			t.Fatalf("line %d is missing or its content changed: %q", i, line(i))
		}
	}
	// The agent's queue never dropped a batch and nothing went to dead
	// letters (its status file says so).
	raw, err := os.ReadFile(filepath.Join(agentDir, "state", "status.json"))
	if err != nil {
		t.Fatalf("agent status file: %v", err)
	}
	var st struct {
		Queue struct {
			Dropped uint64 `json:"dropped"`
		} `json:"queue"`
		Counters map[string]uint64 `json:"counters"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatalf("agent status: %v", err)
	}
	t.Logf("agent queue dropped %d, counters %v", st.Queue.Dropped, st.Counters)
	if st.Queue.Dropped != 0 || st.Counters["deadLetters"] != 0 {
		t.Errorf("the agent dropped %d batches and dead-lettered %d", st.Queue.Dropped, st.Counters["deadLetters"])
	}
}

// queryTimeout bounds each query the test sends (the SDK's HTTP client alone
// would wait 2 minutes per attempt).
const queryTimeout = 45 * time.Second

// stepCtx returns a child of ctx bounded by d, released at the test's end.
func stepCtx(t *testing.T, ctx context.Context, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(ctx, d)
	t.Cleanup(cancel)
	return c
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
