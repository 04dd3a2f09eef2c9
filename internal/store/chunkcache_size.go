package store

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
)

// Default size of the decoded-chunk cache (Options.ReadCacheBytes as the
// server sets it when query.readCacheBytes is not given): an eighth of the
// memory the process may use — the machine's memory, or the cgroup's limit
// when that is lower — between 64 MiB and 4 GiB; 256 MiB where neither can
// be read.
//
// Why: the soak (bench/results/soak-2026-11-27.md) showed the queries that
// matter most — alert rules and dashboards over the last 5–15 minutes — read
// 9–27 M rows again and again, about 36 bytes a row of narrow columns:
// 0.3–1 GB, well past a fixed 256 MiB, and decoding what the cache did not
// hold was 43 % of the server's CPU. The cache is off the Go heap, so it
// adds to RSS but not to the collector's work; an eighth leaves the rest to
// the memtables, the queries' working memory (query.maxMemoryBytes, 2 GiB
// by default) and the page cache of the part files. The cap keeps a large
// machine's cache from outgrowing what a clock sweep handles cheaply.
const (
	readCacheFallback = 256 << 20
	readCacheMin      = 64 << 20
	readCacheMax      = 4 << 30
)

// DefaultReadCacheBytes returns the default size of the decoded-chunk cache
// on this machine (see readCacheFallback).
func DefaultReadCacheBytes() int64 {
	return readCacheSize(memoryLimit(os.ReadFile))
}

// readCacheSize applies the rule to a memory limit (0: unknown).
func readCacheSize(mem int64) int64 {
	if mem <= 0 {
		return readCacheFallback
	}
	return min(max(mem/8, readCacheMin), readCacheMax)
}

// memoryLimit returns the lower of the machine's memory (/proc/meminfo) and
// the cgroup's limit (v2 memory.max, v1 memory.limit_in_bytes), or 0 when
// none can be read. read is os.ReadFile (a parameter for tests).
func memoryLimit(read func(string) ([]byte, error)) int64 {
	var limit int64
	lower := func(n int64) {
		if n > 0 && (limit == 0 || n < limit) {
			limit = n
		}
	}
	if b, err := read("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) >= 2 && f[0] == "MemTotal:" {
				if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil && kb < 1<<50 {
					lower(kb << 10)
				}
			}
		}
	}
	for _, p := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		if b, err := read(p); err == nil {
			// "max" (v2) or a huge number (v1) mean no limit.
			if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n < 1<<50 {
				lower(n)
			}
		}
	}
	return limit
}
