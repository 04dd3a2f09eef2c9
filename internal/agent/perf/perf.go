package perf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// FSStats is the usage of one mounted file system.
type FSStats struct {
	TotalBytes, AvailBytes, TotalInodes, FreeInodes uint64
}

// Reader takes snapshots of the host's counters. The zero value reads the
// real /proc and calls statfs(2). Safe for concurrent use.
type Reader struct {
	Root   string                             // prefix of /proc and /sys; "" → "/"
	Statfs func(path string) (FSStats, error) // nil → statfs(2)
}

// MountUsage is one data-bearing mount with its usage.
type MountUsage struct {
	Mount
	FSStats
	DiskName string // /proc/diskstats device name, "" if unknown
}

// Snapshot is one reading of the host's counters.
type Snapshot struct {
	Time   time.Time
	Stat   Stat
	Mem    map[string]uint64 // /proc/meminfo in bytes
	VM     map[string]uint64 // /proc/vmstat
	Disks  map[string]DiskStats
	Net    map[string]NetStats
	Mounts []MountUsage
	Uptime float64
	Procs  int // processes (numeric /proc entries)
}

func (r *Reader) path(p string) string {
	root := r.Root
	if root == "" {
		root = "/"
	}
	return filepath.Join(root, p)
}

func (r *Reader) open(p string, parse func(*os.File) error) error {
	f, err := os.Open(r.path(p))
	if err != nil {
		return err
	}
	defer f.Close()
	if err := parse(f); err != nil {
		return fmt.Errorf("parse %s: %w", p, err)
	}
	return nil
}

// Read takes a snapshot. Missing optional files (diskstats, net/dev in some
// containers) leave their part empty; a missing /proc/stat is an error.
func (r *Reader) Read(now time.Time) (*Snapshot, error) {
	s := &Snapshot{Time: now}
	var err error
	if err = r.open("proc/stat", func(f *os.File) error { s.Stat, err = ParseStat(f); return err }); err != nil {
		return nil, err
	}
	var errs []error
	opt := func(e error) {
		if e != nil && !errors.Is(e, os.ErrNotExist) {
			errs = append(errs, e)
		}
	}
	opt(r.open("proc/meminfo", func(f *os.File) error { s.Mem, err = ParseKeyValues(f); return err }))
	opt(r.open("proc/vmstat", func(f *os.File) error { s.VM, err = ParseKeyValues(f); return err }))
	opt(r.open("proc/diskstats", func(f *os.File) error { s.Disks, err = ParseDiskstats(f); return err }))
	opt(r.open("proc/net/dev", func(f *os.File) error { s.Net, err = ParseNetDev(f); return err }))
	opt(r.open("proc/uptime", func(f *os.File) error { s.Uptime, err = ParseUptime(f); return err }))
	var mounts []Mount
	opt(r.open("proc/self/mounts", func(f *os.File) error { mounts, err = ParseMounts(f); return err }))
	statfs := r.Statfs
	if statfs == nil {
		statfs = sysStatfs
	}
	for _, m := range mounts {
		st, err := statfs(m.Point)
		if err != nil || st.TotalBytes == 0 {
			continue // unreadable or empty: not a disk to report
		}
		s.Mounts = append(s.Mounts, MountUsage{Mount: m, FSStats: st, DiskName: r.diskName(m.Device, s.Disks)})
	}
	if des, err := os.ReadDir(r.path("proc")); err == nil {
		for _, de := range des {
			if c := de.Name()[0]; c >= '1' && c <= '9' && de.IsDir() {
				s.Procs++
			}
		}
	}
	return s, errors.Join(errs...)
}

// diskName maps a mount's device to its /proc/diskstats name.
func (r *Reader) diskName(dev string, disks map[string]DiskStats) string {
	if !strings.HasPrefix(dev, "/dev/") {
		return ""
	}
	name := filepath.Base(dev)
	if _, ok := disks[name]; ok {
		return name
	}
	if real, err := filepath.EvalSymlinks(r.path(dev)); err == nil { // /dev/mapper/x → /dev/dm-0
		if _, ok := disks[filepath.Base(real)]; ok {
			return filepath.Base(real)
		}
	}
	return ""
}

