package store

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"custos/internal/crypt"
)

// Workspace key hierarchy (see docs/encryption.md):
//
//	service layer:        KEK (platform key, or the workspace's customer-managed key)
//	                        └─ workspace key "ws-<id>"        └─ layer-0 data key per part / WAL segment
//	infrastructure layer: platform key (only with double encryption)
//	                        └─ workspace key "ws-<id>-infra"  └─ layer-1 data key per part / WAL segment
//
// Every block, footer, WAL record and table meta is sealed by the layer-0 key
// and, with double encryption, that envelope is sealed again by the layer-1
// key. The two layers share no key material.

// wsKeys are a workspace's unwrapped keys. Immutable; replaced as a whole
// (atomic pointer) when double encryption is turned on.
type wsKeys struct {
	service *crypt.Key
	infra   *crypt.Key // nil without double encryption
}

// layers is the data key of a part or WAL segment: one key, or two
// independent keys with double encryption (layer 0 inside, layer 1 outside).
type layers []*crypt.Key

func (l layers) Seal(dst, plaintext, aad []byte) ([]byte, error) {
	if len(l) == 1 {
		return l[0].Seal(dst, plaintext, aad)
	}
	inner, err := l[0].Seal(nil, plaintext, aad)
	if err != nil {
		return dst, err
	}
	return l[1].Seal(dst, inner, aad)
}

func (l layers) Open(dst, ciphertext, aad []byte) ([]byte, error) {
	if len(l) == 1 {
		return l[0].Open(dst, ciphertext, aad)
	}
	inner, err := l[1].Open(nil, ciphertext, aad)
	if err != nil {
		return dst, fmt.Errorf("infrastructure layer: %w", err)
	}
	out, err := l[0].Open(dst, inner, aad)
	if err != nil {
		return dst, fmt.Errorf("service layer: %w", err)
	}
	return out, nil
}

func (l layers) Destroy() {
	for _, k := range l {
		k.Destroy()
	}
}

func infraAAD(aad []byte) []byte {
	return append(append([]byte(nil), aad...), "\x00infrastructure"...)
}

// newDataKeys generates a part's or segment's data key(s), wrapped by the
// workspace key(s) under aad.
func newDataKeys(ctx context.Context, wk *wsKeys, id string, aad []byte) (layers, [][]byte, error) {
	k0, w0, err := crypt.WrapNewKey(ctx, wk.service, id, aad)
	if err != nil {
		return nil, nil, err
	}
	if wk.infra == nil {
		return layers{k0}, [][]byte{w0}, nil
	}
	k1, w1, err := crypt.WrapNewKey(ctx, wk.infra, id+"/infra", infraAAD(aad))
	if err != nil {
		k0.Destroy()
		return nil, nil, err
	}
	return layers{k0, k1}, [][]byte{w0, w1}, nil
}

// unwrapDataKeys reverses newDataKeys.
func unwrapDataKeys(ctx context.Context, wk *wsKeys, id string, wrapped [][]byte, aad []byte) (layers, error) {
	if len(wrapped) < 1 || len(wrapped) > 2 {
		return nil, fmt.Errorf("%d key layers", len(wrapped))
	}
	k0, err := crypt.UnwrapKey(ctx, wk.service, id, wrapped[0], aad)
	if err != nil {
		return nil, err
	}
	if len(wrapped) == 1 {
		return layers{k0}, nil
	}
	if wk.infra == nil {
		k0.Destroy()
		return nil, errors.New("double-encrypted data in a workspace without an infrastructure key")
	}
	k1, err := crypt.UnwrapKey(ctx, wk.infra, id+"/infra", wrapped[1], infraAAD(aad))
	if err != nil {
		k0.Destroy()
		return nil, err
	}
	return layers{k0, k1}, nil
}

// appendWrappedKeys encodes data key wrappings for a v2 header: a layer
// count byte, then per layer uvarint length and bytes.
func appendWrappedKeys(dst []byte, wrapped [][]byte) []byte {
	dst = append(dst, byte(len(wrapped)))
	for _, w := range wrapped {
		dst = appendStr(dst, string(w))
	}
	return dst
}

