package agent

import (
	"fmt"
	"testing"
	"time"

	"custos/internal/agent/syslog"
)

// BenchmarkSyslogPipeline measures one core's syslog path up to the disk
// queue: parse, filter, encode the Syslog record, batch, and gzip the batch
// payload (the fsynced Append itself is measured in package queue).
// Issue 8 asks for ≥ 20,000 events/s on one core; the result is reported as
// events/s.
func BenchmarkSyslogPipeline(b *testing.B) {
	a := &Agent{computer: "bench-host", cfg: Config{ResourceID: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.HybridCompute/machines/bench-host"}}
	f, _ := syslog.NewFilter([]string{"*"}, []string{"*"})
	payloads := 0
	acc := newAccumulator(func(t target, recs [][]byte) error {
		_, err := encodePayload(t, recs, time.Now())
		payloads++
		return err
	})
	msgs := make([][]byte, 64)
	for i := range msgs {
		msgs[i] = []byte(fmt.Sprintf("<%d>1 2025-03-10T11:00:00.%06dZ web-%d app%d %d ID%d - user %d logged in from 10.0.%d.%d after %d ms",
			8+i%120, i, i%7, i%5, 1000+i, i, i, i%250, i%200, i*13))
	}
	tg := target{"dcr-0123", StreamSyslog}
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m, err := syslog.Parse(msgs[i%len(msgs)], now, time.UTC)
		if err != nil {
			b.Fatal(err)
		}
		if !f.Match(m.Facility, m.Severity) {
			continue
		}
		rec, err := a.syslogRecord(m, now, "127.0.0.1")
		if err != nil {
			b.Fatal(err)
		}
		if err := acc.add(tg, rec, now); err != nil {
			b.Fatal(err)
		}
	}
	acc.flushDue(now, 0)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