func sysStatfs(path string) (FSStats, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return FSStats{}, err
	}
	bs := uint64(st.Bsize)
	return FSStats{TotalBytes: st.Blocks * bs, AvailBytes: st.Bavail * bs, TotalInodes: st.Files, FreeInodes: st.Ffree}, nil
}

// Sample is one Perf counter value, named as Azure's Linux agent names it.
type Sample struct {
	Object, Counter, Instance string
	Value                     float64
}

// Metric is one InsightsMetrics value in the VM insights shape.
type Metric struct {
	Namespace, Name string
	Value           float64
	Tags            map[string]any
}

const mib = 1 << 20

func pct(part, whole float64) float64 {
	if whole <= 0 {
		return 0
	}
	return 100 * part / whole
}

func delta(a, b uint64) float64 {
	if b < a { // counter reset (reboot, wrap)
		return 0
	}
	return float64(b - a)
}

// cpuSamples computes the Processor counters of one instance.
func cpuSamples(out []Sample, inst string, p, c CPUTimes) []Sample {
	total := delta(p.Total(), c.Total())
	if total <= 0 {
		return out
	}
	idle := delta(p.Idle, c.Idle)
	add := func(counter string, v float64) {
		out = append(out, Sample{"Processor", counter, inst, pct(v, total)})
	}
	add("% Processor Time", total-idle-delta(p.IOWait, c.IOWait))
	add("% Idle Time", idle)
	add("% User Time", delta(p.User, c.User))
	add("% Nice Time", delta(p.Nice, c.Nice))
	add("% Privileged Time", delta(p.System, c.System))
	add("% IO Wait Time", delta(p.IOWait, c.IOWait))
	add("% Interrupt Time", delta(p.IRQ, c.IRQ))
	add("% DPC Time", delta(p.SoftIRQ, c.SoftIRQ))
	return out
}

// Samples computes every Perf counter custos-agent knows from two
// snapshots. Rates and percentages of time need prev; with prev nil only
// the gauges are returned. The result is sorted by object, instance, counter.
func Samples(prev, cur *Snapshot) []Sample {
	var out []Sample
	var secs float64
	if prev != nil {
		secs = cur.Time.Sub(prev.Time).Seconds()
	}
	rate := func(a, b uint64) float64 {
		if secs <= 0 {
			return 0
		}
		return delta(a, b) / secs
	}
	if prev != nil && secs > 0 {
		out = cpuSamples(out, "_Total", prev.Stat.Total, cur.Stat.Total)
		for id, c := range cur.Stat.CPUs {
			if p, ok := prev.Stat.CPUs[id]; ok {
				out = cpuSamples(out, id, p, c)
			}
		}
	}

	if m := cur.Mem; m != nil && m["MemTotal"] > 0 {
		total := float64(m["MemTotal"])
		avail, ok := m["MemAvailable"]
		if !ok {
			avail = m["MemFree"] + m["Buffers"] + m["Cached"]
		}
		swapTotal, swapFree := float64(m["SwapTotal"]), float64(m["SwapFree"])
		add := func(counter string, v float64) { out = append(out, Sample{"Memory", counter, "Memory", v}) }
		add("Available MBytes Memory", float64(avail)/mib)
		add("% Available Memory", pct(float64(avail), total))
		add("Used Memory MBytes", (total-float64(avail))/mib)
		add("% Used Memory", pct(total-float64(avail), total))
		add("Available MBytes Swap", swapFree/mib)
		add("% Available Swap Space", pct(swapFree, swapTotal))
		add("Used MBytes Swap Space", (swapTotal-swapFree)/mib)
		add("% Used Swap Space", pct(swapTotal-swapFree, swapTotal))
		if prev != nil && prev.VM != nil && cur.VM != nil && secs > 0 {
			reads := rate(prev.VM["pgpgin"], cur.VM["pgpgin"])
			writes := rate(prev.VM["pgpgout"], cur.VM["pgpgout"])
			add("Page Reads/sec", reads)
			add("Page Writes/sec", writes)
			add("Pages/sec", reads+writes)
		}
	}

	var tot FSStats
	var totIO [4]float64
	haveIO := false
	for _, m := range cur.Mounts {
		tot.TotalBytes += m.TotalBytes
		tot.AvailBytes += m.AvailBytes
		tot.TotalInodes += m.TotalInodes
		tot.FreeInodes += m.FreeInodes
		out = appendDisk(out, m.Point, m.FSStats)
		if prev == nil || secs <= 0 || m.DiskName == "" {
			continue
		}
		p, ok1 := prev.Disks[m.DiskName]
		c, ok2 := cur.Disks[m.DiskName]
		if !ok1 || !ok2 {
			continue
		}
		io := [4]float64{rate(p.Reads, c.Reads), rate(p.Writes, c.Writes), rate(p.ReadSectors, c.ReadSectors) * 512, rate(p.WriteSectors, c.WriteSectors) * 512}
		out = appendDiskIO(out, m.Point, io)
		for i := range io {
			totIO[i] += io[i]
		}
		haveIO = true
	}
	if len(cur.Mounts) > 0 {
		out = appendDisk(out, "_Total", tot)
		if haveIO {
			out = appendDiskIO(out, "_Total", totIO)
		}
	}

	for name, c := range cur.Net {
		if name == "lo" {
			continue
		}
		add := func(counter string, v uint64) { out = append(out, Sample{"Network", counter, name, float64(v)}) }
		add("Total Bytes Transmitted", c.TxBytes)
		add("Total Bytes Received", c.RxBytes)
		add("Total Bytes", c.TxBytes+c.RxBytes)
		add("Total Packets Transmitted", c.TxPackets)
		add("Total Packets Received", c.RxPackets)
		add("Total Rx Errors", c.RxErrors)
		add("Total Tx Errors", c.TxErrors)
		add("Total Collisions", c.Collisions)
	}

	out = append(out,
		Sample{"System", "Uptime", "_Total", cur.Uptime},
		Sample{"System", "CPUs", "_Total", float64(len(cur.Stat.CPUs))},
		Sample{"System", "Processes", "_Total", float64(cur.Procs)},
	)
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Object != b.Object {
			return a.Object < b.Object
		}
		if a.Instance != b.Instance {
			return a.Instance < b.Instance
		}
		return a.Counter < b.Counter
	})
	return out
}

