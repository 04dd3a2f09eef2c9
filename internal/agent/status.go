package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Version is the agent version reported in Heartbeat and User-Agent; set at
// build time with -ldflags "-X custos/internal/agent.Version=...".
var Version = "0.1.0-dev"

// counters are the agent's running totals, shared by the status file and the
// Prometheus endpoint.
type counters struct {
	SyslogReceived    atomic.Uint64
	SyslogFiltered    atomic.Uint64 // matched no rule
	SyslogShed        atomic.Uint64 // dropped because the in-memory queue was full
	SyslogParseErrors atomic.Uint64
	PerfSamples       atomic.Uint64
	FileRecords       atomic.Uint64
	Heartbeats        atomic.Uint64
	RecordsTooLarge   atomic.Uint64
	BatchesQueued     atomic.Uint64
	BatchesSent       atomic.Uint64
	RecordsSent       atomic.Uint64
	DeadLetters       atomic.Uint64 // batches rejected for good (400/404/413)
	DeadLetterRecords atomic.Uint64
	SendErrors        atomic.Uint64 // failed attempts that will be retried
	CollectErrors     atomic.Uint64
}

// RuleStatus describes one applied data collection rule.
type RuleStatus struct {
	Name        string   `json:"name"`
	ImmutableID string   `json:"immutableId"`
	Origin      string   `json:"origin"`
	ETag        string   `json:"etag,omitempty"`
	Sources     []string `json:"sources"`
	Unsupported []string `json:"unsupported,omitempty"`
}

// Status is the content of the status file (<stateDir>/status.json).
type Status struct {
	PID        int       `json:"pid"`
	Version    string    `json:"version"`
	StartedAt  time.Time `json:"startedAt"`
	UpdatedAt  time.Time `json:"updatedAt"`
	Stopped    bool      `json:"stopped"`
	Endpoint   string    `json:"endpoint"`
	Computer   string    `json:"computer"`
	ResourceID string    `json:"resourceId"`
	Identity   string    `json:"identity"`
	// IdentityError says why the server refuses the agent's identity or
	// access (sending has stopped until it is fixed); "" when all is well.
	IdentityError string            `json:"identityError,omitempty"`
	Rules         []RuleStatus      `json:"rules"`
	RulesVersion  string            `json:"rulesVersion"`
	RulesError    string            `json:"rulesError,omitempty"`
	Queue         QueueStatus       `json:"queue"`
	LastSendAt    time.Time         `json:"lastSendAt,omitzero"`
	LastStatus    int               `json:"lastStatus,omitempty"`
	LastError     string            `json:"lastError,omitempty"`
	LastErrorAt   time.Time         `json:"lastErrorAt,omitzero"`
	Counters      map[string]uint64 `json:"counters"`
}

// QueueStatus is the on-disk queue part of Status.
type QueueStatus struct {
	Entries      int    `json:"entries"`
	Bytes        int64  `json:"bytes"`
	MaxBytes     int64  `json:"maxBytes"`
	Dropped      uint64 `json:"dropped"`
	DroppedBytes uint64 `json:"droppedBytes"`
}

// snapshot returns the counters by name.
func (c *counters) snapshot() map[string]uint64 {
	return map[string]uint64{
		"syslogReceived": c.SyslogReceived.Load(), "syslogFiltered": c.SyslogFiltered.Load(),
		"syslogShed": c.SyslogShed.Load(), "syslogParseErrors": c.SyslogParseErrors.Load(),
		"perfSamples": c.PerfSamples.Load(), "fileRecords": c.FileRecords.Load(), "heartbeats": c.Heartbeats.Load(),
		"recordsTooLarge": c.RecordsTooLarge.Load(), "batchesQueued": c.BatchesQueued.Load(),
		"batchesSent": c.BatchesSent.Load(), "recordsSent": c.RecordsSent.Load(),
		"deadLetters": c.DeadLetters.Load(), "deadLetterRecords": c.DeadLetterRecords.Load(),
		"sendErrors": c.SendErrors.Load(), "collectErrors": c.CollectErrors.Load(),
	}
}

