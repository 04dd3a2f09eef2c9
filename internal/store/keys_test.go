package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"custos/internal/crypt"
)

// hashParts returns the SHA-256 of every part file under dir.
func hashParts(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	for _, p := range flushedPartFiles(t, filepath.Dir(dir)) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = sha256.Sum256(b)
	}
	return out
}

func wantKeyUnavailable(t *testing.T, what string, err error) {
	t.Helper()
	var ku *KeyUnavailableError
	if !errors.Is(err, ErrKeyUnavailable) || !errors.As(err, &ku) || !ku.Temporary() || ku.WorkspaceID != testWS {
		t.Fatalf("%s: got %v; want a *KeyUnavailableError", what, err)
	}
}

func tryCommit(db *DB, ref TableRef, b *Batch) error {
	ctx := context.Background()
	a, err := db.Appender(ctx, ref)
	if err != nil {
		return err
	}
	if err := a.Append(b); err != nil {
		return err
	}
	return a.Commit(ctx)
}

func tryCount(db *DB, ref TableRef) (int, error) {
	return selectCount(context.Background(), db, ref, AllTime, SelectHints{})
}

// TestCustomerKeyRevocation links a workspace to a FileKey, revokes the key
// (chmod 000, then removal) and restores it, across the cache TTL and
// restarts, with a real file-backed provider.
func TestCustomerKeyRevocation(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	const ttl = time.Minute
	mod := func(o *Options) { o.KeyCacheTTL = ttl; o.KeyRetryInterval = time.Second }
	db := env.open(t, mod)
	ref := TableRef{WorkspaceID: testWS, Table: "CMK"}
	if err := db.EnsureTable(ctx, ref, Schema{{"Msg", TypeString}}, 0); err != nil {
		t.Fatal(err)
	}
	commit(t, db, ref, crashBatchFor(0, 100))
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	commit(t, db, ref, crashBatchFor(100, 50)) // stays in the WAL and memtable
	dataDir := filepath.Join(env.dir, "data")
	before := hashParts(t, dataDir)

	cmkPath := filepath.Join(t.TempDir(), "customer.key")
	fk, err := crypt.CreateFileKey(cmkPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetWorkspaceKeyProvider(ctx, testWS, fk); err != nil {
		t.Fatal(err)
	}
	st, err := db.EncryptionStatus(ctx, testWS)
	if err != nil || !st.CustomerManaged || st.KeyID != fk.KeyID() || !st.Available || st.DoubleEncryption {
		t.Fatalf("status %+v, %v", st, err)
	}
	kfBytes, _ := os.ReadFile(filepath.Join(dataDir, "workspaces", testWS, "workspace.key"))
	if !bytes.HasPrefix(kfBytes, []byte(wsKeyMagicV2)) || !bytes.Contains(kfBytes, []byte(fk.KeyID())) {
		t.Fatalf("workspace key file not re-wrapped: %q", kfBytes[:12])
	}
	after := hashParts(t, dataDir)
	if len(after) != len(before) || len(before) == 0 {
		t.Fatalf("parts changed by linking: %d → %d", len(before), len(after))
	}
	for k, v := range before {
		if after[k] != v {
			t.Fatalf("part %s rewritten by linking", k)
		}
	}
	if n, err := tryCount(db, ref); err != nil || n != 150 {
		t.Fatalf("after linking: %d rows, %v", n, err)
	}

	// Revoke: within the TTL the cached key still serves; after it, nothing does.
	if err := os.Chmod(cmkPath, 0); err != nil {
		t.Fatal(err)
	}
	if n, err := tryCount(db, ref); err != nil || n != 150 {
		t.Fatalf("within TTL: %d rows, %v", n, err)
	}
	env.now = env.now.Add(ttl + time.Second)
	wantKeyUnavailable(t, "commit while revoked", tryCommit(db, ref, crashBatchFor(150, 10)))
	_, err = tryCount(db, ref)
	wantKeyUnavailable(t, "query while revoked", err)
	wantKeyUnavailable(t, "ensure table while revoked", db.EnsureTable(ctx, TableRef{WorkspaceID: testWS, Table: "Other"}, nil, 0))
	wantKeyUnavailable(t, "flush while revoked", db.Flush(ctx))
	if got := hashParts(t, dataDir); len(got) != len(before) {
		t.Fatal("a part was written while the key was revoked")
	}
	if st, err := db.EncryptionStatus(ctx, testWS); st.Available || err == nil {
		t.Fatalf("status while revoked: %+v", st)
	}
	if db.Stats().KeyRevocations != 1 {
		t.Fatalf("KeyRevocations %d; want 1", db.Stats().KeyRevocations)
	}
	// Linking to another key is no way around a revoked one.
	other, err := crypt.CreateFileKey(filepath.Join(t.TempDir(), "other.key"))
	if err != nil {
		t.Fatal(err)
	}
	wantKeyUnavailable(t, "relink while revoked", db.SetWorkspaceKeyProvider(ctx, testWS, other))
	wantKeyUnavailable(t, "unlink while revoked", db.SetWorkspaceKeyProvider(ctx, testWS, nil))

	// Restore: after the retry interval everything is back, nothing lost.
	if err := os.Chmod(cmkPath, 0o600); err != nil {
		t.Fatal(err)
	}
	env.now = env.now.Add(2 * time.Second)
	if err := tryCommit(db, ref, crashBatchFor(150, 10)); err != nil {
		t.Fatalf("commit after restore: %v", err)
	}
	if n, err := tryCount(db, ref); err != nil || n != 160 {
		t.Fatalf("after restore: %d rows, %v", n, err)
	}
	commit(t, db, ref, crashBatchFor(160, 5)) // in the WAL across the restart
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// Restart: the workspace waits for its provider; the platform key alone opens nothing.
	db = env.open(t, mod)
	_, err = tryCount(db, ref)
	wantKeyUnavailable(t, "query before the provider is set", err)
	if err := db.SetWorkspaceKeyProvider(ctx, testWS, fk); err != nil {
		t.Fatal(err)
	}
	if n, err := tryCount(db, ref); err != nil || n != 165 {
		t.Fatalf("after restart: %d rows, %v", n, err)
	}
	if err := os.Rename(cmkPath, cmkPath+".gone"); err != nil { // lost access
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// Restart while the key is gone: refused, then restored without a new call.
	db = env.open(t, mod)
	defer func() { db.Close() }()
	wantKeyUnavailable(t, "set provider while revoked", db.SetWorkspaceKeyProvider(ctx, testWS, fk))
	wantKeyUnavailable(t, "commit while revoked after restart", tryCommit(db, ref, crashBatchFor(165, 5)))
	if err := os.Rename(cmkPath+".gone", cmkPath); err != nil {
		t.Fatal(err)
	}
	env.now = env.now.Add(2 * time.Second)
	if n, err := tryCount(db, ref); err != nil || n != 165 {
		t.Fatalf("restored after restart: %d rows, %v", n, err)
	}

	// Rotation to another customer key, then back to the platform key: only
	// the workspace key file changes.
	if err := db.SetWorkspaceKeyProvider(ctx, testWS, other); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(cmkPath, 0); err != nil { // the old key no longer matters
		t.Fatal(err)
	}
	env.now = env.now.Add(ttl + time.Second)
	if n, err := tryCount(db, ref); err != nil || n != 165 {
		t.Fatalf("after moving to another key: %d rows, %v", n, err)
	}
	if err := db.RotateWorkspaceKeyWrapping(ctx, testWS); err != nil {
		t.Fatal(err)
	}
	if err := db.SetWorkspaceKeyProvider(ctx, testWS, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = env.open(t, mod)
	if n, err := tryCount(db, ref); err != nil || n != 165 {
		t.Fatalf("after unlinking: %d rows, %v", n, err)
	}
	for k, v := range before {
		if got := hashParts(t, dataDir); got[k] != v {
			t.Fatalf("part %s rewritten by key changes", k)
		}
	}
}

// TestDoubleEncryption shows that with double encryption each key alone
// reveals nothing: removing the outer (infrastructure) layer leaves only
// ciphertext, and either key missing makes the workspace unreadable.
func TestDoubleEncryption(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	db := env.open(t, nil)
	ref := TableRef{WorkspaceID: testWS, Table: "Double"}
	if err := db.EnsureTable(ctx, ref, Schema{{"Msg", TypeString}}, 0); err != nil {
		t.Fatal(err)
	}
	fk, err := crypt.CreateFileKey(filepath.Join(t.TempDir(), "customer.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetWorkspaceEncryption(ctx, testWS, WorkspaceEncryption{Provider: fk, DoubleEncryption: true}); err != nil {
		t.Fatal(err)
	}
	secret := "correct-horse-battery-staple"
	b := stringBatch(0, 200, func(i int) string { return secret + "-" + strings.Repeat("x", i%7) })
	commit(t, db, ref, b)
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	commit(t, db, ref, stringBatch(200, 20, func(int) string { return secret }))
	dataDir := filepath.Join(env.dir, "data")
	scanFiles(t, dataDir, secret)

	tbl, err := db.lookupTable(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	var p *part
	for _, ps := range tbl.parts {
		p = ps[0]
	}
	if p == nil || len(p.key) != 2 {
		t.Fatal("no double-encrypted part")
	}
	raw, err := os.ReadFile(p.path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw, []byte(partMagicV2)) {
		t.Fatalf("part header %q; want version 2", raw[:8])
	}
	// Remove only the outer layer of every chunk: what is left is an
	// envelope under the customer hierarchy, with no plaintext in it.
	var aadBuf []byte
	for bi, bm := range p.meta.blocks {
		for j, cm := range bm.cols {
			aadBuf = blockAAD(aadBuf[:0], p.wsID, p.table, p.id, bi, p.meta.cols[j].Name)
			inner, err := p.key[1].Open(nil, raw[cm.off:cm.off+int64(cm.size)], aadBuf)
			if err != nil {
				t.Fatalf("outer layer of block %d column %d: %v", bi, j, err)
			}
			env, err := crypt.ParseEnvelope(inner)
			if err != nil || env.KeyID != p.key[0].ID() {
				t.Fatalf("inner of block %d column %d is not a service-layer envelope: %v", bi, j, err)
			}
			if bytes.Contains(inner, []byte(secret)) || bytes.Contains(inner, []byte("Msg")) {
				t.Fatalf("plaintext under the outer layer only")
			}
			if _, err := zstdDecodeBounded(inner, 1<<20); err == nil {
				t.Fatal("inner layer decompresses without the service key")
			}
		}
	}
	// The same for the active WAL segment's records.
	seg := tbl.ws.wal.cur
	wb, err := os.ReadFile(seg.path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(wb, []byte(walMagicV2)) || len(seg.key) != 2 {
		t.Fatalf("WAL segment header %q; want version 2", wb[:8])
	}
	_, _, off, err := parseSegmentHeader(wb)
	if err != nil {
		t.Fatal(err)
	}
	records := 0
	for off < len(wb) {
		n := int(binary.LittleEndian.Uint32(wb[off:]))
		seq := binary.LittleEndian.Uint64(wb[off+4:])
		sealed := wb[off+walFrameHeader : off+walFrameHeader+n]
		inner, err := seg.key[1].Open(nil, sealed, recordAAD(nil, p.wsID, seg.firstSeq, seq))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(inner, []byte(secret)) {
			t.Fatal("WAL plaintext under the outer layer only")
		}
		if _, err := seg.key[0].Open(nil, inner, recordAAD(nil, p.wsID, seg.firstSeq, seq)); err != nil {
			t.Fatalf("inner WAL layer: %v", err)
		}
		records++
		off += walFrameHeader + n
	}
	if records != 1 {
		t.Fatalf("%d records in the active segment; want 1", records)
	}
	if err := db.SetWorkspaceEncryption(ctx, testWS, WorkspaceEncryption{Provider: fk}); err == nil {
		t.Fatal("double encryption turned off")
	}
	if n, err := tryCount(db, ref); err != nil || n != 220 {
		t.Fatalf("%d rows, %v", n, err)
	}
	db.Close()

	// Customer key alone missing: nothing opens.
	if err := os.Chmod(fk.Path(), 0); err != nil {
		t.Fatal(err)
	}
	db = env.open(t, nil)
	wantKeyUnavailable(t, "customer key missing", db.SetWorkspaceKeyProvider(ctx, testWS, fk))
	if _, err := tryCount(db, ref); err == nil {
		t.Fatal("read without the customer key")
	}
	db.Close()
	if err := os.Chmod(fk.Path(), 0o600); err != nil {
		t.Fatal(err)
	}
	// Platform key alone missing (another platform key): nothing opens either.
	wrongPlatform := testKeys(t, t.TempDir())
	db2, err := Open(Options{Dir: dataDir, Keys: wrongPlatform, DisableBackground: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := db2.SetWorkspaceKeyProvider(ctx, testWS, fk); err == nil {
		t.Fatal("workspace unlocked without the platform key")
	}
	if _, err := tryCount(db2, ref); err == nil {
		t.Fatal("read without the platform key")
	}
	db2.Close()
	// Both keys: everything is there.
	db = env.open(t, nil)
	defer db.Close()
	if err := db.SetWorkspaceKeyProvider(ctx, testWS, fk); err != nil {
		t.Fatal(err)
	}
	if n, err := tryCount(db, ref); err != nil || n != 220 {
		t.Fatalf("%d rows, %v", n, err)
	}
}

func stringBatch(lo, n int, msg func(i int) string) *Batch {
	b := &Batch{Schema: Schema{{"TimeGenerated", TypeDatetime}, {"Msg", TypeString}}, Len: n,
		Cols: []*Vector{{Type: TypeDatetime}, {Type: TypeString}}}
	for k := range n {
		i := lo + k
		b.Cols[0].Int = append(b.Cols[0].Int, TicksFromTime(baseTime)+int64(i)*TicksPerSecond)
		b.Cols[1].Str = append(b.Cols[1].Str, msg(i))
	}
	return b
}
