package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"

	"custos/internal/crypt"
)

// Options configure a DB. A zero field means the documented default.
type Options struct {
	// Dir is the data directory (required). It is created with mode 0700.
	Dir string
	// Keys wraps the workspace keys (required): without keys nothing is read
	// or written, and Open returns crypt.ErrSealed.
	Keys crypt.KeyProvider
	// Logger receives operational logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock for _TimeReceived and retention; nil means time.Now.
	Now func() time.Time

	// MemtableBytes is the memtable size per workspace that triggers a flush
	// to parts. Default 64 MiB.
	MemtableBytes int64
	// MaxMemtableAge flushes rows that have been in the memtable this long.
	// Default 5 minutes.
	MaxMemtableAge time.Duration
	// BlockRows is the maximum number of rows per part block. Default 16384.
	BlockRows int
	// MaxPartsPerDay is the part count per table and day above which the
	// background merge combines parts, and the number of parts of similar
	// size (within a factor of 4) one merge combines. Default 4.
	MaxPartsPerDay int
	// MaxMergeRows bounds the rows of one merge, and so its memory (a merge
	// holds its rows decoded: about 1 KB each for typical logs). Parts this
	// large are not merged again. Default 512Ki.
	MaxMergeRows int
	// QueryWorkers bounds the goroutines decoding blocks for one Select.
	// Default GOMAXPROCS.
	QueryWorkers int
	// QuerySlots, when set, bounds the block decoding of all Selects
	// together: each task is decoded holding one of its slots (the server
	// shares one internal/workload pool between the store and the engine, so
	// concurrent queries use at most its slots of CPU and ingestion keeps
	// its share). Nil: each Select runs up to QueryWorkers tasks at once.
	QuerySlots WorkerSlots
	// MaintenanceInterval is how often the background loop checks for flushes
	// and merges. Default 1 s.
	MaintenanceInterval time.Duration
	// RetentionInterval is how often retention runs. Default 1 h.
	RetentionInterval time.Duration
	// KeyCacheTTL is how long an unwrapped workspace key is used before its
	// key-encryption key is asked again. A revoked customer-managed key
	// stops ingestion and queries within this time. Default 1 h.
	KeyCacheTTL time.Duration
	// KeyRetryInterval is how often a refusing key-encryption key is asked
	// again while requests keep arriving. Default min(10 s, KeyCacheTTL).
	KeyRetryInterval time.Duration
	// DisableBackground starts no background goroutine; flushes, merges and
	// retention then run only through Flush, Merge and EnforceRetention (tests).
	DisableBackground bool
	// OnCommit, when set, is called after every successful commit, once its
	// rows are durable and visible, with the committed rows (system columns
	// stamped; TenantId and Type are virtual and absent). The callee owns b;
	// it runs on the committing goroutine and must not block (the data
	// export queues the batch).
	OnCommit func(ref TableRef, b *Batch)
	// ReadCacheBytes bounds the decoded-chunk cache of query reads (see
	// chunkCache in chunkcache.go and chunkcache_pack.go); 0, the zero value,
	// turns it off (the server's default is DefaultReadCacheBytes: an eighth
	// of the memory, 64 MiB to 4 GiB). It makes warm queries
	// over data that fits in it several times cheaper. Cached chunks live
	// outside the Go heap: inside it, a full cache doubled the GC's heap goal
	// and the decoders re-faulted scavenged pages, slowing 10 M-row scans by
	// 40–120 % (bench/kql, 2026-11-27). The memory counts towards RSS.
	ReadCacheBytes int64
	// BloomCacheBytes bounds the cache of the parts' token bloom filters,
	// which queries with term hints read from the part files on demand (see
	// bloomCache in bloomcache.go); kept outside the Go heap. 0 means the
	// default, 64 MiB; negative keeps none (every check reads the file).
	BloomCacheBytes int64
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MemtableBytes <= 0 {
		o.MemtableBytes = 64 << 20
	}
	if o.MaxMemtableAge <= 0 {
		o.MaxMemtableAge = 5 * time.Minute
	}
	if o.BlockRows <= 0 {
		o.BlockRows = 16384
	}
	o.BlockRows = min(o.BlockRows, maxBlockRows)
	if o.MaxPartsPerDay <= 0 {
		o.MaxPartsPerDay = 4
	}
	if o.MaxMergeRows <= 0 {
		o.MaxMergeRows = 512 << 10
	}
	if o.QueryWorkers <= 0 {
		o.QueryWorkers = runtime.GOMAXPROCS(0)
	}
	if o.MaintenanceInterval <= 0 {
		o.MaintenanceInterval = time.Second
	}
	if o.RetentionInterval <= 0 {
		o.RetentionInterval = time.Hour
	}
	if o.KeyCacheTTL <= 0 {
		o.KeyCacheTTL = time.Hour
	}
	if o.KeyRetryInterval <= 0 {
		o.KeyRetryInterval = min(10*time.Second, o.KeyCacheTTL)
	}
}