func appendDisk(out []Sample, inst string, s FSStats) []Sample {
	add := func(counter string, v float64) { out = append(out, Sample{"Logical Disk", counter, inst, v}) }
	add("% Free Space", pct(float64(s.AvailBytes), float64(s.TotalBytes)))
	add("% Used Space", 100-pct(float64(s.AvailBytes), float64(s.TotalBytes)))
	add("Free Megabytes", float64(s.AvailBytes)/mib)
	if s.TotalInodes > 0 {
		add("% Free Inodes", pct(float64(s.FreeInodes), float64(s.TotalInodes)))
		add("% Used Inodes", 100-pct(float64(s.FreeInodes), float64(s.TotalInodes)))
	}
	return out
}

// appendDiskIO adds the rate counters; io is reads/s, writes/s, read B/s, write B/s.
func appendDiskIO(out []Sample, inst string, io [4]float64) []Sample {
	add := func(counter string, v float64) { out = append(out, Sample{"Logical Disk", counter, inst, v}) }
	add("Disk Reads/sec", io[0])
	add("Disk Writes/sec", io[1])
	add("Disk Transfers/sec", io[0]+io[1])
	add("Disk Read Bytes/sec", io[2])
	add("Disk Write Bytes/sec", io[3])
	add("Logical Disk Bytes/sec", io[2]+io[3])
	return out
}

