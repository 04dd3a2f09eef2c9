package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"custos/internal/agent/perf"
	"custos/internal/agent/queue"
	"custos/internal/agent/syslog"
	"custos/internal/agent/tail"
)

// syslogRoute sends messages that pass filter to target.
type syslogRoute struct {
	filter syslog.Filter
	target target
}

type syslogEvent struct {
	msg    syslog.Message
	recv   time.Time
	hostIP string
}

// syslogServer owns the syslog sockets. Routes may change while it runs.
type syslogServer struct {
	a       *Agent
	pcs     []net.PacketConn
	ln      net.Listener
	wg      sync.WaitGroup
	mu      sync.Mutex // guards conns
	conns   map[net.Conn]struct{}
	maxConn int
}

// openSyslog binds the configured sockets; a bind error is returned at once.
func (a *Agent) openSyslog() (*syslogServer, error) {
	s := &syslogServer{a: a, conns: map[net.Conn]struct{}{}, maxConn: 256}
	fail := func(err error) (*syslogServer, error) {
		s.close()
		return nil, err
	}
	if addr := a.cfg.Syslog.UDP; addr != "off" {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return fail(fmt.Errorf("syslog udp listener: %w", err))
		}
		s.pcs = append(s.pcs, pc)
	}
	if p := a.cfg.Syslog.Unix; p != "" {
		if fi, err := os.Lstat(p); err == nil && fi.Mode()&os.ModeSocket != 0 {
			os.Remove(p) // a stale socket of an earlier run
		}
		pc, err := net.ListenPacket("unixgram", p)
		if err != nil {
			return fail(fmt.Errorf("syslog unix listener: %w", err))
		}
		if err := os.Chmod(p, 0o660); err != nil {
			pc.Close()
			return fail(fmt.Errorf("syslog unix listener: %w", err))
		}
		s.pcs = append(s.pcs, pc)
	}
	if addr := a.cfg.Syslog.TCP; addr != "off" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fail(fmt.Errorf("syslog tcp listener: %w", err))
		}
		s.ln = ln
	}
	return s, nil
}

// Addrs returns the bound addresses (useful with port 0).
func (s *syslogServer) addrs() (udp, tcp string) {
	for _, pc := range s.pcs {
		if pc.LocalAddr().Network() == "udp" {
			udp = pc.LocalAddr().String()
		}
	}
	if s.ln != nil {
		tcp = s.ln.Addr().String()
	}
	return udp, tcp
}

func (s *syslogServer) start() {
	for _, pc := range s.pcs {
		s.wg.Add(1)
		go s.servePacket(pc)
	}
	if s.ln != nil {
		s.wg.Add(1)
		go s.serveStream()
	}
}

// close stops accepting, closes every socket and waits for the readers.
func (s *syslogServer) close() {
	for _, pc := range s.pcs {
		pc.Close()
	}
	if s.ln != nil {
		s.ln.Close()
	}
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	if p := s.a.cfg.Syslog.Unix; p != "" {
		os.Remove(p)
	}
}

func hostOf(addr net.Addr) string {
	switch a := addr.(type) {
	case *net.UDPAddr:
		return a.IP.String()
	case *net.TCPAddr:
		return a.IP.String()
	}
	return ""
}

func (s *syslogServer) serveStream() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		s.mu.Lock()
		if len(s.conns) >= s.maxConn {
			s.mu.Unlock()
			s.a.log.Warn("too many syslog tcp connections; refusing one", slog.String("remote_addr", c.RemoteAddr().String()))
			c.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			host := hostOf(c.RemoteAddr())
			fr := syslog.NewFramer(c, syslog.MaxMessageBytes)
			for {
				msg, err := fr.Next()
				if err != nil {
					return
				}
				s.a.receive(msg, host)
			}
		}()
	}
}

// receive parses one message and hands it to the batcher without ever
// blocking the socket: a full queue sheds the message and counts it.
func (a *Agent) receive(b []byte, hostIP string) {
	now := a.now()
	m, err := syslog.Parse(b, now, time.Local)
	if err != nil {
		a.c.SyslogParseErrors.Add(1)
		return
	}
	a.c.SyslogReceived.Add(1)
	select {
	case a.syslogCh <- syslogEvent{msg: m, recv: now, hostIP: hostIP}:
	default:
		if a.c.SyslogShed.Add(1)%1000 == 1 {
			a.log.Warn("syslog queue full; shedding messages", slog.Uint64("shed_total", a.c.SyslogShed.Load()))
		}
	}
}

