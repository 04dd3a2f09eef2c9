package perf

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// maxProcFileBytes bounds what is read from one /proc file.
const maxProcFileBytes = 4 << 20

// CPUTimes are the jiffies of one /proc/stat cpu line.
type CPUTimes struct {
	User, Nice, System, Idle, IOWait, IRQ, SoftIRQ, Steal uint64
}

// Total is the sum of all states (guest time is already in user/nice).
func (c CPUTimes) Total() uint64 {
	return c.User + c.Nice + c.System + c.Idle + c.IOWait + c.IRQ + c.SoftIRQ + c.Steal
}

// Stat is what custos-agent reads from /proc/stat.
type Stat struct {
	Total        CPUTimes
	CPUs         map[string]CPUTimes // "0", "1", ...
	ProcsRunning uint64
	Processes    uint64 // forks since boot
}

// ParseStat parses /proc/stat.
func ParseStat(r io.Reader) (Stat, error) {
	s := Stat{CPUs: map[string]CPUTimes{}}
	seen := false
	err := eachLine(r, func(f []string) error {
		if len(f) == 0 {
			return nil
		}
		switch {
		case f[0] == "cpu" || strings.HasPrefix(f[0], "cpu"):
			if len(f) < 5 {
				return fmt.Errorf("short cpu line %q", f[0])
			}
			var v [8]uint64
			for i := 0; i < 8 && i+1 < len(f); i++ {
				n, err := strconv.ParseUint(f[i+1], 10, 64)
				if err != nil {
					return fmt.Errorf("cpu line %s: %w", f[0], err)
				}
				v[i] = n
			}
			t := CPUTimes{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]}
			if f[0] == "cpu" {
				s.Total, seen = t, true
			} else {
				id := f[0][3:]
				if _, err := strconv.Atoi(id); err != nil {
					return fmt.Errorf("bad cpu name %q", f[0])
				}
				if len(s.CPUs) < 4096 {
					s.CPUs[id] = t
				}
			}
		case f[0] == "procs_running" && len(f) > 1:
			s.ProcsRunning, _ = strconv.ParseUint(f[1], 10, 64)
		case f[0] == "processes" && len(f) > 1:
			s.Processes, _ = strconv.ParseUint(f[1], 10, 64)
		}
		return nil
	})
	if err == nil && !seen {
		err = errors.New("no cpu line")
	}
	return s, err
}

// ParseKeyValues parses "key value [kB]" files (/proc/meminfo, /proc/vmstat)
// into a map of numbers; kB values are converted to bytes.
func ParseKeyValues(r io.Reader) (map[string]uint64, error) {
	m := map[string]uint64{}
	err := eachLine(r, func(f []string) error {
		if len(f) < 2 || len(m) > 1024 {
			return nil
		}
		n, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return nil // not a numeric line; ignore
		}
		if len(f) > 2 && f[2] == "kB" {
			n *= 1024
		}
		m[strings.TrimSuffix(f[0], ":")] = n
		return nil
	})
	return m, err
}

// DiskStats are the counters of one /proc/diskstats line.
type DiskStats struct {
	Reads, ReadSectors, Writes, WriteSectors uint64
}

// ParseDiskstats parses /proc/diskstats by device name.
func ParseDiskstats(r io.Reader) (map[string]DiskStats, error) {
	m := map[string]DiskStats{}
	err := eachLine(r, func(f []string) error {
		if len(f) < 10 || len(m) > 16384 {
			return nil
		}
		var v [7]uint64
		for i := range v {
			n, err := strconv.ParseUint(f[3+i], 10, 64)
			if err != nil {
				return fmt.Errorf("diskstats %s: %w", f[2], err)
			}
			v[i] = n
		}
		m[f[2]] = DiskStats{Reads: v[0], ReadSectors: v[2], Writes: v[4], WriteSectors: v[6]}
		return nil
	})
	return m, err
}

// NetStats are the counters of one /proc/net/dev interface.
type NetStats struct {
	RxBytes, RxPackets, RxErrors, TxBytes, TxPackets, TxErrors, Collisions uint64
}

// ParseNetDev parses /proc/net/dev by interface name.
func ParseNetDev(r io.Reader) (map[string]NetStats, error) {
	m := map[string]NetStats{}
	err := eachLine(r, func(f []string) error {
		if len(f) == 0 || !strings.HasSuffix(f[0], ":") && !strings.Contains(f[0], ":") {
			return nil // header lines
		}
		// "eth0:123" (no space after the colon) happens with large counters.
		name, first, _ := strings.Cut(f[0], ":")
		vals := f[1:]
		if first != "" {
			vals = append([]string{first}, vals...)
		}
		if len(vals) < 16 || len(m) > 4096 {
			return nil
		}
		var v [16]uint64
		for i := range v {
			n, err := strconv.ParseUint(vals[i], 10, 64)
			if err != nil {
				return fmt.Errorf("net/dev %s: %w", name, err)
			}
			v[i] = n
		}
		m[name] = NetStats{RxBytes: v[0], RxPackets: v[1], RxErrors: v[2], TxBytes: v[8], TxPackets: v[9], TxErrors: v[10], Collisions: v[13]}
		return nil
	})
	return m, err
}

// Mount is one /proc/self/mounts line.
type Mount struct {
	Device, Point, FSType string
}

// pseudoFS are file system types that hold no disk data.
var pseudoFS = map[string]bool{
	"proc": true, "sysfs": true, "devpts": true, "tmpfs": true, "devtmpfs": true, "cgroup": true, "cgroup2": true,
	"mqueue": true, "securityfs": true, "debugfs": true, "tracefs": true, "pstore": true, "bpf": true, "autofs": true,
	"hugetlbfs": true, "fusectl": true, "configfs": true, "binfmt_misc": true, "nsfs": true, "rpc_pipefs": true,
	"squashfs": true, "ramfs": true, "efivarfs": true, "selinuxfs": true, "fuse.lxcfs": true, "fuse.portal": true,
	"overlay": false, "nfsd": true,
}

// ParseMounts parses /proc/self/mounts and keeps file systems that hold data,
// once per mount point; octal escapes (\040) in paths are decoded.
func ParseMounts(r io.Reader) ([]Mount, error) {
	var out []Mount
	seen := map[string]bool{}
	err := eachLine(r, func(f []string) error {
		if len(f) < 3 || pseudoFS[f[2]] || len(out) > 1024 {
			return nil
		}
		m := Mount{Device: unescapeMount(f[0]), Point: unescapeMount(f[1]), FSType: f[2]}
		if seen[m.Point] {
			return nil
		}
		seen[m.Point] = true
		out = append(out, m)
		return nil
	})
	return out, err
}

func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ParseUptime parses /proc/uptime (seconds since boot).
func ParseUptime(r io.Reader) (float64, error) {
	b, err := io.ReadAll(io.LimitReader(r, 4096))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, errors.New("empty uptime")
	}
	return strconv.ParseFloat(f[0], 64)
}

func eachLine(r io.Reader, fn func([]string) error) error {
	sc := bufio.NewScanner(io.LimitReader(r, maxProcFileBytes))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if err := fn(strings.Fields(string(bytes.TrimSpace(sc.Bytes())))); err != nil {
			return err
		}
	}
	return sc.Err()
}
