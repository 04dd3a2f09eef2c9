package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// agentConfig writes a `custos-agent run` configuration that uses the
// bootstrap admin's credentials (admJSON) and the rule JSON in a dcr.d
// directory, and returns the configuration path and the TCP and UDP syslog
// ports.
func agentConfig(t *testing.T, e *env, dir string, admJSON, ruleJSON []byte, computer string, extra string) (cfgPath string, tcpPort, udpPort int) {
	t.Helper()
	dcrDir := filepath.Join(dir, "dcr.d")
	if err := os.MkdirAll(dcrDir, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dcrDir, "rule.json"), ruleJSON, 0o600)
	credFile := filepath.Join(dir, "credentials.json")
	os.WriteFile(credFile, admJSON, 0o600)
	tcpPort, udpPort = freePort(t, "tcp"), freePort(t, "udp")
	resourceID := "/subscriptions/" + e.adm.SubscriptionID + "/resourceGroups/" + e.adm.ResourceGroup + "/providers/Microsoft.HybridCompute/machines/" + computer
	cfg := fmt.Sprintf(`endpoint: %s
caFile: %s
credentialsFile: %s
resourceId: %s
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
  maxBackoff: 2s
  flushInterval: 200ms
heartbeatInterval: 5s
%s`, e.adm.Endpoint, e.adm.CAFile, credFile, resourceID, computer, filepath.Join(dir, "state"), dcrDir, udpPort, tcpPort, extra)
	cfgPath = filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, tcpPort, udpPort
}