// syslogWorker routes parsed messages into batches until ctx ends, then
// drains what is buffered and flushes. It wakes on a short timer and drains
// the channel rather than waking for every message: at a steady 1,000
// messages/s this saves a goroutine wake-up (and its futex) per message.
func (a *Agent) syslogWorker(ctx context.Context) {
	tick := time.NewTicker(min(max(a.cfg.Delivery.FlushInterval/4, 10*time.Millisecond), 50*time.Millisecond))
	defer tick.Stop()
	handle := func(ev syslogEvent) {
		routes := a.syslogRoutes.Load()
		var rec []byte
		matched := false
		for _, r := range *routes {
			if !r.filter.Match(ev.msg.Facility, ev.msg.Severity) {
				continue
			}
			if rec == nil {
				var err error
				if rec, err = a.syslogRecord(ev.msg, ev.recv, ev.hostIP); err != nil {
					a.c.CollectErrors.Add(1)
					return
				}
			}
			matched = true
			if err := a.acc.add(r.target, rec, ev.recv); err != nil {
				a.collectError("queue syslog batch", err)
			}
		}
		if !matched {
			a.c.SyslogFiltered.Add(1)
		}
	}
	for {
		select {
		case <-tick.C:
			for drained := false; !drained; {
				select {
				case ev := <-a.syslogCh:
					handle(ev)
				default:
					drained = true
				}
			}
			if err := a.acc.flushDue(a.now(), a.cfg.Delivery.FlushInterval); err != nil {
				a.collectError("queue syslog batch", err)
			}
		case <-ctx.Done():
			for drained := false; !drained; {
				select {
				case ev := <-a.syslogCh:
					handle(ev)
				default:
					drained = true
				}
			}
			if err := a.acc.flushDue(a.now(), 0); err != nil {
				a.collectError("queue syslog batch", err)
			}
			return
		}
	}
}

// runPerf samples one performanceCounters data source until ctx ends.
func (a *Agent) runPerf(ctx context.Context, src PerfSource, perfTargets, imTargets []target) {
	var specs []perf.Specifier
	for _, s := range src.CounterSpecifiers {
		sp, err := perf.ParseSpecifier(s)
		if err != nil {
			a.collectError("bad counter specifier", err)
			continue
		}
		if !sp.IsVMInsights() {
			specs = append(specs, sp)
		}
	}
	every := time.Duration(max(src.SamplingFrequencyInSeconds, 1)) * time.Second
	if a.perfEvery > 0 {
		every = a.perfEvery
	}
	prev, err := a.perfReader.Read(a.now())
	if err != nil {
		a.collectError("read performance counters", err)
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := a.now()
		cur, err := a.perfReader.Read(now)
		if err != nil && cur == nil {
			a.collectError("read performance counters", err)
			continue
		}
		if prev != nil {
			if len(perfTargets) > 0 && len(specs) > 0 {
				recs := a.perfRecords(perf.Samples(prev, cur), specs, now)
				a.c.PerfSamples.Add(uint64(len(recs)))
				for _, t := range perfTargets {
					if err := a.enqueue(t, recs); err != nil {
						a.collectError("queue performance counters", err)
					}
				}
			}
			if len(imTargets) > 0 {
				recs := a.insightsRecords(perf.VMInsights(prev, cur), now)
				a.c.PerfSamples.Add(uint64(len(recs)))
				for _, t := range imTargets {
					if err := a.enqueue(t, recs); err != nil {
						a.collectError("queue insights metrics", err)
					}
				}
			}
		}
		prev = cur
	}
}

