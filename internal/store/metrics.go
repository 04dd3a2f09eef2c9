package store

import "sync/atomic"

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