func waitTCP(t *testing.T, port int) {
	t.Helper()
	waitFor(t, "agent syslog listener", 20*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// rsyslogd finds Debian's rsyslogd (test/install-rsyslog.sh installs it).
func rsyslogd(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("rsyslogd"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/rsyslogd"); err == nil {
		return "/usr/sbin/rsyslogd"
	}
	t.Fatal("rsyslogd not found: run test/install-rsyslog.sh (apt-get install -y rsyslog)")
	return ""
}

// TestRsyslogForwarding runs Debian's real rsyslogd as an unprivileged child
// process with a generated configuration, as an administrator would point
// it at the agent: messages written by logger(1) to rsyslog's local socket
// (imuxsock) are forwarded over TCP in RFC 5424 (octet-counted framing),
// and messages received on rsyslog's UDP input are forwarded over UDP in
// the traditional RFC 3164 format. Rows must arrive in Syslog with the
// facility, severity, host, program and PID that logger gave them.
func TestRsyslogForwarding(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server, the agent and rsyslogd")
	}
	rsyslog := rsyslogd(t)
	loggerPath, err := exec.LookPath("logger")
	if err != nil {
		t.Fatalf("logger not found (apt-get install -y bsdutils): %v", err)
	}
	root := t.TempDir()
	e, admJSON := startEnv(t, root)
	rule := e.createRule("rsyslog-rule", []string{filepath.Join(root, "none", "*.log")})
	e.grantPublisher(rule.id, jwtClaim(e.token("https://management.azure.com/.default"), "oid"), "5a7e0c1d-9b2f-4c3e-8d4a-6f5e7a8b9c01")

	agentDir := filepath.Join(root, "agent")
	computer := fmt.Sprintf("rsyslog-agent-%d", os.Getpid())
	cfgPath, tcpPort, udpPort := agentConfig(t, e, agentDir, admJSON, rule.json, computer, "")
	ag := &agentProc{t: t, bin: e.bins.agent, config: cfgPath, log: logFile(t, root, "agent.log")}
	ag.start()
	t.Cleanup(func() { ag.signal(syscall.SIGTERM) })
	waitTCP(t, tcpPort)

	// rsyslog, unprivileged: no kernel log, no system socket, its own work
	// directory; a local socket and a UDP input on loopback.
	rdir := filepath.Join(root, "rsyslog")
	os.MkdirAll(filepath.Join(rdir, "work"), 0o700)
	sock := filepath.Join(rdir, "log.sock")
	rsUDP := freePort(t, "udp")
	const rsHost = "rsyslog-src-host"
	conf := fmt.Sprintf(`global(workDirectory=%q localHostname=%q)
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket=%q CreatePath="on")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="%d")
if $syslogfacility-text == 'local3' or $syslogfacility-text == 'auth' then {
  action(type="omfwd" target="127.0.0.1" port="%d" protocol="tcp" TCP_Framing="octet-counted" Template="RSYSLOG_SyslogProtocol23Format")
}
if $syslogfacility-text == 'local4' or $syslogfacility-text == 'user' then {
  action(type="omfwd" target="127.0.0.1" port="%d" protocol="udp" Template="RSYSLOG_TraditionalForwardFormat")
}
`, filepath.Join(rdir, "work"), rsHost, sock, rsUDP, tcpPort, udpPort)
	confPath := filepath.Join(rdir, "rsyslog.conf")
	os.WriteFile(confPath, []byte(conf), 0o600)
	if out, err := exec.Command(rsyslog, "-N1", "-f", confPath).CombinedOutput(); err != nil {
		t.Fatalf("rsyslogd -N1 rejects the generated configuration: %v\n%s", err, out)
	}
	rlog := logFile(t, root, "rsyslogd.log")
	rs := exec.Command(rsyslog, "-n", "-f", confPath, "-i", filepath.Join(rdir, "rsyslogd.pid"))
	rs.Stdout, rs.Stderr = rlog, rlog
	if err := rs.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rs.Process.Signal(syscall.SIGTERM); rs.Wait() })
	waitFor(t, "rsyslog's socket", 20*time.Second, func() bool { _, err := os.Stat(sock); return err == nil })

	marker := fmt.Sprintf("rs-%d", time.Now().UnixNano())
	logger := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(loggerPath, args...).CombinedOutput(); err != nil {
			t.Fatalf("logger %v: %v %s", args, err, out)
		}
	}
	// Through the local socket → RFC 5424 over TCP.
	for i := range 10 {
		logger("-u", sock, "-p", "local3.warning", "-t", "rsprog", "--id=4242", fmt.Sprintf("%s 5424 message %d", marker, i))
	}
	logger("-u", sock, "-p", "auth.err", "-t", "sshd-like", "--id=77", marker+" auth failure for root")
	logger("-u", sock, "-p", "local3.debug", "-t", "rsprog", marker+" debug is filtered by the rule")
	// Through rsyslog's UDP input → RFC 3164 over UDP.
	for i := range 10 {
		logger("--server", "127.0.0.1", "--port", fmt.Sprint(rsUDP), "--udp", "--rfc3164", "-p", "user.notice", "-t", "oldprog",
			"--id=999", fmt.Sprintf("%s 3164 message %d", marker, i))
		time.Sleep(5 * time.Millisecond)
	}

	count := func(where string) int {
		return e.count(fmt.Sprintf(`Syslog | where SyslogMessage startswith "%s" %s`, marker, where))
	}
	waitFor(t, "forwarded syslog rows", 60*time.Second, func() bool { return count("") >= 21 })
	time.Sleep(time.Second) // anything extra (duplicates, the filtered debug message) would arrive by now
	if n := count(""); n != 21 {
		t.Errorf("%d rows; want 21 (10 RFC 5424, 1 auth, 10 RFC 3164; the debug message filtered)", n)
	}
	if n := count(`and Facility == "local3" and SeverityLevel == "warning" and ProcessName == "rsprog" and ProcessID == 4242 and HostName == "` + rsHost + `"`); n != 10 {
		t.Errorf("RFC 5424 rows with facility/severity/program/pid/host: %d; want 10", n)
	}
	if n := count(`and Facility == "auth" and SeverityLevel == "err" and ProcessName == "sshd-like" and ProcessID == 77`); n != 1 {
		rows := e.query(fmt.Sprintf(`Syslog | where SyslogMessage startswith "%s" and ProcessName == "sshd-like" | project Facility, SeverityLevel, ProcessID`, marker))
		t.Errorf("auth row: %d (%v); want 1", n, rows)
	}
	// logger --server writes its own host name into the packet; rsyslog keeps it.
	loggerHost, _ := os.Hostname()
	if i := strings.IndexByte(loggerHost, '.'); i > 0 {
		loggerHost = loggerHost[:i]
	}
	if n := count(`and Facility == "user" and SeverityLevel == "notice" and ProcessName == "oldprog" and ProcessID == 999 and HostName == "` + loggerHost + `"`); n != 10 {
		rows := e.query(fmt.Sprintf(`Syslog | where SyslogMessage startswith "%s 3164" | project Facility, SeverityLevel, ProcessName, ProcessID, HostName, SyslogMessage | take 3`, marker))
		t.Errorf("RFC 3164 rows with facility/severity/program/pid/host: %d; want 10; sample %v", n, rows)
	}
	rows := e.query(fmt.Sprintf(`Syslog | where SyslogMessage == "%s 5424 message 3" | project Computer, _ResourceId, HostIP, CollectorHostName`, marker))
	if len(rows) != 1 || rows[0][0] != rsHost || !strings.HasSuffix(fmt.Sprint(rows[0][1]), "/machines/"+computer) || rows[0][2] != "127.0.0.1" {
		t.Errorf("Computer/_ResourceId/HostIP: %v", rows)
	}
}

