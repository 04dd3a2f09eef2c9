// Package procstat reads a process's CPU time and memory from Linux's /proc
// for the benchmarks that measure a child process (bench/agent, bench/kube),
// and the machine's load average for every benchmark report.
package procstat

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// userHZ is the clock tick of /proc/<pid>/stat's utime and stime (USER_HZ,
// 100 on Linux).
const userHZ = 100

// CPUSeconds is the CPU time pid has used so far: utime+stime from
// /proc/<pid>/stat, in seconds (10 ms resolution).
func CPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name is in parentheses and may hold spaces: fields are
	// counted after the last ')'. There, state is [0], utime [11], stime [12].
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 > len(b) {
		return 0, fmt.Errorf("/proc/%d/stat: no command field", pid)
	}
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the command, want at least 13", pid, len(f))
	}
	u, err := strconv.ParseFloat(f[11], 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/stat utime: %w", pid, err)
	}
	s, err := strconv.ParseFloat(f[12], 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/stat stime: %w", pid, err)
	}
	return (u + s) / userHZ, nil
}

// StatusKB is one kB-valued line of /proc/<pid>/status (for example
// "VmHWM", the peak RSS, or "VmRSS"), or 0 when the process or the line
// is gone.
func StatusKB(pid int, key string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			if f := strings.Fields(v); len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// PeakRSSMB is pid's peak resident set size (VmHWM) in MB (2^20 bytes).
func PeakRSSMB(pid int) float64 { return float64(StatusKB(pid, "VmHWM")) / 1024 }

// LoadAvg is the 1, 5 and 15 minute load averages from /proc/loadavg,
// space-separated, or "unknown" when it cannot be read.
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