// DB is the encrypted columnar log store: per workspace a WAL, and per table
// memtables and immutable parts partitioned by UTC day of TimeGenerated. It
// implements Appendable and Queryable. Safe for concurrent use.
type DB struct {
	opts Options
	log  *slog.Logger
	keys crypt.KeyProvider
	// enc compresses part chunks, token tables and footers: zstd's fastest
	// level with entropy coding of literals even where no match is found
	// (WithAllLitEntropyCompression). On bench/gen data it gives the same
	// bytes as SpeedDefault (within 0.1 byte per row: token tables, IDs,
	// GUIDs and timestamps are literal-heavy) for about two thirds of the
	// CPU (BenchmarkEncodeChunk).
	enc *zstd.Encoder
	// encFast compresses the per-row token indexes of token-encoded string
	// chunks (the second frame of a split chunk): plain SpeedFastest, whose
	// literal shortcut costs nothing there.
	encFast *zstd.Encoder
	dec     *zstd.Decoder
	m       metrics
	lock    *os.File // flock on Dir/LOCK

	mu         sync.RWMutex // guards workspaces and closed
	workspaces map[string]*workspace
	closed     bool

	nudge   chan struct{} // wakes the background loop
	stopBG  context.CancelFunc
	bgDone  sync.WaitGroup
	mergeMu sync.Mutex // one merge pass at a time

	activateMu sync.Mutex // one activation of a pending workspace at a time

	quar quarantine // corrupt parts moved aside (quarantine.go)

	rcache chunkCache // decoded chunks of live parts, for queries (query.go)
	bcache bloomCache // bloom sections of live parts, for term hints (bloomcache.go)
}

var (
	_ Appendable = (*DB)(nil)
	_ Queryable  = (*DB)(nil)
)

// Open opens (creating if needed) the store in opts.Dir, replays the WALs
// and starts the background flush, merge and retention loop.
func Open(opts Options) (*DB, error) {
	if opts.Keys == nil {
		return nil, fmt.Errorf("open store: %w", crypt.ErrSealed)
	}
	if opts.Dir == "" {
		return nil, errors.New("open store: no directory")
	}
	opts.setDefaults()
	if err := os.MkdirAll(filepath.Join(opts.Dir, "workspaces"), 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	lock, err := lockDir(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithAllLitEntropyCompression(true), zstd.WithEncoderCRC(false))
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	encFast, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderCRC(false))
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxChunkBytes))
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	db := &DB{
		opts: opts, log: opts.Logger, keys: opts.Keys, enc: enc, encFast: encFast, dec: dec, lock: lock,
		workspaces: make(map[string]*workspace), nudge: make(chan struct{}, 1),
	}
	db.rcache.limit = opts.ReadCacheBytes
	db.bcache.limit = opts.BloomCacheBytes
	if db.bcache.limit == 0 {
		db.bcache.limit = 64 << 20
	}
	db.loadQuarantine()
	ents, err := os.ReadDir(filepath.Join(opts.Dir, "workspaces"))
	if err != nil {
		db.closeResources()
		return nil, fmt.Errorf("open store: %w", err)
	}
	ctx := context.Background()
	for _, e := range ents {
		if !e.IsDir() || validWorkspaceID(e.Name()) != nil {
			continue
		}
		ws, err := db.openWorkspace(ctx, e.Name())
		if err != nil {
			db.closeWorkspaces()
			db.closeResources()
			return nil, fmt.Errorf("open store: workspace %s: %w", e.Name(), err)
		}
		if ws != nil {
			db.workspaces[ws.id] = ws
		}
	}
	bgCtx, cancel := context.WithCancel(context.Background())
	db.stopBG = cancel
	if !opts.DisableBackground {
		db.bgDone.Add(2)
		go db.background(bgCtx)
		go db.mergeLoop(bgCtx)
	}
	return db, nil
}

