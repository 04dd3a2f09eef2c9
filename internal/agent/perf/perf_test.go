package perf

import (
	"math"
	"strings"
	"testing"
	"time"
)

func fixtureReader(root string) *Reader {
	return &Reader{Root: root, Statfs: func(p string) (FSStats, error) {
		switch p {
		case "/":
			return FSStats{TotalBytes: 100 * mib, AvailBytes: 25 * mib, TotalInodes: 1000, FreeInodes: 600}, nil
		case "/data disk":
			return FSStats{TotalBytes: 300 * mib, AvailBytes: 150 * mib, TotalInodes: 0}, nil
		}
		return FSStats{}, nil
	}}
}

func find(t *testing.T, ss []Sample, obj, inst, counter string) float64 {
	t.Helper()
	for _, s := range ss {
		if s.Object == obj && s.Instance == inst && s.Counter == counter {
			return s.Value
		}
	}
	t.Fatalf("no sample %s(%s)\\%s", obj, inst, counter)
	return 0
}

func near(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
		t.Errorf("%s = %v; want %v", what, got, want)
	}
}

func TestSamplesOnFixtures(t *testing.T) {
	t0 := time.Unix(1000, 0)
	p, err := fixtureReader("testdata/t1").Read(t0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := fixtureReader("testdata/t2").Read(t0.Add(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Mounts) != 2 || c.Mounts[1].Point != "/data disk" || c.Mounts[0].DiskName != "sda1" {
		t.Fatalf("mounts = %+v", c.Mounts)
	}
	ss := Samples(p, c)
	// cpu: user+600 system+300 idle+400 iowait+60 → total 1360.
	near(t, "% Processor Time", find(t, ss, "Processor", "_Total", "% Processor Time"), 100*900.0/1360)
	near(t, "% Idle Time", find(t, ss, "Processor", "_Total", "% Idle Time"), 100*400.0/1360)
	near(t, "% IO Wait Time", find(t, ss, "Processor", "_Total", "% IO Wait Time"), 100*60.0/1360)
	near(t, "cpu0 % User Time", find(t, ss, "Processor", "0", "% User Time"), 100*300.0/680)
	near(t, "Available MBytes Memory", find(t, ss, "Memory", "Memory", "Available MBytes Memory"), 4096)
	near(t, "% Used Memory", find(t, ss, "Memory", "Memory", "% Used Memory"), 50)
	near(t, "% Used Swap Space", find(t, ss, "Memory", "Memory", "% Used Swap Space"), 25)
	near(t, "Pages/sec", find(t, ss, "Memory", "Memory", "Pages/sec"), 100)
	near(t, "% Free Space /", find(t, ss, "Logical Disk", "/", "% Free Space"), 25)
	near(t, "% Used Inodes /", find(t, ss, "Logical Disk", "/", "% Used Inodes"), 40)
	near(t, "Free Megabytes _Total", find(t, ss, "Logical Disk", "_Total", "Free Megabytes"), 175)
	near(t, "Disk Reads/sec /", find(t, ss, "Logical Disk", "/", "Disk Reads/sec"), 5)
	near(t, "Disk Write Bytes/sec /", find(t, ss, "Logical Disk", "/", "Disk Write Bytes/sec"), 2000*512/10.0)
	near(t, "Total Bytes Transmitted", find(t, ss, "Network", "eth0", "Total Bytes Transmitted"), 10000)
	near(t, "Total Collisions", find(t, ss, "Network", "eth0", "Total Collisions"), 3)
	near(t, "CPUs", find(t, ss, "System", "_Total", "CPUs"), 2)
	near(t, "Processes", find(t, ss, "System", "_Total", "Processes"), 1)
	for _, s := range ss {
		if s.Instance == "lo" {
			t.Fatal("loopback reported")
		}
		if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
			t.Fatalf("%+v is not finite", s)
		}
	}

	// Without a previous snapshot there are no rates.
	for _, s := range Samples(nil, c) {
		if s.Object == "Processor" || strings.HasSuffix(s.Counter, "/sec") {
			t.Fatalf("rate without a previous snapshot: %+v", s)
		}
	}

	ms := VMInsights(p, c)
	var got []string
	for _, m := range ms {
		got = append(got, m.Namespace+"/"+m.Name)
	}
	for _, want := range []string{"Processor/UtilizationPercentage", "Memory/AvailableMB", "LogicalDisk/FreeSpacePercentage", "Network/WriteBytesPerSecond"} {
		if !strings.Contains(strings.Join(got, " "), want) {
			t.Errorf("VMInsights lacks %s: %v", want, got)
		}
	}
}

func TestRealProc(t *testing.T) {
	var r Reader
	p, err := r.Read(time.Now())
	if err != nil {
		t.Fatalf("read /proc: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	c, err := r.Read(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Stat.CPUs) == 0 || c.Mem["MemTotal"] == 0 || c.Procs == 0 {
		t.Fatalf("implausible snapshot: cpus %d mem %d procs %d", len(c.Stat.CPUs), c.Mem["MemTotal"], c.Procs)
	}
	ss := Samples(p, c)
	v := find(t, ss, "Processor", "_Total", "% Processor Time")
	if v < 0 || v > 100 {
		t.Fatalf("%% Processor Time = %v", v)
	}
	if len(c.Mounts) == 0 {
		t.Log("no data-bearing mounts visible (container?)")
	}
}

func TestSpecifier(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Specifier
	}{
		{`\Processor(*)\% Processor Time`, Specifier{"Processor", "*", "% Processor Time"}},
		{`Processor(_Total)\% Idle Time`, Specifier{"Processor", "_Total", "% Idle Time"}},
		{`\Memory\Available MBytes Memory`, Specifier{"Memory", "*", "Available MBytes Memory"}},
		{`\Logical Disk(/)\% Free Space`, Specifier{"Logical Disk", "/", "% Free Space"}},
		{`\VmInsights\DetailedMetrics`, Specifier{"VmInsights", "*", "DetailedMetrics"}},
	} {
		got, err := ParseSpecifier(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseSpecifier(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", `\Processor`, `Processor(*\x`, `\(x)\y`, `a\b\c`} {
		if _, err := ParseSpecifier(bad); err == nil {
			t.Errorf("ParseSpecifier(%q) accepted", bad)
		}
	}
	sp, _ := ParseSpecifier(`\processor(*)\% processor time`)
	if !sp.Match(Sample{Object: "Processor", Instance: "_Total", Counter: "% Processor Time"}) {
		t.Error("case-insensitive match failed")
	}
	if CounterPath("web-1", Sample{"Memory", "Available MBytes Memory", "Memory", 1}) != `\\web-1\Memory(Memory)\Available MBytes Memory` {
		t.Error("CounterPath")
	}
}

func FuzzParsers(f *testing.F) {
	f.Add([]byte("cpu  1 2 3 4 5 6 7 8\ncpu0 1 2 3 4\nprocesses 3\n"))
	f.Add([]byte("  eth0:1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n"))
	f.Add([]byte("8 0 sda 1 2 3 4 5 6 7 8 9 10\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseStat(strings.NewReader(string(b)))
		ParseKeyValues(strings.NewReader(string(b)))
		ParseDiskstats(strings.NewReader(string(b)))
		ParseNetDev(strings.NewReader(string(b)))
		ParseMounts(strings.NewReader(string(b)))
		ParseUptime(strings.NewReader(string(b)))
		ParseSpecifier(string(b))
	})
}