func decodeWrappedKeys(d *decoder) [][]byte {
	n := int(d.byte1())
	if d.err == nil && (n < 1 || n > 2) {
		d.err = fmt.Errorf("%d key layers", n)
	}
	var out [][]byte
	for range n {
		w := d.bytes(d.count("wrapped key length", maxWrappedKey))
		if d.err != nil {
			return nil
		}
		out = append(out, w)
	}
	return out
}

// Workspace key file. Version 1 (platform key only, one layer):
//
//	"CSTWSK\x00\x01" | workspace key wrapped by the platform key
//
// Version 2 (customer-managed key and/or double encryption):
//
//	"CSTWSK\x00\x02" | JSON keyFileJSON
//
// The wrappings authenticate themselves (AEAD under the KEK, AAD naming the
// workspace); the JSON fields around them only say which KEK to ask.
const wsKeyMagicV2 = "CSTWSK\x00\x02"

type keyFileJSON struct {
	Service        keyWrapJSON  `json:"service"`
	Infrastructure *keyWrapJSON `json:"infrastructure,omitempty"`
}

type keyWrapJSON struct {
	KeyID    string `json:"keyId"`              // the KEK's KeyID when wrapped
	Customer bool   `json:"customer,omitempty"` // wrapped by a customer-managed key
	Wrapped  string `json:"wrapped"`            // base64
}

// keyFile is a parsed workspace key file.
type keyFile struct {
	serviceKeyID   string
	customer       bool
	serviceWrapped []byte
	infraWrapped   []byte // nil without double encryption
}

func (f *keyFile) encode() []byte {
	if !f.customer && f.infraWrapped == nil {
		return append([]byte(wsKeyMagic), f.serviceWrapped...)
	}
	j := keyFileJSON{Service: keyWrapJSON{KeyID: f.serviceKeyID, Customer: f.customer, Wrapped: base64.StdEncoding.EncodeToString(f.serviceWrapped)}}
	if f.infraWrapped != nil {
		j.Infrastructure = &keyWrapJSON{Wrapped: base64.StdEncoding.EncodeToString(f.infraWrapped)}
	}
	b, _ := json.Marshal(j)
	return append([]byte(wsKeyMagicV2), b...)
}

func parseKeyFile(b []byte) (*keyFile, error) {
	switch {
	case bytes.HasPrefix(b, []byte(wsKeyMagic)):
		return &keyFile{serviceWrapped: b[len(wsKeyMagic):]}, nil
	case bytes.HasPrefix(b, []byte(wsKeyMagicV2)):
		var j keyFileJSON
		if err := json.Unmarshal(b[len(wsKeyMagicV2):], &j); err != nil {
			return nil, fmt.Errorf("workspace key file: %w", err)
		}
		f := &keyFile{serviceKeyID: j.Service.KeyID, customer: j.Service.Customer}
		var err error
		if f.serviceWrapped, err = base64.StdEncoding.DecodeString(j.Service.Wrapped); err != nil || len(f.serviceWrapped) == 0 {
			return nil, errors.New("workspace key file: bad service wrapping")
		}
		if j.Infrastructure != nil {
			if f.infraWrapped, err = base64.StdEncoding.DecodeString(j.Infrastructure.Wrapped); err != nil || len(f.infraWrapped) == 0 {
				return nil, errors.New("workspace key file: bad infrastructure wrapping")
			}
		}
		return f, nil
	}
	return nil, errors.New("bad workspace key magic")
}

func wsInfraKeyAAD(wsID string) []byte {
	return []byte("custos/workspace-infra-key/v1\x00" + wsID)
}

// KeyUnavailableError is returned by ingestion, queries and maintenance of a
// workspace whose customer-managed key cannot be used: the key is disabled or
// deleted, access to it was removed, the KMS is unreachable, or no provider
// was set for the workspace since the store opened. It is retryable:
// nothing was written, and restoring the key restores the workspace with
// everything it held. It wraps ErrKeyUnavailable and the provider's error.
type KeyUnavailableError struct {
	WorkspaceID string
	KeyID       string // the KEK named in the workspace key file
	Err         error
}

