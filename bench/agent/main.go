// Command agent benchmarks custos-agent's syslog path and footprint as a
// child process (issue 8): `go run ./bench/agent`.
//
// It builds ./cmd/custos-agent, starts it with a data collection rule file
// that collects every syslog facility and level plus the basic Linux
// performance counters, and points it at a counting HTTPS ingestion sink in
// this process (a token endpoint and POST …/streams/… that decompresses each
// batch, counts its records and answers 204), so that the machine's CPU goes
// to the agent and not to a server. Each scenario sends RFC 5424 messages at
// a fixed rate for a fixed time over UDP (or TCP) from this process, then
// waits until every record reached the sink, and reports the agent's CPU
// seconds (utime+stime from /proc/<pid>/stat) over the sending window, the
// share of one core, its peak RSS (VmHWM) and how many messages were shed.
//
// The scenarios: "sustained" (default 20,000 events/s for 20 s over UDP and
// TCP) and "footprint" (1,000 events/s for 60 s plus the performance
// counters every 10 s). Flags change rates and durations; -out appends a
// Markdown table to a results file.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"custos/bench/internal/procstat"
	"custos/bench/internal/sink"
)

func main() {
	var (
		agentBin   = flag.String("agent", "", "custos-agent binary (default: go build ./cmd/custos-agent)")
		highRate   = flag.Int("rate", 20000, "events/s of the sustained scenario")
		highSecs   = flag.Int("secs", 20, "seconds of the sustained scenario")
		lowRate    = flag.Int("footprint-rate", 1000, "events/s of the footprint scenario")
		lowSecs    = flag.Int("footprint-secs", 60, "seconds of the footprint scenario")
		perfEvery  = flag.Int("perf-every", 10, "samplingFrequencyInSeconds of the performance counters")
		only       = flag.String("only", "", "run only this scenario: sustained-udp, sustained-tcp or footprint")
		out        = flag.String("out", "", "append a Markdown results table to this file")
		msgBytes   = flag.Int("msg-bytes", 160, "approximate size of one syslog message")
		keepAgentD = flag.Bool("keep", false, "keep the agent's temporary directory")
		profileDir = flag.String("profile", "", "write the agent's CPU profile of each scenario to this directory (<scenario>.pprof)")
	)
	flag.Parse()
	log.SetFlags(0)
	dir, err := os.MkdirTemp("", "bench-agent")
	if err != nil {
		log.Fatal(err)
	}
	if !*keepAgentD {
		defer os.RemoveAll(dir)
	}
	bin := *agentBin
	if bin == "" {
		bin = filepath.Join(dir, "custos-agent")
		if b, err := exec.Command("go", "build", "-o", bin, "./cmd/custos-agent").CombinedOutput(); err != nil {
			log.Fatalf("go build ./cmd/custos-agent: %v\n%s", err, b)
		}
	}
	sk, err := sink.Start(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer sk.Close()

	type scenario struct {
		name    string
		network string
		rate    int
		secs    int
	}
	scenarios := []scenario{
		{"sustained-udp", "udp", *highRate, *highSecs},
		{"sustained-tcp", "tcp", *highRate, *highSecs},
		{"footprint", "udp", *lowRate, *lowSecs},
	}
	var results []result
	for _, sc := range scenarios {
		if *only != "" && *only != sc.name {
			continue
		}
		log.Printf("%s: %d events/s over %s for %d s …", sc.name, sc.rate, sc.network, sc.secs)
		prof := ""
		if *profileDir != "" {
			prof, _ = filepath.Abs(filepath.Join(*profileDir, sc.name+".pprof"))
		}
		r, err := run(bin, filepath.Join(dir, sc.name), sk, sc.name, sc.network, sc.rate, sc.secs, *perfEvery, *msgBytes, prof)
		if err != nil {
			log.Fatalf("%s: %v", sc.name, err)
		}
		log.Print(r.line())
		results = append(results, r)
	}
	if *out != "" {
		var b strings.Builder
		fmt.Fprintf(&b, "\n### Run of %s (%s, %d CPUs, load average at the end: %s)\n\n", time.Now().UTC().Format(time.RFC3339),
			runtime.Version(), runtime.NumCPU(), procstat.LoadAvg())
		b.WriteString("| scenario | sent | delivered | shed | kernel drops | rate sent (ev/s) | agent CPU s | % of one core | CPU µs/event | peak RSS MB | drain s |\n")
		b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, r := range results {
			fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %.0f | %.2f | %.1f | %.1f | %.1f | %.1f |\n", r.name, r.sent, r.delivered, r.shed, r.kernelDrops,
				r.rate, r.cpu, 100*r.cpu/r.wall, 1e6*r.cpu/float64(max(r.sent, 1)), r.rssMB, r.drain)
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
	name                  string
	sent, delivered, shed int64
	kernelDrops           int64   // datagrams the kernel dropped (receive buffer full)
	wall, cpu             float64 // seconds of the sending window
	rate                  float64
	rssMB                 float64
	drain                 float64
}

func (r result) line() string {
	return fmt.Sprintf("%s: sent %d (%.0f/s), delivered %d, shed %d, kernel drops %d; agent CPU %.2f s over %.1f s = %.1f%% of one core (%.1f µs/event); peak RSS %.1f MB; drained in %.1f s",
		r.name, r.sent, r.rate, r.delivered, r.shed, r.kernelDrops, r.cpu, r.wall, 100*r.cpu/r.wall, 1e6*r.cpu/float64(max(r.sent, 1)), r.rssMB, r.drain)
}

// The rule: every syslog facility and level, and the Azure portal's basic
// Linux performance counters.
const ruleJSON = `{"name":"bench","properties":{"immutableId":"dcr-00000000000000000000000000bench",
 "dataSources":{
  "syslog":[{"name":"sys","streams":["Microsoft-Syslog"],"facilityNames":["*"],"logLevels":["*"]}],
  "performanceCounters":[{"name":"perf","streams":["Microsoft-Perf"],"samplingFrequencyInSeconds":%d,"counterSpecifiers":[
   "\\Processor(*)\\%% Processor Time","\\Processor(*)\\%% Idle Time","\\Processor(*)\\%% User Time","\\Processor(*)\\%% Privileged Time",
   "\\Memory(*)\\Available MBytes Memory","\\Memory(*)\\%% Used Memory","\\Memory(*)\\%% Used Swap Space",
   "\\Logical Disk(*)\\%% Free Space","\\Logical Disk(*)\\Free Megabytes","\\Logical Disk(*)\\Disk Transfers/sec",
   "\\Logical Disk(*)\\Disk Read Bytes/sec","\\Logical Disk(*)\\Disk Write Bytes/sec",
   "\\Network(*)\\Total Bytes Transmitted","\\Network(*)\\Total Bytes Received","\\System(*)\\Uptime","\\System(*)\\Processes"]}]},
 "destinations":{"logAnalytics":[{"name":"la","workspaceResourceId":"/subscriptions/s/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/w"}]},
 "dataFlows":[{"streams":["Microsoft-Syslog"],"destinations":["la"]},{"streams":["Microsoft-Perf"],"destinations":["la"]}]}}`

func run(bin, dir string, s *sink.Sink, name, network string, rate, secs, perfEvery, msgBytes int, profile string) (result, error) {
	r := result{name: name}
	dcrDir := filepath.Join(dir, "dcr.d")
	if err := os.MkdirAll(dcrDir, 0o700); err != nil {
		return r, err
	}
	if err := os.WriteFile(filepath.Join(dcrDir, "bench.json"), []byte(fmt.Sprintf(ruleJSON, perfEvery)), 0o600); err != nil {
		return r, err
	}
	creds := filepath.Join(dir, "credentials.json")
	os.WriteFile(creds, []byte(`{"tenantId":"bench","clientId":"bench","clientSecret":"bench"}`), 0o600)
	udpPort, tcpPort := freePort("udp"), freePort("tcp")
	cfg := fmt.Sprintf(`endpoint: %s
caFile: %s
credentialsFile: %s
resourceId: /subscriptions/s/resourceGroups/rg/providers/Microsoft.HybridCompute/machines/bench-host
computer: bench-host
stateDir: %s
dcr:
  dir: %s
syslog:
  udp: 127.0.0.1:%d
  tcp: 127.0.0.1:%d
heartbeatInterval: 60s
`, s.URL, s.CAFile, creds, filepath.Join(dir, "state"), dcrDir, udpPort, tcpPort)
	cfgPath := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfgPath, []byte(cfg), 0o600)
	logf, _ := os.Create(filepath.Join(dir, "agent.log"))
	defer logf.Close()
	args := []string{"run", "--config", cfgPath}
	if profile != "" {
		args = append(args, "--cpuprofile", profile)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return r, err
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	pid := cmd.Process.Pid
	addr := fmt.Sprintf("127.0.0.1:%d", map[string]int{"udp": udpPort, "tcp": tcpPort}[network])
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", tcpPort), time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			return r, fmt.Errorf("agent did not start; see %s", logf.Name())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // startup (first perf read, first token) is not measured
	base := s.Records()
	conn, err := net.Dial(network, addr)
	if err != nil {
		return r, err
	}
	defer conn.Close()
	w := bufio.NewWriterSize(conn, 64<<10)
	pad := strings.Repeat("x", max(msgBytes-110, 0))
	cpu0, err := procstat.CPUSeconds(pid)
	if err != nil {
		return r, err
	}
	start := time.Now()
	var sent int64
	var msg []byte
	for tick := 1; ; tick++ {
		// Pace in 10 ms steps: send what the rate allows so far.
		due := time.Duration(tick) * 10 * time.Millisecond
		if due > time.Duration(secs)*time.Second {
			break
		}
		want := int64(rate) * int64(due) / int64(time.Second)
		for ; sent < want; sent++ {
			msg = msg[:0]
			msg = append(msg, "<134>1 "...)
			msg = time.Now().UTC().AppendFormat(msg, time.RFC3339Nano)
			msg = append(msg, " web-01 benchapp 4242 ID47 - request "...)
			msg = strconv.AppendInt(msg, sent, 10)
			msg = append(msg, " served in 12 ms user=alice path=/api/v1/items "...)
			msg = append(msg, pad...)
			if network == "tcp" {
				w.WriteString(strconv.Itoa(len(msg)))
				w.WriteByte(' ')
				w.Write(msg)
			} else if _, err := conn.Write(msg); err != nil {
				return r, err
			}
		}
		if network == "tcp" {
			if err := w.Flush(); err != nil {
				return r, err
			}
		}
		if d := time.Until(start.Add(due)); d > 0 {
			time.Sleep(d)
		}
	}
	r.wall = time.Since(start).Seconds()
	cpu1, _ := procstat.CPUSeconds(pid)
	r.cpu = cpu1 - cpu0
	r.sent = sent
	r.rate = float64(sent) / r.wall
	// Wait for delivery (the sink counts Syslog and Perf records).
	drainStart := time.Now()
	for time.Since(drainStart) < 120*time.Second {
		st := status(filepath.Join(dir, "state", "status.json"))
		lost := int64(0)
		if network == "udp" {
			lost = max(udpDrops(udpPort), 0)
		}
		if int64(st.Counters["syslogReceived"]+st.Counters["syslogShed"])+lost >= sent && st.Queue.Entries == 0 &&
			st.Counters["recordsSent"] >= st.Counters["syslogReceived"]-st.Counters["syslogShed"] && time.Since(drainStart) > 2500*time.Millisecond {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	r.drain = time.Since(drainStart).Seconds()
	st := status(filepath.Join(dir, "state", "status.json"))
	r.shed = int64(st.Counters["syslogShed"])
	if network == "udp" {
		r.kernelDrops = udpDrops(udpPort)
	}
	r.delivered = s.Records() - base - int64(st.Counters["perfSamples"])
	r.rssMB = procstat.PeakRSSMB(pid)
	return r, nil
}

type agentStatus struct {
	Queue    struct{ Entries int }
	Counters map[string]uint64
}

func status(path string) agentStatus {
	var st agentStatus
	b, err := os.ReadFile(path)
	if err == nil {
		json.Unmarshal(b, &st)
	}
	return st
}

// udpDrops reads the drop counter of the UDP socket bound to port from
// /proc/net/udp (the last column).
func udpDrops(port int) int64 {
	b, _ := os.ReadFile("/proc/net/udp")
	want := fmt.Sprintf(":%04X", port)
	for _, l := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) > 12 && strings.HasSuffix(f[1], want) {
			n, _ := strconv.ParseInt(f[len(f)-1], 10, 64)
			return n
		}
	}
	return -1
}

func freePort(network string) int {
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			log.Fatal(err)
		}
		defer pc.Close()
		return pc.LocalAddr().(*net.UDPAddr).Port
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
