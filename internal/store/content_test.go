package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"custos/internal/crypt"
)

func TestWorkspaceContent(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	db := env.open(t, nil)
	defer func() { db.Close() }()
	plain := []byte("SecurityEvent | where Account == 'alice@contoso.com' | count")
	aad := []byte("/subscriptions/s/resourceGroups/r/providers/Microsoft.Insights/scheduledQueryRules/a")

	sealed, err := db.SealWorkspaceContent(ctx, testWS, plain, aad)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, plain) || bytes.Contains(sealed, []byte("alice")) {
		t.Fatal("sealed content contains plaintext")
	}
	got, err := db.OpenWorkspaceContent(ctx, testWS, sealed, aad)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open: %q, %v; want %q", got, err, plain)
	}
	// Sealing twice gives different ciphertexts (random nonces).
	again, _ := db.SealWorkspaceContent(ctx, testWS, plain, aad)
	if bytes.Equal(again, sealed) {
		t.Fatal("two seals produced the same bytes")
	}
	// Wrong AAD, another workspace, flipped bits, truncation: all fail with ErrCorrupt.
	if _, err := db.OpenWorkspaceContent(ctx, testWS, sealed, []byte("other")); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("wrong aad: got %v; want ErrCorrupt", err)
	}
	const otherWS = "00000000-0000-0000-0000-0000000000b2"
	if _, err := db.SealWorkspaceContent(ctx, otherWS, []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := db.OpenWorkspaceContent(ctx, otherWS, sealed, aad); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("other workspace: got %v; want ErrCorrupt", err)
	}
	for i := range sealed {
		mod := bytes.Clone(sealed)
		mod[i] ^= 0x01
		if _, err := db.OpenWorkspaceContent(ctx, testWS, mod, aad); err == nil {
			t.Fatalf("byte %d flipped: opened", i)
		}
	}
	for n := range len(sealed) {
		if _, err := db.OpenWorkspaceContent(ctx, testWS, sealed[:n], aad); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d: got %v; want ErrCorrupt", n, err)
		}
	}
	if _, err := db.OpenWorkspaceContent(ctx, "00000000-0000-0000-0000-0000000000b3", sealed, aad); !errors.Is(err, ErrTableNotFound) {
		t.Fatalf("unknown workspace: got %v; want ErrTableNotFound", err)
	}
	// Survives a restart.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = env.open(t, nil)
	if got, err := db.OpenWorkspaceContent(ctx, testWS, sealed, aad); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("after restart: %q, %v", got, err)
	}
}

// TestWorkspaceContentCustomerKey links the workspace to a customer-managed
// key with double encryption, revokes the key, and restores it.
func TestWorkspaceContentCustomerKey(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	const ttl = time.Minute
	db := env.open(t, func(o *Options) { o.KeyCacheTTL = ttl; o.KeyRetryInterval = time.Second })
	defer func() { db.Close() }()
	plain := []byte("saved search: Heartbeat | summarize count() by Computer")
	aad := []byte("savedSearches/hb")
	before, err := db.SealWorkspaceContent(ctx, testWS, plain, aad)
	if err != nil {
		t.Fatal(err)
	}
	cmkPath := filepath.Join(t.TempDir(), "customer.key")
	fk, err := crypt.CreateFileKey(cmkPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetWorkspaceEncryption(ctx, testWS, WorkspaceEncryption{Provider: fk, DoubleEncryption: true}); err != nil {
		t.Fatal(err)
	}
	after, err := db.SealWorkspaceContent(ctx, testWS, plain, aad)
	if err != nil {
		t.Fatal(err)
	}
	if after[len(contentMagic)+1] != 2 || before[len(contentMagic)+1] != 1 {
		t.Fatalf("layers before/after double encryption: %d/%d; want 1/2", before[len(contentMagic)+1], after[len(contentMagic)+1])
	}
	// Peel the outer (infrastructure) layer: what is left is a service-layer
	// envelope without plaintext.
	k := db.workspaces[testWS].keys.Load()
	inner, err := k.infra.Open(nil, after[contentHdrLen:], contentAAD(testWS, aad))
	if err != nil {
		t.Fatal(err)
	}
	if e, err := crypt.ParseEnvelope(inner); err != nil || e.KeyID != k.service.ID() || bytes.Contains(inner, plain) {
		t.Fatalf("inner layer: %+v, %v", e, err)
	}
	for _, s := range [][]byte{before, after} {
		if got, err := db.OpenWorkspaceContent(ctx, testWS, s, aad); err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("open with customer key: %q, %v", got, err)
		}
	}

	// Revoke: after the cache TTL, sealing and opening fail as retryable.
	if err := os.Chmod(cmkPath, 0); err != nil {
		t.Fatal(err)
	}
	env.now = env.now.Add(ttl + time.Second)
	_, err = db.OpenWorkspaceContent(ctx, testWS, after, aad)
	wantKeyUnavailable(t, "open while revoked", err)
	_, err = db.SealWorkspaceContent(ctx, testWS, plain, aad)
	wantKeyUnavailable(t, "seal while revoked", err)

	// Restore: everything opens again, also after a restart.
	if err := os.Chmod(cmkPath, 0o600); err != nil {
		t.Fatal(err)
	}
	env.now = env.now.Add(2 * time.Second)
	if got, err := db.OpenWorkspaceContent(ctx, testWS, after, aad); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("after restore: %q, %v", got, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = env.open(t, nil)
	_, err = db.OpenWorkspaceContent(ctx, testWS, after, aad)
	wantKeyUnavailable(t, "after restart without the provider", err)
	if err := db.SetWorkspaceKeyProvider(ctx, testWS, fk); err != nil {
		t.Fatal(err)
	}
	for _, s := range [][]byte{before, after} {
		if got, err := db.OpenWorkspaceContent(ctx, testWS, s, aad); err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("after restart with the provider: %q, %v", got, err)
		}
	}
}