func (e *KeyUnavailableError) Error() string {
	return fmt.Sprintf("store: workspace %s: customer-managed key %s unavailable: %v", e.WorkspaceID, e.KeyID, e.Err)
}

// Unwrap returns ErrKeyUnavailable and the cause.
func (e *KeyUnavailableError) Unwrap() []error { return []error{ErrKeyUnavailable, e.Err} }

// Temporary reports that retrying later may succeed.
func (e *KeyUnavailableError) Temporary() bool { return true }

// kekFor returns the KEK that wraps the service layer of f, or nil if the
// customer provider is not known yet. The caller holds ws.keysMu.
func (ws *workspace) kekFor(f *keyFile) crypt.KeyProvider {
	if f.customer {
		return ws.provider
	}
	return ws.db.keys
}

func (ws *workspace) unavailable(f *keyFile, err error) error {
	return &KeyUnavailableError{WorkspaceID: ws.id, KeyID: f.serviceKeyID, Err: err}
}

// unwrapKeyFile unwraps the workspace keys of f with the workspace's KEKs.
// A failure of the customer layer is a *KeyUnavailableError; a failure of
// the platform layer is returned as is (wrong platform key: fail closed).
func (ws *workspace) unwrapKeyFile(ctx context.Context, f *keyFile) (*wsKeys, error) {
	kek := ws.kekFor(f)
	if kek == nil {
		return nil, ws.unavailable(f, errors.New("no key provider set for the workspace since the store opened"))
	}
	svc, err := crypt.UnwrapKey(ctx, kek, "ws-"+ws.id, f.serviceWrapped, wsKeyAAD(ws.id))
	if err != nil {
		if f.customer {
			return nil, ws.unavailable(f, err)
		}
		return nil, fmt.Errorf("unwrap workspace key: %w", err)
	}
	k := &wsKeys{service: svc}
	if f.infraWrapped != nil {
		if k.infra, err = crypt.UnwrapKey(ctx, ws.db.keys, "ws-"+ws.id+"-infra", f.infraWrapped, wsInfraKeyAAD(ws.id)); err != nil {
			svc.Destroy()
			return nil, fmt.Errorf("unwrap workspace infrastructure key: %w", err)
		}
	}
	return k, nil
}