// runFiles tails one logFiles data source into one target until ctx ends.
// Positions are committed only after the records are in the disk queue.
func (a *Agent) runFiles(ctx context.Context, rule *DCR, src LogFileSource, t target) {
	start, err := recordStart(src.Settings.Text.RecordStartTimestampFormat)
	if err != nil {
		a.collectError("log file data source "+src.Name, err)
		return
	}
	key := sha256.Sum256([]byte(rule.ImmutableID + "\x00" + src.Name + "\x00" + t.Stream))
	tl, err := tail.Open(tail.Options{
		Patterns:      src.FilePatterns,
		StatePath:     filepath.Join(a.cfg.StateDir, "files", hex.EncodeToString(key[:12])+".json"),
		RecordStart:   start,
		ReadFromStart: a.cfg.Files.ReadFromStart,
		FlushAfter:    max(2*a.cfg.Files.PollInterval, time.Second),
		Now:           a.now,
		Logger:        a.log.With(slog.String("data_source", src.Name)),
	})
	if err != nil {
		a.collectError("log file data source "+src.Name, err)
		return
	}
	defer tl.Close()
	tick := time.NewTicker(a.cfg.Files.PollInterval)
	defer tick.Stop()
	var u unqueued
	for {
		switch {
		case u.empty():
			a.pollFiles(tl, src, t, &u)
		case a.retry(&u, "log records"):
			if err := tl.Commit(); err != nil { // what the retry just queued
				a.collectError("save log file checkpoints", err)
			}
			a.pollFiles(tl, src, t, &u)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// pollFiles reads what the files gained and queues it; the checkpoints are
// committed only when every record is in the queue (u empty). Called with u
// empty.
func (a *Agent) pollFiles(tl *tail.Tailer, src LogFileSource, t target, u *unqueued) {
	recs, err := tl.Poll()
	if err != nil {
		a.collectError("read log files", err)
	}
	if len(recs) > 0 {
		now := a.now()
		out := make([][]byte, 0, len(recs))
		for _, r := range recs {
			b, err := a.fileRecord(src.Format, r.Path, r.Text, now)
			if err != nil {
				a.c.CollectErrors.Add(1)
				continue
			}
			out = append(out, b)
		}
		a.queueOrKeep(u, []target{t}, out, "log records")
	}
	if !u.empty() {
		return // not committed: retried from memory, or read again after a restart
	}
	if err := tl.Commit(); err != nil {
		a.collectError("save log file checkpoints", err)
	}
}

// runHeartbeat sends a Heartbeat record to every heartbeat target at start
// and then every interval.
func (a *Agent) runHeartbeat(ctx context.Context) {
	tick := time.NewTicker(a.cfg.HeartbeatInterval)
	defer tick.Stop()
	for {
		if ts := *a.heartbeatTargets.Load(); len(ts) > 0 {
			rec, err := a.heartbeatRecord(a.now())
			if err == nil {
				for _, t := range ts {
					if err := a.enqueue(t, [][]byte{rec}); err != nil {
						a.collectError("queue heartbeat", err)
					} else {
						a.c.Heartbeats.Add(1)
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// unqueued keeps the batches a file collector could not put in the disk
// queue (a full disk, an I/O error), in order per target. While it holds
// any, the collector neither reads further nor commits its checkpoints: the
// records are retried from memory until the queue accepts them (queued
// once, no duplicates), and a restart in between reads them again from the
// last committed checkpoint (at-least-once).
type unqueued struct {
	items []unqueuedBatch
}

type unqueuedBatch struct {
	t    target
	recs [][]byte
	n    int // records counted in FileRecords once queued (first target only)
}

func (u *unqueued) empty() bool { return len(u.items) == 0 }

func (u *unqueued) has(t target) bool {
	for _, it := range u.items {
		if it.t == t {
			return true
		}
	}
	return false
}

// enqueueRest is enqueue, returning the records not queued when it fails
// part way (the groups before the failure are in the queue).
func (a *Agent) enqueueRest(t target, records [][]byte) ([][]byte, error) {
	groups, tooLarge := split(records)
	if tooLarge > 0 {
		a.c.RecordsTooLarge.Add(uint64(tooLarge))
		a.log.Warn("records larger than a batch dropped", slog.Int("records", tooLarge), slog.String("stream", t.Stream))
	}
	for i, g := range groups {
		p, err := encodePayload(t, g, a.now())
		if err == nil {
			err = a.q.Append(p)
		}
		if errors.Is(err, queue.ErrTooLarge) {
			// Permanent (split keeps batches far below the entry limit, so
			// this does not happen): dropped and counted, not retried forever.
			a.c.RecordsTooLarge.Add(uint64(len(g)))
			a.log.Warn("batch larger than a queue entry dropped", slog.Int("records", len(g)), slog.String("stream", t.Stream))
			continue
		}
		if err != nil {
			var rest [][]byte
			for _, r := range groups[i:] {
				rest = append(rest, r...)
			}
			return rest, err
		}
		a.c.BatchesQueued.Add(1)
	}
	return nil, nil
}

// queueOrKeep queues recs for every target; what a target's queue refuses
// (and everything after it for that target) is kept in u for retry.
func (a *Agent) queueOrKeep(u *unqueued, ts []target, recs [][]byte, what string) {
	if len(recs) == 0 {
		return
	}
	for i, t := range ts {
		if u.has(t) {
			u.items = append(u.items, unqueuedBatch{t: t, recs: recs, n: firstCount(i, recs)})
			continue
		}
		rest, err := a.enqueueRest(t, recs)
		if err != nil {
			a.collectError("queue "+what+" (kept in memory, checkpoint not advanced)", err)
			u.items = append(u.items, unqueuedBatch{t: t, recs: rest, n: firstCount(i, recs)})
		} else if i == 0 {
			a.c.FileRecords.Add(uint64(len(recs)))
		}
	}
}

func firstCount(i int, recs [][]byte) int {
	if i == 0 {
		return len(recs)
	}
	return 0
}

// retry queues the kept batches in order; it reports whether none is left.
func (a *Agent) retry(u *unqueued, what string) bool {
	var failed map[target]bool
	kept := u.items[:0]
	for _, it := range u.items {
		if failed[it.t] {
			kept = append(kept, it)
			continue
		}
		rest, err := a.enqueueRest(it.t, it.recs)
		if err != nil {
			if failed == nil {
				failed = map[target]bool{}
			}
			failed[it.t] = true
			it.recs = rest
			kept = append(kept, it)
			continue
		}
		a.c.FileRecords.Add(uint64(it.n))
	}
	clear(u.items[len(kept):])
	u.items = kept
	if len(failed) > 0 {
		a.c.CollectErrors.Add(1)
		return false
	}
	a.log.Info(what + ": the queue accepts records again; the kept records are queued")
	return true
}
