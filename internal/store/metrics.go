package store

import (
	"bufio"
	"fmt"
	"io"
	"sync/atomic"
)

// metrics are the store's self-metrics, kept as atomic counters. The module's
// go.sum does not yet cover prometheus/client_golang's dependencies, so the
// store does not import it: the server exports Stats through
// prometheus.NewCounterFunc (one per field).
type metrics struct {
	corruptions   atomic.Uint64
	rowsCommitted atomic.Uint64
	commits       atomic.Uint64
	walSyncs      atomic.Uint64
	flushes       atomic.Uint64
	merges        atomic.Uint64
	partsExpired  atomic.Uint64

	keyRevocations atomic.Uint64
	rowsPurged     atomic.Uint64
	partsPurged    atomic.Uint64

	partsQuarantined atomic.Uint64
}

// Stats is a snapshot of the store's counters since Open.
type Stats struct {
	CorruptionErrors uint64 // integrity-check failures met by queries, opens and merges
	RowsCommitted    uint64
	Commits          uint64
	WALSyncs         uint64 // fsyncs of the WAL; one may cover many commits
	PartsFlushed     uint64
	PartsMerged      uint64
	PartsExpired     uint64 // parts deleted by retention
	KeyRevocations   uint64 // times a workspace's customer-managed key started refusing
	RowsPurged       uint64 // rows removed by Purge
	PartsPurged      uint64 // parts rewritten or deleted by Purge
	PartsQuarantined uint64 // corrupt parts moved to quarantine (quarantine.go)
}

func (m *metrics) snapshot() Stats {
	return Stats{
		CorruptionErrors: m.corruptions.Load(),
		RowsCommitted:    m.rowsCommitted.Load(),
		Commits:          m.commits.Load(),
		WALSyncs:         m.walSyncs.Load(),
		PartsFlushed:     m.flushes.Load(),
		PartsMerged:      m.merges.Load(),
		PartsExpired:     m.partsExpired.Load(),
		KeyRevocations:   m.keyRevocations.Load(),
		RowsPurged:       m.rowsPurged.Load(),
		PartsPurged:      m.partsPurged.Load(),
		PartsQuarantined: m.partsQuarantined.Load(),
	}
}

// WriteReadCacheMetrics writes the decoded-chunk cache's counters and size
// (ReadCacheStats) in the Prometheus text exposition format, for /metrics.
func (db *DB) WriteReadCacheMetrics(w io.Writer) error {
	s := db.ReadCacheStats()
	bw := bufio.NewWriter(w)
	for _, m := range []struct {
		name, kind, help string
		v                uint64
	}{
		{"custos_store_read_cache_hits_total", "counter", "Chunks queries got from the decoded-chunk cache.", s.Hits},
		{"custos_store_read_cache_misses_total", "counter", "Chunks queries decoded from part files while the cache was on.", s.Misses},
		{"custos_store_read_cache_admitted_total", "counter", "Chunks added to the cache after their second read.", s.Admitted},
		{"custos_store_read_cache_fresh_total", "counter", "Chunks added as a flush or a re-encoding merge wrote them.", s.Fresh},
		{"custos_store_read_cache_rekeyed_total", "counter", "Cache entries moved to the part a copy merge wrote.", s.Rekeyed},
		{"custos_store_read_cache_evictions_total", "counter", "Cache entries evicted to make room.", s.Evictions},
		{"custos_store_read_cache_expired_total", "counter", "Cache entries removed after a period without a read.", s.Expired},
		{"custos_store_read_cache_rejected_total", "counter", "Chunks read twice but not added: read less often than the entry they would evict.", s.Rejected},
		{"custos_store_read_cache_promoted_total", "counter", "Cache entries moved into the heap tier, whose hits copy nothing.", s.Promoted},
		{"custos_store_read_cache_entries", "gauge", "Chunks in the decoded-chunk cache.", s.Entries},
		{"custos_store_read_cache_bytes", "gauge", "What the decoded-chunk cache charges against its bound: its off-heap memory plus twice the heap tier's vectors.", s.Bytes},
		{"custos_store_read_cache_heap_bytes", "gauge", "The decoded-chunk cache's heap tier: vectors held on the Go heap.", s.HeapBytes},
		{"custos_store_read_cache_limit_bytes", "gauge", "The decoded-chunk cache's bound (query.readCacheBytes).", s.Limit},
	} {
		fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s %s\n%s %d\n", m.name, m.help, m.name, m.kind, m.name, m.v)
	}
	return bw.Flush()
}
