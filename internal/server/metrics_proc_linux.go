package server

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is the kernel's USER_HZ, the unit of the CPU times in /proc; it is
// 100 on every Linux architecture Go supports.
const userHZ = 100

// writeProcessMetrics writes the process collector's metrics from /proc.
// Values that cannot be read are left out rather than reported as zero.
func writeProcessMetrics(w *bufio.Writer, fallbackStart time.Time) {
	stat, err := os.ReadFile("/proc/self/stat")
	var fields []string
	if err == nil {
		// The command name (field 2) may contain spaces; fields after it
		// start behind the last ')'.
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 {
			fields = strings.Fields(string(stat[i+1:]))
		}
	}
	// fields[0] is field 3 (state) of proc(5).
	num := func(field int) (float64, bool) {
		i := field - 3
		if i < 0 || i >= len(fields) {
			return 0, false
		}
		v, err := strconv.ParseFloat(fields[i], 64)
		return v, err == nil
	}
	utime, ok1 := num(14)
	stime, ok2 := num(15)
	if ok1 && ok2 {
		counter(w, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", (utime+stime)/userHZ)
	}
	if v, ok := num(23); ok {
		gauge(w, "process_virtual_memory_bytes", "Virtual memory size in bytes.", v)
	}
	if v, ok := num(24); ok {
		gauge(w, "process_resident_memory_bytes", "Resident memory size in bytes.", v*float64(os.Getpagesize()))
	}
	start := float64(fallbackStart.UnixNano()) / 1e9
	if ticks, ok := num(22); ok {
		if bt, ok := bootTime(); ok {
			start = bt + ticks/userHZ
		}
	}
	gauge(w, "process_start_time_seconds", "Start time of the process since unix epoch in seconds.", start)
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		gauge(w, "process_open_fds", "Number of open file descriptors.", float64(len(ents)))
	}
	if lim, ok := maxFDs(); ok {
		gauge(w, "process_max_fds", "Maximum number of open file descriptors.", lim)
	}
}

func bootTime() (float64, bool) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "btime "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v, err == nil
		}
	}
	return 0, false
}

func maxFDs() (float64, bool) {
	data, err := os.ReadFile("/proc/self/limits")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				v, err := strconv.ParseFloat(f[0], 64)
				return v, err == nil
			}
		}
	}
	return 0, false
}