func (db *DB) closeResources() {
	db.enc.Close()
	db.encFast.Close()
	db.dec.Close()
	db.lock.Close()
}

func (db *DB) closeWorkspaces() {
	for _, ws := range db.workspaces {
		ws.close()
	}
}

// Stats returns the store's counters.
func (db *DB) Stats() Stats { return db.m.snapshot() }

// Close stops the background work, flushes the memtables to parts (so the
// next Open has little to replay) and closes every file. Queriers still open
// keep working on their snapshot until they are closed.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil
	}
	db.closed = true
	db.mu.Unlock()
	db.stopBG()
	db.bgDone.Wait()
	var errs []error
	ctx := context.Background()
	db.mu.RLock()
	wss := make([]*workspace, 0, len(db.workspaces))
	for _, ws := range db.workspaces {
		wss = append(wss, ws)
	}
	db.mu.RUnlock()
	for _, ws := range wss {
		if err := ws.flush(ctx); err != nil && !errors.Is(err, ErrKeyUnavailable) {
			errs = append(errs, err)
		}
		if err := ws.close(); err != nil {
			errs = append(errs, err)
		}
	}
	db.closeResources()
	return errors.Join(errs...)
}

func (db *DB) reportCorruption(err error) {
	var ce *CorruptionError
	if errors.As(err, &ce) {
		db.m.corruptions.Add(1)
		db.log.Error("store integrity check failed", slog.String("path", ce.Path),
			slog.String("part", ce.Part), slog.Int("block", ce.Block), slog.String("column", ce.Column),
			slog.String("error", ce.Err.Error()))
	}
}

// workspace is one workspace's key, WAL and tables.
type workspace struct {
	db  *DB
	id  string
	dir string

	// pending is set (for the workspace's lifetime) when its customer-managed
	// key could not be used at open: nothing of it is loaded, and
	// DB.workspace swaps in a loaded workspace once the key accepts.
	pending bool

	keys        atomic.Pointer[wsKeys]
	keysMu      sync.Mutex // guards the fields below; held while asking the KEK
	kf          *keyFile
	provider    crypt.KeyProvider // the customer-managed KEK, nil for the platform key
	verifiedAt  time.Time         // when the KEK last confirmed the key
	lastAttempt time.Time
	keyErr      error        // non-nil while the KEK refuses
	okUntil     atomic.Int64 // unix ns until which the key needs no check; 0 while refused

	// gate orders commits against flushes and drops: a commit holds it shared
	// from its WAL append until its rows are in the memtable; a flush holds it
	// exclusively to rotate the WAL and freeze the memtables, so a frozen
	// memtable holds exactly the records up to the rotation's sequence number.
	gate    sync.RWMutex
	flushMu sync.Mutex // one flush at a time
	wal     *wal

	mu      sync.RWMutex // guards tables and dropped
	tables  map[string]*table
	dropped bool

	memBytes  atomic.Int64
	oldestMem atomic.Int64 // unix nanoseconds of the oldest unflushed commit, 0 if none
}

// table is one table of a workspace.
type table struct {
	ws   *workspace
	name string
	dir  string

	mu      sync.RWMutex // guards everything below
	meta    tableMeta
	full    Schema // what queries see
	storage Schema // full minus virtual columns
	mem     map[int64]*memPart
	frozen  []*memPart
	parts   map[int64][]*part
	dropped bool
}

// tableMeta is persisted sealed in table.meta.
type tableMeta struct {
	Incarnation   string   `json:"incarnation"` // 32 hex digits; new on every (re)creation
	Declared      []column `json:"columns"`
	RetentionDays int      `json:"retentionDays"`
}

type column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

func (m *tableMeta) declared() (Schema, error) {
	s := make(Schema, len(m.Declared))
	for i, c := range m.Declared {
		t, ok := ParseColumnType(c.Type)
		if !ok {
			return nil, fmt.Errorf("table meta: column %s: bad type %q", c.Name, c.Type)
		}
		s[i] = Column{c.Name, t}
	}
	return s, nil
}