// TestOneMinuteOutage stops the server for a full 60 s while numbered lines
// keep being appended to a log file and syslog messages keep arriving, then
// restarts it: every line and message arrives exactly once, with its content.
func TestOneMinuteOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("takes over a minute: builds and runs the server and the agent, stops the server for 60 s")
	}
	root := t.TempDir()
	e, admJSON := startEnv(t, root)
	logDir := filepath.Join(root, "logs")
	os.MkdirAll(logDir, 0o755)
	rule := e.createRule("outage-rule", []string{filepath.Join(logDir, "*.log")})
	e.grantPublisher(rule.id, jwtClaim(e.token("https://management.azure.com/.default"), "oid"), "7c2d4e6f-8a9b-4c1d-9e2f-3a4b5c6d7e80")
	agentDir := filepath.Join(root, "agent")
	computer := fmt.Sprintf("outage-agent-%d", os.Getpid())
	cfgPath, tcpPort, _ := agentConfig(t, e, agentDir, admJSON, rule.json, computer, "")
	ag := &agentProc{t: t, bin: e.bins.agent, config: cfgPath, log: logFile(t, root, "agent.log")}
	ag.start()
	t.Cleanup(func() { ag.signal(syscall.SIGTERM) })
	waitTCP(t, tcpPort)

	// ~20 lines/s and ~10 syslog messages/s for ~90 s: 30 s before, 60 s during
	// the outage; the writer rotates the file by rename in the middle.
	appLog := filepath.Join(logDir, "app.log")
	var written, sent atomic.Int64
	stop := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		f, err := os.OpenFile(appLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Error(err)
			return
		}
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", tcpPort))
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		for i := 0; ; i++ {
			select {
			case <-stop:
				f.Close()
				return
			default:
			}
			if i == 1000 {
				f.Close()
				os.Rename(appLog, appLog+".1")
				f, _ = os.OpenFile(appLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
			}
			fmt.Fprintf(f, "out-%06d content %s\n", i, strings.Repeat("y", i%40))
			written.Add(1)
			if i%2 == 0 {
				msg := fmt.Sprintf("<158>1 %s %s outageapp 1 - - outage-syslog-%06d", time.Now().UTC().Format(time.RFC3339Nano), computer, i/2)
				fmt.Fprintf(c, "%d %s", len(msg), msg)
				sent.Add(1)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	waitFor(t, "lines before the outage", 60*time.Second, func() bool { return written.Load() >= 300 })
	waitFor(t, "delivery before the outage", 60*time.Second, func() bool { return len(e.lines("out")) > 0 })
	e.srv.stop()
	down := time.Now()
	before := written.Load()
	time.Sleep(60 * time.Second)
	during := written.Load() - before
	e.srv.start()
	t.Logf("server down for %v; %d lines written meanwhile", time.Since(down).Round(time.Second), during)
	time.Sleep(5 * time.Second)
	close(stop)
	<-writerDone
	total, msgs := int(written.Load()), int(sent.Load())

	waitFor(t, "every line after the outage", 120*time.Second, func() bool { return len(e.lines("out")) >= total })
	got := e.lines("out")
	for i := range total {
		want := fmt.Sprintf("out-%06d content %s", i, strings.Repeat("y", i%40))
		if got[want] != 1 {
			t.Errorf("line %d arrived %d times", i, got[want])
		}
	}
	if len(got) != total {
		t.Errorf("%d distinct lines; want %d", len(got), total)
	}
	waitFor(t, "every syslog message after the outage", 60*time.Second, func() bool {
		return e.count(`Syslog | where SyslogMessage startswith "outage-syslog-"`) >= msgs
	})
	rows := e.query(`Syslog | where SyslogMessage startswith "outage-syslog-" | summarize n = count() by SyslogMessage | where n != 1`)
	if len(rows) != 0 {
		t.Errorf("syslog messages not delivered exactly once: %v", rows)
	}
	if n := e.count(`Syslog | where SyslogMessage startswith "outage-syslog-"`); n != msgs {
		t.Errorf("%d syslog rows; want %d", n, msgs)
	}
	if during < 1000 {
		t.Errorf("only %d lines were written during the outage; the writer stalled", during)
	}
}
