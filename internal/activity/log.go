package activity

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"custos/internal/catalog"
	"custos/internal/store"
)

// Store is where the chain lives. *catalog.DB implements it.
type Store interface {
	AppendActivity(ctx context.Context, build func(prevSeq int64, prevHash string) ([]byte, string, error)) (catalog.ActivityEntry, error)
	ActivityEntries(ctx context.Context, afterSeq int64, limit int) ([]catalog.ActivityEntry, error)
	ActivityHead(ctx context.Context) (int64, string, error)
	AddActivityCheckpoint(ctx context.Context, cp catalog.ActivityCheckpoint) error
	ActivityCheckpoints(ctx context.Context) ([]catalog.ActivityCheckpoint, error)
	ActivityKeys(ctx context.Context) ([]catalog.ActivityKey, error)
	AddActivityKey(ctx context.Context, k catalog.ActivityKey) error
}

// Sealer seals the checkpoint signing key. *crypt.PlatformKey implements it.
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(ciphertext, aad []byte) ([]byte, error)
}

var _ Store = (*catalog.DB)(nil)

// Defaults for Options.
const (
	DefaultCheckpointEvery    = 100
	DefaultCheckpointInterval = time.Minute
)

// Options configures New.
type Options struct {
	// Store keeps the chain. Required.
	Store Store
	// Keys seals the checkpoint signing key. Required.
	Keys Sealer
	// CheckpointEvery signs the head after this many records; 0 means
	// DefaultCheckpointEvery.
	CheckpointEvery int
	// CheckpointInterval signs the head when a record arrives and the last
	// checkpoint is older than this; 0 means DefaultCheckpointInterval.
	CheckpointInterval time.Duration
	// FilePath, when set, also appends every record as one JSON line to this
	// file (created 0600).
	FilePath string
	// Forward, when set, also appends every record as a row of the
	// AzureActivity table of workspace ForwardWorkspaceID (its customerId).
	// The table must exist in the store with AzureActivitySchema().
	Forward            store.Appendable
	ForwardWorkspaceID string
	// OnAuthorizationChange is called after a successful write to a
	// Microsoft.Authorization route wrapped by WrapRoutes; the server passes
	// the authorizer's Invalidate so changes apply at once.
	OnAuthorizationChange func()
	// Logger receives failures to record. nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Log appends activity records. It is safe for concurrent use.
type Log struct {
	st       Store
	keys     Sealer
	every    int
	interval time.Duration
	fwd      store.Appendable
	fwdWS    string
	onAuthz  func()
	log      *slog.Logger
	now      func() time.Time

	keyID string
	priv  ed25519.PrivateKey

	mu         sync.Mutex // guards file, sinceCP, lastCP, subs
	file       *os.File
	subs       []func(catalog.ActivityEntry)
	sinceCP    int
	lastCP     time.Time
	closed     bool
	checkpoint sync.Mutex // serializes checkpoints
}

// genesisHash is the prev_hash of the first record.
var genesisHash = hex.EncodeToString(make([]byte, sha256.Size))

// keyAAD binds a sealed signing key to its purpose and ID.
func keyAAD(keyID string) []byte { return []byte("custos activity signing key v1 " + keyID) }

// chainHash is SHA-256(prev hash bytes || seq big-endian || record).
func chainHash(prevHex string, seq int64, record []byte) (string, error) {
	prev, err := hex.DecodeString(prevHex)
	if err != nil || len(prev) != sha256.Size {
		return "", fmt.Errorf("malformed previous hash %q", prevHex)
	}
	h := sha256.New()
	h.Write(prev)
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], uint64(seq))
	h.Write(s[:])
	h.Write(record)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// checkpointMessage is what a checkpoint signs.
func checkpointMessage(seq int64, hash string, at time.Time) []byte {
	return []byte("custos-activity-checkpoint-v1\n" + strconv.FormatInt(seq, 10) + "\n" + hash + "\n" + at.UTC().Format(time.RFC3339Nano))
}

