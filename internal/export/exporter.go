package export

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"custos/internal/catalog"
	"custos/internal/store"
)

// Rules is what the exporter reads from the catalog. *catalog.DB implements it.
type Rules interface {
	AllDataExports(ctx context.Context) ([]catalog.DataExport, error)
	ExportState(ctx context.Context, exportID string) (catalog.ExportState, error)
	SetExportState(ctx context.Context, st catalog.ExportState) error
}

// Source is what the exporter reads from the store. *store.DB implements it.
type Source interface {
	Querier(ctx context.Context, ref store.TableRef, tr store.TimeRange) (store.Querier, error)
	SealWorkspaceContent(ctx context.Context, workspaceID string, plaintext, aad []byte) ([]byte, error)
	OpenWorkspaceContent(ctx context.Context, workspaceID string, sealed, aad []byte) ([]byte, error)
}

var (
	_ Rules  = (*catalog.DB)(nil)
	_ Source = (*store.DB)(nil)
)

// S3Config is the non-secret part of an S3-compatible destination.
type S3Config struct {
	Endpoint    string `json:"endpoint"`
	Region      string `json:"region,omitempty"`
	AccessKeyID string `json:"accessKeyId"`
}

func (c *S3Config) region() string {
	if c.Region == "" {
		return "us-east-1"
	}
	return c.Region
}

// destConfig is catalog.DataExport.DestConfig.
type destConfig struct {
	S3 *S3Config `json:"s3,omitempty"`
}

// Options configure New. A zero field means the documented default.
type Options struct {
	// Rules is the catalog (required).
	Rules Rules
	// Source is the store (required).
	Source Source
	// Signer signs the manifests (required).
	Signer *SigningKey
	// Logger receives operational logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// FlushInterval is how often pending rows are written. Default 1 minute.
	FlushInterval time.Duration
	// RefreshInterval is how often the rules are re-read. Default 10 s.
	RefreshInterval time.Duration
	// CatchUpMargin is how far before a rule's low-water mark a restart
	// re-reads (rows in it may be exported twice). Default 1 minute.
	CatchUpMargin time.Duration
	// MaxPendingRows bounds the rows held per rule between flushes; beyond
	// it commits are not queued and the rule re-reads the store instead.
	// Default 1,000,000.
	MaxPendingRows int
	// AllowedDirs are the directories under which file:// destinations may
	// be created. Empty means directory destinations are refused.
	AllowedDirs []string
	// InsecureS3HTTP allows http:// S3 endpoints (credentials and data in
	// clear text). Off by default.
	InsecureS3HTTP bool
	// HTTPClient is used for S3; nil means a client with a 1-minute timeout.
	HTTPClient *http.Client
}

// Exporter runs the data export rules. Safe for concurrent use; OnCommit
// never blocks on I/O.
type Exporter struct {
	opts Options
	log  *slog.Logger

	mu    sync.Mutex              // guards rules, index and the rules' pending rows
	rules map[string]*ruleState   // by export ID
	index map[string][]*ruleState // by lower-case workspace customer ID + "\x00" + table

	runMu sync.Mutex // one flush pass at a time
	stop  context.CancelFunc
	done  chan struct{}

	metricsMu sync.Mutex // guards the counters
	rows      map[string]uint64
	files     map[string]uint64
	failures  map[string]uint64
}

// ruleState is one active rule.
type ruleState struct {
	rule catalog.DataExport
	dest Destination

	// Guarded by Exporter.mu:
	pending     []pendingBatch
	pendingRows int
	overflow    bool  // commits were dropped: re-read the store from lowWater
	catchUp     bool  // re-read the store from lowWater before the next flush
	catchUpTo   int64 // ... up to this _TimeReceived (exclusive); 0 means no bound
	oldest      int64

	// Used only by the flush pass (runMu):
	lowWater int64
	seq      int64
	head     string
	orphans  []FileEntry // files of a failed flush, listed as recovered in the next manifest
}

