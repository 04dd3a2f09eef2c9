package store

import (
	"io/fs"
	"testing"
)

// TestReadCacheSize checks the default cache size rule: an eighth of the
// lower of the machine's memory and the cgroup limit, within [64 MiB, 4 GiB],
// 256 MiB when neither is known; and that this machine gets a size in range.
func TestReadCacheSize(t *testing.T) {
	files := func(m map[string]string) func(string) ([]byte, error) {
		return func(p string) ([]byte, error) {
			if s, ok := m[p]; ok {
				return []byte(s), nil
			}
			return nil, fs.ErrNotExist
		}
	}
	const gib = int64(1) << 30
	meminfo := "MemTotal:       24684000 kB\nMemFree:         1000 kB\n"
	for _, c := range []struct {
		name  string
		files map[string]string
		limit int64
		size  int64
	}{
		{"nothing readable", nil, 0, 256 << 20},
		{"machine memory", map[string]string{"/proc/meminfo": meminfo}, 24684000 << 10, 24684000 << 10 / 8},
		{"cgroup v2 lower", map[string]string{"/proc/meminfo": meminfo, "/sys/fs/cgroup/memory.max": "2147483648\n"}, 2 * gib, 256 << 20},
		{"cgroup v2 unlimited", map[string]string{"/proc/meminfo": meminfo, "/sys/fs/cgroup/memory.max": "max\n"}, 24684000 << 10, 24684000 << 10 / 8},
		{"cgroup v1 unlimited", map[string]string{"/proc/meminfo": meminfo, "/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n"}, 24684000 << 10, 24684000 << 10 / 8},
		{"small container: floor", map[string]string{"/sys/fs/cgroup/memory.max": "268435456"}, 256 << 20, 64 << 20},
		{"large machine: cap", map[string]string{"/proc/meminfo": "MemTotal: 1073741824 kB\n"}, 1024 * gib, 4 * gib},
		{"garbage", map[string]string{"/proc/meminfo": "MemTotal: lots\n", "/sys/fs/cgroup/memory.max": "-1"}, 0, 256 << 20},
	} {
		got := memoryLimit(files(c.files))
		if got != c.limit {
			t.Errorf("%s: memory limit %d, want %d", c.name, got, c.limit)
		}
		if s := readCacheSize(got); s != c.size {
			t.Errorf("%s: cache size %d, want %d", c.name, s, c.size)
		}
	}
	if s := DefaultReadCacheBytes(); s < readCacheMin || s > readCacheMax {
		t.Fatalf("DefaultReadCacheBytes() = %d on this machine, outside [%d, %d]", s, readCacheMin, readCacheMax)
	}
}
