package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"custos/internal/agent/perf"
	"custos/internal/agent/queue"
	"custos/internal/agent/syslog"
	"custos/internal/enroll"
)

// Options configure an Agent. Config is required; the rest have defaults.
type Options struct {
	Config Config
	Logger *slog.Logger // nil discards
	// Tokens supplies bearer tokens; nil → ClientCredentials from
	// Config.CredentialsFile.
	Tokens TokenSource
	// Rules supplies the data collection rules; nil → DirSource{Config.DCR.Dir}.
	Rules RuleSource
	// PerfReader reads host counters; nil → the real /proc.
	PerfReader *perf.Reader
	// PerfInterval overrides every data source's sampling frequency (tests).
	PerfInterval time.Duration
	Now          func() time.Time
}

// Agent collects what its data collection rules ask for and delivers it to
// the Logs Ingestion API through an on-disk queue. Run it once.
type Agent struct {
	cfg        Config
	log        *slog.Logger
	now        func() time.Time
	q          *queue.Queue
	tokens     TokenSource
	identity   string
	sender     *sender
	rules      RuleSource
	perfReader *perf.Reader
	perfEvery  time.Duration
	computer   string
	node       string // Kubernetes node name (Computer of container records)
	agentID    string
	host       hostInfo

	c     counters
	board statusBoard
	acc   *accumulator

	syslogCh         chan syslogEvent
	syslogRoutes     atomic.Pointer[[]syslogRoute]
	heartbeatTargets atomic.Pointer[[]target]

	syslog *syslogServer
	lock   *os.File
}