type pendingBatch struct {
	table string
	b     *store.Batch
	maxTR int64 // largest _TimeReceived in b
	minTR int64
}

// New returns an exporter; Start runs it.
func New(opts Options) (*Exporter, error) {
	if opts.Rules == nil || opts.Source == nil || opts.Signer == nil {
		return nil, errors.New("export: New needs Rules, Source and Signer")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = time.Minute
	}
	if opts.RefreshInterval <= 0 {
		opts.RefreshInterval = 10 * time.Second
	}
	if opts.CatchUpMargin <= 0 {
		opts.CatchUpMargin = time.Minute
	}
	if opts.MaxPendingRows <= 0 {
		opts.MaxPendingRows = 1_000_000
	}
	return &Exporter{opts: opts, log: opts.Logger, rules: map[string]*ruleState{}, index: map[string][]*ruleState{},
		rows: map[string]uint64{}, files: map[string]uint64{}, failures: map[string]uint64{}}, nil
}

func indexKey(workspaceID, table string) string {
	return strings.ToLower(workspaceID) + "\x00" + strings.ToLower(table)
}

// OnCommit is the store's commit hook: it queues the committed rows of
// exported tables. The exporter takes ownership of b.
func (e *Exporter) OnCommit(ref store.TableRef, b *store.Batch) {
	if b == nil || b.Len == 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	rs := e.index[indexKey(ref.WorkspaceID, ref.Table)]
	if len(rs) == 0 {
		return
	}
	minTR, maxTR := timeReceivedRange(b)
	for _, r := range rs {
		if r.overflow {
			continue
		}
		if r.pendingRows+b.Len > e.opts.MaxPendingRows {
			r.overflow = true
			continue
		}
		if len(r.pending) == 0 || minTR < r.oldest {
			r.oldest = minTR
		}
		r.pending = append(r.pending, pendingBatch{table: ref.Table, b: b, minTR: minTR, maxTR: maxTR})
		r.pendingRows += b.Len
	}
}

func timeReceivedRange(b *store.Batch) (lo, hi int64) {
	v := b.Col(store.ColTimeReceived)
	if v == nil || len(v.Int) == 0 {
		return 0, 0
	}
	lo, hi = v.Int[0], v.Int[0]
	for _, t := range v.Int[1:] {
		lo, hi = min(lo, t), max(hi, t)
	}
	return lo, hi
}

// Start runs the exporter until ctx ends or Close is called.
func (e *Exporter) Start(ctx context.Context) {
	ctx, e.stop = context.WithCancel(ctx)
	e.done = make(chan struct{})
	go func() {
		defer close(e.done)
		e.loop(ctx)
	}()
}

// Close stops the exporter after a final flush attempt and waits for it.
func (e *Exporter) Close() error {
	if e.stop == nil {
		return nil
	}
	e.stop()
	<-e.done
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e.FlushNow(ctx)
	return nil
}

func (e *Exporter) loop(ctx context.Context) {
	e.Refresh(ctx)
	flush := time.NewTicker(e.opts.FlushInterval)
	defer flush.Stop()
	refresh := time.NewTicker(e.opts.RefreshInterval)
	defer refresh.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-refresh.C:
			e.Refresh(ctx)
		case <-flush.C:
			e.FlushNow(ctx)
		}
	}
}

