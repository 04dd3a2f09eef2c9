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
)

// Machine describes where a benchmark ran.
type Machine struct {
	NProc     int
	CPUModel  string
	MemTotal  string
	GoVersion string
	OS        string
	LoadStart string // /proc/loadavg when the run started
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
	return m
}

// LoadAvg returns the 1, 5 and 15 minute load averages, or "unknown".
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// Markdown renders the machine as a bullet list, with a warning when the
// machine was busy (load average above the CPU count).
func (m Machine) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "- CPUs: %d × %s\n- Memory: %s\n- Go: %s (%s)\n", m.NProc, m.CPUModel, m.MemTotal, m.GoVersion, m.OS)
	end := LoadAvg()
	fmt.Fprintf(&b, "- Load average (1/5/15 min): %s at start, %s at end\n", m.LoadStart, end)
	var l1 float64
	fmt.Sscanf(m.LoadStart, "%f", &l1)
	var l2 float64
	fmt.Sscanf(end, "%f", &l2)
	if max(l1, l2) > float64(m.NProc) {
		fmt.Fprintf(&b, "\n**Taken under load:** the load average exceeded the %d CPUs (other work shared the machine), so rates are lower "+
			"and latencies higher than on an idle machine. Rerun on a quiet machine before quoting these numbers.\n", m.NProc)
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