// VMInsights returns the InsightsMetrics of VM insights (namespace/name and
// vm.azm.ms tags) derived from the same two snapshots.
func VMInsights(prev, cur *Snapshot) []Metric {
	var out []Metric
	byKey := map[[3]string]float64{}
	for _, s := range Samples(prev, cur) {
		byKey[[3]string{s.Object, s.Instance, s.Counter}] = s.Value
	}
	get := func(obj, inst, counter string) (float64, bool) {
		v, ok := byKey[[3]string{obj, inst, counter}]
		return v, ok
	}
	if v, ok := get("Processor", "_Total", "% Processor Time"); ok {
		out = append(out, Metric{"Processor", "UtilizationPercentage", v, map[string]any{"vm.azm.ms/totalCpus": len(cur.Stat.CPUs)}})
	}
	if v, ok := get("Memory", "Memory", "Available MBytes Memory"); ok {
		out = append(out, Metric{"Memory", "AvailableMB", v, map[string]any{"vm.azm.ms/memorySizeMB": float64(cur.Mem["MemTotal"]) / mib}})
	}
	for _, m := range cur.Mounts {
		tags := map[string]any{"vm.azm.ms/mountId": m.Point, "vm.azm.ms/diskSizeMB": float64(m.TotalBytes) / mib}
		for _, p := range [][2]string{{"% Free Space", "FreeSpacePercentage"}, {"Free Megabytes", "FreeSpaceMB"},
			{"Disk Reads/sec", "ReadsPerSecond"}, {"Disk Writes/sec", "WritesPerSecond"}, {"Disk Transfers/sec", "TransfersPerSecond"},
			{"Disk Read Bytes/sec", "ReadBytesPerSecond"}, {"Disk Write Bytes/sec", "WriteBytesPerSecond"}, {"Logical Disk Bytes/sec", "BytesPerSecond"}} {
			if v, ok := get("Logical Disk", m.Point, p[0]); ok {
				out = append(out, Metric{"LogicalDisk", p[1], v, tags})
			}
		}
	}
	if prev != nil {
		secs := cur.Time.Sub(prev.Time).Seconds()
		names := make([]string, 0, len(cur.Net))
		for n := range cur.Net {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			p, ok := prev.Net[n]
			if n == "lo" || !ok || secs <= 0 {
				continue
			}
			c := cur.Net[n]
			tags := map[string]any{"vm.azm.ms/networkDeviceId": n}
			out = append(out,
				Metric{"Network", "ReadBytesPerSecond", delta(p.RxBytes, c.RxBytes) / secs, tags},
				Metric{"Network", "WriteBytesPerSecond", delta(p.TxBytes, c.TxBytes) / secs, tags})
		}
	}
	return out
}

// Specifier is a DCR counterSpecifier such as "\Processor(*)\% Processor Time".
type Specifier struct {
	Object, Instance, Counter string // Instance and Counter may be "*"
}

// ParseSpecifier parses "[\]Object[(Instance)]\Counter".
func ParseSpecifier(s string) (Specifier, error) {
	t := strings.TrimPrefix(strings.TrimSpace(s), `\`)
	obj, counter, ok := strings.Cut(t, `\`)
	if !ok || obj == "" || counter == "" || strings.Contains(counter, `\`) {
		return Specifier{}, fmt.Errorf("counter specifier %q is not \\Object(Instance)\\Counter", s)
	}
	inst := "*"
	if i := strings.IndexByte(obj, '('); i >= 0 {
		if !strings.HasSuffix(obj, ")") {
			return Specifier{}, fmt.Errorf("counter specifier %q: unbalanced parenthesis", s)
		}
		obj, inst = obj[:i], obj[i+1:len(obj)-1]
	}
	if obj == "" || inst == "" {
		return Specifier{}, fmt.Errorf("counter specifier %q is not \\Object(Instance)\\Counter", s)
	}
	return Specifier{Object: obj, Instance: inst, Counter: counter}, nil
}

// Match reports whether the specifier selects the sample.
func (sp Specifier) Match(s Sample) bool {
	return strings.EqualFold(sp.Object, s.Object) &&
		(sp.Instance == "*" || strings.EqualFold(sp.Instance, s.Instance)) &&
		(sp.Counter == "*" || strings.EqualFold(sp.Counter, s.Counter))
}

// IsVMInsights reports whether the specifier is the VM insights set
// ("\VmInsights\DetailedMetrics"), which selects InsightsMetrics rather than
// Perf counters.
func (sp Specifier) IsVMInsights() bool {
	return strings.EqualFold(sp.Object, "VmInsights")
}

// CounterPath renders the Perf table's CounterPath: \\Computer\Object(Instance)\Counter.
func CounterPath(computer string, s Sample) string {
	return `\\` + computer + `\` + s.Object + "(" + s.Instance + `)\` + s.Counter
}