// Refresh re-reads the rules: new or changed enabled rules become active
// (a new one exports what arrived since its creation; a known one resumes
// from its low-water mark), removed or disabled ones stop.
func (e *Exporter) Refresh(ctx context.Context) {
	all, err := e.opts.Rules.AllDataExports(ctx)
	if err != nil {
		e.log.Warn("export rules unavailable", slog.String("error", err.Error()))
		return
	}
	e.runMu.Lock()
	defer e.runMu.Unlock()
	want := map[string]catalog.DataExport{}
	for _, r := range all {
		if r.Enabled {
			want[r.ExportID] = r
		}
	}
	e.mu.Lock()
	cur := make(map[string]*ruleState, len(e.rules))
	for id, r := range e.rules {
		cur[id] = r
	}
	e.mu.Unlock()
	next := map[string]*ruleState{}
	for id, r := range want {
		if old := cur[id]; old != nil && old.rule.Audit.ModifiedAt.Equal(r.Audit.ModifiedAt) {
			next[id] = old
			continue
		}
		rs, err := e.activate(ctx, r, cur[id])
		if err != nil {
			e.log.Warn("data export rule not started", slog.String("export_id", id), slog.String("rule", r.ID()),
				slog.String("error", err.Error()))
			e.countFailure(id)
			continue
		}
		next[id] = rs
	}
	e.mu.Lock()
	e.rules = next
	e.index = map[string][]*ruleState{}
	for _, rs := range next {
		for _, t := range rs.rule.TableNames {
			k := indexKey(rs.rule.Workspace.CustomerID, t)
			e.index[k] = append(e.index[k], rs)
		}
	}
	// The hook now delivers every commit stamped from here on; a catch-up
	// of a newly activated rule reads the store only for what came before.
	to := store.TicksFromTime(e.opts.Now())
	for _, rs := range next {
		if rs.catchUp && rs.catchUpTo == 0 && cur[rs.rule.ExportID] != rs {
			rs.catchUpTo = to
		}
	}
	e.mu.Unlock()
}

// activate opens a rule's destination and state. A rule already running
// (changed settings) keeps its pending rows.
func (e *Exporter) activate(ctx context.Context, r catalog.DataExport, old *ruleState) (*ruleState, error) {
	dest, err := e.destination(ctx, &r)
	if err != nil {
		return nil, err
	}
	rs := &ruleState{rule: r, dest: dest}
	if old != nil {
		e.mu.Lock()
		rs.pending, rs.pendingRows, rs.overflow, rs.oldest = old.pending, old.pendingRows, old.overflow, old.oldest
		old.pending, old.pendingRows = nil, 0
		e.mu.Unlock()
		rs.lowWater, rs.seq, rs.head, rs.orphans = old.lowWater, old.seq, old.head, old.orphans
		if old.dest.String() == dest.String() {
			return rs, nil
		}
	}
	st, err := e.opts.Rules.ExportState(ctx, r.ExportID)
	if err != nil {
		return nil, err
	}
	if old == nil {
		if st.Seq == 0 && st.LowWater == 0 {
			rs.lowWater = store.TicksFromTime(r.Audit.CreatedAt)
		} else {
			rs.lowWater = st.LowWater - int64(e.opts.CatchUpMargin/100)
		}
		rs.catchUp = true
	}
	// The destination is the truth for the chain: a crash may have left a
	// manifest the catalog did not record, and files no manifest lists.
	if err := e.reconcile(ctx, rs, st); err != nil {
		return nil, err
	}
	return rs, nil
}

// reconcile reads the destination's chain, takes its head, and lists the
// files of unfinished flushes as orphans to be recorded as recovered.
func (e *Exporter) reconcile(ctx context.Context, rs *ruleState, st catalog.ExportState) error {
	objs, err := rs.dest.List(ctx, "")
	if err != nil {
		return err
	}
	var rep Report
	c, err := readChain(ctx, rs.dest, objs, e.opts.Signer.Public(), &rep)
	if err != nil {
		return err
	}
	if len(rep.Problems) > 0 {
		return fmt.Errorf("destination %s fails verification, refusing to extend its chain: %w", rs.dest, rep.Problems[0])
	}
	sizes := map[string]int64{}
	for _, o := range objs {
		sizes[o.Name] = o.Size
	}
	for name, f := range c.files {
		if size, ok := sizes[name]; !ok || size != f.Size {
			return fmt.Errorf("destination %s fails verification, refusing to extend its chain: %s is missing or changed size", rs.dest, name)
		}
	}
	if c.seq < st.Seq {
		return fmt.Errorf("destination %s holds %d manifests but %d were written: manifests were removed", rs.dest, c.seq, st.Seq)
	}
	rs.seq, rs.head = c.seq, c.head
	rs.orphans = nil
	for _, o := range objs {
		if strings.HasPrefix(o.Name, manifestDir+"/") {
			continue
		}
		if _, ok := c.files[o.Name]; ok {
			continue
		}
		b, err := rs.dest.Get(ctx, o.Name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		rs.orphans = append(rs.orphans, FileEntry{Name: o.Name, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:]), Recovered: true})
	}
	return nil
}

