//go:build pkcs11

package crypt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/miekg/pkcs11"
)

const softHSMModule = "/usr/lib/softhsm/libsofthsm2.so"

// softHSM initialises a SoftHSM2 token in a temporary directory and returns
// an admin session on it (to create, disable and delete keys).
type softHSM struct {
	p       *pkcs11.Ctx
	session pkcs11.SessionHandle
}

func newSoftHSM(t *testing.T) *softHSM {
	t.Helper()
	if _, err := os.Stat(softHSMModule); err != nil {
		t.Skip("SoftHSM2 is not installed (apt-get install -y softhsm2); see test/pkcs11.sh")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.MkdirAll(filepath.Join(dir, "tokens"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+filepath.Join(dir, "tokens")+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", "custos", "--so-pin", "5678", "--pin", "1234").CombinedOutput()
	if err != nil {
		t.Fatalf("softhsm2-util: %v: %s", err, out)
	}
	p := pkcs11.New(softHSMModule)
	if err := p.Initialize(); err != nil && !isCKR(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		t.Fatal(err)
	}
	slots, err := p.GetSlotList(true)
	if err != nil {
		t.Fatal(err)
	}
	var slot uint
	found := false
	for _, s := range slots {
		if ti, err := p.GetTokenInfo(s); err == nil && ti.Label == "custos" {
			slot, found = s, true
		}
	}
	if !found {
		t.Fatal("token not found")
	}
	s, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Login(s, pkcs11.CKU_USER, "1234"); err != nil && !isCKR(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
		t.Fatal(err)
	}
	h := &softHSM{p: p, session: s}
	t.Cleanup(func() {
		p.CloseSession(s)
		p.Finalize()
		p.Destroy()
	})
	return h
}

func (h *softHSM) generateKey(t *testing.T, label string) pkcs11.ObjectHandle {
	t.Helper()
	k, err := h.p.GenerateKey(h.session, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_MODIFIABLE, true),
	})
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	return k
}

func (h *softHSM) setUsable(t *testing.T, k pkcs11.ObjectHandle, usable bool) {
	t.Helper()
	if err := h.p.SetAttributeValue(h.session, k, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, usable),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, usable),
	}); err != nil {
		t.Fatalf("set CKA_DECRYPT=%v: %v", usable, err)
	}
}

func TestPKCS11SoftHSM(t *testing.T) {
	hsm := newSoftHSM(t)
	k1 := hsm.generateKey(t, "custos-kek-1")
	ctx := context.Background()
	if _, err := NewPKCS11(PKCS11Options{Module: softHSMModule, TokenLabel: "custos", PIN: Secret("1234"), KeyLabel: "missing"}); !errors.Is(err, ErrKeyUnavailable) {
		t.Fatalf("missing key: %v", err)
	}
	if _, err := NewPKCS11(PKCS11Options{Module: softHSMModule, TokenLabel: "nope", PIN: Secret("1234"), KeyLabel: "custos-kek-1"}); err == nil {
		t.Fatal("unknown token accepted")
	}
	p, err := NewPKCS11(PKCS11Options{Module: softHSMModule, TokenLabel: "custos", PIN: Secret("1234"), KeyLabel: "custos-kek-1"})
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
	hsm.setUsable(t, k1, false)
	if _, err := p.UnwrapKey(ctx, w, []byte("ws-1")); !errors.Is(err, ErrKeyUnavailable) {
		t.Fatalf("disabled key: %v", err)
	}
	hsm.setUsable(t, k1, true)
	if got, err := p.UnwrapKey(ctx, w, []byte("ws-1")); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("re-enabled key: %v", err)
	}

	// Rotation: a new key label wraps new keys; old wrappings still open.
	hsm.generateKey(t, "custos-kek-2")
	p2, err := NewPKCS11(PKCS11Options{Module: softHSMModule, TokenLabel: "custos", PIN: Secret("1234"), KeyLabel: "custos-kek-2"})
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
	if err := hsm.p.DestroyObject(hsm.session, k1); err != nil {
		t.Fatal(err)
	}
	if _, err := p2.UnwrapKey(ctx, w, []byte("ws-1")); !errors.Is(err, ErrKeyUnavailable) {
		t.Fatalf("deleted key: %v", err)
	}
}