func (m *tableMeta) incarnationBytes() [16]byte {
	var b [16]byte
	hex.Decode(b[:], []byte(m.Incarnation))
	return b
}

func wsKeyAAD(wsID string) []byte { return []byte("custos/workspace-key/v1\x00" + wsID) }
func tableMetaAAD(wsID, table string) []byte {
	return []byte("custos/table-meta/v1\x00" + wsID + "\x00" + table)
}

const wsKeyMagic = "CSTWSK\x00\x01"

// openWorkspace loads a workspace directory: key, tables, parts, WAL replay.
// A workspace whose customer-managed key is not usable yet is returned
// pending (see activate).
func (db *DB) openWorkspace(ctx context.Context, id string) (*workspace, error) {
	dir := filepath.Join(db.opts.Dir, "workspaces", id)
	if _, err := os.Stat(filepath.Join(dir, "workspace.key")); errors.Is(err, fs.ErrNotExist) {
		// A workspace whose creation or drop did not finish: nothing in it is readable.
		db.log.Warn("removing workspace directory without a key", slog.String("workspace_id", id))
		return nil, os.RemoveAll(dir)
	}
	kf, err := readWorkspaceKeyFile(dir)
	if err != nil {
		return nil, err
	}
	if kf.customer {
		p := &workspace{db: db, id: id, dir: dir, pending: true, kf: kf, tables: map[string]*table{}}
		p.keyErr = p.unavailable(kf, errors.New("no key provider set for the workspace since the store opened"))
		db.log.Info("workspace waits for its customer-managed key provider", slog.String("workspace_id", id), slog.String("key_id", kf.serviceKeyID))
		return p, nil
	}
	return db.openWorkspaceWith(ctx, id, nil)
}

// openWorkspaceWith loads a workspace whose service layer is wrapped by
// provider (nil: the platform key).
func (db *DB) openWorkspaceWith(ctx context.Context, id string, provider crypt.KeyProvider) (*workspace, error) {
	dir := filepath.Join(db.opts.Dir, "workspaces", id)
	kf, err := readWorkspaceKeyFile(dir)
	if err != nil {
		return nil, err
	}
	ws := &workspace{db: db, id: id, dir: dir, kf: kf, provider: provider, tables: make(map[string]*table)}
	keys, err := ws.unwrapKeyFile(ctx, kf)
	if err != nil {
		return nil, err
	}
	ws.keys.Store(keys)
	ws.setVerified(db.opts.Now())
	if err := os.MkdirAll(filepath.Join(dir, "tables"), 0o700); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(filepath.Join(dir, "tables"))
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		if !e.IsDir() || validTableName(e.Name()) != nil {
			continue
		}
		t, err := ws.loadTable(ctx, e.Name())
		if err != nil {
			ws.closeTables()
			return nil, fmt.Errorf("table %s: %w", e.Name(), err)
		}
		if t != nil {
			ws.tables[t.name] = t
		}
	}
	if err := ws.replayWAL(ctx); err != nil {
		ws.closeTables()
		return nil, err
	}
	return ws, nil
}

// createWorkspace makes a new workspace directory with a fresh key and WAL.
func (db *DB) createWorkspace(ctx context.Context, id string) (*workspace, error) {
	dir := filepath.Join(db.opts.Dir, "workspaces", id)
	if err := os.MkdirAll(filepath.Join(dir, "tables"), 0o700); err != nil {
		return nil, fmt.Errorf("create workspace %s: %w", id, err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "wal"), 0o700); err != nil {
		return nil, fmt.Errorf("create workspace %s: %w", id, err)
	}
	if err := syncDir(filepath.Join(db.opts.Dir, "workspaces")); err != nil {
		return nil, fmt.Errorf("create workspace %s: %w", id, err)
	}
	key, wrapped, err := crypt.WrapNewKey(ctx, db.keys, "ws-"+id, wsKeyAAD(id))
	if err != nil {
		return nil, fmt.Errorf("create workspace %s: %w", id, err)
	}
	kf := &keyFile{serviceKeyID: db.keys.KeyID(), serviceWrapped: wrapped}
	if err := writeFileAtomic(filepath.Join(dir, "workspace.key"), kf.encode()); err != nil {
		key.Destroy()
		return nil, fmt.Errorf("create workspace %s: %w", id, err)
	}
	ws := &workspace{db: db, id: id, dir: dir, kf: kf, tables: make(map[string]*table)}
	ws.keys.Store(&wsKeys{service: key})
	ws.setVerified(db.opts.Now())
	if err := ws.replayWAL(ctx); err != nil { // starts an empty WAL
		return nil, err
	}
	return ws, nil
}

