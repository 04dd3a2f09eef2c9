package gen

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"custos/bench/internal/procstat"
)

// Machine describes where a benchmark ran.
type Machine struct {
	NProc     int
	CPUModel  string
	MemTotal  string
	GoVersion string
	OS        string
	LoadStart string // /proc/loadavg when the run started
	// BusyStart is how many cores other work kept busy in the second before
	// the run (from /proc/stat), or -1 when unknown. It, not the load
	// average, decides whether a run was shared: this VM's load average sits
	// near 2 with nothing running (tasks in uninterruptible sleep count), and
	// a benchmark's own processes raise it during the run.
	BusyStart float64
}

// ReadMachine collects the machine description (Linux details from /proc).
func ReadMachine() Machine {
	m := Machine{NProc: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH,
		CPUModel: "unknown", MemTotal: "unknown"}
	if out, err := exec.Command("go", "env", "GOVERSION").Output(); err == nil {
		m.GoVersion = strings.TrimSpace(string(out))
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && k == "MemTotal" {
				var kb int64
				fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
				m.MemTotal = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
				break
			}
		}
		f.Close()
	}
	m.LoadStart = LoadAvg()
	m.BusyStart = busyCores(time.Second)
	return m
}

// busyCores samples /proc/stat's aggregate CPU line twice, d apart, and
// returns the cores that were not idle in between, or -1 when unknown.
func busyCores(d time.Duration) float64 {
	read := func() (busy, total float64, ok bool) {
		b, err := os.ReadFile("/proc/stat")
		if err != nil {
			return 0, 0, false
		}
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		if len(f) < 5 || f[0] != "cpu" {
			return 0, 0, false
		}
		for i, v := range f[1:] {
			var n float64
			fmt.Sscanf(v, "%f", &n)
			total += n
			if i != 3 && i != 4 { // idle and iowait
				busy += n
			}
		}
		return busy, total, true
	}
	b0, t0, ok0 := read()
	time.Sleep(d)
	b1, t1, ok1 := read()
	if !ok0 || !ok1 || t1 <= t0 {
		return -1
	}
	return (b1 - b0) / (t1 - t0) * float64(runtime.NumCPU())
}

// LoadAvg returns the 1, 5 and 15 minute load averages, or "unknown".
func LoadAvg() string { return procstat.LoadAvg() }

// Markdown renders the machine as a bullet list, with a warning when the
// machine was busy (load average above the CPU count).
func (m Machine) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "- CPUs: %d × %s\n- Memory: %s\n- Go: %s (%s)\n", m.NProc, m.CPUModel, m.MemTotal, m.GoVersion, m.OS)
	end := LoadAvg()
	fmt.Fprintf(&b, "- Load average (1/5/15 min): %s at start, %s at end\n", m.LoadStart, end)
	if m.BusyStart >= 0 {
		fmt.Fprintf(&b, "- CPU busy with other work in the second before the run: %.2f of %d cores\n", m.BusyStart, m.NProc)
	}
	if m.BusyStart > 0.25 {
		fmt.Fprintf(&b, "\n**Taken under load:** other work kept %.2f of the %d CPUs busy when the run started, so rates are lower "+
			"and latencies higher than on an idle machine. Rerun on a quiet machine before quoting these numbers.\n", m.BusyStart, m.NProc)
	}
	return b.String()
}

// Verdict renders a target check.
func Verdict(ok bool) string {
	if ok {
		return "meets"
	}
	return "**misses**"
}

// MB formats bytes as MB (10^6).
func MB(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

// Round keeps durations readable in tables.
func Round(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// WriteResult writes a results file, creating its directory.
func WriteResult(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), 0o644)
}