// New opens the activity log: it loads the newest signing key (creating one
// on first use) and opens the file sink.
func New(ctx context.Context, opts Options) (*Log, error) {
	if opts.Store == nil || opts.Keys == nil {
		return nil, errors.New("activity: a store and a sealer are required")
	}
	l := &Log{st: opts.Store, keys: opts.Keys, every: opts.CheckpointEvery, interval: opts.CheckpointInterval,
		fwd: opts.Forward, fwdWS: opts.ForwardWorkspaceID, onAuthz: opts.OnAuthorizationChange, log: opts.Logger, now: opts.Now}
	if l.every <= 0 {
		l.every = DefaultCheckpointEvery
	}
	if l.interval <= 0 {
		l.interval = DefaultCheckpointInterval
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if l.now == nil {
		l.now = time.Now
	}
	if err := l.loadKey(ctx); err != nil {
		return nil, err
	}
	if cps, err := l.st.ActivityCheckpoints(ctx); err != nil {
		return nil, fmt.Errorf("activity: %w", err)
	} else if len(cps) > 0 {
		l.lastCP = cps[len(cps)-1].SignedAt
	}
	if opts.FilePath != "" {
		f, err := os.OpenFile(opts.FilePath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("activity: open file sink: %w", err)
		}
		l.file = f
	}
	return l, nil
}

func (l *Log) loadKey(ctx context.Context) error {
	keys, err := l.st.ActivityKeys(ctx)
	if err != nil {
		return fmt.Errorf("activity: %w", err)
	}
	if len(keys) > 0 {
		k := keys[len(keys)-1]
		seed, err := l.keys.Open(k.Sealed, keyAAD(k.KeyID))
		if err != nil {
			return fmt.Errorf("activity: unseal signing key %s: %w", k.KeyID, err)
		}
		if len(seed) != ed25519.SeedSize {
			return fmt.Errorf("activity: signing key %s has a bad size", k.KeyID)
		}
		l.keyID, l.priv = k.KeyID, ed25519.NewKeyFromSeed(seed)
		clear(seed)
		return nil
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("activity: generate signing key: %w", err)
	}
	sum := sha256.Sum256(pub)
	id := hex.EncodeToString(sum[:8])
	sealed, err := l.keys.Seal(priv.Seed(), keyAAD(id))
	if err != nil {
		return fmt.Errorf("activity: seal signing key: %w", err)
	}
	if err := l.st.AddActivityKey(ctx, catalog.ActivityKey{KeyID: id, Sealed: sealed, PublicKey: pub, CreatedAt: l.now().UTC()}); err != nil {
		return fmt.Errorf("activity: %w", err)
	}
	l.keyID, l.priv = id, priv
	return nil
}

// Record appends r to the chain (filling Time when zero), then to the file
// sink and the forwarding table, and signs a checkpoint when one is due.
// Only the chain append decides the error; sink failures are logged.
func (l *Log) Record(ctx context.Context, r Record) (catalog.ActivityEntry, error) {
	if r.Time.IsZero() {
		r.Time = l.now()
	}
	r.Time = r.Time.UTC()
	if r.Level == "" {
		r.Level = LevelInformational
		if r.Status == StatusFailed {
			r.Level = LevelWarning
		}
	}
	rec, err := r.marshal()
	if err != nil {
		return catalog.ActivityEntry{}, err
	}
	// The append must finish once started, even if the request goes away.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	e, err := l.st.AppendActivity(actx, func(prevSeq int64, prevHash string) ([]byte, string, error) {
		if prevHash == "" {
			prevHash = genesisHash
		}
		h, err := chainHash(prevHash, prevSeq+1, rec)
		return rec, h, err
	})
	if err != nil {
		return catalog.ActivityEntry{}, fmt.Errorf("activity: %w", err)
	}
	l.mu.Lock()
	subs := l.subs
	l.sinceCP++
	due := l.sinceCP >= l.every || l.now().Sub(l.lastCP) >= l.interval
	if l.file != nil {
		if _, err := l.file.Write(append(append([]byte(nil), rec...), '\n')); err != nil {
			l.log.LogAttrs(ctx, slog.LevelError, "activity file sink write failed", slog.Any("error", err))
		}
	}
	l.mu.Unlock()
	for _, fn := range subs {
		fn(e)
	}
	if l.fwd != nil && l.fwdWS != "" {
		if err := l.forward(actx, r); err != nil {
			l.log.LogAttrs(ctx, slog.LevelError, "activity forwarding to AzureActivity failed", slog.Any("error", err))
		}
	}
	if due {
		if err := l.Checkpoint(actx); err != nil {
			l.log.LogAttrs(ctx, slog.LevelError, "activity checkpoint failed", slog.Any("error", err))
		}
	}
	return e, nil
}

// Subscribe registers fn to be called with every entry appended to the
// chain from now on, right after the append, in the goroutine that
// recorded it. fn must return quickly (the alert service only wakes its
// activity log alert evaluator, which reads the chain itself, so nothing is
// lost when the process stops between the append and the call).
func (l *Log) Subscribe(fn func(catalog.ActivityEntry)) {
	l.mu.Lock()
	l.subs = append(l.subs, fn)
	l.mu.Unlock()
}

// Checkpoint signs the current chain head (nothing to do when the log is
// empty).
func (l *Log) Checkpoint(ctx context.Context) error {
	l.checkpoint.Lock()
	defer l.checkpoint.Unlock()
	seq, hash, err := l.st.ActivityHead(ctx)
	if err != nil {
		return fmt.Errorf("activity checkpoint: %w", err)
	}
	if seq == 0 {
		return nil
	}
	at := l.now().UTC()
	cp := catalog.ActivityCheckpoint{Seq: seq, Hash: hash, SignedAt: at, KeyID: l.keyID,
		Signature: ed25519.Sign(l.priv, checkpointMessage(seq, hash, at))}
	if err := l.st.AddActivityCheckpoint(ctx, cp); err != nil {
		return fmt.Errorf("activity checkpoint: %w", err)
	}
	l.mu.Lock()
	l.sinceCP, l.lastCP = 0, at
	l.mu.Unlock()
	return nil
}

// Close signs a final checkpoint and closes the file sink.
func (l *Log) Close(ctx context.Context) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	err := l.Checkpoint(ctx)
	if l.file != nil {
		err = errors.Join(err, l.file.Close())
	}
	clear(l.priv)
	return err
}