// destination opens a rule's destination, unsealing its credential.
func (e *Exporter) destination(ctx context.Context, r *catalog.DataExport) (Destination, error) {
	var cfg destConfig
	if r.DestConfig != "" {
		if err := json.Unmarshal([]byte(r.DestConfig), &cfg); err != nil {
			return nil, fmt.Errorf("%w: configuration: %v", ErrDestination, err)
		}
	}
	secret := ""
	if len(r.DestSecretSealed) > 0 {
		b, err := e.opts.Source.OpenWorkspaceContent(ctx, r.Workspace.CustomerID, r.DestSecretSealed, secretAAD(r.ExportID))
		if err != nil {
			return nil, fmt.Errorf("unseal destination credential: %w", err)
		}
		secret = string(b)
	}
	d, err := ParseDestinationURI(r.Destination, cfg.S3, secret)
	if err != nil {
		return nil, err
	}
	if s3, ok := d.(*S3Destination); ok {
		s3.Client, s3.Now = e.opts.HTTPClient, e.opts.Now
	}
	return d, nil
}

func secretAAD(exportID string) []byte {
	return []byte("dataExport/" + exportID + "/destination-secret")
}

// Prepare validates a rule's destination for the ARM API and fills its
// DestConfig and sealed credential. s3 and secret come from the request
// (secret nil keeps old's credential when the endpoint and key ID are
// unchanged). old is the stored rule, nil if new.
func (e *Exporter) Prepare(ctx context.Context, old, next *catalog.DataExport, s3 *S3Config, secret *string) error {
	bad := func(format string, args ...any) error {
		return catalog.Invalid("InvalidParameter", "properties.destination", format, args...)
	}
	uri := next.Destination
	switch {
	case strings.HasPrefix(uri, "file://"):
		if s3 != nil || secret != nil {
			return bad("A file:// destination takes no custosS3 settings.")
		}
		p := filepath.Clean(strings.TrimPrefix(uri, "file://"))
		if !filepath.IsAbs(p) {
			return bad("The destination '%s' is not an absolute file:// path.", uri)
		}
		if !e.dirAllowed(p) {
			return bad("The directory '%s' is not under an allowed export directory (setting export.allowedDirectories).", p)
		}
		next.Destination, next.DestConfig, next.DestSecretSealed = "file://"+p, "{}", nil
		return nil
	case strings.HasPrefix(uri, "s3://"):
		if s3 == nil || s3.Endpoint == "" || s3.AccessKeyID == "" {
			return bad("An s3:// destination needs destination.custosS3 with endpoint and accessKeyId.")
		}
		u, err := url.Parse(s3.Endpoint)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return bad("The S3 endpoint '%s' must be https://host[:port].", s3.Endpoint)
		}
		if u.Scheme == "http" && !e.opts.InsecureS3HTTP {
			return bad("The S3 endpoint '%s' is plain http; use https (or set export.insecureS3HTTP).", s3.Endpoint)
		}
		bucket, _, _ := strings.Cut(strings.TrimPrefix(uri, "s3://"), "/")
		if !validBucket(bucket) {
			return bad("The bucket name '%s' is invalid.", bucket)
		}
		cfg, err := json.Marshal(destConfig{S3: s3})
		if err != nil {
			return err
		}
		next.DestConfig = string(cfg)
		switch {
		case secret != nil:
			if *secret == "" {
				return bad("destination.custosS3.secretAccessKey must not be empty.")
			}
			sealed, err := e.opts.Source.SealWorkspaceContent(ctx, next.Workspace.CustomerID, []byte(*secret), secretAAD(next.ExportID))
			if err != nil {
				return err
			}
			next.DestSecretSealed = sealed
		case old != nil && old.DestConfig == next.DestConfig && len(old.DestSecretSealed) > 0:
			next.DestSecretSealed = old.DestSecretSealed
		default:
			return bad("destination.custosS3.secretAccessKey is required for a new S3 destination or a changed endpoint or key ID.")
		}
		return nil
	}
	return bad("The destination '%s' must be file:///directory or s3://bucket/prefix in Custos.", truncate(uri, 200))
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

