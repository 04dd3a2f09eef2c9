//go:build pkcs11

package crypt

import (
	"bytes"
	"context"
	"custos/internal/crypt/softhsmtest"
	"errors"
	"fmt"
	"sync"
	"testing"
)

func TestPKCS11SoftHSM(t *testing.T) {
	hsm := softhsmtest.New(t)
	k1 := hsm.GenerateKey(t, "custos-kek-1")
	ctx := context.Background()
	if _, err := NewPKCS11(PKCS11Options{Module: softhsmtest.Module, TokenLabel: "custos", PIN: Secret("1234"), KeyLabel: "missing"}); !errors.Is(err, ErrKeyUnavailable) {
		t.Fatalf("missing key: %v", err)
	}
	if _, err := NewPKCS11(PKCS11Options{Module: softhsmtest.Module, TokenLabel: "nope", PIN: Secret("1234"), KeyLabel: "custos-kek-1"}); err == nil {
		t.Fatal("unknown token accepted")
	}
	p, err := NewPKCS11(PKCS11Options{Module: softhsmtest.Module, TokenLabel: "custos", PIN: Secret("1234"), KeyLabel: "custos-kek-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.KeyID() != "pkcs11:custos/custos-kek-1" || bytes.Contains([]byte(fmt.Sprint(p)), []byte("1234")) {
		t.Fatalf("KeyID %q String %s", p.KeyID(), p)
	}
	key := bytes.Repeat([]byte{0xAB}, KeySize)
	w, err := p.WrapKey(ctx, key, []byte("ws-1"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(w, key) {
		t.Fatal("key visible in its wrapping")
	}
	got, err := p.UnwrapKey(ctx, w, []byte("ws-1"))
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("unwrap: %v", err)
	}
	if _, err := p.UnwrapKey(ctx, w, []byte("ws-2")); err == nil {
		t.Fatal("unwrap with another AAD succeeded")
	}
	for i := range w {
		if _, err := p.UnwrapKey(ctx, w[:i], []byte("ws-1")); err == nil {
			t.Fatalf("prefix of %d bytes unwrapped", i)
		}
	}
	// Concurrent use of the one session.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if got, err := p.UnwrapKey(ctx, w, []byte("ws-1")); err != nil || !bytes.Equal(got, key) {
					t.Errorf("concurrent unwrap: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()

	// Disabled key: unavailable; re-enabled: back.
	hsm.SetUsable(t, k1, false)
	if _, err := p.UnwrapKey(ctx, w, []byte("ws-1")); !errors.Is(err, ErrKeyUnavailable) {
		t.Fatalf("disabled key: %v", err)
	}
	hsm.SetUsable(t, k1, true)
	if got, err := p.UnwrapKey(ctx, w, []byte("ws-1")); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("re-enabled key: %v", err)
	}

	// Rotation: a new key label wraps new keys; old wrappings still open.
	hsm.GenerateKey(t, "custos-kek-2")
	p2, err := NewPKCS11(PKCS11Options{Module: softhsmtest.Module, TokenLabel: "custos", PIN: Secret("1234"), KeyLabel: "custos-kek-2"})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	rw, err := Rewrap(ctx, p2, w, []byte("ws-1"))
	if err != nil || !bytes.Contains(rw, []byte("custos-kek-2")) {
		t.Fatalf("rewrap: %v", err)
	}
	if got, err := p2.UnwrapKey(ctx, rw, []byte("ws-1")); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("unwrap after rotation: %v", err)
	}
	// Deleted key: unavailable.
	hsm.DestroyKey(t, k1)
	if _, err := p2.UnwrapKey(ctx, w, []byte("ws-1")); !errors.Is(err, ErrKeyUnavailable) {
		t.Fatalf("deleted key: %v", err)
	}
}
