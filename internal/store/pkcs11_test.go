//go:build pkcs11

package store

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/pkcs11"

	"custos/internal/crypt"
)

// Run with test/pkcs11.sh (needs cgo and SoftHSM2).

func ckr(err error, code uint) bool {
	var e pkcs11.Error
	return errors.As(err, &e) && uint(e) == code
}

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
	if err := p.Initialize(); err != nil && !ckr(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
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
	if err := p.Login(s, pkcs11.CKU_USER, "1234"); err != nil && !ckr(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
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

// TestPKCS11Revocation links a workspace to a SoftHSM2 key, disables the
// key in the HSM, and re-enables it: ingestion and queries fail with
// KeyUnavailableError after the cache TTL and come back with nothing lost.
func TestPKCS11Revocation(t *testing.T) {
	hsm := newSoftHSM(t)
	k := hsm.generateKey(t, "custos-ws-kek")
	p, err := crypt.NewPKCS11(crypt.PKCS11Options{Module: softHSMModule, TokenLabel: "custos", PIN: crypt.Secret("1234"), KeyLabel: "custos-ws-kek"})
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

	hsm.setUsable(t, k, false)
	env.now = env.now.Add(ttl + time.Second)
	wantKeyUnavailable(t, "commit with the HSM key disabled", tryCommit(db, ref, crashBatchFor(110, 10)))
	_, err = tryCount(db, ref)
	wantKeyUnavailable(t, "query with the HSM key disabled", err)

	hsm.setUsable(t, k, true)
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
	hsm.setUsable(t, k, false)
	db = env.open(t, mod)
	defer func() { db.Close() }()
	wantKeyUnavailable(t, "unlock with the HSM key disabled", db.SetWorkspaceKeyProvider(ctx, testWS, p))
	hsm.setUsable(t, k, true)
	env.now = env.now.Add(2 * time.Second)
	if n, err := tryCount(db, ref); err != nil || n != 120 {
		t.Fatalf("after restart: %d rows, %v", n, err)
	}
}