func (ws *workspace) closeTables() {
	for _, t := range ws.tables {
		t.mu.Lock()
		for _, ps := range t.parts {
			for _, p := range ps {
				p.release()
			}
		}
		t.parts = nil
		t.mu.Unlock()
	}
}

func (ws *workspace) close() error {
	var err error
	if ws.wal != nil {
		err = ws.wal.close()
	}
	ws.closeTables()
	return err
}

// loadTable reads a table's sealed meta and opens its parts, deleting parts
// that a completed merge superseded and temporary files of unfinished writes.
func (ws *workspace) loadTable(ctx context.Context, name string) (*table, error) {
	dir := filepath.Join(ws.dir, "tables", name)
	sealed, err := os.ReadFile(filepath.Join(dir, "table.meta"))
	if errors.Is(err, fs.ErrNotExist) {
		ws.db.log.Warn("removing table directory without meta", slog.String("workspace_id", ws.id), slog.String("table", name))
		return nil, os.RemoveAll(dir)
	}
	if err != nil {
		return nil, err
	}
	raw, err := ws.metaLayers(sealed).Open(nil, sealed, tableMetaAAD(ws.id, name))
	if err != nil {
		return nil, &CorruptionError{Path: filepath.Join(dir, "table.meta"), Block: -1, Err: err}
	}
	var meta tableMeta
	if err := json.Unmarshal(raw, &meta); err != nil {
		return nil, &CorruptionError{Path: filepath.Join(dir, "table.meta"), Block: -1, Err: err}
	}
	decl, err := meta.declared()
	if err != nil {
		return nil, err
	}
	t := &table{ws: ws, name: name, dir: dir, meta: meta, mem: make(map[int64]*memPart), parts: make(map[int64][]*part)}
	t.setSchema(decl)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var all []*part
	replaced := make(map[string]bool)
	inc := meta.incarnationBytes()
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, ".tmp-") {
			os.Remove(filepath.Join(dir, n))
			continue
		}
		if !strings.HasSuffix(n, ".part") {
			continue
		}
		p, err := openPart(ctx, filepath.Join(dir, n), ws.id, name, ws.keys.Load())
		if err != nil {
			ws.db.reportCorruption(err)
			if ws.quarantineAtOpen(name, meta.Incarnation, filepath.Join(dir, n), err) {
				continue
			}
			for _, q := range all {
				q.release()
			}
			return nil, err
		}
		if p.meta.incarnation != inc {
			ws.db.log.Warn("removing part of an earlier incarnation of the table", slog.String("part", p.id))
			p.obsolete.Store(true)
			p.release()
			continue
		}
		all = append(all, p)
		for _, r := range p.meta.replaces {
			replaced[r] = true
		}
	}
	for _, p := range all {
		if replaced[p.id] {
			p.obsolete.Store(true)
			p.release()
			continue
		}
		t.parts[p.meta.day] = append(t.parts[p.meta.day], p)
	}
	return t, nil
}

func (t *table) setSchema(declared Schema) {
	t.full = fullSchema(declared)
	t.storage = storageSchema(t.full)
}