// New prepares an agent: it validates the configuration, takes the state
// directory lock, opens the queue and binds the syslog sockets (so that a
// port conflict is reported before Run).
func New(opts Options) (*Agent, error) {
	cfg := opts.Config
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	a := &Agent{cfg: cfg, log: log, now: now, perfReader: opts.PerfReader, perfEvery: opts.PerfInterval,
		syslogCh: make(chan syslogEvent, cfg.Syslog.QueueSize), host: readHostInfo()}
	if a.perfReader == nil {
		a.perfReader = &perf.Reader{}
	}
	a.computer = cfg.Computer
	if k := cfg.Kubernetes; k.Enabled {
		a.node = k.NodeName
		if a.node == "" {
			a.node = os.Getenv("NODE_NAME")
		}
		if a.computer == "" {
			a.computer = a.node // in a pod the host name is the pod's
		}
		if a.cfg.ResourceID == "" {
			a.cfg.ResourceID = k.ClusterResourceID
		}
	}
	if a.computer == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("host name: %w", err)
		}
		a.computer = h
	}
	if a.node == "" {
		a.node = a.computer
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			a.close()
		}
	}()
	if err := a.lockState(); err != nil {
		return nil, err
	}
	agentID, err := loadAgentID(filepath.Join(cfg.StateDir, "agent-id"))
	if err != nil {
		return nil, err
	}
	a.agentID = agentID
	client, err := NewHTTPClient(cfg.CAFile, cfg.Proxy, cfg.Delivery.Timeout)
	if err != nil {
		return nil, err
	}
	a.tokens = opts.Tokens
	a.identity = "custom token source"
	var sources []RuleSource
	if opts.Rules != nil {
		sources = append(sources, opts.Rules)
	}
	id, err := enroll.Load(cfg.IdentityPath())
	switch {
	case err == nil:
		if a.tokens == nil {
			ts := enroll.NewTokenSource(id, client, now)
			a.tokens = machineTokens{ts}
			if opts.Rules == nil {
				sources = append(sources, NewServerSource(client, ts, id))
			}
		}
		a.identity = "machine " + id.ID + " (managed identity " + id.ClientID + ", key " + id.KeyID + ")"
		if k := &a.cfg.Kubernetes; k.Enabled && IsConnectedClusterID(id.ID) {
			a.identity = "cluster " + id.ID + " (managed identity " + id.ClientID + ", key " + id.KeyID + ")"
			if k.ClusterResourceID == "" {
				k.ClusterResourceID = id.ID
			}
			if k.ClusterName == "" {
				k.ClusterName = id.ID[strings.LastIndexByte(id.ID, '/')+1:]
			}
		}
		if a.cfg.ResourceID == "" {
			a.cfg.ResourceID = id.ID
		}
	case errors.Is(err, enroll.ErrNotEnrolled):
		if a.tokens == nil {
			if cfg.CredentialsFile == "" {
				return nil, fmt.Errorf("this machine is not enrolled (no identity in %s): run `custos-agent enroll`, or set credentialsFile", cfg.IdentityPath())
			}
			creds, err := LoadCredentials(cfg.CredentialsFile)
			if err != nil {
				return nil, err
			}
			a.tokens = NewClientCredentials(cfg.Endpoint, creds, client, log, now)
			a.identity = "service principal " + creds.ClientID + " (client secret)"
		}
	default:
		return nil, fmt.Errorf("load machine identity: %w", err)
	}
	if k := a.cfg.Kubernetes; k.Enabled {
		if k.ClusterResourceID == "" {
			return nil, errors.New("kubernetes mode needs the cluster's identity: enroll the cluster (custos-agent enroll --cluster NAME) or set kubernetes.clusterResourceId")
		}
		if a.cfg.ResourceID == "" {
			a.cfg.ResourceID = k.ClusterResourceID
		}
		if a.cfg.Kubernetes.ClusterName == "" {
			a.cfg.Kubernetes.ClusterName = k.ClusterResourceID[strings.LastIndexByte(k.ClusterResourceID, '/')+1:]
		}
	}
	if opts.Rules == nil && cfg.DCR.Dir != "" {
		sources = append(sources, DirSource{Dir: cfg.DCR.Dir})
	}
	switch len(sources) {
	case 0:
		return nil, errors.New("no data collection rules: enroll the machine and associate rules with it, or set dcr.dir")
	case 1:
		a.rules = sources[0]
	default:
		a.rules = multiSource(sources)
	}
	a.sender = &sender{endpoint: strings.TrimRight(cfg.Endpoint, "/"), client: client, tokens: a.tokens}
	if a.q, err = queue.Open(queue.Options{Dir: cfg.QueueDir(), MaxBytes: cfg.Buffer.MaxBytes, Logger: log.With(slog.String("component", "queue"))}); err != nil {
		return nil, err
	}
	a.acc = newAccumulator(a.enqueue)
	empty, none := []syslogRoute{}, []target{}
	a.syslogRoutes.Store(&empty)
	a.heartbeatTargets.Store(&none)
	if a.syslog, err = a.openSyslog(); err != nil {
		return nil, err
	}
	ok = true
	return a, nil
}

// IsConnectedClusterID reports whether id names a
// Microsoft.Kubernetes/connectedClusters resource.
func IsConnectedClusterID(id string) bool {
	return strings.Contains(strings.ToLower(id), "/providers/microsoft.kubernetes/connectedclusters/")
}

// lockState takes an exclusive lock on <stateDir>/lock so that two agents
// never share a queue.
func (a *Agent) lockState() error {
	f, err := os.OpenFile(filepath.Join(a.cfg.StateDir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("state lock: %w", err)
	}
	if err := flock(f); err != nil {
		f.Close()
		return fmt.Errorf("state directory %s is in use by another custos-agent: %w", a.cfg.StateDir, err)
	}
	a.lock = f
	return nil
}

func loadAgentID(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) == 36 {
		return strings.TrimSpace(string(b)), nil
	}
	id := newRequestID()
	if id == "" {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("agent id: %w", err)
		}
		id = hex.EncodeToString(b[:])
	}
	if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("agent id: %w", err)
	}
	return id, nil
}

// SyslogAddrs returns the bound UDP and TCP syslog addresses ("" if off).
func (a *Agent) SyslogAddrs() (udp, tcp string) { return a.syslog.addrs() }

