//go:build pkcs11

package store

import (
	"context"
	"custos/internal/crypt/softhsmtest"
	"testing"
	"time"

	"custos/internal/crypt"
)

// Run with test/pkcs11.sh (needs cgo and SoftHSM2).

// TestPKCS11Revocation links a workspace to a SoftHSM2 key, disables the
// key in the HSM, and re-enables it: ingestion and queries fail with
// KeyUnavailableError after the cache TTL and come back with nothing lost.
func TestPKCS11Revocation(t *testing.T) {
	hsm := softhsmtest.New(t)
	k := hsm.GenerateKey(t, "custos-ws-kek")
	p, err := crypt.NewPKCS11(crypt.PKCS11Options{Module: softhsmtest.Module, TokenLabel: "custos", PIN: crypt.Secret("1234"), KeyLabel: "custos-ws-kek"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	env := newEnv(t)
	ctx := context.Background()
	const ttl = time.Minute
	mod := func(o *Options) { o.KeyCacheTTL = ttl; o.KeyRetryInterval = time.Second }
	db := env.open(t, mod)
	ref := TableRef{WorkspaceID: testWS, Table: "HSM"}
	if err := db.EnsureTable(ctx, ref, Schema{{"Msg", TypeString}}, 0); err != nil {
		t.Fatal(err)
	}
	if err := db.SetWorkspaceEncryption(ctx, testWS, WorkspaceEncryption{Provider: p, DoubleEncryption: true}); err != nil {
		t.Fatal(err)
	}
	commit(t, db, ref, crashBatchFor(0, 100))
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	commit(t, db, ref, crashBatchFor(100, 10))

	hsm.SetUsable(t, k, false)
	env.now = env.now.Add(ttl + time.Second)
	wantKeyUnavailable(t, "commit with the HSM key disabled", tryCommit(db, ref, crashBatchFor(110, 10)))
	_, err = tryCount(db, ref)
	wantKeyUnavailable(t, "query with the HSM key disabled", err)

	hsm.SetUsable(t, k, true)
	env.now = env.now.Add(2 * time.Second)
	if err := tryCommit(db, ref, crashBatchFor(110, 10)); err != nil {
		t.Fatalf("commit after re-enabling: %v", err)
	}
	if n, err := tryCount(db, ref); err != nil || n != 120 {
		t.Fatalf("%d rows, %v", n, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// Restart with the key disabled, then enabled.
	hsm.SetUsable(t, k, false)
	db = env.open(t, mod)
	defer func() { db.Close() }()
	wantKeyUnavailable(t, "unlock with the HSM key disabled", db.SetWorkspaceKeyProvider(ctx, testWS, p))
	hsm.SetUsable(t, k, true)
	env.now = env.now.Add(2 * time.Second)
	if n, err := tryCount(db, ref); err != nil || n != 120 {
		t.Fatalf("after restart: %d rows, %v", n, err)
	}
}