// register exposes the counters as Prometheus metrics on reg.
func (c *counters) register(reg *prometheus.Registry, queue func() QueueStatus) error {
	counter := func(name, help string, v *atomic.Uint64, labels prometheus.Labels) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "custos_agent", Name: name, Help: help, ConstLabels: labels},
			func() float64 { return float64(v.Load()) })
	}
	src := func(s string) prometheus.Labels { return prometheus.Labels{"source": s} }
	cs := []prometheus.Collector{
		counter("records_collected_total", "Records collected, by data source.", &c.SyslogReceived, src("syslog")),
		counter("records_collected_total", "Records collected, by data source.", &c.PerfSamples, src("performanceCounters")),
		counter("records_collected_total", "Records collected, by data source.", &c.FileRecords, src("logFiles")),
		counter("records_collected_total", "Records collected, by data source.", &c.Heartbeats, src("heartbeat")),
		counter("records_dropped_total", "Records dropped before the queue, by reason.", &c.SyslogShed, prometheus.Labels{"reason": "syslog_queue_full"}),
		counter("records_dropped_total", "Records dropped before the queue, by reason.", &c.SyslogFiltered, prometheus.Labels{"reason": "no_matching_rule"}),
		counter("records_dropped_total", "Records dropped before the queue, by reason.", &c.RecordsTooLarge, prometheus.Labels{"reason": "too_large"}),
		counter("syslog_parse_errors_total", "Syslog messages that could not be parsed.", &c.SyslogParseErrors, nil),
		counter("batches_queued_total", "Batches written to the on-disk queue.", &c.BatchesQueued, nil),
		counter("batches_sent_total", "Batches acknowledged by the ingestion API.", &c.BatchesSent, nil),
		counter("records_sent_total", "Records acknowledged by the ingestion API.", &c.RecordsSent, nil),
		counter("batches_dead_lettered_total", "Batches rejected for good (400/404/413) and removed.", &c.DeadLetters, nil),
		counter("send_errors_total", "Delivery attempts that failed and will be retried.", &c.SendErrors, nil),
		counter("collect_errors_total", "Errors while collecting data.", &c.CollectErrors, nil),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "custos_agent", Name: "queue_entries", Help: "Batches waiting in the on-disk queue."},
			func() float64 { return float64(queue().Entries) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "custos_agent", Name: "queue_bytes", Help: "Bytes of the on-disk queue."},
			func() float64 { return float64(queue().Bytes) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "custos_agent", Name: "queue_dropped_total", Help: "Batches dropped because the on-disk queue was full or a queue segment was damaged."},
			func() float64 { return float64(queue().Dropped) }),
	}
	for _, col := range cs {
		if err := reg.Register(col); err != nil {
			return fmt.Errorf("register metric: %w", err)
		}
	}
	return nil
}

// statusBoard holds the mutable parts of Status. Safe for concurrent use.
type statusBoard struct {
	mu sync.Mutex // guards st
	st Status
}

func (b *statusBoard) update(f func(*Status)) {
	b.mu.Lock()
	f(&b.st)
	b.mu.Unlock()
}

func (b *statusBoard) get() Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.st
	s.Rules = append([]RuleStatus(nil), b.st.Rules...)
	return s
}

// writeStatus writes the status file atomically (0600).
func writeStatus(path string, s Status) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write status: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write status: %w", err)
	}
	return nil
}

// ReadStatus reads a status file.
func ReadStatus(path string) (Status, error) {
	var s Status
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return s, fmt.Errorf("no status file at %s: the agent has not run with this configuration", path)
		}
		return s, fmt.Errorf("read status: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("status file %s: %w", path, err)
	}
	return s, nil
}

// Running reports whether the process that wrote s is alive and the file is fresh.
func (s Status) Running(now time.Time) bool {
	if s.Stopped || s.PID <= 0 || now.Sub(s.UpdatedAt) > time.Minute {
		return false
	}
	err := syscall.Kill(s.PID, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// PrintStatus renders s for people.
func PrintStatus(w io.Writer, s Status, now time.Time) {
	state := "stopped"
	if s.Running(now) {
		state = fmt.Sprintf("running (pid %d, since %s)", s.PID, s.StartedAt.Format(time.RFC3339))
	}
	fmt.Fprintf(w, "custos-agent %s: %s\n", s.Version, state)
	fmt.Fprintf(w, "  endpoint:   %s\n", s.Endpoint)
	fmt.Fprintf(w, "  computer:   %s\n", s.Computer)
	fmt.Fprintf(w, "  resource:   %s\n", orNone(s.ResourceID))
	fmt.Fprintf(w, "  identity:   %s\n", s.Identity)
	if s.IdentityError != "" {
		fmt.Fprintf(w, "  NOT SENDING: %s\n", s.IdentityError)
	}
	fmt.Fprintf(w, "  updated:    %s (%s ago)\n", s.UpdatedAt.Format(time.RFC3339), now.Sub(s.UpdatedAt).Round(time.Second))
	fmt.Fprintf(w, "  rules:      %d applied\n", len(s.Rules))
	for _, r := range s.Rules {
		fmt.Fprintf(w, "    %s (%s) from %s: %v\n", r.Name, r.ImmutableID, filepath.Base(r.Origin), r.Sources)
		if len(r.Unsupported) > 0 {
			fmt.Fprintf(w, "      ignored data sources: %v\n", r.Unsupported)
		}
	}
	if s.RulesError != "" {
		fmt.Fprintf(w, "  rules error: %s\n", s.RulesError)
	}
	fmt.Fprintf(w, "  queue:      %d batches, %d bytes (cap %d); dropped when full: %d batches\n",
		s.Queue.Entries, s.Queue.Bytes, s.Queue.MaxBytes, s.Queue.Dropped)
	if !s.LastSendAt.IsZero() {
		fmt.Fprintf(w, "  last send:  %s (status %d)\n", s.LastSendAt.Format(time.RFC3339), s.LastStatus)
	} else {
		fmt.Fprintf(w, "  last send:  never\n")
	}
	if s.LastError != "" {
		fmt.Fprintf(w, "  last error: %s at %s\n", s.LastError, s.LastErrorAt.Format(time.RFC3339))
	}
	c := s.Counters
	fmt.Fprintf(w, "  sent:       %d batches, %d records; dead letters: %d batches (%d records); retried errors: %d\n",
		c["batchesSent"], c["recordsSent"], c["deadLetters"], c["deadLetterRecords"], c["sendErrors"])
	fmt.Fprintf(w, "  collected:  syslog %d (shed %d, unmatched %d, unparsable %d), perf %d, files %d, heartbeats %d\n",
		c["syslogReceived"], c["syslogShed"], c["syslogFiltered"], c["syslogParseErrors"], c["perfSamples"], c["fileRecords"], c["heartbeats"])
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