// enqueue writes records for t to the disk queue in batches of at most
// MaxBatchBytes; it returns once they are fsynced.
func (a *Agent) enqueue(t target, records [][]byte) error {
	if len(records) == 0 {
		return nil
	}
	groups, tooLarge := split(records)
	if tooLarge > 0 {
		a.c.RecordsTooLarge.Add(uint64(tooLarge))
		a.log.Warn("records larger than a batch dropped", slog.Int("records", tooLarge), slog.String("stream", t.Stream))
	}
	for _, g := range groups {
		p, err := encodePayload(t, g, a.now())
		if err != nil {
			return err
		}
		if err := a.q.Append(p); err != nil {
			return err
		}
		a.c.BatchesQueued.Add(1)
	}
	return nil
}

func (a *Agent) collectError(what string, err error) {
	a.c.CollectErrors.Add(1)
	a.log.Warn(what, slog.Any("error", err))
	a.board.update(func(s *Status) { s.LastError, s.LastErrorAt = what+": "+err.Error(), a.now() })
}

// Run collects and delivers until ctx ends, then flushes what is in memory
// to the disk queue and returns. The queue keeps undelivered data for the
// next start.
func (a *Agent) Run(ctx context.Context) error {
	defer a.close()
	start := a.now()
	a.board.update(func(s *Status) {
		*s = Status{PID: os.Getpid(), Version: Version, StartedAt: start, Endpoint: a.cfg.Endpoint, Computer: a.computer,
			ResourceID: a.cfg.ResourceID, Identity: a.identity}
	})
	if a.cfg.ResourceID == "" {
		a.log.Warn("no resourceId configured; records carry no _ResourceId until the machine is enrolled")
	}
	var metricsSrv *http.Server
	if a.cfg.Metrics.Listen != "" {
		reg := prometheus.NewRegistry()
		if err := a.c.register(reg, a.queueStatus); err != nil {
			return err
		}
		ln, err := net.Listen("tcp", a.cfg.Metrics.Listen)
		if err != nil {
			return fmt.Errorf("metrics listener: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go metricsSrv.Serve(ln)
		a.log.Info("metrics endpoint listening", slog.String("addr", ln.Addr().String()))
	}

	udp, tcp := a.syslog.addrs()
	a.log.Info("custos-agent started", slog.String("version", Version), slog.String("endpoint", a.cfg.Endpoint),
		slog.String("computer", a.computer), slog.String("syslog_udp", udp), slog.String("syslog_tcp", tcp),
		slog.String("identity", a.identity))

	var wg sync.WaitGroup
	bg := func(f func(context.Context), c context.Context) {
		wg.Add(1)
		go func() { defer wg.Done(); f(c) }()
	}
	// The syslog worker outlives the collectors so that it drains last.
	workerCtx, stopWorker := context.WithCancel(context.WithoutCancel(ctx))
	workerDone := make(chan struct{})
	go func() { defer close(workerDone); a.syslogWorker(workerCtx) }()
	a.syslog.start()

	bg(a.deliver, ctx)
	bg(a.runHeartbeat, ctx)
	bg(a.writeStatusLoop, ctx)

	var col collectors
	a.pollRules(ctx, &col, "")
	wg.Wait()

	// Shutdown: stop intake, then flush what is buffered into the queue.
	col.stop()
	a.syslog.close()
	stopWorker()
	<-workerDone
	if metricsSrv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		metricsSrv.Shutdown(sctx)
		cancel()
	}
	st := a.status()
	st.Stopped = true
	if err := writeStatus(a.cfg.StatusPath(), st); err != nil {
		a.log.Warn("write status", slog.Any("error", err))
	}
	a.log.Info("custos-agent stopped", slog.Int("queued_batches", st.Queue.Entries))
	return nil
}

func (a *Agent) close() {
	if a.syslog != nil {
		a.syslog.close()
		a.syslog = nil
	}
	if a.q != nil {
		a.q.Close()
		a.q = nil
	}
	if a.lock != nil {
		a.lock.Close()
		a.lock = nil
	}
}

// collectors are the running per-rule collection goroutines.
type collectors struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (c *collectors) stop() {
	if c.cancel != nil {
		c.cancel()
		c.wg.Wait()
		c.cancel = nil
	}
}

// pollRules reloads the rules every poll interval until ctx ends and
// reconfigures collection when they change. A rule source error keeps the
// current configuration.
func (a *Agent) pollRules(ctx context.Context, col *collectors, version string) {
	tick := time.NewTicker(a.cfg.DCR.PollInterval)
	defer tick.Stop()
	for {
		rules, v, err := a.rules.Rules(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			a.log.Warn("cannot load data collection rules; keeping the current ones", slog.Any("error", err))
			a.board.update(func(s *Status) { s.RulesError = err.Error() })
		case err == nil && v != version:
			a.apply(ctx, col, rules)
			version = v
			a.board.update(func(s *Status) { s.RulesVersion, s.RulesError = v, "" })
		case err == nil:
			a.board.update(func(s *Status) { s.RulesError = "" })
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// apply replaces the running collectors with those rules ask for. File
// tailers stop after committing what they queued and the new ones resume
// from the checkpoints; syslog routes are swapped without closing sockets.
func (a *Agent) apply(ctx context.Context, col *collectors, rules []*DCR) {
	col.stop()
	cctx, cancel := context.WithCancel(ctx)
	col.cancel = cancel
	var routes []syslogRoute
	var hb []target
	var statuses []RuleStatus
	start := func(f func()) {
		col.wg.Add(1)
		go func() { defer col.wg.Done(); f() }()
	}
	for _, r := range rules {
		st := RuleStatus{Name: r.Name, ImmutableID: r.ImmutableID, Origin: r.Origin, ETag: r.ETag, Unsupported: r.Unsupported}
		targets := func(streams []string) []target {
			var out []target
			for _, s := range streams {
				if r.flows(s) {
					out = append(out, target{r.ImmutableID, s})
				} else {
					a.log.Warn("stream has no data flow in its rule; not collected", slog.String("rule", r.Name), slog.String("stream", s))
				}
			}
			return out
		}
		for _, src := range r.DataSources.Syslog {
			f, err := syslog.NewFilter(src.FacilityNames, src.LogLevels)
			if err != nil {
				a.collectError("syslog data source "+src.Name, err)
				continue
			}
			for _, t := range targets(src.Streams) {
				routes = append(routes, syslogRoute{filter: f, target: t})
				st.Sources = append(st.Sources, "syslog:"+src.Name)
			}
		}
		for _, src := range r.DataSources.PerformanceCounters {
			var pt, it []target
			for _, t := range targets(src.Streams) {
				if strings.EqualFold(t.Stream, StreamInsightsMetrics) {
					it = append(it, t)
				} else {
					pt = append(pt, t)
				}
			}
			if len(pt)+len(it) > 0 {
				src := src
				start(func() { a.runPerf(cctx, src, pt, it) })
				st.Sources = append(st.Sources, "performanceCounters:"+src.Name)
			}
		}
		for _, src := range r.DataSources.LogFiles {
			for _, t := range targets(src.Streams) {
				src, t, r := src, t, r
				start(func() { a.runFiles(cctx, r, src, t) })
				st.Sources = append(st.Sources, "logFiles:"+src.Name)
			}
		}
		for _, ext := range r.DataSources.Extensions {
			st.Sources = append(st.Sources, a.startKube(cctx, r, ext, targets, start)...)
		}
		if r.flows(StreamHeartbeat) {
			hb = append(hb, target{r.ImmutableID, StreamHeartbeat})
			st.Sources = append(st.Sources, "heartbeat")
		}
		for _, k := range r.Unsupported {
			a.log.Warn("data source kind not supported by custos-agent; ignored", slog.String("rule", r.Name), slog.String("kind", k))
		}
		statuses = append(statuses, st)
	}
	if routes == nil {
		routes = []syslogRoute{}
	}
	if hb == nil {
		hb = []target{}
	}
	a.syslogRoutes.Store(&routes)
	a.heartbeatTargets.Store(&hb)
	a.board.update(func(s *Status) { s.Rules = statuses })
	a.log.Info("data collection rules applied", slog.Int("rules", len(rules)), slog.Int("syslog_routes", len(routes)),
		slog.Int("heartbeat_targets", len(hb)))
}

// deliver sends queued batches in order until ctx ends. A batch leaves the
// queue only when the API acknowledged it (204) or rejected it for good.
func (a *Agent) deliver(ctx context.Context) {
	backoff := a.cfg.Delivery.MinBackoff
	for {
		e, err := a.q.Next(ctx)
		if err != nil {
			if ctx.Err() == nil {
				a.log.Error("queue unreadable; delivery stopped", slog.Any("error", err))
				a.board.update(func(s *Status) { s.LastError, s.LastErrorAt = "queue: "+err.Error(), a.now() })
			}
			return
		}
		h, body, err := decodePayload(e.Payload)
		if err != nil {
			a.log.Error("unreadable batch in the queue; dropped", slog.Any("error", err))
			a.c.DeadLetters.Add(1)
			if err := a.q.Skip(e); err != nil {
				return
			}
			continue
		}
		res, err := a.sender.send(ctx, h.DCR, h.Stream, body)
		if ctx.Err() != nil {
			return // the batch stays queued
		}
		now := a.now()
		switch res.outcome {
		case sent:
			if err := a.q.Ack(e); err != nil {
				a.log.Error("cannot acknowledge a sent batch", slog.Any("error", err))
				return
			}
			a.c.BatchesSent.Add(1)
			a.c.RecordsSent.Add(uint64(h.Records))
			a.board.update(func(s *Status) { s.LastSendAt, s.LastStatus, s.IdentityError = now, res.status, "" })
			backoff = a.cfg.Delivery.MinBackoff
			continue
		case deadLetter:
			a.log.Error("ingestion rejected a batch; dropped (dead letter)", slog.String("dcr", h.DCR), slog.String("stream", h.Stream),
				slog.Int("records", h.Records), slog.Int("status", res.status), slog.String("code", res.code), slog.String("message", res.message))
			if err := a.q.Skip(e); err != nil {
				return
			}
			a.c.DeadLetters.Add(1)
			a.c.DeadLetterRecords.Add(uint64(h.Records))
			a.board.update(func(s *Status) {
				s.LastSendAt, s.LastStatus = now, res.status
				s.LastError, s.LastErrorAt = fmt.Sprintf("dead letter: %d %s: %s", res.status, res.code, res.message), now
			})
			continue
		}
		a.c.SendErrors.Add(1)
		wait := backoff/2 + mrand.N(backoff/2+1)
		if res.retryAfter > wait {
			wait = res.retryAfter
		}
		backoff = min(backoff*2, a.cfg.Delivery.MaxBackoff)
		level := slog.LevelWarn
		if res.outcome == retryAuth {
			level = slog.LevelError // an operator must grant access or fix the credential
		}
		a.log.LogAttrs(ctx, level, "delivery failed; will retry", slog.String("dcr", h.DCR), slog.String("stream", h.Stream),
			slog.Int("status", res.status), slog.String("code", res.code), slog.Any("error", err), slog.Duration("retry_in", wait))
		a.board.update(func(s *Status) {
			if res.status != 0 {
				s.LastStatus = res.status
			}
			s.LastError, s.LastErrorAt = errString(err), now
			if res.outcome == retryAuth {
				s.IdentityError = errString(err)
			}
		})
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (a *Agent) queueStatus() QueueStatus {
	if a.q == nil {
		return QueueStatus{}
	}
	s := a.q.Stats()
	return QueueStatus{Entries: s.Entries, Bytes: s.Bytes, MaxBytes: a.cfg.Buffer.MaxBytes, Dropped: s.Dropped, DroppedBytes: s.DroppedBytes}
}

func (a *Agent) status() Status {
	s := a.board.get()
	s.UpdatedAt = a.now()
	s.Queue = a.queueStatus()
	s.Counters = a.c.snapshot()
	return s
}

// Status returns the agent's current status.
func (a *Agent) Status() Status { return a.status() }

func (a *Agent) writeStatusLoop(ctx context.Context) {
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		if err := writeStatus(a.cfg.StatusPath(), a.status()); err != nil && !errors.Is(err, context.Canceled) {
			a.log.Warn("write status", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