func newIncarnation() (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(rand.Reader, b[:]); err != nil {
		return "", fmt.Errorf("new table incarnation: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

func (ws *workspace) saveMeta(t *table, meta tableMeta) error {
	raw, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	k := ws.keys.Load()
	l := layers{k.service}
	if k.infra != nil {
		l = append(l, k.infra)
	}
	sealed, err := l.Seal(nil, raw, tableMetaAAD(ws.id, t.name))
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(t.dir, "table.meta"), sealed)
}

// workspace returns the open workspace, creating it when create is set.
func (db *DB) workspace(ctx context.Context, id string, create bool) (*workspace, error) {
	id = strings.ToLower(id)
	if err := validWorkspaceID(id); err != nil {
		return nil, err
	}
	db.mu.RLock()
	ws, closed := db.workspaces[id], db.closed
	db.mu.RUnlock()
	if closed {
		return nil, ErrClosed
	}
	if ws != nil && ws.pending {
		loaded, err := db.activate(ctx, ws)
		if err != nil {
			return ws, err
		}
		return loaded, nil
	}
	if ws != nil || !create {
		return ws, nil
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return nil, ErrClosed
	}
	if ws := db.workspaces[id]; ws != nil {
		return ws, nil
	}
	ws, err := db.createWorkspace(ctx, id)
	if err != nil {
		return nil, err
	}
	db.workspaces[id] = ws
	return ws, nil
}

func (db *DB) lookupTable(ctx context.Context, ref TableRef) (*table, error) {
	if err := validTableName(ref.Table); err != nil {
		return nil, err
	}
	ws, err := db.workspace(ctx, ref.WorkspaceID, false)
	if err != nil {
		return nil, err
	}
	if ws == nil {
		return nil, fmt.Errorf("%w: %s", ErrTableNotFound, ref.Table)
	}
	ws.mu.RLock()
	t := ws.tables[ref.Table]
	ws.mu.RUnlock()
	if t == nil {
		return nil, fmt.Errorf("%w: %s", ErrTableNotFound, ref.Table)
	}
	return t, nil
}

// EnsureTable creates the table if it does not exist, and otherwise adds the
// columns of schema it lacks and sets its retention. It is idempotent. A
// column whose type differs from the stored one is an ErrSchema error. The
// store adds the system columns (see ColTimeGenerated and friends); schema
// may list them too, with their types. retentionDays <= 0 keeps data forever
// (the catalog passes Azure's default of 30 days explicitly).
func (db *DB) EnsureTable(ctx context.Context, ref TableRef, schema Schema, retentionDays int) error {
	if err := validTableName(ref.Table); err != nil {
		return err
	}
	if _, _, err := mergeDeclared(nil, schema); err != nil {
		return err
	}
	ws, err := db.workspace(ctx, ref.WorkspaceID, true)
	if err != nil {
		return err
	}
	if _, err := ws.requireKeys(ctx); err != nil {
		return fmt.Errorf("ensure table %s: %w", ref.Table, err)
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.dropped {
		return fmt.Errorf("ensure table %s: %w", ref.Table, ErrTableNotFound)
	}
	if retentionDays < 0 {
		retentionDays = 0
	}
	if t := ws.tables[ref.Table]; t != nil {
		t.mu.Lock()
		defer t.mu.Unlock()
		old, err := t.meta.declared()
		if err != nil {
			return err
		}
		decl, changed, err := mergeDeclared(old, schema)
		if err != nil {
			return fmt.Errorf("ensure table %s: %w", ref.Table, err)
		}
		if !changed && t.meta.RetentionDays == retentionDays {
			return nil
		}
		meta := t.meta
		meta.Declared = toColumns(decl)
		meta.RetentionDays = retentionDays
		if err := ws.saveMeta(t, meta); err != nil {
			return fmt.Errorf("ensure table %s: %w", ref.Table, err)
		}
		t.meta = meta
		t.setSchema(decl)
		for _, m := range t.mem {
			m.extend(t.storage)
		}
		for _, m := range t.frozen {
			m.extend(t.storage)
		}
		return nil
	}
	decl, _, err := mergeDeclared(nil, schema)
	if err != nil {
		return fmt.Errorf("ensure table %s: %w", ref.Table, err)
	}
	inc, err := newIncarnation()
	if err != nil {
		return err
	}
	dir := filepath.Join(ws.dir, "tables", ref.Table)
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("ensure table %s: %w", ref.Table, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("ensure table %s: %w", ref.Table, err)
	}
	t := &table{ws: ws, name: ref.Table, dir: dir, mem: make(map[int64]*memPart), parts: make(map[int64][]*part)}
	meta := tableMeta{Incarnation: inc, Declared: toColumns(decl), RetentionDays: retentionDays}
	if err := ws.saveMeta(t, meta); err != nil {
		return fmt.Errorf("ensure table %s: %w", ref.Table, err)
	}
	if err := syncDir(filepath.Join(ws.dir, "tables")); err != nil {
		return fmt.Errorf("ensure table %s: %w", ref.Table, err)
	}
	t.meta = meta
	t.setSchema(decl)
	ws.tables[t.name] = t
	return nil
}

func toColumns(s Schema) []column {
	out := make([]column, len(s))
	for i, c := range s {
		out[i] = column{c.Name, c.Type.String()}
	}
	return out
}

// DropTable deletes a table and all its data. Queriers already open keep
// their snapshot until closed. Rows of the table still in the WAL are never
// replayed: they name the dropped incarnation.
func (db *DB) DropTable(ctx context.Context, ref TableRef) error {
	t, err := db.lookupTable(ctx, ref)
	if err != nil {
		return err
	}
	ws := t.ws
	ws.gate.Lock()
	defer ws.gate.Unlock()
	ws.mu.Lock()
	if ws.tables[t.name] != t {
		ws.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrTableNotFound, ref.Table)
	}
	delete(ws.tables, t.name)
	ws.mu.Unlock()
	t.mu.Lock()
	t.dropped = true
	for _, m := range t.mem {
		ws.memBytes.Add(-m.bytes)
	}
	for _, m := range t.frozen {
		ws.memBytes.Add(-m.bytes)
	}
	t.mem = nil
	t.frozen = nil
	parts := t.parts
	t.parts = nil
	t.mu.Unlock()
	for _, ps := range parts {
		for _, p := range ps {
			p.obsolete.Store(true)
			p.release()
		}
	}
	if err := os.RemoveAll(t.dir); err != nil {
		return fmt.Errorf("drop table %s: %w", ref.Table, err)
	}
	return syncDir(filepath.Join(ws.dir, "tables"))
}

// DropWorkspace deletes a workspace with its key, WAL and every table.
// Deleting the wrapped workspace key first makes the data unreadable even if
// removing the files fails halfway (crypto-shredding).
func (db *DB) DropWorkspace(ctx context.Context, workspaceID string) error {
	id := strings.ToLower(workspaceID)
	if err := validWorkspaceID(id); err != nil {
		return err
	}
	db.mu.Lock()
	ws := db.workspaces[id]
	delete(db.workspaces, id)
	db.mu.Unlock()
	dir := filepath.Join(db.opts.Dir, "workspaces", id)
	if ws == nil {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("drop workspace %s: %w", id, err)
		}
		return nil
	}
	ws.flushMu.Lock()
	defer ws.flushMu.Unlock()
	ws.gate.Lock()
	defer ws.gate.Unlock()
	ws.mu.Lock()
	ws.dropped = true
	tables := ws.tables
	ws.tables = map[string]*table{}
	ws.mu.Unlock()
	if ws.wal != nil {
		ws.wal.close()
	}
	for _, t := range tables {
		t.mu.Lock()
		t.dropped = true
		parts := t.parts
		t.parts, t.mem, t.frozen = nil, nil, nil
		t.mu.Unlock()
		for _, ps := range parts {
			for _, p := range ps {
				p.obsolete.Store(true)
				p.release()
			}
		}
	}
	if err := os.Remove(filepath.Join(dir, "workspace.key")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("drop workspace %s: %w", id, err)
	}
	syncDir(dir)
	if k := ws.keys.Load(); k != nil {
		k.service.Destroy()
		if k.infra != nil {
			k.infra.Destroy()
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("drop workspace %s: %w", id, err)
	}
	if err := db.removeWorkspaceQuarantine(id); err != nil {
		return fmt.Errorf("drop workspace %s: %w", id, err)
	}
	return syncDir(filepath.Join(db.opts.Dir, "workspaces"))
}

// metaLayers returns the keys that open a sealed table meta: with double
// encryption the outer envelope names the infrastructure key.
func (ws *workspace) metaLayers(sealed []byte) layers {
	k := ws.keys.Load()
	if env, err := crypt.ParseEnvelope(sealed); err == nil && k.infra != nil && env.KeyID == k.infra.ID() {
		return layers{k.service, k.infra}
	}
	return layers{k.service}
}