func (e *Exporter) dirAllowed(p string) bool {
	for _, root := range e.opts.AllowedDirs {
		root = filepath.Clean(root)
		if rel, err := filepath.Rel(root, p); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// FlushNow writes every rule's pending rows (after re-reading the store for
// rules that need it) and records their manifests.
func (e *Exporter) FlushNow(ctx context.Context) {
	e.runMu.Lock()
	defer e.runMu.Unlock()
	e.mu.Lock()
	rules := make([]*ruleState, 0, len(e.rules))
	for _, r := range e.rules {
		rules = append(rules, r)
	}
	e.mu.Unlock()
	sort.Slice(rules, func(i, j int) bool { return rules[i].rule.ExportID < rules[j].rule.ExportID })
	for _, rs := range rules {
		if err := e.flushRule(ctx, rs); err != nil {
			e.countFailure(rs.rule.ExportID)
			e.log.Warn("data export flush failed; retrying at the next flush", slog.String("export_id", rs.rule.ExportID),
				slog.String("destination", rs.dest.String()), slog.String("error", err.Error()))
		}
	}
}

// flushRule writes one rule's pending rows. On failure the rows stay
// pending (or the rule re-reads the store) and the files already written
// become orphans, listed as recovered in the next manifest.
func (e *Exporter) flushRule(ctx context.Context, rs *ruleState) error {
	e.mu.Lock()
	if rs.overflow {
		rs.overflow, rs.catchUp, rs.catchUpTo = false, true, 0
		rs.pending, rs.pendingRows = nil, 0
	}
	catchUp, catchUpTo := rs.catchUp, rs.catchUpTo
	rs.catchUp, rs.catchUpTo = false, 0
	cutoff := store.TicksFromTime(e.opts.Now())
	batches := rs.pending
	rs.pending, rs.pendingRows = nil, 0
	e.mu.Unlock()

	restore := func() {
		e.mu.Lock()
		rs.pending = append(batches, rs.pending...)
		for _, b := range batches {
			rs.pendingRows += b.b.Len
			rs.oldest = min(rs.oldest, b.minTR)
		}
		if catchUp && !rs.catchUp {
			rs.catchUp, rs.catchUpTo = true, catchUpTo
		} else if catchUp {
			rs.catchUpTo = 0 // an overflow meanwhile: read everything
		}
		e.mu.Unlock()
	}
	if catchUp {
		scanned, err := e.scan(ctx, rs, rs.lowWater, catchUpTo)
		if err != nil {
			restore()
			return fmt.Errorf("re-read the store: %w", err)
		}
		batches = append(scanned, batches...)
	}
	if len(batches) == 0 && len(rs.orphans) == 0 {
		if catchUp && cutoff > rs.lowWater {
			// Nothing arrived since the low-water mark: move it to the
			// time the store was read.
			rs.lowWater = cutoff
			return e.saveState(ctx, rs)
		}
		return nil
	}
	seq := rs.seq + 1
	now := e.opts.Now().UTC()
	files, rows, maxTR, err := e.writeFiles(ctx, rs, batches, seq, now)
	if err != nil {
		rs.orphans = append(rs.orphans, files...)
		restore()
		return err
	}
	low := max(rs.lowWater, maxTR+1)
	if catchUp {
		low = max(low, cutoff)
	}
	e.mu.Lock()
	if len(rs.pending) > 0 {
		low = min(low, rs.oldest)
	}
	e.mu.Unlock()
	m := &Manifest{ExportID: rs.rule.ExportID, WorkspaceResourceID: rs.rule.Workspace.ID(), Seq: seq, Previous: rs.head,
		CreatedAt: now.Format(time.RFC3339Nano), LowWater: low, Files: append(append([]FileEntry{}, rs.orphans...), files...)}
	body, err := e.opts.Signer.signManifest(m)
	if err != nil {
		return err
	}
	if err := rs.dest.Put(ctx, manifestName(seq), body); err != nil {
		rs.orphans = append(rs.orphans, files...)
		restore()
		if errors.Is(err, ErrExists) {
			// Someone else extended the chain: re-read it before the next try.
			st, _ := e.opts.Rules.ExportState(ctx, rs.rule.ExportID)
			if rerr := e.reconcile(ctx, rs, st); rerr != nil {
				return errors.Join(err, rerr)
			}
		}
		return err
	}
	sum := sha256.Sum256(body)
	rs.seq, rs.head, rs.lowWater, rs.orphans = seq, hex.EncodeToString(sum[:]), low, nil
	e.count(rs.rule.ExportID, rows, len(files))
	return e.saveState(ctx, rs)
}

func (e *Exporter) saveState(ctx context.Context, rs *ruleState) error {
	return e.opts.Rules.SetExportState(ctx, catalog.ExportState{ExportID: rs.rule.ExportID, LowWater: rs.lowWater, Seq: rs.seq, HeadHash: rs.head})
}

// objectPrefix is Azure's layout: am-<table>/WorkspaceResourceId=<id>/y=/m=/d=/h=/m=.
func objectPrefix(table, workspaceResourceID string, t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("am-%s/WorkspaceResourceId=%s/y=%04d/m=%02d/d=%02d/h=%02d/m=%02d",
		strings.ToLower(table), strings.TrimPrefix(workspaceResourceID, "/"), t.Year(), int(t.Month()), t.Day(), t.Hour(), t.Minute()/5*5)
}

// writeFiles writes one file per table (and, for Parquet, per schema) and
// returns their entries; on error, the entries of the files written so far.
func (e *Exporter) writeFiles(ctx context.Context, rs *ruleState, batches []pendingBatch, seq int64, now time.Time) ([]FileEntry, int64, int64, error) {
	type group struct {
		table   string
		batches []*store.Batch
	}
	var order []string
	groups := map[string]*group{}
	var maxTR int64
	for _, pb := range batches {
		maxTR = max(maxTR, pb.maxTR)
		k := pb.table
		if rs.rule.Format == catalog.ExportFormatParquet {
			k += "\x00" + schemaKey(pb.b.Schema)
		}
		g := groups[k]
		if g == nil {
			g = &group{table: pb.table}
			groups[k] = g
			order = append(order, k)
		}
		g.batches = append(g.batches, pb.b)
	}
	var files []FileEntry
	var rows int64
	perTable := map[string]int{}
	for _, k := range order {
		g := groups[k]
		var buf bytes.Buffer
		var n int64
		ext := ".json"
		if rs.rule.Format == catalog.ExportFormatParquet {
			ext = ".parquet"
			b := concat(g.batches)
			if err := encodeParquet(&buf, b, rs.rule.Workspace.CustomerID, g.table); err != nil {
				return files, rows, maxTR, err
			}
			n = int64(b.Len)
		} else {
			for _, b := range g.batches {
				encodeJSONLines(&buf, b, rs.rule.Workspace.CustomerID, g.table)
				n += int64(b.Len)
			}
		}
		perTable[g.table]++
		name := fmt.Sprintf("%s/PT05M-%012d-%d%s", objectPrefix(g.table, rs.rule.Workspace.ID(), now), seq, perTable[g.table], ext)
		data := buf.Bytes()
		if err := rs.dest.Put(ctx, name, data); err != nil {
			if errors.Is(err, ErrExists) {
				// A file of an unfinished flush with this sequence number:
				// list it as recovered and write under another name.
				if b, gerr := rs.dest.Get(ctx, name); gerr == nil {
					sum := sha256.Sum256(b)
					rs.orphans = append(rs.orphans, FileEntry{Name: name, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:]), Recovered: true})
				}
				name = fmt.Sprintf("%s/PT05M-%012d-%d-%d%s", objectPrefix(g.table, rs.rule.Workspace.ID(), now), seq, perTable[g.table], now.UnixNano(), ext)
				err = rs.dest.Put(ctx, name, data)
			}
			if err != nil {
				return files, rows, maxTR, err
			}
		}
		sum := sha256.Sum256(data)
		files = append(files, FileEntry{Name: name, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), Rows: n, Table: g.table})
		rows += n
	}
	return files, rows, maxTR, nil
}