// requireKeys returns the workspace keys if the KEK confirmed them within
// Options.KeyCacheTTL. Past the TTL it asks the KEK again; if the KEK refuses,
// every operation fails with a *KeyUnavailableError until it accepts again
// (asked at most once per KeyRetryInterval).
func (ws *workspace) requireKeys(ctx context.Context) (*wsKeys, error) {
	now := ws.db.opts.Now()
	if now.UnixNano() < ws.okUntil.Load() {
		return ws.keys.Load(), nil
	}
	ws.keysMu.Lock()
	defer ws.keysMu.Unlock()
	if ws.keyErr == nil && now.Sub(ws.verifiedAt) < ws.db.opts.KeyCacheTTL {
		return ws.keys.Load(), nil
	}
	if ws.keyErr != nil && now.Sub(ws.lastAttempt) < ws.db.opts.KeyRetryInterval {
		return nil, ws.keyErr
	}
	ws.lastAttempt = now
	cur := ws.keys.Load()
	got, err := ws.unwrapKeyFile(ctx, ws.kf)
	if err == nil {
		ok := cur.service.SameMaterialAs(got.service) && (cur.infra == nil) == (got.infra == nil) &&
			(cur.infra == nil || cur.infra.SameMaterialAs(got.infra))
		got.service.Destroy()
		if got.infra != nil {
			got.infra.Destroy()
		}
		if !ok {
			err = ws.unavailable(ws.kf, errors.New("the key provider returned another workspace key"))
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var ku *KeyUnavailableError
		if !errors.As(err, &ku) {
			err = ws.unavailable(ws.kf, err)
		}
		if ws.keyErr == nil {
			ws.db.log.Warn("workspace key unavailable: ingestion and queries refused until the key is restored",
				slog.String("workspace_id", ws.id), slog.String("key_id", ws.kf.serviceKeyID), slog.String("error", err.Error()))
			ws.db.m.keyRevocations.Add(1)
		}
		ws.keyErr = err
		ws.okUntil.Store(0)
		return nil, err
	}
	if ws.keyErr != nil {
		ws.db.log.Info("workspace key available again", slog.String("workspace_id", ws.id), slog.String("key_id", ws.kf.serviceKeyID))
	}
	ws.setVerified(now)
	return cur, nil
}

// WorkspaceEncryption is a workspace's key configuration.
type WorkspaceEncryption struct {
	// Provider is the customer-managed key-encryption key; nil means the
	// platform key.
	Provider crypt.KeyProvider
	// DoubleEncryption adds an independent infrastructure layer under the
	// platform key to every part, WAL record and table meta written from now
	// on (parts written before are re-sealed when merged or purged). It
	// cannot be turned off again.
	DoubleEncryption bool
}

// EncryptionStatus describes a workspace's keys.
type EncryptionStatus struct {
	KeyID            string // the KEK of the service layer
	CustomerManaged  bool
	DoubleEncryption bool
	// Available is false while the customer-managed key refuses (revoked);
	// Err then says why.
	Available bool
	Err       error
}

// SetWorkspaceKeyProvider links the workspace to a customer-managed key (p),
// or back to the platform key (p nil), keeping its double-encryption
// setting. See SetWorkspaceEncryption.
func (db *DB) SetWorkspaceKeyProvider(ctx context.Context, workspaceID string, p crypt.KeyProvider) error {
	st, err := db.EncryptionStatus(ctx, workspaceID)
	double := err == nil && st.DoubleEncryption
	if err != nil && !errors.Is(err, ErrKeyUnavailable) {
		return err
	}
	if err != nil {
		double = st.DoubleEncryption
	}
	return db.SetWorkspaceEncryption(ctx, workspaceID, WorkspaceEncryption{Provider: p, DoubleEncryption: double})
}

// SetWorkspaceEncryption sets the key-encryption key and double encryption of
// a workspace, creating the workspace if needed. Linking re-wraps the
// workspace key under the new KEK (one wrap call) and rewrites only the
// workspace key file, never the data. Calling it with the provider already
// linked re-wraps under the provider's current key version (rotation); with
// a provider whose key file names it but is not loaded yet (after a restart)
// it unlocks the workspace. A provider that refuses yields a
// *KeyUnavailableError and leaves everything as it was, except that the
// provider is remembered and retried.
func (db *DB) SetWorkspaceEncryption(ctx context.Context, workspaceID string, enc WorkspaceEncryption) error {
	id := strings.ToLower(workspaceID)
	if err := validWorkspaceID(id); err != nil {
		return err
	}
	ws, err := db.workspace(ctx, id, true)
	if ws == nil {
		return err
	}
	var ku *KeyUnavailableError
	if err != nil && !errors.As(err, &ku) {
		return err
	}
	if ws.pending {
		ws.keysMu.Lock()
		if enc.Provider != nil {
			ws.provider = enc.Provider
		}
		ws.lastAttempt = time.Time{}
		ws.keysMu.Unlock()
		if ws, err = db.activate(ctx, ws); err != nil {
			return err
		}
	}
	ws.keysMu.Lock()
	defer ws.keysMu.Unlock()
	cur := ws.keys.Load()
	old := ws.kf
	if old.infraWrapped != nil && !enc.DoubleEncryption {
		return errors.New("store: double encryption cannot be turned off")
	}
	// The current KEK must still accept the workspace key: linking is no way
	// around a revoked key.
	oldProvider := ws.provider
	if old.customer && oldProvider != nil && enc.Provider != nil && oldProvider.KeyID() == enc.Provider.KeyID() {
		oldProvider = enc.Provider // the same key, reconfigured (for example new credentials)
	}
	if old.customer {
		ws.provider = oldProvider
		if ws.provider == nil {
			ws.provider = enc.Provider
		}
	}
	if got, err := ws.unwrapKeyFile(ctx, old); err != nil {
		return err
	} else {
		got.service.Destroy()
		if got.infra != nil {
			got.infra.Destroy()
		}
	}
	nf := &keyFile{infraWrapped: old.infraWrapped}
	kek := crypt.KeyProvider(db.keys)
	if enc.Provider != nil {
		kek, nf.customer = enc.Provider, true
	}
	nf.serviceKeyID = kek.KeyID()
	switch {
	case old.customer == nf.customer && old.serviceKeyID == nf.serviceKeyID && old.customer:
		// Rotation: re-wrap under the KEK's current version (Vault rewrap
		// keeps the key inside the KMS).
		nf.serviceWrapped, err = crypt.Rewrap(ctx, kek, old.serviceWrapped, wsKeyAAD(ws.id))
	default:
		nf.serviceWrapped, err = cur.service.WrapWith(ctx, kek, wsKeyAAD(ws.id))
	}
	if err != nil {
		if enc.Provider != nil {
			return &KeyUnavailableError{WorkspaceID: ws.id, KeyID: kek.KeyID(), Err: err}
		}
		return err
	}
	next := cur
	if enc.DoubleEncryption && cur.infra == nil {
		infra, wrapped, err := crypt.WrapNewKey(ctx, db.keys, "ws-"+ws.id+"-infra", wsInfraKeyAAD(ws.id))
		if err != nil {
			return fmt.Errorf("double encryption: %w", err)
		}
		nf.infraWrapped = wrapped
		next = &wsKeys{service: cur.service, infra: infra}
	}
	// Check the new wrapping before it replaces the old one.
	probe := &workspace{db: db, id: ws.id, provider: enc.Provider}
	if got, err := probe.unwrapKeyFile(ctx, nf); err != nil {
		return fmt.Errorf("verify new workspace key wrapping: %w", err)
	} else if !got.service.SameMaterialAs(cur.service) {
		return errors.New("store: new workspace key wrapping does not round-trip")
	}
	if err := writeFileAtomic(filepath.Join(ws.dir, "workspace.key"), nf.encode()); err != nil {
		return fmt.Errorf("set workspace encryption: %w", err)
	}
	ws.kf = nf
	ws.provider = enc.Provider
	ws.setVerified(db.opts.Now())
	if next != cur {
		ws.keys.Store(next)
		// New WAL records get both layers: start a new segment.
		ws.keysMu.Unlock()
		ws.gate.Lock()
		if ws.wal != nil && !ws.dropped {
			if _, err := ws.wal.rotate(ctx); err != nil {
				db.log.Warn("WAL rotation after enabling double encryption failed", slog.String("workspace_id", ws.id), slog.String("error", err.Error()))
			}
		}
		ws.gate.Unlock()
		ws.keysMu.Lock()
	}
	db.log.Info("workspace encryption set", slog.String("workspace_id", ws.id), slog.String("key_id", nf.serviceKeyID),
		slog.Bool("customer_managed", nf.customer), slog.Bool("double_encryption", nf.infraWrapped != nil))
	return nil
}

// RotateWorkspaceKeyWrapping re-wraps the workspace key under the current
// version of its KEK (after the customer rotated the key in the KMS), without
// rewriting data.
func (db *DB) RotateWorkspaceKeyWrapping(ctx context.Context, workspaceID string) error {
	ws, err := db.workspace(ctx, workspaceID, false)
	if err != nil {
		return err
	}
	if ws == nil {
		return fmt.Errorf("%w: workspace %s", ErrTableNotFound, workspaceID)
	}
	ws.keysMu.Lock()
	p, double := ws.provider, ws.kf.infraWrapped != nil
	ws.keysMu.Unlock()
	return db.SetWorkspaceEncryption(ctx, workspaceID, WorkspaceEncryption{Provider: p, DoubleEncryption: double})
}

// EncryptionStatus reports a workspace's key configuration and whether its
// key is usable now (it asks the KEK if the cache TTL has passed).
func (db *DB) EncryptionStatus(ctx context.Context, workspaceID string) (EncryptionStatus, error) {
	id := strings.ToLower(workspaceID)
	if err := validWorkspaceID(id); err != nil {
		return EncryptionStatus{}, err
	}
	db.mu.RLock()
	ws := db.workspaces[id]
	db.mu.RUnlock()
	if ws == nil {
		return EncryptionStatus{KeyID: db.keys.KeyID(), Available: true}, nil
	}
	var err error
	if ws.pending {
		_, err = db.workspace(ctx, id, false)
	} else {
		_, err = ws.requireKeys(ctx)
	}
	db.mu.RLock()
	if w := db.workspaces[id]; w != nil {
		ws = w // activated meanwhile
	}
	db.mu.RUnlock()
	ws.keysMu.Lock()
	kf := ws.kf
	ws.keysMu.Unlock()
	keyID := kf.serviceKeyID
	if !kf.customer {
		keyID = db.keys.KeyID()
	}
	return EncryptionStatus{KeyID: keyID, CustomerManaged: kf.customer, DoubleEncryption: kf.infraWrapped != nil, Available: err == nil, Err: err}, err
}

// activate loads a pending workspace (one whose customer-managed key was not
// usable when the store opened) once its key provider accepts. It returns
// the loaded workspace, or a *KeyUnavailableError.
func (db *DB) activate(ctx context.Context, ws *workspace) (*workspace, error) {
	db.activateMu.Lock()
	defer db.activateMu.Unlock()
	db.mu.RLock()
	cur, closed := db.workspaces[ws.id], db.closed
	db.mu.RUnlock()
	if closed {
		return nil, ErrClosed
	}
	if cur != ws { // activated, or dropped, meanwhile
		if cur == nil {
			return nil, fmt.Errorf("%w: workspace %s", ErrTableNotFound, ws.id)
		}
		if cur.pending {
			return db.activate(ctx, cur)
		}
		return cur, nil
	}
	ws.keysMu.Lock()
	now := db.opts.Now()
	if ws.keyErr != nil && !ws.lastAttempt.IsZero() && now.Sub(ws.lastAttempt) < db.opts.KeyRetryInterval {
		err := ws.keyErr
		ws.keysMu.Unlock()
		return nil, err
	}
	ws.lastAttempt = now
	provider := ws.provider
	ws.keysMu.Unlock()
	loaded, err := db.openWorkspaceWith(ctx, ws.id, provider)
	if err != nil {
		ws.keysMu.Lock()
		ws.keyErr = err
		ws.keysMu.Unlock()
		return nil, err
	}
	db.mu.Lock()
	if db.closed || db.workspaces[ws.id] != ws {
		db.mu.Unlock()
		loaded.close()
		return nil, fmt.Errorf("%w: workspace %s", ErrTableNotFound, ws.id)
	}
	db.workspaces[ws.id] = loaded
	db.mu.Unlock()
	db.log.Info("workspace unlocked by its customer-managed key", slog.String("workspace_id", ws.id))
	return loaded, nil
}

// readKeyFile reads and parses a workspace key file.
func readWorkspaceKeyFile(dir string) (*keyFile, error) {
	path := filepath.Join(dir, "workspace.key")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read workspace key: %w", err)
	}
	f, err := parseKeyFile(b)
	if err != nil {
		return nil, &CorruptionError{Path: path, Block: -1, Err: err}
	}
	return f, nil
}

// setVerified records that the KEK confirmed the key at now. The caller
// holds ws.keysMu.
func (ws *workspace) setVerified(now time.Time) {
	ws.keyErr = nil
	ws.verifiedAt = now
	ws.okUntil.Store(now.Add(ws.db.opts.KeyCacheTTL).UnixNano())
}