func schemaKey(s store.Schema) string {
	var b strings.Builder
	for _, c := range s {
		b.WriteString(c.Name)
		b.WriteByte(':')
		b.WriteString(c.Type.String())
		b.WriteByte(',')
	}
	return b.String()
}

// scan re-reads a rule's tables from the store: every row with
// _TimeReceived >= from and, when to is not 0, < to.
func (e *Exporter) scan(ctx context.Context, rs *ruleState, from, to int64) ([]pendingBatch, error) {
	var out []pendingBatch
	for _, t := range rs.rule.TableNames {
		ref := store.TableRef{WorkspaceID: rs.rule.Workspace.CustomerID, Table: t}
		q, err := e.opts.Source.Querier(ctx, ref, store.AllTime)
		if errors.Is(err, store.ErrTableNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		it := q.Select(ctx, store.SelectHints{})
		for it.Next() {
			b := it.Batch()
			tr := b.Col(store.ColTimeReceived)
			if tr == nil {
				continue
			}
			keep := make([]int, 0, b.Len)
			for i, v := range tr.Int {
				if v >= from && (to == 0 || v < to) {
					keep = append(keep, i)
				}
			}
			if len(keep) == 0 {
				continue
			}
			c := copyRows(b, keep)
			lo, hi := timeReceivedRange(c)
			out = append(out, pendingBatch{table: t, b: c, minTR: lo, maxTR: hi})
		}
		err = it.Err()
		q.Close()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// copyRows returns a new batch with rows idx of b (the iterator's batch is
// only valid until its next call).
func copyRows(b *store.Batch, idx []int) *store.Batch {
	out := &store.Batch{Schema: append(store.Schema(nil), b.Schema...), Len: len(idx), Cols: make([]*store.Vector, len(b.Cols))}
	for j, v := range b.Cols {
		nv := &store.Vector{Type: v.Type}
		if v.Nulls != nil {
			nv.Nulls = make([]bool, len(idx))
			for k, i := range idx {
				nv.Nulls[k] = v.Nulls[i]
			}
		}
		switch v.Type {
		case store.TypeBool:
			nv.Bool = make([]bool, len(idx))
			for k, i := range idx {
				nv.Bool[k] = v.Bool[i]
			}
		case store.TypeInt, store.TypeLong, store.TypeDatetime, store.TypeTimespan:
			nv.Int = make([]int64, len(idx))
			for k, i := range idx {
				nv.Int[k] = v.Int[i]
			}
		case store.TypeReal, store.TypeDecimal:
			nv.Real = make([]float64, len(idx))
			for k, i := range idx {
				nv.Real[k] = v.Real[i]
			}
		default:
			nv.Str = make([]string, len(idx))
			for k, i := range idx {
				nv.Str[k] = strings.Clone(v.Str[i])
			}
		}
		out.Cols[j] = nv
	}
	return out
}

// concat joins batches with the same schema.
func concat(bs []*store.Batch) *store.Batch {
	if len(bs) == 1 {
		return bs[0]
	}
	n := 0
	for _, b := range bs {
		n += b.Len
	}
	idx := make([]int, 0, n)
	out := &store.Batch{Schema: bs[0].Schema, Len: n, Cols: make([]*store.Vector, len(bs[0].Cols))}
	for j := range out.Cols {
		out.Cols[j] = &store.Vector{Type: bs[0].Cols[j].Type}
	}
	for _, b := range bs {
		idx = idx[:0]
		for i := 0; i < b.Len; i++ {
			idx = append(idx, i)
		}
		c := copyRows(b, idx)
		for j, v := range c.Cols {
			o := out.Cols[j]
			if v.Nulls != nil || o.Nulls != nil {
				if o.Nulls == nil {
					o.Nulls = make([]bool, o.Len())
				}
				if v.Nulls == nil {
					v.Nulls = make([]bool, v.Len())
				}
				o.Nulls = append(o.Nulls, v.Nulls...)
			}
			o.Bool = append(o.Bool, v.Bool...)
			o.Int = append(o.Int, v.Int...)
			o.Real = append(o.Real, v.Real...)
			o.Str = append(o.Str, v.Str...)
		}
	}
	return out
}

func (e *Exporter) count(id string, rows int64, files int) {
	e.metricsMu.Lock()
	defer e.metricsMu.Unlock()
	e.rows[id] += uint64(rows)
	e.files[id] += uint64(files)
}

func (e *Exporter) countFailure(id string) {
	e.metricsMu.Lock()
	defer e.metricsMu.Unlock()
	e.failures[id]++
}

// Lag returns, per active rule, how far export is behind: the age of the
// oldest row not yet in the destination (0 when nothing is waiting).
func (e *Exporter) Lag() map[string]time.Duration {
	now := store.TicksFromTime(e.opts.Now())
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]time.Duration{}
	for id, r := range e.rules {
		var lag time.Duration
		if len(r.pending) > 0 && now > r.oldest {
			lag = time.Duration(now-r.oldest) * 100
		}
		if (r.overflow || r.catchUp) && now > r.lowWater && r.lowWater > 0 {
			lag = max(lag, time.Duration(now-r.lowWater)*100)
		}
		out[id] = lag
	}
	return out
}

// WriteMetrics writes the exporter's metrics in the Prometheus text format:
// custos_export_lag_seconds, custos_export_rows_total,
// custos_export_files_total and custos_export_failures_total, labelled by
// export_id.
func (e *Exporter) WriteMetrics(w io.Writer) error {
	lag := e.Lag()
	ids := make([]string, 0, len(lag))
	for id := range lag {
		ids = append(ids, id)
	}
	e.metricsMu.Lock()
	for id := range e.failures {
		if _, ok := lag[id]; !ok {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	var b bytes.Buffer
	b.WriteString("# HELP custos_export_lag_seconds Age of the oldest row of an export rule not yet in its destination.\n# TYPE custos_export_lag_seconds gauge\n")
	for _, id := range ids {
		if l, ok := lag[id]; ok {
			fmt.Fprintf(&b, "custos_export_lag_seconds{export_id=%q} %g\n", id, l.Seconds())
		}
	}
	for _, m := range []struct {
		name, help string
		v          map[string]uint64
	}{
		{"custos_export_rows_total", "Rows written by an export rule.", e.rows},
		{"custos_export_files_total", "Files written by an export rule.", e.files},
		{"custos_export_failures_total", "Failed flushes or starts of an export rule.", e.failures},
	} {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s counter\n", m.name, m.help, m.name)
		for _, id := range ids {
			fmt.Fprintf(&b, "%s{export_id=%q} %d\n", m.name, id, m.v[id])
		}
	}
	e.metricsMu.Unlock()
	_, err := w.Write(b.Bytes())
	return err
}
